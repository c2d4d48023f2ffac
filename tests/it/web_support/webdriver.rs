//! A minimal W3C WebDriver client over reqwest, and a chromedriver it starts itself.
//!
//! Only the handful of commands the tests need (session, navigate, find, text, click,
//! screenshot). A full client crate (fantoccini) would pull a second TLS stack into the build.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

fn first_existing(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    std::env::var(env)
        .ok()
        .map(PathBuf::from)
        .into_iter()
        .chain(candidates.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

/// Chromium and chromedriver, or `None` when they are not installed. Under CI (`CI` set) a
/// missing browser is a failure, never a skip.
pub fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let chrome = first_existing(
        "IYS_RELAY_TEST_CHROME",
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
    );
    let driver = first_existing("IYS_RELAY_TEST_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    match (chrome, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ if std::env::var_os("CI").is_some() => panic!(
            "chromium and chromedriver are required under CI: apt-get install -y chromium chromium-driver"
        ),
        _ => {
            eprintln!("SKIPPED: chromium/chromedriver not installed (and CI is not set)");
            None
        }
    }
}

/// A chromedriver process on a free loopback port; killed on drop.
pub struct Driver {
    pub url: String,
    chrome: PathBuf,
    _child: Child,
    http: reqwest::Client,
}

impl Driver {
    pub async fn start(chrome: &Path, chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        // chromedriver announces readiness on stdout; wait for that line, not for a timer.
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("started successfully") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "chromedriver did not start");
        // Keep draining stdout so chromedriver never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Driver {
            url: format!("http://127.0.0.1:{port}"),
            chrome: chrome.to_path_buf(),
            _child: child,
            http: reqwest::Client::new(),
        }
    }

    /// A new headless browser with a phone-sized viewport, its own empty profile, and Turkish
    /// as the preferred language.
    pub async fn session(&self, profile: &Path) -> Session {
        self.session_with(profile, &Window::Phone, "tr-TR", None)
            .await
    }

    /// A new headless browser with the given viewport and preferred language, saving
    /// downloads to `downloads` when given.
    pub async fn session_with(
        &self,
        profile: &Path,
        window: &Window,
        lang: &str,
        downloads: Option<&Path>,
    ) -> Session {
        let primary = lang.split('-').next().unwrap_or(lang);
        let mut options = json!({
            "binary": self.chrome,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                format!("--lang={lang}"),
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {"intl.accept_languages": format!("{lang},{primary}")},
        });
        match window {
            Window::Phone => {
                options["mobileEmulation"] =
                    json!({"deviceMetrics": {"width": 360, "height": 740, "pixelRatio": 2.0}});
            }
            Window::Desktop { width, height } => {
                if let Some(args) = options["args"].as_array_mut() {
                    args.push(json!(format!("--window-size={width},{height}")));
                }
            }
        }
        if let Some(dir) = downloads {
            options["prefs"]["download.default_directory"] = json!(dir.display().to_string());
            options["prefs"]["download.prompt_for_download"] = json!(false);
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": options,
        }}});
        let v = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.url),
            Some(caps),
        )
        .await;
        let id = v["sessionId"].as_str().expect("session id").to_string();
        let s = Session {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
        };
        // Element look-ups wait up to 10 s for the element to appear (page loads after a click).
        s.cmd(
            reqwest::Method::POST,
            "/timeouts",
            json!({"implicit": 10_000}),
        )
        .await;
        s
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut req = http.request(method.clone(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = r.status();
    let v: Value = r.json().await.expect("webdriver json");
    assert!(status.is_success(), "{method} {url}: {status} {v}");
    v["value"].clone()
}

pub struct Session {
    base: String,
    http: reqwest::Client,
}

pub struct Element(String);

/// The viewport of a session.
pub enum Window {
    /// 360×740 at 2× (the short-link pages are opened on phones).
    Phone,
    Desktop {
        width: u32,
        height: u32,
    },
}

impl Session {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let body = (method == reqwest::Method::POST).then_some(body);
        call(&self.http, method, &format!("{}{path}", self.base), body).await
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    pub async fn current_url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", Value::Null).await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_string())))
            .collect()
    }

    pub async fn find(&self, css: &str) -> Element {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        Element(v[ELEMENT_KEY].as_str().expect("element id").to_string())
    }

    pub async fn text(&self, e: &Element) -> String {
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.0),
                Value::Null,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.find(css).await;
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{}/attribute/{name}", e.0),
                Value::Null,
            )
            .await;
        v.as_str().map(str::to_string)
    }

    pub async fn click(&self, e: &Element) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            json!({}),
        )
        .await;
    }

    /// Clicks `e` and waits until the page it was on has been replaced (a form post, a link):
    /// a look-up right after a click could otherwise find the old page's elements.
    pub async fn click_and_wait(&self, e: &Element) {
        let old = self.find("html").await;
        self.click(e).await;
        for _ in 0..400 {
            let r = self
                .http
                .get(format!("{}/element/{}/name", self.base, old.0))
                .send()
                .await
                .expect("webdriver");
            if r.status() == reqwest::StatusCode::NOT_FOUND {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the page did not change after the click");
    }

    /// Types `text` into an input (after clearing it).
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            json!({"text": text}),
        )
        .await;
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("png");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    pub async fn quit(self) {
        self.cmd(reqwest::Method::DELETE, "", Value::Null).await;
    }
}
