//! The api function's SigV4 check against the local stack, with requests
//! signed by `aws-sigv4` as an SDK signs them, using the bootstrap admin key
//! that provisioning wrote to `.local/aws/config`.

use bytes::Bytes;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::testing::{admin_key, signed, stack};

async fn call(stack: &Stack, req: http::Request<Bytes>) -> (u16, Value) {
    let resp = steward_fn_api::handle(stack, req).await;
    let status = resp.status().as_u16();
    (status, serde_json::from_slice(resp.body()).unwrap())
}

async fn activations_named(stack: &Stack, name: &str, akid: &str, secret: &str) -> usize {
    let mut found = 0;
    let mut token: Option<String> = None;
    loop {
        let mut body =
            json!({"Filters": [{"FilterKey": "DefaultInstanceName", "FilterValues": [name]}]});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let (status, page) = call(stack, signed("DescribeActivations", &body, akid, secret)).await;
        assert_eq!(status, 200, "{page}");
        found += page["ActivationList"].as_array().unwrap().len();
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => return found,
        }
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn signed_requests_are_accepted_and_others_refused_with_nothing_done() {
    let stack = stack().await;
    let (akid, secret) = admin_key();
    let name = format!("sigv4-{}", &steward_core::ids::new_command_id()[..8]);
    let create =
        json!({"DefaultInstanceName": name, "IamRole": "StewardNode", "RegistrationLimit": 2});

    // A wrong secret: InvalidSignatureException, and nothing created.
    let (status, body) = call(
        &stack,
        signed("CreateActivation", &create, &akid, "not-the-secret"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidSignatureException");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("The request signature we calculated does not match")
    );

    // An unknown key.
    let (status, body) = call(
        &stack,
        signed("CreateActivation", &create, "AKSTAAAAAAAAAAAAAAAA", &secret),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnrecognizedClientException");
    assert_eq!(
        body["message"],
        "The security token included in the request is invalid."
    );

    // No signature at all.
    let mut unsigned = signed("CreateActivation", &create, &akid, &secret);
    unsigned.headers_mut().remove("authorization");
    let (_, body) = call(&stack, unsigned).await;
    assert_eq!(body["__type"], "MissingAuthenticationToken");

    // A body changed after signing.
    let mut tampered = signed("CreateActivation", &create, &akid, &secret);
    *tampered.body_mut() = Bytes::from(
        json!({"DefaultInstanceName": name, "IamRole": "x", "RegistrationLimit": 1000}).to_string(),
    );
    let (_, body) = call(&stack, tampered).await;
    assert_eq!(body["__type"], "InvalidSignatureException");

    assert_eq!(activations_named(&stack, &name, &akid, &secret).await, 0);

    // Correctly signed: created, once.
    let (status, body) = call(&stack, signed("CreateActivation", &create, &akid, &secret)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["ActivationCode"].as_str().unwrap().len() >= 20);
    assert_eq!(activations_named(&stack, &name, &akid, &secret).await, 1);
    let id = body["ActivationId"].as_str().unwrap();
    let (status, _) = call(
        &stack,
        signed(
            "DeleteActivation",
            &json!({"ActivationId": id}),
            &akid,
            &secret,
        ),
    )
    .await;
    assert_eq!(status, 200);
}
