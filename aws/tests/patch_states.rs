//! Patch states' adapter against the local stack (`source .local/stack.env`):
//! the same rules as `steward_core::patching::instance_state::memory`.

use steward_aws::patch_states::PatchStateTable;
use steward_aws::testing::{drop_table, stack, table_like, unique, with_settings};
use steward_core::patching::instance_state::PatchStateStore;
use steward_core::patching::instance_state::ingest::{Applied, apply_part};
use steward_core::patching::report::{PatchCounts, PatchEntry, PatchReport, PatchState};
use steward_core::patching::step::{PatchOperation, RebootOption};

fn report(instance: &str, snapshot: &str, end: f64) -> Vec<PatchReport> {
    let patches = (0..450)
        .map(|i| PatchEntry {
            title: format!("{instance}-p{i} 2.0"),
            kb_id: format!("{instance}-p{i}"),
            classification: "Bugfix".into(),
            severity: "optional".into(),
            state: if i == 0 {
                PatchState::Missing
            } else {
                PatchState::InstalledOther
            },
            installed_time: Some(1.0),
            compliance_level: None,
        })
        .collect();
    PatchReport::into_parts(
        PatchReport {
            command_id: snapshot.into(),
            snapshot_id: snapshot.into(),
            baseline_id: "pb-0123456789abcdef0".into(),
            patch_group: Some(format!("group-{instance}")),
            operation: PatchOperation::Scan,
            reboot_option: RebootOption::NoReboot,
            operation_start_time: end - 5.0,
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
#[ignore = "needs the local stack (make test runs it)"]
async fn a_later_operation_replaces_the_state_and_a_late_one_does_not() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.patch_states_table).await;
    let own = with_settings(&shared, |s| s.patch_states_table = table.clone());
    let store = PatchStateTable::new(&own);
    let instance = format!("mi-{}", unique());
    let newer = report(&instance, "snap-new", 2000.0);
    let older = report(&instance, "snap-old", 1000.0);
    assert!(matches!(
        apply_part(&store, &instance, &newer[1]).await.unwrap(),
        Applied::StateChanged { previous: None, .. }
    ));
    for part in older.iter().chain(newer.iter()) {
        assert_eq!(
            apply_part(&store, &instance, part).await.unwrap(),
            Applied::PartKept
        );
    }
    let state = store.get(&instance).await.unwrap().unwrap();
    assert_eq!(state.snapshot_id, "snap-new");
    assert_eq!(state.counts.missing, 1);
    assert_eq!(state.counts.installed_other, 449);
    let patches = store.patches(&instance, "snap-new").await.unwrap();
    assert_eq!(patches.len(), 450);
    assert_eq!(patches[0].kb_id, format!("{instance}-p0"), "parts in order");
    let group = store.in_group(&format!("group-{instance}")).await.unwrap();
    assert_eq!(group.len(), 1);
    assert_eq!(group[0].instance_id, instance);
    drop_table(&shared, &table).await;
}
