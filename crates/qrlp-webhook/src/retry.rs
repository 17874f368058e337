//! When to try a delivery again, and what an answer means.
//!
//! The schedule is Standard Webhooks': an immediate attempt, then retries after 5 s, 5 min,
//! 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (ten attempts over about three days). Each
//! wait is spread by ±[`JITTER`] so endpoints that failed together do not retry together,
//! and is stretched to a longer `Retry-After`. A time scale multiplies every wait (and the
//! five days after which a failing endpoint is disabled), so tests run the schedule in
//! milliseconds.

use std::time::{Duration, SystemTime};

/// Waits after the 1st, 2nd, … failed attempt.
pub const STANDARD_DELAYS: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// Relative spread of each wait: ±10 %.
pub const JITTER: f64 = 0.1;

/// An endpoint failing for this long without one success is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The retry schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Multiplies every wait; 1.0 in production.
    pub time_scale: f64,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule { time_scale: 1.0 }
    }
}

impl Schedule {
    /// Total attempts before a delivery is given up.
    pub fn max_attempts(&self) -> u32 {
        STANDARD_DELAYS.len() as u32 + 1
    }

    /// The wait before the next attempt after `failed_attempts` failures (1 after the first
    /// attempt failed), or `None` when the delivery is given up. `unit` is a random number in
    /// `[0, 1)`; `retry_after` is the receiver's `Retry-After`, if any.
    pub fn next_delay(
        &self,
        failed_attempts: u32,
        unit: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(failed_attempts.checked_sub(1)?).ok()?;
        let base = *STANDARD_DELAYS.get(index)?;
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jittered = base.as_secs_f64() * (1.0 + JITTER * (2.0 * unit - 1.0));
        let wanted = match retry_after {
            Some(r) => jittered.max(r.min(MAX_RETRY_AFTER).as_secs_f64()),
            None => jittered,
        };
        Some(self.scaled(wanted))
    }

    /// [`DISABLE_AFTER`] at this time scale.
    pub fn disable_after(&self) -> Duration {
        self.scaled(DISABLE_AFTER.as_secs_f64())
    }

    fn scaled(&self, secs: f64) -> Duration {
        let scale = if self.time_scale.is_finite() && self.time_scale >= 0.0 {
            self.time_scale
        } else {
            1.0
        };
        Duration::try_from_secs_f64(secs * scale).unwrap_or(MAX_RETRY_AFTER)
    }
}

/// What a delivery attempt's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered.
    Delivered,
    /// 410 Gone: the receiver wants no more; the endpoint is disabled.
    Gone,
    /// Anything else (3xx included: redirects are not followed), a timeout or a connection
    /// failure: try again on the schedule.
    Failed,
}

/// The outcome of an HTTP status.
pub fn outcome(status: u16) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        410 => Outcome::Gone,
        _ => Outcome::Failed,
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date (relative to `now`). `None` when it
/// is neither or lies in the past.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    at.duration_since(now).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_schedule_without_jitter() {
        let s = Schedule::default();
        let waits: Vec<u64> = (1..=9)
            .map(|n| s.next_delay(n, 0.5, None).unwrap().as_secs())
            .collect();
        assert_eq!(
            waits,
            [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
        );
        assert_eq!(s.next_delay(10, 0.5, None), None);
        assert_eq!(s.next_delay(0, 0.5, None), None);
        assert_eq!(s.max_attempts(), 10);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        let s = Schedule::default();
        let lo = s.next_delay(2, 0.0, None).unwrap().as_secs_f64();
        let hi = s.next_delay(2, 0.999_999, None).unwrap().as_secs_f64();
        assert!((269.9..=270.1).contains(&lo), "{lo}");
        assert!((329.9..=330.1).contains(&hi), "{hi}");
    }

    #[test]
    fn retry_after_and_scale() {
        let s = Schedule { time_scale: 0.001 };
        let d = s.next_delay(1, 0.5, Some(Duration::from_secs(60))).unwrap();
        assert_eq!(d.as_millis(), 60);
        let d = s.next_delay(1, 0.5, None).unwrap();
        assert_eq!(d.as_millis(), 5);
        assert_eq!(s.disable_after().as_secs(), 432);
        let capped = Schedule::default()
            .next_delay(1, 0.5, Some(Duration::from_secs(10 * 86400)))
            .unwrap();
        assert_eq!(capped, MAX_RETRY_AFTER);
    }

    #[test]
    fn statuses() {
        assert_eq!(outcome(200), Outcome::Delivered);
        assert_eq!(outcome(204), Outcome::Delivered);
        assert_eq!(outcome(301), Outcome::Failed);
        assert_eq!(outcome(410), Outcome::Gone);
        assert_eq!(outcome(429), Outcome::Failed);
        assert_eq!(outcome(500), Outcome::Failed);
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:48:37 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
