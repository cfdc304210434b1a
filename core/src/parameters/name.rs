//! Parameter names and hierarchies: SSM's rules for names, paths and ARNs.

use crate::arn::ArnScope;
use crate::error::SsmError;

/// SSM: "The maximum length for a parameter name, including the full length
/// of the parameter ARN, is 1011 characters." We count the ARN this stack
/// gives the name (`arn:aws:ssm:<region>:<account>:parameter/<name without
/// its leading slash>`), so the longest name depends on the region's length.
pub const MAX_ARN_LENGTH: usize = 1011;
/// A hierarchy can have at most 15 levels: `/l1/…/l15`.
pub const MAX_LEVELS: usize = 15;

/// The other way of writing the same top-level name: `solo` and `/solo` are
/// one parameter with one ARN, as in SSM. `None` for a name in a hierarchy.
pub fn other_spelling(name: &str) -> Option<String> {
    match name.strip_prefix('/') {
        Some(rest) if !rest.is_empty() && !rest.contains('/') => Some(rest.to_string()),
        Some(_) => None,
        None if !name.is_empty() && !name.contains('/') => Some(format!("/{name}")),
        None => None,
    }
}

/// The parent path of a name: `/a/b/c` → `/a/b`, `/a` and `a` → `/`.
pub fn parent_of(name: &str) -> &str {
    match name.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &name[..i],
    }
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// The levels of a name: `a` and `/a` are one, `/a/b/c` three.
pub fn levels(name: &str) -> usize {
    name.strip_prefix('/').unwrap_or(name).split('/').count()
}

fn invalid(name: &str, why: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "Parameter name {name} is not valid: {why}. A name is letters, numbers and . - _ in sub-paths separated by /, e.g. /app/prod/db-url."
    ))
}

/// SSM's rules for the name of a parameter being written. Checked in this
/// order: length 1, characters, fully qualified, empty sub-paths, reserved
/// prefixes, levels, ARN length.
pub fn validate(name: &str, scope: &ArnScope) -> Result<(), SsmError> {
    if name.is_empty() {
        return Err(SsmError::ValidationException(
            "1 validation error detected: Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1. Give the parameter a name.".into(),
        ));
    }
    if let Some(bad) = name.chars().find(|c| !allowed_char(*c)) {
        let shown = if bad.is_whitespace() {
            "a space".to_string()
        } else {
            format!("'{bad}'")
        };
        return Err(invalid(name, &format!("it contains {shown}")));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(SsmError::ValidationException(format!(
            "Parameter name must be a fully qualified name: {name} contains / but does not begin with it. Write /{name}."
        )));
    }
    let body = name.strip_prefix('/').unwrap_or(name);
    if body.split('/').any(str::is_empty) {
        return Err(invalid(
            name,
            "it has an empty sub-path (// or a trailing /)",
        ));
    }
    // SSM reserves names whose first segment begins with aws or ssm, case
    // insensitive; a path under /aws… is refused as AccessDenied, as SSM does
    // (those are AWS's public parameters).
    let first = body
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let is_path = name.matches('/').count() > 1;
    if first.starts_with("aws") || first.starts_with("ssm") {
        if is_path && first.starts_with("aws") {
            return Err(SsmError::AccessDeniedException(format!(
                "No access to reserved parameter name: {name}."
            )));
        }
        return Err(SsmError::ValidationException(if is_path {
            "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_".to_string()
        } else {
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)."
                .to_string()
        }));
    }
    let n = levels(name);
    if n > MAX_LEVELS {
        return Err(SsmError::HierarchyLevelLimitExceededException(format!(
            "A hierarchy can have a maximum of {MAX_LEVELS} levels; {name} has {n}. Shorten the path."
        )));
    }
    let arn_len = scope.parameter_arn(name).chars().count();
    if arn_len > MAX_ARN_LENGTH {
        return Err(SsmError::ValidationException(format!(
            "Parameter name is too long: its ARN would have {arn_len} characters and SSM allows {MAX_ARN_LENGTH} including the ARN prefix {}. Shorten the name.",
            scope.parameter_arn("")
        )));
    }
    Ok(())
}
