//! Fuzzes everything the daemon does with bytes a client sends: the frame reader, the
//! request decoder with its budget and the typed params of every method; and what clients
//! do with bytes a daemon sends: typed responses, notifications and the generic envelope
//! decoder. None may panic.
//!
//! Run with `just fuzz` (nightly and cargo-fuzz), or
//! `cargo +nightly fuzz run decode -- -max_total_time=60` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use velos_proto::{Envelope, Method, Request, Response, frame, rpc};

fuzz_target!(|bytes: &[u8]| {
    // As a stream of frames, the way the daemon reads a connection.
    let mut reader = futures_lite::io::Cursor::new(bytes);
    let mut frames = frame::FrameReader::new();
    futures_lite::future::block_on(async {
        while let Ok(true) = frames.next(&mut reader).await {
            decode(frames.payload());
        }
    });
    // And as a payload on its own.
    decode(bytes);
});

fn decode(payload: &[u8]) {
    // What the daemon does: the one-pass typed decoder, within the budget.
    let _ = Request::decode(payload);
    if let Ok(head) = rpc::decode_request(payload) {
        // Every method, not just the one named: random bytes rarely spell a method name.
        for method in Method::ALL {
            let _ = Request::decode_params(method, head.params);
        }
    }
    // What clients do with whatever comes: a response, typed by its method, or a
    // notification; and the generic envelope decoder of tools.
    for method in Method::ALL {
        let _ = Response::decode(method, payload);
    }
    if let Ok(head) = rpc::decode_notification(payload) {
        let _ = head.params.decode::<velos_proto::LogLine>();
        let _ = head.params.decode::<velos_proto::ProcessEvent>();
    }
    let _ = Envelope::decode(payload);
}
