//! Ids (issue 9, item 13): they never wrap. A saved list can bring back an id as large as
//! 4294967294; the ids after it must not come round to ones in use, or `stop x` would
//! stop another process.

use crate::harness::{TestHome, fixture};

#[test]
fn ids_never_wrap_past_the_largest_one() {
    let home = TestHome::new();
    let sleeper = fixture("sleeper.sh");
    home.velos(&["start", &sleeper, "--name", "z"]).success();
    home.velos(&["save"]).success();
    // Give 'z' the id 4294967294 in the saved list: its id is the first key of its map,
    // "id" (a2 69 64) and then 0 (a positive fixint).
    let dump = home.home().dump_path();
    let bytes = std::fs::read(&dump).expect("reading dump.msgpack");
    let at: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == [0xa2, b'i', b'd', 0x00])
        .map(|(i, _)| i)
        .collect();
    assert_eq!(at.len(), 1, "cannot find id 0 in dump.msgpack");
    let mut patched = bytes[..at[0] + 3].to_vec();
    patched.extend_from_slice(&[0xce, 0xff, 0xff, 0xff, 0xfe]);
    patched.extend_from_slice(&bytes[at[0] + 4..]);
    std::fs::write(&dump, patched).expect("writing dump.msgpack");
    home.velos(&["kill"]).success();
    home.velos(&["resurrect"]).success();
    assert_eq!(home.get("z").id, 4294967294);

    home.velos(&["start", &sleeper, "--name", "x"]).success();
    home.velos(&["start", &sleeper, "--name", "y"]).success();
    let list = home.list();
    let mut ids: Vec<u64> = list.iter().map(|proc| proc.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids collide: {list:#?}");
    home.wait_running("z");
    home.velos(&["stop", "x"]).success();
    let list = home.list();
    let status = |name: &str| {
        list.iter()
            .find(|proc| proc.name == name)
            .map(|proc| proc.status.clone())
    };
    assert_eq!(
        (status("x"), status("y"), status("z")),
        (
            Some("stopped".to_owned()),
            Some("running".to_owned()),
            Some("running".to_owned())
        ),
        "{list:#?}"
    );
}
