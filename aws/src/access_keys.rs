//! Operator access keys (`AccessKeysTable`) as the authenticator reads
//! them; the secret stays KMS-encrypted in the record and is decrypted by
//! [`crate::key_service::DataKey`]. Keys are written by the IAM operations
//! ([`crate::identity::IdentityTables`]).

use aws_sdk_dynamodb::Client;
use steward_core::SsmError;
use steward_core::access::AccessKey;
use steward_core::fleet::AccessKeyStore;

use crate::Stack;
use crate::identity::key_from_item;
use crate::internal;
use crate::item::s;

#[derive(Clone, Debug)]
pub struct AccessKeyTable {
    client: Client,
    table: String,
}

impl AccessKeyTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.access_keys_table.clone(),
        }
    }
}

#[async_trait::async_trait]
impl AccessKeyStore for AccessKeyTable {
    async fn get(&self, access_key_id: &str) -> Result<Option<AccessKey>, SsmError> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("AccessKeyId", s(access_key_id))
            .send()
            .await
            .map_err(internal)?;
        Ok(resp.item.as_ref().map(key_from_item))
    }
}
