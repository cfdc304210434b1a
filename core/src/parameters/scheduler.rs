//! The policy scheduler: run every minute (a schedule rule → the scheduler
//! queue → the scheduler function), it acts on the parameters whose
//! `policy_due` has come, as SSM's "asynchronous, periodic scans" do.
//!
//! - `Expiration` reached: the policy (and any `ExpirationNotification` not
//!   yet given) is marked `Finished` on the head, the head staying due;
//!   then the parameter is deleted.
//! - `ExpirationNotification` / `NoChangeNotification` reached: the policy
//!   is marked `Finished` on the head and on its version item (so it fires
//!   once per version; a new version carries it `Pending` again).
//!
//! The scheduler publishes nothing itself: each `Parameter Store Policy
//! Action` follows from the table's stream, from the write that marked its
//! policy `Finished`, and the `Parameter Store Change` (Delete) from the
//! deletion ([`super::events::of_parameter_change`]); so a crash after a
//! write cannot lose its event. Every write is conditional on the revision
//! read: a second run (the same minute delivered twice, or two overlapping
//! runs) finds the parameter gone or the policy Finished and does nothing;
//! a write that loses a race is skipped and, if still due, handled by a
//! later run. A run that dies between marking an expiration and deleting
//! leaves the head due with its Expiration `Finished`: the next run
//! deletes it.

use super::model::Parameter;
use super::policies::{FAILED, FINISHED, PENDING, Policy, due_at, next_due, policy_of_record};
use super::ports::ParameterStore;
use crate::error::SsmError;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PolicyRun {
    /// Parameters deleted by their Expiration policy.
    pub expired: usize,
    /// Notification policies that fired.
    pub notified: usize,
    /// Due parameters left for a later run: changed by someone else between
    /// the read and the write, or due with nothing to do.
    pub skipped: usize,
}

/// Acts on at most `limit` parameters due at `now` (epoch seconds), earliest
/// first. The caller runs it again while a run comes back full.
pub async fn run_due_policies(
    store: &dyn ParameterStore,
    now: f64,
    limit: usize,
) -> Result<PolicyRun, SsmError> {
    let mut run = PolicyRun::default();
    for head in store.due(now, limit).await? {
        act(store, now, &head, &mut run).await?;
    }
    Ok(run)
}

pub(crate) fn expiration_of(head: &Parameter) -> Option<f64> {
    head.current
        .policies
        .iter()
        .filter_map(policy_of_record)
        .find_map(|p| match p {
            Policy::Expiration { at } => Some(at),
            _ => None,
        })
}

/// Writes `next` over `head`, with its version item (GetParameterHistory
/// shows the policies' statuses too).
async fn write(
    store: &dyn ParameterStore,
    head: &Parameter,
    mut next: Parameter,
) -> Result<Option<Parameter>, SsmError> {
    next.revision = head.revision + 1;
    let written = store
        .update(&next, head.revision, std::slice::from_ref(&next.current))
        .await?;
    Ok(written.then_some(next))
}

async fn act(
    store: &dyn ParameterStore,
    now: f64,
    head: &Parameter,
    run: &mut PolicyRun,
) -> Result<(), SsmError> {
    let expiration = expiration_of(head);
    let last_modified = head.current.last_modified_date;

    if expiration.is_some_and(|at| at <= now) {
        return expire(store, now, head, run).await;
    }

    let mut next = head.clone();
    let mut fired = 0;
    for record in next.current.policies.iter_mut() {
        if record.status != PENDING {
            continue;
        }
        let Some(policy) = policy_of_record(record) else {
            // Validated when written, so only a damaged record gets here:
            // say so on the record rather than look at it every minute.
            record.status = FAILED.to_string();
            continue;
        };
        let Some(at) = due_at(policy, expiration, last_modified) else {
            continue;
        };
        if at > now || matches!(policy, Policy::Expiration { .. }) {
            continue;
        }
        record.status = FINISHED.to_string();
        fired += 1;
        tracing::info!(
            parameter = head.name(),
            policy_type = record.policy_type.as_str(),
            "parameter policy notification"
        );
    }
    next.policy_due = next_due(&next);
    if fired == 0 && next == *head {
        run.skipped += 1;
        return Ok(());
    }
    if write(store, head, next).await?.is_none() {
        run.skipped += 1;
        return Ok(());
    }
    run.notified += fired;
    Ok(())
}

/// The parameter's Expiration has come. Its policy, and a warning not yet
/// given (the parameter was written inside its notice period, or no tick
/// ran in it: the operator asked to be told), are marked `Finished` first,
/// the head staying due; then the head goes.
async fn expire(
    store: &dyn ParameterStore,
    now: f64,
    head: &Parameter,
    run: &mut PolicyRun,
) -> Result<(), SsmError> {
    let mut next = head.clone();
    let mut warned = 0;
    for record in next.current.policies.iter_mut() {
        if record.status != PENDING {
            continue;
        }
        match policy_of_record(record) {
            Some(Policy::Expiration { .. }) => record.status = FINISHED.to_string(),
            Some(Policy::ExpirationNotification { .. }) => {
                record.status = FINISHED.to_string();
                warned += 1;
            }
            _ => {}
        }
    }
    let marked = if next == *head {
        // Marked by an earlier run that died before deleting.
        head.clone()
    } else {
        next.policy_due = Some(head.policy_due.unwrap_or(now).min(now));
        match write(store, head, next).await? {
            Some(marked) => marked,
            None => {
                run.skipped += 1;
                return Ok(());
            }
        }
    };
    if !store.delete(&marked, marked.revision).await? {
        run.skipped += 1;
        return Ok(());
    }
    run.expired += 1;
    run.notified += warned;
    tracing::info!(parameter = head.name(), "parameter expired and deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventSink;
    use crate::parameters::events::of_parameter_change;
    use crate::parameters::listing::fixtures::*;
    use crate::parameters::model::{ParameterVersion, PolicyRecord};
    use crate::parameters::policies::{parse_policies, parse_timestamp, renewed};

    const EXPIRES: &str = "2030-12-02T21:34:33Z";

    fn policies(json: &str) -> Vec<PolicyRecord> {
        parse_policies(json, NOW).unwrap()
    }

    /// One run, with the events the table's stream carries of its writes
    /// published on `fx.events` (the fixture's own writes are not the run's).
    async fn run(fx: &Fixture, now: f64) -> PolicyRun {
        fx.store.take_changes();
        let r = run_due_policies(&fx.store, now, 100).await.unwrap();
        for (old, new) in fx.store.take_changes() {
            for e in of_parameter_change(old.as_ref(), new.as_ref(), &fx.scope) {
                fx.events
                    .publish(e.detail_type, e.resources, e.detail)
                    .await
                    .unwrap();
            }
        }
        r
    }

    fn expiration_json() -> String {
        format!(
            r#"{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{EXPIRES}"}}}}"#
        )
    }

    #[tokio::test]
    async fn an_expired_parameter_is_deleted_exactly_once() {
        let fx = Fixture::new();
        let at = parse_timestamp(EXPIRES).unwrap();
        let recs = policies(&format!("[{}]", expiration_json()));
        let head = fx.put_with("/app/temp", Fixture::with_policies(recs)).await;
        assert_eq!(head.policy_due, Some(at));
        fx.put("/app/keep", "v").await;

        assert_eq!(run(&fx, at - 1.0).await, PolicyRun::default());
        assert!(fx.store.get("/app/temp").await.unwrap().is_some());
        assert!(fx.events.taken().is_empty());

        let r = run(&fx, at + 30.0).await;
        assert_eq!(r.expired, 1);
        assert!(fx.store.get("/app/temp").await.unwrap().is_none());
        assert_eq!(fx.store.stored_versions("/app/temp"), 0);
        assert!(fx.store.get("/app/keep").await.unwrap().is_some());
        // The expiration marked, then the head deleted: the policy's action,
        // then the deletion.
        let events = fx.events.taken();
        assert_eq!(events.len(), 2);
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/temp";
        assert_eq!(events[0].0, "Parameter Store Policy Action");
        assert_eq!(events[0].1, vec![arn.to_string()]);
        assert_eq!(events[0].2["policy-type"], "Expiration");
        assert_eq!(events[0].2["action-status"], "Finished");
        assert_eq!(events[0].2["parameter-name"], "/app/temp");
        assert!(
            events[0].2["action-reason"]
                .as_str()
                .unwrap()
                .starts_with("The parameter expired at 2030-12-02T21:34:33"),
            "{}",
            events[0].2
        );
        assert_eq!(events[1].0, "Parameter Store Change");
        assert_eq!(events[1].1, vec![arn.to_string()]);
        assert_eq!(events[1].2["operation"], "Delete");
        assert_eq!(events[1].2["name"], "/app/temp");

        // The same minute again, and a later one: nothing left to do.
        assert_eq!(run(&fx, at + 30.0).await, PolicyRun::default());
        assert_eq!(run(&fx, at + 90.0).await, PolicyRun::default());
        assert!(fx.events.taken().is_empty());
    }

    #[tokio::test]
    async fn a_head_changed_since_it_was_read_is_skipped() {
        let fx = Fixture::new();
        let at = parse_timestamp(EXPIRES).unwrap();
        let recs = policies(&format!("[{}]", expiration_json()));
        let stale = fx
            .put_with("/app/temp", Fixture::with_policies(recs.clone()))
            .await;
        // Someone writes a new version between the scheduler's read and its delete.
        fx.put_with("/app/temp", Fixture::with_policies(renewed(&recs)))
            .await;
        let mut r = PolicyRun::default();
        act(&fx.store, at + 1.0, &stale, &mut r).await.unwrap();
        assert_eq!(
            r,
            PolicyRun {
                skipped: 1,
                ..Default::default()
            }
        );
        assert!(fx.events.taken().is_empty());
        assert_eq!(
            fx.store.get("/app/temp").await.unwrap().unwrap().version(),
            2
        );
        // Still due: the next run expires it.
        assert_eq!(run(&fx, at + 60.0).await.expired, 1);
    }

    #[tokio::test]
    async fn an_expiration_notification_fires_once_then_the_expiration_acts() {
        let fx = Fixture::new();
        let at = parse_timestamp(EXPIRES).unwrap();
        let day = 86_400.0;
        let recs = policies(&format!(
            r#"[{}, {{"Type":"ExpirationNotification","Version":"1.0","Attributes":{{"Before":"2","Unit":"Days"}}}}]"#,
            expiration_json()
        ));
        let head = fx.put_with("/app/cert", Fixture::with_policies(recs)).await;
        assert_eq!(head.policy_due, Some(at - 2.0 * day));

        assert_eq!(run(&fx, at - 2.0 * day - 1.0).await, PolicyRun::default());
        let r = run(&fx, at - 2.0 * day + 10.0).await;
        assert_eq!(
            r,
            PolicyRun {
                notified: 1,
                ..Default::default()
            }
        );
        let events = fx.events.taken();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "Parameter Store Policy Action");
        assert_eq!(events[0].2["policy-type"], "ExpirationNotification");
        assert_eq!(events[0].2["action-status"], "Finished");

        let head = fx.store.get("/app/cert").await.unwrap().unwrap();
        assert_eq!(head.current.policies[1].status, "Finished");
        assert_eq!(head.current.policies[0].status, "Pending");
        assert_eq!(head.policy_due, Some(at));
        let stored: ParameterVersion = fx.store.get_version("/app/cert", 1).await.unwrap().unwrap();
        assert_eq!(stored.policies[1].status, "Finished");

        // Redelivered, or a day later: the notification does not fire again.
        assert_eq!(run(&fx, at - 2.0 * day + 10.0).await, PolicyRun::default());
        assert_eq!(run(&fx, at - day).await, PolicyRun::default());
        assert!(fx.events.taken().is_empty());

        assert_eq!(run(&fx, at).await.expired, 1);
        assert!(fx.store.get("/app/cert").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_warning_not_yet_given_goes_out_with_the_expiration() {
        let fx = Fixture::new();
        let at = parse_timestamp(EXPIRES).unwrap();
        let recs = policies(&format!(
            r#"[{}, {{"Type":"ExpirationNotification","Version":"1.0","Attributes":{{"Before":"1","Unit":"Hours"}}}}]"#,
            expiration_json()
        ));
        fx.put_with("/app/brief", Fixture::with_policies(recs))
            .await;
        // No tick ran between the notice time and the expiration.
        let r = run(&fx, at + 5.0).await;
        assert_eq!((r.expired, r.notified), (1, 1));
        let kinds: Vec<(String, String)> = fx
            .events
            .taken()
            .into_iter()
            .map(|(t, _, d)| {
                let what = d
                    .get("policy-type")
                    .or_else(|| d.get("operation"))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                (t.to_string(), what)
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "Parameter Store Policy Action".to_string(),
                    "ExpirationNotification".to_string()
                ),
                (
                    "Parameter Store Policy Action".to_string(),
                    "Expiration".to_string()
                ),
                ("Parameter Store Change".to_string(), "Delete".to_string()),
            ]
        );
        assert_eq!(run(&fx, at + 65.0).await, PolicyRun::default());
    }

    #[tokio::test]
    async fn a_no_change_notification_counts_from_the_last_change() {
        let fx = Fixture::new();
        let hour = 3600.0;
        let recs = policies(
            r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"1","Unit":"Hours"}}]"#,
        );
        let t0 = NOW - 1000.0;
        let head = fx
            .put_with("/app/pw", |v| {
                Fixture::with_policies(recs.clone())(v);
                v.last_modified_date = t0;
            })
            .await;
        assert_eq!(head.policy_due, Some(t0 + hour));

        // A new version half an hour later moves the notification.
        let t1 = t0 + 0.5 * hour;
        let head = fx
            .put_with("/app/pw", |v| {
                Fixture::with_policies(renewed(&head.current.policies))(v);
                v.last_modified_date = t1;
            })
            .await;
        assert_eq!(head.policy_due, Some(t1 + hour));
        assert_eq!(run(&fx, t0 + hour + 1.0).await, PolicyRun::default());

        let r = run(&fx, t1 + hour + 1.0).await;
        assert_eq!(
            r,
            PolicyRun {
                notified: 1,
                ..Default::default()
            }
        );
        let events = fx.events.taken();
        assert_eq!(events[0].2["policy-type"], "NoChangeNotification");
        let after = fx.store.get("/app/pw").await.unwrap().unwrap();
        assert_eq!(after.policy_due, None);
        assert_eq!(after.current.policies[0].status, "Finished");
        assert_eq!(run(&fx, t1 + 5.0 * hour).await, PolicyRun::default());
        assert!(fx.events.taken().is_empty());

        // The next version is watched again.
        let t2 = t1 + 6.0 * hour;
        let head = fx
            .put_with("/app/pw", |v| {
                Fixture::with_policies(renewed(&after.current.policies))(v);
                v.last_modified_date = t2;
            })
            .await;
        assert_eq!(head.policy_due, Some(t2 + hour));
        assert_eq!(run(&fx, t2 + hour).await.notified, 1);
    }

    #[tokio::test]
    async fn a_damaged_policy_is_marked_failed_not_retried() {
        let fx = Fixture::new();
        let mut recs = policies(
            r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"1","Unit":"Hours"}}]"#,
        );
        recs.push(PolicyRecord {
            text: "not json".into(),
            policy_type: "Expiration".into(),
            status: PENDING.into(),
        });
        let head = fx.put_with("/app/x", Fixture::with_policies(recs)).await;
        let due = head.policy_due.unwrap();
        assert_eq!(run(&fx, due).await.notified, 1);
        let head = fx.store.get("/app/x").await.unwrap().unwrap();
        assert_eq!(head.current.policies[1].status, "Failed");
        assert_eq!(head.policy_due, None);
    }

    #[tokio::test]
    async fn put_parameter_and_the_scheduler_agree() {
        let fx = Fixture::new();
        let admin = admin();
        let hour = 3600.0;
        let put = |now: f64, value: &str, policies: Option<&str>| {
            let mut body = serde_json::json!({
                "Name": "/app/rotate", "Value": value, "Type": "SecureString",
                "Tier": "Advanced", "Overwrite": true});
            if let Some(p) = policies {
                body["Policies"] = serde_json::json!(p);
            }
            let fx = &fx;
            let admin = &admin;
            async move {
                crate::parameters::put::put_parameter(&fx.ctx_at(admin, now), &body)
                    .await
                    .unwrap();
            }
        };
        let t0 = NOW;
        put(
            t0,
            "first",
            Some(r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"2","Unit":"Hours"}}]"#),
        )
        .await;
        let head = fx.store.get("/app/rotate").await.unwrap().unwrap();
        assert_eq!(head.policy_due, Some(t0 + 2.0 * hour));
        // A new value an hour later keeps the policy and moves its moment.
        put(t0 + hour, "second", None).await;
        let head = fx.store.get("/app/rotate").await.unwrap().unwrap();
        assert_eq!(head.current.policies.len(), 1);
        assert_eq!(head.policy_due, Some(t0 + 3.0 * hour));
        assert_eq!(run(&fx, t0 + 2.5 * hour).await, PolicyRun::default());
        assert_eq!(run(&fx, t0 + 3.0 * hour).await.notified, 1);
        let events = fx.events.taken();
        let action: Vec<_> = events
            .iter()
            .filter(|e| e.0 == "Parameter Store Policy Action")
            .collect();
        assert_eq!(action.len(), 1);
        assert!(!action[0].2.to_string().contains("second"));
        assert_eq!(run(&fx, t0 + 9.0 * hour).await, PolicyRun::default());
    }
}
