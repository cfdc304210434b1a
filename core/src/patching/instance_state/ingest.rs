//! Applies one part of a node's patch report: the part's patches are kept
//! first, then the node's state moves to the report's operation if it is
//! the latest. Both writes are idempotent, so a redelivered part (or one
//! that arrives after a later operation's) changes nothing twice.

use super::{Adopted, InstancePatchState, PatchStateStore};
use crate::error::SsmError;
use crate::patching::report::PatchReport;

/// What applying a part did to the node's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The node's state is now this report's; it was `previous`.
    StateChanged {
        previous: Option<Box<InstancePatchState>>,
        current: Box<InstancePatchState>,
    },
    /// The part was kept; the node's state already was this operation's or
    /// a later one's.
    PartKept,
}

pub async fn apply_part(
    store: &dyn PatchStateStore,
    instance_id: &str,
    report: &PatchReport,
) -> Result<Applied, SsmError> {
    store
        .put_part(
            instance_id,
            &report.snapshot_id,
            report.part,
            &report.patches,
        )
        .await?;
    let state = InstancePatchState::from_report(instance_id, report);
    Ok(match store.adopt(&state).await? {
        Adopted::Replaced(previous) => Applied::StateChanged {
            previous: previous.map(Box::new),
            current: Box::new(state),
        },
        Adopted::Kept => Applied::PartKept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patching::instance_state::memory::MemoryPatchStates;
    use crate::patching::report::{PatchCounts, PatchEntry, PatchState};
    use crate::patching::step::{PatchOperation, RebootOption};

    fn report(snapshot: &str, end: f64, missing: usize) -> Vec<PatchReport> {
        let patches: Vec<PatchEntry> = (0..missing + 500)
            .map(|n| PatchEntry {
                title: format!("p{n} 1.1"),
                kb_id: format!("p{n}"),
                classification: "Security".into(),
                severity: "important".into(),
                state: if n < missing {
                    PatchState::Missing
                } else {
                    PatchState::InstalledOther
                },
                installed_time: None,
                compliance_level: None,
            })
            .collect();
        PatchReport::into_parts(
            PatchReport {
                command_id: snapshot.into(),
                snapshot_id: snapshot.into(),
                baseline_id: "pb-0".into(),
                patch_group: Some("web".into()),
                operation: PatchOperation::Scan,
                reboot_option: RebootOption::NoReboot,
                operation_start_time: end - 1.0,
                operation_end_time: end,
                last_no_reboot_install_operation_time: None,
                counts: PatchCounts::default(),
                part: 0,
                parts: 0,
                patches: Vec::new(),
            },
            patches,
        )
    }

    #[tokio::test]
    async fn the_latest_operation_wins_whatever_order_parts_arrive_in() {
        let store = MemoryPatchStates::default();
        let old = report("old", 10.0, 3);
        let new = report("new", 20.0, 0);
        // The new report's second part first, then the old report whole
        // (late), then everything again (redelivery).
        let order: Vec<&PatchReport> = [&new[1], &old[0], &old[1], &new[0]]
            .into_iter()
            .chain(old.iter())
            .chain(new.iter())
            .collect();
        let mut changes = 0;
        for part in order {
            if let Applied::StateChanged { .. } = apply_part(&store, "mi-1", part).await.unwrap() {
                changes += 1;
            }
        }
        let state = store.get("mi-1").await.unwrap().unwrap();
        assert_eq!(state.snapshot_id, "new");
        assert_eq!(state.counts.missing, 0);
        assert_eq!(
            changes, 1,
            "only the first part of the newest report moves the state"
        );
        let patches = store.patches("mi-1", "new").await.unwrap();
        assert_eq!(patches.len(), 500);
        assert_eq!(store.in_group("web").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_first_report_replaces_nothing() {
        let store = MemoryPatchStates::default();
        let parts = report("s", 5.0, 2);
        match apply_part(&store, "mi-2", &parts[0]).await.unwrap() {
            Applied::StateChanged { previous, current } => {
                assert!(previous.is_none());
                assert_eq!(current.counts.missing, 2);
            }
            other => panic!("expected a state change, got {other:?}"),
        }
    }
}
