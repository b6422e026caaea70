//! `velos monit`: a live dashboard of the processes in the terminal.
//!
//! One task waits on whatever comes first, and sleeps in between (no polling):
//! - a key or a resize, read by a thread blocked in crossterm's `event::read`;
//! - a process event from the SDK's event stream, applied to its row at once;
//! - a line of the selected process from the SDK's log follow (re-opened when the
//!   selection moves to another process);
//! - the one-second tick: one `process.list` for CPU, memory and anything events do
//!   not carry;
//! - the outcome of an action (restart, stop, start), each run on a thread of its own
//!   with its own connection, because a stop waits up to the kill timeout and the
//!   screen must go on meanwhile;
//! - SIGTERM, SIGHUP or SIGINT, which end monit as `q` does.
//!
//! The screen is redrawn after a change, at most every [`FRAME_INTERVAL`], so a
//! process writing thousands of lines a second costs a few frames, not one per line.
//! When the daemon goes away, the screen says so and the tick tries to connect again
//! (without starting a daemon: that is for the user to decide).
//!
//! The data and the keys are `model.rs` (pure, unit-tested); the drawing is `view.rs`;
//! taking and giving back the terminal is `terminal.rs`.

mod model;
mod terminal;
mod view;

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_channel::{Receiver, Sender};
use async_io::Timer;
use async_io::block_on;
use futures_lite::future;
use futures_lite::{FutureExt, StreamExt};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use velos_proto::{Home, ReloadParams, ReloadResult, Target};
use velos_sdk::{Client, Events, FollowEvent, LogFollow, ProcessEvent};

use self::model::{Action, Key, Model};
use self::terminal::Screen;
use self::view::Palette;
use super::explain;
use crate::autostart;

/// How often the process list (CPU, memory) is read.
const LIST_INTERVAL: Duration = Duration::from_secs(1);

/// The shortest time between two frames.
const FRAME_INTERVAL: Duration = Duration::from_millis(50);

/// Lines of the selected process shown when it is selected.
const INITIAL_LOG_LINES: u32 = 200;

/// Printed when there is no terminal to draw on.
pub const NO_TERMINAL: &str = "velos monit needs a terminal; in scripts use 'velos list --json' \
     for the processes or 'velos logs -f' for their output";

/// Runs `velos monit`.
pub fn run() -> Result<()> {
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        bail!(NO_TERMINAL);
    }
    let home = Home::from_env()?;
    // Before the screen is taken, so that an error reads as any command's. That client's
    // socket blocks (a command line's); the loop connects again with an async one.
    autostart::connect(&home)?;
    let signals = async_signal::Signals::new([
        async_signal::Signal::Term,
        async_signal::Signal::Hup,
        async_signal::Signal::Int,
    ])
    .context("listening for signals")?;
    let palette = Palette {
        color: std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
    };
    let screen = Screen::enter().context("taking the terminal")?;
    let (key_sender, keys) = async_channel::bounded(64);
    // Blocked in `read` between keys; it ends with the process (a thread cannot be
    // woken out of `read`, and nothing needs it to).
    std::thread::spawn(move || read_terminal(key_sender));
    let (outcome_sender, outcomes) = async_channel::unbounded();
    let mut monit = Monit {
        socket: home.socket_path(),
        palette,
        screen,
        model: Model::default(),
        client: None,
        events: None,
        follow: None,
        following: None,
        keys,
        signals,
        outcome_sender,
        outcomes,
        next_list: Instant::now(),
        dirty: true,
        last_frame: Instant::now() - FRAME_INTERVAL,
    };
    let result = block_on(monit.run());
    // The screen is given back before `main` prints an error.
    drop(monit);
    result
}

/// What woke the loop.
enum Wake {
    Terminal(Event),
    TerminalClosed,
    Signal,
    Tick,
    Frame,
    Outcome(String),
    Event(Option<velos_sdk::Result<ProcessEvent>>),
    Log(Option<velos_sdk::Result<FollowEvent>>),
}

struct Monit {
    socket: std::path::PathBuf,
    palette: Palette,
    screen: Screen,
    model: Model,
    /// For the list; `None` while the daemon cannot be reached.
    client: Option<Client>,
    events: Option<Events>,
    follow: Option<LogFollow>,
    /// Whose logs `follow` follows (or was opened for).
    following: Option<u32>,
    keys: Receiver<Event>,
    signals: async_signal::Signals,
    outcome_sender: Sender<String>,
    outcomes: Receiver<String>,
    next_list: Instant,
    dirty: bool,
    last_frame: Instant,
}

impl Monit {
    async fn run(&mut self) -> Result<()> {
        loop {
            if self.model.wanted_logs() != self.following {
                self.follow_selected().await;
            }
            let frame_at = self.last_frame + FRAME_INTERVAL;
            if self.dirty && Instant::now() >= frame_at {
                self.draw()?;
            }
            match self.wait(self.dirty.then_some(frame_at)).await {
                Wake::Terminal(Event::Key(key)) => {
                    if let Some(key) = reduce(key) {
                        match self.model.key(key) {
                            Action::Quit => return Ok(()),
                            Action::None => {}
                            action => self.act(action),
                        }
                    }
                }
                Wake::Terminal(_) => {}
                Wake::TerminalClosed | Wake::Signal => return Ok(()),
                Wake::Tick => self.list().await,
                Wake::Frame => {}
                Wake::Outcome(message) => self.model.message = Some(message),
                Wake::Event(Some(Ok(event))) => {
                    self.model.event(&event);
                    // The list fills in what an event does not say (uptime, CPU).
                    self.next_list = self.next_list.min(Instant::now() + FRAME_INTERVAL);
                }
                Wake::Event(Some(Err(_))) => {}
                Wake::Event(None) => self.lost("the daemon closed the connection".to_owned()),
                Wake::Log(Some(Ok(FollowEvent::Line(line)))) => self.model.log_line(&line),
                Wake::Log(Some(Ok(FollowEvent::Gap(skipped)))) => {
                    self.model.logs.skipped += skipped;
                }
                Wake::Log(Some(Ok(_) | Err(_))) => {}
                // Deleted, or the daemon went: the event stream and the list say which.
                Wake::Log(None) => self.follow = None,
            }
            self.dirty = true;
        }
    }

    /// Waits for the next thing to do; `frame_at` is when a pending redraw is due.
    /// Earlier sources win when several are ready: keys first, log lines last, so a
    /// flood of lines never holds up a key or the tick.
    async fn wait(&mut self, frame_at: Option<Instant>) -> Wake {
        let next_list = self.next_list;
        let keys = &self.keys;
        let signals = &mut self.signals;
        let outcomes = &self.outcomes;
        let events = &mut self.events;
        let follow = &mut self.follow;
        async {
            keys.recv()
                .await
                .map_or(Wake::TerminalClosed, Wake::Terminal)
        }
        .or(async {
            signals.next().await;
            Wake::Signal
        })
        .or(async {
            Timer::at(next_list).await;
            Wake::Tick
        })
        .or(async {
            match frame_at {
                Some(at) => {
                    Timer::at(at).await;
                    Wake::Frame
                }
                None => future::pending().await,
            }
        })
        .or(async {
            match outcomes.recv().await {
                Ok(message) => Wake::Outcome(message),
                Err(_) => future::pending().await,
            }
        })
        .or(async {
            match events {
                Some(events) => Wake::Event(events.next().await),
                None => future::pending().await,
            }
        })
        .or(async {
            match follow {
                Some(follow) => Wake::Log(follow.next().await),
                None => future::pending().await,
            }
        })
        .await
    }

    fn draw(&mut self) -> Result<()> {
        let (model, palette) = (&self.model, self.palette);
        self.screen
            .terminal
            .draw(|frame| view::draw(frame, model, palette))
            .context("drawing the screen")?;
        self.dirty = false;
        self.last_frame = Instant::now();
        Ok(())
    }

    /// The tick: one list (connecting again first if the daemon was lost).
    async fn list(&mut self) {
        self.next_list = Instant::now() + LIST_INTERVAL;
        if self.client.is_none() {
            match Client::connect(&self.socket).await {
                Ok(client) => self.client = Some(client),
                Err(error) => {
                    self.model.disconnected = Some(format!(
                        "cannot reach the daemon: {error}; trying again every second"
                    ));
                    return;
                }
            }
        }
        let Some(client) = &mut self.client else {
            return;
        };
        if self.events.is_none() {
            match client.events().await {
                Ok(events) => self.events = Some(events),
                Err(error) => return self.lost(format!("{:#}", explain(error))),
            }
        }
        match client.list().await {
            Ok(processes) => self.model.listed(processes),
            Err(error) => self.lost(format!("{:#}", explain(error))),
        }
    }

    /// Drops every connection; the next tick connects again.
    fn lost(&mut self, why: String) {
        self.client = None;
        self.events = None;
        self.follow = None;
        self.following = None;
        self.model.disconnected = Some(format!("{why}; trying again every second"));
    }

    /// Follows the selected process's logs instead of the previous one's.
    async fn follow_selected(&mut self) {
        self.follow = None;
        let wanted = self.model.wanted_logs();
        self.model.logs_reset(wanted, Vec::new());
        let (Some(id), Some(client)) = (wanted, &self.client) else {
            // Tried again once a client is back (`lost` clears `following`).
            self.following = if self.client.is_some() { wanted } else { None };
            return;
        };
        self.following = wanted;
        match client.follow_logs(Target::Id(id), INITIAL_LOG_LINES).await {
            Ok(mut follow) => {
                self.model.logs_reset(wanted, follow.take_initial().lines);
                self.follow = Some(follow);
            }
            Err(error) => {
                self.model.message = Some(format!("cannot follow its logs: {:#}", explain(error)));
            }
        }
        self.dirty = true;
    }

    /// Starts `action` on a thread of its own; its outcome comes back as a message.
    fn act(&mut self, action: Action) {
        let socket = self.socket.clone();
        let sender = self.outcome_sender.clone();
        let stop = matches!(action, Action::Stop { .. });
        let reload = matches!(action, Action::Reload { .. });
        let (id, name, doing, done) = match action {
            Action::Restart { id, name } => (id, name, "restart", "restarted"),
            Action::Reload { id, name } => (id, name, "reload", "reloaded"),
            Action::Stop { id, name } => (id, name, "stop", "stopped"),
            Action::Start { id, name } => (id, name, "start", "started"),
            Action::None | Action::Quit => return,
        };
        self.model.message = Some(format!("{doing}: '{name}'…"));
        std::thread::spawn(move || {
            let result = block_on(async {
                let mut client = Client::connect(&socket).await?;
                if stop {
                    client.stop(Target::Id(id)).await.map(|_| None)
                } else if reload {
                    let params = ReloadParams {
                        target: Target::Id(id),
                        parallel: None,
                        env: None,
                        settings: None,
                    };
                    // A failed replacement is an answer, not an error: say why.
                    client.reload(params).await.map(|outcomes| {
                        outcomes
                            .into_iter()
                            .find(|outcome| outcome.result != ReloadResult::Replaced)
                            .and_then(|outcome| outcome.reason)
                    })
                } else {
                    // A listed process that does not run is started again by restart.
                    client.restart(Target::Id(id)).await.map(|_| None)
                }
            });
            let message = match result {
                Ok(None) => format!("{done} '{name}'"),
                Ok(Some(why)) => format!("did not {doing} '{name}': {why}"),
                Err(error) => format!("cannot {doing} '{name}': {:#}", explain(error)),
            };
            let _ = sender.send_blocking(message);
        });
    }
}

/// Forwards terminal events until the terminal or monit goes away.
fn read_terminal(sender: Sender<Event>) {
    while let Ok(event) = event::read() {
        if sender.send_blocking(event).is_err() {
            return;
        }
    }
}

/// The keys monit knows, from crossterm's (presses only: some terminals report
/// releases too).
fn reduce(key: KeyEvent) -> Option<Key> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    Some(match key.code {
        KeyCode::Char(c) if key.modifiers.contains(KeyModifiers::CONTROL) => Key::Ctrl(c),
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}
