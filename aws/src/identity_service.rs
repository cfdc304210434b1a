//! Everything IAM and request authentication need from AWS, built once per
//! process: the identity tables, the key that seals and opens access keys'
//! secrets, and the verified keys kept in memory for a short while.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use steward_core::SsmError;
use steward_core::access::{AccessKey, Authorizer, Policy};
use steward_core::fleet::{AccessKeyStore, SecretDecrypter};
use steward_core::identity::{Identity, IdentityStore, effective_policy};
use steward_core::secret::Secret;

use crate::Stack;
use crate::access_keys::AccessKeyTable;
use crate::identity::IdentityTables;
use crate::key_service::DataKey;

/// How long a decrypted secret (and the key's status and policy) stays in
/// memory: a key made Inactive or deleted is refused everywhere within this.
pub const ACCESS_KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// An access key as request verification uses it.
#[derive(Clone)]
pub struct LoadedKey {
    pub key: AccessKey,
    pub secret: Secret,
    /// The user's inline policies together; an error (a stored policy
    /// Steward cannot evaluate) is for the caller to answer after the
    /// signature.
    pub policy: Result<Policy, SsmError>,
}

pub struct IdentityAdapters {
    pub store: IdentityTables,
    pub access_keys: AccessKeyTable,
    /// Seals new keys' secrets and opens them to verify signatures.
    pub data_key: DataKey,
    pub account: String,
    loaded: Mutex<HashMap<String, (LoadedKey, Instant)>>,
}

impl IdentityAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: IdentityTables::new(stack),
            access_keys: AccessKeyTable::new(stack),
            data_key: DataKey::new(stack),
            account: stack.settings.account_id.clone(),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The context one IAM request works in.
    pub fn context<'a>(
        &'a self,
        caller: &'a dyn Authorizer,
        caller_user: &'a str,
        now: f64,
    ) -> Identity<'a> {
        Identity {
            store: &self.store,
            sealer: &self.data_key,
            caller,
            caller_user,
            account: &self.account,
            now,
        }
    }

    /// The key record, its decrypted secret and its user's policy, from
    /// memory for [`ACCESS_KEY_CACHE_TTL`]. A key whose user is gone is no key.
    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<LoadedKey>, SsmError> {
        if let Ok(loaded) = self.loaded.lock()
            && let Some((hit, at)) = loaded.get(access_key_id)
            && at.elapsed() < ACCESS_KEY_CACHE_TTL
        {
            return Ok(Some(hit.clone()));
        }
        let Some(key) = self.access_keys.get(access_key_id).await? else {
            return Ok(None);
        };
        let Some(user) = self.store.user(&key.user_name).await? else {
            return Ok(None);
        };
        let policy = effective_policy(&user);
        let secret = self
            .data_key
            .decrypt(access_key_id, &key.secret_ciphertext)
            .await?;
        let fresh = LoadedKey {
            key,
            secret,
            policy,
        };
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.retain(|_, (_, at)| at.elapsed() < ACCESS_KEY_CACHE_TTL);
            loaded.insert(access_key_id.to_string(), (fresh.clone(), Instant::now()));
        }
        Ok(Some(fresh))
    }
}

impl std::fmt::Debug for IdentityAdapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The loaded keys hold secrets: never printed.
        f.debug_struct("IdentityAdapters")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}
