//! Session Manager's adapters against the local stack (`source
//! .local/stack.env`): the sessions table with the memory store's rules,
//! each session's pair of real queues, and frame keys sealed under KMS.

use steward_aws::sessions::{KmsSessionKeys, SessionTable, SqsSessionQueues};
use steward_aws::testing::{drop_table, stack, table_like, with_settings};
use steward_core::secret::Secret;
use steward_core::sessions::model::{Session, SessionListState, SessionStatus};
use steward_core::sessions::ports::{SessionKeySealer, SessionQueues, SessionStore};

fn session(id: &str, start: f64) -> Session {
    Session {
        session_id: id.into(),
        target: "mi-0123456789abcdef0".into(),
        status: SessionStatus::Connecting,
        start_date: start,
        end_date: None,
        document_name: "SSM-SessionManagerRunShell".into(),
        owner: "arn:aws:iam::000000000000:user/alice".into(),
        reason: None,
        details: None,
        max_session_duration: None,
        s3_output_url: None,
        to_agent_queue_url: "q-a".into(),
        to_client_queue_url: "q-c".into(),
        to_agent_queue_arn: "arn:q-a".into(),
        to_client_queue_arn: "arn:q-c".into(),
        sealed_key: "sealed".into(),
        queues_deleted: false,
        revision: 1,
    }
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn records_are_written_conditionally_and_listed_newest_first_by_state() {
    let shared = stack().await;
    let table = table_like(&shared, &shared.settings.sessions_table).await;
    let own = with_settings(&shared, |s| s.sessions_table = table.clone());
    let store = SessionTable::new(&own);

    let ids: Vec<String> = (0..5).map(|i| format!("alice-{i:017x}")).collect();
    for (i, id) in ids.iter().enumerate() {
        assert!(store.create(&session(id, 1000.0 + i as f64)).await.unwrap());
    }
    assert!(
        !store.create(&session(&ids[0], 1.0)).await.unwrap(),
        "exists"
    );

    // A write at a stale revision is refused; at the next one it lands.
    let mut ended = store.get(&ids[1]).await.unwrap().unwrap();
    ended.status = SessionStatus::Terminated;
    ended.revision = 3;
    assert!(!store.update(&ended).await.unwrap());
    ended.revision = 2;
    assert!(store.update(&ended).await.unwrap());
    assert!(!store.update(&ended).await.unwrap(), "already at 2");
    assert_eq!(store.get(&ids[1]).await.unwrap().unwrap(), ended);

    // Active, newest first, two at a time.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = store
            .list(SessionListState::Active, cursor.as_deref(), 2)
            .await
            .unwrap();
        seen.extend(page.into_iter().map(|s| s.session_id));
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<String> = [4, 3, 2, 0].iter().map(|&i| ids[i].clone()).collect();
    assert_eq!(seen, want);
    let (history, _) = store
        .list(SessionListState::History, None, 10)
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].session_id, ids[1]);
    assert!(
        store
            .get("alice-ffffffffffffffff0")
            .await
            .unwrap()
            .is_none()
    );
    drop_table(&own, &table).await;
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn a_session_gets_two_real_queues_and_loses_them() {
    let stack = stack().await;
    let queues = SqsSessionQueues::new(&stack);
    let id = format!("alice-{:017x}", rand_suffix());
    let pair = queues.create(&id).await.unwrap();
    assert_ne!(pair.to_agent.url, pair.to_client.url);
    assert!(pair.to_agent.arn.ends_with("a") && pair.to_client.arn.ends_with("c"));
    let again = queues.create(&id).await.unwrap();
    assert_eq!(again, pair, "creating twice finds the same queues");
    let sqs = &stack.clients.sqs;
    sqs.send_message()
        .queue_url(&pair.to_agent.url)
        .message_body("frame")
        .send()
        .await
        .unwrap();
    queues
        .delete(&[&pair.to_agent.url, &pair.to_client.url])
        .await
        .unwrap();
    // Deleting again is not an error; the queues are gone.
    queues
        .delete(&[&pair.to_agent.url, &pair.to_client.url])
        .await
        .unwrap();
    assert!(
        sqs.get_queue_attributes()
            .queue_url(&pair.to_agent.url)
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
#[ignore = "needs the local stack (make test runs it)"]
async fn a_frame_key_opens_only_for_its_own_session() {
    let stack = stack().await;
    let keys = KmsSessionKeys::new(&stack);
    let key = Secret::new("c2Vzc2lvbi1rZXktb2YtMzItYnl0ZXMtZXhhY3RseSE=");
    let sealed = keys.seal("alice-00000000000000001", &key).await.unwrap();
    assert!(!sealed.contains(key.expose()));
    assert_eq!(
        keys.open("alice-00000000000000001", &sealed).await.unwrap(),
        key
    );
    assert!(keys.open("alice-00000000000000002", &sealed).await.is_err());
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7)
        & 0xffff_ffff_ffff
}
