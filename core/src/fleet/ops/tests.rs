//! The fleet operations over the in-memory ports.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use super::*;
use crate::channel::{NodeKey, credentials_request_message};
use crate::fleet::memory::{
    CONNECTION_LOST_SECONDS, INGEST_QUEUE_ARN, INGEST_QUEUE_URL, MemoryFleet, REGION,
    SIGNING_PUBLIC_KEY,
};

const NOW: f64 = 1_700_000_000.0;

async fn activation(fleet: &MemoryFleet, limit: i64) -> (String, String) {
    let resp = create_activation(
        &fleet.context(),
        &json!({"DefaultInstanceName": "web", "IamRole": "StewardNode",
                "RegistrationLimit": limit, "Tags": [{"Key": "env", "Value": "prod"}]}),
        NOW,
    )
    .await
    .unwrap();
    (
        resp["ActivationId"].as_str().unwrap().into(),
        resp["ActivationCode"].as_str().unwrap().into(),
    )
}

fn registration(id: &str, code: &str, key: &NodeKey) -> Value {
    json!({"ActivationId": id, "ActivationCode": code,
           "PublicKey": key.public_key_base64(), "Hostname": "host-1"})
}

async fn registered(fleet: &MemoryFleet) -> (String, NodeKey) {
    let (id, code) = activation(fleet, 1).await;
    let (key, _) = NodeKey::generate().unwrap();
    let resp = register(&fleet.context(), &registration(&id, &code, &key), NOW)
        .await
        .unwrap();
    (resp.instance_id, key)
}

#[tokio::test]
async fn registration_makes_the_queue_and_the_node_with_the_activations_tags() {
    let fleet = MemoryFleet::default();
    let (id, code) = activation(&fleet, 1).await;
    let (key, _) = NodeKey::generate().unwrap();
    let resp = register(&fleet.context(), &registration(&id, &code, &key), NOW)
        .await
        .unwrap();
    assert_eq!(resp.ingest_queue_url, INGEST_QUEUE_URL);
    assert_eq!(resp.region, REGION);
    assert_eq!(resp.command_signing_public_key, SIGNING_PUBLIC_KEY);
    assert_eq!(fleet.queues.urls(), [resp.queue_url.as_str()]);
    let node = fleet.nodes.node(&resp.instance_id).unwrap();
    assert_eq!(node.activation_id, id);
    assert_eq!(node.computer_name, "host-1");
    assert_eq!(node.tags.get("env").map(String::as_str), Some("prod"));

    // A wrong code is refused before any queue is made.
    let wrong = registration(&id, "not-the-code", &key);
    let err = register(&fleet.context(), &wrong, NOW).await.unwrap_err();
    assert_eq!(err.code(), "InvalidActivation");
    assert_eq!(fleet.queues.urls().len(), 1);
}

#[tokio::test]
async fn a_node_gets_credentials_for_its_own_queue_only_with_its_own_signature() {
    let fleet = MemoryFleet::default();
    let (instance_id, key) = registered(&fleet).await;
    let ts = NOW as i64;
    let signed_by = |k: &NodeKey, ts: i64| {
        let sig = B64.encode(k.sign(&credentials_request_message(&instance_id, ts)));
        json!({"InstanceId": instance_id, "Timestamp": ts, "Signature": sig})
    };
    let creds = node_credentials(&fleet.context(), &signed_by(&key, ts), NOW)
        .await
        .unwrap();
    assert_eq!(creds["SessionToken"], "token");
    let issued = fleet.credentials.issued();
    assert_eq!(issued.len(), 1);
    let (session, policy, seconds) = &issued[0];
    assert_eq!(session, &instance_id);
    assert_eq!(seconds, &NODE_CREDENTIALS_SECONDS);
    let node = fleet.nodes.node(&instance_id).unwrap();
    assert_eq!(
        policy,
        &node_session_policy(&node.queue_arn, INGEST_QUEUE_ARN)
    );

    let (stranger, _) = NodeKey::generate().unwrap();
    let forged = node_credentials(&fleet.context(), &signed_by(&stranger, ts), NOW).await;
    assert_eq!(forged.unwrap_err().code(), "InvalidSignatureException");
    let stale = ts - MAX_CLOCK_SKEW_SECONDS - 1;
    let late = node_credentials(&fleet.context(), &signed_by(&key, stale), NOW).await;
    assert!(late.unwrap_err().to_string().contains("Signature expired"));
    assert_eq!(fleet.credentials.issued().len(), 1);
}

#[tokio::test]
async fn tags_change_and_narrow_the_instance_information() {
    let fleet = MemoryFleet::default();
    let (instance_id, _) = registered(&fleet).await;
    let ctx = fleet.context();
    let resource = |extra: Value| {
        let mut body = json!({"ResourceType": "ManagedInstance", "ResourceId": instance_id});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        body
    };
    add_tags_to_resource(
        &ctx,
        &resource(json!({"Tags": [{"Key": "team", "Value": "a"}]})),
    )
    .await
    .unwrap();
    remove_tags_from_resource(&ctx, &resource(json!({"TagKeys": ["env"]})))
        .await
        .unwrap();
    let listed = list_tags_for_resource(&ctx, &resource(json!({})))
        .await
        .unwrap();
    assert_eq!(listed["TagList"], json!([{"Key": "team", "Value": "a"}]));

    let by_tag = |value: &str| json!({"Filters": [{"Key": "tag:team", "Values": [value]}]});
    let found = describe_instance_information(&ctx, &by_tag("a"), NOW)
        .await
        .unwrap();
    let list = found["InstanceInformationList"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["InstanceId"], json!(instance_id));
    assert_eq!(list[0]["PingStatus"], "Online");
    let none = describe_instance_information(&ctx, &by_tag("b"), NOW)
        .await
        .unwrap();
    assert_eq!(none["InstanceInformationList"], json!([]));

    // Past the context's threshold without a heartbeat.
    let later = NOW + CONNECTION_LOST_SECONDS as f64 + 1.0;
    let lost = describe_instance_information(&ctx, &json!({}), later)
        .await
        .unwrap();
    assert_eq!(
        lost["InstanceInformationList"][0]["PingStatus"],
        "ConnectionLost"
    );
}

#[tokio::test]
async fn activations_are_described_in_pages_and_deleted_once() {
    let fleet = MemoryFleet::default();
    let (first, _) = activation(&fleet, 1).await;
    let (second, _) = activation(&fleet, 2).await;
    let ctx = fleet.context();
    let page = describe_activations(&ctx, &json!({"MaxResults": 1}), NOW)
        .await
        .unwrap();
    assert_eq!(page["ActivationList"].as_array().unwrap().len(), 1);
    let rest = describe_activations(&ctx, &json!({"NextToken": page["NextToken"]}), NOW)
        .await
        .unwrap();
    let mut seen = vec![
        page["ActivationList"][0]["ActivationId"].clone(),
        rest["ActivationList"][0]["ActivationId"].clone(),
    ];
    seen.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
    let mut expected = vec![json!(first), json!(second)];
    expected.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
    assert_eq!(seen, expected);

    delete_activation(&ctx, &json!({"ActivationId": first}))
        .await
        .unwrap();
    assert!(fleet.activations.activation(&first).is_none());
    let again = delete_activation(&ctx, &json!({"ActivationId": first})).await;
    assert_eq!(again.unwrap_err().code(), "InvalidActivationId");
}

#[tokio::test]
async fn deregistration_removes_the_node_its_queue_tags_and_records() {
    let fleet = MemoryFleet::default();
    let (instance_id, key) = registered(&fleet).await;
    let (other, _) = registered(&fleet).await;
    let ctx = fleet.context();
    let queue = fleet.nodes.node(&instance_id).unwrap().queue_url;
    let body = json!({"InstanceId": instance_id});

    assert_eq!(
        deregister_managed_instance(&ctx, &body).await.unwrap(),
        json!({})
    );
    assert!(fleet.nodes.node(&instance_id).is_none());
    assert!(!fleet.queues.urls().contains(&queue));
    assert_eq!(
        fleet.queues.urls().len(),
        1,
        "the other node keeps its queue"
    );
    assert!(fleet.nodes.node(&other).is_some());
    assert!(fleet.nodes.forgotten().contains(&instance_id));

    // Gone from the listing and from tag targeting.
    let listed = describe_instance_information(&ctx, &json!({}), NOW)
        .await
        .unwrap();
    let ids: Vec<&str> = listed["InstanceInformationList"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["InstanceId"].as_str())
        .collect();
    assert_eq!(ids, [other.as_str()]);
    use crate::targets::TargetDirectory;
    assert_eq!(
        fleet.nodes.nodes_with_tag("env", "prod").await.unwrap(),
        std::slice::from_ref(&other)
    );

    // Its key no longer gets credentials, and says why.
    let ts = NOW as i64;
    let sig = B64.encode(key.sign(&credentials_request_message(&instance_id, ts)));
    let ask = json!({"InstanceId": instance_id, "Timestamp": ts, "Signature": sig});
    let refused = node_credentials(&ctx, &ask, NOW).await.unwrap_err();
    assert_eq!(refused.code(), "InvalidInstanceId");
    assert!(refused.to_string().contains("Not existing InstanceId"));

    // A second call: the node is gone, as SSM answers.
    let again = deregister_managed_instance(&ctx, &body).await.unwrap_err();
    assert_eq!(again.code(), "InvalidInstanceId");
    assert!(again.to_string().contains(&instance_id));
}

#[tokio::test]
async fn deregistration_refuses_what_is_not_a_registered_managed_node() {
    let fleet = MemoryFleet::default();
    let (instance_id, _) = registered(&fleet).await;
    let ctx = fleet.context();
    let cases = [
        (
            json!({"InstanceId": "mi-0123456789abcdef0"}),
            "InvalidInstanceId",
        ),
        (
            json!({"InstanceId": "i-0123456789abcdef0"}),
            "ValidationException",
        ),
        (
            json!({"InstanceId": "eks_c:cluster-1_0123456789abcdefg"}),
            "InvalidInstanceId",
        ),
        (
            json!({"InstanceId": "mi-0123456789ABCDEF0"}),
            "ValidationException",
        ),
        (json!({"InstanceId": "not-an-id"}), "ValidationException"),
        (json!({}), "ValidationException"),
    ];
    for (body, expected) in cases {
        let err = deregister_managed_instance(&ctx, &body).await.unwrap_err();
        assert_eq!(err.code(), expected, "{body}");
    }
    // Nothing changed.
    assert!(fleet.nodes.node(&instance_id).is_some());
    assert_eq!(fleet.queues.urls().len(), 1);
    assert!(fleet.nodes.forgotten().is_empty());
}

#[tokio::test]
async fn deregistration_reads_again_when_the_tags_change_under_it() {
    let fleet = MemoryFleet::default();
    let (instance_id, _) = registered(&fleet).await;
    fleet.nodes.retag_on_deregister();
    deregister_managed_instance(&fleet.context(), &json!({"InstanceId": instance_id}))
        .await
        .unwrap();
    assert!(fleet.nodes.node(&instance_id).is_none());
    use crate::targets::TargetDirectory;
    assert!(
        fleet
            .nodes
            .nodes_with_tag_key("late")
            .await
            .unwrap()
            .is_empty()
    );
}
