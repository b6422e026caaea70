//! Signal names: `SIGTERM` for the number in an exit or an event.
//!
//! Numbers differ between Linux and macOS, and the daemon and its clients always share
//! one machine (a Unix socket), so names come from this platform's numbers.

use rustix::process::Signal;

/// Signals by their names on this platform.
const SIGNAL_NAMES: &[(Signal, &str)] = &[
    (Signal::HUP, "SIGHUP"),
    (Signal::INT, "SIGINT"),
    (Signal::QUIT, "SIGQUIT"),
    (Signal::ILL, "SIGILL"),
    (Signal::TRAP, "SIGTRAP"),
    (Signal::ABORT, "SIGABRT"),
    (Signal::BUS, "SIGBUS"),
    (Signal::FPE, "SIGFPE"),
    (Signal::KILL, "SIGKILL"),
    (Signal::USR1, "SIGUSR1"),
    (Signal::SEGV, "SIGSEGV"),
    (Signal::USR2, "SIGUSR2"),
    (Signal::PIPE, "SIGPIPE"),
    (Signal::ALARM, "SIGALRM"),
    (Signal::TERM, "SIGTERM"),
    (Signal::CHILD, "SIGCHLD"),
    (Signal::CONT, "SIGCONT"),
    (Signal::STOP, "SIGSTOP"),
    (Signal::TSTP, "SIGTSTP"),
    (Signal::TTIN, "SIGTTIN"),
    (Signal::TTOU, "SIGTTOU"),
    (Signal::URG, "SIGURG"),
    (Signal::XCPU, "SIGXCPU"),
    (Signal::XFSZ, "SIGXFSZ"),
    (Signal::VTALARM, "SIGVTALRM"),
    (Signal::PROF, "SIGPROF"),
    (Signal::WINCH, "SIGWINCH"),
    (Signal::IO, "SIGIO"),
    (Signal::SYS, "SIGSYS"),
];

/// The name of signal `number` on this platform (`SIGTERM` for 15 on Linux), or `None`
/// for a number without a name (real-time signals).
///
/// # Examples
/// ```
/// assert_eq!(velos_proto::signal_name(9), Some("SIGKILL"));
/// assert_eq!(velos_proto::signal_name(200), None);
/// ```
pub fn signal_name(number: i32) -> Option<&'static str> {
    SIGNAL_NAMES
        .iter()
        .find(|(known, _)| known.as_raw() == number)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_signals_have_their_names() {
        assert_eq!(signal_name(Signal::TERM.as_raw()), Some("SIGTERM"));
        assert_eq!(signal_name(Signal::KILL.as_raw()), Some("SIGKILL"));
        assert_eq!(signal_name(0), None);
        assert_eq!(signal_name(-1), None);
    }
}
