//! `{{ssm-secure:…}}` on the node. The control plane leaves these references
//! in the signed message; just before a step that has some runs, the agent
//! asks the API for their values (`Steward.GetNodeParameters`, signed with
//! the node's key), writes them into the step's private script, and masks
//! every value in the step's output ("****") before anything reads it:
//! the inline report, the S3 upload. Values live only in memory, in the
//! script (0600, removed when the step ends) and in the step's process.
//! Every report the agent sends goes through [`mask_uplink`] too, so text
//! the agent writes itself (a refusal quoting a substituted working
//! directory, say) is masked like the step's output.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use steward_core::channel::PluginStep;
use steward_core::channel::{
    Heartbeat, InvocationUpdate, MessageRejected, NodeKey, PluginResult, Uplink,
};
use steward_core::clock::now_epoch;
use steward_core::parameters::references::{self, Kind};
use steward_core::secret::Secret;

use crate::api::Api;

/// What replaces a secret in output.
pub const MASK: &str = "****";
const CHUNK: usize = 64 * 1024;

/// Where the values of a command's `ssm-secure:` references come from.
pub trait ParameterSource: Send + Sync {
    /// The values of `names` (targets as written: `name` or
    /// `name:selector`), by name. The error names no value.
    fn fetch<'a>(
        &'a self,
        command_id: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, Secret>, String>>;
}

/// The API, asked as this node.
pub struct ApiParameterSource {
    api: Api,
    instance_id: String,
    key: Arc<NodeKey>,
}

impl ApiParameterSource {
    pub fn new(api: Api, instance_id: String, key: Arc<NodeKey>) -> Self {
        Self {
            api,
            instance_id,
            key,
        }
    }
}

impl ParameterSource for ApiParameterSource {
    fn fetch<'a>(
        &'a self,
        command_id: &'a str,
        names: &'a [String],
    ) -> BoxFuture<'a, Result<HashMap<String, Secret>, String>> {
        Box::pin(async move {
            self.api
                .node_parameters(
                    &self.instance_id,
                    &self.key,
                    command_id,
                    names,
                    now_epoch() as i64,
                )
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// A step ready to run: its secure references replaced by their values,
/// and the values to mask in its output.
pub struct Resolved {
    pub step: PluginStep,
    pub secrets: Vec<Secret>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("step", &self.step.name)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Fetches the values of `step`'s `ssm-secure:` references and writes them
/// in. A step without any is returned as it is, and nothing is asked. The
/// error is what the step reports: `cannot resolve {{ssm-secure:/name}}: …`.
pub async fn resolve(
    source: Option<&dyn ParameterSource>,
    command_id: &str,
    step: &PluginStep,
) -> Result<Resolved, String> {
    let targets = references::secure_targets(step);
    if targets.is_empty() {
        return Ok(Resolved {
            step: step.clone(),
            secrets: Vec::new(),
        });
    }
    let shown = targets
        .iter()
        .map(|t| references::display(Kind::Secure, t))
        .collect::<Vec<_>>()
        .join(", ");
    let source = source.ok_or_else(|| {
        format!(
            "cannot resolve {shown}: this agent has no API endpoint to ask for SecureString values"
        )
    })?;
    let values = source
        .fetch(command_id, &targets)
        .await
        .map_err(|e| format!("cannot resolve {shown}: {e}"))?;
    if let Some(missing) = targets.iter().find(|t| !values.contains_key(*t)) {
        return Err(format!(
            "cannot resolve {}: the API did not return it",
            references::display(Kind::Secure, missing)
        ));
    }
    let fill = |text: &str| {
        references::substitute(text, |r| {
            (r.kind == Kind::Secure)
                .then(|| values.get(&r.target).map(|s| s.expose().to_string()))
                .flatten()
        })
    };
    let mut resolved = step.clone();
    for line in resolved.run_command.iter_mut() {
        *line = fill(line);
    }
    resolved.working_directory = fill(&resolved.working_directory);
    let secrets = targets
        .iter()
        .filter_map(|t| values.get(t).cloned())
        .filter(|s| !s.expose().is_empty())
        .collect();
    Ok(Resolved {
        step: resolved,
        secrets,
    })
}

/// Replaces every occurrence of any secret by [`MASK`] in a stream, even
/// one split across chunks. Longer secrets are tried first, so a secret
/// that contains another is masked whole.
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    carry: Vec<u8>,
}

impl Masker {
    pub fn new(secrets: &[Secret]) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets
            .iter()
            .map(|s| s.expose().as_bytes().to_vec())
            .filter(|s| !s.is_empty())
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self {
            secrets,
            carry: Vec::new(),
        }
    }

    /// Masks what can be decided of `chunk`; the rest waits for the next
    /// chunk, or for [`Masker::finish`].
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        self.carry.extend_from_slice(chunk);
        let keep = self.scan(out, false);
        self.carry.drain(..keep);
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let used = self.scan(out, true);
        self.carry.drain(..used);
        out.append(&mut self.carry);
    }

    /// Emits masked output from `carry`; returns how many bytes were used.
    fn scan(&self, out: &mut Vec<u8>, last: bool) -> usize {
        let buf = &self.carry;
        let mut i = 0;
        'next: while i < buf.len() {
            let rest = &buf[i..];
            // A secret may start here and end in a chunk not read yet: wait.
            if !last
                && self
                    .secrets
                    .iter()
                    .any(|s| s.len() > rest.len() && s.starts_with(rest))
            {
                return i;
            }
            for s in &self.secrets {
                if rest.starts_with(s) {
                    out.extend_from_slice(MASK.as_bytes());
                    i += s.len();
                    continue 'next;
                }
            }
            out.push(buf[i]);
            i += 1;
        }
        i
    }
}

/// `bytes` with every secret masked.
pub fn mask(bytes: &[u8], secrets: &[Secret]) -> Vec<u8> {
    let mut m = Masker::new(secrets);
    let mut out = Vec::with_capacity(bytes.len());
    m.push(bytes, &mut out);
    m.finish(&mut out);
    out
}

/// `text` with every secret masked.
pub fn mask_text(text: &str, secrets: &[Secret]) -> String {
    if secrets.is_empty() {
        return text.to_string();
    }
    // Secrets are whole UTF-8 strings, so a match never splits a character
    // and the result is UTF-8 again; lossy only as a formality.
    String::from_utf8_lossy(&mask(text.as_bytes(), secrets)).into_owned()
}

/// Masks every text of an outgoing report in place. The patterns name every
/// field, so a field added to a report does not compile until it is decided
/// here. Only identifiers the control plane issued are kept as they are: the
/// report must still find its invocation, and they never hold a value.
pub fn mask_uplink(message: &mut Uplink, secrets: &[Secret]) {
    if secrets.is_empty() {
        return;
    }
    let m = |s: &mut String| *s = mask_text(s, secrets);
    match message {
        Uplink::InvocationUpdate(InvocationUpdate {
            command_id: _,
            detail: _,
            response_code: _,
            execution_start: _,
            execution_end: _,
            plugins,
        }) => {
            for PluginResult {
                name,
                detail: _,
                response_code: _,
                start: _,
                end: _,
                stdout,
                stderr,
                uploaded: _,
            } in plugins
            {
                m(name);
                m(stdout);
                m(stderr);
            }
        }
        Uplink::MessageRejected(MessageRejected {
            reason,
            queue_message_id: _,
        }) => m(reason),
        Uplink::Heartbeat(Heartbeat {
            agent_version,
            platform_type,
            platform_name,
            platform_version,
            ip_address,
            computer_name,
        }) => {
            for s in [
                agent_version,
                platform_type,
                platform_name,
                platform_version,
                ip_address,
                computer_name,
            ] {
                m(s);
            }
        }
        // The agent's own words about a session's end; masked like any
        // text not about one invocation.
        Uplink::SessionUpdate(steward_core::channel::SessionUpdate {
            session_id: _,
            state: _,
            reason,
        }) => m(reason),
        // Package names, versions and the baseline's ids: a patch step
        // takes no parameter a SecureString could be written into.
        Uplink::PatchReport(_) => {}
        // Gathered from the node's files (custom inventory among them), so
        // masked like output.
        Uplink::Inventory(r) => {
            for entry in r
                .items
                .iter_mut()
                .flat_map(|i| i.content.iter_mut().flatten())
            {
                entry.values_mut().for_each(m);
            }
        }
    }
}

/// Masks a file in place (through a private temporary file renamed over
/// it), streaming: output of any size.
pub fn mask_file(path: &Path, secrets: &[Secret]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if secrets.is_empty() {
        return Ok(());
    }
    let mut input = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let tmp = path.with_extension("masking");
    let mut output = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut m = Masker::new(secrets);
    let mut buf = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(CHUNK + MASK.len());
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        m.push(&buf[..n], &mut out);
        output.write_all(&out)?;
        out.clear();
    }
    m.finish(&mut out);
    output.write_all(&out)?;
    output.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn secrets(v: &[&str]) -> Vec<Secret> {
        v.iter().map(|s| Secret::new(*s)).collect()
    }

    fn masked(text: &str, s: &[&str]) -> String {
        String::from_utf8(mask(text.as_bytes(), &secrets(s))).unwrap()
    }

    #[test]
    fn every_occurrence_is_masked_and_the_rest_kept() {
        assert_eq!(masked("a hunter2 b hunter2", &["hunter2"]), "a **** b ****");
        assert_eq!(masked("hunter", &["hunter2"]), "hunter");
        assert_eq!(masked("", &["x"]), "");
        assert_eq!(masked("no secrets", &[]), "no secrets");
        // The longer secret is masked whole, the shorter elsewhere.
        assert_eq!(masked("abcd ab", &["ab", "abcd"]), "**** ****");
        assert_eq!(masked("line1\nline2\n", &["line1\nline2"]), "****\n");
    }

    #[test]
    fn a_secret_split_across_chunks_is_masked() {
        let s = secrets(&["s3cr3t-value", "s3cr"]);
        let text = b"xx s3cr3t-value yy s3cr zz s3cr3t-valu";
        for cut in 0..text.len() {
            for cut2 in cut..text.len() {
                let mut m = Masker::new(&s);
                let mut out = Vec::new();
                m.push(&text[..cut], &mut out);
                m.push(&text[cut..cut2], &mut out);
                m.push(&text[cut2..], &mut out);
                m.finish(&mut out);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    "xx **** yy **** zz ****3t-valu",
                    "cuts at {cut}, {cut2}"
                );
            }
        }
    }

    #[test]
    fn files_are_masked_in_place_and_stay_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stdout");
        let big = "x".repeat(CHUNK - 3) + "hunter2" + &"y".repeat(CHUNK) + "hunter2";
        std::fs::write(&p, &big).unwrap();
        mask_file(&p, &secrets(&["hunter2"])).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains("hunter2"));
        assert_eq!(text.matches(MASK).count(), 2);
        assert_eq!(text.len(), big.len() - 2 * (7 - MASK.len()));
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        mask_file(&dir.path().join("missing"), &secrets(&["x"])).unwrap();
    }

    #[test]
    fn every_text_of_a_report_is_masked_and_its_identifiers_kept() {
        use steward_core::run_command::status::InvocationDetail;
        let v = "S3cr3t-MARKER";
        let plugin = PluginResult {
            name: format!("step {v}"),
            detail: InvocationDetail::Failed,
            response_code: 1,
            start: Some(1.0),
            end: Some(2.0),
            stdout: format!("out {v}"),
            stderr: format!("working directory /tmp/nodir-{v} does not exist"),
            uploaded: true,
        };
        let mut update = Uplink::InvocationUpdate(InvocationUpdate {
            command_id: "c1".into(),
            detail: InvocationDetail::Failed,
            response_code: 1,
            execution_start: Some(1.0),
            execution_end: Some(2.0),
            plugins: vec![plugin.clone(), plugin],
        });
        mask_uplink(&mut update, &secrets(&[v]));
        let json = serde_json::to_string(&update).unwrap();
        assert!(!json.contains(v), "{json}");
        assert!(json.contains("/tmp/nodir-**** does not exist"), "{json}");
        assert!(json.contains("\"c1\""), "{json}");

        let mut rejected = Uplink::MessageRejected(MessageRejected {
            reason: format!("bad {v}"),
            queue_message_id: "q1".into(),
        });
        mask_uplink(&mut rejected, &secrets(&[v]));
        let json = serde_json::to_string(&rejected).unwrap();
        assert!(!json.contains(v) && json.contains("\"q1\""), "{json}");

        let mut heartbeat = Uplink::Heartbeat(Heartbeat {
            agent_version: v.into(),
            platform_type: v.into(),
            platform_name: v.into(),
            platform_version: v.into(),
            ip_address: v.into(),
            computer_name: v.into(),
        });
        mask_uplink(&mut heartbeat, &secrets(&[v]));
        assert!(!serde_json::to_string(&heartbeat).unwrap().contains(v));

        assert_eq!(mask_text("héllo wörld", &secrets(&["ö"])), "héllo w****rld");
        assert_eq!(mask_text("as is", &[]), "as is");
    }

    /// Answers from a map, or fails; records what it was asked.
    struct Fake {
        values: Result<HashMap<String, Secret>, String>,
        asked: Mutex<Vec<(String, Vec<String>)>>,
    }

    impl ParameterSource for Fake {
        fn fetch<'a>(
            &'a self,
            command_id: &'a str,
            names: &'a [String],
        ) -> BoxFuture<'a, Result<HashMap<String, Secret>, String>> {
            self.asked
                .lock()
                .unwrap()
                .push((command_id.to_string(), names.to_vec()));
            let answer = self.values.clone();
            Box::pin(async move { answer })
        }
    }

    fn step(lines: &[&str]) -> PluginStep {
        PluginStep {
            name: "aws:runShellScript".into(),
            action: "aws:runShellScript".into(),
            run_command: lines.iter().map(|s| s.to_string()).collect(),
            working_directory: String::new(),
            timeout_seconds: 60,
            patch: None,
            inventory: None,
        }
    }

    #[tokio::test]
    async fn secure_references_are_fetched_once_and_written_in() {
        let fake = Fake {
            values: Ok(HashMap::from([
                ("/s".to_string(), Secret::new("hunter2")),
                ("/t:2".to_string(), Secret::new("pa ss")),
            ])),
            asked: Mutex::new(Vec::new()),
        };
        let s = step(&[
            "echo \"{{ssm-secure:/s}}\" {{ ssm-secure:/t:2 }}",
            "echo {{ssm-secure:/s}} {{ssm:/left}}",
        ]);
        let r = resolve(Some(&fake), "c1", &s).await.unwrap();
        assert_eq!(
            r.step.run_command,
            vec!["echo \"hunter2\" pa ss", "echo hunter2 {{ssm:/left}}"]
        );
        assert_eq!(r.secrets.len(), 2);
        assert_eq!(
            *fake.asked.lock().unwrap(),
            vec![("c1".to_string(), vec!["/s".to_string(), "/t:2".to_string()])]
        );
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn a_step_without_secure_references_asks_nothing() {
        let fake = Fake {
            values: Err("down".into()),
            asked: Mutex::new(Vec::new()),
        };
        let s = step(&["echo hi"]);
        let r = resolve(Some(&fake), "c1", &s).await.unwrap();
        assert_eq!(r.step, s);
        assert!(fake.asked.lock().unwrap().is_empty());
        assert!(resolve(None, "c1", &s).await.is_ok());
    }

    #[tokio::test]
    async fn a_failed_fetch_names_the_references_and_no_value() {
        let fake = Fake {
            values: Err("AccessDeniedException: not yours".into()),
            asked: Mutex::new(Vec::new()),
        };
        let e = resolve(Some(&fake), "c1", &step(&["echo {{ssm-secure:/db/pw}}"]))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "cannot resolve {{ssm-secure:/db/pw}}: AccessDeniedException: not yours"
        );
        let partial = Fake {
            values: Ok(HashMap::from([("/a".to_string(), Secret::new("v"))])),
            asked: Mutex::new(Vec::new()),
        };
        let e = resolve(
            Some(&partial),
            "c1",
            &step(&["{{ssm-secure:/a}} {{ssm-secure:/b}}"]),
        )
        .await
        .unwrap_err();
        assert_eq!(
            e,
            "cannot resolve {{ssm-secure:/b}}: the API did not return it"
        );
        let e = resolve(None, "c1", &step(&["{{ssm-secure:/a}}"]))
            .await
            .unwrap_err();
        assert!(e.starts_with("cannot resolve {{ssm-secure:/a}}:"), "{e}");
    }
}
