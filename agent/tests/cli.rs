//! The binary's command line and exit statuses, against a tiny fake API on a
//! local port (no stack needed).

#[path = "support/wait.rs"]
mod wait;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
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
    ] {
        c.env_remove(k);
    }
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
    assert!(String::from_utf8_lossy(&out.stderr).contains("not registered"));
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
}
