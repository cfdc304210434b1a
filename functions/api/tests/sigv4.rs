//! The api function's SigV4 check against the local stack, with requests
//! signed by `aws-sigv4` as an SDK signs them, using the bootstrap admin key
//! that provisioning wrote to `.local/aws/config`.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::testing::{admin_key, signed, signed_at, stack, unique};
use steward_fn_api::auth::{MAX_SKEW, parse_amz_date};

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

async fn delete_activation(stack: &Stack, id: &str, akid: &str, secret: &str) {
    let body = json!({"ActivationId": id});
    let (status, _) = call(stack, signed("DeleteActivation", &body, akid, secret)).await;
    assert_eq!(status, 200);
}

/// A CreateActivation body whose name no other run uses, and that name.
fn new_activation(prefix: &str) -> (String, Value) {
    let name = format!("{prefix}-{}", unique());
    let body =
        json!({"DefaultInstanceName": name, "IamRole": "StewardNode", "RegistrationLimit": 2});
    (name, body)
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn signed_requests_are_accepted_and_others_refused_with_nothing_done() {
    let stack = stack().await;
    let (akid, secret) = admin_key();
    let (name, create) = new_activation("sigv4");

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
    let (status, body) = call(&stack, unsigned).await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "MissingAuthenticationToken");

    // A body changed after signing.
    let mut tampered = signed("CreateActivation", &create, &akid, &secret);
    *tampered.body_mut() = Bytes::from(
        json!({"DefaultInstanceName": name, "IamRole": "x", "RegistrationLimit": 1000}).to_string(),
    );
    let (status, body) = call(&stack, tampered).await;
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidSignatureException");
    assert_eq!(
        body["message"],
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );

    assert_eq!(activations_named(&stack, &name, &akid, &secret).await, 0);

    // Correctly signed: created, once.
    let (status, body) = call(&stack, signed("CreateActivation", &create, &akid, &secret)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["ActivationCode"].as_str().unwrap().len() >= 20);
    assert_eq!(activations_named(&stack, &name, &akid, &secret).await, 1);
    let id = body["ActivationId"].as_str().unwrap();
    delete_activation(&stack, id, &akid, &secret).await;
}

/// The present, `seconds` away (negative: in the past).
fn from_now(seconds: i64) -> SystemTime {
    let d = Duration::from_secs(seconds.unsigned_abs());
    if seconds < 0 {
        SystemTime::now() - d
    } else {
        SystemTime::now() + d
    }
}

/// `t` in whole seconds, as an `X-Amz-Date` carries it.
fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

/// Half a minute past SigV4's 15 either way: a margin far wider than a call takes.
const JUST_PAST_THE_ALLOWANCE: i64 = 15 * 60 + 30;

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_request_signed_more_than_15_minutes_off_is_refused_both_ways() {
    let stack = stack().await;
    let (akid, secret) = admin_key();
    let (name, create) = new_activation("sigv4-skew");

    // AWS's words: "<lead>: <request time> is <relation> <bound> (<server
    // time> <sign> 15 min.)", the bound being the server's time 15 minutes off.
    for (offset, lead, relation, sign) in [
        (
            -JUST_PAST_THE_ALLOWANCE,
            "Signature expired",
            "now earlier than",
            "-",
        ),
        (
            JUST_PAST_THE_ALLOWANCE,
            "Signature not yet current",
            "still later than",
            "+",
        ),
    ] {
        let req = signed_at(
            "CreateActivation",
            &create,
            &akid,
            &secret,
            from_now(offset),
        );
        let amz_date = req.headers()["x-amz-date"].to_str().unwrap().to_string();
        let before = whole_seconds(SystemTime::now());
        let (status, body) = call(&stack, req).await;
        let after = SystemTime::now();
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["__type"], "InvalidSignatureException");
        let message = body["message"].as_str().unwrap();
        let rest = message
            .strip_prefix(&format!("{lead}: {amz_date} is {relation} "))
            .unwrap_or_else(|| panic!("{message}"));
        let (bound, rest) = rest.split_once(" (").unwrap();
        let (server_now, rest) = rest.split_once(' ').unwrap();
        assert_eq!(rest, format!("{sign} 15 min.)"), "{message}");
        let bound = parse_amz_date(bound).unwrap();
        let server_now = parse_amz_date(server_now).unwrap();
        // The server's time is the present one, read during the call.
        assert!(before <= server_now && server_now <= after, "{message}");
        let expected = if sign == "-" {
            server_now - MAX_SKEW
        } else {
            server_now + MAX_SKEW
        };
        assert_eq!(bound, expected, "{message}");
    }
    // Refused before anything was done.
    assert_eq!(activations_named(&stack, &name, &akid, &secret).await, 0);
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_request_signed_inside_the_15_minutes_is_accepted_both_ways() {
    let stack = stack().await;
    let (akid, secret) = admin_key();
    let (_, create) = new_activation("sigv4-skew");
    let inside = 15 * 60 - 30;
    for offset in [-inside, inside] {
        let req = signed_at(
            "CreateActivation",
            &create,
            &akid,
            &secret,
            from_now(offset),
        );
        let (status, body) = call(&stack, req).await;
        assert_eq!(status, 200, "{offset}: {body}");
        let id = body["ActivationId"].as_str().unwrap();
        delete_activation(&stack, id, &akid, &secret).await;
    }
}
