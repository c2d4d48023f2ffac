//! What a real process writes to its JSON log while it handles a request: one object per line,
//! naming the request's id and route pattern, with the sender masked.

use crate::common::procs::{Procs, free_port, server_toml, signed_sms, wait_for};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_line_names_its_request_once_and_masks_the_sender() {
    let mut procs = Procs::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let db_url = format!("sqlite://{}/ledger.db", procs.dir().display());
    let toml = format!(
        "{}\n[iys.sync]\nenabled = false\n\n[reporter]\nenabled = false\n",
        server_toml(port, &db_url)
    );
    procs.spawn("relay", &toml, &["serve"]);
    procs.wait_http_ok("relay", &format!("{base}/readyz")).await;

    let from = "+905321234567";
    let answer = signed_sms(&reqwest::Client::new(), &base, "SMlog0001", from)
        .header("x-request-id", "crm-call-0001")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    // The logging thread writes behind the answer.
    let line = wait_for("the webhook's log line", || {
        let log = procs.log("relay");
        async move {
            log.lines()
                .find(|l| l.contains("SMS keyword recorded"))
                .map(str::to_string)
        }
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    let spans = v["spans"].as_array().expect("the span list");
    assert_eq!(spans.len(), 1, "{line}");
    assert_eq!(spans[0]["name"], "request");
    assert_eq!(spans[0]["request_id"], "crm-call-0001");
    assert_eq!(spans[0]["route"], "/webhooks/twilio/sms");
    assert_eq!(spans[0]["method"], "POST");
    // The innermost span is the list's last element; it is not written a second time.
    assert!(v.get("span").is_none(), "{line}");
    assert!(!line.contains(&from[1..]), "full number in the log: {line}");
    assert_eq!(v["status"], "Onay");
}
