//! Asynchronous batch add and its poll (docs/iys-api-notes.md §3.2, §3.3). Stateless checks reject the whole
//! list at once (422 with `index`); stateful rules run when the batch is processed, which happens
//! once `batch_processing_delay` has passed on the injected clock (or on demand in tests).

use std::collections::HashSet;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::{Value, json};

use super::Simulator;
use super::errors::{ApiError, ErrorItem};
use super::rules::{check_retailers, check_stateful, validate_consent};
use super::state::{Batch, BatchItem};
use crate::domain::time::to_iys;

const MAX_BATCH: usize = 1000;
const RESULT_RETENTION_DAYS: i64 = 60;

type Codes = Path<(String, String)>;

pub async fn submit_v1(s: State<Simulator>, p: Codes, h: HeaderMap, b: Bytes) -> Response {
    respond(submit(&s.0, &p.0, &h, &b, false))
}

pub async fn submit_v2(s: State<Simulator>, p: Codes, h: HeaderMap, b: Bytes) -> Response {
    respond(submit(&s.0, &p.0, &h, &b, true))
}

fn respond(r: Result<Value, ApiError>) -> Response {
    match r {
        Ok(v) => (StatusCode::ACCEPTED, Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn submit(
    sim: &Simulator,
    (iys, brand): &(String, String),
    h: &HeaderMap,
    body: &[u8],
    v2: bool,
) -> Result<Value, ApiError> {
    let (brand, v) = sim.authorize_json(h, iys, brand, body)?;
    let list = match v.as_array() {
        Some(a) if !a.is_empty() => a,
        _ => return Err(ApiError::code("H092")),
    };
    if list.len() > MAX_BATCH {
        return Err(ApiError::code("H091"));
    }
    let ctx = sim.ctx();
    let mut errs = Vec::new();
    let mut valid = Vec::new();
    let mut seen = HashSet::new();
    for (i, item) in list.iter().enumerate() {
        match validate_consent(item, &ctx) {
            Err(e) => errs.extend(e.into_iter().map(|e| e.index(i))),
            Ok(c) => {
                // One movement per address per batch (R9): the later duplicate is reported.
                if !seen.insert((c.recipient.clone(), c.recipient_type, c.consent_type)) {
                    errs.push(ErrorItem::new("H194").index(i));
                }
                valid.push(c);
            }
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::many(errs));
    }
    if let Some(e) = valid.iter().find_map(|c| check_retailers(c, sim.config())) {
        return Err(ApiError::from_item(e));
    }
    let now = ctx.now;
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut st = sim.lock();
    let total = st.total_records();
    let records = &st.brand(brand).records;
    let new_records = valid
        .iter()
        .filter(|c| !records.contains_key(&(c.recipient.clone(), c.recipient_type, c.consent_type)))
        .count();
    sim.check_quota(total, new_records)?;
    let items: Vec<BatchItem> = valid
        .into_iter()
        .map(|consent| BatchItem {
            sub_request_id: uuid::Uuid::new_v4().to_string(),
            consent,
        })
        .collect();
    let sub_requests: Vec<Value> = list
        .iter()
        .zip(&items)
        .map(|(input, item)| {
            let mut echo = input.clone();
            echo["subRequestId"] = json!(item.sub_request_id);
            echo["creationDate"] = json!(to_iys(now));
            echo
        })
        .collect();
    st.brand(brand).batches.insert(
        request_id.clone(),
        Batch {
            created_at: now,
            v2,
            items,
            results: None,
        },
    );
    Ok(json!({"requestId": request_id, "subRequests": sub_requests}))
}

impl Simulator {
    /// Processes every batch whose delay has passed on the injected clock.
    pub fn process_due(&self) {
        self.process(false);
    }

    /// Processes every pending batch now, whatever its age.
    pub async fn process_batches_now(&self) {
        self.process(true);
    }

    fn process(&self, force: bool) {
        let now = self.now();
        let delay = Duration::seconds(
            i64::try_from(self.config().batch_processing_delay).unwrap_or(i64::MAX / 2_000),
        );
        let mut st = self.lock();
        let mut due: Vec<(i64, String, chrono::DateTime<chrono::Utc>)> = st
            .brands
            .iter()
            .flat_map(|(b, bs)| {
                bs.batches
                    .iter()
                    .filter(|(_, batch)| {
                        batch.results.is_none() && (force || now >= batch.created_at + delay)
                    })
                    .map(|(rid, batch)| (*b, rid.clone(), batch.created_at))
            })
            .collect();
        // Oldest first, as İYS's queue would.
        due.sort_by(|a, b| a.2.cmp(&b.2).then(a.1.cmp(&b.1)));
        for (brand, rid, _) in due {
            let Some(batch) = st.brand(brand).batches.get(&rid).cloned() else {
                continue;
            };
            let mut results = Vec::with_capacity(batch.items.len());
            for (index, item) in batch.items.iter().enumerate() {
                let c = &item.consent;
                let key = (c.recipient.clone(), c.recipient_type, c.consent_type);
                let existing = st.brand(brand).records.get(&key).cloned();
                let mut r = json!({"subRequestId": item.sub_request_id, "index": index});
                let identical = existing.as_ref().filter(|e| {
                    e.status == c.status && e.source == c.source && e.consent_date == c.consent_date
                });
                let quota_hit = existing.is_none()
                    && self
                        .config()
                        .consent_limit
                        .is_some_and(|l| st.total_records() as u64 >= l);
                if batch.v2
                    && let Some(orig) = identical.and_then(|e| e.origin.clone().map(|o| (e, o)))
                {
                    // v2 resend of stored data: point at the request that processed it (R11).
                    let (e, (orig_rid, orig_sub)) = orig;
                    r["requestId"] = json!(rid);
                    r["status"] = json!("success");
                    r["transactionId"] = json!(e.transaction_id);
                    r["creationDate"] = json!(to_iys(e.creation_date));
                    r["originalRequestInformation"] =
                        json!({"requestId": orig_rid, "subRequestId": orig_sub});
                } else if quota_hit {
                    r["status"] = json!("failure");
                    r["error"] = error_json(&ErrorItem::new("H525"));
                } else if let Err(e) = check_stateful(existing.as_ref(), c, self.config(), true) {
                    r["status"] = json!("failure");
                    r["error"] = error_json(&e);
                } else {
                    let origin = Some((rid.clone(), item.sub_request_id.clone()));
                    let m = st.commit(brand, c, now, origin, None);
                    r["requestId"] = json!(rid);
                    r["status"] = json!("success");
                    r["transactionId"] = json!(m.transaction_id);
                    r["creationDate"] = json!(to_iys(m.creation_date));
                }
                if batch.v2 {
                    r["isAddConsentV2Service"] = json!(true);
                }
                results.push(r);
            }
            if let Some(b) = st.brand(brand).batches.get_mut(&rid) {
                b.results = Some(results);
            }
        }
    }
}

fn error_json(e: &ErrorItem) -> Value {
    json!({"code": e.code, "message": e.message})
}

/// H198 (over 36), H199 (letters only), H400 (digits only).
fn check_request_id(rid: &str) -> Result<(), ApiError> {
    let code = if rid.chars().count() > 36 {
        "H198"
    } else if !rid.is_empty() && rid.chars().all(char::is_alphabetic) {
        "H199"
    } else if !rid.is_empty() && rid.chars().all(|c| c.is_ascii_digit()) {
        "H400"
    } else {
        return Ok(());
    };
    Err(ApiError::from_item(
        ErrorItem::new(code).at("requestId").value(rid.into()),
    ))
}

fn poll(
    sim: &Simulator,
    iys: &str,
    brand: &str,
    rid: &str,
    h: &HeaderMap,
) -> Result<Value, ApiError> {
    let brand = sim.authorize(h, iys, brand)?;
    check_request_id(rid)?;
    let now = sim.now();
    let mut st = sim.lock();
    let results = st
        .brand(brand)
        .batches
        .get(rid)
        .filter(|b| now - b.created_at <= Duration::days(RESULT_RETENTION_DAYS))
        .and_then(|b| b.results.clone())
        .unwrap_or_default();
    Ok(Value::Array(results))
}

type PollPath = Path<(String, String, String)>;

pub async fn poll_v1(s: State<Simulator>, Path((i, b, r)): PollPath, h: HeaderMap) -> Response {
    match poll(&s.0, &i, &b, &r, &h) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn poll_v2(s: State<Simulator>, p: PollPath, h: HeaderMap) -> Response {
    poll_v1(s, p, h).await
}

/// `POST /__sim/batches/process`: process every pending batch now.
pub async fn process_hook(State(sim): State<Simulator>) -> StatusCode {
    sim.process_batches_now().await;
    StatusCode::NO_CONTENT
}
