//! Evidence for frames: time from the SNTP client and anchors from the chain heads, each
//! fetched on a background task and awaited for at most a bound, so a slow server delays a
//! frame by the bound at most and its late answer still fills the cache for the next frame.
//! Live frames use a zero bound: only evidence already measured, never a wait.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use qrlp_evidence::{ChainError, ChainHead, ChainHeads, SntpClient, TimeError, TimeSource};
use qrlp_live::{AnchorStatus, AnchorView};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

type TimeTask = JoinHandle<Result<qrlp_evidence::TimeEvidence, TimeError>>;
type ChainTask = JoinHandle<Vec<Result<ChainHead, ChainError>>>;

/// What one frame gets.
#[derive(Default)]
pub(crate) struct Gathered {
    /// The SNTP measurement, if one is available.
    pub time: Option<qrlp_evidence::TimeEvidence>,
    /// Chain name → block hash (display hex).
    pub anchors: BTreeMap<String, String>,
}

/// Counters of evidence that a frame went without.
#[derive(Default)]
pub(crate) struct EvidenceCounters {
    pub time_failures: AtomicU64,
    pub chain_failures: AtomicU64,
}

pub(crate) struct Evidence {
    pub time: Option<Arc<SntpClient>>,
    pub chains: Option<Arc<ChainHeads>>,
    bound: Duration,
    time_task: Mutex<Option<TimeTask>>,
    chain_task: Mutex<Option<ChainTask>>,
    pub counters: EvidenceCounters,
}

impl Evidence {
    pub fn new(
        time: Option<Arc<SntpClient>>,
        chains: Option<Arc<ChainHeads>>,
        bound: Duration,
    ) -> Evidence {
        Evidence {
            time,
            chains,
            bound,
            time_task: Mutex::new(None),
            chain_task: Mutex::new(None),
            counters: EvidenceCounters::default(),
        }
    }

    /// Time and anchors, concurrently, each within `bound` (`None`: the configured bound).
    pub async fn gather(&self, bound: Option<Duration>) -> Gathered {
        let bound = bound.unwrap_or(self.bound);
        let (time, anchors) = tokio::join!(self.time_evidence(bound), self.anchors(bound));
        Gathered { time, anchors }
    }

    async fn time_evidence(&self, bound: Duration) -> Option<qrlp_evidence::TimeEvidence> {
        let sntp = self.time.as_ref()?;
        if sntp.config().time_servers.is_empty() {
            return None;
        }
        let cached = || {
            sntp.latest().filter(|ev| {
                ev.measured_at
                    .elapsed()
                    .is_ok_and(|age| age < sntp.config().update_interval)
            })
        };
        // With a zero bound, a caller already waiting on the measurement is no reason to
        // wait: take what was measured before.
        let slot = if bound.is_zero() {
            self.time_task.try_lock().ok()
        } else {
            Some(self.time_task.lock().await)
        };
        let outcome = match slot {
            None => cached(),
            Some(mut slot) => {
                let task = slot.get_or_insert_with(|| {
                    let sntp = Arc::clone(sntp);
                    tokio::spawn(async move { sntp.evidence().await })
                });
                match tokio::time::timeout(bound, task).await {
                    Ok(joined) => {
                        *slot = None;
                        joined.ok().and_then(Result::ok)
                    }
                    // Still measuring: keep the task, use what was measured before if
                    // still fresh.
                    Err(_) => cached(),
                }
            }
        };
        // A system-clock fallback is a frame without time evidence too.
        if outcome
            .as_ref()
            .is_none_or(|ev| ev.source != TimeSource::Sntp)
        {
            self.counters.time_failures.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    async fn anchors(&self, bound: Duration) -> BTreeMap<String, String> {
        let Some(chains) = self.chains.as_ref() else {
            return BTreeMap::new();
        };
        if chains.config().chains.is_empty() {
            return BTreeMap::new();
        }
        let cached = || {
            // The heads confirmed within the cache duration.
            let fresh = chains.config().cache_duration;
            chains
                .blockchain_hashes()
                .into_iter()
                .filter(|(chain, _)| {
                    chains
                        .last_confirmed(chain)
                        .and_then(|at| at.elapsed().ok())
                        .is_some_and(|age| age < fresh)
                })
                .collect::<BTreeMap<String, String>>()
        };
        let slot = if bound.is_zero() {
            self.chain_task.try_lock().ok()
        } else {
            Some(self.chain_task.lock().await)
        };
        let wanted = chains.config().chains.len();
        let anchors: BTreeMap<String, String> = match slot {
            None => cached(),
            Some(mut slot) => {
                let task = slot.get_or_insert_with(|| {
                    let chains = Arc::clone(chains);
                    tokio::spawn(async move { chains.latest().await })
                });
                match tokio::time::timeout(bound, task).await {
                    Ok(joined) => {
                        *slot = None;
                        joined
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(Result::ok)
                            .map(|head| (head.chain.clone(), head.hash_hex()))
                            .collect()
                    }
                    // Still fetching.
                    Err(_) => cached(),
                }
            }
        };
        let missing = wanted.saturating_sub(anchors.len());
        self.counters
            .chain_failures
            .fetch_add(missing as u64, Ordering::Relaxed);
        anchors
    }
}

/// The protocol core's time-evidence summary of an SNTP measurement: agreeing servers are
/// those that answered and were not outliers (none for a system-clock fallback).
pub(crate) fn summary(ev: &qrlp_evidence::TimeEvidence) -> Option<qrlp_live::TimeEvidence> {
    if ev.servers_queried == 0 {
        return None;
    }
    let agreed = match ev.source {
        TimeSource::Sntp => ev.servers_ok.saturating_sub(ev.outliers),
        TimeSource::SystemFallback => 0,
    };
    Some(qrlp_live::TimeEvidence {
        offset_ms: ev.offset_us / 1000,
        servers_agreed: agreed.min(ev.servers_queried),
        servers_queried: ev.servers_queried,
    })
}

/// Judges anchors against the chain heads this process has fetched.
///
/// The core's anchor tag is the last 8 bytes of the block hash as displayed; reversed, they
/// are the first 8 bytes of the hash in the other byte order, which is the prefix
/// [`ChainHeads::classify`] matches (Bitcoin's internal order starts with the hash's random
/// bytes, not its proof-of-work zeros).
pub(crate) struct ChainAnchors(pub Arc<ChainHeads>);

impl AnchorView for ChainAnchors {
    fn status(&self, chain: &str, tag: &[u8]) -> AnchorStatus {
        let prefix: Vec<u8> = tag.iter().rev().copied().collect();
        match self.0.classify(chain, &prefix, SystemTime::now()) {
            qrlp_evidence::AnchorStatus::Current => AnchorStatus::Current,
            qrlp_evidence::AnchorStatus::Recent { age } => AnchorStatus::Recent {
                age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
            },
            qrlp_evidence::AnchorStatus::Stale => AnchorStatus::Stale,
            qrlp_evidence::AnchorStatus::Unknown => AnchorStatus::Unknown,
        }
    }
}
