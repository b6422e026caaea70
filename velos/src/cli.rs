//! The command line as typed values: [`Cli`] and its [`Command`]s, parsed by clap.
//!
//! Each command's doc comment is its help: the first line is the short help, and the
//! long help ends with an example. Values are parsed into types here (durations through
//! humantime, sizes through `parse_size`, each within its range (`bounds`), `--env` into
//! pairs), so a bad value is a usage
//! error before anything happens.
//! Everything that needs I/O (absolute script paths, the environment, the daemon) is
//! done by `commands`.

use std::time::Duration;

use clap::{ArgMatches, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use velos_proto::RestartMode;

use crate::bounds;
use crate::commands::log_filter::TimePoint;
use crate::process_args::ProcessArgs;

/// A process manager: keeps your programs running, and their logs, in the background
///
/// velos starts a small daemon (velosd) on first use, which supervises the programs you
/// start and keeps what they write in $VELOS_HOME/logs (default ~/.velos/logs).
///
/// Example: velos start app.js --name api && velos list
#[derive(Debug, Parser)]
#[command(name = "velos", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Every velos command.
// Parsed once per run: the size of its largest variant (`start`'s flags) costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a script or program as a managed process, or every app of a velos.toml
    ///
    /// The interpreter comes from the script's `#!` line, its executable bit, or its
    /// extension (.js .mjs .cjs: node, .py: python3 with PYTHONUNBUFFERED=1 unless set,
    /// .sh: sh, .rb: ruby). A name without `/` that is not a file here is looked up on PATH
    /// (`velos start npm -- start`), and a string with spaces that is not a file is split
    /// into words as a shell would, without running one (`velos start "python3 -m
    /// http.server 8000"`). The process gets
    /// this shell's environment (plus --env) and working directory (or --cwd), which velos
    /// remembers for restarts. A process that exits unexpectedly is started again after a
    /// backoff (100 ms, doubling up to 15 s) unless --restart never (--no-autorestart);
    /// after --max-restarts quick failures in a row it is left `errored`. An exit with code
    /// 0 or one of --stop-exit-codes is a stop, unless --restart always (as PM2).
    ///
    /// A path ending in `.toml` is a config file: every app in its `[[apps]]` tables is
    /// started (apps whose name is taken are skipped). Keys: name, script, args, cwd, env,
    /// interpreter, interpreter_args, autorestart, restart, stop_exit_codes, cron_restart,
    /// max_restarts,
    /// min_uptime, kill_timeout, max_memory_restart, max_memory_for, max_log_size, log_files,
    /// listen, ready, ready_timeout, instances, instance_var,
    /// increment_var, kill_signal, watch, watch_ignore, watch_delay, time; paths are relative
    /// to the file. A PM2 ecosystem file
    /// (ecosystem.config.js, .cjs, .mjs, .json, .yaml, .yml) is read as PM2 reads it
    /// (JavaScript with node); `--env NAME` puts its env_NAME on top of env, `--only a,b`
    /// starts some of the apps, and keys velos does not support are listed in a warning.
    ///
    /// With -i N, N instances of it run under one name, each its own process (own id,
    /// pid, restarts and log files), addressed as NAME:K; NAME alone means all of them.
    ///
    /// Example: velos start server.js --name api --env PORT=8080 --max-log-size 10MiB -- --verbose
    ///
    /// Example: velos start server.js --name web -i 4 --env PORT=3000 --increment-var PORT
    ///
    /// Example: velos start server.js --watch --watch-ignore uploads
    Start(Box<Deferred<StartArgs>>),

    /// Start or stop instances of an app until it has N, or N more (+N), or N fewer (-N)
    ///
    /// New instances take the lowest free numbers and the settings of the app's
    /// lowest-numbered instance; with a ready mode, scale waits until they are ready, as
    /// start does. Instances that go are the highest-numbered, stopped
    /// gracefully (SIGTERM, then SIGKILL after the kill timeout) and removed from the
    /// list; their log files stay. An app cannot be scaled to 0: `velos delete` removes it.
    ///
    /// Example: velos scale web 4 && velos scale web -1
    Scale {
        /// The app's name.
        name: String,
        /// N (so many instances), +N (add N) or -N (remove N).
        #[arg(allow_hyphen_values = true, value_name = "N|+N|-N")]
        count: String,
    },

    /// Stop a process gracefully: SIGTERM, then SIGKILL after its kill timeout
    ///
    /// The entry stays in the list with status `stopped`, and it is not started again
    /// automatically; `velos restart` starts it again. A config file (velos.toml, or a PM2
    /// ecosystem file) stops its apps.
    ///
    /// Example: velos stop api
    Stop {
        /// A process name, an id, `all`, or a config file (velos.toml, ecosystem.config.js).
        target: String,
        /// With a config file: which apps.
        #[command(flatten)]
        file: FileArgs,
    },

    /// Stop a process (if it runs) and start it again with the same settings
    ///
    /// It keeps its name and id and gets a new pid. A config file restarts its apps with
    /// the file's current settings (its env too with --update-env or --env NAME) and as many
    /// instances as it says (started, or the highest-numbered removed), starts those not in
    /// the list yet, and prints what changed.
    ///
    /// Example: velos restart api --update-env
    ///
    /// Example: velos restart ecosystem.config.js --only api --env production
    Restart {
        /// A process name, an id, `all`, or a config file (velos.toml, ecosystem.config.js).
        target: String,
        /// Start it with this shell's environment instead of the one it was started with.
        #[arg(long)]
        update_env: bool,
        /// With a config file: which apps, and which environment.
        #[command(flatten)]
        file: FileArgs,
    },

    /// Replace each process with a new run, with no downtime
    ///
    /// One at a time (--parallel N at a time): a replacement starts beside the running
    /// process, with the same id, settings and --listen sockets; once it is ready (its
    /// --ready mode, or up for its --min-uptime without one) the old run stops gracefully.
    /// A replacement that exits or is not ready within its --ready-timeout is stopped, the
    /// old run keeps running, and the reload stops there (exit code 1). A config file
    /// (velos.toml, or a PM2 ecosystem file) reloads its apps with the file's current
    /// settings (its env too with --update-env or --env NAME; each process keeps them once
    /// its replacement took over) and as many instances as it says, starts those not in
    /// the list yet, and prints what changed.
    ///
    /// Example: velos reload web --parallel 2 --update-env
    Reload {
        /// A process name (every instance), `name:K` (one instance), an id, `all`, or a
        /// config file (velos.toml, ecosystem.config.js).
        target: String,
        /// How many processes are replaced at a time.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        parallel: u32,
        /// Start the replacements with this shell's environment instead of the one the
        /// process was started with.
        #[arg(long)]
        update_env: bool,
        /// With a config file: which apps, and which environment.
        #[command(flatten)]
        file: FileArgs,
    },

    /// Send a signal to a running process's group: nginx's SIGHUP reload, SIGUSR2, ...
    ///
    /// The signal goes to the process group of each running (or starting) process the
    /// target names: every instance of an app, one instance (NAME:K), an id, or `all`.
    /// Processes that are not running are named on stderr and get nothing; a target none of
    /// whose processes runs is an error, and nothing is sent. A signal that ends the process
    /// counts as its exit (it is started again if its restart policy says so); `velos stop`
    /// is the way to stop one. PM2's `pm2 sendSignal SIG NAME`.
    ///
    /// Example: velos signal SIGHUP nginx
    Signal {
        /// A name (SIGHUP), a name without SIG in any case (hup), or a number (1).
        #[arg(value_name = "SIG", value_parser = bounds::parse_signal)]
        signal: String,
        /// A process name (every instance), `name:K` (one instance), an id, or `all`.
        target: String,
    },

    /// Stop a process if it runs, then remove it from the list
    ///
    /// Its log files stay in $VELOS_HOME/logs (`velos flush NAME` empties them later),
    /// unless --logs removes them too, rotated ones included. A config file deletes its
    /// apps.
    ///
    /// Example: velos delete api --logs
    #[command(visible_alias = "rm", alias = "del")]
    Delete {
        /// A process name, an id, `all`, or a config file (velos.toml, ecosystem.config.js).
        target: String,
        /// Remove its log files too (`<name>-out.log`, `<name>-err.log` and rotated copies).
        #[arg(long)]
        logs: bool,
        /// With a config file: which apps.
        #[command(flatten)]
        file: FileArgs,
    },

    /// Show every process: id, name, pid, status, uptime, restarts, CPU, memory, last exit
    ///
    /// A process waiting to be restarted shows when in the uptime column; why an errored
    /// process was given up on is printed below the table. The table fits $COLUMNS, else
    /// the terminal's width: long names are shortened in the middle, then the exit,
    /// restarts, cpu, pid, mem and uptime columns dropped as needed (a pipe without
    /// COLUMNS gets it whole). With --json, print a JSON
    /// array with one object per process instead, for scripts (keys include id, name, pid,
    /// status, exit_code, restarts, cpu_percent and memory_bytes).
    ///
    /// Example: velos list --json | jq '.[] | select(.status == "errored") | .name'
    #[command(visible_aliases = ["ls", "ps"])]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Print the last lines a process wrote to stdout and stderr, and follow new ones
    ///
    /// Each line is prefixed with the process's name; stderr lines' prefix is red on a
    /// terminal. Without a target, show every process's lines. With --follow, keep
    /// printing new lines as they are written until Ctrl-C or the daemon shuts down.
    ///
    /// To search: --grep REGEX, --since and --until (a duration back or a UTC time), --err
    /// or --out keep only the lines that pass, and -n counts those (the whole log is
    /// searched, rotated files included). --json prints one object per line instead.
    /// With --follow, the filters apply to the last lines and to every new one.
    ///
    /// Example: velos logs api --grep '(?i)timeout|refused' --since 1h -n 100
    Logs(LogsArgs),

    /// Watch every process live in the terminal: status, restarts, CPU, memory, logs
    ///
    /// A dashboard: each process's status, pid, uptime, restarts, CPU and memory with a
    /// one-minute history, and why it last started again; below it the selected process's
    /// CPU and memory over the last minute and its log as it is written. Keys: arrows
    /// select, R restart, r reload (no downtime), s stop, S start (a stopped or errored
    /// process), / filter by name, l logs on the whole screen, q (or Ctrl-C) quit. CPU and
    /// memory are read once a second; everything else arrives as it happens. Needs a
    /// terminal: in scripts, use `velos list --json` or `velos logs -f`.
    ///
    /// Example: velos monit
    Monit,

    /// Prometheus metrics, served by the daemon over HTTP; alone, print them once
    ///
    /// `velos metrics enable` makes the daemon serve GET /metrics (Prometheus text format),
    /// /healthz (200 while the daemon answers) and /readyz (200 when every process with a
    /// --ready mode is ready, else 503 naming those that are not) on 127.0.0.1:9615, or on
    /// --listen ADDR. The setting is kept in $VELOS_HOME/metrics.listen across daemon
    /// restarts until `velos metrics disable`. Without a subcommand, `velos metrics` prints
    /// the same text as GET /metrics, over the socket, whether or not it is enabled.
    ///
    /// Example: velos metrics enable && curl -s http://127.0.0.1:9615/metrics
    Metrics {
        /// What to do [default: print the metrics once].
        #[command(subcommand)]
        action: Option<MetricsAction>,
    },

    /// Show one process in detail: settings, state, last exit, logs, CPU and memory
    ///
    /// Example: velos info api --json
    #[command(visible_alias = "describe")]
    Info {
        /// A process name or an id.
        target: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },

    /// Empty the log files of a process (rotated files included), or of every process
    ///
    /// A name no longer in the list empties the files it left in $VELOS_HOME/logs.
    ///
    /// Example: velos flush api
    Flush {
        /// A process name, an id, or `all` [default: all].
        target: Option<String>,
    },

    /// Save the process list to $VELOS_HOME/dump.msgpack, for `velos resurrect`
    ///
    /// An empty list is not saved over a dump that holds processes (after `velos kill`,
    /// the next command starts an empty daemon): `velos resurrect` brings them back, and
    /// --force saves the empty list anyway. The daemon also keeps the current list in
    /// $VELOS_HOME/state.msgpack on every change, which `velosd --resurrect` (see `velos
    /// startup`) brings back.
    ///
    /// Example: velos save
    Save {
        /// Save even an empty list over a dump that holds processes.
        #[arg(long)]
        force: bool,
    },

    /// Bring back the processes of the last `velos save`: running ones start, stopped ones
    /// come back stopped
    ///
    /// Names already in the list are left alone. When nothing was saved (no dump.msgpack),
    /// the list the daemon last kept (state.msgpack) is brought back instead, and the
    /// command says so. A process that cannot come back (its script is gone, it cannot be
    /// run) is named and the exit is non-zero.
    ///
    /// Example: velos kill && velos resurrect
    Resurrect,

    /// Write the velos.toml equivalent of a PM2 ecosystem file or of PM2's saved list
    ///
    /// Reads ecosystem.config.js (.cjs .mjs, with node), .json, .yaml/.yml as `velos start`
    /// does, or ~/.pm2/dump.pm2 (what `pm2 save` wrote), and writes a velos.toml whose apps
    /// start the same programs with the same settings. PM2 keys velos does not support are
    /// listed (and kept in the file as comments under the app). Paths inside are relative to
    /// the new file's directory when they are below it. An existing file is not overwritten
    /// unless --force; `-o -` writes to stdout.
    ///
    /// Example: velos import ecosystem.config.js --env production -o velos.toml
    Import(ImportArgs),

    /// Print a service definition that starts velos (and your processes) at login or boot
    ///
    /// A systemd user unit on Linux, a launchd agent on macOS, running `velosd --no-daemon
    /// --resurrect` for this VELOS_HOME. Where to put it and how to enable it is printed on
    /// stderr. The systemd unit is Type=notify: velosd sends READY=1 once its socket
    /// answers (and WATCHDOG=1 if you add WatchdogSec=).
    ///
    /// Example: velos startup > ~/.config/systemd/user/velos.service
    Startup {
        /// The service manager [default: systemd on Linux, launchd on macOS].
        #[arg(value_enum)]
        system: Option<InitSystem>,
    },

    /// Run as a container's main process: the daemon in the foreground, the apps, their
    /// output on stdout and stderr (also installed as `velos-runtime`)
    ///
    /// Starts velosd as its child (no log files unless --keep-logs: the lines go to this
    /// process's stdout and stderr, `name | line`, or --raw, or --json), then the apps of a
    /// script or a config file with the same options as `velos start`. As PID 1 it reaps
    /// every orphan; elsewhere it is their child subreaper. `velos list`, `logs`, `reload`
    /// ... from another shell in the container (`docker exec`) reach its daemon through the
    /// same VELOS_HOME (default ~/.velos).
    ///
    /// SIGTERM, SIGINT or SIGHUP stops every app at once, each with its kill signal and
    /// kill timeout, then exits: 0 when every app ended cleanly, 1 when one had failed or
    /// needed SIGKILL (killed with SIGKILL itself, its daemon stops the apps on Linux). When every app has ended by itself (nothing running, nothing waiting to
    /// restart) it exits with the first failed app's code (128 + N for signal N), or 0
    /// when all exited 0; --no-auto-exit keeps it running. A daemon that dies exits 1.
    ///
    /// Example: velos runtime ecosystem.config.js --env production
    ///
    /// Example: velos-runtime server.js -i 2 --listen 3000 --kill-timeout 10s --json
    Runtime(Deferred<RuntimeArgs>),

    /// Print a shell completion script
    ///
    /// Example: velos completions bash > ~/.local/share/bash-completion/completions/velos
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Check that the daemon answers (starting it if needed)
    ///
    /// Example: velos ping
    Ping,

    /// Stop every process gracefully, then shut the daemon down
    ///
    /// Does nothing when no daemon runs. The next command starts a fresh daemon.
    ///
    /// Example: velos kill
    Kill,
}

/// `velos metrics enable|disable|status`
#[derive(Debug, Subcommand)]
pub enum MetricsAction {
    /// Serve the metrics over HTTP (a setting the daemon keeps across restarts)
    ///
    /// Loopback (127.0.0.1:9615) unless --listen names another address; port 0 takes a free
    /// port (`velos metrics status` says which). An address another program holds is
    /// refused with an error, and nothing changes. Enabling again with another address
    /// moves the metrics there.
    ///
    /// Example: velos metrics enable --listen 127.0.0.1:9615
    Enable {
        /// The IP address and port to listen on; anything but loopback lets other machines
        /// read the metrics.
        #[arg(long, value_name = "ADDR", default_value = velos_proto::DEFAULT_METRICS_LISTEN)]
        listen: String,
    },
    /// Stop serving the metrics and forget the setting
    ///
    /// Example: velos metrics disable
    Disable,
    /// Whether the metrics are served, and where
    ///
    /// Example: velos metrics status --json
    Status {
        /// Print JSON ({enabled, listen, address, error}) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Which service manager `velos startup` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InitSystem {
    /// A systemd user unit (Linux).
    Systemd,
    /// A launchd agent plist (macOS).
    Launchd,
}

/// `--only` and `--env NAME` of `stop|restart|reload|delete FILE`, as `start FILE` takes
/// them.
#[derive(Debug, Default, Args)]
pub struct FileArgs {
    /// With a config file: only these apps (repeatable, or `a,b`), as PM2's --only.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub only: Vec<String>,

    /// With a PM2 ecosystem file: its env_NAME on top of env, as PM2's --env NAME; restart
    /// and reload then apply the file's env as --update-env does (stop and delete accept
    /// it and change nothing for it).
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
}

impl FileArgs {
    /// The flags given, by name (to refuse them for a target that is not a file).
    pub fn given(&self) -> Vec<&'static str> {
        let mut given = Vec::new();
        if !self.only.is_empty() {
            given.push("--only");
        }
        if self.env.is_some() {
            given.push("--env");
        }
        given
    }
}

/// Arguments clap adds to their command only when it needs them (that command is parsed,
/// or its help or a completion script is written): `start`'s, which `runtime` holds too,
/// are most of velos's arguments, and building them for every command was a third of the
/// instructions of `velos list`.
#[derive(Debug)]
pub struct Deferred<T>(pub T);

impl<T> std::ops::Deref for Deferred<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Deferred<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Args> Args for Deferred<T> {
    fn augment_args(command: clap::Command) -> clap::Command {
        command.defer(T::augment_args)
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        command.defer(T::augment_args_for_update)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

impl<T: FromArgMatches> FromArgMatches for Deferred<T> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(matches).map(Deferred)
    }

    fn from_arg_matches_mut(matches: &mut ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches_mut(matches).map(Deferred)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(matches)
    }

    fn update_from_arg_matches_mut(&mut self, matches: &mut ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches_mut(matches)
    }
}

// `velos start`. No doc comment: clap would make it the about line of `start` and
// `runtime`, over their own, as these arguments are added after it (see [`Deferred`]).
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The script or program to run (relative to the current directory, or on PATH), or a config file.
    pub script: String,

    /// The process name [default: the script's file stem, `app.js` -> `app`].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// How long `stop` waits after the stop signal before SIGKILL, like `500ms` or `10s`, at most 1h [default: 5s].
    #[arg(long, value_name = "DUR", value_parser = bounds::parse_kill_timeout)]
    pub kill_timeout: Option<Duration>,

    /// The signal that stops it on stop, restart and delete, sent to its process group: a name (SIGINT, INT) or a number [default: SIGTERM].
    ///
    /// SIGKILL follows if it is still running after --kill-timeout.
    ///
    /// Example: velos start server.js --kill-signal SIGINT
    #[arg(long, value_name = "SIG", value_parser = bounds::parse_signal)]
    pub kill_signal: Option<String>,

    /// The program that runs the script, instead of the one velos picks.
    #[arg(long, value_name = "PROG")]
    pub interpreter: Option<String>,

    /// Arguments for the interpreter, before the script, split as a shell splits words, like `--node-args="--max-old-space-size=512"`.
    #[arg(
        long,
        visible_alias = "node-args",
        value_name = "ARGS",
        allow_hyphen_values = true,
        value_parser = parse_words
    )]
    pub interpreter_args: Option<Words>,

    /// The working directory of the process (relative to the current one) [default: the current one].
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<String>,

    /// Set an environment variable for the process, on top of this shell's (repeatable); with a PM2 ecosystem file, `--env NAME` puts its env_NAME on top of env.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<EnvArg>,

    /// With a config file: start only these apps (repeatable, or `a,b`), as PM2's --only.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    pub only: Vec<String>,

    /// Do not start it again when it exits unexpectedly (non-zero, or a signal): --restart never.
    #[arg(long)]
    pub no_autorestart: bool,

    /// Which exits start it again: always (any exit, code 0 too, as PM2 does), on-failure (a non-zero code or a signal nobody sent), never [default: on-failure].
    ///
    /// Example: velos start worker.js --restart always
    #[arg(long, value_name = "MODE", value_parser = parse_restart, conflicts_with = "no_autorestart")]
    pub restart: Option<RestartMode>,

    /// Exit codes that are a clean stop, comma-separated, 0 to 255: not restarted, shown stopped (PM2's stop_exit_codes).
    ///
    /// Example: velos start job.sh --restart always --stop-exit-codes 0,3
    #[arg(
        long,
        value_name = "CODE[,CODE]",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u8)
    )]
    pub stop_exit_codes: Vec<u8>,

    /// Restart it on a schedule, in cron syntax and local time: 5 fields (minute hour day month weekday), or 6 with seconds first (PM2's cron_restart).
    ///
    /// While it is stopped its schedule does nothing. With a ready mode it is reloaded instead, with no downtime.
    ///
    /// Example: velos start app.js --cron-restart "0 3 * * *"
    #[arg(long, value_name = "EXPR")]
    pub cron_restart: Option<String>,

    /// Quick failures in a row after which velos gives up and leaves it errored, 0 to 1000000 [default: 16].
    #[arg(long, value_name = "N", value_parser = bounds::parse_max_restarts)]
    pub max_restarts: Option<u32>,

    /// How long a run must last to count as a success, resetting the backoff, at most 1day [default: 1s].
    #[arg(long, value_name = "DUR", value_parser = bounds::parse_min_uptime)]
    pub min_uptime: Option<Duration>,

    /// Restart it when its whole process tree (the leader and every descendant) stays over SIZE of resident memory for --max-memory-for: like `512M`, `1G`, `200MiB` or `1.5G` (M and G are MiB and GiB; a bare number is refused).
    ///
    /// The tree is sampled every second while it runs; a spike shorter than
    /// --max-memory-for is tolerated. A memory restart counts in `restarts` (by reason in
    /// `velos info`), but not as a crash for the backoff; except that a run over the limit
    /// from its start (the limit is below what the app needs) is a quick failure: after
    /// --max-restarts of them in a row it is left errored, saying so. PM2's
    /// max_memory_restart.
    ///
    /// Example: velos start server.js --max-memory-restart 512M --max-memory-for 10s
    #[arg(long, value_name = "SIZE", value_parser = bounds::parse_memory_limit)]
    pub max_memory_restart: Option<u64>,

    /// How long the tree must stay over --max-memory-restart before the restart, at most 1day [default: 3s].
    #[arg(
        long,
        value_name = "DUR",
        requires = "max_memory_restart",
        value_parser = bounds::parse_memory_window
    )]
    pub max_memory_for: Option<Duration>,

    /// Rotate each log file when it reaches this size, like `10MiB`, `500K` or `1GB`; 1KiB to 1TiB, 0 for never [default: never].
    #[arg(long, value_name = "SIZE", value_parser = bounds::parse_log_size)]
    pub max_log_size: Option<u64>,

    /// How many rotated files to keep per log (`app-out.log.1` is the newest), 0 to 100 [default: 5].
    #[arg(long, value_name = "N", value_parser = bounds::parse_log_files)]
    pub log_files: Option<u32>,

    /// Listen on ADDR and hand the socket to the process (repeatable): PORT, HOST:PORT,
    /// [IPv6]:PORT or unix:PATH; port 0 lets the kernel choose.
    ///
    /// velosd binds it once and holds it while the app exists, so a restart refuses no
    /// connection. The process gets it as descriptor 3 (then 4, …) with systemd's
    /// LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, and PORT when it is the one TCP
    /// address: node `server.listen({fd: 3})`, gunicorn, `uvicorn --fd 3`.
    ///
    /// Example: velos start server.js --listen 127.0.0.1:8080
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<String>,
    /// How it says it is ready: notify (READY=1 to $NOTIFY_SOCKET), message (Node's process.send('ready')), log:REGEX (a matching output line) or http:URL (a 2xx answer) [default: none, running once spawned].
    ///
    /// Until it is ready the process is `starting`, and `velos start` waits (unless
    /// --no-wait): it exits 0 once the process is ready, or non-zero with the reason and
    /// the last lines of its logs when it exits first or is not ready within
    /// --ready-timeout (velos then stops it and leaves it errored).
    ///
    /// Example: velos start server.py --ready 'log:listening on port \d+' --ready-timeout 10s
    #[arg(long, value_name = "MODE", value_parser = bounds::parse_ready)]
    pub ready: Option<String>,

    /// How long it may take to be ready with --ready; not ready by then is a failure, at most 1h [default: 30s].
    #[arg(long, value_name = "DUR", value_parser = bounds::parse_ready_timeout)]
    pub ready_timeout: Option<Duration>,

    /// With --ready: return as soon as it is spawned instead of waiting until it is ready.
    #[arg(long)]
    pub no_wait: bool,
    /// Restart it when a file under PATH changes (repeatable, or `a,b`) [default PATH: its working directory].
    ///
    /// Any creation, write, deletion, rename or attribute change (`touch`) counts; a
    /// burst of them (50 saves, a `git checkout`) gives one restart, --watch-delay after
    /// the last (a reload with --ready). Never counted: .git, .hg, .svn, node_modules,
    /// target, __pycache__, *.log, editor swap and temp files (*.swp *.swx *.swo *~ .#*
    /// 4913 *.tmp) and velos's own home; --watch-ignore adds to them. A watched app that
    /// crashes within --min-uptime of starting is left errored, waiting for the next
    /// change, instead of restarting in a loop; a stopped app is not started by a change.
    /// Relative paths are against --cwd.
    ///
    /// Example: velos start server.js --watch --watch-ignore 'uploads' --watch-delay 1s
    ///
    /// Example: velos start server.js --watch src --watch config.json
    #[arg(
        long,
        value_name = "PATH",
        num_args = 0..=1,
        default_missing_value = ".",
        value_delimiter = ','
    )]
    pub watch: Option<Vec<String>>,

    /// With --watch: changes of paths matching GLOB do not count, on top of the built-in ignores (repeatable).
    ///
    /// A glob without `/` matches any one part of a path (`dist`, `*.gen.js`); one with
    /// `/` matches the path relative to the watched directory (`src/generated/**`), or the
    /// absolute path when it starts with `/`. `*` `?` `[abc]` `{a,b}` and `**` as in a
    /// shell. Unlike PM2's ignore_watch, these add to the built-in ignores.
    ///
    /// Example: velos start app.py --watch --watch-ignore 'uploads' --watch-ignore '*.sqlite'
    #[arg(
        long,
        visible_alias = "ignore-watch",
        value_name = "GLOB",
        value_parser = bounds::parse_watch_ignore
    )]
    pub watch_ignore: Vec<String>,

    /// With --watch: quiet after the last change before the restart, like `1s`, at most 1h [default: 300ms].
    #[arg(long, value_name = "DUR", value_parser = bounds::parse_watch_delay)]
    pub watch_delay: Option<Duration>,

    /// Start N instances under one name (`max`: one per CPU), 1 to 1024 [default: 1]: each
    /// its own process, `NAME:K` (K = 0..N-1), with VELOS_INSTANCE=K and NODE_APP_INSTANCE=K
    /// in its environment.
    #[arg(short = 'i', long, value_name = "N|max", value_parser = bounds::parse_instances)]
    pub instances: Option<u32>,

    /// The variable that also tells each instance its number, instead of NODE_APP_INSTANCE.
    #[arg(long, value_name = "NAME")]
    pub instance_var: Option<String>,

    /// Give instance K this variable's value plus K (with PORT=3000: 3000, 3001, ...).
    #[arg(long, value_name = "VAR")]
    pub increment_var: Option<String>,

    /// Write each line to the log files after the time it arrived (UTC, like
    /// `2026-05-01T12:00:00.123Z `), so `velos logs --timestamps` and --since know it for
    /// lines read back from the files, after a daemon restart too (PM2's --time).
    ///
    /// Example: velos start server.js --time
    #[arg(long)]
    pub time: bool,

    /// Arguments passed to the script, after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

impl StartArgs {
    /// The `--env KEY=VALUE` pairs.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter_map(|env| match env {
                EnvArg::Var(key, value) => Some((key.clone(), value.clone())),
                EnvArg::Name(_) => None,
            })
            .collect()
    }

    /// The `--env NAME` words.
    pub fn env_names(&self) -> Vec<&str> {
        self.env
            .iter()
            .filter_map(|env| match env {
                EnvArg::Name(name) => Some(name.as_str()),
                EnvArg::Var(..) => None,
            })
            .collect()
    }

    /// The process these flags describe, for [`ProcessArgs::resolve`].
    pub fn into_process_args(self) -> ProcessArgs {
        let env = self.env_vars();
        ProcessArgs {
            script: self.script,
            name: self.name,
            args: self.args,
            interpreter: self.interpreter,
            interpreter_args: self
                .interpreter_args
                .map(|words| words.0)
                .unwrap_or_default(),
            cwd: self.cwd,
            script_in_cwd: false,
            env,
            kill_timeout: self.kill_timeout,
            autorestart: self.no_autorestart.then_some(false),
            restart: self.restart,
            stop_exit_codes: self.stop_exit_codes,
            cron_restart: self.cron_restart,
            max_restarts: self.max_restarts,
            min_uptime: self.min_uptime,
            max_memory: self.max_memory_restart,
            max_memory_for: self.max_memory_for,
            max_log_size: self.max_log_size,
            log_files: self.log_files,
            listen: self.listen,
            ready: self.ready,
            ready_timeout: self.ready_timeout,
            instances: self.instances,
            instance_var: self.instance_var,
            increment_var: self.increment_var,
            kill_signal: self.kill_signal,
            watch: self.watch.unwrap_or_default(),
            watch_ignore: self.watch_ignore,
            watch_delay: self.watch_delay,
            time: self.time,
        }
    }

    /// The flags that describe one process, which a config file sets per app instead.
    pub fn per_process_flags(&self) -> Vec<&'static str> {
        let given = [
            (self.name.is_some(), "--name"),
            (self.kill_timeout.is_some(), "--kill-timeout"),
            (self.interpreter.is_some(), "--interpreter"),
            (self.interpreter_args.is_some(), "--interpreter-args"),
            (self.cwd.is_some(), "--cwd"),
            (!self.env_vars().is_empty(), "--env KEY=VALUE"),
            (self.no_autorestart, "--no-autorestart"),
            (self.restart.is_some(), "--restart"),
            (!self.stop_exit_codes.is_empty(), "--stop-exit-codes"),
            (self.cron_restart.is_some(), "--cron-restart"),
            (self.max_restarts.is_some(), "--max-restarts"),
            (self.min_uptime.is_some(), "--min-uptime"),
            (self.max_memory_restart.is_some(), "--max-memory-restart"),
            (self.max_memory_for.is_some(), "--max-memory-for"),
            (self.max_log_size.is_some(), "--max-log-size"),
            (self.log_files.is_some(), "--log-files"),
            (!self.listen.is_empty(), "--listen"),
            (self.ready.is_some(), "--ready"),
            (self.ready_timeout.is_some(), "--ready-timeout"),
            (self.instances.is_some(), "--instances"),
            (self.instance_var.is_some(), "--instance-var"),
            (self.increment_var.is_some(), "--increment-var"),
            (self.kill_signal.is_some(), "--kill-signal"),
            (self.watch.is_some(), "--watch"),
            (!self.watch_ignore.is_empty(), "--watch-ignore"),
            (self.watch_delay.is_some(), "--watch-delay"),
            (self.time, "--time"),
            (!self.args.is_empty(), "-- ARGS"),
        ];
        given
            .into_iter()
            .filter_map(|(given, flag)| given.then_some(flag))
            .collect()
    }
}

// `velos runtime` (no doc comment: see `StartArgs`)
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// What to start, and how: the options of `velos start`.
    #[command(flatten)]
    pub start: Box<StartArgs>,

    /// Write the apps' lines exactly as written, without the `name | ` prefix.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,

    /// Write one JSON object per line: time, name, instance, id, stream, line (as `velos logs --json`).
    #[arg(long)]
    pub json: bool,

    /// Keep running when every app has ended (until SIGTERM, SIGINT or SIGHUP).
    #[arg(long)]
    pub no_auto_exit: bool,

    /// Also write the log files in $VELOS_HOME/logs, as `velos start` does [default: the lines go only to stdout and stderr, and `velos logs` shows the last 1000 a process wrote].
    #[arg(long)]
    pub keep_logs: bool,
}

/// `velos import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The PM2 file: an ecosystem file, or a dump.pm2.
    pub file: String,

    /// Where to write [default: velos.toml]; `-` for stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<String>,

    /// Put the ecosystem file's env_NAME on top of env, as `pm2 start --env NAME` does.
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,

    /// Overwrite the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `velos logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A process name, an id, or `all` [default: all].
    pub target: Option<String>,

    /// How many of the last lines to print.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 15)]
    pub lines: u32,

    /// Print the lines exactly as written: no prefix, no colour.
    #[arg(long)]
    pub raw: bool,

    /// Keep printing new lines as they are written, until Ctrl-C, the daemon stops, or the
    /// process is deleted (a note on stderr, exit 0).
    #[arg(short, long)]
    pub follow: bool,

    /// Start each line with the time the daemon received it (UTC, RFC 3339).
    #[arg(short, long, alias = "timestamp")]
    pub timestamps: bool,

    /// Only lines matching this regular expression; -n counts matching lines, searched
    /// through the whole log (files included). `(?i)` ignores case.
    #[arg(long, value_name = "REGEX", value_parser = parse_regex)]
    pub grep: Option<regex_lite::Regex>,

    /// Only lines received since then: a duration back (`10m`, `1h 30m`) or a UTC time
    /// (`2024-05-01T12:00:00Z`). Lines read back from the log files carry no time (unless
    /// the process was started with --time) and are left out (a note on stderr counts them).
    #[arg(long, value_name = "DUR|TIME", value_parser = TimePoint::parse)]
    pub since: Option<TimePoint>,

    /// Only lines received until then (same forms as --since).
    #[arg(long, value_name = "DUR|TIME", value_parser = TimePoint::parse, conflicts_with = "follow")]
    pub until: Option<TimePoint>,

    /// Only stderr lines.
    #[arg(long, conflicts_with = "out")]
    pub err: bool,

    /// Only stdout lines.
    #[arg(long)]
    pub out: bool,

    /// One JSON object per line, for scripts: time (RFC 3339 UTC, null for a line read
    /// back from a file of a process without --time), name (the app's), instance, id, stream (out or err), line (text,
    /// invalid UTF-8 replaced).
    #[arg(long, conflicts_with_all = ["raw", "timestamps"])]
    pub json: bool,
}

/// Reads `--grep`'s regular expression.
fn parse_regex(text: &str) -> Result<regex_lite::Regex, String> {
    regex_lite::Regex::new(text).map_err(|error| {
        let error = error.to_string().replace('\n', " ");
        format!("not a regular expression: {error}")
    })
}

/// Words of one flag's value, split as a shell splits them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

/// Reads words as a shell splits them (quotes respected, nothing expanded).
/// `--restart MODE`.
fn parse_restart(text: &str) -> Result<RestartMode, String> {
    text.parse()
}

fn parse_words(text: &str) -> Result<Words, String> {
    shlex::split(text)
        .map(Words)
        .ok_or_else(|| format!("a quote is not closed in '{text}'"))
}

/// What `--env` says: a variable, or the name of an ecosystem file's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvArg {
    /// `--env KEY=VALUE`
    Var(String, String),
    /// `--env production`: an ecosystem file's `env_production`.
    Name(String),
}

/// Reads `--env`: `KEY=VALUE` (the key is everything before the first `=`), or a word
/// without `=`, which names an environment of an ecosystem file.
fn parse_env(text: &str) -> Result<EnvArg, String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains('\0') && !value.contains('\0') => {
            Ok(EnvArg::Var(key.to_owned(), value.to_owned()))
        }
        None if !text.is_empty() && !text.contains(|c: char| c.is_whitespace() || c == '\0') => {
            Ok(EnvArg::Name(text.to_owned()))
        }
        _ => Err(format!(
            "expected KEY=VALUE (or, with an ecosystem file, an environment name), got '{text}'"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("velos").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn start_reads_name_duration_and_args_after_the_separator() {
        let cli = parse(&[
            "start",
            "app.js",
            "--name",
            "api",
            "--kill-timeout",
            "1s 500ms",
            "--",
            "--port",
            "3000",
        ])
        .unwrap();
        let Command::Start(start) = cli.command else {
            panic!("not start: {cli:?}");
        };
        assert_eq!(start.script, "app.js");
        assert_eq!(start.name.as_deref(), Some("api"));
        assert_eq!(start.kill_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(start.args, ["--port", "3000"]);
    }

    #[test]
    fn a_bad_duration_is_a_usage_error() {
        let err = parse(&["start", "app.js", "--kill-timeout", "soon"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn pm2_aliases_work() {
        for alias in ["list", "ls", "ps"] {
            assert!(matches!(
                parse(&[alias]).unwrap().command,
                Command::List { json: false }
            ));
        }
        for alias in ["delete", "rm", "del"] {
            assert!(matches!(
                parse(&[alias, "api"]).unwrap().command,
                Command::Delete { .. }
            ));
        }
    }

    #[test]
    fn every_command_has_an_example_at_the_end_of_its_long_help() {
        let cli = Cli::command();
        let mut commands = vec![&cli];
        commands.extend(cli.get_subcommands());
        for command in commands {
            let help = command
                .get_long_about()
                .map(ToString::to_string)
                .unwrap_or_default();
            let last = help.trim_end().lines().last().unwrap_or_default();
            assert!(
                last.starts_with("Example: velos"),
                "`velos {}` long help does not end with an example:\n{help}",
                command.get_name()
            );
        }
    }

    #[test]
    fn start_reads_env_pairs_sizes_and_restart_settings() {
        let cli = parse(&[
            "start",
            "app.js",
            "--cwd",
            "sub",
            "--env",
            "PORT=8080",
            "--env",
            "URL=http://x/?a=b",
            "--env",
            "EMPTY=",
            "--max-restarts",
            "3",
            "--min-uptime",
            "2s",
            "--max-log-size",
            "10MiB",
            "--log-files",
            "2",
        ])
        .unwrap();
        let Command::Start(start) = cli.command else {
            panic!("not start: {cli:?}");
        };
        assert_eq!(start.cwd.as_deref(), Some("sub"));
        assert_eq!(
            start.env_vars(),
            [
                ("PORT".to_owned(), "8080".to_owned()),
                ("URL".to_owned(), "http://x/?a=b".to_owned()),
                ("EMPTY".to_owned(), String::new()),
            ]
        );
        assert_eq!(start.max_restarts, Some(3));
        assert_eq!(start.min_uptime, Some(Duration::from_secs(2)));
        assert_eq!(start.max_log_size, Some(10 << 20));
        assert_eq!(start.log_files, Some(2));
        assert_eq!(
            start.per_process_flags(),
            [
                "--cwd",
                "--env KEY=VALUE",
                "--max-restarts",
                "--min-uptime",
                "--max-log-size",
                "--log-files"
            ]
        );
    }

    #[test]
    fn bad_env_pairs_and_sizes_are_usage_errors() {
        for bad in ["=8080", "", "a b"] {
            let err = parse(&["start", "app.js", "--env", bad]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{bad}");
        }
        let err = parse(&["start", "app.js", "--max-log-size", "lots"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn new_commands_parse() {
        assert!(matches!(
            parse(&["describe", "api", "--json"]).unwrap().command,
            Command::Info { json: true, .. }
        ));
        assert!(matches!(
            parse(&["flush"]).unwrap().command,
            Command::Flush { target: None }
        ));
        assert!(matches!(
            parse(&["startup", "launchd"]).unwrap().command,
            Command::Startup {
                system: Some(InitSystem::Launchd)
            }
        ));
        assert!(matches!(
            parse(&["completions", "zsh"]).unwrap().command,
            Command::Completions {
                shell: clap_complete::Shell::Zsh
            }
        ));
        let Command::Logs(logs) = parse(&["logs", "-f", "--timestamps"]).unwrap().command else {
            panic!("not logs");
        };
        assert!(logs.follow && logs.timestamps && logs.target.is_none());
    }

    #[test]
    fn logs_default_to_fifteen_lines_and_take_a_short_flag() {
        let Command::Logs(logs) = parse(&["logs", "api"]).unwrap().command else {
            panic!("not logs");
        };
        assert_eq!(
            (logs.target.as_deref(), logs.lines, logs.raw),
            (Some("api"), 15, false)
        );
        let Command::Logs(logs) = parse(&["logs", "0", "-n", "50", "--raw"]).unwrap().command
        else {
            panic!("not logs");
        };
        assert_eq!(
            (logs.target.as_deref(), logs.lines, logs.raw),
            (Some("0"), 50, true)
        );
    }
}
