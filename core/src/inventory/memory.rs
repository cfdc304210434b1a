//! An in-memory [`InventoryStore`] for unit tests, with the adapter's
//! conditions. The DynamoDB adapter is tested against the local stack with
//! the same expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::model::{CustomSchema, StoredType};
use super::ports::InventoryStore;
use crate::error::SsmError;

#[derive(Default)]
pub struct MemoryInventory {
    /// By (instance id, type name).
    pub types: Mutex<BTreeMap<(String, String), StoredType>>,
    pub schemas: Mutex<BTreeMap<String, CustomSchema>>,
    /// Writes that changed something: tests count them.
    pub writes: Mutex<usize>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl InventoryStore for MemoryInventory {
    async fn get(
        &self,
        instance_id: &str,
        type_name: &str,
    ) -> Result<Option<StoredType>, SsmError> {
        Ok(lock(&self.types)
            .get(&(instance_id.to_string(), type_name.to_string()))
            .cloned())
    }

    async fn instance(&self, instance_id: &str) -> Result<Vec<StoredType>, SsmError> {
        Ok(lock(&self.types)
            .values()
            .filter(|t| t.instance_id == instance_id)
            .cloned()
            .collect())
    }

    async fn put_if_changed(&self, t: &StoredType) -> Result<bool, SsmError> {
        let mut all = lock(&self.types);
        let key = (t.instance_id.clone(), t.type_name.clone());
        if let Some(old) = all.get(&key)
            && (old.content_hash == t.content_hash || old.capture_time > t.capture_time)
        {
            return Ok(false);
        }
        all.insert(key, t.clone());
        *lock(&self.writes) += 1;
        Ok(true)
    }

    async fn delete(&self, instance_id: &str, type_name: &str) -> Result<(), SsmError> {
        lock(&self.types).remove(&(instance_id.to_string(), type_name.to_string()));
        Ok(())
    }

    async fn holders(
        &self,
        type_name: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, bool), SsmError> {
        let all = lock(&self.types);
        let mut ids = all
            .keys()
            .filter(|(i, t)| t == type_name && after.is_none_or(|a| i.as_str() > a))
            .map(|(i, _)| i.clone());
        let page: Vec<String> = ids.by_ref().take(limit).collect();
        Ok((page, ids.next().is_some()))
    }

    async fn schemas(&self) -> Result<Vec<CustomSchema>, SsmError> {
        Ok(lock(&self.schemas).values().cloned().collect())
    }

    async fn put_schema(&self, s: &CustomSchema) -> Result<(), SsmError> {
        lock(&self.schemas).insert(s.type_name.clone(), s.clone());
        Ok(())
    }

    async fn delete_schema(&self, type_name: &str) -> Result<(), SsmError> {
        lock(&self.schemas).remove(type_name);
        Ok(())
    }
}
