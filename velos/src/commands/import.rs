//! `velos import`: a PM2 ecosystem file or PM2's dump.pm2 written as a velos.toml.
//!
//! The file is read as `velos start` reads it (see `ecosystem`), so the velos.toml starts
//! the same programs with the same settings: paths become absolute, then relative to the
//! new file's directory when they are below it (a velos.toml's paths are relative to the
//! file, a PM2 file's to the current directory). Keys velos does not support are named in
//! the warning and kept as comments under their app, so nothing is lost silently.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::ImportArgs;
use crate::config::{self, Config, Selection};
use crate::ecosystem;
use crate::process_args::ProcessArgs;

/// Runs `velos import`.
pub fn run(args: &ImportArgs) -> Result<()> {
    let file = &args.file;
    if file.ends_with(".toml") || !(config::is_config(file) || ecosystem::is_dump(file)) {
        bail!(
            "'{}' is not a PM2 file: velos import reads an ecosystem file (.config.js, \
             .config.cjs, .config.mjs, .json, .yaml, .yml) or PM2's dump.pm2",
            velos_proto::echo(file)
        );
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let selection = Selection {
        only: Vec::new(),
        env_name: args.env.clone(),
    };
    let output = args.output.as_deref().unwrap_or("velos.toml");
    let target = std::path::absolute(cwd.join(output))
        .with_context(|| format!("resolving the path of '{output}'"))?;
    if output != "-" && target.exists() && !args.force {
        bail!("{output} exists: pass --force to overwrite it, or -o FILE to write another");
    }
    let config = Config::load(file, &cwd, &selection)?;
    config.warn();
    if output == "-" {
        let text = render(&config, &cwd, file);
        io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(());
    }
    let out_dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
    let text = render(&config, &out_dir, file);
    std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    let names: Vec<&str> = config.names().collect();
    writeln!(
        io::stdout().lock(),
        "wrote {output}: {} ({}); start with 'velos start {output}'",
        match names.len() {
            1 => "1 app".to_owned(),
            n => format!("{n} apps"),
        },
        names.join(", ")
    )?;
    Ok(())
}

/// The velos.toml text for `config`, its paths relative to `out_dir` where they are
/// below it.
fn render(config: &Config, out_dir: &Path, source: &str) -> String {
    let mut text = format!("# Imported from {source} by 'velos import'.\n");
    for name in config.names() {
        let Some((process, unsupported)) = config.process(name) else {
            continue;
        };
        text.push_str("\n[[apps]]\n");
        push(&mut text, "name", toml::Value::from(name));
        let workdir = process
            .cwd
            .as_ref()
            .map(|cwd| lexical(&config.dir().join(cwd)))
            .unwrap_or_else(|| config.dir().to_path_buf());
        let script_base = if process.script_in_cwd {
            &workdir
        } else {
            config.dir()
        };
        push(
            &mut text,
            "script",
            toml::Value::from(script_path(&process.script, script_base, out_dir)),
        );
        app_lines(&mut text, process, &workdir, out_dir);
        if !unsupported.is_empty() {
            text.push_str("# PM2 keys velos does not support (yet), not imported:\n");
            for (key, value) in unsupported {
                text.push_str(&format!("# {key} = {value}\n"));
            }
        }
    }
    text
}

/// The settings after `name` and `script`.
fn app_lines(text: &mut String, process: &ProcessArgs, workdir: &Path, out_dir: &Path) {
    let strings = |items: &[String]| {
        toml::Value::Array(items.iter().cloned().map(toml::Value::from).collect())
    };
    if !process.args.is_empty() {
        push(text, "args", strings(&process.args));
    }
    if workdir != out_dir {
        push(text, "cwd", toml::Value::from(relative(workdir, out_dir)));
    }
    if !process.env.is_empty() {
        // Later pairs win, as they do in a start.
        let env: BTreeMap<&str, &str> = process
            .env
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        let table: toml::Table = env
            .into_iter()
            .map(|(key, value)| (key.to_owned(), toml::Value::from(value)))
            .collect();
        push(text, "env", toml::Value::Table(table));
    }
    if let Some(interpreter) = &process.interpreter {
        push(text, "interpreter", toml::Value::from(interpreter.as_str()));
    }
    if !process.interpreter_args.is_empty() {
        push(text, "interpreter_args", strings(&process.interpreter_args));
    }
    if let Some(autorestart) = process.autorestart {
        push(text, "autorestart", toml::Value::from(autorestart));
    }
    if let Some(restart) = process.restart {
        push(text, "restart", toml::Value::from(restart.as_str()));
    }
    if let Some(cron) = &process.cron_restart {
        push(text, "cron_restart", toml::Value::from(cron.as_str()));
    }
    if !process.stop_exit_codes.is_empty() {
        let codes = process
            .stop_exit_codes
            .iter()
            .map(|&code| toml::Value::from(i64::from(code)))
            .collect();
        push(text, "stop_exit_codes", toml::Value::Array(codes));
    }
    if let Some(max_restarts) = process.max_restarts {
        push(
            text,
            "max_restarts",
            toml::Value::from(i64::from(max_restarts)),
        );
    }
    if let Some(min_uptime) = process.min_uptime {
        push(text, "min_uptime", duration(min_uptime));
    }
    if let Some(bytes) = process.max_memory {
        push(text, "max_memory_restart", toml::Value::from(size(bytes)));
    }
    if let Some(window) = process.max_memory_for {
        push(text, "max_memory_for", duration(window));
    }
    if let Some(kill_timeout) = process.kill_timeout {
        push(text, "kill_timeout", duration(kill_timeout));
    }
    if let Some(instances) = process.instances {
        push(text, "instances", toml::Value::from(i64::from(instances)));
    }
    if let Some(var) = &process.instance_var {
        push(text, "instance_var", toml::Value::from(var.as_str()));
    }
    if let Some(var) = &process.increment_var {
        push(text, "increment_var", toml::Value::from(var.as_str()));
    }
    if process.time {
        push(text, "time", toml::Value::from(true));
    }
    if let Some(ready) = &process.ready {
        push(text, "ready", toml::Value::from(ready.as_str()));
    }
    if let Some(ready_timeout) = process.ready_timeout {
        push(text, "ready_timeout", duration(ready_timeout));
    }
    // Relative to the app's cwd, in velos.toml as in the PM2 file.
    if process.watch == ["."] {
        push(text, "watch", toml::Value::from(true));
    } else if !process.watch.is_empty() {
        push(text, "watch", strings(&process.watch));
    }
    if !process.watch_ignore.is_empty() {
        push(text, "watch_ignore", strings(&process.watch_ignore));
    }
    if let Some(delay) = process.watch_delay {
        push(text, "watch_delay", duration(delay));
    }
}

/// `key = value`, the value in TOML's own spelling.
fn push(text: &mut String, key: &str, value: toml::Value) {
    text.push_str(&format!("{key} = {value}\n"));
}

/// `"5s"` when it is whole seconds, else milliseconds (which velos.toml reads too).
fn duration(duration: Duration) -> toml::Value {
    let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    if millis % 1000 == 0 {
        toml::Value::from(humantime::format_duration(duration).to_string())
    } else {
        toml::Value::from(millis)
    }
}

/// A size with the largest unit it is a whole number of (`"300M"`, `"1G"`), as
/// velos.toml reads it.
fn size(bytes: u64) -> String {
    for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
        if bytes.is_multiple_of(1 << shift) && bytes > 0 {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

/// The script as the velos.toml writes it: a file is made relative to `out_dir` (or
/// absolute); a program on PATH or a command string stays as written.
fn script_path(script: &str, base: &Path, out_dir: &Path) -> String {
    let path = lexical(&base.join(script));
    if path.is_file() {
        relative(&path, out_dir)
    } else {
        script.to_owned()
    }
}

/// `path` relative to `dir` when it is below it (`.` for `dir` itself), else absolute.
fn relative(path: &Path, dir: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(rest) if rest.as_os_str().is_empty() => ".".to_owned(),
        Ok(rest) => rest.to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

/// `path` absolute, with `.` and `..` taken out lexically (the files need not exist).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_below_the_output_become_relative() {
        let dir = Path::new("/p");
        assert_eq!(relative(Path::new("/p/a/b.js"), dir), "a/b.js");
        assert_eq!(relative(Path::new("/p"), dir), ".");
        assert_eq!(relative(Path::new("/q/x"), dir), "/q/x");
        assert_eq!(lexical(Path::new("/p/./a/../b")), PathBuf::from("/p/b"));
    }

    #[test]
    fn sizes_take_their_largest_whole_unit() {
        assert_eq!(size(300 << 20), "300M");
        assert_eq!(size(3 << 29), "1536M");
        assert_eq!(size(2 << 30), "2G");
        assert_eq!(size(1_500_000), "1500000B");
        assert_eq!(
            crate::bounds::parse_memory_limit(&size(3 << 29)),
            Ok(3 << 29)
        );
    }
}
