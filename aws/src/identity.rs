//! Operator identities over DynamoDB: users with their inline policies
//! (`UsersTable`) and access keys (`AccessKeysTable`, listed per user by
//! its `ByUser` index), the [`IdentityStore`] of `steward_core::identity`
//! (docs/internals.md, "Access keys and users").
//!
//! Every user write is conditional on the user's `Revision`; a key's create
//! and delete are one transaction with its user, whose `KeyCount` is the
//! quota's. Nothing scans: users are listed by `ByKind`.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};
use steward_core::SsmError;
use steward_core::identity::model::{AccessKey, User, user_key};
use steward_core::identity::{IamError, IdentityStore};

use crate::Stack;
use crate::item::{
    Item, conditional, get_consistent, get_f64, get_s, get_str, get_str_map, get_u64, kind_listing,
    n, put_if_absent, query_items, query_up_to, s, str_map_av,
};
use crate::revisioned;

/// `Kind` of every user: the `ByKind` index's partition.
pub const KIND: &str = "user";
pub const BY_KIND: &str = "ByKind";
/// The access-keys index by `UserName` (sort `CreateDate`).
pub const BY_USER: &str = "ByUser";

fn failure(e: SsmError) -> IamError {
    match e {
        SsmError::ThrottlingException(m) => IamError::Throttling(m),
        _ => IamError::service_failure(),
    }
}

fn internal<E: std::error::Error + 'static>(e: E) -> IamError {
    failure(crate::internal(e))
}

fn bad_item(what: &'static str) -> IamError {
    tracing::error!(what, "identity item cannot be decoded");
    IamError::service_failure()
}

pub fn user_to_item(u: &User) -> Item {
    Item::from([
        ("UserKey".to_string(), s(user_key(&u.user_name))),
        ("Kind".to_string(), s(KIND)),
        ("UserName".to_string(), s(&u.user_name)),
        ("UserId".to_string(), s(&u.user_id)),
        ("Path".to_string(), s(&u.path)),
        ("CreateDate".to_string(), n(u.create_date)),
        ("Policies".to_string(), str_map_av(&u.policies)),
        ("KeyCount".to_string(), n(u.key_count)),
        ("Revision".to_string(), n(u.revision)),
    ])
}

pub fn user_from_item(item: &Item) -> Result<User, IamError> {
    let policies = get_str_map(item, "Policies");
    Ok(User {
        user_name: get_str(item, "UserName").ok_or_else(|| bad_item("UserName"))?,
        user_id: get_s(item, "UserId"),
        path: get_str(item, "Path").unwrap_or_else(|| "/".into()),
        create_date: get_f64(item, "CreateDate"),
        policies,
        key_count: get_u64(item, "KeyCount").unwrap_or(0) as u32,
        revision: get_u64(item, "Revision").ok_or_else(|| bad_item("Revision"))?,
    })
}

pub fn key_to_item(k: &AccessKey) -> Item {
    Item::from([
        ("AccessKeyId".to_string(), s(&k.access_key_id)),
        ("SecretCiphertext".to_string(), s(&k.secret_ciphertext)),
        ("UserName".to_string(), s(&k.user_name)),
        ("Status".to_string(), s(&k.status)),
        ("CreateDate".to_string(), n(k.create_date)),
    ])
}

/// A key item; from the `ByUser` index it has no `SecretCiphertext` ("").
pub fn key_from_item(i: &Item) -> AccessKey {
    AccessKey {
        access_key_id: get_s(i, "AccessKeyId"),
        secret_ciphertext: get_s(i, "SecretCiphertext"),
        user_name: get_s(i, "UserName"),
        status: get_s(i, "Status"),
        create_date: get_f64(i, "CreateDate"),
    }
}

/// Both tables, as one store.
#[derive(Clone, Debug)]
pub struct IdentityTables {
    client: Client,
    users: String,
    keys: String,
}

impl IdentityTables {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            users: stack.settings.users_table.clone(),
            keys: stack.settings.access_keys_table.clone(),
        }
    }

    /// A user is a revisioned head of its own: the Put is conditional on
    /// its `Revision` as a document's or parameter's head is.
    fn user_put(&self, next: &User, expected: u64) -> Result<TransactWriteItem, IamError> {
        revisioned::put_head(&self.users, user_to_item(next), Some(expected)).map_err(failure)
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, IamError> {
        revisioned::transact(&self.client, "identity", items)
            .await
            .map_err(failure)
    }
}

#[async_trait::async_trait]
impl IdentityStore for IdentityTables {
    async fn user(&self, user_name: &str) -> Result<Option<User>, IamError> {
        let key = Item::from([("UserKey".to_string(), s(user_key(user_name)))]);
        get_consistent(&self.client, &self.users, key)
            .await
            .map_err(failure)?
            .as_ref()
            .map(user_from_item)
            .transpose()
    }

    async fn list_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<User>, bool), IamError> {
        let q = kind_listing(&self.client, &self.users, BY_KIND, KIND, "UserKey", after);
        let (items, more) = query_up_to(q, limit, |_| true).await.map_err(failure)?;
        let users = items.iter().map(user_from_item).collect::<Result<_, _>>()?;
        Ok((users, more))
    }

    async fn create_user(&self, user: &User) -> Result<bool, IamError> {
        let r = put_if_absent(&self.client, &self.users, user_to_item(user), "UserKey").await;
        conditional(r).map_err(internal)
    }

    async fn put_user(&self, next: &User, expected: u64) -> Result<bool, IamError> {
        conditional(
            self.client
                .put_item()
                .table_name(&self.users)
                .set_item(Some(user_to_item(next)))
                .condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", "Revision")
                .expression_attribute_values(":rev", n(expected))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn delete_user(&self, user: &User, expected: u64) -> Result<bool, IamError> {
        conditional(
            self.client
                .delete_item()
                .table_name(&self.users)
                .key("UserKey", s(user_key(&user.user_name)))
                .condition_expression("#rev = :rev")
                .expression_attribute_names("#rev", "Revision")
                .expression_attribute_values(":rev", n(expected))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn key(&self, access_key_id: &str) -> Result<Option<AccessKey>, IamError> {
        let key = Item::from([("AccessKeyId".to_string(), s(access_key_id))]);
        Ok(get_consistent(&self.client, &self.keys, key)
            .await
            .map_err(failure)?
            .as_ref()
            .map(key_from_item))
    }

    async fn keys_of(&self, user_name: &str) -> Result<Vec<AccessKey>, IamError> {
        let query = self
            .client
            .query()
            .table_name(&self.keys)
            .index_name(BY_USER)
            .key_condition_expression("#u = :u")
            .expression_attribute_names("#u", "UserName")
            .expression_attribute_values(":u", s(user_name));
        let items = query_items(query, None, |_| true).await.map_err(failure)?;
        Ok(items.iter().map(key_from_item).collect())
    }

    async fn add_key(&self, next: &User, expected: u64, key: &AccessKey) -> Result<bool, IamError> {
        let put = Put::builder()
            .table_name(&self.keys)
            .set_item(Some(key_to_item(key)))
            .condition_expression("attribute_not_exists(AccessKeyId)")
            .build()
            .map_err(internal)?;
        self.transact(vec![
            self.user_put(next, expected)?,
            TransactWriteItem::builder().put(put).build(),
        ])
        .await
    }

    async fn set_key_status(&self, key: &AccessKey, status: &str) -> Result<bool, IamError> {
        conditional(
            self.client
                .update_item()
                .table_name(&self.keys)
                .key("AccessKeyId", s(&key.access_key_id))
                .update_expression("SET #s = :s")
                .condition_expression("attribute_exists(AccessKeyId) AND #u = :u")
                .expression_attribute_names("#s", "Status")
                .expression_attribute_names("#u", "UserName")
                .expression_attribute_values(":s", s(status))
                .expression_attribute_values(":u", s(&key.user_name))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn remove_key(
        &self,
        next: &User,
        expected: u64,
        key: &AccessKey,
    ) -> Result<bool, IamError> {
        let delete = Delete::builder()
            .table_name(&self.keys)
            .key("AccessKeyId", s(&key.access_key_id))
            .condition_expression("#u = :u")
            .expression_attribute_names("#u", "UserName")
            .expression_attribute_values(":u", s(&key.user_name))
            .build()
            .map_err(internal)?;
        self.transact(vec![
            self.user_put(next, expected)?,
            TransactWriteItem::builder().delete(delete).build(),
        ])
        .await
    }
}
