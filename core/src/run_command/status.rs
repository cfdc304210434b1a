//! Commands and their invocations: SSM's statuses, status details, and how a
//! command's status follows from its invocations'.

use serde::{Deserialize, Serialize};

use crate::error::SsmError;

/// An invocation's (and a plugin's) `StatusDetails`, which carry more than
/// `Status`. The serialized form is SSM's exact text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum InvocationDetail {
    Pending,
    #[serde(rename = "In Progress")]
    InProgress,
    Delayed,
    Success,
    #[serde(rename = "Delivery Timed Out")]
    DeliveryTimedOut,
    #[serde(rename = "Execution Timed Out")]
    ExecutionTimedOut,
    Failed,
    /// SSM spells the detail "Canceled" and the status "Cancelled".
    #[serde(rename = "Canceled")]
    Cancelled,
    Cancelling,
    Undeliverable,
    Terminated,
}

/// The coarse `Status` of an invocation or plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InvocationStatus {
    Pending,
    InProgress,
    Delayed,
    Success,
    Cancelled,
    TimedOut,
    Failed,
    Cancelling,
}

impl InvocationDetail {
    pub fn status(self) -> InvocationStatus {
        use InvocationDetail as D;
        use InvocationStatus as S;
        match self {
            D::Pending => S::Pending,
            D::InProgress => S::InProgress,
            D::Delayed => S::Delayed,
            D::Success => S::Success,
            D::DeliveryTimedOut | D::ExecutionTimedOut => S::TimedOut,
            D::Failed | D::Undeliverable | D::Terminated => S::Failed,
            D::Cancelled => S::Cancelled,
            D::Cancelling => S::Cancelling,
        }
    }

    /// Final details never change again; a late or repeated report is ignored.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Self::Pending | Self::InProgress | Self::Delayed | Self::Cancelling
        )
    }

    /// Counts against MaxErrors (SSM: Failed and Execution Timed Out do;
    /// Delivery Timed Out and Undeliverable do not).
    pub fn is_error(self) -> bool {
        matches!(self, Self::Failed | Self::ExecutionTimedOut)
    }

    /// Whether moving from `self` to `next` is allowed. Final states are
    /// absorbing; otherwise a report may only move forward.
    pub fn may_become(self, next: InvocationDetail) -> bool {
        if self.is_final() || self == next {
            return false;
        }
        match next {
            Self::Pending => false,
            Self::InProgress | Self::Delayed => matches!(self, Self::Pending | Self::Delayed),
            Self::Cancelling => matches!(self, Self::Pending | Self::InProgress | Self::Delayed),
            _ => true,
        }
    }

    pub fn as_str(self) -> &'static str {
        use InvocationDetail::*;
        match self {
            Pending => "Pending",
            InProgress => "In Progress",
            Delayed => "Delayed",
            Success => "Success",
            DeliveryTimedOut => "Delivery Timed Out",
            ExecutionTimedOut => "Execution Timed Out",
            Failed => "Failed",
            Cancelled => "Canceled",
            Cancelling => "Cancelling",
            Undeliverable => "Undeliverable",
            Terminated => "Terminated",
        }
    }

    /// Every detail, in SSM's order.
    pub const ALL: [InvocationDetail; 11] = {
        use InvocationDetail::*;
        [
            Pending,
            InProgress,
            Delayed,
            Success,
            DeliveryTimedOut,
            ExecutionTimedOut,
            Failed,
            Cancelled,
            Cancelling,
            Undeliverable,
            Terminated,
        ]
    };

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

impl InvocationStatus {
    pub fn as_str(self) -> &'static str {
        use InvocationStatus::*;
        match self {
            Pending => "Pending",
            InProgress => "InProgress",
            Delayed => "Delayed",
            Success => "Success",
            Cancelled => "Cancelled",
            TimedOut => "TimedOut",
            Failed => "Failed",
            Cancelling => "Cancelling",
        }
    }
}

/// How many invocations of a command are in each final detail, plus how many
/// have started. Kept on the command record as counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub target_count: u32,
    pub started: u32,
    pub success: u32,
    pub failed: u32,
    pub execution_timed_out: u32,
    pub delivery_timed_out: u32,
    pub undeliverable: u32,
    pub terminated: u32,
    pub cancelled: u32,
    /// Rate control's counters (`run_command::rate_control::Counters`), kept
    /// with the others: invocations that left Pending/Delayed…
    pub acknowledged: u32,
    /// …and the next index into the target list to release.
    pub released: u32,
    /// Released to nodes that were not Online at the time: they hold no
    /// rate-control slot (see `rate_control`)…
    pub offline_released: u32,
    /// …and of those, the ones that ended since.
    pub offline_finished: u32,
}

impl Tally {
    pub fn completed(&self) -> u32 {
        self.success
            + self.failed
            + self.execution_timed_out
            + self.delivery_timed_out
            + self.undeliverable
            + self.terminated
            + self.cancelled
    }

    /// Adds a delta's counters (not `target_count` nor `released`, which are
    /// set, never added), as the store's `ADD` does.
    pub fn add(&mut self, d: &Tally) {
        self.started += d.started;
        self.success += d.success;
        self.failed += d.failed;
        self.execution_timed_out += d.execution_timed_out;
        self.delivery_timed_out += d.delivery_timed_out;
        self.undeliverable += d.undeliverable;
        self.terminated += d.terminated;
        self.cancelled += d.cancelled;
        self.acknowledged += d.acknowledged;
        self.offline_released += d.offline_released;
        self.offline_finished += d.offline_finished;
    }

    /// SSM's `ErrorCount`: invocations that count against MaxErrors.
    pub fn errors(&self) -> u32 {
        self.failed + self.execution_timed_out
    }

    pub fn record(&mut self, detail: InvocationDetail) {
        use InvocationDetail::*;
        match detail {
            Success => self.success += 1,
            Failed => self.failed += 1,
            ExecutionTimedOut => self.execution_timed_out += 1,
            DeliveryTimedOut => self.delivery_timed_out += 1,
            Undeliverable => self.undeliverable += 1,
            Terminated => self.terminated += 1,
            Cancelled => self.cancelled += 1,
            InProgress => self.started += 1,
            Pending | Delayed | Cancelling => {}
        }
    }
}

/// A command's `Status` and `StatusDetails`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandState {
    pub status: &'static str,
    pub details: &'static str,
}

impl CommandState {
    pub fn is_final(&self) -> bool {
        !matches!(self.status, "Pending" | "InProgress" | "Cancelling")
    }
}

/// The command's status from its invocations'. Where SSM's documentation is
/// silent we decided:
/// - any cancelled invocation makes a finished command `Cancelled`;
/// - more than `max_errors` errors make it `Failed` (or `TimedOut` /
///   "Execution Timed Out" when all errors were execution time-outs);
/// - otherwise, more than `max_errors` delivery time-outs with no success
///   make it `TimedOut` / "Delivery Timed Out";
/// - all successes make it `Success` (so does an empty target set);
/// - anything else is `Failed` / "Incomplete".
pub fn command_state(t: &Tally, max_errors: u32, cancel_requested: bool) -> CommandState {
    let st = |status, details| CommandState { status, details };
    if t.completed() < t.target_count {
        if cancel_requested {
            return st("Cancelling", "Cancelling");
        }
        if t.started > 0 || t.completed() > 0 {
            return st("InProgress", "In Progress");
        }
        return st("Pending", "Pending");
    }
    if t.cancelled > 0 || (cancel_requested && t.success < t.target_count) {
        return st("Cancelled", "Canceled");
    }
    if t.errors() > max_errors {
        if t.failed == 0 {
            return st("TimedOut", "Execution Timed Out");
        }
        return st("Failed", "Failed");
    }
    if t.success == t.target_count {
        return st("Success", "Success");
    }
    if t.success == 0 && t.delivery_timed_out > max_errors && t.errors() == 0 {
        return st("TimedOut", "Delivery Timed Out");
    }
    st("Failed", "Incomplete")
}

/// MaxConcurrency / MaxErrors: an absolute number or a percentage of targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Absolute(u32),
    Percent(u32),
}

/// SSM's patterns for the two limits: MaxConcurrency has no zero.
pub const MAX_CONCURRENCY_PATTERN: &str = "^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$";
pub const MAX_ERRORS_PATTERN: &str = "^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$";

impl Limit {
    /// `field` is SSM's member name, `maxConcurrency` or `maxErrors`; a value
    /// off its pattern is SSM's ValidationException, in SSM's words.
    pub fn parse(field: &str, s: &str) -> Result<Self, SsmError> {
        let concurrency = field == "maxConcurrency";
        let bad = || {
            let pattern = if concurrency {
                MAX_CONCURRENCY_PATTERN
            } else {
                MAX_ERRORS_PATTERN
            };
            SsmError::ValidationException(format!(
                "1 validation error detected: Value '{s}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
            ))
        };
        let (digits, percent) = match s.strip_suffix('%') {
            Some(p) => (p, true),
            None => (s, false),
        };
        // Digits only (`str::parse` would take a sign), no leading zero.
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (digits.len() > 1 && digits.starts_with('0'))
        {
            return Err(bad());
        }
        let n: u32 = digits.parse().map_err(|_| bad())?;
        if (percent && n > 100) || (concurrency && n == 0) {
            return Err(bad());
        }
        Ok(if percent {
            Limit::Percent(n)
        } else {
            Limit::Absolute(n)
        })
    }

    /// The absolute limit for `targets` targets. Percentages round down, as
    /// SSM's docs imply for MaxErrors ("10% of 9 targets allows 0 errors");
    /// for concurrency the result is at least 1 so a command always moves.
    pub fn resolve(self, targets: u32, at_least_one: bool) -> u32 {
        let n = match self {
            Limit::Absolute(n) => n,
            Limit::Percent(p) => ((targets as u64 * p as u64) / 100) as u32,
        };
        if at_least_one { n.max(1) } else { n }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tally(target: u32, f: impl FnOnce(&mut Tally)) -> Tally {
        let mut t = Tally {
            target_count: target,
            ..Default::default()
        };
        f(&mut t);
        t
    }

    #[test]
    fn in_flight_states() {
        assert_eq!(command_state(&tally(3, |_| {}), 0, false).status, "Pending");
        assert_eq!(
            command_state(&tally(3, |t| t.started = 1), 0, false).status,
            "InProgress"
        );
        assert_eq!(
            command_state(&tally(3, |t| t.success = 1), 0, false).details,
            "In Progress"
        );
        assert_eq!(
            command_state(&tally(3, |_| {}), 0, true).status,
            "Cancelling"
        );
    }

    #[test]
    fn final_states() {
        // (targets, finished counts, MaxErrors, cancel requested) → (status, details)
        type Counts = (u32, u32, u32, u32, u32); // success, failed, exec t/o, delivery t/o, cancelled
        type Case = (u32, Counts, u32, bool, (&'static str, &'static str));
        let cases: [Case; 8] = [
            (3, (3, 0, 0, 0, 0), 0, false, ("Success", "Success")),
            (3, (2, 1, 0, 0, 0), 0, false, ("Failed", "Failed")),
            (3, (2, 1, 0, 0, 0), 1, false, ("Failed", "Incomplete")),
            (
                2,
                (1, 0, 1, 0, 0),
                0,
                false,
                ("TimedOut", "Execution Timed Out"),
            ),
            (
                2,
                (0, 0, 0, 2, 0),
                0,
                false,
                ("TimedOut", "Delivery Timed Out"),
            ),
            (2, (1, 0, 0, 1, 0), 0, false, ("Failed", "Incomplete")),
            (2, (1, 0, 0, 0, 1), 0, true, ("Cancelled", "Canceled")),
            (0, (0, 0, 0, 0, 0), 0, false, ("Success", "Success")),
        ];
        for (targets, (success, failed, exec, delivery, cancelled), max_errors, cancel, want) in
            cases
        {
            let t = tally(targets, |t| {
                t.success = success;
                t.failed = failed;
                t.execution_timed_out = exec;
                t.delivery_timed_out = delivery;
                t.cancelled = cancelled;
            });
            let s = command_state(&t, max_errors, cancel);
            assert_eq!((s.status, s.details), want, "{t:?} MaxErrors {max_errors}");
        }
    }

    #[test]
    fn transitions() {
        use InvocationDetail::*;
        assert!(Pending.may_become(InProgress));
        assert!(InProgress.may_become(Success));
        assert!(Pending.may_become(DeliveryTimedOut));
        assert!(!Success.may_become(Failed));
        assert!(!InProgress.may_become(InProgress));
        assert!(!InProgress.may_become(Pending));
        assert!(!Cancelled.may_become(Success));
        assert!(Cancelling.may_become(Cancelled));
    }

    #[test]
    fn detail_text_round_trips() {
        for d in InvocationDetail::ALL {
            assert_eq!(InvocationDetail::parse(d.as_str()), Some(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
    }

    #[test]
    fn limits() {
        assert_eq!(Limit::parse("maxErrors", "0").unwrap(), Limit::Absolute(0));
        assert_eq!(
            Limit::parse("maxErrors", "10%").unwrap(),
            Limit::Percent(10)
        );
        let refused = |field: &str, value: &str, pattern: &str| {
            let e = Limit::parse(field, value).unwrap_err();
            assert_eq!(e.code(), "ValidationException", "{value}");
            assert_eq!(
                e.to_string(),
                format!(
                    "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"
                )
            );
        };
        for bad in ["", "01", "101%", "-1", "+1", "+5%", "x", "05%", "%", "1.5"] {
            refused("maxErrors", bad, MAX_ERRORS_PATTERN);
            refused("maxConcurrency", bad, MAX_CONCURRENCY_PATTERN);
        }
        // Zero errors is a limit; zero concurrency is not.
        assert_eq!(Limit::parse("maxErrors", "0%").unwrap(), Limit::Percent(0));
        refused("maxConcurrency", "0", MAX_CONCURRENCY_PATTERN);
        refused("maxConcurrency", "0%", MAX_CONCURRENCY_PATTERN);
        assert_eq!(
            Limit::parse("maxConcurrency", "100%").unwrap(),
            Limit::Percent(100)
        );
        assert_eq!(Limit::Percent(10).resolve(9, false), 0);
        assert_eq!(Limit::Percent(10).resolve(9, true), 1);
        assert_eq!(Limit::Percent(50).resolve(3, true), 1);
        assert_eq!(Limit::Percent(100).resolve(500, true), 500);
    }

    const FINAL_DETAILS: [InvocationDetail; 7] = {
        use InvocationDetail::*;
        [
            Success,
            Failed,
            ExecutionTimedOut,
            DeliveryTimedOut,
            Undeliverable,
            Terminated,
            Cancelled,
        ]
    };

    /// The command's final status from its invocations' final details,
    /// counted here from the details themselves (not through `Tally`), by
    /// the rules `command_state` states.
    fn model_final_state(
        details: &[InvocationDetail],
        max_errors: u32,
    ) -> (&'static str, &'static str) {
        use InvocationDetail::*;
        let n = |d: InvocationDetail| details.iter().filter(|x| **x == d).count() as u32;
        let errors = n(Failed) + n(ExecutionTimedOut);
        if n(Cancelled) > 0 {
            ("Cancelled", "Canceled")
        } else if errors > max_errors && n(Failed) == 0 {
            ("TimedOut", "Execution Timed Out")
        } else if errors > max_errors {
            ("Failed", "Failed")
        } else if details.iter().all(|d| *d == Success) {
            ("Success", "Success")
        } else if n(Success) == 0 && errors == 0 && n(DeliveryTimedOut) > max_errors {
            ("TimedOut", "Delivery Timed Out")
        } else {
            ("Failed", "Incomplete")
        }
    }

    proptest! {
        /// Whatever order invocations finish in, a command with every
        /// invocation final has the final state its invocations give, and
        /// one with any left has none.
        #[test]
        fn finality_follows_invocations(
            // A few kinds of result at a time, so that all-Success, all but
            // one, and none-Success commands come up often.
            palette in prop::sample::subsequence(FINAL_DETAILS.to_vec(), 1..=7),
            picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
            max_errors in 0u32..5,
            cut in 0usize..40,
        ) {
            let details: Vec<InvocationDetail> = picks.iter().map(|i| *i.get(&palette)).collect();
            let mut t = Tally { target_count: details.len() as u32, ..Default::default() };
            let cut = cut.min(details.len());
            for d in &details[..cut] { t.record(*d); }
            let partial = command_state(&t, max_errors, false);
            prop_assert_eq!(partial.is_final(), cut == details.len());
            for d in &details[cut..] { t.record(*d); }
            let done = command_state(&t, max_errors, false);
            prop_assert!(done.is_final());
            prop_assert_eq!((done.status, done.details), model_final_state(&details, max_errors));
        }
    }
}
