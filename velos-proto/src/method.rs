//! Method names: the [`Method`] enum and its wire strings.
//!
//! The wire carries the string (`"process.start"`); code matches on the enum. A name this
//! version does not know stays a string, so the daemon can answer `unknown-method`
//! instead of failing to decode.

/// Every method the daemon answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `daemon.ping`: is the daemon alive, and which version is it.
    DaemonPing,
    /// `daemon.kill`: stop every process, then shut the daemon down.
    DaemonKill,
    /// `process.start`: start a new process.
    ProcessStart,
    /// `process.stop`: stop a process (or all), keeping its entry.
    ProcessStop,
    /// `process.restart`: stop if running, then start with the same settings.
    ProcessRestart,
    /// `process.delete`: stop if running, then remove the entry.
    ProcessDelete,
    /// `process.list`: every process.
    ProcessList,
    /// `log.read`: the last lines a process wrote.
    LogRead,
    /// `process.info`: one process in detail.
    ProcessInfo,
    /// `log.follow`: the last lines, then `log.line` notifications as lines arrive.
    LogFollow,
    /// `log.flush`: empty the log files.
    LogFlush,
    /// `events.subscribe`: `process.event` notifications as processes change.
    EventsSubscribe,
    /// `daemon.save`: write the process list to `dump.msgpack`.
    DaemonSave,
    /// `daemon.resurrect`: start the processes of `dump.msgpack`.
    DaemonResurrect,
}

impl Method {
    /// Every method, in the order of the protocol docs.
    pub const ALL: [Method; 14] = [
        Method::DaemonPing,
        Method::DaemonKill,
        Method::ProcessStart,
        Method::ProcessStop,
        Method::ProcessRestart,
        Method::ProcessDelete,
        Method::ProcessList,
        Method::LogRead,
        Method::ProcessInfo,
        Method::LogFollow,
        Method::LogFlush,
        Method::EventsSubscribe,
        Method::DaemonSave,
        Method::DaemonResurrect,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::DaemonPing => "daemon.ping",
            Method::DaemonKill => "daemon.kill",
            Method::ProcessStart => "process.start",
            Method::ProcessStop => "process.stop",
            Method::ProcessRestart => "process.restart",
            Method::ProcessDelete => "process.delete",
            Method::ProcessList => "process.list",
            Method::LogRead => "log.read",
            Method::ProcessInfo => "process.info",
            Method::LogFollow => "log.follow",
            Method::LogFlush => "log.flush",
            Method::EventsSubscribe => "events.subscribe",
            Method::DaemonSave => "daemon.save",
            Method::DaemonResurrect => "daemon.resurrect",
        }
    }

    /// The method with this wire name, if this version knows it.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == name)
    }
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
}
