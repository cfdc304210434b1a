//! `{{ssm:name}}` and `{{ssm-secure:name}}` references in Run Command
//! parameters, as SSM's: `{{ssm:/app/url}}`, `{{ssm:/app/url:3}}` (a version),
//! `{{ ssm:/app/url:live }}` (a label; spaces inside the braces are allowed).
//!
//! Both kinds are checked when the command is sent ([`validate_references`]).
//! `ssm:` references are resolved by dispatch when a node's message is built
//! ([`PlainResolver`]); the command record keeps the reference text.
//! `ssm-secure:` references stay in the signed message: the agent asks the
//! API for their values (`Steward.GetNodeParameters`) just before the step
//! runs, so a secret never travels through a queue or lands in a record.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::model::{ParameterType, ParameterVersion, StoredValue};
use super::ports::ParameterStore;
use super::secrets::Sealer;
use super::selector::{self, Selector};
use crate::access::Authorizer;
use crate::arn::ArnScope;
use crate::channel::PluginStep;
use crate::documents::GivenParameters;
use crate::error::SsmError;

pub const PLAIN_PREFIX: &str = "ssm:";
pub const SECURE_PREFIX: &str = "ssm-secure:";
/// Distinct references one command may carry: each costs reads at send
/// time and at dispatch.
pub const MAX_REFERENCES: usize = 100;
/// The action a reference is authorized as, on the parameter's ARN.
pub const READ_ACTION: &str = "ssm:GetParameters";
/// The action an `ssm-secure:` reference also needs, on the value's KMS key.
pub const DECRYPT_ACTION: &str = "kms:Decrypt";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `{{ssm:…}}`: a String or StringList, resolved by the control plane.
    Plain,
    /// `{{ssm-secure:…}}`: a SecureString, resolved on the node.
    Secure,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Plain => PLAIN_PREFIX,
            Kind::Secure => SECURE_PREFIX,
        }
    }
}

/// One reference found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: Kind,
    /// What follows the prefix, spaces trimmed: `name` or `name:selector`.
    /// This is also the form the agent asks `GetNodeParameters` for.
    pub target: String,
    /// Where the whole `{{…}}` is in the text (bytes).
    pub span: Range<usize>,
}

impl Reference {
    /// The reference as messages show it, e.g. `{{ssm-secure:/db/password}}`.
    pub fn display(&self) -> String {
        display(self.kind, &self.target)
    }

    /// The parameter name and the selector, checked.
    pub fn parse(&self) -> Result<(String, Option<Selector>), SsmError> {
        let (name, sel) = selector::split(&self.target).map_err(|e| {
            SsmError::InvalidParameters(format!("Reference {} is not valid: {e}", self.display()))
        })?;
        if !is_reference_name(&name) {
            return Err(SsmError::InvalidParameters(format!(
                "Reference {} does not name a parameter: names use letters, digits, and . _ - /; write {{{{{}/name}}}} or {{{{{}/name:version-or-label}}}}.",
                self.display(),
                self.kind.prefix(),
                self.kind.prefix()
            )));
        }
        Ok((name, sel))
    }
}

pub fn display(kind: Kind, target: &str) -> String {
    format!("{{{{{}{target}}}}}", kind.prefix())
}

fn is_reference_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
}

/// Every `{{ssm:…}}` and `{{ssm-secure:…}}` in `text`, in order. Any other
/// `{{…}}` (a document parameter) is not a reference and is left alone.
pub fn find(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(i) = text[pos..].find("{{") {
        let start = pos + i;
        let Some(j) = text[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + j + 2;
        let inner = text[start + 2..end - 2].trim();
        // A brace inside means this `{{` does not open a reference; one may
        // start further on (`{{{ssm:/x}}`).
        let kind = if inner.contains(['{', '}']) {
            None
        } else if let Some(rest) = inner.strip_prefix(SECURE_PREFIX) {
            Some((Kind::Secure, rest))
        } else {
            inner
                .strip_prefix(PLAIN_PREFIX)
                .map(|rest| (Kind::Plain, rest))
        };
        match kind {
            Some((kind, rest)) => {
                found.push(Reference {
                    kind,
                    target: rest.trim().to_string(),
                    span: start..end,
                });
                pos = end;
            }
            None => pos = start + 1,
        }
    }
    found
}

/// `text` with each reference replaced by what `value` answers for it
/// (`None`: left as written). One pass: a value that itself looks like a
/// reference is not resolved again.
pub fn substitute(text: &str, mut value: impl FnMut(&Reference) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in find(text) {
        if let Some(v) = value(&r) {
            out.push_str(&text[last..r.span.start]);
            out.push_str(&v);
            last = r.span.end;
        }
    }
    out.push_str(&text[last..]);
    out
}

/// The distinct references of every value of `parameters`.
pub fn in_parameters(parameters: &GivenParameters) -> BTreeSet<(Kind, String)> {
    parameters
        .values()
        .flatten()
        .flat_map(|v| find(v))
        .map(|r| (r.kind, r.target))
        .collect()
}

/// The distinct references of the steps as they will run: after
/// interpolation, nested documents and defaults, so references a document
/// writes itself, or that parameters only form when joined, are found here
/// as dispatch and the node will find them.
pub fn in_steps(steps: &[PluginStep]) -> BTreeSet<(Kind, String)> {
    steps
        .iter()
        .flat_map(step_texts)
        .flat_map(|t| find(t))
        .map(|r| (r.kind, r.target))
        .collect()
}

/// The strings of a step a reference may be in: every text dispatch
/// ([`PlainResolver::resolve_steps`]) and the node ([`secure_targets`]) read.
fn step_texts(step: &PluginStep) -> impl Iterator<Item = &String> {
    step.run_command
        .iter()
        .chain(std::iter::once(&step.working_directory))
}

/// The distinct `ssm-secure:` targets of a step, in order of appearance.
pub fn secure_targets(step: &PluginStep) -> Vec<String> {
    let mut seen = Vec::new();
    for r in step_texts(step).flat_map(|t| find(t)) {
        if r.kind == Kind::Secure && !seen.contains(&r.target) {
            seen.push(r.target);
        }
    }
    seen
}

/// The version a name and selector point at, or `None` when there is none
/// (no such parameter, a version no longer kept, an unknown label).
pub async fn select(
    store: &dyn ParameterStore,
    name: &str,
    selector: Option<&Selector>,
) -> Result<Option<ParameterVersion>, SsmError> {
    let Some(head) = store.find(name).await? else {
        return Ok(None);
    };
    let name = head.name().to_string();
    let name = name.as_str();
    let version = match selector {
        None => return Ok(Some(head.current)),
        Some(Selector::Version(v)) => *v,
        Some(Selector::Label(l)) => match head.labels.get(l) {
            Some(v) => *v,
            None => return Ok(None),
        },
    };
    if version == head.version() {
        return Ok(Some(head.current));
    }
    if version < head.oldest_version || version > head.version() {
        return Ok(None);
    }
    store.get_version(name, version).await
}

fn what_is_missing(name: &str, selector: Option<&Selector>) -> String {
    match selector {
        None => format!("parameter {name} does not exist"),
        Some(Selector::Version(v)) => format!("parameter {name} has no version {v}"),
        Some(Selector::Label(l)) => format!("parameter {name} has no version labelled {l}"),
    }
}

/// What SendCommand checks of the references in its parameters.
pub struct ReferenceCheck<'a> {
    pub store: &'a dyn ParameterStore,
    /// Who sends the command: it must be able to read what it references.
    pub caller: &'a dyn Authorizer,
    pub scope: &'a ArnScope,
}

/// Checks every reference of `parameters`; see [`validate_reference_set`].
pub async fn validate_references(
    ctx: &ReferenceCheck<'_>,
    parameters: &GivenParameters,
) -> Result<(), SsmError> {
    validate_reference_set(ctx, in_parameters(parameters)).await
}

/// Checks every reference of `refs`: well formed, the caller may read
/// the parameter (`ssm:GetParameters` on its ARN), the parameter and its
/// selector exist, and its type fits the reference: `ssm:` a String or
/// StringList, `ssm-secure:` a SecureString whose key the caller may use
/// (`kms:Decrypt`). Nothing is resolved and no value is read into memory
/// beyond the stored (sealed) form.
pub async fn validate_reference_set(
    ctx: &ReferenceCheck<'_>,
    refs: BTreeSet<(Kind, String)>,
) -> Result<(), SsmError> {
    if refs.len() > MAX_REFERENCES {
        return Err(SsmError::InvalidParameters(format!(
            "The parameters hold {} distinct {{{{ssm:…}}}} references; at most {MAX_REFERENCES} are allowed. Put related values in one StringList parameter.",
            refs.len()
        )));
    }
    for (kind, target) in refs {
        let r = Reference {
            kind,
            target,
            span: 0..0,
        };
        let (name, sel) = r.parse()?;
        let arn = ctx.scope.parameter_arn(&name);
        // Before existence: a caller that may not read it learns nothing.
        ctx.caller.authorize(READ_ACTION, &arn)?;
        let version = select(ctx.store, &name, sel.as_ref())
            .await?
            .ok_or_else(|| {
                SsmError::InvalidParameters(format!(
                    "Reference {} cannot be resolved: {}. Create it with put-parameter or fix the reference.",
                    r.display(),
                    what_is_missing(&name, sel.as_ref())
                ))
            })?;
        match (kind, version.parameter_type) {
            (Kind::Plain, ParameterType::SecureString) => {
                return Err(SsmError::InvalidParameters(format!(
                    "Parameter {name} is a SecureString: reference it with {}, which is resolved on the node and never stored.",
                    display(Kind::Secure, &r.target)
                )));
            }
            (Kind::Secure, t) if t != ParameterType::SecureString => {
                return Err(SsmError::InvalidParameters(format!(
                    "Parameter {name} is a {}, not a SecureString: reference it with {}.",
                    t.as_str(),
                    display(Kind::Plain, &r.target)
                )));
            }
            (Kind::Secure, _) => {
                let StoredValue::Sealed(sealed) = &version.value else {
                    return Err(SsmError::internal());
                };
                let key_arn = Sealer::key_arn(sealed)?;
                ctx.caller.authorize(DECRYPT_ACTION, &key_arn)?;
            }
            (Kind::Plain, _) => {}
        }
    }
    Ok(())
}

/// Why a reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The reference points at nothing usable any more (deleted, version
    /// aged out, type changed): retrying cannot help. Names no value.
    #[error("cannot resolve {reference}: {reason}")]
    Unresolvable { reference: String, reason: String },
    /// The store failed: retrying may help.
    #[error("{0}")]
    Store(SsmError),
}

/// Resolves `{{ssm:…}}` references for dispatch, reading each distinct one
/// once. `{{ssm-secure:…}}` references are left as written.
pub struct PlainResolver<'a> {
    store: &'a dyn ParameterStore,
    cache: HashMap<String, String>,
}

impl<'a> PlainResolver<'a> {
    pub fn new(store: &'a dyn ParameterStore) -> Self {
        Self {
            store,
            cache: HashMap::new(),
        }
    }

    async fn value(&mut self, r: &Reference) -> Result<String, ResolveError> {
        if let Some(v) = self.cache.get(&r.target) {
            return Ok(v.clone());
        }
        let unresolvable = |reason: String| ResolveError::Unresolvable {
            reference: r.display(),
            reason,
        };
        let (name, sel) = r.parse().map_err(|e| unresolvable(e.to_string()))?;
        let version = select(self.store, &name, sel.as_ref())
            .await
            .map_err(ResolveError::Store)?
            .ok_or_else(|| unresolvable(format!("{} now", what_is_missing(&name, sel.as_ref()))))?;
        let value = match (&version.value, version.parameter_type) {
            (StoredValue::Plain(v), ParameterType::String | ParameterType::StringList) => v.clone(),
            _ => {
                return Err(unresolvable(format!(
                    "parameter {name} is now a SecureString; reference it with {}",
                    display(Kind::Secure, &r.target)
                )));
            }
        };
        self.cache.insert(r.target.clone(), value.clone());
        Ok(value)
    }

    /// `text` with its `{{ssm:…}}` references replaced by their values.
    pub async fn resolve(&mut self, text: &str) -> Result<String, ResolveError> {
        let mut values = HashMap::new();
        for r in find(text) {
            if r.kind == Kind::Plain && !values.contains_key(&r.target) {
                let v = self.value(&r).await?;
                values.insert(r.target.clone(), v);
            }
        }
        Ok(substitute(text, |r| {
            (r.kind == Kind::Plain)
                .then(|| values.get(&r.target).cloned())
                .flatten()
        }))
    }

    /// The steps with their `{{ssm:…}}` references resolved.
    pub async fn resolve_steps(
        &mut self,
        steps: &[PluginStep],
    ) -> Result<Vec<PluginStep>, ResolveError> {
        let mut out = Vec::with_capacity(steps.len());
        for step in steps {
            let mut s = step.clone();
            for line in s.run_command.iter_mut() {
                *line = self.resolve(line).await?;
            }
            s.working_directory = self.resolve(&s.working_directory).await?;
            out.push(s);
        }
        Ok(out)
    }
}

/// `text` with its `{{ssm:…}}` references resolved from `store`.
pub async fn resolve_plain(store: &dyn ParameterStore, text: &str) -> Result<String, ResolveError> {
    PlainResolver::new(store).resolve(text).await
}

/// What a node signs to ask for the values of a command's `ssm-secure:`
/// references (`Steward.GetNodeParameters`): every field the answer depends
/// on, one per line.
pub fn node_parameters_request_message(
    instance_id: &str,
    command_id: &str,
    names: &[String],
    timestamp: i64,
) -> Vec<u8> {
    let mut s = format!("GetNodeParameters\n{instance_id}\n{command_id}\n{timestamp}");
    for n in names {
        s.push('\n');
        s.push_str(n);
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{Caller, Policy};
    use crate::documents::interpolate::brace_heavy_text;
    use crate::parameters::memory::{MemoryDataKeys, MemoryParameterStore};
    use crate::parameters::model::{Parameter, Tier};
    use crate::tags::TagSet;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    fn scope() -> ArnScope {
        ArnScope {
            region: "us-east-1".into(),
            account: "123456789012".into(),
        }
    }

    fn version(name: &str, v: u64, t: ParameterType, value: StoredValue) -> ParameterVersion {
        ParameterVersion {
            name: name.into(),
            version: v,
            parameter_type: t,
            value,
            key_id: None,
            description: None,
            allowed_pattern: None,
            tier: Tier::Standard,
            policies: Vec::new(),
            data_type: "text".into(),
            labels: BTreeSet::new(),
            last_modified_date: 0.0,
            last_modified_user: "u".into(),
        }
    }

    /// Puts versions 1..=values.len() of `name`, labelling the first `first`.
    async fn put(
        store: &MemoryParameterStore,
        name: &str,
        t: ParameterType,
        values: &[StoredValue],
    ) {
        let mut rev = None;
        for (i, value) in values.iter().enumerate() {
            let v = i as u64 + 1;
            let mut labels = BTreeMap::new();
            labels.insert("first".to_string(), 1);
            let head = Parameter {
                current: version(name, v, t, value.clone()),
                oldest_version: 1,
                labels,
                tags: TagSet::default(),
                policy_due: None,
                revision: v,
            };
            assert!(store.put_version(&head, rev, None).await.unwrap());
            rev = Some(v);
        }
    }

    fn plain(v: &str) -> StoredValue {
        StoredValue::Plain(v.into())
    }

    fn caller(policy: &str) -> Caller {
        Caller {
            access_key_id: "AKSTEXAMPLE".into(),
            user_arn: "arn:aws:iam::123456789012:user/t".into(),
            policy: Policy::parse(policy).unwrap(),
        }
    }

    const ADMIN: &str = r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn params(lines: &[&str]) -> GivenParameters {
        BTreeMap::from([(
            "commands".to_string(),
            lines.iter().map(|s| s.to_string()).collect(),
        )])
    }

    #[test]
    fn references_are_found_with_spaces_selectors_and_neighbours() {
        let t = "a {{ssm:/x}} b {{ ssm-secure:/s:3 }} {{ commands }} {{{ssm:/y:live}}";
        let found = find(t);
        assert_eq!(found.len(), 3);
        assert_eq!(
            (found[0].kind, found[0].target.as_str()),
            (Kind::Plain, "/x")
        );
        assert_eq!(&t[found[0].span.clone()], "{{ssm:/x}}");
        assert_eq!(
            (found[1].kind, found[1].target.as_str()),
            (Kind::Secure, "/s:3")
        );
        assert_eq!(found[2].target, "/y:live");
        assert_eq!(&t[found[2].span.clone()], "{{ssm:/y:live}}");
        assert!(find("{{ssm:/x").is_empty());
        assert!(find("{{ssmx:/x}}").is_empty());
    }

    #[test]
    fn targets_parse_into_name_and_selector() {
        let r = |t: &str| Reference {
            kind: Kind::Plain,
            target: t.into(),
            span: 0..0,
        };
        assert_eq!(r("/a/b").parse().unwrap(), ("/a/b".to_string(), None));
        assert_eq!(
            r("/a:3").parse().unwrap(),
            ("/a".to_string(), Some(Selector::Version(3)))
        );
        assert_eq!(
            r("/a:live").parse().unwrap(),
            ("/a".to_string(), Some(Selector::Label("live".into())))
        );
        assert_eq!(r("").parse().unwrap_err().code(), "InvalidParameters");
        assert_eq!(r("/a b").parse().unwrap_err().code(), "InvalidParameters");
    }

    #[tokio::test]
    async fn plain_references_resolve_by_version_and_label_and_secure_ones_stay() {
        let store = MemoryParameterStore::new();
        put(
            &store,
            "/x",
            ParameterType::String,
            &[plain("one"), plain("two")],
        )
        .await;
        put(&store, "/l", ParameterType::StringList, &[plain("a,b")]).await;
        let text = "echo {{ssm:/x}} {{ ssm:/x:1 }} {{ssm:/x:first}} {{ssm:/l}} {{ssm-secure:/s}}";
        assert_eq!(
            resolve_plain(&store, text).await.unwrap(),
            "echo two one one a,b {{ssm-secure:/s}}"
        );
        let err = resolve_plain(&store, "{{ssm:/gone}}").await.unwrap_err();
        assert!(matches!(err, ResolveError::Unresolvable { .. }));
        assert!(
            err.to_string().starts_with("cannot resolve {{ssm:/gone}}:"),
            "{err}"
        );
        let err = resolve_plain(&store, "{{ssm:/x:9}}").await.unwrap_err();
        assert!(err.to_string().contains("no version 9"), "{err}");
    }

    #[tokio::test]
    async fn a_plain_reference_to_what_became_a_secure_string_fails_without_its_value() {
        let store = MemoryParameterStore::new();
        put(
            &store,
            "/p",
            ParameterType::SecureString,
            &[StoredValue::Sealed("U1dQMQ==".into())],
        )
        .await;
        let err = resolve_plain(&store, "{{ssm:/p}}").await.unwrap_err();
        assert!(err.to_string().contains("SecureString"), "{err}");
    }

    #[tokio::test]
    async fn validation_checks_existence_type_selector_and_rights() {
        let store = MemoryParameterStore::new();
        let sealer = Sealer::new(
            Box::new(MemoryDataKeys::default()),
            Duration::from_secs(0),
            0,
        );
        let sc = scope();
        let sealed = sealer
            .seal("stack-key", &sc.parameter_arn("/s"), "hunter2")
            .await
            .unwrap();
        put(&store, "/x", ParameterType::String, &[plain("v")]).await;
        put(
            &store,
            "/s",
            ParameterType::SecureString,
            &[StoredValue::Sealed(sealed)],
        )
        .await;
        let admin = caller(ADMIN);
        let validate = |caller: Caller, lines: Vec<&'static str>| {
            let store = &store;
            let sc = &sc;
            async move {
                let ctx = ReferenceCheck {
                    store,
                    caller: &caller,
                    scope: sc,
                };
                validate_references(&ctx, &params(&lines)).await
            }
        };
        validate(
            admin.clone(),
            vec!["echo {{ssm:/x}} {{ssm-secure:/s}} {{ssm:/x:1}}"],
        )
        .await
        .unwrap();
        let code = |r: Result<(), SsmError>| r.unwrap_err().code();
        assert_eq!(
            code(validate(admin.clone(), vec!["{{ssm:/nope}}"]).await),
            "InvalidParameters"
        );
        assert_eq!(
            code(validate(admin.clone(), vec!["{{ssm:/x:2}}"]).await),
            "InvalidParameters"
        );
        assert_eq!(
            code(validate(admin.clone(), vec!["{{ssm:/x:live}}"]).await),
            "InvalidParameters"
        );
        assert_eq!(
            code(validate(admin.clone(), vec!["{{ssm-secure:/x}}"]).await),
            "InvalidParameters"
        );
        let e = validate(admin.clone(), vec!["{{ssm:/s}}"])
            .await
            .unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        assert!(e.to_string().contains("{{ssm-secure:/s}}"), "{e}");
        assert!(!e.to_string().contains("hunter2"));

        // Reading the parameter is not enough for a SecureString: its key too.
        let no_kms =
            caller(r#"{"Statement":[{"Effect":"Allow","Action":"ssm:*","Resource":"*"}]}"#);
        validate(no_kms.clone(), vec!["{{ssm:/x}}"]).await.unwrap();
        assert_eq!(
            code(validate(no_kms, vec!["{{ssm-secure:/s}}"]).await),
            "AccessDeniedException"
        );
        // A parameter the caller may not read is refused before its existence shows.
        let narrow = caller(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"arn:aws:ssm:*:*:parameter/x"}]}"#,
        );
        validate(narrow.clone(), vec!["{{ssm:/x}}"]).await.unwrap();
        assert_eq!(
            code(validate(narrow, vec!["{{ssm:/nope}}"]).await),
            "AccessDeniedException"
        );
    }

    #[test]
    fn the_signed_request_binds_every_field() {
        let m = |c: &str, n: &[&str], t| {
            node_parameters_request_message(
                "mi-1",
                c,
                &n.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                t,
            )
        };
        assert_ne!(m("c", &["/a"], 1), m("c", &["/b"], 1));
        assert_ne!(m("c", &["/a"], 1), m("d", &["/a"], 1));
        assert_ne!(m("c", &["/a"], 1), m("c", &["/a"], 2));
        assert_ne!(m("c", &["/a", "/b"], 1), m("c", &["/a"], 1));
    }

    /// Braces touching references, each with the answer. SSM Agent finds
    /// references as the leftmost matches of `\{\{ *ssm:[/\w.-]+ *\}\}`,
    /// so a reference never holds a brace and the braces around one stay as
    /// text: `{{{ssm:/a}}}` is `{` + the value + `}`. Steward does the same
    /// (and allows any whitespace inside, and a `:selector`).
    #[tokio::test]
    async fn braces_touching_references() {
        let store = MemoryParameterStore::new();
        put(&store, "/a", ParameterType::String, &[plain("A")]).await;
        put(&store, "/b", ParameterType::String, &[plain("B")]).await;
        // (text, references as (target, span), resolved)
        type Case = (
            &'static str,
            &'static [(&'static str, Range<usize>)],
            &'static str,
        );
        let cases: &[Case] = &[
            ("{{{ssm:/a}}}", &[("/a", 1..11)], "{A}"),
            ("x{{ssm:/a}}}", &[("/a", 1..11)], "xA}"),
            ("{{{{ssm:/a}}}}", &[("/a", 2..12)], "{{A}}"),
            (
                "{{ ssm:/a }}{{ssm:/b}}",
                &[("/a", 0..12), ("/b", 12..22)],
                "AB",
            ),
            ("{{ssm:/a}}{", &[("/a", 0..10)], "A{"),
            ("{{ssm:/a}}}}", &[("/a", 0..10)], "A}}"),
            ("{{ssm:{{ssm:/a}}", &[("/a", 6..16)], "{{ssm:A"),
            ("{{ssm:/a}{{ssm:/b}}", &[("/b", 9..19)], "{{ssm:/a}B"),
            ("{{ssm:/a} }}", &[], "{{ssm:/a} }}"),
            ("{{ssm:/a}", &[], "{{ssm:/a}"),
            ("é{{ssm:/a}}ü", &[("/a", 2..12)], "éAü"),
            ("日本{{ssm:/b}}", &[("/b", 6..16)], "日本B"),
            ("{", &[], "{"),
            ("{{", &[], "{{"),
            ("}}", &[], "}}"),
            ("{{}}", &[], "{{}}"),
            ("{{ssm}}", &[], "{{ssm}}"),
        ];
        for (text, refs, resolved) in cases {
            let found: Vec<_> = find(text).into_iter().map(|r| (r.target, r.span)).collect();
            let want: Vec<_> = refs
                .iter()
                .map(|(t, s)| (t.to_string(), s.clone()))
                .collect();
            assert_eq!(found, want, "{text:?}");
            assert_eq!(
                &resolve_plain(&store, text).await.unwrap(),
                resolved,
                "{text:?}"
            );
        }
        // An empty target is still a reference: refused when checked.
        assert_eq!(find("{{ssm:}}")[0].target, "");
    }

    /// The reference grammar, written independently of [`find`]: `{{`,
    /// spaces, a prefix, no brace up to `}}`; leftmost matches that do not
    /// overlap. (`\s` is Unicode's White_Space, as `str::trim`.)
    fn model_find(text: &str) -> Vec<(Kind, String, Range<usize>)> {
        let re = regex::Regex::new(r"\{\{\s*(ssm-secure:|ssm:)([^{}]*)\}\}").unwrap();
        re.captures_iter(text)
            .map(|c| {
                let kind = if &c[1] == SECURE_PREFIX {
                    Kind::Secure
                } else {
                    Kind::Plain
                };
                (kind, c[2].trim().to_string(), c.get(0).unwrap().range())
            })
            .collect()
    }

    /// Reference fragments, whole and cut, so that braces land inside,
    /// before and after them.
    const PIECES: &[&str] = &[
        "ssm:",
        "ssm-secure:",
        "ssm",
        "/a",
        "/b",
        "/zz",
        ":2",
        ":live",
        "{{ssm:/a}}",
        "{{ ssm-secure:/s }}",
        "{{ name }}",
        "{{ssm:",
        "{{ssm:/b",
        "{{ ssm-secure:",
        "}",
    ];

    fn name_strategy() -> impl Strategy<Value = String> {
        "(/[a-zA-Z0-9_.-]{1,8}){1,3}(:[1-9][0-9]{0,2}|:[a-z][a-z0-9_]{0,6})?"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any text of braces, prefixes and names: the references found are
        /// the grammar's, and resolving replaces exactly the plain ones
        /// (`/a` → `A`, `/b` → `B`), or fails naming one that does not resolve.
        #[test]
        fn references_follow_the_grammar_in_any_text(text in brace_heavy_text(PIECES)) {
            let model = model_find(&text);
            let found: Vec<_> = find(&text).into_iter().map(|r| (r.kind, r.target, r.span)).collect();
            prop_assert_eq!(&found, &model);

            let value = |target: &str| match target {
                "/a" => Some("A"),
                "/b" => Some("B"),
                _ => None,
            };
            let mut want = String::new();
            let mut last = 0;
            let mut unresolved = None;
            for (kind, target, span) in &model {
                if *kind == Kind::Plain {
                    match value(target) {
                        Some(v) => {
                            want.push_str(&text[last..span.start]);
                            want.push_str(v);
                            last = span.end;
                        }
                        None => {
                            unresolved.get_or_insert(target.clone());
                        }
                    }
                }
            }
            want.push_str(&text[last..]);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let got = rt.block_on(async {
                let store = MemoryParameterStore::new();
                put(&store, "/a", ParameterType::String, &[plain("A")]).await;
                put(&store, "/b", ParameterType::String, &[plain("B")]).await;
                resolve_plain(&store, &text).await
            });
            match unresolved {
                None => prop_assert_eq!(got, Ok(want)),
                Some(target) => {
                    let e = got.unwrap_err();
                    let shown = display(Kind::Plain, &target);
                    prop_assert!(
                        matches!(&e, ResolveError::Unresolvable { reference, .. } if *reference == shown),
                        "{e:?} for {shown}"
                    );
                }
            }
        }

        #[test]
        fn references_are_found_exactly(
            parts in proptest::collection::vec(
                // A lone brace may touch a reference on either side.
                ("[}]?[^{}]{0,12}[{]?", any::<bool>(), name_strategy(), "[ \t\u{a0}]{0,2}", "[ \t]{0,2}"),
                0..6,
            ),
            tail in "[}]?[^{}]{0,12}",
        ) {
            let mut text = String::new();
            let mut expected = Vec::new();
            for (before, secure, target, l, r) in &parts {
                text.push_str(before);
                let kind = if *secure { Kind::Secure } else { Kind::Plain };
                let start = text.len();
                text.push_str(&format!("{{{{{l}{}{target}{r}}}}}", kind.prefix()));
                expected.push(Reference { kind, target: target.clone(), span: start..text.len() });
            }
            text.push_str(&tail);
            prop_assert_eq!(find(&text), expected);
            // Substituting every reference by its own display form and back is exact.
            let marked = substitute(&text, |r| Some(format!("<{}>", r.target)));
            prop_assert!(!marked.contains("{{"));
        }
    }
}
