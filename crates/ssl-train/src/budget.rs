//! A wall-clock budget turned into a number of optimiser steps.
//!
//! A budgeted run times its warm-up steps (whose learning rates do not depend on the run's
//! length) and one kNN-monitor pass, then fixes its length with [`steps_within_budget`], so the
//! warm-up and the cosine that follows both end inside the budget.

/// What the run has measured when it fixes its length.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetInputs {
    /// The budget of the training loop, seconds.
    pub budget_seconds: f64,
    /// Seconds the loop has used so far (timed steps and monitor passes included).
    pub elapsed_seconds: f64,
    /// Optimiser steps taken so far; the decision is made before step `steps_done` runs.
    pub steps_done: u64,
    /// Measured seconds per optimiser step.
    pub step_seconds: f64,
    /// Steps per epoch; the monitor runs after every epoch, the last partial one included.
    pub steps_per_epoch: u64,
    /// Seconds of one kNN-monitor pass (0 when the monitor is off).
    pub monitor_seconds: f64,
    /// Fraction of the budget kept back for the machine's speed drifting (e.g. 0.03).
    pub margin: f64,
}

impl BudgetInputs {
    /// Seconds that steps `steps_done..total` and their epoch-end monitor passes still take.
    pub fn seconds_to(&self, total: u64) -> f64 {
        let (done, per) = (self.steps_done, self.steps_per_epoch);
        let steps = total.saturating_sub(done) as f64;
        // Epochs finished before the decision have had their monitor pass already.
        let monitors = total.div_ceil(per).saturating_sub(done / per) as f64;
        steps * self.step_seconds + monitors * self.monitor_seconds
    }

    /// Seconds of the budget still available for steps, after the margin.
    pub fn available_seconds(&self) -> f64 {
        self.budget_seconds * (1.0 - self.margin) - self.elapsed_seconds
    }
}

/// The largest total number of steps `N ≥ steps_done` whose remaining steps and monitor passes
/// fit the budget:
///
/// ```text
/// (N − d) · t_step + (⌈N / E⌉ − ⌊d / E⌋) · t_monitor ≤ B · (1 − margin) − elapsed
/// ```
/// with `d = steps_done` and `E = steps_per_epoch`. Returns `steps_done` when nothing more fits.
///
/// # Panics
/// When `step_seconds` is not > 0 or `steps_per_epoch` is 0.
pub fn steps_within_budget(b: &BudgetInputs) -> u64 {
    assert!(b.step_seconds > 0.0, "budget: step time {} s must be > 0", b.step_seconds);
    assert!(b.steps_per_epoch > 0, "budget: an epoch needs ≥ 1 step");
    let available = b.available_seconds();
    if available <= 0.0 {
        return b.steps_done;
    }
    // The cost grows by at least t_step per step: start from the estimate that spreads the
    // monitor over the epoch's steps, then walk to the exact boundary.
    let per_step = b.step_seconds + b.monitor_seconds / b.steps_per_epoch as f64;
    let mut n = b.steps_done + (available / per_step).floor() as u64;
    while n > b.steps_done && b.seconds_to(n) > available {
        n -= 1;
    }
    while b.seconds_to(n + 1) <= available {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> BudgetInputs {
        BudgetInputs {
            budget_seconds: 100.0,
            elapsed_seconds: 10.0,
            steps_done: 5,
            step_seconds: 1.0,
            steps_per_epoch: 10,
            monitor_seconds: 0.0,
            margin: 0.0,
        }
    }

    #[test]
    fn without_a_monitor_the_steps_fill_the_time_left() {
        // 90 s left at 1 s a step: 90 more steps after the 5 done.
        assert_eq!(steps_within_budget(&inputs()), 95);
        // A 10 % margin keeps back 10 s: 80 more.
        assert_eq!(steps_within_budget(&BudgetInputs { margin: 0.1, ..inputs() }), 85);
        // 0.3 s a step: ⌊90 / 0.3⌋ = 300 (299.999… in floating point must not lose a step).
        let fast = BudgetInputs { step_seconds: 0.3, ..inputs() };
        assert_eq!(steps_within_budget(&fast), 305);
    }

    #[test]
    fn each_epoch_end_pays_one_monitor_pass() {
        // 5 s a monitor, 10 steps an epoch, 90 s left after 5 steps (no epoch finished yet).
        // N = 75: 70 steps + ⌈75/10⌉ = 8 passes = 70 + 40 = 110 s, too much.
        // N = 65: 60 + 7·5 = 95 s, too much. N = 60: 55 + 6·5 = 85 s fits; N = 61 adds a step
        // and the pass of a seventh, partial epoch: 56 + 35 = 91 s does not.
        let b = BudgetInputs { monitor_seconds: 5.0, ..inputs() };
        assert_eq!(b.seconds_to(60), 85.0);
        assert_eq!(b.seconds_to(61), 91.0);
        assert_eq!(steps_within_budget(&b), 60);
        // After 20 steps two passes have run: N = 80 costs 60 + (8 − 2)·5 = 90 s, just fits.
        let later = BudgetInputs { steps_done: 20, elapsed_seconds: 10.0, ..b };
        assert_eq!(later.seconds_to(80), 90.0);
        assert_eq!(steps_within_budget(&later), 80);
    }

    #[test]
    fn an_exhausted_budget_adds_no_step() {
        let spent = BudgetInputs { elapsed_seconds: 120.0, ..inputs() };
        assert_eq!(steps_within_budget(&spent), 5);
        let tight = BudgetInputs { elapsed_seconds: 99.5, ..inputs() };
        assert_eq!(steps_within_budget(&tight), 5);
    }
}
