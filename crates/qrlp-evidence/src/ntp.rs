//! The NTP packet codec used by the SNTP client (RFC 4330, RFC 5905 §7.3), with no I/O.
//!
//! An NTP packet is 48 bytes in network byte order:
//!
//! ```text
//!  0: LI (2 bits) | VN (3 bits) | Mode (3 bits)     1: stratum   2: poll   3: precision
//!  4: root delay (32)         8: root dispersion (32)          12: reference id (32)
//! 16: reference timestamp    24: originate timestamp (T1)      32: receive timestamp (T2)
//! 40: transmit timestamp (T3)                                  48: optional extensions / MAC
//! ```
//!
//! Timestamps are 64-bit fixed point: 32 bits of seconds since 1900-01-01 and 32 bits of
//! fraction. The seconds wrap every 2^32 s (136 years); era 0 ends on 2036-02-07T06:28:16Z.
//! Offsets and delays are computed from wrapping differences of the raw 64-bit values, which is
//! correct across an era boundary as long as the clocks involved are within 68 years of each
//! other (RFC 5905 §6); absolute timestamps are placed in the era nearest a pivot time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an NTP header without extensions.
pub const PACKET_LEN: usize = 48;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Mode 3: a client request.
pub const MODE_CLIENT: u8 = 3;
/// Mode 4: a server reply.
pub const MODE_SERVER: u8 = 4;
/// The version this client sends.
pub const VERSION: u8 = 4;

/// A raw 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low 32),
/// without an era. Zero means "not set".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The timestamp for a Unix time given in nanoseconds (may be negative); the era is
    /// dropped, as on the wire.
    pub fn from_unix_nanos(unix_nanos: i128) -> Self {
        let ntp_nanos = unix_nanos.saturating_add(i128::from(NTP_UNIX_OFFSET_SECS) * 1_000_000_000);
        let secs = ntp_nanos.div_euclid(1_000_000_000);
        let sub = ntp_nanos.rem_euclid(1_000_000_000);
        // Round the fraction to the nearest 2^-32 s.
        let frac = ((sub << 32) + 500_000_000) / 1_000_000_000;
        let raw = ((secs as u128) << 32).wrapping_add(frac as u128);
        // Truncation to 64 bits is the era wrap.
        NtpTimestamp(raw as u64)
    }

    /// The timestamp for a [`SystemTime`].
    pub fn from_system_time(time: SystemTime) -> Self {
        Self::from_unix_nanos(system_time_to_unix_nanos(time))
    }

    /// The Unix time in nanoseconds that this timestamp denotes in the era that puts it
    /// nearest to `pivot_unix_nanos` (within ±2^31 s, about 68 years).
    pub fn to_unix_nanos(self, pivot_unix_nanos: i128) -> i128 {
        let pivot = Self::from_unix_nanos(pivot_unix_nanos);
        pivot_unix_nanos.saturating_add(fixed_to_nanos(self.0.wrapping_sub(pivot.0) as i64))
    }

    /// The [`SystemTime`] this timestamp denotes in the era nearest `pivot`.
    pub fn to_system_time(self, pivot: SystemTime) -> SystemTime {
        unix_nanos_to_system_time(self.to_unix_nanos(system_time_to_unix_nanos(pivot)))
    }

    /// The signed difference `self − earlier` in nanoseconds, era-independent.
    pub fn diff_nanos(self, earlier: NtpTimestamp) -> i128 {
        fixed_to_nanos(self.0.wrapping_sub(earlier.0) as i64)
    }
}

/// Converts a signed 32.32 fixed-point number of seconds to nanoseconds (rounded to nearest).
fn fixed_to_nanos(fixed: i64) -> i128 {
    let scaled = i128::from(fixed) * 1_000_000_000;
    (scaled + (1 << 31)).div_euclid(1 << 32)
}

/// Nanoseconds since the Unix epoch, negative before it.
pub fn system_time_to_unix_nanos(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// The [`SystemTime`] for nanoseconds since the Unix epoch, saturating at the ends of `u64`
/// seconds.
pub fn unix_nanos_to_system_time(nanos: i128) -> SystemTime {
    let magnitude = nanos.unsigned_abs();
    let secs = u64::try_from(magnitude / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = (magnitude % 1_000_000_000) as u32;
    let d = Duration::new(secs, sub);
    if nanos >= 0 {
        UNIX_EPOCH.checked_add(d).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

/// Builds a 48-byte client request (LI 0, version 4, mode 3) whose transmit timestamp is
/// `transmit`. The server copies it into the reply's originate field, which is how a reply is
/// matched to its request.
pub fn client_request(transmit: NtpTimestamp) -> [u8; PACKET_LEN] {
    let mut packet = [0u8; PACKET_LEN];
    packet[0] = (VERSION << 3) | MODE_CLIENT;
    packet[40..48].copy_from_slice(&transmit.0.to_be_bytes());
    packet
}

/// Every field of an NTP header, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Leap indicator (0-3); 3 means the server's clock is unsynchronised.
    pub leap: u8,
    /// Version number (0-7).
    pub version: u8,
    /// Association mode (0-7).
    pub mode: u8,
    /// Stratum: 0 kiss-o'-death, 1 primary, 2-15 secondary, 16 unsynchronised.
    pub stratum: u8,
    /// Poll exponent (log2 seconds).
    pub poll: i8,
    /// Precision exponent (log2 seconds).
    pub precision: i8,
    /// Root delay, 16.16 fixed-point seconds.
    pub root_delay: u32,
    /// Root dispersion, 16.16 fixed-point seconds.
    pub root_dispersion: u32,
    /// Reference id; for stratum 0 the four ASCII bytes of a kiss code.
    pub reference_id: [u8; 4],
    /// When the server's clock was last set.
    pub reference: NtpTimestamp,
    /// T1 as echoed by the server.
    pub originate: NtpTimestamp,
    /// T2: when the server received the request.
    pub receive: NtpTimestamp,
    /// T3: when the server sent the reply.
    pub transmit: NtpTimestamp,
}

impl Header {
    /// Decodes the first 48 bytes of `bytes` (anything after them, extensions or a MAC, is
    /// ignored). Only the length is checked here; see [`validate_reply`].
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let Some(head) = bytes.get(..PACKET_LEN) else {
            return Err(PacketError::TooShort { len: bytes.len() });
        };
        let u32_at =
            |i: usize| u32::from_be_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let ts_at =
            |i: usize| NtpTimestamp((u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4)));
        Ok(Header {
            leap: head[0] >> 6,
            version: (head[0] >> 3) & 0b111,
            mode: head[0] & 0b111,
            stratum: head[1],
            poll: head[2] as i8,
            precision: head[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            reference_id: [head[12], head[13], head[14], head[15]],
            reference: ts_at(16),
            originate: ts_at(24),
            receive: ts_at(32),
            transmit: ts_at(40),
        })
    }

    /// Encodes the header as 48 bytes.
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut p = [0u8; PACKET_LEN];
        p[0] = ((self.leap & 0b11) << 6) | ((self.version & 0b111) << 3) | (self.mode & 0b111);
        p[1] = self.stratum;
        p[2] = self.poll as u8;
        p[3] = self.precision as u8;
        p[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        p[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        p[12..16].copy_from_slice(&self.reference_id);
        p[16..24].copy_from_slice(&self.reference.0.to_be_bytes());
        p[24..32].copy_from_slice(&self.originate.0.to_be_bytes());
        p[32..40].copy_from_slice(&self.receive.0.to_be_bytes());
        p[40..48].copy_from_slice(&self.transmit.0.to_be_bytes());
        p
    }
}

/// Why a server reply was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer than 48 bytes arrived.
    #[error("reply is {len} bytes, shorter than the 48-byte NTP header")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The mode is not 4 (server).
    #[error("reply has mode {0}, expected 4 (server)")]
    BadMode(u8),
    /// The version is not 1 to 4.
    #[error("reply has unsupported NTP version {0}")]
    BadVersion(u8),
    /// Stratum 0: the server asks us to go away; `code` is its four-letter kiss code
    /// (for example `RATE`, `DENY`, `RSTR`).
    #[error("kiss-o'-death from server: {code}")]
    KissOfDeath {
        /// The kiss code, ASCII from the reference id (non-printable bytes as `?`).
        code: String,
    },
    /// Stratum 16 or more: the server is not synchronised to anything.
    #[error("reply has stratum {0}; only 1 to 15 are synchronised")]
    BadStratum(u8),
    /// Leap indicator 3: the server's clock is unsynchronised.
    #[error("server clock is unsynchronised (leap indicator 3)")]
    Unsynchronised,
    /// The transmit timestamp (T3) is zero.
    #[error("reply has a zero transmit timestamp")]
    ZeroTransmit,
    /// The receive timestamp (T2) is zero.
    #[error("reply has a zero receive timestamp")]
    ZeroReceive,
    /// The server claims to have sent its reply (T3) before it received our request (T2).
    #[error("reply's transmit timestamp is earlier than its receive timestamp")]
    TransmitBeforeReceive,
    /// The originate timestamp is not the transmit timestamp we sent: the reply is not an
    /// answer to our request (stale, duplicated or spoofed).
    #[error("reply's originate timestamp does not match our request")]
    OriginateMismatch,
}

/// Decodes a server reply and checks it answers the request whose transmit timestamp was
/// `sent` (RFC 4330 §5: mode, version, stratum, leap indicator, non-zero timestamps, and the
/// originate timestamp echoing ours).
pub fn validate_reply(bytes: &[u8], sent: NtpTimestamp) -> Result<Header, PacketError> {
    let h = Header::decode(bytes)?;
    if h.mode != MODE_SERVER {
        return Err(PacketError::BadMode(h.mode));
    }
    if !(1..=4).contains(&h.version) {
        return Err(PacketError::BadVersion(h.version));
    }
    if h.stratum == 0 {
        let code = h
            .reference_id
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
            .collect();
        return Err(PacketError::KissOfDeath { code });
    }
    if h.stratum > 15 {
        return Err(PacketError::BadStratum(h.stratum));
    }
    if h.leap == 3 {
        return Err(PacketError::Unsynchronised);
    }
    if h.transmit.0 == 0 {
        return Err(PacketError::ZeroTransmit);
    }
    if h.receive.0 == 0 {
        return Err(PacketError::ZeroReceive);
    }
    if h.originate != sent {
        return Err(PacketError::OriginateMismatch);
    }
    if (h.transmit.0.wrapping_sub(h.receive.0) as i64) < 0 {
        return Err(PacketError::TransmitBeforeReceive);
    }
    Ok(h)
}

/// Clock offset and round-trip delay from the four timestamps, in nanoseconds:
/// offset = ((T2 − T1) + (T3 − T4)) / 2, delay = (T4 − T1) − (T3 − T2).
/// A positive offset means the server's clock is ahead of ours.
pub fn offset_and_delay(
    t1: NtpTimestamp,
    t2: NtpTimestamp,
    t3: NtpTimestamp,
    t4: NtpTimestamp,
) -> (i128, i128) {
    let offset = (t2.diff_nanos(t1) + t3.diff_nanos(t4)) / 2;
    let delay = t4.diff_nanos(t1) - t3.diff_nanos(t2);
    (offset, delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERA_BOUNDARY_UNIX: i128 = (1i128 << 32) - NTP_UNIX_OFFSET_SECS as i128;

    #[test]
    fn unix_epoch_is_ntp_2208988800() {
        assert_eq!(
            NtpTimestamp::from_unix_nanos(0).0,
            NTP_UNIX_OFFSET_SECS << 32
        );
    }

    #[test]
    fn round_trip_is_within_a_nanosecond() {
        let now = system_time_to_unix_nanos(SystemTime::now());
        for t in [
            0i128,
            1,
            999_999_999,
            1_700_000_000_123_456_789,
            now,
            -1_000_000_000_000_000_000,
        ] {
            let back = NtpTimestamp::from_unix_nanos(t).to_unix_nanos(t);
            assert!((back - t).abs() <= 1, "{t} -> {back}");
        }
        let st = SystemTime::now();
        let back = NtpTimestamp::from_system_time(st).to_system_time(st);
        let d = match back.duration_since(st) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(d <= Duration::from_nanos(1));
    }

    #[test]
    fn extreme_inputs_do_not_overflow() {
        for t in [i128::MIN, i128::MAX, 0] {
            let ts = NtpTimestamp::from_unix_nanos(t);
            let _ = ts.to_unix_nanos(t);
            let _ = ts.to_unix_nanos(-t.saturating_add(1));
        }
        let _ = NtpTimestamp(u64::MAX).to_system_time(SystemTime::UNIX_EPOCH);
        let _ = unix_nanos_to_system_time(i128::MIN);
        let _ = unix_nanos_to_system_time(i128::MAX);
    }

    #[test]
    fn era_boundary() {
        let boundary = ERA_BOUNDARY_UNIX * 1_000_000_000;
        // One second after the boundary the wire seconds have wrapped to 1.
        let after = NtpTimestamp::from_unix_nanos(boundary + 1_000_000_000);
        assert_eq!(after.0 >> 32, 1);
        // Placed near a pivot just before the boundary, it lands in era 1.
        let pivot = boundary - 5_000_000_000;
        assert_eq!(after.to_unix_nanos(pivot), boundary + 1_000_000_000);
        // One second before the boundary, near a pivot after it, stays in era 0.
        let before = NtpTimestamp::from_unix_nanos(boundary - 1_000_000_000);
        assert_eq!(before.0 >> 32, u64::from(u32::MAX));
        assert_eq!(
            before.to_unix_nanos(boundary + 7_000_000_000),
            boundary - 1_000_000_000
        );
        // Differences straddling the boundary are exact.
        assert_eq!(after.diff_nanos(before), 2_000_000_000);
        assert_eq!(before.diff_nanos(after), -2_000_000_000);
    }

    #[test]
    fn offset_and_delay_across_era_boundary() {
        let b = ERA_BOUNDARY_UNIX * 1_000_000_000;
        let ms = 1_000_000;
        // Client sends just before the wrap; the server is 250 ms ahead; 20 ms each way,
        // 1 ms processing.
        let t1 = NtpTimestamp::from_unix_nanos(b - 10 * ms);
        let t2 = NtpTimestamp::from_unix_nanos(b - 10 * ms + 20 * ms + 250 * ms);
        let t3 = NtpTimestamp::from_unix_nanos(b - 10 * ms + 21 * ms + 250 * ms);
        let t4 = NtpTimestamp::from_unix_nanos(b - 10 * ms + 41 * ms);
        let (offset, delay) = offset_and_delay(t1, t2, t3, t4);
        assert!((offset - 250 * ms).abs() <= 2, "{offset}");
        assert!((delay - 40 * ms).abs() <= 2, "{delay}");
    }

    #[test]
    fn header_round_trip() {
        let h = Header {
            leap: 0,
            version: 4,
            mode: MODE_SERVER,
            stratum: 2,
            poll: 6,
            precision: -20,
            root_delay: 0x0001_0000,
            root_dispersion: 7,
            reference_id: *b"GPS\0",
            reference: NtpTimestamp(1),
            originate: NtpTimestamp(2),
            receive: NtpTimestamp(3),
            transmit: NtpTimestamp(4),
        };
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        assert_eq!(validate_reply(&h.encode(), NtpTimestamp(2)), Ok(h));
        // Trailing extension bytes are ignored.
        let mut long = h.encode().to_vec();
        long.extend_from_slice(&[0xAA; 20]);
        assert_eq!(validate_reply(&long, NtpTimestamp(2)), Ok(h));
    }

    #[test]
    fn client_request_layout() {
        let p = client_request(NtpTimestamp(0x0102_0304_0506_0708));
        assert_eq!(p[0], 0x23);
        assert!(p[1..40].iter().all(|&b| b == 0));
        assert_eq!(&p[40..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn every_short_length_is_an_error_not_a_panic() {
        let full = [0xFFu8; PACKET_LEN];
        for len in 0..PACKET_LEN {
            assert_eq!(
                validate_reply(&full[..len], NtpTimestamp(1)),
                Err(PacketError::TooShort { len })
            );
            assert!(Header::decode(&full[..len]).is_err());
        }
        // Arbitrary 48-byte patterns never panic either.
        for seed in 0u8..=255 {
            let bytes: Vec<u8> = (0..PACKET_LEN as u8)
                .map(|i| i.wrapping_mul(31).wrapping_add(seed))
                .collect();
            let _ = validate_reply(&bytes, NtpTimestamp(u64::from(seed)));
        }
    }

    #[test]
    fn validation_rules() {
        let sent = NtpTimestamp(42);
        let good = Header {
            leap: 0,
            version: 4,
            mode: MODE_SERVER,
            stratum: 1,
            poll: 0,
            precision: 0,
            root_delay: 0,
            root_dispersion: 0,
            reference_id: *b"PPS\0",
            reference: NtpTimestamp(0),
            originate: sent,
            receive: NtpTimestamp(5),
            transmit: NtpTimestamp(6),
        };
        let check = |edit: fn(&mut Header), expected: PacketError| {
            let mut h = good;
            edit(&mut h);
            assert_eq!(validate_reply(&h.encode(), sent), Err(expected));
        };
        check(|h| h.mode = 3, PacketError::BadMode(3));
        check(|h| h.mode = 5, PacketError::BadMode(5));
        check(|h| h.version = 0, PacketError::BadVersion(0));
        check(|h| h.version = 7, PacketError::BadVersion(7));
        check(
            |h| {
                h.stratum = 0;
                h.reference_id = *b"RATE";
            },
            PacketError::KissOfDeath {
                code: "RATE".into(),
            },
        );
        check(|h| h.stratum = 16, PacketError::BadStratum(16));
        check(|h| h.leap = 3, PacketError::Unsynchronised);
        check(|h| h.transmit = NtpTimestamp(0), PacketError::ZeroTransmit);
        check(|h| h.receive = NtpTimestamp(0), PacketError::ZeroReceive);
        check(
            |h| h.originate = NtpTimestamp(43),
            PacketError::OriginateMismatch,
        );
        check(
            |h| h.receive = NtpTimestamp(7),
            PacketError::TransmitBeforeReceive,
        );
        assert!(validate_reply(&good.encode(), sent).is_ok());
    }
}
