//! Document rules end to end: parse, validate parameters, steps for a node.

use super::*;
use crate::documents::interpolate::{brace_heavy_text, ssm_agent_placeholders};
use proptest::prelude::*;
use serde_json::json;

fn parse_json(v: Value) -> Result<Document, SsmError> {
    Document::parse(&v.to_string(), DocumentFormat::Json)
}

fn content_err(v: Value) -> String {
    let e = parse_json(v).unwrap_err();
    assert_eq!(e.code(), "InvalidDocumentContent", "{e}");
    e.to_string()
}

fn given(pairs: &[(&str, &[&str])]) -> GivenParameters {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
        .collect()
}

fn doc(steps: Value) -> Value {
    json!({"schemaVersion": "2.2", "description": "d", "parameters": {}, "mainSteps": steps})
}

fn shell(name: &str) -> Value {
    json!({"action": "aws:runShellScript", "name": name, "inputs": {"runCommand": ["echo hi"]}})
}

#[test]
fn schema_versions() {
    for v in ["1.2", "2.0", "2.2"] {
        let d = if v == "1.2" {
            json!({"schemaVersion": v, "runtimeConfig": {"aws:runShellScript": {"properties": [{"runCommand": "ls"}]}}})
        } else {
            json!({"schemaVersion": v, "mainSteps": [shell("a")]})
        };
        assert_eq!(parse_json(d).unwrap().schema_version.as_str(), v);
    }
    let code = |v: Value| parse_json(v).unwrap_err().code();
    assert_eq!(
        code(json!({"mainSteps": [shell("a")]})),
        "InvalidDocumentSchemaVersion"
    );
    assert_eq!(
        code(json!({"schemaVersion": "0.3", "mainSteps": [shell("a")]})),
        "InvalidDocumentSchemaVersion"
    );
    assert_eq!(
        code(json!({"schemaVersion": "3.0", "mainSteps": [shell("a")]})),
        "InvalidDocumentSchemaVersion"
    );
    assert_eq!(
        code(json!({"schemaVersion": ["2.2"], "mainSteps": [shell("a")]})),
        "InvalidDocumentSchemaVersion"
    );
    let e = parse_json(json!({"schemaVersion": "1.0", "mainSteps": []})).unwrap_err();
    assert!(
        e.to_string()
            .contains("Document schema version, 1.0, is not supported"),
        "{e}"
    );
    // Unquoted in YAML, the version is a number.
    let d = Document::parse(
        "schemaVersion: 2.2\nmainSteps:\n- action: aws:runShellScript\n  name: a\n  inputs:\n    runCommand: [ls]\n",
        DocumentFormat::Yaml,
    )
    .unwrap();
    assert_eq!(d.schema_version, SchemaVersion::V2_2);
}

#[test]
fn shape_is_checked() {
    assert!(content_err(json!([1])).contains("Command document's shape"));
    assert!(
        content_err(json!({"schemaVersion": "2.2", "mainSteps": [shell("a")], "outputs": {}}))
            .contains("unknown field `outputs`")
    );
    assert!(content_err(json!({"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": "ls"}, "timeout": 5}]})).contains("unknown field `timeout`"));
    let e = Document::parse("{\"schemaVersion\": \"2.2\",", DocumentFormat::Json).unwrap_err();
    assert_eq!(e.code(), "InvalidDocumentContent");
    assert_eq!(e.to_string(), "The content for the document is not valid.");
    // YAML content given as JSON is not read as YAML.
    let e = Document::parse("schemaVersion: '2.2'\n", DocumentFormat::Json).unwrap_err();
    assert_eq!(e.to_string(), "The content for the document is not valid.");
    let e = Document::parse(&"x".repeat(MAX_CONTENT_BYTES + 1), DocumentFormat::Json).unwrap_err();
    assert_eq!(e.code(), "MaxDocumentSizeExceeded");
    let e = Document::parse(
        r#"{"schemaVersion":"2.2","parameters":{"a":{"type":"String"},"a":{"type":"String"}},"mainSteps":[]}"#,
        DocumentFormat::Json,
    )
    .unwrap_err();
    assert!(e.to_string().contains("appears twice"), "{e}");
}

#[test]
fn steps_are_checked() {
    assert!(content_err(doc(json!([]))).contains("no steps"));
    assert!(content_err(json!({"schemaVersion": "2.2"})).contains("no steps"));
    assert!(content_err(doc(json!([shell("a"), shell("a")]))).contains("\"a\" is used twice"));
    assert!(
        content_err(doc(json!([shell("bad name")])))
            .contains("Step name \"bad name\" is not valid")
    );
    assert!(content_err(doc(json!([shell(".hidden")]))).contains("not valid"));
    assert!(content_err(doc(json!([shell(&"a".repeat(129))]))).contains("not valid"));
    assert!(
        content_err(doc(
            json!([{"action": "aws:runShellScript", "inputs": {"runCommand": "ls"}}])
        ))
        .contains("Step 1 of mainSteps has no name")
    );
    assert!(
        content_err(doc(json!([{"name": "a", "inputs": {"runCommand": "ls"}}])))
            .contains("has no action")
    );
    assert!(
        content_err(doc(json!([{"name": "a", "action": "aws:runShellScript"}])))
            .contains("has no inputs")
    );
    let e = content_err(doc(
        json!([shell("one"), {"action": "aws:downloadContent", "name": "two", "inputs": {"sourceType": "S3"}}]),
    ));
    assert!(
        e.contains("Step \"two\" uses aws:downloadContent, which Steward does not run yet"),
        "{e}"
    );
    // A PowerShell step is read (and checked) as SSM reads it.
    let e = content_err(doc(
        json!([shell("one"), {"action": "aws:runPowerShellScript", "name": "two", "inputs": {"commands": ["dir"]}}]),
    ));
    assert!(
        e.contains("Step \"two\": a script step has no input \"commands\""),
        "{e}"
    );
    for a in [
        "aws:runDocument",
        "aws:downloadContent",
        "aws:configurePackage",
        "custom:thing",
    ] {
        content_err(doc(json!([{"action": a, "name": "s", "inputs": {}}])));
    }
    let many: Vec<Value> = (0..=MAX_STEPS).map(|i| shell(&format!("s{i}"))).collect();
    assert!(content_err(doc(Value::Array(many))).contains("at most 100"));
    assert!(is_step_name("Patch_Linux-1.x"));
}

#[test]
fn schema_sections_do_not_mix() {
    assert!(
        content_err(json!({"schemaVersion": "1.2", "mainSteps": [shell("a")]}))
            .contains("has runtimeConfig, not mainSteps")
    );
    assert!(
        content_err(
            json!({"schemaVersion": "2.2", "mainSteps": [shell("a")], "runtimeConfig": {}})
        )
        .contains("not runtimeConfig")
    );
    assert!(
        content_err(json!({"schemaVersion": "1.2", "runtimeConfig": {}})).contains("no plugins")
    );
    assert!(content_err(json!({"schemaVersion": "1.2", "runtimeConfig": {"aws:runShellScript": {"properties": [{"runCommand": "a"}, {"runCommand": "b"}]}}})).contains("2 properties entries"));
    assert!(
        content_err(json!({"schemaVersion": "1.2", "runtimeConfig": {"aws:runShellScript": {}}}))
            .contains("needs properties")
    );
    assert!(content_err(json!({"schemaVersion": "1.2", "runtimeConfig": {"aws:configurePackage": {"properties": [{"runCommand": "a"}]}}})).contains("does not run yet"));
    let pre = json!({"action": "aws:runShellScript", "name": "a", "precondition": {"StringEquals": ["platformType", "Linux"]}, "inputs": {"runCommand": "ls"}});
    assert!(
        content_err(json!({"schemaVersion": "2.0", "mainSteps": [pre]}))
            .contains("from schemaVersion 2.2")
    );
}

#[test]
fn undeclared_placeholders_are_refused_and_references_are_not() {
    let e = content_err(doc(
        json!([{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo {{ missing }}"]}}]),
    ));
    assert!(e.contains("Parameter \"missing\" is not declared"), "{e}");
    assert!(e.contains("Step \"a\""), "{e}");
    let d = parse_json(doc(json!([{"action": "aws:runShellScript", "name": "a", "inputs": {
        "runCommand": ["echo {{ssm:/app/url}} {{ ssm-secure:/db/pw }} {{resolve:ssm:/x}}", "docker ps --format '{{.Names}}'"]
    }}])))
    .unwrap();
    let steps = d
        .steps_for(&ResolvedParameters::default(), "Linux")
        .unwrap();
    let s = steps[0].plugin_step().unwrap();
    assert_eq!(
        s.run_command,
        [
            "echo {{ssm:/app/url}} {{ ssm-secure:/db/pw }} {{resolve:ssm:/x}}",
            "docker ps --format '{{.Names}}'"
        ]
    );
}

fn typed_doc() -> Document {
    parse_json(json!({
        "schemaVersion": "2.2",
        "description": "typed",
        "parameters": {
            "commands": {"type": "StringList", "minItems": 1},
            "message": {"type": "String", "default": "hello"},
            "timeout": {"type": "String", "default": "60", "allowedPattern": "[0-9]+"},
            "mode": {"type": "String", "default": "fast", "allowedValues": ["fast", "slow"]},
            "dir": {"type": "String", "default": ""}
        },
        "mainSteps": [
            {"action": "aws:runShellScript", "name": "first", "inputs": {
                "runCommand": ["echo {{ message }}", "{{ commands }}", "echo all: {{commands}}"],
                "workingDirectory": "{{ dir }}",
                "timeoutSeconds": "{{ timeout }}",
                "onFailure": "exit"
            }},
            {"action": "aws:runShellScript", "name": "slowOnly",
             "precondition": {"StringEquals": ["{{ mode }}", "slow"]},
             "inputs": {"runCommand": "sleep 1", "finallyStep": true}},
            {"action": "aws:runShellScript", "name": "windowsOnly",
             "precondition": {"StringEquals": ["platformType", "Windows"]},
             "inputs": {"runCommand": "echo never"}}
        ]
    }))
    .unwrap()
}

#[test]
fn steps_are_interpolated_per_node() {
    let d = typed_doc();
    assert_eq!(d.parameters.len(), 5);
    assert_eq!(
        d.parameter("mode").unwrap().allowed_values,
        ["fast", "slow"]
    );
    let p = d
        .validate_parameters(&given(&[
            ("commands", &["ls -l", "id"]),
            ("dir", &["/srv"]),
        ]))
        .unwrap();
    let steps = d.steps_for(&p, "Linux").unwrap();
    assert_eq!(steps.len(), 3);
    let StepOutcome::Run(first) = &steps[0].outcome else {
        panic!("{:?}", steps[0]);
    };
    assert_eq!(
        first.run_command,
        ["echo hello", "ls -l", "id", r#"echo all: ["ls -l","id"]"#]
    );
    assert_eq!(
        (first.working_directory.as_str(), first.timeout_seconds),
        ("/srv", 60)
    );
    assert_eq!(first.control.on_failure, Some(OnFailure::Exit));
    assert_eq!(
        steps[1].outcome,
        StepOutcome::Skipped {
            output: "Step execution skipped due to unsatisfied preconditions: '\"StringEquals\": [{{ mode }}, slow]'. Step name: slowOnly".into()
        }
    );
    assert!(
        matches!(&steps[2].outcome, StepOutcome::Skipped { output } if output.contains("[platformType, Windows]"))
    );
    assert!(steps[2].plugin_step().is_none());

    let p = d
        .validate_parameters(&given(&[("commands", &["x"]), ("mode", &["slow"])]))
        .unwrap();
    let steps = d.steps_for(&p, "Linux").unwrap();
    let StepOutcome::Run(slow) = &steps[1].outcome else {
        panic!("{:?}", steps[1]);
    };
    assert!(slow.control.finally_step);

    // On a platform the plugin does not run on, a 2.2 step is skipped.
    let steps = d.steps_for(&p, "Windows").unwrap();
    assert_eq!(
        steps[0].outcome,
        StepOutcome::Skipped {
            output: "Step execution skipped due to unsupported plugin: aws:runShellScript. Step name: first".into()
        }
    );
    assert_eq!(d.platform_types(), ["Linux", "MacOS"]);
}

#[test]
fn parameter_errors_are_invalid_parameters() {
    let d = typed_doc();
    let code = |pairs: &[(&str, &[&str])]| d.validate_parameters(&given(pairs)).unwrap_err().code();
    assert_eq!(code(&[]), "InvalidParameters");
    assert_eq!(
        code(&[("commands", &["x"]), ("nope", &["1"])]),
        "InvalidParameters"
    );
    assert_eq!(
        code(&[("commands", &["x"]), ("mode", &["medium"])]),
        "InvalidParameters"
    );
    assert_eq!(
        code(&[("commands", &["x"]), ("timeout", &["6s"])]),
        "InvalidParameters"
    );
    assert_eq!(
        code(&[("commands", &["x"]), ("message", &["a", "b"])]),
        "InvalidParameters"
    );
    // A value that passes the declaration but not the plugin's input.
    let p = d
        .validate_parameters(&given(&[("commands", &["x"]), ("timeout", &["0"])]))
        .unwrap();
    let e = d.steps_for(&p, "Linux").unwrap_err();
    assert_eq!(e.code(), "InvalidParameters");
    assert!(
        e.to_string().contains("Step \"first\": timeoutSeconds"),
        "{e}"
    );
    // ... whatever the node's platform.
    assert_eq!(
        d.steps_for(&p, "Windows").unwrap_err().code(),
        "InvalidParameters"
    );
}

#[test]
fn placeholders_must_fit_the_input() {
    let e = content_err(json!({
        "schemaVersion": "2.2",
        "parameters": {"n": {"type": "Integer", "default": 1}},
        "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["{{ n }}"]}}]
    }));
    assert!(
        e.contains("runCommand takes String or StringList, but parameter \"n\" is Integer"),
        "{e}"
    );
    // Inside a longer string any type is text.
    let d = parse_json(json!({
        "schemaVersion": "2.2",
        "parameters": {"n": {"type": "Integer", "default": 7}, "on": {"type": "Boolean", "default": false}},
        "mainSteps": [{"action": "aws:runShellScript", "name": "a", "inputs": {"runCommand": ["echo {{ n }} {{on}}"], "timeoutSeconds": "{{ n }}"}}]
    }))
    .unwrap();
    let p = d.validate_parameters(&given(&[("n", &["9"])])).unwrap();
    let s = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
    assert_eq!(
        (s.run_command[0].as_str(), s.timeout_seconds),
        ("echo 9 false", 9)
    );
}

#[test]
fn document_names() {
    assert!(check_new_document_name("My-Doc_1.0").is_ok());
    for bad in ["ab", "has space", &"a".repeat(129), "x/y"] {
        assert_eq!(
            check_new_document_name(bad).unwrap_err().code(),
            "ValidationException",
            "{bad}"
        );
    }
    for reserved in ["AWS-Mine", "amazonThing", "AMZN-x"] {
        let e = check_new_document_name(reserved).unwrap_err();
        assert!(e.to_string().contains("reserved"), "{e}");
    }
}

#[test]
fn same_document_in_yaml_and_json() {
    let yaml = "---\nschemaVersion: '2.2'\ndescription: x\nparameters:\n  who:\n    type: String\n    default: world\nmainSteps:\n- action: aws:runShellScript\n  name: greet\n  inputs:\n    runCommand:\n    - echo hello {{ who }}\n";
    let json = DocumentFormat::convert(yaml, DocumentFormat::Yaml, DocumentFormat::Json).unwrap();
    for (content, format) in [
        (yaml, DocumentFormat::Yaml),
        (json.as_str(), DocumentFormat::Json),
    ] {
        let d = Document::parse(content, format).unwrap();
        let p = d.validate_parameters(&given(&[])).unwrap();
        let s = d.steps_for(&p, "Linux").unwrap()[0].plugin_step().unwrap();
        assert_eq!(s.run_command, ["echo hello world"]);
    }
    assert_ne!(content_hash(yaml), content_hash(&json));
}

fn string_doc(names: &[String]) -> Document {
    let mut params = serde_json::Map::new();
    let mut lines = Vec::new();
    for n in names {
        params.insert(n.clone(), json!({"type": "String"}));
        lines.push(json!(format!("echo <{{{{ {n} }}}}>")));
        lines.push(json!(format!("{{{{{n}}}}}")));
    }
    let wd = format!("{{{{ {} }}}}", names[0]);
    parse_json(json!({
        "schemaVersion": "2.2",
        "parameters": params,
        "mainSteps": [{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": lines, "workingDirectory": wd}}]
    }))
    .unwrap()
}

proptest! {
    #[test]
    fn every_string_value_appears_verbatim(
        values in proptest::collection::btree_map(
            "[a-zA-Z][a-zA-Z0-9]{0,7}",
            // Values that look like placeholders are inserted, not expanded.
            prop_oneof![".{0,40}", brace_heavy_text(&["{{ a }}", "{{a}}", "a", "{{ssm:/a}}"])],
            1..5,
        ),
    ) {
        let names: Vec<String> = values.keys().cloned().collect();
        let d = string_doc(&names);
        let given: GivenParameters = values.iter().map(|(k, v)| (k.clone(), vec![v.clone()])).collect();
        let p = d.validate_parameters(&given).unwrap();
        let steps = d.steps_for(&p, "Linux").unwrap();
        let s = steps[0].plugin_step().unwrap();
        for (i, (_, v)) in values.iter().enumerate() {
            prop_assert_eq!(&s.run_command[2 * i], &format!("echo <{v}>"));
            prop_assert_eq!(&s.run_command[2 * i + 1], v);
        }
        prop_assert_eq!(&s.working_directory, &values[&names[0]]);
    }

    #[test]
    fn text_without_parameters_is_run_as_written(
        lines in proptest::collection::vec(brace_heavy_text(&["{{ssm:/a}}", "{{ name }}", "name", ".Names"]), 1..5),
    ) {
        // No parameter is declared: a line holding a placeholder (SSM
        // Agent's pattern) is refused; any other braces run as written.
        let parsed = parse_json(doc(json!([{"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": lines.clone()}}])));
        let undeclared: Vec<String> = lines
            .iter()
            .flat_map(|l| ssm_agent_placeholders(l))
            .map(|(name, _)| name.to_string())
            .collect();
        if !undeclared.is_empty() {
            // The refusal names one of them (which one first is the
            // parser's order, not the text's).
            let e = parsed.unwrap_err();
            prop_assert_eq!(e.code(), "InvalidDocumentContent");
            let text = e.to_string();
            prop_assert!(
                undeclared.iter().any(|n| text.contains(&format!("\"{n}\" is not declared"))),
                "{} names none of {:?}", text, undeclared
            );
            return Ok(());
        }
        let d = parsed.unwrap();
        let s = d.steps_for(&ResolvedParameters::default(), "Linux").unwrap()[0].plugin_step().unwrap();
        prop_assert_eq!(s.run_command, lines);
    }
}
