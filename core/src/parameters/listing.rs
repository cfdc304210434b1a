//! GetParametersByPath and DescribeParameters: paged listings over the
//! store's name-ordered heads, with filters and per-parameter authorization.
//!
//! Both read at most [`MAX_PAGES_PER_CALL`] store pages per call, keep what
//! passes the filters and the caller's policy, and answer with what they
//! have plus a NextToken (an opaque cursor of the last name *read*, so
//! dropped heads are not read again). As SSM's own listings, a page may
//! hold fewer than MaxResults items, even none, and still have a NextToken.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::context::ParameterContext;
use super::filters::{Filters, normalize_path};
use super::get::resolve;
use super::model::{Parameter, ParameterVersion};
use super::name::{MAX_LEVELS, levels};
use super::requests::parse;
use super::selector::Selector;
use super::views::{metadata_view, parameter_view, readable_value};
use crate::error::SsmError;
use crate::paging::{invalid_token, max_results};

/// How many store pages one listing call reads at most before it answers
/// with what it has and a NextToken (filters may drop many heads).
pub const MAX_PAGES_PER_CALL: usize = 10;
pub const BY_PATH_MAX_RESULTS: i64 = 10;
/// DescribeParameters answers at most 50 a page, and 10 when MaxResults is
/// not given, as SSM does.
pub const DESCRIBE_MAX_RESULTS: i64 = 50;
pub const DESCRIBE_DEFAULT_RESULTS: i64 = 10;
const MAX_PATH: usize = 2048;

/// The NextToken: where the listing resumes (after this name).
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    after: String,
}

fn decode_token(token: Option<&str>) -> Result<Option<String>, SsmError> {
    let Some(t) = token else {
        return Ok(None);
    };
    let c: Cursor = B64
        .decode(t)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(invalid_token)?;
    Ok(Some(c.after))
}

fn encode_token(after: &str) -> String {
    B64.encode(
        serde_json::to_vec(&Cursor {
            after: after.to_string(),
        })
        .unwrap_or_default(),
    )
}

/// Which heads a listing walks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// Every name that starts with the prefix (`""`: every parameter).
    Prefix(String),
    /// The names whose parent path is this one.
    Children(String),
}

impl Source {
    /// What a path covers. Names without a leading slash (`foo`) have `/` for
    /// parent (see `parent_of`), so `/` one level lists `/foo` and `foo`, and
    /// `/` recursive lists every parameter.
    fn under(path: &str, recursive: bool) -> Self {
        match (recursive, path) {
            (true, "/") => Source::Prefix(String::new()),
            (true, p) => Source::Prefix(format!("{p}/")),
            (false, p) => Source::Children(p.to_string()),
        }
    }
}

/// Reads heads of `source` after `after` until `max` pass `keep`, the
/// source ends or [`MAX_PAGES_PER_CALL`] pages were read. Returns the kept
/// heads and, when more may follow, the last name read.
async fn collect(
    ctx: &ParameterContext<'_>,
    source: &Source,
    mut after: Option<String>,
    max: usize,
    mut keep: impl FnMut(&Parameter) -> bool,
) -> Result<(Vec<Parameter>, Option<String>), SsmError> {
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES_PER_CALL {
        // A page never holds more than is still wanted, so every head read
        // is either kept or dropped and the cursor is simply the last one.
        let want = max - out.len();
        let (page, more) = match source {
            Source::Prefix(p) => ctx.store.list_by_prefix(p, after.as_deref(), want).await?,
            Source::Children(p) => ctx.store.list_children(p, after.as_deref(), want).await?,
        };
        if let Some(last) = page.last() {
            after = Some(last.name().to_string());
        }
        out.extend(page.into_iter().filter(|h| keep(h)));
        if !more {
            return Ok((out, None));
        }
        if out.len() >= max {
            break;
        }
    }
    Ok((out, after))
}

fn answer(items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = json!({ "Parameters": items });
    if let Some(after) = next {
        out["NextToken"] = json!(encode_token(&after));
    }
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ByPathInput {
    path: Option<String>,
    recursive: Option<bool>,
    parameter_filters: Option<Value>,
    with_decryption: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// SSM's rules for the `Path` of GetParametersByPath; answers it without a
/// trailing slash (`/` stays `/`).
fn check_path(path: &str) -> Result<String, SsmError> {
    if path.is_empty() || path.chars().count() > MAX_PATH {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value at 'path' failed to satisfy constraint: Member must have length between 1 and {MAX_PATH}."
        )));
    }
    let bad_form = !path.starts_with('/')
        || path.contains("//")
        || !path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c));
    if bad_form {
        return Err(SsmError::ValidationException(format!(
            "The path {path} doesn't meet the parameter name requirements. A path must begin with a forward slash \"/\" and use only letters, numbers, and . - _ in sub-paths separated by /. Valid example: /get/parameters2-/by1./path0_."
        )));
    }
    let path = normalize_path(path);
    if path != "/" && levels(&path) > MAX_LEVELS {
        return Err(SsmError::HierarchyLevelLimitExceededException(format!(
            "A hierarchy can have a maximum of {MAX_LEVELS} levels; the path {path} has {}. Shorten the path.",
            levels(&path)
        )));
    }
    Ok(path)
}

/// The ARN GetParametersByPath is authorized on for `path`: the path's ARN
/// with a trailing `/`, so that a policy Resource `…:parameter/app/dev/*`
/// (the one that grants the parameters below /app/dev) grants listing
/// /app/dev too. The bare path ARN (`…:parameter/app/dev`, what IAM itself
/// checks) is accepted as well, so SSM policies port unchanged.
fn authorize_path(ctx: &ParameterContext<'_>, path: &str) -> Result<(), SsmError> {
    const ACTION: &str = "ssm:GetParametersByPath";
    let bare = ctx.scope.parameter_arn(path);
    let slashed = if path == "/" {
        bare.clone()
    } else {
        format!("{bare}/")
    };
    ctx.caller
        .authorize(ACTION, &slashed)
        .or_else(|e| ctx.caller.authorize(ACTION, &bare).map_err(|_| e))
}

/// GetParametersByPath: the parameters under `Path` (one level, or every
/// level with `Recursive`), with values (decrypted with `WithDecryption`).
/// A parameter the caller's policy refuses by its own ARN is left out, so a
/// Deny on a sub-path wins over an Allow on the path.
pub async fn get_parameters_by_path(
    ctx: &ParameterContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let input: ByPathInput = parse(body)?;
    let path = input.path.ok_or_else(|| {
        SsmError::ValidationException(
            "1 validation error detected: Value null at 'path' failed to satisfy constraint: Member must not be null. Give Path, e.g. /app/prod.".into(),
        )
    })?;
    let path = check_path(&path)?;
    let filters = Filters::for_path(input.parameter_filters.as_ref())?;
    let max = max_results(
        input.max_results,
        1,
        BY_PATH_MAX_RESULTS,
        BY_PATH_MAX_RESULTS,
    )?;
    let after = decode_token(input.next_token.as_deref())?;
    authorize_path(ctx, &path)?;

    let source = Source::under(&path, input.recursive.unwrap_or(false));
    let (heads, next) = collect(ctx, &source, after, max, |h| {
        filters.matches(h)
            && ctx
                .caller
                .authorize(
                    "ssm:GetParametersByPath",
                    &ctx.scope.parameter_arn(h.name()),
                )
                .is_ok()
    })
    .await?;

    let with_decryption = input.with_decryption.unwrap_or(false);
    let mut items = Vec::with_capacity(heads.len());
    for head in &heads {
        let Some((version, selector)) = version_for(ctx, head, filters.labels()).await? else {
            continue;
        };
        let value = readable_value(ctx, &version, with_decryption).await?;
        let arn = ctx.scope.parameter_arn(head.name());
        items.push(parameter_view(
            &version,
            &value,
            &arn,
            selector.as_ref().map(Selector::text).as_deref(),
        ));
    }
    Ok(answer(items, next))
}

/// The version of `head` a listing shows: the latest, or with a Label filter
/// the version carrying the first of its labels that `head` has. `None`
/// when that version is no longer kept (a head read in a race with a
/// relabel or a trim): the parameter is left out of this page.
async fn version_for(
    ctx: &ParameterContext<'_>,
    head: &Parameter,
    labels: Option<&[String]>,
) -> Result<Option<(ParameterVersion, Option<Selector>)>, SsmError> {
    let Some(label) = labels.and_then(|ls| ls.iter().find(|l| head.labels.contains_key(*l))) else {
        return Ok(Some((head.current.clone(), None)));
    };
    let selector = Selector::Label(label.clone());
    match resolve(ctx, head, Some(&selector)).await {
        Ok(v) => Ok(Some((v, Some(selector)))),
        Err(SsmError::ParameterVersionNotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DescribeInput {
    filters: Option<Value>,
    parameter_filters: Option<Value>,
    max_results: Option<i64>,
    next_token: Option<String>,
    shared: Option<bool>,
}

/// DescribeParameters: every parameter's metadata (never a value), in name
/// order, filtered by `Filters` or `ParameterFilters`. Each parameter is
/// authorized by its ARN for `ssm:DescribeParameters`; refused ones are
/// left out.
pub async fn describe_parameters(
    ctx: &ParameterContext<'_>,
    body: &Value,
) -> Result<Value, SsmError> {
    let input: DescribeInput = parse(body)?;
    if input.shared.unwrap_or(false) {
        return Err(SsmError::ValidationException(
            "Shared parameters are not supported: Steward has no resource shares. Omit Shared (or set it to false) to list this account's parameters.".into(),
        ));
    }
    let filters = Filters::for_describe(input.filters.as_ref(), input.parameter_filters.as_ref())?;
    let max = max_results(
        input.max_results,
        1,
        DESCRIBE_MAX_RESULTS,
        DESCRIBE_DEFAULT_RESULTS,
    )?;
    let after = decode_token(input.next_token.as_deref())?;
    // One Path filter value narrows the walk to that path, one hierarchical
    // Name value to its prefix; otherwise every parameter is walked in name
    // order and the filters pick (pages may then come back short, with a
    // NextToken, as SSM's do).
    let source = match (filters.single_path(), filters.name_prefix()) {
        (Some((path, recursive)), _) => Source::under(&path, recursive),
        (None, Some(prefix)) => Source::Prefix(prefix),
        (None, None) => Source::Prefix(String::new()),
    };
    let (heads, next) = collect(ctx, &source, after, max, |h| {
        filters.matches(h)
            && ctx
                .caller
                .authorize("ssm:DescribeParameters", &ctx.scope.parameter_arn(h.name()))
                .is_ok()
    })
    .await?;
    let items = heads
        .iter()
        .map(|h| metadata_view(h, &ctx.scope.parameter_arn(h.name())))
        .collect();
    Ok(answer(items, next))
}

/// Unit-test fixtures shared by the listing and scheduler tests: an
/// in-memory store, a recording event sink, callers with policies, and
/// heads written straight through the store.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::Value;

    use crate::access::{Caller, Policy};
    use crate::arn::ArnScope;
    use crate::error::SsmError;
    use crate::events::EventSink;
    use crate::parameters::context::ParameterContext;
    use crate::parameters::memory::{MemoryDataKeys, MemoryParameterStore};
    use crate::parameters::model::{
        Parameter, ParameterType, ParameterVersion, PolicyRecord, StoredValue, Tier,
    };
    use crate::parameters::ports::ParameterStore;
    use crate::parameters::secrets::Sealer;

    pub const NOW: f64 = 1_900_000_000.0;

    #[derive(Default)]
    pub struct Recorder {
        pub events: Mutex<Vec<(String, Vec<String>, Value)>>,
    }

    impl Recorder {
        pub fn taken(&self) -> Vec<(String, Vec<String>, Value)> {
            std::mem::take(&mut *self.events.lock().unwrap())
        }
    }

    #[async_trait]
    impl EventSink for Recorder {
        async fn publish(
            &self,
            detail_type: &str,
            resources: Vec<String>,
            detail: Value,
        ) -> Result<(), SsmError> {
            self.events
                .lock()
                .unwrap()
                .push((detail_type.to_string(), resources, detail));
            Ok(())
        }
    }

    pub fn caller(policy: &str) -> Caller {
        Caller {
            access_key_id: "AKSTTESTTESTTESTTEST".into(),
            user_arn: "arn:aws:iam::123456789012:user/test".into(),
            policy: Policy::parse(policy).unwrap(),
        }
    }

    pub fn admin() -> Caller {
        caller(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
    }

    pub struct Fixture {
        pub store: MemoryParameterStore,
        pub sealer: Sealer,
        pub events: Recorder,
        pub scope: ArnScope,
    }

    impl Fixture {
        pub fn new() -> Self {
            Self {
                store: MemoryParameterStore::new(),
                sealer: Sealer::new(
                    Box::new(MemoryDataKeys::default()),
                    Duration::from_secs(60),
                    16,
                ),
                events: Recorder::default(),
                scope: ArnScope {
                    region: "us-east-1".into(),
                    account: "123456789012".into(),
                },
            }
        }

        pub fn ctx<'a>(&'a self, caller: &'a Caller) -> ParameterContext<'a> {
            self.ctx_at(caller, NOW)
        }

        pub fn ctx_at<'a>(&'a self, caller: &'a Caller, now: f64) -> ParameterContext<'a> {
            ParameterContext {
                store: &self.store,
                sealer: &self.sealer,
                caller,
                scope: &self.scope,
                default_key_id: "stack-key",
                now,
            }
        }

        /// Writes version 1 of a String parameter, or the next version of
        /// an existing one, through the store.
        pub async fn put(&self, name: &str, value: &str) -> Parameter {
            self.put_with(name, |v| v.value = StoredValue::Plain(value.into()))
                .await
        }

        pub async fn put_with(
            &self,
            name: &str,
            edit: impl FnOnce(&mut ParameterVersion),
        ) -> Parameter {
            let existing = self.store.get(name).await.unwrap();
            let mut current = ParameterVersion {
                name: name.into(),
                version: existing.as_ref().map_or(1, |h| h.version() + 1),
                parameter_type: ParameterType::String,
                value: StoredValue::Plain("v".into()),
                key_id: None,
                description: None,
                allowed_pattern: None,
                tier: Tier::Standard,
                policies: vec![],
                data_type: "text".into(),
                labels: BTreeSet::new(),
                last_modified_date: NOW - 1000.0,
                last_modified_user: "arn:aws:iam::123456789012:user/test".into(),
            };
            edit(&mut current);
            let head = Parameter {
                current,
                oldest_version: 1,
                labels: existing
                    .as_ref()
                    .map_or_else(BTreeMap::new, |h| h.labels.clone()),
                tags: existing
                    .as_ref()
                    .map(|h| h.tags.clone())
                    .unwrap_or_default(),
                policy_due: None,
                revision: existing.as_ref().map_or(1, |h| h.revision + 1),
            };
            let mut head = head;
            head.policy_due = crate::parameters::policies::next_due(&head);
            assert!(
                self.store
                    .put_version(&head, existing.map(|h| h.revision), None)
                    .await
                    .unwrap()
            );
            head
        }

        /// Replaces the head's labels or tags (not a new version).
        pub async fn edit_head(&self, name: &str, edit: impl FnOnce(&mut Parameter)) {
            let head = self.store.get(name).await.unwrap().unwrap();
            let mut next = head.clone();
            edit(&mut next);
            next.revision += 1;
            assert!(self.store.update(&next, head.revision, &[]).await.unwrap());
        }

        pub async fn put_secure(&self, name: &str, secret: &str) {
            let arn = self.scope.parameter_arn(name);
            let sealed = self.sealer.seal("stack-key", &arn, secret).await.unwrap();
            self.put_with(name, |v| {
                v.parameter_type = ParameterType::SecureString;
                v.value = StoredValue::Sealed(sealed);
                v.key_id = Some("alias/aws/ssm".into());
            })
            .await;
        }

        pub fn with_policies(policies: Vec<PolicyRecord>) -> impl FnOnce(&mut ParameterVersion) {
            move |v| {
                v.tier = Tier::Advanced;
                v.policies = policies;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use serde_json::json;

    use super::fixtures::*;
    use super::*;
    use crate::access::Caller;
    use crate::parameters::model::{ParameterType, Tier};

    fn names(answer: &Value) -> Vec<String> {
        answer["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap().to_string())
            .collect()
    }

    /// Follows the NextToken chain to its end: every page's names, in order.
    async fn by_path_all(fx: &Fixture, caller: &Caller, mut body: Value) -> (Vec<String>, usize) {
        let mut all = Vec::new();
        let mut calls = 0;
        loop {
            calls += 1;
            assert!(calls < 1000, "the NextToken chain does not end");
            let a = get_parameters_by_path(&fx.ctx(caller), &body)
                .await
                .unwrap();
            all.extend(names(&a));
            match a.get("NextToken") {
                Some(t) => body["NextToken"] = t.clone(),
                None => return (all, calls),
            }
        }
    }

    async fn describe_all(fx: &Fixture, caller: &Caller, mut body: Value) -> Vec<String> {
        let mut all = Vec::new();
        for _ in 0..1000 {
            let a = describe_parameters(&fx.ctx(caller), &body).await.unwrap();
            all.extend(names(&a));
            match a.get("NextToken") {
                Some(t) => body["NextToken"] = t.clone(),
                None => return all,
            }
        }
        panic!("the NextToken chain does not end");
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    async fn tree(fx: &Fixture) -> (Vec<String>, Vec<String>) {
        let mut direct = Vec::new();
        let mut nested = Vec::new();
        for i in 0..230 {
            let n = format!("/app/p{i:03}");
            fx.put(&n, "v").await;
            direct.push(n);
        }
        for i in 0..40 {
            let n = format!("/app/sub/q{i:02}");
            fx.put(&n, "v").await;
            nested.push(n);
        }
        fx.put("/apple", "not under /app").await;
        fx.put("/other/x", "v").await;
        (direct, nested)
    }

    #[tokio::test]
    async fn by_path_pages_through_230_parameters_once_each_in_order() {
        let fx = Fixture::new();
        let admin = admin();
        let (direct, nested) = tree(&fx).await;

        let (got, calls) = by_path_all(&fx, &admin, json!({"Path": "/app"})).await;
        assert_eq!(got, direct);
        assert_eq!(calls, 23);

        let (got, _) = by_path_all(&fx, &admin, json!({"Path": "/app/", "Recursive": true})).await;
        let mut want = direct.clone();
        want.extend(nested.clone());
        assert_eq!(got, sorted(want));

        let (got, _) = by_path_all(&fx, &admin, json!({"Path": "/app", "MaxResults": 7})).await;
        assert_eq!(got, direct);

        let (got, _) = by_path_all(&fx, &admin, json!({"Path": "/app/sub"})).await;
        assert_eq!(got, nested);
        let (got, _) = by_path_all(&fx, &admin, json!({"Path": "/nothing/here"})).await;
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn by_path_values_and_the_parameter_shape() {
        let fx = Fixture::new();
        let admin = admin();
        fx.put("/app/a", "alpha").await;
        fx.put_secure("/app/s", "hunter2").await;
        let a = get_parameters_by_path(&fx.ctx(&admin), &json!({"Path": "/app"}))
            .await
            .unwrap();
        let ps = a["Parameters"].as_array().unwrap();
        assert_eq!(ps[0]["Value"], "alpha");
        assert_eq!(ps[0]["Type"], "String");
        assert_eq!(ps[0]["Version"], 1);
        assert_eq!(
            ps[0]["ARN"],
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/a"
        );
        assert_eq!(ps[1]["Type"], "SecureString");
        assert_ne!(ps[1]["Value"], "hunter2");
        assert!(a.get("NextToken").is_none());

        let body = json!({"Path": "/app", "WithDecryption": true});
        let a = get_parameters_by_path(&fx.ctx(&admin), &body)
            .await
            .unwrap();
        assert_eq!(a["Parameters"][1]["Value"], "hunter2");

        // Decryption needs kms:Decrypt on the key.
        let no_kms =
            caller(r#"{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}"#);
        let e = get_parameters_by_path(&fx.ctx(&no_kms), &body)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "AccessDeniedException");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[tokio::test]
    async fn by_path_filters_type_key_id_and_label() {
        let fx = Fixture::new();
        let admin = admin();
        for i in 0..30 {
            let n = format!("/f/p{i:02}");
            if i % 3 == 0 {
                fx.put_secure(&n, "s").await;
            } else {
                fx.put(&n, "v").await;
            }
        }
        let body = json!({"Path": "/f", "MaxResults": 4,
            "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]});
        let (got, _) = by_path_all(&fx, &admin, body).await;
        let want: Vec<String> = (0..30).step_by(3).map(|i| format!("/f/p{i:02}")).collect();
        assert_eq!(got, want);

        let body = json!({"Path": "/f",
            "ParameterFilters": [{"Key": "KeyId", "Option": "BeginsWith", "Values": ["alias/"]}]});
        let (got, _) = by_path_all(&fx, &admin, body).await;
        assert_eq!(got, want);

        // Label: the labeled version, not the latest, with its selector.
        fx.put("/f/p01", "second").await;
        fx.edit_head("/f/p01", |h| {
            h.labels.insert("prod".into(), 1);
        })
        .await;
        let body = json!({"Path": "/f",
            "ParameterFilters": [{"Key": "Label", "Values": ["stage", "prod"]}]});
        let a = get_parameters_by_path(&fx.ctx(&admin), &body)
            .await
            .unwrap();
        assert_eq!(names(&a), vec!["/f/p01"]);
        assert_eq!(a["Parameters"][0]["Version"], 1);
        assert_eq!(a["Parameters"][0]["Value"], "v");
        assert_eq!(a["Parameters"][0]["Selector"], ":prod");

        let e = get_parameters_by_path(
            &fx.ctx(&admin),
            &json!({"Path": "/f", "ParameterFilters": [{"Key": "Name", "Values": ["/f/p01"]}]}),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), "InvalidFilterKey");
    }

    #[tokio::test]
    async fn by_path_request_errors() {
        let fx = Fixture::new();
        let admin = admin();
        let code = |body: Value| {
            let fx = &fx;
            let admin = &admin;
            async move {
                get_parameters_by_path(&fx.ctx(admin), &body)
                    .await
                    .unwrap_err()
                    .code()
            }
        };
        assert_eq!(code(json!({})).await, "ValidationException");
        assert_eq!(code(json!({"Path": "app"})).await, "ValidationException");
        assert_eq!(code(json!({"Path": "/a//b"})).await, "ValidationException");
        assert_eq!(code(json!({"Path": "/a b"})).await, "ValidationException");
        let deep = format!("/{}", vec!["l"; 16].join("/"));
        assert_eq!(
            code(json!({"Path": deep})).await,
            "HierarchyLevelLimitExceededException"
        );
        let ok15 = format!("/{}", vec!["l"; 15].join("/"));
        assert!(
            get_parameters_by_path(&fx.ctx(&admin), &json!({"Path": ok15}))
                .await
                .is_ok()
        );
        assert_eq!(
            code(json!({"Path": "/a", "MaxResults": 11})).await,
            "ValidationException"
        );
        assert_eq!(
            code(json!({"Path": "/a", "MaxResults": 0})).await,
            "ValidationException"
        );
        assert_eq!(
            code(json!({"Path": "/a", "NextToken": "garbage!"})).await,
            "InvalidNextToken"
        );
        assert_eq!(
            code(json!({"Path": "/a", "NextToken": "e30"})).await,
            "InvalidNextToken"
        );
        assert_eq!(code(json!({"Path": 7})).await, "SerializationException");
    }

    #[tokio::test]
    async fn plain_names_live_under_the_root() {
        let fx = Fixture::new();
        let admin = admin();
        for n in ["/a/b", "/foo", "foo", "zed"] {
            fx.put(n, "v").await;
        }
        let (got, _) = by_path_all(&fx, &admin, json!({"Path": "/"})).await;
        assert_eq!(got, vec!["/foo", "foo", "zed"]);
        let (got, _) = by_path_all(&fx, &admin, json!({"Path": "/", "Recursive": true})).await;
        assert_eq!(got, vec!["/a/b", "/foo", "foo", "zed"]);
    }

    #[tokio::test]
    async fn a_restricted_caller_sees_only_its_path() {
        let fx = Fixture::new();
        for n in [
            "/app/dev/a",
            "/app/dev/b",
            "/app/dev/secret-1",
            "/app/dev/x/y",
            "/app/prod/a",
        ] {
            fx.put(n, "v").await;
        }
        let dev = caller(
            r#"{"Statement":[
                {"Effect":"Allow","Action":["ssm:GetParametersByPath","ssm:DescribeParameters"],"Resource":"arn:aws:ssm:*:*:parameter/app/dev/*"},
                {"Effect":"Deny","Action":"ssm:GetParametersByPath","Resource":"arn:aws:ssm:*:*:parameter/app/dev/secret*"}]}"#,
        );
        let (got, _) = by_path_all(&fx, &dev, json!({"Path": "/app/dev", "Recursive": true})).await;
        assert_eq!(got, vec!["/app/dev/a", "/app/dev/b", "/app/dev/x/y"]);
        for path in ["/app", "/app/prod", "/"] {
            let e = get_parameters_by_path(&fx.ctx(&dev), &json!({"Path": path}))
                .await
                .unwrap_err();
            assert_eq!(e.code(), "AccessDeniedException", "{path}");
        }
        // DescribeParameters lists only what the policy names.
        let got = describe_all(&fx, &dev, json!({})).await;
        assert_eq!(
            got,
            vec![
                "/app/dev/a",
                "/app/dev/b",
                "/app/dev/secret-1",
                "/app/dev/x/y"
            ]
        );

        // A policy written for SSM (the bare path ARN) works too.
        let bare = caller(
            r#"{"Statement":[
                {"Effect":"Allow","Action":"ssm:GetParametersByPath","Resource":["arn:aws:ssm:*:*:parameter/app/prod","arn:aws:ssm:*:*:parameter/app/prod/*"]}]}"#,
        );
        let (got, _) = by_path_all(&fx, &bare, json!({"Path": "/app/prod"})).await;
        assert_eq!(got, vec!["/app/prod/a"]);
    }

    #[tokio::test]
    async fn describe_pages_through_everything() {
        let fx = Fixture::new();
        let admin = admin();
        let (direct, nested) = tree(&fx).await;
        let mut want = direct.clone();
        want.extend(nested.clone());
        want.push("/apple".into());
        want.push("/other/x".into());
        let want = sorted(want);
        assert_eq!(describe_all(&fx, &admin, json!({})).await, want);
        assert_eq!(
            describe_all(&fx, &admin, json!({"MaxResults": 7})).await,
            want
        );
        let first = describe_parameters(&fx.ctx(&admin), &json!({}))
            .await
            .unwrap();
        // SSM's default page is 10, with a NextToken.
        assert_eq!(first["Parameters"].as_array().unwrap().len(), 10);
        assert!(first["NextToken"].is_string());
        let most = describe_parameters(&fx.ctx(&admin), &json!({"MaxResults": 50}))
            .await
            .unwrap();
        assert_eq!(most["Parameters"].as_array().unwrap().len(), 50);
        let meta = &first["Parameters"][0];
        assert!(meta.get("Value").is_none());
        assert_eq!(meta["Tier"], "Standard");

        let path = |option: &str, v: &str| json!({"ParameterFilters": [{"Key": "Path", "Option": option, "Values": [v]}]});
        assert_eq!(
            describe_all(&fx, &admin, path("OneLevel", "/app")).await,
            direct
        );
        assert_eq!(
            describe_all(&fx, &admin, path("OneLevel", "/app/sub")).await,
            nested
        );
        let mut rec = direct.clone();
        rec.extend(nested.clone());
        assert_eq!(
            describe_all(&fx, &admin, path("Recursive", "/app")).await,
            sorted(rec)
        );
        assert_eq!(
            describe_all(&fx, &admin, path("Recursive", "/")).await,
            want
        );
        let both = json!({"ParameterFilters": [
            {"Key": "Path", "Option": "Recursive", "Values": ["/app/sub", "/other"]}]});
        let mut w = nested.clone();
        w.push("/other/x".into());
        assert_eq!(describe_all(&fx, &admin, both).await, w);
    }

    #[tokio::test]
    async fn a_hierarchical_name_filter_finds_its_parameter_on_the_first_page() {
        let fx = Fixture::new();
        let admin = admin();
        // More parameters before it than one call reads when walking everything.
        for i in 0..700 {
            fx.put(&format!("/bulk/p{i:04}"), "v").await;
        }
        fx.put("/x/y/target", "v").await;
        fx.put("/x/y/target2", "v").await;
        for (option, want) in [
            ("Equals", vec!["/x/y/target"]),
            ("BeginsWith", vec!["/x/y/target", "/x/y/target2"]),
        ] {
            let body = json!({"ParameterFilters": [
                {"Key": "Name", "Option": option, "Values": ["/x/y/target"]}]});
            let page = describe_parameters(&fx.ctx(&admin), &body).await.unwrap();
            let names: Vec<&str> = page["Parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["Name"].as_str().unwrap())
                .collect();
            assert_eq!(names, want, "{option}");
        }
    }

    #[tokio::test]
    async fn describe_filters() {
        let fx = Fixture::new();
        let admin = admin();
        fx.put("/a/plain", "v").await;
        fx.put_secure("/a/secret", "s").await;
        fx.put_with("/a/adv", |v| v.tier = Tier::Advanced).await;
        fx.put_with("/a/list", |v| v.parameter_type = ParameterType::StringList)
            .await;
        fx.put("/b/tagged", "v").await;
        fx.edit_head("/b/tagged", |h| {
            h.tags.insert("env".into(), "prod".into());
        })
        .await;
        let pf = |f: Value| json!({ "ParameterFilters": [f] });
        let got = |body: Value| describe_all(&fx, &admin, body);
        assert_eq!(
            got(pf(json!({"Key": "tag:env", "Values": ["prod"]}))).await,
            vec!["/b/tagged"]
        );
        assert_eq!(
            got(pf(json!({"Key": "tag-key", "Values": ["env"]}))).await,
            vec!["/b/tagged"]
        );
        assert_eq!(
            got(pf(json!({"Key": "Tier", "Values": ["Advanced"]}))).await,
            vec!["/a/adv"]
        );
        assert_eq!(
            got(pf(
                json!({"Key": "Type", "Values": ["StringList", "SecureString"]})
            ))
            .await,
            vec!["/a/list", "/a/secret"]
        );
        assert_eq!(
            got(pf(json!({"Key": "KeyId", "Values": ["alias/aws/ssm"]}))).await,
            vec!["/a/secret"]
        );
        assert_eq!(
            got(pf(
                json!({"Key": "Name", "Option": "BeginsWith", "Values": ["/a/s"]})
            ))
            .await,
            vec!["/a/secret"]
        );
        assert_eq!(
            got(json!({"Filters": [{"Key": "Name", "Values": ["/b"]}]})).await,
            vec!["/b/tagged"]
        );
        // Two filters: both must hold.
        let two = json!({"ParameterFilters": [
            {"Key": "Path", "Option": "OneLevel", "Values": ["/a"]},
            {"Key": "Type", "Values": ["String"]}]});
        assert_eq!(got(two).await, vec!["/a/adv", "/a/plain"]);

        let code = |body: Value| {
            let fx = &fx;
            let admin = &admin;
            async move {
                describe_parameters(&fx.ctx(admin), &body)
                    .await
                    .unwrap_err()
                    .code()
            }
        };
        assert_eq!(
            code(pf(json!({"Key": "Label", "Values": ["prod"]}))).await,
            "InvalidFilterKey"
        );
        assert_eq!(code(json!({"Shared": true})).await, "ValidationException");
        assert_eq!(code(json!({"MaxResults": 51})).await, "ValidationException");
        assert_eq!(code(json!({"NextToken": "%%%"})).await, "InvalidNextToken");
        assert_eq!(
            code(json!({"Filters": [{"Key": "Name", "Values": ["/a"]}],
                        "ParameterFilters": [{"Key": "Type", "Values": ["String"]}]}))
            .await,
            "ValidationException"
        );
        assert!(
            describe_parameters(&fx.ctx(&admin), &json!({"Shared": false}))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_selective_filter_answers_short_pages_with_a_token() {
        let fx = Fixture::new();
        let admin = admin();
        for i in 0..250 {
            fx.put(&format!("/s/p{i:03}"), "v").await;
        }
        fx.put_with("/s/p999", |v| v.tier = Tier::Advanced).await;
        let body = json!({"MaxResults": 5,
            "ParameterFilters": [{"Key": "Tier", "Values": ["Advanced"]}]});
        let first = describe_parameters(&fx.ctx(&admin), &body).await.unwrap();
        // At most MAX_PAGES_PER_CALL pages of 5 were read: nothing kept yet.
        assert!(names(&first).is_empty());
        assert!(first.get("NextToken").is_some());
        assert_eq!(describe_all(&fx, &admin, body).await, vec!["/s/p999"]);
    }

    fn arb_name() -> impl Strategy<Value = String> {
        let seg = prop::sample::select(vec!["a", "b", "c", "ab", "b-1", "c.d"]);
        (prop::bool::weighted(0.9), prop::collection::vec(seg, 1..5)).prop_map(|(slash, segs)| {
            if slash {
                format!("/{}", segs.join("/"))
            } else {
                segs[0].to_string()
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// Whatever the names, page size and filter: the pages' union is the
        /// matching set, in name order, each name once.
        #[test]
        fn pages_union_is_the_matching_set(
            names_in in prop::collection::btree_set(arb_name(), 0..60),
            page in 1i64..=10,
            path in prop::sample::select(vec!["/", "/a", "/a/b", "/b", "/c.d"]),
            recursive in any::<bool>(),
            list_every in 1usize..4,
            filtered in any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let fx = Fixture::new();
                let admin = admin();
                let mut lists = BTreeSet::new();
                for (i, n) in names_in.iter().enumerate() {
                    if i % list_every == 0 {
                        fx.put_with(n, |v| v.parameter_type = ParameterType::StringList).await;
                        lists.insert(n.clone());
                    } else {
                        fx.put(n, "v").await;
                    }
                }
                let mut body = json!({"Path": path, "Recursive": recursive, "MaxResults": page});
                if filtered {
                    body["ParameterFilters"] = json!([{"Key": "Type", "Values": ["StringList"]}]);
                }
                let (got, _) = by_path_all(&fx, &admin, body).await;
                let want: Vec<String> = names_in
                    .iter()
                    .filter(|n| {
                        // One level: the path is the name less its last
                        // segment (`/` for `/a` and for `a`), spelled out
                        // here rather than asked of `parent_of`.
                        let segs: Vec<&str> = n.trim_start_matches('/').split('/').collect();
                        let parent = format!("/{}", segs[..segs.len() - 1].join("/"));
                        let under = if recursive {
                            path == "/" || n.starts_with(&format!("{path}/"))
                        } else {
                            parent == path
                        };
                        under && (!filtered || lists.contains(*n))
                    })
                    .cloned()
                    .collect();
                let unique: BTreeSet<&String> = got.iter().collect();
                prop_assert_eq!(unique.len(), got.len());
                prop_assert_eq!(got, want);
                Ok(())
            })?;
        }
    }
}
