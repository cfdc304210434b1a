//! Everything Parameter Store needs from AWS, built once per process and
//! shared by the api, dispatch ({{ssm:…}} resolution), the agent-facing API
//! and the scheduler.

use std::time::Duration;

use steward_core::access::Authorizer;
use steward_core::arn::ArnScope;
use steward_core::parameters::context::ParameterContext;
use steward_core::parameters::secrets::Sealer;

use crate::Stack;
use crate::data_keys::KmsDataKeys;
use crate::parameters::ParameterTable;

/// Decrypted data keys kept at most (each ~100 bytes with its cache key).
pub const DATA_KEY_CACHE_ENTRIES: usize = 1024;

pub struct ParameterAdapters {
    pub store: ParameterTable,
    /// Over [`KmsDataKeys`]; data keys cached for `STEWARD_DATA_KEY_CACHE_SECONDS`.
    pub sealer: Sealer,
    pub scope: ArnScope,
    /// The stack's `DataKey`: SecureStrings without a `KeyId` are sealed under it.
    pub default_key_id: String,
    /// The KMS adapter inside `sealer` (its clone shares the call counters).
    pub kms: KmsDataKeys,
}

impl ParameterAdapters {
    pub fn new(stack: &Stack) -> Self {
        let kms = KmsDataKeys::new(stack);
        Self {
            store: ParameterTable::new(stack),
            sealer: Sealer::new(
                Box::new(kms.clone()),
                Duration::from_secs(stack.settings.data_key_cache_seconds),
                DATA_KEY_CACHE_ENTRIES,
            ),
            scope: stack.settings.arn_scope(),
            default_key_id: stack.settings.data_key_id.clone(),
            kms,
        }
    }

    /// The context one request works in.
    pub fn context<'a>(&'a self, caller: &'a dyn Authorizer, now: f64) -> ParameterContext<'a> {
        ParameterContext {
            store: &self.store,
            sealer: &self.sealer,
            caller,
            scope: &self.scope,
            default_key_id: &self.default_key_id,
            now,
        }
    }
}

impl std::fmt::Debug for ParameterAdapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterAdapters")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
