//! The binary's command line and exit statuses, against a tiny fake API on a
//! local port (no stack needed).

#[path = "support/wait.rs"]
mod wait;

#[path = "support/fake_imds.rs"]
mod fake_imds;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fake_imds::{FakeImds, Mode};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use wait::{LIMIT, OnThread, on_thread};

fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_steward-agent"));
    for k in [
        "STEWARD_API_URL",
        "STEWARD_ACTIVATION_CODE",
        "STEWARD_ACTIVATION_ID",
        "STEWARD_AGENT_CONFIG",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    // Not on EC2, whatever the test host is: IMDS does not answer here.
    c.env(
        "STEWARD_IMDS_ENDPOINT",
        format!("http://127.0.0.1:{}", fake_imds::closed_port()),
    );
    c
}

/// Runs the agent to its exit and returns what it printed. One that has not
/// exited within the limit is killed and the test fails.
fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?} to exit");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Not reaped until the thread's wait returns, so the pid stays its own.
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    match on_thread(move || child.wait_with_output()).wait(&what, LIMIT) {
        Ok(out) => out.unwrap(),
        Err(overran) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("{overran}")
        }
    }
}

/// The request a fake API served: (target header, JSON body).
type Served = OnThread<(String, serde_json::Value)>;

/// Waits for the one request the fake API serves.
fn request_of(server: Served) -> (String, serde_json::Value) {
    server
        .wait("the agent's request to the fake API", LIMIT)
        .unwrap()
}

/// Serves one request: answers `status` and `body`; [`request_of`] returns it.
fn serve_once(status: u16, body: String) -> (String, Served) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = on_thread(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut target = String::new();
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                match k.to_ascii_lowercase().as_str() {
                    "x-amz-target" => target = v.trim().to_string(),
                    "content-length" => len = v.trim().parse().unwrap(),
                    _ => {}
                }
            }
        }
        let mut buf = vec![0u8; len];
        reader.read_exact(&mut buf).unwrap();
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        (target, serde_json::from_slice(&buf).unwrap())
    });
    (url, handle)
}

#[test]
fn help_documents_exit_statuses() {
    let out = run(agent().arg("--help"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Exit status"), "{text}");
    assert!(text.contains("register") && text.contains("run"));
}

#[test]
fn unregistered_run_and_status_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let out = run(agent().args(["--state-dir", state, "run"]));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not registered"), "{stderr}");
    assert!(stderr.contains("--ec2"), "{stderr}");
    let out = run(agent().args(["status", "--state-dir", state]));
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn a_refused_activation_exits_3_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (url, server) = serve_once(
        400,
        r#"{"__type":"InvalidActivation","message":"Activation a-1 has expired."}"#.into(),
    );
    let out = run(agent()
        .args([
            "register",
            "--activation-code",
            "code",
            "--activation-id",
            "a-1",
            "--api-url",
            &url,
        ])
        .arg("--state-dir")
        .arg(&state));
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("InvalidActivation") && stderr.contains("has expired"),
        "{stderr}"
    );
    let (target, _) = request_of(server);
    assert_eq!(target, "Steward.RegisterManagedInstance");
    assert!(!state.join("identity.json").exists());
}

#[test]
fn register_writes_the_identity_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
    let answer = serde_json::json!({
        "InstanceId": "mi-0123456789abcdef0",
        "QueueUrl": "http://sqs/000000000000/steward-node-mi-0123456789abcdef0",
        "IngestQueueUrl": "http://sqs/000000000000/steward-ingest",
        "Region": "us-east-1",
        "CommandSigningPublicKey": B64.encode(pair.public_key().as_ref()),
    });
    let (url, server) = serve_once(200, answer.to_string());
    let out = run(agent()
        .args([
            "register",
            "--activation-code",
            "code",
            "--activation-id",
            "a-1",
            "--name",
            "web-1",
        ])
        .env("STEWARD_API_URL", &url)
        .arg("--state-dir")
        .arg(&state));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mi-0123456789abcdef0"
    );
    let (_, request) = request_of(server);
    assert_eq!(request["ActivationId"], "a-1");
    assert_eq!(request["ActivationCode"], "code");
    assert_eq!(request["AgentVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        B64.decode(request["PublicKey"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert!(
        request["IPAddress"]
            .as_str()
            .unwrap()
            .parse::<std::net::IpAddr>()
            .is_ok()
    );

    let out = run(agent().arg("status").arg("--state-dir").arg(&state));
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["InstanceId"], "mi-0123456789abcdef0");
    assert_eq!(status["PublicKey"], request["PublicKey"]);
    assert_eq!(status["ApiUrl"], url.as_str());

    // Registering again needs --force.
    let out = run(agent()
        .args([
            "register",
            "--activation-code",
            "code",
            "--activation-id",
            "a-1",
            "--api-url",
            &url,
        ])
        .arg("--state-dir")
        .arg(&state));
    assert_eq!(out.status.code(), Some(4));

    // With --force: a new node, and the old one's spooled reports and
    // journal go rather than be sent as the new node's.
    std::fs::create_dir_all(state.join("spool")).unwrap();
    std::fs::write(state.join("spool/00000000000000000000.json"), b"{}").unwrap();
    std::fs::create_dir_all(state.join("journal")).unwrap();
    let (url, _server) = serve_once(200, registered("mi-0123456789abcdef1"));
    let out = run(agent()
        .args([
            "register",
            "--force",
            "--activation-code",
            "code",
            "--activation-id",
            "a-1",
            "--api-url",
            &url,
        ])
        .arg("--state-dir")
        .arg(&state));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mi-0123456789abcdef1"
    );
    assert!(!state.join("spool").exists());
    assert!(!state.join("journal").exists());
}

/// What the control plane answers a registration of `instance_id`.
fn registered(instance_id: &str) -> String {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref()).unwrap();
    serde_json::json!({
        "InstanceId": instance_id,
        "QueueUrl": format!("http://sqs/000000000000/steward-node-{instance_id}"),
        "IngestQueueUrl": "http://sqs/000000000000/steward-ingest",
        "Region": "us-east-1",
        "CommandSigningPublicKey": B64.encode(pair.public_key().as_ref()),
    })
    .to_string()
}

/// `register` against a fake IMDS and a fake API that answers `instance_id`:
/// the output and the request the API got.
fn register_ec2(
    state: &std::path::Path,
    imds: &FakeImds,
    args: &[&str],
    instance_id: &str,
) -> (Output, String, serde_json::Value) {
    let (url, server) = serve_once(200, registered(instance_id));
    let out = run(agent()
        .arg("--state-dir")
        .arg(state)
        .args(["--api-url", &url, "--imds-endpoint", &imds.url, "register"])
        .args(args));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (target, request) = request_of(server);
    (out, target, request)
}

/// The request proves the key: its signature over the document at its
/// Timestamp verifies with its PublicKey.
fn assert_proves_its_key(request: &serde_json::Value, document: &str) {
    let pk = request["PublicKey"].as_str().unwrap();
    assert_eq!(B64.decode(pk).unwrap().len(), 32);
    let ts = request["Timestamp"].as_i64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((ts - now).abs() < 300, "{ts} vs {now}");
    let message = steward_core::fleet::ops::ec2_registration_message(ts, pk, document);
    steward_core::channel::verify_node_signature(
        pk,
        &message,
        request["Signature"].as_str().unwrap(),
    )
    .unwrap();
    // Another document's proof does not verify.
    let other = steward_core::fleet::ops::ec2_registration_message(ts, pk, "{}");
    assert!(
        steward_core::channel::verify_node_signature(
            pk,
            &other,
            request["Signature"].as_str().unwrap()
        )
        .is_err()
    );
}

#[test]
fn ec2_registration_sends_the_identity_and_registers_again_with_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let imds = FakeImds::start(Mode::V2, "i-0aaaaaaaaaaaaaaa1");
    let (out, target, request) = register_ec2(&state, &imds, &["--ec2"], "i-0aaaaaaaaaaaaaaa1");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "i-0aaaaaaaaaaaaaaa1"
    );
    assert_eq!(target, "Steward.RegisterEc2Instance");
    // Exactly as IMDS served them.
    assert_eq!(request["InstanceIdentityDocument"], imds.document.as_str());
    assert_eq!(request["InstanceIdentitySignature"], fake_imds::SIGNATURE);
    assert_eq!(request["AgentVersion"], env!("CARGO_PKG_VERSION"));
    assert!(request.get("ActivationCode").is_none());
    assert_proves_its_key(&request, &imds.document);
    let first_key = request["PublicKey"].clone();

    let out = run(agent().arg("status").arg("--state-dir").arg(&state));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["InstanceId"], "i-0aaaaaaaaaaaaaaa1");
    assert_eq!(status["PublicKey"], first_key);

    // Again, on the same instance: no --force, the same key (with --ec2, or
    // without it: a node registered as an instance asks IMDS).
    for args in [&["--ec2"][..], &[]] {
        let (out, target, request) = register_ec2(&state, &imds, args, "i-0aaaaaaaaaaaaaaa1");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "i-0aaaaaaaaaaaaaaa1"
        );
        assert_eq!(target, "Steward.RegisterEc2Instance");
        assert_eq!(request["PublicKey"], first_key);
        assert_proves_its_key(&request, &imds.document);
    }

    // The same state on another instance (an image of this one): afresh,
    // with a new key, and without the old node's commands.
    std::fs::create_dir_all(state.join("spool")).unwrap();
    std::fs::write(state.join("spool/00000000000000000000.json"), b"{}").unwrap();
    let other = FakeImds::start(Mode::V2, "i-0bbbbbbbbbbbbbbb2");
    let (out, _, request) = register_ec2(&state, &other, &["--ec2"], "i-0bbbbbbbbbbbbbbb2");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "i-0bbbbbbbbbbbbbbb2"
    );
    assert_eq!(request["InstanceIdentityDocument"], other.document.as_str());
    assert_ne!(request["PublicKey"], first_key);
    assert_proves_its_key(&request, &other.document);
    assert!(!state.join("spool").exists());
    let out = run(agent().arg("status").arg("--state-dir").arg(&state));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["InstanceId"], "i-0bbbbbbbbbbbbbbb2");
    assert_eq!(status["PublicKey"], request["PublicKey"]);
}

#[test]
fn an_unregistered_node_without_an_activation_registers_by_ec2_identity_when_imds_answers() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let imds = FakeImds::start(Mode::V2, "i-0ccccccccccccccc3");
    let (out, target, _) = register_ec2(&state, &imds, &[], "i-0ccccccccccccccc3");
    assert_eq!(target, "Steward.RegisterEc2Instance");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "i-0ccccccccccccccc3"
    );
}

#[test]
fn a_refused_ec2_registration_exits_3_and_writes_no_identity() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let imds = FakeImds::start(Mode::V2, "i-0ddddddddddddddd4");
    let (url, server) = serve_once(
        400,
        r#"{"__type":"AccessDeniedException","message":"Account 000000000000 is not allowed to register EC2 instances with this Steward; add it to the AllowedAccountIds parameter of the stack."}"#.into(),
    );
    let out = run(agent().arg("--state-dir").arg(&state).args([
        "--api-url",
        &url,
        "--imds-endpoint",
        &imds.url,
        "register",
        "--ec2",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("AllowedAccountIds"), "{stderr}");
    let (target, _) = request_of(server);
    assert_eq!(target, "Steward.RegisterEc2Instance");
    assert!(!state.join("identity.json").exists());
}

#[test]
fn an_imdsv1_only_host_exits_3_and_asks_nothing_of_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let imds = FakeImds::start(Mode::V1Only(403), "i-0eeeeeeeeeeeeeee5");
    // An API that would fail the test if asked: nothing listens there.
    let api = format!("http://127.0.0.1:{}", fake_imds::closed_port());
    for args in [&["register", "--ec2"][..], &["register"], &["run"]] {
        let out = run(agent()
            .arg("--state-dir")
            .arg(&state)
            .args(["--api-url", &api, "--imds-endpoint", &imds.url])
            .args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains("--instance-id i-0eeeeeeeeeeeeeee5 --http-tokens required"),
            "{stderr}"
        );
        assert!(!state.join("identity.json").exists());
    }
}

#[test]
fn ec2_registration_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    // --ec2 with an activation.
    let out = run(agent().args([
        "--state-dir",
        state,
        "register",
        "--ec2",
        "--activation-code",
        "c",
        "--activation-id",
        "a",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--ec2"), "{stderr}");
    // No activation, and IMDS does not answer: the old usage error, naming --ec2.
    let out = run(agent().args(["--state-dir", state, "register"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--activation-code") && stderr.contains("--ec2"),
        "{stderr}"
    );
    // Something refuses the token request and serves no document (a proxy,
    // or an endpoint turned off): no IMDS either, unless --ec2 says so.
    let refusing = FakeImds::start(Mode::Disabled, "i-0fffffffffffffff6");
    let out = run(agent().args([
        "--state-dir",
        state,
        "--imds-endpoint",
        &refusing.url,
        "register",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("HTTP 403"), "{stderr}");
    let out = run(agent().args([
        "--state-dir",
        state,
        "--imds-endpoint",
        &refusing.url,
        "run",
    ]));
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(agent().args([
        "--state-dir",
        state,
        "--imds-endpoint",
        &refusing.url,
        "register",
        "--ec2",
    ]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--http-endpoint enabled"), "{stderr}");
    // --ec2 where IMDS does not answer: a runtime failure, saying so.
    let out = run(agent().args(["--state-dir", state, "register", "--ec2"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
}

/// Starts `run`, waits for the first request the fake API gets, then stops
/// the agent with SIGTERM: returns that request and the agent's output.
fn run_until_first_request(
    state: &std::path::Path,
    imds: &FakeImds,
    status: u16,
    answer: String,
) -> ((String, serde_json::Value), Output) {
    let (url, server) = serve_once(status, answer);
    let sqs = format!("http://127.0.0.1:{}", fake_imds::closed_port());
    let child = agent()
        .arg("--state-dir")
        .arg(state)
        .args([
            "--api-url",
            &url,
            "--sqs-endpoint",
            &sqs,
            "--imds-endpoint",
            &imds.url,
            "run",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    let exited = on_thread(move || child.wait_with_output());
    let first = server.wait("the agent's first request to the fake API", LIMIT);
    let _ = kill(pid, Signal::SIGTERM);
    let out = match exited.wait("the agent to stop on SIGTERM", LIMIT) {
        Ok(out) => out.unwrap(),
        Err(overran) => {
            let _ = kill(pid, Signal::SIGKILL);
            panic!("{overran}")
        }
    };
    (first.unwrap(), out)
}

#[test]
fn run_checks_a_saved_instance_identity_and_registers_afresh_on_another_instance() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let imds = FakeImds::start(Mode::V2, "i-0aaaaaaaaaaaaaaa1");
    let (_, _, first) = register_ec2(&state, &imds, &["--ec2"], "i-0aaaaaaaaaaaaaaa1");

    // The same instance: the agent goes on as it is (its first request is
    // for its queue credentials, not a registration).
    let refused = r#"{"__type":"InvalidSignatureException","message":"no"}"#.to_string();
    let ((target, request), out) = run_until_first_request(&state, &imds, 400, refused.clone());
    assert_eq!(
        target,
        "Steward.GetNodeCredentials",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(request["InstanceId"], "i-0aaaaaaaaaaaaaaa1");

    // Another instance: registered afresh as it, with a new key, first.
    let other = FakeImds::start(Mode::V2, "i-0bbbbbbbbbbbbbbb2");
    let ((target, request), out) =
        run_until_first_request(&state, &other, 200, registered("i-0bbbbbbbbbbbbbbb2"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(target, "Steward.RegisterEc2Instance", "{stderr}");
    assert_eq!(request["InstanceIdentityDocument"], other.document.as_str());
    assert_ne!(request["PublicKey"], first["PublicKey"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("another instance"), "{stderr}");
    let out = run(agent().arg("status").arg("--state-dir").arg(&state));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["InstanceId"], "i-0bbbbbbbbbbbbbbb2");
    assert_eq!(status["PublicKey"], request["PublicKey"]);

    // IMDS gone (the node moved off EC2?): it goes on with what it saved.
    let gone = FakeImds::start(Mode::Disabled, "i-0bbbbbbbbbbbbbbb2");
    let ((target, request), out) = run_until_first_request(&state, &gone, 400, refused);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(target, "Steward.GetNodeCredentials", "{stderr}");
    assert_eq!(request["InstanceId"], "i-0bbbbbbbbbbbbbbb2");
    assert!(stderr.contains("going on with the saved one"), "{stderr}");
}
