//! How a document's content is written (SSM's `DocumentFormat`: JSON or
//! YAML), its size limit and its hash.
//!
//! SSM does not guess the format: CreateDocument takes `DocumentFormat` and
//! reads the content as JSON when it is absent. YAML is a superset of JSON,
//! so JSON content given as YAML is read too.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::error::SsmError;

/// SSM's limit on a document's content (bytes).
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;
/// `DocumentDescription.HashType` of every Steward document.
pub const HASH_TYPE: &str = "Sha256";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentFormat {
    #[serde(rename = "JSON")]
    Json,
    #[serde(rename = "YAML")]
    Yaml,
}

impl DocumentFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentFormat::Json => "JSON",
            DocumentFormat::Yaml => "YAML",
        }
    }

    /// The request's `DocumentFormat`; absent means JSON, as in SSM.
    pub fn from_wire(value: Option<&str>) -> Result<Self, SsmError> {
        match value {
            None | Some("JSON") => Ok(DocumentFormat::Json),
            Some("YAML") => Ok(DocumentFormat::Yaml),
            Some("TEXT") => Err(SsmError::InvalidDocumentContent(
                "DocumentFormat TEXT is not valid for a Command document: give JSON or YAML."
                    .into(),
            )),
            Some(other) => Err(SsmError::ValidationException(format!(
                "1 validation error detected: Value '{other}' at 'documentFormat' failed to satisfy constraint: Member must satisfy enum value set: [YAML, JSON, TEXT]"
            ))),
        }
    }

    /// Reads `content` as this format into `T`. A syntax error and a shape
    /// error are told apart, so the message says which to fix.
    pub(crate) fn read<T: DeserializeOwned>(self, content: &str) -> Result<T, SsmError> {
        match self {
            DocumentFormat::Json => {
                if serde_json::from_str::<IgnoredAny>(content).is_err() {
                    return Err(SsmError::InvalidDocumentContent(
                        "The content for the document is not valid.".into(),
                    ));
                }
                serde_json::from_str(content).map_err(|e| shape_error(&e.to_string()))
            }
            DocumentFormat::Yaml => {
                if let Err(e) = serde_norway::from_str::<IgnoredAny>(content) {
                    return Err(SsmError::InvalidDocumentContent(format!(
                        "YAML not well-formed: {e}. Fix the YAML, or give DocumentFormat JSON for a JSON document."
                    )));
                }
                serde_norway::from_str(content).map_err(|e| shape_error(&e.to_string()))
            }
        }
    }

    /// `content` rewritten in `to` (GetDocument's `DocumentFormat`).
    /// Key order is not kept: the result is a rendering, not the original.
    pub fn convert(content: &str, from: Self, to: Self) -> Result<String, SsmError> {
        if from == to {
            return Ok(content.to_string());
        }
        let value: serde_json::Value = from.read(content)?;
        match to {
            DocumentFormat::Json => {
                serde_json::to_string_pretty(&value).map_err(|_| SsmError::internal())
            }
            DocumentFormat::Yaml => {
                serde_norway::to_string(&value).map_err(|_| SsmError::internal())
            }
        }
    }
}

impl fmt::Display for DocumentFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn shape_error(detail: &str) -> SsmError {
    SsmError::InvalidDocumentContent(format!(
        "The document content does not have a Command document's shape: {detail}. A schemaVersion 2.2 document has schemaVersion, description, parameters and mainSteps; a 1.2 document has runtimeConfig instead of mainSteps."
    ))
}

/// Refuses content over SSM's size limit before it is parsed.
pub fn check_size(content: &str) -> Result<(), SsmError> {
    if content.trim().is_empty() {
        return Err(SsmError::InvalidDocumentContent(
            "The document content is empty: give a JSON or YAML Command document.".into(),
        ));
    }
    if content.len() > MAX_CONTENT_BYTES {
        return Err(SsmError::MaxDocumentSizeExceeded(format!(
            "The document content is {} bytes; the limit is {MAX_CONTENT_BYTES}. Move large scripts into files the document downloads or runs.",
            content.len()
        )));
    }
    Ok(())
}

/// `DocumentDescription.Hash`: the hex SHA-256 of the content exactly as given.
pub fn content_hash(content: &str) -> String {
    hex::encode(Sha256::digest(content.as_bytes()))
}

/// A mapping read in its written order, refusing repeated keys (a JSON
/// object with a key twice would otherwise keep only the last silently).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ordered<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping of names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    if out.iter().any(|(seen, _)| *seen == k) {
                        return Err(serde::de::Error::custom(format!(
                            "key \"{k}\" appears twice"
                        )));
                    }
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_on_the_wire() {
        assert_eq!(
            DocumentFormat::from_wire(None).unwrap(),
            DocumentFormat::Json
        );
        assert_eq!(
            DocumentFormat::from_wire(Some("YAML")).unwrap(),
            DocumentFormat::Yaml
        );
        assert_eq!(
            DocumentFormat::from_wire(Some("TEXT")).unwrap_err().code(),
            "InvalidDocumentContent"
        );
        assert_eq!(
            DocumentFormat::from_wire(Some("yaml")).unwrap_err().code(),
            "ValidationException"
        );
    }

    #[test]
    fn syntax_errors_are_invalid_content() {
        let e = DocumentFormat::Json
            .read::<serde_json::Value>("{\n  \"a\": ,\n}")
            .unwrap_err();
        assert_eq!(e.code(), "InvalidDocumentContent");
        assert_eq!(e.to_string(), "The content for the document is not valid.");
        let e = DocumentFormat::Yaml
            .read::<serde_json::Value>("a: [1, 2\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("YAML not well-formed"), "{e}");
        // JSON is YAML.
        let v: serde_json::Value = DocumentFormat::Yaml.read("{\"a\": [1]}").unwrap();
        assert_eq!(v, serde_json::json!({"a": [1]}));
    }

    #[test]
    fn size_and_hash() {
        assert_eq!(
            check_size("  ").unwrap_err().code(),
            "InvalidDocumentContent"
        );
        let big = "x".repeat(MAX_CONTENT_BYTES + 1);
        assert_eq!(
            check_size(&big).unwrap_err().code(),
            "MaxDocumentSizeExceeded"
        );
        assert!(check_size(&big[1..]).is_ok());
        assert_eq!(
            content_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(content_hash("a"), content_hash("a "));
    }

    #[test]
    fn ordered_maps_keep_order_and_refuse_repeats() {
        let m: Ordered<u8> = serde_json::from_str(r#"{"z":1,"a":2,"m":3}"#).unwrap();
        let keys: Vec<_> = m.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let e = serde_json::from_str::<Ordered<u8>>(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(e.to_string().starts_with("key \"a\" appears twice"), "{e}");
        let y: Ordered<u8> = serde_norway::from_str("b: 1\na: 2\n").unwrap();
        assert_eq!(y.0[0].0, "b");
    }

    #[test]
    fn conversion_round_trips_the_value() {
        let json = r#"{"schemaVersion":"2.2","mainSteps":[{"name":"a"}]}"#;
        let yaml =
            DocumentFormat::convert(json, DocumentFormat::Json, DocumentFormat::Yaml).unwrap();
        let back: serde_json::Value = DocumentFormat::Yaml.read(&yaml).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(json).unwrap()
        );
    }
}
