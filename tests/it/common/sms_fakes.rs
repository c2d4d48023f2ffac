//! Fakes of the Turkish SMS providers, built from their published documentation (Verimor SMS
//! API user guide; Netgsm REST v2 openapi.json and SDK fixtures; İleti Merkezi API pages), with
//! their own formats and checks: nothing here uses the relay's adapters. One server holds all
//! three: the pull APIs, the send APIs (recording what was sent), and Verimor's push sender
//! with its documented retries (three more tries, five minutes apart, then never again). It also
//! holds a Twilio-style send API (`Messages.json`, Twilio's REST error body) for `sms.outbound`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Europe::Istanbul;
use serde_json::{Value, json};

pub const USER: &str = "908501234567";
pub const SECRET: &str = "api-secret-123";
/// The auth token the Twilio-style send API accepts (any account SID).
pub const TWILIO_TOKEN: &str = "outbound-twilio-token";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub provider: &'static str,
    pub from: String,
    pub to: String,
    pub text: String,
}

struct Push {
    body: Value,
    next_at: DateTime<Utc>,
    tries: u32,
}

#[derive(Default)]
struct Inner {
    verimor: Vec<(i64, DateTime<Utc>, String, String, String)>,
    netgsm: Vec<(DateTime<Utc>, String, String, String)>,
    ileti: Vec<(DateTime<Utc>, String, String, String)>,
    pushes: Vec<Push>,
    given_up: usize,
    sent: Vec<Sent>,
    requests: HashMap<&'static str, u32>,
    next_id: i64,
    /// Statuses the next send requests answer with instead of sending (an outage, a refusal).
    send_failures: VecDeque<u16>,
    /// Each Netgsm inbox query's window, as the fake read its parameters.
    netgsm_windows: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// Numbers that replied STOP at Twilio: a send to them is refused with 21610.
    twilio_unsubscribed: HashSet<String>,
}

#[derive(Clone)]
pub struct FakeProviders {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

fn local(t: DateTime<Utc>, fmt: &str) -> String {
    t.with_timezone(&Istanbul).format(fmt).to_string()
}

fn from_local(s: &str, fmt: &str) -> Option<DateTime<Utc>> {
    let n = NaiveDateTime::parse_from_str(s, fmt).ok()?;
    Istanbul
        .from_local_datetime(&n)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

fn basic_ok(h: &HeaderMap) -> bool {
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{SECRET}"))
    );
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
}

impl FakeProviders {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            next_id: 13582300,
            ..Inner::default()
        }));
        let app = axum::Router::new()
            .route("/v2/inbound_messages", get(verimor_inbox))
            .route("/v2/send.json", post(verimor_send))
            .route("/sms/rest/v2/inbox", get(netgsm_inbox))
            .route("/sms/rest/v2/send", post(netgsm_send))
            .route("/v1/get-inbox/json", post(ileti_inbox))
            .route("/v1/send-sms/json", post(ileti_send))
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                post(twilio_send),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            inner,
            http: reqwest::Client::new(),
        }
    }

    /// A person sends `text` from `from` (`905…`) to a Verimor number at `at`: it is in the
    /// inbox and a push is due at once.
    pub fn verimor_receive(&self, from: &str, to: &str, text: &str, at: DateTime<Utc>) -> i64 {
        let mut g = self.inner.lock().unwrap();
        g.next_id += 1;
        let id = g.next_id;
        g.verimor
            .push((id, at, from.to_string(), to.to_string(), text.to_string()));
        let body = json!([{
            "message_id": id, "type": "inbound",
            "received_at": local(at, "%Y-%m-%d %H:%M:%S"),
            "network": "TURKCELL", "source_addr": from, "destination_addr": to,
            "keyword": "", "content": text,
        }]);
        g.pushes.push(Push {
            body,
            next_at: at,
            tries: 0,
        });
        id
    }

    /// Makes the push attempts due at `now` against `url`; returns how many got 200 OK.
    pub async fn deliver_pushes(&self, url: &str, now: DateTime<Utc>) -> usize {
        let due: Vec<(usize, Value)> = {
            let g = self.inner.lock().unwrap();
            g.pushes
                .iter()
                .enumerate()
                .filter(|(_, p)| p.next_at <= now)
                .map(|(i, p)| (i, p.body.clone()))
                .collect()
        };
        let mut ok = Vec::new();
        for (i, body) in due {
            let r = self.http.post(url).json(&body).send().await;
            let delivered = r.is_ok_and(|r| r.status() == StatusCode::OK);
            ok.push((i, delivered));
        }
        let mut g = self.inner.lock().unwrap();
        let mut delivered = 0;
        for (i, good) in ok.iter().rev() {
            if *good {
                g.pushes.remove(*i);
                delivered += 1;
                continue;
            }
            let p = &mut g.pushes[*i];
            p.tries += 1;
            p.next_at += Duration::minutes(5);
            if p.tries >= 4 {
                g.pushes.remove(*i);
                g.given_up += 1;
            }
        }
        delivered
    }

    pub fn pushes_given_up(&self) -> usize {
        self.inner.lock().unwrap().given_up
    }

    pub fn netgsm_receive(&self, from_national: &str, to: &str, text: &str, at: DateTime<Utc>) {
        self.inner.lock().unwrap().netgsm.push((
            at,
            from_national.to_string(),
            to.to_string(),
            text.to_string(),
        ));
    }

    pub fn ileti_receive(&self, from: &str, to: &str, text: &str, at: DateTime<Utc>) {
        self.inner.lock().unwrap().ileti.push((
            at,
            from.to_string(),
            to.to_string(),
            text.to_string(),
        ));
    }

    /// The next send requests (any provider) answer with `statuses`, one each, and send nothing.
    pub fn fail_next_sends(&self, statuses: &[u16]) {
        self.inner
            .lock()
            .unwrap()
            .send_failures
            .extend(statuses.iter().copied());
    }

    pub fn netgsm_windows(&self) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        self.inner.lock().unwrap().netgsm_windows.clone()
    }

    /// `e164` replied STOP to the Twilio sender.
    pub fn twilio_unsubscribe(&self, e164: &str) {
        self.inner
            .lock()
            .unwrap()
            .twilio_unsubscribed
            .insert(e164.to_string());
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.inner.lock().unwrap().sent.clone()
    }

    pub fn requests(&self, endpoint: &str) -> u32 {
        self.inner
            .lock()
            .unwrap()
            .requests
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }
}

type St = State<Arc<Mutex<Inner>>>;

fn count(g: &mut Inner, endpoint: &'static str) {
    *g.requests.entry(endpoint).or_default() += 1;
}

/// A scripted failure for this send request, if one is due.
fn scripted_failure(g: &mut Inner) -> Option<Response> {
    let status = StatusCode::from_u16(g.send_failures.pop_front()?).unwrap();
    Some((status, status.canonical_reason().unwrap_or("error")).into_response())
}

async fn verimor_inbox(State(s): St, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut g = s.lock().unwrap();
    count(&mut g, "verimor_inbox");
    if q.get("username").map(String::as_str) != Some(USER)
        || q.get("password").map(String::as_str) != Some(SECRET)
    {
        return (StatusCode::UNAUTHORIZED, "Geçersiz kullanıcı adı/şifre").into_response();
    }
    let fmt = "%Y-%m-%d %H:%M:%S";
    let mut rows: Vec<_> = g.verimor.clone();
    rows.sort_by_key(|r| r.0);
    let rows: Vec<_> = if let Some(gt) = q.get("greater_than") {
        let Ok(gt) = gt.parse::<i64>() else {
            return (StatusCode::BAD_REQUEST, "greater_than").into_response();
        };
        rows.into_iter().filter(|r| r.0 > gt).take(100).collect()
    } else {
        let (Some(f), Some(t)) = (
            q.get("from_time").and_then(|s| from_local(s, fmt)),
            q.get("to_time").and_then(|s| from_local(s, fmt)),
        ) else {
            return (StatusCode::BAD_REQUEST, "from_time/to_time").into_response();
        };
        rows.into_iter().filter(|r| r.1 >= f && r.1 <= t).collect()
    };
    let out: Vec<Value> = rows
        .iter()
        .map(|(id, at, from, to, text)| {
            json!({"message_id": id, "received_at": local(*at, "%Y-%m-%dT%H:%M:%S%.3f+03:00"),
                "network": "VODAFONE", "source_addr": from, "destination_addr": to,
                "keyword": "", "content": text})
        })
        .collect();
    Json(Value::Array(out)).into_response()
}

async fn verimor_send(State(s): St, Json(b): Json<Value>) -> Response {
    let mut g = s.lock().unwrap();
    count(&mut g, "verimor_send");
    if let Some(r) = scripted_failure(&mut g) {
        return r;
    }
    if b["username"] != USER || b["password"] != SECRET {
        return (StatusCode::UNAUTHORIZED, "Geçersiz kullanıcı adı/şifre").into_response();
    }
    let Some(m) = b["messages"].get(0) else {
        return (StatusCode::BAD_REQUEST, "MISSING_MESSAGE").into_response();
    };
    let dest = m["dest"].as_str().unwrap_or("");
    if dest.len() != 12 || !dest.starts_with("90") {
        return (StatusCode::BAD_REQUEST, "INVALID_DESTINATION_ADDRESS").into_response();
    }
    g.sent.push(Sent {
        provider: "verimor",
        from: b["source_addr"].as_str().unwrap_or("").into(),
        to: dest.into(),
        text: m["msg"].as_str().unwrap_or("").into(),
    });
    (StatusCode::OK, format!("{}", 20000 + g.sent.len())).into_response()
}

async fn netgsm_inbox(
    State(s): St,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut g = s.lock().unwrap();
    count(&mut g, "netgsm_inbox");
    let err = |code: &str| {
        (
            StatusCode::NOT_ACCEPTABLE,
            Json(json!({"code": code, "description": "error"})),
        )
            .into_response()
    };
    if !basic_ok(&headers) {
        return err("30");
    }
    let fmt = "%d%m%Y%H%M%S";
    let (Some(f), Some(t)) = (
        q.get("startdate").and_then(|s| from_local(s, fmt)),
        q.get("stopdate").and_then(|s| from_local(s, fmt)),
    ) else {
        return err("80");
    };
    g.netgsm_windows.push((f, t));
    if t - f > Duration::days(30) {
        return err("60");
    }
    let messages: Vec<Value> = g
        .netgsm
        .iter()
        .filter(|r| r.0 >= f && r.0 <= t)
        .map(|(at, from, to, text)| {
            json!({"message": text, "sender": from, "receiver": to,
                "datetime": local(*at, "%d.%m.%Y %H:%M:%S")})
        })
        .collect();
    Json(json!({"code": "00", "description": "Success", "messages": messages})).into_response()
}

async fn netgsm_send(State(s): St, headers: HeaderMap, Json(b): Json<Value>) -> Response {
    let mut g = s.lock().unwrap();
    count(&mut g, "netgsm_send");
    if let Some(r) = scripted_failure(&mut g) {
        return r;
    }
    if !basic_ok(&headers) {
        return (
            StatusCode::NOT_ACCEPTABLE,
            Json(json!({"code": "30", "jobid": null})),
        )
            .into_response();
    }
    let m = &b["messages"][0];
    let no = m["no"].as_str().unwrap_or("");
    if no.len() != 10 || !no.bytes().all(|c| c.is_ascii_digit()) {
        return (
            StatusCode::NOT_ACCEPTABLE,
            Json(json!({"code": "20", "jobid": null})),
        )
            .into_response();
    }
    g.sent.push(Sent {
        provider: "netgsm",
        from: b["msgheader"].as_str().unwrap_or("").into(),
        to: no.into(),
        text: m["msg"].as_str().unwrap_or("").into(),
    });
    Json(json!({"code": "00", "jobid": format!("{}", 17000 + g.sent.len()), "description": "Success"}))
        .into_response()
}

fn ileti_auth(b: &Value) -> bool {
    b["request"]["authentication"]["key"] == USER
        && b["request"]["authentication"]["hash"] == SECRET
}

fn ileti_status(code: u16, message: &str) -> Value {
    json!({"code": code.to_string(), "message": message})
}

async fn ileti_inbox(State(s): St, Json(b): Json<Value>) -> Response {
    let mut g = s.lock().unwrap();
    count(&mut g, "ileti_inbox");
    if !ileti_auth(&b) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"response": {"status": ileti_status(401, "Üyelik bilgileri hatalı")}})),
        )
            .into_response();
    }
    let messages: Vec<Value> = g
        .ileti
        .iter()
        .map(|(at, from, to, text)| {
            json!({"date": local(*at, "%Y-%m-%d %H:%M:%S"), "sender": from, "text": text, "number": to})
        })
        .collect();
    Json(json!({"response": {"status": ileti_status(200, "İşlem başarılı"), "inbox": {"message": messages}}}))
        .into_response()
}

async fn ileti_send(State(s): St, Json(b): Json<Value>) -> Response {
    let mut g = s.lock().unwrap();
    count(&mut g, "ileti_send");
    if let Some(r) = scripted_failure(&mut g) {
        return r;
    }
    if !ileti_auth(&b) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"response": {"status": ileti_status(401, "Üyelik bilgileri hatalı")}})),
        )
            .into_response();
    }
    let o = &b["request"]["order"];
    let to = o["message"]["receipents"]["number"][0]
        .as_str()
        .unwrap_or("")
        .to_string();
    g.sent.push(Sent {
        provider: "iletimerkezi",
        from: o["sender"].as_str().unwrap_or("").into(),
        to,
        text: o["message"]["text"].as_str().unwrap_or("").into(),
    });
    Json(json!({"response": {"status": ileti_status(200, "İşlem başarılı"), "order": {"id": format!("{}", 9000 + g.sent.len())}}}))
        .into_response()
}

/// Twilio's Messages resource: form `To`, `From`, `Body`, Basic `AccountSid:AuthToken`; 201 with
/// the message, or Twilio's error body (`code`, `message`, `more_info`, `status`).
async fn twilio_send(
    State(s): St,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut g = s.lock().unwrap();
    count(&mut g, "twilio_send");
    let error = |status: StatusCode, code: i64, message: &str| {
        (
            status,
            Json(json!({"code": code, "message": message,
                "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
                "status": status.as_u16()})),
        )
            .into_response()
    };
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{TWILIO_TOKEN}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    if let Some(r) = scripted_failure(&mut g) {
        return r;
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let (Some(to), Some(from), Some(text)) = (form.get("To"), form.get("From"), form.get("Body"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            21604,
            "A 'To' phone number is required.",
        );
    };
    if g.twilio_unsubscribed.contains(to) {
        return error(
            StatusCode::BAD_REQUEST,
            21610,
            "Attempt to send to unsubscribed recipient",
        );
    }
    g.sent.push(Sent {
        provider: "twilio",
        from: from.clone(),
        to: to.clone(),
        text: text.clone(),
    });
    let n = g.sent.len();
    (
        StatusCode::CREATED,
        Json(json!({"sid": format!("SM{n:032}"), "status": "queued", "to": to})),
    )
        .into_response()
}
