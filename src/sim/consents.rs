//! Single add (v1, v2), single status, multi status and history (docs/iys-api-notes.md §3.1, §3.4–3.6).

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::errors::{ApiError, ErrorItem};
use super::limits::Limit;
use super::rules::{
    Ctx, ValidConsent, check_recipient, check_retailers, check_stateful, validate_consent,
};
use super::state::SimRecord;
use super::{ClientIp, Simulator};
use crate::domain::time::to_iys;
use crate::domain::{ConsentType, RecipientType};

type Codes = Path<(String, String)>;
const MAX_MULTI_STATUS: usize = 1000;
const MAX_HISTORY_PAGE: i64 = 100;

pub async fn add_v1(s: State<Simulator>, p: Codes, h: HeaderMap, b: Bytes) -> Response {
    add(s.0, p.0, h, b, false)
}

pub async fn add_v2(s: State<Simulator>, p: Codes, h: HeaderMap, b: Bytes) -> Response {
    add(s.0, p.0, h, b, true)
}

fn add(
    sim: Simulator,
    (iys, brand): (String, String),
    h: HeaderMap,
    body: Bytes,
    v2: bool,
) -> Response {
    match add_inner(&sim, &iys, &brand, &h, &body, v2) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Parses a JSON body; anything unparseable is 400 H014.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|_| ApiError::code("H014"))
}

impl Simulator {
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        Ctx {
            cfg: self.config(),
            cal: self.calendar(),
            now: self.now(),
        }
    }

    /// 422 H525 when `new_records` more records would pass the subscription quota.
    pub(crate) fn check_quota(
        &self,
        existing_total: usize,
        new_records: usize,
    ) -> Result<(), ApiError> {
        match self.config().consent_limit {
            Some(limit) if (existing_total + new_records) as u64 > limit && new_records > 0 => {
                Err(ApiError::code("H525"))
            }
            _ => Ok(()),
        }
    }
}

fn key_of(c: &ValidConsent) -> (String, RecipientType, ConsentType) {
    (c.recipient.clone(), c.recipient_type, c.consent_type)
}

fn add_inner(
    sim: &Simulator,
    iys: &str,
    brand: &str,
    h: &HeaderMap,
    body: &[u8],
    v2: bool,
) -> Result<Value, ApiError> {
    let (brand, v) = sim.authorize_json(h, iys, brand, body)?;
    if !v.is_object() {
        return Err(ApiError::code("H085"));
    }
    let ctx = sim.ctx();
    let c = validate_consent(&v, &ctx).map_err(ApiError::many)?;
    if let Some(e) = check_retailers(&c, sim.config()) {
        return Err(ApiError::from_item(e));
    }
    let mut st = sim.lock();
    // v2 idempotency comes before the ordering rule: an identical resend is not an update (R3).
    if v2 && let Some((tx, at)) = st.brand(brand).v2_seen.get(&c.canonical) {
        return Ok(json!({"transactionId": tx, "creationDate": to_iys(*at)}));
    }
    let total = st.total_records();
    let existing = st.brand(brand).records.get(&key_of(&c)).cloned();
    sim.check_quota(total, usize::from(existing.is_none()))?;
    check_stateful(existing.as_ref(), &c, sim.config(), false).map_err(ApiError::from_item)?;
    let m = st.commit(brand, &c, ctx.now, None, None);
    if v2 {
        st.brand(brand).v2_seen.insert(
            c.canonical.clone(),
            (m.transaction_id.clone(), m.creation_date),
        );
    }
    Ok(json!({"transactionId": m.transaction_id, "creationDate": to_iys(m.creation_date)}))
}

/// `{recipient, recipientType, type}` as used by status and history (H111/H117, H170/H116, H114,
/// then the recipient format with H166 for long phones).
fn parse_query_body(
    body: &[u8],
    strict: bool,
) -> Result<(String, RecipientType, ConsentType), ApiError> {
    let v = parse_json(body)?;
    let o: &Map<String, Value> = v.as_object().ok_or_else(|| ApiError::code("H097"))?;
    let mut errs = Vec::new();
    let field = |k: &str, missing: &str, invalid: &str, errs: &mut Vec<ErrorItem>| match o.get(k) {
        None | Some(Value::Null) => {
            errs.push(ErrorItem::new(missing).at(k));
            None
        }
        Some(x) => {
            let s = x.as_str().map(str::to_string);
            if s.is_none() && !invalid.is_empty() {
                errs.push(ErrorItem::new(invalid).at(k).value(x.clone()));
            }
            s
        }
    };
    let t = field("type", "H111", "H117", &mut errs);
    let ctype = t.as_deref().and_then(|s| s.parse::<ConsentType>().ok());
    if t.is_some() && ctype.is_none() {
        errs.push(ErrorItem::new("H117").at("type").value(o["type"].clone()));
    }
    let rt_raw = field("recipientType", "H170", "H116", &mut errs);
    let rt = rt_raw
        .as_deref()
        .and_then(|s| s.parse::<RecipientType>().ok());
    if rt_raw.is_some() && rt.is_none() {
        errs.push(
            ErrorItem::new("H116")
                .at("recipientType")
                .value(o["recipientType"].clone()),
        );
    }
    let r = field("recipient", "H114", "H114", &mut errs);
    let recipient = r.and_then(|r| match check_recipient(&r, ctype, strict, "H166") {
        Ok(r) => Some(r),
        Err(mut e) => {
            errs.append(&mut e);
            None
        }
    });
    match (recipient, rt, ctype) {
        (Some(r), Some(rt), Some(t)) if errs.is_empty() => Ok((r, rt, t)),
        _ => Err(ApiError::many(errs)),
    }
}

fn record_json(r: &SimRecord) -> Value {
    let mut v = json!({
        "creationDate": to_iys(r.first_creation_date),
        "recipient": r.recipient,
        "recipientType": r.recipient_type,
        "status": r.status,
        "type": r.consent_type,
        "transactionId": r.transaction_id,
    });
    if let Some(d) = r.consent_date {
        v["consentDate"] = json!(to_iys(d));
    }
    if let Some(s) = r.source {
        v["source"] = json!(s);
    }
    if let Some(rc) = r.retailer_code {
        v["retailerCode"] = json!(rc);
    }
    v
}

/// Counts one hourly-limited call for this client.
fn hourly(sim: &Simulator, limit: Limit, ip: &str) -> Result<(), ApiError> {
    if sim.config().rate_limits_enabled && !sim.lock().limiter.hit(limit, ip, sim.now()) {
        return Err(ApiError::code(limit.code()));
    }
    Ok(())
}

pub async fn status(
    State(sim): State<Simulator>,
    Path((iys, brand)): Codes,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let brand = sim.authorize(&h, &iys, &brand)?;
    hourly(&sim, Limit::StatusHourly, &ip)?;
    let key = parse_query_body(&body, false)?;
    let found = sim.lock().brand(brand).records.get(&key).map(record_json);
    Ok(match (found, sim.config().status_not_found) {
        (Some(v), _) => Json(v).into_response(),
        (None, 204) => StatusCode::NO_CONTENT.into_response(),
        (None, 200) => Json(json!({})).into_response(),
        // Undocumented [U]: İYS lists no "not found" code for this call.
        (None, _) => ApiError::from_item(ErrorItem::new("H097").with_message("İzin bulunamadı."))
            .with_status(StatusCode::NOT_FOUND)
            .into_response(),
    })
}

pub async fn multi_status(
    State(sim): State<Simulator>,
    Path((iys, brand, rt, ctype)): Path<(String, String, String, String)>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let brand = sim.authorize(&h, &iys, &brand)?;
    let rt: RecipientType = rt.parse().map_err(|_| {
        ApiError::from_item(
            ErrorItem::new("H116")
                .at("recipientType")
                .value(rt.clone().into()),
        )
    })?;
    let t: ConsentType = ctype.parse().map_err(|_| {
        ApiError::from_item(
            ErrorItem::new("H117")
                .at("type")
                .value(ctype.clone().into()),
        )
    })?;
    let v = parse_json(&body)?;
    let list = match v.get("recipients") {
        None | Some(Value::Null) => {
            return Err(ApiError::from_item(ErrorItem::new("H168").at("recipients")));
        }
        Some(Value::Array(a)) => a,
        Some(x) => {
            return Err(ApiError::from_item(
                ErrorItem::new("H478").at("recipients").value(x.clone()),
            ));
        }
    };
    if list.is_empty() {
        return Err(ApiError::from_item(
            ErrorItem::new("H164").at("recipients").value(json!([])),
        ));
    }
    if list.len() > MAX_MULTI_STATUS {
        // The over-1000 code of multi-status is undocumented; H127 is the nearest "list too
        // long" code, worded for the limit that applies here.
        return Err(ApiError::from_item(
            ErrorItem::new("H127")
                .with_message("Alıcı listesi (recipients) uzunluğu en fazla 1000 olmalıdır.")
                .at("recipients"),
        ));
    }
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let raw = item.as_str().unwrap_or_default();
        let is_email = raw.contains('@');
        if is_email != (t == ConsentType::Eposta) {
            let msg = if t == ConsentType::Eposta {
                "İzin tipi (type) EPOSTA için, alıcı (recipient) e-posta formatında olmalıdır."
                    .to_string()
            } else {
                format!(
                    "İzin tipi (type) {t} için, alıcı (recipient) telefon formatında olmalıdır."
                )
            };
            errs.push(
                ErrorItem::new("H464")
                    .with_message(msg)
                    .at("recipient")
                    .value(item.clone()),
            );
            continue;
        }
        match check_recipient(raw, Some(t), false, "H166") {
            Err(e) => errs.extend(
                e.into_iter()
                    .map(|e| e.at_path(vec![json!("recipients"), json!(i)])),
            ),
            Ok(r) if !seen.insert(r.clone()) => errs.push(
                ErrorItem::new("H193")
                    .at_path(vec![json!("recipients"), json!(i)])
                    .value(item.clone()),
            ),
            Ok(r) => keys.push(r),
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::many(errs));
    }
    let mut st = sim.lock();
    let records = &st.brand(brand).records;
    let onay: Vec<Value> = keys
        .into_iter()
        .filter(|r| {
            records
                .get(&(r.clone(), rt, t))
                .is_some_and(|rec| rec.status == crate::domain::Status::Onay)
        })
        .map(Value::from)
        .collect();
    Ok(Json(
        json!({"requestId": uuid::Uuid::new_v4().to_string(), "list": onay}),
    ))
}

/// `limit`/`offset` of the history call: H183/H187/H186 and H182 (codes as in the table).
fn paging(q: &HashMap<String, String>) -> Result<(usize, usize), ApiError> {
    let num = |k: &str, default: i64, code: &str| -> Result<i64, ApiError> {
        match q.get(k) {
            None => Ok(default),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n),
                _ => Err(ApiError::from_item(
                    ErrorItem::new(code).at(k).value(s.clone().into()),
                )),
            },
        }
    };
    let limit = num("limit", MAX_HISTORY_PAGE, "H183")?;
    if limit == 0 {
        return Err(ApiError::from_item(
            ErrorItem::new("H187").at("limit").value(0.into()),
        ));
    }
    if limit > MAX_HISTORY_PAGE {
        return Err(ApiError::from_item(
            ErrorItem::new("H186").at("limit").value(limit.into()),
        ));
    }
    let offset = num("offset", 0, "H182")?;
    Ok((limit as usize, offset as usize))
}

pub async fn history(
    State(sim): State<Simulator>,
    Path((iys, brand)): Codes,
    Query(q): Query<HashMap<String, String>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    h: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let brand = sim.authorize(&h, &iys, &brand)?;
    hourly(&sim, Limit::HistoryHourly, &ip)?;
    let (limit, offset) = paging(&q)?;
    let (r, rt, t) = parse_query_body(&body, false)?;
    let mut st = sim.lock();
    let mut rows: Vec<_> = st
        .brand(brand)
        .movements
        .iter()
        .filter(|m| m.recipient == r && m.recipient_type == rt && m.consent_type == t)
        .cloned()
        .collect();
    // Newest consentDate first; undated rows (TACIR first saves, line closures) last.
    rows.sort_by(|a, b| {
        b.consent_date
            .cmp(&a.consent_date)
            .then(b.creation_date.cmp(&a.creation_date))
    });
    let total = rows.len();
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| m.to_wire(false))
        .collect();
    Ok(Json(json!({
        "list": page,
        "pagination": {"totalCount": total, "pageSize": page.len(), "offset": offset},
    })))
}
