//! `GET {B}/consents/changes?source=HS|IYS&limit=N&after=TOKEN` (docs/iys-api-notes.md §3.7).
//!
//! Window: `creationDate` in [now − 7 days, now − pull_lag]; order: (creationDate, transactionId);
//! cursor `"{epoch seconds}_{transactionId}"` of the last row; 204 when nothing is left.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use serde_json::json;

use super::Simulator;
use super::errors::{ApiError, ErrorItem};

const MAX_LIMIT: i64 = 1000;
const WINDOW_DAYS: i64 = 7;

/// Parses the opaque cursor back into (epoch seconds, transactionId).
fn parse_after(s: &str) -> Option<(i64, String)> {
    let (epoch, tx) = s.split_once('_')?;
    Some((epoch.parse().ok()?, tx.to_string()))
}

pub async fn changes(
    State(sim): State<Simulator>,
    Path((iys, brand)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let brand = sim.authorize(&h, &iys, &brand)?;
    let want_iys = match q.get("source").map(String::as_str) {
        None | Some("IYS") => true,
        Some("HS") => false,
        Some(other) => {
            return Err(ApiError::from_item(
                ErrorItem::new("H506").at("source").value(other.into()),
            ));
        }
    };
    let limit = match q.get("limit") {
        None => MAX_LIMIT,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if n > MAX_LIMIT => {
                return Err(ApiError::from_item(
                    ErrorItem::new("H507").at("limit").value(s.clone().into()),
                ));
            }
            Ok(n) if n > 0 => n,
            _ => {
                return Err(ApiError::from_item(
                    ErrorItem::new("H183").at("limit").value(s.clone().into()),
                ));
            }
        },
    };
    let after = match q.get("after").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(parse_after(s).ok_or_else(|| ApiError::code("H098"))?),
    };
    let now = sim.now();
    let from = now - Duration::days(WINDOW_DAYS);
    let to = now - Duration::seconds(i64::try_from(sim.config().pull_lag).unwrap_or(0));
    let mut st = sim.lock();
    let mut rows: Vec<_> = st
        .brand(brand)
        .movements
        .iter()
        .filter(|m| m.source.is_some_and(|s| s.is_iys()) == want_iys)
        .filter(|m| m.creation_date >= from && m.creation_date <= to)
        .filter(|m| match &after {
            None => true,
            Some((epoch, tx)) => {
                (m.creation_date.timestamp(), m.transaction_id.as_str()) > (*epoch, tx.as_str())
            }
        })
        .cloned()
        .collect();
    drop(st);
    rows.sort_by(|a, b| {
        (a.creation_date, &a.transaction_id).cmp(&(b.creation_date, &b.transaction_id))
    });
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let Some(last) = rows.last() else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let cursor = format!("{}_{}", last.creation_date.timestamp(), last.transaction_id);
    let list: Vec<_> = rows.iter().map(|m| m.to_wire(want_iys)).collect();
    Ok(Json(json!({"after": cursor, "list": list})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip() {
        assert_eq!(
            parse_after("1597740617_abc"),
            Some((1597740617, "abc".into()))
        );
        assert_eq!(parse_after("x_abc"), None);
        assert_eq!(parse_after("nounderscore"), None);
    }
}
