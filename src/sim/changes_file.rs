//! `GET {B}/changes/{reportDate}/file` (docs/iys-api-notes.md §3.11): the CSV of every movement İYS stored
//! on one Istanbul day, HS and citizen ones alike, from the movement log. Only the last 7 days
//! are served (H502); a date not in `YYYY-MM-DD` form, or not a calendar date, gives H501.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use chrono_tz::Europe::Istanbul;

use super::Simulator;
use super::errors::{ApiError, ErrorItem};
use super::state::SimMovement;
use crate::domain::time::to_iys;
use crate::iys::wire::CHANGES_FILE_HEADER;

const WINDOW_DAYS: i64 = 7;

/// `YYYY-MM-DD` exactly (ten characters), and a real calendar date.
fn parse_report_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// The file body: header, then one line per movement, each line ending with `\n`.
pub(crate) fn render(rows: &[SimMovement]) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    for m in rows {
        let consent = m.consent_date.map(to_iys).unwrap_or_default();
        let _ = w.write_record([
            to_iys(m.creation_date).as_str(),
            m.transaction_id.as_str(),
            m.recipient.as_str(),
            m.recipient_type.as_str(),
            m.consent_type.as_str(),
            m.status.as_str(),
            consent.as_str(),
            m.source.map(|s| s.as_str()).unwrap_or_default(),
        ]);
    }
    let body = w.into_inner().unwrap_or_default();
    format!("{CHANGES_FILE_HEADER}\n{}", String::from_utf8_lossy(&body))
}

pub async fn daily_file(
    State(sim): State<Simulator>,
    Path((iys, brand, date)): Path<(String, String, String)>,
    h: HeaderMap,
) -> Result<Response, ApiError> {
    let brand = sim.authorize(&h, &iys, &brand)?;
    let day = parse_report_date(&date).ok_or_else(|| {
        ApiError::from_item(
            ErrorItem::new("H501")
                .at("reportDate")
                .value(date.clone().into()),
        )
    })?;
    let today = sim.now().with_timezone(&Istanbul).date_naive();
    if day < today - Duration::days(WINDOW_DAYS) {
        return Err(ApiError::from_item(
            ErrorItem::new("H502").at("reportDate").value(date.into()),
        ));
    }
    let mut rows: Vec<SimMovement> = sim
        .movements(brand)
        .into_iter()
        .filter(|m| m.creation_date.with_timezone(&Istanbul).date_naive() == day)
        .collect();
    rows.sort_by(|a, b| {
        (a.creation_date, &a.transaction_id).cmp(&(b.creation_date, &b.transaction_id))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        render(&rows),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::super::testkit::*;
    use super::*;
    use crate::domain::{ConsentType, RecipientType, Source, Status};
    use crate::iys::wire::parse_changes_file;
    use crate::iys::{IysClient, IysClientConfig};

    const PHONE: &str = "+905321234567";

    fn today(kit: &Kit) -> NaiveDate {
        kit.clock_now().with_timezone(&Istanbul).date_naive()
    }

    async fn file(kit: &Kit, date: &str) -> (StatusCode, Value) {
        kit.get(&b(&format!("/changes/{date}/file"))).await
    }

    #[test]
    fn report_dates() {
        assert_eq!(
            parse_report_date("2026-03-04"),
            NaiveDate::from_ymd_opt(2026, 3, 4)
        );
        for bad in [
            "2026-3-4",
            "2026-02-30",
            "04.03.2026",
            "2026-03-04T00",
            "",
            "２０２６-03-04",
        ] {
            assert_eq!(parse_report_date(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn lists_the_days_movements_of_both_sources_in_order() {
        let kit = Kit::new();
        let (s, v) = kit
            .post(&v2("/consents"), consent(&kit, PHONE, "MESAJ", "ONAY", 5))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        kit.advance(60);
        let cit = kit
            .sim
            .citizen_mesaj(BRAND, PHONE, Status::Ret, Source::IysMobil)
            .unwrap();
        let (s, v) = file(&kit, &today(&kit).to_string()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let text = v.as_str().expect("csv text");
        assert!(text.starts_with(&format!("{CHANGES_FILE_HEADER}\n")));
        assert!(text.ends_with('\n'));
        let rows = parse_changes_file(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(
            (rows[0].source.as_str(), rows[0].status),
            ("HS_WEB", Status::Onay)
        );
        assert_eq!(
            (rows[1].source.as_str(), rows[1].transaction_id.as_str()),
            ("IYS_MOBIL", cit.transaction_id.as_str())
        );
        assert_eq!(rows[1].recipient, PHONE);
        // The next day's file does not hold them.
        kit.advance(86_400);
        kit.forget();
        let (_, v) = file(&kit, &today(&kit).to_string()).await;
        assert_eq!(v.as_str().unwrap(), format!("{CHANGES_FILE_HEADER}\n"));
    }

    #[tokio::test]
    async fn seven_day_window_and_date_format() {
        let kit = Kit::new();
        let d = today(&kit);
        let (s, _) = file(&kit, &(d - Duration::days(7)).to_string()).await;
        assert_eq!(s, StatusCode::OK);
        let (s, v) = file(&kit, &(d - Duration::days(8)).to_string()).await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H502"));
        let (s, v) = file(&kit, "2026-02-30").await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H501"));
        let (s, v) = file(&kit, "04-03-2026").await;
        assert_eq!((s, code(&v)), (StatusCode::UNPROCESSABLE_ENTITY, "H501"));
    }

    #[tokio::test]
    async fn client_reads_the_file_over_a_socket() {
        let kit = Kit::new();
        kit.sim
            .inject_citizen_action(
                BRAND,
                "a.b@example.com",
                RecipientType::Bireysel,
                ConsentType::Eposta,
                Status::Onay,
                Source::IysWeb,
                None,
            )
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(kit.sim.clone().serve(listener));
        let client = IysClient::new(
            IysClientConfig {
                base_url: base,
                username: "sim".into(),
                password: "sim".into(),
                iys_code: IYS,
                timeout: std::time::Duration::from_secs(5),
            },
            Arc::new(kit.clock.clone()),
        )
        .unwrap();
        let rows = client.changes_file(BRAND, today(&kit)).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].consent_type, ConsentType::Eposta);
        let old = today(&kit) - Duration::days(9);
        let e = client.changes_file(BRAND, old).await.unwrap_err();
        assert_eq!(e.code(), Some("H502"));
    }

    #[test]
    fn parser_accepts_bom_crlf_reordered_and_empty_dates() {
        let text = "\u{feff}transactionId,creationDate,source,recipient,recipientType,type,status,consentDate\r\n\
                    tx1,2026-03-04 10:00:00,IYS_AHS_HAT_KAPATMA,+905321234567,BIREYSEL,MESAJ,RET,\r\n";
        let rows = parse_changes_file(text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].consent_date, None);
        assert_eq!(rows[0].transaction_id, "tx1");
        assert!(parse_changes_file(b"").unwrap().is_empty());
        assert!(
            parse_changes_file(CHANGES_FILE_HEADER.as_bytes())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn parser_rejects_bad_rows_with_their_line() {
        let bad = format!(
            "{CHANGES_FILE_HEADER}\n2026-03-04 10:00:00,tx,+905321234567,BIREYSEL,MESAJ,RED,,HS_WEB\n"
        );
        let e = parse_changes_file(bad.as_bytes()).unwrap_err();
        assert!(
            matches!(e, crate::iys::wire::FileError::Row { line: 2, .. }),
            "{e:?}"
        );
        let e = parse_changes_file(b"creationDate,recipient\nx,y\n").unwrap_err();
        assert_eq!(
            e,
            crate::iys::wire::FileError::MissingColumn("transactionId")
        );
    }
}
