//! [`ConsoleStore`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::PgStore;
use super::rows::{AlertRow, alert_columns, convert};
use crate::domain::time::{from_ms, to_ms};
use crate::store::StoreError;
use crate::store::console::{
    AcceptanceDay, AttemptOutcomes, ConsoleAction, ConsoleSession, ConsoleStore, ConsoleUser,
    MovementDay, NewAction, NewSession, Role,
};
use crate::store::queue::Alert;

const USER_BY_NAME: &str = "SELECT u.id, u.username, u.role, u.password_hash, u.disabled,
         u.failed_logins, u.locked_until_ms, u.created_at_ms
     FROM console_users u WHERE u.username = $1";
const SESSION: &str = "SELECT u.id, u.username, u.role, u.password_hash, u.disabled,
         u.failed_logins, u.locked_until_ms, u.created_at_ms,
         s.csrf_token, s.last_seen_ms, s.expires_at_ms
     FROM console_sessions s JOIN console_users u ON u.id = s.user_id
     WHERE s.token_hash = $1 AND s.expires_at_ms > $2 AND u.disabled = 0";
const OPEN_ALERTS: &str = concat!(
    "SELECT ",
    alert_columns!(),
    " FROM alerts WHERE acknowledged_at_ms IS NULL AND severity <> 'info'
     ORDER BY id DESC LIMIT $1"
);

#[derive(FromRow)]
struct UserRow {
    id: i64,
    username: String,
    role: String,
    password_hash: String,
    disabled: i64,
    failed_logins: i64,
    locked_until_ms: Option<i64>,
    created_at_ms: i64,
}

impl TryFrom<UserRow> for ConsoleUser {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(ConsoleUser {
            id: r.id,
            role: Role::parse(&r.role)
                .ok_or_else(|| StoreError::Corrupt(format!("console user role {:?}", r.role)))?,
            username: r.username,
            password_hash: r.password_hash,
            disabled: r.disabled != 0,
            failed_logins: r.failed_logins,
            locked_until: r.locked_until_ms.map(from_ms),
            created_at: from_ms(r.created_at_ms),
        })
    }
}

#[derive(FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: UserRow,
    csrf_token: String,
    last_seen_ms: i64,
    expires_at_ms: i64,
}

#[derive(FromRow)]
struct ActionRow {
    id: i64,
    at_ms: i64,
    username: String,
    action: String,
    target: String,
    reason: Option<String>,
    detail: String,
    ip: Option<String>,
}

impl From<ActionRow> for ConsoleAction {
    fn from(r: ActionRow) -> Self {
        ConsoleAction {
            id: r.id,
            at: from_ms(r.at_ms),
            username: r.username,
            action: r.action,
            target: r.target,
            reason: r.reason,
            detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::String(r.detail)),
            ip: r.ip,
        }
    }
}

#[async_trait]
impl ConsoleStore for PgStore {
    async fn add_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO console_users (username, role, password_hash, created_at_ms, updated_at_ms)
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (username) DO NOTHING RETURNING id",
        )
        .bind(username)
        .bind(role.as_str())
        .bind(password_hash)
        .bind(to_ms(now))
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn console_user(&self, username: &str) -> Result<Option<ConsoleUser>, StoreError> {
        sqlx::query_as::<_, UserRow>(USER_BY_NAME)
            .bind(username)
            .fetch_optional(&self.pool)
            .await?
            .map(ConsoleUser::try_from)
            .transpose()
    }

    async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        const SQL: &str = concat!(
            "SELECT u.id, u.username, u.role, u.password_hash, u.disabled, u.failed_logins,",
            " u.locked_until_ms, u.created_at_ms FROM console_users u ORDER BY u.username"
        );
        convert(
            sqlx::query_as::<_, UserRow>(SQL)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE console_users SET password_hash = $2, failed_logins = 0,
                 locked_until_ms = NULL, updated_at_ms = $3
             WHERE username = $1 RETURNING id",
        )
        .bind(username)
        .bind(password_hash)
        .bind(to_ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        end_sessions_of(tx, id).await
    }

    async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE console_users SET disabled = $2, updated_at_ms = $3
             WHERE username = $1 RETURNING id",
        )
        .bind(username)
        .bind(i64::from(disabled))
        .bind(to_ms(now))
        .fetch_optional(&mut *tx)
        .await?;
        end_sessions_of(tx, id).await
    }

    async fn login_failed(
        &self,
        user_id: i64,
        max_failures: i64,
        lock_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE console_users SET failed_logins = failed_logins + 1,
                 locked_until_ms = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until_ms END,
                 updated_at_ms = $4
             WHERE id = $1",
        )
        .bind(user_id)
        .bind(max_failures)
        .bind(to_ms(lock_until))
        .bind(to_ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn login_succeeded(&self, s: &NewSession, now: DateTime<Utc>) -> Result<(), StoreError> {
        let now = to_ms(now);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE console_users SET failed_logins = 0, locked_until_ms = NULL, updated_at_ms = $2
             WHERE id = $1",
        )
        .bind(s.user_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM console_sessions WHERE user_id = $1 AND expires_at_ms <= $2")
            .bind(s.user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, user_id, csrf_token, created_at_ms, last_seen_ms, expires_at_ms)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(&s.token_hash)
        .bind(s.user_id)
        .bind(&s.csrf_token)
        .bind(now)
        .bind(to_ms(s.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn console_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let Some(r) = sqlx::query_as::<_, SessionRow>(SESSION)
            .bind(token_hash)
            .bind(to_ms(now))
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(ConsoleSession {
            user: r.user.try_into()?,
            csrf_token: r.csrf_token,
            last_seen: from_ms(r.last_seen_ms),
            expires_at: from_ms(r.expires_at_ms),
        }))
    }

    async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE console_sessions SET last_seen_ms = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(to_ms(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn record_action(&self, a: &NewAction) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO console_actions (at_ms, username, action, target, reason, detail, ip)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(to_ms(a.at))
        .bind(&a.username)
        .bind(&a.action)
        .bind(&a.target)
        .bind(&a.reason)
        .bind(a.detail.to_string())
        .bind(&a.ip)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn console_actions(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ConsoleAction>, StoreError> {
        Ok(sqlx::query_as::<_, ActionRow>(
            "SELECT id, at_ms, username, action, target, reason, detail, ip FROM console_actions
             WHERE id < $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(ConsoleAction::from)
        .collect())
    }

    async fn open_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        convert(
            sqlx::query_as::<_, AlertRow>(OPEN_ALERTS)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE alerts SET acknowledged_at_ms = $2, acknowledged_by = $3
             WHERE id = $1 AND acknowledged_at_ms IS NULL AND severity <> 'info'",
        )
        .bind(id)
        .bind(to_ms(now))
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn movement_days(&self, from_day: i64) -> Result<Vec<MovementDay>, StoreError> {
        let rows: Vec<(i64, i64, String, String, i64)> = sqlx::query_as(
            // The counts are kept in shards (so that concurrent commits do not wait on one row).
            "SELECT day, brand_code, channel, status, SUM(movements)::BIGINT FROM movement_days
             WHERE day >= $1 GROUP BY day, brand_code, channel, status
             ORDER BY day, brand_code, channel, status",
        )
        .bind(from_day)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(day, brand_code, channel, status, movements)| MovementDay {
                    day,
                    brand_code,
                    channel,
                    status,
                    movements,
                },
            )
            .collect())
    }

    async fn acceptance_days(&self, from_day: i64) -> Result<Vec<AcceptanceDay>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT day, latency_bucket, margin_bucket, jobs FROM acceptance_days
             WHERE day >= $1 ORDER BY day, latency_bucket, margin_bucket",
        )
        .bind(from_day)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(day, latency_bucket, margin_bucket, jobs)| AcceptanceDay {
                day,
                latency_bucket,
                margin_bucket,
                jobs,
            })
            .collect())
    }

    async fn attempt_outcomes(&self, since: DateTime<Utc>) -> Result<AttemptOutcomes, StoreError> {
        let (total, succeeded, client_errors): (i64, i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(calls), 0)::BIGINT, COALESCE(SUM(succeeded), 0)::BIGINT,
                 COALESCE(SUM(client_errors), 0)::BIGINT
             FROM iys_attempt_hours WHERE hour >= $1",
        )
        .bind(to_ms(since).div_euclid(3_600_000))
        .fetch_one(&self.pool)
        .await?;
        Ok(AttemptOutcomes {
            total,
            succeeded,
            client_errors,
        })
    }
}

/// Ends every session of a user whose password or access just changed (`id`: the user that
/// the update found, if any) and commits the update with it.
async fn end_sessions_of(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    id: Option<i64>,
) -> Result<bool, StoreError> {
    sqlx::query("DELETE FROM console_sessions WHERE user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(id.is_some())
}
