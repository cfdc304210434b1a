//! EC2 instances' nodes and their EC2 tags against the local stack
//! (`source .local/stack.env`; LocalStack must serve EC2).

use std::collections::BTreeMap;

use steward_aws::Stack;
use steward_aws::associations::AssociationTable;
use steward_aws::instance_tags::Ec2InstanceTags;
use steward_aws::nodes::node_to_item;
use steward_aws::testing::{
    drop_table, ec2_instance, stack, table_like, terminate_ec2_instance, unique, with_settings,
};
use steward_core::associations::ports::AssociationStore;
use steward_core::clock::now_epoch;
use steward_core::fleet::node::ResourceType;
use steward_core::fleet::{InstanceTags, Node, NodeStore};
use steward_core::targets::TargetDirectory;

/// The stack over nodes, tag index and associations tables of the calling
/// test's own: the running control plane (its association tick consumes
/// "node changed" markers) never sees them. Returns the tables too.
async fn own_tables(stack: &Stack) -> (Stack, Vec<String>) {
    let nodes = table_like(stack, &stack.settings.nodes_table).await;
    let index = table_like(stack, &stack.settings.tag_index_table).await;
    let associations = table_like(stack, &stack.settings.associations_table).await;
    let own = with_settings(stack, |s| {
        s.nodes_table = nodes.clone();
        s.tag_index_table = index.clone();
        s.associations_table = associations.clone();
    });
    (own, vec![nodes, index, associations])
}

async fn drop_tables(stack: &Stack, tables: &[String]) {
    for t in tables {
        drop_table(stack, t).await;
    }
}

/// An EC2 instance id no other run uses.
fn instance_id() -> String {
    let hex: String = steward_core::ids::new_command_id()
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(17)
        .collect();
    format!("i-{hex}")
}

fn ec2_node(id: &str, public_key: &str, tags: &[(&str, &str)], at: f64) -> Node {
    Node {
        instance_id: id.into(),
        resource_type: ResourceType::EC2Instance,
        activation_id: String::new(),
        name: String::new(),
        iam_role: String::new(),
        registration_date: at,
        last_ping_date_time: at,
        agent_version: "0.1.0".into(),
        platform_type: "Linux".into(),
        platform_name: "Amazon Linux".into(),
        platform_version: "2023".into(),
        computer_name: "ip-10-0-0-1".into(),
        ip_address: "10.0.0.1".into(),
        public_key: public_key.into(),
        queue_url: format!("http://queue/{id}"),
        queue_arn: format!("arn:aws:sqs:us-east-1:000000000000:{id}"),
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tags_version: 0,
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn an_ec2_instance_is_registered_once_with_its_tag_index_and_marker() {
    let shared = stack().await;
    let (stack, tables) = own_tables(&shared).await;
    let fleet = stack.fleet();
    let id = instance_id();
    let run = unique();
    let now = now_epoch();
    let node = ec2_node(&id, "key-1", &[("run", &run), ("role", "web")], now);

    assert!(fleet.nodes.register_instance(&node, now).await.unwrap());
    let stored = fleet.nodes.get(&id).await.unwrap().unwrap();
    assert_eq!(stored, node);
    assert_eq!(stored.resource_type, ResourceType::EC2Instance);
    // Its tags are in the index, so `tag:` targets find it.
    assert_eq!(
        fleet.directory.nodes_with_tag("run", &run).await.unwrap(),
        vec![id.clone()]
    );
    assert_eq!(
        fleet.directory.nodes_with_tag_key("role").await.unwrap(),
        vec![id.clone()]
    );
    // And the association tick is told a node came.
    let marker = AssociationTable::new(&stack).marker(&id).await.unwrap();
    assert_eq!(marker.map(|m| m.written), Some(now));

    // The id is taken: another key's registration writes nothing.
    let other = ec2_node(&id, "key-2", &[("run", "other")], now + 5.0);
    assert!(
        !fleet
            .nodes
            .register_instance(&other, now + 5.0)
            .await
            .unwrap()
    );
    assert_eq!(fleet.nodes.get(&id).await.unwrap().unwrap(), node);
    assert!(
        fleet
            .directory
            .nodes_with_tag("run", "other")
            .await
            .unwrap()
            .is_empty()
    );

    // The deregistered id is free again.
    assert!(fleet.nodes.deregister(&stored).await.unwrap());
    assert!(
        fleet
            .directory
            .nodes_with_tag("run", &run)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        fleet
            .nodes
            .register_instance(&other, now + 5.0)
            .await
            .unwrap()
    );
    assert_eq!(
        fleet.nodes.get(&id).await.unwrap().unwrap().public_key,
        "key-2"
    );
    drop_tables(&shared, &tables).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_registration_past_one_transactions_limit_indexes_every_tag() {
    let shared = stack().await;
    let (stack, tables) = own_tables(&shared).await;
    let fleet = stack.fleet();
    let id = instance_id();
    // 60 tags: the node, its marker and 120 index rows, over DynamoDB's
    // 100 actions in one transaction.
    let keys: Vec<String> = (0..60).map(|i| format!("k{i:02}")).collect();
    let tags: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    let node = ec2_node(&id, "key-1", &tags, now_epoch());
    assert!(
        fleet
            .nodes
            .register_instance(&node, now_epoch())
            .await
            .unwrap()
    );
    for k in &keys {
        assert_eq!(
            fleet.directory.nodes_with_tag(k, "v").await.unwrap(),
            vec![id.clone()],
            "{k}"
        );
    }
    // The id is taken all the same.
    assert!(
        !fleet
            .nodes
            .register_instance(&node, now_epoch())
            .await
            .unwrap()
    );
    drop_tables(&shared, &tables).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_refresh_writes_only_for_the_registered_key_and_never_moves_the_ping_back() {
    let shared = stack().await;
    let (stack, tables) = own_tables(&shared).await;
    let nodes = &stack.fleet().nodes;
    let id = instance_id();
    let now = now_epoch();
    let node = ec2_node(&id, "key-1", &[("role", "web")], now);
    assert!(nodes.register_instance(&node, now).await.unwrap());

    // The same key: what the agent reports, and a later ping.
    let newer = Node {
        agent_version: "0.2.0".into(),
        platform_version: "2023.1".into(),
        computer_name: "ip-10-0-0-2".into(),
        ip_address: "10.0.0.2".into(),
        last_ping_date_time: now + 60.0,
        ..node.clone()
    };
    assert!(nodes.refresh_instance(&newer).await.unwrap());
    assert_eq!(nodes.get(&id).await.unwrap().unwrap(), newer);

    // An earlier ping (a heartbeat was recorded meanwhile) stays behind.
    let late = Node {
        agent_version: "0.3.0".into(),
        last_ping_date_time: now + 10.0,
        ..newer.clone()
    };
    assert!(nodes.refresh_instance(&late).await.unwrap());
    let got = nodes.get(&id).await.unwrap().unwrap();
    assert_eq!(got.agent_version, "0.3.0");
    assert_eq!(got.last_ping_date_time, now + 60.0);

    // Another key changes nothing.
    let thief = Node {
        public_key: "key-2".into(),
        agent_version: "6.6.6".into(),
        ip_address: "192.0.2.1".into(),
        last_ping_date_time: now + 120.0,
        ..late.clone()
    };
    assert!(!nodes.refresh_instance(&thief).await.unwrap());
    assert_eq!(nodes.get(&id).await.unwrap().unwrap(), got);

    // A node that is gone is not written back.
    assert!(nodes.deregister(&got).await.unwrap());
    assert!(!nodes.refresh_instance(&late).await.unwrap());
    assert!(nodes.get(&id).await.unwrap().is_none());
    let never = ec2_node(&instance_id(), "key-1", &[], now);
    assert!(!nodes.refresh_instance(&never).await.unwrap());
    assert!(nodes.get(&never.instance_id).await.unwrap().is_none());
    drop_tables(&shared, &tables).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn a_node_written_before_resource_types_is_a_managed_instance() {
    let shared = stack().await;
    let (stack, tables) = own_tables(&shared).await;
    let id = steward_core::ids::new_managed_instance_id();
    let mut node = ec2_node(&id, "key-1", &[], now_epoch());
    node.resource_type = ResourceType::ManagedInstance;
    let mut item = node_to_item(&node);
    assert!(item.remove("ResourceType").is_some());
    stack
        .clients
        .dynamodb
        .put_item()
        .table_name(&stack.settings.nodes_table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let got = stack.fleet().nodes.get(&id).await.unwrap().unwrap();
    assert_eq!(got.resource_type, ResourceType::ManagedInstance);
    assert_eq!(got, node);
    drop_tables(&shared, &tables).await;
}

#[tokio::test]
#[ignore = "needs the local stack (with EC2): make test runs it"]
async fn an_instances_tags_are_read_from_ec2() {
    let stack = stack().await;
    let run = unique();
    let instance = ec2_instance(
        &stack,
        &[
            ("Name", "web-1"),
            ("run", &run),
            ("empty", ""),
            ("a&b", "<c>"),
        ],
    )
    .await;
    let tags = stack
        .fleet()
        .instance_tags
        .tags_of(&instance)
        .await
        .unwrap();
    let want: BTreeMap<String, String> = [
        ("Name", "web-1"),
        ("run", run.as_str()),
        ("empty", ""),
        ("a&b", "<c>"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(tags, want);

    // An instance EC2 does not know (another account's) has no tags.
    assert!(
        stack
            .fleet()
            .instance_tags
            .tags_of(&instance_id())
            .await
            .unwrap()
            .is_empty()
    );
    terminate_ec2_instance(&stack, &instance).await;
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn an_ec2_that_cannot_be_reached_or_refuses_fails_the_call() {
    let stack = stack().await;
    let credentials = stack.clients.credentials.clone();
    // Nothing listens there.
    let down = Ec2InstanceTags::with_endpoint("http://127.0.0.1:9", "us-east-1", credentials);
    let err = down.tags_of(&instance_id()).await.unwrap_err();
    assert_eq!(err.code(), "InternalServerError");
    // No credentials to sign with.
    let unsigned = Ec2InstanceTags::with_endpoint(
        std::env::var("AWS_ENDPOINT_URL")
            .as_deref()
            .unwrap_or("http://127.0.0.1:4566"),
        "us-east-1",
        None,
    );
    let err = unsigned.tags_of(&instance_id()).await.unwrap_err();
    assert_eq!(err.code(), "InternalServerError");
    // An answer that is not EC2's (DynamoDB Local's error page).
    let wrong = Ec2InstanceTags::with_endpoint(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .as_deref()
            .unwrap_or("http://127.0.0.1:8000"),
        "us-east-1",
        stack.clients.credentials.clone(),
    );
    let err = wrong.tags_of(&instance_id()).await.unwrap_err();
    assert_eq!(err.code(), "InternalServerError");
}
