//! Custom inventory (`Custom:*` types) from `*.json` files in a folder on
//! the node, as SSM's agent reads them: each file holds one type,
//! `{"SchemaVersion": "1.0", "TypeName": "Custom:Rack", "Content": …}`,
//! Content one entry (an object) or a list of them, values strings (a
//! number or boolean is taken as its text). A file that does not read so
//! is skipped with a warning; the others are still sent.

use std::path::{Path, PathBuf};

use serde_json::Value;
use steward_core::inventory::Entry;

/// SSM's folder, under the root: `var/lib/amazon/ssm/<id>/inventory/custom`.
pub fn default_dir(root: &Path, instance_id: &str) -> PathBuf {
    root.join("var/lib/amazon/ssm")
        .join(instance_id)
        .join("inventory/custom")
}

/// One custom type read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomType {
    pub type_name: String,
    pub schema_version: String,
    pub content: Vec<Entry>,
}

/// Reads every `*.json` file of `dir` (none when it does not exist), in
/// name order; the warnings name the files skipped.
pub fn read(dir: &Path) -> (Vec<CustomType>, Vec<String>) {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(list) => list
            .flatten()
            .map(|f| f.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect(),
        Err(_) => return (Vec::new(), Vec::new()),
    };
    files.sort();
    let mut types: Vec<CustomType> = Vec::new();
    let mut warnings = Vec::new();
    for f in files {
        match read_file(&f) {
            Ok(t) if types.iter().any(|k| k.type_name == t.type_name) => warnings.push(format!(
                "{}: {} is already read from another file; skipped",
                f.display(),
                t.type_name
            )),
            Ok(t) => types.push(t),
            Err(why) => warnings.push(format!("{}: {why}; skipped", f.display())),
        }
    }
    (types, warnings)
}

fn read_file(path: &Path) -> Result<CustomType, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let type_name = field("TypeName").ok_or("no TypeName")?;
    if !type_name.starts_with("Custom:") || type_name.len() <= "Custom:".len() {
        return Err(format!("TypeName {type_name} does not start with Custom:"));
    }
    let schema_version = field("SchemaVersion").ok_or("no SchemaVersion")?;
    let entries = match v.get("Content") {
        Some(Value::Object(o)) => vec![o.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                e.as_object()
                    .cloned()
                    .ok_or("Content holds something not an object")
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("Content must be an object or a list of objects".into()),
    };
    let content = entries
        .into_iter()
        .map(|o| {
            o.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    Value::Number(_) | Value::Bool(_) => Ok((k, v.to_string())),
                    _ => Err(format!("attribute {k} is not a string")),
                })
                .collect::<Result<Entry, String>>()
        })
        .collect::<Result<Vec<Entry>, String>>()?;
    Ok(CustomType {
        type_name,
        schema_version,
        content,
    })
}
