//! The set-based group commit's bookkeeping, free of SQL: which events of a batch are
//! new, what each caller is told, and which new event becomes each address's current state.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{NewEvent, RecordOutcome, StoreError};

/// The dedupe key of an event: (provider, provider message id).
pub(super) type MessageKey = (String, String);

/// An already recorded event: its id and, when it was reportable, its job id and deadline.
pub(super) type Original = (i64, Option<(i64, DateTime<Utc>)>);

/// A new event of the batch with the id the insert gave it.
pub(super) type NewRow<'a> = (&'a NewEvent, i64);

pub(super) fn message_key(e: &NewEvent) -> MessageKey {
    (
        e.intent.provider.clone(),
        e.intent.provider_message_id.clone(),
    )
}

/// The keys the insert did not take (each once): webhook retries of events recorded before.
pub(super) fn duplicate_keys(
    events: &[NewEvent],
    fresh: &HashMap<MessageKey, i64>,
) -> Vec<MessageKey> {
    let mut seen = HashSet::new();
    events
        .iter()
        .map(message_key)
        .filter(|k| !fresh.contains_key(k) && seen.insert(k.clone()))
        .collect()
}

/// One outcome per event, in order, and the new events with their ids. The first occurrence of
/// a freshly inserted key is the new event; repeats in the batch and keys recorded before are
/// duplicates (the latter reported with the original's job).
pub(super) fn outcomes<'a>(
    events: &'a [NewEvent],
    fresh: &HashMap<MessageKey, i64>,
    original: &HashMap<MessageKey, Original>,
) -> Result<(Vec<RecordOutcome>, Vec<NewRow<'a>>), StoreError> {
    let mut claimed: HashSet<MessageKey> = HashSet::new();
    let mut new_events = Vec::new();
    let mut outcomes = Vec::with_capacity(events.len());
    for e in events {
        let k = message_key(e);
        let outcome = match fresh.get(&k) {
            Some(&id) => {
                let first = claimed.insert(k);
                if first {
                    new_events.push((e, id));
                }
                RecordOutcome {
                    event_id: id,
                    duplicate: !first,
                    job_id: None,
                    deadline_at: None,
                }
            }
            None => {
                let (id, job) = original
                    .get(&k)
                    .copied()
                    .ok_or_else(|| StoreError::Corrupt("duplicate without original".into()))?;
                RecordOutcome {
                    event_id: id,
                    duplicate: true,
                    job_id: job.map(|j| j.0),
                    deadline_at: job.map(|j| j.1),
                }
            }
        };
        outcomes.push(outcome);
    }
    Ok((outcomes, new_events))
}

/// Each address's winner among the new events: newest consent date, on a tie the later event.
/// Only winners are written, since one upsert statement may not touch a row twice. They come
/// sorted by address, so that concurrent group commits lock the state rows in one order and
/// cannot deadlock on them.
pub(super) fn state_winners<'a>(new_events: &[NewRow<'a>]) -> Vec<NewRow<'a>> {
    let mut winners: BTreeMap<(i64, &str, &str, &str), NewRow<'a>> = BTreeMap::new();
    for &(e, id) in new_events {
        let i = &e.intent;
        let addr = (
            i.brand_code,
            i.recipient.as_str(),
            i.recipient_type.as_str(),
            i.consent_type.as_str(),
        );
        let better = winners
            .get(&addr)
            .is_none_or(|&(w, wid)| (i.consent_at, id) > (w.intent.consent_at, wid));
        if better {
            winners.insert(addr, (e, id));
        }
    }
    winners.into_values().collect()
}

/// Job ids and deadlines into the outcomes (in-batch duplicates too: they share the event).
pub(super) fn fill_jobs(outcomes: &mut [RecordOutcome], jobs: &HashMap<i64, (i64, DateTime<Utc>)>) {
    for o in outcomes {
        if let Some((job_id, deadline)) = jobs.get(&o.event_id) {
            o.job_id = Some(*job_id);
            o.deadline_at = Some(*deadline);
        }
    }
}
