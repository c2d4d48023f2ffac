//! The short-link pages in a real headless Chromium: a person opens a link, sees the brand and
//! ONE button, clicks, and the ledger shows RET; a browser that only loads the page leaves the
//! ledger unchanged. Runs on SQLite, and on PostgreSQL when IYS_RELAY_TEST_PG_URL is set.

use std::path::PathBuf;

use crate::web_support::webdriver::{Driver, browser_binaries};
use crate::web_support::{Db, TestApp, backends, spawn};
use iys_relay::domain::Address;
use iys_relay::domain::{Channel, ConsentType, RecipientType, Source, Status};

const PERSON: &str = "+905321110001";
const ONLOOKER: &str = "+905321110002";

fn shots(db: Db) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("web-screenshots-{db:?}"))
}

async fn ret_state(app: &TestApp, recipient: &str) -> Option<Status> {
    let key = Address {
        brand_code: 700000,
        recipient: recipient.into(),
        recipient_type: RecipientType::Bireysel,
        consent_type: ConsentType::Mesaj,
    };
    app.state
        .ledger
        .store()
        .consent_state(&key)
        .await
        .expect("state")
        .map(|s| s.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_rejects_by_link_and_a_mere_visit_changes_nothing() {
    let Some((chrome, chromedriver)) = browser_binaries() else {
        return;
    };
    let driver = Driver::start(&chrome, &chromedriver).await;
    for db in backends() {
        let app = spawn(db, |_| {}).await;
        let dir = shots(db);
        let link = app.link(PERSON, "MESAJ").await;
        let other = app.link(ONLOOKER, "MESAJ").await;

        // The person: sees the brand, the channel and exactly one button, in Turkish.
        let profile = tempfile::tempdir().expect("profile");
        let person = driver.session(profile.path()).await;
        person.goto(&link).await;
        assert_eq!(person.attr("html", "lang").await.as_deref(), Some("tr"));
        let page = person.text(&person.find("main").await).await;
        assert!(page.contains("Demo Marka"), "{page}");
        assert!(page.contains("SMS"), "{page}");
        let buttons = person.find_all("button").await;
        assert_eq!(buttons.len(), 1, "ONE button");
        assert_eq!(person.text(&buttons[0]).await, "SMS iletilerini durdur");
        person.screenshot(&dir.join("1-confirm-tr.png")).await;
        assert_eq!(
            ret_state(&app, PERSON).await,
            None,
            "loading changed nothing"
        );

        person.click(&buttons[0]).await;
        let done = person.text(&person.find("h1.ok").await).await;
        assert_eq!(done, "İsteğiniz alındı");
        assert_eq!(person.current_url().await, link, "no redirect");
        person.screenshot(&dir.join("2-done-tr.png")).await;
        assert_eq!(ret_state(&app, PERSON).await, Some(Status::Ret));
        let events = app.events(PERSON).await;
        assert_eq!(events.len(), 1);
        let ev = &events[0];
        assert_eq!((ev.source, ev.channel), (Source::HsWeb, Channel::Web));
        assert_eq!(ev.evidence["raw"]["via"], "page");
        assert_eq!(ev.evidence["ip"], "127.0.0.1");
        assert!(
            ev.evidence["user_agent"]
                .as_str()
                .is_some_and(|ua| ua.contains("Chrome")),
            "{}",
            ev.evidence
        );
        person.quit().await;

        // A second browser only loads a page (and switches it to English): nothing recorded.
        let profile = tempfile::tempdir().expect("profile");
        let onlooker = driver.session(profile.path()).await;
        onlooker.goto(&other).await;
        let toggle = onlooker.find("nav a").await;
        assert_eq!(onlooker.text(&toggle).await, "English");
        onlooker.click(&toggle).await;
        let en_button = onlooker.find("html[lang=en] button").await;
        assert_eq!(onlooker.text(&en_button).await, "Stop text messages");
        onlooker.screenshot(&dir.join("3-confirm-en.png")).await;
        onlooker.quit().await;
        assert!(app.events(ONLOOKER).await.is_empty());
        assert_eq!(ret_state(&app, ONLOOKER).await, None);
        assert_eq!(app.events(PERSON).await.len(), 1, "ledger unchanged");
    }
}
