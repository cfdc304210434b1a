use std::sync::Mutex;

use futures::future::BoxFuture;
use steward_core::channel::{SessionKind, SessionStart, SessionState, SessionUpdate};
use steward_core::sessions::frames::{Frame, encode_batch, encode_frame};
use steward_core::sessions::pump::ChannelEnd;

use super::test_support::{ServedSession, serve, session_start, states};
use super::*;
use crate::wait::{LIMIT, within};

const SID: &str = "alice-0123456789abcdef0";

fn key() -> SessionKey {
    SessionKey::from_bytes([5; 32])
}

fn start_message(kind: SessionKind) -> SessionStart {
    session_start(SID, &key(), "SSM-SessionManagerRunShell", kind)
}

/// `sh` in a terminal: quick to start, and with no profile of its own.
fn interactive_sh() -> SessionKind {
    SessionKind::Shell {
        command: Some("exec sh".into()),
        interactive: true,
    }
}

/// A session served in a task, and what the client read of it.
struct Served {
    served: ServedSession,
    /// Everything the client received as Data, and the Close's reason.
    output: Vec<u8>,
    closed: Option<String>,
}

impl std::ops::Deref for Served {
    type Target = ServedSession;
    fn deref(&self) -> &ServedSession {
        &self.served
    }
}

impl std::ops::DerefMut for Served {
    fn deref_mut(&mut self) -> &mut ServedSession {
        &mut self.served
    }
}

fn serve_session(start: SessionStart) -> Served {
    Served {
        served: serve(
            SID,
            key(),
            start,
            Some(shell::SessionUser::current().unwrap()),
        ),
        output: Vec::new(),
        closed: None,
    }
}

impl Served {
    async fn send(&self, body: Body) {
        self.served.ends.outbound.send(body).await.unwrap();
    }

    async fn type_line(&self, line: &str) {
        self.send(Body::Data(format!("{line}\n").into_bytes()))
            .await;
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Reads the session's output until `needle` appears.
    async fn read_until(&mut self, needle: &str) {
        let what = format!("{needle:?} in the session's output");
        within(&what, LIMIT, async {
            while !self.text().contains(needle) {
                match self.served.ends.inbound.recv().await {
                    Some(Body::Data(d)) => self.output.extend_from_slice(&d),
                    Some(Body::Close { reason }) => {
                        panic!("closed ({reason}) before {needle:?}: {}", self.text())
                    }
                    Some(_) => {}
                    None => panic!("channel gone before {needle:?}: {}", self.text()),
                }
            }
        })
        .await
        .unwrap();
    }

    /// Reads until the agent's Close; its reason.
    async fn read_until_close(&mut self) -> String {
        within("the agent's Close", LIMIT, async {
            loop {
                match self.served.ends.inbound.recv().await {
                    Some(Body::Data(d)) => self.output.extend_from_slice(&d),
                    Some(Body::Close { reason }) => {
                        self.closed = Some(reason.clone());
                        return reason;
                    }
                    Some(_) => {}
                    None => panic!("channel gone before the Close: {}", self.text()),
                }
            }
        })
        .await
        .unwrap()
    }

    /// Waits for the session to end; its reports.
    async fn ended(self) -> Vec<SessionUpdate> {
        self.served.ended().await
    }
}

#[tokio::test]
async fn a_shell_in_a_terminal_answers_and_follows_resizes() {
    let user = shell::SessionUser::current().unwrap();
    let launch = shell::Launch::Command {
        command: "exec sh".into(),
        terminal: true,
    };
    let mut process = shell::Process::spawn(&user, &launch).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut read_until = async |process: &shell::Process, seen: &mut Vec<u8>, needle: &str| {
        let what = format!("{needle:?} from the terminal");
        within(&what, LIMIT, async {
            while !String::from_utf8_lossy(seen).contains(needle) {
                let n = process.output.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "the terminal closed: {}",
                    String::from_utf8_lossy(seen)
                );
                seen.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .unwrap();
    };
    // The expansion shows that the shell ran it, not only the echo of typing.
    process
        .input
        .write_all(b"echo hi-$((40+2))\n")
        .await
        .unwrap();
    read_until(&process, &mut seen, "hi-42").await;
    process.input.write_all(b"stty size\n").await.unwrap();
    read_until(&process, &mut seen, "24 80").await;
    process.output.resize(132, 43).unwrap();
    process.input.write_all(b"stty size\n").await.unwrap();
    read_until(&process, &mut seen, "43 132").await;
    process.input.write_all(b"tty\n").await.unwrap();
    read_until(&process, &mut seen, "/dev/pts/").await;
    process.end().await;
    assert!(process.has_exited());
}

#[tokio::test]
async fn a_non_interactive_command_runs_on_pipes() {
    let user = shell::SessionUser::current().unwrap();
    let launch = shell::Launch::Command {
        command: "echo out; echo err >&2; read line; echo got:$line; test -t 0 || echo no-tty"
            .into(),
        terminal: false,
    };
    let mut process = shell::Process::spawn(&user, &launch).unwrap();
    process.input.write_all(b"typed\n").await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    within("the command's output to end", LIMIT, async {
        loop {
            let n = process.output.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(text, "out\nerr\ngot:typed\nno-tty\n");
    let status = within("the command to exit", LIMIT, process.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shell::describe_exit(status), "Exited with status 0");
}

#[tokio::test]
async fn the_client_types_and_sees_the_answer_then_closes() {
    let mut s = serve_session(start_message(interactive_sh()));
    s.send(Body::Resize {
        cols: 100,
        rows: 30,
    })
    .await;
    s.type_line("echo $((6*7))").await;
    s.read_until("42").await;
    s.type_line("stty size").await;
    s.read_until("30 100").await;
    s.send(Body::Close {
        reason: "client done".into(),
    })
    .await;
    let ChannelEnds { task, .. } = std::mem::replace(&mut s.ends, dummy_ends());
    let end = within("the client's channel to end", LIMIT, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(end, ChannelEnd::Closed);
    let reports = s.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, "closed by the client");
}

/// Ends whose pump is already over, to take the real ones' place.
fn dummy_ends() -> ChannelEnds {
    let (outbound, _) = tokio::sync::mpsc::channel(1);
    let (_, inbound) = tokio::sync::mpsc::channel(1);
    ChannelEnds {
        outbound,
        inbound,
        task: tokio::spawn(async { Ok(ChannelEnd::Abandoned) }),
    }
}

#[tokio::test]
async fn a_forged_frame_never_reaches_the_shell() {
    let mut s = serve_session(start_message(interactive_sh()));
    let forged = Frame {
        session_id: SID.into(),
        direction: Direction::ClientToAgent,
        seq: 1,
        ack: 0,
        body: Body::Data(b"echo FORGED-$((1+1))\n".to_vec()),
    };
    let wrong_key = SessionKey::from_bytes([6; 32]);
    s.to_agent
        .inject(encode_batch(&[encode_frame(&forged, &wrong_key).unwrap()]).unwrap());
    s.type_line("echo ok-$((2+3))").await;
    s.read_until("ok-5").await;
    // The shell runs its input in order: had the forged line reached it,
    // its answer would have come first.
    assert!(!s.text().contains("FORGED-2"), "{}", s.text());
    s.stop.send(Some(StopCause::Terminated)).unwrap();
    let reason = s.read_until_close().await;
    assert_eq!(reason, StopCause::Terminated.reason());
    let reports = s.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, StopCause::Terminated.reason());
}

#[tokio::test]
async fn an_idle_session_ends_terminated() {
    let mut start = start_message(interactive_sh());
    start.idle_timeout_seconds = 1;
    let mut s = serve_session(start);
    let reason = s.read_until_close().await;
    assert!(reason.starts_with("idle timeout"), "{reason}");
    let reports = s.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, reason);
}

#[tokio::test]
async fn a_session_ends_at_its_maximum_duration_even_when_busy() {
    let mut start = start_message(SessionKind::Shell {
        command: Some("while :; do echo busy; sleep 0.1; done".into()),
        interactive: true,
    });
    start.max_duration_seconds = 1;
    start.idle_timeout_seconds = 1;
    let mut s = serve_session(start);
    let reason = s.read_until_close().await;
    assert!(reason.starts_with("maximum session duration"), "{reason}");
    assert!(s.text().contains("busy"), "{}", s.text());
    let reports = s.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
}

#[tokio::test]
async fn the_shell_exiting_ends_the_session_with_its_status() {
    // The profile is typed into a login shell only.
    let mut start = start_message(SessionKind::Shell {
        command: None,
        interactive: true,
    });
    start.shell_profile = "echo profile-$((3*3))\nexit 3".into();
    let mut s = serve_session(start);
    let reason = s.read_until_close().await;
    assert_eq!(reason, "Exited with status 3");
    assert!(s.text().contains("profile-9"), "{}", s.text());
    let reports = s.ended().await;
    assert_eq!(
        states(&reports),
        vec![SessionState::Connected, SessionState::Terminated]
    );
    assert_eq!(reports[1].reason, "Exited with status 3");
}

#[tokio::test]
async fn a_stop_before_the_channel_opens_fails_the_session_once() {
    struct Never;
    impl SessionQueueSource for Never {
        fn open<'a>(
            &'a self,
            _start: &'a SessionStart,
        ) -> BoxFuture<'a, Result<SessionQueues, SessionError>> {
            Box::pin(std::future::pending())
        }
    }
    let reports = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&reports);
    let (stop, rx) = watch::channel(None);
    let state = tempfile::tempdir().unwrap();
    let env = SessionEnv {
        http: HttpClient::new(),
        state_dir: state.path().to_path_buf(),
        user: None,
    };
    let task = tokio::spawn(run(
        start_message(interactive_sh()),
        env,
        Arc::new(Never),
        rx,
        Arc::new(move |u| kept.lock().unwrap().push(u)),
    ));
    stop.send(Some(StopCause::AgentStopped)).unwrap();
    within("the session to end", LIMIT, task)
        .await
        .unwrap()
        .unwrap();
    let reports = reports.lock().unwrap().clone();
    assert_eq!(states(&reports), vec![SessionState::Failed]);
    assert_eq!(reports[0].reason, "agent stopped");
}

#[tokio::test]
async fn the_transcript_keeps_the_output() {
    let state = tempfile::tempdir().unwrap();
    let mut t = serve::Transcript::create(state.path(), "bob/../x")
        .await
        .unwrap();
    assert_eq!(t.path().parent().unwrap(), state.path().join("sessions"));
    t.write(b"hello ").await;
    t.write(b"world").await;
    t.finish().await;
    assert_eq!(std::fs::read(t.path()).unwrap(), b"hello world");
}

#[test]
fn a_missing_run_as_user_fails_with_a_reason() {
    let e = shell::SessionUser::resolve(Some("no-such-user-steward")).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[tokio::test]
async fn as_root_the_session_runs_as_the_run_as_user() {
    if !nix::unistd::geteuid().is_root() {
        // Only root can switch users; the refusal is tested below.
        let e = shell::SessionUser::resolve(Some("root")).unwrap_err();
        assert!(e.to_string().contains("does not run as root"), "{e}");
        return;
    }
    let user = shell::SessionUser::resolve(Some("nobody")).unwrap();
    let launch = shell::Launch::Command {
        command: "id -u; id -g; echo $USER $HOME".into(),
        terminal: false,
    };
    let mut process = shell::Process::spawn(&user, &launch).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    within("the command's output to end", LIMIT, async {
        loop {
            let n = process.output.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&seen),
        format!(
            "{}\n{}\nnobody {}\n",
            user.uid,
            user.gid,
            user.home.display()
        )
    );
    process.end().await;
}

#[test]
fn as_root_without_run_as_the_default_user_is_needed() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    match shell::SessionUser::resolve(None) {
        Ok(user) => assert_eq!(user.name, shell::DEFAULT_SESSION_USER),
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.contains(shell::DEFAULT_SESSION_USER) && e.contains("runAsEnabled"),
                "{e}"
            );
        }
    }
}

/// A presigned-PUT endpoint that keeps the one body it is sent.
async fn put_target() -> (String, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/transcripts/s.log?X-Amz-Signature=x",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the upload ended early");
            buf.extend_from_slice(&chunk[..n]);
            let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            assert!(head.starts_with("put "), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            if buf.len() >= i + 4 + len {
                let body = buf[i + 4..i + 4 + len].to_vec();
                conn.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
                .unwrap();
                return body;
            }
        }
    });
    (url, server)
}

#[tokio::test]
async fn the_transcript_is_uploaded_at_the_end() {
    let (url, server) = put_target().await;
    let mut start = start_message(interactive_sh());
    start.transcript_put_url = Some(url);
    let mut s = serve_session(start);
    s.type_line("echo logged-$((5*5))").await;
    s.read_until("logged-25").await;
    s.type_line("exit 0").await;
    assert_eq!(s.read_until_close().await, "Exited with status 0");
    let state = std::mem::replace(&mut s.state_dir, tempfile::tempdir().unwrap());
    let reports = s.ended().await;
    assert_eq!(reports.len(), 2);
    let uploaded = within("the transcript upload", LIMIT, server)
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&uploaded).contains("logged-25"),
        "{}",
        String::from_utf8_lossy(&uploaded)
    );
    // Uploaded, then removed from the state directory.
    let dir = state.path().join("sessions");
    assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
}
