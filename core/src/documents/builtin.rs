//! Documents every Steward account has, owned by "Amazon" as SSM's platform
//! documents are, so `Owner=Amazon` lists them. Only documents whose steps
//! Steward really runs are shipped: `AWS-RunShellScript` with SSM's own
//! content (byte for byte, so its Hash is SSM's), `AWS-RunPatchBaseline`
//! with SSM's name and parameters but Steward's content (one
//! `aws:runPatchBaseline` step the agent runs natively, where SSM's runs a
//! Python script), `AWS-GatherSoftwareInventory` likewise (one
//! `aws:softwareInventory` step the agent gathers natively), and
//! Steward's own, named
//! `Steward-*`, whose descriptions say they are Steward's: the Command
//! documents CheckDiskSpace, GatherNodeFacts, TailFile and ManageService,
//! and the Automation runbooks RestartServiceAndVerify and
//! RunCommandAfterApproval. Every parameter a Steward Command document puts
//! into a script is bounded by allowedValues or an allowedPattern that
//! admits no shell quoting characters, since values are placed in the script
//! as text. A runbook's command lists are commands, given whole to
//! AWS-RunShellScript, which its starter must be allowed to send; its other
//! parameters that reach a step are bounded the same way.

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

    /// The content as a Command document (a runbook is refused: read it
    /// with [`Self::content`]).
    pub fn document(&self) -> Result<Document, SsmError> {
        let d = Document::parse(self.content, self.format)?;
        debug_assert_eq!(d.schema_version.as_str(), self.schema_version);
        Ok(d)
    }
}

/// A built-in document whose content is `builtin/<name>.<ext>`: a Command
/// document, or with `Automation` a runbook (schema 0.3, YAML).
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
    (Automation $name:literal) => {
        BuiltinDocument {
            name: $name,
            format: DocumentFormat::Yaml,
            content: include_str!(concat!("builtin/", $name, ".yaml")),
            schema_version: crate::automation::runbook::SCHEMA_VERSION,
            document_type: DocumentType::Automation,
        }
    };
}

pub const AWS_RUN_SHELL_SCRIPT: BuiltinDocument =
    builtin!("AWS-RunShellScript", Json, "json", "1.2");
pub const AWS_RUN_PATCH_BASELINE: BuiltinDocument =
    builtin!("AWS-RunPatchBaseline", Yaml, "yaml", "2.2");
pub const AWS_GATHER_SOFTWARE_INVENTORY: BuiltinDocument =
    builtin!("AWS-GatherSoftwareInventory", Yaml, "yaml", "2.2");
pub const STEWARD_CHECK_DISK_SPACE: BuiltinDocument =
    builtin!("Steward-CheckDiskSpace", Yaml, "yaml", "2.2");
pub const STEWARD_GATHER_NODE_FACTS: BuiltinDocument =
    builtin!("Steward-GatherNodeFacts", Yaml, "yaml", "2.2");
pub const STEWARD_TAIL_FILE: BuiltinDocument = builtin!("Steward-TailFile", Yaml, "yaml", "2.2");
pub const STEWARD_MANAGE_SERVICE: BuiltinDocument =
    builtin!("Steward-ManageService", Yaml, "yaml", "2.2");

pub const STEWARD_RESTART_SERVICE_AND_VERIFY: BuiltinDocument =
    builtin!(Automation "Steward-RestartServiceAndVerify");
pub const STEWARD_RUN_COMMAND_AFTER_APPROVAL: BuiltinDocument =
    builtin!(Automation "Steward-RunCommandAfterApproval");

pub const ALL: [BuiltinDocument; 9] = [
    AWS_RUN_SHELL_SCRIPT,
    AWS_RUN_PATCH_BASELINE,
    AWS_GATHER_SOFTWARE_INVENTORY,
    STEWARD_CHECK_DISK_SPACE,
    STEWARD_GATHER_NODE_FACTS,
    STEWARD_TAIL_FILE,
    STEWARD_MANAGE_SERVICE,
    STEWARD_RESTART_SERVICE_AND_VERIFY,
    STEWARD_RUN_COMMAND_AFTER_APPROVAL,
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
            let c = b.content().unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert_eq!(c.document_type(), b.document_type, "{}", b.name);
            assert_eq!(c.schema_version(), b.schema_version, "{}", b.name);
            assert_eq!(b.owner(), "Amazon");
            assert_eq!(b.hash().len(), 64);
        }
        let runbooks: Vec<_> = ALL
            .iter()
            .filter(|b| b.document_type == DocumentType::Automation)
            .map(|b| b.name)
            .collect();
        assert_eq!(
            runbooks,
            [
                "Steward-RestartServiceAndVerify",
                "Steward-RunCommandAfterApproval"
            ]
        );
        // A runbook is not a Command document: SendCommand cannot run it.
        assert_eq!(
            STEWARD_RESTART_SERVICE_AND_VERIFY
                .document()
                .unwrap_err()
                .code(),
            "InvalidDocumentContent"
        );
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
            let says = match b.document_type {
                DocumentType::Command => "Steward built-in document (not an AWS document)",
                DocumentType::Automation => "Steward built-in runbook (not an AWS document)",
                DocumentType::Session => "Steward built-in session document",
            };
            let content = b.content().unwrap();
            assert!(content.description().starts_with(says), "{}", b.name);
            if b.document_type == DocumentType::Automation {
                // Commands are given whole to AWS-RunShellScript and the
                // message is only shown; every other parameter is bounded.
                for p in content.parameters() {
                    if ["RestartCommands", "CheckCommands", "Commands", "Message"]
                        .contains(&p.name.as_str())
                    {
                        continue;
                    }
                    for bad in SHELL_QUOTING {
                        let e = p.accept(&[bad.to_string()]).unwrap_err();
                        assert_eq!(e.code(), "InvalidParameters", "{} {} {bad}", b.name, p.name);
                    }
                }
                continue;
            }
            let d = b.document().unwrap();
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
    fn run_patch_baseline_takes_ssms_parameters_and_runs_one_patch_step_on_linux() {
        use crate::patching::step::{PatchOperation, RebootOption};
        let d = AWS_RUN_PATCH_BASELINE.document().unwrap();
        let names: Vec<_> = d.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Operation",
                "SnapshotId",
                "InstallOverrideList",
                "BaselineOverride",
                "RebootOption"
            ]
        );
        let p = d
            .validate_parameters(&given(&[
                ("Operation", &["Install"]),
                ("RebootOption", &["NoReboot"]),
            ]))
            .unwrap();
        let step = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
        assert_eq!(step.action, "aws:runPatchBaseline");
        assert_eq!(step.timeout_seconds, 7200);
        let patch = step.patch.unwrap();
        assert_eq!(patch.operation, PatchOperation::Install);
        assert_eq!(patch.reboot_option, RebootOption::NoReboot);
        assert_eq!(patch.snapshot_id, "");
        // Defaults: RebootIfNeeded; Operation has none.
        let p = d
            .validate_parameters(&given(&[("Operation", &["Scan"])]))
            .unwrap();
        let patch = d.steps_for(&p, "Linux").unwrap()[0]
            .plugin_step()
            .unwrap()
            .patch
            .unwrap();
        assert_eq!(patch.reboot_option, RebootOption::RebootIfNeeded);
        for (name, bad) in [
            ("Operation", "Patch"),
            ("RebootOption", "Always"),
            ("SnapshotId", "snap-1"),
            ("InstallOverrideList", "s3://bucket/list.yaml"),
            ("BaselineOverride", "s3://bucket/baseline.json"),
        ] {
            let e = d
                .validate_parameters(&given(&[("Operation", &["Scan"]), (name, &[bad])]))
                .unwrap_err();
            assert_eq!(e.code(), "InvalidParameters", "{name}={bad}");
        }
        assert!(matches!(
            &d.steps_for(&p, "MacOS").unwrap()[0].outcome,
            StepOutcome::Skipped { .. }
        ));
    }

    #[test]
    fn gather_software_inventory_takes_ssms_parameters_and_runs_one_inventory_step_on_linux() {
        let d = AWS_GATHER_SOFTWARE_INVENTORY.document().unwrap();
        let names: Vec<_> = d.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "applications",
                "awsComponents",
                "files",
                "networkConfig",
                "windowsUpdates",
                "instanceDetailedInformation",
                "services",
                "windowsRegistry",
                "windowsRoles",
                "customInventory",
                "billingInfo"
            ]
        );
        let p = d.validate_parameters(&given(&[])).unwrap();
        let step = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
        assert_eq!(step.action, "aws:softwareInventory");
        let g = step.inventory.unwrap();
        assert!(
            g.applications
                && g.aws_components
                && g.network_config
                && g.services
                && g.custom_inventory
        );
        let p = d
            .validate_parameters(&given(&[
                ("services", &["Disabled"]),
                ("windowsUpdates", &["Disabled"]),
            ]))
            .unwrap();
        let g = d.steps_for(&p, "Linux").unwrap()[0]
            .plugin_step()
            .unwrap()
            .inventory
            .unwrap();
        assert!(!g.services && g.applications);
        for (name, bad) in [
            ("applications", "Yes"),
            ("instanceDetailedInformation", "Enabled"),
            ("billingInfo", "Enabled"),
            ("files", "[{\"Path\":\"/etc\"}]"),
        ] {
            let e = d
                .validate_parameters(&given(&[(name, &[bad])]))
                .unwrap_err();
            assert_eq!(e.code(), "InvalidParameters", "{name}={bad}");
        }
        assert!(matches!(
            &d.steps_for(&p, "Windows").unwrap()[0].outcome,
            StepOutcome::Skipped { .. }
        ));
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

    // ------------------------------------------------------------ runbooks

    use crate::automation::Runbook;
    use crate::automation::control::{self, Caller, Signal};
    use crate::automation::engine::{self, CommandOutcome, Effect, Env, Observed};
    use crate::automation::execution::{AutomationStatus, Execution};
    use crate::documents::declared_parameters::validate;
    use serde_json::{Value, json};

    const NODE: &str = "mi-0123456789abcdef0";

    fn runbook(b: &BuiltinDocument) -> Runbook {
        match b.content().unwrap() {
            Content::Automation(r) => r,
            Content::Command(_) | Content::Session(_) => panic!("{} is not a runbook", b.name),
        }
    }

    fn env(now: f64) -> Env {
        Env {
            now,
            account_id: "000000000000".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
        }
    }

    /// An execution of `b` with `pairs`, checked as StartAutomationExecution
    /// checks them.
    fn execution(b: &BuiltinDocument, pairs: &[(&str, &[&str])]) -> Result<Execution, SsmError> {
        let r = runbook(b);
        let resolved = validate(&r.parameters, &given(pairs))?;
        let params = resolved
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        Ok(Execution::new(
            "e-1".into(),
            b.name.into(),
            "1".into(),
            params,
            "arn:aws:iam::000000000000:user/steward-events".into(),
        ))
    }

    /// The commands `fx` asks for: (command id, inputs).
    fn commands(fx: &[Effect]) -> Vec<(String, Value)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::CreateCommand {
                    command_id, inputs, ..
                } => Some((command_id.clone(), inputs.clone())),
                _ => None,
            })
            .collect()
    }

    fn ended(command_id: &str, status: &str) -> Observed {
        Observed {
            command: Some(CommandOutcome {
                command_id: command_id.into(),
                status: status.into(),
                response_code: if status == "Success" { 0 } else { 1 },
                output: format!("{status}\n"),
            }),
            ..Default::default()
        }
    }

    const RESTART: &[(&str, &[&str])] = &[
        ("InstanceId", &[NODE]),
        ("RestartCommands", &["systemctl restart web"]),
        (
            "CheckCommands",
            &["systemctl is-active web", "curl -fs localhost"],
        ),
    ];

    /// Runs Steward-RestartServiceAndVerify with the restart and the check
    /// ending as given; returns the execution and every command it sent.
    fn restart_and_verify(restart: &str, check: &str) -> (Execution, Vec<(String, Value)>) {
        let r = runbook(&STEWARD_RESTART_SERVICE_AND_VERIFY);
        let mut e = execution(&STEWARD_RESTART_SERVICE_AND_VERIFY, RESTART).unwrap();
        let mut sent = commands(&engine::advance(
            &mut e,
            &r,
            &Observed::default(),
            &env(100.0),
        ));
        assert_eq!(sent.len(), 1);
        let fx = engine::advance(&mut e, &r, &ended(&sent[0].0, restart), &env(101.0));
        sent.extend(commands(&fx));
        if restart != "Success" {
            return (e, sent);
        }
        // The settle step waits CheckDelay (PT5S by default), then checks.
        assert!(fx.contains(&Effect::WakeAt(106.0)), "{fx:?}");
        assert_eq!(sent.len(), 1, "checked before the delay");
        sent.extend(commands(&engine::advance(
            &mut e,
            &r,
            &Observed::default(),
            &env(106.0),
        )));
        assert_eq!(sent.len(), 2);
        let last = sent[1].0.clone();
        engine::advance(&mut e, &r, &ended(&last, check), &env(107.0));
        (e, sent)
    }

    #[test]
    fn restart_service_and_verify_restarts_waits_then_checks_that_node() {
        let (e, sent) = restart_and_verify("Success", "Success");
        assert_eq!(e.status, AutomationStatus::Success);
        let (restart, check) = (&sent[0].1, &sent[1].1);
        assert_eq!(restart["DocumentName"], "AWS-RunShellScript");
        assert_eq!(restart["InstanceIds"], json!([NODE]));
        assert_eq!(
            restart["Parameters"]["commands"],
            json!(["systemctl restart web"])
        );
        assert_eq!(restart["Comment"], "Restart by automation e-1");
        assert_eq!(check["InstanceIds"], json!([NODE]));
        assert_eq!(
            check["Parameters"]["commands"],
            json!(["systemctl is-active web", "curl -fs localhost"])
        );
        let names: Vec<_> = e.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["restart", "settle", "verify"]);
        assert_eq!(e.outputs["verify.Output"], json!("Success\n"));
    }

    #[test]
    fn restart_service_and_verify_fails_when_the_check_or_the_restart_fails() {
        let (e, sent) = restart_and_verify("Success", "Failed");
        assert_eq!(e.status, AutomationStatus::Failed);
        assert_eq!(sent.len(), 2);
        let (e, sent) = restart_and_verify("Failed", "Success");
        assert_eq!(e.status, AutomationStatus::Failed);
        assert_eq!(sent.len(), 1, "checked after a failed restart");
    }

    #[test]
    fn restart_service_and_verify_parameters_are_checked() {
        let code = |pairs: &[(&str, &[&str])]| {
            execution(&STEWARD_RESTART_SERVICE_AND_VERIFY, pairs)
                .map(|_| ())
                .unwrap_err()
                .code()
        };
        // Each required parameter left out, and each bounded one wrong.
        for leave_out in ["InstanceId", "RestartCommands", "CheckCommands"] {
            let pairs: Vec<_> = RESTART
                .iter()
                .copied()
                .filter(|(k, _)| *k != leave_out)
                .collect();
            assert_eq!(code(&pairs), "InvalidParameters", "{leave_out}");
        }
        for (k, v) in [
            ("InstanceId", "i-123"),
            ("InstanceId", "mi-0123456789abcdef0 mi-0123456789abcdef1"),
            ("CheckDelay", "5"),
            ("CheckDelay", "P1D"),
        ] {
            let mut pairs = RESTART.to_vec();
            let value = [v];
            pairs.push((k, &value));
            assert_eq!(code(&pairs), "InvalidParameters", "{k}={v}");
        }
        let e = execution(&STEWARD_RESTART_SERVICE_AND_VERIFY, RESTART).unwrap();
        assert_eq!(e.parameters["CheckDelay"], json!("PT5S"));
        let mut pairs = RESTART.to_vec();
        pairs.push(("CheckDelay", &["PT2M"]));
        assert!(execution(&STEWARD_RESTART_SERVICE_AND_VERIFY, &pairs).is_ok());
    }

    const APPROVAL: &[(&str, &[&str])] = &[
        (
            "Approvers",
            &["alice", "arn:aws:iam::000000000000:user/bob"],
        ),
        ("InstanceIds", &[NODE, "mi-0123456789abcdef1"]),
        ("Commands", &["apt-get -y upgrade openssl"]),
    ];

    fn approved_by(decisions: &[(&str, Signal)]) -> (Execution, Vec<(String, Value)>) {
        let b = &STEWARD_RUN_COMMAND_AFTER_APPROVAL;
        let r = runbook(b);
        let mut e = execution(b, APPROVAL).unwrap();
        let mut sent = commands(&engine::advance(
            &mut e,
            &r,
            &Observed::default(),
            &env(1.0),
        ));
        assert!(sent.is_empty(), "ran before approval");
        assert_eq!(e.status, AutomationStatus::Waiting);
        for (i, (who, signal)) in decisions.iter().enumerate() {
            let names = [*who];
            let now = 2.0 + i as f64;
            control::signal(&mut e, *signal, &Caller { names: &names }, None, now).unwrap();
            sent.extend(commands(&engine::advance(
                &mut e,
                &r,
                &Observed::default(),
                &env(now),
            )));
        }
        (e, sent)
    }

    #[test]
    fn run_command_after_approval_runs_only_once_approved() {
        let (mut e, sent) = approved_by(&[("arn:aws:iam::000000000000:user/bob", Signal::Approve)]);
        assert_eq!(sent.len(), 1);
        let inputs = &sent[0].1;
        assert_eq!(inputs["DocumentName"], "AWS-RunShellScript");
        assert_eq!(inputs["InstanceIds"], json!([NODE, "mi-0123456789abcdef1"]));
        assert_eq!(
            inputs["Parameters"]["commands"],
            json!(["apt-get -y upgrade openssl"])
        );
        let r = runbook(&STEWARD_RUN_COMMAND_AFTER_APPROVAL);
        engine::advance(&mut e, &r, &ended(&sent[0].0, "Success"), &env(9.0));
        assert_eq!(e.status, AutomationStatus::Success);
        assert_eq!(e.outputs["run.Status"], json!("Success"));
    }

    #[test]
    fn run_command_after_approval_rejected_runs_nothing_and_fails() {
        let (e, sent) = approved_by(&[("alice", Signal::Reject)]);
        assert!(sent.is_empty());
        assert_eq!(e.status, AutomationStatus::Failed);
        // Only a named approver may decide.
        let b = &STEWARD_RUN_COMMAND_AFTER_APPROVAL;
        let mut e = execution(b, APPROVAL).unwrap();
        engine::advance(&mut e, &runbook(b), &Observed::default(), &env(1.0));
        let e = control::signal(
            &mut e,
            Signal::Approve,
            &Caller {
                names: &["mallory"],
            },
            None,
            2.0,
        )
        .unwrap_err();
        assert_eq!(e.code(), "InvalidAutomationSignalException");
    }

    #[test]
    fn run_command_after_approval_parameters_are_checked() {
        let code = |pairs: &[(&str, &[&str])]| {
            execution(&STEWARD_RUN_COMMAND_AFTER_APPROVAL, pairs)
                .map(|_| ())
                .unwrap_err()
                .code()
        };
        for leave_out in ["Approvers", "InstanceIds", "Commands"] {
            let pairs: Vec<_> = APPROVAL
                .iter()
                .copied()
                .filter(|(k, _)| *k != leave_out)
                .collect();
            assert_eq!(code(&pairs), "InvalidParameters", "{leave_out}");
        }
        let eleven = ["a"; 11];
        let mut pairs = APPROVAL.to_vec();
        pairs[0] = ("Approvers", &eleven);
        assert_eq!(code(&pairs), "InvalidParameters");
        for (k, v) in [
            ("MinRequiredApprovals", "0"),
            ("MinRequiredApprovals", "11"),
        ] {
            let mut pairs = APPROVAL.to_vec();
            let value = [v];
            pairs.push((k, &value));
            assert_eq!(code(&pairs), "InvalidParameters", "{k}={v}");
        }
    }
}
