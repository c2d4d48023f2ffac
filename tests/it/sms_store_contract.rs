//! The SMS provider storage contract (poll cursors with leader leases, known ids, reply outbox)
//! on both backends.

use std::sync::Arc;

use crate::common::{at, intent};
use chrono::Duration;
use iys_relay::domain::Status;
use iys_relay::store::sms::{ReplyOutcome, ReplyState};
use iys_relay::store::{NewEvent, Store};

async fn one_leader_per_provider_and_a_fenced_cursor(store: Arc<dyn Store>) {
    let now = at("2026-11-23T10:00:00Z");
    let lease = now + Duration::minutes(3);
    let a = store
        .claim_sms_poll("vm", "a", now, lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.cursor, "");
    assert!(
        store
            .claim_sms_poll("vm", "b", now, lease)
            .await
            .unwrap()
            .is_none(),
        "a leads"
    );
    assert!(
        store
            .claim_sms_poll("ng", "b", now, lease)
            .await
            .unwrap()
            .is_some(),
        "per provider"
    );
    assert!(
        store
            .save_sms_poll("vm", "a", r#"{"after_id":7}"#, None, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .save_sms_poll("vm", "b", "{}", None, now)
            .await
            .unwrap(),
        "fenced"
    );
    // a renews; after its lease lapses b takes over and reads a's cursor.
    assert!(
        store
            .claim_sms_poll("vm", "a", now, lease)
            .await
            .unwrap()
            .is_some()
    );
    let later = lease + Duration::seconds(1);
    let b = store
        .claim_sms_poll("vm", "b", later, later + Duration::minutes(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.cursor, r#"{"after_id":7}"#);
    assert_eq!(b.last_ok_at, Some(now));
    assert!(
        store
            .save_sms_poll("vm", "b", r#"{"after_id":7}"#, Some("HTTP 503"), later)
            .await
            .unwrap()
    );
    store.release_sms_poll("vm", "b").await.unwrap();
    let c = store
        .claim_sms_poll("vm", "c", later, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (c.last_error.as_deref(), c.last_ok_at),
        (Some("HTTP 503"), Some(now))
    );
}

async fn known_ids_cover_events_and_kept_messages(store: Arc<dyn Store>) {
    let now = at("2026-11-23T10:00:00Z");
    let mut i = intent("m1", "+905321234567", Status::Ret, now);
    i.provider = "vm".into();
    store
        .record_batch(
            &[NewEvent {
                intent: i,
                received_at: now,
                report: None,
            }],
            now,
        )
        .await
        .unwrap();
    store
        .keep_inbound(&iys_relay::store::InboundMessage {
            provider: "vm".into(),
            provider_message_id: "m2".into(),
            received_at: now,
            sender: "+905321234567".into(),
            receiver: "4609".into(),
            intent: "unrecognised".into(),
            raw: serde_json::json!({}),
        })
        .await
        .unwrap();
    let ids: Vec<String> = ["m1", "m2", "m3"].map(String::from).to_vec();
    assert_eq!(
        store.known_provider_messages("vm", &ids).await.unwrap(),
        ["m1", "m2"]
    );
    assert!(
        store
            .known_provider_messages("other", &ids)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .known_provider_messages("vm", &[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn replies_are_queued_once_retried_and_fenced(store: Arc<dyn Store>) {
    let now = at("2026-11-23T10:00:00Z");
    let lease = now + Duration::minutes(2);
    assert!(
        store
            .enqueue_sms_reply("vm", "m1", "+905321234567", "Ret alındı", now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .enqueue_sms_reply("vm", "m1", "+905321234567", "again", now)
            .await
            .unwrap()
    );
    let got = store.claim_sms_replies("w1", now, lease, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].attempts, got[0].body.as_str()), (1, "Ret alındı"));
    assert!(
        store
            .claim_sms_replies("w2", now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    let retry = ReplyOutcome::Retry {
        due_at: now + Duration::minutes(1),
        error: "HTTP 503".into(),
    };
    assert!(
        !store
            .finish_sms_reply(got[0].id, "w2", &retry, now)
            .await
            .unwrap(),
        "fenced"
    );
    assert!(
        store
            .finish_sms_reply(got[0].id, "w1", &retry, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_sms_replies("w1", now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due"
    );
    let later = now + Duration::minutes(1);
    let again = store
        .claim_sms_replies("w2", later, later + Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 2);
    let sent = ReplyOutcome::Sent {
        provider_ref: "20210".into(),
    };
    assert!(
        store
            .finish_sms_reply(again[0].id, "w2", &sent, later)
            .await
            .unwrap()
    );
    let r = store.sms_reply_for("vm", "m1").await.unwrap().unwrap();
    assert_eq!(r.state, ReplyState::Sent);
    assert_eq!(
        (r.provider_ref.as_deref(), r.last_error.as_deref()),
        (Some("20210"), Some("HTTP 503"))
    );
    // A worker that died: its lease lapses and another takes the reply.
    store
        .enqueue_sms_reply("vm", "m2", "+905321234567", "x", now)
        .await
        .unwrap();
    let dead = store
        .claim_sms_replies("w3", later, later + Duration::minutes(2), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let after = later + Duration::minutes(3);
    assert_eq!(
        store
            .claim_sms_replies("w4", after, after, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

on_both_backends!(
    one_leader_per_provider_and_a_fenced_cursor,
    known_ids_cover_events_and_kept_messages,
    replies_are_queued_once_retried_and_fenced,
);
