//! Fuzzes everything the daemon does with bytes a client sends: the frame reader, the
//! request decoder with its budget and the typed params of every method, and the generic
//! envelope decoder clients use. None may panic.
//!
//! Run with `just fuzz` (nightly and cargo-fuzz), or
//! `cargo +nightly fuzz run decode -- -max_total_time=60` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use velos_proto::{Envelope, Method, Request, frame, rpc};

fuzz_target!(|bytes: &[u8]| {
    // As a stream of frames, the way the daemon reads a connection.
    let mut reader = futures_lite::io::Cursor::new(bytes);
    let mut payload = Vec::new();
    futures_lite::future::block_on(async {
        while let Ok(true) = frame::read_frame(&mut reader, &mut payload).await {
            decode(&payload);
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
    // What clients do with whatever comes.
    let _ = Envelope::decode(payload);
}
