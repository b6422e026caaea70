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

/// The signal `text` names, as its number on this platform: a name with or without its
/// `SIG` prefix, in any case (`SIGUSR2`, `USR2`, `usr2`), or the number of a named signal
/// (`12`). The error is one line for the user.
///
/// # Examples
/// ```
/// assert_eq!(velos_proto::parse_signal("SIGINT"), Ok(2));
/// assert_eq!(velos_proto::parse_signal("int"), Ok(2));
/// assert_eq!(velos_proto::parse_signal("9"), Ok(9));
/// assert!(velos_proto::parse_signal("SIGNOPE").is_err());
/// ```
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let trimmed = text.trim();
    let found = match trimmed.parse::<i32>() {
        Ok(number) => signal_name(number).map(|_| number),
        Err(_) => {
            let upper = trimmed.to_ascii_uppercase();
            let name = upper.strip_prefix("SIG").unwrap_or(&upper);
            SIGNAL_NAMES
                .iter()
                .find(|(_, known)| known[3..] == *name)
                .map(|(signal, _)| signal.as_raw())
        }
    };
    found.ok_or_else(|| {
        format!(
            "'{}' is not a signal: use a name such as SIGINT, SIGUSR2 or HUP, or its number (see 'kill -l')",
            crate::echo(text)
        )
    })
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

    #[test]
    fn signals_parse_by_name_short_name_or_number() {
        let usr2 = Signal::USR2.as_raw();
        for text in ["SIGUSR2", "USR2", "usr2", "SigUsr2", " USR2 "] {
            assert_eq!(parse_signal(text), Ok(usr2), "{text}");
        }
        assert_eq!(parse_signal(&usr2.to_string()), Ok(usr2));
        assert_eq!(parse_signal("SIGKILL"), Ok(Signal::KILL.as_raw()));
        for bad in ["", "SIG", "NOPE", "0", "-1", "999", "SIGUSR3"] {
            let error = parse_signal(bad).unwrap_err();
            assert!(error.contains("is not a signal"), "{bad}: {error}");
        }
    }
}
