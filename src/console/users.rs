//! `iys-relay user add|disable|enable|passwd|list`: console users live in the database and are
//! managed from the command line (there is no sign-up page). Each change is in the action log,
//! attributed to the operating-system user who ran the command.

use chrono::{DateTime, Utc};

use super::password::{self, PasswordError};
use crate::store::console::{NewAction, Role};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("a user named {0:?} already exists")]
    Exists(String),
    #[error("no user named {0:?}")]
    Unknown(String),
    #[error("a user name is 1–64 letters, digits, '.', '-', '_' or '@'")]
    BadName,
}

fn check_name(name: &str) -> Result<(), UserError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok { Ok(()) } else { Err(UserError::BadName) }
}

/// Who ran the command, for the action log.
fn operator() -> String {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{who}")
}

async fn log(
    store: &dyn Store,
    action: &str,
    target: &str,
    detail: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    store
        .record_action(&NewAction {
            at: now,
            username: operator(),
            action: action.into(),
            target: target.into(),
            reason: None,
            detail,
            ip: None,
        })
        .await?;
    Ok(())
}

pub async fn add(
    store: &dyn Store,
    name: &str,
    role: Role,
    pw: &str,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    check_name(name)?;
    let hash = password::hash(pw)?;
    store
        .add_user(name, role, &hash, now)
        .await?
        .ok_or_else(|| UserError::Exists(name.into()))?;
    log(
        store,
        "user_add",
        name,
        serde_json::json!({"role": role.as_str()}),
        now,
    )
    .await
}

pub async fn set_password(
    store: &dyn Store,
    name: &str,
    pw: &str,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    let hash = password::hash(pw)?;
    if !store.set_password(name, &hash, now).await? {
        return Err(UserError::Unknown(name.into()));
    }
    log(store, "user_passwd", name, serde_json::json!({}), now).await
}

pub async fn set_disabled(
    store: &dyn Store,
    name: &str,
    disabled: bool,
    now: DateTime<Utc>,
) -> Result<(), UserError> {
    if !store.set_disabled(name, disabled, now).await? {
        return Err(UserError::Unknown(name.into()));
    }
    let action = if disabled {
        "user_disable"
    } else {
        "user_enable"
    };
    log(store, action, name, serde_json::json!({}), now).await
}
