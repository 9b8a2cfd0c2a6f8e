//! What a store function fails with. The store knows nothing of HTTP: the API turns these
//! into statuses in one place (`impl From<StoreError> for StoreError` in `crate::error`);
//! actors and start-up code read them as they are.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No such row (or it belongs to another organisation). Names what was looked for:
    /// `"Endpoint"`, `"Delivery"`…
    NotFound(&'static str),
    /// A unique key is taken, or a conditional write lost its race: says what happened.
    Conflict(String),
    /// An organisation's quota refuses the write: says which quota and what to do.
    QuotaReached(String),
    /// The database cannot be reached (down, connection lost, pool checkout timed out).
    Unavailable,
    /// Anything else. The detail is for the log, never for a client.
    Other(String),
}

impl StoreError {
    pub fn other(detail: impl fmt::Display) -> Self {
        Self::Other(detail.to_string())
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(what) => write!(f, "{what} not found"),
            Self::Conflict(message) | Self::QuotaReached(message) => f.write_str(message),
            Self::Unavailable => f.write_str("The database is unavailable; retry"),
            Self::Other(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => StoreError::NotFound("Resource"),
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                log::warn!("database connection lost: {}", info.message());
                StoreError::Unavailable
            }
            // libpq reports a server that went away mid-query as an unknown error.
            Error::DatabaseError(DatabaseErrorKind::Unknown, info) if lost_connection(info.message()) => {
                log::warn!("database connection lost: {}", info.message());
                StoreError::Unavailable
            }
            other => StoreError::Other(format!("database error: {other}")),
        }
    }
}

fn lost_connection(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "server closed the connection",
        "terminating connection",
        "connection refused",
        "no connection to the server",
        "could not connect",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}
