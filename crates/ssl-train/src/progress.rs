//! Progress of the training loop: a bar on a terminal, plain lines every few seconds otherwise
//! (CI logs, `nohup`, notebooks), so a redirected run shows it is alive.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is printed when stdout is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// The loop's progress display.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: ProgressBar,
    /// `Some(last print)` when stdout is not a terminal and plain lines are printed.
    plain: Option<Instant>,
    start: Instant,
    total: Option<u64>,
}

impl Progress {
    /// A display for `total` steps (`None` until a budgeted run has fixed its length).
    pub(crate) fn new(total: Option<u64>) -> Self {
        let bar = ProgressBar::new(total.unwrap_or(0)).with_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps {elapsed_precise}  {msg}  ETA {eta}",
            )
            .expect("static template"),
        );
        let plain = (!std::io::stdout().is_terminal()).then(Instant::now);
        Self { bar, plain, start: Instant::now(), total }
    }

    /// Sets the number of steps once it is known.
    pub(crate) fn set_total(&mut self, total: u64) {
        self.total = Some(total);
        self.bar.set_length(total);
    }

    /// Records that step `step` (from 0) finished with `loss`, at `images_per_second`.
    pub(crate) fn step(&mut self, step: u64, epoch: u64, loss: f64, images_per_second: f64) {
        self.bar.set_message(format!("epoch {epoch} loss {loss:.4} {images_per_second:.0} img/s"));
        self.bar.inc(1);
        let Some(last) = self.plain else { return };
        let done = step + 1;
        if last.elapsed() < PLAIN_EVERY && done != 1 && Some(done) != self.total {
            return;
        }
        self.plain = Some(Instant::now());
        let elapsed = self.start.elapsed().as_secs_f64();
        let (of, eta) = match self.total {
            Some(total) => {
                let eta = elapsed / done as f64 * total.saturating_sub(done) as f64;
                (total.to_string(), clock(eta))
            }
            None => ("?".into(), "after the warm-up is timed".into()),
        };
        println!(
            "step {done}/{of} epoch {epoch}: loss {loss:.4}, {images_per_second:.0} images/s, \
             elapsed {}, ETA {eta}",
            clock(elapsed)
        );
    }

    /// Prints `line` without tearing the bar.
    pub(crate) fn println(&self, line: &str) {
        self.bar.suspend(|| println!("{line}"));
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `h:mm:ss` (or `m:ss`) of a duration in seconds.
pub(crate) fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s / 3600 {
        0 => format!("{}:{:02}", s / 60, s % 60),
        h => format!("{h}:{:02}:{:02}", s / 60 % 60, s % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::clock;

    #[test]
    fn clock_formats_minutes_and_hours() {
        assert_eq!(clock(0.4), "0:00");
        assert_eq!(clock(59.6), "1:00");
        assert_eq!(clock(754.0), "12:34");
        assert_eq!(clock(3600.0 + 62.0), "1:01:02");
    }
}
