use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use steward_core::secret::Secret;
use steward_core::sessions::pump::{self, ChannelEnd};
use steward_core::sessions::token::TOKEN_VERSION;
use steward_core::sessions::{Body, QueueCredentials, SessionKey, SessionToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::queue::{self, LinkError, SessionLink, refresh_delay, sqs_endpoint};
use super::terminal::{Control, Finish, Input, InteractError, interact};
use super::*;
use crate::args::Command;
use crate::fake_ssm::{self, Outcome, Reply, ctx, error, ok, ops};

const SID: &str = "alice-0123456789abcdef0";
const LIMIT: Duration = Duration::from_secs(10);

fn parse(args: &[&str]) -> Result<SessionCommand, clap::Error> {
    match fake_ssm::parse("session", args)? {
        Command::Session(s) => Ok(s),
        other => panic!("not session: {other:?}"),
    }
}

fn start_args(args: &[&str]) -> SessionStartArgs {
    match parse(&[&["start"], args].concat()).expect("arguments parse") {
        SessionCommand::Start(a) => a,
        other => panic!("not start: {other:?}"),
    }
}

fn key() -> SessionKey {
    SessionKey::from_bytes([5; 32])
}

fn token(session_id: &str, access_key_id: &str, expiration: &str) -> SessionToken {
    SessionToken {
        version: TOKEN_VERSION,
        session_id: session_id.into(),
        key: Secret::new(key().expose_base64()),
        region: "eu-west-3".into(),
        send_queue_url: "http://queues.test/000000000000/to-agent".into(),
        receive_queue_url: "http://queues.test/000000000000/to-client".into(),
        credentials: QueueCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(format!("secret-of-{access_key_id}")),
            session_token: Secret::new(format!("session-token-of-{access_key_id}")),
            expiration: expiration.into(),
        },
    }
}

// --- arguments --------------------------------------------------------------

#[test]
fn parameters_take_the_shorthand_json_and_repeats() {
    assert_eq!(
        parse_parameters("portNumber=80,localPortNumber=8080").unwrap(),
        Parameters(vec![
            ("portNumber".into(), vec!["80".into()]),
            ("localPortNumber".into(), vec!["8080".into()]),
        ])
    );
    // A piece without `=` is one more value of the name before it; a value
    // keeps any further `=`.
    assert_eq!(
        parse_parameters("commands=ls,pwd,env=a=b").unwrap(),
        Parameters(vec![
            ("commands".into(), vec!["ls".into(), "pwd".into()]),
            ("env".into(), vec!["a=b".into()]),
        ])
    );
    assert_eq!(
        parse_parameters(r#"{"portNumber":["80"],"host":"db.internal"}"#).unwrap(),
        Parameters(vec![
            ("host".into(), vec!["db.internal".into()]),
            ("portNumber".into(), vec!["80".into()]),
        ])
    );
    for bad in [
        "",
        "ls",
        "=80",
        "a=1,=2",
        "{\"a\":1}",
        "{\"\":[\"x\"]}",
        "{",
    ] {
        assert!(parse_parameters(bad).is_err(), "{bad:?} is refused");
    }

    let args = start_args(&[
        "mi-0123456789abcdef0",
        "--parameters",
        "portNumber=80,localPortNumber=8080",
        "--parameters",
        "portNumber=81",
        "--document-name",
        "AWS-StartPortForwardingSession",
        "--reason",
        "debugging",
    ]);
    assert_eq!(args.target, "mi-0123456789abcdef0");
    assert_eq!(
        args.parameter_map(),
        BTreeMap::from([
            ("localPortNumber".to_string(), vec!["8080".to_string()]),
            (
                "portNumber".to_string(),
                vec!["80".to_string(), "81".to_string()]
            ),
        ])
    );
    assert_eq!(
        args.document_name.as_deref(),
        Some("AWS-StartPortForwardingSession")
    );
    assert!(parse(&["start"]).is_err());
    assert!(parse(&["start", "mi-1", "--parameters", "novalue"]).is_err());
}

#[test]
fn list_defaults_to_active_and_terminate_needs_an_id() {
    let SessionCommand::List(l) = parse(&["list"]).unwrap() else {
        panic!("not list")
    };
    assert_eq!((l.state, l.target), (StateArg::Active, None));
    let SessionCommand::List(l) =
        parse(&["list", "--state", "History", "--target", "mi-1"]).unwrap()
    else {
        panic!("not list")
    };
    assert_eq!(
        (l.state, l.target.as_deref()),
        (StateArg::History, Some("mi-1"))
    );
    assert!(parse(&["list", "--state", "Gone"]).is_err());
    assert!(parse(&["terminate"]).is_err());
}

// --- list and terminate -----------------------------------------------------

async fn steward(args: &[&str], json: bool, replies: Vec<Reply>) -> Outcome {
    let cmd = parse(args).expect("arguments parse");
    fake_ssm::session(replies, async |fake, out| {
        let ctx = ctx(fake, json);
        match &cmd {
            SessionCommand::List(a) => list(&ctx, a, out).await,
            SessionCommand::Terminate { session_id } => terminate(&ctx, session_id, out).await,
            SessionCommand::Start(a) => start(&ctx, a).await,
            SessionCommand::Forward(a) => forward::forward(&ctx, a).await,
        }
    })
    .await
}

fn session(id: &str, status: &str, end: Option<f64>) -> Value {
    let mut s = json!({
        "SessionId": id,
        "Target": "mi-0123456789abcdef0",
        "Status": status,
        "StartDate": 1_700_000_000.0,
        "DocumentName": "SSM-SessionManagerRunShell",
        "Owner": "arn:aws:iam::000000000000:user/alice",
        "Reason": "disk full",
    });
    if let Some(end) = end {
        s["EndDate"] = json!(end);
    }
    s
}

#[tokio::test]
async fn list_asks_every_page_with_the_filter_and_prints_a_table() {
    let (result, out, requests) = steward(
        &["list", "--state", "history", "--target", "mi-0123456789abcdef0"],
        false,
        vec![
            ok(json!({ "Sessions": [session("alice-0000000000000000a", "Terminated", Some(1_700_000_600.0))], "NextToken": "p2" })),
            ok(json!({ "Sessions": [session("alice-0000000000000000b", "Failed", None)] })),
        ],
    )
    .await;
    assert_eq!(result.unwrap(), Exit::Ok);
    let filter = json!([{ "key": "Target", "value": "mi-0123456789abcdef0" }]);
    assert_eq!(
        ops(&requests),
        vec![
            (
                "DescribeSessions",
                json!({ "State": "History", "Filters": filter })
            ),
            (
                "DescribeSessions",
                json!({ "State": "History", "Filters": filter, "NextToken": "p2" })
            ),
        ]
    );
    let expected = "\
┌─────────────────────────┬──────────────────────┬────────────┬──────────────────────┬──────────────────────┬──────────────────────────────────────┬───────────┐
│ SessionId               ┆ Target               ┆ Status     ┆ StartDate            ┆ EndDate              ┆ Owner                                ┆ Reason    │
╞═════════════════════════╪══════════════════════╪════════════╪══════════════════════╪══════════════════════╪══════════════════════════════════════╪═══════════╡
│ alice-0000000000000000a ┆ mi-0123456789abcdef0 ┆ Terminated ┆ 2023-11-14T22:13:20Z ┆ 2023-11-14T22:23:20Z ┆ arn:aws:iam::000000000000:user/alice ┆ disk full │
│ alice-0000000000000000b ┆ mi-0123456789abcdef0 ┆ Failed     ┆ 2023-11-14T22:13:20Z ┆ -                    ┆ arn:aws:iam::000000000000:user/alice ┆ disk full │
└─────────────────────────┴──────────────────────┴────────────┴──────────────────────┴──────────────────────┴──────────────────────────────────────┴───────────┘
";
    assert_eq!(out, expected);
}

#[tokio::test]
async fn list_json_is_the_api_shape_and_empty_says_what_to_do() {
    let s = session("alice-0000000000000000a", "Connected", None);
    let (result, out, requests) = steward(
        &["list"],
        true,
        vec![ok(json!({ "Sessions": [s.clone()] }))],
    )
    .await;
    assert_eq!(result.unwrap(), Exit::Ok);
    assert_eq!(
        ops(&requests),
        vec![("DescribeSessions", json!({ "State": "Active" }))]
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, json!({ "Sessions": [s] }));

    let (_, out, _) = steward(&["list"], false, vec![ok(json!({ "Sessions": [] }))]).await;
    assert!(out.contains("steward session start"), "{out}");
}

#[tokio::test]
async fn terminate_prints_the_id_and_api_errors_say_what_to_do() {
    let (result, out, requests) = steward(
        &["terminate", SID],
        false,
        vec![ok(json!({ "SessionId": SID }))],
    )
    .await;
    assert_eq!(result.unwrap(), Exit::Ok);
    assert_eq!(out, format!("{SID}\n"));
    assert_eq!(
        ops(&requests),
        vec![("TerminateSession", json!({ "SessionId": SID }))]
    );

    let (_, out, _) = steward(
        &["terminate", SID],
        true,
        vec![ok(json!({ "SessionId": SID }))],
    )
    .await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, json!({ "SessionId": SID }));

    let (result, out, _) = steward(
        &["terminate", SID],
        false,
        vec![error(
            "AccessDeniedException",
            "not allowed: ssm:TerminateSession",
        )],
    )
    .await;
    let e = result.unwrap_err();
    assert_eq!(
        e.to_string(),
        "TerminateSession failed: AccessDeniedException: not allowed: ssm:TerminateSession"
    );
    assert!(e.hint().is_some_and(|h| h.contains("policy")));
    assert_eq!(out, "");
}

// --- start, up to the channel -----------------------------------------------

#[tokio::test]
async fn start_sends_ssms_request_and_an_api_error_ends_there() {
    let (result, _, requests) = steward(
        &[
            "start",
            "mi-0123456789abcdef0",
            "--reason",
            "disk full",
            "--parameters",
            "shellProfile=bash",
        ],
        false,
        vec![error(
            "AccessDeniedException",
            "not allowed: ssm:StartSession",
        )],
    )
    .await;
    let e = result.unwrap_err();
    assert!(
        matches!(&e, CliError::Api { operation: "StartSession", code, .. } if code == "AccessDeniedException")
    );
    assert!(e.hint().is_some());
    // Nothing to end: the session was never started.
    assert_eq!(
        ops(&requests),
        vec![(
            "StartSession",
            json!({
                "Target": "mi-0123456789abcdef0",
                "Reason": "disk full",
                "Parameters": { "shellProfile": ["bash"] },
            })
        )]
    );
}

fn started(token: &str) -> Reply {
    ok(
        json!({ "SessionId": SID, "TokenValue": token, "StreamUrl": "http://queues.test/000000000000/to-client" }),
    )
}

#[tokio::test]
async fn a_token_this_client_cannot_use_ends_the_session_it_started() {
    let terminated = ok(json!({ "SessionId": SID }));
    let (result, _, requests) = steward(
        &["start", "mi-0123456789abcdef0"],
        false,
        vec![started("not a token"), terminated],
    )
    .await;
    let e = result.unwrap_err().to_string();
    assert!(
        e.contains("TokenValue") && e.contains("not one Steward issued"),
        "{e}"
    );
    assert_eq!(
        ops(&requests),
        vec![
            ("StartSession", json!({ "Target": "mi-0123456789abcdef0" })),
            ("TerminateSession", json!({ "SessionId": SID })),
        ]
    );

    // Another session's token, and then ending the session fails too.
    let other = token("bob-0123456789abcdef0", "ASIAOTHER", "2030-01-01T00:00:00Z").encode();
    let (result, _, requests) = steward(
        &["start", "mi-0123456789abcdef0"],
        false,
        vec![started(&other), error("InternalServerError", "try again")],
    )
    .await;
    let e = result.unwrap_err().to_string();
    assert!(e.contains("bob-0123456789abcdef0"), "{e}");
    assert!(
        e.contains(&format!("steward session terminate {SID}")),
        "{e}"
    );
    assert!(
        !e.contains("secret-of-") && !e.contains("session-token-of-"),
        "{e}"
    );
    assert_eq!(requests.len(), 2);
}

// --- the token's queues -----------------------------------------------------

#[test]
fn the_sqs_endpoint_comes_from_the_sqs_variable_then_the_general_one() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        sqs_endpoint(env(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_SQS", "http://sqs:2"),
        ])),
        Some("http://sqs:2".into())
    );
    assert_eq!(
        sqs_endpoint(env(&[
            ("AWS_ENDPOINT_URL", "http://all:1"),
            ("AWS_ENDPOINT_URL_SQS", " ")
        ])),
        Some("http://all:1".into())
    );
    assert_eq!(sqs_endpoint(env(&[])), None);
}

#[test]
fn credentials_are_renewed_five_minutes_before_they_expire() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let at = |secs: u64| now + Duration::from_secs(secs);
    assert_eq!(refresh_delay(now, at(3600)), Duration::from_secs(3300));
    // Inside the last five minutes (a renewal failed): half of what is left.
    assert_eq!(refresh_delay(now, at(300)), Duration::from_secs(150));
    assert_eq!(refresh_delay(now, at(120)), Duration::from_secs(60));
    // Never a busy loop, even past the expiration.
    assert_eq!(refresh_delay(now, at(4)), queue::MIN_REFRESH_DELAY);
    assert_eq!(refresh_delay(at(10), now), queue::MIN_REFRESH_DELAY);

    let t = token(SID, "ASIAONE", "2026-12-02T10:00:00Z");
    assert_eq!(
        queue::expiration(&t).unwrap(),
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_205_600)
    );
    let bad = token(SID, "ASIAONE", "tomorrow");
    assert!(matches!(
        queue::expiration(&bad),
        Err(LinkError::Expiration(_))
    ));
}

#[test]
fn the_sqs_client_is_in_the_tokens_region_and_shows_no_secret() {
    let t = token(SID, "ASIAONE", "2030-01-01T00:00:00Z");
    let client = queue::sqs_client(&t, Some("http://127.0.0.1:9")).unwrap();
    let conf = client.config();
    assert_eq!(conf.region().map(|r| r.as_ref()), Some("eu-west-3"));
    let shown = format!("{conf:?} {t:?}");
    assert!(
        !shown.contains("secret-of-") && !shown.contains("session-token-of-"),
        "{shown}"
    );
}

/// One request as a fake SQS saw it.
#[derive(Debug, Clone)]
struct SqsRequest {
    operation: String,
    headers: HashMap<String, String>,
    body: Value,
}

/// A local SQS endpoint (JSON protocol) that records requests and answers
/// each with the answer `respond` gives for its operation.
async fn fake_sqs(
    respond: impl Fn(&str) -> Value + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<SqsRequest>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (record, respond) = (Arc::clone(&seen), Arc::new(respond));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let (record, respond) = (Arc::clone(&record), Arc::clone(&respond));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let headers: HashMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let start = head_end + 4;
                    while buf.len() < start + length {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body =
                        serde_json::from_slice(&buf[start..start + length]).unwrap_or(Value::Null);
                    buf.drain(..start + length);
                    let operation = headers
                        .get("x-amz-target")
                        .and_then(|t| t.strip_prefix("AmazonSQS."))
                        .unwrap_or_default()
                        .to_string();
                    let answer = respond(&operation).to_string();
                    record.lock().unwrap().push(SqsRequest {
                        operation,
                        headers,
                        body,
                    });
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn the_queues_use_the_tokens_credentials_and_switch_on_renewal() {
    let (endpoint, seen) = fake_sqs(|operation| match operation {
        "ReceiveMessage" => json!({ "Messages": [
            { "MessageId": "m-1", "Body": "batch-1", "ReceiptHandle": "r-1" },
        ] }),
        "SendMessage" => json!({ "MessageId": "m-2" }),
        _ => json!({}),
    })
    .await;
    let first = token(SID, "ASIAONE", "2030-01-01T00:00:00Z");
    let link = SessionLink::open(&first, SID, Some(endpoint)).unwrap();
    let (receive, send) = (link.receive_queue(), link.send_queue());

    assert_eq!(
        receive.receive(20).await.unwrap(),
        vec![("batch-1".to_string(), "r-1".to_string())]
    );
    receive.delete("r-1").await.unwrap();
    send.send("batch-2").await.unwrap();

    let renewed = token(SID, "ASIATWO", "2030-01-01T01:00:00Z");
    let expires = link.replace(&renewed).unwrap();
    assert_eq!(expires, queue::expiration(&renewed).unwrap());
    send.send("batch-3").await.unwrap();

    let seen = seen.lock().unwrap().clone();
    let summary: Vec<(&str, Value)> = seen
        .iter()
        .map(|r| (r.operation.as_str(), r.body.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "ReceiveMessage",
                json!({ "QueueUrl": first.receive_queue_url, "WaitTimeSeconds": 20, "MaxNumberOfMessages": 10 })
            ),
            (
                "DeleteMessage",
                json!({ "QueueUrl": first.receive_queue_url, "ReceiptHandle": "r-1" })
            ),
            (
                "SendMessage",
                json!({ "QueueUrl": first.send_queue_url, "MessageBody": "batch-2" })
            ),
            (
                "SendMessage",
                json!({ "QueueUrl": first.send_queue_url, "MessageBody": "batch-3" })
            ),
        ]
    );
    // Signed by the token's key in the token's region, with its session token;
    // after the renewal, by the new one.
    for (i, r) in seen.iter().enumerate() {
        let who = if i < 3 { "ASIAONE" } else { "ASIATWO" };
        let auth = r.headers.get("authorization").cloned().unwrap_or_default();
        assert!(
            auth.contains(&format!("Credential={who}/")) && auth.contains("/eu-west-3/sqs/"),
            "{auth}"
        );
        assert_eq!(
            r.headers.get("x-amz-security-token").map(String::as_str),
            Some(format!("session-token-of-{who}").as_str())
        );
    }
}

#[test]
fn a_renewal_must_be_for_the_same_session_and_key() {
    let first = token(SID, "ASIAONE", "2030-01-01T00:00:00Z");
    let link = SessionLink::open(&first, SID, Some("http://127.0.0.1:9".into())).unwrap();
    let other = token("bob-0123456789abcdef0", "ASIATWO", "2030-01-01T01:00:00Z");
    assert!(matches!(
        link.replace(&other),
        Err(LinkError::WrongSession { .. })
    ));
    let mut rekeyed = token(SID, "ASIATWO", "2030-01-01T01:00:00Z");
    rekeyed.key = Secret::new(SessionKey::from_bytes([6; 32]).expose_base64());
    assert!(matches!(link.replace(&rekeyed), Err(LinkError::KeyChanged)));
    let mut no_queue = token(SID, "ASIATWO", "2030-01-01T01:00:00Z");
    no_queue.send_queue_url.clear();
    assert!(matches!(
        SessionLink::open(&no_queue, SID, None),
        Err(LinkError::NoQueue(_))
    ));
}

// --- the interactive loop over a channel ------------------------------------

/// The client's loop and an agent's end of the same channel, over queues in memory.
struct Session {
    input: mpsc::Sender<Input>,
    controls: mpsc::Sender<Control>,
    agent: pump::ChannelEnds,
    client: tokio::task::JoinHandle<(Result<Finish, InteractError>, Vec<u8>)>,
}

fn session_pair(initial: Option<(u16, u16)>) -> Session {
    let (client_ends, agent) = pump::memory_pair(SID, key());
    let (input, input_rx) = mpsc::channel(4);
    let (controls, controls_rx) = mpsc::channel(4);
    let client = tokio::spawn(async move {
        let mut out = Vec::new();
        let finished = interact(client_ends, input_rx, controls_rx, initial, &mut out).await;
        (finished, out)
    });
    Session {
        input,
        controls,
        agent,
        client,
    }
}

async fn next(rx: &mut mpsc::Receiver<Body>) -> Body {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("a body within the limit")
        .expect("the channel open")
}

async fn finished(s: Session) -> (Result<Finish, InteractError>, Vec<u8>, pump::ChannelEnds) {
    let (result, out) = tokio::time::timeout(LIMIT, s.client)
        .await
        .expect("the loop ends within the limit")
        .expect("the loop does not panic");
    (result, out, s.agent)
}

#[tokio::test]
async fn keystrokes_and_resizes_reach_the_agent_and_its_output_the_terminal() {
    let mut s = session_pair(Some((120, 40)));
    assert_eq!(
        next(&mut s.agent.inbound).await,
        Body::Resize {
            cols: 120,
            rows: 40
        }
    );
    s.input
        .send(Input::Bytes(b"echo $((6*7))\r".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        next(&mut s.agent.inbound).await,
        Body::Data(b"echo $((6*7))\r".to_vec())
    );
    // Ctrl-C is a byte like any other.
    s.input.send(Input::Bytes(vec![0x03])).await.unwrap();
    assert_eq!(next(&mut s.agent.inbound).await, Body::Data(vec![0x03]));
    s.controls
        .send(Control::Resize {
            cols: 100,
            rows: 30,
        })
        .await
        .unwrap();
    assert_eq!(
        next(&mut s.agent.inbound).await,
        Body::Resize {
            cols: 100,
            rows: 30
        }
    );

    s.agent
        .outbound
        .send(Body::Data(b"42\r\n".to_vec()))
        .await
        .unwrap();
    s.agent
        .outbound
        .send(Body::Close {
            reason: "Exited with status 0".into(),
        })
        .await
        .unwrap();
    let (result, out, agent) = finished(s).await;
    assert_eq!(
        result.unwrap(),
        Finish::AgentClosed("Exited with status 0".into())
    );
    assert_eq!(out, b"42\r\n");
    // The client acknowledged the Close before it went.
    let ended = tokio::time::timeout(LIMIT, agent.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ended, ChannelEnd::Closed);
}

#[tokio::test]
async fn without_a_terminal_no_size_is_sent_and_end_of_input_ends_the_loop() {
    let mut s = session_pair(None);
    s.input
        .send(Input::Bytes(b"uptime\n".to_vec()))
        .await
        .unwrap();
    // The first body is the input: no Resize came before it.
    assert_eq!(
        next(&mut s.agent.inbound).await,
        Body::Data(b"uptime\n".to_vec())
    );
    s.input.send(Input::Eof).await.unwrap();
    let (result, out, _) = finished(s).await;
    assert_eq!(result.unwrap(), Finish::InputEnded);
    assert!(out.is_empty());
}

#[tokio::test]
async fn a_stop_signal_ends_the_loop_and_a_read_error_is_reported() {
    let s = session_pair(None);
    s.controls.send(Control::Stop("SIGTERM")).await.unwrap();
    let (result, _, _) = finished(s).await;
    assert_eq!(result.unwrap(), Finish::Stopped("SIGTERM"));

    let s = session_pair(None);
    s.input
        .send(Input::Failed(std::io::Error::other("stdin went away")))
        .await
        .unwrap();
    let (result, _, _) = finished(s).await;
    let e = result.unwrap_err();
    assert!(matches!(e, InteractError::Input(_)));
    assert!(e.to_string().contains("stdin went away"));
}

#[tokio::test]
async fn resume_session_hands_the_queues_fresh_credentials() {
    let (endpoint, seen) = fake_sqs(|_| json!({ "MessageId": "m-1" })).await;
    let first = token(SID, "ASIAONE", "2030-01-01T00:00:00Z");
    let link = SessionLink::open(&first, SID, Some(endpoint)).unwrap();
    let renewed = token(SID, "ASIATWO", "2030-01-01T01:00:00Z");
    let fake = fake_ssm::FakeSsm::start(vec![
        ok(json!({ "SessionId": SID, "TokenValue": renewed.encode(), "StreamUrl": renewed.receive_queue_url })),
        error("ThrottlingException", "slow down"),
    ])
    .await;

    let expires = resume(&fake.client, SID, &link).await.unwrap();
    assert_eq!(expires, queue::expiration(&renewed).unwrap());
    link.send_queue().send("batch").await.unwrap();
    let auth = seen.lock().unwrap()[0]
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default();
    assert!(auth.contains("Credential=ASIATWO/"), "{auth}");

    // A failed renewal says why; the queues keep what they had.
    let e = resume(&fake.client, SID, &link).await.unwrap_err();
    assert!(
        matches!(&e, CliError::Api { operation: "ResumeSession", code, .. } if code == "ThrottlingException")
    );
    assert_eq!(
        ops(&fake.requests()),
        vec![
            ("ResumeSession", json!({ "SessionId": SID })),
            ("ResumeSession", json!({ "SessionId": SID })),
        ]
    );
}
