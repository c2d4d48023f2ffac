//! PostgreSQL specifics: pool and migrations. Any number of replicas may share one database.

use sqlx::any::AnyPoolOptions;

use super::{Backend, SqlStore, StoreError};

pub(super) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub(super) async fn connect(url: &str, max_connections: u32) -> Result<SqlStore, StoreError> {
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections.max(2))
        .after_release(super::sql::release_clean)
        .connect(url)
        .await?;
    Ok(SqlStore {
        backend: Backend::Postgres,
        read: pool.clone(),
        write: pool,
        _lock: None,
    })
}
