//! The compliance console over real HTTP, on SQLite and on PostgreSQL: sign-in, lockout and
//! session rules; CSRF and cross-site refusals; what a viewer may not do; bad input answered
//! with a page and a 4xx, never a 5xx; the action log written first and never changed; the
//! day tables the charts read kept by the database itself.

use chrono::Duration;
use iys_relay::console::users;
use iys_relay::domain::time::Clock;
use iys_relay::store::console::Role;
use iys_relay::store::queue::{Fence, JobOutcome};
use iys_relay::store::{JobState, JobTimes, NewEvent, Store};

use crate::common::{at, intent};
use crate::web_support::{Db, TestApp, backends, client, spawn};
use iys_relay::domain::Status;

pub const OPERATOR: (&str, &str) = ("ayse.operator", "operatörün-parolası-1");
pub const VIEWER: (&str, &str) = ("veli.viewer", "izleyicinin-parolası-2");
pub const ADMIN: (&str, &str) = ("yonetici", "yöneticinin-parolası-3");

/// The service with the console's users, and no reporter (the tests move jobs themselves).
pub async fn console_app(db: Db) -> TestApp {
    console_app_with(db, |_| {}).await
}

pub async fn console_app_with(
    db: Db,
    tweak: impl FnOnce(&mut iys_relay::config::Config),
) -> TestApp {
    let app = spawn(db, |c| {
        // Nothing in the background: the reporter, the pull sync and the agreement audit all call
        // İYS, and the chart tests count İYS's answers.
        c.reporter.enabled = false;
        c.iys.sync.enabled = false;
        c.audit.enabled = false;
        // The tests sign in many times from one address; the limit has a test of its own.
        c.console.logins_per_ip_per_minute = 10_000;
        tweak(c);
    })
    .await;
    let store = app.state.ledger.store().as_ref();
    let now = app.clock.now();
    for ((name, pw), role) in
        [OPERATOR, VIEWER, ADMIN]
            .into_iter()
            .zip([Role::Operator, Role::Viewer, Role::Admin])
    {
        users::add(store, name, role, pw, now).await.expect("user");
    }
    app
}

/// A browser-like client that keeps the console's cookies by hand (they are `Secure`, and
/// reqwest's cookie store would not send them over plain HTTP).
pub struct Browser {
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            base: app.base.clone(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().expect("cookie");
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = pair.split_once('=').expect("name=value");
            self.cookies.retain(|(n, _)| n != k);
            if !attrs.contains("Max-Age=0") {
                self.cookies.push((k.to_string(), val.to_string()));
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let r = client()
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.keep(&r);
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let r = client()
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("post");
        self.keep(&r);
        r
    }

    /// Signs in; the status of the sign-in post and its page (empty on success).
    pub async fn sign_in(&mut self, user: &str, password: &str) -> (u16, String) {
        let (status, page) = self.get("/console/login").await;
        assert_eq!(status, 200, "{page}");
        let token = hidden(&page, "login_csrf");
        let r = self
            .post(
                "/console/login",
                &[
                    ("login_csrf", &token),
                    ("next", "/console"),
                    ("username", user),
                    ("password", password),
                ],
            )
            .await;
        let status = r.status().as_u16();
        if status == 303 {
            assert_eq!(r.headers()["location"], "/console");
        }
        (status, r.text().await.expect("body"))
    }

    /// The CSRF token of the signed-in session, read from a page's forms.
    pub async fn csrf(&mut self) -> String {
        let (status, page) = self.get("/console/alerts").await;
        assert_eq!(status, 200, "{page}");
        hidden(&page, "csrf")
    }
}

/// The value of the first hidden input named `name` on a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().expect("value").to_string()
}

/// A recorded ONAY whose report job İYS refused for good: what an operator requeues.
pub async fn failed_job(store: &dyn Store, msg: &str, phone: &str) -> i64 {
    let now = at(crate::web_support::START);
    let times = JobTimes {
        due_at: now,
        target_at: now + Duration::hours(20),
        deadline_at: now + Duration::days(3),
    };
    let ev = NewEvent {
        intent: intent(msg, phone, Status::Onay, now),
        received_at: now,
        report: Some(times),
    };
    let job = store.record_batch(&[ev], now).await.unwrap()[0]
        .job_id
        .unwrap();
    let claimed = store
        .claim_jobs("t", now, now + Duration::minutes(1), 10)
        .await
        .unwrap();
    let j = claimed.iter().find(|j| j.id == job).expect("claimed");
    let fence = Fence::Lease {
        owner: "t".into(),
        attempts: j.attempts,
    };
    let failed = JobOutcome::Failed {
        error: format!("H121 {phone} is not valid"),
    };
    assert!(store.finish_job(job, &fence, &failed, now).await.unwrap());
    job
}

async fn job_state(app: &TestApp, id: i64) -> JobState {
    app.state.ledger.store().jobs_by_ids(&[id]).await.unwrap()[0].state
}

#[tokio::test]
async fn sign_in_lockout_and_sessions() {
    for db in backends() {
        let app = console_app(db).await;
        let mut b = Browser::new(&app);

        // Not signed in: every page sends to the sign-in form, and back afterwards.
        let r = client()
            .get(format!("{}/console/person?q=1", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"],
            "/console/login?next=%2Fconsole%2Fperson%3Fq%3D1"
        );

        // The cookie's attributes.
        let (status, page) = b.sign_in(OPERATOR.0, OPERATOR.1).await;
        assert_eq!(status, 303, "{db:?}: {page}");
        let (status, page) = b.get("/console").await;
        assert_eq!(status, 200);
        assert!(
            page.contains("Genel bakış") && page.contains(OPERATOR.0),
            "{page}"
        );

        // Wrong password: the same answer as an unknown user; the fifth in a row locks.
        let mut v = Browser::new(&app);
        let (status, page) = v.sign_in("nobody", "whatever-password").await;
        assert_eq!(status, 401);
        assert!(page.contains("Kullanıcı adı veya parola yanlış."), "{page}");
        for n in 1..=4 {
            let (status, page) = v.sign_in(VIEWER.0, "wrong-password-123").await;
            assert_eq!(status, 401, "attempt {n}");
            assert!(page.contains("Kullanıcı adı veya parola yanlış."), "{page}");
        }
        let (status, page) = v.sign_in(VIEWER.0, "wrong-password-123").await;
        assert_eq!(status, 401);
        assert!(page.contains("kilitli"), "the fifth failure locks: {page}");
        let (status, page) = v.sign_in(VIEWER.0, VIEWER.1).await;
        assert_eq!(status, 403, "locked: even the right password is refused");
        assert!(page.contains("kilitli"), "{page}");
        app.clock.advance(Duration::minutes(16));
        let (status, _) = v.sign_in(VIEWER.0, VIEWER.1).await;
        assert_eq!(status, 303, "the lock lapses");

        // Idle sessions end; the operator's, untouched for 31 minutes, is gone.
        app.clock.advance(Duration::minutes(31));
        let (status, _) = b.get("/console").await;
        assert_eq!(status, 303);

        // Sign-out ends the session for good (the old cookie no longer works).
        let (status, _) = b.sign_in(OPERATOR.0, OPERATOR.1).await;
        assert_eq!(status, 303);
        let csrf = b.csrf().await;
        let old = b.cookie_header();
        let r = b.post("/console/logout", &[("csrf", &csrf)]).await;
        assert_eq!(r.status(), 303);
        let r = client()
            .get(format!("{}/console", app.base))
            .header("cookie", old)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "the session ended server-side");

        // A disabled user's sessions end at once.
        let store = app.state.ledger.store().as_ref();
        let (status, _) = b.sign_in(OPERATOR.0, OPERATOR.1).await;
        assert_eq!(status, 303);
        users::set_disabled(store, OPERATOR.0, true, app.clock.now())
            .await
            .unwrap();
        assert_eq!(b.get("/console").await.0, 303);
        let (status, _) = b.sign_in(OPERATOR.0, OPERATOR.1).await;
        assert_eq!(status, 401);

        // Every sign-in and failure is in the action log.
        let log = store.console_actions(None, 100).await.unwrap();
        let count = |a: &str| log.iter().filter(|x| x.action == a).count();
        assert!(count("login") >= 3, "{log:?}");
        assert_eq!(count("login_failed"), 7, "{log:?}");
        assert_eq!(count("login_refused"), 1);
        assert_eq!(count("logout"), 1);
        assert_eq!(count("user_disable"), 1);
    }
}

#[tokio::test]
async fn forged_and_cross_site_posts_are_refused_and_change_nothing() {
    for db in backends() {
        let app = console_app(db).await;
        let store = app.state.ledger.store().as_ref();
        let job = failed_job(store, "f1", "+905321110010").await;
        let mut b = Browser::new(&app);
        assert_eq!(b.sign_in(OPERATOR.0, OPERATOR.1).await.0, 303);
        let csrf = b.csrf().await;
        let id = job.to_string();

        // No token, a wrong token, another session's token.
        let mut other = Browser::new(&app);
        assert_eq!(other.sign_in(ADMIN.0, ADMIN.1).await.0, 303);
        let foreign = other.csrf().await;
        for token in [None, Some("0".repeat(64)), Some(foreign)] {
            let mut form = vec![("job", id.as_str()), ("reason", "forged")];
            if let Some(t) = &token {
                form.push(("csrf", t));
            }
            let r = b.post("/console/jobs/requeue", &form).await;
            assert_eq!(r.status(), 403, "{db:?} token {token:?}");
            assert!(r.text().await.unwrap().contains("güvenlik belirteci"));
        }
        // The right token, but the browser says the form came from another site.
        let r = client()
            .post(format!("{}/console/jobs/requeue", app.base))
            .header("cookie", b.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example")
            .body(format!("csrf={csrf}&job={id}&reason=x"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(
            job_state(&app, job).await,
            JobState::Failed,
            "nothing changed"
        );

        // A sign-in post without the form's token (login CSRF).
        let r = client()
            .post(format!("{}/console/login", app.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("username={}&password={}", OPERATOR.0, OPERATOR.1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        assert!(r.headers().get("set-cookie").is_none(), "no session");

        // The genuine post works, and its reason is in the log before the result.
        let r = b
            .post(
                "/console/jobs/requeue",
                &[
                    ("csrf", &csrf),
                    ("job", &id),
                    ("reason", "numara düzeltildi"),
                ],
            )
            .await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        assert!(page.contains("kuyrukta"), "{page}");
        assert_eq!(job_state(&app, job).await, JobState::Pending);
        let log = store.console_actions(None, 10).await.unwrap();
        let req = log.iter().find(|a| a.action == "requeue").expect("logged");
        assert_eq!(
            (req.username.as_str(), req.reason.as_deref()),
            (OPERATOR.0, Some("numara düzeltildi"))
        );
        assert_eq!(req.detail["jobs"], serde_json::json!([job]));
    }
}

#[tokio::test]
async fn a_viewer_reads_masked_and_cannot_act() {
    for db in backends() {
        let app = console_app(db).await;
        let store = app.state.ledger.store().as_ref();
        let job = failed_job(store, "v1", "+905321110020").await;
        let mut v = Browser::new(&app);
        assert_eq!(v.sign_in(VIEWER.0, VIEWER.1).await.0, 303);
        let csrf = v.csrf().await;

        let (status, page) = v.get("/console/person?q=0532%20111%2000%2020").await;
        assert_eq!(status, 200);
        assert!(
            !page.contains("5321110020"),
            "a viewer sees no full number: {page}"
        );
        assert!(page.contains("+90532*****20"), "{page}");
        assert!(!page.contains("203.0.113.9"), "nor the IP");
        assert!(!page.contains("/console/person/pack"), "no pack button");
        let (_, jobs) = v.get("/console/jobs").await;
        assert!(!jobs.contains("/console/jobs/requeue"), "no requeue form");

        for (path, form) in [
            (
                "/console/jobs/requeue",
                vec![("job", job.to_string()), ("reason", "x".into())],
            ),
            ("/console/alerts/1/ack", vec![]),
            (
                "/console/links",
                vec![
                    ("recipient", "+905321110020".into()),
                    ("type", "MESAJ".into()),
                ],
            ),
            ("/console/person/pack", vec![("q", "+905321110020".into())]),
        ] {
            let mut f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            f.push(("csrf", &csrf));
            let r = v.post(path, &f).await;
            assert_eq!(r.status(), 403, "{db:?} {path}");
        }
        assert_eq!(
            v.get("/console/actions").await.0,
            403,
            "the log is for admins"
        );
        assert_eq!(job_state(&app, job).await, JobState::Failed);

        // The operator sees the same person whole.
        let mut o = Browser::new(&app);
        assert_eq!(o.sign_in(OPERATOR.0, OPERATOR.1).await.0, 303);
        let (_, page) = o.get("/console/person?q=5321110020").await;
        assert!(
            page.contains("+905321110020") && page.contains("203.0.113.9"),
            "{page}"
        );
        let mut a = Browser::new(&app);
        assert_eq!(a.sign_in(ADMIN.0, ADMIN.1).await.0, 303);
        let (status, page) = a.get("/console/actions").await;
        assert_eq!(status, 200);
        assert!(page.contains(VIEWER.0) && page.contains("login"), "{page}");
    }
}

#[tokio::test]
async fn bad_input_gets_a_page_and_a_4xx_never_a_5xx() {
    for db in backends() {
        let app = console_app(db).await;
        let mut b = Browser::new(&app);
        assert_eq!(b.sign_in(OPERATOR.0, OPERATOR.1).await.0, 303);
        let csrf = b.csrf().await;
        for (path, want) in [
            ("/console/person?q=not-a-number", 400),
            ("/console/person?q=%FF%FE", 400),
            ("/console/jobs?state=done", 400),
            ("/console/actions?before=abc", 403),
            ("/console/nothing", 404),
        ] {
            let (status, page) = b.get(path).await;
            assert_eq!(status, want, "{db:?} {path}: {page}");
        }
        let long = "x".repeat(600);
        for (path, form) in [
            ("/console/jobs/requeue", vec![("reason", "r")]),
            (
                "/console/jobs/requeue",
                vec![("job", "abc"), ("reason", "r")],
            ),
            ("/console/jobs/requeue", vec![("job", "1")]),
            (
                "/console/jobs/requeue",
                vec![("job", "1"), ("reason", long.as_str())],
            ),
            (
                "/console/links",
                vec![("recipient", "+905321110030"), ("type", "FAKS")],
            ),
            (
                "/console/links",
                vec![("recipient", "hello"), ("type", "MESAJ")],
            ),
            ("/console/person/pack", vec![("q", "hello")]),
            ("/console/alerts/abc/ack", vec![]),
            ("/console/alerts/999999/ack", vec![]),
        ] {
            let mut f = form.clone();
            f.push(("csrf", &csrf));
            let r = b.post(path, &f).await;
            let status = r.status().as_u16();
            let ct = r.headers()["content-type"].to_str().unwrap().to_string();
            assert!(
                (400..500).contains(&status),
                "{db:?} {path} {form:?}: {status}"
            );
            assert!(ct.starts_with("text/html"), "{path}: a page, not {ct}");
        }
        // A requeue of a job that is not failed or expired is refused with a reason, not an error.
        let r = b
            .post(
                "/console/jobs/requeue",
                &[("csrf", &csrf), ("job", "999999"), ("reason", "r")],
            )
            .await;
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("reddedildi"));
    }
}

#[tokio::test]
async fn the_action_log_is_append_only() {
    for db in backends() {
        let app = console_app(db).await;
        let url = app.state.config.database.url.expose().to_string();
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("raw connection");
        for sql in [
            "UPDATE console_actions SET username = 'someone else'",
            "DELETE FROM console_actions",
        ] {
            let r = sqlx::query(sql).execute(&mut conn).await;
            assert!(r.is_err(), "{db:?}: {sql} must fail");
        }
        let log = app
            .state
            .ledger
            .store()
            .console_actions(None, 10)
            .await
            .unwrap();
        assert_eq!(log.len(), 3, "the three user_add entries stay");
    }
}

#[tokio::test]
async fn the_chart_tables_follow_every_movement_and_acceptance() {
    for db in backends() {
        let app = console_app(db).await;
        let store = app.state.ledger.store().as_ref();
        let now = at(crate::web_support::START);
        failed_job(store, "c1", "+905321110040").await;
        let times = JobTimes {
            due_at: now,
            target_at: now + Duration::hours(20),
            deadline_at: now + Duration::days(3),
        };
        let evs: Vec<NewEvent> = (0..3)
            .map(|n| NewEvent {
                intent: intent(
                    &format!("c-{n}"),
                    &format!("+90532111005{n}"),
                    Status::Ret,
                    now,
                ),
                received_at: now,
                report: Some(times),
            })
            .collect();
        store.record_batch(&evs, now).await.unwrap();
        let day = iys_relay::console::overview::istanbul_day(now);
        let days = store.movement_days(day - 1).await.unwrap();
        let total: i64 = days.iter().map(|d| d.movements).sum();
        assert_eq!(total, 4, "{db:?} {days:?}");
        assert!(days.iter().all(|d| d.day == day && d.channel == "sms"));
        let ret: i64 = days
            .iter()
            .filter(|d| d.status == "RET")
            .map(|d| d.movements)
            .sum();
        assert_eq!(ret, 3);

        // Accepted 2 h after receipt with 70 h of its deadline left: buckets 4 (1–6 h) and 4
        // (48–72 h).
        let later = now + Duration::hours(2);
        let claimed = store
            .claim_jobs("t", later, later + Duration::minutes(1), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 3);
        let j = &claimed[0];
        let fence = Fence::Lease {
            owner: "t".into(),
            attempts: j.attempts,
        };
        let done = JobOutcome::Done {
            transaction_id: Some("tx-1".into()),
        };
        assert!(store.finish_job(j.id, &fence, &done, later).await.unwrap());
        let acc = store.acceptance_days(day - 1).await.unwrap();
        assert_eq!(acc.len(), 1, "{db:?} {acc:?}");
        assert_eq!(
            (acc[0].latency_bucket, acc[0].margin_bucket, acc[0].jobs),
            (4, 4, 1)
        );

        // İYS's answers, as its whitelist rule counts them.
        let attempt = |status: i64| iys_relay::store::queue::Attempt {
            job_id: Some(j.id),
            batch_id: None,
            brand_code: Some(700000),
            operation: "add".into(),
            method: "POST".into(),
            path: "/sps/x".into(),
            status: Some(status),
            code: None,
            duration_ms: 5,
            at: later,
        };
        store
            .record_attempts(&[attempt(200), attempt(422), attempt(503), attempt(200)])
            .await
            .unwrap();
        let o = store
            .attempt_outcomes(later - Duration::hours(24))
            .await
            .unwrap();
        assert_eq!((o.total, o.succeeded, o.client_errors), (4, 2, 1), "{db:?}");
        let o = store
            .attempt_outcomes(later + Duration::hours(2))
            .await
            .unwrap();
        assert_eq!(o.total, 0, "older hours are not counted");

        // The overview shows them.
        let mut b = Browser::new(&app);
        assert_eq!(b.sign_in(OPERATOR.0, OPERATOR.1).await.0, 303);
        let (status, page) = b.get("/console").await;
        assert_eq!(status, 200);
        assert!(page.contains("<svg"), "charts drawn");
        assert!(page.contains("başarısız"), "{page}");
    }
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_ip() {
    let app = spawn(Db::Sqlite, |c| c.console.logins_per_ip_per_minute = 3).await;
    let mut b = Browser::new(&app);
    for _ in 0..3 {
        assert_eq!(b.sign_in("nobody", "whatever-password").await.0, 401);
    }
    let (status, page) = b.sign_in("nobody", "whatever-password").await;
    assert_eq!(status, 429, "{page}");
    assert!(page.contains("Çok fazla deneme"), "{page}");
}

#[tokio::test]
async fn a_trusted_proxy_header_signs_in_known_users_only() {
    for db in backends() {
        let app = console_app_with(db, |c| {
            c.server.trusted_proxy = true;
            c.console.trusted_user_header = "X-Forwarded-User".into();
        })
        .await;
        let get = |user: Option<&str>, cookie: Option<&str>| {
            let mut r = client().get(format!("{}/console", app.base));
            if let Some(u) = user {
                r = r.header("x-forwarded-user", u);
            }
            if let Some(c) = cookie {
                r = r.header("cookie", c);
            }
            r.send()
        };
        let r = get(Some(OPERATOR.0), None).await.unwrap();
        assert_eq!(r.status(), 200, "{db:?}");
        assert!(r.text().await.unwrap().contains(OPERATOR.0));
        assert_eq!(get(Some("stranger"), None).await.unwrap().status(), 403);
        assert_eq!(
            get(None, None).await.unwrap().status(),
            303,
            "no header: sign in"
        );
        // The proxy's session row cannot be named by a cookie.
        let forged = format!("iys_console=sso:{}", OPERATOR.0);
        assert_eq!(get(None, Some(&forged)).await.unwrap().status(), 303);
        let log = app
            .state
            .ledger
            .store()
            .console_actions(None, 20)
            .await
            .unwrap();
        assert!(
            log.iter()
                .any(|a| a.action == "login" && a.detail["via"] == "proxy header")
        );
    }
    // Without server.trusted_proxy the header is ignored.
    let app = console_app_with(Db::Sqlite, |c| {
        c.console.trusted_user_header = "X-Forwarded-User".into();
    })
    .await;
    let r = client()
        .get(format!("{}/console", app.base))
        .header("x-forwarded-user", OPERATOR.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}
