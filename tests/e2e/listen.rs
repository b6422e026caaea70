//! `--listen`: the daemon binds once, holds the socket while the app exists, and hands it to
//! each run with systemd's socket activation (fd 3.., `LISTEN_FDS`, `LISTEN_PID` = the run's
//! own pid, `LISTEN_FDNAMES`, `PORT`); a restart refuses no connection; a failed bind changes
//! nothing; saved and resurrected on the same address; the examples serve on the socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestHome, WAIT, example, fixture, on_path, wait_until};

/// The JSON line `activation.py` printed: what its run was given.
fn activation(home: &TestHome, name: &str) -> Value {
    let log = home.path().join("logs").join(format!("{name}-out.log"));
    wait_until(WAIT, &format!("{name}'s activation line"), || {
        let text = std::fs::read_to_string(&log).map_err(|e| e.to_string())?;
        text.lines()
            .last()
            .and_then(|line| serde_json::from_str::<Value>(line).ok())
            .ok_or(text)
    })
}

/// The `listen` addresses of `name` in `list --json`.
fn listen_of(home: &TestHome, name: &str) -> Vec<String> {
    home.entry(name)["listen"]
        .as_array()
        .unwrap_or_else(|| panic!("no `listen` array for {name}"))
        .iter()
        .map(|address| address.as_str().expect("a string").to_owned())
        .collect()
}

/// The socket inodes (`socket:[N]`) a process holds.
fn sockets_of(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| std::fs::read_link(entry.path()).ok())
                .map(|link| link.to_string_lossy().into_owned())
                .filter(|link| link.starts_with("socket:"))
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /` on `address`: the body of the answer, or why there was none.
pub(crate) fn get(address: SocketAddr) -> Result<String, std::io::Error> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: velos\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head[8..].starts_with(" 200") => {
            Ok(body.to_owned())
        }
        _ => Err(std::io::Error::other(format!("bad answer {answer:?}"))),
    }
}

/// The pid an example's answer names (`... (pid 4242)`).
pub(crate) fn answering_pid(body: &str) -> i32 {
    body.rsplit_once("(pid ")
        .and_then(|(_, rest)| rest.trim_end().strip_suffix(')'))
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {body:?}"))
}

/// Starts the example app at `path` as `name`, listening on a port the kernel picks.
#[track_caller]
fn start_example(home: &TestHome, path: &str, name: &str) {
    let app = example(path);
    home.velos(&["start", &app, "--name", name, "--listen", "127.0.0.1:0"])
        .success();
}

/// Waits until `address` answers `GET /`, and returns the body.
#[track_caller]
fn wait_answer(address: SocketAddr, what: &str) -> String {
    wait_until(WAIT, what, || get(address).map_err(|e| e.to_string()))
}

#[test]
fn the_run_gets_the_sockets_as_fd_3_with_its_own_listen_pid() {
    let home = TestHome::new();
    let unix = home.path().join("web.sock");
    let unix_arg = format!("unix:{}", unix.display());
    let script = fixture("activation.py");
    // Variables of the same name in the caller's environment are not passed on.
    home.cmd(&[
        "start",
        &script,
        "--name",
        "web",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &unix_arg,
    ])
    .env("LISTEN_FDS", "9")
    .env("LISTEN_PID", "1")
    .run()
    .success();
    home.cmd(&["start", &script, "--name", "plain"])
        .env("LISTEN_FDS", "9")
        .env("LISTEN_PID", "1")
        .run()
        .success();
    let pid = home.wait_running("web").pid.expect("a pid");

    let listen = listen_of(&home, "web");
    assert_eq!(listen.len(), 2, "{listen:?}");
    let tcp: SocketAddr = listen[0].parse().expect("a socket address");
    assert_eq!(tcp.ip().to_string(), "127.0.0.1");
    assert_ne!(tcp.port(), 0, "the real port is shown, not 0");
    assert_eq!(listen[1], unix_arg);
    let info = home.velos(&["info", "web"]).success().stdout_str();
    let line = format!("listen        {}, {unix_arg}", listen[0]);
    assert!(
        info.lines().any(|shown| shown == line),
        "no {line:?} in\n{info}"
    );
    assert_eq!(
        home.velos(&["info", "web", "--json"]).success().json()["listen"],
        serde_json::json!(listen)
    );

    let given = activation(&home, "web");
    assert_eq!(given["pid"], pid, "{given}");
    assert_eq!(given["env"]["LISTEN_PID"], pid.to_string(), "{given}");
    assert_eq!(given["env"]["LISTEN_FDS"], "2", "{given}");
    assert_eq!(given["env"]["LISTEN_FDNAMES"], "web:web", "{given}");
    assert_eq!(
        given["env"]["PORT"],
        tcp.port().to_string(),
        "one TCP listener: PORT"
    );
    let fd = |n: &str| given["fds"][n].as_str().unwrap_or_default().to_owned();
    assert!(
        fd("3").starts_with("socket:") && fd("4").starts_with("socket:"),
        "{given}"
    );
    assert!(given["fds"]["5"].is_null(), "nothing more: {given}");
    // The very sockets the daemon holds.
    let held = sockets_of(home.daemon_pid().expect("a daemon"));
    assert!(
        held.contains(&fd("3")) && held.contains(&fd("4")),
        "{held:?} {given}"
    );
    // And they accept: the kernel queues connections even before the app accepts.
    TcpStream::connect(tcp).expect("connect to the TCP listener");
    std::os::unix::net::UnixStream::connect(&unix).expect("connect to the unix listener");

    // An app that did not ask gets neither descriptors nor variables.
    let plain = activation(&home, "plain");
    let mut fds: Vec<&String> = plain["fds"].as_object().expect("fds").keys().collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"], "{plain}");
    for key in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "PORT"] {
        assert!(plain["env"][key].is_null(), "{key} leaked: {plain}");
    }
    assert_eq!(listen_of(&home, "plain"), Vec::<String>::new());

    // A restart gets the same sockets, with its own pid.
    home.velos(&["restart", "web"]).success();
    let again = wait_until(WAIT, "the restarted run's line", || {
        let given = activation(&home, "web");
        if given["pid"] != pid {
            Ok(given)
        } else {
            Err(given.to_string())
        }
    });
    assert_eq!(again["env"]["LISTEN_PID"], again["pid"].to_string());
    assert_eq!(
        again["fds"]["3"].as_str(),
        Some(fd("3").as_str()),
        "{again}"
    );
    assert_eq!(listen_of(&home, "web"), listen);

    // Deleting the app closes its sockets and removes its socket file.
    home.velos(&["delete", "web"]).success();
    assert!(!unix.exists(), "{} is left behind", unix.display());
    TcpListener::bind(tcp).expect("the port is free again");
}

#[test]
fn a_failed_bind_changes_nothing() {
    let home = TestHome::new();
    let script = fixture("activation.py");
    home.velos(&["start", &script, "--name", "keep"]).success();
    let before = home.list();
    // `velos start activation.py --name web FLAGS`, refused: its error line.
    let refused = |flags: &[&str]| -> String {
        let mut args = vec!["start", &script, "--name", "web"];
        args.extend_from_slice(flags);
        home.velos(&args).error()
    };

    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = taken.local_addr().expect("address").to_string();
    let error = refused(&["--listen", &taken]);
    assert_eq!(
        error,
        format!(
            "error: cannot listen on {taken}: address already in use (another program or \
             velos app listens there); choose another address, or stop that program"
        )
    );
    // The first address bound, the second taken: the first is let go again.
    let free = crate::harness::free_port();
    let first = format!("127.0.0.1:{free}");
    let error = refused(&["--listen", &first, "--listen", &taken]);
    assert!(error.contains("address already in use"), "{error}");
    TcpListener::bind(&first).expect("the first address was let go");

    for (address, reason) in [
        (
            "127.0.0.1:99999",
            "the port must be a number from 0 to 65535",
        ),
        (
            "example.com:80",
            "the host must be an IP address (127.0.0.1, [::1]) or localhost",
        ),
        (
            "nonsense",
            "expected PORT, HOST:PORT, [IPv6]:PORT or unix:/absolute/path",
        ),
    ] {
        let error = refused(&["--listen", address]);
        assert_eq!(
            error,
            format!("error: bad listen address '{address}': {reason}")
        );
    }

    // A file that is not a socket is never replaced.
    let file = home.path().join("data.txt");
    std::fs::write(&file, "keep me").expect("write");
    let error = refused(&["--listen", &format!("unix:{}", file.display())]);
    assert!(error.contains("is not a socket"), "{error}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");

    // A start whose spawn fails lets its address go again.
    let error = refused(&[
        "--listen",
        &first,
        "--interpreter",
        "no-such-interpreter-velos",
    ]);
    assert!(
        error.contains("could not run 'no-such-interpreter-velos'"),
        "{error}"
    );
    TcpListener::bind(&first).expect("the address was let go");

    // Another app's address is in use too.
    home.velos(&["start", &script, "--name", "web", "--listen", "127.0.0.1:0"])
        .success();
    let held = listen_of(&home, "web").remove(0);
    let error = home
        .velos(&["start", &script, "--name", "second", "--listen", &held])
        .error();
    assert!(error.contains("address already in use"), "{error}");
    home.velos(&["delete", "web"]).success();

    assert_eq!(home.list(), before);
    assert_eq!(listen_of(&home, "keep"), Vec::<String>::new());
}

/// Clients that send `GET /` to `address` over and over, a new connection each time, on
/// `CONNECTIONS` threads, until told to stop (each at most `MAX_REQUESTS` requests and
/// `MAX_TIME`): the answering pids in the order each thread got them, and every failure.
struct Client {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(Vec<i32>, Vec<String>)>>,
}

const CONNECTIONS: usize = 4;
const MAX_REQUESTS: usize = 100_000;
const MAX_TIME: Duration = Duration::from_secs(60);

impl Client {
    fn start(address: SocketAddr) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..CONNECTIONS)
            .map(|_| {
                let stopping = stop.clone();
                std::thread::spawn(move || {
                    let (mut pids, mut failures) = (Vec::new(), Vec::new());
                    let started = Instant::now();
                    for _ in 0..MAX_REQUESTS {
                        if stopping.load(Ordering::Relaxed) || started.elapsed() > MAX_TIME {
                            break;
                        }
                        match get(address) {
                            Ok(body) => pids.push(answering_pid(&body)),
                            Err(error) => failures.push(error.to_string()),
                        }
                    }
                    (pids, failures)
                })
            })
            .collect();
        Client { stop, threads }
    }

    /// Per thread, the pids that answered; and all failures.
    fn finish(self) -> (Vec<Vec<i32>>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let (mut answered, mut failures) = (Vec::new(), Vec::new());
        for thread in self.threads {
            let (pids, failed) = thread.join().expect("a client thread");
            answered.push(pids);
            failures.extend(failed);
        }
        (answered, failures)
    }
}

/// Restarts `name` `times` times while a client loop runs against it: no request fails,
/// and every run answered.
fn restarts_refuse_nothing(home: &TestHome, name: &str, times: usize) {
    let address: SocketAddr = listen_of(home, name)[0].parse().expect("an address");
    wait_answer(address, "the first answer");
    let client = Client::start(address);
    let mut pids = vec![home.get(name).pid.expect("a pid")];
    for _ in 0..times {
        home.velos(&["restart", name]).success();
        let pid = home.wait_running(name).pid.expect("a pid");
        // Until the new run has answered at least once.
        wait_until(WAIT, "an answer from the new run", || match get(address) {
            Ok(body) if answering_pid(&body) == pid => Ok(()),
            other => Err(format!("{other:?}")),
        });
        pids.push(pid);
    }
    let (answered, failures) = client.finish();
    let total: usize = answered.iter().map(Vec::len).sum();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during {times} restarts: {:?}",
        failures.len(),
        failures.len() + total,
        &failures[..failures.len().min(5)]
    );
    // The clients went on through every restart: from the first run to the last.
    assert!(
        answered.iter().any(|seen| seen.first() == pids.first()),
        "no answer from the first run {pids:?}: {answered:?}"
    );
    for seen in &answered {
        assert_eq!(seen.last(), pids.last(), "runs {pids:?}, answers {seen:?}");
    }
    eprintln!("{total} requests over {CONNECTIONS} connections, {times} restarts: 0 failed");
}

#[test]
fn a_restart_with_listen_refuses_no_connection() {
    let home = TestHome::new();
    start_example(&home, "examples/python-app/app.py", "py");
    restarts_refuse_nothing(&home, "py", 3);
}

#[test]
fn the_node_example_serves_on_the_inherited_socket_through_restarts() {
    if !on_path("node") {
        eprintln!("skipped: `node` is not on PATH");
        return;
    }
    let home = TestHome::new();
    start_example(&home, "examples/node-app/app.js", "node");
    restarts_refuse_nothing(&home, "node", 2);
}

#[test]
fn listeners_come_back_on_the_same_address_after_save_kill_resurrect() {
    let home = TestHome::new();
    let app = example("examples/python-app/app.py");
    let unix = home.path().join("py.sock");
    home.velos(&[
        "start",
        &app,
        "--name",
        "py",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &format!("unix:{}", unix.display()),
    ])
    .success();
    let listen = listen_of(&home, "py");
    let address: SocketAddr = listen[0].parse().expect("an address");
    home.velos(&["save"]).success();
    home.velos(&["kill"]).success();
    home.velos(&["resurrect"]).success();
    assert_eq!(
        listen_of(&home, "py"),
        listen,
        "the same addresses, the same port"
    );
    let pid = home.wait_running("py").pid.expect("a pid");
    let body = wait_answer(address, "an answer");
    assert_eq!(answering_pid(&body), pid);

    // The port taken meanwhile: the app is not brought back, and the command says why.
    home.velos(&["kill"]).success();
    let squatter = TcpListener::bind(address).expect("take the port");
    let output = home.velos(&["resurrect"]);
    assert!(!output.status.success(), "{output}");
    assert!(
        output
            .stderr_str()
            .contains(&format!("cannot listen on {address}")),
        "{output}"
    );
    assert!(home.find("py").is_none());
    drop(squatter);
}

#[test]
fn a_killed_daemons_app_listens_again_on_the_same_address_with_velosd_resurrect() {
    let home = TestHome::new();
    start_example(&home, "examples/python-app/app.py", "py");
    let listen = listen_of(&home, "py");
    let address: SocketAddr = listen[0].parse().expect("an address");
    let old = home.wait_running("py").pid.expect("a pid");
    wait_answer(address, "an answer");

    home.kill_daemon();
    home.velosd(&["--resurrect"]).success();
    crate::harness::wait_gone(old, "the run from before");
    // The list comes back once what the dead daemon left has ended.
    let pid = home.wait_running("py").pid.expect("a pid");
    assert_eq!(listen_of(&home, "py"), listen);
    let body = wait_answer(address, "an answer from the new run");
    assert_eq!(answering_pid(&body), pid);
}

#[test]
fn a_script_without_a_shebang_runs_under_sh_as_execvp_would() {
    let home = TestHome::new();
    let script = home.path().join("no-shebang");
    std::fs::write(
        &script,
        "echo \"pid=$$ listen_pid=$LISTEN_PID\"\nexec sleep 60\n",
    )
    .expect("write the script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    home.velos(&[
        "start",
        &script.to_string_lossy(),
        "--name",
        "plain-sh",
        "--listen",
        "127.0.0.1:0",
    ])
    .success();
    let pid = home.wait_running("plain-sh").pid.expect("a pid");
    home.wait_log(
        "plain-sh",
        velos_proto::Stream::Out,
        &format!("pid={pid} listen_pid={pid}"),
    );
}

#[test]
fn a_config_file_sets_listen_with_unix_paths_relative_to_it() {
    let home = TestHome::new();
    let dir: PathBuf = home.path().join("project");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let config = dir.join("velos.toml");
    std::fs::write(
        &config,
        format!(
            "[[apps]]\nname = \"web\"\nscript = \"{}\"\nlisten = [\"127.0.0.1:0\", \"unix:web.sock\"]\n",
            fixture("activation.py")
        ),
    )
    .expect("write the config");
    home.velos(&["start", &config.to_string_lossy()]).success();
    let listen = listen_of(&home, "web");
    assert_eq!(
        listen[1],
        format!("unix:{}", dir.join("web.sock").display())
    );
    assert_eq!(activation(&home, "web")["env"]["LISTEN_FDS"], "2");
}

/// Waits up to `WAIT` for `child` to exit; its exit status.
fn wait_exit(child: &mut std::process::Child, what: &str) -> std::process::ExitStatus {
    wait_until(WAIT, what, || match child.try_wait() {
        Ok(Some(status)) => Ok(status),
        other => Err(format!("{other:?}")),
    })
}

#[test]
fn the_examples_say_ready_and_end_with_exit_0_on_sigterm() {
    // Python: READY=1 on $NOTIFY_SOCKET (systemd's sd_notify), then SIGTERM.
    let dir = tempfile::tempdir().expect("a temp dir");
    let notify = dir.path().join("notify");
    let socket = std::os::unix::net::UnixDatagram::bind(&notify).expect("bind the notify socket");
    socket.set_read_timeout(Some(WAIT)).expect("a read timeout");
    let mut python = std::process::Command::new("python3")
        .arg(example("examples/python-app/app.py"))
        .env("PORT", "0")
        .env("NOTIFY_SOCKET", &notify)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run python3");
    let mut message = [0; 64];
    let received = socket.recv(&mut message);
    let pid = i32::try_from(python.id()).expect("a pid");
    crate::harness::signal_pid(pid, rustix::process::Signal::TERM);
    let status = wait_exit(&mut python, "the python example to exit");
    let len = received.expect("a datagram on NOTIFY_SOCKET");
    assert_eq!(&message[..len], b"READY=1");
    assert_eq!(status.code(), Some(0), "{status}");

    // Node: process.send('ready') on its IPC channel (PM2's wait_ready), then SIGTERM.
    if !on_path("node") {
        eprintln!("skipped the node part: `node` is not on PATH");
        return;
    }
    let parent = "const c = require('child_process').fork(process.argv[1], \
                  { env: { ...process.env, PORT: '0' }, stdio: 'ignore' }); \
                  c.on('message', (m) => { console.log('message ' + m); c.kill('SIGTERM'); }); \
                  c.on('exit', (code, signal) => console.log('exit ' + code + ' ' + signal)); \
                  setTimeout(() => { console.log('timed out'); c.kill('SIGKILL'); }, 10000).unref();";
    let output = std::process::Command::new("node")
        .args(["-e", parent, &example("examples/node-app/app.js")])
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout, "message ready\nexit 0 null\n", "{output:?}");
}
