//! The short-link channel over real HTTP: minting, GET storms, RFC 8058 one-click, cross-site
//! refusals, unknown/expired links, rate limits. Each test runs on SQLite, and on PostgreSQL
//! when IYS_RELAY_TEST_PG_URL is set.

use crate::web_support::{TOKEN, TestApp, backends, client, spawn};
use chrono::Duration;
use iys_relay::domain::{Channel, Source, Status};
use serde_json::{Value, json};

const PHONE: &str = "+905329990001";
const ONE_CLICK: &str = "List-Unsubscribe=One-Click";

async fn post_form(url: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.expect("post")
}

fn multipart_one_click() -> (String, String) {
    let boundary = "----iysRelayBoundary7MA4YWxk";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n\
         One-Click\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minting_is_idempotent_and_gives_email_headers() {
    for db in backends() {
        let app = spawn(db, |_| {}).await;
        let a = app.mint(PHONE, "MESAJ", Some("kış-2026")).await;
        let b = app.mint("0532 999 00 01", "MESAJ", Some("kış-2026")).await;
        assert_eq!(
            a["url"], b["url"],
            "same (brand, recipient, type, campaign)"
        );
        let url = a["url"].as_str().unwrap();
        let code = url.strip_prefix(&format!("{}/r/", app.base)).expect("base");
        assert_eq!(code.len(), 12);
        assert!(code.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(
            a.get("list_unsubscribe").is_none(),
            "SMS links have no mail headers"
        );
        assert_ne!(app.mint(PHONE, "MESAJ", None).await["url"], a["url"]);
        assert_ne!(
            app.mint(PHONE, "ARAMA", Some("kış-2026")).await["url"],
            a["url"]
        );

        let mail = app.mint("Ayse@Example.COM", "EPOSTA", Some("bülten")).await;
        let mail_url = mail["url"].as_str().unwrap();
        assert_eq!(mail["list_unsubscribe"], format!("<{mail_url}>"));
        assert_eq!(mail["list_unsubscribe_post"], ONE_CLICK);

        let http = client();
        let r = http
            .post(format!("{}/v1/links", app.base))
            .json(&json!({"recipient": PHONE, "type": "MESAJ"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = http
            .post(format!("{}/v1/links", app.base))
            .bearer_auth(TOKEN)
            .json(&json!({"recipient": "ayse@example.com", "type": "MESAJ"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        let r = http
            .post(format!("{}/v1/links", app.base))
            .bearer_auth(TOKEN)
            .json(&json!({"recipient": PHONE, "type": "MESAJ", "campaign": "a\u{7}b"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
        assert!(
            app.events(PHONE).await.is_empty(),
            "minting records nothing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_mints_thousands_in_one_call() {
    for db in backends() {
        let app = spawn(db, |_| {}).await;
        let mut recipients: Vec<String> = (0..5000).map(|n| format!("+90533{n:07}")).collect();
        recipients[7] = "not a phone".into();
        let r = client()
            .post(format!("{}/v1/links/bulk", app.base))
            .bearer_auth(TOKEN)
            .json(&json!({"type": "MESAJ", "campaign": "c-1", "recipients": recipients}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "a 5000-recipient body is above the global body limit"
        );
        let v: Value = r.json().await.unwrap();
        let links = v["links"].as_array().unwrap();
        assert_eq!(links.len(), 4999);
        assert_eq!(v["invalid"][0]["index"], 7);
        assert!(!v["invalid"][0].to_string().contains("not a phone"));
        assert_eq!(links[7]["index"], 8);
        assert_eq!(links[7]["recipient"], "+905330000008");
        let single = app.mint("+905330000008", "MESAJ", Some("c-1")).await;
        assert_eq!(single["url"], links[7]["url"]);

        let too_many: Vec<String> = (0..5001).map(|n| format!("+90533{n:07}")).collect();
        let r = client()
            .post(format!("{}/v1/links/bulk", app.base))
            .bearer_auth(TOKEN)
            .json(&json!({"type": "MESAJ", "recipients": too_many}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_storm_changes_nothing() {
    for db in backends() {
        let app = spawn(db, |c| c.links.get_per_minute = 50).await;
        let url = app.link(PHONE, "MESAJ").await;
        let http = client();
        let mut ok = 0;
        let mut limited = 0;
        let storm = (0..120).map(|_| http.get(&url).send());
        for r in futures_join(storm).await {
            let r = r.unwrap();
            match r.status().as_u16() {
                200 => ok += 1,
                429 => limited += 1,
                s => panic!("unexpected {s}"),
            }
        }
        // 50 at once, then one more per 1.2 s: a slow run may see a refill or two.
        assert_eq!(ok + limited, 120);
        assert!((50..=52).contains(&ok), "per-IP GET limit: {ok} passed");
        let head = http.head(&url).send().await.unwrap();
        assert!(matches!(head.status().as_u16(), 200 | 429));
        assert!(app.events(PHONE).await.is_empty(), "GET never records");
    }
}

/// Runs the futures concurrently (no extra crate needed for a join_all).
async fn futures_join<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_safe_to_show() {
    for db in backends() {
        let app = spawn(db, |_| {}).await;
        let url = app.link(PHONE, "MESAJ").await;
        let r = client().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'")
        );
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h.get("set-cookie").is_none());
        let html = r.text().await.unwrap();
        assert!(html.contains("<html lang=\"tr\">") && html.contains("Demo Marka"));
        assert!(
            !html.contains(PHONE) && !html.contains("5329990001"),
            "no personal data"
        );
        let en = client()
            .get(&url)
            .header("accept-language", "en-US,en;q=0.9")
            .send()
            .await
            .unwrap();
        assert_eq!(en.headers()["content-language"], "en");
        assert!(en.text().await.unwrap().contains("Stop text messages"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8058_one_click_records_once_for_form_and_multipart() {
    for db in backends() {
        let app = spawn(db, |_| {}).await;
        let mail = "ayse@example.com";
        let url = app.link(mail, "EPOSTA").await;

        // A mail provider's server: no cookies, no Origin, urlencoded body.
        let r = post_form(&url, ONE_CLICK, &[("user-agent", "GoogleOneClick/1.0")]).await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers().get("location").is_none(),
            "no redirect (RFC 8058)"
        );
        let (ct, body) = multipart_one_click();
        let r = client()
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // A web mail client posting cross-site with the exact one-click body is accepted too.
        let r = post_form(
            &url,
            ONE_CLICK,
            &[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://mail.example"),
            ],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("daha önce kaydedilmişti"));

        let events = app.events(mail).await;
        assert_eq!(events.len(), 1, "recorded once");
        let ev = &events[0];
        assert_eq!(ev.status, Status::Ret);
        assert_eq!((ev.source, ev.channel), (Source::HsWeb, Channel::Web));
        assert_eq!(ev.provider, "web");
        assert!(ev.provider_message_id.starts_with("link:"));
        assert_eq!(ev.evidence["raw"]["form"]["List-Unsubscribe"], "One-Click");
        assert_eq!(ev.evidence["raw"]["via"], "one_click");
        assert_eq!(ev.evidence["ip"], "127.0.0.1");
        assert_eq!(ev.evidence["user_agent"], "GoogleOneClick/1.0");
        let job = app.state.ledger.store().job_for_event(ev.id).await.unwrap();
        assert!(job.is_some(), "the RET is queued for İYS");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_and_codeless_posts_are_refused() {
    for db in backends() {
        let app = spawn(db, |_| {}).await;
        let url = app.link(PHONE, "MESAJ").await;
        let evil = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ];
        let r = post_form(&url, "confirm=ret&lang=tr", &evil).await;
        assert_eq!(r.status(), 403);
        let r = post_form(&url, "confirm=ret", &[("origin", "https://evil.example")]).await;
        assert_eq!(r.status(), 403, "foreign Origin without Sec-Fetch-Site");
        let r = post_form(&url, "confirm=ret", &[("origin", "null")]).await;
        assert_eq!(r.status(), 403);
        // Without the link's code there is nothing to reject.
        let guessed = format!("{}/r/AAAAAAAAAAAA", app.base);
        assert_eq!(post_form(&guessed, ONE_CLICK, &[]).await.status(), 404);
        assert_eq!(
            post_form(&format!("{}/r/", app.base), ONE_CLICK, &[])
                .await
                .status(),
            404
        );
        // A same-site post that is neither our form nor one-click is not a confirmation.
        assert_eq!(post_form(&url, "x=1", &[]).await.status(), 400);
        assert!(app.events(PHONE).await.is_empty(), "ledger unchanged");

        let same = [
            ("sec-fetch-site", "same-origin"),
            ("origin", app.base.as_str()),
        ];
        let r = post_form(&url, "confirm=ret&lang=en", &same).await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Request received"));
        let r = post_form(&url, "confirm=ret", &same).await;
        assert_eq!(r.status(), 200, "repeated clicks are idempotent");
        assert_eq!(app.events(PHONE).await.len(), 1);
    }
}

async fn status_of(app: &TestApp, path: &str) -> u16 {
    client()
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_expired_links_say_so_and_record_nothing() {
    for db in backends() {
        let app = spawn(db, |c| c.links.expiry_days = 30).await;
        let url = app.link(PHONE, "MESAJ").await;
        assert_eq!(status_of(&app, "/r/short").await, 404);
        assert_eq!(status_of(&app, "/r/ZZZZZZZZZZZZ").await, 404);
        let page = client()
            .get(format!("{}/r/ZZZZZZZZZZZZ", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Bağlantı geçersiz"));

        app.clock.advance(Duration::days(30));
        assert_eq!(client().get(&url).send().await.unwrap().status(), 410);
        assert_eq!(post_form(&url, ONE_CLICK, &[]).await.status(), 410);
        assert!(app.events(PHONE).await.is_empty());
        // Minting again revives the same link.
        assert_eq!(app.link(PHONE, "MESAJ").await, url);
        assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_are_rate_limited_per_client_ip() {
    for db in backends() {
        let app = spawn(db, |c| {
            c.links.post_per_minute = 2;
            c.server.trusted_proxy = true;
        })
        .await;
        let url = app.link(PHONE, "MESAJ").await;
        let from = |ip: &'static str| [("x-forwarded-for", ip)];
        assert_eq!(
            post_form(&url, ONE_CLICK, &from("198.51.100.1"))
                .await
                .status(),
            200
        );
        assert_eq!(
            post_form(&url, ONE_CLICK, &from("198.51.100.1"))
                .await
                .status(),
            200
        );
        let r = post_form(&url, ONE_CLICK, &from("198.51.100.1")).await;
        assert_eq!(r.status(), 429);
        assert!(r.headers().get("retry-after").is_some());
        assert!(r.text().await.unwrap().contains("Çok fazla istek"));
        assert_eq!(
            post_form(&url, ONE_CLICK, &from("198.51.100.2"))
                .await
                .status(),
            200
        );
        let events = app.events(PHONE).await;
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].evidence["ip"], "198.51.100.1",
            "proxy-forwarded client IP"
        );
    }
}
