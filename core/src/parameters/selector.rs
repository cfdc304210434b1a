//! `name:version` and `name:label`: which version of a parameter a read means.

use crate::error::SsmError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Version(u64),
    Label(String),
}

impl Selector {
    /// As SSM echoes it in `Parameter.Selector`: `:3`, `:prod`.
    pub fn text(&self) -> String {
        match self {
            Selector::Version(v) => format!(":{v}"),
            Selector::Label(l) => format!(":{l}"),
        }
    }
}

fn bad_selector(given: &str, why: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "{given} is not a valid parameter reference: {why}. Write name, name:version or name:label."
    ))
}

/// Splits `name`, `name:7` or `name:label` (the name may be an ARN, whose own
/// colons are not selectors). All digits is a version (labels cannot begin
/// with a digit); anything else is a label.
pub fn split(name_with_selector: &str) -> Result<(String, Option<Selector>), SsmError> {
    let given = name_with_selector;
    // An ARN's colons end at "parameter/"; a selector can only follow that.
    let search_from = if given.starts_with("arn:") {
        given
            .find(":parameter/")
            .map_or(0, |i| i + ":parameter/".len())
    } else {
        0
    };
    let Some(rel) = given[search_from..].find(':') else {
        return Ok((given.to_string(), None));
    };
    let at = search_from + rel;
    let (name, sel) = (&given[..at], &given[at + 1..]);
    if name.is_empty() {
        return Err(bad_selector(given, "the name is empty"));
    }
    if sel.is_empty() {
        return Err(bad_selector(given, "nothing follows the colon"));
    }
    if sel.contains(':') {
        return Err(bad_selector(given, "it has more than one selector"));
    }
    let selector = if sel.bytes().all(|b| b.is_ascii_digit()) {
        let v = sel
            .parse::<u64>()
            .map_err(|_| bad_selector(given, "the version is too large"))?;
        Selector::Version(v)
    } else {
        Selector::Label(sel.to_string())
    };
    Ok((name.to_string(), Some(selector)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_versions_labels_and_arns() {
        assert_eq!(split("/a/b").unwrap(), ("/a/b".into(), None));
        assert_eq!(
            split("/a/b:12").unwrap(),
            ("/a/b".into(), Some(Selector::Version(12)))
        );
        assert_eq!(
            split("a:prod").unwrap(),
            ("a".into(), Some(Selector::Label("prod".into())))
        );
        assert_eq!(
            split("arn:aws:ssm:us-east-1:1:parameter/a/b:3").unwrap(),
            (
                "arn:aws:ssm:us-east-1:1:parameter/a/b".into(),
                Some(Selector::Version(3))
            )
        );
        assert_eq!(
            split("arn:aws:ssm:us-east-1:1:parameter/a/b").unwrap().1,
            None
        );
        for bad in ["a:", ":3", "a:1:2", "a:99999999999999999999999"] {
            assert_eq!(
                split(bad).unwrap_err().code(),
                "ValidationException",
                "{bad}"
            );
        }
        assert_eq!(Selector::Version(3).text(), ":3");
        assert_eq!(Selector::Label("x".into()).text(), ":x");
    }
}
