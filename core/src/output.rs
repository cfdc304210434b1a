//! Output as SSM shows it inline: the first 24,000 characters of standard
//! output and 8,000 of standard error; the whole goes to S3 when asked.

/// SSM's inline limits, in characters.
pub const STDOUT_INLINE_LIMIT: usize = 24_000;
pub const STDERR_INLINE_LIMIT: usize = 8_000;

/// The first `limit` characters of `s` (characters, not bytes: never splits
/// a UTF-8 sequence).
pub fn truncate_chars(s: &str, limit: usize) -> &str {
    match s.char_indices().nth(limit) {
        Some((byte, _)) => &s[..byte],
        None => s,
    }
}

/// Bytes from a process as text: invalid UTF-8 becomes U+FFFD, as SSM's agent does.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `Output` field of a CommandPlugin in ListCommandInvocations: stdout,
/// then stderr under SSM's separator, within the plugin output limit.
pub fn plugin_output(stdout: &str, stderr: &str) -> String {
    let out = truncate_chars(stdout, STDOUT_INLINE_LIMIT);
    if stderr.is_empty() {
        return out.to_string();
    }
    let err = truncate_chars(stderr, STDERR_INLINE_LIMIT);
    format!("{out}\n----------ERROR-------\n{err}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limits_are_ssms() {
        let long = "x".repeat(30_000);
        assert_eq!(truncate_chars(&long, STDOUT_INLINE_LIMIT).len(), 24_000);
        assert_eq!(truncate_chars(&long, STDERR_INLINE_LIMIT).len(), 8_000);
        assert_eq!(truncate_chars("short", 24_000), "short");
    }

    #[test]
    fn multibyte_characters_are_not_split() {
        let s = "é".repeat(10);
        assert_eq!(truncate_chars(&s, 3), "ééé");
        assert_eq!(lossy(&[0x66, 0xff, 0x6f]), "f\u{fffd}o");
    }

    #[test]
    fn plugin_output_joins_streams() {
        assert_eq!(plugin_output("out", ""), "out");
        assert_eq!(
            plugin_output("out", "err"),
            "out\n----------ERROR-------\nerr"
        );
    }

    proptest! {
        #[test]
        fn truncation_is_a_prefix_within_the_limit(s in ".{0,200}", limit in 0usize..100) {
            let t = truncate_chars(&s, limit);
            prop_assert!(s.starts_with(t));
            prop_assert_eq!(t.chars().count(), s.chars().count().min(limit));
        }
    }
}
