//! Parameter Store's write and read operations against the in-memory store,
//! a fake KMS and a recording event sink.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::context::ParameterContext;
use super::events::of_parameter_change;
use super::memory::{MemoryDataKeys, MemoryParameterStore};
use super::model::{Parameter, ParameterVersion};
use super::name::{self, MAX_ARN_LENGTH, parent_of};
use super::ports::ParameterStore;
use super::secrets::Sealer;
use super::{delete, get, history, labeling, put, tagging};
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::error::SsmError;
use crate::events::EventSink;

const NOW: f64 = 1_700_000_000.0;
const SECRET: &str = "hunter2-very-secret";

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<(String, Vec<String>, Value)>>,
    fail: AtomicBool,
}

#[async_trait]
impl EventSink for Recorder {
    async fn publish(
        &self,
        detail_type: &str,
        resources: Vec<String>,
        detail: Value,
    ) -> Result<(), SsmError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(SsmError::internal());
        }
        self.events
            .lock()
            .unwrap()
            .push((detail_type.to_string(), resources, detail));
        Ok(())
    }
}

/// A store that refuses the first `refuse` conditional writes, as if another
/// writer got there first each time.
struct Contended {
    inner: MemoryParameterStore,
    refuse: AtomicUsize,
}

#[async_trait]
impl ParameterStore for Contended {
    async fn get(&self, name: &str) -> Result<Option<Parameter>, SsmError> {
        self.inner.get(name).await
    }
    async fn get_many(&self, names: &[String]) -> Result<Vec<Parameter>, SsmError> {
        self.inner.get_many(names).await
    }
    async fn get_version(&self, n: &str, v: u64) -> Result<Option<ParameterVersion>, SsmError> {
        self.inner.get_version(n, v).await
    }
    async fn versions(
        &self,
        n: &str,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<ParameterVersion>, SsmError> {
        self.inner.versions(n, from, to, limit).await
    }
    async fn put_version(
        &self,
        next: &Parameter,
        expected: Option<u64>,
        drop: Option<u64>,
    ) -> Result<bool, SsmError> {
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(false);
        }
        self.inner.put_version(next, expected, drop).await
    }
    async fn update(
        &self,
        next: &Parameter,
        expected: u64,
        versions: &[ParameterVersion],
    ) -> Result<bool, SsmError> {
        self.inner.update(next, expected, versions).await
    }
    async fn delete(&self, head: &Parameter, expected: u64) -> Result<bool, SsmError> {
        self.inner.delete(head, expected).await
    }
    async fn list_by_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError> {
        self.inner.list_by_prefix(prefix, after, limit).await
    }
    async fn list_children(
        &self,
        parent: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Parameter>, bool), SsmError> {
        self.inner.list_children(parent, after, limit).await
    }
    async fn due(&self, now: f64, limit: usize) -> Result<Vec<Parameter>, SsmError> {
        self.inner.due(now, limit).await
    }
}

fn caller(policy: &str) -> Caller {
    Caller {
        access_key_id: "AKIDTEST".into(),
        user_arn: "arn:aws:iam::123456789012:user/alice".into(),
        policy: Policy::parse(policy).unwrap(),
    }
}

fn admin() -> Caller {
    caller(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
}

struct Env {
    store: Contended,
    sealer: Sealer,
    events: Recorder,
    /// The change events the table's stream carried so far.
    streamed: Mutex<Vec<(String, Vec<String>, Value)>>,
    caller: Caller,
    scope: ArnScope,
}

impl Env {
    fn new() -> Self {
        Self {
            store: Contended {
                inner: MemoryParameterStore::new(),
                refuse: AtomicUsize::new(0),
            },
            sealer: Sealer::new(
                Box::new(MemoryDataKeys::default()),
                Duration::from_secs(300),
                16,
            ),
            events: Recorder::default(),
            streamed: Mutex::default(),
            caller: admin(),
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        }
    }

    fn ctx_as<'a>(&'a self, caller: &'a Caller) -> ParameterContext<'a> {
        ParameterContext {
            store: &self.store,
            sealer: &self.sealer,
            caller,
            scope: &self.scope,
            default_key_id: "stack-key",
            now: NOW,
        }
    }

    fn ctx(&self) -> ParameterContext<'_> {
        self.ctx_as(&self.caller)
    }

    fn arn(&self, name: &str) -> String {
        self.scope.parameter_arn(name)
    }

    async fn put(&self, body: Value) -> Result<Value, SsmError> {
        put::put_parameter(&self.ctx(), &body).await
    }

    async fn put_ok(&self, name: &str, value: &str) -> u64 {
        let body = json!({"Name": name, "Value": value, "Type": "String", "Overwrite": true});
        self.put(body).await.unwrap()["Version"].as_u64().unwrap()
    }

    async fn get(&self, name: &str, decrypt: bool) -> Result<Value, SsmError> {
        get::get_parameter(
            &self.ctx(),
            &json!({"Name": name, "WithDecryption": decrypt}),
        )
        .await
    }

    async fn label(&self, body: Value) -> Result<Value, SsmError> {
        labeling::label_parameter_version(&self.ctx(), &body).await
    }

    async fn history(&self, body: Value) -> Result<Value, SsmError> {
        history::get_parameter_history(&self.ctx(), &body).await
    }

    /// The events published so far: the stream's (every head change, as
    /// the change-events function derives them), then the writers' own.
    fn events(&self) -> Vec<(String, Vec<String>, Value)> {
        let mut streamed = self.streamed.lock().unwrap();
        for (old, new) in self.store.inner.take_changes() {
            streamed.extend(
                of_parameter_change(old.as_ref(), new.as_ref(), &self.scope)
                    .into_iter()
                    .map(|e| (e.detail_type.to_string(), e.resources, e.detail)),
            );
        }
        let mut all = streamed.clone();
        all.extend(self.events.events.lock().unwrap().iter().cloned());
        all
    }

    /// Every head and every stored version item, as one string.
    async fn snapshot(&self) -> String {
        let (heads, _) = self.store.list_by_prefix("", None, 10_000).await.unwrap();
        let mut out = serde_json::to_string(&heads).unwrap();
        for h in &heads {
            let vs = self
                .store
                .versions(h.name(), 0, u64::MAX, 10_000)
                .await
                .unwrap();
            out.push_str(&serde_json::to_string(&vs).unwrap());
        }
        out
    }

    /// Asserts `f` fails with `code` and changes nothing (store nor events).
    async fn refused<F: std::future::Future<Output = Result<Value, SsmError>>>(
        &self,
        code: &str,
        f: F,
    ) -> SsmError {
        let before = self.snapshot().await;
        let events = self.events().len();
        let err = f.await.expect_err("expected an error");
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(self.snapshot().await, before, "the store changed");
        assert_eq!(self.events().len(), events, "an event was published");
        err
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, SsmError>) -> &'static str {
    r.unwrap_err().code()
}

// ------------------------------------------------------------------ put/get

#[tokio::test]
async fn put_creates_and_get_reads_it_back() {
    let env = Env::new();
    let r = env
        .put(json!({"Name": "/app/db/url", "Value": "postgres://x", "Type": "String", "Description": "db"}))
        .await
        .unwrap();
    assert_eq!(r, json!({"Version": 1, "Tier": "Standard"}));
    let p = env.get("/app/db/url", false).await.unwrap()["Parameter"].clone();
    assert_eq!(p["Name"], "/app/db/url");
    assert_eq!(p["Type"], "String");
    assert_eq!(p["Value"], "postgres://x");
    assert_eq!(p["Version"], 1);
    assert_eq!(p["DataType"], "text");
    assert_eq!(p["LastModifiedDate"], NOW);
    assert_eq!(
        p["ARN"],
        "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/url"
    );
    assert!(p.get("Selector").is_none());
    let ev = env.events();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, "Parameter Store Change");
    assert_eq!(ev[0].1, vec![env.arn("/app/db/url")]);
    assert_eq!(
        ev[0].2,
        json!({"operation": "Create", "name": "/app/db/url", "type": "String", "description": "db"})
    );
    // The ARN works as a name too.
    let by_arn = env.get(&env.arn("/app/db/url"), false).await.unwrap();
    assert_eq!(by_arn["Parameter"]["Name"], "/app/db/url");
    assert_eq!(code(env.get("/app/nope", false).await), "ParameterNotFound");
}

#[tokio::test]
async fn overwrite_rules() {
    let env = Env::new();
    env.put(json!({"Name": "p", "Value": "1", "Type": "String", "Description": "d", "AllowedPattern": "^[0-9]+$"}))
        .await
        .unwrap();
    env.refused(
        "ParameterAlreadyExists",
        env.put(json!({"Name": "p", "Value": "2", "Type": "String"})),
    )
    .await;
    let r = env
        .put(json!({"Name": "p", "Value": "2", "Overwrite": true}))
        .await
        .unwrap();
    assert_eq!(r["Version"], 2);
    // Description and AllowedPattern carry over when not given.
    let h = env.history(json!({"Name": "p"})).await.unwrap();
    let latest = &h["Parameters"][1];
    assert_eq!(latest["Description"], "d");
    assert_eq!(latest["AllowedPattern"], "^[0-9]+$");
    assert_eq!(
        latest["LastModifiedUser"],
        "arn:aws:iam::123456789012:user/alice"
    );
    // ...and the kept pattern still applies.
    env.refused(
        "ParameterPatternMismatchException",
        env.put(json!({"Name": "p", "Value": "abc", "Overwrite": true})),
    )
    .await;
    env.refused(
        "HierarchyTypeMismatchException",
        env.put(json!({"Name": "p", "Value": "3", "Type": "StringList", "Overwrite": true})),
    )
    .await;
    env.refused(
        "ValidationException",
        env.put(json!({"Name": "p", "Value": "3", "Overwrite": true, "Tags": [{"Key": "k", "Value": "v"}]})),
    )
    .await;
    let ev = env.events();
    assert_eq!(ev.last().unwrap().2["operation"], "Update");
}

#[tokio::test]
async fn bad_requests_change_nothing() {
    let env = Env::new();
    env.put_ok("/app/x", "1").await;
    let cases = [
        (
            json!({"Name": "/app/new", "Value": "v"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Type": "String"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "", "Type": "String"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "Nope"}),
            "UnsupportedParameterType",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "KeyId": "stack-key"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "DataType": "aws:ec2:image"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "DataType": "TEXT"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "Tier": "Gold"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "AllowedPattern": "(["}),
            "InvalidAllowedPatternException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "AllowedPattern": "^[0-9]+$"}),
            "ParameterPatternMismatchException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "Tags": [{"Key": "aws:x", "Value": "v"}]}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "Description": "d".repeat(1025)}),
            "ValidationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "SecureString", "KeyId": "nope"}),
            "InvalidKeyId",
        ),
        (
            json!({"Name": "/app/new", "Value": 5, "Type": "String"}),
            "SerializationException",
        ),
        (
            json!({"Name": "/app/new", "Value": "v", "Type": "String", "Policies": "[{\"Type\":\"Nope\",\"Version\":\"1.0\",\"Attributes\":{}}]", "Tier": "Advanced"}),
            "InvalidPolicyTypeException",
        ),
    ];
    for (body, want) in cases {
        let err = env.refused(want, env.put(body.clone())).await;
        assert!(!err.to_string().is_empty(), "{body}");
    }
}

#[tokio::test]
async fn a_string_list_is_matched_as_a_whole() {
    let env = Env::new();
    let body = json!({"Name": "l", "Value": "a,b,c", "Type": "StringList", "AllowedPattern": "^[a-z]+(,[a-z]+)*$"});
    env.put(body).await.unwrap();
    assert_eq!(
        env.get("l", false).await.unwrap()["Parameter"]["Value"],
        "a,b,c"
    );
    env.refused(
        "ParameterPatternMismatchException",
        env.put(json!({"Name": "l", "Value": "a,B", "Overwrite": true})),
    )
    .await;
}

// -------------------------------------------------------------------- names

#[tokio::test]
async fn name_edge_cases() {
    let env = Env::new();
    let levels = |n: usize| (1..=n).map(|i| format!("/l{i}")).collect::<String>();
    assert_eq!(env.put_ok(&levels(15), "v").await, 1);
    env.refused(
        "HierarchyLevelLimitExceededException",
        env.put(json!({"Name": levels(16), "Value": "v", "Type": "String"})),
    )
    .await;
    for (bad, want) in [
        ("awsx", "ValidationException"),
        ("SSMx", "ValidationException"),
        ("/awsx", "ValidationException"),
        ("/ssm/x", "ValidationException"),
        ("/Ssm-things/x", "ValidationException"),
        ("/aws/x", "AccessDeniedException"),
        ("/AWSfoo/x", "AccessDeniedException"),
        ("a b", "ValidationException"),
        ("a$b", "ValidationException"),
        ("/a/b:c", "ValidationException"),
        ("/a//b", "ValidationException"),
        ("/a/", "ValidationException"),
        ("/", "ValidationException"),
        ("a/b", "ValidationException"),
        ("é", "ValidationException"),
    ] {
        env.refused(
            want,
            env.put(json!({"Name": bad, "Value": "v", "Type": "String"})),
        )
        .await;
    }
    // A segment merely containing aws/ssm later is fine.
    env.put_ok("/app/aws/ssm", "v").await;
    env.put_ok("myaws", "v").await;
    // The ARN may have 1011 characters, not one more.
    let prefix = env.arn("").chars().count();
    let at_limit = format!("/{}", "a".repeat(MAX_ARN_LENGTH - prefix));
    assert_eq!(env.arn(&at_limit).chars().count(), MAX_ARN_LENGTH);
    env.put_ok(&at_limit, "v").await;
    let over = format!("/{}", "a".repeat(MAX_ARN_LENGTH - prefix + 1));
    env.refused(
        "ValidationException",
        env.put(json!({"Name": over, "Value": "v", "Type": "String"})),
    )
    .await;
}

fn segment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_.-]{1,12}".prop_filter("reserved prefix", |s| {
        let l = s.to_ascii_lowercase();
        !l.starts_with("aws") && !l.starts_with("ssm")
    })
}

proptest! {
    #[test]
    fn valid_names_pass_and_round_trip_through_their_arn(
        segs in prop::collection::vec(segment(), 2..=15),
        plain in segment(),
    ) {
        let scope = ArnScope { region: "us-east-1".into(), account: "123456789012".into() };
        let path = format!("/{}", segs.join("/"));
        prop_assert!(name::validate(&path, &scope).is_ok());
        prop_assert_eq!(scope.name_from_arn(&scope.parameter_arn(&path)), Some(path.clone()));
        prop_assert_eq!(name::levels(&path), segs.len());
        prop_assert_eq!(parent_of(&path), format!("/{}", segs[..segs.len() - 1].join("/")));
        prop_assert!(name::validate(&plain, &scope).is_ok());
        prop_assert_eq!(scope.name_from_arn(&scope.parameter_arn(&plain)), Some(plain.clone()));
    }

    #[test]
    fn a_forbidden_character_always_fails(
        segs in prop::collection::vec(segment(), 1..=5),
        bad in any::<char>().prop_filter("forbidden", |c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c))),
        at in any::<prop::sample::Index>(),
    ) {
        let scope = ArnScope { region: "us-east-1".into(), account: "123456789012".into() };
        let mut chars: Vec<char> = format!("/{}", segs.join("/")).chars().collect();
        let i = at.index(chars.len() + 1);
        chars.insert(i, bad);
        let name: String = chars.into_iter().collect();
        prop_assert_eq!(name::validate(&name, &scope).unwrap_err().code(), "ValidationException");
    }
}

// ----------------------------------------------------------------- versions

#[tokio::test]
async fn the_101st_version_drops_the_oldest() {
    let env = Env::new();
    for i in 1..=100u64 {
        assert_eq!(env.put_ok("/v", &i.to_string()).await, i);
    }
    assert_eq!(env.store.inner.stored_versions("/v"), 100);
    assert_eq!(env.put_ok("/v", "101").await, 101);
    assert_eq!(env.store.inner.stored_versions("/v"), 100);
    assert_eq!(
        code(env.get("/v:1", false).await),
        "ParameterVersionNotFound"
    );
    assert_eq!(
        env.get("/v:2", false).await.unwrap()["Parameter"]["Value"],
        "2"
    );
    let h = env.history(json!({"Name": "/v"})).await.unwrap();
    assert_eq!(h["Parameters"][0]["Version"], 2);
    assert_eq!(h["Parameters"].as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn the_101st_version_is_refused_while_the_oldest_is_labelled() {
    let env = Env::new();
    for i in 1..=100u64 {
        env.put_ok("/v", &i.to_string()).await;
    }
    env.label(json!({"Name": "/v", "ParameterVersion": 1, "Labels": ["keep"]}))
        .await
        .unwrap();
    env.refused(
        "ParameterMaxVersionLimitExceeded",
        env.put(json!({"Name": "/v", "Value": "101", "Overwrite": true})),
    )
    .await;
    // Moving the label away lets the write through.
    env.label(json!({"Name": "/v", "ParameterVersion": 50, "Labels": ["keep"]}))
        .await
        .unwrap();
    assert_eq!(env.put_ok("/v", "101").await, 101);
}

// ------------------------------------------------------------------- labels

#[tokio::test]
async fn labels_select_move_and_are_limited() {
    let env = Env::new();
    env.put_ok("/l", "one").await;
    env.put_ok("/l", "two").await;
    let r = env
        .label(json!({"Name": "/l", "ParameterVersion": 1, "Labels": ["prod", "1bad", "awsx", "SSM-y"]}))
        .await
        .unwrap();
    assert_eq!(
        r,
        json!({"InvalidLabels": ["1bad", "awsx", "SSM-y"], "ParameterVersion": 1})
    );
    let p = env.get("/l:prod", false).await.unwrap()["Parameter"].clone();
    assert_eq!(
        (p["Value"].clone(), p["Selector"].clone()),
        (json!("one"), json!(":prod"))
    );
    assert_eq!(
        env.get("/l:2", false).await.unwrap()["Parameter"]["Selector"],
        ":2"
    );
    let ev = env.events();
    assert_eq!(ev.last().unwrap().2["operation"], "LabelParameterVersion");
    // Labelling the latest by default moves the label.
    let r = env
        .label(json!({"Name": "/l", "Labels": ["prod"]}))
        .await
        .unwrap();
    assert_eq!(r["ParameterVersion"], 2);
    assert_eq!(
        env.get("/l:prod", false).await.unwrap()["Parameter"]["Value"],
        "two"
    );
    let h = env.history(json!({"Name": "/l"})).await.unwrap();
    assert_eq!(h["Parameters"][0]["Labels"], json!([]));
    assert_eq!(h["Parameters"][1]["Labels"], json!(["prod"]));
    // The latest version overwritten keeps its labels on version 2.
    env.put_ok("/l", "three").await;
    assert_eq!(
        env.get("/l:prod", false).await.unwrap()["Parameter"]["Version"],
        2
    );
    assert_eq!(
        code(env.get("/l:nolabel", false).await),
        "ParameterVersionNotFound"
    );
    assert_eq!(
        code(env.get("/l:9", false).await),
        "ParameterVersionNotFound"
    );
    // Ten labels fit on a version; the eleventh is refused, nothing applied.
    let nine: Vec<String> = (1..=9).map(|i| format!("l{i}")).collect();
    env.label(json!({"Name": "/l", "ParameterVersion": 2, "Labels": nine}))
        .await
        .unwrap();
    env.refused(
        "ParameterVersionLabelLimitExceeded",
        env.label(json!({"Name": "/l", "ParameterVersion": 2, "Labels": ["eleven"]})),
    )
    .await;
    env.refused(
        "ParameterVersionNotFound",
        env.label(json!({"Name": "/l", "ParameterVersion": 7, "Labels": ["x"]})),
    )
    .await;
    env.refused(
        "ParameterNotFound",
        env.label(json!({"Name": "/none", "Labels": ["x"]})),
    )
    .await;
    env.refused(
        "ValidationException",
        env.label(json!({"Name": "/l", "Labels": ["x".repeat(101)]})),
    )
    .await;
    // Unlabel.
    let r = labeling::unlabel_parameter_version(
        &env.ctx(),
        &json!({"Name": "/l", "ParameterVersion": 2, "Labels": ["prod", "other"]}),
    )
    .await
    .unwrap();
    assert_eq!(
        r,
        json!({"RemovedLabels": ["prod"], "InvalidLabels": ["other"]})
    );
    assert_eq!(
        code(env.get("/l:prod", false).await),
        "ParameterVersionNotFound"
    );
    let h = env.history(json!({"Name": "/l"})).await.unwrap();
    assert!(
        !h["Parameters"][1]["Labels"]
            .as_array()
            .unwrap()
            .contains(&json!("prod"))
    );
    env.label(json!({"Name": "/l", "ParameterVersion": 2, "Labels": ["eleven"]}))
        .await
        .unwrap();
}

#[tokio::test]
async fn labelling_the_latest_shows_on_the_head_too() {
    let env = Env::new();
    env.put_ok("/h", "1").await;
    env.label(json!({"Name": "/h", "Labels": ["live"]}))
        .await
        .unwrap();
    let head = env.store.get("/h").await.unwrap().unwrap();
    assert!(head.current.labels.contains("live"));
    assert_eq!(head.labels.get("live"), Some(&1));
    let item = env.store.get_version("/h", 1).await.unwrap().unwrap();
    assert!(item.labels.contains("live"));
}

// -------------------------------------------------------------------- tiers

#[tokio::test]
async fn tiers_and_their_limits() {
    let env = Env::new();
    let put = |name: &str, n: usize, tier: Option<&str>, overwrite: bool| {
        let mut b =
            json!({"Name": name, "Value": "x".repeat(n), "Type": "String", "Overwrite": overwrite});
        if let Some(t) = tier {
            b["Tier"] = json!(t);
        }
        b
    };
    assert_eq!(
        env.put(put("/s", 4096, None, false)).await.unwrap()["Tier"],
        "Standard"
    );
    let e = env
        .refused(
            "ValidationException",
            env.put(put("/s2", 4097, None, false)),
        )
        .await;
    assert!(e.to_string().contains("4096"));
    assert_eq!(
        env.put(put("/a", 8192, Some("Advanced"), false))
            .await
            .unwrap()["Tier"],
        "Advanced"
    );
    env.refused(
        "ValidationException",
        env.put(put("/a2", 8193, Some("Advanced"), false)),
    )
    .await;
    assert_eq!(
        env.put(put("/it", 4097, Some("Intelligent-Tiering"), false))
            .await
            .unwrap()["Tier"],
        "Advanced"
    );
    assert_eq!(
        env.put(put("/it2", 10, Some("Intelligent-Tiering"), false))
            .await
            .unwrap()["Tier"],
        "Standard"
    );
    // No downgrade; an overwrite without Tier, or with Intelligent-Tiering, stays Advanced.
    env.refused(
        "ValidationException",
        env.put(put("/a", 10, Some("Standard"), true)),
    )
    .await;
    assert_eq!(
        env.put(put("/a", 10, None, true)).await.unwrap()["Tier"],
        "Advanced"
    );
    assert_eq!(
        env.put(put("/a", 10, Some("Intelligent-Tiering"), true))
            .await
            .unwrap()["Tier"],
        "Advanced"
    );
    // Standard → Advanced is an upgrade, allowed.
    assert_eq!(
        env.put(put("/s", 5000, Some("Advanced"), true))
            .await
            .unwrap()["Tier"],
        "Advanced"
    );
}

#[tokio::test]
async fn policies_need_the_advanced_tier_and_carry_over() {
    let env = Env::new();
    let policies = r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2040-01-01T00:00:00Z"}}]"#;
    env.refused(
        "ValidationException",
        env.put(json!({"Name": "/p", "Value": "v", "Type": "String", "Policies": policies})),
    )
    .await;
    let r = env
        .put(json!({"Name": "/p", "Value": "v", "Type": "String", "Policies": policies, "Tier": "Intelligent-Tiering"}))
        .await
        .unwrap();
    assert_eq!(r["Tier"], "Advanced");
    let head = env.store.get("/p").await.unwrap().unwrap();
    assert_eq!(head.current.policies.len(), 1);
    assert!(head.policy_due.is_some());
    env.put_ok("/p", "w").await;
    let h = env.history(json!({"Name": "/p"})).await.unwrap();
    assert_eq!(
        h["Parameters"][1]["Policies"][0]["PolicyType"],
        "Expiration"
    );
    assert_eq!(h["Parameters"][1]["Policies"][0]["PolicyStatus"], "Pending");
    // An empty array removes them.
    env.put(json!({"Name": "/p", "Value": "x", "Overwrite": true, "Policies": "[]"}))
        .await
        .unwrap();
    let head = env.store.get("/p").await.unwrap().unwrap();
    assert!(head.current.policies.is_empty());
    assert_eq!(head.policy_due, None);
}

// ------------------------------------------------------------ SecureString

#[tokio::test]
async fn secure_strings_are_sealed_and_opened_only_with_decryption() {
    let env = Env::new();
    env.put(json!({"Name": "/s/pw", "Value": SECRET, "Type": "SecureString", "Description": "pw"}))
        .await
        .unwrap();
    let sealed = env.get("/s/pw", false).await.unwrap()["Parameter"]["Value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!sealed.contains(SECRET));
    assert!(Sealer::key_arn(&sealed).unwrap().ends_with("key/stack-key"));
    let open = env.get("/s/pw", true).await.unwrap();
    assert_eq!(open["Parameter"]["Value"], SECRET);
    let h = env.history(json!({"Name": "/s/pw"})).await.unwrap();
    // Sealed with the stack's key, reported as SSM's default key.
    assert_eq!(h["Parameters"][0]["KeyId"], "alias/aws/ssm");
    assert_ne!(h["Parameters"][0]["Value"], SECRET);
    let h = env
        .history(json!({"Name": "/s/pw", "WithDecryption": true}))
        .await
        .unwrap();
    assert_eq!(h["Parameters"][0]["Value"], SECRET);
    // An overwrite keeps the key; another key can be named.
    env.put(json!({"Name": "/s/pw", "Value": "second", "Overwrite": true, "KeyId": "other-key"}))
        .await
        .unwrap();
    let v2 = env.get("/s/pw:2", false).await.unwrap()["Parameter"]["Value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(Sealer::key_arn(&v2).unwrap().ends_with("key/other-key"));
    assert_eq!(
        env.get("/s/pw:1", true).await.unwrap()["Parameter"]["Value"],
        SECRET
    );
    // Nothing stored or published holds the plaintext.
    assert!(!env.snapshot().await.contains(SECRET));
    assert!(!format!("{:?}", env.events()).contains(SECRET));
    // Decryption needs kms:Decrypt on the key.
    let no_kms = caller(r#"{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}"#);
    let ctx = env.ctx_as(&no_kms);
    let body = json!({"Name": "/s/pw", "WithDecryption": true});
    let err = get::get_parameter(&ctx, &body).await.unwrap_err();
    assert_eq!(err.code(), "AccessDeniedException");
    assert!(!err.to_string().contains(SECRET));
    get::get_parameter(&ctx, &json!({"Name": "/s/pw"}))
        .await
        .unwrap();
}

#[tokio::test]
async fn errors_never_echo_a_value() {
    let env = Env::new();
    for (body, want) in [
        (
            json!({"Name": "/e", "Value": SECRET, "Type": "SecureString", "AllowedPattern": "^[0-9]+$"}),
            "ParameterPatternMismatchException",
        ),
        (
            json!({"Name": "/e", "Value": SECRET.repeat(500), "Type": "SecureString"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/e", "Value": SECRET, "Type": "SecureString", "KeyId": "nope"}),
            "InvalidKeyId",
        ),
        (
            json!({"Name": "/e", "Value": [SECRET], "Type": "SecureString"}),
            "SerializationException",
        ),
        (
            json!({"Name": "/e", "Value": SECRET, "Type": "SecureString", "Overwrite": SECRET}),
            "SerializationException",
        ),
    ] {
        let err = env.put(body).await.unwrap_err();
        assert_eq!(err.code(), want, "{err}");
        assert!(!err.to_string().contains(SECRET), "{err}");
        if want == "ParameterPatternMismatchException" {
            // SSM's sentence, as its user guide shows it.
            assert_eq!(
                err.to_string(),
                "Parameter value, cannot be validated against allowedPattern: ^[0-9]+$"
            );
        }
    }
}

// ------------------------------------------------------------ GetParameters

#[tokio::test]
async fn get_parameters_reports_what_it_cannot_find() {
    let env = Env::new();
    env.put_ok("/g/a", "A").await;
    env.put_ok("/g/b", "B").await;
    env.put_ok("/g/b", "B2").await;
    let r = get::get_parameters(
        &env.ctx(),
        &json!({"Names": ["/g/a", "/g/b:1", "/g/b:7", "/g/none", "/g/a:lbl", "/g/a::", "/g/a"]}),
    )
    .await
    .unwrap();
    let values: Vec<&str> = r["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["Value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["A", "B"]);
    assert_eq!(r["Parameters"][1]["Selector"], ":1");
    assert_eq!(
        r["InvalidParameters"],
        json!(["/g/a::", "/g/b:7", "/g/none", "/g/a:lbl"])
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("/g/{i}")).collect();
    assert_eq!(
        code(get::get_parameters(&env.ctx(), &json!({"Names": eleven})).await),
        "ValidationException"
    );
    assert_eq!(
        code(get::get_parameters(&env.ctx(), &json!({"Names": []})).await),
        "ValidationException"
    );
}

// ------------------------------------------------------------------ history

#[tokio::test]
async fn history_pages_through_the_versions() {
    let env = Env::new();
    for i in 1..=5 {
        env.put_ok("/h", &format!("v{i}")).await;
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Name": "/h", "MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = env.history(body).await.unwrap();
        for p in page["Parameters"].as_array().unwrap() {
            seen.push(p["Value"].as_str().unwrap().to_string());
        }
        match page.get("NextToken") {
            Some(t) => token = Some(t.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["v1", "v2", "v3", "v4", "v5"]);
    assert_eq!(
        code(env.history(json!({"Name": "/h", "MaxResults": 51})).await),
        "ValidationException"
    );
    assert_eq!(
        code(env.history(json!({"Name": "/h", "MaxResults": 0})).await),
        "ValidationException"
    );
    assert_eq!(
        code(
            env.history(json!({"Name": "/h", "NextToken": "garbage!"}))
                .await
        ),
        "InvalidNextToken"
    );
    assert_eq!(
        code(env.history(json!({"Name": "/none"})).await),
        "ParameterNotFound"
    );
}

// ------------------------------------------------------------------- delete

#[tokio::test]
async fn delete_one_and_many() {
    let env = Env::new();
    env.put_ok("/d/a", "1").await;
    env.put_ok("/d/a", "2").await;
    env.put_ok("/d/b", "1").await;
    env.refused(
        "ParameterNotFound",
        delete::delete_parameter(&env.ctx(), &json!({"Name": "/d/none"})),
    )
    .await;
    delete::delete_parameter(&env.ctx(), &json!({"Name": "/d/a"}))
        .await
        .unwrap();
    assert_eq!(code(env.get("/d/a", false).await), "ParameterNotFound");
    assert_eq!(env.events().last().unwrap().2["operation"], "Delete");
    // The name is free again and starts over at version 1.
    assert_eq!(env.put_ok("/d/a", "new").await, 1);
    let r = delete::delete_parameters(&env.ctx(), &json!({"Names": ["/d/a", "/d/none", "/d/b"]}))
        .await
        .unwrap();
    assert_eq!(
        r,
        json!({"DeletedParameters": ["/d/a", "/d/b"], "InvalidParameters": ["/d/none"]})
    );
    let eleven: Vec<String> = (0..11).map(|i| format!("/d/{i}")).collect();
    assert_eq!(
        code(delete::delete_parameters(&env.ctx(), &json!({"Names": eleven})).await),
        "ValidationException"
    );
}

// --------------------------------------------------------------------- tags

async fn list_tags(env: &Env) -> Value {
    tagging::list_tags(
        &env.ctx(),
        &json!({"ResourceType": "Parameter", "ResourceId": "/t"}),
    )
    .await
    .unwrap()["TagList"]
        .clone()
}

#[tokio::test]
async fn tags_on_parameters() {
    let env = Env::new();
    env.put(json!({"Name": "/t", "Value": "v", "Type": "String", "Tags": [{"Key": "env", "Value": "dev"}]}))
        .await
        .unwrap();
    assert_eq!(
        list_tags(&env).await,
        json!([{"Key": "env", "Value": "dev"}])
    );
    tagging::add_tags(
        &env.ctx(),
        &json!({"ResourceType": "Parameter", "ResourceId": "/t", "Tags": [{"Key": "team", "Value": "x"}]}),
    )
    .await
    .unwrap();
    tagging::remove_tags(
        &env.ctx(),
        &json!({"ResourceType": "Parameter", "ResourceId": "/t", "TagKeys": ["env"]}),
    )
    .await
    .unwrap();
    assert_eq!(
        list_tags(&env).await,
        json!([{"Key": "team", "Value": "x"}])
    );
    // Tags survive an overwrite.
    env.put_ok("/t", "w").await;
    assert_eq!(
        list_tags(&env).await,
        json!([{"Key": "team", "Value": "x"}])
    );
    let fifty: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    env.refused(
        "TooManyTagsError",
        tagging::add_tags(
            &env.ctx(),
            &json!({"ResourceType": "Parameter", "ResourceId": "/t", "Tags": fifty}),
        ),
    )
    .await;
    env.refused(
        "InvalidResourceId",
        tagging::add_tags(
            &env.ctx(),
            &json!({"ResourceType": "Parameter", "ResourceId": "/none", "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
    )
    .await;
    assert_eq!(
        code(
            tagging::list_tags(
                &env.ctx(),
                &json!({"ResourceType": "Document", "ResourceId": "/t"})
            )
            .await
        ),
        "InvalidResourceType"
    );
}

// ----------------------------------------------------------- authorization

#[tokio::test]
async fn a_restricted_caller_is_refused_outside_its_path() {
    let env = Env::new();
    env.put_ok("/app/prod/secret", "p").await;
    env.put_ok("/app/dev/x", "d").await;
    let dev = caller(
        r#"{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"arn:aws:ssm:*:*:parameter/app/dev/*"}]}"#,
    );
    let ctx = env.ctx_as(&dev);
    let put_body = json!({"Name": "/app/prod/new", "Value": "v", "Type": "String"});
    env.refused("AccessDeniedException", put::put_parameter(&ctx, &put_body))
        .await;
    put::put_parameter(
        &ctx,
        &json!({"Name": "/app/dev/y", "Value": "v", "Type": "String"}),
    )
    .await
    .unwrap();
    assert_eq!(
        code(get::get_parameter(&ctx, &json!({"Name": "/app/prod/secret"})).await),
        "AccessDeniedException"
    );
    // One denied name refuses the whole GetParameters.
    assert_eq!(
        code(
            get::get_parameters(&ctx, &json!({"Names": ["/app/dev/x", "/app/prod/secret"]})).await
        ),
        "AccessDeniedException"
    );
    env.refused(
        "AccessDeniedException",
        delete::delete_parameters(&ctx, &json!({"Names": ["/app/dev/x", "/app/prod/secret"]})),
    )
    .await;
    env.refused(
        "AccessDeniedException",
        labeling::label_parameter_version(
            &ctx,
            &json!({"Name": "/app/prod/secret", "Labels": ["a"]}),
        ),
    )
    .await;
    env.refused(
        "AccessDeniedException",
        tagging::add_tags(
            &ctx,
            &json!({"ResourceType": "Parameter", "ResourceId": "/app/prod/secret", "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
    )
    .await;
    // A denied caller does not learn whether a name exists.
    assert_eq!(
        code(get::get_parameter(&ctx, &json!({"Name": "/app/prod/none"})).await),
        "AccessDeniedException"
    );
}

// ------------------------------------------------------------- concurrency

#[tokio::test]
async fn a_lost_race_is_retried_then_given_up() {
    let env = Env::new();
    env.store.refuse.store(2, Ordering::SeqCst);
    assert_eq!(env.put_ok("/r", "1").await, 1);
    env.store.refuse.store(put::MAX_ATTEMPTS, Ordering::SeqCst);
    env.refused(
        "TooManyUpdates",
        env.put(json!({"Name": "/r", "Value": "2", "Overwrite": true})),
    )
    .await;
}

#[tokio::test]
async fn ec2_image_values_are_checked_for_their_format() {
    let env = Env::new();
    for ok in ["ami-0123abcd", "ami-0123456789abcdef0"] {
        let name = format!("/img/{ok}");
        env.put(json!({"Name": name, "Value": ok, "Type": "String", "DataType": "aws:ec2:image"}))
            .await
            .unwrap();
        let got = env.get(&name, false).await.unwrap();
        assert_eq!(got["Parameter"]["DataType"], "aws:ec2:image");
    }
    let before = env.snapshot().await;
    for (value, t) in [
        ("ami-XYZ", "String"),
        ("i-0123456789abcdef0", "String"),
        ("ami-0123ABCD", "String"),
        ("ami-0123abcd", "StringList"),
    ] {
        let e = env
            .put(
                json!({"Name": "/img/bad", "Value": value, "Type": t, "DataType": "aws:ec2:image"}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "ValidationException", "{value}");
    }
    let e = env
        .put(json!({"Name": "/img/bad", "Value": "x", "Type": "String", "DataType": "json"}))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "The following data type is not supported: json (Data type names are all lowercase.)"
    );
    assert_eq!(env.snapshot().await, before);
}

#[tokio::test]
async fn a_top_level_name_with_or_without_its_slash_is_one_parameter() {
    let env = Env::new();
    env.put(json!({"Name": "/solo", "Value": "one", "Type": "String"}))
        .await
        .unwrap();
    // Found whichever way it is written, under the name it was created with.
    let got = env.get("solo", false).await.unwrap();
    assert_eq!(got["Parameter"]["Value"], "one");
    assert_eq!(got["Parameter"]["Name"], "/solo");
    assert_eq!(got["Parameter"]["ARN"], env.arn("solo"));
    let before = env.snapshot().await;
    let e = env
        .put(json!({"Name": "solo", "Value": "two", "Type": "String"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ParameterAlreadyExists");
    assert_eq!(env.snapshot().await, before);
    // An overwrite through the other spelling is a new version of the same one.
    let v = env
        .put(json!({"Name": "solo", "Value": "two", "Type": "String", "Overwrite": true}))
        .await
        .unwrap();
    assert_eq!(v["Version"], 2);
    assert_eq!(
        env.get("/solo", false).await.unwrap()["Parameter"]["Value"],
        "two"
    );
    let many = get::get_parameters(&env.ctx(), &json!({"Names": ["solo", "/solo:1"]}))
        .await
        .unwrap();
    assert_eq!(many["Parameters"].as_array().unwrap().len(), 2);
    assert_eq!(many["InvalidParameters"], json!([]));
    let h = env.history(json!({"Name": "solo"})).await.unwrap();
    assert_eq!(h["Parameters"].as_array().unwrap().len(), 2);
    delete::delete_parameter(&env.ctx(), &json!({"Name": "solo"}))
        .await
        .unwrap();
    assert_eq!(
        env.get("/solo", false).await.unwrap_err().code(),
        "ParameterNotFound"
    );
    // Names in a hierarchy have one spelling only.
    assert_eq!(super::name::other_spelling("/a/b"), None);
    assert_eq!(super::name::other_spelling("a"), Some("/a".into()));
    assert_eq!(super::name::other_spelling("/a"), Some("a".into()));
}
