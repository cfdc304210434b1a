//! The uplink spool: every report is a file here before it is sent, and is
//! removed only once the ingest queue accepted it. Files are named by a
//! sequence number, so they are sent oldest first and the reports of one
//! invocation keep their order.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use steward_core::channel::UplinkPayload;

use crate::fsutil;

pub struct Spool {
    dir: PathBuf,
    next: u64,
}

impl Spool {
    /// Opens the spool in `dir`, dropping temporary files a crash left.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        fsutil::ensure_private_dir(dir)?;
        let mut next = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                let _ = fs::remove_file(entry.path());
            } else if let Some(seq) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            {
                next = next.max(seq + 1);
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            next,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a report durably and returns its place.
    pub fn push(&mut self, payload: &UplinkPayload) -> io::Result<Spooled> {
        let bytes = serde_json::to_vec(payload).map_err(io::Error::other)?;
        let path = self.dir.join(format!("{:020}.json", self.next));
        fsutil::write_atomic(&path, &bytes, 0o600)?;
        self.next += 1;
        Ok(Spooled(path))
    }

    /// The spooled reports, oldest first.
    pub fn pending(&self) -> io::Result<Vec<Spooled>> {
        pending(&self.dir)
    }

    /// Reads one spooled report; `InvalidData` when its file is damaged.
    pub fn read(&self, report: &Spooled) -> io::Result<UplinkPayload> {
        read(&report.0)
    }

    /// Removes a report that was sent (or cannot be read).
    pub fn remove(&self, report: &Spooled) -> io::Result<()> {
        match fs::remove_file(&report.0) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// What the spool in `dir` holds, oldest first, read without opening
    /// it: nothing is dropped, so a writer may be at work meanwhile.
    pub fn peek(dir: &Path) -> io::Result<Vec<UplinkPayload>> {
        pending(dir)?.iter().map(|r| read(&r.0)).collect()
    }
}

/// One spooled report: its file, named by its sequence number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Spooled(PathBuf);

impl Spooled {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

fn pending(dir: &Path) -> io::Result<Vec<Spooled>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .is_some_and(|s| s.parse::<u64>().is_ok())
        })
        .collect();
    // Zero-padded names: sorting by name is sorting by sequence.
    v.sort();
    Ok(v.into_iter().map(Spooled).collect())
}

fn read(path: &Path) -> io::Result<UplinkPayload> {
    let bytes = fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_core::channel::{MessageRejected, Uplink};

    fn report(n: u32) -> UplinkPayload {
        UplinkPayload {
            v: 1,
            msg_id: format!("u{n}"),
            sent_at: n as f64,
            message: Uplink::MessageRejected(MessageRejected {
                reason: "r".into(),
                queue_message_id: format!("q{n}"),
            }),
        }
    }

    #[test]
    fn persisted_reports_are_resent_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        // More than ten, so that ordering by name must be numeric-safe.
        for n in 0..12 {
            s.push(&report(n)).unwrap();
        }
        drop(s);
        // A crash mid-write leaves a temporary file: it is not a report.
        fs::write(dir.path().join(".00000000000000000012.json.1.tmp"), b"{").unwrap();

        let mut s = Spool::open(dir.path()).unwrap();
        let files = s.pending().unwrap();
        let ids: Vec<String> = files.iter().map(|p| s.read(p).unwrap().msg_id).collect();
        assert_eq!(ids, (0..12).map(|n| format!("u{n}")).collect::<Vec<_>>());

        // Sending removes the oldest; what is pushed next comes after the rest.
        s.remove(&files[0]).unwrap();
        s.push(&report(99)).unwrap();
        let ids: Vec<String> = s
            .pending()
            .unwrap()
            .iter()
            .map(|p| s.read(p).unwrap().msg_id)
            .collect();
        assert_eq!(ids.first().map(String::as_str), Some("u1"));
        assert_eq!(ids.last().map(String::as_str), Some("u99"));
        assert_eq!(ids.len(), 12);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 12);
    }

    #[test]
    fn reports_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::open(dir.path()).unwrap();
        let p = s.push(&report(1)).unwrap();
        assert_eq!(s.read(&p).unwrap(), report(1));
        s.remove(&p).unwrap();
        s.remove(&p).unwrap();
        assert!(s.pending().unwrap().is_empty());
    }
}
