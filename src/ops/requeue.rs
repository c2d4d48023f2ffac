//! `requeue`: an operator sends failed or expired report jobs back to the queue after a fix.
//! Jobs İYS would refuse anyway (older than its 3-business-day window, H467; or older than a
//! movement İYS already holds for the address, H178) are refused unless forced.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{OpsError, outside_iys_window};
use crate::domain::Source;
use crate::domain::calendar::BusinessCalendar;
use crate::store::{JobState, JobTimes, ReportJob, Store};

/// Enough for any realistic backlog; `--all-*` beyond it can simply be run again.
const MAX_SELECTED: i64 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct RequeueRequest {
    pub ids: Vec<i64>,
    pub all_failed: bool,
    pub all_expired: bool,
    /// Requeue even when İYS is expected to refuse the movement.
    pub force: bool,
    /// Free text kept in the alert row (who and why).
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum RequeueResult {
    Requeued {
        job_id: i64,
        was: JobState,
        deadline_at: DateTime<Utc>,
        warning: Option<String>,
    },
    Refused {
        job_id: i64,
        reason: String,
    },
}

impl RequeueResult {
    pub fn is_requeued(&self) -> bool {
        matches!(self, RequeueResult::Requeued { .. })
    }
}

/// The reasons İYS is expected to refuse this job, if any.
async fn doom_warning(
    store: &dyn Store,
    cal: &BusinessCalendar,
    job: &ReportJob,
    source: Option<Source>,
    now: DateTime<Utc>,
) -> Result<Option<String>, OpsError> {
    let mut w = Vec::new();
    if source != Some(Source::Hs2015) && outside_iys_window(cal, job.consent_at, now) {
        w.push(
            "the consent date is older than İYS's 3-business-day window: İYS will refuse it (H467)"
                .to_string(),
        );
    }
    if let Some(s) = store.consent_state(&job.address).await?
        && s.event_id != job.event_id
        && s.consent_at > job.consent_at
        && s.iys_confirmed
    {
        w.push("İYS already holds a newer movement for this address (H178)".to_string());
    }
    Ok((!w.is_empty()).then(|| w.join("; ")))
}

pub async fn requeue(
    store: &dyn Store,
    cal: &BusinessCalendar,
    now: DateTime<Utc>,
    req: &RequeueRequest,
) -> Result<Vec<RequeueResult>, OpsError> {
    let mut jobs: Vec<ReportJob> = store.jobs_by_ids(&req.ids).await?;
    let mut out = Vec::new();
    for id in &req.ids {
        if !jobs.iter().any(|j| j.id == *id) {
            out.push(RequeueResult::Refused {
                job_id: *id,
                reason: "no such job".into(),
            });
        }
    }
    for (flag, state) in [
        (req.all_failed, JobState::Failed),
        (req.all_expired, JobState::Expired),
    ] {
        if flag {
            jobs.extend(store.jobs_in_state(state, MAX_SELECTED).await?);
        }
    }
    jobs.sort_by_key(|j| j.id);
    jobs.dedup_by_key(|j| j.id);
    let ids: Vec<i64> = jobs.iter().map(|j| j.event_id).collect();
    let sources: HashMap<i64, Source> = store
        .events_by_ids(&ids)
        .await?
        .into_iter()
        .map(|e| (e.id, e.source))
        .collect();
    for job in jobs {
        if !matches!(job.state, JobState::Failed | JobState::Expired) {
            out.push(RequeueResult::Refused {
                job_id: job.id,
                reason: format!(
                    "job is {}: only failed or expired jobs can be requeued",
                    job.state.as_str()
                ),
            });
            continue;
        }
        let warning =
            doom_warning(store, cal, &job, sources.get(&job.event_id).copied(), now).await?;
        if let Some(w) = &warning
            && !req.force
        {
            out.push(RequeueResult::Refused {
                job_id: job.id,
                reason: format!("{w}; use --force to requeue anyway"),
            });
            continue;
        }
        // A passed deadline would expire the job again at once: give it a fresh one.
        let times = if job.deadline_at > now {
            JobTimes {
                due_at: now,
                target_at: job.target_at,
                deadline_at: job.deadline_at,
            }
        } else {
            let d = cal.iys_deadline(now)?;
            JobTimes {
                due_at: now,
                target_at: d,
                deadline_at: d,
            }
        };
        let mut detail = format!(
            "operator requeue at {} (was {} after {} attempts: {})",
            now.to_rfc3339(),
            job.state.as_str(),
            job.attempts,
            job.last_error.as_deref().unwrap_or("no error recorded")
        );
        if let Some(w) = &warning {
            detail.push_str(&format!("; forced despite: {w}"));
        }
        if let Some(n) = &req.note {
            detail.push_str(&format!("; note: {n}"));
        }
        if store.requeue_job(job.id, times, &detail, now).await? {
            out.push(RequeueResult::Requeued {
                job_id: job.id,
                was: job.state,
                deadline_at: times.deadline_at,
                warning,
            });
        } else {
            out.push(RequeueResult::Refused {
                job_id: job.id,
                reason: "the job changed state meanwhile".into(),
            });
        }
    }
    Ok(out)
}

/// One line per job, as the CLI prints it.
pub fn render(results: &[RequeueResult]) -> String {
    let mut s = String::new();
    for r in results {
        match r {
            RequeueResult::Requeued {
                job_id,
                was,
                deadline_at,
                warning,
            } => {
                s.push_str(&format!(
                    "job {job_id:>8}  requeued (was {}), due now, deadline {}\n",
                    was.as_str(),
                    crate::domain::time::to_iys(*deadline_at)
                ));
                if let Some(w) = warning {
                    s.push_str(&format!("              WARNING: {w}\n"));
                }
            }
            RequeueResult::Refused { job_id, reason } => {
                s.push_str(&format!("job {job_id:>8}  NOT requeued: {reason}\n"));
            }
        }
    }
    let n = results.iter().filter(|r| r.is_requeued()).count();
    s.push_str(&format!("{n} of {} job(s) requeued\n", results.len()));
    s
}
