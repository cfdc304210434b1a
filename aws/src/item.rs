//! DynamoDB item codecs shared by every store in this crate.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use steward_core::fleet::TagSet;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A string attribute, or "" when absent.
pub fn get_s(item: &Item, k: &str) -> String {
    match item.get(k) {
        Some(AttributeValue::S(v)) => v.clone(),
        _ => String::new(),
    }
}

/// A number attribute, or `None` when absent.
pub fn get_n(item: &Item, k: &str) -> Option<f64> {
    match item.get(k) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// A number attribute, or 0 when absent.
pub fn get_f64(item: &Item, k: &str) -> f64 {
    get_n(item, k).unwrap_or(0.0)
}

pub fn get_u32(item: &Item, k: &str) -> u32 {
    get_n(item, k).map(|v| v as u32).unwrap_or(0)
}

pub fn tags_av(tags: &TagSet) -> AttributeValue {
    AttributeValue::M(tags.iter().map(|(k, v)| (k.clone(), s(v))).collect())
}

pub fn get_tags(item: &Item, k: &str) -> TagSet {
    match item.get(k) {
        Some(AttributeValue::M(m)) => m
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::S(v) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => TagSet::new(),
    }
}
