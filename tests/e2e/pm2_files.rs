//! PM2's files: ecosystem files (`.config.js`, `.json`, `.yaml`) started, stopped and
//! deleted as PM2 reads them (`--env NAME`, `--only`), imported into a velos.toml
//! (golden files in `tests/fixtures/pm2/*.golden.toml`), and PM2's `dump.pm2` imported;
//! `wait_ready` makes the start wait for the app's `process.send('ready')`.
//! Keys velos does not support are listed in one warning line. JavaScript fixtures are
//! skipped with a message when node is not on PATH.

use std::path::{Path, PathBuf};

use velos_proto::Stream;

use crate::harness::{TestHome, on_path};

/// A copy of `tests/fixtures/pm2` in a scratch directory (so that `__dirname` and the
/// files' paths are the copy's).
fn project() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("vq")
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pm2");
    for entry in std::fs::read_dir(&fixtures).expect("tests/fixtures/pm2") {
        let entry = entry.expect("a fixture");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy a fixture");
    }
    dir
}

fn golden(name: &str) -> String {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pm2")
        .join(format!("{name}.golden.toml"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn no_node() -> bool {
    if on_path("node") {
        return false;
    }
    eprintln!("skipped: `node` is not on PATH");
    true
}

/// `velos import FILE ARGS -o -` in the project: its stdout is the golden file, and its
/// stderr's first line is `warning` (the unsupported keys, or the next warning when every
/// key is supported).
#[track_caller]
fn imports_as_golden(file: &str, args: &[&str], warning: &str) {
    let home = TestHome::new();
    let dir = project();
    let mut command = vec!["import", file];
    command.extend(args);
    command.extend(["-o", "-"]);
    let output = home
        .cmd(&command)
        .current_dir(dir.path())
        .env("FIXTURE_GREETING", "hello")
        .run();
    output.success();
    assert_eq!(
        output.stdout_str(),
        golden(file),
        "{file} imported\n{output}"
    );
    let stderr = output.stderr_str();
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(first, warning, "{output}");
}

#[test]
fn a_js_ecosystem_file_using_dirname_env_and_env_production_imports_as_golden() {
    if no_node() {
        return;
    }
    imports_as_golden(
        "ecosystem.config.js",
        &["--env", "production"],
        "warning: ecosystem.config.js: 'web' asked for PM2's cluster mode: velos runs the instances as separate processes; \
         to share one port, give them `listen` (velos.toml) or --listen, and have the app \
         take its socket from fd 3",
    );
}

#[test]
fn a_json_ecosystem_file_imports_as_golden() {
    imports_as_golden(
        "ecosystem.json",
        &[],
        "warning: ecosystem.json: velos does not support these keys and ignores them: \
         'worker': restart_delay=4000, out_file=\"/var/log/worker.out\"",
    );
}

#[test]
fn a_yaml_ecosystem_file_imports_as_golden() {
    imports_as_golden(
        "ecosystem.yaml",
        &["--env", "production"],
        "warning: ecosystem.yaml: the ignore_watch of 'worker' adds to velos's built-in \
         watch ignores (.git, node_modules, *.log, editor swap files, ...), where PM2's \
         replaces them",
    );
}

#[test]
fn a_pm2_dump_imports_as_golden() {
    imports_as_golden(
        "dump.pm2",
        &[],
        "warning: dump.pm2: 'api' asked for PM2's cluster mode: velos runs the instances as separate processes; \
         to share one port, give them `listen` (velos.toml) or --listen, and have the app \
         take its socket from fd 3",
    );
}

#[test]
fn an_imported_velos_toml_starts_the_same_apps() {
    let home = TestHome::new();
    let dir = project();
    let output = home
        .cmd(&["import", "ecosystem.json"])
        .current_dir(dir.path())
        .run();
    output.success();
    assert_eq!(
        output.stdout_str(),
        "wrote velos.toml: 1 app (worker); start with 'velos start velos.toml'\n"
    );
    // Not overwritten without --force.
    let again = home
        .cmd(&["import", "ecosystem.json"])
        .current_dir(dir.path())
        .run();
    assert_eq!(
        again.error(),
        "error: velos.toml exists: pass --force to overwrite it, or -o FILE to write another"
    );
    home.cmd(&["start", "velos.toml"])
        .current_dir(dir.path())
        .run()
        .success();
    home.wait_running("worker");
    home.wait_log("worker", Stream::Out, "worker json-jobs \n");
}

#[test]
fn a_js_ecosystem_file_starts_its_apps_with_env_production() {
    if no_node() {
        return;
    }
    let home = TestHome::new();
    let dir = project();
    let output = home
        .cmd(&["start", "ecosystem.config.js", "--env", "production"])
        .current_dir(dir.path())
        .env("FIXTURE_GREETING", "hello")
        .run();
    output.success();
    assert!(
        !output.stderr_str().contains("does not support"),
        "every key is supported: {output}"
    );
    assert!(
        output
            .stderr_str()
            .contains("'web' asked for PM2's cluster mode"),
        "{output}"
    );
    assert_eq!(home.entry("worker")["cron_restart"], "0 3 * * *");
    home.wait_running("web");
    home.wait_running("worker");
    home.wait_log(
        "web",
        Stream::Out,
        r#"web production hello info ["--no-warnings"] --port|3000|--title|my web"#,
    );
    // The worker has no env_production: it gets env alone.
    home.wait_log("worker", Stream::Out, "worker jobs \n");
    let web = home.entry("web");
    assert_eq!(web["kill_timeout_ms"], 3000, "{web}");
    // wait_ready: the start waited for web.js's process.send('ready').
    assert_eq!(web["ready"], "message", "{web}");
    assert_eq!(web["ready_timeout_ms"], 20000, "{web}");
    assert_eq!(web["status"], "running", "{web}");

    // stop and delete act on the file's apps.
    let stopped = home
        .cmd(&["stop", "ecosystem.config.js"])
        .current_dir(dir.path())
        .run();
    stopped.success();
    // instances: 2 is two processes, web:0 and web:1.
    assert_eq!(
        stopped.stdout_str(),
        "stopped 'web:0' (id 0)\nstopped 'web:1' (id 1)\nstopped 'worker' (id 2)\n"
    );
    home.cmd(&["delete", "ecosystem.config.js"])
        .current_dir(dir.path())
        .run()
        .success();
    assert!(home.list().is_empty());
}

#[test]
fn a_yaml_file_starts_only_the_apps_asked_for() {
    let home = TestHome::new();
    let dir = project();
    home.cmd(&[
        "start",
        "ecosystem.yaml",
        "--only",
        "worker",
        "--env",
        "production",
    ])
    .current_dir(dir.path())
    .run()
    .success();
    home.wait_running("worker");
    home.wait_log("worker", Stream::Out, "worker yaml-production-jobs \n");
    let names: Vec<String> = home.list().into_iter().map(|proc| proc.name).collect();
    assert_eq!(names, ["worker"]);

    let output = home
        .cmd(&["start", "ecosystem.yaml", "--only", "nope,worker"])
        .current_dir(dir.path())
        .run();
    assert_eq!(
        output.error(),
        "error: ecosystem.yaml has no app named 'nope' (its apps: worker, server)"
    );
    let output = home.cmd(&["start", "web.js", "--env", "production"]).run();
    assert_eq!(
        output.error(),
        "error: --env production names an environment of an ecosystem file; to set a \
         variable, write --env KEY=VALUE"
    );
}

#[test]
fn a_js_ecosystem_file_without_node_is_refused_with_what_to_do() {
    let home = TestHome::new();
    let dir = project();
    let output = home
        .cmd(&["start", "ecosystem.config.js"])
        .current_dir(dir.path())
        .env("PATH", "/nonexistent")
        .run();
    assert_eq!(
        output.error(),
        "error: ecosystem.config.js is JavaScript, which velos reads with node, and node is \
         not on PATH: install node, or convert the file with 'velos import \
         ecosystem.config.js' where node is"
    );
    assert!(home.list().is_empty(), "nothing started");
}
