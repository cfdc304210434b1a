//! The ingest function against the local stack: verified heartbeats are
//! applied; forged or unknown senders are dropped without a retry.

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use serde_json::json;
use steward_aws::Stack;
use steward_core::channel::{Heartbeat, NodeKey, Uplink, UplinkPayload};
use steward_core::clock::now_epoch;
use steward_core::fleet::{NodeStore, ops};

fn event(bodies: &[String]) -> SqsEvent {
    let mut e = SqsEvent::default();
    e.records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut m = SqsMessage::default();
            m.message_id = Some(format!("m{i}"));
            m.body = Some(b.clone());
            m
        })
        .collect();
    e
}

fn heartbeat(version: &str, at: f64) -> UplinkPayload {
    UplinkPayload {
        v: 1,
        msg_id: steward_core::ids::new_command_id(),
        sent_at: at,
        message: Uplink::Heartbeat(Heartbeat {
            agent_version: version.into(),
            platform_type: "Linux".into(),
            platform_name: "Debian".into(),
            platform_version: "12".into(),
            ip_address: "10.1.1.1".into(),
            computer_name: "ingest-host".into(),
        }),
    }
}

#[tokio::test]
#[ignore = "needs the local stack: make test runs it"]
async fn heartbeats_apply_and_forgeries_are_dropped() {
    let stack = Stack::from_env()
        .await
        .expect("STEWARD_* variables missing: source .local/stack.env (make test does)");
    let fleet = stack.fleet();
    let act = ops::create_activation(&fleet.ports(), &json!({"IamRole": "R"}), now_epoch())
        .await
        .unwrap();
    let (key, _) = NodeKey::generate().unwrap();
    let reg = ops::register(
        &fleet.ports(),
        &json!({"ActivationId": act["ActivationId"], "ActivationCode": act["ActivationCode"],
                "PublicKey": key.public_key_base64(), "AgentVersion": "0.1.0"}),
        now_epoch() - 60.0,
    )
    .await
    .unwrap();
    let node = reg.instance_id;
    let before = fleet.nodes.get(&node).await.unwrap().unwrap();

    // Forged (another key), unknown sender, garbage: dropped, not retried, no change.
    let (forger, _) = NodeKey::generate().unwrap();
    let forged = forger
        .seal(&node, &heartbeat("6.6.6", now_epoch()))
        .unwrap();
    let stranger = forger
        .seal("mi-00000000000000000", &heartbeat("6.6.6", now_epoch()))
        .unwrap();
    let resp =
        steward_fn_ingest::handle(&stack, event(&[forged, stranger, "not json".into()])).await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(fleet.nodes.get(&node).await.unwrap().unwrap(), before);

    // The node's own heartbeat is applied, twice delivered or not.
    let at = now_epoch();
    let real = key.seal(&node, &heartbeat("0.2.0", at)).unwrap();
    let resp = steward_fn_ingest::handle(&stack, event(&[real.clone(), real])).await;
    assert!(resp.batch_item_failures.is_empty());
    let after = fleet.nodes.get(&node).await.unwrap().unwrap();
    assert_eq!(after.agent_version, "0.2.0");
    assert_eq!(after.computer_name, "ingest-host");
    assert_eq!(after.last_ping_date_time, at);
    assert!(after.last_ping_date_time > before.last_ping_date_time);
}
