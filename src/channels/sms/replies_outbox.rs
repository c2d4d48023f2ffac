//! The free replies' outbox worker: sends each queued reply through the provider its message
//! came from, retries failures with growing pauses and records every attempt on the row. The
//! movement was committed before the reply was queued, so nothing here can delay or lose it.

use crate::telemetry::chain;
use std::sync::Arc;

use chrono::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::ProviderKind;
use crate::domain::Recipient;
use crate::providers::{ApiFailure, SmsApi};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::sms::{ReplyOutcome, SmsReply};

/// Pauses before the 2nd, 3rd, … attempt; after the last the reply is given up (`failed`).
const RETRY_AFTER_SECONDS: &[i64] = &[60, 300, 900, 3600, 4 * 3600];
/// A claimed reply whose worker died is taken again after this.
const LEASE_SECONDS: i64 = 120;
const BATCH: i64 = 50;

/// The API and sender header replies of `provider` go out with.
pub fn sender_for(st: &AppState, provider: &str) -> Option<(Arc<dyn SmsApi>, String)> {
    let outbound = || match (&st.sms.outbound, &st.config.sms.outbound) {
        (Some(client), Some(cfg)) => Some((
            Arc::new(client.clone()) as Arc<dyn SmsApi>,
            cfg.from.clone(),
        )),
        _ => None,
    };
    match st.sms.providers.get(provider) {
        // The generic JSON kind has no send API of its own: like `[[sms.generic]]` providers
        // it replies through `sms.outbound`, as the generic format's documentation promises.
        Some(p) if p.config.kind == ProviderKind::Generic => outbound(),
        Some(p) => {
            let from = p.config.reply_from.clone().filter(|f| !f.is_empty())?;
            Some((p.api.clone()?, from))
        }
        None if st.config.sms.generic.iter().any(|g| g.name == provider) => outbound(),
        None => None,
    }
}

pub fn can_reply(st: &AppState, provider: &str) -> bool {
    sender_for(st, provider).is_some()
}

pub struct ReplyWorker {
    st: AppState,
    owner: String,
}

impl ReplyWorker {
    pub fn new(st: AppState) -> Self {
        Self {
            st,
            owner: format!("sms-replies-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Sends what is due; returns how many replies were attempted.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let store = self.st.ledger.store();
        let now = self.st.ledger.clock().now();
        let due = store
            .claim_sms_replies(
                &self.owner,
                now,
                now + Duration::seconds(LEASE_SECONDS),
                BATCH,
            )
            .await?;
        let n = due.len();
        for r in due {
            let outcome = self.attempt(&r).await;
            let now = self.st.ledger.clock().now();
            if let ReplyOutcome::OptedOut { error } = &outcome {
                self.keep_opt_out_evidence(&r, error).await;
            }
            store
                .finish_sms_reply(r.id, &self.owner, &outcome, now)
                .await?;
        }
        Ok(n)
    }

    async fn attempt(&self, r: &SmsReply) -> ReplyOutcome {
        let to =
            Recipient::parse(&r.recipient).map_or_else(|_| "<unparsed>".into(), |p| p.masked());
        let Some((api, from)) = sender_for(&self.st, &r.provider) else {
            return ReplyOutcome::Failed {
                error: format!("provider {} has no reply sender configured", r.provider),
            };
        };
        match api.send(&from, &r.recipient, &r.body).await {
            Ok(provider_ref) => {
                tracing::info!(provider = %r.provider, to = %to, attempt = r.attempts, "SMS reply sent");
                metrics::counter!("iys_relay_sms_replies_total", "outcome" => "sent").increment(1);
                ReplyOutcome::Sent { provider_ref }
            }
            Err(ApiFailure::Retryable(e)) => {
                let pause = usize::try_from(r.attempts - 1)
                    .ok()
                    .and_then(|i| RETRY_AFTER_SECONDS.get(i));
                match pause {
                    Some(s) => {
                        tracing::warn!(provider = %r.provider, to = %to, attempt = r.attempts, error = %e, "SMS reply failed; will retry");
                        ReplyOutcome::Retry {
                            due_at: self.st.ledger.clock().now() + Duration::seconds(*s),
                            error: e,
                        }
                    }
                    None => {
                        tracing::error!(provider = %r.provider, to = %to, attempt = r.attempts, error = %e, "SMS reply given up");
                        metrics::counter!("iys_relay_sms_replies_total", "outcome" => "failed")
                            .increment(1);
                        ReplyOutcome::Failed { error: e }
                    }
                }
            }
            Err(ApiFailure::Permanent(e)) => {
                tracing::error!(provider = %r.provider, to = %to, error = %e, "SMS reply refused");
                metrics::counter!("iys_relay_sms_replies_total", "outcome" => "failed")
                    .increment(1);
                ReplyOutcome::Failed { error: e }
            }
            Err(ApiFailure::OptedOut(e)) => {
                tracing::warn!(provider = %r.provider, to = %to, "SMS reply refused: the person opted out at the provider");
                metrics::counter!("iys_relay_sms_replies_total", "outcome" => "opted_out")
                    .increment(1);
                ReplyOutcome::OptedOut { error: e }
            }
        }
    }

    /// The provider's refusal (Twilio 21610) says the person opted out there: kept with the
    /// inbound messages, next to the message the reply answered.
    async fn keep_opt_out_evidence(&self, r: &SmsReply, error: &str) {
        let msg = crate::store::InboundMessage {
            provider: r.provider.clone(),
            provider_message_id: format!("opted-out:{}", r.provider_message_id),
            received_at: self.st.ledger.clock().now(),
            sender: r.recipient.clone(),
            receiver: String::new(),
            intent: "opted_out_at_provider".into(),
            raw: serde_json::json!({"reply_to": r.provider_message_id, "error": error}),
        };
        if let Err(e) = self.st.ledger.keep_inbound(msg).await {
            tracing::error!(error = %chain(&e), "opt-out evidence from the provider not kept");
        }
    }

    pub fn spawn(self: Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let wake = self.st.sms.reply_wake.clone();
            loop {
                if let Err(e) = self.run_once().await {
                    tracing::error!(error = %e, "SMS reply round failed");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(15)) => {}
                }
            }
        })
    }
}
