//! Inbox pollers: one per provider with an inbox query, so a message the provider holds reaches
//! the ledger even when its push was lost (Verimor stops after three retries five minutes apart)
//! or never existed (Netgsm REST v2, İleti Merkezi). One replica leads per provider (a lease on
//! the cursor row); each query reaches `overlap_seconds` behind the cursor and what is already
//! known (pushed, or pulled before) is skipped by its id. The provider's receipt time is the
//! consent time, so the İYS deadline runs from when the person sent the message.

use crate::telemetry::chain;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::ProviderKind;
use super::intake::{Origin, intake};
use super::providers::{self, Provider, netgsm, verimor};
use crate::providers::{ApiFailure, InboxQuery};
use crate::state::AppState;

/// Verimor pages followed in one run before the rest waits for the next.
const MAX_PAGES: u32 = 50;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    /// The inbox is read up to here (time-range queries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<DateTime<Utc>>,
    /// Ids up to here are read (Verimor `greater_than`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_id: Option<i64>,
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PollReport {
    /// False when another replica holds this provider's lease.
    pub led: bool,
    pub requests: u32,
    pub items: usize,
    pub known: usize,
    pub taken: usize,
    pub refused: usize,
    /// Recorded with a deadline already past (the provider held them too long): alerted.
    pub late: usize,
    pub error: Option<String>,
}

pub struct ProviderPoller {
    st: AppState,
    provider: Arc<Provider>,
    owner: String,
}

impl ProviderPoller {
    pub fn new(st: AppState, provider: Arc<Provider>) -> Self {
        Self {
            owner: format!("sms-poll-{}", uuid::Uuid::new_v4().simple()),
            st,
            provider,
        }
    }

    pub fn provider(&self) -> &str {
        self.provider.name()
    }

    fn interval(&self) -> Duration {
        Duration::seconds(self.provider.config.poll.interval_seconds.max(1) as i64)
    }

    pub async fn run_once(&self) -> Result<PollReport, crate::store::StoreError> {
        let store = self.st.ledger.store();
        let now = self.st.ledger.clock().now();
        let lease = (self.interval() * 3).max(Duration::seconds(120));
        let name = self.provider.name();
        let Some(row) = store
            .claim_sms_poll(name, &self.owner, now, now + lease)
            .await?
        else {
            return Ok(PollReport::default());
        };
        let mut cursor: Cursor = serde_json::from_str(&row.cursor).unwrap_or_default();
        let mut report = PollReport {
            led: true,
            ..PollReport::default()
        };
        let Some(api) = self.provider.api.clone() else {
            report.error = Some("no API credentials".into());
            return Ok(report);
        };
        let cfg = &self.provider.config.poll;
        let overlap = Duration::seconds(cfg.overlap_seconds as i64);
        let lookback = Duration::hours(cfg.initial_lookback_hours as i64);
        let result: Result<(), ApiFailure> = async {
            match self.provider.config.kind {
                ProviderKind::Netgsm => {
                    let mut start = cursor.until.map_or(now - lookback, |u| u - overlap);
                    // At most 30 days a query: a longer gap is read in steps.
                    loop {
                        let stop = (start + Duration::days(netgsm::MAX_QUERY_DAYS)).min(now);
                        let items = self
                            .fetch(&*api, &InboxQuery::Between(start, stop), &mut report)
                            .await?;
                        if !self.take(&items, &mut report).await? {
                            break;
                        }
                        cursor.until = Some(stop);
                        if stop >= now {
                            break;
                        }
                        start = stop;
                    }
                }
                ProviderKind::Verimor => {
                    let mut query = match cursor.after_id {
                        Some(id) => InboxQuery::After(id),
                        None => InboxQuery::Between(now - lookback, now),
                    };
                    let settled = now - overlap;
                    let mut next = cursor.after_id;
                    for _ in 0..MAX_PAGES {
                        let items = self.fetch(&*api, &query, &mut report).await?;
                        if !self.take(&items, &mut report).await? {
                            break;
                        }
                        // The cursor stops at the newest message older than the overlap, so the
                        // last minutes are read again next time.
                        for v in &items {
                            let old = providers::verimor::item(0, v)
                                .ok()
                                .and_then(|m| m.time)
                                .is_some_and(|t| t <= settled);
                            if let (true, Some(id)) = (old, verimor::message_id(v)) {
                                next = Some(next.map_or(id, |n| n.max(id)));
                            }
                        }
                        let last = items.iter().filter_map(verimor::message_id).max();
                        match (matches!(query, InboxQuery::After(_)), items.len(), last) {
                            (true, n, Some(last)) if n >= verimor::PAGE_SIZE => {
                                query = InboxQuery::After(last);
                            }
                            _ => break,
                        }
                    }
                    cursor.after_id = next;
                }
                ProviderKind::Iletimerkezi => {
                    let items = self.fetch(&*api, &InboxQuery::All, &mut report).await?;
                    if self.take(&items, &mut report).await? {
                        cursor.until = Some(now);
                    }
                }
                ProviderKind::Generic => {}
            }
            Ok(())
        }
        .await;
        if let Err(e) = &result {
            tracing::warn!(provider = name, error = %chain(&e), "inbox poll failed");
            report.error = Some(e.to_string());
        }
        let saved = serde_json::to_string(&cursor).unwrap_or_default();
        let now = self.st.ledger.clock().now();
        if !store
            .save_sms_poll(name, &self.owner, &saved, report.error.as_deref(), now)
            .await?
        {
            tracing::warn!(
                provider = name,
                "inbox poll lease lost; another replica leads"
            );
        }
        metrics::counter!("iys_relay_sms_poll_requests_total", "provider" => name.to_string())
            .increment(u64::from(report.requests));
        Ok(report)
    }

    async fn fetch(
        &self,
        api: &dyn crate::providers::SmsApi,
        q: &InboxQuery,
        report: &mut PollReport,
    ) -> Result<Vec<serde_json::Value>, ApiFailure> {
        report.requests += 1;
        let items = api.inbox(q).await?;
        report.items += items.len();
        Ok(items)
    }

    /// Hands unseen items to the intake; `false` when the cursor must not move past them (a
    /// storage failure or a rate-limited item: they are read again next time).
    async fn take(
        &self,
        raw: &[serde_json::Value],
        report: &mut PollReport,
    ) -> Result<bool, ApiFailure> {
        let name = self.provider.name();
        let parsed = providers::parse_pulled(self.provider.config.kind, raw);
        let ids: Vec<String> = parsed
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|m| m.id.clone())
            .collect();
        let store = self.st.ledger.store();
        let known = store
            .known_provider_messages(name, &ids)
            .await
            .map_err(|e| ApiFailure::Retryable(e.to_string()))?;
        let mut fresh = Vec::with_capacity(parsed.len());
        for r in parsed {
            match r {
                Ok(m) if known.binary_search(&m.id).is_ok() => report.known += 1,
                other => fresh.push(other),
            }
        }
        if fresh.is_empty() {
            return Ok(true);
        }
        let route = format!("poll:{name}");
        let p = self.provider.clone();
        let answers = match intake(
            &self.st,
            name,
            &move |to: &str| p.serves(to),
            fresh,
            &Origin::Pull { route: &route },
        )
        .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(provider = name, error = %chain(&e), "pulled messages not recorded; read again next poll");
                return Ok(false);
            }
        };
        let now = self.st.ledger.clock().now();
        let mut advance = true;
        for a in &answers {
            match a.status {
                200 => {
                    report.taken += 1;
                    if let Some(r) = a.outcome.as_ref().and_then(|o| o.recorded.as_ref())
                        && !r.duplicate
                        && r.deadline_at.is_some_and(|d| d < now)
                    {
                        report.late += 1;
                        metrics::counter!("iys_relay_sms_late_total", "provider" => name.to_string()).increment(1);
                        tracing::error!(
                            provider = name,
                            event_id = r.event_id,
                            "a message the provider held arrived after its İYS deadline; recorded as evidence"
                        );
                    }
                }
                429 => advance = false,
                _ => report.refused += 1,
            }
        }
        Ok(advance)
    }

    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let pause = self
                .interval()
                .to_std()
                .unwrap_or(std::time::Duration::from_secs(60));
            loop {
                match self.run_once().await {
                    Ok(r) if r.led => {
                        tracing::debug!(provider = self.provider(), ?r, "inbox polled")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(provider = self.provider(), error = %chain(&e), "inbox poll round failed")
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
            // Hand the lead over at once instead of after the lease runs out.
            let _ = self
                .st
                .ledger
                .store()
                .release_sms_poll(self.provider(), &self.owner)
                .await;
        })
    }
}
