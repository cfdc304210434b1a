//! CreateAccessKey, UpdateAccessKey, DeleteAccessKey, ListAccessKeys.
//! A user has at most two keys (IAM's quota), counted on the user's item
//! so that the quota holds under concurrent creates. Operations without a
//! UserName act on the calling key's user, as IAM's do.

use super::model::{self, AccessKey, MAX_ACCESS_KEYS_PER_USER, STATUS_ACTIVE, User};
use super::{IamError, Identity, Page, PageRequest};
use crate::ids;
use crate::secret::Secret;

/// CreateAccessKey's answer: the only time the secret is shown.
#[derive(Debug, Clone)]
pub struct NewAccessKey {
    pub key: AccessKey,
    pub secret: Secret,
}

fn no_such_key(id: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found."))
}

fn target<'a>(cx: &'a Identity<'_>, user_name: Option<&'a str>) -> Result<&'a str, IamError> {
    let name = user_name.unwrap_or(cx.caller_user);
    model::check_user_name(name)?;
    Ok(name)
}

/// The user's key `id`, or NoSuchEntity (also for another user's key).
async fn key_of(cx: &Identity<'_>, user: &User, id: &str) -> Result<AccessKey, IamError> {
    match cx.store.key(id).await? {
        Some(k) if k.user_name == user.user_name => Ok(k),
        _ => Err(no_such_key(id)),
    }
}

pub async fn create_access_key(
    cx: &Identity<'_>,
    user_name: Option<&str>,
) -> Result<NewAccessKey, IamError> {
    let name = target(cx, user_name)?;
    cx.authorize_user("CreateAccessKey", name)?;
    super::retry(|| async {
        let user = cx.existing_user(name).await?;
        if user.key_count as usize >= MAX_ACCESS_KEYS_PER_USER {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"
            )));
        }
        let id = ids::new_access_key_id();
        let secret = Secret::new(ids::new_secret_access_key());
        let key = AccessKey {
            secret_ciphertext: cx.sealer.seal(&id, &secret).await?,
            access_key_id: id,
            user_name: user.user_name.clone(),
            status: STATUS_ACTIVE.to_string(),
            create_date: cx.now,
        };
        let mut next = user.next();
        next.key_count += 1;
        if !cx.store.add_key(&next, user.revision, &key).await? {
            return Ok(None);
        }
        // The id only: the secret is never logged.
        tracing::info!(user = %user.user_name, access_key_id = %key.access_key_id, "access key created");
        Ok(Some(NewAccessKey { key, secret }))
    })
    .await
}

/// `Active` or `Inactive`. An Inactive key is refused by the authenticator
/// once its cached record expires (`auth::CACHE_TTL`).
pub async fn update_access_key(
    cx: &Identity<'_>,
    user_name: Option<&str>,
    access_key_id: &str,
    status: &str,
) -> Result<(), IamError> {
    let name = target(cx, user_name)?;
    model::check_access_key_id(access_key_id)?;
    model::check_status(status)?;
    cx.authorize_user("UpdateAccessKey", name)?;
    let user = cx.existing_user(name).await?;
    let key = key_of(cx, &user, access_key_id).await?;
    if !cx.store.set_key_status(&key, status).await? {
        // Deleted meanwhile.
        return Err(no_such_key(access_key_id));
    }
    tracing::info!(user = %user.user_name, access_key_id, status, "access key status set");
    Ok(())
}

pub async fn delete_access_key(
    cx: &Identity<'_>,
    user_name: Option<&str>,
    access_key_id: &str,
) -> Result<(), IamError> {
    let name = target(cx, user_name)?;
    model::check_access_key_id(access_key_id)?;
    cx.authorize_user("DeleteAccessKey", name)?;
    super::retry(|| async {
        let user = cx.existing_user(name).await?;
        let key = key_of(cx, &user, access_key_id).await?;
        let mut next = user.next();
        next.key_count = next.key_count.saturating_sub(1);
        let done = cx.store.remove_key(&next, user.revision, &key).await?;
        if done {
            tracing::info!(user = %user.user_name, access_key_id, "access key deleted");
        }
        Ok(done.then_some(()))
    })
    .await
}

/// The user's keys' metadata (never a secret), by id.
pub async fn list_access_keys(
    cx: &Identity<'_>,
    user_name: Option<&str>,
    page: &PageRequest,
) -> Result<Page<AccessKey>, IamError> {
    let name = target(cx, user_name)?;
    page.limit()?;
    page.marker()?;
    cx.authorize_user("ListAccessKeys", name)?;
    let user = cx.existing_user(name).await?;
    let mut keys = cx.store.keys_of(&user.user_name).await?;
    keys.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
    super::page_sorted(keys, page, |k| k.access_key_id.clone())
}
