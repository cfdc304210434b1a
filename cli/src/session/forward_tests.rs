use std::time::Duration;

use steward_core::sessions::SessionKey;
use steward_core::sessions::pump;
use tokio::net::TcpStream;

use super::*;
use crate::args::Command;
use crate::fake_ssm;
use crate::session::SessionCommand;

const SID: &str = "alice-0123456789abcdef0";
const LIMIT: Duration = Duration::from_secs(20);

fn key() -> SessionKey {
    SessionKey::from_bytes([7; 32])
}

fn forward_args(args: &[&str]) -> SessionForwardArgs {
    match fake_ssm::parse("session", &[&["forward"], args].concat()) {
        Ok(Command::Session(SessionCommand::Forward(a))) => a,
        other => panic!("not session forward: {other:?}"),
    }
}

#[test]
fn the_arguments_choose_the_document_and_its_parameters() {
    let args = forward_args(&["mi-0123456789abcdef0", "--remote-port", "5432"]);
    assert_eq!(args.local_port, None);
    let (document, parameters) = args.request(40000);
    assert_eq!(document, "AWS-StartPortForwardingSession");
    assert_eq!(
        parameters,
        BTreeMap::from([
            ("portNumber".to_string(), vec!["5432".to_string()]),
            ("localPortNumber".to_string(), vec!["40000".to_string()]),
        ])
    );

    let args = forward_args(&[
        "mi-0123456789abcdef0",
        "--remote-port",
        "443",
        "--local-port",
        "8443",
        "--host",
        "db.internal",
        "--reason",
        "migration",
    ]);
    assert_eq!(args.local_port, Some(8443));
    assert_eq!(args.reason.as_deref(), Some("migration"));
    let (document, parameters) = args.request(8443);
    assert_eq!(document, "AWS-StartPortForwardingSessionToRemoteHost");
    assert_eq!(parameters["host"], vec!["db.internal".to_string()]);
    assert_eq!(parameters["portNumber"], vec!["443".to_string()]);
    assert_eq!(parameters["localPortNumber"], vec!["8443".to_string()]);

    for bad in [
        &["mi-1"][..],
        &["mi-1", "--remote-port", "70000"],
        &["mi-1", "--remote-port", "80", "--local-port", "x"],
    ] {
        let parsed = fake_ssm::parse("session", &[&["forward"], bad].concat());
        assert!(parsed.is_err(), "{bad:?} is refused");
    }
}

#[test]
fn ctrl_c_and_the_agents_close_exit_0_other_signals_do_not() {
    assert_eq!(
        Finish::AgentClosed("idle".into()).outcome(),
        (false, Exit::Ok)
    );
    assert_eq!(Finish::Stopped("SIGINT").outcome(), (true, Exit::Ok));
    assert_eq!(
        Finish::Stopped("SIGTERM").outcome(),
        (true, Exit::CommandFailed)
    );
    assert_eq!(
        Finish::Stopped("SIGHUP").outcome(),
        (true, Exit::CommandFailed)
    );
}

// --- the relay against an agent end in memory --------------------------------

/// What the fake agent reports to the test.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Opened(u32),
    ClientClosed(u32),
}

/// The relay over a channel whose other end is a fake agent that echoes
/// every stream (and closes it once the client closed), keeping to the
/// client's credit and granting what it takes.
struct Forwarding {
    port: u16,
    /// Bodies for the fake agent to send (stream bookkeeping applied).
    agent_says: mpsc::Sender<Body>,
    seen: mpsc::Receiver<Seen>,
    stops: mpsc::Sender<&'static str>,
    relay: JoinHandle<(Result<Finish, ForwardError>, Vec<u8>)>,
    agent: JoinHandle<Vec<Body>>,
}

async fn forwarding() -> Forwarding {
    let (client_ends, agent_ends) = pump::memory_pair(SID, key());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stops, stops_rx) = mpsc::channel(1);
    let relay = tokio::spawn(async move {
        let mut log = Vec::new();
        let finished = relay(client_ends, listener, stops_rx, SID, &mut log).await;
        (finished, log)
    });
    let (agent_says, says_rx) = mpsc::channel(8);
    let (seen_tx, seen) = mpsc::channel(64);
    let agent = tokio::spawn(echo_agent(agent_ends, says_rx, seen_tx));
    Forwarding {
        port,
        agent_says,
        seen,
        stops,
        relay,
        agent,
    }
}

/// Echoes each stream within the client's credit; answers the client's
/// close with its own. Ends when told to send Close (the bodies it received
/// that it did not expect are returned).
async fn echo_agent(
    ends: ChannelEnds,
    mut says: mpsc::Receiver<Body>,
    seen: mpsc::Sender<Seen>,
) -> Vec<Body> {
    let ChannelEnds {
        outbound,
        mut inbound,
        task,
    } = ends;
    let mut streams = Streams::new(Direction::AgentToClient);
    // Bytes to echo per stream, and whether the client closed it; a stream
    // this end closed is forgotten here.
    let mut backlog: HashMap<u32, (VecDeque<u8>, bool)> = HashMap::new();
    let mut unexpected = Vec::new();
    loop {
        tokio::select! {
            body = inbound.recv() => {
                let Some(body) = body else { break };
                streams.on_receive(&body).expect("the client keeps the stream rules");
                match body {
                    Body::StreamOpen { stream } => {
                        backlog.insert(stream, (VecDeque::new(), false));
                        seen.send(Seen::Opened(stream)).await.unwrap();
                    }
                    Body::StreamData { stream, data } => {
                        let credit = u32::try_from(data.len()).unwrap();
                        if let Some((bytes, _)) = backlog.get_mut(&stream) {
                            bytes.extend(data);
                        }
                        outbound.send(streams.grant(stream, credit).unwrap()).await.unwrap();
                    }
                    Body::StreamClose { stream } => {
                        if let Some((_, client_closed)) = backlog.get_mut(&stream) {
                            *client_closed = true;
                        }
                        seen.send(Seen::ClientClosed(stream)).await.unwrap();
                    }
                    Body::WindowUpdate { .. } => {}
                    other => unexpected.push(other),
                }
            }
            said = says.recv() => {
                let Some(body) = said else { break };
                match &body {
                    Body::StreamClose { stream } => {
                        streams.close(*stream).unwrap();
                        backlog.remove(stream);
                    }
                    Body::Close { .. } => {
                        outbound.send(body).await.unwrap();
                        drop(outbound);
                        let _ = tokio::time::timeout(LIMIT, task).await;
                        return unexpected;
                    }
                    _ => {}
                }
                outbound.send(body).await.unwrap();
            }
        }
        // Echo what the credit allows; close what is drained and closed.
        let ids: Vec<u32> = backlog.keys().copied().collect();
        for stream in ids {
            let (bytes, client_closed) = backlog.get_mut(&stream).unwrap();
            let credit = streams.send_credit(stream).unwrap_or(0) as usize;
            let n = bytes.len().min(credit).min(MAX_PAYLOAD);
            if n > 0 {
                let chunk: Vec<u8> = bytes.drain(..n).collect();
                outbound
                    .send(streams.send_data(stream, chunk).unwrap())
                    .await
                    .unwrap();
            }
            if bytes.is_empty() && *client_closed {
                outbound.send(streams.close(stream).unwrap()).await.unwrap();
                backlog.remove(&stream);
            }
        }
    }
    unexpected
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} within the limit"))
}

/// Connects, sends `payload`, half-closes, and reads until the end.
async fn echo_through(port: u16, payload: Vec<u8>) -> Vec<u8> {
    let socket = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    let (mut read, mut write) = socket.into_split();
    let writing = tokio::spawn(async move {
        write.write_all(&payload).await.unwrap();
        write.shutdown().await.unwrap();
        // Kept open until the reading is done: a dropped half would close.
        write
    });
    let mut back = Vec::new();
    read.read_to_end(&mut back).await.unwrap();
    drop(writing.await.unwrap());
    back
}

#[tokio::test]
async fn five_connections_at_once_each_get_their_own_bytes_back() {
    let mut f = forwarding().await;
    // More than the initial credit each way: WindowUpdates must flow.
    let payloads: Vec<Vec<u8>> = (0u8..5)
        .map(|i| {
            (0..300 * 1024)
                .map(|n: u32| (n % 251) as u8 ^ i.wrapping_mul(37))
                .collect()
        })
        .collect();
    let clients: Vec<_> = payloads
        .iter()
        .cloned()
        .map(|p| tokio::spawn(echo_through(f.port, p)))
        .collect();
    for (client, sent) in clients.into_iter().zip(&payloads) {
        let back = within("the echo", client).await.unwrap();
        assert_eq!(back.len(), sent.len());
        assert!(
            back == *sent,
            "a connection got bytes that were not its own"
        );
    }

    let mut opened = Vec::new();
    let mut closed = Vec::new();
    while opened.len() < 5 || closed.len() < 5 {
        match within("the agent's view", f.seen.recv()).await.unwrap() {
            Seen::Opened(s) => opened.push(s),
            Seen::ClientClosed(s) => closed.push(s),
        }
    }
    opened.sort_unstable();
    closed.sort_unstable();
    assert_eq!(opened, vec![1, 3, 5, 7, 9]);
    assert_eq!(closed, opened);

    f.agent_says
        .send(Body::Close {
            reason: "TerminateSession".into(),
        })
        .await
        .unwrap();
    let (finished, log) = within("the relay's end", f.relay).await.unwrap();
    assert_eq!(
        finished.unwrap(),
        Finish::AgentClosed("TerminateSession".into())
    );
    let log = String::from_utf8(log).unwrap();
    assert_eq!(
        log.matches(&format!("Connection accepted for session [{SID}]\n"))
            .count(),
        5,
        "{log}"
    );
    assert!(within("the agent's end", f.agent).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_agents_stream_close_ends_that_connection_and_its_close_the_command() {
    let mut f = forwarding().await;
    let mut kept = TcpStream::connect((Ipv4Addr::LOCALHOST, f.port))
        .await
        .unwrap();
    assert_eq!(
        within("the open", f.seen.recv()).await,
        Some(Seen::Opened(1))
    );
    let mut closed = TcpStream::connect((Ipv4Addr::LOCALHOST, f.port))
        .await
        .unwrap();
    assert_eq!(
        within("the open", f.seen.recv()).await,
        Some(Seen::Opened(3))
    );

    // As the agent does when it cannot reach host:port.
    f.agent_says
        .send(Body::StreamClose { stream: 3 })
        .await
        .unwrap();
    let mut rest = Vec::new();
    within("the end of the connection", closed.read_to_end(&mut rest))
        .await
        .unwrap();
    assert!(rest.is_empty());
    // The local side's close completes the stream.
    drop(closed);
    assert_eq!(
        within("the client's close", f.seen.recv()).await,
        Some(Seen::ClientClosed(3))
    );

    // The other connection is untouched.
    kept.write_all(b"still here").await.unwrap();
    let mut buf = [0u8; 10];
    within("the echo", kept.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"still here");

    f.agent_says
        .send(Body::Close {
            reason: "Exited".into(),
        })
        .await
        .unwrap();
    let (finished, _) = within("the relay's end", f.relay).await.unwrap();
    let finish = finished.unwrap();
    assert_eq!(finish, Finish::AgentClosed("Exited".into()));
    assert_eq!(finish.outcome(), (false, Exit::Ok));
    // The listener and the connections went with the relay.
    let mut end = Vec::new();
    within("the end of the kept connection", kept.read_to_end(&mut end))
        .await
        .unwrap();
    assert!(end.is_empty());
    assert!(
        TcpStream::connect((Ipv4Addr::LOCALHOST, f.port))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_stop_signal_ends_the_relay() {
    let f = forwarding().await;
    f.stops.send("SIGINT").await.unwrap();
    let (finished, _) = within("the relay's end", f.relay).await.unwrap();
    assert_eq!(finished.unwrap(), Finish::Stopped("SIGINT"));
}

#[tokio::test]
async fn a_stream_rule_broken_by_the_agent_closes_the_session() {
    let (client_ends, mut agent) = pump::memory_pair(SID, key());
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let (_stops, stops_rx) = mpsc::channel(1);
    let relay = tokio::spawn(async move {
        let mut log = Vec::new();
        relay(client_ends, listener, stops_rx, SID, &mut log).await
    });
    // Data on a stream nobody opened.
    agent
        .outbound
        .send(Body::StreamData {
            stream: 1,
            data: b"x".to_vec(),
        })
        .await
        .unwrap();
    let e = within("the relay's end", relay).await.unwrap().unwrap_err();
    assert!(matches!(
        e,
        ForwardError::Protocol(FlowError::UnknownStream(1))
    ));
    match within("the Close", agent.inbound.recv()).await {
        Some(Body::Close { reason }) => assert!(reason.contains("stream 1"), "{reason}"),
        other => panic!("expected Close, got {other:?}"),
    }
}

// --- the command against a fake API -----------------------------------------

async fn steward_forward(args: &[&str], replies: Vec<fake_ssm::Reply>) -> fake_ssm::Outcome {
    let args = forward_args(args);
    fake_ssm::session(replies, async |fake, _out| {
        forward(&fake_ssm::ctx(fake, false), &args).await
    })
    .await
}

#[tokio::test]
async fn forward_asks_for_the_forwarding_document_and_ends_a_session_it_cannot_join() {
    let (result, _, requests) = steward_forward(
        &[
            "mi-0123456789abcdef0",
            "--remote-port",
            "5432",
            "--host",
            "db.internal",
            "--reason",
            "migration",
        ],
        vec![
            fake_ssm::ok(json!({ "SessionId": SID, "TokenValue": "not a token" })),
            fake_ssm::ok(json!({ "SessionId": SID })),
        ],
    )
    .await;
    assert!(result.unwrap_err().to_string().contains("TokenValue"));
    let requests = fake_ssm::ops(&requests);
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (operation, body) = &requests[0];
    assert_eq!(*operation, "StartSession");
    assert_eq!(body["Target"], "mi-0123456789abcdef0");
    assert_eq!(body["DocumentName"], REMOTE_HOST_DOCUMENT);
    assert_eq!(body["Reason"], "migration");
    assert_eq!(body["Parameters"]["host"], json!(["db.internal"]));
    assert_eq!(body["Parameters"]["portNumber"], json!(["5432"]));
    // Any free port was taken, and the request names it.
    let local: u16 = body["Parameters"]["localPortNumber"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(local, 0);
    assert_eq!(
        requests[1],
        ("TerminateSession", json!({ "SessionId": SID }))
    );
}

#[tokio::test]
async fn a_local_port_in_use_fails_before_any_session_starts() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (result, _, requests) = steward_forward(
        &[
            "mi-0123456789abcdef0",
            "--remote-port",
            "80",
            "--local-port",
            &port,
        ],
        vec![],
    )
    .await;
    let e = result.unwrap_err().to_string();
    assert!(
        e.contains(&format!("127.0.0.1:{port}")) && e.contains("--local-port"),
        "{e}"
    );
    assert!(requests.is_empty());
}
