//! `velos metrics`: the daemon serves Prometheus metrics over HTTP (`/metrics`, `/healthz`,
//! `/readyz`) on an address the user enables, a setting kept across daemon restarts. The
//! text is checked with a strict parser of the format written here (and `promtool check
//! metrics` where it is installed), against `list --json`; hostile HTTP clients do not
//! disturb the daemon.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestHome, WAIT, fixture, on_path, wait_until};

/// How long an answer may take while hostile clients hold connections open: well under
/// the daemon's 5 s head timeout, so a server that waited for them would fail.
const PROMPT: Duration = Duration::from_millis(2500);

/// Enables the metrics on a free loopback port and returns the bound address.
#[track_caller]
fn enable(home: &TestHome) -> SocketAddr {
    home.velos(&["metrics", "enable", "--listen", "127.0.0.1:0"])
        .success();
    served_address(home).expect("metrics status names the bound address")
}

/// The address `velos metrics status --json` says the metrics are served on.
#[track_caller]
fn served_address(home: &TestHome) -> Option<SocketAddr> {
    let state = home
        .velos(&["metrics", "status", "--json"])
        .success()
        .json();
    state["address"]
        .as_str()
        .map(|a| a.parse().expect("an address"))
}

/// An HTTP answer: status, headers (lowercase names), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// `GET path` on `address` with a plain TcpStream.
fn get(address: SocketAddr, path: &str) -> Result<Answer, String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/plain\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    let raw = String::from_utf8(raw).map_err(|_| "the answer is not UTF-8".to_owned())?;
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no head in {raw:?}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
        .collect::<HashMap<_, _>>();
    if let Some(length) = headers.get("content-length")
        && length.parse::<usize>().ok() != Some(body.len())
    {
        return Err(format!(
            "content-length {length}, body {} bytes",
            body.len()
        ));
    }
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// `GET /metrics`: the body, after checking the status and content type.
#[track_caller]
fn scrape(address: SocketAddr) -> String {
    let answer = get(address, "/metrics").unwrap_or_else(|e| panic!("scrape: {e}"));
    assert_eq!(answer.status, 200, "{answer:?}");
    let kind = answer
        .headers
        .get("content-type")
        .cloned()
        .unwrap_or_default();
    assert!(
        kind.starts_with("text/plain; version=0.0.4"),
        "content type {kind:?}"
    );
    answer.body
}

/// One series: its metric name and its labels, sorted.
type Series = (String, Vec<(String, String)>);

/// A strictly parsed exposition: every sample by series, and each family's type.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<Series, f64>,
    types: HashMap<String, String>,
}

impl Exposition {
    /// The value of `name` with (at least) these labels, when exactly one series has them.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<f64> = self
            .samples
            .iter()
            .filter(|((metric, have), _)| {
                metric == name
                    && labels
                        .iter()
                        .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, value)| *value)
            .collect();
        match found[..] {
            [one] => Some(one),
            _ => None,
        }
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the Prometheus text format 0.0.4 strictly: every line a `# HELP`, `# TYPE`, other
/// comment or `name{labels} value`; a family's HELP and TYPE at most once and before its
/// samples; a family's lines together; label values escaped (`\\`, `\"`, `\n` only); no
/// series twice; the text ends with a newline.
fn parse(text: &str) -> Result<Exposition, String> {
    let mut parsed = Exposition::default();
    let mut helped = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    if !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    // Moves on to `family`: a family left earlier may not come back.
    let mut enter = |family: &str, current: &mut Option<String>| -> Result<(), String> {
        if current.as_deref() == Some(family) {
            return Ok(());
        }
        if finished.contains(family) {
            return Err(format!("the lines of {family} are not together"));
        }
        if let Some(left) = current.take() {
            finished.insert(left);
        }
        *current = Some(family.to_owned());
        Ok(())
    };
    for (number, line) in text.lines().enumerate() {
        let at = |message: String| format!("line {}: {message}: {line:?}", number + 1);
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("HELP"), Some(name), help) => {
                    if !is_metric_name(name) || help.is_none_or(str::is_empty) {
                        return Err(at("bad HELP".into()));
                    }
                    enter(name, &mut current).map_err(at)?;
                    if !helped.insert(name.to_owned()) {
                        return Err(at("a second HELP".into()));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    enter(name, &mut current).map_err(at)?;
                    if parsed.samples.keys().any(|(metric, _)| metric == name) {
                        return Err(at("TYPE after samples".into()));
                    }
                    if parsed
                        .types
                        .insert(name.to_owned(), kind.to_owned())
                        .is_some()
                    {
                        return Err(at("a second TYPE".into()));
                    }
                }
                _ => {} // Another comment.
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at("bad metric name".into()));
        }
        if !parsed.types.contains_key(name) {
            return Err(at("a sample without a TYPE before it".into()));
        }
        enter(name, &mut current).map_err(at)?;
        let mut rest = &line[name_end..];
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            let end;
            loop {
                // A label name, `=`, a quoted value; then `,` or `}`.
                let start = match chars.peek() {
                    Some(&(_, '}')) => {
                        end = chars.next().map(|(i, _)| i).unwrap_or(0);
                        break;
                    }
                    Some(&(i, _)) => i,
                    None => return Err(at("unclosed labels".into())),
                };
                let mut label_end = start;
                while let Some(&(i, c)) = chars.peek() {
                    if c == '=' {
                        label_end = i;
                        break;
                    }
                    chars.next();
                }
                let label = &after[start..label_end];
                if !is_label_name(label) {
                    return Err(at(format!("bad label name {label:?}")));
                }
                chars.next(); // '='
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(at("a label value without quotes".into()));
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\')) => value.push('\\'),
                            Some((_, '"')) => value.push('"'),
                            Some((_, 'n')) => value.push('\n'),
                            _ => return Err(at("a bad escape".into())),
                        },
                        Some((_, '\n')) | None => return Err(at("an unclosed value".into())),
                        Some((_, c)) => value.push(c),
                    }
                }
                if labels.iter().any(|(k, _): &(String, String)| k == label) {
                    return Err(at(format!("label {label} twice")));
                }
                labels.push((label.to_owned(), value));
                match chars.next() {
                    Some((_, ',')) => {}
                    Some((i, '}')) => {
                        end = i;
                        break;
                    }
                    _ => return Err(at("labels not separated by ','".into())),
                }
            }
            rest = &after[end + 1..];
        }
        let mut fields = rest.split(' ');
        if fields.next() != Some("") {
            return Err(at("no space before the value".into()));
        }
        let value = fields.next().ok_or_else(|| at("no value".into()))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            other => other.parse().map_err(|_| at("a bad value".into()))?,
        };
        if let Some(timestamp) = fields.next() {
            timestamp
                .parse::<i64>()
                .map_err(|_| at("a bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(at("more after the value".into()));
        }
        labels.sort();
        if parsed
            .samples
            .insert((name.to_owned(), labels), value)
            .is_some()
        {
            return Err(at("a series twice".into()));
        }
    }
    Ok(parsed)
}

#[test]
fn the_parser_is_strict() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 1\n";
    let parsed = parse(good).unwrap();
    assert_eq!(parsed.value("a_total", &[("x", "q\"\\\n")]), Some(1.0));
    for bad in [
        "a 1\n",                                      // no TYPE
        "# TYPE a gauge\na 1",                        // no final newline
        "# TYPE a gauge\na 1\na 2\n",                 // a series twice
        "# TYPE a gauge\na{x=\"\\t\"} 1\n",           // a bad escape
        "# TYPE a gauge\na{x=y} 1\n",                 // no quotes
        "# TYPE a gauge\n# TYPE b gauge\nb 1\na 1\n", // a family split
        "# TYPE a gauge\na 1\n# TYPE a gauge\n",      // TYPE twice
        "# TYPE a gauge\na one\n",                    // a bad value
        "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",     // a label twice
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}

/// Runs `promtool check metrics` on `text` when promtool is installed.
fn promtool(text: &str) {
    if !on_path("promtool") {
        eprintln!("promtool is not installed (Debian: apt install prometheus): skipping its check");
        return;
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn labels<'a>(entry: &'a Value, id: &'a str) -> [(&'static str, String); 3] {
    [
        ("name", entry["name"].as_str().unwrap().to_owned()),
        ("instance", entry["instance"].to_string()),
        ("id", id.to_owned()),
    ]
}

#[test]
fn a_scrape_is_strict_text_format_whose_values_match_list() {
    let home = TestHome::new();
    let address = enable(&home);
    home.velos(&[
        "start",
        &fixture("ticker.sh"),
        "--name",
        "web",
        "--env",
        "SECRET=hunter2-env-value",
        "--",
        "--token=argument-secret-value",
    ])
    .success();
    home.velos(&[
        "start",
        &fixture("exit_with.sh"),
        "--name",
        "job",
        "--no-autorestart",
        "--",
        "3",
    ])
    .success();
    home.wait_status("job", "errored");
    home.wait_running("web");

    let list = home.velos(&["list", "--json"]).success().json();
    let text = scrape(address);
    let parsed = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    promtool(&text);
    for secret in [
        "hunter2-env-value",
        "argument-secret-value",
        "SECRET",
        "--token",
    ] {
        assert!(!text.contains(secret), "{secret} in the metrics:\n{text}");
    }
    for entry in list.as_array().unwrap() {
        let id = entry["id"].to_string();
        let labels = labels(entry, &id);
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let up = parsed.value("velos_process_up", &labels);
        assert_eq!(
            up,
            Some(if entry["pid"].is_null() { 0.0 } else { 1.0 }),
            "{entry}\n{text}"
        );
        let total: f64 = ["crash", "watch", "memory", "cron", "manual"]
            .iter()
            .map(|reason| {
                let mut with = labels.clone();
                with.push(("reason", reason));
                let value = parsed
                    .value("velos_process_restarts_total", &with)
                    .unwrap_or_else(|| panic!("no restarts {reason} for {entry}\n{text}"));
                let listed = entry["restart_counts"][reason].as_f64().unwrap_or(0.0);
                assert_eq!(value, listed, "{reason} of {entry}");
                value
            })
            .sum();
        assert_eq!(
            total,
            entry["restarts"].as_f64().unwrap(),
            "{entry}\n{text}"
        );
        let ready = entry["status"] == "running";
        assert_eq!(
            parsed.value("velos_process_ready", &labels),
            Some(if ready { 1.0 } else { 0.0 })
        );
    }
    let web = home.entry("web");
    let web_labels = labels(&web, &web["id"].to_string());
    let web_labels: Vec<(&str, &str)> = web_labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let job = home.entry("job");
    let job_labels = labels(&job, &job["id"].to_string());
    let job_labels: Vec<(&str, &str)> = job_labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        parsed.value("velos_process_last_exit_code", &job_labels),
        Some(3.0)
    );
    let start = parsed
        .value("velos_process_start_time_seconds", &web_labels)
        .expect("a start time for the running process");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let uptime = web["uptime_ms"].as_f64().unwrap() / 1000.0;
    assert!(
        (now - uptime - start).abs() < 30.0,
        "start {start}, now {now}, uptime {uptime}"
    );
    let mut out = web_labels.clone();
    out.push(("stream", "out"));
    assert!(
        parsed.value("velos_log_bytes_total", &out).unwrap() > 0.0,
        "{text}"
    );
    if cfg!(target_os = "linux") {
        assert!(
            parsed
                .value("velos_process_resident_memory_bytes", &web_labels)
                .unwrap()
                > 0.0
        );
        assert!(
            parsed
                .value("velos_process_cpu_seconds_total", &web_labels)
                .is_some()
        );
        assert!(
            parsed
                .value("velos_daemon_resident_memory_bytes", &[])
                .unwrap()
                > 0.0
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        parsed.value("velos_build_info", &[("version", version)]),
        Some(1.0)
    );
    for (name, kind) in [
        ("velos_process_up", "gauge"),
        ("velos_process_cpu_seconds_total", "counter"),
        ("velos_process_restarts_total", "counter"),
        ("velos_log_bytes_total", "counter"),
        ("velos_reloads_total", "counter"),
    ] {
        assert_eq!(
            parsed.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
    }

    // The same text over the socket, for scripts.
    let socket = home.velos(&["metrics"]).success().stdout_str();
    let from_socket = parse(&socket).unwrap_or_else(|e| panic!("{e}\n{socket}"));
    assert_eq!(
        from_socket.samples.keys().collect::<Vec<_>>(),
        parsed.samples.keys().collect::<Vec<_>>()
    );
    assert!(!socket.contains("hunter2-env-value"));
    assert_eq!(get(address, "/healthz").unwrap().status, 200);
    assert_eq!(get(address, "/nowhere").unwrap().status, 404);
}

#[test]
fn a_restart_counts_as_manual() {
    let home = TestHome::new();
    let address = enable(&home);
    home.velos(&["start", &fixture("ticker.sh"), "--name", "web"])
        .success();
    home.wait_running("web");
    let manual = |text: &str| {
        parse(text).unwrap().value(
            "velos_process_restarts_total",
            &[("name", "web"), ("reason", "manual")],
        )
    };
    assert_eq!(manual(&scrape(address)), Some(0.0));
    home.velos(&["restart", "web"]).success();
    let text = scrape(address);
    assert_eq!(manual(&text), Some(1.0), "{text}");
    let crash = parse(&text).unwrap().value(
        "velos_process_restarts_total",
        &[("name", "web"), ("reason", "crash")],
    );
    assert_eq!(crash, Some(0.0), "{text}");
}

#[test]
fn readyz_is_503_while_an_app_is_starting_and_200_once_ready() {
    let home = TestHome::new();
    let address = enable(&home);
    assert_eq!(
        get(address, "/readyz").unwrap().status,
        200,
        "nothing to wait for"
    );
    let flag = home.path().join("go");
    let script = home.path().join("ready_later.sh");
    std::fs::write(
        &script,
        "while [ ! -e \"$1\" ]; do sleep 0.05; done\necho READY\nexec sleep 600\n",
    )
    .unwrap();
    home.velos(&[
        "start",
        script.to_str().unwrap(),
        "--name",
        "api",
        "--ready",
        "log:READY",
        "--no-wait",
        "--",
        flag.to_str().unwrap(),
    ])
    .success();
    // A process without a ready mode never holds readiness up.
    home.velos(&["start", &fixture("ticker.sh"), "--name", "plain"])
        .success();
    assert_eq!(home.get("api").status, "starting");
    let answer = get(address, "/readyz").unwrap();
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("api:0 starting"), "{answer:?}");
    assert!(!answer.body.contains("plain"), "{answer:?}");
    assert_eq!(get(address, "/healthz").unwrap().status, 200);
    let text = scrape(address);
    let parsed = parse(&text).unwrap();
    assert_eq!(
        parsed.value("velos_process_ready", &[("name", "api")]),
        Some(0.0)
    );
    assert_eq!(
        parsed.value("velos_process_up", &[("name", "api")]),
        Some(1.0)
    );

    std::fs::write(&flag, "").unwrap();
    home.wait_status("api", "running");
    let answer = get(address, "/readyz").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn a_huge_header_or_a_silent_client_does_not_disturb_the_daemon() {
    let home = TestHome::new();
    let address = enable(&home);
    home.velos(&["start", &fixture("ticker.sh"), "--name", "web"])
        .success();
    home.wait_running("web");

    // One client sends nothing at all.
    let mut silent = TcpStream::connect(address).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let silent_since = Instant::now();
    // Another sends a 1 MiB header, as fast as the daemon takes it.
    let huge = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut request = b"GET /metrics HTTP/1.1\r\nX-Filler: ".to_vec();
        request.resize(1024 * 1024, b'a');
        // The daemon closes after 8 KiB: the write may fail, which is the point.
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    });

    // Meanwhile others are answered at once.
    for _ in 0..3 {
        let started = Instant::now();
        home.ping();
        let text = scrape(address);
        parse(&text).unwrap();
        assert_eq!(get(address, "/healthz").unwrap().status, 200);
        let took = started.elapsed();
        assert!(took < PROMPT, "ping, scrape and health took {took:?}");
    }
    let answer = huge.join().unwrap();
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
        "the huge header got {answer:?}"
    );

    // The silent client is let go after a few seconds.
    let mut seen = Vec::new();
    let _ = silent.read_to_end(&mut seen);
    let waited = silent_since.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "the silent client was held {waited:?}"
    );
    let seen = String::from_utf8_lossy(&seen);
    assert!(
        seen.is_empty() || seen.starts_with("HTTP/1.1 408 "),
        "{seen:?}"
    );
    home.ping();
    assert_eq!(home.get("web").status, "running");
}

#[test]
fn an_address_in_use_is_refused_and_nothing_changes() {
    let home = TestHome::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_address = taken.local_addr().unwrap().to_string();
    let error = home
        .velos(&["metrics", "enable", "--listen", &taken_address])
        .error();
    assert!(error.contains(&taken_address), "{error}");
    let state = home
        .velos(&["metrics", "status", "--json"])
        .success()
        .json();
    assert_eq!(state["enabled"], false, "{state}");
    assert!(!home.path().join("metrics.listen").exists());

    let address = enable(&home);
    let error = home
        .velos(&["metrics", "enable", "--listen", &taken_address])
        .error();
    assert!(error.contains(&taken_address), "{error}");
    assert_eq!(
        served_address(&home),
        Some(address),
        "still served where it was"
    );
    scrape(address);
    let error = home
        .velos(&["metrics", "enable", "--listen", "localhost"])
        .error();
    assert!(error.contains("not an address"), "{error}");
}

#[test]
fn the_setting_survives_a_daemon_restart_and_disable_closes_the_port() {
    let home = TestHome::new();
    let first = enable(&home);
    scrape(first);
    home.velos(&["kill"]).success();
    // The next command starts a daemon, which serves the metrics again.
    let state = home
        .velos(&["metrics", "status", "--json"])
        .success()
        .json();
    assert_eq!(state["enabled"], true, "{state}");
    assert_eq!(state["listen"], "127.0.0.1:0", "{state}");
    let again = served_address(&home).expect("served after the restart");
    scrape(again);
    let status = home.velos(&["metrics", "status"]).success().stdout_str();
    assert!(
        status.contains(&format!("http://{again}/metrics")),
        "{status}"
    );

    home.velos(&["metrics", "disable"]).success();
    wait_until(WAIT, "the metrics port to close", || {
        TcpStream::connect_timeout(&again, Duration::from_secs(1)).is_err()
    });
    let state = home
        .velos(&["metrics", "status", "--json"])
        .success()
        .json();
    assert_eq!(state["enabled"], false, "{state}");
    home.velos(&["kill"]).success();
    let state = home
        .velos(&["metrics", "status", "--json"])
        .success()
        .json();
    assert_eq!(state["enabled"], false, "off stays off: {state}");
}

#[test]
fn an_address_taken_while_the_daemon_was_down_is_reported_and_enable_retries() {
    let home = TestHome::new();
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().to_string()
    };
    home.velos(&["metrics", "enable", "--listen", &port])
        .success();
    home.velos(&["kill"]).success();
    let taken = TcpListener::bind(&port).unwrap();
    // The daemon starts anyway, and says why the metrics are not served.
    let state = home
        .velos(&["metrics", "status", "--json"])
        .success()
        .json();
    assert_eq!(state["enabled"], true, "{state}");
    assert!(state["address"].is_null(), "{state}");
    let error = state["error"].as_str().unwrap_or_default();
    assert!(error.contains(&port), "{state}");
    let status = home.velos(&["metrics", "status"]).success().stdout_str();
    assert!(status.contains("not served"), "{status}");
    drop(taken);
    home.velos(&["metrics", "enable", "--listen", &port])
        .success();
    assert_eq!(served_address(&home), Some(port.parse().unwrap()));
    scrape(port.parse().unwrap());
}
