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

mod ec2 {
    //! RegisterEc2Instance over the in-memory ports, with documents signed
    //! by the test-only key whose certificate the fleet trusts.

    use super::*;
    use crate::fleet::instance_identity::IdentityCertificates;
    use crate::fleet::node::ResourceType;

    const ACCOUNT: &str = "000000000000";
    const INSTANCE: &str = "i-0123456789abcdef0";
    const TEST_CERT: &str = include_str!("../instance_identity/test-only-cert.pem");
    const TEST_KEY: &str = include_str!("../instance_identity/test-only-key.pem");

    fn pem_der(pem: &str) -> Vec<u8> {
        let body: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        B64.decode(body).unwrap()
    }

    fn rsa_sign(key_pem: &str, data: &[u8]) -> String {
        use aws_lc_rs::{rand::SystemRandom, signature};
        let key = signature::RsaKeyPair::from_pkcs8(&pem_der(key_pem)).unwrap();
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            data,
            &mut sig,
        )
        .unwrap();
        B64.encode(sig)
    }

    fn document(account: &str, region: &str, instance: &str) -> String {
        serde_json::to_string_pretty(&json!({
            "accountId": account, "architecture": "x86_64",
            "availabilityZone": format!("{region}a"), "imageId": "ami-0123456789abcdef0",
            "instanceId": instance, "instanceType": "t3.micro",
            "pendingTime": "2026-01-02T03:04:05Z", "privateIp": "10.0.0.12",
            "region": region, "version": "2017-09-30"
        }))
        .unwrap()
    }

    /// A request as the agent sends it: the document, IMDS's signature, and
    /// the node key's proof over both at `at`.
    fn request(doc: &str, imds_signature: &str, key: &NodeKey, at: f64) -> Value {
        let pk = key.public_key_base64();
        let proof = key.sign(&ec2_registration_message(at as i64, &pk, doc));
        json!({"InstanceIdentityDocument": doc, "InstanceIdentitySignature": imds_signature,
               "PublicKey": pk, "Timestamp": at as i64, "Signature": B64.encode(proof),
               "Hostname": "ip-10-0-0-12", "PlatformName": "Debian GNU/Linux",
               "PlatformVersion": "12", "AgentVersion": "0.1.0", "IPAddress": ""})
    }

    fn fleet() -> MemoryFleet {
        let fleet = MemoryFleet::trusting(
            IdentityCertificates::from_pem(TEST_CERT).unwrap(),
            &[ACCOUNT],
        );
        fleet.instance_tags.set(INSTANCE, &[("Role", "web")]);
        fleet
    }

    fn signed(doc: &str) -> String {
        rsa_sign(TEST_KEY, doc.as_bytes())
    }

    #[tokio::test]
    async fn an_instance_registers_by_its_identity_with_its_ec2_tags() {
        let fleet = fleet();
        let (key, _) = NodeKey::generate().unwrap();
        let doc = document(ACCOUNT, REGION, INSTANCE);
        let resp = register_ec2_instance(
            &fleet.context(),
            &request(&doc, &signed(&doc), &key, NOW),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(resp.instance_id, INSTANCE);
        assert_eq!(resp.region, REGION);
        assert_eq!(resp.command_signing_public_key, SIGNING_PUBLIC_KEY);
        assert_eq!(fleet.queues.urls(), [resp.queue_url.as_str()]);
        let node = fleet.nodes.node(INSTANCE).unwrap();
        assert_eq!(node.resource_type, ResourceType::EC2Instance);
        assert_eq!(node.activation_id, "");
        // The agent saw no address: the document's private one.
        assert_eq!(node.ip_address, "10.0.0.12");
        assert_eq!(node.tags.get("Role").map(String::as_str), Some("web"));
        let info = node.information(NOW, CONNECTION_LOST_SECONDS);
        let info = serde_json::to_value(info).unwrap();
        assert_eq!(info["ResourceType"], "EC2Instance");
        assert_eq!(info["SourceType"], "AWS::EC2::Instance");

        let listed = describe_instance_information(
            &fleet.context(),
            &json!({"Filters": [{"Key": "ResourceType", "Values": ["EC2Instance"]}]}),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(listed["InstanceInformationList"][0]["InstanceId"], INSTANCE);
        let none = describe_instance_information(
            &fleet.context(),
            &json!({"Filters": [{"Key": "ResourceType", "Values": ["ManagedInstance"]}]}),
            NOW,
        )
        .await
        .unwrap();
        assert_eq!(none["InstanceInformationList"], json!([]));
        let bad = describe_instance_information(
            &fleet.context(),
            &json!({"Filters": [{"Key": "ResourceType", "Values": ["Server"]}]}),
            NOW,
        )
        .await
        .unwrap_err();
        assert_eq!(bad.code(), "InvalidInstanceInformationFilterValue");
    }

    #[tokio::test]
    async fn the_same_key_again_refreshes_and_another_key_is_refused() {
        let fleet = fleet();
        let (key, _) = NodeKey::generate().unwrap();
        let doc = document(ACCOUNT, REGION, INSTANCE);
        let ctx = fleet.context();
        let first = register_ec2_instance(&ctx, &request(&doc, &signed(&doc), &key, NOW), NOW)
            .await
            .unwrap();
        // After a reboot: same key, a new agent version and address, a new tag.
        fleet.instance_tags.set(INSTANCE, &[("Role", "db")]);
        let mut again = request(&doc, &signed(&doc), &key, NOW + 60.0);
        again["AgentVersion"] = json!("0.2.0");
        again["IPAddress"] = json!("10.0.0.99");
        let second = register_ec2_instance(&ctx, &again, NOW + 60.0)
            .await
            .unwrap();
        assert_eq!(first, second);
        let node = fleet.nodes.node(INSTANCE).unwrap();
        assert_eq!(node.agent_version, "0.2.0");
        assert_eq!(node.ip_address, "10.0.0.99");
        assert_eq!(node.registration_date, NOW);
        assert_eq!(node.tags.get("Role").map(String::as_str), Some("db"));
        assert_eq!(fleet.queues.urls().len(), 1);

        // The same document presented with another key: a replay.
        let (thief, _) = NodeKey::generate().unwrap();
        let err = register_ec2_instance(&ctx, &request(&doc, &signed(&doc), &thief, NOW), NOW)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException");
        assert!(
            err.to_string()
                .contains("already registered with another key"),
            "{err}"
        );
        assert_eq!(
            fleet.nodes.node(INSTANCE).unwrap().public_key,
            key.public_key_base64()
        );

        // Once deregistered (an EC2 node may be), the instance registers anew.
        deregister_managed_instance(&ctx, &json!({"InstanceId": INSTANCE}))
            .await
            .unwrap();
        assert!(fleet.nodes.node(INSTANCE).is_none());
        register_ec2_instance(&ctx, &request(&doc, &signed(&doc), &thief, NOW), NOW)
            .await
            .unwrap();
        assert_eq!(
            fleet.nodes.node(INSTANCE).unwrap().public_key,
            thief.public_key_base64()
        );
    }

    #[tokio::test]
    async fn each_bad_registration_is_refused_and_registers_nothing() {
        let fleet = fleet();
        let ctx = fleet.context();
        let (key, _) = NodeKey::generate().unwrap();
        let doc = document(ACCOUNT, REGION, INSTANCE);
        let good = signed(&doc);
        let other_key_signature =
            include_str!("../instance_identity/test-only-document.other-key.sig");
        let real_doc = include_str!("../instance_identity/test-only-document.json");
        let tampered = doc.replace("10.0.0.12", "10.0.0.13");
        let foreign = document("111122223333", REGION, INSTANCE);
        let elsewhere = document(ACCOUNT, "eu-west-1", INSTANCE);
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "signature by another key",
                request(real_doc, other_key_signature, &key, NOW),
                "InvalidSignatureException",
            ),
            (
                "tampered document",
                request(&tampered, &good, &key, NOW),
                "InvalidSignatureException",
            ),
            (
                "missing signature",
                request(&doc, "", &key, NOW),
                "ValidationException",
            ),
            (
                "garbage signature",
                request(&doc, "not base64!", &key, NOW),
                "InvalidSignatureException",
            ),
            (
                "account not allowed",
                request(&foreign, &signed(&foreign), &key, NOW),
                "AccessDeniedException",
            ),
            (
                "another region",
                request(&elsewhere, &signed(&elsewhere), &key, NOW),
                "ValidationException",
            ),
            (
                "stale request",
                request(&doc, &good, &key, NOW - 3600.0),
                "InvalidSignatureException",
            ),
            (
                "not JSON",
                request("{", &signed("{"), &key, NOW),
                "ValidationException",
            ),
        ];
        for (what, body, code) in cases {
            let err = register_ec2_instance(&ctx, &body, NOW).await.unwrap_err();
            assert_eq!(err.code(), code, "{what}: {err}");
        }
        // The proof signed by a key other than the one registered.
        let (other, _) = NodeKey::generate().unwrap();
        let mut body = request(&doc, &good, &key, NOW);
        body["PublicKey"] = json!(other.public_key_base64());
        let err = register_ec2_instance(&ctx, &body, NOW).await.unwrap_err();
        assert_eq!(err.code(), "InvalidSignatureException");
        // Too long: refused before anything is read or hashed.
        let long = "x".repeat(5000);
        let err = register_ec2_instance(&ctx, &request(&long, &good, &key, NOW), NOW)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("'InstanceIdentityDocument'"),
            "{err}"
        );
        assert!(fleet.nodes.node(INSTANCE).is_none());
        assert!(fleet.queues.urls().is_empty());
    }

    #[tokio::test]
    async fn a_stack_that_cannot_read_its_certificates_says_so() {
        let fleet = MemoryFleet::default();
        let (key, _) = NodeKey::generate().unwrap();
        let doc = document(ACCOUNT, REGION, INSTANCE);
        let err = register_ec2_instance(
            &fleet.context(),
            &request(&doc, &signed(&doc), &key, NOW),
            NOW,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "AccessDeniedException");
        assert!(err.to_string().contains("Ec2IdentityCertificates"), "{err}");
    }

    #[tokio::test]
    async fn only_registered_ec2_nodes_among_ec2_ids_can_be_deregistered() {
        let fleet = fleet();
        let ctx = fleet.context();
        let (key, _) = NodeKey::generate().unwrap();
        let doc = document(ACCOUNT, REGION, INSTANCE);
        register_ec2_instance(&ctx, &request(&doc, &signed(&doc), &key, NOW), NOW)
            .await
            .unwrap();
        // Another EC2 id: SSM's own refusal, nothing read into it.
        let err = deregister_managed_instance(&ctx, &json!({"InstanceId": "i-0fedcba9876543210"}))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "ValidationException");
        assert!(fleet.nodes.node(INSTANCE).is_some());
    }
}
