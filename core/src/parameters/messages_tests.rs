//! SSM's own error sentences, exactly, as a client sees them: each request
//! goes through SSM's input constraints and then the operation, as the API
//! does. Scripts match on these sentences, so none carries a hint.

use std::time::Duration;

use serde_json::{Value, json};

use super::context::ParameterContext;
use super::memory::{MemoryDataKeys, MemoryParameterStore};
use super::operations;
use super::secrets::Sealer;
use crate::access::{Caller, Policy};
use crate::api_model;
use crate::arn::ArnScope;
use crate::error::SsmError;

struct Env {
    store: MemoryParameterStore,
    sealer: Sealer,
    caller: Caller,
    scope: ArnScope,
}

impl Env {
    fn new() -> Self {
        Self {
            store: MemoryParameterStore::new(),
            sealer: Sealer::new(
                Box::new(MemoryDataKeys::default()),
                Duration::from_secs(300),
                16,
            ),
            caller: Caller {
                access_key_id: "AKIDTEST".into(),
                user_arn: "arn:aws:iam::123456789012:user/alice".into(),
                policy: Policy::parse(
                    r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
                )
                .unwrap(),
            },
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, SsmError> {
        api_model::validate(op, &body)?;
        let ctx = ParameterContext {
            store: &self.store,
            sealer: &self.sealer,
            caller: &self.caller,
            scope: &self.scope,
            default_key_id: "stack-key",
            now: 1_700_000_000.0,
        };
        operations::handle(&ctx, op, &body)
            .await
            .expect("a Parameter Store operation")
    }

    async fn put(&self, name: &str) {
        self.call(
            "PutParameter",
            json!({"Name": name, "Value": "value", "Type": "String", "Overwrite": true}),
        )
        .await
        .unwrap();
    }

    /// The error `op` answers `body` with, as (code, message).
    async fn refused(&self, op: &str, body: Value) -> (String, String) {
        let e = self.call(op, body).await.expect_err("expected an error");
        (e.code().to_string(), e.to_string())
    }

    async fn assert_refused(&self, op: &str, body: Value, code: &str, message: &str) {
        let (c, m) = self.refused(op, body).await;
        assert_eq!((c.as_str(), m.as_str()), (code, message));
    }
}

#[tokio::test]
async fn a_missing_parameter_is_named_as_given() {
    let env = Env::new();
    let not_found = |n: &str| format!("Parameter {n} not found.");
    for op in ["GetParameter", "DeleteParameter", "GetParameterHistory"] {
        env.assert_refused(
            op,
            json!({"Name": "test_noexist"}),
            "ParameterNotFound",
            &not_found("test_noexist"),
        )
        .await;
    }
    env.assert_refused(
        "LabelParameterVersion",
        json!({"Name": "test", "Labels": ["test-label"]}),
        "ParameterNotFound",
        &not_found("test"),
    )
    .await;
    env.assert_refused(
        "UnlabelParameterVersion",
        json!({"Name": "test", "ParameterVersion": 1, "Labels": ["test-label"]}),
        "ParameterNotFound",
        &not_found("test"),
    )
    .await;
    // With a selector, SSM names the parameter as it was asked for.
    env.assert_refused(
        "GetParameter",
        json!({"Name": "test-3:2"}),
        "ParameterNotFound",
        &not_found("test-3:2"),
    )
    .await;
}

#[tokio::test]
async fn a_missing_version_is_named_with_its_parameter() {
    let env = Env::new();
    env.put("test-2").await;
    env.assert_refused(
        "GetParameter",
        json!({"Name": "test-2:2"}),
        "ParameterVersionNotFound",
        "Systems Manager could not find version 2 of test-2. Verify the version and try again.",
    )
    .await;
    env.put("test").await;
    env.assert_refused(
        "LabelParameterVersion",
        json!({"Name": "test", "ParameterVersion": 5, "Labels": ["test-label"]}),
        "ParameterVersionNotFound",
        "Systems Manager could not find version 5 of test. Verify the version and try again.",
    )
    .await;
}

#[tokio::test]
async fn put_parameter_refusals() {
    let env = Env::new();
    env.put("test").await;
    for body in [
        json!({"Name": "test", "Value": "value 2", "Type": "String"}),
        json!({"Name": "test", "Value": "value 2"}),
    ] {
        env.assert_refused(
            "PutParameter",
            body,
            "ParameterAlreadyExists",
            "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
        )
        .await;
    }
    env.assert_refused(
        "PutParameter",
        json!({"Name": "test_name", "Value": "some_value"}),
        "ValidationException",
        "A parameter type is required when you create a parameter.",
    )
    .await;
    env.assert_refused(
        "PutParameter",
        json!({"Name": "test_name", "Value": "", "Type": "String"}),
        "ValidationException",
        "1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.",
    )
    .await;
    env.assert_refused(
        "PutParameter",
        json!({"Name": "test_name", "Value": "v", "Type": "str", "DataType": "text"}),
        "ValidationException",
        "1 validation error detected: Value 'str' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]",
    )
    .await;
    for bad in ["not_text", "something weird"] {
        env.assert_refused(
            "PutParameter",
            json!({"Name": "test_name", "Value": "v", "Type": "String", "DataType": bad}),
            "ValidationException",
            &format!(
                "The following data type is not supported: {bad} (Data type names are all lowercase.)"
            ),
        )
        .await;
    }
}

#[tokio::test]
async fn reserved_names() {
    let env = Env::new();
    for name in ["ssm_test", "SSM_TEST", "aws_test", "AWS_TEST"] {
        env.assert_refused(
            "PutParameter",
            json!({"Name": name, "Value": "value", "Type": "String"}),
            "ValidationException",
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).",
        )
        .await;
    }
    for name in ["/ssm_test/path/to/var", "/SSM/PATH/TO/VAR"] {
        env.assert_refused(
            "PutParameter",
            json!({"Name": name, "Value": "value", "Type": "String"}),
            "ValidationException",
            "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_",
        )
        .await;
    }
    for name in ["/aws_test/path/to/var", "/AWS/PATH/TO/VAR"] {
        let (_, message) = env
            .refused(
                "PutParameter",
                json!({"Name": name, "Value": "value", "Type": "String"}),
            )
            .await;
        assert_eq!(
            message,
            format!("No access to reserved parameter name: {name}.")
        );
    }
}

#[tokio::test]
async fn labels_over_the_limit() {
    let env = Env::new();
    env.put("test").await;
    let first: Vec<String> = (1..=5).map(|i| format!("test-label{i}")).collect();
    env.call(
        "LabelParameterVersion",
        json!({"Name": "test", "ParameterVersion": 1, "Labels": first}),
    )
    .await
    .unwrap();
    let more: Vec<String> = (6..=11).map(|i| format!("test-label{i}")).collect();
    env.assert_refused(
        "LabelParameterVersion",
        json!({"Name": "test", "ParameterVersion": 1, "Labels": more}),
        "ParameterVersionLabelLimitExceeded",
        "A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.",
    )
    .await;
    // Eleven in one request break the list's own constraint first, as
    // eleven Names do in GetParameters.
    let eleven: Vec<String> = (1..=11).map(|i| format!("l{i}")).collect();
    env.assert_refused(
        "LabelParameterVersion",
        json!({"Name": "test", "ParameterVersion": 1, "Labels": eleven}),
        "ValidationException",
        "1 validation error detected: Value '[l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11]' at 'labels' failed to satisfy constraint: Member must have length less than or equal to 10",
    )
    .await;
    let long = "a".repeat(101);
    env.assert_refused(
        "LabelParameterVersion",
        json!({"Name": "test", "ParameterVersion": 1, "Labels": [long.clone()]}),
        "ValidationException",
        &format!(
            "1 validation error detected: Value '[{long}]' at 'labels' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 100, Member must have length greater than or equal to 1]"
        ),
    )
    .await;
}

#[tokio::test]
async fn the_oldest_labelled_version_blocks_the_101st() {
    let env = Env::new();
    for _ in 0..100 {
        env.put("test-param").await;
    }
    env.call(
        "LabelParameterVersion",
        json!({"Name": "test-param", "ParameterVersion": 1, "Labels": ["test-label"]}),
    )
    .await
    .unwrap();
    env.assert_refused(
        "PutParameter",
        json!({"Name": "test-param", "Value": "new-value", "Type": "String", "Overwrite": true}),
        "ParameterMaxVersionLimitExceeded",
        "You attempted to create a new version of test-param by calling the PutParameter API with the overwrite flag. Version 1, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.",
    )
    .await;
}

#[tokio::test]
async fn filter_refusals() {
    let env = Env::new();
    for key in ["Name", "Path", "Tier"] {
        env.assert_refused(
            "GetParametersByPath",
            json!({"Path": "/baz", "ParameterFilters": [{"Key": key, "Values": ["x"]}]}),
            "InvalidFilterKey",
            &format!(
                "The following filter key is not valid: {key}. Valid filter keys include: [Type, KeyId]."
            ),
        )
        .await;
    }
    let describe = |filters: Value| json!({ "ParameterFilters": filters });
    env.assert_refused(
        "DescribeParameters",
        json!({
            "Filters": [{"Key": "Name", "Values": ["test"]}],
            "ParameterFilters": [{"Key": "Name", "Values": ["test"]}],
        }),
        "ValidationException",
        "You can use either Filters or ParameterFilters in a single request.",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([{"Key": "Label", "Values": ["x"]}])),
        "InvalidFilterKey",
        "The following filter key is not valid: Label. Valid filter keys include: [Path, Name, Type, KeyId, Tier].",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([{"Key": "Name"}])),
        "InvalidFilterValue",
        "The following filter values are missing : null for filter key Name.",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([
            {"Key": "Name", "Values": ["test"]},
            {"Key": "Name", "Values": ["test test"]},
        ])),
        "InvalidFilterKey",
        "The following filter is duplicated in the request: Name. A request can contain only one occurrence of a specific filter.",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([{"Key": "Path", "Values": ["/aws", "/ssm"]}])),
        "ValidationException",
        "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). When using global parameters, please specify within a global namespace.",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([{"Key": "Path", "Option": "Equals", "Values": ["/test"]}])),
        "InvalidFilterOption",
        "The following filter option is not valid: Equals. Valid options include: [Recursive, OneLevel].",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([{"Key": "Name", "Option": "option", "Values": ["test"]}])),
        "InvalidFilterOption",
        "The following filter option is not valid: option. Valid options include: [BeginsWith, Equals].",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([{"Key": "Tier", "Values": ["test"]}])),
        "InvalidFilterValue",
        "The following filter value is not valid: test. Valid values include: [Standard, Advanced, Intelligent-Tiering].",
    )
    .await;
    env.assert_refused(
        "DescribeParameters",
        describe(json!([{"Key": "Type", "Values": ["test"]}])),
        "InvalidFilterValue",
        "The following filter value is not valid: test. Valid values include: [String, StringList, SecureString].",
    )
    .await;
    for path in ["/###", "//", "test"] {
        env.assert_refused(
            "DescribeParameters",
            describe(json!([{"Key": "Path", "Values": [path]}])),
            "ValidationException",
            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.",
        )
        .await;
    }
}

#[tokio::test]
async fn no_message_carries_a_secret() {
    let env = Env::new();
    let secret = "hunter2-very-secret";
    env.call(
        "PutParameter",
        json!({"Name": "/s", "Value": secret, "Type": "SecureString"}),
    )
    .await
    .unwrap();
    for body in [
        json!({"Name": "/s", "Value": secret, "Type": "SecureString"}),
        json!({"Name": "/s", "Value": secret, "Type": "String", "Overwrite": true}),
        json!({"Name": "/t", "Value": secret}),
    ] {
        let (_, message) = env.refused("PutParameter", body).await;
        assert!(!message.contains(secret), "{message}");
    }
}
