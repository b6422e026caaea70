//! No one let in: the home, its logs and every file velos writes are private to the user
//! (even under `umask 000`); the daemon refuses a peer of another uid even when the socket
//! is reachable; a name can never place a file outside `$VELOS_HOME/logs`; scripts and
//! arguments go to exec as they are, never through a shell.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use velos_proto::{ErrorCode, Request, StartParams, Stream, frame};
use velos_sdk::blocking::Client;

use crate::harness::{TestHome, bins, fixture, on_path, wait_until};

/// The uid (and gid) a root test drops to: `nobody`.
const STRANGER: u32 = 65534;

/// Every path under `root` (itself included), depth first.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut paths = vec![root.to_owned()];
    if root.is_dir() && !root.is_symlink() {
        let mut entries: Vec<PathBuf> = fs::read_dir(root)
            .map(|entries| {
                entries
                    .filter_map(|entry| Some(entry.ok()?.path()))
                    .collect()
            })
            .unwrap_or_default();
        entries.sort();
        for entry in entries {
            paths.extend(walk(&entry));
        }
    }
    paths
}

/// The permission bits of `path`.
#[track_caller]
fn mode(path: &Path) -> u32 {
    match fs::symlink_metadata(path) {
        Ok(metadata) => metadata.permissions().mode() & 0o777,
        Err(error) => panic!("no {}: {error}", path.display()),
    }
}

/// Runs `velos ARGS` in `home` under `umask 000`, so only modes velos sets itself are
/// private; fails the test unless it exits 0.
#[track_caller]
fn velos_with_umask_000(home: &TestHome, args: &[&str]) {
    let bins = bins();
    let out = tempfile::tempdir().expect("a temporary directory for the CLI's output");
    let (stdout, stderr) = (out.path().join("stdout"), out.path().join("stderr"));
    let file = |path: &Path| fs::File::create(path).expect("create an output file");
    // Files rather than pipes: a daemon that inherited them could not hang the test.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(&bins.velos)
        .args(args)
        .env("VELOS_HOME", home.path())
        .env("VELOS_DAEMON", &bins.velosd)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(file(&stdout))
        .stderr(file(&stderr))
        .spawn()
        .expect("run sh");
    // On a timeout the harness's cleanup kills it: it carries this home's VELOS_HOME.
    let status = wait_until(
        Duration::from_secs(30),
        &format!("`umask 000; velos {}` to finish", args.join(" ")),
        || child.try_wait().ok().flatten(),
    );
    assert!(
        status.success(),
        "`umask 000; velos {}` exited with {status}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        args.join(" "),
        fs::read_to_string(&stdout).unwrap_or_default(),
        fs::read_to_string(&stderr).unwrap_or_default(),
    );
}

#[test]
fn the_home_its_logs_and_every_file_are_private_even_under_umask_000() {
    let home = TestHome::new();
    // Let velos create the home itself.
    fs::remove_dir(home.path()).expect("remove the empty test home");
    velos_with_umask_000(
        &home,
        &[
            "start",
            &fixture("lines.sh"),
            "--name",
            "perms",
            "--",
            "3",
            "1",
        ],
    );
    home.wait_status("perms", "stopped");
    home.wait_log("perms", Stream::Out, "done\n");
    home.wait_log("perms", Stream::Err, "err 1\n");

    let paths = home.home();
    let expected = [
        (paths.root().to_owned(), 0o700),
        (paths.logs_dir(), 0o700),
        (paths.log_path("perms", Stream::Out), 0o600),
        (paths.log_path("perms", Stream::Err), 0o600),
        (paths.socket_path(), 0o600),
        (paths.daemon_log_path(), 0o600),
        (paths.pid_path(), 0o600),
    ];
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(path, want)| mode(path) != *want)
        .map(|(path, want)| {
            format!(
                "{}: expected {want:o}, got {:o}",
                path.display(),
                mode(path)
            )
        })
        .collect();
    assert!(wrong.is_empty(), "modes:\n{}", wrong.join("\n"));

    // Nothing else in the home lets the group or others in either.
    let open: Vec<String> = walk(home.path())
        .iter()
        .filter(|path| mode(path) & 0o077 != 0)
        .map(|path| format!("{} is {:o}", path.display(), mode(path)))
        .collect();
    assert!(open.is_empty(), "readable by others:\n{}", open.join("\n"));
}

#[test]
fn a_loose_home_is_made_private_when_the_daemon_starts() {
    let home = TestHome::new();
    let logs = home.home().logs_dir();
    fs::create_dir(&logs).expect("create logs/");
    for dir in [home.path(), logs.as_path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    }
    home.velos(&["ping"]).success();
    for dir in [home.path(), logs.as_path()] {
        assert_eq!(
            mode(dir),
            0o700,
            "{} after the daemon started: expected 700, got {:o}",
            dir.display(),
            mode(dir)
        );
    }
}

#[test]
fn a_peer_with_another_uid_is_refused_even_when_the_socket_is_reachable() {
    if !rustix::process::getuid().is_root() {
        println!("skipped: needs root to connect as a second uid");
        return;
    }
    if !on_path("python3") {
        println!("skipped: needs python3 to connect as a second uid");
        return;
    }
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let pid = home.ping().pid;
    // Open the door the file system guards, so only the daemon's own check is left.
    let socket = home.home().socket_path();
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).expect("chmod home");
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o666)).expect("chmod socket");

    let ping =
        frame::encode_frame(&Request::Ping.encode(1).expect("encode ping")).expect("encode frame");
    let hex: String = ping.iter().map(|byte| format!("{byte:02x}")).collect();
    // Drops to nobody, connects, sends a ping and reports what came back.
    let script = format!(
        r#"
import os, socket, sys
os.setgroups([])
os.setgid({STRANGER})
os.setuid({STRANGER})
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect failed:", e)
    sys.exit(2)
print("connected as uid", os.getuid())
try:
    s.sendall(bytes.fromhex(sys.argv[2]))
except OSError:
    pass  # the daemon may have closed first
try:
    data = s.recv(4096)
except ConnectionResetError:
    data = b""
except socket.timeout:
    print("no answer and no close within 5 s")
    sys.exit(3)
print("eof" if not data else "answered " + data.hex())
"#
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .arg(&socket)
        .arg(&hex)
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout,
        format!("connected as uid {STRANGER}\neof\n"),
        "expected uid {STRANGER} to connect and be closed on without an answer\n\
         --- stderr ---\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The owner is still served by the same daemon.
    assert_eq!(home.ping().pid, pid, "the daemon changed");
    home.velos(&["list"]).success();
}

#[test]
fn a_name_can_never_place_a_file_outside_the_logs_directory() {
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let base = home
        .path()
        .file_name()
        .expect("the home has a name")
        .to_string_lossy()
        .into_owned();
    // `../../<base>-escape` from logs/ is /tmp/<base>-escape-out.log.
    let escape = format!("../../{base}-escape");
    let absolute = format!("{}/abs", home.path().display());
    let names = [
        "../evil",
        "a/b",
        ".x",
        "..",
        ".",
        "logs/../../evil",
        escape.as_str(),
        absolute.as_str(),
    ];
    let sleeper = fixture("sleeper.sh");
    for name in names {
        home.velos(&["start", &sleeper, "--name", name]).error();
    }

    // The daemon refuses them too, whatever client sends them.
    let mut client = Client::connect(home.home().socket_path()).expect("connect");
    for name in names.iter().copied().chain(["a\0b", "a\nb", "a\\b"]) {
        let params = StartParams {
            script: sleeper.clone(),
            name: Some(name.to_owned()),
            ..StartParams::default()
        };
        match client.start(params) {
            Err(velos_sdk::Error::Daemon {
                code: ErrorCode::InvalidName,
                ..
            }) => {}
            other => {
                panic!("process.start with name {name:?}: expected invalid-name, got {other:?}")
            }
        }
    }
    let list = home.list();
    assert!(list.is_empty(), "a refused name added a process: {list:#?}");

    let logs: Vec<PathBuf> = walk(&home.home().logs_dir()).into_iter().skip(1).collect();
    assert!(logs.is_empty(), "files in logs/: {logs:#?}");
    let log_files: Vec<PathBuf> = walk(home.path())
        .into_iter()
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with("-out.log") || name.ends_with("-err.log") || name.contains("evil")
        })
        .collect();
    assert!(
        log_files.is_empty(),
        "log files in the home: {log_files:#?}"
    );
    for outside in [
        home.path().with_file_name(format!("{base}-escape-out.log")),
        home.path().with_file_name(format!("{base}-escape-err.log")),
    ] {
        assert!(!outside.exists(), "{} was created", outside.display());
    }
}

#[test]
fn scripts_and_arguments_reach_exec_as_they_are_never_through_a_shell() {
    let home = TestHome::new();
    let marker = home.path().join("pwned");
    let m = marker.display();
    let args: Vec<String> = vec![
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!(";touch {m}"),
        format!("&& touch {m}"),
        format!("| touch {m}"),
        format!("> {m}"),
        ";rm -rf".to_owned(),
        "a b".to_owned(),
        "  spaced  ".to_owned(),
        "*".to_owned(),
        "?".to_owned(),
        "$HOME".to_owned(),
        "~".to_owned(),
        "'single'".to_owned(),
        "\"double\"".to_owned(),
        "back\\slash".to_owned(),
        "-n".to_owned(),
        String::new(),
    ];
    let mut command = vec!["start", "--name", "argv"];
    let script = fixture("argv_print.sh");
    command.push(&script);
    command.push("--");
    command.extend(args.iter().map(String::as_str));
    home.cmd(&command).current_dir(home.path()).run().success();
    home.wait_status("argv", "stopped");
    home.wait_log("argv", Stream::Out, "end of argv\n");

    let expected: String = args
        .iter()
        .map(|arg| format!("{arg}\n"))
        .chain(["end of argv\n".to_owned()])
        .collect();
    let got = String::from_utf8_lossy(&home.log_file("argv", Stream::Out)).into_owned();
    assert_eq!(got, expected, "the arguments did not arrive as given");

    // A script whose own path is full of shell syntax runs as that path.
    let dir = home.path().join("odd dir");
    fs::create_dir(&dir).expect("create a directory");
    let odd = dir.join("$(touch pwned2);`touch pwned3` & x.sh");
    fs::copy(&script, &odd).expect("copy the fixture");
    let odd = odd.to_str().expect("UTF-8 path");
    home.cmd(&["start", odd, "--name", "odd", "--", "one"])
        .current_dir(home.path())
        .run()
        .success();
    home.wait_status("odd", "stopped");
    home.wait_log("odd", Stream::Out, "end of argv\n");
    let got = String::from_utf8_lossy(&home.log_file("odd", Stream::Out)).into_owned();
    assert_eq!(
        got, "one\nend of argv\n",
        "the odd script did not run as itself"
    );
    let odd_entry = home.get("odd");
    assert_eq!(odd_entry.exit_code, Some(0), "{odd_entry:?}");

    let created: Vec<PathBuf> = walk(home.path())
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("pwned"))
        })
        .collect();
    assert!(
        created.is_empty(),
        "a shell ran somewhere and created {created:#?}"
    );
}
