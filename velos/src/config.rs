//! Config files: `velos start velos.toml` starts every app the file declares, and
//! `velos stop|restart|delete velos.toml` act on its apps, like PM2's ecosystem file.
//!
//! ```toml
//! [[apps]]
//! name = "api"                # required
//! script = "server.js"        # required; relative to this file's directory
//! args = ["--port", "3000"]
//! cwd = "."                   # relative to this file's directory; the default
//! env = { NODE_ENV = "production", PORT = 3000 }   # on top of the shell's
//! interpreter = "node"
//! interpreter_args = ["--max-old-space-size=512"]
//! autorestart = true
//! restart = "always"          # or "on-failure" (the default), "never"; wins over autorestart
//! stop_exit_codes = [0, 3]    # exits that are a clean stop, never restarted
//! cron_restart = "0 3 * * *"  # restart at 03:00 local time (6 fields: seconds first)
//! max_restarts = 16
//! min_uptime = "1s"           # or milliseconds: 1000
//! kill_timeout = "5s"         # or milliseconds: 5000
//! kill_signal = "SIGINT"      # or "INT", or a number; SIGTERM when absent
//! max_memory_restart = "512M" # with a unit; restart when the tree stays over it
//! max_memory_for = "3s"       # how long it must stay over it; or milliseconds
//! time = true                 # each line in the log files after its time (--time)
//! max_log_size = "10MiB"      # or bytes
//! log_files = 5
//! ready = "notify"            # or "message", "log:REGEX", "http:URL"
//! ready_timeout = "30s"       # or milliseconds: 30000
//! watch = true                # or paths: ["src", "config.json"] (relative to cwd)
//! watch_ignore = ["uploads"]  # on top of the built-in ignores
//! watch_delay = "300ms"       # or milliseconds: 300
//! ```
//!
//! Loading has two steps. [`Config::load`] reads and checks the file itself (TOML, known
//! keys, value types, names valid and unique), which is all that `stop` and `delete`
//! need. [`Config::start_params`] then resolves one app against the disk (the script and
//! the working directory must exist). Every error is one line naming the file, the line
//! and the field: `velos.toml line 4: unknown field 'scirpt', expected one of ...`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use toml::Spanned;
use velos_proto::StartParams;
use velos_proto::home::validate_name;
use velos_proto::limits::{
    INSTANCES, KILL_TIMEOUT_MS, LOG_FILES, MAX_MEMORY_FOR_MS, MAX_RESTARTS, MIN_UPTIME_MS,
    READY_TIMEOUT_MS, Range,
};

use crate::process_args::{Field, ProcessArgs};
use crate::size::parse_size;
use crate::{bounds, ecosystem};

/// Whether a `start` script or a `stop|restart|delete` target names a config file: a
/// velos.toml, or a PM2 ecosystem file.
pub fn is_config(path: &str) -> bool {
    path.ends_with(".toml") || ecosystem::is_ecosystem(path)
}

/// Which apps of a file, with which environment: `--only` and `--env NAME`.
#[derive(Debug, Default)]
pub struct Selection {
    /// Only these apps (PM2's `--only a,b`); every app when empty.
    pub only: Vec<String>,
    /// Put `env_NAME` on top of `env` (PM2 ecosystem files).
    pub env_name: Option<String>,
}

impl Selection {
    /// `--only` as given (repeatable; PM2 splits each on commas and spaces) and
    /// `--env NAME`.
    pub fn new(only: &[String], env_name: Option<String>) -> Selection {
        Selection {
            only: only
                .iter()
                .flat_map(|only| only.split([',', ' ']))
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
            env_name,
        }
    }
}

/// A config file, read and checked: its apps as [`ProcessArgs`].
pub struct Config {
    /// The path as the user typed it, for messages.
    shown: String,
    /// What relative paths inside are relative to: the file's directory for a
    /// velos.toml, the current directory for a PM2 file (as PM2 has it).
    dir: PathBuf,
    apps: Vec<ConfigApp>,
    /// What the user should be told about the file (keys velos ignores, ...).
    warnings: Vec<String>,
}

/// One app of a config file.
#[derive(Debug)]
struct ConfigApp {
    name: String,
    process: ProcessArgs,
    /// Where its fields are, for messages: `velos.toml line 4`.
    name_at: String,
    script_at: String,
    cwd_at: Option<String>,
    /// Keys velos ignores, as written (PM2 files), for `velos import`.
    unsupported: Vec<(String, serde_json::Value)>,
}

// Hand-written: the apps' environments may hold secrets.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("file", &self.shown)
            .field("dir", &self.dir)
            .field("apps", &self.names().collect::<Vec<_>>())
            .finish()
    }
}

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    apps: Vec<App>,
}

/// One `[[apps]]` table, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct App {
    name: Spanned<String>,
    script: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    cwd: Option<Spanned<String>>,
    #[serde(default)]
    env: BTreeMap<String, EnvValue>,
    #[serde(default)]
    interpreter: Option<String>,
    #[serde(default)]
    interpreter_args: Vec<String>,
    #[serde(default)]
    autorestart: Option<bool>,
    #[serde(default, deserialize_with = "max_restarts")]
    max_restarts: Option<u32>,
    #[serde(default, deserialize_with = "min_uptime")]
    min_uptime: Option<Duration>,
    #[serde(default, deserialize_with = "memory_limit")]
    max_memory_restart: Option<u64>,
    #[serde(default, deserialize_with = "memory_window")]
    max_memory_for: Option<Duration>,
    #[serde(default, deserialize_with = "kill_timeout")]
    kill_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "size")]
    max_log_size: Option<u64>,
    #[serde(default, deserialize_with = "log_files")]
    log_files: Option<u32>,
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default, deserialize_with = "ready")]
    ready: Option<String>,
    #[serde(default, deserialize_with = "ready_timeout")]
    ready_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "instances")]
    instances: Option<u32>,
    #[serde(default)]
    instance_var: Option<String>,
    #[serde(default)]
    increment_var: Option<String>,
    #[serde(default, deserialize_with = "kill_signal")]
    kill_signal: Option<String>,
    #[serde(default, deserialize_with = "restart")]
    restart: Option<velos_proto::RestartMode>,
    #[serde(default, deserialize_with = "stop_exit_codes")]
    stop_exit_codes: Vec<u8>,
    #[serde(default)]
    cron_restart: Option<String>,
    #[serde(default, deserialize_with = "watch")]
    watch: Vec<String>,
    #[serde(default, alias = "ignore_watch", deserialize_with = "watch_ignore")]
    watch_ignore: Vec<String>,
    #[serde(default, deserialize_with = "watch_delay")]
    watch_delay: Option<Duration>,
    #[serde(default)]
    time: bool,
}

impl Config {
    /// Reads the config file at `path` (relative to `cwd`) and checks it: a velos.toml
    /// (valid TOML, only known keys with values of the right type), a PM2 ecosystem file,
    /// or PM2's dump.pm2 (read as PM2 reads them, see [`ecosystem`]); at least one app,
    /// names valid and unique; then `selection` applied.
    pub fn load(path: &str, cwd: &Path, selection: &Selection) -> Result<Config> {
        let absolute = std::path::absolute(cwd.join(path))
            .with_context(|| format!("resolving the path of '{path}'"))?;
        let missing = || {
            anyhow!(
                "config file '{}' not found (looked at {})",
                velos_proto::echo(path),
                velos_proto::echo(&absolute.to_string_lossy())
            )
        };
        let mut config = if path.ends_with(".toml") {
            if selection.env_name.is_some() {
                bail!(
                    "--env NAME picks the env_NAME of a PM2 ecosystem file; {path} is a \
                     velos.toml: set the environment in its apps' env"
                );
            }
            let source = match std::fs::read_to_string(&absolute) {
                Ok(source) => source,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
                Err(err) => {
                    return Err(err).with_context(|| format!("reading {}", absolute.display()));
                }
            };
            let dir = absolute
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
            Config::from_toml(path, dir, &source)?
        } else {
            if !absolute.exists() {
                return Err(missing());
            }
            let env_name = selection.env_name.as_deref();
            let file = if ecosystem::is_dump(path) {
                let value = ecosystem::read(&absolute, path)?;
                ecosystem::dump_apps(value, path, &velos_proto::script::current_env())?
            } else {
                ecosystem::apps(ecosystem::read(&absolute, path)?, path, env_name)?
            };
            let warnings = file.warnings(path, env_name);
            let apps = file
                .apps
                .into_iter()
                .map(|app| {
                    let at = format!("{path} app '{}'", app.name);
                    ConfigApp {
                        name: app.name,
                        process: app.process,
                        name_at: at.clone(),
                        script_at: at.clone(),
                        cwd_at: Some(at),
                        unsupported: app.unsupported,
                    }
                })
                .collect();
            let config = Config {
                shown: path.to_owned(),
                dir: cwd.to_path_buf(),
                apps,
                warnings,
            };
            config.check_unique()?;
            config
        };
        if !selection.only.is_empty() {
            for name in &selection.only {
                if !config.names().any(|known| known == name) {
                    bail!(
                        "{path} has no app named '{}' (its apps: {})",
                        velos_proto::echo(name),
                        config.names().collect::<Vec<_>>().join(", ")
                    );
                }
            }
            config.apps.retain(|app| selection.only.contains(&app.name));
        }
        Ok(config)
    }

    /// A velos.toml's apps.
    fn from_toml(path: &str, dir: PathBuf, source: &str) -> Result<Config> {
        let file: File =
            toml::from_str(source).map_err(|err| anyhow!(describe(path, source, &err)))?;
        if file.apps.is_empty() {
            bail!("{path} declares no apps: add an [[apps]] table with a name and a script");
        }
        let at =
            |span: std::ops::Range<usize>| format!("{path} line {}", line_of(source, span.start));
        let mut apps = Vec::new();
        for app in file.apps {
            let name = app.name.get_ref().clone();
            validate_name(&name)
                .map_err(|err| anyhow!("{}: field 'name': {err}", at(app.name.span())))?;
            let process = ProcessArgs {
                script: app.script.get_ref().clone(),
                name: Some(name.clone()),
                args: app.args,
                interpreter: app.interpreter,
                interpreter_args: app.interpreter_args,
                cwd: app.cwd.as_ref().map(|cwd| cwd.get_ref().clone()),
                script_in_cwd: false,
                env: app
                    .env
                    .into_iter()
                    .map(|(key, value)| (key, value.0))
                    .collect(),
                kill_timeout: app.kill_timeout,
                autorestart: app.autorestart,
                max_restarts: app.max_restarts,
                min_uptime: app.min_uptime,
                max_memory: app.max_memory_restart,
                max_memory_for: app.max_memory_for,
                max_log_size: app.max_log_size,
                log_files: app.log_files,
                listen: app.listen,
                ready: app.ready,
                ready_timeout: app.ready_timeout,
                instances: app.instances,
                instance_var: app.instance_var,
                increment_var: app.increment_var,
                kill_signal: app.kill_signal,
                restart: app.restart,
                stop_exit_codes: app.stop_exit_codes,
                cron_restart: app.cron_restart,
                watch: app.watch,
                watch_ignore: app.watch_ignore,
                watch_delay: app.watch_delay,
                time: app.time,
            };
            apps.push(ConfigApp {
                name,
                process,
                name_at: at(app.name.span()),
                script_at: at(app.script.span()),
                cwd_at: app.cwd.as_ref().map(|cwd| at(cwd.span())),
                unsupported: Vec::new(),
            });
        }
        let config = Config {
            shown: path.to_owned(),
            dir,
            apps,
            warnings: Vec::new(),
        };
        config.check_unique()?;
        Ok(config)
    }

    /// Refuses a name used twice.
    fn check_unique(&self) -> Result<()> {
        let mut seen = HashSet::new();
        for app in &self.apps {
            if !seen.insert(app.name.as_str()) {
                bail!("{}: the app name '{}' is used twice", app.name_at, app.name);
            }
        }
        Ok(())
    }

    /// The path as the user typed it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Prints the warnings on stderr.
    pub fn warn(&self) {
        for warning in &self.warnings {
            eprintln!("warning: {warning}");
        }
    }

    /// The names of its apps, in file order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.apps.iter().map(|app| app.name.as_str())
    }

    /// The app `name` as parsed (paths as written), and the keys velos ignores in it.
    pub fn process(&self, name: &str) -> Option<(&ProcessArgs, &[(String, serde_json::Value)])> {
        self.app(name)
            .map(|app| (&app.process, app.unsupported.as_slice()))
    }

    /// What relative paths in the file are relative to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The start request for the app `name`: paths resolved and checked, `env` on top of
    /// `base`.
    pub fn start_params(&self, name: &str, base: &BTreeMap<String, String>) -> Result<StartParams> {
        let app = self
            .app(name)
            .with_context(|| format!("{} has no app named '{name}'", self.shown))?;
        app.process
            .clone()
            .resolve(&self.dir, base.clone())
            .map_err(|err| {
                let at = match (err.field, &app.cwd_at) {
                    (Field::Script, _) => &app.script_at,
                    (Field::Cwd, Some(cwd)) => cwd,
                    (Field::Cwd | Field::Name | Field::Watch, _) => &app.name_at,
                };
                anyhow!("{at}: {err}")
            })
    }

    fn app(&self, name: &str) -> Option<&ConfigApp> {
        self.apps.iter().find(|app| app.name == name)
    }
}

/// toml's error as one line: `velos.toml line 4: field 'min_uptime': ...`. toml's own
/// Display draws the line with a caret over several lines; the field name is added when
/// toml's message does not say it (type errors name only the type).
fn describe(shown: &str, source: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('`', "'").replace('\n', " ");
    let Some(span) = err.span() else {
        return format!("{shown}: {message}");
    };
    let line = line_of(source, span.start);
    match key_before(source, span.start) {
        Some(key) if !message.contains(&format!("'{key}'")) => {
            format!("{shown} line {line}: field '{key}': {message}")
        }
        _ => format!("{shown} line {line}: {message}"),
    }
}

/// The 1-based line holding byte `offset`.
fn line_of(source: &str, offset: usize) -> usize {
    let offset = offset.min(source.len());
    source.as_bytes()[..offset]
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
        + 1
}

/// The key of a `key = value` line whose value holds byte `offset`.
fn key_before(source: &str, offset: usize) -> Option<&str> {
    let offset = offset.min(source.len());
    let start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = source[start..].lines().next()?;
    let equals = line.find('=')?;
    if offset - start <= equals {
        return None;
    }
    let key = line[..equals]
        .trim()
        .trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty()).then_some(key)
}

/// An environment value: TOML strings, and numbers and booleans as they read.
struct EnvValue(String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl Visitor<'_> for Scalar {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
        }
        deserializer.deserialize_any(Scalar)
    }
}

/// A string to parse, or a plain non-negative integer.
enum TextOrNumber {
    Text(String),
    Number(u64),
}

impl<'de> Deserialize<'de> for TextOrNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl Visitor<'_> for Either {
            type Value = TextOrNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string like \"5s\" or \"10MiB\", or a non-negative integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TextOrNumber, E> {
                Ok(TextOrNumber::Text(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<TextOrNumber, E> {
                Ok(TextOrNumber::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<TextOrNumber, E> {
                u64::try_from(v)
                    .map(TextOrNumber::Number)
                    .map_err(|_| E::custom(format!("{v} is negative")))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// `"1s"`, `"500ms"`, or an integer of milliseconds (as PM2's ecosystem files write them).
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Number(ms) => Ok(Some(Duration::from_millis(ms))),
        TextOrNumber::Text(text) => humantime::parse_duration(&text).map(Some).map_err(|err| {
            de::Error::custom(format!(
                "invalid duration '{text}' ({err}); write it like '500ms', '5s' or '1m'"
            ))
        }),
    }
}

/// `"10MiB"`, `"500K"`, `"1GB"`, or an integer of bytes.
fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Number(bytes) => Ok(Some(bytes)),
        TextOrNumber::Text(text) => parse_size(&text).map(Some).map_err(de::Error::custom),
    }?
    .map(|bytes| bounds::size(bytes).map_err(de::Error::custom))
    .transpose()
}

/// A duration within `range`.
fn bounded_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
    range: Range,
) -> Result<Option<Duration>, D::Error> {
    duration(deserializer)?
        .map(|value| bounds::duration(range, value).map_err(de::Error::custom))
        .transpose()
}

fn kill_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    bounded_duration(deserializer, KILL_TIMEOUT_MS)
}

fn min_uptime<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    bounded_duration(deserializer, MIN_UPTIME_MS)
}

fn memory_window<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    bounded_duration(deserializer, MAX_MEMORY_FOR_MS)
}

/// `"512M"`: a size with its unit, as `--max-memory-restart` takes it.
fn memory_limit<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Number(number) => Err(de::Error::custom(format!(
            "{number} has no unit: give a unit: \"512M\" (M and G are MiB and GiB)"
        ))),
        TextOrNumber::Text(text) => bounds::parse_memory_limit(&text)
            .map(Some)
            .map_err(de::Error::custom),
    }
}

fn ready_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    bounded_duration(deserializer, READY_TIMEOUT_MS)
}

fn watch_delay<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    bounded_duration(deserializer, velos_proto::limits::WATCH_DELAY_MS)
}

/// `watch = true` (the working directory), `false`, or a list of paths.
fn watch<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Watch {
        On(bool),
        Paths(Vec<String>),
        Path(String),
    }
    match Watch::deserialize(deserializer).map_err(|_| {
        de::Error::custom("write true, false, or a list of paths like [\"src\", \"config.json\"]")
    })? {
        Watch::On(true) => Ok(vec![".".to_owned()]),
        Watch::On(false) => Ok(Vec::new()),
        Watch::Paths(paths) => Ok(paths),
        Watch::Path(path) => Ok(vec![path]),
    }
}

/// A list of globs, each checked.
fn watch_ignore<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let globs = Vec::<String>::deserialize(deserializer)?;
    velos_proto::watch::check_globs(&globs).map_err(de::Error::custom)?;
    Ok(globs)
}

fn ready<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    bounds::parse_ready(&text)
        .map(Some)
        .map_err(de::Error::custom)
}

fn kill_signal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    bounds::parse_signal(&text)
        .map(Some)
        .map_err(de::Error::custom)
}

/// `restart = "always"`.
fn restart<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<velos_proto::RestartMode>, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map(Some).map_err(de::Error::custom)
}

/// `stop_exit_codes = [0, 3]`, or one code: `stop_exit_codes = 3`.
fn stop_exit_codes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(i64),
        Many(Vec<i64>),
    }
    let codes = match OneOrMany::deserialize(deserializer)
        .map_err(|_| de::Error::custom("write exit codes from 0 to 255: 3, or [0, 3]"))?
    {
        OneOrMany::One(code) => vec![code],
        OneOrMany::Many(codes) => codes,
    };
    codes
        .into_iter()
        .map(|code| {
            u8::try_from(code).map_err(|_| {
                de::Error::custom(format!(
                    "exit code {code} is out of range: allowed 0 to 255"
                ))
            })
        })
        .collect()
}

/// A count within `range`.
fn bounded_count<'de, D: Deserializer<'de>>(
    deserializer: D,
    range: Range,
) -> Result<Option<u32>, D::Error> {
    let value = u64::deserialize(deserializer)?;
    let value = bounds::count(range, value).map_err(de::Error::custom)?;
    // Every count range fits in a u32.
    u32::try_from(value).map(Some).map_err(de::Error::custom)
}

/// `instances = 4`, or `instances = "max"` (one per CPU).
fn instances<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Number(count) => bounds::count(INSTANCES, count)
            .map(|count| Some(count as u32))
            .map_err(|err| de::Error::custom(format!("{err}, or \"max\" (one per CPU)"))),
        TextOrNumber::Text(text) if text == "max" => Ok(Some(bounds::cpus())),
        TextOrNumber::Text(text) => Err(de::Error::custom(format!(
            "'{text}' is not a count: write a number from 1 to 1024, or \"max\" (one per CPU)"
        ))),
    }
}

fn log_files<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    bounded_count(deserializer, LOG_FILES)
}

fn max_restarts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    bounded_count(deserializer, MAX_RESTARTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory holding `velos.toml` with `text`, `app.js`, `bin/tool` and `data/`.
    struct Project {
        dir: tempfile::TempDir,
    }

    impl Project {
        fn new(text: &str) -> Project {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("velos.toml"), text).unwrap();
            std::fs::write(dir.path().join("app.js"), "").unwrap();
            std::fs::create_dir_all(dir.path().join("bin")).unwrap();
            std::fs::write(dir.path().join("bin/tool"), "").unwrap();
            std::fs::create_dir_all(dir.path().join("data")).unwrap();
            Project { dir }
        }

        fn load(&self) -> Result<Config> {
            Config::load("velos.toml", self.dir.path(), &Selection::default())
        }

        fn error(&self) -> String {
            format!("{:#}", self.load().unwrap_err())
        }
    }

    const FULL: &str = r#"
[[apps]]
name = "api"
script = "app.js"
args = ["--port", "3000"]
env = { NODE_ENV = "production", PORT = 3000, DEBUG = false }
interpreter = "node"
autorestart = false
restart = "always"
stop_exit_codes = [0, 3]
cron_restart = "0 3 * * *"
max_restarts = 3
min_uptime = "2s"
kill_timeout = 1500
kill_signal = "int"
max_memory_restart = "1.5G"
max_memory_for = "10s"
max_log_size = "10MiB"
log_files = 2
ready = 'log:listening on \d+'
ready_timeout = "10s"

[[apps]]
name = "tool"
script = "bin/tool"
cwd = "data"
"#;

    #[test]
    fn apps_resolve_against_the_files_directory() {
        let project = Project::new(FULL);
        let config = project.load().unwrap();
        assert_eq!(config.names().collect::<Vec<_>>(), ["api", "tool"]);
        let base = BTreeMap::from([
            ("PATH".to_owned(), "/bin".to_owned()),
            ("PORT".to_owned(), "80".to_owned()),
        ]);
        let api = config.start_params("api", &base).unwrap();
        let dir = project.dir.path();
        assert_eq!(api.script, dir.join("app.js").to_str().unwrap());
        assert_eq!(api.cwd.as_deref(), dir.to_str());
        assert_eq!(api.name.as_deref(), Some("api"));
        assert_eq!(api.args, ["--port", "3000"]);
        assert_eq!(api.interpreter.as_deref(), Some("node"));
        let env = api.env.unwrap();
        assert_eq!(env["PATH"], "/bin");
        assert_eq!(env["PORT"], "3000", "the file's env wins over the shell's");
        assert_eq!(env["NODE_ENV"], "production");
        assert_eq!(env["DEBUG"], "false");
        assert_eq!(api.autorestart, Some(false));
        assert_eq!(api.restart, Some(velos_proto::RestartMode::Always));
        assert_eq!(api.stop_exit_codes, [0, 3]);
        assert_eq!(api.cron_restart.as_deref(), Some("0 3 * * *"));
        assert_eq!(api.max_restarts, Some(3));
        assert_eq!(api.min_uptime_ms, Some(2000));
        assert_eq!(api.kill_timeout_ms, Some(1500));
        assert_eq!(api.kill_signal.as_deref(), Some("SIGINT"));
        assert_eq!(api.max_memory_bytes, Some(3 << 29));
        assert_eq!(api.max_memory_for_ms, Some(10_000));
        assert_eq!(api.max_log_bytes, Some(10 << 20));
        assert_eq!(api.log_files, Some(2));
        assert_eq!(api.ready.as_deref(), Some(r"log:listening on \d+"));
        assert_eq!(api.ready_timeout_ms, Some(10_000));

        let tool = config.start_params("tool", &base).unwrap();
        assert_eq!(tool.script, dir.join("bin/tool").to_str().unwrap());
        assert_eq!(tool.cwd.as_deref(), dir.join("data").to_str());
        assert_eq!(
            (
                tool.kill_timeout_ms,
                tool.max_log_bytes,
                tool.autorestart,
                tool.kill_signal
            ),
            (None, None, None, None)
        );
    }

    #[test]
    fn a_bad_ready_mode_or_timeout_names_its_line() {
        let app = "[[apps]]\nname = \"api\"\nscript = \"app.js\"\n";
        let error = Project::new(&format!("{app}ready = \"tcp:80\"\n")).error();
        assert!(
            error.starts_with("velos.toml line 4: ") && error.contains("is not a ready mode"),
            "{error}"
        );
        let error = Project::new(&format!("{app}ready_timeout = \"2h\"\n")).error();
        assert!(
            error.contains("2h is longer than the maximum, 1h"),
            "{error}"
        );
        let error = Project::new(&format!("{app}ready_timeout = 0\n")).error();
        assert!(
            error.contains("0s is shorter than the minimum, 1ms"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_restart_mode_or_exit_code_names_its_line() {
        let app = "[[apps]]\nname = \"api\"\nscript = \"app.js\"\n";
        let error = Project::new(&format!("{app}restart = \"sometimes\"\n")).error();
        assert!(
            error.starts_with("velos.toml line 4: ")
                && error
                    .contains("unknown restart mode 'sometimes': use always, on-failure or never"),
            "{error}"
        );
        let error = Project::new(&format!("{app}stop_exit_codes = [3, 256]\n")).error();
        assert!(
            error.contains("exit code 256 is out of range: allowed 0 to 255"),
            "{error}"
        );
        let config = Project::new(&format!("{app}stop_exit_codes = 3\n"));
        let params = config
            .load()
            .unwrap()
            .start_params("api", &BTreeMap::new())
            .unwrap();
        assert_eq!(params.stop_exit_codes, [3]);
    }

    #[test]
    fn an_unknown_field_names_its_line() {
        let project = Project::new("[[apps]]\nname = \"api\"\n\nscirpt = \"app.js\"\n");
        let error = project.error();
        assert!(
            error.starts_with(
                "velos.toml line 4: unknown field 'scirpt', expected one of 'name', 'script'"
            ),
            "{error}"
        );
        assert!(!error.contains('\n'), "{error}");
    }

    #[test]
    fn a_bad_value_names_its_line_and_field() {
        let project =
            Project::new("[[apps]]\nname = \"api\"\nscript = \"app.js\"\nmin_uptime = \"soon\"\n");
        let error = project.error();
        assert!(
            error.starts_with("velos.toml line 4: field 'min_uptime': invalid duration 'soon'"),
            "{error}"
        );
        let project =
            Project::new("[[apps]]\nname = \"api\"\nscript = \"app.js\"\nmax_restarts = \"x\"\n");
        let error = project.error();
        assert!(
            error.starts_with("velos.toml line 4: field 'max_restarts': invalid type: string"),
            "{error}"
        );
        let project = Project::new(
            "[[apps]]\nname = \"api\"\nscript = \"app.js\"\n  max_log_size = \"9 parsecs\"\n",
        );
        let error = project.error();
        assert!(
            error.starts_with("velos.toml line 4: field 'max_log_size': unknown unit 'parsecs'"),
            "{error}"
        );
    }

    #[test]
    fn a_memory_limit_needs_its_unit() {
        let app = "[[apps]]\nname = \"api\"\nscript = \"app.js\"\n";
        for value in ["100", "\"100\""] {
            let error = Project::new(&format!("{app}max_memory_restart = {value}\n")).error();
            assert!(
                error.starts_with("velos.toml line 4: field 'max_memory_restart': ")
                    && error.contains("give a unit: "),
                "{error}"
            );
        }
    }

    #[test]
    fn a_missing_name_or_script_is_an_error() {
        let error = Project::new("[[apps]]\nname = \"api\"\n").error();
        assert!(error.contains("missing field 'script'"), "{error}");
        assert!(error.starts_with("velos.toml line 1"), "{error}");
    }

    #[test]
    fn names_must_be_valid_and_unique() {
        let text = "[[apps]]\nname = \"a\"\nscript = \"app.js\"\n[[apps]]\nname = \"a\"\nscript = \"app.js\"\n";
        assert_eq!(
            Project::new(text).error(),
            "velos.toml line 5: the app name 'a' is used twice"
        );
        let error = Project::new("[[apps]]\nname = \"all\"\nscript = \"app.js\"\n").error();
        assert!(
            error.starts_with("velos.toml line 2: field 'name': "),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_apps_or_not_there_is_an_error() {
        assert!(Project::new("").error().contains("declares no apps"));
        let project = Project::new("");
        let error = format!(
            "{:#}",
            Config::load("other.toml", project.dir.path(), &Selection::default()).unwrap_err()
        );
        assert!(
            error.starts_with("config file 'other.toml' not found"),
            "{error}"
        );
        assert!(
            Project::new("apps = 3")
                .error()
                .starts_with("velos.toml line 1")
        );
        assert!(
            Project::new("[[apps]\n")
                .error()
                .starts_with("velos.toml line 1")
        );
    }

    #[test]
    fn missing_scripts_and_directories_name_their_line() {
        let text = "[[apps]]\nname = \"a\"\nscript = \"nope.js\"\n[[apps]]\nname = \"b\"\nscript = \"app.js\"\ncwd = \"nowhere\"\n";
        let project = Project::new(text);
        let config = project.load().unwrap();
        let error = config
            .start_params("a", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("velos.toml line 3: script 'nope.js' not found"),
            "{error}"
        );
        let error = config
            .start_params("b", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("velos.toml line 7: working directory 'nowhere' does not exist"),
            "{error}"
        );
    }

    #[test]
    fn lines_and_keys_are_found_from_offsets() {
        let source = "a = 1\nkey = \"value\"\n";
        assert_eq!(line_of(source, 0), 1);
        assert_eq!(line_of(source, 8), 2);
        assert_eq!(key_before(source, 12), Some("key"));
        assert_eq!(key_before(source, 6), None, "on the key itself");
        assert!(is_config("velos.toml") && is_config("../x/apps.toml"));
        assert!(!is_config("app.js") && !is_config("toml"));
    }
}
