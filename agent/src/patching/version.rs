//! Debian version ordering, as dpkg's `verrevcmp` orders versions.
//!
//! Hand-written: the `debversion` crate does this too, but it brings chrono,
//! lazy-regex (proc macros) and num-bigint into the agent, and parses each
//! version with a regex into owned strings. A scan compares a version for
//! every stanza of every list that names an installed package, so this
//! compares borrowed text without allocating. Checked against
//! `dpkg --compare-versions` by a property test.

use std::cmp::Ordering;

/// Compares two Debian versions (`[epoch:]upstream[-revision]`) as dpkg
/// does. Text that is not a valid version still gets a total order (a
/// missing or non-numeric epoch counts as 0).
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

/// Epoch, upstream version and revision: the epoch before the first `:`,
/// the revision after the last `-` (dpkg's parseversion).
fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => {
            (e.parse().unwrap_or(u64::MAX), rest)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((upstream, revision)) => (epoch, upstream, revision),
        None => (epoch, rest, ""),
    }
}

/// dpkg's weight of a non-digit character: `~` sorts before anything, even
/// the end of the text; letters before the other characters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // The non-digit run, character by character.
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // The digit run, as a number of any length: leading zeros skipped,
        // then the longer run is larger, else the first differing digit.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_orders() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0", "1.0-0", Equal),
            ("1.0-1", "1.0-1+deb12u1", Less),
            ("1:0.9", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0a", Less),
            ("3.0.2-0ubuntu1.15", "3.0.2-0ubuntu1.9", Greater),
            ("007", "7", Equal),
            ("1.2.3-4-5", "1.2.3-4-4", Greater),
            (
                "99999999999999999999999",
                "99999999999999999999998",
                Greater,
            ),
        ] {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// dpkg's own answer, when dpkg is on the machine running the tests.
    fn dpkg_says(a: &str, b: &str) -> Option<Ordering> {
        let run = |op: &str| {
            std::process::Command::new("dpkg")
                .args(["--compare-versions", a, op, b])
                .status()
                .ok()
                .map(|s| s.success())
        };
        match (run("lt")?, run("eq")?) {
            (true, _) => Some(Ordering::Less),
            (false, true) => Some(Ordering::Equal),
            (false, false) => Some(Ordering::Greater),
        }
    }

    /// Valid versions: an optional epoch, an upstream part starting with a
    /// digit, an optional revision; characters dpkg allows, `~` included.
    fn version() -> impl Strategy<Value = String> {
        (
            proptest::option::of(0u8..3),
            "[0-9][0-9a-z.+~]{0,6}",
            proptest::option::of("[0-9a-z+.~]{1,5}"),
        )
            .prop_map(|(epoch, upstream, revision)| {
                let mut v = String::new();
                if let Some(e) = epoch {
                    v.push_str(&format!("{e}:"));
                }
                v.push_str(&upstream);
                if let Some(r) = revision {
                    v.push('-');
                    v.push_str(&r);
                }
                v
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn orders_as_dpkg_does(a in version(), b in version()) {
            // Without dpkg (not a Debian machine) there is nothing to compare with.
            if let Some(want) = dpkg_says(&a, &b) {
                prop_assert_eq!(compare(&a, &b), want, "{} vs {}", a, b);
            }
        }

        #[test]
        fn is_antisymmetric(a in version(), b in version()) {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }
    }
}
