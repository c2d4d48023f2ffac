//! What the compliance console keeps: its users and their sessions, the append-only log of what
//! they did, alert acknowledgements, and the day-by-day figures its overview draws.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use super::queue::Alert;

/// What a console user may do; each role can do everything the one before it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the pages; evidence and addresses shown masked.
    Viewer,
    /// Also acts: requeue, acknowledge, mint a test link, download an evidence pack.
    Operator,
    /// Also reads the console's own action log and the user list.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub id: i64,
    pub username: String,
    pub role: Role,
    /// PHC string (argon2id).
    pub password_hash: String,
    pub disabled: bool,
    /// Failed sign-ins since the last good one.
    pub failed_logins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A signed-in browser: its user, and the token every form it posts must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub user: ConsoleUser,
    pub csrf_token: String,
    pub last_seen: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    /// Hex SHA-256 of the cookie's value.
    pub token_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// One line of the console's action log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsoleAction {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub username: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
    pub ip: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewAction {
    pub at: DateTime<Utc>,
    pub username: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
    pub ip: Option<String>,
}

/// Movements received on one Istanbul day (days since 1970-01-01 in UTC+3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovementDay {
    pub day: i64,
    pub brand_code: i64,
    pub channel: String,
    pub status: String,
    pub movements: i64,
}

/// Jobs İYS accepted on one Istanbul day, by latency and deadline-margin bucket (bounds in
/// `migrations/*/0014_console.sql`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AcceptanceDay {
    pub day: i64,
    pub latency_bucket: i64,
    pub margin_bucket: i64,
    pub jobs: i64,
}

/// İYS's answers to the calls made since a time (counted by the hour: the hour `since` falls
/// in is counted whole), as its whitelist policy counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AttemptOutcomes {
    pub total: i64,
    /// 2xx answers.
    pub succeeded: i64,
    /// 400, 401, 403, 404, 422: the answers İYS counts against the caller's IP.
    pub client_errors: i64,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// `None` when the user name is taken.
    async fn add_user(
        &self,
        username: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;
    async fn console_user(&self, username: &str) -> Result<Option<ConsoleUser>, StoreError>;
    async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError>;
    /// Sets the password, lifts a lockout and ends the user's sessions; `false` if no such user.
    async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Disables (ending the user's sessions) or re-enables; `false` if no such user.
    async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Counts a failed sign-in; the `max_failures`-th in a row locks the user until
    /// `lock_until`.
    async fn login_failed(
        &self,
        user_id: i64,
        max_failures: i64,
        lock_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Resets the failure count and opens a session (dropping the user's expired ones).
    async fn login_succeeded(
        &self,
        session: &NewSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The unexpired session of an enabled user with this token hash.
    async fn console_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError>;
    /// Marks the session seen (its idle expiry starts again).
    async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn end_session(&self, token_hash: &str) -> Result<(), StoreError>;

    async fn record_action(&self, action: &NewAction) -> Result<i64, StoreError>;
    /// Newest first, those with an id below `before` when given.
    async fn console_actions(
        &self,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ConsoleAction>, StoreError>;

    /// Warnings and errors no one has acknowledged yet, newest first.
    async fn open_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError>;
    /// `false` when there is no such open alert.
    async fn acknowledge_alert(
        &self,
        id: i64,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn movement_days(&self, from_day: i64) -> Result<Vec<MovementDay>, StoreError>;
    async fn acceptance_days(&self, from_day: i64) -> Result<Vec<AcceptanceDay>, StoreError>;
    async fn attempt_outcomes(&self, since: DateTime<Utc>) -> Result<AttemptOutcomes, StoreError>;
}
