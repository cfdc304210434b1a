//! Session documents: what a StartSession's DocumentName and Parameters
//! make the agent run, and the preferences of SSM-SessionManagerRunShell.
//!
//! SSM's session documents are shipped as SSM names them
//! (`AWS-StartInteractiveCommand`, `AWS-StartNonInteractiveCommand`,
//! `AWS-StartPortForwardingSession`,
//! `AWS-StartPortForwardingSessionToRemoteHost`); no DocumentName means the
//! shell, with the preferences of the account's `SSM-SessionManagerRunShell`
//! (SSM's defaults when there is none).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::channel::SessionKind;
use crate::error::SsmError;

/// The shell's document: its preferences are the account's.
pub const RUN_SHELL: &str = "SSM-SessionManagerRunShell";
pub const INTERACTIVE_COMMAND: &str = "AWS-StartInteractiveCommand";
pub const NON_INTERACTIVE_COMMAND: &str = "AWS-StartNonInteractiveCommand";
pub const PORT_FORWARDING: &str = "AWS-StartPortForwardingSession";
pub const PORT_FORWARDING_TO_REMOTE_HOST: &str = "AWS-StartPortForwardingSessionToRemoteHost";

/// The session documents Amazon owns (SSM-SessionManagerRunShell is the
/// account's).
pub const AMAZON_SESSION_DOCUMENTS: [&str; 4] = [
    INTERACTIVE_COMMAND,
    NON_INTERACTIVE_COMMAND,
    PORT_FORWARDING,
    PORT_FORWARDING_TO_REMOTE_HOST,
];

/// SSM's default idle timeout (minutes).
pub const DEFAULT_IDLE_MINUTES: u64 = 20;
/// idleSessionTimeout's range (minutes), as SSM's preferences allow.
pub const IDLE_MINUTES: std::ops::RangeInclusive<u64> = 1..=60;
/// maxSessionDuration's range (minutes).
pub const MAX_DURATION_MINUTES: std::ops::RangeInclusive<u64> = 1..=1440;
/// With no maxSessionDuration a session still ends after a day: its queues
/// and credentials must not outlive it forever.
pub const CEILING_MINUTES: u64 = 1440;

/// The `inputs` of SSM-SessionManagerRunShell (the Session Manager
/// preferences), as SSM's console writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    #[serde(default)]
    pub s3_bucket_name: String,
    #[serde(default)]
    pub s3_key_prefix: String,
    /// Minutes, as a string ("20").
    #[serde(default)]
    pub idle_session_timeout: String,
    /// Minutes, as a string; empty: none.
    #[serde(default)]
    pub max_session_duration: String,
    #[serde(default)]
    pub run_as_enabled: bool,
    #[serde(default)]
    pub run_as_default_user: String,
    #[serde(default)]
    pub shell_profile: ShellProfile,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ShellProfile {
    #[serde(default)]
    pub linux: String,
    #[serde(default)]
    pub windows: String,
}

impl Preferences {
    /// Reads SSM-SessionManagerRunShell's content (JSON or YAML already
    /// turned into a value): its `inputs`.
    pub fn from_document(content: &serde_json::Value) -> Result<Self, SsmError> {
        let inputs = content
            .get("inputs")
            .cloned()
            .unwrap_or(serde_json::Value::Object(Default::default()));
        let p: Preferences = serde_json::from_value(inputs).map_err(|e| {
            SsmError::InvalidDocument(format!(
                "{RUN_SHELL}'s inputs are not Session Manager preferences: {e}"
            ))
        })?;
        p.idle_minutes()?;
        p.max_duration_minutes()?;
        Ok(p)
    }

    pub fn idle_minutes(&self) -> Result<u64, SsmError> {
        minutes(
            "idleSessionTimeout",
            &self.idle_session_timeout,
            IDLE_MINUTES,
        )
        .map(|m| m.unwrap_or(DEFAULT_IDLE_MINUTES))
    }

    pub fn max_duration_minutes(&self) -> Result<Option<u64>, SsmError> {
        minutes(
            "maxSessionDuration",
            &self.max_session_duration,
            MAX_DURATION_MINUTES,
        )
    }
}

fn minutes(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, SsmError> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    match value.trim().parse::<u64>() {
        Ok(m) if range.contains(&m) => Ok(Some(m)),
        _ => Err(SsmError::InvalidDocument(format!(
            "{RUN_SHELL}: {name} must be a whole number of minutes from {} to {}, not \"{value}\".",
            range.start(),
            range.end()
        ))),
    }
}

/// What the agent is to run, and for how long at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPlan {
    pub document_name: String,
    pub kind: SessionKind,
    pub run_as: Option<String>,
    pub shell_profile: String,
    pub idle_timeout_seconds: u64,
    /// `None`: no maxSessionDuration (the ceiling still applies).
    pub max_duration_minutes: Option<u64>,
    /// Transcript bucket and key prefix, for the shell only.
    pub transcript: Option<(String, String)>,
}

impl SessionPlan {
    pub fn max_duration_seconds(&self) -> u64 {
        self.max_duration_minutes.unwrap_or(CEILING_MINUTES) * 60
    }
}

/// A document's name given by name or ARN.
pub fn short_name(name: &str) -> &str {
    name.strip_prefix("arn:")
        .and_then(|_| name.rsplit_once(":document/").map(|(_, n)| n))
        .unwrap_or(name)
}

/// The plan for `document_name` (`None`: the shell) with `parameters`,
/// under `preferences`.
pub fn plan(
    document_name: Option<&str>,
    parameters: &BTreeMap<String, Vec<String>>,
    preferences: &Preferences,
) -> Result<SessionPlan, SsmError> {
    let short = document_name.map(short_name).unwrap_or(RUN_SHELL);
    let (kind, allowed): (SessionKind, &[&str]) = match short {
        RUN_SHELL => (
            SessionKind::Shell {
                command: None,
                interactive: true,
            },
            &[],
        ),
        INTERACTIVE_COMMAND | NON_INTERACTIVE_COMMAND => {
            let command =
                single(parameters, "command")?.ok_or_else(|| missing(short, "command"))?;
            (
                SessionKind::Shell {
                    command: Some(command),
                    interactive: short == INTERACTIVE_COMMAND,
                },
                &["command"],
            )
        }
        PORT_FORWARDING => (
            SessionKind::PortForward {
                host: "localhost".into(),
                port: port(parameters, "portNumber")?.unwrap_or(80),
            },
            &["portNumber", "localPortNumber"],
        ),
        PORT_FORWARDING_TO_REMOTE_HOST => {
            let host = single(parameters, "host")?.ok_or_else(|| missing(short, "host"))?;
            if host.is_empty() || host.len() > 253 || host.chars().any(char::is_whitespace) {
                return Err(SsmError::ValidationException(format!(
                    "{short}: host must be a host name or address, not \"{host}\"."
                )));
            }
            (
                SessionKind::PortForward {
                    host,
                    port: port(parameters, "portNumber")?.unwrap_or(80),
                },
                &["host", "portNumber", "localPortNumber"],
            )
        }
        other => {
            return Err(SsmError::InvalidDocument(format!(
                "Document {other} is not a session document Steward serves; use {RUN_SHELL} (the default), {}.",
                AMAZON_SESSION_DOCUMENTS.join(", ")
            )));
        }
    };
    if let Some(unknown) = parameters.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(SsmError::ValidationException(format!(
            "Parameter {unknown} is not a parameter of {short}; it takes {}.",
            if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            }
        )));
    }
    // localPortNumber is the client's; it is only checked here.
    port(parameters, "localPortNumber")?;
    let is_shell = matches!(kind, SessionKind::Shell { .. });
    let run_as = (preferences.run_as_enabled && !preferences.run_as_default_user.is_empty())
        .then(|| preferences.run_as_default_user.clone());
    Ok(SessionPlan {
        document_name: short.to_string(),
        kind,
        run_as,
        shell_profile: if is_shell {
            preferences.shell_profile.linux.clone()
        } else {
            String::new()
        },
        idle_timeout_seconds: preferences.idle_minutes()? * 60,
        max_duration_minutes: preferences.max_duration_minutes()?,
        transcript: (is_shell && !preferences.s3_bucket_name.is_empty()).then(|| {
            (
                preferences.s3_bucket_name.clone(),
                preferences.s3_key_prefix.clone(),
            )
        }),
    })
}

fn missing(document: &str, parameter: &str) -> SsmError {
    SsmError::ValidationException(format!(
        "{document} needs the parameter {parameter}; give Parameters {{\"{parameter}\": [\"…\"]}}."
    ))
}

fn single(
    parameters: &BTreeMap<String, Vec<String>>,
    name: &str,
) -> Result<Option<String>, SsmError> {
    match parameters.get(name).map(Vec::as_slice) {
        None => Ok(None),
        Some([one]) => Ok(Some(one.clone())),
        Some(_) => Err(SsmError::ValidationException(format!(
            "Parameter {name} takes exactly one value."
        ))),
    }
}

fn port(parameters: &BTreeMap<String, Vec<String>>, name: &str) -> Result<Option<u16>, SsmError> {
    match single(parameters, name)? {
        None => Ok(None),
        Some(v) => match v.trim().parse::<u16>() {
            Ok(p) => Ok(Some(p)),
            Err(_) => Err(SsmError::ValidationException(format!(
                "Parameter {name} must be a port number from 0 to 65535, not \"{v}\"."
            ))),
        },
    }
}

/// SSM's `sessionType`s.
pub const SESSION_TYPES: [&str; 4] = [
    "Standard_Stream",
    "InteractiveCommands",
    "NonInteractiveCommands",
    "Port",
];

/// A Session document as CreateDocument stores it (schemaVersion 1.0).
#[derive(Debug, Clone)]
pub struct SessionDocument {
    pub description: String,
    pub session_type: String,
    pub parameters: Vec<crate::documents::declared_parameters::ParameterDefinition>,
    /// The preferences, for a `Standard_Stream` document.
    pub inputs: Preferences,
}

impl SessionDocument {
    pub fn parse(
        content: &str,
        format: crate::documents::format::DocumentFormat,
    ) -> Result<Self, SsmError> {
        let value: serde_json::Value = format.read(content)?;
        let invalid = |what: String| SsmError::InvalidDocumentContent(what);
        match value.get("schemaVersion").and_then(|v| v.as_str()) {
            Some("1.0") => {}
            other => {
                return Err(invalid(format!(
                    "A Session document's schemaVersion must be \"1.0\", not {}.",
                    other.map_or("missing".to_string(), |s| format!("\"{s}\""))
                )));
            }
        }
        let session_type = value
            .get("sessionType")
            .and_then(|v| v.as_str())
            .filter(|t| SESSION_TYPES.contains(t))
            .ok_or_else(|| {
                invalid(format!(
                    "A Session document needs a sessionType: one of {}.",
                    SESSION_TYPES.join(", ")
                ))
            })?
            .to_string();
        let mut parameters = Vec::new();
        if let Some(decls) = value.get("parameters").and_then(|v| v.as_object()) {
            for (name, decl) in decls {
                parameters.push(
                    crate::documents::declared_parameters::ParameterDefinition::parse(name, decl)?,
                );
            }
        }
        let inputs = if session_type == "Standard_Stream" {
            Preferences::from_document(&value).map_err(|e| invalid(e.to_string()))?
        } else {
            Preferences::default()
        };
        Ok(Self {
            description: value
                .get("description")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            session_type,
            parameters,
            inputs,
        })
    }
}
