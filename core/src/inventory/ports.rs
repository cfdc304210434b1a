//! What Inventory needs of the world: a store of each node's data per type,
//! and of the custom types' schemas. `steward-aws` keeps both in one
//! DynamoDB table; [`super::memory`] is the fake for unit tests.

use async_trait::async_trait;

use super::model::{CustomSchema, StoredType};
use crate::error::SsmError;

#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// A consistent read of one node's data of one type.
    async fn get(&self, instance_id: &str, type_name: &str)
    -> Result<Option<StoredType>, SsmError>;
    /// Every type one node holds.
    async fn instance(&self, instance_id: &str) -> Result<Vec<StoredType>, SsmError>;
    /// Writes `t` unless the stored data has the same content hash or a
    /// later capture time: one conditional write, so a repeated or late
    /// report changes nothing. `false`: nothing was written.
    async fn put_if_changed(&self, t: &StoredType) -> Result<bool, SsmError>;
    /// Removes one node's data of one type (nothing if there is none).
    async fn delete(&self, instance_id: &str, type_name: &str) -> Result<(), SsmError>;
    /// The nodes holding `type_name`, in id order after `after`, at most
    /// `limit`; `true` when more may follow.
    async fn holders(
        &self,
        type_name: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), SsmError>;
    /// Every custom type's schema.
    async fn schemas(&self) -> Result<Vec<CustomSchema>, SsmError>;
    async fn put_schema(&self, s: &CustomSchema) -> Result<(), SsmError>;
    async fn delete_schema(&self, type_name: &str) -> Result<(), SsmError>;
}
