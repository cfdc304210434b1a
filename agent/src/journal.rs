//! The journal: every downlink message id seen and every command's progress,
//! appended durably (fsync) before the message is deleted from the queue, so
//! a redelivered or replayed message never runs anything twice — even across
//! restarts.
//!
//! Format: one JSON object per line. Entries older than [`RETENTION_SECS`]
//! are compacted away at open (downlink messages expire long before that, so
//! a forgotten message id would be refused as expired anyway).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil;

pub const RETENTION_SECS: f64 = 14.0 * 86_400.0;
const FILE: &str = "journal.jsonl";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Received and about to run.
    Accepted,
    /// Its steps are running (or were, when the agent stopped).
    Started,
    /// Its final report is spooled.
    Finished,
    /// Cancelled before the agent saw it: a later RunCommand is not run.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandRecord {
    pub state: CommandState,
    /// The plugin names of its steps, for reports made without the message.
    pub plugins: Vec<String>,
    pub at: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
enum Entry {
    Msg {
        t: f64,
        id: String,
    },
    Cmd {
        t: f64,
        id: String,
        state: CommandState,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        plugins: Vec<String>,
    },
}

pub struct Journal {
    path: PathBuf,
    file: File,
    seen: HashMap<String, f64>,
    commands: HashMap<String, CommandRecord>,
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, compacting entries older than
    /// the retention period relative to `now`.
    pub fn open(dir: &Path, now: f64) -> io::Result<Journal> {
        fsutil::ensure_private_dir(dir)?;
        let path = dir.join(FILE);
        let mut seen = HashMap::new();
        let mut commands: HashMap<String, CommandRecord> = HashMap::new();
        let mut oldest = f64::INFINITY;
        let mut lines = 0usize;
        if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                lines += 1;
                // A line torn by a crash mid-write is skipped: its message was
                // not deleted from the queue, so it comes back.
                match serde_json::from_str::<Entry>(&line) {
                    Ok(Entry::Msg { t, id }) => {
                        oldest = oldest.min(t);
                        seen.insert(id, t);
                    }
                    Ok(Entry::Cmd {
                        t,
                        id,
                        state,
                        plugins,
                    }) => {
                        oldest = oldest.min(t);
                        let rec = commands.entry(id).or_insert(CommandRecord {
                            state,
                            plugins: Vec::new(),
                            at: t,
                        });
                        rec.state = state;
                        rec.at = t;
                        if !plugins.is_empty() {
                            rec.plugins = plugins;
                        }
                    }
                    Err(_) => {
                        tracing::warn!(path = %path.display(), "skipping a damaged journal line")
                    }
                }
            }
        }
        let cutoff = now - RETENTION_SECS;
        if oldest < cutoff {
            seen.retain(|_, t| *t >= cutoff);
            commands.retain(|_, r| r.at >= cutoff);
            let mut text = String::new();
            for (id, t) in &seen {
                push_line(
                    &mut text,
                    &Entry::Msg {
                        t: *t,
                        id: id.clone(),
                    },
                )?;
            }
            for (id, r) in &commands {
                let e = Entry::Cmd {
                    t: r.at,
                    id: id.clone(),
                    state: r.state,
                    plugins: r.plugins.clone(),
                };
                push_line(&mut text, &e)?;
            }
            fsutil::write_atomic(&path, text.as_bytes(), 0o600)?;
            tracing::info!(
                before = lines,
                after = seen.len() + commands.len(),
                "journal compacted"
            );
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        // After a torn write the file may not end with a newline.
        let len = file.metadata()?.len();
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        file.sync_all()?;
        fsutil::sync_dir(dir)?;
        Ok(Journal {
            path,
            file,
            seen,
            commands,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether a downlink message id was already received.
    pub fn seen(&self, msg_id: &str) -> bool {
        self.seen.contains_key(msg_id)
    }

    /// Records a message id durably.
    pub fn record_message(&mut self, msg_id: &str, now: f64) -> io::Result<()> {
        self.append(&Entry::Msg {
            t: now,
            id: msg_id.to_string(),
        })?;
        self.seen.insert(msg_id.to_string(), now);
        Ok(())
    }

    pub fn command(&self, command_id: &str) -> Option<&CommandRecord> {
        self.commands.get(command_id)
    }

    /// Records a command's new state durably. `plugins` may be empty to keep
    /// the names already known.
    pub fn record_command(
        &mut self,
        command_id: &str,
        state: CommandState,
        plugins: &[String],
        now: f64,
    ) -> io::Result<()> {
        self.append(&Entry::Cmd {
            t: now,
            id: command_id.to_string(),
            state,
            plugins: plugins.to_vec(),
        })?;
        let rec = self
            .commands
            .entry(command_id.to_string())
            .or_insert(CommandRecord {
                state,
                plugins: Vec::new(),
                at: now,
            });
        rec.state = state;
        rec.at = now;
        if !plugins.is_empty() {
            rec.plugins = plugins.to_vec();
        }
        Ok(())
    }

    /// Commands accepted or started but never finished: the agent stopped
    /// while they ran.
    pub fn unfinished(&self) -> Vec<(String, CommandRecord)> {
        let mut v: Vec<_> = self
            .commands
            .iter()
            .filter(|(_, r)| matches!(r.state, CommandState::Accepted | CommandState::Started))
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        v.sort_by(|a, b| a.1.at.total_cmp(&b.1.at));
        v
    }

    fn append(&mut self, e: &Entry) -> io::Result<()> {
        let mut line = String::new();
        push_line(&mut line, e)?;
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()
    }
}

fn push_line(out: &mut String, e: &Entry) -> io::Result<()> {
    out.push_str(&serde_json::to_string(e).map_err(io::Error::other)?);
    out.push('\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_700_000_000.0;

    #[test]
    fn replay_is_detected_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), NOW).unwrap();
        assert!(!j.seen("m1"));
        j.record_message("m1", NOW).unwrap();
        assert!(j.seen("m1"));
        drop(j);
        let j = Journal::open(dir.path(), NOW + 10.0).unwrap();
        assert!(j.seen("m1"));
        assert!(!j.seen("m2"));
    }

    #[test]
    fn started_not_finished_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), NOW).unwrap();
        let plugins = vec!["aws:runShellScript".to_string()];
        j.record_command("c-done", CommandState::Accepted, &plugins, NOW)
            .unwrap();
        j.record_command("c-done", CommandState::Started, &[], NOW)
            .unwrap();
        j.record_command("c-done", CommandState::Finished, &[], NOW)
            .unwrap();
        j.record_command("c-cut", CommandState::Accepted, &plugins, NOW)
            .unwrap();
        j.record_command("c-cut", CommandState::Started, &[], NOW + 1.0)
            .unwrap();
        j.record_command("c-cancel", CommandState::Cancelled, &[], NOW)
            .unwrap();
        drop(j);
        let j = Journal::open(dir.path(), NOW + 5.0).unwrap();
        let unfinished = j.unfinished();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(unfinished[0].0, "c-cut");
        assert_eq!(unfinished[0].1.state, CommandState::Started);
        assert_eq!(unfinished[0].1.plugins, plugins);
        assert_eq!(j.command("c-done").unwrap().state, CommandState::Finished);
        assert_eq!(
            j.command("c-cancel").unwrap().state,
            CommandState::Cancelled
        );
        assert!(j.command("c-other").is_none());
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_appends_continue() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), NOW).unwrap();
        j.record_message("m1", NOW).unwrap();
        drop(j);
        let path = dir.path().join(FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"e\":\"msg\",\"t\":1,\"id\":\"m").unwrap();
        drop(f);
        let mut j = Journal::open(dir.path(), NOW).unwrap();
        j.record_message("m2", NOW).unwrap();
        drop(j);
        let j = Journal::open(dir.path(), NOW).unwrap();
        assert!(j.seen("m1") && j.seen("m2"));
    }

    #[test]
    fn old_entries_are_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path(), NOW).unwrap();
        j.record_message("old", NOW - RETENTION_SECS - 1.0).unwrap();
        j.record_command(
            "c-old",
            CommandState::Finished,
            &[],
            NOW - RETENTION_SECS - 1.0,
        )
        .unwrap();
        j.record_message("new", NOW).unwrap();
        j.record_command("c-new", CommandState::Started, &[], NOW)
            .unwrap();
        drop(j);
        let j = Journal::open(dir.path(), NOW).unwrap();
        assert!(!j.seen("old") && j.seen("new"));
        assert!(j.command("c-old").is_none());
        assert_eq!(j.command("c-new").unwrap().state, CommandState::Started);
        let text = std::fs::read_to_string(j.path()).unwrap();
        assert_eq!(text.lines().count(), 2);
    }
}
