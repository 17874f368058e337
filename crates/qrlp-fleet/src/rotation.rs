//! Key versions and rotation.
//!
//! A device's keys (Ed25519 for signing requests, ML-KEM-768 for receiving secrets) carry a
//! version, 1, 2, …, shown as `v1`, `v2`. Rotating registers version n+1; version n stays
//! usable for the grace period after that, then is refused. A current key is due for
//! rotation `interval_days` after it was made (`expires_at`); scheduled rotation asks the
//! device to rotate at that time, and the key keeps working until the device does, so a
//! device that was switched off is not locked out.

use time::{Duration, OffsetDateTime};

/// Rotation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Days between scheduled rotations.
    pub interval_days: u32,
    /// How long a replaced key version stays valid.
    pub grace: Duration,
}

impl Default for RotationPolicy {
    /// 30 days, 24 hours of grace.
    fn default() -> Self {
        RotationPolicy {
            interval_days: 30,
            grace: Duration::hours(24),
        }
    }
}

/// What the store knows of one key version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyVersion {
    /// 1, 2, …
    pub version: u32,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// When a newer version replaced it.
    pub superseded_at: Option<OffsetDateTime>,
}

/// A key version's state at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// The current version, before its rotation is due.
    Active,
    /// The current version, past its rotation date: still accepted, rotation asked for.
    RotationDue,
    /// Replaced, within the grace period: still accepted.
    Grace,
    /// Replaced and past the grace period: refused.
    Expired,
}

impl KeyStatus {
    /// `active`, `rotation_due`, `grace` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::RotationDue => "rotation_due",
            KeyStatus::Grace => "grace",
            KeyStatus::Expired => "expired",
        }
    }

    /// Whether a request signed with a key in this state is accepted.
    pub fn accepts(self) -> bool {
        !matches!(self, KeyStatus::Expired)
    }
}

impl RotationPolicy {
    /// The rotation interval.
    pub fn interval(&self) -> Duration {
        Duration::days(i64::from(self.interval_days))
    }

    /// When `key` stops being (or stopped being) the one to use: its rotation date while
    /// current, the end of its grace once replaced.
    pub fn expires_at(&self, key: &KeyVersion) -> OffsetDateTime {
        match key.superseded_at {
            Some(t) => t + self.grace,
            None => key.created_at + self.interval(),
        }
    }

    /// The state of `key` at `now`.
    pub fn status(&self, key: &KeyVersion, now: OffsetDateTime) -> KeyStatus {
        match key.superseded_at {
            Some(t) if now < t + self.grace => KeyStatus::Grace,
            Some(_) => KeyStatus::Expired,
            None if now >= key.created_at + self.interval() => KeyStatus::RotationDue,
            None => KeyStatus::Active,
        }
    }

    /// The next scheduled rotation of a fleet whose oldest current key was made at
    /// `oldest_current` (none: one interval from `now`).
    pub fn next_rotation(
        &self,
        oldest_current: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        oldest_current.map_or(now + self.interval(), |t| t + self.interval())
    }
}

/// `v3` for 3.
pub fn version_label(version: u32) -> String {
    format!("v{version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_key_works_during_the_grace_only() {
        let p = RotationPolicy {
            interval_days: 30,
            grace: Duration::seconds(60),
        };
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut k = KeyVersion {
            version: 1,
            created_at: t0,
            superseded_at: None,
        };
        assert_eq!(p.status(&k, t0), KeyStatus::Active);
        assert_eq!(
            p.status(&k, t0 + Duration::days(30)),
            KeyStatus::RotationDue
        );
        assert!(KeyStatus::RotationDue.accepts());
        assert_eq!(p.expires_at(&k), t0 + Duration::days(30));
        k.superseded_at = Some(t0 + Duration::days(1));
        let s = t0 + Duration::days(1);
        assert_eq!(p.status(&k, s + Duration::seconds(59)), KeyStatus::Grace);
        assert_eq!(p.status(&k, s + Duration::seconds(60)), KeyStatus::Expired);
        assert!(!KeyStatus::Expired.accepts());
        assert_eq!(p.expires_at(&k), s + Duration::seconds(60));
        assert_eq!(version_label(3), "v3");
    }
}
