//! Which baseline patches a node: its patch group's baseline for its
//! operating system, else the system's registered default, else the
//! predefined default (as Patch Manager chooses).

use super::baseline::{OperatingSystem, PatchBaseline};
use super::context::default_id;
use super::ports::PatchBaselineStore;
use super::predefined;
use crate::error::SsmError;

/// The id and the baseline that patch a node of `os` in `patch_group`
/// (its `Patch Group` or `PatchGroup` tag). A predefined baseline's id is
/// given bare (`pb-…`), as its ARN's last part.
pub async fn baseline_for_node(
    store: &dyn PatchBaselineStore,
    os: OperatingSystem,
    patch_group: Option<&str>,
) -> Result<(String, PatchBaseline), SsmError> {
    let registered = match patch_group.filter(|g| !g.is_empty()) {
        Some(g) => store.group_baseline(g, os).await?,
        None => None,
    };
    let id = match registered {
        Some(id) => id,
        None => default_id(store, os).await?,
    };
    if let Some(p) = predefined::find_id(&id) {
        return Ok((id, p.baseline));
    }
    match store.get(&id).await? {
        Some(s) => Ok((s.id, s.baseline)),
        None => {
            // Registered baselines cannot be deleted; one missing all the
            // same is a fault of the store, not a reason to patch nothing.
            tracing::error!(baseline_id = %id, "a registered patch baseline is missing");
            Err(SsmError::internal())
        }
    }
}
