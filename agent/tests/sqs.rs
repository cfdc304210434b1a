//! The daemon over real SQS (LocalStack): a signed command put on a node
//! queue runs, and its reports arrive signed on an ingest queue. Queues are
//! made for the test so nothing else consumes them.

#[path = "support/wait.rs"]
mod wait;

use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use aws_sdk_sqs::config::Credentials;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use steward_agent::api::HttpClient;
use steward_agent::daemon::{Agent, AgentParts};
use steward_agent::platform::Platform;
use steward_agent::queue::{SqsIngestQueue, SqsNodeQueue, sqs_client};
use steward_core::channel::PluginStep;
use steward_core::channel::{
    Downlink, DownlinkPayload, DownlinkVerifier, InvocationUpdate, NodeKey, RunMessage,
    SignedDownlink, Uplink, open_uplink, uplink_sender,
};
use steward_core::clock::now_epoch;
use steward_core::documents::plugins::RUN_SHELL_SCRIPT as RUN_SHELL_SCRIPT_PLUGIN;
use steward_core::run_command::status::InvocationDetail;
use tokio::sync::watch;
use wait::{LIMIT, within};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: source .local/stack.env (make test does)"))
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_command_round_trips_over_sqs() {
    let endpoint = env("AWS_ENDPOINT_URL");
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let creds = Credentials::new(
        env("AWS_ACCESS_KEY_ID"),
        env("AWS_SECRET_ACCESS_KEY"),
        None,
        None,
        "test",
    );
    let client = sqs_client(&region, Some(&endpoint), creds);
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let create = |name: String| {
        let client = client.clone();
        async move {
            let made = client.create_queue().queue_name(&name).send();
            within(&format!("SQS to create {name}"), LIMIT, made)
                .await
                .unwrap()
                .unwrap()
                .queue_url
                .unwrap()
        }
    };
    let node_url = create(format!("agent-test-node-{suffix}")).await;
    let ingest_url = create(format!("agent-test-ingest-{suffix}")).await;

    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
    let (node_key, pkcs8) = NodeKey::generate().unwrap();
    let public = node_key.public_key_base64();
    let node_id = "mi-0123456789abcdef0";

    let now = now_epoch();
    let payload = DownlinkPayload {
        v: 1,
        msg_id: uuid::Uuid::new_v4().to_string(),
        node_id: node_id.into(),
        issued_at: now,
        expires_at: now + 600.0,
        message: Downlink::Run(RunMessage {
            command_id: uuid::Uuid::new_v4().to_string(),
            document_name: "AWS-RunShellScript".into(),
            document_version: "1".into(),
            steps: vec![PluginStep {
                name: RUN_SHELL_SCRIPT_PLUGIN.into(),
                action: RUN_SHELL_SCRIPT_PLUGIN.into(),
                run_command: vec!["echo over-sqs".into()],
                working_directory: String::new(),
                timeout_seconds: 60,
                patch: None,
                inventory: None,
            }],
            uploads: Vec::new(),
        }),
    };
    let bytes = serde_json::to_vec(&payload).unwrap();
    let sig = signer.sign(&rng, &bytes).unwrap();
    let body = serde_json::to_string(&SignedDownlink {
        v: 1,
        payload: B64.encode(&bytes),
        sig: B64.encode(sig.as_ref()),
        key: "test".into(),
        proof: Vec::new(),
    })
    .unwrap();
    let sent = client
        .send_message()
        .queue_url(&node_url)
        .message_body(body)
        .send();
    within("SQS to take the command", LIMIT, sent)
        .await
        .unwrap()
        .unwrap();

    let state = tempfile::tempdir().unwrap();
    let agent = Agent::new(AgentParts {
        node_id: node_id.into(),
        key: Arc::new(NodeKey::from_pkcs8(&pkcs8).unwrap()),
        verifier: DownlinkVerifier::from_der(signer.public_key().as_ref()).unwrap(),
        state_dir: state.path().to_path_buf(),
        node_queue: SqsNodeQueue {
            client: client.clone(),
            url: node_url.clone(),
        },
        ingest: SqsIngestQueue {
            client: client.clone(),
            url: ingest_url.clone(),
        },
        http: HttpClient::new(),
        platform: Platform::detect(),
        parameters: None,
        // No patch step here; were there one, it must not touch this machine.
        patch: steward_agent::patching::PatchEnv::for_root(&state.path().join("no-root")),
        // Longer than the test: `echo` ends within it, so only its final
        // report is sent, whatever the machine's speed.
        progress_grace: LIMIT * 2,
    })
    .unwrap();
    let (stop, shutdown) = watch::channel(false);
    let tasks = {
        let (a, b) = (Arc::clone(&agent), Arc::clone(&agent));
        let (s1, s2) = (shutdown.clone(), shutdown.clone());
        (
            tokio::spawn(async move { a.poll(s1).await }),
            tokio::spawn(async move { b.send_spooled(s2).await }),
        )
    };

    let mut updates = Vec::new();
    let success = within(
        "the agent's Success report on the ingest queue",
        LIMIT,
        async {
            while !updates
                .iter()
                .any(|u: &InvocationUpdate| u.detail == InvocationDetail::Success)
            {
                let out = client
                    .receive_message()
                    .queue_url(&ingest_url)
                    .wait_time_seconds(2)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .unwrap();
                for m in out.messages.unwrap_or_default() {
                    let env = uplink_sender(m.body.as_deref().unwrap()).unwrap();
                    assert_eq!(env.node_id, node_id);
                    if let Uplink::InvocationUpdate(u) = open_uplink(&env, &public).unwrap().message
                    {
                        updates.push(u);
                    }
                }
            }
        },
    )
    .await;
    stop.send(true).unwrap();
    let stopped = within("the agent's loops to stop at shutdown", LIMIT, async {
        (tasks.0.await, tasks.1.await)
    })
    .await;
    // Best effort: a queue left behind is harmless (its name is unique).
    let _ = within("SQS to delete the test queues", LIMIT, async {
        let _ = client.delete_queue().queue_url(&node_url).send().await;
        let _ = client.delete_queue().queue_url(&ingest_url).send().await;
    })
    .await;

    if let Err(overran) = success {
        panic!("{overran}; the reports that came: {updates:?}");
    }
    let (polled, sent) = stopped.unwrap();
    polled.unwrap();
    sent.unwrap();
    // A command that ends within the grace: its final report alone.
    assert_eq!(updates.len(), 1, "{updates:?}");
    let done = &updates[0];
    assert_eq!(done.detail, InvocationDetail::Success);
    assert!(done.execution_start.is_some(), "{done:?}");
    assert_eq!(done.plugins[0].stdout, "over-sqs\n");
}

/// Several reports in one SendMessageBatch: each acknowledged, each on the queue once.
#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_batch_of_reports_round_trips_over_sqs() {
    use steward_agent::queue::IngestQueue;
    let endpoint = env("AWS_ENDPOINT_URL");
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let creds = Credentials::new(
        env("AWS_ACCESS_KEY_ID"),
        env("AWS_SECRET_ACCESS_KEY"),
        None,
        None,
        "test",
    );
    let client = sqs_client(&region, Some(&endpoint), creds);
    let name = format!("agent-test-batch-{}", uuid::Uuid::new_v4().simple());
    let made = client.create_queue().queue_name(&name).send();
    let url = within("SQS to create the queue", LIMIT, made)
        .await
        .unwrap()
        .unwrap()
        .queue_url
        .unwrap();
    let ingest = SqsIngestQueue {
        client: client.clone(),
        url: url.clone(),
    };
    let bodies: Vec<String> = (0..3).map(|n| format!("report-{n}")).collect();
    let outcomes = within("SQS to take the batch", LIMIT, ingest.send_batch(bodies))
        .await
        .unwrap();
    let mut received = Vec::new();
    let drained = within("the batch's messages", LIMIT, async {
        while received.len() < 3 {
            let out = client
                .receive_message()
                .queue_url(&url)
                .wait_time_seconds(1)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            for m in out.messages.unwrap_or_default() {
                received.push(m.body.unwrap_or_default());
            }
        }
    })
    .await;
    let _ = within("SQS to delete the test queue", LIMIT, async {
        let _ = client.delete_queue().queue_url(&url).send().await;
    })
    .await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    drained.unwrap();
    received.sort();
    assert_eq!(received, vec!["report-0", "report-1", "report-2"]);
}
