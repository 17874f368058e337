//! The SNTP client (RFC 4330): asks every configured server at once, takes the median offset,
//! flags servers that disagree with it, and keeps per-server statistics.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::net::UdpSocket;

use crate::config::TimeConfig;
use crate::ntp::{self, NtpTimestamp, PacketError};

/// The port SNTP servers listen on.
pub const DEFAULT_PORT: u16 = 123;

/// Largest reply read; NTP extension fields and MACs make replies longer than 48 bytes.
const MAX_REPLY: usize = 1024;

/// Where the time in a [`TimeEvidence`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// At least one SNTP server answered; the offset is their median.
    Sntp,
    /// No server answered and the configuration allows the system clock alone; the offset is
    /// zero and nothing was checked.
    SystemFallback,
}

impl TimeSource {
    /// `sntp` or `system_fallback`, as in the summary JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Sntp => "sntp",
            TimeSource::SystemFallback => "system_fallback",
        }
    }
}

/// One server's successful answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measurement {
    /// The address that answered.
    pub address: SocketAddr,
    /// Server clock minus local clock, microseconds (positive: the server is ahead).
    pub offset_us: i64,
    /// Round-trip delay, microseconds.
    pub delay_us: i64,
    /// The server's stratum (1-15).
    pub stratum: u8,
    /// The offset differs from the median of all answers by more than `max_drift`; the
    /// server's answer is left out of the final median.
    pub outlier: bool,
}

/// Why one server gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    /// The server name is malformed or did not resolve.
    #[error("cannot resolve: {0}")]
    Resolve(String),
    /// The name resolved to no address.
    #[error("name resolved to no address")]
    NoAddress,
    /// Sending or receiving failed (for example ICMP port unreachable).
    #[error("network error: {0}")]
    Io(String),
    /// No reply within the configured timeout.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// A reply arrived and was rejected.
    #[error("{0}")]
    Packet(#[from] PacketError),
}

/// The outcome for one configured server in one measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSample {
    /// The server as configured.
    pub server: String,
    /// Its measurement, or why there is none.
    pub result: Result<Measurement, ServerError>,
}

/// The result of asking the configured servers for the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeEvidence {
    /// Network time minus local clock, microseconds: the median of the non-outlier answers
    /// (the mean of the two middle ones for an even count). Zero for a system fallback.
    pub offset_us: i64,
    /// Round-trip delay of the answer nearest that median, microseconds.
    pub delay_us: i64,
    /// Servers asked.
    pub servers_queried: u32,
    /// Servers that gave a valid answer, outliers included.
    pub servers_ok: u32,
    /// Valid answers flagged as outliers.
    pub outliers: u32,
    /// Where the time comes from.
    pub source: TimeSource,
    /// Local clock when the measurement finished.
    pub measured_at: SystemTime,
    /// Every server's outcome, in configuration order.
    pub per_server: Vec<ServerSample>,
}

impl TimeEvidence {
    /// The local time `local` corrected by the measured offset.
    pub fn corrected(&self, local: SystemTime) -> SystemTime {
        let d = Duration::from_micros(self.offset_us.unsigned_abs());
        let shifted = if self.offset_us >= 0 {
            local.checked_add(d)
        } else {
            local.checked_sub(d)
        };
        shifted.unwrap_or(local)
    }

    /// True when servers vouched for the local clock: the source is SNTP, at least one answer
    /// agreed with the median, and the offset is within `max_drift`.
    pub fn verified(&self, max_drift: Duration) -> bool {
        self.source == TimeSource::Sntp
            && self.servers_ok > self.outliers
            && u128::from(self.offset_us.unsigned_abs()) <= max_drift.as_micros()
    }

    /// The seed-style `time_server_verification` object, with sorted keys:
    /// `{"verified", "source", "offset_ms", "delay_ms", "servers_queried", "servers_ok",
    /// "outliers", "measured_at" (Unix seconds), "servers": {name: {"ok", "offset_ms",
    /// "delay_ms", "stratum", "outlier"} or {"ok": false, "error"}}}`.
    pub fn summary(&self, max_drift: Duration) -> Value {
        let mut servers = Map::new();
        for sample in &self.per_server {
            let entry = match &sample.result {
                Ok(m) => json!({
                    "ok": true,
                    "offset_ms": us_to_ms(m.offset_us),
                    "delay_ms": us_to_ms(m.delay_us),
                    "stratum": m.stratum,
                    "outlier": m.outlier,
                }),
                Err(e) => json!({ "ok": false, "error": e.to_string() }),
            };
            servers.insert(sample.server.clone(), entry);
        }
        json!({
            "verified": self.verified(max_drift),
            "source": self.source.as_str(),
            "offset_ms": us_to_ms(self.offset_us),
            "delay_ms": us_to_ms(self.delay_us),
            "servers_queried": self.servers_queried,
            "servers_ok": self.servers_ok,
            "outliers": self.outliers,
            "measured_at": unix_secs(self.measured_at),
            "servers": servers,
        })
    }
}

fn us_to_ms(us: i64) -> f64 {
    us as f64 / 1000.0
}

/// Unix seconds as a float (the seed's timestamp style); negative before 1970.
pub(crate) fn unix_secs(t: SystemTime) -> f64 {
    ntp::system_time_to_unix_nanos(t) as f64 / 1e9
}

/// Why no time evidence could be produced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// No servers are configured and the system-clock fallback is off.
    #[error("no time servers configured and fallback_to_system is off")]
    NoServers,
    /// Every server failed and the system-clock fallback is off.
    #[error("no time server answered: {}", describe_failures(.samples))]
    AllFailed {
        /// Every server's failure.
        samples: Vec<ServerSample>,
    },
}

fn describe_failures(samples: &[ServerSample]) -> String {
    samples
        .iter()
        .map(|s| match &s.result {
            Ok(_) => format!("{}: ok", s.server),
            Err(e) => format!("{}: {e}", s.server),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Running counts for one configured server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// The server as configured.
    pub server: String,
    /// Requests made.
    pub queries: u64,
    /// Valid replies (outliers included).
    pub successes: u64,
    /// Timeouts, network errors and rejected replies.
    pub failures: u64,
    /// Offset of the last valid reply, microseconds.
    pub last_offset_us: Option<i64>,
    /// Delay of the last valid reply, microseconds.
    pub last_delay_us: Option<i64>,
    /// The last failure, as text.
    pub last_error: Option<String>,
    /// Local time of the last valid reply.
    pub last_success: Option<SystemTime>,
    /// Whether the most recent query succeeded.
    pub last_ok: bool,
}

/// An SNTP client over the configured servers. Cheap to share behind an `Arc`; all methods
/// take `&self`.
#[derive(Debug)]
pub struct SntpClient {
    config: TimeConfig,
    stats: Mutex<Vec<ServerStats>>,
    latest: Mutex<Option<(Instant, TimeEvidence)>>,
    refresh: tokio::sync::Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked: every update is a plain
    // field assignment.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SntpClient {
    /// A client for `config` (not validated here; see [`TimeConfig::validate`]).
    pub fn new(config: TimeConfig) -> Self {
        let stats = config
            .time_servers
            .iter()
            .map(|s| ServerStats {
                server: s.clone(),
                ..ServerStats::default()
            })
            .collect();
        SntpClient {
            config,
            stats: Mutex::new(stats),
            latest: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &TimeConfig {
        &self.config
    }

    /// Asks every configured server concurrently, each within `timeout`, and combines the
    /// answers. Falls back to the system clock when none answers and the configuration
    /// allows it; otherwise returns [`TimeError`].
    pub async fn measure(&self) -> Result<TimeEvidence, TimeError> {
        let timeout = self.config.timeout;
        let queries = self.config.time_servers.iter().map(|server| async move {
            let result = match tokio::time::timeout(timeout, query_server(server)).await {
                Ok(r) => r,
                Err(_) => Err(ServerError::Timeout(timeout)),
            };
            ServerSample {
                server: server.clone(),
                result,
            }
        });
        let mut samples = futures_util::future::join_all(queries).await;
        let combined = combine(&mut samples, self.config.max_drift);
        self.record(&samples);
        let queried = u32::try_from(samples.len()).unwrap_or(u32::MAX);
        let evidence = match combined {
            Some(c) => TimeEvidence {
                offset_us: c.offset_us,
                delay_us: c.delay_us,
                servers_queried: queried,
                servers_ok: c.ok,
                outliers: c.outliers,
                source: TimeSource::Sntp,
                measured_at: SystemTime::now(),
                per_server: samples,
            },
            None if self.config.fallback_to_system => TimeEvidence {
                offset_us: 0,
                delay_us: 0,
                servers_queried: queried,
                servers_ok: 0,
                outliers: 0,
                source: TimeSource::SystemFallback,
                measured_at: SystemTime::now(),
                per_server: samples,
            },
            None if samples.is_empty() => return Err(TimeError::NoServers),
            None => return Err(TimeError::AllFailed { samples }),
        };
        *lock(&self.latest) = Some((Instant::now(), evidence.clone()));
        Ok(evidence)
    }

    /// The last evidence if it is younger than `update_interval`, otherwise a new
    /// [`measure`](Self::measure). Concurrent callers share one measurement.
    pub async fn evidence(&self) -> Result<TimeEvidence, TimeError> {
        let _one_at_a_time = self.refresh.lock().await;
        if let Some(ev) = self.fresh() {
            return Ok(ev);
        }
        self.measure().await
    }

    /// The last evidence produced, however old.
    pub fn latest(&self) -> Option<TimeEvidence> {
        lock(&self.latest).as_ref().map(|(_, ev)| ev.clone())
    }

    fn fresh(&self) -> Option<TimeEvidence> {
        match &*lock(&self.latest) {
            Some((at, ev)) if at.elapsed() < self.config.update_interval => Some(ev.clone()),
            _ => None,
        }
    }

    /// Per-server statistics, in configuration order.
    pub fn stats(&self) -> Vec<ServerStats> {
        lock(&self.stats).clone()
    }

    /// The seed's `time_provider_stats`: `{"success_rate", "active_servers", "last_sync"}`,
    /// where `last_sync` is the Unix time of the last valid reply (null if none).
    pub fn provider_stats(&self) -> Value {
        let stats = lock(&self.stats);
        let queries: u64 = stats.iter().map(|s| s.queries).sum();
        let successes: u64 = stats.iter().map(|s| s.successes).sum();
        let rate = if queries == 0 {
            0.0
        } else {
            successes as f64 / queries as f64
        };
        let active = stats.iter().filter(|s| s.last_ok).count();
        let last_sync = stats
            .iter()
            .filter_map(|s| s.last_success)
            .max()
            .map(unix_secs);
        json!({ "success_rate": rate, "active_servers": active, "last_sync": last_sync })
    }

    /// The `time_server_verification` object for `evidence` under this client's `max_drift`.
    pub fn summary(&self, evidence: &TimeEvidence) -> Value {
        evidence.summary(self.config.max_drift)
    }

    fn record(&self, samples: &[ServerSample]) {
        let now = SystemTime::now();
        let mut stats = lock(&self.stats);
        for (stat, sample) in stats.iter_mut().zip(samples) {
            stat.queries += 1;
            match &sample.result {
                Ok(m) => {
                    stat.successes += 1;
                    stat.last_offset_us = Some(m.offset_us);
                    stat.last_delay_us = Some(m.delay_us);
                    stat.last_success = Some(now);
                    stat.last_ok = true;
                }
                Err(e) => {
                    stat.failures += 1;
                    stat.last_error = Some(e.to_string());
                    stat.last_ok = false;
                }
            }
        }
    }
}

struct Combined {
    offset_us: i64,
    delay_us: i64,
    ok: u32,
    outliers: u32,
}

/// Median of all answers, outlier flags, then the median of the answers that agree with it.
fn combine(samples: &mut [ServerSample], max_drift: Duration) -> Option<Combined> {
    let offsets: Vec<i64> = samples
        .iter()
        .filter_map(|s| s.result.as_ref().ok().map(|m| m.offset_us))
        .collect();
    let first = median(offsets.clone())?;
    let drift = i128::try_from(max_drift.as_micros()).unwrap_or(i128::MAX);
    let mut outliers = 0u32;
    for s in samples.iter_mut() {
        if let Ok(m) = &mut s.result {
            m.outlier = (i128::from(m.offset_us) - i128::from(first)).abs() > drift;
            outliers += u32::from(m.outlier);
        }
    }
    let agreeing: Vec<&Measurement> = samples
        .iter()
        .filter_map(|s| s.result.as_ref().ok())
        .filter(|m| !m.outlier)
        .collect();
    // With no agreeing answer (for example two servers far apart) the first median stands,
    // and the evidence is not `verified`.
    let offset = median(agreeing.iter().map(|m| m.offset_us).collect()).unwrap_or(first);
    let pool: Vec<&Measurement> = if agreeing.is_empty() {
        samples
            .iter()
            .filter_map(|s| s.result.as_ref().ok())
            .collect()
    } else {
        agreeing
    };
    let delay = pool
        .iter()
        .min_by_key(|m| {
            (
                (i128::from(m.offset_us) - i128::from(offset)).abs(),
                m.delay_us,
            )
        })
        .map_or(0, |m| m.delay_us);
    Some(Combined {
        offset_us: offset,
        delay_us: delay,
        ok: u32::try_from(offsets.len()).unwrap_or(u32::MAX),
        outliers,
    })
}

fn median(mut values: Vec<i64>) -> Option<i64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => values.get(n / 2).copied(),
        _ => {
            let a = i128::from(values[n / 2 - 1]);
            let b = i128::from(values[n / 2]);
            i64::try_from((a + b).div_euclid(2)).ok()
        }
    }
}

/// Splits `host`, `host:port`, `ip`, `[ipv6]` or `[ipv6]:port` into a host and a port
/// (default 123).
pub(crate) fn split_host_port(server: &str) -> Result<(String, u16), String> {
    let s = server.trim();
    if s.is_empty() {
        return Err("empty server name".into());
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok((addr.ip().to_string(), addr.port()));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip.to_string(), DEFAULT_PORT));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return match inner.parse::<Ipv6Addr>() {
            Ok(ip) => Ok((ip.to_string(), DEFAULT_PORT)),
            Err(_) => Err("bad IPv6 literal".into()),
        };
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("bad port {port:?}"))?;
            (host, port)
        }
        None => (s, DEFAULT_PORT),
    };
    if port == 0 {
        return Err("port 0".into());
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
    if host.is_empty() || !host.chars().all(valid) {
        return Err(format!("bad host name {host:?}"));
    }
    Ok((host.to_string(), port))
}

/// A few random low bits in the transmit fraction (under a microsecond) make our originate
/// value hard to guess for an off-path spoofer, without a random-number dependency.
fn with_nonce(t: NtpTimestamp) -> NtpTimestamp {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(t.0);
    NtpTimestamp((t.0 & !0xFFF) | (h.finish() & 0xFFF))
}

/// One request/reply exchange with one server (the caller applies the timeout).
async fn query_server(server: &str) -> Result<Measurement, ServerError> {
    let (host, port) = split_host_port(server).map_err(ServerError::Resolve)?;
    let address = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| ServerError::Resolve(e.to_string()))?
        .next()
        .ok_or(ServerError::NoAddress)?;
    let local: SocketAddr = match address {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let io = |e: std::io::Error| ServerError::Io(e.to_string());
    let socket = UdpSocket::bind(local).await.map_err(io)?;
    // A connected socket only delivers datagrams from the server's address.
    socket.connect(address).await.map_err(io)?;
    let t1 = NtpTimestamp::from_system_time(SystemTime::now());
    let sent = with_nonce(t1);
    socket.send(&ntp::client_request(sent)).await.map_err(io)?;
    let mut buf = [0u8; MAX_REPLY];
    let len = socket.recv(&mut buf).await.map_err(io)?;
    let t4 = NtpTimestamp::from_system_time(SystemTime::now());
    let reply = ntp::validate_reply(buf.get(..len).unwrap_or_default(), sent)?;
    let (offset, delay) = ntp::offset_and_delay(t1, reply.receive, reply.transmit, t4);
    Ok(Measurement {
        address,
        offset_us: nanos_to_us(offset),
        delay_us: nanos_to_us(delay),
        stratum: reply.stratum,
        outlier: false,
    })
}

fn nanos_to_us(nanos: i128) -> i64 {
    let us = (nanos + 500).div_euclid(1000);
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let ok = |s: &str, h: &str, p: u16| assert_eq!(split_host_port(s), Ok((h.into(), p)));
        ok("time.nist.gov", "time.nist.gov", 123);
        ok("pool.ntp.org:1123", "pool.ntp.org", 1123);
        ok("127.0.0.1", "127.0.0.1", 123);
        ok("127.0.0.1:9", "127.0.0.1", 9);
        ok("::1", "::1", 123);
        ok("[::1]", "::1", 123);
        ok("[::1]:5123", "::1", 5123);
        for bad in [
            "",
            "host:",
            "host:99999",
            "host:0",
            "a b",
            "[nope]",
            "x/y:1",
            ":123",
        ] {
            assert!(split_host_port(bad).is_err(), "{bad}");
        }
    }

    fn sample(offset_us: i64, delay_us: i64) -> ServerSample {
        ServerSample {
            server: format!("s{offset_us}"),
            result: Ok(Measurement {
                address: ([127, 0, 0, 1], 123).into(),
                offset_us,
                delay_us,
                stratum: 2,
                outlier: false,
            }),
        }
    }

    #[test]
    fn one_liar_does_not_move_the_median() {
        let hour = 3_600_000_000;
        let mut s = vec![sample(100, 5), sample(3 * hour, 7), sample(-50, 9)];
        let c = combine(&mut s, Duration::from_secs(30)).unwrap();
        assert_eq!(c.offset_us, 25);
        assert_eq!(c.outliers, 1);
        assert_eq!(c.ok, 3);
        assert!(matches!(&s[1].result, Ok(m) if m.outlier));
    }

    #[test]
    fn two_disagreeing_servers_are_both_outliers() {
        let mut s = vec![sample(0, 1), sample(3_600_000_000, 1)];
        let c = combine(&mut s, Duration::from_secs(30)).unwrap();
        assert_eq!(c.outliers, 2);
        assert_eq!(c.offset_us, 1_800_000_000);
    }

    #[test]
    fn median_even_odd_and_extremes() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3, 1, 2]), Some(2));
        assert_eq!(median(vec![4, 1, 2, 3]), Some(2));
        assert_eq!(median(vec![i64::MAX, i64::MAX]), Some(i64::MAX));
        assert_eq!(median(vec![i64::MIN, i64::MAX]), Some(-1));
    }
}
