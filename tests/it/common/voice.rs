//! Whole calls replayed as signed Twilio webhooks: each TwiML answer parsed and checked, the
//! next action URL followed, every recording named fetched.

use std::collections::HashSet;

use iys_relay::channels::twiml_check::{self, Node};
use iys_relay::channels::voice::PromptId;

use super::TestApp;

/// One TwiML answer, parsed and checked against the allowed verbs and attributes.
pub struct Doc {
    pub root: Node,
    pub base: String,
}

impl Doc {
    pub fn parse(xml: &str, base: &str) -> Doc {
        let root =
            twiml_check::parse(xml).unwrap_or_else(|e| panic!("ill-formed TwiML {e}: {xml}"));
        twiml_check::check_allowed(&root).unwrap_or_else(|e| panic!("{e}: {xml}"));
        Doc {
            root,
            base: base.to_string(),
        }
    }
    /// The prompts played, as `lang/id` (from the `<Play>` URLs), in order.
    pub fn plays(&self) -> Vec<String> {
        let prefix = format!("{}/voice-prompts/", self.base);
        self.root
            .walk()
            .into_iter()
            .filter(|n| n.name == "Play")
            .map(|n| {
                n.text
                    .strip_prefix(&prefix)
                    .and_then(|s| s.strip_suffix(".wav"))
                    .unwrap_or_else(|| panic!("unexpected Play URL {}", n.text))
                    .to_string()
            })
            .collect()
    }
    pub fn says(&self) -> Vec<(String, Option<String>)> {
        self.root
            .walk()
            .into_iter()
            .filter(|n| n.name == "Say")
            .map(|n| (n.text.clone(), n.attr("language").map(str::to_string)))
            .collect()
    }
    pub fn gather(&self) -> Option<&Node> {
        self.root.children.iter().find(|n| n.name == "Gather")
    }
    pub fn hangs_up(&self) -> bool {
        self.root
            .children
            .last()
            .is_some_and(|n| n.name == "Hangup")
    }
    /// The Gather action URL; the timeout `<Redirect>` must point at the same signed URL.
    pub fn action(&self) -> Option<String> {
        let g = self.gather()?;
        assert_eq!(g.attr("method"), Some("POST"));
        let redirect = self.root.children.iter().find(|n| n.name == "Redirect")?;
        assert_eq!(
            redirect.text,
            g.attr("action")?,
            "timeout redirect = action"
        );
        g.attr("action").map(str::to_string)
    }
}

pub fn ids(expected: &[(&str, PromptId)]) -> Vec<String> {
    expected
        .iter()
        .map(|(l, id)| format!("{l}/{}", id.as_str()))
        .collect()
}

/// Where the app under test listens, and the client to reach it.
pub trait Host {
    fn base(&self) -> &str;
    fn http(&self) -> &reqwest::Client;
}

impl Host for TestApp {
    fn base(&self) -> &str {
        &self.base
    }
    fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// A call in progress: posts signed webhooks the way Twilio would.
pub struct Call<'a> {
    pub app: &'a dyn Host,
    pub sid: String,
    pub from: String,
    pub to: String,
    /// Twilio's `Direction`: `inbound` for the opt-out line, `outbound-api` for a dialer's call.
    pub direction: String,
    pub next: Option<String>,
    fetched: HashSet<String>,
}

impl<'a> Call<'a> {
    pub fn new(app: &'a dyn Host, sid: &str, from: &str, to: &str) -> Self {
        Call {
            app,
            sid: sid.into(),
            from: from.into(),
            to: to.into(),
            direction: "inbound".into(),
            next: None,
            fetched: HashSet::new(),
        }
    }

    /// A business's own call to `to` from its number `from`.
    pub fn outbound(app: &'a dyn Host, sid: &str, from: &str, to: &str) -> Self {
        let mut c = Self::new(app, sid, from, to);
        c.direction = "outbound-api".into();
        c
    }

    pub fn params(&self, digits: Option<&str>) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("CallSid", self.sid.as_str()),
            ("AccountSid", "AC00000000000000000000000000000000"),
            ("From", self.from.as_str()),
            ("To", self.to.as_str()),
            ("CallStatus", "in-progress"),
            ("Direction", self.direction.as_str()),
            ("ApiVersion", "2010-04-01"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(d) = digits {
            p.push(("Digits".into(), d.into()));
        }
        p
    }

    pub async fn post(&mut self, url: &str, params: &[(String, String)]) -> Doc {
        let r = signed_post(self.app, url, params).await;
        assert_eq!(r.status(), 200, "{url}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/xml")
        );
        let doc = Doc::parse(&r.text().await.unwrap(), self.app.base());
        self.next = doc.action();
        // Every recording the TwiML names is actually served.
        for p in doc.plays() {
            if self.fetched.insert(p.clone()) {
                let r = self
                    .app
                    .http()
                    .get(format!("{}/voice-prompts/{p}.wav", self.app.base()))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{p}");
                assert_eq!(r.headers()["content-type"], "audio/wav");
            }
        }
        doc
    }

    pub async fn start(&mut self) -> Doc {
        let url = format!("{}/webhooks/twilio/voice", self.app.base());
        self.start_at(&url).await
    }

    /// The first webhook of the call, at `url` (a dialer's `<Redirect>` target).
    pub async fn start_at(&mut self, url: &str) -> Doc {
        let p = self.params(None);
        self.post(url, &p).await
    }

    pub async fn press(&mut self, digits: &str) -> Doc {
        let url = self.next.clone().expect("the last answer gathered keys");
        let p = self.params(Some(digits));
        self.post(&url, &p).await
    }

    /// Gather timed out: Twilio follows the `<Redirect>` without `Digits`.
    pub async fn timeout(&mut self) -> Doc {
        let url = self.next.clone().expect("the last answer gathered keys");
        let p = self.params(None);
        self.post(&url, &p).await
    }
}

pub async fn signed_post(
    app: &dyn Host,
    url: &str,
    params: &[(String, String)],
) -> reqwest::Response {
    super::post_twilio_signed_with(app.http(), url, url, params).await
}
