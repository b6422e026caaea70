//! The example from the README: `examples/node-app/app.js` under velos serves HTTP on `PORT`
//! and its request lines show in `velos logs app -n 50`. Skipped when `node` is not on PATH.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::harness::{TestHome, WAIT, free_port, logged_lines, on_path, wait_until};

/// `GET /` on `127.0.0.1:port`; the status line of the answer.
fn get_root(port: u16) -> Result<String, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|error| format!("connect: {error}"))?;
    let limit = Some(Duration::from_secs(2));
    stream
        .set_read_timeout(limit)
        .map_err(|error| error.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .map_err(|error| format!("write: {error}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|error| format!("read: {error}"))?;
    let answer = String::from_utf8_lossy(&answer);
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

#[test]
fn the_node_app_serves_http_and_logs_each_request() {
    if !on_path("node") {
        eprintln!("skipped: `node` is not on PATH");
        return;
    }
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/node-app/app.js");
    let app = app.to_str().expect("UTF-8 path");
    let home = TestHome::new();
    let port = free_port().to_string();

    // velos gives the child the CLI's environment, so PORT goes on the CLI.
    home.cmd(&["start", app]).env("PORT", &port).run().success();
    home.wait_running("app");

    let port = port.parse().expect("a port number");
    wait_until(
        WAIT,
        &format!("GET / on port {port} to answer 200"),
        || match get_root(port) {
            Ok(status) if status.contains(" 200") => Ok(()),
            Ok(status) => Err(status),
            Err(error) => Err(error),
        },
    );

    wait_until(WAIT, "the request line in `velos logs app -n 50`", || {
        let output = home.velos(&["logs", "app", "-n", "50"]);
        output.success();
        let shown = logged_lines(&output.stdout_str(), "app");
        if shown.iter().any(|line| line.contains("GET /")) {
            Ok(output)
        } else {
            Err(output.to_string())
        }
    });

    // The app exits cleanly on SIGTERM.
    let stop = home.velos(&["stop", "app"]);
    stop.success();
    assert!(
        stop.elapsed < Duration::from_secs(4),
        "the node app did not stop on SIGTERM\n{stop}"
    );
    assert_eq!(home.get("app").status, "stopped");
}
