//! A home nobody else can use against you: root refuses a home, or a file in it, that
//! belongs to another user, and a home in a directory of another user; links planted in the home are refused, never followed; a
//! FIFO in place of a log file or the pid file is refused at once instead of hanging the
//! daemon or the CLI; a daemon of another uid on the socket gets nothing; a home whose
//! socket path is too long says so.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use velos_proto::Stream;

use crate::harness::{TestHome, bins, fixture, on_path, wait_until};

/// The uid (and gid) a root test hands the home to: `nobody`.
const STRANGER: u32 = 65534;

/// Bound for a command that used to hang on a FIFO.
const NO_HANG: Duration = Duration::from_secs(15);

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A file owned by root outside the home, standing for `/root/secret`.
fn secret(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, "root's secret\n").expect("write the secret");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod the secret");
    path
}

/// Makes `path` (not following a link) belong to the stranger.
fn give_away(path: &Path) {
    lchown(path, Some(STRANGER), Some(STRANGER)).expect("chown to nobody");
}

/// Creates a FIFO at `path`.
fn mkfifo(path: &Path) {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .expect("mkfifo");
}

/// Removes a FIFO when dropped, so that nothing reading the home afterwards (the
/// harness's cleanup reads `velos.pid`) can block on it, even after a failed assertion.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A saved list naming a script that must never run as root (it creates the returned
/// marker): saved by a daemon of a home of our own while the script was harmless.
fn evil_dump(outside: &Path) -> (Vec<u8>, PathBuf) {
    let marker = outside.join("evil-ran");
    let evil = outside.join("evil.sh");
    fs::write(&evil, "#!/bin/sh\nexec sleep 600\n").expect("write evil.sh");
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).expect("chmod evil.sh");
    let source = TestHome::new();
    source
        .velos(&["start", &evil.to_string_lossy(), "--name", "evil"])
        .success();
    source.velos(&["save"]).success();
    source.velos(&["kill"]).success();
    let dump = fs::read(source.home().dump_path()).expect("read the saved list");
    fs::write(&evil, format!("#!/bin/sh\ntouch {}\n", marker.display())).expect("arm evil.sh");
    (dump, marker)
}

#[test]
fn a_saved_list_planted_by_another_user_is_never_run() {
    if !is_root() {
        println!("skipped: needs root to plant a file of another uid");
        return;
    }
    let outside = tempfile::tempdir_in("/tmp").expect("a directory outside the home");
    let (dump, marker) = evil_dump(outside.path());
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    fs::write(home.home().dump_path(), &dump).expect("plant dump.msgpack");
    give_away(&home.home().dump_path());
    let error = home.velos(&["resurrect"]).error();
    assert!(
        error.contains("dump.msgpack") && error.contains("belongs to uid 65534"),
        "expected the planted list to be refused, naming its owner; got: {error}"
    );
    assert!(!marker.exists(), "the planted list ran");
    assert!(
        home.find("evil").is_none(),
        "the planted list was brought back"
    );
}

#[test]
fn root_refuses_a_home_owned_by_another_user_and_nothing_planted_in_it_is_used() {
    if !is_root() {
        println!("skipped: needs root to hand a home to another uid");
        return;
    }
    let outside = tempfile::tempdir_in("/tmp").expect("a directory outside the home");
    let secret_log = secret(outside.path(), "secret");
    let secret_state = secret(outside.path(), "other");
    let (dump, marker) = evil_dump(outside.path());

    let home = TestHome::new();
    let paths = home.home();
    fs::create_dir(paths.logs_dir()).expect("create logs/");
    std::os::unix::fs::symlink(&secret_log, paths.log_path("app", Stream::Out))
        .expect("plant the log link");
    std::os::unix::fs::symlink(&secret_state, home.path().join("state.msgpack.tmp"))
        .expect("plant the state link");
    fs::write(paths.dump_path(), &dump).expect("plant dump.msgpack");
    for path in [
        home.path().to_owned(),
        paths.logs_dir(),
        paths.log_path("app", Stream::Out),
        home.path().join("state.msgpack.tmp"),
        paths.dump_path(),
    ] {
        give_away(&path);
    }

    let error = home
        .velos(&["start", &fixture("lines.sh"), "--name", "app", "--", "3"])
        .error();
    assert!(
        error.contains("belongs to uid 65534") && error.contains("VELOS_HOME"),
        "expected the home to be refused, naming its owner and the way out; got: {error}"
    );
    let error = home.velos(&["resurrect"]).error();
    assert!(error.contains("belongs to uid 65534"), "{error}");
    // Whatever might have run did so by now: the start above is long over.
    assert!(!marker.exists(), "the planted list ran");
    for secret in [&secret_log, &secret_state] {
        assert_eq!(
            fs::read_to_string(secret).expect("read the secret"),
            "root's secret\n",
            "{} was written through a planted link",
            secret.display()
        );
    }
    assert!(
        !paths.pid_path().exists() && !paths.socket_path().exists(),
        "a daemon of root ran in the stranger's home"
    );
}

#[test]
fn root_refuses_a_home_of_its_own_inside_a_directory_of_another_user() {
    if !is_root() {
        println!("skipped: needs root to hand a directory to another uid");
        return;
    }
    // `VELOS_HOME=/srv/app/.velos`: the home is root's, but the app user could rename it
    // away and put their own in its place at any time.
    let home = TestHome::new();
    give_away(home.path());
    let inner = home.path().join("velos");
    let error = home
        .cmd(&["ping"])
        .env("VELOS_HOME", &inner.to_string_lossy())
        .run()
        .error();
    assert!(
        error.contains("a parent of") && error.contains("belongs to uid 65534"),
        "expected the home's parent to be refused, naming its owner; got: {error}"
    );
}

#[test]
fn links_planted_in_the_home_are_refused_never_followed() {
    let home = TestHome::new();
    home.velos(&["ping"]).success();
    let outside = tempfile::tempdir_in("/tmp").expect("a directory outside the home");
    let secret_log = secret(outside.path(), "secret");
    let secret_state = secret(outside.path(), "other");
    let paths = home.home();
    std::os::unix::fs::symlink(&secret_log, paths.log_path("app", Stream::Out))
        .expect("plant the log link");
    std::os::unix::fs::symlink(&secret_state, home.path().join("state.msgpack.tmp"))
        .expect("plant the state link");

    let error = home
        .velos(&["start", &fixture("lines.sh"), "--name", "app", "--", "3"])
        .error();
    assert!(
        error.contains("app-out.log") && error.contains("symbolic link"),
        "expected the start to be refused, naming the link; got: {error}"
    );
    assert!(home.find("app").is_none(), "the refused start added 'app'");

    // A start that succeeds saves the list: through a fresh file, not the planted link.
    home.velos(&["start", &fixture("lines.sh"), "--name", "fine", "--", "3"])
        .success();
    home.wait_status("fine", "stopped");
    wait_until(
        Duration::from_secs(10),
        "state.msgpack to be written",
        || home.path().join("state.msgpack").exists(),
    );
    for secret in [&secret_log, &secret_state] {
        assert_eq!(
            fs::read_to_string(secret).expect("read the secret"),
            "root's secret\n",
            "{} was written through a planted link",
            secret.display()
        );
    }
}

#[test]
fn a_fifo_in_place_of_a_log_file_is_refused_at_once() {
    let home = TestHome::new();
    home.velos(&["start", &fixture("lines.sh"), "--name", "app", "--", "3"])
        .success();
    home.wait_status("app", "stopped");
    let log = home.home().log_path("app", Stream::Out);
    fs::remove_file(&log).expect("remove the log file");
    mkfifo(&log);
    let _fifo = RemoveOnDrop(log.clone());

    // Reading it back must not block the daemon (the harness fails a command that
    // does not finish in time)...
    home.cmd(&["logs", "app", "--raw", "-n", "100"])
        .timeout(NO_HANG)
        .run();
    // ... nor writing to it: a start is refused with the reason.
    home.velos(&["delete", "app"]).success();
    let error = home
        .cmd(&["start", &fixture("lines.sh"), "--name", "app", "--", "3"])
        .timeout(NO_HANG)
        .run()
        .error();
    assert!(
        error.contains("app-out.log") && error.contains("FIFO"),
        "expected the start to be refused, naming the FIFO; got: {error}"
    );
    // The daemon still serves everyone.
    home.cmd(&["ping"]).timeout(NO_HANG).run().success();
}

#[test]
fn a_fifo_in_place_of_the_pid_file_is_refused_at_once() {
    let home = TestHome::new();
    let pid = home.home().pid_path();
    mkfifo(&pid);
    let _fifo = RemoveOnDrop(pid);
    let error = home.cmd(&["ping"]).timeout(NO_HANG).run().error();
    assert!(
        error.contains("velos.pid") && error.contains("FIFO"),
        "expected the pid file to be refused; got: {error}"
    );
    let stderr = velosd_no_daemon(home.path());
    assert!(
        stderr.contains("velos.pid") && stderr.contains("FIFO"),
        "expected velosd to refuse the FIFO; got: {stderr}"
    );
}

/// Runs `velosd --no-daemon` in `home`, expecting it to refuse at once; its stderr.
fn velosd_no_daemon(home: &Path) -> String {
    let mut child = Command::new(&bins().velosd)
        .arg("--no-daemon")
        .env("VELOS_HOME", home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run velosd");
    let status = wait_until(NO_HANG, "velosd --no-daemon to refuse and exit", || {
        child.try_wait().ok().flatten()
    });
    let _ = child.kill();
    let output = child.wait_with_output().expect("velosd's stderr");
    assert!(!status.success(), "velosd exited 0");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A fake daemon of the stranger: listens on the home's socket and appends whatever it
/// receives to `received`. Runs as root until it drops to the stranger itself.
fn stranger_listening(socket: &Path, received: &Path) -> Child {
    let script = format!(
        r#"
import os, socket, sys
os.setgroups([])
os.setgid({STRANGER})
os.setuid({STRANGER})
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o777)
s.listen(16)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            with open(sys.argv[2], "ab") as f:
                f.write(data)
    except OSError:
        pass
    c.close()
"#
    );
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .arg(socket)
        .arg(received)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the fake daemon's ready line");
    assert_eq!(line, "ready\n", "the fake daemon did not start");
    child
}

/// Kills the fake daemon when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_cli_and_the_sdk_send_nothing_to_a_daemon_of_another_uid() {
    if !is_root() {
        println!("skipped: needs root to listen as a second uid");
        return;
    }
    if !on_path("python3") {
        println!("skipped: needs python3 to listen as a second uid");
        return;
    }
    let home = TestHome::new();
    give_away(home.path());
    let outside = tempfile::tempdir_in("/tmp").expect("a directory outside the home");
    fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o777))
        .expect("let the stranger write its record");
    let received = outside.path().join("received");
    let socket = home.home().socket_path();
    let _fake = KillOnDrop(stranger_listening(&socket, &received));

    let error = home
        .cmd(&["start", &fixture("sleeper.sh"), "--name", "app"])
        .env("ROOT_SECRET", "hunter2")
        .run()
        .error();
    assert!(
        error.contains("runs as uid 65534") && error.contains("not as your uid 0"),
        "expected the daemon of another uid to be refused; got: {error}"
    );
    match velos_sdk::blocking::Client::connect(&socket) {
        Err(velos_sdk::Error::ForeignDaemon { daemon, ours, .. }) => {
            assert_eq!((daemon, ours), (STRANGER, 0));
        }
        other => panic!("the SDK connected to another uid's daemon: {other:?}"),
    }
    let got = fs::read(&received).unwrap_or_default();
    assert!(
        got.is_empty(),
        "the stranger's daemon received {} bytes: {:?}",
        got.len(),
        String::from_utf8_lossy(&got)
    );
}

#[test]
fn a_home_whose_socket_path_is_too_long_says_so() {
    let home = TestHome::new();
    let long = home.path().join("x".repeat(110));
    let long = long.to_str().expect("UTF-8 path");
    let error = home.cmd(&["ping"]).env("VELOS_HOME", long).run().error();
    assert!(
        error.contains("107-byte limit") && error.contains("VELOS_HOME"),
        "expected the socket path limit to be named; got: {error}"
    );
    let stderr = velosd_no_daemon(Path::new(long));
    assert!(
        stderr.contains("107-byte limit"),
        "expected velosd to name the socket path limit; got: {stderr}"
    );
}
