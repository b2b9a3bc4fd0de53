//! Progress of long native work (indexing, quantizing, training).
//!
//! On a terminal this is an indicatif bar. Where stderr is not a terminal
//! (CI logs, `nohup … > log`), indicatif draws nothing and drops
//! `println`, so a run would be silent for an hour: there the progress goes
//! to the structured log instead — a line at most every [`LOG_EVERY`] and at
//! the end, and every [`Progress::println`] line.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Least time between two progress lines in the log when stderr is not a
/// terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(30);

/// A progress bar that falls back to log lines off a terminal.
pub struct Progress {
    bar: ProgressBar,
    what: String,
    unit: String,
    msg: String,
    tty: bool,
    started: Instant,
    logged: Option<Instant>,
}

impl Progress {
    /// A bar for `total` `unit`s of `what` ("index", "files").
    pub fn new(what: &str, unit: &str, total: u64) -> Progress {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{what} [{{bar:30}}] {{pos}}/{{len}} {unit} {{elapsed_precise}} (eta {{eta}}) {{msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Progress {
            bar,
            what: what.to_string(),
            unit: unit.to_string(),
            msg: String::new(),
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            logged: None,
        }
    }

    /// Sets the total.
    pub fn set_length(&mut self, total: u64) {
        self.bar.set_length(total);
    }

    /// Sets the message shown after the counts.
    pub fn set_message(&mut self, msg: String) {
        self.bar.set_message(msg.clone());
        self.msg = msg;
    }

    /// Moves to `pos`.
    pub fn set_position(&mut self, pos: u64) {
        self.bar.set_position(pos);
        self.maybe_log();
    }

    /// Advances by `n`.
    pub fn inc(&mut self, n: u64) {
        self.bar.inc(n);
        self.maybe_log();
    }

    /// A line above the bar; the log gets it when there is no terminal.
    pub fn println(&self, line: &str) {
        if self.tty {
            self.bar.println(line);
        } else {
            tracing::info!(target: "cairn::progress", "{}: {line}", self.what);
        }
    }

    /// Runs `f` (which logs) with the bar hidden.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    /// Clears the bar; off a terminal, logs the final count.
    pub fn finish(&mut self) {
        self.bar.finish_and_clear();
        if !self.tty {
            self.log_line();
        }
    }

    fn maybe_log(&mut self) {
        if self.tty {
            return;
        }
        let due = self.logged.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        let done = self.bar.length().is_some_and(|l| self.bar.position() >= l);
        if due && !done {
            self.log_line();
        }
    }

    fn log_line(&mut self) {
        self.logged = Some(Instant::now());
        tracing::info!(
            target: "cairn::progress",
            "{} {}/{} {} after {:.0} s {}",
            self.what,
            self.bar.position(),
            self.bar.length().unwrap_or(0),
            self.unit,
            self.started.elapsed().as_secs_f64(),
            self.msg
        );
    }
}
