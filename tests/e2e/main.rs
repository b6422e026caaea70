//! End-to-end tests: the real `velos` and `velosd` binaries, built from this tree by the
//! harness, each test in its own temporary `VELOS_HOME`. What they assert is what the
//! README promises (commands, statuses, exit codes, files, the Reliability list) and
//! `docs/protocol.md` (the socket protocol).

// bins(), TestHome (a home per test, the CLI runner, cleanup), wait_until.
mod harness;

// Crash loops: restarts with a doubling backoff, `waiting`, errored after --max-restarts with
// the reason; --min-uptime resets the backoff; stop and delete cancel a pending restart.
mod autorestart;

// A daemon of another build than the CLI's velosd (started before a rebuild): one warning line
// with the remedy (save, kill, resurrect), silent again after it.
mod build_skew;

// The daemon is started on demand, stale files are replaced, eight CLIs end with one daemon,
// `velos kill` leaves nothing behind.
mod autostart;

// Answers over the 16 MiB frame limit (`stop all`, `list` of huge arguments) are one error line
// after the work is done; starts of more than 1 MiB of arguments and environment are refused.
mod big_answers;

// Open-files limits: the daemon raises its soft limit (and says the room in `velos ping`);
// children start with the soft limit the daemon was started with, not its raised one.
#[cfg(target_os = "linux")]
mod child_limits;

// Bad input (script, interpreter, name, id, duration): one error line, non-zero, nothing changed.
mod bad_input;

// `velos start|stop|restart|delete velos.toml`: every app, settings applied, names skipped,
// errors naming the line and field.
mod config;

// A config file edited after its start: `restart`/`reload` of the file apply its arguments and
// instances (scaled up and down), start the apps it gained, and say what changed; --only and
// --env NAME on stop/restart/reload/delete of a file.
mod file_changes;

// The release daemon's resident memory: under 2 MiB idle, 4 MiB with 100 processes (run on
// the binaries scripts/build makes: VELOS_TEST_BINS=target/bin).
#[cfg(target_os = "linux")]
mod footprint;

// Log file deleted or unwritable, socket deleted, daemon SIGKILLed, stale pid; output at exit.
mod faults;

// `velos logs --follow` (one or all, --timestamps, ends with the daemon); the SDK's
// follow_logs (gaps included) and events streams.
mod follow;

// Bursts of 1k-100k lines under `logs -f` and follow_logs: whole, or a gap at once then the
// newest; slow readers; readers that never read (bounded daemon memory, others served).
mod follow_burst;

// Every `--help` ends with an example; `velos completions bash|zsh|fish`.
mod help;

// The home is never someone else's: root refuses another user's home or files, planted links
// and FIFOs are refused, a daemon of another uid gets nothing, a too-long socket path is named.
mod home_safety;

// Hostile but legal frames (16 MiB of nested values, 60,000 arguments, idle connections after
// large frames): memory back where it was; other clients and log pipes never stalled.
mod hostile;

// `velos info`/`describe` text and --json, CPU and memory in `list`, `start --cwd --env`,
// `restart --update-env`.
mod info;
// Instances: `start -i N` (`name:K`, VELOS_INSTANCE, NODE_APP_INSTANCE, --increment-var, own
// log files), `velos scale N|+N|-N` (lowest free number, highest removed with SIGTERM).
mod instances;

// Ids never wrap: after 4294967295 the lowest free one, never one in use.
mod ids;

// start, list, stop, restart, delete; `all`; ids; names; arguments; errors and statuses.
mod lifecycle;

// `--listen`: sockets held by the daemon, handed over as fd 3 with LISTEN_PID; restarts refuse
// no connection; a failed bind changes nothing; resurrected on the same address; the examples.
#[cfg(target_os = "linux")]
mod listen;

// `velos metrics`: /metrics in the strict text format (and promtool's check), matching `list
// --json`; restarts by reason; /readyz while starting; secrets never shown; hostile HTTP
// clients; a port in use; the setting across daemon restarts; disable closes the port.
mod metrics;

// `velos monit` under tmux: shows the processes, restarts, reloads, stops and starts the selected one,
// filters, full-screen logs, gives the terminal back on `q` and Ctrl-C, stays under 1% of a
// core when idle; refuses without a terminal.
mod monit;

// Numeric settings outside their range are refused (flags, config file, the daemon).
mod limits;

// `--max-memory-restart`: the whole tree over the limit for the window restarts it once, with
// the tree's figure in the reason; a shorter spike does not; a bare number is refused.
#[cfg(target_os = "linux")]
mod memory_limit;

// 100 SDK clients at once all get correct answers; the daemon's fd count returns to baseline.
mod load;

// `list --json` written from the daemon's MessagePack is byte for byte what serde_json writes
// for the decoded list, awkward strings included.
mod list_json;

// `velos logs`: name prefixes, `-n`, `--raw`, the log files and their exact bytes; rotation
// without a lost line, reading across rotated files; `velos flush`.
mod logs;

// `velos logs --grep/--since/--until/--err/--out/--json` over the lines in memory and in the
// files; lines only the files hold carry no time.
mod log_search;

// `velos logs -n` beyond one answer: paged, every line whole (400,000-line log, one 48 MiB
// line), the daemon's peak RSS bounded by the page.
mod logs_paging;

// The example node app serves HTTP under velos and its request lines show in `velos logs`.
mod node_app;

// Exit codes follow outcomes: restart, resurrect and config starts that leave a process
// errored exit non-zero, naming it; what worked is still reported.
mod outcomes;

// No orphans, no zombies: grandchildren and double-forked descendants end; orphans are reaped.
mod orphans;

// One daemon per home (velos.pid removed, socket renamed over); the first command after a
// SIGKILLed daemon recovers and says so once; `velos kill` racing other commands.
mod one_daemon;

// Readiness: --ready notify|message|log:REGEX|http:URL, `starting`, start waits for ready or
// fails with the reason and the last log lines after --ready-timeout.
mod readiness;
// velos reload: zero downtime under a client loop, a broken version keeps the old run.
mod reload;

// Commands as PM2 users type them: `npm -- start`, programs on PATH, command strings split
// into words, --node-args, unbuffered Python.
mod pm2_commands;

// PM2's files: ecosystem .config.js/.json/.yaml started, stopped, deleted (--env NAME, --only),
// imported into velos.toml (golden files), dump.pm2 imported; unsupported keys in one warning.
mod pm2_files;

// A SIGKILLed daemon's list back with `velosd --resurrect`; save, kill, resurrect; startup.
mod persistence;

// A prompt without a newline: shown by `logs` and `logs -f` once the stream is quiet, then
// completed in place.
mod prompts;

// Raw-socket abuse (bad frames, half frames, unread answers): answered, closed, others served.
mod protocol;

// No HOME and a uid without a passwd entry: every binary says to set VELOS_HOME, no signal.
mod no_home;

// Private modes, other uids refused, names kept inside logs/, arguments never through a shell.
mod security;

// The SDK as the CLI: StartParams::new takes the caller's directory, environment and a
// relative script; events name their signal.
mod sdk;

// The process tree: wrapped programs keep their graceful stop, leftovers get SIGTERM before
// SIGKILL, self-daemonizing programs are reported.
mod tree;

// 2000 processes: `stop all` within a second, starts as fast with a full table.
mod scale;

// Spawn failures name their cause (removed cwd, CRLF #!, missing interpreter); a failed
// spawn during an automatic restart is retried with the backoff.
mod spawn;

// What a start costs the daemon: no copy of its memory (page faults per start).
#[cfg(target_os = "linux")]
mod start_cost;

// Everyday views: `list` fits the width, config-file names refused, `delete --logs`,
// `flush` of a deleted process's files.
mod views;

// Stop's SIGTERM, the kill timeout's SIGKILL, process groups, parallel stops.
mod signals;

// PM2's signal habits: --kill-signal is what the app gets, `stop` says when it used SIGKILL,
// `velos signal SIG target` reaches running apps (instances, `all`) and refuses stopped ones.
mod stop_signal;

// --watch: one restart per change or burst after the quiet delay, ignored paths, an app that
// crashes on start waits for the next change, an idle tree of 20,000 files costs no CPU.
#[cfg(target_os = "linux")]
mod watch;

// `velos logs` on a real pty: control characters escaped unless --raw; names lined up.
mod terminal;

// `--restart always|on-failure|never` and `--stop-exit-codes`: which exits are restarted.
mod restart_policy;

// `--cron-restart`: a schedule with seconds restarts the app (counted as cron) within ~3 s;
// after `stop` it does not; a schedule that is not one is refused and nothing changes.
mod cron;

// Restart triggers: restarts counted by reason (crash, manual, cron, ...) with the latest one
// and its cause in `info`.
mod triggers;

// `velos runtime` / `velos-runtime`, a container's main process: prefixed output, exit codes,
// SIGTERM to every app, `velos list` from another shell, PID 1 reaping orphans (unshare).
mod runtime;

// `start --time`: stamped lines in the files, their times read back by `logs --timestamps`,
// `--since` and `--json` after a daemon restart; followers and the ring never show the stamp.
mod time;

// Under a service manager: READY=1 on $NOTIFY_SOCKET once the socket answers, WATCHDOG=1 for
// our own pid only, and apps never inherit either.
#[cfg(target_os = "linux")]
mod service_ready;

// Signals to the daemon itself: SIGHUP reopens log files, SIGUSR1/2 and SIGPIPE ignored,
// SIGQUIT a graceful shutdown; each handled one logged in velosd.log.
mod daemon_signals;

// The home on a full 1 MiB tmpfs (root only): the daemon serves, obeys SIGTERM, reports a
// failed save of its list in daemon.ping and retries it; a busy writer is never held up.
mod full_disk;

// The daemon's own life: a panicking supervisor ends it (and the next command starts a new
// one), no internal variable in a child's environment.
mod daemon_life;

// state.msgpack and dump.msgpack fsynced before and after their rename (strace); a corrupt
// state.msgpack kept aside.
mod state_file;

// A disk made slow (a FUSE filesystem under logs/, root only): `list` answers at once while a
// collector waits on a log write.
#[cfg(target_os = "linux")]
mod slow_disk;
