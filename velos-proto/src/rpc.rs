//! The MessagePack-RPC envelope inside a frame's payload.
//!
//! ```text
//! request       [0, msgid, method, params]   client -> daemon; params is a map
//! response      [1, msgid, error, result]    daemon -> client; error is nil or {code, message}
//! notification  [2, method, params]          daemon -> client, for streams
//! ```
//!
//! The daemon reads a request with [`decode_request`]: the envelope by hand and the params
//! only measured against the [`crate::budget`], then decoded once, straight into their
//! typed form ([`crate::Request::decode`]). A client reads a response with
//! [`decode_response`] in one pass, and a notification with [`decode_notification`] as
//! the daemon reads a request. [`Envelope`] reads any message as an [`rmpv::Value`]
//! tree, for tools and tests that want to look at whatever came.
//! Structs are encoded with named fields, so every params and result is a map.

use rmpv::Value;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::budget::Reader;
use crate::{Error, RpcError};

/// The names of the notifications the daemon sends on a stream connection.
pub mod notification {
    /// One new log line (params: a `LogLine`), after `log.follow`.
    pub const LOG_LINE: &str = "log.line";
    /// Lines a slow follower missed (params: a `LogGap`), after `log.follow`.
    pub const LOG_GAP: &str = "log.gap";
    /// A followed process is gone and sends no more lines (params: a `LogEnd`), after
    /// `log.follow`; when it was the last one the follow named, the stream then ends.
    pub const LOG_END: &str = "log.end";
    /// One process event (params: a `ProcessEvent`), after `events.subscribe`.
    pub const PROCESS_EVENT: &str = "process.event";
}

const REQUEST: u64 = 0;
const RESPONSE: u64 = 1;
const NOTIFICATION: u64 = 2;

/// One decoded message of any of the three kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// `[0, msgid, method, params]`
    Request {
        /// Chosen by the client; echoed in the response.
        msgid: u32,
        /// The method name, such as `process.start`.
        method: String,
        /// The params map (an empty map when the client sent nil).
        params: Value,
    },
    /// `[1, msgid, error, result]`
    Response {
        /// The msgid of the request this answers.
        msgid: u32,
        /// The result, or the daemon's error.
        result: Result<Value, RpcError>,
    },
    /// `[2, method, params]`
    Notification {
        /// What the notification is about, such as `log.line`.
        method: String,
        /// Its data.
        params: Value,
    },
}

impl Envelope {
    /// Decodes a frame payload. Never panics, whatever the bytes.
    pub fn decode(payload: &[u8]) -> Result<Envelope, Error> {
        let mut rest = payload;
        let value =
            rmpv::decode::read_value(&mut rest).map_err(|e| Error::Decode(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::Malformed(format!(
                "{} bytes after the message",
                rest.len()
            )));
        }
        let Value::Array(items) = value else {
            return Err(Error::Malformed("message is not an array".into()));
        };
        let kind = items.first().and_then(Value::as_u64);
        match (kind, items.len()) {
            (Some(REQUEST), 4) => {
                let mut items = items.into_iter().skip(1);
                let msgid = msgid(items.next())?;
                let method = method(items.next())?;
                let params = params(items.next())?;
                Ok(Envelope::Request {
                    msgid,
                    method,
                    params,
                })
            }
            (Some(RESPONSE), 4) => {
                let mut items = items.into_iter().skip(1);
                let msgid = msgid(items.next())?;
                let error = items.next().unwrap_or(Value::Nil);
                let result = items.next().unwrap_or(Value::Nil);
                let result = match error {
                    Value::Nil => Ok(result),
                    error => Err(from_value::<RpcError>(error)
                        .map_err(|e| Error::Malformed(format!("bad error object: {e}")))?),
                };
                Ok(Envelope::Response { msgid, result })
            }
            (Some(NOTIFICATION), 3) => {
                let mut items = items.into_iter().skip(1);
                let method = method(items.next())?;
                let params = params(items.next())?;
                Ok(Envelope::Notification { method, params })
            }
            (Some(kind @ (REQUEST | RESPONSE | NOTIFICATION)), len) => Err(Error::Malformed(
                format!("message of type {kind} has {len} elements"),
            )),
            _ => Err(Error::Malformed(
                "first element is not a message type (0, 1 or 2)".into(),
            )),
        }
    }

    /// Encodes this message as a frame payload.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        match self {
            Envelope::Request {
                msgid,
                method,
                params,
            } => encode_request(*msgid, method, params),
            Envelope::Response { msgid, result } => encode_response(*msgid, result.as_ref()),
            Envelope::Notification { method, params } => encode_notification(method, params),
        }
    }
}

/// Encodes `[0, msgid, method, params]`.
pub fn encode_request<P: Serialize + ?Sized>(
    msgid: u32,
    method: &str,
    params: &P,
) -> Result<Vec<u8>, Error> {
    encode(&(REQUEST, msgid, method, params))
}

/// Encodes `[1, msgid, error, result]`: `Ok` gives a nil error, `Err` a nil result.
pub fn encode_response<R: Serialize + ?Sized>(
    msgid: u32,
    result: Result<&R, &RpcError>,
) -> Result<Vec<u8>, Error> {
    match result {
        Ok(result) => encode(&(RESPONSE, msgid, (), result)),
        Err(error) => encode(&(RESPONSE, msgid, error, ())),
    }
}

/// Encodes the response `[1, msgid, nil, result]` as a whole frame, header included, in
/// one buffer that starts with room for `capacity` bytes: a large answer (a list of
/// processes) is written where it will be sent from, neither grown step by step nor
/// copied behind a header. A payload over [`crate::frame::MAX_PAYLOAD_BYTES`] is
/// [`Error::FrameTooLarge`].
pub fn encode_response_frame<R: Serialize + ?Sized>(
    msgid: u32,
    result: &R,
    capacity: usize,
) -> Result<Vec<u8>, Error> {
    use crate::frame::{HEADER_LEN, MAX_PAYLOAD_BYTES, encode_header};
    let mut frame = Vec::with_capacity(capacity.max(HEADER_LEN + 16));
    frame.resize(HEADER_LEN, 0);
    rmp_serde::encode::write_named(&mut frame, &(RESPONSE, msgid, (), result))
        .map_err(|e| Error::Encode(e.to_string()))?;
    let len = u32::try_from(frame.len() - HEADER_LEN).unwrap_or(u32::MAX);
    if len > MAX_PAYLOAD_BYTES {
        return Err(Error::FrameTooLarge { len });
    }
    frame[..HEADER_LEN].copy_from_slice(&encode_header(len));
    Ok(frame)
}

/// Encodes `[2, method, params]`.
pub fn encode_notification<P: Serialize + ?Sized>(
    method: &str,
    params: &P,
) -> Result<Vec<u8>, Error> {
    encode(&(NOTIFICATION, method, params))
}

/// A request's envelope, read without building its params.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// Chosen by the client; echoed in the response.
    pub msgid: u32,
    /// The method name, such as `process.start`, as sent (it may be one this version does
    /// not know).
    pub method: &'a str,
    /// The params, measured but not decoded.
    pub params: Params<'a>,
}

/// The params of a request or notification as they came: one value (a request's is a map
/// or nil) within the decoding budget, still MessagePack. Only [`decode_request`] and
/// [`decode_notification`] make one, so a `Params` never holds more than the budget
/// allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params<'a>(&'a [u8]);

impl<'a> Params<'a> {
    /// The MessagePack bytes of the params.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Decodes the params straight into `T`, in one pass. Fields `T` does not know are
    /// skipped without being built; nil reads as an empty map.
    pub fn decode<T: Deserialize<'a>>(&self) -> Result<T, Error> {
        let bytes = if self.0 == [0xc0] {
            &[0x80][..]
        } else {
            self.0
        };
        rmp_serde::from_slice(bytes).map_err(|e| Error::Malformed(e.to_string()))
    }
}

/// Reads a request payload `[0, msgid, method, params]`: the envelope is checked, the
/// params only measured against the [`crate::budget`] (refused with
/// [`Error::TooManyValues`] or [`Error::TooDeep`] at the first value over it). Allocates
/// nothing; never panics, whatever the bytes.
pub fn decode_request(payload: &[u8]) -> Result<RequestHead<'_>, Error> {
    let mut reader = Reader::new(payload);
    let Some(len) = reader.array_len()? else {
        return Err(Error::Malformed("message is not an array".into()));
    };
    let kind = reader.unsigned()?;
    if (kind, len) != (Some(REQUEST), 4) {
        return Err(Error::Malformed(match kind {
            Some(RESPONSE) => {
                "expected a request [0, msgid, method, params], got a response".into()
            }
            Some(NOTIFICATION) => {
                "expected a request [0, msgid, method, params], got a notification".into()
            }
            Some(REQUEST) => format!("a request has 4 elements, not {len}"),
            _ => "expected a request [0, msgid, method, params]".into(),
        }));
    }
    let msgid = reader
        .unsigned()?
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| Error::Malformed("msgid is not an unsigned 32-bit integer".into()))?;
    let method = reader
        .str_bytes()?
        .ok_or_else(|| Error::Malformed("method is not a string".into()))?;
    let method = std::str::from_utf8(method)
        .map_err(|_| Error::Malformed("method is not valid UTF-8".into()))?;
    let start = reader.position();
    match reader.peek()? {
        0xc0 | 0x80..=0x8f | 0xde | 0xdf => reader.skip_value(0)?,
        _ => return Err(Error::Malformed("params is not a map".into())),
    }
    let params = Params(&payload[start..reader.position()]);
    if reader.remaining() > 0 {
        return Err(Error::Malformed(format!(
            "{} bytes after the message",
            reader.remaining()
        )));
    }
    Ok(RequestHead {
        msgid,
        method,
        params,
    })
}

/// A notification's envelope, read without building its params.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationHead<'a> {
    /// What the notification is about, such as `log.line` (see [`notification`]).
    pub method: &'a str,
    /// Its params, measured but not decoded.
    pub params: Params<'a>,
}

/// Reads a notification payload `[2, method, params]` the way [`decode_request`] reads a
/// request: the envelope checked, the params measured against the [`crate::budget`] and
/// left for [`Params::decode`] to decode straight into their type. What a client does
/// with every frame of a stream. Allocates nothing; never panics, whatever the bytes.
pub fn decode_notification(payload: &[u8]) -> Result<NotificationHead<'_>, Error> {
    let mut reader = Reader::new(payload);
    let Some(len) = reader.array_len()? else {
        // Not MessagePack at all is a decode error; any other value is the wrong message.
        crate::budget::value_len(payload)?;
        return Err(Error::Malformed("message is not an array".into()));
    };
    let kind = reader.unsigned()?;
    if (kind, len) != (Some(NOTIFICATION), 3) {
        return Err(Error::Malformed(match kind {
            Some(REQUEST) => "expected a notification [2, method, params], got a request".into(),
            Some(RESPONSE) => "expected a notification [2, method, params], got a response".into(),
            Some(NOTIFICATION) => format!("a notification has 3 elements, not {len}"),
            _ => "expected a notification [2, method, params]".into(),
        }));
    }
    let method = reader
        .str_bytes()?
        .ok_or_else(|| Error::Malformed("method is not a string".into()))?;
    let method = std::str::from_utf8(method)
        .map_err(|_| Error::Malformed("method is not valid UTF-8".into()))?;
    let start = reader.position();
    reader.skip_value(0)?;
    let params = Params(&payload[start..reader.position()]);
    if reader.remaining() > 0 {
        return Err(Error::Malformed(format!(
            "{} bytes after the message",
            reader.remaining()
        )));
    }
    Ok(NotificationHead { method, params })
}

/// A decoded response: its msgid, and the typed result or the daemon's error.
pub type Answer<T> = (u32, Result<T, RpcError>);

/// Decodes a response payload straight into its typed result, in one pass (no
/// intermediate [`Value`]): what a client does with every answer. Returns `None` when
/// the payload is not a response (a notification, say), for [`Envelope::decode`] to look
/// at.
pub fn decode_response<T: DeserializeOwned>(payload: &[u8]) -> Option<Result<Answer<T>, Error>> {
    // fixarray of 4, then positive fixint 1: how every response starts.
    if payload.get(..2) != Some(&[0x94, 0x01]) {
        return None;
    }
    // Read in place: strings are decoded from the payload itself, not copied through the
    // reader's buffer first (a fifth of `velos list`'s instructions with 100 processes).
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(payload);
    let decoded = serde::Deserializer::deserialize_seq(
        &mut deserializer,
        ResponseVisitor(std::marker::PhantomData),
    )
    .map_err(|e| Error::Malformed(e.to_string()));
    Some(decoded)
}

/// [`decode_response`] without decoding the result: the MessagePack bytes of the result
/// as they came (everything after the nil error; checking them is the caller's part),
/// for a caller that reads them its own way. The daemon's error is decoded as usual.
pub fn decode_response_raw(payload: &[u8]) -> Option<Result<Answer<&[u8]>, Error>> {
    if payload.get(..2) != Some(&[0x94, 0x01]) {
        return None;
    }
    let mut reader = Reader::new(&payload[2..]);
    let Some(msgid) = reader
        .unsigned()
        .ok()
        .flatten()
        .and_then(|msgid| u32::try_from(msgid).ok())
    else {
        return Some(Err(Error::Malformed(
            "msgid is not an unsigned 32-bit integer".into(),
        )));
    };
    let rest = &payload[2 + reader.position()..];
    if let Some((0xc0, result)) = rest.split_first() {
        return Some(Ok((msgid, Ok(result))));
    }
    // Not a nil error: read as any response is.
    let decoded = decode_response::<serde::de::IgnoredAny>(payload)?;
    Some(decoded.map(|(msgid, answer)| (msgid, answer.map(|_| rest))))
}

struct ResponseVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ResponseVisitor<T> {
    type Value = Answer<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a response [1, msgid, error, result]")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let missing = || A::Error::custom("response has fewer than 4 elements");
        let _kind: u8 = seq.next_element()?.ok_or_else(missing)?;
        let msgid: u32 = seq.next_element()?.ok_or_else(missing)?;
        let error: Option<RpcError> = seq.next_element()?.ok_or_else(missing)?;
        match error {
            Some(error) => {
                let _: serde::de::IgnoredAny = seq.next_element()?.ok_or_else(missing)?;
                Ok((msgid, Err(error)))
            }
            None => {
                let result: T = seq.next_element()?.ok_or_else(missing)?;
                Ok((msgid, Ok(result)))
            }
        }
    }
}

/// Decodes one MessagePack value straight into `T`, in one pass.
pub fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    rmp_serde::from_slice(bytes).map_err(|e| Error::Malformed(e.to_string()))
}

/// Turns a params or result value into a typed one.
///
/// Goes through MessagePack bytes rather than `rmpv::ext::from_value`, which cannot read
/// a unit enum variant (`"running"`) from a string.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).map_err(|e| Error::Encode(e.to_string()))?;
    rmp_serde::from_slice(&bytes).map_err(|e| Error::Malformed(e.to_string()))
}

/// Turns a typed value into a [`Value`] (structs become maps).
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, Error> {
    let bytes = encode(value)?;
    rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| Error::Encode(e.to_string()))
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    rmp_serde::to_vec_named(value).map_err(|e| Error::Encode(e.to_string()))
}

fn msgid(value: Option<Value>) -> Result<u32, Error> {
    value
        .as_ref()
        .and_then(Value::as_u64)
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| Error::Malformed("msgid is not an unsigned 32-bit integer".into()))
}

fn method(value: Option<Value>) -> Result<String, Error> {
    match value {
        Some(Value::String(s)) => s
            .into_str()
            .ok_or_else(|| Error::Malformed("method is not valid UTF-8".into())),
        _ => Err(Error::Malformed("method is not a string".into())),
    }
}

fn params(value: Option<Value>) -> Result<Value, Error> {
    match value {
        Some(Value::Nil) | None => Ok(Value::Map(Vec::new())),
        Some(map @ Value::Map(_)) => Ok(map),
        Some(_) => Err(Error::Malformed("params is not a map".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sample {
        name: String,
        lines: u32,
    }

    #[test]
    fn request_round_trips() {
        let payload = encode_request(
            7,
            "log.read",
            &Sample {
                name: "api".into(),
                lines: 3,
            },
        )
        .unwrap();
        let Envelope::Request {
            msgid,
            method,
            params,
        } = Envelope::decode(&payload).unwrap()
        else {
            panic!("not a request");
        };
        assert_eq!((msgid, method.as_str()), (7, "log.read"));
        assert_eq!(
            from_value::<Sample>(params).unwrap(),
            Sample {
                name: "api".into(),
                lines: 3
            }
        );
    }

    #[test]
    fn a_response_frame_is_the_frame_of_the_encoded_response() {
        let result: Vec<Sample> = (0..50)
            .map(|lines| Sample {
                name: "api".into(),
                lines,
            })
            .collect();
        let payload = encode_response(9, Ok(&result)).unwrap();
        for capacity in [0, 10, 100_000] {
            let frame = encode_response_frame(9, &result, capacity).unwrap();
            assert_eq!(frame, crate::frame::encode_frame(&payload).unwrap());
        }
    }

    #[test]
    fn a_raw_response_is_its_result_bytes_or_the_daemons_error() {
        let sample = Sample {
            name: "api".into(),
            lines: 3,
        };
        for msgid in [0, 200, 70_000, u32::MAX] {
            let payload = encode_response(msgid, Ok(&sample)).unwrap();
            let (answered, result) = decode_response_raw(&payload).unwrap().unwrap();
            assert_eq!(answered, msgid);
            assert_eq!(result.unwrap(), encode(&sample).unwrap());
        }
        let error = RpcError::new(ErrorCode::NotFound, "no process named 'x'");
        let payload = encode_response::<()>(4, Err(&error)).unwrap();
        assert_eq!(
            decode_response_raw(&payload).unwrap().unwrap(),
            (4, Err(error))
        );
        let notification = encode_notification("log.line", &sample).unwrap();
        assert!(decode_response_raw(&notification).is_none());
        assert!(decode_response_raw(&[0x94, 0x01, 0xc0]).unwrap().is_err());
    }

    #[test]
    fn structs_are_maps_on_the_wire() {
        let value = to_value(&Sample {
            name: "a".into(),
            lines: 1,
        })
        .unwrap();
        assert!(value.is_map(), "{value:?}");
    }

    #[test]
    fn responses_round_trip_both_ways() {
        let ok = encode_response(3, Ok(&vec![1u8, 2])).unwrap();
        assert_eq!(
            Envelope::decode(&ok).unwrap(),
            Envelope::Response {
                msgid: 3,
                result: Ok(Value::Array(vec![1.into(), 2.into()]))
            }
        );
        let error = RpcError::new(ErrorCode::NotFound, "no process named 'api'");
        let err = encode_response::<()>(4, Err(&error)).unwrap();
        assert_eq!(
            Envelope::decode(&err).unwrap(),
            Envelope::Response {
                msgid: 4,
                result: Err(error)
            }
        );
    }

    #[test]
    fn responses_decode_in_one_pass() {
        let ok = encode_response(
            3,
            Ok(&Sample {
                name: "a".into(),
                lines: 2,
            }),
        )
        .unwrap();
        let (msgid, result) = decode_response::<Sample>(&ok).unwrap().unwrap();
        assert_eq!((msgid, result.unwrap().lines), (3, 2));
        let error = RpcError::new(ErrorCode::NotFound, "no");
        let err = encode_response::<()>(4, Err(&error)).unwrap();
        let (msgid, result) = decode_response::<Sample>(&err).unwrap().unwrap();
        assert_eq!((msgid, result.unwrap_err()), (4, error));
        let note = encode_notification("log.line", &()).unwrap();
        assert!(decode_response::<Sample>(&note).is_none());
        let wrong = encode_response(5, Ok(&"text")).unwrap();
        assert!(decode_response::<Sample>(&wrong).unwrap().is_err());
    }

    #[test]
    fn notifications_decode_straight_into_their_type() {
        let params = Sample {
            name: "api".into(),
            lines: 3,
        };
        let payload = encode_notification("log.line", &params).unwrap();
        let head = decode_notification(&payload).unwrap();
        assert_eq!(head.method, "log.line");
        assert_eq!(head.params.decode::<Sample>().unwrap(), params);
        for (payload, malformed) in [
            (encode_request(1, "x", &()).unwrap(), true),
            (encode_response(1, Ok(&())).unwrap(), true),
            (encode(&(2, "x")).unwrap(), true),
            (encode(&(2, 7, ())).unwrap(), true),
            (
                [encode_notification("x", &()).unwrap(), vec![0xc0]].concat(),
                true,
            ),
            (vec![0xa5, b'a'], false),
            (vec![0x93, 0x02], false),
        ] {
            let result = decode_notification(&payload);
            assert!(
                if malformed {
                    matches!(result, Err(Error::Malformed(_)))
                } else {
                    matches!(result, Err(Error::Decode(_)))
                },
                "{payload:x?} -> {result:?}"
            );
        }
    }

    #[test]
    fn notification_round_trips() {
        let message = Envelope::Notification {
            method: "log.line".into(),
            params: Value::Map(vec![("a".into(), 1.into())]),
        };
        assert_eq!(
            Envelope::decode(&message.encode().unwrap()).unwrap(),
            message
        );
    }

    #[test]
    fn nil_params_read_as_an_empty_map() {
        let payload = encode(&(0, 1, "daemon.ping", ())).unwrap();
        assert!(matches!(
            Envelope::decode(&payload).unwrap(),
            Envelope::Request { params: Value::Map(m), .. } if m.is_empty()
        ));
    }

    #[test]
    fn wrong_shapes_are_malformed() {
        let cases: Vec<Vec<u8>> = vec![
            encode(&"just a string").unwrap(),
            encode(&(0, 1, "daemon.ping")).unwrap(),
            encode(&(5, 1, "daemon.ping", ())).unwrap(),
            encode(&(0, -1, "daemon.ping", ())).unwrap(),
            encode(&(0, u64::MAX, "daemon.ping", ())).unwrap(),
            encode(&(0, 1, 42, ())).unwrap(),
            encode(&(0, 1, "daemon.ping", vec![1])).unwrap(),
            encode(&(1, 1, "not an error map", ())).unwrap(),
            encode(&(2, "x")).unwrap(),
        ];
        for payload in cases {
            assert!(
                matches!(Envelope::decode(&payload), Err(Error::Malformed(_))),
                "{payload:x?} -> {:?}",
                Envelope::decode(&payload)
            );
        }
    }

    #[test]
    fn request_heads_are_read_without_their_params() {
        let params = Sample {
            name: "api".into(),
            lines: 3,
        };
        let payload = encode_request(u32::MAX, "log.read", &params).unwrap();
        let head = decode_request(&payload).unwrap();
        assert_eq!((head.msgid, head.method), (u32::MAX, "log.read"));
        assert_eq!(head.params.as_bytes(), encode(&params).unwrap());
        assert_eq!(head.params.decode::<Sample>().unwrap(), params);
        // Any integer encoding of the kind and msgid, as the value tree accepts.
        let wide = b"\x94\xcc\x00\xd2\x00\x00\x00\x05\xa1x\xc0";
        let head = decode_request(wide).unwrap();
        assert_eq!((head.msgid, head.method), (5, "x"));
    }

    #[test]
    fn wrong_request_shapes_are_malformed_or_undecodable() {
        let malformed: Vec<Vec<u8>> = vec![
            encode(&"just a string").unwrap(),
            encode(&(0, 1, "daemon.ping")).unwrap(),
            encode(&(5, 1, "daemon.ping", ())).unwrap(),
            encode(&(0, -1, "daemon.ping", ())).unwrap(),
            encode(&(0, u64::MAX, "daemon.ping", ())).unwrap(),
            encode(&(0, 1, 42, ())).unwrap(),
            encode(&(0, 1, "daemon.ping", vec![1])).unwrap(),
            encode_response(1, Ok(&())).unwrap(),
            encode_notification("x", &()).unwrap(),
            b"\x94\x00\x01\xa2\xff\xfe\x80".to_vec(),
            [encode(&(0, 1, "daemon.ping", ())).unwrap(), vec![0xc0]].concat(),
        ];
        for payload in malformed {
            assert!(
                matches!(decode_request(&payload), Err(Error::Malformed(_))),
                "{payload:x?} -> {:?}",
                decode_request(&payload)
            );
        }
        for payload in [
            &[][..],
            &[0x94, 0x00, 0x07],
            &[0x94, 0x00, 0x01, 0xa1, b'x', 0x81],
        ] {
            assert!(
                matches!(decode_request(payload), Err(Error::Decode(_))),
                "{payload:x?} -> {:?}",
                decode_request(payload)
            );
        }
    }

    #[test]
    fn invalid_msgpack_and_trailing_bytes_are_refused() {
        assert!(matches!(
            Envelope::decode(&[0xa5, b'a']),
            Err(Error::Decode(_))
        ));
        assert!(matches!(Envelope::decode(&[]), Err(Error::Decode(_))));
        let mut payload = encode(&(0, 1, "daemon.ping", ())).unwrap();
        payload.push(0);
        assert!(matches!(
            Envelope::decode(&payload),
            Err(Error::Malformed(_))
        ));
    }
}
