//! All SQL lives here. One connection type over PostgreSQL and SQLite, an r2d2 pool that
//! picks the backend from the URL, embedded migrations, and `Db::run`, which moves every
//! query off the actix worker threads.
//!
//! The store knows nothing of HTTP: its functions answer `StoreError`, which the API maps
//! to statuses in one place (`crate::error`).

/// Inserts many rows: one multi-row statement on PostgreSQL; row by row on SQLite, whose
/// diesel batch insert opens a transaction of its own (and herald is already in one).
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            $crate::store::DbConn::Pg(c) => diesel::insert_into($table).values($rows).execute(c),
            $crate::store::DbConn::Sqlite(c) => {
                let mut n = 0;
                for row in $rows.iter() {
                    n += diesel::insert_into($table).values(row).execute(c)?;
                }
                Ok(n)
            }
        }
    };
}
pub(crate) use insert_all;

pub mod api_keys;
pub mod deliveries;
pub mod endpoints;
mod error;
pub mod event_types;
pub mod events;
pub mod idempotency;
pub mod nodes;
pub mod notify;
pub mod orgs;
pub mod owners;
pub mod retention;
pub mod schema;
pub mod sealed;
pub mod sessions;
pub mod sources;
pub mod stats;
pub mod stream_tokens;
mod text_columns;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
// A manager's error type is diesel's (`diesel::r2d2` re-exports the rest of the r2d2 crate).
use diesel::r2d2::Error as ManagerError;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use r2d2::{CustomizeConnection, ManageConnection};

pub use error::StoreError;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Key for the advisory lock that keeps concurrently starting nodes from migrating at once.
const MIGRATION_LOCK_KEY: i64 = 0x6865_7261_6c64; // "herald"

#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbBackend = <DbConn as diesel::Connection>::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

/// The `from`/`to` of a list (unix ms, both inclusive), applied to its rows' time column.
#[derive(Debug, Default, Clone, Copy)]
pub struct TimeRange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Narrows a boxed query to `range` on `$column`.
macro_rules! within {
    ($query:expr, $column:expr, $range:expr) => {{
        let mut q = $query;
        if let Some(from) = $range.from {
            q = q.filter($column.ge(from));
        }
        if let Some(to) = $range.to {
            q = q.filter($column.le(to));
        }
        q
    }};
}
pub(crate) use within;

/// Where the database is, parsed once from `database.url`.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    pub backend: Backend,
    /// For SQLite the file path; for PostgreSQL the URL as given.
    pub target: String,
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self { backend: Backend::Postgres, target: url.to_string() });
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err("database.url is empty".into());
        }
        if path.contains("://") {
            return Err(format!(
                "database.url: unsupported scheme in {path:?} (use postgres:// or a file path)"
            ));
        }
        Ok(Self { backend: Backend::Sqlite, target: path.to_string() })
    }
}

/// r2d2 manager that opens the backend named by the URL and reports that backend's own
/// error (the derived `establish` tries each backend and hides the real cause).
pub struct DbManager {
    url: DatabaseUrl,
}

impl ManageConnection for DbManager {
    type Connection = DbConn;
    type Error = ManagerError;

    fn connect(&self) -> Result<DbConn, ManagerError> {
        match self.url.backend {
            Backend::Postgres => PgConnection::establish(&self.url.target).map(DbConn::Pg),
            Backend::Sqlite => SqliteConnection::establish(&self.url.target).map(DbConn::Sqlite),
        }
        .map_err(ManagerError::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ManagerError> {
        conn.batch_execute("SELECT 1").map_err(ManagerError::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// SQLite connections wait for the writer instead of failing, and use WAL. The busy timeout
/// comes first: several connections switching to WAL at once would otherwise see "locked".
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, ManagerError> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), ManagerError> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
            )
            .map_err(ManagerError::QueryError)?;
        }
        Ok(())
    }
}

pub type Pool = r2d2::Pool<DbManager>;

/// The store's handle: a pool plus the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    pub backend: Backend,
}

impl Db {
    pub fn connect(url: &str, pool_size: u32) -> Result<Self, String> {
        let url = DatabaseUrl::parse(url)?;
        if url.backend == Backend::Sqlite
            && let Some(dir) = std::path::Path::new(&url.target).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("database.url: cannot create {}: {e}", dir.display()))?;
        }
        let backend = url.backend;
        let pool = r2d2::Pool::builder()
            .max_size(pool_size.max(1))
            .min_idle(Some(1))
            // Short, so that an unreachable database turns into a prompt 503, never a hang.
            .connection_timeout(Duration::from_secs(3))
            .connection_customizer(Box::new(SqlitePragmas))
            .build(DbManager { url })
            .map_err(|e| format!("database.url: cannot connect to the {} database: {e}", backend.as_str()))?;
        Ok(Self { pool, backend })
    }

    pub fn get(&self) -> Result<r2d2::PooledConnection<DbManager>, StoreError> {
        self.pool.get().map_err(|e| {
            log::warn!("database unavailable: {e}");
            StoreError::Unavailable
        })
    }

    /// Runs blocking diesel work on the blocking thread pool, never on an actix worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        actix_web::web::block(move || {
            let mut conn = db.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::other(format!("blocking task failed: {e}")))?
    }

    pub fn migrate(&self) -> Result<Vec<String>, String> {
        let mut conn = self.pool.get().map_err(|e| format!("database unavailable: {e}"))?;
        run_migrations(&mut conn)
    }
}

pub fn run_migrations(conn: &mut DbConn) -> Result<Vec<String>, String> {
    let applied = match conn {
        DbConn::Pg(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .map_err(|e| e.to_string())?;
            let result = c
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|v| v.iter().map(std::string::ToString::to_string).collect());
            let _ = c.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
            result
        }
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(std::string::ToString::to_string).collect()),
    };
    applied.map_err(|e| format!("migration failed: {e}"))
}

/// True when the error is a unique-constraint violation, on either backend.
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _))
}

/// A unique-constraint violation as a conflict saying `message`; any other error as is.
pub fn conflict_if_taken(e: diesel::result::Error, message: impl FnOnce() -> String) -> StoreError {
    if is_unique_violation(&e) { StoreError::Conflict(message()) } else { e.into() }
}

/// A write transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE), so
/// concurrent writers queue on the busy timeout instead of failing when a read turns into
/// a write. Not re-entrant.
pub fn write_txn<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match conn {
        DbConn::Sqlite(_) => {
            conn.batch_execute("BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(v) => match conn.batch_execute("COMMIT") {
                    Ok(()) => Ok(v),
                    Err(e) => {
                        let _ = conn.batch_execute("ROLLBACK");
                        Err(e.into())
                    }
                },
                Err(e) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(e)
                }
            }
        }
        DbConn::Pg(_) => conn.transaction(f),
    }
}
