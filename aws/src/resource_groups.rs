//! Resource groups' queries from AWS Resource Groups, for
//! `resource-groups:Name` targets: one GetGroupQuery per group named.

use aws_sdk_resourcegroups::Client;
use steward_core::SsmError;
use steward_core::targets::{GroupQueries, GroupQuery};

use crate::Stack;
use crate::internal;

#[derive(Clone, Debug)]
pub struct ResourceGroups {
    client: Client,
}

impl ResourceGroups {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.resource_groups.clone(),
        }
    }
}

#[async_trait::async_trait]
impl GroupQueries for ResourceGroups {
    async fn group_query(&self, name: &str) -> Result<Option<GroupQuery>, SsmError> {
        let resp = match self.client.get_group_query().group(name).send().await {
            Ok(r) => r,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!(group = name, error = %e, "GetGroupQuery failed");
                return Err(internal(e));
            }
        };
        Ok(resp
            .group_query
            .and_then(|g| g.resource_query)
            .map(|q| GroupQuery {
                query_type: q.r#type.as_str().to_string(),
                query: q.query,
            }))
    }
}
