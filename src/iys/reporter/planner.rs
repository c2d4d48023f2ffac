//! The reporter's decisions, as pure functions: coalescing per address, the RET pre-check, single
//! vs batch, what an İYS answer means for a job, and back-off clamped to the deadline.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::Status;
use crate::iys::ErrorClass;
use crate::store::{AddressKey, ReportJob};

/// Claimed jobs split into the newest per address (sent) and the older ones (superseded).
#[derive(Debug, Default, PartialEq)]
pub struct Coalesced {
    pub winners: Vec<ReportJob>,
    /// (older job, the id of the job that replaces it)
    pub losers: Vec<(ReportJob, i64)>,
}

/// Newest consent date wins; on a tie the later event (the ledger's own rule). İYS's write queue
/// keeps one movement per address anyway, and a batch may not repeat one (H194).
pub fn coalesce(jobs: Vec<ReportJob>) -> Coalesced {
    let mut best: HashMap<AddressKey, ReportJob> = HashMap::new();
    let mut losers = Vec::new();
    for j in jobs {
        match best.get_mut(&j.address) {
            None => {
                best.insert(j.address.clone(), j);
            }
            Some(cur) => {
                if (j.consent_at, j.event_id) > (cur.consent_at, cur.event_id) {
                    let old = std::mem::replace(cur, j);
                    losers.push((old, cur.id));
                } else {
                    losers.push((j, cur.id));
                }
            }
        }
    }
    let mut winners: Vec<ReportJob> = best.into_values().collect();
    winners.sort_by_key(|j| (j.deadline_at, j.id));
    // Point each loser at the final winner (in a chain a<b<c, c replaces both a and b).
    let ids: HashMap<AddressKey, i64> = winners.iter().map(|w| (w.address.clone(), w.id)).collect();
    let losers = losers
        .into_iter()
        .map(|(j, _)| {
            let w = ids.get(&j.address).copied().unwrap_or(j.id);
            (j, w)
        })
        .collect();
    Coalesced { winners, losers }
}

/// A RET needs İYS's multi-status answer unless we know İYS holds an ONAY to revoke.
pub fn ret_needs_status_check(known_at_iys: Option<Status>) -> bool {
    known_at_iys != Some(Status::Onay)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetDecision {
    /// İYS holds an ONAY: report the RET.
    Send,
    /// İYS already holds a RET (we reported it, or the citizen did): nothing to send, done.
    AlreadyRet,
    /// İYS holds nothing for the address: a first-ever RET would be H175.
    NothingToRevoke,
}

/// `onay_at_iys`: the multi-status query listed the address (it lists ONAY only).
pub fn ret_decision(known_at_iys: Option<Status>, onay_at_iys: bool) -> RetDecision {
    if onay_at_iys {
        RetDecision::Send
    } else if known_at_iys == Some(Status::Ret) {
        RetDecision::AlreadyRet
    } else {
        RetDecision::NothingToRevoke
    }
}

/// Short queue: one v2 call each, at once. Long queue: async batches of at most `max_batch`.
pub fn use_batches(sendable: usize, threshold: usize) -> bool {
    sendable >= threshold.max(1)
}

/// What an İYS refusal means for the job (decisions branch on the İYS code's class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Retry,
    /// H174: İYS already holds this status.
    Done,
    /// H175: nothing to revoke.
    NothingToRevoke,
    /// H467: too late for İYS.
    Expired,
    /// H178: İYS holds a newer movement.
    Superseded,
    /// Validation or authorization: an operator must look.
    Failed,
}

pub fn verdict(class: ErrorClass) -> Verdict {
    match class {
        ErrorClass::Transient | ErrorClass::RateLimited | ErrorClass::AuthExpired => Verdict::Retry,
        ErrorClass::AlreadyDone => Verdict::Done,
        ErrorClass::NothingToRevoke => Verdict::NothingToRevoke,
        ErrorClass::TooLate => Verdict::Expired,
        ErrorClass::OutOfOrder => Verdict::Superseded,
        ErrorClass::Permanent => Verdict::Failed,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// Never retry sooner than this.
    pub min: Duration,
    /// The last retry is aimed this long before the deadline, to leave room for the call itself.
    pub margin: Duration,
}

impl RetryPolicy {
    pub fn new(base_secs: u64, max_secs: u64) -> Self {
        let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        Self {
            base: secs(base_secs.max(1)),
            max: secs(max_secs.max(base_secs.max(1))),
            min: Duration::seconds(1),
            margin: Duration::minutes(10),
        }
    }

    /// When to try again after the `attempts`-th failure: exponential, jitter in [d/2, d]
    /// (`jitter` in 0..=1), at least `retry_after`, and never past the deadline. `None` when no
    /// retry can happen before the deadline: the job expires.
    pub fn retry_at(
        &self,
        now: DateTime<Utc>,
        attempts: i64,
        deadline: DateTime<Utc>,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> Option<DateTime<Utc>> {
        let exp = u32::try_from(attempts.clamp(1, 31) - 1).unwrap_or(0);
        let full = self
            .base
            .checked_mul(1_i32 << exp.min(30))
            .map_or(self.max, |d| d.min(self.max));
        let half = full / 2;
        let jitter = jitter.clamp(0.0, 1.0);
        let jittered =
            half + Duration::milliseconds((half.num_milliseconds() as f64 * jitter) as i64);
        let delay = jittered
            .max(retry_after.unwrap_or(Duration::zero()))
            .max(self.min);
        let mut at = now + delay;
        let latest = deadline - self.margin;
        if at > latest {
            at = latest.max(now + self.min);
        }
        (at < deadline).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::from_ms;
    use crate::domain::{ConsentType, RecipientType};
    use crate::store::JobState;

    fn job(id: i64, recipient: &str, consent_s: i64) -> ReportJob {
        ReportJob {
            id,
            event_id: id * 10,
            address: AddressKey {
                brand_code: 1,
                recipient: recipient.into(),
                recipient_type: RecipientType::Bireysel,
                consent_type: ConsentType::Mesaj,
            },
            consent_at: from_ms(consent_s * 1000),
            state: JobState::Leased,
            due_at: from_ms(0),
            target_at: from_ms(0),
            deadline_at: from_ms(1_000_000 - id),
            attempts: 1,
            lease_owner: None,
            lease_until: None,
            batch_id: None,
            transaction_id: None,
            last_error: None,
        }
    }

    #[test]
    fn newest_movement_per_address_wins() {
        let c = coalesce(vec![
            job(1, "a", 100),
            job(2, "a", 130),
            job(3, "b", 50),
            job(4, "a", 110),
        ]);
        let mut winners: Vec<i64> = c.winners.iter().map(|j| j.id).collect();
        winners.sort();
        assert_eq!(winners, vec![2, 3]);
        let mut losers: Vec<(i64, i64)> = c.losers.iter().map(|(j, w)| (j.id, *w)).collect();
        losers.sort();
        assert_eq!(losers, vec![(1, 2), (4, 2)]);
    }

    #[test]
    fn equal_consent_dates_go_to_the_later_event() {
        let c = coalesce(vec![job(5, "a", 100), job(4, "a", 100)]);
        assert_eq!(c.winners[0].id, 5);
        assert_eq!(c.losers[0].0.id, 4);
    }

    #[test]
    fn winners_are_ordered_by_deadline() {
        let c = coalesce(vec![job(1, "a", 1), job(2, "b", 1), job(3, "c", 1)]);
        let ids: Vec<i64> = c.winners.iter().map(|j| j.id).collect();
        assert_eq!(ids, vec![3, 2, 1]);
    }

    #[test]
    fn ret_precheck_decisions() {
        assert!(!ret_needs_status_check(Some(Status::Onay)));
        assert!(ret_needs_status_check(None));
        assert!(
            ret_needs_status_check(Some(Status::Ret)),
            "the citizen may have re-opted in"
        );
        assert_eq!(ret_decision(None, true), RetDecision::Send);
        assert_eq!(ret_decision(Some(Status::Ret), true), RetDecision::Send);
        assert_eq!(
            ret_decision(Some(Status::Ret), false),
            RetDecision::AlreadyRet
        );
        assert_eq!(ret_decision(None, false), RetDecision::NothingToRevoke);
    }

    #[test]
    fn batches_only_for_long_queues() {
        assert!(!use_batches(1, 50));
        assert!(!use_batches(49, 50));
        assert!(use_batches(50, 50));
        assert!(use_batches(1, 0), "a zero threshold means always batch");
    }

    #[test]
    fn verdicts_follow_error_classes() {
        assert_eq!(verdict(ErrorClass::Transient), Verdict::Retry);
        assert_eq!(verdict(ErrorClass::RateLimited), Verdict::Retry);
        assert_eq!(verdict(ErrorClass::AlreadyDone), Verdict::Done);
        assert_eq!(
            verdict(ErrorClass::NothingToRevoke),
            Verdict::NothingToRevoke
        );
        assert_eq!(verdict(ErrorClass::TooLate), Verdict::Expired);
        assert_eq!(verdict(ErrorClass::OutOfOrder), Verdict::Superseded);
        assert_eq!(verdict(ErrorClass::Permanent), Verdict::Failed);
    }

    fn t(s: i64) -> DateTime<Utc> {
        from_ms(s * 1000)
    }

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let p = RetryPolicy::new(30, 3600);
        let far = t(10_000_000);
        let now = t(0);
        assert_eq!(p.retry_at(now, 1, far, None, 1.0), Some(t(30)));
        assert_eq!(p.retry_at(now, 1, far, None, 0.0), Some(t(15)));
        assert_eq!(p.retry_at(now, 3, far, None, 1.0), Some(t(120)));
        assert_eq!(p.retry_at(now, 30, far, None, 1.0), Some(t(3600)), "capped");
        assert_eq!(p.retry_at(now, 1000, far, None, 0.0), Some(t(1800)));
        let r = p.retry_at(now, 2, far, None, 0.5).unwrap();
        assert!(r > t(30) && r < t(60), "{r}");
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::new(30, 3600);
        let got = p.retry_at(t(0), 1, t(1_000_000), Some(Duration::seconds(90)), 1.0);
        assert_eq!(got, Some(t(90)));
    }

    #[test]
    fn backoff_is_clamped_to_the_deadline() {
        let p = RetryPolicy::new(30, 3600);
        // 2 h to the deadline, a 1 h back-off fits.
        assert_eq!(p.retry_at(t(0), 10, t(7200), None, 1.0), Some(t(3600)));
        // 30 min left: aim 10 min before the deadline.
        assert_eq!(p.retry_at(t(0), 10, t(1800), None, 1.0), Some(t(1200)));
        // 5 min left: as soon as allowed.
        assert_eq!(p.retry_at(t(0), 10, t(300), None, 1.0), Some(t(1)));
        // Nothing left: expire.
        assert_eq!(p.retry_at(t(0), 1, t(1), None, 1.0), None);
        assert_eq!(p.retry_at(t(10), 1, t(5), None, 1.0), None);
    }
}
