//! Read-only hooks for tests that run the simulator in another process (`iys-relay iys-sim`):
//! `GET /__sim/request-log` (every İYS call answered, with its arrival time) and
//! `GET /__sim/movements?brand=N` (the brand's movement log). They change nothing and, like every
//! `/__sim` path, are neither rate-limited nor logged.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::{LoggedRequest, SimMovement, Simulator};

pub async fn request_log(State(sim): State<Simulator>) -> Json<Vec<LoggedRequest>> {
    Json(sim.request_log())
}

#[derive(Debug, Deserialize)]
pub struct BrandQuery {
    brand: i64,
}

pub async fn movements(
    State(sim): State<Simulator>,
    Query(q): Query<BrandQuery>,
) -> Json<Vec<SimMovement>> {
    Json(sim.movements(q.brand))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::Value;

    use crate::sim::testkit::{BRAND, Kit, consent, v2};

    #[tokio::test]
    async fn hooks_show_calls_and_movements_without_logging_themselves() {
        let kit = Kit::new();
        let body = consent(&kit, "+905321112233", "MESAJ", "ONAY", 5);
        let (s, v) = kit.post(&v2("/consents"), body).await;
        assert_eq!(s, StatusCode::OK, "{v}");

        let (s, log) = kit
            .raw("GET", "/__sim/request-log", None, None, "application/json")
            .await;
        assert_eq!(s, StatusCode::OK);
        let log = log.as_array().expect("array").clone();
        assert_eq!(log.len(), 2, "token + add: {log:?}");
        assert_eq!(log[1]["path"], v2("/consents"));
        assert_eq!(log[1]["status"], 200);
        assert!(log[1]["at"].is_string(), "arrival time: {:?}", log[1]);

        let path = format!("/__sim/movements?brand={BRAND}");
        let (s, m) = kit.raw("GET", &path, None, None, "application/json").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(m.as_array().map(Vec::len), Some(1), "{m}");
        assert_eq!(m[0]["recipient"], "+905321112233");
        assert_eq!(m[0]["status"], "ONAY");

        let (s, m) = kit
            .raw("GET", "/__sim/movements?brand=1", None, None, "")
            .await;
        assert_eq!((s, m), (StatusCode::OK, Value::Array(vec![])));
        let (s, _) = kit.raw("GET", "/__sim/movements", None, None, "").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "brand is required");
        assert_eq!(kit.sim.request_log().len(), 2, "hooks are not İYS calls");
    }
}
