//! One delivery of the automation queue's "look at execution X": load the
//! record, see what its running step waits on, advance, write
//! conditionally, then carry out the effects. A duplicate delivery, or a
//! delivery after a crash, finds the record as the last write left it.

use super::context::AutomationContext;
use super::engine::{self, Effect, Env, Observed};
use std::collections::BTreeMap;

use super::control;
use super::execution::{Announced, Announcements, AutomationStatus, Execution, Wait};
use super::fan_out::{self, FanOutEffect, child_id};
use super::ports::{CommandSeen, StepServices};
use crate::documents::context::load_runbook;
use crate::error::SsmError;

/// SQS's longest delay; a longer wait is a chain of wake-ups.
pub const MAX_DELAY_SECONDS: f64 = 900.0;
/// Rounds of observe → advance → write → effects one delivery makes (a
/// step that answers at once, such as an API call, goes on in the same
/// delivery).
const ROUNDS: usize = 50;
/// Conditional writes a parent (or a stop of a child) tries per delivery.
const PARENT_ATTEMPTS: usize = 5;

/// What the runner needs besides the context.
pub struct Runner<'a> {
    pub ctx: AutomationContext<'a>,
    pub services: &'a dyn StepServices,
    pub env: Env,
    /// Read afresh at each round, so each step's times are its own; `None`
    /// keeps `env.now` (tests set the time themselves).
    pub clock: Option<fn() -> f64>,
}

impl Runner<'_> {
    fn now(&self) -> f64 {
        self.clock.map_or(self.env.now, |read| read())
    }

    /// Handles one message for `execution_id`. `Err` leaves the message to
    /// be delivered again.
    pub async fn run(&self, execution_id: &str) -> Result<(), SsmError> {
        let Some(mut exec) = self.ctx.store.get(execution_id).await? else {
            tracing::warn!(
                execution = execution_id,
                "wake-up for an unknown execution dropped"
            );
            return Ok(());
        };
        if exec.status.is_final() {
            return Ok(());
        }
        if exec.fan_out.is_some() {
            return self.run_parent(exec).await;
        }
        let runbook = match load_runbook(
            self.ctx.documents,
            &exec.document_name,
            Some(&exec.document_version),
        )
        .await
        {
            Ok(r) => r.runbook,
            Err(e) => return self.fail_without_runbook(exec, e).await,
        };
        let mut seen = self.observe(&exec).await?;
        let mut earliest_wake: Option<f64> = None;
        for _ in 0..ROUNDS {
            let mut next = exec.clone();
            let env = Env {
                now: self.now(),
                ..self.env.clone()
            };
            let fx = engine::advance(&mut next, &runbook, &seen, &env);
            if next != exec {
                next.revision = exec.revision + 1;
                let changes = fx
                    .iter()
                    .filter_map(|f| match *f {
                        Effect::StepChanged(i, status) => Some(Announced::Step(i, status)),
                        Effect::ExecutionChanged(status) => Some(Announced::Execution(status)),
                        _ => None,
                    })
                    .collect();
                announce(&mut next, changes, env.now);
                if !self.ctx.store.update(&next, exec.revision).await? {
                    // Another delivery moved it: look again later, from its write.
                    self.ctx.queue.wake(execution_id, 0).await?;
                    return Ok(());
                }
            }
            exec = next;
            seen = Observed::default();
            let more = self
                .carry_out(&exec, fx, &mut seen, &mut earliest_wake)
                .await?;
            if !more {
                break;
            }
        }
        if let Some(at) = earliest_wake
            && !exec.status.is_final()
        {
            self.wake_at(execution_id, at).await?;
        }
        self.tell_parent(&exec).await
    }

    async fn wake_at(&self, execution_id: &str, at: f64) -> Result<(), SsmError> {
        let delay = (at - self.now()).clamp(0.0, MAX_DELAY_SECONDS).ceil() as u32;
        self.ctx.queue.wake(execution_id, delay).await
    }

    /// A child that has ended wakes its parent (which also looks on its own
    /// every minute, should this wake-up be lost).
    async fn tell_parent(&self, exec: &Execution) -> Result<(), SsmError> {
        match &exec.parent_execution_id {
            Some(parent) if exec.status.is_final() => self.ctx.queue.wake(parent, 0).await,
            _ => Ok(()),
        }
    }

    /// A rate-controlled execution: start, watch and stop its children.
    async fn run_parent(&self, mut exec: Execution) -> Result<(), SsmError> {
        for _ in 0..PARENT_ATTEMPTS {
            let mut seen = BTreeMap::new();
            if let Some(fan) = &exec.fan_out {
                for (i, c) in fan.children.iter().enumerate() {
                    if c.started && !c.status.is_some_and(AutomationStatus::is_final) {
                        let id = child_id(&exec.execution_id, i);
                        if let Some(child) = self.ctx.store.get(&id).await? {
                            seen.insert(i, child.status);
                        }
                    }
                }
            }
            let mut next = exec.clone();
            let now = self.now();
            let fx = fan_out::advance(&mut next, &seen, now);
            if next != exec {
                next.revision = exec.revision + 1;
                let changes = fx
                    .iter()
                    .filter_map(|f| match *f {
                        FanOutEffect::ExecutionChanged(status) => {
                            Some(Announced::Execution(status))
                        }
                        _ => None,
                    })
                    .collect();
                announce(&mut next, changes, now);
                if !self.ctx.store.update(&next, exec.revision).await? {
                    match self.ctx.store.get(&exec.execution_id).await? {
                        Some(fresh) => {
                            exec = fresh;
                            continue;
                        }
                        None => return Ok(()),
                    }
                }
            }
            for f in fx {
                match f {
                    FanOutEffect::StartChild(i) => self.start_child(&next, i).await?,
                    FanOutEffect::StopChild(i) => {
                        self.stop_child(&child_id(&next.execution_id, i)).await?
                    }
                    // Announced by the write; published from the stream.
                    FanOutEffect::ExecutionChanged(_) => {}
                    FanOutEffect::WakeAt(t) => self.wake_at(&next.execution_id, t).await?,
                }
            }
            return Ok(());
        }
        // Others keep moving it: look again shortly.
        self.ctx.queue.wake(&exec.execution_id, 1).await
    }

    async fn start_child(&self, parent: &Execution, index: usize) -> Result<(), SsmError> {
        let Some(c) = parent.fan_out.as_ref().and_then(|f| f.children.get(index)) else {
            return Ok(());
        };
        let id = child_id(&parent.execution_id, index);
        let mut child = Execution::new(
            id.clone(),
            parent.document_name.clone(),
            parent.document_version.clone(),
            c.parameters.clone(),
            parent.executed_by.clone(),
        );
        child.access_key_id = parent.access_key_id.clone();
        child.run_as = parent.run_as.clone();
        child.requested_time = self.now();
        child.parent_execution_id = Some(parent.execution_id.clone());
        child.target = Some(c.target.clone());
        // Already there (a start retried after a crash): only wake it.
        self.ctx.store.create(&child).await?;
        self.ctx.queue.wake(&id, 0).await
    }

    async fn stop_child(&self, id: &str) -> Result<(), SsmError> {
        for _ in 0..PARENT_ATTEMPTS {
            let Some(child) = self.ctx.store.get(id).await? else {
                return Ok(());
            };
            let mut next = child.clone();
            if control::stop(&mut next).is_err() || next == child {
                // Ended already, or asked to stop already.
                return Ok(());
            }
            next.revision = child.revision + 1;
            if self.ctx.store.update(&next, child.revision).await? {
                return self.ctx.queue.wake(id, 0).await;
            }
        }
        Ok(())
    }

    /// What the running step waits on, as the world has it now.
    async fn observe(&self, exec: &Execution) -> Result<Observed, SsmError> {
        let mut seen = Observed::default();
        if let Some(r) = exec.current()
            && let Wait::Command { command_id } = &r.wait
        {
            match self.services.command(command_id).await? {
                CommandSeen::Ended(o) => seen.command = Some(o),
                CommandSeen::Missing => seen.missing_command = Some(command_id.clone()),
                CommandSeen::Running => {}
            }
        }
        Ok(seen)
    }

    /// Carries out `fx`. Returns true when something was learnt that the
    /// engine should see now (an API answer, a refused command).
    async fn carry_out(
        &self,
        exec: &Execution,
        fx: Vec<Effect>,
        seen: &mut Observed,
        earliest_wake: &mut Option<f64>,
    ) -> Result<bool, SsmError> {
        let mut more = false;
        for f in fx {
            match f {
                Effect::CreateCommand {
                    command_id, inputs, ..
                } => {
                    if let Err(why) = self
                        .services
                        .create_command(&exec.run_as, &exec.execution_id, &command_id, &inputs)
                        .await
                    {
                        seen.command_refused = Some((command_id, why));
                        more = true;
                    }
                }
                Effect::CallApi {
                    step_execution_id,
                    api,
                    request,
                } => {
                    let answer = self.services.call_api(&exec.run_as, &api, &request).await;
                    seen.api = Some((step_execution_id, answer));
                    more = true;
                }
                Effect::WakeAt(t) => {
                    *earliest_wake = Some(earliest_wake.map_or(t, |e: f64| e.min(t)));
                }
                // Announced by the write; published from the stream.
                Effect::StepChanged(..) | Effect::ExecutionChanged(_) => {}
            }
        }
        Ok(more)
    }

    /// The runbook version the execution runs is gone (deleted since it
    /// started): the execution fails, saying so.
    async fn fail_without_runbook(&self, exec: Execution, why: SsmError) -> Result<(), SsmError> {
        if matches!(why, SsmError::InternalServerError(_)) {
            return Err(why);
        }
        let mut next = exec.clone();
        next.status = super::execution::AutomationStatus::Failed;
        next.failure_message = Some(format!(
            "Version {} of runbook {} cannot be read: {why}",
            exec.document_version, exec.document_name
        ));
        next.end_time = Some(self.now());
        next.active.clear();
        next.revision = exec.revision + 1;
        let failed = vec![Announced::Execution(next.status)];
        announce(&mut next, failed, self.now());
        if self.ctx.store.update(&next, exec.revision).await? {
            self.tell_parent(&next).await?;
        }
        Ok(())
    }
}

/// Records the write's status changes on the record it writes: the table's
/// stream carries them to the bus, so a crash after the write cannot lose
/// them.
fn announce(next: &mut Execution, changes: Vec<Announced>, at: f64) {
    next.announced = Announcements {
        revision: next.revision,
        at,
        changes,
    };
}
