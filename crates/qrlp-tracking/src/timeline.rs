//! Days of an analytics period in a time zone.
//!
//! A period is the last 7, 30, 90 or 365 local days, today included. Counts are kept in
//! quarter-hour buckets ([`BUCKET_SECS`]) in UTC; every time zone in use has an offset that
//! is a whole number of quarter hours, so a bucket never straddles a local midnight and
//! summing buckets by [`Timeline::day_of`] gives exact local days, DST days included.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// Width of a roll-up bucket in seconds.
pub const BUCKET_SECS: i64 = 900;

/// The start of the bucket holding `unix_secs`.
pub fn bucket_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(BUCKET_SECS) * BUCKET_SECS
}

/// How far back a timeline goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// 7 days.
    Days7,
    /// 30 days.
    Days30,
    /// 90 days.
    Days90,
    /// 365 days.
    Year,
}

impl Period {
    /// `7d`, `30d`, `90d` or `1y`.
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "7d" => Some(Period::Days7),
            "30d" => Some(Period::Days30),
            "90d" => Some(Period::Days90),
            "1y" => Some(Period::Year),
            _ => None,
        }
    }

    /// The name it was parsed from.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Days7 => "7d",
            Period::Days30 => "30d",
            Period::Days90 => "90d",
            Period::Year => "1y",
        }
    }

    /// Number of days.
    pub fn days(self) -> i64 {
        match self {
            Period::Days7 => 7,
            Period::Days30 => 30,
            Period::Days90 => 90,
            Period::Year => 365,
        }
    }
}

/// Why a timeline cannot be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimelineError {
    /// Not an IANA time zone name.
    #[error("unknown time zone")]
    UnknownZone,
    /// The clock is outside the supported range.
    #[error("time out of range")]
    OutOfRange,
}

/// The local days of one period, oldest first, and the instants they cover.
#[derive(Clone, Debug)]
pub struct Timeline {
    zone_name: String,
    days: Vec<Date>,
    /// Unix second at which each day starts, plus the end of the last day.
    starts: Vec<i64>,
}

impl Timeline {
    /// The `period` ending today in `zone` (an IANA name; `None` is UTC) at `now_unix`.
    ///
    /// # Errors
    /// An unknown zone name; a time jiff cannot represent.
    pub fn new(
        period: Period,
        zone: Option<&str>,
        now_unix: i64,
    ) -> Result<Timeline, TimelineError> {
        let (tz, zone_name) = match zone {
            None => (TimeZone::UTC, "UTC".to_string()),
            Some(name) => {
                // Names only: no POSIX strings, no paths.
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/_-+".contains(&b));
                if !ok {
                    return Err(TimelineError::UnknownZone);
                }
                let tz = jiff::tz::db()
                    .get(name)
                    .map_err(|_| TimelineError::UnknownZone)?;
                let canonical = tz.iana_name().unwrap_or(name).to_string();
                (tz, canonical)
            }
        };
        let now = Timestamp::from_second(now_unix).map_err(|_| TimelineError::OutOfRange)?;
        let today = ZonedDateTime::new(now, tz.clone()).date();
        let mut days = Vec::with_capacity(period.days() as usize);
        let mut starts = Vec::with_capacity(period.days() as usize + 1);
        let first = today
            .checked_sub(jiff::Span::new().days(period.days() - 1))
            .map_err(|_| TimelineError::OutOfRange)?;
        let mut d = first;
        for _ in 0..=period.days() {
            let start = d
                .to_zoned_datetime(tz.clone())
                .map_err(|_| TimelineError::OutOfRange)?
                .start_of_day()
                .map_err(|_| TimelineError::OutOfRange)?
                .timestamp()
                .as_second();
            starts.push(start);
            if days.len() < period.days() as usize {
                days.push(d);
            }
            d = d.tomorrow().map_err(|_| TimelineError::OutOfRange)?;
        }
        Ok(Timeline {
            zone_name,
            days,
            starts,
        })
    }

    /// The zone's IANA name (`UTC` when none was given).
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// `[start, end)` in Unix seconds.
    pub fn range(&self) -> (i64, i64) {
        (self.starts[0], self.starts[self.starts.len() - 1])
    }

    /// The days as `YYYY-MM-DD`, oldest first.
    pub fn dates(&self) -> impl Iterator<Item = String> + '_ {
        self.days.iter().map(|d| d.to_string())
    }

    /// The Unix second each day starts at, then the end of the last day: `len() + 1`
    /// boundaries, increasing.
    pub fn boundaries(&self) -> &[i64] {
        &self.starts
    }

    /// Number of days.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Never true: a period has at least 7 days.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    /// Index of the local day holding `unix_secs`, if it is inside the period.
    pub fn day_of(&self, unix_secs: i64) -> Option<usize> {
        let (start, end) = self.range();
        if unix_secs < start || unix_secs >= end {
            return None;
        }
        // starts is sorted: the last start <= t.
        Some(self.starts.partition_point(|&s| s <= unix_secs) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    #[test]
    fn utc_week() {
        let t = Timeline::new(Period::Days7, None, unix("2026-03-10T12:00:00Z")).unwrap();
        let dates: Vec<_> = t.dates().collect();
        assert_eq!(dates.first().unwrap(), "2026-03-04");
        assert_eq!(dates.last().unwrap(), "2026-03-10");
        assert_eq!(
            t.range(),
            (unix("2026-03-04T00:00:00Z"), unix("2026-03-11T00:00:00Z"))
        );
        assert_eq!(t.day_of(unix("2026-03-10T23:59:59Z")), Some(6));
        assert_eq!(t.day_of(unix("2026-03-11T00:00:00Z")), None);
        assert_eq!(t.day_of(unix("2026-03-03T23:59:59Z")), None);
    }

    #[test]
    fn new_york_midnight_and_dst() {
        // 2026-03-08 is the spring-forward day in New York (23 hours).
        let t = Timeline::new(
            Period::Days7,
            Some("America/New_York"),
            unix("2026-03-10T12:00:00Z"),
        )
        .unwrap();
        assert_eq!(t.zone_name(), "America/New_York");
        let dates: Vec<_> = t.dates().collect();
        // 23:59 local on the 8th (EDT, UTC-4) and 00:01 local on the 9th.
        let i8 = dates.iter().position(|d| d == "2026-03-08").unwrap();
        assert_eq!(t.day_of(unix("2026-03-09T03:59:00Z")), Some(i8));
        assert_eq!(t.day_of(unix("2026-03-09T04:01:00Z")), Some(i8 + 1));
        // The 8th started at 05:00Z (EST) and lasted 23 hours.
        assert_eq!(t.day_of(unix("2026-03-08T04:59:59Z")), Some(i8 - 1));
        assert_eq!(t.day_of(unix("2026-03-08T05:00:00Z")), Some(i8));
        // Buckets never straddle midnight: a bucket's day is the day of all its seconds.
        let (start, end) = t.range();
        let mut b = bucket_of(start);
        while b < end {
            assert_eq!(t.day_of(b), t.day_of(b + BUCKET_SECS - 1));
            b += BUCKET_SECS;
        }
    }

    #[test]
    fn zones_are_checked() {
        let now = unix("2026-03-10T12:00:00Z");
        assert!(Timeline::new(Period::Year, Some("Europe/Paris"), now).is_ok());
        assert!(Timeline::new(Period::Days7, Some("Asia/Kathmandu"), now).is_ok());
        for bad in [
            "Mars/Olympus",
            "",
            "../etc/passwd",
            "EST5EDT,M3.2.0,M11.1.0",
            &"A".repeat(100),
        ] {
            assert_eq!(
                Timeline::new(Period::Days7, Some(bad), now).unwrap_err(),
                TimelineError::UnknownZone,
                "{bad}"
            );
        }
        assert_eq!(Timeline::new(Period::Year, None, now).unwrap().len(), 365);
        assert_eq!(Period::parse("2w"), None);
    }
}
