//! CreateUser, GetUser, ListUsers, DeleteUser.

use super::model::{self, User, user_key};
use super::{IamError, Identity, Page, PageRequest};

pub async fn create_user(
    cx: &Identity<'_>,
    user_name: &str,
    path: Option<&str>,
) -> Result<User, IamError> {
    model::check_user_name(user_name)?;
    if let Some(p) = path {
        model::check_path(p)?;
    }
    cx.authorize_user("CreateUser", user_name)?;
    let user = User::new(user_name, cx.now);
    if !cx.store.create_user(&user).await? {
        return Err(IamError::EntityAlreadyExists(format!(
            "User with name {user_name} already exists."
        )));
    }
    tracing::info!(user = user_name, "user created");
    Ok(user)
}

/// `user_name` absent: the calling key's user, as IAM's GetUser.
pub async fn get_user(cx: &Identity<'_>, user_name: Option<&str>) -> Result<User, IamError> {
    let name = user_name.unwrap_or(cx.caller_user);
    model::check_user_name(name)?;
    cx.authorize_user("GetUser", name)?;
    cx.existing_user(name).await
}

/// Users whose path starts with `path_prefix` (every user is at `/`).
pub async fn list_users(
    cx: &Identity<'_>,
    path_prefix: Option<&str>,
    page: &PageRequest,
) -> Result<Page<User>, IamError> {
    let limit = page.limit()?;
    let after = page.marker()?;
    cx.authorize("ListUsers", &format!("arn:aws:iam::{}:user/", cx.account))?;
    let prefix = path_prefix.unwrap_or(model::ROOT_PATH);
    if !prefix.starts_with('/') {
        return Err(IamError::ValidationError(format!(
            "1 validation error detected: Value '{prefix}' at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*"
        )));
    }
    if !model::ROOT_PATH.starts_with(prefix) {
        return Ok(Page {
            items: Vec::new(),
            marker: None,
        });
    }
    let (users, more) = cx.store.list_users(after, limit).await?;
    let marker = if more {
        users.last().map(|u| user_key(&u.user_name))
    } else {
        None
    };
    Ok(Page {
        items: users,
        marker,
    })
}

/// Refused while the user has access keys or inline policies, as IAM does.
pub async fn delete_user(cx: &Identity<'_>, user_name: &str) -> Result<(), IamError> {
    model::check_user_name(user_name)?;
    cx.authorize_user("DeleteUser", user_name)?;
    super::retry(|| async {
        let user = cx.existing_user(user_name).await?;
        if user.key_count > 0 {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        if !user.policies.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        let done = cx.store.delete_user(&user, user.revision).await?;
        if done {
            tracing::info!(user = %user.user_name, "user deleted");
        }
        Ok(done.then_some(()))
    })
    .await
}
