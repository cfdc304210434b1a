//! PutUserPolicy, GetUserPolicy, DeleteUserPolicy, ListUserPolicies: a
//! user's inline policies, kept in the user's item.

use super::model::{self, MAX_USER_POLICY_CHARS, policy_size};
use super::{IamError, Identity, Page, PageRequest};

/// GetUserPolicy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPolicy {
    pub user_name: String,
    pub policy_name: String,
    /// As it was put.
    pub document: String,
}

fn no_such_policy(user: &str, policy: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "The user policy with name {policy} cannot be found for user {user}."
    ))
}

/// Adds or replaces the policy. The document must be one Steward evaluates
/// exactly, and the user's policies together stay within IAM's 2,048
/// characters (whitespace not counted).
pub async fn put_user_policy(
    cx: &Identity<'_>,
    user_name: &str,
    policy_name: &str,
    document: &str,
) -> Result<(), IamError> {
    model::check_user_name(user_name)?;
    model::check_policy_name(policy_name)?;
    cx.authorize_user("PutUserPolicy", user_name)?;
    model::check_policy_document(document)?;
    super::retry(|| async {
        let user = cx.existing_user(user_name).await?;
        let others: usize = user
            .policies
            .iter()
            .filter(|(name, _)| name.as_str() != policy_name)
            .map(|(_, doc)| policy_size(doc))
            .sum();
        if others + policy_size(document) > MAX_USER_POLICY_CHARS {
            return Err(IamError::LimitExceeded(format!(
                "Maximum policy size of {MAX_USER_POLICY_CHARS} bytes exceeded for user {}",
                user.user_name
            )));
        }
        let mut next = user.next();
        next.policies
            .insert(policy_name.to_string(), document.to_string());
        let done = cx.store.put_user(&next, user.revision).await?;
        if done {
            tracing::info!(user = %user.user_name, policy = policy_name, "user policy put");
        }
        Ok(done.then_some(()))
    })
    .await
}

pub async fn get_user_policy(
    cx: &Identity<'_>,
    user_name: &str,
    policy_name: &str,
) -> Result<UserPolicy, IamError> {
    model::check_user_name(user_name)?;
    model::check_policy_name(policy_name)?;
    cx.authorize_user("GetUserPolicy", user_name)?;
    let user = cx.existing_user(user_name).await?;
    let document = user
        .policies
        .get(policy_name)
        .cloned()
        .ok_or_else(|| no_such_policy(&user.user_name, policy_name))?;
    Ok(UserPolicy {
        user_name: user.user_name,
        policy_name: policy_name.to_string(),
        document,
    })
}

pub async fn delete_user_policy(
    cx: &Identity<'_>,
    user_name: &str,
    policy_name: &str,
) -> Result<(), IamError> {
    model::check_user_name(user_name)?;
    model::check_policy_name(policy_name)?;
    cx.authorize_user("DeleteUserPolicy", user_name)?;
    super::retry(|| async {
        let user = cx.existing_user(user_name).await?;
        if !user.policies.contains_key(policy_name) {
            return Err(no_such_policy(&user.user_name, policy_name));
        }
        let mut next = user.next();
        next.policies.remove(policy_name);
        let done = cx.store.put_user(&next, user.revision).await?;
        if done {
            tracing::info!(user = %user.user_name, policy = policy_name, "user policy deleted");
        }
        Ok(done.then_some(()))
    })
    .await
}

/// The policies' names, in order.
pub async fn list_user_policies(
    cx: &Identity<'_>,
    user_name: &str,
    page: &PageRequest,
) -> Result<Page<String>, IamError> {
    model::check_user_name(user_name)?;
    page.limit()?;
    page.marker()?;
    cx.authorize_user("ListUserPolicies", user_name)?;
    let user = cx.existing_user(user_name).await?;
    super::page_sorted(user.policies.into_keys().collect(), page, Clone::clone)
}
