//! `velos monit` on a real terminal: a tmux server of the test's own (its socket in the
//! test's home) runs a shell in a 120x40 pane; the test types into it with `send-keys`
//! and reads the screen with `capture-pane`. Skipped, saying so, where tmux is not
//! installed (`.ci/run` installs it).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{TestHome, WAIT, bins, on_path, wait_until};

/// A tmux server with one session, `monit`, running `sh` in the test's home; killed on
/// drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Starts the server, or `None` (with a note) where tmux is not installed.
    fn start(home: &TestHome) -> Option<Tmux> {
        if !on_path("tmux") {
            eprintln!("skipped: no tmux to give velos monit a terminal (apt-get install tmux)");
            return None;
        }
        let tmux = Tmux {
            socket: home.path().join("tmux.sock"),
        };
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                "monit",
                "-x",
                "120",
                "-y",
                "40",
                "sh",
            ])
            .env("VELOS_HOME", home.path())
            .env("VELOS_DAEMON", &bins().velosd)
            .env("NO_COLOR", "1")
            .env("TERM", "xterm-256color")
            .env("PS1", "$ ")
            .env("HOME", home.path())
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed: {status}");

        Some(tmux)
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command
            .arg("-S")
            .arg(&self.socket)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        command
    }

    /// Types `keys` (tmux key names: `Down`, `Enter`, or text).
    fn send(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "monit"])
            .args(keys)
            .status()
            .expect("run tmux send-keys");
        assert!(status.success(), "tmux send-keys {keys:?}: {status}");
    }

    /// Types a shell command line and Enter.
    fn type_line(&self, line: &str) {
        self.send(&["-l", line]);
        self.send(&["Enter"]);
    }

    /// What the pane shows now.
    fn screen(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "monit"])
            .output()
            .expect("run tmux capture-pane");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the pane shows something that `check` accepts.
    #[track_caller]
    fn wait_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_until(WAIT, what, || {
            let screen = self.screen();
            if check(&screen) {
                Ok(screen)
            } else {
                Err(screen)
            }
        })
    }

    /// The pid of the pane's shell.
    fn shell_pid(&self) -> u32 {
        let output = self
            .command()
            .args(["display-message", "-p", "-t", "monit", "#{pane_pid}"])
            .output()
            .expect("run tmux display-message");
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a pane pid")
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

/// The line of the monit table that shows `name`.
fn row<'a>(screen: &'a str, name: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|line| line.split_whitespace().any(|word| word == name))
}

/// Starts `api` (a line a second) and `web` (one line, then quiet), and `velos monit` in
/// the pane's shell after noting the terminal's settings; waits for both rows.
fn monit_with_two_processes(home: &TestHome, tmux: &Tmux) -> String {
    home.velos(&[
        "start",
        "/bin/sh",
        "--name",
        "api",
        "--",
        "-c",
        "while :; do echo api-tick; sleep 1; done",
    ])
    .success();
    home.velos(&[
        "start",
        "/bin/sh",
        "--name",
        "web",
        "--",
        "-c",
        "echo web-hello; exec sleep 1000",
    ])
    .success();
    tmux.type_line(&format!(
        "cd {}; stty -g > stty.before; echo marker-before",
        home.path().display()
    ));
    tmux.wait_screen("the shell to run", |screen| {
        screen.contains("\nmarker-before")
    });
    tmux.type_line(&format!(
        "{} monit; stty -g > stty.after; echo marker-after",
        bins().velos.display()
    ));
    tmux.wait_screen("monit to show both processes running", |screen| {
        screen.contains("velos monit: 2 processes")
            && row(screen, "api").is_some_and(|line| line.contains("running"))
            && row(screen, "web").is_some_and(|line| line.contains("running"))
    })
}

#[test]
fn monit_shows_the_processes_restarts_and_reloads_the_selected_one_and_gives_the_terminal_back() {
    let home = TestHome::new();
    let Some(tmux) = Tmux::start(&home) else {
        return;
    };
    let screen = monit_with_two_processes(&home, &tmux);
    assert!(
        row(&screen, "api").is_some_and(|line| line.contains('▶')),
        "the first process is selected at start:\n{screen}"
    );
    // Its log pane follows the selection.
    tmux.wait_screen("api's lines in the log pane", |screen| {
        screen.contains("api-tick")
    });

    tmux.send(&["Down"]);
    tmux.wait_screen("web to be selected, its logs shown", |screen| {
        row(screen, "web").is_some_and(|line| line.contains('▶')) && screen.contains("web-hello")
    });
    let before = home.wait_running("web").pid.expect("a pid");
    tmux.send(&["R"]);
    let after = wait_until(WAIT, "web to run with another pid", || {
        let web = home.get("web");
        match web.pid {
            Some(pid) if pid != before && web.status == "running" => Ok(pid),
            _ => Err(format!("{web:?}")),
        }
    });
    let screen = tmux.wait_screen("the new pid and the outcome on the screen", |screen| {
        row(screen, "web").is_some_and(|line| line.contains(&after.to_string()))
            && screen.contains("restarted 'web'")
    });
    assert!(
        row(&screen, "web").is_some_and(|line| line.contains("manual")),
        "the last restart reason:\n{screen}"
    );
    assert!(
        home.get("api").pid.is_some(),
        "api is left alone:\n{screen}"
    );

    // `r` reloads it: a replacement run, then the old one goes.
    tmux.send(&["r"]);
    let reloaded = wait_until(WAIT, "web to run with a third pid", || {
        let web = home.get("web");
        match web.pid {
            Some(pid) if pid != after && web.status == "running" => Ok(pid),
            _ => Err(format!("{web:?}")),
        }
    });
    tmux.wait_screen("the reloaded pid and the outcome on the screen", |screen| {
        row(screen, "web").is_some_and(|line| line.contains(&reloaded.to_string()))
            && screen.contains("reloaded 'web'")
    });

    tmux.send(&["q"]);
    let screen = tmux.wait_screen("the shell to come back after monit", |screen| {
        screen.contains("\nmarker-after")
    });
    assert!(
        screen.contains("marker-before") && !screen.contains("velos monit:"),
        "the shell's screen as it was, without monit's:\n{screen}"
    );
    let settings = |file: &str| {
        std::fs::read_to_string(home.path().join(file)).unwrap_or_else(|error| {
            panic!("{file} in {}: {error}\n{screen}", home.path().display())
        })
    };
    assert_eq!(
        settings("stty.before"),
        settings("stty.after"),
        "the terminal's settings after monit"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn monit_idle_uses_under_one_percent_of_a_core_and_ctrl_c_ends_it() {
    let home = TestHome::new();
    let Some(tmux) = Tmux::start(&home) else {
        return;
    };
    monit_with_two_processes(&home, &tmux);
    let shell = tmux.shell_pid();
    let monit = wait_until(WAIT, "monit's pid (the shell's child)", || {
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap_or_default();
        children
            .split_whitespace()
            .filter_map(|pid| pid.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "velos")
            })
    });
    // User plus system time (fields 14 and 15), in clock ticks.
    let cpu_ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{monit}/stat")).expect("monit runs");
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let ticks_per_second = rustix::param::clock_ticks_per_second();
    let window = Duration::from_secs(10);
    let start = (cpu_ticks(), std::time::Instant::now());
    // Measuring idle use needs a stretch of idle time: nothing to wait for instead.
    std::thread::sleep(window);
    let (used, elapsed) = (cpu_ticks() - start.0, start.1.elapsed());
    let share = used as f64 / ticks_per_second as f64 / elapsed.as_secs_f64();
    eprintln!(
        "monit used {used} ticks in {elapsed:?}: {:.2}% of a core",
        share * 100.0
    );
    assert!(
        share < 0.01,
        "monit used {:.2}% of a core while idle ({used} ticks in {elapsed:?})",
        share * 100.0
    );
    // Ctrl-C is a key in raw mode: it ends monit as `q` does, the terminal restored.
    tmux.send(&["C-c"]);
    tmux.wait_screen("monit to end on Ctrl-C", |screen| {
        screen.contains("\nmarker-after")
    });
    let settings = |file: &str| std::fs::read_to_string(home.path().join(file)).unwrap();
    assert_eq!(settings("stty.before"), settings("stty.after"));
}

#[test]
fn monit_without_a_terminal_refuses_with_a_hint() {
    let home = TestHome::new();
    let output = home.velos(&["monit"]);
    let error = output.error();
    assert!(
        error.contains("needs a terminal")
            && error.contains("velos list --json")
            && error.contains("velos logs -f"),
        "{output}"
    );
    assert!(
        home.daemon_pid().is_none(),
        "no daemon is started for a refused monit"
    );
}

#[test]
fn monit_filters_by_name_shows_logs_full_screen_and_stops_and_starts() {
    let home = TestHome::new();
    let Some(tmux) = Tmux::start(&home) else {
        return;
    };
    monit_with_two_processes(&home, &tmux);
    tmux.send(&["/", "w", "e"]);
    tmux.wait_screen("only web, under the filter", |screen| {
        screen.contains("1 of 2 processes, filter 'we'")
            && row(screen, "web").is_some_and(|line| line.contains('▶'))
            && row(screen, "api").is_none()
    });
    tmux.send(&["Enter", "l"]);
    // The log pane alone: no table above it.
    tmux.wait_screen("web's log on the whole screen", |screen| {
        screen.contains("logs 'web'")
            && screen.contains("web-hello")
            && !screen.contains("velos monit:")
    });
    tmux.send(&["Escape"]);
    tmux.wait_screen("the table again", |screen| screen.contains("velos monit:"));

    tmux.send(&["s"]);
    home.wait_status("web", "stopped");
    tmux.wait_screen("web stopped on the screen", |screen| {
        row(screen, "web").is_some_and(|line| line.contains("stopped"))
            && screen.contains("stopped 'web'")
    });
    tmux.send(&["S"]);
    let web = home.wait_running("web");
    tmux.wait_screen("web running again on the screen", |screen| {
        row(screen, "web").is_some_and(|line| {
            line.contains("running") && line.contains(&web.pid.unwrap().to_string())
        })
    });
    assert_eq!(home.get("api").status, "running");
    tmux.send(&["q"]);
    tmux.wait_screen("the shell to come back", |screen| {
        screen.contains("\nmarker-after")
    });
}
