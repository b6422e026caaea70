//! Why a request failed, and the wire code for each failure.
//!
//! Every message is one line for the person at the CLI: what went wrong and what to do
//! next. What the client sent (names, paths) is repeated through `velos_proto::echo`, at
//! most 80 characters of it. [`Error::code`] maps each failure to the [`ErrorCode`] clients match on.

use velos_proto::home::{NameError, ProcessNameError};
use velos_proto::{ErrorCode, RpcError, Target, echo};

impl From<ProcessNameError> for Error {
    fn from(err: ProcessNameError) -> Error {
        match err {
            ProcessNameError::Given(err) => Error::InvalidName(err),
            default => Error::BadDefaultName(default),
        }
    }
}

/// A request the daemon could not carry out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No process matches the target.
    #[error("{}", not_found_message(.0))]
    NotFound(Target),
    /// The name is taken.
    #[error("a process named '{0}' already exists (choose another --name, or 'velos restart {0}')")]
    AlreadyExists(String),
    /// The name breaks the rules.
    #[error("{0}")]
    InvalidName(#[from] NameError),
    /// The script's file stem is not a valid name, and no name was given.
    #[error("{0}; pass --name")]
    BadDefaultName(ProcessNameError),
    /// The script path does not name a file.
    #[error("script '{}' not found", echo(.0))]
    ScriptNotFound(String),
    /// The script path is relative; the daemon's working directory means nothing to the user.
    #[error("script '{}' is not an absolute path", echo(.0))]
    RelativeScript(String),
    /// velos cannot tell how to run the script.
    #[error(
        "cannot tell how to run '{}': it has no #! line, is not executable, and its extension is not .js, .mjs, .cjs, .py, .sh or .rb; pass --interpreter",
        echo(.0)
    )]
    UnknownInterpreter(String),
    /// New settings for a restart whose target names several apps.
    #[error("new settings restart one app, and '{}' names several", echo(.0))]
    SettingsForOne(String),
    /// New settings for a restart that name another process.
    #[error("the new settings are for '{}', not for '{}'", echo(.given), echo(.process))]
    SettingsForAnother {
        /// The process restarted.
        process: String,
        /// The name the settings give.
        given: String,
    },
    /// Interpreter arguments for a program that runs without an interpreter.
    #[error(
        "'{}' runs directly (it is executable and has no #! line), so there is no interpreter to pass --interpreter-args to; pass --interpreter as well",
        echo(.0)
    )]
    NoInterpreterForArgs(String),
    /// The working directory does not exist.
    #[error("working directory '{}' does not exist", echo(.0))]
    BadCwd(String),
    /// exec failed.
    #[error("could not run '{}': {source}{}", echo(.program), spawn_hint(.source))]
    Spawn {
        /// What was executed.
        program: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The working directory was removed after the process was added.
    #[error(
        "working directory {} no longer exists; create it again, or delete the process and start it with another --cwd",
        echo(.0)
    )]
    CwdGone(String),
    /// The script's `#!` line ends with a carriage return, which the kernel takes as part
    /// of the interpreter's name.
    #[error(
        "could not run '{}': bad interpreter '{}' (CRLF line ends?); convert the file to LF line ends (dos2unix)",
        echo(.script),
        echo(&.interpreter.escape_debug().to_string())
    )]
    CrlfShebang {
        /// The script.
        script: String,
        /// The interpreter as the `#!` line names it, carriage return included.
        interpreter: String,
    },
    /// The script's `#!` line names an interpreter that does not exist.
    #[error(
        "could not run '{}': interpreter '{}' named by the #! line not found; install it or correct the #! line",
        echo(.script),
        echo(.interpreter)
    )]
    MissingInterpreter {
        /// The script.
        script: String,
        /// The interpreter the `#!` line names.
        interpreter: String,
    },
    /// New work refused during shutdown.
    #[error("the daemon is shutting down; retry in a moment")]
    ShuttingDown,
    /// A method that takes one process was given `all`.
    #[error("{0} takes one process, not 'all'")]
    NeedsOne(&'static str),
    /// A stream method sent as a plain request (the server sets streams up itself).
    #[error("{0} cannot be answered here")]
    NotHere(&'static str),
    /// `velos resurrect` with no saved list.
    #[error("nothing saved yet: run 'velos save' first")]
    NothingSaved,
    /// `velos save` of an empty list over a dump that holds processes, without `force`.
    #[error(
        "not saving an empty list over {path}, which holds {saved} process(es): bring them back with 'velos resurrect', or save the empty list with 'velos save --force'"
    )]
    WouldEraseDump {
        /// The dump file.
        path: String,
        /// How many processes it holds.
        saved: usize,
    },
    /// A numeric setting outside its allowed range.
    #[error("{0}")]
    OutOfRange(#[from] velos_proto::limits::OutOfRange),
    /// A `--listen` address that cannot be read.
    #[error("bad listen address '{}': {reason}", echo(.address))]
    BadListenAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More `--listen` addresses than one app may have.
    #[error(
        "{0} listen addresses; one app may listen on at most {max}",
        max = crate::listen::MAX_LISTENERS
    )]
    TooManyListeners(usize),
    /// Binding or listening on an address failed.
    #[error("cannot listen on {}: {}", echo(.address), listen_failure(.source))]
    Listen {
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// A reload of the app is under way.
    #[error("a reload of '{0}' is in progress; wait for it to finish, then try again")]
    ReloadInProgress(String),
    /// A `ready` value that is not a mode, or a `log:` mode whose regex does not parse.
    #[error("{0}")]
    BadReady(String),
    /// `--increment-var` names a variable that is not set, or not a number.
    #[error("{0}")]
    BadIncrementVar(String),
    /// `--instance-var` is not a variable name.
    #[error(
        "--instance-var '{}' is not a variable name: use letters, digits and _",
        echo(.0)
    )]
    BadInstanceVar(String),
    /// `kill_signal` (or the signal of `process.signal`) names no signal.
    #[error("{0}")]
    BadSignal(String),
    /// `process.signal` to a target none of whose processes runs.
    #[error("{}", not_running_message(.target, .only.as_ref()))]
    NotRunning {
        /// The target.
        target: Target,
        /// The one process it names (name, id, status), when it names one.
        only: Option<(String, u32, velos_proto::ProcessStatus)>,
    },
    /// `cron_restart` is not a schedule.
    #[error("{0}")]
    BadCron(String),
    /// `restart` is a mode this daemon does not know.
    #[error("unknown restart mode: use always, on-failure or never")]
    BadRestartMode,
    /// A `watch_ignore` glob that cannot be used.
    #[error(transparent)]
    BadWatchIgnore(#[from] velos_proto::watch::BadGlob),
    /// `process.scale` with neither or both of `to` and `by`.
    #[error("process.scale takes one of 'to' (a count) or 'by' (a change)")]
    ScaleCount,
    /// Scaling would leave an app without instances.
    #[error(
        "scaling '{}' to {wanted} would leave no instance: remove it with 'velos delete {}'",
        echo(.name),
        echo(.name)
    )]
    ScaleToNone {
        /// The app.
        name: String,
        /// The count it would have.
        wanted: i64,
    },
    /// Reading or writing a saved list failed.
    #[error("{0}")]
    Io(String),
}

impl Error {
    /// The code sent on the wire.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::AlreadyExists(_) => ErrorCode::AlreadyExists,
            Error::InvalidName(_) | Error::BadDefaultName(_) => ErrorCode::InvalidName,
            Error::ScriptNotFound(_)
            | Error::RelativeScript(_)
            | Error::UnknownInterpreter(_)
            | Error::NoInterpreterForArgs(_)
            | Error::SettingsForOne(_)
            | Error::SettingsForAnother { .. }
            | Error::BadCwd(_) => ErrorCode::InvalidScript,
            Error::Spawn { .. }
            | Error::CwdGone(_)
            | Error::CrlfShebang { .. }
            | Error::MissingInterpreter { .. } => ErrorCode::SpawnFailed,
            Error::ShuttingDown => ErrorCode::ShuttingDown,
            Error::NeedsOne(_) | Error::NotHere(_) => ErrorCode::InvalidParams,
            Error::NothingSaved => ErrorCode::NotFound,
            Error::WouldEraseDump { .. }
            | Error::OutOfRange(_)
            | Error::BadReady(_)
            | Error::BadIncrementVar(_)
            | Error::BadInstanceVar(_)
            | Error::BadSignal(_)
            | Error::NotRunning { .. }
            | Error::BadRestartMode
            | Error::BadCron(_)
            | Error::BadWatchIgnore(_)
            | Error::ScaleCount
            | Error::ScaleToNone { .. }
            | Error::ReloadInProgress(_) => ErrorCode::InvalidParams,
            Error::Io(_) => ErrorCode::Internal,
            Error::BadListenAddress { .. } | Error::TooManyListeners(_) => ErrorCode::InvalidParams,
            Error::Listen { .. } => ErrorCode::SpawnFailed,
        }
    }
}

impl From<Error> for RpcError {
    fn from(error: Error) -> RpcError {
        RpcError::new(error.code(), error.to_string())
    }
}

fn not_found_message(target: &Target) -> String {
    match target {
        Target::Id(id) => format!("no process with id {id} (see 'velos list')"),
        Target::Name(name) => format!("no process named '{}' (see 'velos list')", echo(name)),
        Target::Instance { name, instance } => format!(
            "'{}' has no instance {instance} (see 'velos list')",
            echo(name)
        ),
        Target::All => "no processes (see 'velos list')".to_owned(),
    }
}

fn not_running_message(
    target: &Target,
    only: Option<&(String, u32, velos_proto::ProcessStatus)>,
) -> String {
    match (target, only) {
        (_, Some((name, id, status))) => format!(
            "'{}' (id {id}) is {status}, not running: no signal sent (start it with 'velos restart {}')",
            echo(name),
            echo(name)
        ),
        (Target::All, None) => {
            "no process is running: no signal sent (see 'velos list')".to_owned()
        }
        (target, None) => format!(
            "no process of '{}' is running: no signal sent (see 'velos list')",
            echo(&target.to_string())
        ),
    }
}

/// Why a bind failed, and what to do about it.
fn listen_failure(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "address already in use (another program or velos \
            app listens there); choose another address, or stop that program"
            .to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied (ports below 1024 need \
            root or CAP_NET_BIND_SERVICE; a unix socket needs a writable directory)"
            .to_owned(),
        std::io::ErrorKind::AddrNotAvailable => {
            "no interface of this machine has that address".to_owned()
        }
        _ => error.to_string(),
    }
}

fn spawn_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::NotFound => "; is it installed and on PATH?",
        std::io::ErrorKind::PermissionDenied => "; is it executable?",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_with_a_next_step() {
        let errors = [
            Error::NotFound(Target::Name("api".into())),
            Error::AlreadyExists("api".into()),
            Error::UnknownInterpreter("/x/data.bin".into()),
            Error::Spawn {
                program: "node".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            },
            Error::CwdGone("/tmp/d".into()),
            Error::CrlfShebang {
                script: "/x/run".into(),
                interpreter: "/bin/bash\r".into(),
            },
            Error::MissingInterpreter {
                script: "/x/run".into(),
                interpreter: "/nonexistent/interp".into(),
            },
        ];
        for error in errors {
            let message = error.to_string();
            assert!(!message.contains('\n'), "{message}");
            assert!(!message.ends_with('.'), "{message}");
        }
        assert_eq!(
            Error::NotFound(Target::Name("api".into())).to_string(),
            "no process named 'api' (see 'velos list')"
        );
        let long = "a".repeat(100_000);
        let message = Error::NotFound(Target::Name(long.clone())).to_string();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains("…(100000 bytes)"), "{message}");
        assert!(Error::ScriptNotFound(long).to_string().len() < 200);
        let crlf = Error::CrlfShebang {
            script: "/x/run".into(),
            interpreter: "/bin/bash\r".into(),
        };
        assert!(
            crlf.to_string()
                .contains(r"bad interpreter '/bin/bash\r' (CRLF line ends?)"),
            "{crlf}"
        );
    }
}
