use super::*;
use crate::journal::CommandState;
use crate::queue::QueueError;
use crate::queue::Received;
use crate::spool::Spool;
use crate::wait::{LIMIT, wait_until, within, written};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use steward_core::channel::PluginStep;
use steward_core::channel::{
    CancelMessage, DownlinkPayload, SignedDownlink, open_uplink, uplink_sender,
};
use steward_core::channel::{
    ChannelError, Downlink, InvocationUpdate, MessageRejected, RunMessage, StepUpload, Uplink,
};
use steward_core::documents::plugins::RUN_SHELL_SCRIPT as RUN_SHELL_SCRIPT_PLUGIN;
use steward_core::run_command::status::InvocationDetail;

const NODE: &str = "mi-0123456789abcdef0";

#[derive(Default)]
struct MemQueue {
    deleted: Mutex<Vec<String>>,
}
impl NodeQueue for MemQueue {
    async fn receive(&self) -> Result<Vec<Received>, QueueError> {
        std::future::pending().await
    }
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        lock(&self.deleted).push(receipt.to_string());
        Ok(())
    }
}

/// Refuses the first `fail_first` requests (a send or a whole batch), and
/// in the next batch the entry at `refuse_entry`; keeps what it is sent.
#[derive(Default)]
struct MemIngest {
    sent: Mutex<Vec<String>>,
    /// The size of each batch it was sent.
    batches: Mutex<Vec<usize>>,
    fail_first: AtomicUsize,
    refuse_entry: Mutex<Option<usize>>,
}
impl MemIngest {
    fn down(&self) -> bool {
        self.fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}
impl IngestQueue for MemIngest {
    async fn send(&self, body: String) -> Result<(), QueueError> {
        if self.down() {
            return Err(QueueError("ingest is down".into()));
        }
        lock(&self.sent).push(body);
        Ok(())
    }

    async fn send_batch(&self, bodies: Vec<String>) -> Vec<Result<(), QueueError>> {
        assert!(bodies.len() <= crate::queue::BATCH_MAX_ENTRIES);
        if self.down() {
            return bodies
                .iter()
                .map(|_| Err(QueueError("ingest is down".into())))
                .collect();
        }
        lock(&self.batches).push(bodies.len());
        let refuse = lock(&self.refuse_entry).take();
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| {
                if refuse == Some(i) {
                    return Err(QueueError("InternalError: entry refused".into()));
                }
                lock(&self.sent).push(body);
                Ok(())
            })
            .collect()
    }
}

struct Fixture {
    signer: EcdsaKeyPair,
    point: Vec<u8>,
    pkcs8: Vec<u8>,
    dir: tempfile::TempDir,
    parameters: Option<Arc<dyn ParameterSource>>,
    /// Where fresh output upload URLs come from (none unless a test says).
    output_urls: Option<Arc<dyn crate::api::OutputUrlSource>>,
    /// Never the machine's root: a fixture root when a test patches.
    patch: PatchEnv,
    /// Longer than any test unless a test shortens it: its commands end
    /// within it (and send only their final report) however slow the host.
    progress_grace: Duration,
}

impl Fixture {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
        let point = signer.public_key().as_ref().to_vec();
        let (_, pkcs8) = NodeKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let patch = PatchEnv::for_root(&dir.path().join("no-root"));
        Self {
            signer,
            point,
            pkcs8,
            dir,
            parameters: None,
            output_urls: None,
            patch,
            progress_grace: LIMIT * 2,
        }
    }

    fn agent(&self) -> Arc<Agent<MemQueue, MemIngest>> {
        Agent::new(AgentParts {
            node_id: NODE.into(),
            key: Arc::new(NodeKey::from_pkcs8(&self.pkcs8).unwrap()),
            verifier: DownlinkVerifier::from_der(&self.point).unwrap(),
            state_dir: self.dir.path().to_path_buf(),
            node_queue: MemQueue::default(),
            ingest: MemIngest::default(),
            http: match &self.output_urls {
                Some(source) => HttpClient::new().with_output_urls(Arc::clone(source)),
                None => HttpClient::new(),
            },
            platform: Platform::detect(),
            parameters: self.parameters.clone(),
            patch: self.patch.clone(),
            progress_grace: self.progress_grace,
        })
        .unwrap()
    }

    fn message(&self, msg_id: &str, node: &str, body: Downlink) -> Received {
        let now = now_epoch();
        let payload = DownlinkPayload {
            v: 1,
            msg_id: msg_id.into(),
            node_id: node.into(),
            issued_at: now,
            expires_at: now + 3600.0,
            message: body,
        };
        let bytes = serde_json::to_vec(&payload).unwrap();
        let sig = self.signer.sign(&SystemRandom::new(), &bytes).unwrap();
        let env = SignedDownlink {
            v: 1,
            payload: B64.encode(&bytes),
            sig: B64.encode(sig.as_ref()),
            key: "test".into(),
            proof: Vec::new(),
        };
        Received {
            message_id: format!("q-{msg_id}"),
            receipt: format!("r-{msg_id}"),
            body: serde_json::to_string(&env).unwrap(),
        }
    }

    /// The spooled reports, oldest first.
    fn reports(&self) -> Vec<Uplink> {
        Spool::peek(&self.dir.path().join("spool"))
            .unwrap()
            .into_iter()
            .map(|p| p.message)
            .collect()
    }
}

fn run(command_id: &str, lines: &[&str]) -> Downlink {
    Downlink::Run(RunMessage {
        command_id: command_id.into(),
        document_name: "AWS-RunShellScript".into(),
        document_version: "1".into(),
        steps: vec![PluginStep {
            name: RUN_SHELL_SCRIPT_PLUGIN.into(),
            action: RUN_SHELL_SCRIPT_PLUGIN.into(),
            run_command: lines.iter().map(|s| s.to_string()).collect(),
            working_directory: String::new(),
            timeout_seconds: 600,
            patch: None,
            inventory: None,
        }],
        uploads: Vec::new(),
    })
}

fn cancel(command_id: &str) -> Downlink {
    Downlink::Cancel(CancelMessage {
        command_id: command_id.into(),
    })
}

async fn idle(agent: &Arc<Agent<MemQueue, MemIngest>>) {
    wait_until("the agent's commands to finish", LIMIT, || {
        agent.running_commands() == 0
    })
    .await
    .unwrap();
}

/// Stops the agent's commands, as a shutdown does.
async fn stop_commands(agent: &Arc<Agent<MemQueue, MemIngest>>) {
    within(
        "the commands to stop for a shutdown",
        LIMIT,
        agent.stop_commands(),
    )
    .await
    .unwrap();
}

fn update(u: &Uplink) -> &InvocationUpdate {
    match u {
        Uplink::InvocationUpdate(u) => u,
        other => panic!("expected an invocation update, got {other:?}"),
    }
}

fn rejected(u: &Uplink) -> &MessageRejected {
    match u {
        Uplink::MessageRejected(r) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn a_command_runs_once_and_a_replay_is_refused() {
    let f = Fixture::new();
    let agent = f.agent();
    let m = f.message("m1", NODE, run("c1", &["echo hi"]));
    agent.handle(m.clone()).await;
    idle(&agent).await;
    agent.handle(m).await;
    idle(&agent).await;

    let reports = f.reports();
    assert_eq!(reports.len(), 2, "{reports:?}");
    let done = update(&reports[0]);
    assert_eq!(done.detail, InvocationDetail::Success);
    assert_eq!(done.response_code, 0);
    assert_eq!(done.plugins[0].stdout, "hi\n");
    let r = rejected(&reports[1]);
    assert_eq!(r.reason, ChannelError::Replayed.to_string());
    assert_eq!(r.queue_message_id, "q-m1");
    // Both deliveries are deleted.
    assert_eq!(*lock(&agent.node_queue.deleted), vec!["r-m1", "r-m1"]);
}

#[tokio::test]
async fn messages_for_another_node_or_forged_are_refused_and_not_run() {
    let f = Fixture::new();
    let agent = f.agent();
    agent
        .handle(f.message("m1", "mi-00000000000000000", run("c1", &["echo hi"])))
        .await;
    let mut forged = f.message("m2", NODE, run("c2", &["echo hi"]));
    forged.body = forged.body.replace("\"sig\":\"", "\"sig\":\"AAAA");
    agent.handle(forged).await;
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(
        rejected(&reports[0]).reason,
        ChannelError::WrongNode.to_string()
    );
    assert_eq!(
        rejected(&reports[1]).reason,
        ChannelError::BadSignature.to_string()
    );
    assert_eq!(lock(&agent.node_queue.deleted).len(), 2);
    assert!(lock(&agent.journal).command("c1").is_none());
}

#[tokio::test]
async fn a_cancel_before_the_command_means_it_never_runs() {
    let f = Fixture::new();
    let agent = f.agent();
    let marker = f.dir.path().join("ran");
    agent.handle(f.message("m1", NODE, cancel("c1"))).await;
    agent
        .handle(f.message(
            "m2",
            NODE,
            run("c1", &[&format!("touch {}", marker.display())]),
        ))
        .await;
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(update(&reports[0]).detail, InvocationDetail::Cancelled);
    assert!(!marker.exists());
}

#[tokio::test]
async fn a_command_that_ends_within_the_grace_sends_only_its_final_report() {
    let f = Fixture::new();
    let agent = f.agent();
    let before = now_epoch();
    agent
        .handle(f.message("m1", NODE, run("c1", &["echo hi", "echo err >&2"])))
        .await;
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let done = update(&reports[0]);
    assert_eq!(done.detail, InvocationDetail::Success);
    let (start, end) = (done.execution_start.unwrap(), done.execution_end.unwrap());
    assert!(before <= start && start <= end, "{done:?}");
    let step = &done.plugins[0];
    assert_eq!(step.detail, InvocationDetail::Success);
    assert!(
        step.start.unwrap() >= start && step.end.unwrap() <= end,
        "{step:?}"
    );
    assert_eq!(
        (step.stdout.as_str(), step.stderr.as_str()),
        ("hi\n", "err\n")
    );
}

#[tokio::test]
async fn a_command_still_running_after_the_grace_reports_in_progress_then_its_end() {
    let mut f = Fixture::new();
    f.progress_grace = Duration::from_millis(50);
    let agent = f.agent();
    // It runs until the test has seen In Progress: no race with the grace.
    let go = f.dir.path().join("go");
    let wait = format!("while [ ! -e {} ]; do sleep 0.02; done", go.display());
    agent
        .handle(f.message("m1", NODE, run("c1", &[&wait, "echo done"])))
        .await;
    wait_until("the In Progress report", LIMIT, || !f.reports().is_empty())
        .await
        .unwrap();
    let reports = f.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let started = update(&reports[0]);
    assert_eq!(started.detail, InvocationDetail::InProgress);
    assert!(started.plugins.is_empty() && started.execution_end.is_none());
    std::fs::write(&go, "").unwrap();
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 2, "{reports:?}");
    let done = update(&reports[1]);
    assert_eq!(done.detail, InvocationDetail::Success);
    assert_eq!(done.execution_start, started.execution_start);
    assert_eq!(done.plugins[0].stdout, "done\n");
}

#[tokio::test]
async fn a_cancel_within_the_grace_cancels_and_reports_once() {
    let f = Fixture::new();
    let agent = f.agent();
    let marker = f.dir.path().join("running");
    let script = format!("echo x > {}; sleep 300", marker.display());
    agent
        .handle(f.message("m1", NODE, run("c1", &[&script])))
        .await;
    written(&marker, LIMIT).await.unwrap();
    assert!(f.reports().is_empty(), "nothing reported within the grace");
    agent.handle(f.message("m2", NODE, cancel("c1"))).await;
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let last = update(&reports[0]);
    assert_eq!(last.detail, InvocationDetail::Cancelled);
    assert!(last.execution_start.is_some(), "{last:?}");
    assert_eq!(last.plugins[0].detail, InvocationDetail::Cancelled);
}

#[tokio::test]
async fn a_running_command_is_cancelled() {
    let mut f = Fixture::new();
    // In Progress as soon as it runs: cancelled after it.
    f.progress_grace = Duration::ZERO;
    let agent = f.agent();
    agent
        .handle(f.message("m1", NODE, run("c1", &["sleep 300"])))
        .await;
    wait_until("the command's first report (it started)", LIMIT, || {
        !f.reports().is_empty()
    })
    .await
    .unwrap();
    agent.handle(f.message("m2", NODE, cancel("c1"))).await;
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 2);
    assert_eq!(update(&reports[0]).detail, InvocationDetail::InProgress);
    let last = update(&reports[1]);
    assert_eq!(last.detail, InvocationDetail::Cancelled);
    assert_eq!(last.plugins[0].detail, InvocationDetail::Cancelled);
}

/// Cut within the grace (nothing reported yet) and after it (In Progress
/// sent): either way the restart reports it Failed and never runs it again.
#[tokio::test]
async fn a_command_cut_by_a_restart_is_reported_failed_and_not_run_again() {
    for (grace, before_restart) in [(LIMIT * 2, 0), (Duration::ZERO, 1)] {
        let mut f = Fixture::new();
        f.progress_grace = grace;
        let agent = f.agent();
        let counter = f.dir.path().join("runs-count");
        let script = [
            format!("echo x >> {}", counter.display()),
            "sleep 300".to_string(),
        ];
        let lines: Vec<&str> = script.iter().map(String::as_str).collect();
        agent.handle(f.message("m1", NODE, run("c1", &lines))).await;
        wait_until(
            "the command to run (and report, past the grace)",
            LIMIT,
            || f.reports().len() == before_restart && counter.exists(),
        )
        .await
        .unwrap();
        // Shutdown: the command is killed and nothing final is reported.
        stop_commands(&agent).await;
        let reports = f.reports();
        assert_eq!(reports.len(), before_restart, "{reports:?}");
        if let Some(r) = reports.first() {
            assert_eq!(update(r).detail, InvocationDetail::InProgress);
        }
        drop(agent);

        let agent = f.agent();
        agent.recover().unwrap();
        let reports = f.reports();
        assert_eq!(reports.len(), before_restart + 1, "{reports:?}");
        let failed = update(&reports[before_restart]);
        assert_eq!(failed.detail, InvocationDetail::Failed);
        assert_eq!(failed.response_code, -1);
        assert_eq!(failed.plugins[0].stderr, RESTARTED_STDERR);
        assert_eq!(failed.plugins[0].response_code, -1);

        // The same command delivered again (a new message) does not run.
        agent.handle(f.message("m2", NODE, run("c1", &lines))).await;
        idle(&agent).await;
        assert_eq!(f.reports().len(), before_restart + 1);
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "x\n");
        // Recovery is done once.
        agent.recover().unwrap();
        assert_eq!(f.reports().len(), before_restart + 1);
    }
}

/// Killed after spooling a command's final report and before journaling
/// it Finished: the restart keeps that report and adds no Failed, which
/// could otherwise reach the control plane first and be the one kept.
#[tokio::test]
async fn a_final_report_spooled_before_a_restart_is_the_only_one_sent() {
    let f = Fixture::new();
    let agent = f.agent();
    let now = now_epoch();
    {
        let mut journal = lock(&agent.journal);
        let plugins = [RUN_SHELL_SCRIPT_PLUGIN.to_string()];
        for id in ["c1", "c2"] {
            journal
                .record_command(id, CommandState::Started, &plugins, now)
                .unwrap();
        }
    }
    // c1's final report made it to the spool, c2's did not.
    let ended = update::ended("c1", InvocationDetail::Success, 0, now, now, Vec::new());
    agent.report(Uplink::InvocationUpdate(ended)).unwrap();
    drop(agent);

    let agent = f.agent();
    agent.recover().unwrap();
    let reports = f.reports();
    let summary: Vec<(&str, InvocationDetail)> = reports
        .iter()
        .map(|r| (update(r).command_id.as_str(), update(r).detail))
        .collect();
    assert_eq!(
        summary,
        [
            ("c1", InvocationDetail::Success),
            ("c2", InvocationDetail::Failed)
        ]
    );
    let journal = lock(&agent.journal);
    for id in ["c1", "c2"] {
        assert_eq!(journal.command(id).unwrap().state, CommandState::Finished);
    }
    drop(journal);
    agent.recover().unwrap();
    assert_eq!(f.reports().len(), 2);
}

#[tokio::test]
async fn spooled_reports_survive_an_outage_and_go_out_signed_in_order() {
    let f = Fixture::new();
    let agent = f.agent();
    for n in 0..3 {
        agent
            .report(Uplink::MessageRejected(MessageRejected {
                reason: "r".into(),
                queue_message_id: format!("q{n}"),
            }))
            .unwrap();
    }
    agent.ingest.fail_first.store(2, Ordering::SeqCst);
    let (tx, rx) = watch::channel(false);
    let sender = {
        let a = Arc::clone(&agent);
        tokio::spawn(async move { a.send_spooled(rx).await })
    };
    wait_until("the three spooled reports to be sent", LIMIT, || {
        lock(&agent.ingest.sent).len() >= 3
    })
    .await
    .unwrap();
    tx.send(true).unwrap();
    within("the sender to stop at shutdown", LIMIT, sender)
        .await
        .unwrap()
        .unwrap();
    let public = NodeKey::from_pkcs8(&f.pkcs8).unwrap().public_key_base64();
    let ids: Vec<String> = lock(&agent.ingest.sent)
        .iter()
        .map(|body| {
            let env = uplink_sender(body).unwrap();
            assert_eq!(env.node_id, NODE);
            rejected(&open_uplink(&env, &public).unwrap().message)
                .queue_message_id
                .clone()
        })
        .collect();
    assert_eq!(ids, vec!["q0", "q1", "q2"]);
    assert!(f.reports().is_empty());
}

#[tokio::test]
async fn reports_spooled_together_go_in_batches_and_only_a_refused_entry_is_resent() {
    let f = Fixture::new();
    let agent = f.agent();
    for n in 0..12 {
        agent
            .report(Uplink::MessageRejected(MessageRejected {
                reason: "r".into(),
                queue_message_id: format!("q{n}"),
            }))
            .unwrap();
    }
    *lock(&agent.ingest.refuse_entry) = Some(3);
    let (tx, rx) = watch::channel(false);
    let sender = {
        let a = Arc::clone(&agent);
        tokio::spawn(async move { a.send_spooled(rx).await })
    };
    wait_until("the spool to be empty", LIMIT, || f.reports().is_empty())
        .await
        .unwrap();
    tx.send(true).unwrap();
    within("the sender to stop at shutdown", LIMIT, sender)
        .await
        .unwrap()
        .unwrap();
    // Ten at once (SQS's most); then the refused one with the two left.
    assert_eq!(*lock(&agent.ingest.batches), vec![10, 3]);
    let public = NodeKey::from_pkcs8(&f.pkcs8).unwrap().public_key_base64();
    let ids: Vec<String> = lock(&agent.ingest.sent)
        .iter()
        .map(|body| {
            let env = uplink_sender(body).unwrap();
            rejected(&open_uplink(&env, &public).unwrap().message)
                .queue_message_id
                .clone()
        })
        .collect();
    let mut expected: Vec<String> = (0..12)
        .filter(|n| *n != 3)
        .map(|n| format!("q{n}"))
        .collect();
    expected.insert(9, "q3".into());
    assert_eq!(ids, expected, "each sent once, the refused one again");
}

/// SecureString values from a map, or a refusal.
struct Values(Result<Vec<(&'static str, &'static str)>, &'static str>);

impl ParameterSource for Values {
    fn fetch<'a>(
        &'a self,
        _command_id: &'a str,
        _names: &'a [String],
    ) -> futures::future::BoxFuture<'a, Result<HashMap<String, steward_core::secret::Secret>, String>>
    {
        let answer = self
            .0
            .clone()
            .map(|v| {
                v.into_iter()
                    .map(|(k, v)| (k.to_string(), steward_core::secret::Secret::new(v)))
                    .collect()
            })
            .map_err(str::to_string);
        Box::pin(async move { answer })
    }
}

/// Every file under `dir`, as text.
fn all_files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).to_string();
                out.push((p, text));
            }
        }
    }
    out
}

#[tokio::test]
async fn secure_values_run_masked_and_leave_no_trace_in_the_state_dir() {
    let mut f = Fixture::new();
    f.parameters = Some(Arc::new(Values(Ok(vec![("/s", "hunter2")]))));
    let agent = f.agent();
    agent
        .handle(f.message(
            "m1",
            NODE,
            run(
                "c1",
                &[
                    "echo \"secret is {{ssm-secure:/s}}\"",
                    "printf %s '{{ssm-secure:/s}}' | wc -c",
                ],
            ),
        ))
        .await;
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let done = update(&reports[0]);
    assert_eq!(done.detail, InvocationDetail::Success);
    assert_eq!(done.plugins[0].stdout, "secret is ****\n7\n");
    for (path, text) in all_files(f.dir.path()) {
        assert!(
            !text.contains("hunter2"),
            "{} holds the secret",
            path.display()
        );
    }
}

#[tokio::test]
async fn a_step_whose_secure_values_cannot_be_fetched_fails_and_does_not_run() {
    let mut f = Fixture::new();
    f.parameters = Some(Arc::new(Values(Err("AccessDeniedException: no"))));
    let agent = f.agent();
    let marker = f.dir.path().join("ran");
    let line = format!("touch {} {{{{ssm-secure:/s}}}}", marker.display());
    agent
        .handle(f.message("m1", NODE, run("c1", &[&line])))
        .await;
    idle(&agent).await;
    let reports = f.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let done = update(&reports[0]);
    assert_eq!(done.detail, InvocationDetail::Failed);
    assert_eq!(
        done.plugins[0].stderr,
        "cannot resolve {{ssm-secure:/s}}: AccessDeniedException: no"
    );
    assert!(!marker.exists());
}

// --- No SecureString value in anything the agent reports, uploads,
// keeps or logs, whatever path a step takes. ---

const MARKER: &str = "S3cr3t-MARKER-5b1f0c7e";

/// Every PUT: its path and body.
type Bodies = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Stands in for S3's presigned URLs: keeps every PUT body.
struct Puts {
    base: String,
    bodies: Bodies,
    /// The paths (with their query) of the PUTs it refused.
    refused: Arc<Mutex<Vec<String>>>,
}

/// Which PUTs (by path and query) a fake S3 refuses as S3 refuses a URL
/// whose signing credentials expired.
type Refuse = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Puts {
    async fn start() -> Self {
        Self::refusing(Arc::new(|_: &str| false)).await
    }

    async fn refusing(refuse: Refuse) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let bodies: Bodies = Arc::default();
        let kept = Arc::clone(&bodies);
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let refused_kept = Arc::clone(&refused);
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let kept = Arc::clone(&kept);
                let refuse = Arc::clone(&refuse);
                let refused = Arc::clone(&refused_kept);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        // One request: headers, then Content-Length bytes.
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            let mut chunk = [0u8; 4096];
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            let mut chunk = [0u8; 4096];
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = buf[head_end..head_end + len].to_vec();
                        buf.drain(..head_end + len);
                        let answer: &[u8] = if refuse(&path) {
                            lock(&refused).push(path);
                            EXPIRED_TOKEN
                        } else {
                            lock(&kept).push((path, body));
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        if conn.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            base,
            bodies,
            refused,
        }
    }

    fn urls(&self, command_id: &str, steps: usize) -> Vec<StepUpload> {
        (0..steps)
            .map(|i| StepUpload {
                stdout_put_url: format!("{}/{command_id}/{i}/stdout?X-Amz-Signature=x", self.base),
                stderr_put_url: format!("{}/{command_id}/{i}/stderr?X-Amz-Signature=x", self.base),
            })
            .collect()
    }

    /// The body PUT to `path`, as text.
    fn body(&self, path: &str) -> Option<String> {
        lock(&self.bodies)
            .iter()
            .rev()
            .find(|(p, _)| p.split('?').next() == Some(path))
            .map(|(_, b)| String::from_utf8_lossy(b).to_string())
    }
}

/// What S3 answers a PUT whose URL's session token has expired.
const EXPIRED_TOKEN: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/xml\r\ncontent-length: 129\r\n\r\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message></Error>";

/// Every log line the agent writes on this thread (the test runtime
/// runs the agent's tasks on it too).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).to_string()
    }
}

fn shell_step(name: &str, lines: &[&str], wd: &str, timeout: u32) -> PluginStep {
    PluginStep {
        name: name.into(),
        action: RUN_SHELL_SCRIPT_PLUGIN.into(),
        run_command: lines.iter().map(|s| s.to_string()).collect(),
        working_directory: wd.into(),
        timeout_seconds: timeout,
        patch: None,
        inventory: None,
    }
}

fn command(command_id: &str, steps: Vec<PluginStep>, puts: &Puts) -> Downlink {
    let uploads = puts.urls(command_id, steps.len());
    Downlink::Run(RunMessage {
        command_id: command_id.into(),
        document_name: "AWS-RunShellScript".into(),
        document_version: "1".into(),
        steps,
        uploads,
    })
}

/// An agent whose SecureString `/P/db/password` is [`MARKER`] (and
/// `/gone` is not answered).
fn secret_fixture() -> Fixture {
    let mut f = Fixture::new();
    f.parameters = Some(Arc::new(Values(Ok(vec![("/P/db/password", MARKER)]))));
    f
}

/// Fails the test, naming the place, if `MARKER` is in any report (as
/// sent: serialized whole), any upload, any file or file name under the
/// state directory, or any log line.
fn assert_no_marker(case: &str, f: &Fixture, puts: &Puts, logs: &Logs) -> Vec<Uplink> {
    assert_no_marker_but_names(case, f, puts, logs, false)
}

/// As [`assert_no_marker`]; with `names_as_sent`, the journal may hold
/// the step names as the signed message wrote them (journaled before any
/// value is known, and no substitution ever reaches them).
fn assert_no_marker_but_names(
    case: &str,
    f: &Fixture,
    puts: &Puts,
    logs: &Logs,
    names_as_sent: bool,
) -> Vec<Uplink> {
    let reports = f.reports();
    for r in &reports {
        let json = serde_json::to_string(r).unwrap();
        assert!(
            !json.contains(MARKER),
            "{case}: a report holds the value: {json}"
        );
    }
    for (path, body) in lock(&puts.bodies).iter() {
        let body = String::from_utf8_lossy(body);
        assert!(
            !body.contains(MARKER),
            "{case}: upload {path} holds the value: {body}"
        );
    }
    for (path, text) in all_files(f.dir.path()) {
        if names_as_sent && path.ends_with("journal/journal.jsonl") {
            let names_only = text.replace(&format!("\"step-{MARKER}\""), "");
            assert!(!names_only.contains(MARKER), "{case}: the journal: {text}");
            continue;
        }
        assert!(
            !text.contains(MARKER) && !path.to_string_lossy().contains(MARKER),
            "{case}: {} holds the value: {text}",
            path.display()
        );
    }
    let logs = logs.text();
    assert!(
        !logs.contains(MARKER),
        "{case}: the log holds the value:\n{logs}"
    );
    reports
}

/// The last report of a command that ran to its end.
fn last(reports: &[Uplink]) -> &InvocationUpdate {
    update(reports.last().expect("a report"))
}

#[tokio::test]
async fn a_refused_working_directory_does_not_report_its_secure_value() {
    let logs = Logs::default();
    let _log = logs.capture();
    let puts = Puts::start().await;
    let f = secret_fixture();
    let agent = f.agent();
    let wd = "/tmp/nodir-{{ssm-secure:/P/db/password}}";
    let steps = vec![shell_step(RUN_SHELL_SCRIPT_PLUGIN, &["pwd"], wd, 60)];
    agent
        .handle(f.message("m1", NODE, command("c1", steps, &puts)))
        .await;
    idle(&agent).await;

    let reports = assert_no_marker("missing working directory", &f, &puts, &logs);
    let done = last(&reports);
    assert_eq!(done.detail, InvocationDetail::Failed);
    let stderr = &done.plugins[0].stderr;
    assert!(
        stderr.starts_with("working directory /tmp/nodir-**** does not exist"),
        "{stderr}"
    );
    assert!(done.plugins[0].uploaded);
    assert_eq!(puts.body("/c1/0/stderr").as_deref(), Some(stderr.as_str()));
    assert_eq!(puts.body("/c1/0/stdout").as_deref(), Some(""));
}

#[tokio::test]
async fn no_failure_path_reports_logs_uploads_or_keeps_a_secure_value() {
    let logs = Logs::default();
    let _log = logs.capture();
    let puts = Puts::start().await;
    let elsewhere = tempfile::tempdir().unwrap();
    let echo =
        "echo \"v={{ssm-secure:/P/db/password}}\"; echo \"e={{ssm-secure:/P/db/password}}\" >&2";
    let left = elsewhere.path().join("left");
    let leave = format!(
        "echo {{{{ssm-secure:/P/db/password}}}} > {}",
        left.display()
    );
    let read_left = format!("cat {}", left.display());
    let a_file = elsewhere.path().join(format!("file-{MARKER}"));
    std::fs::write(&a_file, "").unwrap();
    let file_wd = format!(
        "{}/file-{{{{ssm-secure:/P/db/password}}}}",
        elsewhere.path().display()
    );
    let mut unsupported = shell_step(RUN_SHELL_SCRIPT_PLUGIN, &[echo], "", 60);
    unsupported.action = format!("aws:runPowerShellScript-{MARKER}");

    struct Case {
        name: &'static str,
        steps: Vec<PluginStep>,
        /// Made under the command's run directory before it runs:
        /// (relative path, as a directory?).
        obstacle: Option<(&'static str, bool)>,
        /// A step is named with the value itself.
        named: bool,
        detail: InvocationDetail,
        /// In the last step's stderr (or stdout), masked.
        expect: &'static str,
    }
    let step = |lines: &[&str]| shell_step(RUN_SHELL_SCRIPT_PLUGIN, lines, "", 60);
    let cases = vec![
        Case {
            name: "working directory is a file",
            steps: vec![shell_step(RUN_SHELL_SCRIPT_PLUGIN, &["pwd"], &file_wd, 60)],
            obstacle: None,
            named: false,
            detail: InvocationDetail::Failed,
            expect: "/file-**** does not exist or is not a directory",
        },
        Case {
            name: "unsupported plugin",
            steps: vec![unsupported],
            obstacle: None,
            named: false,
            detail: InvocationDetail::Failed,
            expect: "plugin aws:runPowerShellScript-**** is not supported",
        },
        Case {
            name: "the value in the step's name",
            steps: vec![shell_step(&format!("step-{MARKER}"), &[echo], "", 60)],
            obstacle: None,
            named: true,
            detail: InvocationDetail::Success,
            expect: "e=****",
        },
        Case {
            name: "step directory cannot be created",
            steps: vec![step(&[echo])],
            obstacle: Some(("0", false)),
            named: false,
            detail: InvocationDetail::Failed,
            expect: "cannot create the step directory",
        },
        Case {
            name: "script cannot be written",
            steps: vec![step(&[echo])],
            obstacle: Some(("0/script.sh", true)),
            named: false,
            detail: InvocationDetail::Failed,
            expect: "cannot write the script",
        },
        Case {
            name: "output files cannot be created",
            steps: vec![step(&[echo])],
            obstacle: Some(("0/stderr", true)),
            named: false,
            detail: InvocationDetail::Failed,
            expect: "cannot create output files",
        },
        Case {
            name: "non-zero exit",
            steps: vec![step(&[echo, "exit 3"])],
            obstacle: None,
            named: false,
            detail: InvocationDetail::Failed,
            expect: "e=****",
        },
        Case {
            name: "timeout",
            steps: vec![shell_step(
                RUN_SHELL_SCRIPT_PLUGIN,
                &[echo, "sleep 30"],
                "",
                1,
            )],
            obstacle: None,
            named: false,
            detail: InvocationDetail::ExecutionTimedOut,
            expect: "e=****",
        },
        Case {
            name: "GetNodeParameters leaves a name out",
            steps: vec![step(&[
                "echo {{ssm-secure:/P/db/password}} {{ssm-secure:/gone}}",
            ])],
            obstacle: None,
            named: false,
            detail: InvocationDetail::Failed,
            expect: "cannot resolve {{ssm-secure:/gone}}: the API did not return it",
        },
        Case {
            name: "a later step cannot be resolved",
            steps: vec![step(&[echo]), step(&["echo {{ssm-secure:/gone}}"])],
            obstacle: None,
            named: false,
            detail: InvocationDetail::Failed,
            expect: "cannot resolve {{ssm-secure:/gone}}",
        },
        Case {
            name: "a later step reads what an earlier one left",
            steps: vec![step(&[&leave]), step(&[&read_left, "cat no-such-file"])],
            obstacle: None,
            named: false,
            detail: InvocationDetail::Failed,
            expect: "no-such-file",
        },
        Case {
            name: "a later step's working directory is missing",
            steps: vec![
                step(&[echo]),
                shell_step(
                    RUN_SHELL_SCRIPT_PLUGIN,
                    &["pwd"],
                    "/tmp/nodir-{{ssm-secure:/P/db/password}}",
                    60,
                ),
            ],
            obstacle: None,
            named: false,
            detail: InvocationDetail::Failed,
            expect: "working directory /tmp/nodir-**** does not exist",
        },
    ];

    let read_back_case = cases
        .iter()
        .position(|c| c.name == "a later step reads what an earlier one left")
        .unwrap();
    for (n, case) in cases.into_iter().enumerate() {
        let f = secret_fixture();
        let agent = f.agent();
        let command_id = format!("c{n}");
        if let Some((rel, is_dir)) = case.obstacle {
            let p = f.dir.path().join("runs").join(&command_id).join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            if is_dir {
                std::fs::create_dir_all(&p).unwrap();
            } else {
                std::fs::write(&p, "").unwrap();
            }
        }
        let steps = case.steps.len();
        agent
            .handle(f.message("m1", NODE, command(&command_id, case.steps, &puts)))
            .await;
        idle(&agent).await;
        let reports = assert_no_marker_but_names(case.name, &f, &puts, &logs, case.named);
        let done = last(&reports);
        assert_eq!(done.detail, case.detail, "{}: {done:?}", case.name);
        let p = done.plugins.last().expect("a plugin result");
        assert!(
            p.stderr.contains(case.expect) || p.stdout.contains(case.expect),
            "{}: {p:?}",
            case.name
        );
        assert_eq!(done.plugins.len(), steps, "{}", case.name);
        if case.named {
            assert_eq!(p.name, "step-****");
        }
    }

    // What the earlier step left was read back masked, inline and in S3.
    let read_back = format!("/c{read_back_case}/1/stdout");
    assert_eq!(puts.body(&read_back).as_deref(), Some("****\n"));
}

#[tokio::test]
async fn a_cancelled_or_interrupted_step_keeps_no_secure_value() {
    let logs = Logs::default();
    let _log = logs.capture();
    let puts = Puts::start().await;
    let line = "echo \"v={{ssm-secure:/P/db/password}}\"; echo \"e={{ssm-secure:/P/db/password}}\" >&2; sleep 300";

    // Cancelled while it runs.
    let f = secret_fixture();
    let agent = f.agent();
    let steps = vec![shell_step(RUN_SHELL_SCRIPT_PLUGIN, &[line], "", 600)];
    agent
        .handle(f.message("m1", NODE, command("c1", steps.clone(), &puts)))
        .await;
    written(&f.dir.path().join("runs/c1/0/stderr"), LIMIT)
        .await
        .unwrap();
    agent.handle(f.message("m2", NODE, cancel("c1"))).await;
    idle(&agent).await;
    let reports = assert_no_marker("cancelled", &f, &puts, &logs);
    let done = last(&reports);
    assert_eq!(done.detail, InvocationDetail::Cancelled);
    assert_eq!(done.plugins[0].stderr, "e=****\n");

    // Stopped by a shutdown, then reported by the restarted agent.
    let f = secret_fixture();
    let agent = f.agent();
    agent
        .handle(f.message("m1", NODE, command("c2", steps, &puts)))
        .await;
    written(&f.dir.path().join("runs/c2/0/stderr"), LIMIT)
        .await
        .unwrap();
    stop_commands(&agent).await;
    assert_no_marker("shut down", &f, &puts, &logs);
    drop(agent);
    let agent = f.agent();
    agent.recover().unwrap();
    let reports = assert_no_marker("restarted", &f, &puts, &logs);
    assert_eq!(last(&reports).plugins[0].stderr, RESTARTED_STDERR);
}

mod patching {
    use super::*;
    use crate::patching::reboot::{PATCHED, REBOOT_REQUIRED};
    use crate::patching::tests::{baseline, mixed_node, step};
    use serde_json::json;
    use steward_core::patching::report::{PatchReport, PatchState};
    use steward_core::patching::step::{PatchOperation, RebootOption};

    fn patch_command(
        command_id: &str,
        operation: PatchOperation,
        reboot: RebootOption,
    ) -> Downlink {
        let mut shell = match run(command_id, &["echo after"]) {
            Downlink::Run(m) => m,
            _ => unreachable!(),
        };
        shell
            .steps
            .insert(0, step(operation, reboot, baseline(json!({})), 600));
        shell.document_name = "AWS-RunPatchBaseline".into();
        Downlink::Run(shell)
    }

    fn patch_report(u: &Uplink) -> &PatchReport {
        match u {
            Uplink::PatchReport(r) => r,
            other => panic!("expected a patch report, got {other:?}"),
        }
    }

    fn state(r: &PatchReport, name: &str) -> PatchState {
        r.patches.iter().find(|e| e.kb_id == name).unwrap().state
    }

    #[tokio::test]
    async fn a_scan_reports_its_patches_before_the_final_update() {
        let node = mixed_node();
        let mut f = Fixture::new();
        f.patch = node.env();
        let agent = f.agent();
        agent
            .handle(f.message(
                "m1",
                NODE,
                patch_command("c1", PatchOperation::Scan, RebootOption::NoReboot),
            ))
            .await;
        idle(&agent).await;
        let reports = f.reports();
        // Within the grace: no In Progress.
        assert_eq!(reports.len(), 2, "{reports:?}");
        let r = patch_report(&reports[0]);
        assert_eq!(r.command_id, "c1");
        assert_eq!(state(r, "sec"), PatchState::Missing);
        let done = update(&reports[1]);
        assert_eq!(done.detail, InvocationDetail::Success);
        assert_eq!(done.plugins.len(), 2);
        assert!(
            done.plugins[0]
                .stdout
                .starts_with("Patch Scan with baseline"),
            "{}",
            done.plugins[0].stdout
        );
        assert_eq!(done.plugins[1].stdout, "after\n");
        assert_eq!(node.installed_version("sec").as_deref(), Some("1.0"));
    }

    #[tokio::test]
    async fn a_patch_step_without_its_inputs_fails_and_stops_the_command() {
        let f = Fixture::new();
        let agent = f.agent();
        let mut m = match patch_command("c1", PatchOperation::Scan, RebootOption::NoReboot) {
            Downlink::Run(m) => m,
            _ => unreachable!(),
        };
        m.steps[0].patch = None;
        agent.handle(f.message("m1", NODE, Downlink::Run(m))).await;
        idle(&agent).await;
        let reports = f.reports();
        let done = update(reports.last().unwrap());
        assert_eq!(done.detail, InvocationDetail::Failed);
        assert_eq!(done.plugins.len(), 1);
        assert!(
            done.plugins[0].stderr.contains("without its patch inputs"),
            "{}",
            done.plugins[0].stderr
        );
    }

    /// Install with RebootIfNeeded: the report before the reboot, the
    /// reboot asked for, the agent stopped by it; after the restart the
    /// step is finished (not Failed, not run again) and the next step runs.
    #[tokio::test]
    async fn an_install_that_reboots_is_finished_after_the_restart() {
        let node = mixed_node();
        node.touch("reboot-sec", "");
        let mut f = Fixture::new();
        f.patch = node.env();
        let agent = f.agent();
        agent
            .handle(f.message(
                "m1",
                NODE,
                patch_command("c1", PatchOperation::Install, RebootOption::RebootIfNeeded),
            ))
            .await;
        let reboots = node.root().join("reboots");
        wait_until("the node to be asked to reboot", LIMIT, || reboots.exists())
            .await
            .unwrap();
        // The reboot stops the agent.
        stop_commands(&agent).await;
        drop(agent);
        let reports = f.reports();
        // In Progress goes before the reboot, even within the grace: the
        // command is not over.
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert_eq!(update(&reports[1]).detail, InvocationDetail::InProgress);
        let before = patch_report(&reports[0]);
        assert_eq!(before.snapshot_id, "cmd-1");
        assert_eq!(state(before, "sec"), PatchState::InstalledPendingReboot);
        assert_eq!(node.installed_version("sec").as_deref(), Some("1.1"));

        // The node is back: /run is new.
        std::fs::remove_file(node.root().join(REBOOT_REQUIRED)).unwrap();
        std::fs::remove_file(node.root().join(PATCHED)).unwrap();
        let agent = f.agent();
        agent.recover().unwrap();
        idle(&agent).await;
        let reports = f.reports();
        assert_eq!(reports.len(), 4, "{reports:?}");
        let after = patch_report(&reports[2]);
        assert_eq!(after.snapshot_id, "cmd-1-rebooted");
        assert_eq!(after.operation, PatchOperation::Install);
        assert_eq!(after.operation_start_time, before.operation_start_time);
        assert_eq!(state(after, "sec"), PatchState::Installed);
        assert!(after.counts.compliant());
        let done = update(&reports[3]);
        assert_eq!(done.detail, InvocationDetail::Success, "{done:?}");
        assert_eq!(done.plugins.len(), 2);
        assert_eq!(done.plugins[0].detail, InvocationDetail::Success);
        assert!(
            done.plugins[0].stdout.contains("the node rebooted"),
            "{}",
            done.plugins[0].stdout
        );
        assert_eq!(done.plugins[1].stdout, "after\n");
        assert_eq!(
            std::fs::read_to_string(&reboots).unwrap().lines().count(),
            1
        );
        // Finished: a later start has nothing to recover.
        drop(agent);
        let agent = f.agent();
        agent.recover().unwrap();
        idle(&agent).await;
        assert_eq!(f.reports().len(), 4);
    }

    /// A reboot that does not happen: the step fails saying so, the
    /// command ends, and nothing is left to resume.
    #[tokio::test]
    async fn a_reboot_command_that_fails_fails_the_step() {
        let node = mixed_node();
        node.touch("reboot-sec", "");
        let mut f = Fixture::new();
        f.patch = node.env();
        f.patch.reboot = vec!["/bin/false".into()];
        let agent = f.agent();
        agent
            .handle(f.message(
                "m1",
                NODE,
                patch_command("c1", PatchOperation::Install, RebootOption::RebootIfNeeded),
            ))
            .await;
        idle(&agent).await;
        let reports = f.reports();
        // In Progress before the reboot was asked for, then the failure.
        assert_eq!(reports.len(), 3, "{reports:?}");
        assert_eq!(
            state(patch_report(&reports[0]), "sec"),
            PatchState::InstalledPendingReboot
        );
        assert_eq!(update(&reports[1]).detail, InvocationDetail::InProgress);
        let done = update(&reports[2]);
        assert_eq!(done.detail, InvocationDetail::Failed);
        assert_eq!(done.plugins.len(), 1, "later steps do not run");
        assert!(
            done.plugins[0]
                .stderr
                .starts_with("`/bin/false` exited with 1; the node was not rebooted"),
            "{}",
            done.plugins[0].stderr
        );
        drop(agent);
        let agent = f.agent();
        agent.recover().unwrap();
        idle(&agent).await;
        assert_eq!(f.reports().len(), 3);
    }
}

// ------------------------------------------------ output URLs that expire

/// The control plane's answers to GetOutputUploadUrls: URLs signed with a
/// new session token (`fresh`), counted.
struct FreshUrls {
    base: String,
    asked: Mutex<Vec<(String, usize)>>,
}

impl crate::api::OutputUrlSource for FreshUrls {
    fn fresh_urls<'a>(
        &'a self,
        command_id: &'a str,
        step: usize,
    ) -> futures::future::BoxFuture<'a, Result<StepUpload, crate::api::ApiError>> {
        lock(&self.asked).push((command_id.to_string(), step));
        let url = |stream: &str| {
            format!(
                "{}/{command_id}/{step}/{stream}?X-Amz-Security-Token=fresh&X-Amz-Signature=y",
                self.base
            )
        };
        let urls = StepUpload {
            stdout_put_url: url("stdout"),
            stderr_put_url: url("stderr"),
        };
        Box::pin(async move { Ok(urls) })
    }
}

/// A fixture whose agent asks a [`FreshUrls`] over `puts`.
fn refreshing_fixture(puts: &Puts) -> (Fixture, Arc<FreshUrls>) {
    let mut f = Fixture::new();
    let source = Arc::new(FreshUrls {
        base: puts.base.clone(),
        asked: Mutex::default(),
    });
    f.output_urls = Some(source.clone());
    (f, source)
}

/// A command whose URLs carry a session token S3 has stopped taking.
fn command_with_old_urls(command_id: &str, lines: &[&str], puts: &Puts) -> Downlink {
    let steps = vec![shell_step(RUN_SHELL_SCRIPT_PLUGIN, lines, "", 60)];
    let url = |stream: &str| {
        format!(
            "{}/{command_id}/0/{stream}?X-Amz-Security-Token=old&X-Amz-Signature=x",
            puts.base
        )
    };
    Downlink::Run(RunMessage {
        command_id: command_id.into(),
        document_name: "AWS-RunShellScript".into(),
        document_version: "1".into(),
        steps,
        uploads: vec![StepUpload {
            stdout_put_url: url("stdout"),
            stderr_put_url: url("stderr"),
        }],
    })
}

#[tokio::test]
async fn an_upload_refused_for_an_expired_token_is_retried_with_fresh_urls() {
    let puts = Puts::refusing(Arc::new(|path: &str| !path.contains("Token=fresh"))).await;
    let (f, source) = refreshing_fixture(&puts);
    let agent = f.agent();
    agent
        .handle(f.message(
            "m1",
            NODE,
            command_with_old_urls("c1", &["echo out; echo err >&2"], &puts),
        ))
        .await;
    idle(&agent).await;

    let reports = f.reports();
    let done = last(&reports);
    assert_eq!(done.detail, InvocationDetail::Success);
    assert!(done.plugins[0].uploaded, "{done:?}");
    assert_eq!(puts.body("/c1/0/stdout").as_deref(), Some("out\n"));
    assert_eq!(puts.body("/c1/0/stderr").as_deref(), Some("err\n"));
    // The old URL was tried once and refused; one answer served both streams.
    let refused = lock(&puts.refused).clone();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].starts_with("/c1/0/stdout?"), "{refused:?}");
    assert_eq!(*lock(&source.asked), vec![("c1".to_string(), 0)]);
}

#[tokio::test]
async fn an_upload_url_past_its_expiry_is_replaced_before_any_put() {
    let puts = Puts::refusing(Arc::new(|path: &str| !path.contains("Token=fresh"))).await;
    let (f, source) = refreshing_fixture(&puts);
    let agent = f.agent();
    // Signed an hour ago for ten minutes.
    let signed = now_epoch() - 3600.0;
    let date = aws_smithy_types::DateTime::from_secs(signed as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
        .replace(['-', ':'], "");
    let url = |stream: &str| {
        format!(
            "{}/c2/0/{stream}?X-Amz-Date={date}&X-Amz-Expires=600&X-Amz-Security-Token=old",
            puts.base
        )
    };
    let Downlink::Run(mut run) = run("c2", &["echo out"]) else {
        unreachable!()
    };
    run.uploads = vec![StepUpload {
        stdout_put_url: url("stdout"),
        stderr_put_url: url("stderr"),
    }];
    agent
        .handle(f.message("m1", NODE, Downlink::Run(run)))
        .await;
    idle(&agent).await;

    let reports = f.reports();
    assert!(last(&reports).plugins[0].uploaded);
    assert_eq!(puts.body("/c2/0/stdout").as_deref(), Some("out\n"));
    assert!(lock(&puts.refused).is_empty(), "an expired URL was PUT to");
    assert_eq!(lock(&source.asked).len(), 1);
}

#[tokio::test]
async fn output_s3_keeps_refusing_is_reported_inline_not_held() {
    // Fresh URLs are refused too (the bucket's rights are gone, say).
    let puts = Puts::refusing(Arc::new(|_: &str| true)).await;
    let (f, source) = refreshing_fixture(&puts);
    let agent = f.agent();
    agent
        .handle(f.message(
            "m1",
            NODE,
            command_with_old_urls("c3", &["echo still-here"], &puts),
        ))
        .await;
    idle(&agent).await;

    let reports = f.reports();
    let done = last(&reports);
    assert_eq!(done.detail, InvocationDetail::Success);
    assert!(!done.plugins[0].uploaded);
    assert_eq!(done.plugins[0].stdout, "still-here\n");
    // A bounded number of tries per stream, each after fresh URLs.
    let refused = lock(&puts.refused).len();
    assert_eq!(refused, 2 * super::execution::UPLOAD_ATTEMPTS as usize);
    assert_eq!(lock(&source.asked).len(), refused - 2);
}

#[test]
fn a_report_gives_its_times_in_the_control_planes_time() {
    let plugin = |start, end| steward_core::channel::PluginResult {
        name: "aws:runShellScript".into(),
        detail: InvocationDetail::Success,
        response_code: 0,
        start,
        end,
        stdout: String::new(),
        stderr: String::new(),
        uploaded: false,
    };
    let update = || InvocationUpdate {
        command_id: "c1".into(),
        detail: InvocationDetail::Success,
        response_code: 0,
        execution_start: Some(1600.0),
        execution_end: Some(1610.0),
        plugins: vec![plugin(Some(1601.0), Some(1609.0)), plugin(None, None)],
    };
    // A node ten minutes ahead: every time it read moves back to the server's.
    let mut m = Uplink::InvocationUpdate(update());
    super::reporting::in_server_time(&mut m, -600.0);
    let Uplink::InvocationUpdate(u) = m else {
        unreachable!()
    };
    assert_eq!(
        (u.execution_start, u.execution_end),
        (Some(1000.0), Some(1010.0))
    );
    assert_eq!(
        (u.plugins[0].start, u.plugins[0].end),
        (Some(1001.0), Some(1009.0))
    );
    assert_eq!((u.plugins[1].start, u.plugins[1].end), (None, None));
    // In sync: unchanged.
    let mut m = Uplink::InvocationUpdate(update());
    super::reporting::in_server_time(&mut m, 0.0);
    assert_eq!(m, Uplink::InvocationUpdate(update()));
}
