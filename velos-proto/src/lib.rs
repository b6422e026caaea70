//! The velos wire protocol, shared by the daemon (`velosd`), the SDK and the CLI.
//!
//! Every message is a frame: a 9-byte header, then a MessagePack payload.
//!
//! ```text
//! +------+----+-----------------+--------------------------------------------+
//! | VELO | 01 | length (u32 BE) | [0, msgid, "process.list", {}]             |
//! +------+----+-----------------+--------------------------------------------+
//! ```
//!
//! - [`frame`]: the header codec and reading and writing frames;
//! - [`rpc`]: the MessagePack-RPC envelope ([`Envelope`]): request, response, notification;
//! - [`budget`]: how many values and levels one request may hold, checked before decoding;
//! - [`Method`], [`Call`] and [`methods`]: every method, defined once with its params and
//!   result types; [`Request`] and [`Response`]: a method with its typed params or result;
//! - [`ErrorCode`] and [`RpcError`]: the daemon's error map;
//! - [`home`]: where the socket, pid file and logs live, and the process name rules;
//! - [`watch`]: what `--watch` ignores and waits for, shared by the CLI and the daemon.
//!
//! # Examples
//!
//! A request, encoded and decoded again:
//!
//! ```
//! use velos_proto::{Request, frame};
//!
//! let payload = Request::List.encode(1).unwrap();
//! let bytes = frame::encode_frame(&payload).unwrap();
//! let (payload, _) = frame::decode_frame(&bytes).unwrap();
//! let (msgid, request) = Request::decode(payload).unwrap();
//! assert_eq!((msgid, request.unwrap()), (1, Request::List));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod budget;
mod build;
mod echo;
mod error;
pub mod frame;
pub mod home;
pub mod limits;
mod method;
mod ready;
mod request;
mod response;
pub mod rpc;
pub mod script;
mod signal;
pub mod watch;

pub use build::build_stamp;
pub use echo::{ECHO_CHARS, echo};
pub use error::{Error, ErrorCode, RpcError};
pub use home::Home;
pub use method::{Call, Method, Request, Response, methods};
pub use ready::{BadReadyMode, DEFAULT_READY_TIMEOUT, ReadyMode};
pub use request::{
    DEFAULT_METRICS_LISTEN, DeleteParams, LogCursor, LogPosition, LogReadParams, MAX_QUOTED_CHARS,
    MAX_START_BYTES, MetricsEnableParams, NoParams, ProcessCursor, Refused, ReloadParams,
    RestartParams, SaveParams, ScaleParams, SignalParams, StartParams, Target, TargetParams,
};
pub use response::{
    EventKind, LastRestart, LogEnd, LogGap, LogLine, LogLines, MetricsState, MetricsText, PingInfo,
    ProcessEvent, ProcessInfo, ProcessStatus, ReloadOutcome, ReloadResult, RestartCounts,
    RestartMode, RestartReason, Saved, Stream, WatchedCount,
};
pub use rpc::Envelope;
pub use script::ScriptError;
pub use signal::{parse_signal, signal_name};

/// The example in docs/protocol.md, byte for byte.
#[cfg(test)]
mod docs_example {
    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn ping_example_matches_the_docs() {
        let request = unhex("56454c4f0100000010940007ab6461656d6f6e2e70696e6780");
        let ours = frame::encode_frame(&Request::Ping.encode(7).unwrap()).unwrap();
        assert_eq!(ours, request);
        let response = unhex(concat!(
            "56454c4f010000003c940107c085a776657273696f6ea5302e312e30a3706964cd1092",
            "a870726f746f636f6c01a9757074696d655f6d73cd05dca970726f63657373657300"
        ));
        let pong = Response::Ping(PingInfo {
            version: "0.1.0".into(),
            pid: 4242,
            protocol: 1,
            uptime_ms: 1500,
            processes: 0,
            ..PingInfo::default()
        });
        assert_eq!(
            frame::encode_frame(&pong.encode(7).unwrap()).unwrap(),
            response
        );
    }
}

/// Never-panic property: any bytes given to the decoders give a value or an error.
#[cfg(test)]
mod fuzz_tests {
    use proptest::prelude::*;

    use super::*;

    /// Maps of small nested values of every kind, `target` often among the keys.
    fn arbitrary_map() -> impl Strategy<Value = rmpv::Value> {
        let leaf = prop_oneof![
            Just(rmpv::Value::Nil),
            any::<bool>().prop_map(rmpv::Value::from),
            any::<i64>().prop_map(rmpv::Value::from),
            any::<u64>().prop_map(rmpv::Value::from),
            any::<f64>().prop_map(rmpv::Value::from),
            "[a-z0-9]{0,12}".prop_map(rmpv::Value::from),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(rmpv::Value::Binary),
        ];
        let value = leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(rmpv::Value::Array),
                proptest::collection::vec(("[a-z]{1,6}".prop_map(rmpv::Value::from), inner), 0..8)
                    .prop_map(rmpv::Value::Map),
            ]
        });
        proptest::collection::vec(
            (prop_oneof![Just("target".to_owned()), "[a-z]{1,6}"], value),
            0..6,
        )
        .prop_map(|entries| {
            rmpv::Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Envelope::decode(&bytes);
            let _ = Request::decode(&bytes);
            let _ = frame::decode_frame(&bytes);
            let _ = rpc::decode_notification(&bytes);
            let mut frames = frame::FrameReader::new();
            let mut stream = futures_lite::io::Cursor::new(bytes.clone());
            while let Ok(true) = futures_lite::future::block_on(frames.next(&mut stream)) {
                let _ = Request::decode(frames.payload());
            }
        }

        #[test]
        fn arbitrary_params_never_panic_typed_decoding(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            // The params after a valid envelope head, for every method.
            let mut payload = b"\x94\x00\x01\xabdaemon.ping".to_vec();
            payload.extend_from_slice(&bytes);
            if let Ok(head) = rpc::decode_request(&payload) {
                for method in Method::ALL {
                    let _ = Request::decode_params(method, head.params);
                }
            }
            if let Ok(value) = rmpv::decode::read_value(&mut bytes.as_slice()) {
                for method in Method::ALL {
                    let _ = Response::from_parts(method, value.clone());
                }
            }
            for method in Method::ALL {
                let _ = Response::decode(method, &bytes);
            }
        }

        #[test]
        fn arbitrary_maps_decode_like_the_value_tree(value in arbitrary_map()) {
            // Whatever a map holds, the one-pass decoder agrees with the value tree on
            // whether it is a well-formed request, and never panics.
            let payload = rpc::encode_request(5, "process.stop", &value).unwrap();
            let tree = Envelope::decode(&payload);
            let typed = Request::decode(&payload);
            prop_assert_eq!(tree.is_ok(), typed.is_ok(), "{:?} / {:?}", tree, typed);
        }

        #[test]
        fn valid_frames_with_a_valid_request_decode(msgid in any::<u32>(), name in "[a-z]{1,10}") {
            let payload = Request::Stop(TargetParams { target: Target::Name(name.clone()) }).encode(msgid).unwrap();
            let frame = frame::encode_frame(&payload).unwrap();
            let (payload, rest) = frame::decode_frame(&frame).unwrap();
            prop_assert!(rest.is_empty());
            let decoded = Envelope::decode(payload).unwrap();
            let is_same = matches!(decoded, Envelope::Request { msgid: m, .. } if m == msgid);
            prop_assert!(is_same);
        }
    }
}
