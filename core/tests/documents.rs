//! Public SSM Command documents (tests/fixtures/documents) read and run as
//! SSM would run them.

mod documents {
    use std::collections::BTreeMap;

    use steward_core::documents::{Document, DocumentFormat, ResolvedStep, StepOutcome};

    fn fixture(name: &str) -> (String, DocumentFormat) {
        let path = format!(
            "{}/tests/fixtures/documents/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let content = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let format = if name.ends_with(".yaml") {
            DocumentFormat::Yaml
        } else {
            DocumentFormat::Json
        };
        (content, format)
    }

    fn load(name: &str) -> Document {
        let (content, format) = fixture(name);
        Document::parse(&content, format).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn given(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    fn run(d: &Document, pairs: &[(&str, &[&str])], platform: &str) -> Vec<ResolvedStep> {
        let p = d.validate_parameters(&given(pairs)).unwrap();
        d.steps_for(&p, platform).unwrap()
    }

    #[test]
    fn eks_log_collector_json() {
        let d = load("eks-log-collector.json");
        assert_eq!(d.description, "EKS Log Collector");
        let steps = run(&d, &[("bucketName", &["my-logs"])], "Linux");
        assert_eq!(steps.len(), 1);
        let s = steps[0].plugin_step().unwrap();
        assert_eq!(s.name, "PatchLinux");
        assert_eq!(s.run_command.len(), 20);
        assert_eq!(s.run_command[16], "echo \"* Bucket name: s3://my-logs\"");
        assert_eq!(
            s.run_command[18],
            "/bin/aws s3 cp /var/log/eks_i* s3://my-logs"
        );
        // Shell syntax that looks like braces is left alone.
        assert_eq!(s.run_command[9], "AWSCLI_DIR=$(mktemp -d)");
        assert_eq!(s.timeout_seconds, 3600);
        // The default applies when the parameter is not given.
        let s = run(&d, &[], "Linux")[0].plugin_step().unwrap();
        assert_eq!(
            s.run_command[18],
            "/bin/aws s3 cp /var/log/eks_i* s3://Enabled"
        );
        // On macOS the Linux precondition skips the step, in SSM Agent's words.
        match &run(&d, &[], "MacOS")[0].outcome {
            StepOutcome::Skipped { output } => assert_eq!(
                output,
                "Step execution skipped due to unsatisfied preconditions: '\"StringEquals\": [platformType, Linux]'. Step name: PatchLinux"
            ),
            other => panic!("{other:?}"),
        }
        let e = d
            .validate_parameters(&given(&[("bucket", &["x"])]))
            .unwrap_err();
        assert_eq!(e.code(), "InvalidParameters");
    }

    #[test]
    fn run_shell_script_plugin_yaml() {
        let d = load("run-shell-script-plugin.yaml");
        let s = run(&d, &[], "Linux")[0].plugin_step().unwrap();
        assert_eq!(s.name, "runShellScript");
        assert_eq!(s.run_command, ["echo Hello World"]);
        assert_eq!(s.timeout_seconds, 60);
        let s = run(&d, &[("commands", &["uptime; df -h"])], "Linux")[0]
            .plugin_step()
            .unwrap();
        assert_eq!(s.run_command, ["uptime; df -h"]);
        // Schema 2.2 without a precondition: skipped where the plugin cannot run.
        assert!(matches!(
            &run(&d, &[], "Windows")[0].outcome,
            StepOutcome::Skipped { output } if output.contains("unsupported plugin: aws:runShellScript")
        ));
    }

    #[test]
    fn parameter_store_default_yaml_keeps_the_reference() {
        let d = load("parameter-store-default.yaml");
        let p = d.parameter("commands").unwrap();
        assert_eq!(
            p.default_value_text().as_deref(),
            Some("{{ssm:MyRunCommandParameter:2}}")
        );
        let s = run(&d, &[], "Linux")[0].plugin_step().unwrap();
        assert_eq!(s.name, "RunScript");
        assert_eq!(s.run_command, ["{{ssm:MyRunCommandParameter:2}}"]);
        let s = run(&d, &[("commands", &["{{ssm-secure:/db/pw}}"])], "Linux")[0]
            .plugin_step()
            .unwrap();
        assert_eq!(s.run_command, ["{{ssm-secure:/db/pw}}"]);
    }

    #[test]
    fn state_manager_bootstrap_json() {
        let d = load("state-manager-bootstrap.json");
        assert!(d.parameters.is_empty());
        let s = run(&d, &[], "Linux")[0].plugin_step().unwrap();
        assert_eq!(s.name, "configureServer");
        assert_eq!(
            s.run_command,
            [
                "sudo yum install -y httpd24",
                "sudo yum --enablerepo=epel install -y clamav"
            ]
        );
    }

    #[test]
    fn cross_platform_yaml_runs_its_linux_step() {
        let d = load("cross-platform.yaml");
        assert_eq!(d.platform_types(), ["Windows", "Linux", "MacOS"]);
        let steps = run(&d, &[], "Linux");
        // SSM Agent on Linux skips the PowerShell step; Steward does too.
        assert!(matches!(
            &steps[0].outcome,
            StepOutcome::Skipped { output } if output.contains("unsupported plugin: aws:runPowerShellScript")
        ));
        let s = steps[1].plugin_step().unwrap();
        assert_eq!(s.name, "PatchLinux");
        assert_eq!(s.run_command, ["cmds"]);
        // Its inputs are checked like a shell step's.
        let bad = fixture("cross-platform.yaml").0.replace(
            "    runCommand:\n    - cmds\n- action: aws:runShellScript",
            "    runCommands:\n    - cmds\n- action: aws:runShellScript",
        );
        let e = Document::parse(&bad, DocumentFormat::Yaml).unwrap_err();
        assert_eq!(e.code(), "InvalidDocumentContent");
        assert!(e.to_string().contains("Step \"PatchWindows\""), "{e}");
    }

    #[test]
    fn fixtures_read_as_the_other_format_too() {
        for name in ["eks-log-collector.json", "state-manager-bootstrap.json"] {
            let (content, format) = fixture(name);
            // JSON is YAML: the same document either way.
            let a = Document::parse(&content, format).unwrap();
            let b = Document::parse(&content, DocumentFormat::Yaml).unwrap();
            assert_eq!(a.steps.len(), b.steps.len());
        }
        let (content, _) = fixture("run-shell-script-plugin.yaml");
        assert_eq!(
            Document::parse(&content, DocumentFormat::Json)
                .unwrap_err()
                .code(),
            "InvalidDocumentContent"
        );
    }
}
