//! Commands as PM2 users type them: a program that is not a path is found on PATH
//! (`velos start npm -- start`), a string with spaces is split into words (no shell),
//! `--interpreter-args`/`--node-args` reach the interpreter, and a `.py` run by the
//! python3 velos chose writes its output unbuffered. Tests that need node, npm or
//! python3 are skipped with a message when it is not on PATH.

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use velos_proto::Stream;

use crate::harness::{TestHome, WAIT, free_port, on_path, wait_until};

/// A scratch directory for a test's project files.
fn project() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("vp")
        .tempdir_in("/tmp")
        .expect("a temporary directory")
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a fixture");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn skip_without(programs: &[&str]) -> bool {
    match programs.iter().find(|program| !on_path(program)) {
        Some(missing) => {
            eprintln!("skipped: `{missing}` is not on PATH");
            true
        }
        None => false,
    }
}

#[test]
fn npm_start_runs_the_start_script_of_the_package_json() {
    if skip_without(&["npm", "node"]) {
        return;
    }
    let home = TestHome::new();
    let dir = project();
    write(
        dir.path(),
        "package.json",
        r#"{"name": "fixture", "version": "1.0.0", "private": true,
            "scripts": {"start": "node server.js --from-npm"}}"#,
        0o644,
    );
    write(
        dir.path(),
        "server.js",
        "console.log('server up: ' + process.argv.slice(2).join(' '));\n\
         setInterval(() => {}, 1000);\n",
        0o644,
    );
    home.cmd(&["start", "npm", "--", "start"])
        .current_dir(dir.path())
        .env("npm_config_update_notifier", "false")
        .run()
        .success();
    let npm = home.wait_running("npm");
    home.wait_log("npm", Stream::Out, "server up: --from-npm");
    let info = home.velos(&["info", "npm", "--json"]);
    info.success();
    let script = info.json()["script"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        Path::new(&script).is_absolute() && script.ends_with("/npm"),
        "the script is npm found on PATH: {script}"
    );
    assert!(npm.pid.is_some());
}

#[test]
fn a_command_string_is_split_into_words_without_a_shell() {
    let home = TestHome::new();
    let dir = project();
    // Quotes group words; `$1` is not expanded by velos (no shell runs the string), but
    // by the `sh -c` it starts, which gets 'two words' as one argument.
    home.cmd(&[
        "start",
        r#"sh -c 'echo "got: $1 and $HOME_IS_NOT_EXPANDED_HERE"; exec sleep 30' sh 'two words'"#,
    ])
    .current_dir(dir.path())
    .run()
    .success();
    home.wait_running("sh");
    home.wait_log("sh", Stream::Out, "got: two words and \n");

    let output = home.velos(&["start", "sh -c 'unclosed"]);
    assert_eq!(
        output.error(),
        "error: cannot split the command 'sh -c 'unclosed' into words: a quote is not closed"
    );
}

#[test]
fn a_program_name_is_looked_up_on_path() {
    let home = TestHome::new();
    let dir = project();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir bin");
    write(
        &bin,
        "greet",
        "#!/bin/sh\necho \"greet on path: $*\"\nexec sleep 30\n",
        0o755,
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    home.cmd(&["start", "greet", "--", "hello", "world"])
        .current_dir(dir.path())
        .env("PATH", &path)
        .run()
        .success();
    home.wait_running("greet");
    home.wait_log("greet", Stream::Out, "greet on path: hello world");

    // Not on PATH: one line saying where velos looked.
    let output = home
        .cmd(&["start", "no-such-program-here"])
        .current_dir(dir.path())
        .run();
    let error = output.error();
    assert!(
        error.starts_with("error: script 'no-such-program-here' not found (looked at ")
            && error.ends_with(" and on PATH)"),
        "{error}"
    );
}

#[test]
fn python3_from_path_serves_with_dash_m() {
    if skip_without(&["python3"]) {
        return;
    }
    let home = TestHome::new();
    let dir = project();
    let port = free_port().to_string();
    home.cmd(&[
        "start",
        "python3",
        "--",
        "-m",
        "http.server",
        &port,
        "--bind",
        "127.0.0.1",
    ])
    .current_dir(dir.path())
    .run()
    .success();
    home.wait_running("python3");
    wait_until(WAIT, &format!("python3 -m http.server on {port}"), || {
        TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port")))
            .map(drop)
            .map_err(|error| error.to_string())
    });
}

#[test]
fn a_py_script_run_by_velos_python3_writes_unbuffered_unless_the_user_says() {
    if skip_without(&["python3"]) {
        return;
    }
    let home = TestHome::new();
    let dir = project();
    // No flush: with a pipe for stdout, Python keeps this in its buffer while it sleeps,
    // unless PYTHONUNBUFFERED is set.
    write(
        dir.path(),
        "app.py",
        "import os, time\nprint('unbuffered:', os.environ.get('PYTHONUNBUFFERED'))\ntime.sleep(60)\n",
        0o644,
    );
    // The test may run with PYTHONUNBUFFERED set (CI images often set it).
    home.cmd(&["start", "app.py"])
        .current_dir(dir.path())
        .env_remove("PYTHONUNBUFFERED")
        .run()
        .success();
    home.wait_log("app", Stream::Out, "unbuffered: 1\n");

    home.cmd(&[
        "start",
        "app.py",
        "--name",
        "own",
        "--env",
        "PYTHONUNBUFFERED=yes",
    ])
    .current_dir(dir.path())
    .run()
    .success();
    home.wait_log("own", Stream::Out, "unbuffered: yes\n");
}

#[test]
fn node_args_reach_node_before_the_script_and_survive_a_restart() {
    if skip_without(&["node"]) {
        return;
    }
    let home = TestHome::new();
    let dir = project();
    write(
        dir.path(),
        "app.js",
        "console.log('execArgv: ' + JSON.stringify(process.execArgv) + ' argv: ' + \
         JSON.stringify(process.argv.slice(2)));\nsetInterval(() => {}, 1000);\n",
        0o644,
    );
    home.cmd(&[
        "start",
        "app.js",
        "--node-args=--max-old-space-size=200 --no-warnings",
        "--",
        "--port",
        "1",
    ])
    .current_dir(dir.path())
    .run()
    .success();
    let line = r#"execArgv: ["--max-old-space-size=200","--no-warnings"] argv: ["--port","1"]"#;
    home.wait_log("app", Stream::Out, line);
    let first = home.log_file("app", Stream::Out);
    home.velos(&["restart", "app"]).success();
    wait_until(WAIT, "the line again after the restart", || {
        let log = String::from_utf8_lossy(&home.log_file("app", Stream::Out)).into_owned();
        match log.matches(line).count() {
            2 => Ok(()),
            _ => Err(log),
        }
    });
    assert!(!first.is_empty());

    // --interpreter-args is the same flag under PM2's other name.
    home.cmd(&[
        "start",
        "app.js",
        "--name",
        "other",
        "--interpreter-args",
        "--no-deprecation",
    ])
    .current_dir(dir.path())
    .run()
    .success();
    home.wait_log("other", Stream::Out, r#"execArgv: ["--no-deprecation"]"#);
}
