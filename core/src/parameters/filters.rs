//! The filters of DescribeParameters (`Filters`, deprecated, and
//! `ParameterFilters`) and of GetParametersByPath (`ParameterFilters`), with
//! SSM's rules for which keys and options each operation takes.
//!
//! | key | DescribeParameters | GetParametersByPath | options |
//! |---|---|---|---|
//! | `Name` | yes | no | Equals, BeginsWith, Contains |
//! | `Path` | yes | no | OneLevel (default), Recursive |
//! | `Type`, `KeyId` | yes | yes | Equals, BeginsWith |
//! | `Tier`, `DataType`, `tag:<key>` | yes | no | Equals, BeginsWith |
//! | `tag-key` (Steward) | yes | no | Equals, BeginsWith |
//! | `Label` | no | yes | Equals |
//!
//! Filters combine with AND; the values of one filter with OR.

use serde_json::Value;

use super::model::Parameter;
use super::name::{MAX_LEVELS, levels, parent_of};
use crate::error::SsmError;

const MAX_VALUES: usize = 50;
const MAX_VALUE_LEN: usize = 1024;
const MAX_KEY_LEN: usize = 132;
const KEY_PATTERN: &str = "tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType";

/// Which operation the filters are for: each takes different keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    DescribeParameters,
    GetParametersByPath,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterKey {
    Name,
    Path,
    Type,
    KeyId,
    Label,
    Tier,
    DataType,
    /// `tag:<key>`: the tag's value.
    Tag(String),
    /// `tag-key`: the keys of the tags.
    TagKey,
}

impl FilterKey {
    fn parse(key: &str) -> Option<Self> {
        Some(match key {
            "Name" => FilterKey::Name,
            "Path" => FilterKey::Path,
            "Type" => FilterKey::Type,
            "KeyId" => FilterKey::KeyId,
            "Label" => FilterKey::Label,
            "Tier" => FilterKey::Tier,
            "DataType" => FilterKey::DataType,
            "tag-key" => FilterKey::TagKey,
            k => FilterKey::Tag(
                k.strip_prefix("tag:")
                    .filter(|t| !t.is_empty())?
                    .to_string(),
            ),
        })
    }

    fn as_string(&self) -> String {
        match self {
            FilterKey::Name => "Name".into(),
            FilterKey::Path => "Path".into(),
            FilterKey::Type => "Type".into(),
            FilterKey::KeyId => "KeyId".into(),
            FilterKey::Label => "Label".into(),
            FilterKey::Tier => "Tier".into(),
            FilterKey::DataType => "DataType".into(),
            FilterKey::Tag(k) => format!("tag:{k}"),
            FilterKey::TagKey => "tag-key".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOption {
    Equals,
    BeginsWith,
    Contains,
    OneLevel,
    Recursive,
}

impl FilterOption {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Equals" => FilterOption::Equals,
            "BeginsWith" => FilterOption::BeginsWith,
            "Contains" => FilterOption::Contains,
            "OneLevel" => FilterOption::OneLevel,
            "Recursive" => FilterOption::Recursive,
            _ => return None,
        })
    }
}

/// One parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterFilter {
    pub key: FilterKey,
    pub option: FilterOption,
    pub values: Vec<String>,
}

/// The filters of one request, all of which a parameter must pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub filters: Vec<ParameterFilter>,
}

fn validation(msg: String) -> SsmError {
    SsmError::ValidationException(msg)
}

fn strings(v: Option<&Value>, at: &str) -> Result<Vec<String>, SsmError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    SsmError::SerializationException(format!("{at} must be a list of strings."))
                })
            })
            .collect(),
        Some(_) => Err(SsmError::SerializationException(format!(
            "{at} must be a list of strings."
        ))),
    }
}

fn list<'a>(v: Option<&'a Value>, at: &str) -> Result<&'a [Value], SsmError> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(SsmError::SerializationException(format!(
            "{at} must be a list of filters."
        ))),
    }
}

fn check_values(values: &[String], at: &str) -> Result<(), SsmError> {
    if values.len() > MAX_VALUES {
        return Err(validation(format!(
            "1 validation error detected: Value at '{at}.values' failed to satisfy constraint: Member must have length less than or equal to {MAX_VALUES}."
        )));
    }
    if values
        .iter()
        .any(|v| v.is_empty() || v.chars().count() > MAX_VALUE_LEN)
    {
        return Err(validation(format!(
            "1 validation error detected: Value at '{at}.values' failed to satisfy constraint: [Member must have length less than or equal to {MAX_VALUE_LEN}, Member must have length greater than or equal to 1]."
        )));
    }
    Ok(())
}

fn invalid_value(value: &str, valid: &str) -> SsmError {
    SsmError::InvalidFilterValue(format!(
        "The following filter value is not valid: {value}. Valid values include: [{valid}]."
    ))
}

fn check_path(value: &str) -> Result<(), SsmError> {
    let lower = value.to_ascii_lowercase();
    if lower.starts_with("/aws") || lower.starts_with("/ssm") {
        return Err(validation(
            "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). When using global parameters, please specify within a global namespace.".into(),
        ));
    }
    if !value.starts_with('/')
        || value.contains("//")
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
    {
        return Err(validation(
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.".into(),
        ));
    }
    if levels(value.trim_end_matches('/')) > MAX_LEVELS {
        return Err(SsmError::HierarchyLevelLimitExceededException(format!(
            "A hierarchy can have a maximum of {MAX_LEVELS} levels; the Path filter value {value} has more. Shorten it."
        )));
    }
    Ok(())
}

impl Filters {
    /// DescribeParameters: `Filters` (deprecated) or `ParameterFilters`,
    /// never both.
    pub fn for_describe(
        filters: Option<&Value>,
        parameter_filters: Option<&Value>,
    ) -> Result<Self, SsmError> {
        let old = list(filters, "Filters")?;
        let new = list(parameter_filters, "ParameterFilters")?;
        if !old.is_empty() && !new.is_empty() {
            return Err(validation(
                "You can use either Filters or ParameterFilters in a single request.".into(),
            ));
        }
        if !old.is_empty() {
            return Self::deprecated(old);
        }
        Self::parse(new, Operation::DescribeParameters)
    }

    /// GetParametersByPath: `ParameterFilters` (Type, KeyId, Label).
    pub fn for_path(parameter_filters: Option<&Value>) -> Result<Self, SsmError> {
        Self::parse(
            list(parameter_filters, "ParameterFilters")?,
            Operation::GetParametersByPath,
        )
    }

    /// `ParametersFilter`: Key `Name` (names that begin with a value),
    /// `Type` or `KeyId` (equal to a value), Values 1–50.
    fn deprecated(items: &[Value]) -> Result<Self, SsmError> {
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("filters.{}.member", i + 1);
            let key = item.get("Key").and_then(Value::as_str).unwrap_or_default();
            let values = strings(item.get("Values"), &format!("Filters[{i}].Values"))?;
            let (key, option) = match key {
                "Name" => (FilterKey::Name, FilterOption::BeginsWith),
                "Type" => (FilterKey::Type, FilterOption::Equals),
                "KeyId" => (FilterKey::KeyId, FilterOption::Equals),
                other => {
                    return Err(validation(format!(
                        "1 validation error detected: Value '{other}' at '{at}.key' failed to satisfy constraint: Member must satisfy enum value set: [Name, Type, KeyId]."
                    )));
                }
            };
            if values.is_empty() {
                return Err(validation(format!(
                    "1 validation error detected: Value null at '{at}.values' failed to satisfy constraint: Member must not be null. Give at least one value."
                )));
            }
            check_values(&values, &at)?;
            out.push(ParameterFilter {
                key,
                option,
                values,
            });
        }
        Ok(Self { filters: out })
    }

    fn parse(items: &[Value], op: Operation) -> Result<Self, SsmError> {
        let mut out: Vec<ParameterFilter> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("parameterFilters.{}.member", i + 1);
            let raw_key = item.get("Key").and_then(Value::as_str).unwrap_or_default();
            if raw_key.chars().count() > MAX_KEY_LEN {
                return Err(validation(format!(
                    "1 validation error detected: Value at '{at}.key' failed to satisfy constraint: Member must have length less than or equal to {MAX_KEY_LEN}."
                )));
            }
            let Some(key) = FilterKey::parse(raw_key) else {
                return Err(validation(format!(
                    "1 validation error detected: Value '{raw_key}' at '{at}.key' failed to satisfy constraint: Member must satisfy regular expression pattern: {KEY_PATTERN}."
                )));
            };
            let values = strings(item.get("Values"), &format!("ParameterFilters[{i}].Values"))?;
            check_values(&values, &at)?;
            match op {
                Operation::DescribeParameters if key == FilterKey::Label => {
                    return Err(SsmError::InvalidFilterKey(
                        "The following filter key is not valid: Label. Valid filter keys include: [Path, Name, Type, KeyId, Tier].".into(),
                    ));
                }
                Operation::GetParametersByPath
                    if !matches!(key, FilterKey::Type | FilterKey::KeyId | FilterKey::Label) =>
                {
                    return Err(SsmError::InvalidFilterKey(format!(
                        "The following filter key is not valid: {}. Valid filter keys include: [Type, KeyId].",
                        key.as_string()
                    )));
                }
                _ => {}
            }
            if out.iter().any(|f| f.key == key) {
                return Err(SsmError::InvalidFilterKey(format!(
                    "The following filter is duplicated in the request: {}. A request can contain only one occurrence of a specific filter.",
                    key.as_string()
                )));
            }
            let raw_option = item.get("Option").and_then(Value::as_str);
            let option = parse_option(&key, raw_option, op)?;
            // A tag filter without values asks whether the tag is there; every
            // other key needs at least one value.
            if values.is_empty() && !matches!(key, FilterKey::Tag(_)) {
                return Err(SsmError::InvalidFilterValue(format!(
                    "The following filter values are missing : null for filter key {}.",
                    key.as_string()
                )));
            }
            match &key {
                FilterKey::Type => {
                    for v in &values {
                        if !matches!(v.as_str(), "String" | "StringList" | "SecureString")
                            && option == FilterOption::Equals
                        {
                            return Err(invalid_value(v, "String, StringList, SecureString"));
                        }
                    }
                }
                FilterKey::Tier => {
                    for v in &values {
                        if !matches!(v.as_str(), "Standard" | "Advanced" | "Intelligent-Tiering")
                            && option == FilterOption::Equals
                        {
                            return Err(invalid_value(
                                v,
                                "Standard, Advanced, Intelligent-Tiering",
                            ));
                        }
                    }
                }
                FilterKey::DataType => {
                    for v in &values {
                        if !matches!(v.as_str(), "text" | "aws:ec2:image" | "aws:ssm:integration")
                            && option == FilterOption::Equals
                        {
                            return Err(invalid_value(
                                v,
                                "text, aws:ec2:image, aws:ssm:integration",
                            ));
                        }
                    }
                }
                FilterKey::Path => {
                    for v in &values {
                        check_path(v)?;
                    }
                }
                _ => {}
            }
            out.push(ParameterFilter {
                key,
                option,
                values,
            });
        }
        Ok(Self { filters: out })
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// Whether `p` passes every filter.
    pub fn matches(&self, p: &Parameter) -> bool {
        self.filters.iter().all(|f| f.matches(p))
    }

    /// The one `Path` filter with one value, if any: DescribeParameters then
    /// lists under that path instead of every parameter.
    pub fn single_path(&self) -> Option<(String, bool)> {
        let f = self.filters.iter().find(|f| f.key == FilterKey::Path)?;
        match f.values.as_slice() {
            [one] => Some((normalize_path(one), f.option == FilterOption::Recursive)),
            _ => None,
        }
    }

    /// A name prefix every match must start with, from a `Name` filter with
    /// one value (Equals or BeginsWith) on a hierarchical name: the listing
    /// then walks only those names instead of every parameter. Only names
    /// with a second `/` qualify: they can only be stored with their leading
    /// slash, while `/foo` also matches a stored `foo`.
    pub fn name_prefix(&self) -> Option<String> {
        let f = self.filters.iter().find(|f| {
            f.key == FilterKey::Name
                && matches!(f.option, FilterOption::Equals | FilterOption::BeginsWith)
        })?;
        match f.values.as_slice() {
            [one] if one.starts_with('/') && one[1..].contains('/') => Some(one.clone()),
            _ => None,
        }
    }

    /// The labels of the `Label` filter: GetParametersByPath answers, for each
    /// parameter, the version that carries the first of them it has.
    pub fn labels(&self) -> Option<&[String]> {
        self.filters
            .iter()
            .find(|f| f.key == FilterKey::Label)
            .map(|f| f.values.as_slice())
    }
}

fn parse_option(
    key: &FilterKey,
    given: Option<&str>,
    op: Operation,
) -> Result<FilterOption, SsmError> {
    let (default, valid): (FilterOption, &[FilterOption]) = match (key, op) {
        (FilterKey::Path, _) => (
            FilterOption::OneLevel,
            &[FilterOption::Recursive, FilterOption::OneLevel],
        ),
        (FilterKey::Name, _) => (
            FilterOption::Equals,
            &[
                FilterOption::Equals,
                FilterOption::BeginsWith,
                FilterOption::Contains,
            ],
        ),
        (FilterKey::Label, _) => (FilterOption::Equals, &[FilterOption::Equals]),
        _ => (
            FilterOption::Equals,
            &[FilterOption::Equals, FilterOption::BeginsWith],
        ),
    };
    let Some(given) = given else {
        return Ok(default);
    };
    match FilterOption::parse(given) {
        Some(o) if valid.contains(&o) => Ok(o),
        _ => {
            // SSM's sentence lists the options in this order and leaves
            // Name's Contains out.
            let names: Vec<&str> = [
                (FilterOption::Recursive, "Recursive"),
                (FilterOption::OneLevel, "OneLevel"),
                (FilterOption::BeginsWith, "BeginsWith"),
                (FilterOption::Equals, "Equals"),
            ]
            .into_iter()
            .filter(|(o, _)| valid.contains(o))
            .map(|(_, n)| n)
            .collect();
            Err(SsmError::InvalidFilterOption(format!(
                "The following filter option is not valid: {given}. Valid options include: [{}].",
                names.join(", ")
            )))
        }
    }
}

/// `/a/b/` → `/a/b`; `/` stays `/`.
pub fn normalize_path(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        "/".to_string()
    } else {
        t.to_string()
    }
}

/// SSM compares names in filters as if they began with `/`: `foo` and
/// `/foo` are the same to a Name filter.
fn slashed(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    }
}

fn compare(option: FilterOption, have: &str, want: &str) -> bool {
    match option {
        FilterOption::Equals => have == want,
        FilterOption::BeginsWith => have.starts_with(want),
        FilterOption::Contains => have.contains(want),
        // Path options are handled by the Path filter itself.
        FilterOption::OneLevel | FilterOption::Recursive => false,
    }
}

impl ParameterFilter {
    pub fn matches(&self, p: &Parameter) -> bool {
        let v = &p.current;
        let any = |have: &str| self.values.iter().any(|w| compare(self.option, have, w));
        match &self.key {
            FilterKey::Name => {
                let name = slashed(&v.name);
                self.values.iter().any(|w| match self.option {
                    FilterOption::Contains => v.name.contains(w.as_str()),
                    o => compare(o, &name, &slashed(w)),
                })
            }
            FilterKey::Path => self.values.iter().any(|w| {
                let path = normalize_path(w);
                match self.option {
                    FilterOption::Recursive => {
                        path == "/" || v.name.starts_with(&format!("{path}/"))
                    }
                    // One level: the same parent as GetParametersByPath uses,
                    // so `/` holds `/a` and the plain name `a`.
                    _ => parent_of(&v.name) == path,
                }
            }),
            FilterKey::Type => any(v.parameter_type.as_str()),
            FilterKey::KeyId => v.key_id.as_deref().is_some_and(any),
            FilterKey::Tier => any(v.tier.as_str()),
            FilterKey::DataType => any(&v.data_type),
            FilterKey::Label => self.values.iter().any(|l| p.labels.contains_key(l)),
            FilterKey::Tag(k) => match p.tags.get(k) {
                None => false,
                Some(_) if self.values.is_empty() => true,
                Some(val) => any(val),
            },
            FilterKey::TagKey => p.tags.keys().any(|k| any(k)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::json;

    use super::*;
    use crate::parameters::model::{ParameterType, ParameterVersion, StoredValue, Tier};

    fn param(name: &str) -> Parameter {
        Parameter {
            current: ParameterVersion {
                name: name.into(),
                version: 2,
                parameter_type: ParameterType::String,
                value: StoredValue::Plain("v".into()),
                key_id: None,
                description: None,
                allowed_pattern: None,
                tier: Tier::Standard,
                policies: vec![],
                data_type: "text".into(),
                labels: BTreeSet::new(),
                last_modified_date: 0.0,
                last_modified_user: "u".into(),
            },
            oldest_version: 1,
            labels: BTreeMap::new(),
            tags: Default::default(),
            policy_due: None,
            revision: 1,
        }
    }

    fn describe(f: Value) -> Result<Filters, SsmError> {
        Filters::for_describe(None, Some(&f))
    }

    fn by_path(f: Value) -> Result<Filters, SsmError> {
        Filters::for_path(Some(&f))
    }

    fn err(r: Result<Filters, SsmError>) -> &'static str {
        r.unwrap_err().code()
    }

    fn one(key: &str, option: Option<&str>, values: &[&str]) -> Value {
        let mut f = json!({"Key": key, "Values": values});
        if let Some(o) = option {
            f["Option"] = json!(o);
        }
        json!([f])
    }

    fn passes(f: Value, p: &Parameter) -> bool {
        describe(f).unwrap().matches(p)
    }

    #[test]
    fn name_equals_begins_with_contains() {
        let p = param("/app/dev/db-url");
        assert!(passes(one("Name", None, &["/app/dev/db-url"]), &p));
        assert!(passes(one("Name", Some("Equals"), &["app/dev/db-url"]), &p));
        assert!(!passes(one("Name", None, &["/app/dev"]), &p));
        assert!(passes(one("Name", Some("BeginsWith"), &["/app/d"]), &p));
        assert!(passes(one("Name", Some("BeginsWith"), &["/x", "app/"]), &p));
        assert!(!passes(one("Name", Some("BeginsWith"), &["/dev"]), &p));
        assert!(passes(one("Name", Some("Contains"), &["db-"]), &p));
        assert!(!passes(one("Name", Some("Contains"), &["prod"]), &p));
        // A plain name is `/name` to the filter.
        let plain = param("foo");
        assert!(passes(one("Name", None, &["/foo"]), &plain));
        assert!(passes(one("Name", Some("BeginsWith"), &["/f"]), &plain));
        assert_eq!(
            err(describe(one("Name", Some("OneLevel"), &["/a"]))),
            "InvalidFilterOption"
        );
        assert_eq!(err(describe(one("Name", None, &[]))), "InvalidFilterValue");
    }

    #[test]
    fn path_one_level_and_recursive() {
        let deep = param("/app/dev/db/url");
        let top = param("/app");
        let plain = param("app");
        assert!(passes(one("Path", None, &["/app/dev/db"]), &deep));
        assert!(passes(
            one("Path", Some("OneLevel"), &["/app/dev/db/"]),
            &deep
        ));
        assert!(!passes(one("Path", Some("OneLevel"), &["/app"]), &deep));
        assert!(passes(one("Path", Some("Recursive"), &["/app"]), &deep));
        assert!(passes(one("Path", Some("Recursive"), &["/"]), &deep));
        assert!(!passes(one("Path", Some("Recursive"), &["/ap"]), &deep));
        assert!(passes(one("Path", None, &["/"]), &top));
        assert!(passes(one("Path", None, &["/"]), &plain));
        assert!(!passes(one("Path", None, &["/"]), &deep));
        let f = describe(one("Path", Some("Recursive"), &["/app/"])).unwrap();
        assert_eq!(f.single_path(), Some(("/app".to_string(), true)));
        assert_eq!(
            err(describe(one("Path", Some("Equals"), &["/a"]))),
            "InvalidFilterOption"
        );
        assert_eq!(
            err(describe(one("Path", None, &["app"]))),
            "ValidationException"
        );
        assert_eq!(
            err(describe(one("Path", None, &["/a//b"]))),
            "ValidationException"
        );
        assert_eq!(
            err(describe(one("Path", None, &["/a b"]))),
            "ValidationException"
        );
        assert_eq!(
            err(describe(one("Path", None, &["/aws/x"]))),
            "ValidationException"
        );
        let deep16 = format!("/{}", vec!["l"; 16].join("/"));
        assert_eq!(
            err(describe(one("Path", None, &[&deep16]))),
            "HierarchyLevelLimitExceededException"
        );
        assert_eq!(err(describe(one("Path", None, &[]))), "InvalidFilterValue");
    }

    #[test]
    fn type_key_id_tier_data_type() {
        let mut p = param("/s");
        p.current.parameter_type = ParameterType::SecureString;
        p.current.key_id = Some("alias/app-key".into());
        p.current.tier = Tier::Advanced;
        assert!(passes(one("Type", None, &["String", "SecureString"]), &p));
        assert!(!passes(one("Type", None, &["StringList"]), &p));
        assert!(passes(one("Type", Some("BeginsWith"), &["Secure"]), &p));
        assert!(passes(one("KeyId", None, &["alias/app-key"]), &p));
        assert!(passes(one("KeyId", Some("BeginsWith"), &["alias/"]), &p));
        assert!(!passes(one("KeyId", None, &["alias/other"]), &p));
        assert!(!passes(
            one("KeyId", None, &["alias/app-key"]),
            &param("/plain")
        ));
        assert!(passes(one("Tier", None, &["Advanced"]), &p));
        assert!(!passes(one("Tier", None, &["Standard"]), &p));
        assert!(!passes(one("Tier", None, &["Intelligent-Tiering"]), &p));
        assert!(passes(one("DataType", None, &["text"]), &p));
        assert!(!passes(one("DataType", None, &["aws:ec2:image"]), &p));
        assert_eq!(
            err(describe(one("Type", None, &["Blob"]))),
            "InvalidFilterValue"
        );
        assert_eq!(
            err(describe(one("Tier", None, &["Gold"]))),
            "InvalidFilterValue"
        );
        assert_eq!(
            err(describe(one("DataType", None, &["json"]))),
            "InvalidFilterValue"
        );
        assert_eq!(
            err(describe(one("Type", Some("Contains"), &["S"]))),
            "InvalidFilterOption"
        );
        assert_eq!(
            err(describe(one("KeyId", Some("Recursive"), &["k"]))),
            "InvalidFilterOption"
        );
        assert_eq!(err(describe(one("Type", None, &[]))), "InvalidFilterValue");
    }

    #[test]
    fn tags_and_tag_keys() {
        let mut p = param("/t");
        p.tags.insert("env".into(), "prod-eu".into());
        p.tags.insert("team".into(), "ops".into());
        assert!(passes(one("tag:env", None, &["prod-eu"]), &p));
        assert!(passes(one("tag:env", Some("BeginsWith"), &["prod"]), &p));
        assert!(!passes(one("tag:env", None, &["prod"]), &p));
        assert!(passes(one("tag:env", None, &[]), &p));
        assert!(!passes(one("tag:owner", None, &[]), &p));
        assert!(passes(one("tag-key", None, &["team"]), &p));
        assert!(passes(one("tag-key", Some("BeginsWith"), &["te"]), &p));
        assert!(!passes(one("tag-key", None, &["owner"]), &p));
        assert_eq!(
            err(describe(one("tag-key", None, &[]))),
            "InvalidFilterValue"
        );
        assert_eq!(
            err(describe(one("tag:env", Some("Contains"), &["p"]))),
            "InvalidFilterOption"
        );
        assert_eq!(
            err(describe(one("tag:", None, &["x"]))),
            "ValidationException"
        );
    }

    #[test]
    fn labels_only_for_get_parameters_by_path() {
        let mut p = param("/l");
        p.labels.insert("prod".into(), 1);
        let f = by_path(one("Label", None, &["stage", "prod"])).unwrap();
        assert!(f.matches(&p));
        assert_eq!(
            f.labels(),
            Some(&["stage".to_string(), "prod".to_string()][..])
        );
        assert!(!by_path(one("Label", None, &["stage"])).unwrap().matches(&p));
        assert_eq!(
            err(by_path(one("Label", Some("BeginsWith"), &["p"]))),
            "InvalidFilterOption"
        );
        assert_eq!(
            err(describe(one("Label", None, &["prod"]))),
            "InvalidFilterKey"
        );
        // GetParametersByPath takes Type, KeyId and Label only.
        for key in ["Name", "Path", "Tier", "DataType", "tag:env", "tag-key"] {
            assert_eq!(
                err(by_path(one(key, None, &["/x"]))),
                "InvalidFilterKey",
                "{key}"
            );
        }
        assert!(by_path(one("Type", None, &["String"])).unwrap().matches(&p));
        assert!(by_path(one("KeyId", None, &["k"])).is_ok());
    }

    #[test]
    fn request_shape_errors() {
        let two = json!([{"Key": "Type", "Values": ["String"]}, {"Key": "Type", "Values": ["SecureString"]}]);
        assert_eq!(err(describe(two)), "InvalidFilterKey");
        assert_eq!(
            err(describe(one("Color", None, &["red"]))),
            "ValidationException"
        );
        let long_key = format!("tag:{}", "k".repeat(140));
        assert_eq!(
            err(describe(one(&long_key, None, &["v"]))),
            "ValidationException"
        );
        let many: Vec<String> = (0..51).map(|i| format!("v{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            err(describe(one("tag:a", None, &many))),
            "ValidationException"
        );
        assert_eq!(
            err(describe(one("tag:a", None, &[""]))),
            "ValidationException"
        );
        let big = "v".repeat(1025);
        assert_eq!(
            err(describe(one("tag:a", None, &[&big]))),
            "ValidationException"
        );
        assert_eq!(
            err(describe(json!([{"Key": "Type", "Values": "String"}]))),
            "SerializationException"
        );
        // Filters and ParameterFilters together.
        let old = json!([{"Key": "Name", "Values": ["/a"]}]);
        let new = one("Type", None, &["String"]);
        assert_eq!(
            Filters::for_describe(Some(&old), Some(&new))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        // No filters at all pass everything.
        let none = Filters::for_describe(None, None).unwrap();
        assert!(none.is_empty() && none.matches(&param("/x")));
    }

    #[test]
    fn deprecated_filters() {
        let mut p = param("/app/x");
        p.current.parameter_type = ParameterType::SecureString;
        p.current.key_id = Some("k1".into());
        let f = |v: Value| Filters::for_describe(Some(&v), None);
        assert!(
            f(json!([{"Key": "Name", "Values": ["/app"]}]))
                .unwrap()
                .matches(&p)
        );
        assert!(
            !f(json!([{"Key": "Name", "Values": ["/b"]}]))
                .unwrap()
                .matches(&p)
        );
        assert!(
            f(json!([{"Key": "Type", "Values": ["SecureString"]}]))
                .unwrap()
                .matches(&p)
        );
        assert!(
            !f(json!([{"Key": "Type", "Values": ["Secure"]}]))
                .unwrap()
                .matches(&p)
        );
        assert!(
            f(json!([{"Key": "KeyId", "Values": ["k1"]}]))
                .unwrap()
                .matches(&p)
        );
        assert_eq!(
            f(json!([{"Key": "Tier", "Values": ["Standard"]}]))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert_eq!(
            f(json!([{"Key": "Name", "Values": []}]))
                .unwrap_err()
                .code(),
            "ValidationException"
        );
    }
}
