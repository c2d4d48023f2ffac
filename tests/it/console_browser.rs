//! The console in a real headless Chromium, on SQLite and on PostgreSQL: sign in (a wrong
//! password, then a lockout), the overview, a person searched in Turkish and in English, a
//! requeue with its reason, and the evidence pack downloaded, unpacked and checked against its
//! hashes and the action log. Each step saves a screenshot, and the screenshots are checked for
//! what they must show (the console's own colours: its stylesheet passed the CSP; the red of
//! an error message where one is expected).

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::console::{OPERATOR, VIEWER, console_app, failed_job};
use crate::web_support::webdriver::{Driver, Session, Window, browser_binaries};
use crate::web_support::{Db, backends};
use iys_relay::store::JobState;

const PERSON: &str = "+905321110001";
/// The console's header bar and its error message background (view.rs's stylesheet).
const HEADER_BLUE: [u8; 3] = [0x0b, 0x3d, 0x6e];
const ERROR_PINK: [u8; 3] = [0xfb, 0xdc, 0xdc];

fn shots(db: Db) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("console-screenshots-{db:?}"))
}

/// How many pixels of the screenshot have exactly this colour.
fn pixels_of(png_path: &Path, rgb: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).expect("screenshot"));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[..3] == rgb)
        .count()
}

async fn shot(s: &Session, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    s.screenshot(&p).await;
    assert!(
        pixels_of(&p, HEADER_BLUE) > 10_000,
        "{name}: the console's own stylesheet applies (header bar drawn)"
    );
    p
}

async fn sign_in(s: &Session, user: &str, password: &str) {
    let u = s.find("#username").await;
    s.type_into(&u, user).await;
    let p = s.find("#password").await;
    s.type_into(&p, password).await;
    s.click_and_wait(&s.find("form button[type=submit]").await)
        .await;
}

async fn search(s: &Session, query: &str) {
    let q = s.find("#q").await;
    s.type_into(&q, query).await;
    s.click_and_wait(&s.find("form[role=search] button").await)
        .await;
}

/// Waits (by polling the download directory, not by sleeping a fixed time) for one finished file.
async fn downloaded(dir: &Path) -> PathBuf {
    for _ in 0..200 {
        let done: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "zip"))
            .collect();
        if let [one] = done.as_slice() {
            return one.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no download in {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliance_officer_signs_in_finds_a_person_requeues_and_exports_the_pack() {
    let Some((chrome, chromedriver)) = browser_binaries() else {
        return;
    };
    let driver = Driver::start(&chrome, &chromedriver).await;
    for db in backends() {
        let app = console_app(db).await;
        let store = app.state.ledger.store().clone();
        let job = failed_job(store.as_ref(), "b1", PERSON).await;
        let base = app.base.clone();
        let dir = shots(db);
        let profile = tempfile::tempdir().expect("profile");
        let downloads = tempfile::tempdir().expect("downloads");
        let window = Window::Desktop {
            width: 1280,
            height: 1400,
        };
        let s = driver
            .session_with(profile.path(), &window, "tr-TR", Some(downloads.path()))
            .await;

        // Not signed in: the sign-in page, in Turkish.
        s.goto(&format!("{}/console", base)).await;
        assert_eq!(s.attr("html", "lang").await.as_deref(), Some("tr"));
        assert_eq!(s.text(&s.find("h1").await).await, "Uyum konsolu: giriş");
        shot(&s, &dir, "1-sign-in.png").await;

        // A wrong password: said so, in red; then the viewer's account locks on the fifth.
        sign_in(&s, VIEWER.0, "yanlış-parola-1234").await;
        let msg = s.text(&s.find("p.msg.err").await).await;
        assert_eq!(msg, "Kullanıcı adı veya parola yanlış.");
        let wrong = shot(&s, &dir, "2-wrong-password.png").await;
        assert!(
            pixels_of(&wrong, ERROR_PINK) > 1_000,
            "the error is shown in red"
        );
        for _ in 0..4 {
            sign_in(&s, VIEWER.0, "yanlış-parola-1234").await;
        }
        sign_in(&s, VIEWER.0, VIEWER.1).await;
        let msg = s.text(&s.find("p.msg.err").await).await;
        assert!(msg.contains("kilitli"), "{msg}");
        shot(&s, &dir, "3-locked.png").await;

        // The operator: the overview.
        sign_in(&s, OPERATOR.0, OPERATOR.1).await;
        assert_eq!(s.text(&s.find("h1").await).await, "Genel bakış");
        let failed = s.text(&s.find("#failed").await).await;
        assert!(failed.contains(&job.to_string()), "{failed}");
        assert_eq!(s.find_all("#movements svg").await.len(), 2, "two charts");
        shot(&s, &dir, "4-overview.png").await;

        // A person, written the Turkish way: RET nowhere yet, the ONAY not in İYS (its job
        // failed), so "may we send?" is no.
        s.goto(&format!("{}/console/person", base)).await;
        search(&s, "0532 111 00 01").await;
        assert_eq!(s.text(&s.find("#who").await).await, PERSON);
        let words = s.text(&s.find("#words").await).await;
        assert!(words.contains("ONAY") && words.contains("HAYIR"), "{words}");
        assert!(words.contains("onay İYS'ye henüz kaydedilmedi"), "{words}");
        let timeline = s.text(&s.find("#timeline").await).await;
        assert!(
            timeline.contains("Hareketler (1)") && timeline.contains("H121"),
            "{timeline}"
        );
        shot(&s, &dir, "5-person-tr.png").await;

        // The same person in English, written another way.
        s.click_and_wait(&s.find("header a[hreflang=en]").await)
            .await;
        assert_eq!(s.attr("html", "lang").await.as_deref(), Some("en"));
        search(&s, "+90 (532) 111 00 01").await;
        assert_eq!(s.text(&s.find("h1").await).await, "Find a person");
        let words = s.text(&s.find("#words").await).await;
        assert!(
            words.contains("May we send?") && words.contains("NO"),
            "{words}"
        );
        shot(&s, &dir, "6-person-en.png").await;

        // Requeue the failed job with a reason (the language choice is remembered).
        s.goto(&format!("{}/console/jobs?state=failed", base)).await;
        s.click(&s.find(&format!("#job-{job}")).await).await;
        let reason = s.find("#reason").await;
        s.type_into(&reason, "numara düzeltildi, İYS'ye yeniden")
            .await;
        s.click_and_wait(&s.find("form button.primary").await).await;
        let row = s.text(&s.find("tr.requeued").await).await;
        assert!(row.contains("requeued"), "{row}");
        shot(&s, &dir, "7-requeued.png").await;
        let j = store.jobs_by_ids(&[job]).await.unwrap();
        assert_eq!(j[0].state, JobState::Pending);
        let log = store.console_actions(None, 50).await.unwrap();
        let entry = log.iter().find(|a| a.action == "requeue").expect("logged");
        assert_eq!(
            entry.reason.as_deref(),
            Some("numara düzeltildi, İYS'ye yeniden")
        );

        // The evidence pack: one button; the zip holds the PDF, the JSON and their sums, and
        // its own SHA-256 is in the action log.
        s.goto(&format!("{}/console/person?q=%2B905321110001", base))
            .await;
        s.click(&s.find("#pack").await).await;
        let zip_path = downloaded(downloads.path()).await;
        let bytes = std::fs::read(&zip_path).expect("zip");
        let sha = hex::encode(Sha256::digest(&bytes));
        let log = store.console_actions(None, 50).await.unwrap();
        let made = log
            .iter()
            .find(|a| a.action == "evidence_pack_made")
            .expect("pack logged");
        assert_eq!(made.detail["sha256"], sha.as_str());
        assert_eq!(made.target, PERSON);
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
        let mut read = |name: &str| {
            use std::io::Read;
            let mut v = Vec::new();
            zip.by_name(name)
                .unwrap_or_else(|_| panic!("{name} in the pack"))
                .read_to_end(&mut v)
                .expect("read");
            v
        };
        let json = read("evidence.json");
        let pdf = read("evidence.pdf");
        let sums = String::from_utf8(read("SHA256SUMS")).expect("utf-8");
        assert!(
            sums.contains(&format!(
                "{}  evidence.json",
                hex::encode(Sha256::digest(&json))
            )),
            "{sums}"
        );
        assert!(
            sums.contains(&format!(
                "{}  evidence.pdf",
                hex::encode(Sha256::digest(&pdf))
            )),
            "{sums}"
        );
        assert!(pdf.starts_with(b"%PDF-"));
        let v: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(v["export"]["recipient"], PERSON, "{v}");
        assert_eq!(v["generated_by"], OPERATOR.0, "{v}");
        let events = v["export"]["events"].as_array().expect("events");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["job"]["id"], job);
        s.quit().await;
    }
}
