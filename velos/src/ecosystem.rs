//! PM2's files: ecosystem files (`ecosystem.config.js`, `.cjs`, `.mjs`, `.json`, `.yaml`,
//! `.yml`) and its saved process list (`~/.pm2/dump.pm2`), read as PM2 reads them and
//! mapped onto [`ProcessArgs`].
//!
//! Reading follows PM2 (`lib/Common.js` `parseConfig`, `lib/API.js` `_startJson`,
//! `lib/tools/Config.js`): a JavaScript file is loaded by node with `require` (so
//! `__dirname`, `process.env` and `require('dotenv')` work; an ES module with `import()`),
//! JSON as JSON (PM2 evaluates it as a JavaScript expression, which node does here too when
//! the file is not strict JSON), YAML as YAML. The apps are the file's `apps`, else its
//! `pm2`, else the file itself, one app or an array. Keys have PM2's aliases (`cmd` and
//! `command` for `script`, `exec_interpreter`, `node_args`, `combine_logs`, ... and every
//! key in camelCase); `args` and `node_args` may be one string, split as PM2 splits it.
//! Paths are PM2's too: `cwd` relative to the current directory, `script` relative to
//! `cwd`, or found on `PATH`. `env` is on top of the shell's; `--env NAME` puts
//! `env_NAME` on top of `env`.
//!
//! Each key is one line of [`KEYS`]: mapped onto the start, or a PM2 feature velos does
//! not have (yet), which is listed in the one warning line unless its value asks for
//! nothing (`watch: false`, `instances: 1`). Supporting one is changing its line.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Map, Value};
use velos_proto::home::{default_name, validate_name};
use velos_proto::limits::{
    INSTANCES, KILL_TIMEOUT_MS, MAX_RESTARTS, MIN_UPTIME_MS, READY_TIMEOUT_MS,
};

use crate::bounds;
use crate::process_args::ProcessArgs;

/// Whether `path` names a PM2 ecosystem file (PM2's `isConfigFile`; `app.js` is a script,
/// `app.config.js` a config).
pub fn is_ecosystem(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [
        ".json",
        ".yml",
        ".yaml",
        ".config.js",
        ".config.cjs",
        ".config.mjs",
    ]
    .iter()
    .any(|extension| lower.ends_with(extension))
}

/// Whether `path` names PM2's saved process list.
pub fn is_dump(path: &str) -> bool {
    path.ends_with(".pm2")
}

/// One app of a PM2 file, mapped.
#[derive(Debug)]
pub struct Pm2App {
    /// Its name (given, or PM2's default: the script's base name without its extension).
    pub name: String,
    /// What velos starts.
    pub process: ProcessArgs,
    /// Keys velos does not support, with their values as written: `watch = true`.
    pub unsupported: Vec<(String, Value)>,
    /// It asked for PM2's cluster mode.
    pub cluster: bool,
}

/// The apps of a PM2 file, and what the user should be told about them.
#[derive(Debug, Default)]
pub struct Pm2File {
    /// The apps, in file order.
    pub apps: Vec<Pm2App>,
    /// Apps without the `env_NAME` that `--env NAME` asked for.
    pub missing_env: Vec<String>,
}

impl Pm2File {
    /// The warning lines: one listing every key velos ignores, one for apps without the
    /// environment asked for. None when there is nothing to say.
    pub fn warnings(&self, shown: &str, env_name: Option<&str>) -> Vec<String> {
        let mut lines = Vec::new();
        let ignored: Vec<String> = self
            .apps
            .iter()
            .filter(|app| !app.unsupported.is_empty())
            .map(|app| {
                let keys: Vec<String> = app
                    .unsupported
                    .iter()
                    .map(|(key, value)| format!("{key}={}", short(value)))
                    .collect();
                format!("'{}': {}", app.name, keys.join(", "))
            })
            .collect();
        if !ignored.is_empty() {
            lines.push(format!(
                "{shown}: velos does not support these keys and ignores them: {}",
                ignored.join("; ")
            ));
        }
        let cluster: Vec<String> = self
            .apps
            .iter()
            .filter(|app| app.cluster)
            .map(|app| format!("'{}'", app.name))
            .collect();
        if !cluster.is_empty() {
            lines.push(format!(
                "{shown}: {} asked for PM2's cluster mode: velos runs the instances as \
                 separate processes; to share one port, give them `listen` (velos.toml) or \
                 --listen, and have the app take its socket from fd 3",
                cluster.join(", ")
            ));
        }
        let ignores: Vec<String> = self
            .apps
            .iter()
            .filter(|app| !app.process.watch_ignore.is_empty())
            .map(|app| format!("'{}'", app.name))
            .collect();
        if !ignores.is_empty() {
            lines.push(format!(
                "{shown}: the ignore_watch of {} adds to velos's built-in watch ignores \
                 (.git, node_modules, *.log, editor swap files, ...), where PM2's replaces them",
                ignores.join(", ")
            ));
        }
        if let Some(env_name) = env_name
            && !self.missing_env.is_empty()
        {
            lines.push(format!(
                "{shown}: no env_{env_name} in {}; they get env alone",
                self.missing_env
                    .iter()
                    .map(|name| format!("'{name}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        lines
    }
}

/// A value as it reads in a warning, at most 40 characters.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// Reads the ecosystem file at `path` (absolute) as PM2 does, into JSON. `shown` is the
/// path as typed, for messages.
pub fn read(path: &Path, shown: &str) -> Result<Value> {
    let lower = shown.to_ascii_lowercase();
    if lower.ends_with(".js") || lower.ends_with(".cjs") || lower.ends_with(".mjs") {
        return evaluate(path, shown, Evaluate::Module);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {shown}"))?;
    if lower.ends_with(".yml") || lower.ends_with(".yaml") {
        return serde_yaml_ng::from_str(&text)
            .map_err(|err| anyhow!("{shown} is not valid YAML: {}", one_line(&err.to_string())));
    }
    match serde_json::from_str(&text) {
        Ok(value) => Ok(value),
        // PM2 evaluates a .json file as a JavaScript expression: comments, trailing
        // commas and unquoted keys pass there, so they do here when node is at hand.
        Err(err) if node().is_some() => evaluate(path, shown, Evaluate::Expression).map_err(|js| {
            anyhow!("{shown} is not valid JSON ({err}), nor as PM2 reads it: {js:#}")
        }),
        Err(err) => bail!("{shown} is not valid JSON: {err}"),
    }
}

/// How node reads a file.
#[derive(Clone, Copy)]
enum Evaluate {
    /// `require` it (PM2's way), or `import()` it when it is an ES module.
    Module,
    /// Evaluate its text as one expression (PM2's way with JSON).
    Expression,
}

/// The program that loads JavaScript, if any.
fn node() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
}

/// What node runs: the file's value, as JSON on stdout. A config that leaves a timer or a
/// socket open does not keep it running.
const LOADER: &str = r#"
const path = require('path');
const file = path.resolve(process.argv[1]);
const done = (config) => {
  process.stdout.write(JSON.stringify(config === undefined ? null : config), () => process.exit(0));
};
const fail = (err) => {
  process.stderr.write(String(err && err.message || err).split('\n')[0] + '\n');
  process.exit(1);
};
try {
  if (process.argv[2] === 'expression') {
    const vm = require('vm');
    const text = require('fs').readFileSync(file, 'utf8');
    done(vm.runInThisContext('(' + text + ')', { filename: file, timeout: 1000 }));
  } else if (file.endsWith('.mjs')) {
    import(require('url').pathToFileURL(file).href).then((m) => done(m.default), fail);
  } else {
    try {
      done(require(file));
    } catch (err) {
      if (err && err.code === 'ERR_REQUIRE_ESM') {
        import(require('url').pathToFileURL(file).href).then((m) => done(m.default), fail);
      } else {
        fail(err);
      }
    }
  }
} catch (err) {
  fail(err);
}
"#;

/// Loads `path` with node, in the current directory and environment (as PM2 does, so
/// `process.cwd()` and `process.env` are the shell's).
fn evaluate(path: &Path, shown: &str, how: Evaluate) -> Result<Value> {
    let Some(node) = node() else {
        bail!(
            "{shown} is JavaScript, which velos reads with node, and node is not on PATH: \
             install node, or convert the file with 'velos import {shown}' where node is"
        );
    };
    let mode = match how {
        Evaluate::Module => "module",
        Evaluate::Expression => "expression",
    };
    let output = Command::new(node)
        .arg("-e")
        .arg(LOADER)
        .arg(path)
        .arg(mode)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running node to read {shown}"))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        bail!(
            "node could not load {shown}: {}",
            one_line(message.trim()).trim_end_matches('.')
        );
    }
    serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading what node made of {shown}"))
}

fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// The app objects of a PM2 config: `apps`, else `pm2`, else the whole file; one or an
/// array (PM2's `_startJson`).
fn app_objects(config: Value, shown: &str) -> Result<Vec<Map<String, Value>>> {
    let apps = match config {
        Value::Object(mut object) => match object.remove("apps").or_else(|| object.remove("pm2")) {
            Some(apps) => apps,
            None => Value::Object(object),
        },
        other => other,
    };
    let apps = match apps {
        Value::Array(apps) => apps,
        one => vec![one],
    };
    let objects = apps
        .into_iter()
        .enumerate()
        .map(|(i, app)| match app {
            Value::Object(object) => Ok(object),
            other => Err(anyhow!(
                "{shown}: app {} is not an object but {}",
                i + 1,
                short(&other)
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    if objects.is_empty() {
        bail!("{shown} declares no apps");
    }
    Ok(objects)
}

/// The apps of an ecosystem file's value, with `env_NAME` merged for `--env NAME`.
pub fn apps(config: Value, shown: &str, env_name: Option<&str>) -> Result<Pm2File> {
    let mut file = Pm2File::default();
    for object in app_objects(config, shown)? {
        let app =
            app(object, env_name, Source::Ecosystem).map_err(|err| anyhow!("{shown}: {err:#}"))?;
        if env_name.is_some() && !app.1 {
            file.missing_env.push(app.0.name.clone());
        }
        file.apps.push(app.0);
    }
    Ok(file)
}

/// The processes of a PM2 dump (`pm2 save`): one object per running instance, named by
/// `name`; instances of one app become one app.
pub fn dump_apps(dump: Value, shown: &str, base: &BTreeMap<String, String>) -> Result<Pm2File> {
    let Value::Array(entries) = dump else {
        bail!("{shown} is not a PM2 dump (a JSON array of processes)");
    };
    let mut file = Pm2File::default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for entry in entries {
        let Value::Object(object) = entry else {
            bail!("{shown}: an entry is not an object");
        };
        let (mut app, _) =
            app(object, None, Source::Dump).map_err(|err| anyhow!("{shown}: {err:#}"))?;
        // PM2 saved the whole environment; what this shell has anyway is left out.
        app.process
            .env
            .retain(|(key, value)| base.get(key) != Some(value));
        // PM2 names node for every .js script, which velos does by itself.
        let js = [".js", ".mjs", ".cjs"]
            .iter()
            .any(|extension| app.process.script.ends_with(extension));
        if js && app.process.interpreter.as_deref() == Some("node") {
            app.process.interpreter = None;
        }
        match seen.get(&app.name) {
            Some(&index) => {
                // One more instance of an app already read.
                let instances = &mut file.apps[index].process.instances;
                *instances = Some(instances.unwrap_or(1) + 1);
            }
            None => {
                seen.insert(app.name.clone(), file.apps.len());
                file.apps.push(app);
            }
        }
    }
    if file.apps.is_empty() {
        bail!("{shown} holds no processes");
    }
    Ok(file)
}

/// Where an app object comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    /// A file a person wrote: every key is reported.
    Ecosystem,
    /// PM2's saved state (`pm2_env`): internal keys and the environment flattened beside
    /// the settings are left alone; only settings velos does not have are reported.
    Dump,
}

/// What velos does with one key of a PM2 app.
#[derive(Clone, Copy)]
enum Key {
    /// Sets part of the start.
    Map(fn(&mut ProcessArgs, &Value) -> Result<(), String>),
    /// Read on its own (name, env, script and cwd, whose order matters).
    Read,
    /// A PM2 feature velos does not have (yet). The function tells the values that ask
    /// for nothing, which need no warning.
    Unsupported(fn(&Value) -> bool),
}

use Key::{Map as Maps, Read, Unsupported};

/// Every key of PM2's app schema (`lib/API/schema.json`) with its aliases, and what velos
/// does with it.
const KEYS: &[(&str, &[&str], Key)] = &[
    ("name", &[], Read),
    ("script", &["cmd", "command"], Read),
    ("cwd", &[], Read),
    ("env", &[], Read),
    (
        "args",
        &[],
        Maps(|p, v| {
            p.args = words(v)?;
            Ok(())
        }),
    ),
    ("exec_interpreter", &["interpreter"], Maps(interpreter)),
    (
        "node_args",
        &["interpreter_args", "interpreterArgs"],
        Maps(|p, v| {
            p.interpreter_args = words(v)?;
            Ok(())
        }),
    ),
    (
        "autorestart",
        &[],
        Maps(|p, v| {
            p.autorestart = Some(boolean(v)?);
            Ok(())
        }),
    ),
    ("max_restarts", &[], Maps(max_restarts)),
    ("min_uptime", &[], Maps(min_uptime)),
    ("kill_timeout", &[], Maps(kill_timeout)),
    ("port", &[], Maps(port)),
    ("instances", &[], Maps(instances)),
    ("exec_mode", &[], Read),
    ("watch", &[], Maps(watch)),
    (
        "ignore_watch",
        &[],
        Maps(|p, v| {
            let globs = words_list(v)?;
            velos_proto::watch::check_globs(&globs).map_err(|err| err.to_string())?;
            p.watch_ignore = globs;
            Ok(())
        }),
    ),
    ("watch_delay", &[], Maps(watch_delay)),
    ("watch_options", &[], Unsupported(|_| false)),
    ("max_memory_restart", &[], Maps(max_memory_restart)),
    ("cron_restart", &["cron"], Maps(cron_restart)),
    (
        "restart_delay",
        &[],
        Unsupported(|v| number(v) == Some(0.0)),
    ),
    (
        "exp_backoff_restart_delay",
        &[],
        Unsupported(|v| number(v) == Some(0.0)),
    ),
    (
        "kill_signal",
        &[],
        Maps(|p, v| {
            p.kill_signal = Some(string(v)?);
            Ok(())
        }),
    ),
    ("listen_timeout", &[], Maps(ready_timeout)),
    ("wait_ready", &[], Maps(wait_ready)),
    ("shutdown_with_message", &[], Unsupported(is_false)),
    ("stop_exit_codes", &[], Maps(stop_exit_codes)),
    (
        "out_file",
        &["out", "output", "out_log"],
        Unsupported(|_| false),
    ),
    (
        "error_file",
        &["error", "err", "err_file", "err_log"],
        Unsupported(|_| false),
    ),
    ("log_file", &["log"], Unsupported(is_false)),
    ("pid_file", &["pid"], Unsupported(|_| false)),
    // velos writes its own format (RFC 3339 UTC, milliseconds): PM2's date format asks
    // for stamped lines, and gets them.
    (
        "log_date_format",
        &[],
        Maps(|p, v| {
            p.time |= !string(v)?.is_empty();
            Ok(())
        }),
    ),
    (
        "time",
        &[],
        Maps(|p, v| {
            p.time = boolean(v)?;
            Ok(())
        }),
    ),
    ("merge_logs", &["combine_logs"], Unsupported(is_false)),
    (
        "increment_var",
        &[],
        Maps(|p, v| {
            p.increment_var = Some(string(v)?);
            Ok(())
        }),
    ),
    (
        "instance_var",
        &[],
        Maps(|p, v| {
            p.instance_var = Some(string(v)?);
            Ok(())
        }),
    ),
    ("autostart", &[], Unsupported(|v| v == &Value::Bool(true))),
    (
        "namespace",
        &[],
        Unsupported(|v| v.as_str() == Some("default")),
    ),
    (
        "filter_env",
        &[],
        Unsupported(|v| is_false(v) || v.as_array().is_some_and(Vec::is_empty)),
    ),
    ("append_env_to_name", &[], Unsupported(is_false)),
    ("uid", &["user"], Unsupported(|_| false)),
    ("gid", &[], Unsupported(|_| false)),
    ("treekill", &[], Unsupported(|v| v == &Value::Bool(true))),
    ("vizion", &[], Unsupported(|_| true)),
    ("pmx", &[], Unsupported(|_| true)),
    ("automation", &[], Unsupported(|_| true)),
    ("source_map_support", &[], Unsupported(|_| true)),
    ("disable_source_map_support", &[], Unsupported(|_| true)),
    ("windowsHide", &[], Unsupported(|_| true)),
];

/// `watch`: `true` (the working directory), `false`, a path, or a list of paths
/// (relative to `cwd`, as PM2 has them).
fn watch(p: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    p.watch = match value {
        Value::Bool(true) => vec![".".to_owned()],
        Value::Bool(false) | Value::Null => Vec::new(),
        other => words_list(other)?,
    };
    Ok(())
}

/// `watch_delay`: milliseconds.
fn watch_delay(p: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    let delay = milliseconds(value)?;
    p.watch_delay = Some(bounds::duration(
        velos_proto::limits::WATCH_DELAY_MS,
        delay,
    )?);
    Ok(())
}

/// One string, or an array of strings: a list as written (never split at spaces, which
/// paths and globs may hold).
fn words_list(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(_) => words(value),
        Value::Null => Ok(Vec::new()),
        other => Err(format!(
            "expected a string or an array of strings, got {}",
            short(other)
        )),
    }
}

fn is_false(value: &Value) -> bool {
    matches!(value, Value::Bool(false) | Value::Null)
}

/// PM2 turns numeric strings into numbers where a number is expected.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `cron_restart`: a schedule (checked by the daemon); `0`, `false` or `null` ask for none,
/// as in PM2.
fn cron_restart(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    process.cron_restart = match value {
        Value::String(text) => Some(text.clone()),
        Value::Null | Value::Bool(false) => None,
        other if number(other) == Some(0.0) => None,
        other => return Err(format!("expected a cron expression, got {}", short(other))),
    };
    Ok(())
}

/// `stop_exit_codes`: one code or an array of them, each 0 to 255.
fn stop_exit_codes(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    let items = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        one => vec![one],
    };
    process.stop_exit_codes = items
        .into_iter()
        .map(|item| {
            number(item)
                .filter(|n| n.fract() == 0.0 && (0.0..=255.0).contains(n))
                .map(|n| n as u8)
                .ok_or_else(|| format!("expected exit codes from 0 to 255, got {}", short(item)))
        })
        .collect::<Result<_, _>>()?;
    Ok(())
}

fn boolean(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| format!("expected true or false, got {}", short(value)))
}

/// A string, or words: an array of strings (numbers as they read), or one string split
/// as PM2 splits it.
fn words(value: &Value) -> Result<Vec<String>, String> {
    match value {
        Value::String(text) => Ok(split_like_pm2(text)),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(format!("expected strings, got {}", short(other))),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Err(format!(
            "expected a string or an array, got {}",
            short(other)
        )),
    }
}

/// PM2's split of a string where an array is expected (`lib/tools/Config.js`): words
/// apart from white space; `"..."` and `'...'` are one word without their quotes, and
/// `key="a b"` one word with them.
fn split_like_pm2(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let quoted = |at: usize| -> Option<usize> {
            let quote = *chars.get(at)?;
            if quote != '"' && quote != '\'' {
                return None;
            }
            chars[at + 1..]
                .iter()
                .position(|&c| c == quote)
                .map(|end| at + 1 + end + 1)
        };
        // key="..." or key='...'
        let key_end = chars[i..]
            .iter()
            .position(|&c| c.is_whitespace() || c == '"' || c == '\'' || c == '=')
            .map(|n| i + n);
        if let Some(eq) = key_end.filter(|&eq| eq > i && chars[eq] == '=')
            && let Some(end) = quoted(eq + 1)
        {
            words.push(chars[start..end].iter().collect());
            i = end;
            continue;
        }
        if let Some(end) = quoted(i) {
            words.push(chars[start + 1..end - 1].iter().collect());
            i = end;
            continue;
        }
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        words.push(chars[start..i].iter().collect());
    }
    words.retain(|word: &String| !word.trim().is_empty());
    words
}

fn interpreter(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    match value {
        // PM2's word for "runs by itself".
        Value::String(program) if program == "none" || program.is_empty() => {
            process.interpreter = None;
        }
        Value::String(program) => process.interpreter = Some(program.clone()),
        other => return Err(format!("expected a program, got {}", short(other))),
    }
    Ok(())
}

/// Milliseconds (a number), or PM2's `10s`, `2m`, `1h`.
fn milliseconds(value: &Value) -> Result<Duration, String> {
    if let Some(ms) = number(value) {
        if !(0.0..=u64::MAX as f64).contains(&ms) {
            return Err(format!("{ms} is not a number of milliseconds"));
        }
        return Ok(Duration::from_millis(ms as u64));
    }
    let text = value
        .as_str()
        .ok_or_else(|| format!("expected milliseconds, got {}", short(value)))?;
    let unit = match text.chars().last() {
        Some('h') => 3_600_000.0,
        Some('m') => 60_000.0,
        Some('s') => 1_000.0,
        _ => {
            return Err(format!(
                "'{text}' is not a duration like 1000, '10s' or '2m'"
            ));
        }
    };
    let amount: f64 = text[..text.len() - 1]
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 1000, '10s' or '2m'"))?;
    if !(0.0..=1e15).contains(&amount) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_millis((amount * unit) as u64))
}

fn max_restarts(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    let n = number(value)
        .filter(|n| n.fract() == 0.0 && *n >= 0.0)
        .ok_or_else(|| format!("expected a whole number, got {}", short(value)))?;
    let n = bounds::count(MAX_RESTARTS, n as u64)?;
    process.max_restarts = Some(u32::try_from(n).map_err(|err| err.to_string())?);
    Ok(())
}

fn min_uptime(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    process.min_uptime = Some(bounds::duration(MIN_UPTIME_MS, milliseconds(value)?)?);
    Ok(())
}

fn kill_timeout(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    process.kill_timeout = Some(bounds::duration(KILL_TIMEOUT_MS, milliseconds(value)?)?);
    Ok(())
}

/// PM2's `max_memory_restart`: a size with PM2's units (`"300M"`, `"1G"`, `"512K"`, and
/// velos's own like `"200MiB"`), or a number of bytes, as PM2 reads a bare number (and
/// writes the limit in its dump.pm2). The range refuses what PM2 would take as a few
/// bytes (`300`), which would restart the app forever.
fn max_memory_restart(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    let bare = number(value);
    let bytes = match (value, bare) {
        (_, Some(n)) if n.fract() == 0.0 && n >= 0.0 => n as u64,
        (Value::String(text), None) => crate::size::parse_size(text)?,
        _ => {
            return Err(format!(
                "expected a size like \"300M\" or a number of bytes, got {}",
                short(value)
            ));
        }
    };
    let bytes = bounds::memory(bytes).map_err(|err| {
        if bare.is_some() && bytes < 1 << 20 {
            format!("{err} (PM2 reads a bare number as bytes: write \"{bytes}M\" for MiB)")
        } else {
            err
        }
    })?;
    process.max_memory = Some(bytes);
    Ok(())
}

/// PM2's `wait_ready`: the app calls `process.send('ready')`, velos's `--ready message`.
fn wait_ready(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    if boolean(value)? {
        process.ready = Some("message".into());
    }
    Ok(())
}

/// PM2's `listen_timeout`: how long to wait for `wait_ready` (milliseconds).
fn ready_timeout(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    let timeout = milliseconds(value)?;
    process.ready_timeout = Some(bounds::duration(READY_TIMEOUT_MS, timeout)?);
    Ok(())
}

fn string(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, got {}", short(value)))
}

/// PM2's `instances`: a count, or as PM2 reads it `max` and 0 (one per CPU) or a negative
/// number (that many fewer than the CPUs, at least one).
fn instances(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    let cpus = i64::from(bounds::cpus());
    let count = match (value.as_str(), number(value)) {
        (Some("max"), _) => cpus,
        (_, Some(n)) if n.fract() == 0.0 && n == 0.0 => cpus,
        (_, Some(n)) if n.fract() == 0.0 && n < 0.0 => (cpus + n as i64).max(1),
        (_, Some(n)) if n.fract() == 0.0 => n as i64,
        _ => {
            return Err(format!(
                "expected a number or \"max\", got {}",
                short(value)
            ));
        }
    };
    let count = bounds::count(INSTANCES, u64::try_from(count).unwrap_or(u64::MAX))?;
    process.instances = Some(u32::try_from(count).map_err(|err| err.to_string())?);
    Ok(())
}

/// PM2 sets `PORT` from `port`.
fn port(process: &mut ProcessArgs, value: &Value) -> Result<(), String> {
    let port = env_value(value);
    process.env.push(("PORT".into(), port));
    Ok(())
}

/// An environment value as node passes it to a child: strings as they are, objects as
/// JSON (PM2 stringifies them), anything else as JavaScript writes it.
fn env_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn env_pairs(value: &Value, key: &str) -> Result<Vec<(String, String)>, String> {
    match value {
        Value::Object(map) => Ok(map
            .iter()
            .map(|(name, value)| (name.clone(), env_value(value)))
            .collect()),
        Value::Null => Ok(Vec::new()),
        other => Err(format!("'{key}' is not an object but {}", short(other))),
    }
}

/// PM2's camelCase spelling of a key: `max_memory_restart` -> `maxMemoryRestart`.
fn camel(key: &str) -> String {
    let mut out = String::new();
    for (i, part) in key.split('_').enumerate() {
        if i > 0 && part.len() > 1 {
            let mut chars = part.chars();
            out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            out.push_str(chars.as_str());
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Variables PM2 sets for its own use, which a dump's environment holds.
fn pm2_internal(key: &str) -> bool {
    key.starts_with("PM2_")
        || key.starts_with("pm_")
        || key.starts_with("pm2_")
        || matches!(
            key,
            "unique_id"
                | "NODE_APP_INSTANCE"
                | "axm_actions"
                | "axm_monitor"
                | "axm_options"
                | "axm_dynamic"
                | "vizion_running"
                | "km_link"
                | "status"
                | "restart_time"
                | "created_at"
                | "pm_uptime"
                | "unstable_restarts"
                | "version"
                | "node_version"
                | "instance_var"
                | "exit_code"
                | "username"
                | "windowsHide"
                | "namespace"
        )
}

/// One app object, mapped; and whether it had the `env_NAME` asked for.
fn app(
    mut object: Map<String, Value>,
    env_name: Option<&str>,
    source: Source,
) -> Result<(Pm2App, bool)> {
    // Each key under its canonical name: the canonical spelling wins, then the aliases
    // in PM2's order.
    let mut values: Vec<(&str, Key, Value)> = Vec::new();
    for &(key, aliases, handling) in KEYS {
        let camel = camel(key);
        let mut spellings = vec![key];
        if camel != key {
            spellings.push(&camel);
        }
        spellings.extend(aliases.iter().copied());
        let mut found = None;
        for spelling in spellings {
            if let Some(value) = object.remove(spelling)
                && found.is_none()
                && !value.is_null()
            {
                found = Some(value);
            }
        }
        if let Some(value) = found {
            values.push((key, handling, value));
        }
    }
    let take = |key: &str, values: &[(&str, Key, Value)]| {
        values
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, _, value)| value.clone())
    };

    // PM2's dump spells the resolved settings its own way.
    let (script, cwd) = match source {
        Source::Ecosystem => (take("script", &values), take("cwd", &values)),
        Source::Dump => (
            object
                .remove("pm_exec_path")
                .or_else(|| take("script", &values)),
            object.remove("pm_cwd").or_else(|| take("cwd", &values)),
        ),
    };
    let script = match script {
        Some(Value::String(script)) if !script.trim().is_empty() => script,
        Some(other) => bail!("'script' is not a path or command but {}", short(&other)),
        None => bail!(
            "an app has no 'script'{}",
            take("name", &values)
                .map(|name| format!(" (app {})", short(&name)))
                .unwrap_or_default()
        ),
    };
    let name = match take("name", &values) {
        Some(Value::String(name)) => name,
        Some(other) => bail!("'name' is not a string but {}", short(&other)),
        // PM2's renderApplicationName: the base name without its last extension.
        None => default_name(Path::new(&script)).unwrap_or_default(),
    };
    validate_name(&name).map_err(|err| anyhow!("app '{name}': {err}"))?;
    let at = |err: String| anyhow!("app '{name}': {err}");

    let mut process = ProcessArgs {
        script,
        name: Some(name.clone()),
        script_in_cwd: true,
        ..ProcessArgs::default()
    };
    match cwd {
        Some(Value::String(cwd)) => process.cwd = Some(cwd),
        Some(other) => return Err(at(format!("'cwd' is not a path but {}", short(&other)))),
        None => {}
    }

    // env, then env_NAME on top (PM2's mergeEnvironmentVariables).
    if let Some(env) = take("env", &values) {
        let env = match (source, env) {
            // A dump's env is the whole environment PM2 gave the process, with PM2's own
            // bookkeeping in it: only the variables (strings) that are not PM2's.
            (Source::Dump, Value::Object(map)) => Value::Object(
                map.into_iter()
                    .filter(|(key, value)| value.is_string() && !pm2_internal(key))
                    .collect(),
            ),
            (_, env) => env,
        };
        process.env.extend(env_pairs(&env, "env").map_err(at)?);
    }
    let mut had_env = true;
    if let Some(env_name) = env_name {
        let key = format!("env_{env_name}");
        match object.remove(&key) {
            Some(env) => process.env.extend(env_pairs(&env, &key).map_err(at)?),
            None => had_env = false,
        }
    }

    // PM2's cluster mode shares one port between node instances; velos's instances are
    // separate processes, which share a port through `listen`.
    let cluster = take("exec_mode", &values)
        .is_some_and(|mode| matches!(mode.as_str(), Some("cluster" | "cluster_mode")));
    let mut unsupported = Vec::new();
    for (key, handling, value) in values {
        match handling {
            Read => {}
            Maps(map) => {
                map(&mut process, &value).map_err(|err| at(format!("field '{key}': {err}")))?
            }
            Unsupported(neutral) => {
                if !neutral(&value) {
                    unsupported.push((key.to_owned(), value));
                }
            }
        }
    }
    match source {
        // Other environments (`env_staging`) are for other `--env` names; any other key
        // is one velos does not know, which is never dropped silently.
        Source::Ecosystem => unsupported.extend(
            object
                .into_iter()
                .filter(|(key, _)| !key.starts_with("env_")),
        ),
        // The rest of a dump is PM2's bookkeeping and the flattened environment.
        Source::Dump => {}
    }
    Ok((
        Pm2App {
            name,
            process,
            unsupported,
            cluster,
        },
        had_env,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: Value) -> Pm2App {
        app(
            value.as_object().unwrap().clone(),
            Some("production"),
            Source::Ecosystem,
        )
        .unwrap()
        .0
    }

    #[test]
    fn ecosystem_files_are_known_by_pm2s_extensions() {
        for file in [
            "ecosystem.config.js",
            "x/pm2.config.cjs",
            "a.config.mjs",
            "apps.json",
            "p.yml",
            "p.YAML",
        ] {
            assert!(is_ecosystem(file), "{file}");
        }
        for file in ["app.js", "server.cjs", "velos.toml", "json"] {
            assert!(!is_ecosystem(file), "{file}");
        }
        assert!(is_dump("/root/.pm2/dump.pm2") && !is_dump("dump.json"));
    }

    #[test]
    fn every_field_maps_or_is_listed() {
        let app = one(serde_json::json!({
            "name": "api",
            "script": "server.js",
            "args": "--port 3000 --title 'my app' key=\"a b\"",
            "cwd": "srv",
            "env": {"NODE_ENV": "development", "N": 1, "OBJ": {"a": 1}},
            "env_production": {"NODE_ENV": "production"},
            "env_staging": {"NODE_ENV": "staging"},
            "interpreter": "/usr/bin/node",
            "nodeArgs": ["--max-old-space-size=512"],
            "autorestart": false,
            "max_restarts": "5",
            "min_uptime": "10s",
            "kill_timeout": 3000,
            "port": 8080,
            "instances": 4,
            "exec_mode": "cluster",
            "watch": false,
            "max_memory_restart": "300M",
            "cron_restart": "0 3 * * *",
            "merge_logs": true,
            "wait_ready": true,
            "listen_timeout": 8000,
            "stop_exit_codes": [0, "3"],
            "made_up_key": 1,
        }));
        assert_eq!(app.name, "api");
        let p = &app.process;
        assert_eq!(p.script, "server.js");
        assert_eq!(p.cwd.as_deref(), Some("srv"));
        assert!(p.script_in_cwd);
        assert_eq!(
            p.args,
            ["--port", "3000", "--title", "my app", "key=\"a b\""]
        );
        assert_eq!(p.interpreter.as_deref(), Some("/usr/bin/node"));
        assert_eq!(p.interpreter_args, ["--max-old-space-size=512"]);
        assert_eq!(p.autorestart, Some(false));
        assert_eq!(p.max_restarts, Some(5));
        assert_eq!(p.min_uptime, Some(Duration::from_secs(10)));
        assert_eq!(p.kill_timeout, Some(Duration::from_secs(3)));
        let env: BTreeMap<_, _> = p.env.iter().cloned().collect();
        assert_eq!(env["NODE_ENV"], "production", "env_production over env");
        assert_eq!(
            (env["N"].as_str(), env["OBJ"].as_str()),
            ("1", r#"{"a":1}"#)
        );
        assert_eq!(env["PORT"], "8080");
        assert_eq!(p.ready.as_deref(), Some("message"), "wait_ready");
        assert_eq!(
            p.ready_timeout,
            Some(Duration::from_secs(8)),
            "listen_timeout"
        );
        assert_eq!(p.instances, Some(4));
        assert_eq!(p.max_memory, Some(300 << 20));
        assert_eq!(p.stop_exit_codes, [0, 3]);
        assert!(app.cluster);
        let listed: Vec<&str> = app.unsupported.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(listed, ["merge_logs", "made_up_key"]);
        assert_eq!(p.cron_restart.as_deref(), Some("0 3 * * *"));
    }

    #[test]
    fn memory_limits_read_as_pm2_reads_them() {
        let limit = |value: Value| {
            let mut process = ProcessArgs::default();
            max_memory_restart(&mut process, &value).map(|()| process.max_memory.unwrap())
        };
        assert_eq!(limit(serde_json::json!("300M")), Ok(300 << 20));
        assert_eq!(limit(serde_json::json!("1G")), Ok(1 << 30));
        assert_eq!(limit(serde_json::json!("2048K")), Ok(2 << 20));
        assert!(
            !limit(serde_json::json!("512K"))
                .unwrap_err()
                .contains("bare")
        );
        assert_eq!(limit(serde_json::json!(314_572_800)), Ok(300 << 20));
        assert_eq!(limit(serde_json::json!("314572800")), Ok(300 << 20));
        assert_eq!(
            limit(serde_json::json!(300)).unwrap_err(),
            "300 B is out of range: allowed 1.0 MiB to 1024.0 TiB (PM2 reads a bare number \
             as bytes: write \"300M\" for MiB)"
        );
        assert!(limit(serde_json::json!(true)).is_err());
        assert!(limit(serde_json::json!("lots")).is_err());
    }

    #[test]
    fn defaults_aliases_and_errors_follow_pm2() {
        let worker = one(serde_json::json!({"cmd": "bin/worker.py", "exec_interpreter": "none"}));
        assert_eq!(worker.name, "worker");
        assert_eq!(worker.process.script, "bin/worker.py");
        assert_eq!(worker.process.interpreter, None);
        assert!(worker.unsupported.is_empty());

        let (_, had) = app_of(serde_json::json!({"script": "a.js"}));
        assert!(!had, "no env_production");

        let err = app(
            serde_json::json!({"script": "a.js", "min_uptime": "soon"})
                .as_object()
                .unwrap()
                .clone(),
            None,
            Source::Ecosystem,
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "app 'a': field 'min_uptime': 'soon' is not a duration like 1000, '10s' or '2m'"
        );
        let err = app(
            serde_json::json!({"name": "all", "script": "a.js"})
                .as_object()
                .unwrap()
                .clone(),
            None,
            Source::Ecosystem,
        )
        .unwrap_err();
        assert!(format!("{err:#}").starts_with("app 'all': "), "{err:#}");
    }

    fn app_of(value: Value) -> (Pm2App, bool) {
        app(
            value.as_object().unwrap().clone(),
            Some("production"),
            Source::Ecosystem,
        )
        .unwrap()
    }

    #[test]
    fn apps_are_found_where_pm2_looks() {
        let shown = "e.json";
        let file = apps(
            serde_json::json!({"apps": [{"script": "a.js"}, {"script": "b.js"}]}),
            shown,
            None,
        )
        .unwrap();
        assert_eq!(file.apps.len(), 2);
        let file = apps(serde_json::json!({"pm2": {"script": "a.js"}}), shown, None).unwrap();
        assert_eq!(file.apps[0].name, "a");
        let file = apps(serde_json::json!([{"script": "a.js"}]), shown, None).unwrap();
        assert_eq!(file.apps[0].name, "a");
        let file = apps(
            serde_json::json!({"script": "a.js", "name": "x"}),
            shown,
            None,
        )
        .unwrap();
        assert_eq!(file.apps[0].name, "x");
        assert!(apps(serde_json::json!({"apps": []}), shown, None).is_err());
    }

    #[test]
    fn watch_keys_map_and_user_ignores_are_said_to_add_to_the_builtin_ones() {
        let on = one(serde_json::json!({"script": "a.js", "watch": true}));
        assert_eq!(on.process.watch, ["."]);
        assert!(on.unsupported.is_empty());
        let file = apps(
            serde_json::json!({"apps": [{
                "name": "api",
                "script": "a.js",
                "watch": ["src", "config"],
                "ignore_watch": ["uploads", "*.sqlite"],
                "watch_delay": 1000,
            }]}),
            "eco.json",
            None,
        )
        .unwrap();
        let p = &file.apps[0].process;
        assert_eq!(p.watch, ["src", "config"]);
        assert_eq!(p.watch_ignore, ["uploads", "*.sqlite"]);
        assert_eq!(p.watch_delay, Some(Duration::from_secs(1)));
        assert_eq!(
            file.warnings("eco.json", None),
            [
                "eco.json: the ignore_watch of 'api' adds to velos's built-in watch ignores \
              (.git, node_modules, *.log, editor swap files, ...), where PM2's replaces them"
            ]
        );
        let one_path =
            one(serde_json::json!({"script": "a.js", "watch": "src", "ignoreWatch": "x y"}));
        assert_eq!(one_path.process.watch, ["src"]);
        assert_eq!(one_path.process.watch_ignore, ["x y"]);
        assert!(
            app(
                serde_json::json!({"script": "a.js", "ignore_watch": ["[oops"]})
                    .as_object()
                    .unwrap()
                    .clone(),
                None,
                Source::Ecosystem
            )
            .is_err()
        );
    }

    #[test]
    fn strings_split_as_pm2_splits_them() {
        assert_eq!(
            split_like_pm2(r#"  -m "a b" 'c d' x=1 k="v w"  tail"#),
            ["-m", "a b", "c d", "x=1", "k=\"v w\"", "tail"]
        );
        assert!(split_like_pm2("   ").is_empty());
        assert_eq!(camel("max_memory_restart"), "maxMemoryRestart");
        assert_eq!(camel("node_args"), "nodeArgs");
    }

    #[test]
    fn the_warning_is_one_line_naming_apps_and_keys() {
        let file = apps(
            serde_json::json!({"apps": [
                {"name": "api", "script": "a.js", "instances": 4, "uid": "www"},
                {"name": "ok", "script": "b.js", "watch": false, "instances": 1},
            ]}),
            "eco.config.js",
            Some("production"),
        )
        .unwrap();
        let warnings = file.warnings("eco.config.js", Some("production"));
        assert_eq!(
            warnings,
            [
                "eco.config.js: velos does not support these keys and ignores them: 'api': \
                 uid=\"www\"",
                "eco.config.js: no env_production in 'api', 'ok'; they get env alone"
            ]
        );
    }
}
