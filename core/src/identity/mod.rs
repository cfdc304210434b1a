//! Operator identities: the subset of IAM's API Steward serves on its own
//! endpoint (users, their inline policies, their access keys), so that
//! `aws iam` and boto3's IAM client manage who may do what.
//!
//! - [`model`]: users, access keys, IAM's names, limits and messages;
//! - [`store`]: the ports ([`IdentityStore`], [`KeySealer`]) and an
//!   in-memory store for unit tests;
//! - [`users`], [`user_policies`], [`access_keys`]: one function per IAM
//!   operation, each authorizing `iam:<Operation>` on the user's ARN before
//!   it reads anything.
//!
//! A key's effective policy is the union of its user's inline policies
//! ([`model::effective_policy`]); the authenticator reads it with the key.

pub mod access_keys;
pub mod error;
pub mod model;
pub mod store;
pub mod user_policies;
pub mod users;

#[cfg(test)]
mod tests;

use std::future::Future;

pub use error::IamError;
pub use model::{AccessKey, User, effective_policy};
pub use store::{IdentityStore, KeySealer, MemoryIdentityStore};

use crate::access::Authorizer;

/// What every identity operation needs: the stores, who calls, where.
pub struct Identity<'a> {
    pub store: &'a dyn IdentityStore,
    pub sealer: &'a dyn KeySealer,
    pub caller: &'a dyn Authorizer,
    /// The calling key's user: operations on keys default to it, as IAM's do.
    pub caller_user: &'a str,
    pub account: &'a str,
    pub now: f64,
}

impl Identity<'_> {
    /// `iam:<op>` on `resource`, refused in IAM's words.
    pub fn authorize(&self, op: &str, resource: &str) -> Result<(), IamError> {
        self.caller
            .authorize(&format!("iam:{op}"), resource)
            .map_err(|e| IamError::AccessDenied(e.to_string()))
    }

    /// `iam:<op>` on the user `user_name`.
    pub fn authorize_user(&self, op: &str, user_name: &str) -> Result<(), IamError> {
        self.authorize(op, &model::user_arn(self.account, user_name))
    }

    /// The user, or IAM's NoSuchEntity.
    pub async fn existing_user(&self, user_name: &str) -> Result<User, IamError> {
        self.store
            .user(user_name)
            .await?
            .ok_or_else(|| IamError::no_such_user(user_name))
    }
}

/// Marker and MaxItems, as IAM's List operations take them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub marker: Option<String>,
    pub max_items: Option<i64>,
}

impl PageRequest {
    /// MaxItems within IAM's bounds (1 to 1000, default 100).
    pub fn limit(&self) -> Result<usize, IamError> {
        match self.max_items {
            None => Ok(model::DEFAULT_MAX_ITEMS),
            Some(n) if (1..=model::MAX_MAX_ITEMS as i64).contains(&n) => Ok(n as usize),
            Some(n) => Err(IamError::ValidationError(format!(
                "1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and {}",
                model::MAX_MAX_ITEMS
            ))),
        }
    }

    pub fn marker(&self) -> Result<Option<&str>, IamError> {
        match self.marker.as_deref() {
            None => Ok(None),
            Some(m) if !m.is_empty() && m.chars().count() <= 320 => Ok(Some(m)),
            Some(_) => Err(IamError::ValidationError(
                "1 validation error detected: Value at 'marker' failed to satisfy constraint: Member must have length between 1 and 320".into(),
            )),
        }
    }
}

/// One page of a List operation: `marker` is `Some` (IsTruncated) when
/// more follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub marker: Option<String>,
}

/// Pages a list that is already in memory and sorted by `key`: the marker
/// is the last key shown.
pub fn page_sorted<T>(
    items: Vec<T>,
    req: &PageRequest,
    key: impl Fn(&T) -> String,
) -> Result<Page<T>, IamError> {
    let limit = req.limit()?;
    let after = req.marker()?.map(str::to_string);
    let mut rest = items
        .into_iter()
        .filter(|i| after.as_ref().is_none_or(|a| key(i) > *a));
    let page: Vec<T> = rest.by_ref().take(limit).collect();
    let more = rest.next().is_some();
    let marker = if more { page.last().map(&key) } else { None };
    Ok(Page {
        items: page,
        marker,
    })
}

/// How many times a write that lost a race is decided again.
const ATTEMPTS: usize = 5;

/// Runs read-decide-write `attempt` until it is not refused by a lost
/// condition (`Ok(None)`), at most [`ATTEMPTS`] times.
pub async fn retry<T, F, Fut>(mut attempt: F) -> Result<T, IamError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, IamError>>,
{
    for _ in 0..ATTEMPTS {
        if let Some(done) = attempt().await? {
            return Ok(done);
        }
    }
    Err(IamError::concurrent_modification())
}
