//! End-to-end tests: the real `velos` and `velosd` binaries, built from this tree by the
//! harness, each test in its own temporary `VELOS_HOME`. What they assert is
//! `CONTRACT.md`: commands, exit codes, statuses, files.

// bins(), TestHome (a home per test, the CLI runner, cleanup), wait_until.
mod harness;

// The daemon is started on demand, stale files are replaced, eight CLIs end with one daemon,
// `velos kill` leaves nothing behind.
mod autostart;

// start, list, stop, restart, delete; `all`; ids; names; arguments; errors and statuses.
mod lifecycle;

// `velos logs`: name prefixes, `-n`, `--raw`, the log files and their exact bytes.
mod logs;

// The example node app serves HTTP under velos and its request lines show in `velos logs`.
mod node_app;

// Stop's SIGTERM, the kill timeout's SIGKILL, process groups, parallel stops.
mod signals;
