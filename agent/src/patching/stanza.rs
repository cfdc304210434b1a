//! A streaming reader of deb822 text (dpkg's status file, apt's Packages
//! and Release files): one stanza at a time, keeping only the single-line
//! fields the caller names, in buffers reused from stanza to stanza. A list
//! of 60,000 packages is read in a few kilobytes.

use std::io::{self, BufRead};

/// Reads stanzas from `R`, keeping the values of the fields `N` names.
pub struct StanzaReader<R, const N: usize> {
    input: R,
    wanted: [&'static str; N],
    line: Vec<u8>,
    /// The values of the last stanza read, in the order of `wanted`
    /// (empty when the stanza lacks the field).
    pub values: [String; N],
}

impl<R: BufRead, const N: usize> StanzaReader<R, N> {
    pub fn new(input: R, wanted: [&'static str; N]) -> Self {
        Self {
            input,
            wanted,
            line: Vec::with_capacity(256),
            values: std::array::from_fn(|_| String::new()),
        }
    }

    /// Reads the next stanza into `values`; false at the end of the input.
    /// Field names compare without case, as deb822 says.
    pub fn next_stanza(&mut self) -> io::Result<bool> {
        for v in &mut self.values {
            v.clear();
        }
        let mut any = false;
        loop {
            self.line.clear();
            if self.input.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(any);
            }
            let line = trim_end(&self.line);
            if line.is_empty() {
                if any {
                    return Ok(true);
                }
                continue;
            }
            any = true;
            // Continuation lines belong to multi-line fields nobody asks for.
            if line[0] == b' ' || line[0] == b'\t' {
                continue;
            }
            let Some(colon) = line.iter().position(|c| *c == b':') else {
                continue;
            };
            let name = &line[..colon];
            if let Some(k) = self
                .wanted
                .iter()
                .position(|w| w.as_bytes().eq_ignore_ascii_case(name))
            {
                let value = String::from_utf8_lossy(&line[colon + 1..]);
                self.values[k].push_str(value.trim());
            }
        }
    }
}

fn trim_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wanted_fields_of_each_stanza() {
        let text = "Package: a\nVersion: 1.0\nDescription: x\n more\n .\n\n\n\
                    package: b\nStatus: install ok installed\r\nVersion:2\n";
        let mut r = StanzaReader::new(text.as_bytes(), ["Package", "Version", "Status"]);
        assert!(r.next_stanza().unwrap());
        assert_eq!(r.values, ["a".to_string(), "1.0".into(), String::new()]);
        assert!(r.next_stanza().unwrap());
        assert_eq!(
            r.values,
            ["b".to_string(), "2".into(), "install ok installed".into()]
        );
        assert!(!r.next_stanza().unwrap());
    }

    #[test]
    fn a_clearsigned_release_reads_as_stanzas() {
        let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nLabel: Debian-Security\nSuite: stable-security\nSHA256:\n abc 1 main/x\n-----BEGIN PGP SIGNATURE-----\n\nxyz\n";
        let mut r = StanzaReader::new(text.as_bytes(), ["Label", "Suite"]);
        assert!(r.next_stanza().unwrap());
        assert_eq!(r.values, [String::new(), String::new()]);
        assert!(r.next_stanza().unwrap());
        assert_eq!(
            r.values,
            ["Debian-Security".to_string(), "stable-security".into()]
        );
    }
}
