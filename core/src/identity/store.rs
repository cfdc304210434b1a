//! What identity operations need from the outside: the users and keys
//! store and the key that seals a new secret. `steward-aws` implements
//! them over DynamoDB and KMS; [`MemoryIdentityStore`] implements the store
//! for unit tests with the same conditions.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::error::IamError;
use super::model::{AccessKey, User, user_key};
use crate::secret::Secret;

/// Users (with their inline policies and key count) and access keys.
/// Every user write is conditional on the revision it read (`expected`),
/// and writes `next` (whose revision is `expected + 1`); `false` means
/// someone else wrote in between: read again and decide again.
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// A consistent read of the user, whatever the case of `user_name`.
    async fn user(&self, user_name: &str) -> Result<Option<User>, IamError>;
    /// Up to `limit` users in name order (case-insensitive) after the user
    /// key `after`; `true` when more may follow.
    async fn list_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<User>, bool), IamError>;
    /// Puts a new user; `false` when one of that name (in any case) exists.
    async fn create_user(&self, user: &User) -> Result<bool, IamError>;
    async fn put_user(&self, next: &User, expected: u64) -> Result<bool, IamError>;
    /// Deletes the user, only at revision `expected`.
    async fn delete_user(&self, user: &User, expected: u64) -> Result<bool, IamError>;

    async fn key(&self, access_key_id: &str) -> Result<Option<AccessKey>, IamError>;
    /// The user's keys, oldest first, as a listing shows them: without
    /// `secret_ciphertext`.
    async fn keys_of(&self, user_name: &str) -> Result<Vec<AccessKey>, IamError>;
    /// In one transaction: the user (its key count up) and the new key.
    async fn add_key(&self, next: &User, expected: u64, key: &AccessKey) -> Result<bool, IamError>;
    /// The key's status, only while the key exists and is the user's.
    async fn set_key_status(&self, key: &AccessKey, status: &str) -> Result<bool, IamError>;
    /// In one transaction: the user (its key count down) and the key's
    /// delete, only while it exists and is the user's.
    async fn remove_key(
        &self,
        next: &User,
        expected: u64,
        key: &AccessKey,
    ) -> Result<bool, IamError>;
}

/// Encrypts a new key's secret, bound to its key id (KMS `DataKey` with
/// the encryption context the authenticator decrypts under).
#[async_trait]
pub trait KeySealer: Send + Sync {
    /// Base64 ciphertext, as the access-key item holds it.
    async fn seal(&self, access_key_id: &str, secret: &Secret) -> Result<String, IamError>;
}

#[derive(Default)]
struct State {
    users: BTreeMap<String, User>,
    keys: BTreeMap<String, AccessKey>,
}

/// The store in memory, with the adapter's conditions.
#[derive(Default)]
pub struct MemoryIdentityStore {
    state: Mutex<State>,
}

impl MemoryIdentityStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, IamError> {
        self.state.lock().map_err(|_| IamError::service_failure())
    }

    /// Everything stored, for tests that assert a refusal changed nothing.
    pub fn snapshot(&self) -> (Vec<User>, Vec<AccessKey>) {
        match self.state.lock() {
            Ok(s) => (
                s.users.values().cloned().collect(),
                s.keys.values().cloned().collect(),
            ),
            Err(_) => (Vec::new(), Vec::new()),
        }
    }
}

fn at_revision(s: &State, name: &str, expected: u64) -> bool {
    s.users
        .get(&user_key(name))
        .is_some_and(|u| u.revision == expected)
}

#[async_trait]
impl IdentityStore for MemoryIdentityStore {
    async fn user(&self, user_name: &str) -> Result<Option<User>, IamError> {
        Ok(self.lock()?.users.get(&user_key(user_name)).cloned())
    }

    async fn list_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<User>, bool), IamError> {
        let s = self.lock()?;
        let mut rest = s
            .users
            .iter()
            .filter(|(k, _)| after.is_none_or(|a| k.as_str() > a))
            .map(|(_, u)| u.clone());
        let page: Vec<User> = rest.by_ref().take(limit).collect();
        Ok((page, rest.next().is_some()))
    }

    async fn create_user(&self, user: &User) -> Result<bool, IamError> {
        let mut s = self.lock()?;
        let k = user_key(&user.user_name);
        if s.users.contains_key(&k) {
            return Ok(false);
        }
        s.users.insert(k, user.clone());
        Ok(true)
    }

    async fn put_user(&self, next: &User, expected: u64) -> Result<bool, IamError> {
        let mut s = self.lock()?;
        if !at_revision(&s, &next.user_name, expected) {
            return Ok(false);
        }
        s.users.insert(user_key(&next.user_name), next.clone());
        Ok(true)
    }

    async fn delete_user(&self, user: &User, expected: u64) -> Result<bool, IamError> {
        let mut s = self.lock()?;
        if !at_revision(&s, &user.user_name, expected) {
            return Ok(false);
        }
        s.users.remove(&user_key(&user.user_name));
        Ok(true)
    }

    async fn key(&self, access_key_id: &str) -> Result<Option<AccessKey>, IamError> {
        Ok(self.lock()?.keys.get(access_key_id).cloned())
    }

    async fn keys_of(&self, user_name: &str) -> Result<Vec<AccessKey>, IamError> {
        let s = self.lock()?;
        let mut keys: Vec<AccessKey> = s
            .keys
            .values()
            .filter(|k| k.user_name == user_name)
            .map(|k| AccessKey {
                secret_ciphertext: String::new(),
                ..k.clone()
            })
            .collect();
        keys.sort_by(|a, b| a.create_date.total_cmp(&b.create_date));
        Ok(keys)
    }

    async fn add_key(&self, next: &User, expected: u64, key: &AccessKey) -> Result<bool, IamError> {
        let mut s = self.lock()?;
        if !at_revision(&s, &next.user_name, expected) || s.keys.contains_key(&key.access_key_id) {
            return Ok(false);
        }
        s.users.insert(user_key(&next.user_name), next.clone());
        s.keys.insert(key.access_key_id.clone(), key.clone());
        Ok(true)
    }

    async fn set_key_status(&self, key: &AccessKey, status: &str) -> Result<bool, IamError> {
        let mut s = self.lock()?;
        match s.keys.get_mut(&key.access_key_id) {
            Some(k) if k.user_name == key.user_name => {
                k.status = status.to_string();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn remove_key(
        &self,
        next: &User,
        expected: u64,
        key: &AccessKey,
    ) -> Result<bool, IamError> {
        let mut s = self.lock()?;
        let owned = s
            .keys
            .get(&key.access_key_id)
            .is_some_and(|k| k.user_name == key.user_name);
        if !at_revision(&s, &next.user_name, expected) || !owned {
            return Ok(false);
        }
        s.users.insert(user_key(&next.user_name), next.clone());
        s.keys.remove(&key.access_key_id);
        Ok(true)
    }
}

/// A sealer for tests: the "ciphertext" names the key it is bound to.
pub struct FakeSealer;

#[async_trait]
impl KeySealer for FakeSealer {
    async fn seal(&self, access_key_id: &str, secret: &Secret) -> Result<String, IamError> {
        Ok(format!("sealed:{access_key_id}:{}", secret.expose().len()))
    }
}
