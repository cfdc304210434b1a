//! The loop between a session's process and its channel: output goes out
//! as it comes (what one read finds, and whatever else is ready at once,
//! in one frame), input and resizes go in from a task of their own (a
//! process that does not read its input must not stop its output), and
//! the session ends on the first of: exit, idle timeout, maximum duration,
//! a stop from outside, the client's Close, the channel's failure.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_core::sessions::Body;
use steward_core::sessions::pump::{self, ChannelEnd, ChannelEnds};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::shell::{Process, describe_exit};
use super::{CLOSE_WAIT, StopCause};
use crate::api::HttpClient;
use crate::session::pty::AsyncIo;

/// Largest read from the process: one frame's data.
const CHUNK: usize = 16 * 1024;
/// After the process exits, how long output still held by what it left
/// behind (a background job on the terminal) is waited for.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// The longest a transcript upload may take.
const TRANSCRIPT_UPLOAD_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// No data either way for this long ends the session.
    pub idle: Option<Duration>,
    /// The session ends this long after it started.
    pub max: Option<Duration>,
}

/// When data last went either way.
pub(super) struct Activity(Mutex<Instant>);

impl Activity {
    pub(super) fn new() -> Self {
        Self(Mutex::new(Instant::now()))
    }
    pub(super) fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Limits {
    /// When the session ends for idleness if nothing goes either way before.
    pub(super) fn idle_at(&self, activity: &Activity) -> Option<Instant> {
        self.idle.map(|d| activity.last() + d)
    }

    /// The idle timeout's ending, once nothing went either way for that long.
    pub(super) fn idle_ending(&self, activity: &Activity) -> Option<Ending> {
        let idle = self.idle?;
        (activity.last() + idle <= Instant::now()).then(|| {
            Ending::close(format!(
                "idle timeout: no input or output for {} seconds",
                idle.as_secs()
            ))
        })
    }
}

/// Why the input side stopped.
enum InputEnd {
    /// The client closed the session.
    Closed,
    /// The pump ended (its task says why).
    ChannelGone,
}

/// How the session ended, and whether the client is still there to be
/// told with a Close.
pub(super) struct Ending {
    pub(super) reason: String,
    pub(super) send_close: bool,
}

impl Ending {
    pub(super) fn close(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            send_close: true,
        }
    }
}

/// Resolves with the cause once a stop is asked for; a dropped sender
/// counts as the agent stopping.
pub(super) async fn stopped(stop: &mut watch::Receiver<Option<StopCause>>) -> StopCause {
    match stop.wait_for(Option::is_some).await {
        Ok(cause) => cause.unwrap_or(StopCause::AgentStopped),
        Err(_) => StopCause::AgentStopped,
    }
}

pub(super) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the session until it ends; then ends the process group, sends the
/// client Close and waits briefly for its ack. The reason it ended, and the
/// transcript to upload.
pub(super) async fn serve(
    session_id: &str,
    mut process: Process,
    ends: ChannelEnds,
    limits: Limits,
    shell_profile: &str,
    mut stop: watch::Receiver<Option<StopCause>>,
    mut transcript: Option<Transcript>,
) -> (String, Option<Transcript>) {
    let ChannelEnds {
        outbound,
        inbound,
        mut task,
    } = ends;
    let activity = Arc::new(Activity::new());
    let (first_input, queued_input) = mpsc::unbounded_channel();
    if !shell_profile.is_empty() {
        // As SSM does: the profile is typed into the shell first.
        let mut lines = shell_profile.replace("\r\n", "\n");
        if !lines.ends_with('\n') {
            lines.push('\n');
        }
        let _ = first_input.send(lines.into_bytes());
    }
    drop(first_input);
    let mut input = tokio::spawn(input_loop(
        session_id.to_string(),
        inbound,
        queued_input,
        Arc::clone(&process.input),
        process.terminal.then(|| Arc::clone(&process.output)),
        Arc::clone(&activity),
    ));
    let ending = run_until_end(
        session_id,
        &mut process,
        &outbound,
        &mut task,
        &mut input,
        &activity,
        limits,
        &mut stop,
        &mut transcript,
    )
    .await;
    input.abort();
    process.end().await;
    finish_channel(session_id, &ending, outbound, task).await;
    if let Some(t) = transcript.as_mut() {
        t.finish().await;
    }
    (ending.reason, transcript)
}

/// Ends the channel as `ending` says: sends the client Close (when it is
/// still there to be told) and waits briefly for its ack, or lets the pump
/// acknowledge the client's own Close; then stops the pump.
pub(super) async fn finish_channel(
    session_id: &str,
    ending: &Ending,
    outbound: mpsc::Sender<Body>,
    mut task: JoinHandle<Result<ChannelEnd, pump::PumpError>>,
) {
    let close = Body::Close {
        reason: ending.reason.clone(),
    };
    // Bounded: with the client gone and the window full, the pump takes
    // nothing more.
    if ending.send_close && outbound.send_timeout(close, CLOSE_WAIT).await.is_ok() {
        drop(outbound);
        match tokio::time::timeout(pump::CLOSE_GRACE + CLOSE_WAIT, &mut task).await {
            Ok(Ok(Ok(end))) => tracing::debug!(session_id, ?end, "session channel closed"),
            Ok(Ok(Err(e))) => {
                tracing::warn!(session_id, error = %e, "session channel failed while closing")
            }
            Ok(Err(e)) => tracing::warn!(session_id, error = %e, "session channel task failed"),
            Err(_) => tracing::warn!(
                session_id,
                "the client did not acknowledge the session's close"
            ),
        }
    } else if !task.is_finished() {
        // The client closed: the pump acknowledges and ends on its own.
        let _ = tokio::time::timeout(pump::CLOSE_GRACE + CLOSE_WAIT, &mut task).await;
    }
    task.abort();
}

#[allow(clippy::too_many_arguments)]
async fn run_until_end(
    session_id: &str,
    process: &mut Process,
    outbound: &mpsc::Sender<Body>,
    task: &mut JoinHandle<Result<ChannelEnd, pump::PumpError>>,
    input: &mut JoinHandle<InputEnd>,
    activity: &Activity,
    limits: Limits,
    stop: &mut watch::Receiver<Option<StopCause>>,
    transcript: &mut Option<Transcript>,
) -> Ending {
    let max_at = limits.max.map(|d| Instant::now() + d);
    let output = Arc::clone(&process.output);
    let mut buf = vec![0u8; CHUNK];
    let mut output_open = true;
    let mut drain_until: Option<Instant> = None;
    loop {
        if process.has_exited() && !output_open {
            let status = process.wait().await;
            return Ending::close(match status {
                Ok(s) => describe_exit(s),
                Err(e) => format!("Exited (status unknown: {e})"),
            });
        }
        let idle_at = limits.idle_at(activity);
        tokio::select! {
            read = output.read(&mut buf), if output_open => {
                let n = match read {
                    Ok(0) => {
                        output_open = false;
                        continue;
                    }
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(session_id, error = %e, "cannot read the session's output");
                        output_open = false;
                        continue;
                    }
                };
                let chunk = gather(&output, &mut buf, n);
                activity.touch();
                if let Some(t) = transcript.as_mut() {
                    t.write(&chunk).await;
                }
                // Waits while the client's window is full: but a stop or
                // the maximum duration still ends the session.
                tokio::select! {
                    sent = outbound.send(Body::Data(chunk)) => if sent.is_err() {
                        return channel_gone(session_id, task).await;
                    },
                    cause = stopped(stop) => return Ending::close(cause.reason()),
                    () = sleep_until(max_at) => return max_reached(limits),
                }
            }
            exited = process.wait(), if !process.has_exited() => {
                if let Err(e) = exited {
                    tracing::warn!(session_id, error = %e, "cannot wait for the session's process");
                }
                drain_until = Some(Instant::now() + DRAIN_AFTER_EXIT);
            }
            () = sleep_until(drain_until), if drain_until.is_some() && output_open => {
                output_open = false;
            }
            () = sleep_until(idle_at), if idle_at.is_some() => {
                if let Some(ending) = limits.idle_ending(activity) {
                    return ending;
                }
            }
            () = sleep_until(max_at), if max_at.is_some() => return max_reached(limits),
            cause = stopped(stop) => return Ending::close(cause.reason()),
            ended = &mut *input => {
                return match ended {
                    Ok(InputEnd::Closed) => Ending {
                        reason: "closed by the client".into(),
                        send_close: false,
                    },
                    Ok(InputEnd::ChannelGone) | Err(_) => channel_gone(session_id, task).await,
                };
            }
        }
    }
}

pub(super) fn max_reached(limits: Limits) -> Ending {
    Ending::close(format!(
        "maximum session duration of {} seconds reached",
        limits.max.map(|d| d.as_secs()).unwrap_or_default()
    ))
}

/// What else is ready now joins the first read, up to one chunk: output
/// goes out at once, but not one frame per byte.
fn gather(output: &AsyncIo, buf: &mut [u8], mut n: usize) -> Vec<u8> {
    while n < buf.len() {
        match output.try_read(&mut buf[n..]) {
            Ok(Some(m)) if m > 0 => n += m,
            _ => break,
        }
    }
    buf[..n].to_vec()
}

/// The pump stopped: how it ended says why.
pub(super) async fn channel_gone(
    session_id: &str,
    task: &mut JoinHandle<Result<ChannelEnd, pump::PumpError>>,
) -> Ending {
    let ended = tokio::time::timeout(CLOSE_WAIT, &mut *task).await;
    let reason = match ended {
        Ok(Ok(Ok(ChannelEnd::ClosedByPeer(_)))) => {
            return Ending {
                reason: "closed by the client".into(),
                send_close: false,
            };
        }
        Ok(Ok(Ok(end))) => format!("session channel ended ({end:?})"),
        Ok(Ok(Err(e))) => format!("session channel failed: {e}"),
        Ok(Err(e)) => format!("session channel failed: {e}"),
        Err(_) => "session channel stopped".to_string(),
    };
    tracing::warn!(session_id, reason, "session channel ended");
    Ending {
        reason,
        send_close: false,
    }
}

/// Moves the client's bodies into the process: data to its input (the
/// shell profile first), resizes to its terminal. Ends at the client's
/// Close or when the channel goes.
async fn input_loop(
    session_id: String,
    mut inbound: mpsc::Receiver<Body>,
    mut first: mpsc::UnboundedReceiver<Vec<u8>>,
    input: Arc<AsyncIo>,
    terminal: Option<Arc<AsyncIo>>,
    activity: Arc<Activity>,
) -> InputEnd {
    let mut writer = InputWriter {
        session_id: &session_id,
        input,
        writable: true,
    };
    while let Some(data) = first.recv().await {
        writer.write(&data).await;
    }
    while let Some(body) = inbound.recv().await {
        match body {
            Body::Data(data) => {
                activity.touch();
                writer.write(&data).await;
            }
            Body::Resize { cols, rows } => {
                if let Some(t) = &terminal
                    && let Err(e) = t.resize(cols, rows)
                {
                    tracing::warn!(session_id, cols, rows, error = %e, "cannot resize the session's terminal");
                }
            }
            Body::Close { .. } => return InputEnd::Closed,
            _ => {
                tracing::debug!(session_id, "ignoring a forwarding frame in a shell session");
            }
        }
    }
    InputEnd::ChannelGone
}

struct InputWriter<'a> {
    session_id: &'a str,
    input: Arc<AsyncIo>,
    writable: bool,
}

impl InputWriter<'_> {
    async fn write(&mut self, data: &[u8]) {
        if !self.writable {
            return;
        }
        if let Err(e) = self.input.write_all(data).await {
            // The process closed its input or exited: its exit ends the
            // session; until then what the client types goes nowhere.
            tracing::debug!(session_id = self.session_id, error = %e, "the session's process takes no more input");
            self.writable = false;
        }
    }
}

/// The session's output kept for upload, in a file in the state directory.
pub(super) struct Transcript {
    path: PathBuf,
    file: Option<tokio::fs::File>,
}

impl Transcript {
    pub(super) async fn create(state_dir: &Path, session_id: &str) -> Option<Self> {
        let dir = state_dir.join("sessions");
        // Session ids are SSM's (user-number); keep anything else in the directory.
        let safe: String = session_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{safe}.transcript"));
        let created = async {
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .await
        };
        match created.await {
            Ok(file) => Some(Self {
                path,
                file: Some(file),
            }),
            Err(e) => {
                tracing::warn!(session_id, error = %e, "cannot create the session transcript; it will not be uploaded");
                None
            }
        }
    }

    pub(super) async fn write(&mut self, data: &[u8]) {
        if let Some(file) = self.file.as_mut()
            && let Err(e) = file.write_all(data).await
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the session transcript; the rest is not kept");
            self.file = None;
        }
    }

    pub(super) async fn finish(&mut self) {
        if let Some(file) = self.file.as_mut()
            && let Err(e) = file.flush().await
        {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot write the session transcript");
        }
        self.file = None;
    }

    /// Uploads the transcript to its presigned URL, then removes it. A
    /// failure is logged: the session has ended either way.
    pub(super) async fn upload(self, http: &HttpClient, url: &str, session_id: &str) {
        // Bounded: the agent's shutdown waits for its sessions' tasks.
        match tokio::time::timeout(TRANSCRIPT_UPLOAD_LIMIT, http.put_file(url, &self.path)).await {
            Ok(Ok(())) => tracing::info!(session_id, "session transcript uploaded"),
            Ok(Err(e)) => {
                tracing::warn!(session_id, error = %e, "cannot upload the session transcript")
            }
            Err(_) => tracing::warn!(
                session_id,
                limit_seconds = TRANSCRIPT_UPLOAD_LIMIT.as_secs(),
                "the session transcript upload did not finish in time; dropped"
            ),
        }
        if let Err(e) = tokio::fs::remove_file(&self.path).await {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove the session transcript");
        }
    }

    #[cfg(test)]
    pub(super) fn path(&self) -> &Path {
        &self.path
    }
}
