//! Terminal output: status lines on stderr, progress bars, and the rule
//! that stdout carries only results (one JSON object with `--json`).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// How a run talks to its user.
#[derive(Debug, Clone)]
pub struct Ui {
    /// Machine-readable output requested: no decoration on stdout.
    pub json: bool,
    /// `-v` count.
    pub verbose: u8,
}

impl Ui {
    /// A status line on stderr (always: pipelines still want to see progress in logs).
    pub fn status(&self, msg: &str) {
        eprintln!("xc-convert: {msg}");
    }

    /// Detail shown with `-v`.
    pub fn detail(&self, msg: &str) {
        if self.verbose > 0 {
            eprintln!("xc-convert:   {msg}");
        }
    }

    /// A progress bar with a known length, or a spinner when `len` is None.
    /// Hidden when stderr is not a terminal, where it would only add noise.
    pub fn progress(&self, len: Option<u64>, what: &str) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = match len {
            Some(n) => {
                let pb = ProgressBar::new(n);
                pb.set_style(
                    ProgressStyle::with_template("{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                pb
            }
            None => {
                let pb = ProgressBar::new_spinner();
                pb.set_style(
                    ProgressStyle::with_template("{prefix} {spinner} [{elapsed_precise}] {pos} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb
            }
        };
        pb.set_prefix(what.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    }
}
