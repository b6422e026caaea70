//! `velos list --json` is written from the daemon's MessagePack without decoding it
//! (`velos/src/commands/list_json.rs`): its bytes are still exactly what serde_json writes
//! for the list the SDK decodes, awkward strings included.

use velos_proto::StartParams;

use crate::harness::{TestHome, fixture};

#[test]
fn list_json_is_what_serde_json_writes_for_the_decoded_list() {
    let home = TestHome::new();
    let mut sdk = home.sdk();
    let awkward = [
        "quote \" backslash \\ slash /".to_owned(),
        "tab\tnew\nline\rcr\u{8}\u{c}\u{1}\u{1f}\u{7f}".to_owned(),
        "é 日本 🚀".to_owned(),
        String::new(),
    ];
    for name in ["b-app", "a-app", "c.app"] {
        sdk.start(StartParams {
            script: fixture("sleeper.sh"),
            name: Some(name.to_owned()),
            args: awkward.to_vec(),
            env: Some([("X".to_owned(), "1".to_owned())].into()),
            ..StartParams::default()
        })
        .unwrap_or_else(|error| panic!("start {name}: {error}"));
    }
    // Stopped, their entries stay the same from one list to the next (no uptime, CPU or
    // memory figures).
    home.velos(&["stop", "all"]).success();
    let mut list = sdk.list().expect("list");
    list.sort_by_key(|process| process.id);
    let mut expected = serde_json::to_string(&list).unwrap();
    expected.push('\n');
    let output = home.velos(&["list", "--json"]);
    output.success();
    assert_eq!(output.stdout_str(), expected);
}
