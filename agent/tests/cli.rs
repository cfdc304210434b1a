//! The binary's command line and exit statuses, against a tiny fake API on a
//! local port (no stack needed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

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

/// Serves one request: answers `status` and `body`, and returns the request
/// (target header, JSON body).
fn serve_once(
    status: u16,
    body: String,
) -> (String, thread::JoinHandle<(String, serde_json::Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
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
    let out = agent().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Exit status"), "{text}");
    assert!(text.contains("register") && text.contains("run"));
}

#[test]
fn unregistered_run_and_status_exit_4() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let out = agent()
        .args(["--state-dir", state, "run"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not registered"));
    let out = agent()
        .args(["status", "--state-dir", state])
        .output()
        .unwrap();
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
    let out = agent()
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
        .arg(&state)
        .output()
        .unwrap();
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
    let (target, _) = server.join().unwrap();
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
    let out = agent()
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
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mi-0123456789abcdef0"
    );
    let (_, request) = server.join().unwrap();
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

    let out = agent()
        .arg("status")
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["InstanceId"], "mi-0123456789abcdef0");
    assert_eq!(status["PublicKey"], request["PublicKey"]);
    assert_eq!(status["ApiUrl"], url.as_str());

    // Registering again needs --force.
    let out = agent()
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
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
}
