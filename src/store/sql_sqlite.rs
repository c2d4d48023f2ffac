//! SQLite specifics: file creation, durability pragmas, the single-instance lock, migrations.

use std::fs::{self, File, OpenOptions};
use std::path::PathBuf;

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;

use super::{Backend, SqlStore, StoreError};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The database file named by a `sqlite:` URL (`sqlite://data/x.db`, `sqlite:///abs/x.db`).
fn db_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

pub(super) async fn connect(url: &str, max_connections: u32) -> Result<SqlStore, StoreError> {
    let path = db_path(url)
        .ok_or_else(|| StoreError::UnsupportedUrl(format!("{url} (SQLite needs a file path)")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    let lock = lock_file(&path)?;
    let url = if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    };
    // WAL + synchronous=FULL: a commit is on disk before we acknowledge it, so an acknowledged
    // event survives kill -9 and power loss. Group commit (ledger) amortises the fsync.
    let options = || {
        AnyPoolOptions::new().after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
                     PRAGMA foreign_keys = ON;",
                )
                .await?;
                Ok(())
            })
        })
    };
    let write = options()
        .max_connections(1)
        .after_release(super::sql::release_clean)
        .connect(&url)
        .await?;
    let read = options()
        .max_connections(max_connections.max(1))
        .connect(&url)
        .await?;
    Ok(SqlStore {
        backend: Backend::Sqlite,
        read,
        write,
        _lock: Some(lock),
    })
}

/// A read-only store beside a running `serve`: no single-instance lock (SQLite lets any number
/// of readers share a WAL database with its one writer), `mode=ro` and `query_only` so that a
/// mistaken write fails instead of racing the writer. Used by the CLI's read-only commands.
pub(super) async fn connect_read_only(
    url: &str,
    max_connections: u32,
) -> Result<SqlStore, StoreError> {
    let path = db_path(url)
        .ok_or_else(|| StoreError::UnsupportedUrl(format!("{url} (SQLite needs a file path)")))?;
    if !path.exists() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no database at {} (run `iys-relay migrate` or `serve` first)",
                path.display()
            ),
        )));
    }
    let base = url.split('?').next().unwrap_or(url);
    let url = format!("{base}?mode=ro");
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections.max(1))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
                    .await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(SqlStore {
        backend: Backend::Sqlite,
        read: pool.clone(),
        write: pool,
        _lock: None,
    })
}

/// Takes `<db>.lock` exclusively: two processes writing one SQLite file would fight over it.
fn lock_file(db: &std::path::Path) -> Result<File, StoreError> {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    let p = PathBuf::from(p);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked(p.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_from_urls() {
        assert_eq!(
            db_path("sqlite://data/x.db"),
            Some(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            db_path("sqlite:///tmp/x.db?mode=rwc"),
            Some(PathBuf::from("/tmp/x.db"))
        );
        assert_eq!(db_path("sqlite::memory:"), None);
    }
}
