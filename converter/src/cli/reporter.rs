//! The terminal side of the pipeline's events: status lines on stderr,
//! one progress bar at a time, `-v` detail and guest console lines.

use crate::pipeline::{Event, Reporter};
use crate::ui::Ui;
use indicatif::ProgressBar;
use std::sync::Mutex;

/// Prints events for a person (stderr only: stdout carries results).
pub struct Terminal {
    ui: Ui,
    bar: Mutex<Option<ProgressBar>>,
}

impl Terminal {
    /// A reporter with `ui`'s preferences.
    pub fn new(ui: Ui) -> Self {
        Self { ui, bar: Mutex::new(None) }
    }
}

impl Reporter for Terminal {
    fn event(&self, event: Event) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::Status(m) => self.ui.status(&m),
            Event::Detail(m) => self.ui.detail(&m),
            Event::ProgressStart { what, len } => *bar = Some(self.ui.progress(len, &what)),
            Event::Progress { pos, message } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(pos);
                    b.set_message(message);
                }
            }
            Event::ProgressEnd => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
            }
            Event::Waiting { stage, entry, lock } => self.ui.status(&format!(
                "waiting for another xc-convert to finish {stage} entry {entry} (lock {}); its result will be reused",
                lock.display()
            )),
            Event::Rebuilding { stage, reasons } => {
                self.ui.detail(&format!("{stage}: rebuilding because {}", reasons.join(", ")))
            }
            Event::Console(line) => {
                if self.ui.verbose > 0 {
                    eprintln!("  | {line}");
                }
            }
        }
    }
}
