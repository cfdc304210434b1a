//! Tables and text for people.

use std::fmt::Write as _;
use std::io::Write;

use aws_sdk_ssm::primitives::DateTime;
use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
use serde_json::Value;

use crate::error::CliError;

/// Lines of output shown in a table cell.
pub const PREVIEW_LINES: usize = 3;

/// Narrowest terminal a table is fitted to; narrower ones get the table unwrapped.
const MIN_FIT_WIDTH: u16 = 60;

/// One node's result of a command, as the tables show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InvocationRow {
    pub instance_id: String,
    pub name: String,
    pub status: String,
    pub status_details: String,
    /// The exit code, once the command ran to an end on the node.
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Writes `text` and a final newline.
pub fn emit(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `v` as pretty JSON and a final newline.
pub fn emit_json(out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| CliError::Other {
        operation: "output",
        detail: e.to_string(),
    })?;
    emit(out, &text)
}

/// `-` for a missing or empty value.
pub fn dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_string()
}

/// Sorts `items` newest first by `time`; those without one go last.
pub fn newest_first<T>(items: &mut [T], time: impl Fn(&T) -> Option<&DateTime>) {
    let key = |x: &T| time(x).map(|t| t.as_secs_f64());
    items.sort_by(|a, b| {
        key(b)
            .partial_cmp(&key(a))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
}

/// `name  value` lines, the values lined up at column `width`.
pub fn fields(fields: &[(&str, String)], width: usize) -> String {
    let mut text = String::new();
    for (k, v) in fields {
        text.push_str(&format!("{k:<width$}{v}\n"));
    }
    text
}

/// A table; `wide` lets it use the terminal's width.
pub fn table(header: &[&str], wide: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(header.iter().copied());
    // Fit to the terminal only when its width is known and usable: a pty
    // that reports no size would squeeze every column to one character.
    let fits = wide && t.width().is_some_and(|w| w >= MIN_FIT_WIDTH);
    t.set_content_arrangement(if fits {
        ContentArrangement::Dynamic
    } else {
        ContentArrangement::Disabled
    });
    // The first column is an id: never wrap it.
    if let Some(first) = t.column_mut(0) {
        first.set_constraint(ColumnConstraint::ContentWidth);
    }
    t
}

/// The first `n` lines of `s`, with a marker when more follow.
pub fn first_lines(s: &str, n: usize) -> String {
    let trimmed = s.trim_end_matches(['\n', '\r']);
    let lines: Vec<&str> = trimmed.lines().collect();
    if lines.len() <= n {
        return lines.join("\n");
    }
    let mut out = lines[..n].join("\n");
    let _ = write!(out, "\n… ({} more lines)", lines.len() - n);
    out
}

fn preview(row: &InvocationRow) -> String {
    if !row.stdout.trim().is_empty() {
        first_lines(&row.stdout, PREVIEW_LINES)
    } else {
        first_lines(&row.stderr, PREVIEW_LINES)
    }
}

/// The per-node table of a command's results.
pub fn invocation_table(rows: &[InvocationRow], wide: bool) -> String {
    let mut t = table(&["Instance", "Name", "Status", "Exit code", "Output"], wide);
    for r in rows {
        let status = if r.status_details.is_empty() || r.status_details == r.status {
            r.status.clone()
        } else {
            format!("{} ({})", r.status, r.status_details)
        };
        t.add_row(vec![
            r.instance_id.clone(),
            r.name.clone(),
            status,
            r.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            preview(r),
        ]);
    }
    t.to_string()
}

/// Every node's full output, one section per node.
pub fn full_outputs(rows: &[InvocationRow]) -> String {
    let mut out = String::new();
    for r in rows {
        let code = r
            .exit_code
            .map(|c| format!(", exit {c}"))
            .unwrap_or_default();
        let _ = writeln!(out, "=== {} ({}{code}) ===", r.instance_id, r.status);
        if !r.stdout.is_empty() {
            out.push_str(&r.stdout);
            if !r.stdout.ends_with('\n') {
                out.push('\n');
            }
        }
        if !r.stderr.is_empty() {
            let _ = writeln!(out, "--- stderr ---");
            out.push_str(&r.stderr);
            if !r.stderr.ends_with('\n') {
                out.push('\n');
            }
        }
        if r.stdout.is_empty() && r.stderr.is_empty() {
            let _ = writeln!(out, "(no output)");
        }
    }
    out
}

/// "Success 3 · Failed 1" from (status, count) pairs, in a fixed order.
pub fn status_counts<'a>(statuses: impl IntoIterator<Item = &'a str>) -> String {
    const ORDER: [&str; 8] = [
        "Pending",
        "InProgress",
        "Delayed",
        "Success",
        "Failed",
        "TimedOut",
        "Cancelling",
        "Cancelled",
    ];
    let mut counts: Vec<(String, usize)> = Vec::new();
    for s in statuses {
        match counts.iter_mut().find(|(k, _)| k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s.to_string(), 1)),
        }
    }
    counts.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    counts
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<InvocationRow> {
        vec![
            InvocationRow {
                instance_id: "mi-0123456789abcdef0".into(),
                name: "web-1".into(),
                status: "Success".into(),
                status_details: "Success".into(),
                exit_code: Some(0),
                stdout: "one\ntwo\nthree\nfour\nfive\n".into(),
                stderr: String::new(),
            },
            InvocationRow {
                instance_id: "mi-0123456789abcdef1".into(),
                name: "web-2".into(),
                status: "Failed".into(),
                status_details: "Failed".into(),
                exit_code: Some(2),
                stdout: String::new(),
                stderr: "ls: cannot access '/nope'\n".into(),
            },
            InvocationRow {
                instance_id: "mi-0123456789abcdef2".into(),
                name: String::new(),
                status: "TimedOut".into(),
                status_details: "DeliveryTimedOut".into(),
                exit_code: None,
                stdout: String::new(),
                stderr: String::new(),
            },
        ]
    }

    #[test]
    fn invocation_table_renders_a_row_per_node() {
        let expected = "\
┌──────────────────────┬───────┬─────────────────────────────┬───────────┬───────────────────────────┐
│ Instance             ┆ Name  ┆ Status                      ┆ Exit code ┆ Output                    │
╞══════════════════════╪═══════╪═════════════════════════════╪═══════════╪═══════════════════════════╡
│ mi-0123456789abcdef0 ┆ web-1 ┆ Success                     ┆ 0         ┆ one                       │
│                      ┆       ┆                             ┆           ┆ two                       │
│                      ┆       ┆                             ┆           ┆ three                     │
│                      ┆       ┆                             ┆           ┆ … (2 more lines)          │
│ mi-0123456789abcdef1 ┆ web-2 ┆ Failed                      ┆ 2         ┆ ls: cannot access '/nope' │
│ mi-0123456789abcdef2 ┆       ┆ TimedOut (DeliveryTimedOut) ┆ -         ┆                           │
└──────────────────────┴───────┴─────────────────────────────┴───────────┴───────────────────────────┘";
        assert_eq!(invocation_table(&rows(), false), expected);
    }

    #[test]
    fn full_outputs_show_every_node() {
        let text = full_outputs(&rows());
        assert!(text.starts_with(
            "=== mi-0123456789abcdef0 (Success, exit 0) ===\none\ntwo\nthree\nfour\nfive\n"
        ));
        assert!(text.contains("=== mi-0123456789abcdef1 (Failed, exit 2) ===\n--- stderr ---\nls: cannot access '/nope'\n"));
        assert!(text.ends_with("=== mi-0123456789abcdef2 (TimedOut) ===\n(no output)\n"));
    }

    #[test]
    fn first_lines_marks_what_it_cuts() {
        assert_eq!(first_lines("a\nb\n", 3), "a\nb");
        assert_eq!(first_lines("a\nb\nc\nd", 2), "a\nb\n… (2 more lines)");
        assert_eq!(first_lines("", 3), "");
    }

    #[test]
    fn counts_are_grouped_in_lifecycle_order() {
        let s = status_counts(["Failed", "Success", "InProgress", "Success"]);
        assert_eq!(s, "InProgress 1 · Success 2 · Failed 1");
    }
}
