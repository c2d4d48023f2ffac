//! Applies `migrations/sqlite/` through rusqlite, keeping sqlx's `_sqlx_migrations` table as
//! it is, so that a database created by an earlier release (which ran sqlx's migrator) is
//! recognised and upgraded in place, and a changed migration file is refused as sqlx would.

use std::time::Instant;

use rusqlite::{Connection, params};

use crate::store::StoreError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

pub(super) fn expected() -> i64 {
    MIGRATOR.iter().count() as i64
}

/// Migrations recorded as applied; 0 when the table does not exist yet.
pub(super) fn applied(conn: &Connection) -> Result<i64, StoreError> {
    let exists: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
        )?
        .query_row([], |r| r.get(0))?;
    if !exists {
        return Ok(0);
    }
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")?
        .query_row([], |r| r.get(0))?)
}

/// Runs on the writer connection, inside its transaction: SQLite's DDL is transactional, so a
/// migration that fails leaves nothing half-applied.
pub(super) fn run(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
             version BIGINT PRIMARY KEY,
             description TEXT NOT NULL,
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
             success BOOLEAN NOT NULL,
             checksum BLOB NOT NULL,
             execution_time BIGINT NOT NULL
         );",
    )?;
    for m in MIGRATOR.iter() {
        let recorded: Option<(Vec<u8>, bool)> = super::one(
            conn,
            "SELECT checksum, success FROM _sqlx_migrations WHERE version = ?1",
            [m.version],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        match recorded {
            Some((checksum, true)) if checksum == *m.checksum => continue,
            Some((_, true)) => {
                return Err(StoreError::Corrupt(format!(
                    "migration {} was applied with different contents than migrations/sqlite/ holds now",
                    m.version
                )));
            }
            Some((_, false)) => {
                return Err(StoreError::Corrupt(format!(
                    "migration {} is recorded as failed; repair the database by hand",
                    m.version
                )));
            }
            None => {}
        }
        let started = Instant::now();
        conn.execute_batch(&m.sql)?;
        conn.prepare_cached(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (?1, ?2, 1, ?3, ?4)",
        )?
        .execute(params![
            m.version,
            m.description.as_ref(),
            m.checksum.as_ref(),
            started.elapsed().as_nanos() as i64
        ])?;
    }
    Ok(())
}
