//! [`ConsoleStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Row, params};

use super::rows;
use super::{SqliteStore, all, one};
use crate::domain::time::{from_ms, to_ms};
use crate::store::StoreError;
use crate::store::console::{
    AcceptanceDay, AttemptOutcomes, ConsoleAction, ConsoleSession, ConsoleStore, ConsoleUser,
    MovementDay, NewAction, NewSession, Role,
};
use crate::store::queue::Alert;

const USER_COLUMNS: &str = "u.id, u.username, u.role, u.password_hash, u.disabled, u.failed_logins, u.locked_until_ms, u.created_at_ms";

fn user(row: &Row<'_>) -> rusqlite::Result<ConsoleUser> {
    let role: String = row.get(2)?;
    Ok(ConsoleUser {
        id: row.get(0)?,
        username: row.get(1)?,
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown role {role:?}").into(),
            )
        })?,
        password_hash: row.get(3)?,
        disabled: row.get::<_, i64>(4)? != 0,
        failed_logins: row.get(5)?,
        locked_until: row.get::<_, Option<i64>>(6)?.map(from_ms),
        created_at: from_ms(row.get(7)?),
    })
}

fn action(row: &Row<'_>) -> rusqlite::Result<ConsoleAction> {
    let detail: String = row.get(6)?;
    Ok(ConsoleAction {
        id: row.get(0)?,
        at: from_ms(row.get(1)?),
        username: row.get(2)?,
        action: row.get(3)?,
        target: row.get(4)?,
        reason: row.get(5)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
        ip: row.get(7)?,
    })
}

#[async_trait]
impl ConsoleStore for SqliteStore {
    async fn add_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        let (username, hash) = (username.to_string(), password_hash.to_string());
        self.write(move |c| {
            one(
                c,
                "INSERT INTO console_users (username, role, password_hash, created_at_ms, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (username) DO NOTHING RETURNING id",
                params![username, role.as_str(), hash, to_ms(now)],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn console_user(&self, username: &str) -> Result<Option<ConsoleUser>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM console_users u WHERE u.username = ?1");
        self.read(|c| one(c, &sql, [username], user))
    }

    async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM console_users u ORDER BY u.username");
        self.read(|c| all(c, &sql, [], user))
    }

    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (username, hash) = (username.to_string(), password_hash.to_string());
        self.write(move |c| {
            let id: Option<i64> = one(
                c,
                "UPDATE console_users SET password_hash = ?2, failed_logins = 0,
                     locked_until_ms = NULL, updated_at_ms = ?3
                 WHERE username = ?1 RETURNING id",
                params![username, hash, to_ms(now)],
                |r| r.get(0),
            )?;
            end_sessions_of(c, id)
        })
        .await
    }

    async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let username = username.to_string();
        self.write(move |c| {
            let id: Option<i64> = one(
                c,
                "UPDATE console_users SET disabled = ?2, updated_at_ms = ?3
                 WHERE username = ?1 RETURNING id",
                params![username, i64::from(disabled), to_ms(now)],
                |r| r.get(0),
            )?;
            end_sessions_of(c, id)
        })
        .await
    }

    async fn login_failed(
        &self,
        user_id: i64,
        max_failures: i64,
        lock_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE console_users SET failed_logins = failed_logins + 1,
                     locked_until_ms = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until_ms END,
                     updated_at_ms = ?4
                 WHERE id = ?1",
            )?
            .execute(params![user_id, max_failures, to_ms(lock_until), to_ms(now)])?;
            Ok(())
        })
        .await
    }

    async fn login_succeeded(
        &self,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let s = session.clone();
        self.write(move |c| {
            let now = to_ms(now);
            c.prepare_cached(
                "UPDATE console_users SET failed_logins = 0, locked_until_ms = NULL, updated_at_ms = ?2
                 WHERE id = ?1",
            )?
            .execute(params![s.user_id, now])?;
            c.prepare_cached("DELETE FROM console_sessions WHERE user_id = ?1 AND expires_at_ms <= ?2")?
                .execute(params![s.user_id, now])?;
            c.prepare_cached(
                "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at_ms, last_seen_ms, expires_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
            )?
            .execute(params![s.token_hash, s.user_id, s.csrf_token, now, to_ms(s.expires_at)])?;
            Ok(())
        })
        .await
    }

    async fn console_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.csrf_token, s.last_seen_ms, s.expires_at_ms
             FROM console_sessions s JOIN console_users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at_ms > ?2 AND u.disabled = 0"
        );
        self.read(|c| {
            one(c, &sql, params![token_hash, to_ms(now)], |r| {
                Ok(ConsoleSession {
                    user: user(r)?,
                    csrf_token: r.get(8)?,
                    last_seen: from_ms(r.get(9)?),
                    expires_at: from_ms(r.get(10)?),
                })
            })
        })
    }

    async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE console_sessions SET last_seen_ms = ?2 WHERE token_hash = ?1",
            )?
            .execute(params![token_hash, to_ms(now)])?;
            Ok(())
        })
        .await
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token_hash = token_hash.to_string();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM console_sessions WHERE token_hash = ?1")?
                .execute([&token_hash])?;
            Ok(())
        })
        .await
    }

    async fn record_action(&self, a: &NewAction) -> Result<i64, StoreError> {
        let a = a.clone();
        self.write(move |c| {
            Ok(c.prepare_cached(
                "INSERT INTO console_actions (at_ms, username, action, target, reason, detail, ip)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            )?
            .query_row(
                params![
                    to_ms(a.at),
                    a.username,
                    a.action,
                    a.target,
                    a.reason,
                    a.detail.to_string(),
                    a.ip
                ],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn console_actions(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ConsoleAction>, StoreError> {
        self.read(|c| {
            all(
                c,
                "SELECT id, at_ms, username, action, target, reason, detail, ip FROM console_actions
                 WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
                params![before.unwrap_or(i64::MAX), limit],
                action,
            )
        })
    }

    async fn open_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            rows::alert_columns!(),
            " FROM alerts WHERE acknowledged_at_ms IS NULL AND severity <> 'info'
             ORDER BY id DESC LIMIT ?1"
        );
        self.read(|c| all(c, SQL, [limit], rows::alert))
    }

    async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let by = by.to_string();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE alerts SET acknowledged_at_ms = ?2, acknowledged_by = ?3
                     WHERE id = ?1 AND acknowledged_at_ms IS NULL AND severity <> 'info'",
                )?
                .execute(params![id, to_ms(now), by])?;
            Ok(n == 1)
        })
        .await
    }

    async fn movement_days(&self, from_day: i64) -> Result<Vec<MovementDay>, StoreError> {
        self.read(|c| {
            all(
                c,
                "SELECT day, brand_code, channel, status, movements FROM movement_days
                 WHERE day >= ?1 ORDER BY day, brand_code, channel, status",
                [from_day],
                |r| {
                    Ok(MovementDay {
                        day: r.get(0)?,
                        brand_code: r.get(1)?,
                        channel: r.get(2)?,
                        status: r.get(3)?,
                        movements: r.get(4)?,
                    })
                },
            )
        })
    }

    async fn acceptance_days(&self, from_day: i64) -> Result<Vec<AcceptanceDay>, StoreError> {
        self.read(|c| {
            all(
                c,
                "SELECT day, latency_bucket, margin_bucket, jobs FROM acceptance_days
                 WHERE day >= ?1 ORDER BY day, latency_bucket, margin_bucket",
                [from_day],
                |r| {
                    Ok(AcceptanceDay {
                        day: r.get(0)?,
                        latency_bucket: r.get(1)?,
                        margin_bucket: r.get(2)?,
                        jobs: r.get(3)?,
                    })
                },
            )
        })
    }

    async fn attempt_outcomes(&self, since: DateTime<Utc>) -> Result<AttemptOutcomes, StoreError> {
        let hour = to_ms(since).div_euclid(3_600_000);
        self.read(|c| {
            Ok(c.prepare_cached(ATTEMPT_OUTCOMES)?.query_row([hour], |r| {
                Ok(AttemptOutcomes {
                    total: r.get(0)?,
                    succeeded: r.get(1)?,
                    client_errors: r.get(2)?,
                })
            })?)
        })
    }
}

const ATTEMPT_OUTCOMES: &str = "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(succeeded), 0),
         COALESCE(SUM(client_errors), 0)
     FROM iys_attempt_hours WHERE hour >= ?1";

/// Ends every session of the user `id` names; `false` when there was no such user.
fn end_sessions_of(c: &rusqlite::Connection, id: Option<i64>) -> Result<bool, StoreError> {
    let Some(id) = id else { return Ok(false) };
    c.prepare_cached("DELETE FROM console_sessions WHERE user_id = ?1")?
        .execute([id])?;
    Ok(true)
}
