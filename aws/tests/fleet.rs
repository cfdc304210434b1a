//! The fleet adapters against the local stack (`source .local/stack.env`).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use steward_aws::Stack;
use steward_aws::testing::{stack, unique};
use steward_core::channel::{Heartbeat, NodeKey};
use steward_core::clock::now_epoch;
use steward_core::fleet::ops;
use steward_core::fleet::{ActivationStore, NodeStore};
use steward_core::targets::TargetDirectory;

async fn activation(stack: &Stack, limit: i64, tags: Value) -> (String, String) {
    let resp = ops::create_activation(
        &stack.fleet().ports(),
        &json!({"DefaultInstanceName": "web", "IamRole": "StewardNode", "RegistrationLimit": limit, "Tags": tags}),
        now_epoch(),
    )
    .await
    .unwrap();
    (
        resp["ActivationId"].as_str().unwrap().to_string(),
        resp["ActivationCode"].as_str().unwrap().to_string(),
    )
}

async fn register(
    stack: &Stack,
    id: &str,
    code: &str,
) -> Result<ops::RegisterResponse, steward_core::SsmError> {
    let (key, _) = NodeKey::generate().unwrap();
    let body = json!({
        "ActivationId": id, "ActivationCode": code, "PublicKey": key.public_key_base64(),
        "Hostname": "host-1", "PlatformName": "Debian", "PlatformVersion": "12",
        "AgentVersion": "0.1.0", "IPAddress": "10.0.0.1"
    });
    ops::register(&stack.fleet().ports(), &body, now_epoch()).await
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn registration_takes_one_registration_applies_tags_and_creates_the_queue() {
    let stack = stack().await;
    let run = unique();
    let (id, code) = activation(&stack, 1, json!([{"Key": "run", "Value": run}])).await;

    // Two nodes race for the one registration: exactly one wins.
    let (a, b) = tokio::join!(register(&stack, &id, &code), register(&stack, &id, &code));
    let (won, lost) = match (a, b) {
        (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
        other => panic!("expected one registration to win, got {other:?}"),
    };
    assert_eq!(lost.code(), "InvalidActivation");
    assert!(lost.to_string().contains("create a new activation"));

    let act = stack.fleet().activations.get(&id).await.unwrap().unwrap();
    assert_eq!(act.registrations_count, 1);

    let node = stack
        .fleet()
        .nodes
        .get(&won.instance_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(node.name, "web");
    assert_eq!(node.tags.get("run"), Some(&run));
    assert_eq!(node.queue_url, won.queue_url);
    assert!(!won.command_signing_public_key.is_empty());
    assert_eq!(won.ingest_queue_url, stack.settings.ingest_queue_url);

    // The queue exists under its name, redriven to the node DLQ.
    let name = format!("{}{}", stack.settings.node_queue_prefix, won.instance_id);
    let url = stack
        .clients
        .sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(url.queue_url(), Some(won.queue_url.as_str()));
    let attrs = stack
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&won.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .unwrap();
    let redrive = attrs.attributes().unwrap().values().next().unwrap().clone();
    assert!(redrive.contains(&stack.settings.node_dlq_arn));

    // The activation's tags reach target resolution.
    let dir = &stack.fleet().directory;
    assert_eq!(
        dir.nodes_with_tag("run", &run).await.unwrap(),
        vec![won.instance_id.clone()]
    );
    assert!(
        dir.nodes_with_tag_key("run")
            .await
            .unwrap()
            .contains(&won.instance_id)
    );

    // A wrong code never registers, even with registrations left.
    let (id2, _) = activation(&stack, 5, json!([])).await;
    assert_eq!(
        register(&stack, &id2, "wrong-code-000000000")
            .await
            .unwrap_err()
            .code(),
        "InvalidActivation"
    );
    assert_eq!(
        stack
            .fleet()
            .activations
            .get(&id2)
            .await
            .unwrap()
            .unwrap()
            .registrations_count,
        0
    );
    deregister_all(&stack, &[&won.instance_id]).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn describe_instance_information_pages_and_filters() {
    let stack = stack().await;
    let run = unique();
    let (id, code) = activation(&stack, 7, json!([{"Key": "batch", "Value": run}])).await;
    let mut ids = BTreeSet::new();
    for _ in 0..7 {
        ids.insert(register(&stack, &id, &code).await.unwrap().instance_id);
    }
    let ctx = stack.fleet().ports();
    let describe = |body: Value| async move {
        ops::describe_instance_information(&ctx, &body, now_epoch()).await
    };

    // By tag, 5 per page.
    let first = describe(
        json!({"Filters": [{"Key": format!("tag:batch"), "Values": [run]}], "MaxResults": 5}),
    )
    .await
    .unwrap();
    assert_eq!(
        first["InstanceInformationList"].as_array().unwrap().len(),
        5
    );
    let token = first["NextToken"].as_str().unwrap().to_string();
    let second = describe(json!({"Filters": [{"Key": "tag:batch", "Values": [run]}], "MaxResults": 5, "NextToken": token}))
        .await
        .unwrap();
    assert!(second.get("NextToken").is_none());
    let seen: BTreeSet<String> = first["InstanceInformationList"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["InstanceInformationList"].as_array().unwrap())
        .map(|i| i["InstanceId"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, ids);
    let info = &first["InstanceInformationList"][0];
    assert_eq!(info["PingStatus"], "Online");
    assert_eq!(info["ResourceType"], "ManagedInstance");
    assert_eq!(info["SourceType"], "AWS::SSM::ManagedInstance");
    assert_eq!(info["ActivationId"], id.as_str());
    assert_eq!(info["IPAddress"], "10.0.0.1");

    // The whole fleet, page by page, includes all of them exactly once.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"MaxResults": 5});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = describe(body).await.unwrap();
        all.extend(
            page["InstanceInformationList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["InstanceId"].as_str().unwrap().to_string()),
        );
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let all_set: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(all_set.len(), all.len(), "a node appeared twice");
    assert!(ids.is_subset(&all_set));

    // Ids, legacy filter list, attribute filters.
    let two: Vec<String> = ids.iter().take(2).cloned().collect();
    let by_ids = describe(
        json!({"InstanceInformationFilterList": [{"key": "InstanceIds", "valueSet": two}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        by_ids["InstanceInformationList"].as_array().unwrap().len(),
        2
    );
    let by_activation = describe(json!({"Filters": [{"Key": "ActivationIds", "Values": [id]}, {"Key": "PingStatus", "Values": ["Online"]}]}))
        .await
        .unwrap();
    assert_eq!(
        by_activation["InstanceInformationList"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    let none = describe(json!({"Filters": [{"Key": "tag:batch", "Values": [run]}, {"Key": "PingStatus", "Values": ["ConnectionLost"]}]}))
        .await
        .unwrap();
    assert!(
        none["InstanceInformationList"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Refusals.
    assert_eq!(
        describe(json!({"MaxResults": 4})).await.unwrap_err().code(),
        "ValidationException"
    );
    assert_eq!(
        describe(json!({"NextToken": "garbage"}))
            .await
            .unwrap_err()
            .code(),
        "InvalidNextToken"
    );
    assert_eq!(
        describe(json!({"Filters": [{"Key": "Color", "Values": ["x"]}]}))
            .await
            .unwrap_err()
            .code(),
        "InvalidFilterKey"
    );
    assert_eq!(
        describe(json!({"Filters": [{"Key": "InstanceIds", "Values": ["nope"]}]}))
            .await
            .unwrap_err()
            .code(),
        "InvalidInstanceInformationFilterValue"
    );
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    deregister_all(&stack, &ids).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn tags_and_their_index_change_together() {
    let stack = stack().await;
    let (id, code) = activation(&stack, 1, json!([])).await;
    let node_id = register(&stack, &id, &code).await.unwrap().instance_id;
    let fleet = stack.fleet();
    let (ctx, nodes, dir) = (fleet.ports(), &fleet.nodes, &fleet.directory);
    let env = format!("env-{}", unique());
    let res = |extra: Value| {
        let mut b = json!({"ResourceType": "ManagedInstance", "ResourceId": node_id});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };

    ops::add_tags_to_resource(
        &ctx,
        &res(json!({"Tags": [{"Key": env, "Value": "dev"}, {"Key": "role", "Value": "web"}]})),
    )
    .await
    .unwrap();
    assert_eq!(
        dir.nodes_with_tag(&env, "dev").await.unwrap(),
        vec![node_id.clone()]
    );
    // A changed value moves the node in the index.
    ops::add_tags_to_resource(&ctx, &res(json!({"Tags": [{"Key": env, "Value": "prod"}]})))
        .await
        .unwrap();
    assert!(dir.nodes_with_tag(&env, "dev").await.unwrap().is_empty());
    assert_eq!(
        dir.nodes_with_tag(&env, "prod").await.unwrap(),
        vec![node_id.clone()]
    );
    assert_eq!(
        dir.nodes_with_tag_key(&env).await.unwrap(),
        vec![node_id.clone()]
    );
    let list = ops::list_tags_for_resource(&ctx, &res(json!({})))
        .await
        .unwrap();
    assert_eq!(
        list["TagList"],
        json!([{"Key": env, "Value": "prod"}, {"Key": "role", "Value": "web"}])
    );

    ops::remove_tags_from_resource(&ctx, &res(json!({"TagKeys": [env]})))
        .await
        .unwrap();
    assert!(dir.nodes_with_tag(&env, "prod").await.unwrap().is_empty());
    assert!(dir.nodes_with_tag_key(&env).await.unwrap().is_empty());
    let list = ops::list_tags_for_resource(&ctx, &res(json!({})))
        .await
        .unwrap();
    assert_eq!(list["TagList"], json!([{"Key": "role", "Value": "web"}]));

    // Refusals change nothing.
    let err = ops::add_tags_to_resource(
        &ctx,
        &res(json!({"Tags": [{"Key": "aws:x", "Value": "1"}]})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "ValidationException");
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let err = ops::add_tags_to_resource(&ctx, &res(json!({"Tags": many})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "TooManyTagsError");
    let bad_type = json!({"ResourceType": "Document", "ResourceId": node_id, "Tags": [{"Key": "a", "Value": "b"}]});
    assert_eq!(
        ops::add_tags_to_resource(&ctx, &bad_type)
            .await
            .unwrap_err()
            .code(),
        "InvalidResourceType"
    );
    let missing = json!({"ResourceType": "ManagedInstance", "ResourceId": "mi-00000000000000000", "Tags": [{"Key": "a", "Value": "b"}]});
    assert_eq!(
        ops::add_tags_to_resource(&ctx, &missing)
            .await
            .unwrap_err()
            .code(),
        "InvalidResourceId"
    );
    let list = ops::list_tags_for_resource(&ctx, &res(json!({})))
        .await
        .unwrap();
    assert_eq!(list["TagList"].as_array().unwrap().len(), 1);

    // Heartbeats move forward only, and only for known nodes.
    let hb = Heartbeat {
        agent_version: "0.2.0".into(),
        platform_type: "Linux".into(),
        platform_name: "Debian".into(),
        platform_version: "13".into(),
        ip_address: "10.0.0.9".into(),
        computer_name: "host-9".into(),
    };
    let t = now_epoch() + 1.0;
    assert!(nodes.record_heartbeat(&node_id, &hb, t).await.unwrap());
    let old = Heartbeat {
        agent_version: "0.0.1".into(),
        ..hb.clone()
    };
    assert!(
        nodes
            .record_heartbeat(&node_id, &old, t - 100.0)
            .await
            .unwrap()
    );
    let n = nodes.get(&node_id).await.unwrap().unwrap();
    assert_eq!(n.agent_version, "0.2.0");
    assert_eq!(n.last_ping_date_time, t);
    assert!(
        !nodes
            .record_heartbeat("mi-00000000000000000", &hb, t)
            .await
            .unwrap()
    );
    assert!(nodes.get("mi-00000000000000000").await.unwrap().is_none());
    deregister_all(&stack, &[&node_id]).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn activations_are_described_without_their_code_and_deleted() {
    let stack = stack().await;
    let ctx = stack.fleet().ports();
    let store = &stack.fleet().activations;
    let name = format!("n-{}", unique());
    let resp = ops::create_activation(
        &ctx,
        &json!({"DefaultInstanceName": name, "IamRole": "R", "RegistrationLimit": 3, "Description": "d"}),
        now_epoch(),
    )
    .await
    .unwrap();
    let id = resp["ActivationId"].as_str().unwrap().to_string();
    let code = resp["ActivationCode"].as_str().unwrap().to_string();
    let described = ops::describe_activations(
        &ctx,
        &json!({"Filters": [{"FilterKey": "ActivationIds", "FilterValues": [id]}]}),
        now_epoch(),
    )
    .await
    .unwrap();
    let list = described["ActivationList"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["DefaultInstanceName"], name.as_str());
    assert_eq!(list[0]["RegistrationLimit"], 3);
    assert_eq!(list[0]["Expired"], false);
    assert!(
        !described.to_string().contains(&code),
        "the activation code leaked"
    );
    // Filtered by name, across pages, it is found exactly once.
    let mut found = 0;
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Filters": [{"FilterKey": "DefaultInstanceName", "FilterValues": [name]}], "MaxResults": 10});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let page = ops::describe_activations(&ctx, &body, now_epoch())
            .await
            .unwrap();
        found += page["ActivationList"].as_array().unwrap().len();
        match page.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(found, 1);
    ops::delete_activation(&ctx, &json!({"ActivationId": id}))
        .await
        .unwrap();
    assert!(store.get(&id).await.unwrap().is_none());
    let again = ops::delete_activation(&ctx, &json!({"ActivationId": id}))
        .await
        .unwrap_err();
    assert_eq!(again.code(), "InvalidActivationId");
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn node_credentials_need_the_nodes_signature_and_a_fresh_timestamp() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let stack = stack().await;
    let (id, code) = activation(&stack, 1, json!([])).await;
    let (key, _) = NodeKey::generate().unwrap();
    let ctx = stack.fleet().ports();
    let reg = ops::register(
        &ctx,
        &json!({"ActivationId": id, "ActivationCode": code, "PublicKey": key.public_key_base64(), "Hostname": "h"}),
        now_epoch(),
    )
    .await
    .unwrap();
    let node = reg.instance_id;
    let ask = |ts: i64, signer: &NodeKey| {
        let sig = b64.encode(
            signer.sign(&steward_core::channel::credentials_request_message(
                &node, ts,
            )),
        );
        json!({"InstanceId": node, "Timestamp": ts, "Signature": sig})
    };
    let now = now_epoch() as i64;
    let creds = ops::node_credentials(&ctx, &ask(now, &key), now_epoch())
        .await
        .unwrap();
    assert!(!creds["AccessKeyId"].as_str().unwrap().is_empty());
    assert!(!creds["SessionToken"].as_str().unwrap().is_empty());
    assert!(creds["Expiration"].as_f64().unwrap() > now_epoch());

    let (other, _) = NodeKey::generate().unwrap();
    let err = ops::node_credentials(&ctx, &ask(now, &other), now_epoch())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    let err = ops::node_credentials(&ctx, &ask(now - 600, &key), now_epoch())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert!(err.to_string().contains("clock"));
    deregister_all(&stack, &[&node]).await;
}

/// Removes nodes a test registered, so the adapter tests leave no dead
/// nodes behind either.
async fn deregister_all(stack: &Stack, ids: &[&str]) {
    for id in ids {
        let body = json!({ "InstanceId": id });
        match ops::deregister_managed_instance(&stack.fleet().ports(), &body).await {
            Ok(_) => {}
            Err(e) if e.code() == "InvalidInstanceId" => {}
            Err(e) => panic!("cannot deregister {id}: {e}"),
        }
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn deregistration_removes_the_queue_the_key_the_tag_index_and_the_records() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::collections::HashMap;
    let stack = stack().await;
    let run = unique();
    let (id, code) = activation(&stack, 2, json!([{"Key": "run", "Value": run}])).await;
    let node = register(&stack, &id, &code).await.unwrap();
    let kept = register(&stack, &id, &code).await.unwrap();
    let (node_id, kept_id) = (node.instance_id.clone(), kept.instance_id.clone());
    let fleet = stack.fleet();
    let ctx = fleet.ports();
    ops::add_tags_to_resource(
        &ctx,
        &json!({"ResourceType": "ManagedInstance", "ResourceId": node_id,
                "Tags": [{"Key": "role", "Value": run}]}),
    )
    .await
    .unwrap();

    // One record of each per-node kind, for both nodes.
    let s = |v: &str| AttributeValue::S(v.to_string());
    let settings = &stack.settings;
    let records = |who: &str| {
        [
            (
                settings.inventory_table.clone(),
                HashMap::from([
                    ("InstanceId".to_string(), s(who)),
                    ("TypeName".to_string(), s("AWS:Application")),
                ]),
            ),
            (
                settings.compliance_table.clone(),
                HashMap::from([
                    ("ResourceId".to_string(), s(who)),
                    ("ComplianceType".to_string(), s("Custom:Deregistration")),
                ]),
            ),
            (
                settings.patch_states_table.clone(),
                HashMap::from([
                    ("InstanceId".to_string(), s(who)),
                    ("Key".to_string(), s("state")),
                ]),
            ),
        ]
    };
    let db = &stack.clients.dynamodb;
    for (table, item) in records(&node_id).into_iter().chain(records(&kept_id)) {
        db.put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
    let exists = |table: String, key: HashMap<String, AttributeValue>| async move {
        db.get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .is_some()
    };
    let node_ref = node_id.as_str();
    let index_rows = |tag_key: String| async move {
        db.query()
            .table_name(&settings.tag_index_table)
            .key_condition_expression("TagKey = :k AND ResourceId = :r")
            .expression_attribute_values(":k", s(&tag_key))
            .expression_attribute_values(":r", s(node_ref))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .count
    };
    assert_eq!(
        index_rows(format!("ManagedInstance|role|{run}")).await,
        1,
        "the index holds the node before"
    );

    let body = json!({ "InstanceId": node_id });
    assert_eq!(
        ops::deregister_managed_instance(&ctx, &body).await.unwrap(),
        json!({})
    );

    // The node, and with it its public key, is gone; the other stays.
    assert!(fleet.nodes.get(&node_id).await.unwrap().is_none());
    assert!(fleet.nodes.get(&kept_id).await.unwrap().is_some());
    // Its queue is really deleted.
    let name = format!("{}{}", settings.node_queue_prefix, node_id);
    let lookup = stack
        .clients
        .sqs
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await;
    assert!(lookup.is_err(), "queue {name} still exists");
    let kept_queue = format!("{}{}", settings.node_queue_prefix, kept_id);
    assert!(
        stack
            .clients
            .sqs
            .get_queue_url()
            .queue_name(&kept_queue)
            .send()
            .await
            .is_ok()
    );
    // Every index row of its tags is gone: tag targeting no longer finds it.
    for tag_key in [
        format!("ManagedInstance|role|{run}"),
        "ManagedInstance|role".to_string(),
        format!("ManagedInstance|run|{run}"),
        "ManagedInstance|run".to_string(),
    ] {
        assert_eq!(index_rows(tag_key.clone()).await, 0, "{tag_key}");
    }
    let dir = &fleet.directory;
    assert_eq!(
        dir.nodes_with_tag("run", &run).await.unwrap(),
        vec![kept_id.clone()]
    );
    assert!(
        dir.existing_nodes(std::slice::from_ref(&node_id))
            .await
            .unwrap()
            .is_empty()
    );
    // Its records are gone; the other node's are not.
    for (table, key) in records(&node_id) {
        assert!(!exists(table.clone(), key).await, "{table}");
    }
    for (table, key) in records(&kept_id) {
        assert!(exists(table.clone(), key).await, "{table}");
    }
    // A heartbeat of it changes nothing now.
    let hb = Heartbeat {
        agent_version: "0.1.0".into(),
        platform_type: "Linux".into(),
        platform_name: "Debian".into(),
        platform_version: "12".into(),
        ip_address: "10.0.0.1".into(),
        computer_name: "host-1".into(),
    };
    assert!(
        !fleet
            .nodes
            .record_heartbeat(&node_id, &hb, now_epoch())
            .await
            .unwrap()
    );

    // A repeat is InvalidInstanceId, as SSM answers, and changes nothing.
    let again = ops::deregister_managed_instance(&ctx, &body)
        .await
        .unwrap_err();
    assert_eq!(again.code(), "InvalidInstanceId");
    assert!(fleet.nodes.get(&kept_id).await.unwrap().is_some());

    for (table, key) in records(&kept_id) {
        db.delete_item()
            .table_name(table)
            .set_key(Some(key))
            .send()
            .await
            .unwrap();
    }
    deregister_all(&stack, &[&kept_id]).await;
}
