//! Activations (`ActivationsTable`) over DynamoDB. Only the SHA-256 of the
//! code is stored (`CodeHash`).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;
use steward_core::SsmError;
use steward_core::fleet::{Activation, ActivationStore};

use crate::Stack;
use crate::internal;
use crate::item::*;

pub const KIND: &str = "activation";

pub fn activation_to_item(a: &Activation) -> Item {
    HashMap::from([
        ("ActivationId".into(), s(&a.activation_id)),
        ("Kind".into(), s(KIND)),
        ("CodeHash".into(), s(&a.code_hash)),
        ("Description".into(), s(&a.description)),
        ("DefaultInstanceName".into(), s(&a.default_instance_name)),
        ("IamRole".into(), s(&a.iam_role)),
        ("RegistrationLimit".into(), n(a.registration_limit)),
        ("RegistrationsCount".into(), n(a.registrations_count)),
        ("ExpirationDate".into(), n(a.expiration_date)),
        ("CreatedDate".into(), n(a.created_date)),
        ("Tags".into(), str_map_av(&a.tags)),
    ])
}

pub fn activation_from_item(i: &Item) -> Activation {
    Activation {
        activation_id: get_s(i, "ActivationId"),
        code_hash: get_s(i, "CodeHash"),
        description: get_s(i, "Description"),
        default_instance_name: get_s(i, "DefaultInstanceName"),
        iam_role: get_s(i, "IamRole"),
        registration_limit: get_f64(i, "RegistrationLimit") as u32,
        registrations_count: get_f64(i, "RegistrationsCount") as u32,
        expiration_date: get_f64(i, "ExpirationDate"),
        created_date: get_f64(i, "CreatedDate"),
        tags: get_str_map(i, "Tags"),
    }
}

#[derive(Clone, Debug)]
pub struct ActivationTable {
    client: Client,
    table: String,
}

impl ActivationTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.activations_table.clone(),
        }
    }
}

#[async_trait::async_trait]
impl ActivationStore for ActivationTable {
    async fn create(&self, a: &Activation) -> Result<(), SsmError> {
        put_if_absent(
            &self.client,
            &self.table,
            activation_to_item(a),
            "ActivationId",
        )
        .await
        .map_err(internal)?;
        Ok(())
    }

    async fn get(&self, activation_id: &str) -> Result<Option<Activation>, SsmError> {
        let key = Item::from([("ActivationId".to_string(), s(activation_id))]);
        let item = get_consistent(&self.client, &self.table, key).await?;
        Ok(item.as_ref().map(activation_from_item))
    }

    async fn list(
        &self,
        after: Option<(f64, String)>,
        limit: usize,
    ) -> Result<(Vec<Activation>, bool), SsmError> {
        let after = after.map(|(created, id)| {
            Item::from([
                ("CreatedDate".to_string(), n(created)),
                ("ActivationId".to_string(), s(id)),
            ])
        });
        let (items, more) = kind_page(&self.client, &self.table, KIND, after, limit).await?;
        Ok((items.iter().map(activation_from_item).collect(), more))
    }

    async fn delete(&self, activation_id: &str) -> Result<bool, SsmError> {
        let resp = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("ActivationId", s(activation_id))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(internal)?;
        Ok(resp.attributes.is_some_and(|a| !a.is_empty()))
    }
}
