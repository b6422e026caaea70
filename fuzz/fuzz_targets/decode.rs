//! Fuzzes everything the daemon does with bytes a client sends: the frame reader, the
//! envelope decoder and the typed params of every method. None may panic.
//!
//! Run with `just fuzz` (nightly and cargo-fuzz), or
//! `cargo +nightly fuzz run decode -- -max_total_time=60` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use velos_proto::{Envelope, Method, Request, frame};

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
    if let Ok(Envelope::Request { params, .. }) = Envelope::decode(payload) {
        // Every method, not just the one named: random bytes rarely spell a method name.
        for method in Method::ALL {
            let _ = Request::from_parts(method, params.clone());
        }
    }
}
