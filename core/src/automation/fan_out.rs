//! Rate-controlled executions: StartAutomationExecution with
//! TargetParameterName and Targets (or TargetMaps) runs one child execution
//! per target, with Run Command's rules. At most MaxConcurrency children run
//! at once; once more children than MaxErrors have failed (or timed out),
//! no further child starts, and those never started are not run. The parent
//! ends when every started child has: Failed when the errors passed
//! MaxErrors, Cancelled when it was stopped, Success otherwise.
//!
//! Like the step engine, [`advance`] is pure: it decides from the parent's
//! record and what its children's records say. A child's id is fixed by its
//! parent's and its place in the targets, so starting it again after a
//! crash finds it instead of running a second one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::execution::{AutomationStatus as S, Execution};
use crate::run_command::rate_control::Limits;

/// One target of a rate-controlled execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Child {
    /// The parameters this child gets besides the parent's (the target
    /// parameter's value, or one TargetMap).
    pub parameters: BTreeMap<String, Value>,
    /// The target as shown (`ResolvedTargets`, `Target`).
    pub target: String,
    /// Set once the child has been started.
    pub started: bool,
    /// The child's status, as last seen.
    pub status: Option<S>,
}

/// A parent's targets and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FanOut {
    pub target_parameter_name: Option<String>,
    /// As given (shown by GetAutomationExecution).
    pub targets: Value,
    pub target_maps: Value,
    pub max_concurrency: String,
    pub max_errors: String,
    pub children: Vec<Child>,
}

impl FanOut {
    fn limits(&self) -> Limits {
        Limits::parse(
            self.children.len() as u32,
            &self.max_concurrency,
            &self.max_errors,
        )
        .unwrap_or(Limits {
            targets: self.children.len() as u32,
            max_concurrency: 1,
            max_errors: 0,
        })
    }

    pub fn errors(&self) -> u32 {
        self.children
            .iter()
            .filter(|c| matches!(c.status, Some(S::Failed | S::TimedOut)))
            .count() as u32
    }

    pub fn running(&self) -> u32 {
        self.children
            .iter()
            .filter(|c| c.started && !c.status.is_some_and(S::is_final))
            .count() as u32
    }
}

/// The id of the parent's `index`th child: the same every time it is
/// worked out, so a child is created once whatever is retried.
pub fn child_id(parent_id: &str, index: usize) -> String {
    crate::ids::id_from(&format!("{parent_id}/child/{index}"))
}

/// What the runner does after writing the parent.
#[derive(Debug, Clone, PartialEq)]
pub enum FanOutEffect {
    /// Create child `index` (unless it exists) and wake it.
    StartChild(usize),
    /// Stop child `index`.
    StopChild(usize),
    ExecutionChanged(S),
    /// Look again then, in case a child's notice was lost.
    WakeAt(f64),
}

/// How often a parent looks at its running children on its own.
pub const POLL_SECONDS: f64 = 60.0;

/// Advances the parent: `seen` is each started child's status now.
pub fn advance(exec: &mut Execution, seen: &BTreeMap<usize, S>, now: f64) -> Vec<FanOutEffect> {
    let mut fx = Vec::new();
    if exec.status.is_final() {
        return fx;
    }
    let Some(fan) = exec.fan_out.as_mut() else {
        return fx;
    };
    for (i, status) in seen {
        if let Some(c) = fan.children.get_mut(*i) {
            c.status = Some(*status);
        }
    }
    if exec.status == S::Pending {
        exec.status = S::InProgress;
        exec.start_time = Some(now);
        fx.push(FanOutEffect::ExecutionChanged(S::InProgress));
    }
    let limits = fan.limits();
    let over_errors = fan.errors() > limits.max_errors;
    if exec.cancel_requested {
        for (i, c) in fan.children.iter().enumerate() {
            if c.started && !c.status.is_some_and(S::is_final) {
                fx.push(FanOutEffect::StopChild(i));
            }
        }
    } else if !over_errors {
        let mut running = fan.running();
        for (i, c) in fan.children.iter_mut().enumerate() {
            if running >= limits.max_concurrency {
                break;
            }
            if !c.started {
                c.started = true;
                running += 1;
                fx.push(FanOutEffect::StartChild(i));
            }
        }
    }
    if fan.running() > 0 {
        fx.push(FanOutEffect::WakeAt(now + POLL_SECONDS));
        return fx;
    }
    let all_started = fan.children.iter().all(|c| c.started);
    if !(all_started || over_errors || exec.cancel_requested) {
        return fx;
    }
    let (status, message) = if exec.cancel_requested {
        (S::Cancelled, None)
    } else if over_errors {
        (
            S::Failed,
            Some(format!(
                "{} of {} targets failed, more than MaxErrors ({}) allows; {} were not run.",
                fan.errors(),
                fan.children.len(),
                fan.max_errors,
                fan.children.iter().filter(|c| !c.started).count()
            )),
        )
    } else {
        (S::Success, None)
    };
    exec.status = status;
    exec.failure_message = message;
    exec.end_time = Some(now);
    fx.push(FanOutEffect::ExecutionChanged(status));
    fx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parent(n: usize, concurrency: &str, errors: &str) -> Execution {
        let mut e = Execution::new(
            "p".into(),
            "Doc".into(),
            "1".into(),
            BTreeMap::new(),
            "alice".into(),
        );
        e.fan_out = Some(FanOut {
            target_parameter_name: Some("Node".into()),
            targets: Value::Null,
            target_maps: Value::Null,
            max_concurrency: concurrency.into(),
            max_errors: errors.into(),
            children: (0..n)
                .map(|i| Child {
                    parameters: BTreeMap::from([(
                        "Node".to_string(),
                        Value::from(format!("n{i}")),
                    )]),
                    target: format!("n{i}"),
                    started: false,
                    status: None,
                })
                .collect(),
        });
        e
    }

    fn started(fx: &[FanOutEffect]) -> Vec<usize> {
        fx.iter()
            .filter_map(|f| match f {
                FanOutEffect::StartChild(i) => Some(*i),
                _ => None,
            })
            .collect()
    }

    /// Children finish in the order given (true: success), one at a time;
    /// returns how many ran and the parent's end.
    fn run(e: &mut Execution, outcomes: &[bool]) -> (usize, S, u32) {
        let mut seen = BTreeMap::new();
        let mut most_running = 0;
        let mut finished = 0;
        for _ in 0..1000 {
            advance(e, &seen, 0.0);
            let fan = e.fan_out.as_ref().unwrap();
            most_running = most_running.max(fan.running());
            if e.status.is_final() {
                break;
            }
            // The oldest running child ends.
            let next = fan
                .children
                .iter()
                .position(|c| c.started && !c.status.is_some_and(S::is_final));
            if let Some(i) = next {
                let ok = outcomes.get(finished).copied().unwrap_or(true);
                seen.insert(i, if ok { S::Success } else { S::Failed });
                finished += 1;
            }
        }
        let ran = e
            .fan_out
            .as_ref()
            .unwrap()
            .children
            .iter()
            .filter(|c| c.started)
            .count();
        (ran, e.status, most_running)
    }

    #[test]
    fn never_more_than_max_concurrency_and_all_run_when_all_succeed() {
        let mut e = parent(10, "2", "0");
        let first = advance(&mut e, &BTreeMap::new(), 0.0);
        assert_eq!(started(&first), [0, 1]);
        assert_eq!(run(&mut e, &[]), (10, S::Success, 2));
    }

    #[test]
    fn errors_past_max_errors_stop_new_children_and_fail_the_parent() {
        // MaxErrors 1: the second failure stops it; those running finish.
        let mut e = parent(10, "2", "1");
        let (ran, status, most) = run(&mut e, &[true, false, true, false]);
        assert_eq!(status, S::Failed);
        assert!(most <= 2);
        assert_eq!(
            ran, 5,
            "four finished, one still running when the second error came"
        );
        assert!(
            e.failure_message
                .unwrap()
                .starts_with("2 of 10 targets failed")
        );
    }

    #[test]
    fn percentages_resolve_against_the_target_count() {
        let mut e = parent(10, "20%", "10%");
        let first = advance(&mut e, &BTreeMap::new(), 0.0);
        assert_eq!(started(&first), [0, 1]);
        assert_eq!(
            run(&mut e, &[false, true]).1,
            S::Success,
            "one error of 10 is within 10%"
        );
    }

    #[test]
    fn no_targets_is_success_at_once_and_a_stop_stops_the_running_children() {
        let mut e = parent(0, "1", "0");
        advance(&mut e, &BTreeMap::new(), 0.0);
        assert_eq!(e.status, S::Success);

        let mut e = parent(3, "2", "0");
        advance(&mut e, &BTreeMap::new(), 0.0);
        e.cancel_requested = true;
        let fx = advance(&mut e, &BTreeMap::new(), 1.0);
        assert!(
            fx.contains(&FanOutEffect::StopChild(0)) && fx.contains(&FanOutEffect::StopChild(1))
        );
        assert!(started(&fx).is_empty());
        let seen = BTreeMap::from([(0, S::Cancelled), (1, S::Cancelled)]);
        advance(&mut e, &seen, 2.0);
        assert_eq!(e.status, S::Cancelled);
    }

    #[test]
    fn a_child_id_is_the_same_each_time_and_differs_by_place() {
        assert_eq!(child_id("p", 1), child_id("p", 1));
        assert_ne!(child_id("p", 1), child_id("p", 2));
        assert_ne!(child_id("p", 1), child_id("q", 1));
        assert!(crate::ids::is_command_id(&child_id("p", 0)));
    }
}
