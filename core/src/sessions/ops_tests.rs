//! The session operations over the in-memory ports.

use std::sync::Mutex;

use base64::Engine;
use serde_json::{Value, json};

use super::SessionContext;
use super::memory::{MemoryKeySealer, MemorySessionQueues, MemorySessionStore};
use super::ops;
use super::ports::SessionStore;
use super::token::SessionToken;
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::channel::{
    Downlink, NodeKey, SessionKind, SessionState, SessionUpdate,
    session_credentials_request_message,
};
use crate::documents::store::MemoryDocumentStore;
use crate::error::SsmError;
use crate::fleet::memory::{IssuedCredentials, MemoryNodes, node};
use crate::fleet::ports::NodeStore;
use crate::run_command::memory::{Mailbox, Outputs, Signer};

const T0: f64 = 1_800_000_000.0;
const NODE: &str = "mi-0123456789abcdef0";
const OTHER: &str = "mi-0000000000000000f";
const ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}"#;

struct World {
    store: MemorySessionStore,
    queues: MemorySessionQueues,
    sealer: MemoryKeySealer,
    credentials: IssuedCredentials,
    nodes: MemoryNodes,
    mailbox: Mailbox,
    signer: Signer,
    documents: MemoryDocumentStore,
    scope: ArnScope,
    node_key: NodeKey,
    now: Mutex<f64>,
}

fn caller(policy: &str) -> Caller {
    Caller {
        access_key_id: "AKST1".into(),
        user_arn: "arn:aws:iam::123456789012:user/alice".into(),
        policy: Policy::parse(policy).unwrap(),
    }
}

impl World {
    async fn new() -> Self {
        let (node_key, _) = NodeKey::generate().unwrap();
        let nodes = MemoryNodes::default();
        for id in [NODE, OTHER] {
            nodes
                .register(&node(id, &node_key.public_key_base64(), T0), "h", T0)
                .await
                .unwrap();
        }
        Self {
            store: MemorySessionStore::default(),
            queues: MemorySessionQueues::default(),
            sealer: MemoryKeySealer,
            credentials: IssuedCredentials::default(),
            nodes,
            mailbox: Mailbox::default(),
            signer: Signer::new(),
            documents: MemoryDocumentStore::new(),
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
            node_key,
            now: Mutex::new(T0 + 10.0),
        }
    }

    fn ctx<'a>(&'a self, caller: &'a Caller) -> SessionContext<'a> {
        SessionContext {
            store: &self.store,
            queues: &self.queues,
            sealer: &self.sealer,
            credentials: &self.credentials,
            nodes: &self.nodes,
            mailbox: &self.mailbox,
            signer: &self.signer,
            outputs: &Outputs,
            documents: &self.documents,
            caller,
            scope: &self.scope,
            connection_lost_seconds: 300,
            now: *self.now.lock().unwrap(),
        }
    }

    async fn call_as(&self, policy: &str, op: &str, body: Value) -> Result<Value, SsmError> {
        let c = caller(policy);
        ops::handle(&self.ctx(&c), op, &body).await.unwrap()
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, SsmError> {
        self.call_as(ALL, op, body).await
    }

    /// The downlinks sent to `node`, opened as the agent opens them.
    fn downlinks(&self) -> Vec<Downlink> {
        let verifier = self.signer.verifier();
        self.mailbox
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body)| verifier.open(body, NODE, T0 + 20.0).unwrap().message)
            .collect()
    }

    async fn report(&self, session_id: &str, from: &str, state: SessionState) {
        super::ingest::apply_update(
            &self.store,
            &self.queues,
            from,
            &SessionUpdate {
                session_id: session_id.into(),
                state,
                reason: "Exited with status 0".into(),
            },
            T0 + 30.0,
        )
        .await
        .unwrap();
    }
}

fn session_id(answer: &Value) -> String {
    answer["SessionId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_session_starts_with_its_key_only_in_the_signed_message_and_the_token() {
    let w = World::new().await;
    let a = w
        .call("StartSession", json!({"Target": NODE, "Reason": "debug"}))
        .await
        .unwrap();
    let id = session_id(&a);
    assert!(id.starts_with("alice-"), "{id}");
    let token = SessionToken::decode(a["TokenValue"].as_str().unwrap()).unwrap();
    assert_eq!(a["StreamUrl"], json!(token.receive_queue_url));
    let Downlink::StartSession(start) = &w.downlinks()[0] else {
        panic!("not a start message")
    };
    assert_eq!(start.session_id, id);
    assert_eq!(start.key.expose(), token.key.expose());
    assert_eq!(start.to_agent_queue_url, token.send_queue_url);
    assert_eq!(start.to_client_queue_url, token.receive_queue_url);
    assert_eq!(
        start.kind,
        SessionKind::Shell {
            command: None,
            interactive: true
        }
    );
    assert_eq!(start.idle_timeout_seconds, 20 * 60);
    // The record keeps the key sealed, never in clear.
    let record = w.store.get(&id).await.unwrap().unwrap();
    assert!(
        !serde_json::to_string(&record)
            .unwrap()
            .contains(token.key.expose())
    );
    assert_eq!(record.status.as_str(), "Connecting");
    // The client's credentials: receive from its queue, send to the agent's.
    let (_, policy, _) = w.credentials.issued().pop().unwrap();
    let policy: Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!(record.to_client_queue_arn)
    );
    assert_eq!(
        policy["Statement"][1]["Resource"],
        json!(record.to_agent_queue_arn)
    );
    assert_eq!(policy["Statement"][1]["Action"], json!("sqs:SendMessage"));
}

#[tokio::test]
async fn start_session_is_authorized_on_the_node_and_on_the_document() {
    let w = World::new().await;
    let only_other_node = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:StartSession","Resource":["arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-0000000000000000f","arn:aws:ssm:us-east-1:123456789012:document/SSM-SessionManagerRunShell"]}]}"#;
    let e = w
        .call_as(only_other_node, "StartSession", json!({"Target": NODE}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException");
    assert!(
        w.call_as(only_other_node, "StartSession", json!({"Target": OTHER}))
            .await
            .is_ok()
    );
    // The node is allowed but not the port-forwarding document.
    let e = w
        .call_as(
            only_other_node,
            "StartSession",
            json!({"Target": OTHER, "DocumentName": "AWS-StartPortForwardingSession"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException");
    assert!(
        e.to_string()
            .contains("document/AWS-StartPortForwardingSession")
    );
    // Refusals created nothing.
    assert_eq!(w.queues.existing.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_node_that_is_not_online_or_not_registered_is_not_connected() {
    let w = World::new().await;
    *w.now.lock().unwrap() = T0 + 10_000.0;
    for target in [NODE, "mi-00000000000000001"] {
        let e = w
            .call("StartSession", json!({"Target": target}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "TargetNotConnected");
        assert!(
            e.to_string()
                .starts_with(&format!("{target} is not connected."))
        );
        let status = w
            .call("GetConnectionStatus", json!({"Target": target}))
            .await
            .unwrap();
        assert_eq!(status["Status"], "notconnected");
    }
    assert!(w.queues.existing.lock().unwrap().is_empty());
    *w.now.lock().unwrap() = T0 + 10.0;
    let status = w
        .call("GetConnectionStatus", json!({"Target": NODE}))
        .await
        .unwrap();
    assert_eq!(status, json!({"Target": NODE, "Status": "connected"}));
}

#[tokio::test]
async fn documents_and_their_parameters_decide_what_the_agent_runs() {
    let w = World::new().await;
    w.call(
        "StartSession",
        json!({"Target": NODE, "DocumentName": "AWS-StartPortForwardingSession",
               "Parameters": {"portNumber": ["5432"], "localPortNumber": ["15432"]}}),
    )
    .await
    .unwrap();
    w.call(
        "StartSession",
        json!({"Target": NODE, "DocumentName": "AWS-StartInteractiveCommand",
               "Parameters": {"command": ["top"]}}),
    )
    .await
    .unwrap();
    let kinds: Vec<SessionKind> = w
        .downlinks()
        .into_iter()
        .map(|d| match d {
            Downlink::StartSession(s) => s.kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            SessionKind::PortForward {
                host: "localhost".into(),
                port: 5432
            },
            SessionKind::Shell {
                command: Some("top".into()),
                interactive: true
            }
        ]
    );
    for (doc, params, code) in [
        (
            "AWS-StartPortForwardingSession",
            json!({"portNumber": ["http"]}),
            "ValidationException",
        ),
        (
            "AWS-StartPortForwardingSession",
            json!({"command": ["ls"]}),
            "ValidationException",
        ),
        (
            "AWS-StartInteractiveCommand",
            json!({}),
            "ValidationException",
        ),
        (
            "AWS-StartPortForwardingSessionToRemoteHost",
            json!({"portNumber": ["80"]}),
            "ValidationException",
        ),
        ("AWS-RunShellScript", json!({}), "InvalidDocument"),
    ] {
        let e = w
            .call(
                "StartSession",
                json!({"Target": NODE, "DocumentName": doc, "Parameters": params}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), code, "{doc} {params}");
    }
    assert_eq!(w.downlinks().len(), 2);
}

#[tokio::test]
async fn terminate_asks_the_agent_and_its_report_ends_the_session_and_its_queues() {
    let w = World::new().await;
    let id = session_id(
        &w.call("StartSession", json!({"Target": NODE}))
            .await
            .unwrap(),
    );
    w.report(&id, NODE, SessionState::Connected).await;
    assert_eq!(
        w.store.get(&id).await.unwrap().unwrap().status.as_str(),
        "Connected"
    );
    let a = w
        .call("TerminateSession", json!({"SessionId": id}))
        .await
        .unwrap();
    assert_eq!(a, json!({"SessionId": id}));
    assert!(matches!(&w.downlinks()[1], Downlink::TerminateSession(t) if t.session_id == id));
    assert_eq!(
        w.store.get(&id).await.unwrap().unwrap().status.as_str(),
        "Terminating"
    );
    // Another node's report about it changes nothing.
    w.report(&id, OTHER, SessionState::Terminated).await;
    assert_eq!(
        w.store.get(&id).await.unwrap().unwrap().status.as_str(),
        "Terminating"
    );
    w.report(&id, NODE, SessionState::Terminated).await;
    w.report(&id, NODE, SessionState::Terminated).await;
    let s = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(s.status.as_str(), "Terminated");
    assert_eq!(s.details.as_deref(), Some("Exited with status 0"));
    assert!(s.queues_deleted);
    assert!(w.queues.existing.lock().unwrap().is_empty());
    // Ending it again is not an error; resuming it is.
    assert!(
        w.call("TerminateSession", json!({"SessionId": id}))
            .await
            .is_ok()
    );
    let e = w
        .call("ResumeSession", json!({"SessionId": id}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "DoesNotExistException");
}

#[tokio::test]
async fn resume_answers_the_same_key_with_fresh_credentials() {
    let w = World::new().await;
    let first = w
        .call("StartSession", json!({"Target": NODE}))
        .await
        .unwrap();
    let id = session_id(&first);
    let again = w
        .call("ResumeSession", json!({"SessionId": id}))
        .await
        .unwrap();
    let (a, b) = (
        SessionToken::decode(first["TokenValue"].as_str().unwrap()).unwrap(),
        SessionToken::decode(again["TokenValue"].as_str().unwrap()).unwrap(),
    );
    assert_eq!(a.key.expose(), b.key.expose());
    assert_eq!(w.credentials.issued().len(), 2);
    let e = w
        .call(
            "ResumeSession",
            json!({"SessionId": "alice-00000000000000000"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), "DoesNotExistException");
}

#[tokio::test]
async fn describe_lists_active_and_history_with_filters() {
    let w = World::new().await;
    let mut ids = Vec::new();
    for (i, target) in [NODE, OTHER, NODE].into_iter().enumerate() {
        *w.now.lock().unwrap() = T0 + 10.0 + i as f64;
        ids.push(session_id(
            &w.call("StartSession", json!({"Target": target}))
                .await
                .unwrap(),
        ));
    }
    w.report(&ids[0], NODE, SessionState::Terminated).await;
    let active = w
        .call("DescribeSessions", json!({"State": "Active"}))
        .await
        .unwrap();
    let listed: Vec<&str> = active["Sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["SessionId"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        vec![ids[2].as_str(), ids[1].as_str()],
        "newest first"
    );
    let history = w
        .call("DescribeSessions", json!({"State": "History"}))
        .await
        .unwrap();
    assert_eq!(history["Sessions"][0]["SessionId"], json!(ids[0]));
    assert_eq!(history["Sessions"][0]["Status"], "Terminated");
    let by_target = w
        .call(
            "DescribeSessions",
            json!({"State": "Active", "Filters": [{"key": "Target", "value": OTHER}]}),
        )
        .await
        .unwrap();
    assert_eq!(by_target["Sessions"].as_array().unwrap().len(), 1);
    let paged = w
        .call(
            "DescribeSessions",
            json!({"State": "Active", "MaxResults": 1}),
        )
        .await
        .unwrap();
    assert_eq!(paged["Sessions"][0]["SessionId"], json!(ids[2]));
    let next = w
        .call(
            "DescribeSessions",
            json!({"State": "Active", "MaxResults": 1, "NextToken": paged["NextToken"]}),
        )
        .await
        .unwrap();
    assert_eq!(next["Sessions"][0]["SessionId"], json!(ids[1]));
    for (filters, code) in [
        (json!([{"key": "Colour", "value": "x"}]), "InvalidFilterKey"),
        (
            json!([{"key": "Status", "value": "Asleep"}]),
            "InvalidFilterValue",
        ),
    ] {
        let e = w
            .call(
                "DescribeSessions",
                json!({"State": "Active", "Filters": filters}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), code);
    }
}

#[tokio::test]
async fn an_agent_gets_credentials_only_for_its_own_open_sessions() {
    let w = World::new().await;
    let id = session_id(
        &w.call("StartSession", json!({"Target": NODE}))
            .await
            .unwrap(),
    );
    let ask = |node: &str| {
        let ts = (T0 + 10.0) as i64;
        let sig = w
            .node_key
            .sign(&session_credentials_request_message(node, &id, ts));
        json!({
            "InstanceId": node,
            "SessionId": id,
            "Timestamp": ts,
            "Signature": base64::engine::general_purpose::STANDARD.encode(sig),
        })
    };
    let now = T0 + 10.0;
    let ok = ops::agent_credentials::session_credentials(
        &w.nodes,
        &w.store,
        &w.credentials,
        &ask(NODE),
        now,
    )
    .await
    .unwrap();
    assert!(
        ok["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("ASIAagent-")
    );
    let record = w.store.get(&id).await.unwrap().unwrap();
    let (_, policy, _) = w.credentials.issued().pop().unwrap();
    let policy: Value = serde_json::from_str(&policy).unwrap();
    assert_eq!(
        policy["Statement"][0]["Resource"],
        json!(record.to_agent_queue_arn)
    );
    assert_eq!(
        policy["Statement"][1]["Resource"],
        json!(record.to_client_queue_arn)
    );
    // The other node (same key in this world, so its signature verifies)
    // is refused: the session is not its own.
    let e = ops::agent_credentials::session_credentials(
        &w.nodes,
        &w.store,
        &w.credentials,
        &ask(OTHER),
        now,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "DoesNotExistException");
    // A forged signature is refused.
    let mut forged = ask(NODE);
    forged["Timestamp"] = json!((T0 + 11.0) as i64);
    let e = ops::agent_credentials::session_credentials(
        &w.nodes,
        &w.store,
        &w.credentials,
        &forged,
        now,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
}
