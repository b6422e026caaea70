//! The blocking client needs no reactor: a request starts no thread (async-io starts one,
//! named `async-io`, the first time anything uses its reactor or its `block_on`). Alone in
//! its own test binary, so no other test can start that thread meanwhile.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;

use velos_proto::frame::{self, HEADER_LEN};
use velos_proto::{PingInfo, Response, rpc};

/// The names of this process's threads.
fn threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
#[cfg(target_os = "linux")]
fn a_blocking_client_starts_no_thread() {
    let dir = tempfile::Builder::new()
        .prefix("vsdk-")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("velos.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // A daemon that answers one ping.
    let daemon = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut header = [0; HEADER_LEN];
        stream.read_exact(&mut header).unwrap();
        let mut payload = vec![0; frame::decode_header(&header).unwrap() as usize];
        stream.read_exact(&mut payload).unwrap();
        let msgid = rpc::decode_request(&payload).unwrap().msgid;
        let pong = Response::Ping(PingInfo {
            version: "0.1.0".into(),
            protocol: frame::VERSION,
            ..PingInfo::default()
        })
        .encode(msgid)
        .unwrap();
        stream
            .write_all(&frame::encode_frame(&pong).unwrap())
            .unwrap();
    });

    let mut client = velos_sdk::blocking::Client::connect(&socket).unwrap();
    assert_eq!(client.ping().unwrap().version, "0.1.0");
    daemon.join().unwrap();
    let names = threads();
    assert!(
        !names.iter().any(|name| name == "async-io"),
        "threads: {names:?}"
    );
}
