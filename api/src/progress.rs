//! How `esqase projections rebuild` shows its progress: a bar on stderr when stderr is a
//! terminal, otherwise a log line every few seconds (a CI log or a redirected stderr gets no
//! control characters).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often the log lines come.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// A rebuild's progress, as told by [`projections::rebuild::Progress`].
pub struct RebuildProgress {
    projection: String,
    started: Instant,
    shown: Shown,
    /// The count at the first report (events folded by earlier runs), left out of the rate.
    first: Mutex<Option<u64>>,
}

enum Shown {
    Bar(ProgressBar),
    /// When the last line was logged, and the count it gave.
    Log(Mutex<(Instant, u64)>),
}

impl RebuildProgress {
    /// A bar if stderr is a terminal, log lines otherwise.
    pub fn new(projection: &str) -> RebuildProgress {
        let shown = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // The template is a constant, so it always parses; the default style is the fallback.
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events, {msg}, {eta} left",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(format!("rebuilding {projection}"));
            bar.set_message("reading the checkpoint");
            Shown::Bar(bar)
        } else {
            Shown::Log(Mutex::new((Instant::now(), 0)))
        };
        RebuildProgress { projection: projection.to_owned(), started: Instant::now(), shown, first: Mutex::new(None) }
    }

    /// Events per second folded by this run.
    fn rate(&self, replayed: u64) -> u64 {
        let first = *self.first.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get_or_insert(replayed);
        let seconds = self.started.elapsed().as_secs_f64();
        if seconds > 0.0 {
            (replayed.saturating_sub(first) as f64 / seconds) as u64
        } else {
            0
        }
    }

    /// Leaves the bar drawn as it stands (the rebuild ended, or was interrupted).
    pub fn finish(&self) {
        if let Shown::Bar(bar) = &self.shown {
            bar.abandon();
        }
    }
}

impl projections::rebuild::Progress for RebuildProgress {
    fn report(&self, replayed: u64, total: u64) {
        let rate = self.rate(replayed);
        match &self.shown {
            Shown::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(replayed);
                bar.set_message(format!("{rate} events/s"));
            }
            Shown::Log(last) => {
                let mut last = last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                // Every few seconds, and once at the end.
                if replayed != last.1 && (last.0.elapsed() >= LOG_EVERY || replayed == total) {
                    *last = (Instant::now(), replayed);
                    tracing::info!(projection = %self.projection, replayed, total, events_per_s = rate, "rebuilding");
                }
            }
        }
    }
}
