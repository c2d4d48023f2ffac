//! Sync back from İYS: the pull loop on `consents/changes?source=IYS` per brand, with the cursor
//! persisted after each page is recorded (at-least-once; the ledger dedupes by transactionId).
//! Citizens' changes enter the ledger with their `IYS_*` source, so they are never reported back.

use std::sync::Arc;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::paced::{CallError, PacedIys};
use super::wire::{Movement, StatusResponse};
use crate::domain::time::from_iys;
use crate::domain::{Channel, ConsentIntent, Evidence, Recipient, Source};
use crate::ledger::{Ledger, LedgerError};
use crate::store::StoreError;

/// The ledger's provider name for İYS; with the transactionId it is the dedupe key, shared by
/// pull and push so a movement seen both ways is recorded once.
pub const IYS_PROVIDER: &str = "iys";
const CURSOR_SOURCE: &str = "IYS";
/// Pages per brand per round, so one round always ends.
const MAX_PAGES: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub pages: usize,
    pub recorded: usize,
    pub duplicates: usize,
    /// Not a citizen movement, or not usable (bad recipient, no transactionId).
    pub skipped: usize,
    /// Brands whose pull failed this round (retried next round).
    pub failed_brands: usize,
}

/// A citizen's movement as a ledger intent; `None` for anything that is not one.
pub fn movement_intent(brand_code: i64, m: &Movement) -> Option<ConsentIntent> {
    if !m.is_iys() || m.transaction_id.trim().is_empty() {
        return None;
    }
    let recipient = Recipient::parse_for(&m.recipient, m.consent_type).ok()?;
    // İYS adds IYS_* sources over time; an unknown one is kept verbatim in the evidence.
    let source = m
        .parsed_source()
        .filter(|s| s.is_iys())
        .unwrap_or(Source::IysWeb);
    // Operator line closures may carry no consent date: the creation date stands in.
    let consent_at = m.consent_at().or_else(|| m.created_at())?;
    Some(ConsentIntent {
        brand_code,
        recipient,
        recipient_type: m.recipient_type,
        consent_type: m.consent_type,
        status: m.status,
        source,
        channel: Channel::Iys,
        consent_at,
        provider: IYS_PROVIDER.into(),
        provider_message_id: m.transaction_id.trim().to_string(),
        evidence: Evidence {
            raw: serde_json::to_value(m).unwrap_or_default(),
            ..Evidence::default()
        },
    })
}

/// İYS's stored record for an address (a status query's answer) as a ledger movement, for when
/// İYS holds a word the ledger does not know. The id is derived from the record itself, so
/// finding the same record again records it once. `None` when it cannot be a movement (no date,
/// a recipient the ledger cannot hold). The caller records it without a report job: İYS has it.
pub fn status_record_intent(brand_code: i64, r: &StatusResponse) -> Option<ConsentIntent> {
    use sha2::Digest;
    let consent_at = r
        .consent_date
        .as_deref()
        .and_then(from_iys)
        .or_else(|| r.creation_date.as_deref().and_then(from_iys))?;
    let recipient = Recipient::parse_for(&r.recipient, r.consent_type).ok()?;
    let raw_source = r.source.clone().unwrap_or_default();
    // A source İYS added later than this code is kept verbatim in the evidence.
    let source = raw_source
        .parse::<Source>()
        .unwrap_or(if raw_source.starts_with("HS_") {
            Source::HsWeb
        } else {
            Source::IysWeb
        });
    let id = sha2::Sha256::digest(
        format!(
            "{brand_code}|{}|{}|{}|{}|{}|{raw_source}",
            recipient.as_str(),
            r.recipient_type.as_str(),
            r.consent_type.as_str(),
            r.status.as_str(),
            r.consent_date.as_deref().unwrap_or_default()
        )
        .as_bytes(),
    );
    Some(ConsentIntent {
        brand_code,
        recipient,
        recipient_type: r.recipient_type,
        consent_type: r.consent_type,
        status: r.status,
        source,
        channel: Channel::Iys,
        consent_at,
        provider: IYS_PROVIDER.into(),
        provider_message_id: format!("status:{}", hex::encode(id)),
        evidence: Evidence {
            raw: serde_json::to_value(r).unwrap_or_default(),
            ..Evidence::default()
        },
    })
}

pub struct IysSync {
    iys: PacedIys,
    ledger: Ledger,
    brands: Vec<i64>,
    page_limit: u32,
    interval: std::time::Duration,
}

impl IysSync {
    pub fn new(
        iys: PacedIys,
        ledger: Ledger,
        brands: Vec<i64>,
        page_limit: u32,
        interval_secs: u64,
    ) -> Self {
        Self {
            iys,
            ledger,
            brands,
            page_limit: page_limit.clamp(1, 1000),
            interval: std::time::Duration::from_secs(interval_secs.max(1)),
        }
    }

    /// Pulls every brand until İYS has nothing new (204 or a short page).
    pub async fn run_once(&self) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport::default();
        let store = self.ledger.store().clone();
        for &brand in &self.brands {
            for _ in 0..MAX_PAGES {
                let after = store.sync_cursor(brand, CURSOR_SOURCE).await?;
                let page = match self
                    .iys
                    .pull_changes(brand, after.as_deref(), self.page_limit)
                    .await
                {
                    Ok(Some(page)) => page,
                    Ok(None) => break,
                    Err(CallError::Store(e)) => return Err(e.into()),
                    Err(CallError::Iys(e)) => {
                        tracing::warn!(brand, error = %e, "İYS pull failed; retrying next round");
                        report.failed_brands += 1;
                        break;
                    }
                };
                report.pages += 1;
                for m in &page.list {
                    let Some(intent) = movement_intent(brand, m) else {
                        report.skipped += 1;
                        continue;
                    };
                    if self.ledger.record(intent).await?.duplicate {
                        report.duplicates += 1;
                    } else {
                        report.recorded += 1;
                    }
                }
                // Only after the page is committed: a crash re-reads it, and dedupe absorbs that.
                if !page.after.is_empty() {
                    store
                        .set_sync_cursor(brand, CURSOR_SOURCE, &page.after, self.iys.now())
                        .await?;
                }
                if page.list.len() < self.page_limit as usize || page.after.is_empty() {
                    break;
                }
            }
        }
        Ok(report)
    }

    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(r) if r.recorded > 0 => {
                        tracing::info!(?r, "İYS pull recorded citizen changes")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "İYS pull round failed"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(self.interval) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConsentType, RecipientType, Status};

    fn movement(source: &str) -> Movement {
        Movement {
            consent_date: Some("2026-03-04 10:00:00".into()),
            creation_date: "2026-03-04 10:00:05".into(),
            source: source.into(),
            recipient: "+905321234567".into(),
            recipient_type: RecipientType::Bireysel,
            status: Status::Ret,
            consent_type: ConsentType::Mesaj,
            transaction_id: "abc123".into(),
            citizen_name: None,
        }
    }

    #[test]
    fn citizen_movements_become_iys_intents() {
        let i = movement_intent(7, &movement("IYS_KISAMESAJ")).unwrap();
        assert_eq!(i.source, Source::IysKisamesaj);
        assert_eq!(
            (i.provider.as_str(), i.provider_message_id.as_str()),
            ("iys", "abc123")
        );
        assert_eq!(i.channel, Channel::Iys);
        assert_eq!(i.brand_code, 7);
        assert_eq!(
            crate::domain::time::to_iys(i.consent_at),
            "2026-03-04 10:00:00"
        );
        assert_eq!(i.evidence.raw["source"], "IYS_KISAMESAJ");
    }

    #[test]
    fn own_and_unusable_movements_are_skipped() {
        assert!(
            movement_intent(7, &movement("HS_MESAJ")).is_none(),
            "never our own"
        );
        let mut m = movement("IYS_WEB");
        m.transaction_id = " ".into();
        assert!(movement_intent(7, &m).is_none());
        let mut m = movement("IYS_WEB");
        m.recipient = "ali@example.com".into();
        assert!(movement_intent(7, &m).is_none(), "MESAJ needs a phone");
    }

    #[test]
    fn unknown_iys_sources_and_missing_dates_are_kept() {
        let mut m = movement("IYS_YENI_BIR_KANAL");
        m.consent_date = None;
        let i = movement_intent(7, &m).unwrap();
        assert_eq!(i.source, Source::IysWeb);
        assert_eq!(i.evidence.raw["source"], "IYS_YENI_BIR_KANAL");
        assert_eq!(
            crate::domain::time::to_iys(i.consent_at),
            "2026-03-04 10:00:05"
        );
    }
}
