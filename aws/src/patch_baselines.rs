//! Patch baselines over DynamoDB: one table, `PatchBaselinesTable`, keyed
//! by `Id`, holding differently keyed items (docs/internals.md):
//!
//! - a baseline (`pb-…`, Kind `baseline`): its CreatePatchBaseline JSON as
//!   `Record`, read back through `CreatePatchBaselineRequest::parse`, with
//!   `Revision`, dates and tags;
//! - a ClientToken (`token#<token>`), written in the same transaction as the
//!   baseline it created;
//! - a patch group's registration (`group#<group>#<os>`, Kind `patchgroup`),
//!   `GroupBaseline` naming its baseline (index `ByBaseline`); written in
//!   one transaction with a raise of that baseline's `Revision`, so a delete
//!   conditional on the revision it read cannot miss a registration;
//! - a system's registered default (`default#<os>`).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem, Update};
use serde_json::Value;
use steward_core::SsmError;
use steward_core::patching::CreatePatchBaselineRequest;
use steward_core::patching::OperatingSystem;
use steward_core::patching::context::PatchingContext;
use steward_core::patching::ports::{
    CreateOutcome, GroupRegistration, Page, PatchBaselineStore, StoredBaseline, TokenClaim,
};

use crate::Stack;
use crate::commands::{decode_token, next_token};
use crate::internal;
use crate::item::{
    IndexQuery, Item, get_consistent, get_f64, get_s, get_str, get_str_map, get_u64, n, query_page,
    s, str_map_av,
};
use crate::revisioned::transact;

const BASELINE: &str = "baseline";
const GROUP: &str = "patchgroup";
const WHAT: &str = "patch baselines";

fn key(id: &str) -> Item {
    Item::from([("Id".to_string(), s(id))])
}

fn token_id(token: &str) -> String {
    format!("token#{token}")
}

fn group_id(group: &str, os: OperatingSystem) -> String {
    format!("group#{group}#{os}")
}

fn default_key(os: OperatingSystem) -> String {
    format!("default#{os}")
}

fn to_item(b: &StoredBaseline) -> Item {
    Item::from([
        ("Id".to_string(), s(&b.id)),
        ("Kind".to_string(), s(BASELINE)),
        (
            "Record".to_string(),
            s(b.baseline.to_create_json().to_string()),
        ),
        ("CreatedDate".to_string(), n(b.created)),
        ("ModifiedDate".to_string(), n(b.modified)),
        ("Tags".to_string(), str_map_av(&b.tags)),
        ("Revision".to_string(), n(b.revision)),
    ])
}

fn from_item(item: &Item) -> Result<StoredBaseline, SsmError> {
    let record: Value = serde_json::from_str(&get_s(item, "Record")).map_err(|e| {
        tracing::error!(error = %e, "a patch baseline item cannot be read");
        SsmError::internal()
    })?;
    let checked = CreatePatchBaselineRequest::parse(&record).map_err(|e| {
        tracing::error!(error = %e, "a stored patch baseline no longer passes its checks");
        SsmError::internal()
    })?;
    Ok(StoredBaseline {
        id: get_s(item, "Id"),
        baseline: checked.baseline,
        created: get_f64(item, "CreatedDate"),
        modified: get_f64(item, "ModifiedDate"),
        tags: get_str_map(item, "Tags"),
        revision: get_u64(item, "Revision").unwrap_or(0),
    })
}

fn put(item: Item, condition: &str) -> aws_sdk_dynamodb::types::builders::PutBuilder {
    Put::builder()
        .set_item(Some(item))
        .condition_expression(condition)
}

fn build<T, E: std::error::Error + 'static>(r: Result<T, E>) -> Result<T, SsmError> {
    r.map_err(internal)
}

/// The table over DynamoDB.
#[derive(Clone, Debug)]
pub struct PatchBaselineTable {
    client: Client,
    table: String,
}

impl PatchBaselineTable {
    pub fn new(stack: &Stack) -> Self {
        Self {
            client: stack.clients.dynamodb.clone(),
            table: stack.settings.patch_baselines_table.clone(),
        }
    }

    /// One page of the `ByKind` listing of `kind`, from the caller's
    /// NextToken, and the NextToken of the page after it.
    async fn kind_page(
        &self,
        kind: &str,
        limit: usize,
        token: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), SsmError> {
        let start = token
            .map(|t| decode_token(t, &["Id", "Kind"]))
            .transpose()?;
        let (items, next) = query_page(
            &self.client,
            IndexQuery {
                table: &self.table,
                index: "ByKind",
                key: ("Kind", s(kind)),
                sort: None,
                newest_first: false,
                limit,
                start,
            },
        )
        .await?;
        Ok((items, next_token(next.as_ref())?))
    }

    async fn read(&self, id: &str) -> Result<Option<Item>, SsmError> {
        get_consistent(&self.client, &self.table, key(id)).await
    }

    /// A check that the baseline is still at `revision`.
    fn at_revision(&self, id: &str, revision: u64) -> Result<TransactWriteItem, SsmError> {
        Ok(TransactWriteItem::builder()
            .condition_check(build(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(id)))
                    .condition_expression("#r = :r")
                    .expression_attribute_names("#r", "Revision")
                    .expression_attribute_values(":r", n(revision))
                    .build(),
            )?)
            .build())
    }
}

#[async_trait::async_trait]
impl PatchBaselineStore for PatchBaselineTable {
    async fn create(
        &self,
        baseline: &StoredBaseline,
        token: Option<&TokenClaim>,
    ) -> Result<CreateOutcome, SsmError> {
        let mut items = vec![
            TransactWriteItem::builder()
                .put(build(
                    put(to_item(baseline), "attribute_not_exists(Id)")
                        .table_name(&self.table)
                        .build(),
                )?)
                .build(),
        ];
        if let Some(t) = token {
            let item = Item::from([
                ("Id".to_string(), s(token_id(&t.token))),
                ("BaselineId".to_string(), s(&baseline.id)),
                ("Fingerprint".to_string(), s(&t.fingerprint)),
            ]);
            items.push(
                TransactWriteItem::builder()
                    .put(build(
                        put(item, "attribute_not_exists(Id)")
                            .table_name(&self.table)
                            .build(),
                    )?)
                    .build(),
            );
        }
        if transact(&self.client, WHAT, items).await? {
            return Ok(CreateOutcome::Created);
        }
        // Ids are random: a refusal is the token, taken before.
        let taken = match token {
            Some(t) => self.read(&token_id(&t.token)).await?,
            None => None,
        };
        match taken {
            Some(item) => Ok(CreateOutcome::TokenUsed {
                baseline_id: get_s(&item, "BaselineId"),
                fingerprint: get_s(&item, "Fingerprint"),
            }),
            None => Err(SsmError::internal()),
        }
    }

    async fn get(&self, baseline_id: &str) -> Result<Option<StoredBaseline>, SsmError> {
        match self.read(baseline_id).await? {
            Some(item) if get_s(&item, "Kind") == BASELINE => from_item(&item).map(Some),
            _ => Ok(None),
        }
    }

    async fn update(
        &self,
        next: &StoredBaseline,
        expected_revision: u64,
    ) -> Result<bool, SsmError> {
        crate::item::conditional(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(to_item(next)))
                .condition_expression("#r = :expected")
                .expression_attribute_names("#r", "Revision")
                .expression_attribute_values(":expected", n(expected_revision))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn delete(&self, baseline: &StoredBaseline) -> Result<bool, SsmError> {
        let os = baseline.baseline.operating_system;
        let items = vec![
            TransactWriteItem::builder()
                .delete(build(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(&baseline.id)))
                        .condition_expression("#r = :r")
                        .expression_attribute_names("#r", "Revision")
                        .expression_attribute_values(":r", n(baseline.revision))
                        .build(),
                )?)
                .build(),
            TransactWriteItem::builder()
                .condition_check(build(
                    ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(&default_key(os))))
                        .condition_expression(
                            "attribute_not_exists(BaselineId) OR BaselineId <> :id",
                        )
                        .expression_attribute_values(":id", s(&baseline.id))
                        .build(),
                )?)
                .build(),
        ];
        transact(&self.client, WHAT, items).await
    }

    async fn list(
        &self,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<StoredBaseline>, SsmError> {
        let (items, next_token) = self.kind_page(BASELINE, limit, token).await?;
        Ok(Page {
            items: items.iter().map(from_item).collect::<Result<_, _>>()?,
            next_token,
        })
    }

    async fn groups_of(&self, baseline_id: &str) -> Result<Vec<String>, SsmError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = query_page(
                &self.client,
                IndexQuery {
                    table: &self.table,
                    index: "ByBaseline",
                    key: ("GroupBaseline", s(baseline_id)),
                    sort: None,
                    newest_first: false,
                    limit: 100,
                    start,
                },
            )
            .await?;
            for item in &items {
                // group#<group>#<os>: a group name holds no '#'.
                let id = get_s(item, "Id");
                if let Some(group) = id
                    .strip_prefix("group#")
                    .and_then(|rest| rest.rsplit_once('#'))
                    .map(|(g, _)| g.to_string())
                    && !out.contains(&group)
                {
                    out.push(group);
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    async fn register_group(
        &self,
        r: &GroupRegistration,
        baseline_revision: Option<u64>,
    ) -> Result<bool, SsmError> {
        let item = Item::from([
            (
                "Id".to_string(),
                s(group_id(&r.patch_group, r.operating_system)),
            ),
            ("Kind".to_string(), s(GROUP)),
            ("GroupBaseline".to_string(), s(&r.baseline_id)),
            ("PatchGroup".to_string(), s(&r.patch_group)),
            (
                "OperatingSystem".to_string(),
                s(r.operating_system.as_str()),
            ),
        ]);
        let mut items = vec![
            TransactWriteItem::builder()
                .put(build(
                    put(item, "attribute_not_exists(Id)")
                        .table_name(&self.table)
                        .build(),
                )?)
                .build(),
        ];
        if let Some(rev) = baseline_revision {
            items.push(
                TransactWriteItem::builder()
                    .update(build(
                        Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key(&r.baseline_id)))
                            .update_expression("SET #r = :next")
                            .condition_expression("#r = :r")
                            .expression_attribute_names("#r", "Revision")
                            .expression_attribute_values(":r", n(rev))
                            .expression_attribute_values(":next", n(rev + 1))
                            .build(),
                    )?)
                    .build(),
            );
        }
        transact(&self.client, WHAT, items).await
    }

    async fn deregister_group(&self, r: &GroupRegistration) -> Result<bool, SsmError> {
        crate::item::conditional(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(&group_id(&r.patch_group, r.operating_system))))
                .condition_expression("GroupBaseline = :id")
                .expression_attribute_values(":id", s(&r.baseline_id))
                .send()
                .await,
        )
        .map_err(internal)
    }

    async fn group_baseline(
        &self,
        patch_group: &str,
        os: OperatingSystem,
    ) -> Result<Option<String>, SsmError> {
        Ok(self
            .read(&group_id(patch_group, os))
            .await?
            .and_then(|item| get_str(&item, "GroupBaseline")))
    }

    async fn list_groups(
        &self,
        limit: usize,
        token: Option<&str>,
    ) -> Result<Page<GroupRegistration>, SsmError> {
        let (items, next_token) = self.kind_page(GROUP, limit, token).await?;
        let mut out = Vec::new();
        for item in &items {
            let os = OperatingSystem::parse(get_str(item, "OperatingSystem").as_deref())
                .map_err(|_| SsmError::internal())?;
            out.push(GroupRegistration {
                patch_group: get_s(item, "PatchGroup"),
                operating_system: os,
                baseline_id: get_s(item, "GroupBaseline"),
            });
        }
        Ok(Page {
            items: out,
            next_token,
        })
    }

    async fn set_default(
        &self,
        os: OperatingSystem,
        baseline_id: &str,
        baseline_revision: Option<u64>,
    ) -> Result<bool, SsmError> {
        let item = Item::from([
            ("Id".to_string(), s(default_key(os))),
            ("BaselineId".to_string(), s(baseline_id)),
        ]);
        let mut items = vec![
            TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .build(),
                )?)
                .build(),
        ];
        if let Some(rev) = baseline_revision {
            items.push(self.at_revision(baseline_id, rev)?);
        }
        transact(&self.client, WHAT, items).await
    }

    async fn default_for(&self, os: OperatingSystem) -> Result<Option<String>, SsmError> {
        Ok(self
            .read(&default_key(os))
            .await?
            .and_then(|item| get_str(&item, "BaselineId")))
    }
}

/// Patch Manager's baseline adapters, built once per process.
#[derive(Debug)]
pub struct PatchingAdapters {
    pub store: PatchBaselineTable,
    pub scope: steward_core::arn::ArnScope,
}

impl PatchingAdapters {
    pub fn new(stack: &Stack) -> Self {
        Self {
            store: PatchBaselineTable::new(stack),
            scope: stack.settings.arn_scope(),
        }
    }

    /// The context of one request by `caller`, at `now`.
    pub fn context<'a>(
        &'a self,
        caller: &'a dyn steward_core::access::Authorizer,
        now: f64,
    ) -> PatchingContext<'a> {
        PatchingContext {
            store: &self.store,
            caller,
            scope: &self.scope,
            now,
        }
    }
}
