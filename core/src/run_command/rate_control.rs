//! Rate control: SSM's MaxConcurrency and MaxErrors as a pure state value.
//!
//! A command's targets are released (sent) in the order of its resolved
//! target list; [`RateControl`] says which of them may go now. It is a
//! handful of counters, so the dispatch path needs no loop of its own: the
//! fan-out releases the first target, and every report that moves an
//! invocation (acknowledged, or final) asks [`RateControl::decide`] again and
//! releases what that allows.
//!
//! SSM's rules, as its documentation states them:
//! - MaxConcurrency is a number or a percentage of the targets; at most that
//!   many released invocations are not final at once.
//! - "The queueing system delivers the command to a single node and waits
//!   until the system acknowledges the initial invocation before sending the
//!   command to two more nodes. The system exponentially sends commands to
//!   more nodes until the system meets the value of max-concurrency."
//! - MaxErrors is a number or a percentage; errors are invocations ending
//!   Failed or Execution Timed Out (SSM's `ErrorCount`); Delivery Timed Out
//!   and Undeliverable do not count. "If you specify 3, the system stops
//!   sending the command when the fourth error is received. If you specify
//!   0, the system stops sending the command to additional nodes after the
//!   first error result is returned": sending stops once errors > MaxErrors.
//! - "Invocations that are already running a command when max-errors is
//!   reached are allowed to complete"; the ones never sent end
//!   `Terminated`: "the parent command exceeded its max-errors limit and
//!   subsequent command invocations were canceled by the system".
//!
//! Where SSM's documentation is silent we decided (each pinned by a test):
//! - percentages round down, and MaxConcurrency is at least 1
//!   ([`Limit::resolve`], the one rule the whole crate uses): "10%" of 5
//!   targets runs one at a time, "10%" MaxErrors of 9 targets allows none;
//! - an invocation is *acknowledged* when it leaves Pending/Delayed: In
//!   Progress, Cancelling, or any final status. A final status without an
//!   acknowledgement (Delivery Timed Out, Undeliverable) counts too, or a
//!   dead first node would stall the command for ever;
//! - each acknowledgement allows two more releases ("two more nodes"), so the
//!   targets released by now are at most `1 + 2 × acknowledged`: 1, 3, 7, 15…
//!   — doubling with each generation — and at most `finished +
//!   MaxConcurrency`; a finished invocation frees its slot at once;
//! - a target whose node is not Online (ConnectionLost) when its release is
//!   decided is still sent the command, but holds no slot: it counts as
//!   acknowledged and finished from its release (`Tally::offline_released`)
//!   until it really ends (`offline_finished`), so one laptop switched off
//!   does not hold the command up for its delivery time-out. If it comes
//!   back in time it runs the command outside MaxConcurrency, and its
//!   result counts as any other (errors included);
//! - Canceled and Terminated are not errors (SSM's `ErrorCount` is Failed
//!   plus Execution Timed Out only);
//! - a cancelled command releases nothing more and its never-sent targets
//!   end `Canceled`; when a cancel and the error threshold both apply before
//!   the rest was closed, the cancel wins, as the command's status will be
//!   Cancelled anyway (`command::command_state`);
//! - a command with no targets releases nothing (its status is Success).
//!
//! # Storing it
//!
//! [`Counters`] live on the command item. Every field only grows (the flags
//! only turn true), which is what makes concurrent writers and redelivered
//! messages harmless:
//! - `acknowledged`, `finished`, `errors` are `ADD`ed with [`Delta::of`] in the
//!   same conditional write that moves the invocation from its current
//!   status (the transaction that already `ADD`s the `Tally`). A duplicate
//!   report fails that condition and adds nothing; this, not the model, is
//!   what makes a repeated report count once. (`finished` and `errors` may be
//!   read from the `Tally` instead — `completed()` and `errors()` — as long as
//!   nothing is counted before its target is released; see below.)
//! - `released` is the next index into the target list. The release step
//!   puts each released target's invocation if absent and sends it (both
//!   idempotent), then raises `released` to the decision's end on the
//!   condition that it is lower. Raising it after sending means a crash in
//!   between only repeats a send (same `msg_id`); the concurrency bound does
//!   not depend on `released`, only on the counters the decision was read
//!   from, which only grow.
//! - `closed` is set after the closing invocations were put (if absent) with
//!   their final status. An invocation already there was sent by a release
//!   that raced the threshold: it is left to finish.
//! - `cancelled` is the command's `CancelRequested`.
//!
//! Run [`RateControl::decide`] after every change: it is a function of the
//! counters, so a handler re-run after a crash finds and finishes what the
//! crashed one left undone.
//!
//! A release decided from counters read just before the threshold was
//! crossed may still go out: the same window SSM leaves for invocations
//! already running. A CancelCommand naming a target not yet released must
//! not count it before its release: it is cancelled when its turn comes (not
//! sent, reported Pending → Canceled), which frees its slot at once.

use std::ops::Range;

use crate::error::SsmError;
use crate::run_command::status::{InvocationDetail, Limit};

/// A command's limits, resolved for its number of targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub targets: u32,
    pub max_concurrency: u32,
    pub max_errors: u32,
}

impl Limits {
    pub fn new(targets: u32, max_concurrency: Limit, max_errors: Limit) -> Self {
        Self {
            targets,
            max_concurrency: max_concurrency.resolve(targets, true),
            max_errors: max_errors.resolve(targets, false),
        }
    }

    /// From the command's MaxConcurrency and MaxErrors as stored.
    pub fn parse(targets: u32, max_concurrency: &str, max_errors: &str) -> Result<Self, SsmError> {
        Ok(Self::new(
            targets,
            Limit::parse("maxConcurrency", max_concurrency)?,
            Limit::parse("maxErrors", max_errors)?,
        ))
    }
}

/// What the store keeps on the command item (see the module's notes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Targets `[0, released)` have been released: the next index.
    pub released: u32,
    /// Released invocations that left Pending/Delayed.
    pub acknowledged: u32,
    /// Released invocations that reached a final status.
    pub finished: u32,
    /// Of those, the ones that count against MaxErrors.
    pub errors: u32,
    pub cancelled: bool,
    /// The targets never released have been given their final status.
    pub closed: bool,
}

/// What one invocation's move adds to the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta {
    pub acknowledged: u32,
    pub finished: u32,
    pub errors: u32,
}

impl Delta {
    /// The counters' gain when an invocation moves `from` → `to`; nothing
    /// when the move is not allowed (a repeated or stale report).
    pub fn of(from: InvocationDetail, to: InvocationDetail) -> Self {
        if !from.may_become(to) {
            return Self::default();
        }
        Self {
            acknowledged: u32::from(acknowledged(to) && !acknowledged(from)),
            // `may_become` never leaves a final status, so this counts once.
            finished: u32::from(to.is_final()),
            errors: u32::from(to.is_error()),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

fn acknowledged(d: InvocationDetail) -> bool {
    !matches!(d, InvocationDetail::Pending | InvocationDetail::Delayed)
}

/// Targets that will never be sent, and the final detail each gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    pub targets: Range<u32>,
    pub detail: InvocationDetail,
}

/// What to do now: indices into the command's ordered target list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Send these (some may already have been sent: sending is idempotent).
    pub release: Range<u32>,
    pub close: Option<Closing>,
}

impl Decision {
    pub fn is_empty(&self) -> bool {
        self.release.is_empty() && self.close.as_ref().is_none_or(|c| c.targets.is_empty())
    }

    /// The released targets, from the command's target list.
    pub fn release_of<'a, T>(&self, targets: &'a [T]) -> &'a [T] {
        slice(targets, &self.release)
    }

    /// The closed targets, from the command's target list.
    pub fn close_of<'a, T>(&self, targets: &'a [T]) -> &'a [T] {
        self.close
            .as_ref()
            .map_or(&[], |c| slice(targets, &c.targets))
    }
}

fn slice<'a, T>(targets: &'a [T], r: &Range<u32>) -> &'a [T] {
    let end = (r.end as usize).min(targets.len());
    let start = (r.start as usize).min(end);
    &targets[start..end]
}

/// One command's rate control: its limits and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateControl {
    pub limits: Limits,
    pub counters: Counters,
}

impl RateControl {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            counters: Counters::default(),
        }
    }

    /// Released invocations not final yet (as far as the counters know).
    pub fn in_flight(&self) -> u32 {
        self.counters
            .released
            .saturating_sub(self.counters.finished)
    }

    /// Why nothing more is released: `Canceled` (the command was cancelled)
    /// or `Terminated` (errors exceed MaxErrors); `None` while it goes on.
    pub fn stop_reason(&self) -> Option<InvocationDetail> {
        if self.counters.cancelled {
            Some(InvocationDetail::Cancelled)
        } else if self.counters.errors > self.limits.max_errors {
            Some(InvocationDetail::Terminated)
        } else {
            None
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.stop_reason().is_some()
    }

    /// How many targets may have been released by now.
    pub fn allowance(&self) -> u32 {
        let c = &self.counters;
        if self.is_stopped() {
            return c.released;
        }
        let window = c.finished.saturating_add(self.limits.max_concurrency);
        let ramp = c.acknowledged.saturating_mul(2).saturating_add(1);
        self.limits.targets.min(window).min(ramp).max(c.released)
    }

    /// What is due now: at fan-out (the first release), and after every
    /// change of the counters.
    pub fn decide(&self) -> Decision {
        let released = self.counters.released.min(self.limits.targets);
        match self.stop_reason() {
            Some(detail) => Decision {
                release: released..released,
                close: (!self.counters.closed && released < self.limits.targets).then_some(
                    Closing {
                        targets: released..self.limits.targets,
                        detail,
                    },
                ),
            },
            None => Decision {
                release: released..self.allowance(),
                close: None,
            },
        }
    }

    /// A released target's invocation moved `from` → `to` (its status as
    /// stored, and the report's). A move that is not allowed — a repeated
    /// report of a final status, a late In Progress — changes nothing.
    pub fn on_report(&mut self, from: InvocationDetail, to: InvocationDetail) -> Decision {
        self.add(Delta::of(from, to));
        self.decide()
    }

    /// Applies a delta the store has counted.
    pub fn add(&mut self, d: Delta) {
        let c = &mut self.counters;
        c.acknowledged = c.acknowledged.saturating_add(d.acknowledged);
        c.finished = c.finished.saturating_add(d.finished);
        c.errors = c.errors.saturating_add(d.errors);
    }

    /// CancelCommand for the whole command: nothing more is released, and
    /// the targets never sent are closed `Canceled`. The released ones are
    /// cancelled by the dispatch as before. Repeating it changes nothing.
    pub fn on_cancel(&mut self) -> Decision {
        self.counters.cancelled = true;
        self.decide()
    }

    /// The targets before `end` have been sent. Only raises.
    pub fn mark_released(&mut self, end: u32) {
        let end = end.min(self.limits.targets);
        self.counters.released = self.counters.released.max(end);
    }

    /// The closing decided by [`Self::decide`] has been applied.
    pub fn mark_closed(&mut self) {
        if self.is_stopped() {
            self.counters.closed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_command::status::{
        MAX_CONCURRENCY_PATTERN, MAX_ERRORS_PATTERN, Tally, command_state,
    };
    use InvocationDetail as D;
    use proptest::prelude::*;

    fn rc(targets: u32, max_concurrency: &str, max_errors: &str) -> RateControl {
        RateControl::new(Limits::parse(targets, max_concurrency, max_errors).unwrap())
    }

    /// Applies a decision as the dispatch would and returns what it released.
    fn apply(r: &mut RateControl, d: &Decision) -> Range<u32> {
        r.mark_released(d.release.end);
        if d.close.is_some() {
            r.mark_closed();
        }
        d.release.clone()
    }

    /// Decides (as `f` does) and applies the decision.
    fn run(r: &mut RateControl, f: impl FnOnce(&mut RateControl) -> Decision) -> Range<u32> {
        let d = f(r);
        apply(r, &d)
    }

    /// Releases what is due, acknowledging each released target at once,
    /// until the ramp reaches the window; returns everything released.
    fn ramp_up(r: &mut RateControl) -> Range<u32> {
        let start = r.counters.released;
        loop {
            let d = r.decide();
            if d.release.is_empty() {
                break;
            }
            for _ in apply(r, &d) {
                r.on_report(D::Pending, D::InProgress);
            }
        }
        start..r.counters.released
    }

    #[test]
    fn limits_resolve_with_the_crate_rule() {
        let l = Limits::parse(5, "10%", "10%").unwrap();
        assert_eq!((l.max_concurrency, l.max_errors), (1, 0));
        let l = Limits::parse(5, "100%", "100%").unwrap();
        assert_eq!((l.max_concurrency, l.max_errors), (5, 5));
        // SSM's example: 10% of 50 allows 5 errors, stops at the sixth.
        assert_eq!(Limits::parse(50, "50", "10%").unwrap().max_errors, 5);
        assert_eq!(Limits::parse(9, "50", "10%").unwrap().max_errors, 0);
        let refused = |c: &str, e: &str| Limits::parse(5, c, e).unwrap_err().to_string();
        assert_eq!(
            refused("x", "0"),
            format!(
                "1 validation error detected: Value 'x' at 'maxConcurrency' failed to satisfy constraint: Member must satisfy regular expression pattern: {MAX_CONCURRENCY_PATTERN}"
            )
        );
        assert_eq!(
            refused("1", "101%"),
            format!(
                "1 validation error detected: Value '101%' at 'maxErrors' failed to satisfy constraint: Member must satisfy regular expression pattern: {MAX_ERRORS_PATTERN}"
            )
        );
    }

    #[test]
    fn ten_percent_of_five_runs_one_at_a_time() {
        let mut r = rc(5, "10%", "0");
        for i in 0..5 {
            let d = r.decide();
            assert_eq!(d.release, i..i + 1);
            apply(&mut r, &d);
            assert!(r.on_report(D::Pending, D::InProgress).release.is_empty());
            r.on_report(D::InProgress, D::Success);
        }
        assert!(r.decide().is_empty());
        assert_eq!(r.in_flight(), 0);
    }

    #[test]
    fn concurrency_one_releases_the_next_only_when_one_is_final() {
        let mut r = rc(3, "1", "0");
        assert_eq!(run(&mut r, |r| r.decide()), 0..1);
        // Acknowledged but not final: still one at a time.
        assert!(r.on_report(D::Pending, D::Delayed).release.is_empty());
        assert!(r.on_report(D::Delayed, D::InProgress).release.is_empty());
        assert_eq!(
            run(&mut r, |r| r.on_report(D::InProgress, D::Success)),
            1..2
        );
        assert_eq!(
            run(&mut r, |r| r.on_report(D::Pending, D::Undeliverable)),
            2..3
        );
        assert!(r.on_report(D::Pending, D::Success).is_empty());
    }

    #[test]
    fn the_ramp_starts_at_one_and_doubles_up_to_max_concurrency() {
        let mut r = rc(20, "100%", "0");
        assert_eq!(run(&mut r, |r| r.decide()), 0..1);
        // Sending alone is no acknowledgement.
        assert!(r.decide().release.is_empty());
        // "waits until the system acknowledges the initial invocation before
        // sending the command to two more nodes"
        assert_eq!(
            run(&mut r, |r| r.on_report(D::Pending, D::InProgress)),
            1..3
        );
        let mut waves = vec![1, 2];
        for _ in 0..3 {
            let before = r.counters.released;
            for _ in 0..r.counters.released - r.counters.acknowledged {
                r.on_report(D::Pending, D::InProgress);
            }
            let d = r.decide();
            apply(&mut r, &d);
            waves.push(r.counters.released - before);
        }
        assert_eq!(waves, vec![1, 2, 4, 8, 5]);
        assert_eq!(r.counters.released, 20);
    }

    #[test]
    fn the_ramp_never_passes_max_concurrency() {
        let mut r = rc(100, "4", "0");
        assert_eq!(ramp_up(&mut r), 0..4);
        assert_eq!(r.in_flight(), 4);
        assert!(r.decide().release.is_empty());
        assert_eq!(
            run(&mut r, |r| r.on_report(D::InProgress, D::Success)),
            4..5
        );
        assert_eq!(r.in_flight(), 4);
    }

    #[test]
    fn a_target_that_never_answers_does_not_stall_the_ramp() {
        let mut r = rc(3, "50", "0");
        assert_eq!(run(&mut r, |r| r.decide()), 0..1);
        assert_eq!(
            run(&mut r, |r| r.on_report(D::Pending, D::DeliveryTimedOut)),
            1..3
        );
    }

    #[test]
    fn max_errors_zero_stops_at_the_first_error_and_lets_the_running_finish() {
        let mut r = rc(6, "3", "0");
        assert_eq!(ramp_up(&mut r), 0..3);
        let d = r.on_report(D::InProgress, D::Failed);
        assert!(d.release.is_empty());
        assert_eq!(
            d.close,
            Some(Closing {
                targets: 3..6,
                detail: D::Terminated
            })
        );
        apply(&mut r, &d);
        // The two still running finish; nothing is released or closed again.
        assert!(r.on_report(D::InProgress, D::Success).is_empty());
        assert!(r.on_report(D::InProgress, D::Failed).is_empty());
        assert_eq!(r.counters.errors, 2);
        // The command's status follows SSM's table: Failed / Failed.
        let mut t = Tally {
            target_count: 6,
            ..Default::default()
        };
        for d in [D::Failed, D::Success, D::Failed] {
            t.record(d);
        }
        for _ in 3..6 {
            t.record(D::Terminated);
        }
        let s = command_state(&t, r.limits.max_errors, false);
        assert_eq!((s.status, s.details), ("Failed", "Failed"));
    }

    #[test]
    fn max_errors_three_stops_at_the_fourth_error() {
        let mut r = rc(10, "1", "3");
        for i in 0..3 {
            run(&mut r, |r| r.decide());
            let d = r.on_report(D::Pending, D::Failed);
            assert_eq!(d.release, i + 1..i + 2, "error {}", i + 1);
            assert_eq!(d.close, None);
        }
        run(&mut r, |r| r.decide());
        let d = r.on_report(D::Pending, D::Failed);
        assert!(d.release.is_empty());
        assert_eq!(d.close.map(|c| c.targets), Some(4..10));
    }

    #[test]
    fn execution_time_outs_count_as_errors() {
        let mut r = rc(3, "1", "0");
        run(&mut r, |r| r.decide());
        r.on_report(D::Pending, D::InProgress);
        let d = r.on_report(D::InProgress, D::ExecutionTimedOut);
        assert_eq!(d.close.map(|c| c.detail), Some(D::Terminated));
    }

    #[test]
    fn delivery_time_outs_undeliverable_and_cancelled_are_not_errors() {
        let mut r = rc(5, "1", "0");
        for to in [D::DeliveryTimedOut, D::Undeliverable, D::Cancelled] {
            run(&mut r, |r| r.decide());
            let d = r.on_report(D::Pending, to);
            assert_eq!(d.close, None, "{to:?}");
            assert_eq!(d.release.len(), 1, "{to:?}");
        }
        assert_eq!(r.counters.errors, 0);
        assert!(!r.is_stopped());
    }

    #[test]
    fn a_repeated_report_changes_nothing() {
        let mut r = rc(4, "2", "0");
        run(&mut r, |r| r.decide());
        r.on_report(D::Pending, D::InProgress);
        let once = r;
        // The same In Progress, read again after it was applied.
        r.on_report(D::InProgress, D::InProgress);
        assert_eq!(r, once);
        run(&mut r, |r| r.decide());
        r.on_report(D::InProgress, D::Failed);
        let once = r;
        // The result again, and a late In Progress after it.
        let again = r.on_report(D::Failed, D::Failed);
        let late = r.on_report(D::Failed, D::InProgress);
        assert_eq!(r, once);
        // The decision is the same as after the first: re-applying it is what
        // heals a crash between the count and the closing.
        assert_eq!(again, once.decide());
        assert_eq!(late, once.decide());
        assert_eq!(Delta::of(D::Success, D::Success), Delta::default());
        assert_eq!(Delta::of(D::Pending, D::Pending), Delta::default());
    }

    #[test]
    fn deltas() {
        let d = |a, f, e| Delta {
            acknowledged: a,
            finished: f,
            errors: e,
        };
        assert_eq!(Delta::of(D::Pending, D::InProgress), d(1, 0, 0));
        assert_eq!(Delta::of(D::Pending, D::Delayed), d(0, 0, 0));
        assert_eq!(Delta::of(D::Delayed, D::InProgress), d(1, 0, 0));
        assert_eq!(Delta::of(D::InProgress, D::Success), d(0, 1, 0));
        assert_eq!(Delta::of(D::InProgress, D::Failed), d(0, 1, 1));
        assert_eq!(Delta::of(D::Pending, D::Failed), d(1, 1, 1));
        assert_eq!(Delta::of(D::InProgress, D::ExecutionTimedOut), d(0, 1, 1));
        assert_eq!(Delta::of(D::Pending, D::DeliveryTimedOut), d(1, 1, 0));
        assert_eq!(Delta::of(D::InProgress, D::Cancelling), d(0, 0, 0));
        assert_eq!(Delta::of(D::Cancelling, D::Cancelled), d(0, 1, 0));
        assert!(Delta::of(D::Success, D::Failed).is_empty());
    }

    #[test]
    fn cancel_closes_the_unsent_targets_once() {
        let mut r = rc(10, "50", "0");
        assert_eq!(ramp_up(&mut r), 0..10);
        let mut r = rc(10, "2", "0");
        assert_eq!(ramp_up(&mut r), 0..2);
        let d = r.on_cancel();
        assert_eq!(
            d,
            Decision {
                release: 2..2,
                close: Some(Closing {
                    targets: 2..10,
                    detail: D::Cancelled
                })
            }
        );
        apply(&mut r, &d);
        assert!(r.on_cancel().is_empty());
        // The released ones finish; nothing more goes.
        assert!(r.on_report(D::InProgress, D::Success).is_empty());
    }

    #[test]
    fn cancel_wins_over_the_threshold_until_the_rest_is_closed() {
        let mut r = rc(5, "1", "0");
        run(&mut r, |r| r.decide());
        r.on_report(D::Pending, D::Failed);
        assert_eq!(r.on_cancel().close.map(|c| c.detail), Some(D::Cancelled));
        // Closed as Terminated first: a cancel after that closes nothing.
        let mut r = rc(5, "1", "0");
        run(&mut r, |r| r.decide());
        let d = r.on_report(D::Pending, D::Failed);
        apply(&mut r, &d);
        assert!(r.on_cancel().is_empty());
    }

    #[test]
    fn nothing_is_released_for_no_targets() {
        let mut r = rc(0, "50", "0");
        assert!(r.decide().is_empty());
        assert!(r.on_cancel().is_empty());
    }

    #[test]
    fn released_only_rises_and_stays_within_the_targets() {
        let mut r = rc(5, "5", "0");
        r.mark_released(3);
        r.mark_released(1);
        assert_eq!(r.counters.released, 3);
        r.mark_released(9);
        assert_eq!(r.counters.released, 5);
        // Closing is only recorded when there is something to close.
        r.mark_closed();
        assert!(!r.counters.closed);
    }

    #[test]
    fn decisions_map_to_the_target_list() {
        let ids = ["a", "b", "c", "d"];
        let d = Decision {
            release: 1..3,
            close: Some(Closing {
                targets: 3..4,
                detail: D::Terminated,
            }),
        };
        assert_eq!(d.release_of(&ids), ["b", "c"]);
        assert_eq!(d.close_of(&ids), ["d"]);
        let none = Decision {
            release: 4..9,
            close: None,
        };
        assert!(none.release_of(&ids).is_empty());
        assert!(none.close_of(&ids).is_empty());
    }

    /// One target as the store sees it.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Slot {
        Unreleased,
        /// Released: its invocation's detail.
        Sent(InvocationDetail),
        /// Never sent: closed with this detail.
        Closed(InvocationDetail),
    }

    fn limit(absolute: bool, n: u32) -> String {
        if absolute {
            n.to_string()
        } else {
            format!("{}%", n.min(100))
        }
    }

    /// The model's own reading of SSM's invocation details, written apart
    /// from `InvocationDetail`'s helpers so that a slip there shows here.
    /// A report only moves an invocation forward through these stages:
    /// Pending < Delayed < In Progress < Cancelling < a final detail.
    fn stage(d: InvocationDetail) -> u8 {
        match d {
            D::Pending => 0,
            D::Delayed => 1,
            D::InProgress => 2,
            D::Cancelling => 3,
            D::Success
            | D::Failed
            | D::ExecutionTimedOut
            | D::DeliveryTimedOut
            | D::Undeliverable
            | D::Cancelled
            | D::Terminated => 4,
        }
    }

    fn model_final(d: InvocationDetail) -> bool {
        stage(d) == 4
    }

    /// SSM's ErrorCount: Failed and Execution Timed Out, nothing else.
    fn model_error(d: InvocationDetail) -> bool {
        d == D::Failed || d == D::ExecutionTimedOut
    }

    /// Left Pending/Delayed (the ramp's acknowledgement).
    fn model_acknowledged(d: InvocationDetail) -> bool {
        stage(d) >= 2
    }

    /// What a node, a deadline or a per-instance CancelCommand may report.
    const REPORTS: [InvocationDetail; 10] = [
        D::InProgress,
        D::Delayed,
        D::Success,
        D::Failed,
        D::ExecutionTimedOut,
        D::DeliveryTimedOut,
        D::Undeliverable,
        D::Cancelling,
        D::Cancelled,
        D::Success,
    ];

    /// One step of an interleaving.
    #[derive(Debug, Clone, Copy)]
    enum Event {
        /// A report about any target, whatever its state (late, early,
        /// for a final or never-sent one).
        Report(u16, InvocationDetail),
        /// A report about an invocation not final yet.
        Live(u16, InvocationDetail),
        /// An earlier report again (every message may come twice).
        Duplicate(u16),
        /// CancelCommand for the whole command (it may come more than once).
        Cancel,
    }

    fn event() -> impl Strategy<Value = Event> {
        let report = prop::sample::select(&REPORTS[..]);
        prop_oneof![
            3 => (any::<u16>(), report.clone()).prop_map(|(i, d)| Event::Report(i, d)),
            6 => (any::<u16>(), report).prop_map(|(i, d)| Event::Live(i, d)),
            2 => any::<u16>().prop_map(Event::Duplicate),
            1 => Just(Event::Cancel),
        ]
    }

    struct Sim {
        r: RateControl,
        slots: Vec<Slot>,
        /// Why and at how many errors it first stopped.
        stopped: Option<(InvocationDetail, u32)>,
        /// Every report applied, for replays.
        applied: Vec<(usize, InvocationDetail)>,
    }

    impl Sim {
        fn in_flight(&self) -> Vec<usize> {
            (0..self.slots.len())
                .filter(|i| matches!(self.slots[*i], Slot::Sent(d) if !model_final(d)))
                .collect()
        }

        fn count(&self, f: impl Fn(InvocationDetail) -> bool) -> u32 {
            self.slots
                .iter()
                .filter(|s| matches!(s, Slot::Sent(d) if f(*d)))
                .count() as u32
        }

        /// Carries a decision out as the dispatch would: put-if-absent and send,
        /// then raise `released`; put-if-absent the closed ones, then mark.
        fn apply(&mut self, d: Decision, stopped_before: bool) -> Result<(), TestCaseError> {
            if stopped_before {
                prop_assert!(d.release.is_empty(), "released after stopping: {d:?}");
            }
            for i in d.release.clone() {
                if self.slots[i as usize] == Slot::Unreleased {
                    self.slots[i as usize] = Slot::Sent(D::Pending);
                }
            }
            self.r.mark_released(d.release.end);
            if let Some(c) = &d.close {
                prop_assert!(self.r.is_stopped());
                for i in c.targets.clone() {
                    let s = &mut self.slots[i as usize];
                    prop_assert_eq!(*s, Slot::Unreleased);
                    *s = Slot::Closed(c.detail);
                }
                self.r.mark_closed();
            }
            let l = self.r.limits;
            let in_flight = self.in_flight().len() as u32;
            prop_assert!(
                in_flight <= l.max_concurrency,
                "{in_flight} in flight, MaxConcurrency {}",
                l.max_concurrency
            );
            let acked = self.count(model_acknowledged);
            let sent = self.count(|_| true);
            prop_assert!(
                sent <= 1 + 2 * acked,
                "ramp: {sent} sent, {acked} acknowledged"
            );
            prop_assert_eq!(self.r.counters.errors, self.count(model_error));
            prop_assert_eq!(self.r.counters.finished, self.count(model_final));
            prop_assert_eq!(self.r.counters.acknowledged, acked);
            if self.stopped.is_none() {
                self.stopped = self
                    .r
                    .stop_reason()
                    .map(|why| (why, self.r.counters.errors));
            }
            Ok(())
        }

        /// A report about target `i`: the store reads its detail and moves it
        /// only forward, then the model decides. A target never sent has no
        /// invocation to report on; a closed one is final.
        fn report(&mut self, i: usize, to: InvocationDetail) -> Result<(), TestCaseError> {
            let from = match self.slots[i] {
                Slot::Unreleased => return Ok(()),
                Slot::Sent(d) | Slot::Closed(d) => d,
            };
            let stopped_before = self.r.is_stopped();
            let before = self.r.counters;
            let moves = stage(to) > stage(from);
            if moves {
                self.slots[i] = Slot::Sent(to);
                self.applied.push((i, to));
            }
            let d = self.r.on_report(from, to);
            if !moves {
                // A final detail (Canceled included) never changes again,
                // and a stale report counts nothing.
                prop_assert_eq!(self.r.counters, before, "{:?} -> {:?}", from, to);
            }
            self.apply(d, stopped_before)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any target count, any limits, any order of reports (Cancelling
        /// and Canceled among them) with duplicates and late ones, cancels
        /// at any point: the limits hold and every target ends with exactly
        /// one final status.
        #[test]
        fn rate_control_holds_under_any_interleaving(
            targets in 1u32..=500,
            (conc_abs, conc) in (any::<bool>(), 1u32..=600),
            (err_abs, errs) in (any::<bool>(), 0u32..=600),
            events in proptest::collection::vec(event(), 0..1200),
        ) {
            let limits = Limits::parse(targets, &limit(conc_abs, conc), &limit(err_abs, errs)).unwrap();
            let mut sim = Sim {
                r: RateControl::new(limits),
                slots: vec![Slot::Unreleased; targets as usize],
                stopped: None,
                applied: Vec::new(),
            };
            let first = sim.r.decide();
            prop_assert_eq!(first.release.clone(), 0..1);
            sim.apply(first, false)?;

            for e in events {
                match e {
                    Event::Cancel => {
                        let d = sim.r.on_cancel();
                        sim.apply(d, true)?;
                    }
                    Event::Duplicate(pick) => {
                        if let Some(&(i, to)) = sim.applied.get(pick as usize % sim.applied.len().max(1)) {
                            let before = sim.r;
                            sim.report(i, to)?;
                            prop_assert_eq!(sim.r.counters, before.counters);
                        }
                    }
                    Event::Report(pick, to) => sim.report(pick as usize % sim.slots.len(), to)?,
                    Event::Live(pick, to) => {
                        let live = sim.in_flight();
                        if !live.is_empty() {
                            sim.report(live[pick as usize % live.len()], to)?;
                        }
                    }
                }
            }
            // Whatever is left runs to the end.
            for _ in 0..=2 * targets {
                let live = sim.in_flight();
                let Some(&i) = live.first() else { break };
                sim.report(i, D::Success)?;
            }

            let l = sim.r.limits;
            prop_assert!(sim.in_flight().is_empty());
            prop_assert!(sim.r.decide().is_empty());
            // Exactly one final status each: sent and finished, or closed.
            for s in &sim.slots {
                match s {
                    Slot::Sent(d) | Slot::Closed(d) => prop_assert!(model_final(*d)),
                    Slot::Unreleased => prop_assert!(false, "a target was left unreleased"),
                }
            }
            let closed: Vec<_> = sim.slots.iter().filter_map(|s| match s {
                Slot::Closed(d) => Some(*d),
                _ => None,
            }).collect();
            let errors = sim.r.counters.errors;
            match sim.stopped {
                None => {
                    prop_assert!(closed.is_empty());
                    prop_assert!(errors <= l.max_errors);
                }
                Some((why, at_stop)) => {
                    prop_assert!(closed.iter().all(|d| *d == why));
                    // Only those in flight at the stop may fail after it.
                    prop_assert!(errors <= at_stop + l.max_concurrency);
                    if why == D::Terminated {
                        // Stopped by the error that crossed MaxErrors: that
                        // one was in flight too.
                        prop_assert_eq!(at_stop, l.max_errors + 1);
                        prop_assert!(errors < at_stop + l.max_concurrency);
                        if l.max_concurrency == 1 {
                            prop_assert_eq!(errors, l.max_errors + 1);
                        }
                    }
                }
            }
            // The command's status follows from the invocations' (SSM's table).
            let mut t = Tally { target_count: targets, ..Default::default() };
            for s in &sim.slots {
                if let Slot::Sent(d) | Slot::Closed(d) = s {
                    t.record(*d);
                }
            }
            let state = command_state(&t, l.max_errors, sim.r.counters.cancelled);
            prop_assert!(state.is_final());
            // Any Canceled invocation, or a cancel that left one not Success,
            // makes the command Cancelled (the decision `command_state` states).
            let any_cancelled = sim.slots.iter().any(|s| matches!(s, Slot::Sent(D::Cancelled) | Slot::Closed(D::Cancelled)));
            let all_success = sim.slots.iter().all(|s| *s == Slot::Sent(D::Success));
            if any_cancelled || (sim.r.counters.cancelled && !all_success) {
                prop_assert_eq!(state.status, "Cancelled");
            } else if closed.contains(&D::Terminated) {
                prop_assert!(matches!(state.status, "Failed" | "TimedOut"), "{:?}", state);
            }
        }
    }
}
