//! Real `iys-relay` processes for the multi-process tests (tests/it/replicas.rs, tests/it/crash.rs):
//! each child gets its own config file and log file in a temp dir, is SIGKILLed when the
//! [`Procs`] is dropped, and every log is printed when the test panics. Every wait is bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use iys_relay::channels::sms::signature::twilio_signature;

/// No wait in these tests may exceed this: a failure must not hang CI.
pub const WAIT: Duration = Duration::from_secs(60);

/// The inbound number of the default config (serves brand "demo", 700000).
pub const SMS_TO: &str = "+908501234567";
pub const BRAND: i64 = 700000;

/// Secrets replacing the development values live mode refuses.
pub const LIVE_SECRETS: &str = r#"
[[api.tokens]]
name = "test"
token = "test-token-0123456789abcdef"

[links]
code_key = "test-link-key-0123456789abcdefghijklmnop"

[voice]
state_secret = "test-voice-state-secret-0123456789abcdefghijklmnop"
"#;

pub struct Procs {
    dir: tempfile::TempDir,
    children: BTreeMap<String, Child>,
}

impl Default for Procs {
    fn default() -> Self {
        Self::new()
    }
}

impl Procs {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            children: BTreeMap::new(),
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts `iys-relay --config <dir>/<name>.toml <args>`; stdout and stderr go to
    /// `<dir>/<name>.log` (appended, so a restarted process keeps one log).
    pub fn spawn(&mut self, name: &str, config_toml: &str, args: &[&str]) {
        assert!(
            !self.children.contains_key(name),
            "{name} is already running"
        );
        let config = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, config_toml).expect("write config");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iys-relay"));
        cmd.arg("--config")
            .arg(&config)
            .args(["--log-format", "json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        // The test's own environment must not reconfigure the children.
        for (k, _) in std::env::vars() {
            if k.starts_with("IYS_RELAY_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd.spawn().expect("spawn iys-relay");
        self.children.insert(name.to_string(), child);
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_path(name)).unwrap_or_default()
    }

    /// SIGKILL (no shutdown, no flush): what a crash or an OOM kill does.
    pub fn kill(&mut self, name: &str) {
        let mut child = self.children.remove(name).expect("running child");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The process id of `name`, for [`signal`].
    pub fn pid(&self, name: &str) -> u32 {
        self.children.get(name).expect("running child").id()
    }

    /// Panics with the log when `name` has exited on its own.
    pub fn assert_running(&mut self, name: &str) {
        let exited = self
            .children
            .get_mut(name)
            .map(|c| c.try_wait().ok().flatten());
        if let Some(Some(status)) = exited {
            panic!("{name} exited with {status}:\n{}", self.log(name));
        }
    }

    /// Polls `url` until it answers 200, failing early when `name` dies.
    pub async fn wait_http_ok(&mut self, name: &str, url: &str) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            self.assert_running(name);
            if let Ok(r) = http.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}: {url} never answered 200"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The lease owner the reporter of `name` logged at start (`reporter started`).
    pub async fn reporter_owner(&mut self, name: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            self.assert_running(name);
            if let Some(owner) = self.log(name).lines().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["message"] == "reporter started")
                    .then(|| v["owner"].as_str().map(String::from))?
            }) {
                return owner;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never started its reporter"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|f| f.strip_suffix(".log").map(String::from))
                .collect();
            names.sort();
            for name in names {
                let log = self.log(&name);
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(300)..];
                eprintln!("===== {name}.log (last {} lines) =====", tail.len());
                for l in tail {
                    eprintln!("{l}");
                }
            }
        }
    }
}

/// Sends `sig` (`STOP`, `CONT`, …) to process `pid` with kill(1): a stopped process keeps its
/// state, locks and connections but does nothing until it is continued or killed.
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// A port that was free a moment ago (the child binds it; a clash fails loudly, not silently).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Calls `f` until it returns `Some`, at most [`WAIT`]; panics with `what` on time-out.
pub async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A unique Turkish mobile for message `i` of run `run` (the per-sender limit is 10/min).
pub fn sender(run: u32, i: u32) -> String {
    format!("+90532{}{:06}", run % 10, i % 1_000_000)
}

/// A Twilio-signed inbound "EVET" (opt-in → an ONAY the reporter must send to İYS).
pub fn signed_sms(
    http: &reqwest::Client,
    base: &str,
    sid: &str,
    from: &str,
) -> reqwest::RequestBuilder {
    let params: Vec<(String, String)> = [
        ("MessageSid", sid),
        ("SmsSid", sid),
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("From", from),
        ("To", SMS_TO),
        ("Body", "EVET"),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let url = format!("{base}/webhooks/twilio/sms");
    let sig = twilio_signature(super::TWILIO_TOKEN, &url, &params);
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    http.post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(form)
}

/// `server` + `database` sections for a replica listening on `port`.
pub fn server_toml(port: u16, db_url: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\n\
         [database]\nurl = \"{db_url}\"\nmax_connections = 8\n"
    )
}

/// Runs one `iys-relay` command to its end on the database `db`, with JSON logs and none of
/// the test's own configuration.
pub fn run_cli(db: &str, args: &[&str]) -> std::process::Output {
    cli(db, args).output().expect("run iys-relay")
}

/// [`run_cli`] in the working directory `dir` (for commands that write where they are run).
pub fn run_cli_in(dir: &std::path::Path, db: &str, args: &[&str]) -> std::process::Output {
    cli(db, args)
        .current_dir(dir)
        .output()
        .expect("run iys-relay")
}

fn cli(db: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_iys-relay"));
    c.args(["--log-format", "json"])
        .args(args)
        .env("IYS_RELAY__DATABASE__URL", db)
        .env_remove("IYS_RELAY_CONFIG");
    c
}
