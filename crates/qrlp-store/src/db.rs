//! Column types shared by both backends.
//!
//! [`Ts`] is how every timestamp crosses the database boundary. PostgreSQL stores it as
//! `TIMESTAMPTZ` exactly as sqlx maps `OffsetDateTime`. SQLite stores it as text, which sqlx
//! reads back as `OffsetDateTime`; the text is written with a fixed width
//! (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) so that comparing and ordering the text in SQL is
//! comparing and ordering the instants (sqlx's own encoding trims trailing zeros, which
//! would sort `…05Z` after `…05.5Z`).

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::{Database, Decode, Encode, Type};
use time::{OffsetDateTime, UtcOffset};

use crate::error::StoreError;

/// A UTC timestamp with microsecond precision, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ts(pub OffsetDateTime);

/// Converts to UTC and drops the nanoseconds below a microsecond, so that a value written
/// and read back compares equal on both backends.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_microsecond(t.microsecond()).unwrap_or(t)
}

/// The current instant, truncated like everything stored.
pub(crate) fn now() -> OffsetDateTime {
    truncate(OffsetDateTime::now_utc())
}

/// Checks a caller-supplied time (`field` names it in the error) and truncates it.
/// Years outside 1..=9999 are refused: they would break the text order on SQLite.
pub(crate) fn checked_time(field: &str, t: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    let t = truncate(t);
    if (1..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(StoreError::invalid(
            field,
            "year must be between 1 and 9999",
        ))
    }
}

impl Ts {
    fn sqlite_text(&self) -> String {
        let t = truncate(self.0);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.microsecond()
        )
    }
}

impl From<Ts> for OffsetDateTime {
    fn from(t: Ts) -> Self {
        t.0
    }
}

impl Type<Sqlite> for Ts {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <OffsetDateTime as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &<Sqlite as Database>::TypeInfo) -> bool {
        <OffsetDateTime as Type<Sqlite>>::compatible(ty)
    }
}

impl Encode<'_, Sqlite> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.sqlite_text(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Ts {
    fn decode(value: <Sqlite as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <OffsetDateTime as Decode<'r, Sqlite>>::decode(value).map(|t| Ts(truncate(t)))
    }
}

impl Type<Postgres> for Ts {
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &<Postgres as Database>::TypeInfo) -> bool {
        <OffsetDateTime as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Ts {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode(truncate(self.0), buf)
    }
}

impl<'r> Decode<'r, Postgres> for Ts {
    fn decode(value: <Postgres as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        <OffsetDateTime as Decode<'r, Postgres>>::decode(value).map(|t| Ts(truncate(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn sqlite_text_is_fixed_width_and_ordered() {
        let a = Ts(datetime!(2026-01-02 03:04:05 UTC)).sqlite_text();
        let b = Ts(datetime!(2026-01-02 03:04:05.5 UTC)).sqlite_text();
        let c = Ts(datetime!(2026-01-02 05:04:05.000001 +02:00)).sqlite_text();
        assert_eq!(a, "2026-01-02T03:04:05.000000Z");
        assert_eq!(b, "2026-01-02T03:04:05.500000Z");
        assert_eq!(c, "2026-01-02T03:04:05.000001Z");
        assert!(a < c && c < b);
    }

    #[test]
    fn truncation_and_range() {
        let t = datetime!(2026-01-02 03:04:05.123456789 UTC);
        assert_eq!(truncate(t), datetime!(2026-01-02 03:04:05.123456 UTC));
        assert!(checked_time("expires_at", datetime!(-0001-01-01 0:00 UTC)).is_err());
    }
}
