//! `/metrics`: request, event, queue and rate-limit series after real traffic.
//! One test function runs both backends in turn: the Prometheus recorder is process-global.

use crate::common::{TestApp, TestStore, at, spawn_app};

async fn send_ret(app: &TestApp, sid: &str) -> u16 {
    let url = format!("{}/webhooks/twilio/sms", app.base);
    let params = crate::common::pairs(&[
        ("MessageSid", sid),
        ("From", "+905321234567"),
        ("To", "+908501234567"),
        ("Body", "RET"),
    ]);
    crate::common::post_twilio_signed(app, &url, &url, &params)
        .await
        .status()
        .as_u16()
}

/// The value of the first sample whose line starts with `series` (name plus labels).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn check(store: TestStore) {
    // Reporter off: the job stays pending so the queue gauge is known.
    let app = spawn_app(
        store,
        "[sms.rate_limit]\nper_sender_per_minute = 1\n",
        at("2026-11-23T10:00:00Z"),
    )
    .await;
    assert_eq!(send_ret(&app, "SMmetrics1").await, 200);
    assert_eq!(
        send_ret(&app, "SMmetrics2").await,
        429,
        "second message from the sender is rate limited"
    );

    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        sample(
            &text,
            "iys_relay_events_total{channel=\"sms\",status=\"RET\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "iys_relay_http_requests_total{route=\"/webhooks/twilio/sms\",method=\"POST\",status=\"200\"}")
            .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        sample(
            &text,
            "iys_relay_rate_limited_total{limiter=\"sms_sender\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, "iys_relay_report_jobs{state=\"pending\"}"),
        Some(1.0),
        "{text}"
    );
    // Monday 10:00Z receipt: deadline Thursday 20:59:59Z, 3 days 10:59:59 away on the test clock.
    assert_eq!(
        sample(&text, "iys_relay_report_nearest_deadline_seconds"),
        Some(298_799.0),
        "{text}"
    );
    // No audit sweep has finished on a fresh database.
    assert_eq!(
        sample(&text, "iys_relay_audit_last_full_sweep_timestamp_seconds"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "iys_relay_audit_divergent_addresses"),
        Some(0.0),
        "{text}"
    );
    assert!(
        !text.contains("+905321234567"),
        "no phone number in metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_both_backends() {
    check(crate::common::sqlite().await).await;
    if let Some(pg) = crate::common::postgres().await {
        check(pg).await;
    }
}
