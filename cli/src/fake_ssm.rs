//! A scripted SSM endpoint for tests: a local HTTP server that records each
//! request (its `X-Amz-Target` operation and JSON body) and answers with the
//! next reply of its script. The real SDK client talks to it, so tests see
//! the requests as they go on the wire and the answers as the SDK reads them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aws_sdk_ssm::Client;
use aws_sdk_ssm::config::{BehaviorVersion, Credentials, Region};
use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::args::{Cli, Command};
use crate::commands::Ctx;
use crate::error::{CliError, Exit};
use crate::iam::IamClient;

/// One scripted answer: an HTTP status and a JSON body.
pub struct Reply {
    status: u16,
    body: Value,
}

/// A successful answer.
pub fn ok(body: Value) -> Reply {
    Reply { status: 200, body }
}

/// An SSM error answer (`__type` and `message`, as JSON 1.1 sends them).
pub fn error(code: &str, message: &str) -> Reply {
    Reply {
        status: 400,
        body: json!({ "__type": code, "message": message }),
    }
}

/// A request the server received: the operation and its JSON body.
#[derive(Debug, Clone)]
pub struct Request {
    pub operation: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    replies: VecDeque<Reply>,
    requests: Vec<Request>,
}

pub struct FakeSsm {
    pub client: Client,
    state: Arc<Mutex<State>>,
}

impl FakeSsm {
    /// Serves `replies`, in order, on a port of 127.0.0.1.
    pub async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State {
            replies: replies.into(),
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .endpoint_url(format!("http://{addr}"))
            .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled())
            .build();
        FakeSsm {
            client: Client::from_conf(conf),
            state,
        }
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("state").requests.clone()
    }

    /// Replies not used yet.
    pub fn unused(&self) -> usize {
        self.state.lock().expect("state").replies.len()
    }
}

/// What a test run gives back: the exit (or error), what stdout showed, and
/// the requests sent.
pub type Outcome = (Result<Exit, CliError>, String, Vec<Request>);

/// Parses `steward <subcommand> <args…>`.
pub fn parse(subcommand: &str, args: &[&str]) -> Result<Command, clap::Error> {
    let cli = Cli::try_parse_from(
        ["steward", subcommand]
            .into_iter()
            .chain(args.iter().copied()),
    )?;
    Ok(cli.command)
}

/// A context whose client talks to `fake`, not on a terminal.
pub fn ctx(fake: &FakeSsm, json: bool) -> Ctx {
    Ctx {
        client: fake.client.clone(),
        iam: IamClient::new(None, None),
        json,
        stdout_is_terminal: false,
        wide: false,
        endpoint: None,
    }
}

/// Runs `run` against a server that answers `replies`, and checks that it
/// asked for every one.
pub async fn session(
    replies: Vec<Reply>,
    run: impl AsyncFnOnce(&FakeSsm, &mut Vec<u8>) -> Result<Exit, CliError>,
) -> Outcome {
    let fake = FakeSsm::start(replies).await;
    let mut out = Vec::new();
    let result = run(&fake, &mut out).await;
    assert_eq!(fake.unused(), 0, "every scripted reply is asked for");
    (
        result,
        String::from_utf8(out).expect("utf-8"),
        fake.requests(),
    )
}

/// Each request's operation and body, to compare with the expected ones.
pub fn ops(requests: &[Request]) -> Vec<(&str, Value)> {
    requests
        .iter()
        .map(|r| (r.operation.as_str(), r.body.clone()))
        .collect()
}

/// Answers the requests of one connection (kept alive) until it closes.
async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Value =
            serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
        buf.drain(..head_end + length);
        let operation = header("x-amz-target")
            .and_then(|t| t.strip_prefix("AmazonSSM.").map(str::to_string))
            .unwrap_or_default();
        let reply = {
            let mut s = state.lock().expect("state");
            s.requests.push(Request { operation, body });
            s.replies.pop_front().unwrap_or_else(|| {
                error(
                    "UnexpectedRequest",
                    "the test's script has no reply left for this request",
                )
            })
        };
        let text = reply.body.to_string();
        let response = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{text}",
            reply.status,
            text.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}
