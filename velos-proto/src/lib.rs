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
//! - [`Method`], [`Request`] and [`Response`]: every method with typed params and results;
//! - [`ErrorCode`] and [`RpcError`]: the daemon's error map;
//! - [`home`]: where the socket, pid file and logs live, and the process name rules.
//!
//! # Examples
//!
//! A request, encoded and decoded again:
//!
//! ```
//! use velos_proto::{Envelope, Method, Request, frame};
//!
//! let payload = Request::List.encode(1).unwrap();
//! let bytes = frame::encode_frame(&payload).unwrap();
//! let (payload, _) = frame::decode_frame(&bytes).unwrap();
//! let Envelope::Request { msgid, method, params } = Envelope::decode(payload).unwrap() else {
//!     unreachable!()
//! };
//! assert_eq!(msgid, 1);
//! let method = Method::from_name(&method).unwrap();
//! assert_eq!(Request::from_parts(method, params).unwrap(), Request::List);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod frame;
pub mod home;
mod method;
mod request;
mod response;
pub mod rpc;

pub use error::{Error, ErrorCode, RpcError};
pub use home::Home;
pub use method::Method;
pub use request::{
    LogReadParams, NoParams, Request, RestartParams, StartParams, Target, TargetParams,
};
pub use response::{LogLine, LogLines, PingInfo, ProcessInfo, ProcessStatus, Response, Stream};
pub use rpc::Envelope;

/// Never-panic property: any bytes given to the decoders give a value or an error.
#[cfg(test)]
mod fuzz_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Envelope::decode(&bytes);
            let _ = frame::decode_frame(&bytes);
            let mut payload = Vec::new();
            let _ = futures_lite::future::block_on(frame::read_frame(
                &mut futures_lite::io::Cursor::new(bytes.clone()),
                &mut payload,
            ));
        }

        #[test]
        fn arbitrary_params_never_panic_typed_decoding(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(value) = rmpv::decode::read_value(&mut bytes.as_slice()) {
                for method in Method::ALL {
                    let _ = Request::from_parts(method, value.clone());
                    let _ = Response::from_parts(method, value.clone());
                }
            }
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
