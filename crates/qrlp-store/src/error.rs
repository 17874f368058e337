//! The one error type of the storage adapter.
//!
//! Messages are safe to show to a client: they name a field or a condition, never SQL text,
//! bound values, secrets or hashes. The underlying database error, when there is one, is kept
//! as the [`std::error::Error::source`] so that the caller can log the whole chain.

use std::error::Error as StdError;

/// A boxed underlying cause.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed row does not exist (or belongs to another organization).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or an invariant would be broken; the value names it
    /// (`"email"`, `"name"`, `"member"`, `"last_owner"`, ...).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller passed a value the store refuses; the message names the field.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A rule about who may do it, checked inside the transaction, refuses the change; the
    /// value names the rule (`"owner"`: only owners touch owners; `"account"`: the
    /// invitation is for another account).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The database cannot be reached or is too busy (pool timeout, connection refused, I/O).
    #[error("database unavailable: {0}")]
    Unavailable(String, #[source] Option<BoxError>),
    /// Anything else: a bug, a corrupt row, an unexpected database answer.
    #[error("internal storage error: {0}")]
    Internal(String, #[source] Option<BoxError>),
}

impl StoreError {
    /// `Invalid` naming a field and what is wrong with it.
    pub(crate) fn invalid(field: &str, reason: &str) -> Self {
        StoreError::Invalid(format!("{field}: {reason}"))
    }

    /// `Internal` without an underlying cause.
    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        StoreError::Internal(msg.into(), None)
    }
}

/// Names the field behind a unique constraint, from the constraint name (PostgreSQL) or the
/// `table.column` list in the message (SQLite). Unknown constraints become `"unique"`.
fn conflict_field(constraint: Option<&str>, message: &str) -> &'static str {
    const KNOWN: &[(&str, &str, &str)] = &[
        // (PostgreSQL constraint, SQLite column list, field)
        (
            "organizations_name_norm_key",
            "organizations.name_norm",
            "name",
        ),
        ("users_email_norm_key", "users.email_norm", "email"),
        (
            "memberships_pkey",
            "memberships.org_id, memberships.user_id",
            "member",
        ),
        ("api_keys_key_hash_key", "api_keys.key_hash", "api_key"),
        ("sessions_token_hash_key", "sessions.token_hash", "session"),
        ("organizations_pkey", "organizations.id", "id"),
        ("users_pkey", "users.id", "id"),
        ("api_keys_pkey", "api_keys.id", "id"),
        ("sessions_pkey", "sessions.id", "id"),
        ("audit_log_pkey", "audit_log.id", "id"),
        (
            "fl_jobs_one_running",
            "fl_jobs.org_id",
            "training_in_progress",
        ),
    ];
    for (pg, sqlite, field) in KNOWN {
        if constraint == Some(*pg) || (constraint.is_none() && message.ends_with(sqlite)) {
            return field;
        }
    }
    "unique"
}

/// SQLite result codes (primary code in the low byte) that mean "try again later".
fn sqlite_busy(code: &str) -> bool {
    code.parse::<i32>()
        .map(|c| {
            matches!(
                c & 0xff,
                5 /* BUSY */ | 6 /* LOCKED */ | 10 /* IOERR */ | 13 /* FULL */ | 14 /* CANTOPEN */
            )
        })
        .unwrap_or(false)
}

/// PostgreSQL SQLSTATE classes that mean the server is unavailable rather than the query wrong.
fn pg_unavailable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources
        || code.starts_with("57P") // operator intervention (shutdown, cannot connect now)
        || code == "40001" // serialization failure
        || code == "40P01" // deadlock detected
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        use sqlx::error::ErrorKind;
        match err {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::PoolTimedOut => StoreError::Unavailable(
                "timed out waiting for a database connection".into(),
                Some(Box::new(err)),
            ),
            sqlx::Error::PoolClosed => {
                StoreError::Unavailable("the database pool is closed".into(), Some(Box::new(err)))
            }
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => {
                StoreError::Unavailable("cannot talk to the database".into(), Some(Box::new(err)))
            }
            sqlx::Error::Database(ref db) => match db.kind() {
                ErrorKind::UniqueViolation => {
                    StoreError::Conflict(conflict_field(db.constraint(), db.message()).into())
                }
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ => {
                    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                    let is_pg = db
                        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some();
                    let unavailable = if is_pg {
                        pg_unavailable(&code)
                    } else {
                        sqlite_busy(&code)
                    };
                    if unavailable {
                        StoreError::Unavailable(
                            "the database is busy or unavailable".into(),
                            Some(Box::new(err)),
                        )
                    } else {
                        StoreError::Internal("database error".into(), Some(Box::new(err)))
                    }
                }
            },
            other => StoreError::Internal("database error".into(), Some(Box::new(other))),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        use sqlx::migrate::MigrateError;
        match err {
            MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
                match StoreError::from(inner) {
                    StoreError::Unavailable(msg, src) => StoreError::Unavailable(msg, src),
                    other => StoreError::Internal(
                        "a migration failed to apply".into(),
                        Some(Box::new(other)),
                    ),
                }
            }
            other => StoreError::Internal(
                "the database migrations do not match this build".into(),
                Some(Box::new(other)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_fields_are_named() {
        assert_eq!(conflict_field(Some("users_email_norm_key"), "x"), "email");
        assert_eq!(
            conflict_field(None, "UNIQUE constraint failed: organizations.name_norm"),
            "name"
        );
        assert_eq!(
            conflict_field(
                None,
                "UNIQUE constraint failed: memberships.org_id, memberships.user_id"
            ),
            "member"
        );
        assert_eq!(conflict_field(Some("other"), "x"), "unique");
    }

    #[test]
    fn busy_codes() {
        assert!(sqlite_busy("5"));
        assert!(sqlite_busy("517")); // SQLITE_BUSY_SNAPSHOT
        assert!(!sqlite_busy("19")); // CONSTRAINT
        assert!(pg_unavailable("08006"));
        assert!(!pg_unavailable("23505"));
    }
}
