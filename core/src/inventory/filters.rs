//! SSM's `InventoryFilter`s: `Key` is `<type>.<attribute>`
//! (`AWS:Application.Name`), `Type` one of Equal, NotEqual, BeginWith,
//! LessThan, GreaterThan and Exists. An entry matches when its attribute
//! compares as the filter says with any of the values; a node matches when
//! one of its entries does (NotEqual: when none equals any value).

use serde::Deserialize;

use super::model::Entry;
use crate::error::SsmError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum FilterType {
    #[default]
    Equal,
    NotEqual,
    BeginWith,
    LessThan,
    GreaterThan,
    Exists,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InventoryFilter {
    pub key: String,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default, rename = "Type")]
    pub kind: FilterType,
}

/// A filter read: the type and attribute its key names.
#[derive(Debug, Clone)]
pub struct Filter {
    pub type_name: String,
    pub attribute: String,
    pub values: Vec<String>,
    pub kind: FilterType,
}

/// Splits `AWS:Application.Name` at its last dot.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let (t, a) = key.rsplit_once('.')?;
    (!t.is_empty() && !a.is_empty() && t.contains(':')).then_some((t, a))
}

impl Filter {
    pub fn read(f: &InventoryFilter) -> Result<Self, SsmError> {
        let Some((type_name, attribute)) = split_key(&f.key) else {
            return Err(SsmError::InvalidFilter(format!(
                "The filter name isn't valid. Verify that you entered the correct name and try again. A key is a type and an attribute, as AWS:Application.Name; {} is not.",
                f.key
            )));
        };
        if f.kind != FilterType::Exists && f.values.is_empty() {
            return Err(SsmError::InvalidFilter(format!(
                "The filter on {} has no values; give at least one.",
                f.key
            )));
        }
        Ok(Filter {
            type_name: type_name.to_string(),
            attribute: attribute.to_string(),
            values: f.values.clone(),
            kind: f.kind,
        })
    }

    fn entry_matches(&self, e: &Entry) -> bool {
        let Some(v) = e.get(&self.attribute) else {
            return false;
        };
        let any = |f: &dyn Fn(&str) -> bool| self.values.iter().any(|x| f(x));
        match self.kind {
            FilterType::Equal | FilterType::NotEqual => any(&|x| x == v),
            FilterType::BeginWith => any(&|x| v.starts_with(x)),
            FilterType::LessThan => any(&|x| compare(v, x).is_lt()),
            FilterType::GreaterThan => any(&|x| compare(v, x).is_gt()),
            FilterType::Exists => true,
        }
    }

    /// Whether a node whose entries of the type are `entries` matches.
    pub fn matches(&self, entries: &[Entry]) -> bool {
        let hit = entries.iter().any(|e| self.entry_matches(e));
        if self.kind == FilterType::NotEqual {
            !hit
        } else {
            hit
        }
    }

    /// The entries of one node that match (ListInventoryEntries).
    pub fn keep(&self, e: &Entry) -> bool {
        if self.kind == FilterType::NotEqual {
            !self.entry_matches(e)
        } else {
            self.entry_matches(e)
        }
    }
}

/// Numbers compare as numbers, anything else as text.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str) -> Entry {
        [
            ("Name".into(), name.into()),
            ("Version".into(), version.into()),
        ]
        .into()
    }

    fn filter(key: &str, kind: FilterType, values: &[&str]) -> Filter {
        Filter::read(&InventoryFilter {
            key: key.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
            kind,
        })
        .unwrap()
    }

    #[test]
    fn each_type_of_filter_compares_as_ssm_says() {
        let node = [
            entry("bash", "5.2"),
            entry("coreutils", "9.1"),
            entry("zlib1g", "10"),
        ];
        let f = |kind, values: &[&str]| filter("AWS:Application.Name", kind, values).matches(&node);
        assert!(f(FilterType::Equal, &["nope", "bash"]));
        assert!(!f(FilterType::Equal, &["bas"]));
        assert!(f(FilterType::NotEqual, &["nginx"]));
        assert!(!f(FilterType::NotEqual, &["bash"]));
        assert!(f(FilterType::BeginWith, &["core"]));
        assert!(!f(FilterType::BeginWith, &["ore"]));
        assert!(f(FilterType::Exists, &[]));
        let v =
            |kind, values: &[&str]| filter("AWS:Application.Version", kind, values).matches(&node);
        // 9.1 < 9.5 < 10 as numbers (as text, "10" < "9.5").
        assert!(v(FilterType::GreaterThan, &["9.5"]));
        assert!(v(FilterType::LessThan, &["9.5"]));
        assert!(!v(FilterType::GreaterThan, &["11"]));
        assert!(!filter("AWS:Application.Publisher", FilterType::Exists, &[]).matches(&node));
    }

    #[test]
    fn a_key_without_type_and_attribute_is_refused() {
        for key in ["Name", "AWS:Application", ".Name", "Application.Name"] {
            let e = Filter::read(&InventoryFilter {
                key: key.into(),
                values: vec!["x".into()],
                kind: FilterType::Equal,
            })
            .unwrap_err();
            assert_eq!(e.code(), "InvalidFilter", "{key}");
        }
    }
}
