//! Push registration (docs/iys-api-notes.md §3.8) and İYS → HS pushes (§8): the fixed test payload on
//! registration, then every `IYS_*` movement, POSTed with HTTP Basic auth.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::errors::{ApiError, ErrorItem};
use super::state::{PushAttempt, PushRegistration, SimMovement};
use super::{SimHookError, Simulator};
use crate::domain::time::to_iys;
use crate::domain::{ConsentType, RecipientType, Source, Status};

const MAX_ACTIVE_PER_TYPE: usize = 2;
const TEST_TX: &str = "e52ee30512adfcd2a41fb3b4682f5bd61eee5b1c92bda665fc0b7e56644d429d";

/// The registration test message, identical for every HS (§8).
pub fn test_payload() -> Value {
    json!({"list":[{"iysCode":121212,"brandCode":121212,"consentDate":"2015-05-01 15:00:00",
        "creationDate":"2015-05-01 15:00:00","source":"IYS_MOBIL","recipient":"pushtest@iys.org.tr",
        "recipientType":"BIREYSEL","status":"ONAY","type":"EPOSTA","transactionId":TEST_TX}]})
}

struct Connection {
    url: String,
    consent_type: ConsentType,
    username: String,
    password: String,
}

/// Field checks shared by registration and unregistration: H531, H111/H117, H093.
fn parse_connection(
    o: &Map<String, Value>,
    allow_http: bool,
) -> Result<Connection, Vec<ErrorItem>> {
    let mut errs = Vec::new();
    let s = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let url = s("url");
    let secure =
        url.is_some_and(|u| u.starts_with("https://") || (allow_http && u.starts_with("http://")));
    if !secure {
        errs.push(ErrorItem::new("H531").at("url"));
    }
    let t = match o.get("type") {
        None | Some(Value::Null) => {
            errs.push(ErrorItem::new("H111").at("type"));
            None
        }
        Some(v) => {
            let t = v.as_str().and_then(|t| t.parse::<ConsentType>().ok());
            if t.is_none() {
                errs.push(ErrorItem::new("H117").at("type").value(v.clone()));
            }
            t
        }
    };
    let user = s("username");
    if user.is_none() {
        errs.push(
            ErrorItem::new("H093")
                .with_message("Kullanıcı adı (username) bulunamadı.")
                .at("username"),
        );
    }
    let pass = s("password");
    if pass.is_none() {
        errs.push(
            ErrorItem::new("H093")
                .with_message("Şifre (password) bulunamadı.")
                .at("password"),
        );
    }
    match (url, t, user, pass) {
        (Some(url), Some(consent_type), Some(u), Some(p)) if errs.is_empty() => Ok(Connection {
            url: url.to_string(),
            consent_type,
            username: u.to_string(),
            password: p.to_string(),
        }),
        _ => Err(errs),
    }
}

/// POSTs one payload; `Ok(status)` when the HS answered, `Err(true)` on timeout.
async fn post(
    sim: &Simulator,
    url: &str,
    user: &str,
    pass: &str,
    body: &Value,
) -> Result<u16, bool> {
    sim.http()
        .post(url)
        .basic_auth(user, Some(pass))
        .json(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.is_timeout())
}

pub async fn register(
    State(sim): State<Simulator>,
    Path((iys, brand)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (brand, v) = sim.authorize_json(&h, &iys, &brand, &body)?;
    let conns = v
        .get("connection")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::code("H530"))?;
    let mut parsed = Vec::new();
    for c in conns {
        let o = c.as_object().ok_or_else(|| ApiError::code("H530"))?;
        parsed.push(parse_connection(o, sim.config().allow_http_push).map_err(ApiError::many)?);
    }
    for c in &parsed {
        let st = sim.lock();
        let active = st.brands.get(&brand).map_or(0, |b| {
            b.push_regs
                .iter()
                .filter(|r| r.active && r.consent_type == c.consent_type && r.url != c.url)
                .count()
        });
        if active >= MAX_ACTIVE_PER_TYPE {
            return Err(ApiError::code("H530"));
        }
    }
    let mut failure = None;
    for c in parsed {
        let outcome = post(&sim, &c.url, &c.username, &c.password, &test_payload()).await;
        let ok = matches!(outcome, Ok(s) if (200..300).contains(&s));
        let mut st = sim.lock();
        st.push_log.push(PushAttempt {
            url: c.url.clone(),
            transaction_id: TEST_TX.into(),
            status: outcome.ok(),
        });
        let regs = &mut st.brand(brand).push_regs;
        regs.retain(|r| !(r.url == c.url && r.consent_type == c.consent_type));
        regs.push(PushRegistration {
            url: c.url,
            consent_type: c.consent_type,
            username: c.username,
            password: c.password,
            register_time: sim.now(),
            active: ok,
        });
        if !ok && failure.is_none() {
            failure = Some(match outcome {
                Err(true) => ErrorItem::new("H191").with_message("Bağlantı zaman aşımına uğradı."),
                _ => ErrorItem::new("H530"),
            });
        }
    }
    match failure {
        Some(e) => Err(ApiError::from_item(e).with_status(StatusCode::UNPROCESSABLE_ENTITY)),
        None => Ok(Json(json!({"message": "Bağlantı oluşturuldu"}))),
    }
}

pub async fn list(
    State(sim): State<Simulator>,
    Path((iys, brand)): Path<(String, String)>,
    h: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let brand = sim.authorize(&h, &iys, &brand)?;
    let mut st = sim.lock();
    let rows: Vec<Value> = st
        .brand(brand)
        .push_regs
        .iter()
        .map(|r| {
            let status = if r.active { "Bağlantı Oluşturuldu" } else { "Bağlantı Oluşturulamadı" };
            json!({"url": r.url, "type": r.consent_type, "registerTime": to_iys(r.register_time), "status": status})
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}

pub async fn unregister(
    State(sim): State<Simulator>,
    Path((iys, brand)): Path<(String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (brand, v) = sim.authorize_json(&h, &iys, &brand, &body)?;
    let o = v.as_object().ok_or_else(|| ApiError::code("H014"))?;
    let c = parse_connection(o, true).map_err(ApiError::many)?;
    let mut st = sim.lock();
    let regs = &mut st.brand(brand).push_regs;
    let before = regs.len();
    regs.retain(|r| {
        !(r.url == c.url
            && r.consent_type == c.consent_type
            && r.username == c.username
            && r.password == c.password)
    });
    if regs.len() == before {
        return Err(ApiError::from_item(
            ErrorItem::new("H530").with_message("Bağlantı kaldırılamadı."),
        ));
    }
    Ok(Json(json!({"message": "Bağlantı Kaldırıldı"})))
}

/// Sends an `IYS_*` movement to every active connection of its brand and type. Fire and forget;
/// [`Simulator::flush_pushes`] waits for them.
pub(crate) fn dispatch(sim: &Simulator, m: &SimMovement) {
    if !m.source.is_some_and(Source::is_iys) {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!("no tokio runtime: push skipped");
        return;
    };
    let targets: Vec<PushRegistration> = sim
        .lock()
        .brands
        .get(&m.brand_code)
        .map(|b| {
            b.push_regs
                .iter()
                .filter(|r| r.active && r.consent_type == m.consent_type)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut row = m.to_wire(false);
    row["iysCode"] = json!(sim.config().iys_code);
    row["brandCode"] = json!(m.brand_code);
    let payload = json!({"list": [row]});
    for reg in targets {
        let (sim2, payload, tx) = (sim.clone(), payload.clone(), m.transaction_id.clone());
        let h = rt.spawn(async move {
            let outcome = post(&sim2, &reg.url, &reg.username, &reg.password, &payload).await;
            sim2.lock().push_log.push(PushAttempt {
                url: reg.url,
                transaction_id: tx,
                status: outcome.ok(),
            });
        });
        sim.track_push(h);
    }
}

fn bireysel() -> RecipientType {
    RecipientType::Bireysel
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CitizenAction {
    brand_code: i64,
    recipient: String,
    #[serde(default = "bireysel")]
    recipient_type: RecipientType,
    #[serde(rename = "type")]
    consent_type: ConsentType,
    status: Status,
    source: Source,
    citizen_name: Option<String>,
}

/// `POST /__sim/citizen-actions`: [`Simulator::inject_citizen_action`] over HTTP.
pub async fn citizen_action_hook(State(sim): State<Simulator>, body: Bytes) -> Response {
    let a: CitizenAction = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    match sim.inject_citizen_action(
        a.brand_code,
        &a.recipient,
        a.recipient_type,
        a.consent_type,
        a.status,
        a.source,
        a.citizen_name,
    ) {
        Ok(m) => {
            let mut v = m.to_wire(true);
            v["brandCode"] = json!(m.brand_code);
            Json(v).into_response()
        }
        Err(e @ SimHookError::UnknownBrand(_)) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": e.to_string()}))).into_response()
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}
