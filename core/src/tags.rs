//! SSM's tag rules: key 1–128 and value 0–256 characters of
//! `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, at most 50 tags per resource, and the
//! `aws:` prefix reserved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::SsmError;

pub const MAX_TAGS_PER_RESOURCE: usize = 50;
pub const MAX_KEY_LEN: usize = 128;
pub const MAX_VALUE_LEN: usize = 256;

/// SSM's `Tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// A resource's tags, by key.
pub type TagSet = BTreeMap<String, String>;

fn allowed_char(c: char) -> bool {
    c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
}

fn allowed(s: &str) -> bool {
    s.chars().all(allowed_char)
}

pub fn validate_key(key: &str) -> Result<(), SsmError> {
    let n = key.chars().count();
    if n == 0 || n > MAX_KEY_LEN {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{key}' at 'tags.key' failed to satisfy constraint: Member must have length between 1 and {MAX_KEY_LEN}."
        )));
    }
    if !allowed(key) {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: Value '{key}' at 'tags.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*)$"
        )));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(SsmError::ValidationException(format!(
            "Tag key {key} is not allowed: the aws: prefix is reserved for AWS. Choose another key."
        )));
    }
    Ok(())
}

pub fn validate_value(key: &str, value: &str) -> Result<(), SsmError> {
    if value.chars().count() > MAX_VALUE_LEN || !allowed(value) {
        return Err(SsmError::ValidationException(format!(
            "1 validation error detected: the value of tag {key} failed to satisfy constraint: Member must be at most {MAX_VALUE_LEN} characters of letters, digits, spaces and _.:/=+-@"
        )));
    }
    Ok(())
}

/// Validates tags given with a request; a later duplicate key wins, as SSM.
pub fn validate_tags(tags: &[Tag]) -> Result<TagSet, SsmError> {
    let mut set = TagSet::new();
    for t in tags {
        validate_key(&t.key)?;
        validate_value(&t.key, &t.value)?;
        set.insert(t.key.clone(), t.value.clone());
    }
    if set.len() > MAX_TAGS_PER_RESOURCE {
        return Err(SsmError::TooManyTagsError(format!(
            "A resource can carry at most {MAX_TAGS_PER_RESOURCE} tags; this request has {}. Remove some tags and try again.",
            set.len()
        )));
    }
    Ok(set)
}

pub fn to_list(set: &TagSet) -> Vec<Tag> {
    set.iter()
        .map(|(k, v)| Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// `current` without the tags whose keys are in `keys` (RemoveTagsFromResource).
pub fn without<'a>(current: &TagSet, keys: impl IntoIterator<Item = &'a String>) -> TagSet {
    let keys: std::collections::BTreeSet<&String> = keys.into_iter().collect();
    current
        .iter()
        .filter(|(k, _)| !keys.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `current` with `add` applied; TooManyTagsError past the per-resource limit.
pub fn merged(current: &TagSet, add: &TagSet) -> Result<TagSet, SsmError> {
    let mut next = current.clone();
    next.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
    if next.len() > MAX_TAGS_PER_RESOURCE {
        return Err(SsmError::TooManyTagsError(format!(
            "The resource would carry {} tags; at most {MAX_TAGS_PER_RESOURCE} are allowed. Remove tags with remove-tags-from-resource first.",
            next.len()
        )));
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn keys_and_values_follow_ssm_rules() {
        assert!(
            validate_tags(&[
                tag("env", "dev"),
                tag("Name", "web 01"),
                tag("a.b:c/d=e+f-g@h", "")
            ])
            .is_ok()
        );
        assert!(validate_tags(&[tag("é环境", "ü")]).is_ok());
        for bad in ["", "a|b", "a#b", "aws:x", "AWS:x"] {
            assert_eq!(
                validate_tags(&[tag(bad, "v")]).unwrap_err().code(),
                "ValidationException",
                "{bad}"
            );
        }
        assert_eq!(
            validate_tags(&[tag(&"k".repeat(129), "v")])
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert!(validate_tags(&[tag(&"k".repeat(128), &"v".repeat(256))]).is_ok());
        assert_eq!(
            validate_tags(&[tag("k", &"v".repeat(257))])
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert_eq!(
            validate_tags(&[tag("k", "a|b")]).unwrap_err().code(),
            "ValidationException"
        );
    }

    #[test]
    fn at_most_fifty_tags() {
        let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
        let set = validate_tags(&fifty).unwrap();
        assert_eq!(
            merged(&set, &TagSet::from([("k0".into(), "w".into())]))
                .unwrap()
                .len(),
            50
        );
        assert_eq!(
            merged(&set, &TagSet::from([("k50".into(), "v".into())]))
                .unwrap_err()
                .code(),
            "TooManyTagsError"
        );
        let fifty_one: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
        assert_eq!(
            validate_tags(&fifty_one).unwrap_err().code(),
            "TooManyTagsError"
        );
    }
}
