//! Documents every Steward account has, owned by "Amazon" as SSM's platform
//! documents are, so `Owner=Amazon` lists them. Only documents whose steps
//! Steward really runs are shipped: `AWS-RunShellScript` with SSM's own
//! content (byte for byte, so its Hash is SSM's), and Steward's own, named
//! `Steward-*`, whose descriptions say they are Steward's: CheckDiskSpace,
//! GatherNodeFacts, TailFile and ManageService. Every parameter a Steward
//! document puts into a script is bounded by allowedValues or an
//! allowedPattern that admits no shell quoting characters, since values are
//! placed in the script as text.

use super::Document;
use super::document_type::{Content, DocumentType};
use super::format::{DocumentFormat, content_hash};
use crate::error::SsmError;

/// The owner SSM shows for its platform documents.
pub const OWNER: &str = "Amazon";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinDocument {
    pub name: &'static str,
    pub format: DocumentFormat,
    pub content: &'static str,
    pub schema_version: &'static str,
    pub document_type: DocumentType,
}

impl BuiltinDocument {
    pub fn owner(&self) -> &'static str {
        OWNER
    }

    /// Built-in documents have one version, the default and the latest.
    pub fn version(&self) -> &'static str {
        "1"
    }

    pub fn hash(&self) -> String {
        content_hash(self.content)
    }

    /// The content, read as its type says.
    pub fn content(&self) -> Result<Content, SsmError> {
        Content::parse(self.document_type, self.content, self.format)
    }

    pub fn document(&self) -> Result<Document, SsmError> {
        let d = Document::parse(self.content, self.format)?;
        debug_assert_eq!(d.schema_version.as_str(), self.schema_version);
        Ok(d)
    }
}

/// A built-in document whose content is `builtin/<name>.<ext>`.
macro_rules! builtin {
    ($name:literal, $format:ident, $ext:literal, $schema:literal) => {
        BuiltinDocument {
            name: $name,
            format: DocumentFormat::$format,
            content: include_str!(concat!("builtin/", $name, ".", $ext)),
            schema_version: $schema,
            document_type: DocumentType::Command,
        }
    };
}

pub const AWS_RUN_SHELL_SCRIPT: BuiltinDocument =
    builtin!("AWS-RunShellScript", Json, "json", "1.2");
pub const STEWARD_CHECK_DISK_SPACE: BuiltinDocument =
    builtin!("Steward-CheckDiskSpace", Yaml, "yaml", "2.2");
pub const STEWARD_GATHER_NODE_FACTS: BuiltinDocument =
    builtin!("Steward-GatherNodeFacts", Yaml, "yaml", "2.2");
pub const STEWARD_TAIL_FILE: BuiltinDocument = builtin!("Steward-TailFile", Yaml, "yaml", "2.2");
pub const STEWARD_MANAGE_SERVICE: BuiltinDocument =
    builtin!("Steward-ManageService", Yaml, "yaml", "2.2");

pub const ALL: [BuiltinDocument; 5] = [
    AWS_RUN_SHELL_SCRIPT,
    STEWARD_CHECK_DISK_SPACE,
    STEWARD_GATHER_NODE_FACTS,
    STEWARD_TAIL_FILE,
    STEWARD_MANAGE_SERVICE,
];

/// The built-in document `name` names, by name or by SSM's ARN form for
/// Amazon's documents (`arn:aws:ssm:<region>::document/AWS-RunShellScript`).
pub fn find(name: &str) -> Option<&'static BuiltinDocument> {
    let short = match name.strip_prefix("arn:") {
        Some(_) => name.rsplit_once(":document/").map(|(_, n)| n)?,
        None => name,
    };
    ALL.iter().find(|d| d.name == short)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::documents::{GivenParameters, ParamValue, StepOutcome};

    fn given(pairs: &[(&str, &[&str])]) -> GivenParameters {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn every_builtin_parses_with_its_schema() {
        for b in ALL {
            let d = b.document().unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert_eq!(d.schema_version.as_str(), b.schema_version, "{}", b.name);
            assert_eq!(b.owner(), "Amazon");
            assert_eq!(b.hash().len(), 64);
        }
    }

    #[test]
    fn found_by_name_and_arn() {
        assert_eq!(find("AWS-RunShellScript"), Some(&AWS_RUN_SHELL_SCRIPT));
        assert_eq!(
            find("arn:aws:ssm:us-east-1::document/AWS-RunShellScript"),
            Some(&AWS_RUN_SHELL_SCRIPT)
        );
        assert_eq!(find("AWS-ConfigureAWSPackage"), None);
        assert_eq!(find("arn:aws:ssm:us-east-1::nope"), None);
    }

    #[test]
    fn run_shell_script_is_ssms() {
        let d = AWS_RUN_SHELL_SCRIPT.document().unwrap();
        assert_eq!(
            d.description,
            "Run a shell script or specify the commands to run."
        );
        let names: Vec<_> = d.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["commands", "workingDirectory", "executionTimeout"]);
        assert_eq!(d.platform_types(), ["Linux", "MacOS"]);
        assert!(AWS_RUN_SHELL_SCRIPT.content.ends_with("}\n"));

        let p = d
            .validate_parameters(&given(&[("commands", &["uname -a", "id"])]))
            .unwrap();
        let steps = d.steps_for(&p, "Linux").unwrap();
        assert_eq!(steps.len(), 1);
        let step = steps[0].plugin_step().unwrap();
        assert_eq!(step.name, "aws:runShellScript");
        assert_eq!(step.action, "aws:runShellScript");
        assert_eq!(step.run_command, ["uname -a", "id"]);
        assert_eq!(
            (step.working_directory.as_str(), step.timeout_seconds),
            ("", 3600)
        );

        // SSM's pattern bounds executionTimeout to 1..=172800, as Steward did.
        for bad in ["0", "05", "172801", "999999", "x"] {
            let e = d
                .validate_parameters(&given(&[
                    ("commands", &["x"]),
                    ("executionTimeout", &[bad]),
                ]))
                .unwrap_err();
            assert_eq!(e.code(), "InvalidParameters", "{bad}");
        }
        for good in ["1", "99999", "100000", "172800"] {
            let p = d
                .validate_parameters(&given(&[
                    ("commands", &["x"]),
                    ("executionTimeout", &[good]),
                ]))
                .unwrap();
            let s = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
            assert_eq!(s.timeout_seconds.to_string(), good);
        }
        let long = "d".repeat(4097);
        let e = d
            .validate_parameters(&given(&[
                ("commands", &["x"]),
                ("workingDirectory", &[&long]),
            ]))
            .unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        assert_eq!(
            e.to_string(),
            r#"Parameter "workingDirectory" (String): a value of 4097 characters is longer than maxChars 4096."#
        );
        // Schema 1.2 fails, not skips, a plugin the platform cannot run.
        let p = d
            .validate_parameters(&given(&[("commands", &["x"])]))
            .unwrap();
        assert!(matches!(
            &d.steps_for(&p, "Windows").unwrap()[0].outcome,
            StepOutcome::Failed { output } if output == "Plugin with name aws:runShellScript is not supported in current platform. Step name: aws:runShellScript"
        ));
    }

    /// AWS-RunShellScript's steps on Linux for `pairs`, or the refusal.
    fn run_shell_script(
        pairs: &[(&str, &[&str])],
    ) -> Result<Vec<crate::channel::PluginStep>, crate::SsmError> {
        let given: GivenParameters = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        let d = AWS_RUN_SHELL_SCRIPT.document().unwrap();
        let p = d.validate_parameters(&given)?;
        Ok(d.steps_for(&p, "Linux")?
            .iter()
            .filter_map(|s| s.plugin_step())
            .collect())
    }

    #[test]
    fn run_shell_script_defaults() {
        let steps = run_shell_script(&[("commands", &["uname -a"])]).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].run_command, vec!["uname -a"]);
        assert_eq!(steps[0].timeout_seconds, 3600);
        assert_eq!(steps[0].working_directory, "");
    }

    #[test]
    fn run_shell_script_parameters_are_checked() {
        let code = |pairs: &[(&str, &[&str])]| run_shell_script(pairs).unwrap_err().code();
        assert_eq!(code(&[]), "InvalidParameters");
        assert_eq!(
            code(&[("commands", &["x"]), ("color", &["red"])]),
            "InvalidParameters"
        );
        assert_eq!(
            code(&[("commands", &["x"]), ("executionTimeout", &["0"])]),
            "InvalidParameters"
        );
        assert_eq!(
            code(&[("commands", &["x"]), ("executionTimeout", &["172801"])]),
            "InvalidParameters"
        );
        assert_eq!(
            code(&[("commands", &["x"]), ("workingDirectory", &["/a", "/b"])]),
            "InvalidParameters"
        );
        let steps = run_shell_script(&[
            ("commands", &["x"]),
            ("executionTimeout", &["5"]),
            ("workingDirectory", &["/tmp"]),
        ])
        .unwrap();
        assert_eq!(steps[0].timeout_seconds, 5);
        assert_eq!(steps[0].working_directory, "/tmp");
    }

    #[test]
    fn check_disk_space_runs_on_linux_only() {
        let d = STEWARD_CHECK_DISK_SPACE.document().unwrap();
        assert!(
            d.description
                .starts_with("Steward built-in document (not an AWS document)")
        );
        let p = d
            .validate_parameters(&given(&[("path", &["/var/log"])]))
            .unwrap();
        assert_eq!(
            p.get("thresholdPercent"),
            Some(&ParamValue::String("90".into()))
        );
        let steps = d.steps_for(&p, "Linux").unwrap();
        let s = steps[0].plugin_step().unwrap();
        assert_eq!(s.name, "checkDiskSpace");
        assert_eq!(s.timeout_seconds, 60);
        assert_eq!(s.run_command[0], "df -P -- \"/var/log\"");
        assert!(
            s.run_command[2].contains("-gt 90 ]"),
            "{}",
            s.run_command[2]
        );
        assert!(matches!(
            &d.steps_for(&p, "MacOS").unwrap()[0].outcome,
            StepOutcome::Skipped { output } if output == "Step execution skipped due to unsatisfied preconditions: '\"StringEquals\": [platformType, Linux]'. Step name: checkDiskSpace"
        ));
        for bad in [
            ("path", "relative"),
            ("path", "/a\"b"),
            ("thresholdPercent", "101"),
            ("thresholdPercent", "0"),
        ] {
            let e = d
                .validate_parameters(&given(&[(bad.0, &[bad.1])]))
                .unwrap_err();
            assert_eq!(e.code(), "InvalidParameters", "{bad:?}");
        }
    }

    /// Values that would break out of a double-quoted shell word, as a
    /// name and as an absolute path.
    const SHELL_QUOTING: [&str; 10] = [
        "a\"b", "a$b", "a`b", "a\\b", "a b", "/a\"b", "/a$b", "/a`b", "/a\\b", "/a b",
    ];

    #[test]
    fn steward_documents_say_they_are_stewards() {
        for b in ALL.iter().filter(|b| b.name.starts_with("Steward-")) {
            let d = b.document().unwrap();
            assert!(
                d.description
                    .starts_with("Steward built-in document (not an AWS document)"),
                "{}",
                b.name
            );
            // Every declared parameter is bounded (see the module comment).
            for p in &d.parameters {
                for bad in SHELL_QUOTING {
                    let e = d
                        .validate_parameters(&given(&[(p.name.as_str(), &[bad])]))
                        .unwrap_err();
                    assert_eq!(e.code(), "InvalidParameters", "{} {} {bad}", b.name, p.name);
                }
            }
        }
    }

    #[test]
    fn gather_node_facts_runs_three_steps_anywhere() {
        let d = STEWARD_GATHER_NODE_FACTS.document().unwrap();
        assert!(d.parameters.is_empty());
        let p = d.validate_parameters(&given(&[])).unwrap();
        for platform in ["Linux", "MacOS"] {
            let names: Vec<_> = d
                .steps_for(&p, platform)
                .unwrap()
                .iter()
                .map(|s| s.plugin_step().unwrap().name)
                .collect();
            assert_eq!(names, ["system", "network", "storage"], "{platform}");
        }
    }

    #[test]
    fn tail_file_needs_a_path_and_bounds_lines() {
        let d = STEWARD_TAIL_FILE.document().unwrap();
        let e = d.validate_parameters(&given(&[])).unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        let p = d
            .validate_parameters(&given(&[("path", &["/var/log/syslog"])]))
            .unwrap();
        let s = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
        assert_eq!(s.run_command[4], "tail -n 100 -- \"/var/log/syslog\"");
        for (k, v) in [("lines", "0"), ("lines", "10001"), ("path", "var/log")] {
            let mut g = given(&[("path", &["/x"])]);
            g.insert(k.into(), vec![v.into()]);
            assert_eq!(
                d.validate_parameters(&g).unwrap_err().code(),
                "InvalidParameters",
                "{k}={v}"
            );
        }
        let p = d
            .validate_parameters(&given(&[("path", &["/x"]), ("lines", &["10000"])]))
            .unwrap();
        let s = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
        assert_eq!(s.run_command[4], "tail -n 10000 -- \"/x\"");
    }

    #[test]
    fn manage_service_takes_ssm_style_values() {
        let d = STEWARD_MANAGE_SERVICE.document().unwrap();
        let p = d
            .validate_parameters(&given(&[("serviceName", &["nginx.service"])]))
            .unwrap();
        assert_eq!(p.get("action"), Some(&ParamValue::String("status".into())));
        let s = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
        assert_eq!(s.timeout_seconds, 300);
        assert!(
            s.run_command
                .contains(&"  systemctl --no-pager status \"nginx.service\"".to_string())
        );
        let e = d
            .validate_parameters(&given(&[("serviceName", &["x"]), ("action", &["mask"])]))
            .unwrap_err();
        assert!(e.to_string().contains("not an allowed value"), "{e}");
        let e = d
            .validate_parameters(&given(&[("serviceName", &["-x"])]))
            .unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
        // Linux only: skipped on macOS as its precondition says.
        assert!(matches!(
            &d.steps_for(&p, "MacOS").unwrap()[0].outcome,
            StepOutcome::Skipped { .. }
        ));
    }
}
