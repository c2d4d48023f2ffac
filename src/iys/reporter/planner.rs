//! The reporter's decisions, as pure functions: coalescing per address, the RET pre-check, single
//! vs batch, what an İYS answer means for a job, and back-off clamped to the deadline.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::domain::Address;
use crate::domain::Status;
use crate::iys::ErrorClass;
use crate::store::ReportJob;

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
    let mut best: HashMap<Address, ReportJob> = HashMap::new();
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
    let ids: HashMap<Address, i64> = winners.iter().map(|w| (w.address.clone(), w.id)).collect();
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

/// İYS keeps whole seconds: a time rounded up to the next whole second (unchanged when whole).
pub fn ceil_second(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = floor_second(at);
    if floor == at {
        at
    } else {
        floor + Duration::seconds(1)
    }
}

pub fn floor_second(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// The consentDate a movement reaches İYS with. İYS stores one record per address, keeps
/// whole seconds and refuses a date not strictly later than the stored one (H178), so:
/// * never earlier than the person's act: the act's time rounded **up** to the second;
/// * strictly later, in whole seconds, than every date that may already be at İYS for the
///   address (`others`: dates other jobs sent, citizens' `IYS_*` movements);
/// * never earlier than what this job sent before (`own`), so a resend is the same request.
///
/// Only the ledger's current movement of an address is ever sent, so moving a date later keeps
/// the ledger's order at İYS; the true times stay in the ledger as evidence.
pub fn iys_date(
    act: DateTime<Utc>,
    own: Option<DateTime<Utc>>,
    others: impl IntoIterator<Item = DateTime<Utc>>,
) -> DateTime<Utc> {
    let mut date = ceil_second(act);
    for o in others {
        date = date.max(floor_second(o) + Duration::seconds(1));
    }
    own.map_or(date, |own| date.max(own))
}

/// What İYS's record means after it refused a movement as out of order (H178).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutOfOrder {
    /// İYS already holds this word: the movement's work is done.
    AlreadyHeld,
    /// İYS holds another word dated before the person's act and still refused the date. With
    /// dates rounded up from the act this needs İYS to read a date differently from the relay
    /// (its clock or rounding): a safety net that sends again, dated one second after both.
    ResendAfter(DateTime<Utc>),
    /// İYS holds another word dated at or after the person's act: a newer movement the ledger
    /// does not know, to be brought in from İYS. A tie goes to İYS's record, as the ledger's own
    /// rule gives a tie to the movement it learns of later.
    IysNewer,
}

/// Compares İYS's record with the movement: `act` is the person's true time, `sent` the date
/// the relay sent (rounded up, perhaps moved on), `iys_date` the date İYS holds.
pub fn out_of_order(
    ours: Status,
    act: DateTime<Utc>,
    sent: Option<DateTime<Utc>>,
    iys_status: Status,
    iys_date: Option<DateTime<Utc>>,
) -> OutOfOrder {
    if iys_status == ours {
        return OutOfOrder::AlreadyHeld;
    }
    match iys_date {
        Some(at) if at < act => {
            let last = sent.map_or(at, |s| s.max(at));
            OutOfOrder::ResendAfter(floor_second(last) + Duration::seconds(1))
        }
        _ => OutOfOrder::IysNewer,
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

    /// Exponential back-off for the `attempts`-th failure, with jitter in [d/2, d] (`jitter` in
    /// 0..=1), capped at `max`.
    fn backoff(&self, attempts: i64, jitter: f64) -> Duration {
        let exp = u32::try_from(attempts.clamp(1, 31) - 1).unwrap_or(0);
        let full = self
            .base
            .checked_mul(1_i32 << exp.min(30))
            .map_or(self.max, |d| d.min(self.max));
        let half = full / 2;
        let jitter = jitter.clamp(0.0, 1.0);
        half + Duration::milliseconds((half.num_milliseconds() as f64 * jitter) as i64)
    }

    /// How long a brand pauses after its `failures`-th consecutive outage answer: the same
    /// back-off, at least `retry_after` (İYS's own word wins when it asks for longer).
    pub fn brand_pause(
        &self,
        now: DateTime<Utc>,
        failures: i64,
        retry_after: Option<Duration>,
        jitter: f64,
    ) -> DateTime<Utc> {
        let delay = self
            .backoff(failures, jitter)
            .max(retry_after.unwrap_or(Duration::zero()))
            .max(self.min);
        now + delay
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
        let delay = self
            .backoff(attempts, jitter)
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
            address: Address {
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
            iys_date: None,
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

    fn ms(ms: i64) -> DateTime<Utc> {
        from_ms(ms)
    }

    #[test]
    fn dates_round_up_to_the_second_and_never_before_the_act() {
        assert_eq!(iys_date(ms(10_000), None, []), ms(10_000));
        assert_eq!(iys_date(ms(10_140), None, []), ms(11_000));
        assert_eq!(iys_date(ms(10_999), None, []), ms(11_000));
    }

    #[test]
    fn same_second_movements_get_strictly_later_seconds() {
        // ONAY at 11:09:00.000 went out as :00; a RET 140 ms later must not also be :00 or :01
        // when :01 is taken.
        assert_eq!(iys_date(ms(10_140), None, [ms(10_000)]), ms(11_000));
        assert_eq!(iys_date(ms(10_140), None, [ms(11_000)]), ms(12_000));
        // Minute-resolution sources: both at 11:09:00.
        assert_eq!(iys_date(ms(60_000), None, [ms(60_000)]), ms(61_000));
        // An older date at İYS changes nothing.
        assert_eq!(iys_date(ms(60_000), None, [ms(5_000)]), ms(60_000));
        // A resend keeps the date it went with.
        assert_eq!(
            iys_date(ms(60_000), Some(ms(62_000)), [ms(60_000)]),
            ms(62_000)
        );
    }

    #[test]
    fn out_of_order_answers() {
        use Status::{Onay, Ret};
        let act = ms(10_140);
        let sent = Some(ms(11_000));
        assert_eq!(
            out_of_order(Ret, act, sent, Ret, Some(ms(11_000))),
            OutOfOrder::AlreadyHeld
        );
        // İYS's ONAY is from 10:00:10.000, before the RET at .140 that was sent as :11.
        assert_eq!(
            out_of_order(Ret, act, Some(ms(10_000)), Onay, Some(ms(10_000))),
            OutOfOrder::ResendAfter(ms(11_000))
        );
        assert_eq!(
            out_of_order(Ret, act, sent, Onay, Some(ms(10_000))),
            OutOfOrder::ResendAfter(ms(12_000))
        );
        // A citizen's ONAY at :11 came after the RET said at :10.140: İYS's word is newer,
        // even though the RET went out dated :11.
        assert_eq!(
            out_of_order(Ret, act, sent, Onay, Some(ms(11_000))),
            OutOfOrder::IysNewer
        );
        assert_eq!(
            out_of_order(Ret, ms(60_000), Some(ms(60_000)), Onay, Some(ms(60_000))),
            OutOfOrder::IysNewer,
            "a tie goes to İYS's record, as in the ledger"
        );
        assert_eq!(
            out_of_order(Ret, act, None, Onay, None),
            OutOfOrder::IysNewer
        );
    }

    #[test]
    fn brand_pauses_honour_retry_after_and_grow() {
        let p = RetryPolicy::new(5, 60);
        assert_eq!(p.brand_pause(t(0), 1, None, 1.0), t(5));
        assert_eq!(p.brand_pause(t(0), 3, None, 1.0), t(20));
        assert_eq!(p.brand_pause(t(0), 30, None, 1.0), t(60));
        assert_eq!(
            p.brand_pause(t(0), 1, Some(Duration::seconds(12)), 1.0),
            t(12)
        );
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
