//! The terminal while monit owns it: raw mode and the alternate screen, given back on
//! every way out.
//!
//! [`Screen::enter`] switches them on and returns a guard whose `Drop` switches them off
//! (a normal exit, `q`, Ctrl-C as a key, an error returned from the loop). A panic hook,
//! installed first, restores the terminal before the panic message is printed, so the
//! message is readable and the shell usable. SIGTERM, SIGHUP and SIGINT end the loop
//! (see `mod.rs`), so the guard's `Drop` runs for them too. Only SIGKILL leaves the
//! terminal raw (`reset` fixes it).

use std::io::{self, Stdout, Write};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// The terminal in monit's hands; restored when dropped.
pub struct Screen {
    /// Draws on stdout.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Takes the terminal: panic hook, raw mode, alternate screen, cursor hidden.
    pub fn enter() -> io::Result<Screen> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        // From here on, a failure must give the terminal back before it is returned.
        let screen = (|| {
            execute!(io::stdout(), EnterAlternateScreen, Hide)?;
            Terminal::new(CrosstermBackend::new(io::stdout()))
        })();
        match screen {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(error) => {
                restore();
                Err(error)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back as it was: cooked mode, the main screen, the cursor shown.
/// Safe to call more than once (the panic hook and the guard may both run).
fn restore() {
    let _ = disable_raw_mode();
    let mut stdout = io::stdout();
    let _ = execute!(stdout, LeaveAlternateScreen, Show);
    let _ = stdout.flush();
}
