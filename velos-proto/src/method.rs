//! Every method of the protocol, defined once: its wire name, its params type and its
//! result type.
//!
//! The table at the bottom of this file is the one place a method is written down. A
//! `macro_rules!` expands it into:
//!
//! - [`Method`]: the enum of every method, and its wire strings (`"process.start"`);
//! - [`methods`]: one zero-sized type per method implementing [`Call`], which ties the
//!   name to the params and result types, so a generic client
//!   (`client.call::<methods::Start>(params)` in the SDK) cannot send the wrong params
//!   or read the wrong result;
//! - [`Request`](crate::Request): one variant per method with its typed params, as the
//!   daemon receives it;
//! - [`Response`](crate::Response): one variant per method with its typed result, as the
//!   daemon answers it.
//!
//! Adding a method is one line in the table (with its doc comment) and one arm in the
//! daemon's dispatch, which the compiler asks for: `docs/protocol.md` shows an example.
//!
//! The wire carries the string; code matches on the enum. A name this version does not
//! know stays a string, so the daemon can answer `unknown-method` instead of failing to
//! decode.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::request::{
    DeleteParams, LogReadParams, MetricsEnableParams, NoParams, ReloadParams, RestartParams,
    SaveParams, ScaleParams, SignalParams, StartParams, TargetParams,
};
use crate::response::{
    LogLines, MetricsState, MetricsText, PingInfo, ProcessInfo, ReloadOutcome, Saved,
};
use crate::{Error, rpc};

/// One method: its name on the wire, what it takes and what it answers.
///
/// Implemented by the zero-sized types in [`methods`], one per method; generic code
/// (the SDK's `Client::call`) is written once over it.
///
/// # Examples
///
/// A request and the decoding of its answer, written once for every method:
///
/// ```
/// use velos_proto::{Call, Error, RpcError, Target, TargetParams, methods, rpc};
///
/// fn request<M: Call>(msgid: u32, params: &M::Params) -> Result<Vec<u8>, Error> {
///     rpc::encode_request(msgid, M::NAME, params)
/// }
///
/// fn answer<M: Call>(payload: &[u8]) -> Option<Result<rpc::Answer<M::Result>, Error>> {
///     rpc::decode_response::<M::Result>(payload)
/// }
///
/// let params = TargetParams { target: Target::parse("api") };
/// let payload = request::<methods::Info>(1, &params).unwrap();
/// # let _ = payload;
/// # let reply = rpc::encode_response(1, Ok(&velos_proto::ProcessInfo::default())).unwrap();
/// // `process` is a `ProcessInfo`: the type comes from the method.
/// let (msgid, process) = answer::<methods::Info>(&reply).unwrap().unwrap();
/// assert_eq!((msgid, process.unwrap().id), (1, 0));
/// ```
pub trait Call {
    /// The method, as the [`Method`] enum names it.
    const METHOD: Method;
    /// Its name on the wire, such as `process.start`.
    const NAME: &'static str = Self::METHOD.as_str();
    /// What it takes: a struct, a map on the wire.
    type Params: Serialize + DeserializeOwned + Send;
    /// What it answers (`()` for nil).
    type Result: Serialize + DeserializeOwned + Send;
}

/// The params type of a table entry: the one given, else [`NoParams`].
macro_rules! params_type {
    () => {
        NoParams
    };
    ($params:ty) => {
        $params
    };
}

/// The result type of a table entry: the one given, else `()` (nil on the wire).
macro_rules! result_type {
    () => {
        ()
    };
    ($result:ty) => {
        $result
    };
}

/// Whether a table entry is marked `waits_for_stops`.
macro_rules! waits {
    () => {
        false
    };
    (waits_for_stops) => {
        true
    };
}

/// The variable a variant's value is bound to, in a pattern or an expression (the type
/// only ties it to the entry's optional part).
macro_rules! bind {
    ($bound:ident $type:ty) => {
        $bound
    };
}

/// The value to encode: the bound variable when the entry has a type, else `default`.
macro_rules! bound_or {
    ($default:expr;) => {
        $default
    };
    ($default:expr; $bound:ident $type:ty) => {
        $bound
    };
}

/// Expands the table: see the module docs. Each entry is
/// `Name "wire.name" (Params) -> Result, flag;` with the params, the result and the flag
/// optional (no params: [`NoParams`], a unit variant of `Request`; no result: nil, a unit
/// variant of `Response`).
macro_rules! methods {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $wire:literal $(($params:ty))? $(-> $result:ty)? $(, $flag:ident)?;
    )*) => {
        /// Every method the daemon answers.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Method {
            $( $(#[doc = $doc])* $name, )*
        }

        /// How many methods there are.
        const COUNT: usize = [$($wire),*].len();

        impl Method {
            /// Every method, in the order of the protocol docs.
            pub const ALL: [Method; COUNT] = [$(Method::$name),*];

            /// The name on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Method::$name => $wire, )*
                }
            }

            /// The method with this wire name, if this version knows it.
            pub fn from_name(name: &str) -> Option<Method> {
                match name {
                    $( $wire => Some(Method::$name), )*
                    _ => None,
                }
            }

            /// Whether the daemon answers it only once the processes it stops have ended,
            /// which their kill timeouts bound: clients should not time it out sooner.
            pub const fn waits_for_stops(self) -> bool {
                match self {
                    $( Method::$name => waits!($($flag)?), )*
                }
            }
        }

        /// One zero-sized type per method, each implementing [`Call`]: what generic
        /// clients are called with (`client.call::<methods::Start>(params)`).
        pub mod methods {
            #[allow(unused_imports)]
            use super::*;
            $(
                $(#[doc = $doc])*
                #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
                pub struct $name;

                impl Call for $name {
                    const METHOD: Method = Method::$name;
                    type Params = params_type!($($params)?);
                    type Result = result_type!($($result)?);
                }
            )*
        }

        /// A method with its typed params: what a client asks, as the daemon decodes it
        /// (see [`Request::decode`]).
        // A request is decoded once and moved to its handler, never kept in bulk: boxing
        // the start params would cost an allocation for nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Request {
            $( $(#[doc = $doc])* $name $(($params))?, )*
        }

        impl Request {
            /// The method this request calls.
            pub fn method(&self) -> Method {
                match self {
                    $( Request::$name { .. } => Method::$name, )*
                }
            }

            /// Decodes the params of `method` straight into their typed form. A method
            /// without params skips whatever map came, without building it.
            pub(crate) fn decode_fields(
                method: Method,
                params: rpc::Params<'_>,
            ) -> Result<Request, Error> {
                Ok(match method {
                    $( Method::$name => Request::$name $((params.decode::<$params>()?))?, )*
                })
            }

            /// Encodes this request as a frame payload with the given msgid.
            pub fn encode(&self, msgid: u32) -> Result<Vec<u8>, Error> {
                let method = self.method().as_str();
                match self {
                    $(
                        Request::$name $((bind!(params $params)))? => rpc::encode_request(
                            msgid,
                            method,
                            bound_or!(&NoParams {}; $(params $params)?),
                        ),
                    )*
                }
            }
        }

        /// A typed result: what the daemon answers, one variant per method.
        // One lives per request, briefly; boxing the large variant would only add an
        // allocation.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        #[non_exhaustive]
        pub enum Response {
            $( $(#[doc = $doc])* $name $(($result))?, )*
        }

        impl Response {
            /// The method this answers.
            pub fn method(&self) -> Method {
                match self {
                    $( Response::$name { .. } => Method::$name, )*
                }
            }

            /// Decodes a response payload to a request for `method` in one pass: its
            /// msgid and the typed result or the daemon's error. `None` when the payload
            /// is not a response. (A client that knows its method at compile time uses
            /// [`rpc::decode_response`] with [`Call::Result`] instead.)
            pub fn decode(
                method: Method,
                payload: &[u8],
            ) -> Option<Result<rpc::Answer<Response>, Error>> {
                match method {
                    $(
                        Method::$name => rpc::decode_response::<result_type!($($result)?)>(payload)
                            .map(|decoded| decoded.map(|(msgid, result)| {
                                #[allow(unused_variables)]
                                let wrap = |value: result_type!($($result)?)| {
                                    Response::$name $((bind!(value $result)))?
                                };
                                (msgid, result.map(wrap))
                            })),
                    )*
                }
            }

            /// Reads the result of `method` from a value tree (for tools that decoded the
            /// message with [`crate::Envelope::decode`]).
            pub fn from_parts(method: Method, result: rmpv::Value) -> Result<Response, Error> {
                Ok(match method {
                    $(
                        Method::$name => Response::$name
                            $((rpc::from_value::<$result>(result)?))?,
                    )*
                })
            }

            /// Encodes this result as the response to `msgid`.
            pub fn encode(&self, msgid: u32) -> Result<Vec<u8>, Error> {
                match self {
                    $(
                        Response::$name $((bind!(value $result)))? => {
                            rpc::encode_response(msgid, Ok(bound_or!(&(); $(value $result)?)))
                        }
                    )*
                }
            }
        }
    };
}

methods! {
    /// `daemon.ping`: is the daemon alive, and which version is it.
    Ping "daemon.ping" -> PingInfo;
    /// `daemon.kill`: stop every process, then shut the daemon down.
    Kill "daemon.kill", waits_for_stops;
    /// `process.start`: start a new process.
    Start "process.start" (StartParams) -> ProcessInfo;
    /// `process.stop`: stop a process (or all), keeping its entry.
    Stop "process.stop" (TargetParams) -> Vec<ProcessInfo>, waits_for_stops;
    /// `process.restart`: stop if running, then start with the same settings.
    Restart "process.restart" (RestartParams) -> Vec<ProcessInfo>, waits_for_stops;
    /// `process.delete`: stop if running, then remove the entry.
    Delete "process.delete" (DeleteParams) -> Vec<ProcessInfo>, waits_for_stops;
    /// `process.list`: every process.
    List "process.list" -> Vec<ProcessInfo>;
    /// `log.read`: the last lines a process wrote, a page at a time.
    LogRead "log.read" (LogReadParams) -> LogLines;
    /// `process.info`: one process in detail (not `all`).
    Info "process.info" (TargetParams) -> ProcessInfo;
    /// `log.follow`: the last lines, then `log.line` notifications as lines arrive; the
    /// connection becomes a stream.
    LogFollow "log.follow" (LogReadParams) -> LogLines;
    /// `log.flush`: empty the log files.
    LogFlush "log.flush" (TargetParams) -> Vec<ProcessInfo>;
    /// `events.subscribe`: `process.event` notifications as processes change; the
    /// connection becomes a stream.
    Subscribe "events.subscribe";
    /// `daemon.save`: write the process list to `dump.msgpack`.
    Save "daemon.save" (SaveParams) -> Saved;
    /// `daemon.resurrect`: start the processes of `dump.msgpack`.
    Resurrect "daemon.resurrect" -> Vec<ProcessInfo>;
    /// `process.scale`: start or stop instances of an app until it has so many.
    Scale "process.scale" (ScaleParams) -> Vec<ProcessInfo>, waits_for_stops;
    /// `process.reload`: replace each process with a new run, one (or `parallel`) at a
    /// time, stopping the old run only once its replacement is ready.
    Reload "process.reload" (ReloadParams) -> Vec<ReloadOutcome>, waits_for_stops;
    /// `process.signal`: send a signal to the process group of each running process of
    /// the target.
    Signal "process.signal" (SignalParams) -> Vec<ProcessInfo>;
    /// `metrics.enable`: serve Prometheus metrics over HTTP on an address (a setting
    /// kept across daemon restarts).
    MetricsEnable "metrics.enable" (MetricsEnableParams) -> MetricsState;
    /// `metrics.disable`: stop serving the metrics (and forget the setting).
    MetricsDisable "metrics.disable" -> MetricsState;
    /// `metrics.status`: the metrics setting and where they are served.
    MetricsStatus "metrics.status" -> MetricsState;
    /// `metrics.scrape`: the text `GET /metrics` answers, over the socket.
    Metrics "metrics.scrape" -> MetricsText;
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for method in Method::ALL {
            assert_eq!(Method::from_name(method.as_str()), Some(method));
        }
        assert_eq!(Method::from_name("process.explode"), None);
    }

    #[test]
    fn the_calls_carry_their_method() {
        assert_eq!(methods::Start::NAME, "process.start");
        assert_eq!(<methods::Kill as Call>::METHOD, Method::Kill);
        assert!(Method::Stop.waits_for_stops() && Method::Kill.waits_for_stops());
        assert!(!Method::List.waits_for_stops());
    }
}
