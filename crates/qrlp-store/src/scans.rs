//! Scans of tracked QR codes: batched recording with roll-ups, the daily visitor salt, and
//! the reads analytics need.
//!
//! [`Store::record_scans`] writes one batch in one transaction: the visitors first seen
//! that day, the scans (an id already stored is skipped, so a retried batch never counts a
//! scan twice), then the quarter-hour buckets, the daily breakdown rows and the per-code
//! totals, computed from the scans that were actually inserted, and the `qr.scan` webhook
//! events of the organizations that subscribed to them by name.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::AssertSqlSafe;
use time::OffsetDateTime;
use uuid::Uuid;

use qrlp_webhook::{catalogue, Payload};

use crate::chains::seed_timestamp;
use crate::db::{now, truncate, Ts};
use crate::error::StoreError;
use crate::qr_model::{
    BotVisit, QrCodeStats, RecordOutcome, ScanBucket, ScanRecord, ScanSource, StoredScan,
};
use crate::{to_u64, Store};

/// Seconds in a roll-up bucket (a quarter hour).
pub const BUCKET_SECS: i64 = 900;
/// Rows per multi-row statement (10 columns: 5,000 parameters, below every backend's limit).
const CHUNK: usize = 500;

fn unix(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

fn day(t: OffsetDateTime) -> i64 {
    unix(t).div_euclid(86_400)
}

fn bucket(t: OffsetDateTime) -> i64 {
    unix(t).div_euclid(BUCKET_SECS) * BUCKET_SECS
}

/// Most visitors a [`KnownVisitors`] holds before it starts over.
const MAX_KNOWN_VISITORS: usize = 1_000_000;

/// Visitors (code, UTC day, hash) this process has seen stored: a batch skips their
/// inserts, which could only conflict. Kept by the caller across batches (the recorder),
/// holding the last two days, at most [`MAX_KNOWN_VISITORS`].
#[derive(Debug, Default)]
pub struct KnownVisitors {
    set: HashSet<(Uuid, i64, [u8; 16])>,
}

impl KnownVisitors {
    fn remember(&mut self, visitors: &[(Uuid, i64, [u8; 16])]) {
        let Some(newest) = visitors.iter().map(|v| v.1).max() else {
            return;
        };
        self.set.retain(|v| v.1 >= newest - 1);
        if self.set.len() + visitors.len() > MAX_KNOWN_VISITORS {
            self.set.clear();
        }
        self.set.extend(visitors.iter().copied());
    }
}

/// The dimensions of a scan kept in the daily breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Dims {
    device: String,
    os: String,
    browser: String,
    /// Empty when none.
    referrer: String,
    source: String,
}

/// Roll-up sums being built, by quarter-hour bucket, by day and dimensions, by day and
/// bot, and per code.
#[derive(Default)]
struct RollUp {
    buckets: HashMap<(Uuid, i64), Sums>,
    daily: HashMap<(Uuid, i64, Dims), i64>,
    bot_daily: HashMap<(Uuid, i64, String), i64>,
    totals: HashMap<Uuid, (Sums, Option<OffsetDateTime>)>,
}

impl RollUp {
    fn scan(&mut self, code: Uuid, at: OffsetDateTime, dims: Dims, first: bool) {
        let v = i64::from(first);
        let b = self.buckets.entry((code, bucket(at))).or_default();
        b.scans += 1;
        b.visitors += v;
        *self.daily.entry((code, day(at), dims)).or_default() += 1;
        let t = self.totals.entry(code).or_default();
        t.0.scans += 1;
        t.0.visitors += v;
        t.1 = t.1.max(Some(at));
    }

    fn group(&mut self, g: GroupRow) {
        let b = self
            .buckets
            .entry((g.qr_code_id, g.bucket_start))
            .or_default();
        b.scans += g.scans;
        b.visitors += g.visitors;
        let dims = Dims {
            device: g.device,
            os: g.os,
            browser: g.browser,
            referrer: g.referrer,
            source: g.source,
        };
        let day = g.bucket_start.div_euclid(86_400);
        *self.daily.entry((g.qr_code_id, day, dims)).or_default() += g.scans;
        let t = self.totals.entry(g.qr_code_id).or_default();
        t.0.scans += g.scans;
        t.0.visitors += g.visitors;
        t.1 = t.1.max(Some(g.last_at.0));
    }

    fn bot(&mut self, code: Uuid, at: OffsetDateTime, name: &str) {
        self.buckets.entry((code, bucket(at))).or_default().bots += 1;
        *self
            .bot_daily
            .entry((code, day(at), name.to_string()))
            .or_default() += 1;
        self.totals.entry(code).or_default().0.bots += 1;
    }
}

/// Adds a [`RollUp`] to the roll-up tables inside transaction `$tx` (either backend).
macro_rules! write_rollup {
    ($tx:ident, $rollup:expr) => {{
        let RollUp {
            buckets,
            daily,
            bot_daily,
            totals,
        } = $rollup;
        let buckets: Vec<_> = buckets.into_iter().collect();
        for chunk in buckets.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO qr_scan_buckets (qr_code_id, bucket_start, scans, visitors, bots) ",
            );
            q.push_values(chunk, |mut b, ((code, start), s)| {
                b.push_bind(*code)
                    .push_bind(*start)
                    .push_bind(s.scans)
                    .push_bind(s.visitors)
                    .push_bind(s.bots);
            });
            q.push(
                " ON CONFLICT (qr_code_id, bucket_start) DO UPDATE SET \
                 scans = qr_scan_buckets.scans + excluded.scans, \
                 visitors = qr_scan_buckets.visitors + excluded.visitors, \
                 bots = qr_scan_buckets.bots + excluded.bots",
            );
            q.build().execute(&mut *$tx).await?;
        }
        let daily: Vec<_> = daily.into_iter().collect();
        for chunk in daily.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO qr_scan_daily (qr_code_id, day, device, os, browser, referrer, \
                 source, count) ",
            );
            q.push_values(chunk, |mut b, ((code, day, dims), n)| {
                b.push_bind(*code)
                    .push_bind(*day)
                    .push_bind(dims.device.as_str())
                    .push_bind(dims.os.as_str())
                    .push_bind(dims.browser.as_str())
                    .push_bind(dims.referrer.as_str())
                    .push_bind(dims.source.as_str())
                    .push_bind(*n);
            });
            q.push(
                " ON CONFLICT (qr_code_id, day, device, os, browser, referrer, source) \
                 DO UPDATE SET count = qr_scan_daily.count + excluded.count",
            );
            q.build().execute(&mut *$tx).await?;
        }
        let bot_daily: Vec<_> = bot_daily.into_iter().collect();
        for chunk in bot_daily.chunks(CHUNK) {
            let mut q =
                sqlx::QueryBuilder::new("INSERT INTO qr_bot_daily (qr_code_id, day, name, count) ");
            q.push_values(chunk, |mut b, ((code, day, name), n)| {
                b.push_bind(*code)
                    .push_bind(*day)
                    .push_bind(name.as_str())
                    .push_bind(*n);
            });
            q.push(
                " ON CONFLICT (qr_code_id, day, name) \
                 DO UPDATE SET count = qr_bot_daily.count + excluded.count",
            );
            q.build().execute(&mut *$tx).await?;
        }
        let totals: Vec<_> = totals.into_iter().collect();
        for chunk in totals.chunks(CHUNK) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO qr_code_stats (qr_code_id, scans, unique_visitors, bots, \
                 last_scan_at) ",
            );
            q.push_values(chunk, |mut b, (code, (s, last))| {
                b.push_bind(*code)
                    .push_bind(s.scans)
                    .push_bind(s.visitors)
                    .push_bind(s.bots)
                    .push_bind(last.map(Ts));
            });
            q.push(
                " ON CONFLICT (qr_code_id) DO UPDATE SET \
                 scans = qr_code_stats.scans + excluded.scans, \
                 unique_visitors = qr_code_stats.unique_visitors + excluded.unique_visitors, \
                 bots = qr_code_stats.bots + excluded.bots, \
                 last_scan_at = CASE WHEN excluded.last_scan_at IS NULL THEN qr_code_stats.last_scan_at \
                   WHEN qr_code_stats.last_scan_at IS NULL THEN excluded.last_scan_at \
                   WHEN excluded.last_scan_at > qr_code_stats.last_scan_at THEN excluded.last_scan_at \
                   ELSE qr_code_stats.last_scan_at END",
            );
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Scans read per roll-up step at most: a step after a long pause is followed by others.
pub const ROLLUP_CHUNK: u64 = 1_000_000;

/// `(bucket start or day index, scans, first visits, bots)` as the roll-up reads give them.
type BucketRow = (i64, i64, i64, i64);
/// The start of a code's first bucket and its last scan, as the roll-ups hold them.
type ExportBounds = (Option<i64>, Option<Ts>);

/// What the roll-ups need of a stored scan.
#[derive(sqlx::FromRow)]
pub(crate) struct TailRow {
    pub(crate) qr_code_id: Uuid,
    pub(crate) scanned_at: Ts,
    device: String,
    os: String,
    browser: String,
    referrer: String,
    source: String,
    pub(crate) first_visit: bool,
}

/// Sums the scans made in `($from, $through]` into a [`RollUp`], grouped by the database
/// (per code, bucket and dimensions) in transaction `$tx` of dialect `$d`; gives the sums
/// and the number of scans.
macro_rules! sum_range {
    ($tx:ident, $d:ident, $from:expr, $through:expr) => {{
        let sql = format!(
            "SELECT qr_code_id, {b} AS bucket_start, device, os, browser, referrer, source, \
             COUNT(*) AS scans, SUM(CASE WHEN first_visit THEN 1 ELSE 0 END) AS visitors, \
             MAX(scanned_at) AS last_at FROM qr_scans \
             WHERE scanned_at > $1 AND scanned_at <= $2 \
             GROUP BY qr_code_id, {b}, device, os, browser, referrer, source",
            b = $d.scan_bucket
        );
        let groups: Vec<GroupRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind($from)
            .bind(Ts($through))
            .fetch_all(&mut *$tx)
            .await?;
        let mut rollup = RollUp::default();
        let mut n: u64 = 0;
        for g in groups {
            n += to_u64(g.scans);
            rollup.group(g);
        }
        (rollup, n)
    }};
}

/// Scans of one code, quarter hour and set of dimensions, as [`sum_range`] reads them.
#[derive(sqlx::FromRow)]
struct GroupRow {
    qr_code_id: Uuid,
    bucket_start: i64,
    device: String,
    os: String,
    browser: String,
    referrer: String,
    source: String,
    scans: i64,
    visitors: i64,
    last_at: Ts,
}

/// Adds to a code's totals its scans in `tail` (after the roll-up mark).
pub(crate) fn add_tail(code: Uuid, stats: &mut QrCodeStats, tail: &[TailRow]) {
    for r in tail.iter().filter(|r| r.qr_code_id == code) {
        stats.scans += 1;
        stats.unique_visitors += u64::from(r.first_visit);
        stats.last_scan_at = stats.last_scan_at.max(Some(r.scanned_at.0));
    }
}

pub(crate) const TAIL_COLS: &str =
    "SELECT qr_code_id, scanned_at, device, os, browser, referrer, source, \
     first_visit FROM qr_scans";

#[derive(Default)]
struct Sums {
    scans: i64,
    visitors: i64,
    bots: i64,
}

#[derive(sqlx::FromRow)]
struct ScanRow {
    id: Uuid,
    scanned_at: Ts,
    address: String,
    device: String,
    os: String,
    browser: String,
    referrer: String,
    source: String,
    visitor: Vec<u8>,
    first_visit: bool,
}

impl Store {
    /// Stores a batch of scans and bot visits; see the module documentation.
    pub async fn record_scans(
        &self,
        scans: &[ScanRecord],
        bots: &[BotVisit],
    ) -> Result<RecordOutcome, StoreError> {
        self.record_scans_with(scans, bots, &mut KnownVisitors::default())
            .await
    }

    /// [`Store::record_scans`], skipping the inserts of the visitors `known` holds, and
    /// adding the batch's visitors to it once committed.
    pub async fn record_scans_with(
        &self,
        scans: &[ScanRecord],
        bots: &[BotVisit],
        known: &mut KnownVisitors,
    ) -> Result<RecordOutcome, StoreError> {
        if scans.is_empty() && bots.is_empty() {
            return Ok(RecordOutcome::default());
        }
        // Distinct (code, day, visitor) of the batch, in order of first appearance.
        let mut seen = HashSet::new();
        let visitors: Vec<(Uuid, i64, [u8; 16])> = scans
            .iter()
            .map(|s| (s.qr_code_id, day(s.at), s.visitor))
            .filter(|k| seen.insert(*k))
            .collect();
        let unknown: Vec<(Uuid, i64, [u8; 16])> = visitors
            .iter()
            .filter(|v| !known.set.contains(*v))
            .copied()
            .collect();
        // Shared values bound to every row (no copy per row).
        let empty: Arc<str> = Arc::from("");
        let sources: [Arc<str>; 2] = [
            Arc::from(ScanSource::Qr.as_str()),
            Arc::from(ScanSource::Link.as_str()),
        ];
        let source_of = |s: ScanSource| match s {
            ScanSource::Qr => sources[0].clone(),
            ScanSource::Link => sources[1].clone(),
        };
        // First without RETURNING: a batch whose scans are all new (every batch but a
        // retried one) needs only the count of rows inserted. When some were already
        // stored, the transaction is rolled back and run again asking for the ids inserted.
        let mut careful = false;
        let outcome = loop {
            let attempt = on_pool!(self, |pool, d| 'attempt: {
                let mut tx = pool.begin_with(d.begin).await?;
                let mut new_visitors: HashSet<(Uuid, i64, [u8; 16])> = HashSet::new();
                for chunk in unknown.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO qr_scan_visitors (qr_code_id, day, visitor) ",
                    );
                    q.push_values(chunk, |mut b, (code, day, visitor)| {
                        b.push_bind(*code)
                            .push_bind(*day)
                            .push_bind(visitor.to_vec());
                    });
                    q.push(" ON CONFLICT DO NOTHING RETURNING qr_code_id, day, visitor");
                    let rows: Vec<(Uuid, i64, Vec<u8>)> =
                        q.build_query_as().fetch_all(&mut *tx).await?;
                    new_visitors.extend(
                        rows.into_iter()
                            .filter_map(|(c, d, v)| Some((c, d, <[u8; 16]>::try_from(v).ok()?))),
                    );
                }
                let mut inserted: HashSet<Uuid> = HashSet::new();
                let mut first = Vec::with_capacity(scans.len());
                for s in scans {
                    // The first scan of the batch for a new visitor takes the mark.
                    first.push(new_visitors.remove(&(s.qr_code_id, day(s.at), s.visitor)));
                }
                let marked: Vec<(&ScanRecord, bool)> = scans.iter().zip(first).collect();
                let mut all_new = true;
                for chunk in marked.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO qr_scans (id, qr_code_id, scanned_at, address, device, os, \
                     browser, referrer, source, visitor, first_visit) ",
                    );
                    q.push_values(chunk, |mut b, (s, first)| {
                        b.push_bind(s.id)
                            .push_bind(s.qr_code_id)
                            .push_bind(Ts(s.at))
                            .push_bind(s.address.clone())
                            .push_bind(s.device.clone())
                            .push_bind(s.os.clone())
                            .push_bind(s.browser.clone())
                            .push_bind(s.referrer.clone().unwrap_or_else(|| empty.clone()))
                            .push_bind(source_of(s.source))
                            .push_bind(s.visitor.to_vec())
                            .push_bind(*first);
                    });
                    if careful {
                        q.push(" ON CONFLICT DO NOTHING RETURNING id");
                        let rows: Vec<(Uuid,)> = q.build_query_as().fetch_all(&mut *tx).await?;
                        inserted.extend(rows.into_iter().map(|(id,)| id));
                    } else {
                        q.push(" ON CONFLICT DO NOTHING");
                        let done = q.build().execute(&mut *tx).await?.rows_affected();
                        if done != chunk.len() as u64 {
                            all_new = false;
                            break;
                        }
                        inserted.extend(chunk.iter().map(|(s, _)| s.id));
                    }
                }
                if !all_new {
                    tx.rollback().await?;
                    break 'attempt Ok::<_, StoreError>(None);
                }

                // Scans made after the roll-up mark are rolled up by the next roll-up step;
                // those made up to it (late, or before any step ran) by this batch.
                let mark: Option<Ts> = sqlx::query_scalar(d.rollup_mark_shared)
                    .fetch_one(&mut *tx)
                    .await?;
                let mut rollup = RollUp::default();
                let mut touched: HashSet<Uuid> = HashSet::new();
                let mut outcome = RecordOutcome::default();
                for (s, first) in &marked {
                    if !inserted.contains(&s.id) {
                        continue;
                    }
                    outcome.scans += 1;
                    outcome.first_visits += u64::from(*first);
                    touched.insert(s.qr_code_id);
                    if mark.is_none_or(|m| truncate(s.at) <= m.0) {
                        rollup.scan(
                            s.qr_code_id,
                            s.at,
                            Dims {
                                device: s.device.to_string(),
                                os: s.os.to_string(),
                                browser: s.browser.to_string(),
                                referrer: s.referrer.as_deref().unwrap_or_default().to_string(),
                                source: s.source.as_str().to_string(),
                            },
                            *first,
                        );
                    }
                }
                for bot in bots {
                    outcome.bots += 1;
                    touched.insert(bot.qr_code_id);
                    rollup.bot(bot.qr_code_id, bot.at, &bot.name);
                }

                // `qr.scan` events, only for codes whose organization has an active endpoint
                // that names the type (`*` does not cover it): one query per batch otherwise.
                let codes: Vec<Uuid> = touched.into_iter().collect();
                let mut subscribed: HashMap<Uuid, (Uuid, String)> = HashMap::new();
                for chunk in codes.chunks(CHUNK) {
                    let mut q = sqlx::QueryBuilder::new(
                        "SELECT c.id, c.org_id, c.slug FROM qr_codes c WHERE c.id IN (",
                    );
                    let mut list = q.separated(", ");
                    for code in chunk {
                        list.push_bind(*code);
                    }
                    q.push(
                        ") AND EXISTS (SELECT 1 FROM webhook_subscriptions s \
                     JOIN webhook_endpoints e ON e.id = s.endpoint_id \
                     WHERE s.org_id = c.org_id AND s.event_type = ",
                    );
                    q.push_bind(catalogue::QR_SCAN);
                    q.push(" AND e.is_active)");
                    let rows: Vec<(Uuid, Uuid, String)> =
                        q.build_query_as().fetch_all(&mut *tx).await?;
                    subscribed.extend(rows.into_iter().map(|(id, org, slug)| (id, (org, slug))));
                }
                for (s, first) in &marked {
                    let Some((org, slug)) = subscribed.get(&s.qr_code_id) else {
                        continue;
                    };
                    if !inserted.contains(&s.id) {
                        continue;
                    }
                    let payload = Payload::new(catalogue::QR_SCAN)
                        .with("qr_code_id", s.qr_code_id.to_string())
                        .with("organization_id", org.to_string())
                        .with("slug", slug.as_str())
                        .with("scan_id", s.id.to_string())
                        .with("scanned_at", seed_timestamp(s.at))
                        .with("source", s.source.as_str())
                        .with("device", &*s.device)
                        .with("os", &*s.os)
                        .with("browser", &*s.browser)
                        .with("referrer", s.referrer.as_deref())
                        .with("unique_visitor", *first);
                    enqueue_event!(tx, *org, &payload, s.at)?;
                }

                write_rollup!(tx, rollup);
                tx.commit().await?;
                Ok::<_, StoreError>(Some(outcome))
            })?;
            match attempt {
                Some(outcome) => break outcome,
                None => careful = true,
            }
        };
        known.remember(&visitors);
        Ok(outcome)
    }

    /// One roll-up step: adds the scans made after the roll-up mark and up to `until` (at
    /// most [`ROLLUP_CHUNK`] of them, then up to the last one read) to the roll-up tables
    /// and moves the mark. Returns the scans rolled up: a full chunk means more are
    /// waiting.
    ///
    /// The scans are read and summed outside any write lock (a snapshot read that the
    /// recorder's writes do not wait for); the write transaction then checks that the mark
    /// has not moved and that the range still holds as many scans (else it reads them again
    /// under the lock), writes one upsert per code and period, and moves the mark.
    ///
    /// Exactly once, with any number of servers: a batch of scans reads the mark (shared
    /// on PostgreSQL, while the step holds it exclusively; SQLite runs one writer at a
    /// time) and rolls up itself the scans it stores that are not after the mark. The first
    /// step sets the mark past every stored scan (all rolled up by their batches until then).
    pub async fn roll_up_scans(&self, until: OffsetDateTime) -> Result<u64, StoreError> {
        self.roll_up_scans_when(until, std::future::ready(())).await
    }

    /// [`Store::roll_up_scans`], taking the write lock only once `ready` completes (the
    /// recorder passes "right after my next write", so the step's short write falls in the
    /// recorder's pause instead of holding up a batch already waiting).
    pub async fn roll_up_scans_when(
        &self,
        until: OffsetDateTime,
        ready: impl std::future::Future<Output = ()>,
    ) -> Result<u64, StoreError> {
        let until = truncate(until);
        on_pool!(self, |pool, d| {
            // Read and sum, without the write lock.
            let mut tx = pool.begin_with(d.read_snapshot).await?;
            let mark: Option<Ts> =
                sqlx::query_scalar("SELECT through FROM qr_scan_rollup WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            let mut planned = None;
            if let Some(mark) = mark.filter(|m| m.0 < until) {
                let cutoff: Option<Ts> = sqlx::query_scalar(
                    "SELECT scanned_at FROM qr_scans WHERE scanned_at > $1 AND \
                     scanned_at <= $2 ORDER BY scanned_at LIMIT 1 OFFSET $3",
                )
                .bind(mark)
                .bind(Ts(until))
                .bind(i64::try_from(ROLLUP_CHUNK - 1).unwrap_or(i64::MAX))
                .fetch_optional(&mut *tx)
                .await?;
                let through = cutoff.map_or(until, |c| c.0);
                let (rollup, n) = sum_range!(tx, d, mark, through);
                planned = Some((mark, through, rollup, n));
            }
            tx.commit().await?;
            if mark.is_some() && planned.is_none() {
                // Nothing new: no write transaction.
                return Ok(0);
            }

            // Write under the lock, if nothing moved meanwhile.
            if planned.is_some() {
                ready.await;
            }
            let mut tx = pool.begin_with(d.begin).await?;
            let now_mark: Option<Ts> = sqlx::query_scalar(d.rollup_mark_locked)
                .fetch_one(&mut *tx)
                .await?;
            let (through, rolled) = match (now_mark, planned) {
                (None, _) => {
                    let newest: Option<Ts> =
                        sqlx::query_scalar("SELECT MAX(scanned_at) FROM qr_scans")
                            .fetch_one(&mut *tx)
                            .await?;
                    (Some(newest.map_or(until, |n| n.0.max(until))), 0)
                }
                (Some(now_mark), Some((mark, through, rollup, n))) if now_mark == mark => {
                    let count: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM qr_scans WHERE scanned_at > $1 AND scanned_at <= $2",
                    )
                    .bind(mark)
                    .bind(Ts(through))
                    .fetch_one(&mut *tx)
                    .await?;
                    let (rollup, n) = if to_u64(count) == n {
                        (rollup, n)
                    } else {
                        // Scans of the range were stored (or deleted) since: read again.
                        sum_range!(tx, d, mark, through)
                    };
                    write_rollup!(tx, rollup);
                    (Some(through), n)
                }
                // Another server moved the mark, or nothing to do.
                _ => (None, 0),
            };
            if let Some(through) = through {
                sqlx::query("UPDATE qr_scan_rollup SET through = $1 WHERE id = 1")
                    .bind(Ts(through))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(rolled)
        })
    }

    /// The visitor salt of UTC day `day`: the stored one, or `fresh` stored now. Salts of
    /// earlier days, and visitor rows of days before yesterday, are deleted first, so no
    /// salt outlives its day by more than one recorder flush.
    pub async fn daily_salt(&self, day: i64, fresh: [u8; 32]) -> Result<[u8; 32], StoreError> {
        let salt: Vec<u8> = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query("DELETE FROM tracking_salts WHERE day < $1")
                .bind(day)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM qr_scan_visitors WHERE day < $1")
                .bind(day - 1)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO tracking_salts (day, salt) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING")
                .bind(day)
                .bind(&fresh[..])
                .execute(&mut *tx)
                .await?;
            let salt: Vec<u8> =
                sqlx::query_scalar("SELECT salt FROM tracking_salts WHERE day = $1")
                    .bind(day)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            salt
        });
        salt.try_into()
            .map_err(|_| StoreError::internal("stored salt is not 32 bytes"))
    }

    /// The roll-up buckets of a code starting in `[from, to)` (Unix seconds), with the
    /// scans after the roll-up mark added.
    pub async fn scan_buckets(
        &self,
        qr_code_id: Uuid,
        from: i64,
        to: i64,
    ) -> Result<Vec<ScanBucket>, StoreError> {
        let (rows, tail): (Vec<BucketRow>, Vec<TailRow>) = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.read_snapshot).await?;
            let rows = sqlx::query_as(
                "SELECT bucket_start, scans, visitors, bots FROM qr_scan_buckets \
                 WHERE qr_code_id = $1 AND bucket_start >= $2 AND bucket_start < $3",
            )
            .bind(qr_code_id)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *tx)
            .await?;
            let tail = read_tail!(tx, &[qr_code_id]);
            tx.commit().await?;
            Ok::<_, StoreError>((rows, tail))
        })?;
        let mut by_start: HashMap<i64, ScanBucket> = rows
            .into_iter()
            .map(|(start, scans, visitors, bots)| {
                let b = ScanBucket {
                    start,
                    scans: to_u64(scans),
                    visitors: to_u64(visitors),
                    bots: to_u64(bots),
                };
                (start, b)
            })
            .collect();
        for r in &tail {
            let start = bucket(r.scanned_at.0);
            if start < from || start >= to {
                continue;
            }
            let b = by_start.entry(start).or_insert(ScanBucket {
                start,
                scans: 0,
                visitors: 0,
                bots: 0,
            });
            b.scans += 1;
            b.visitors += u64::from(r.first_visit);
        }
        let mut out: Vec<ScanBucket> = by_start.into_values().collect();
        out.sort_by_key(|b| b.start);
        Ok(out)
    }

    /// Sums of the roll-up buckets of a code per day, for days given by their boundaries
    /// (`boundaries[i]..boundaries[i + 1]`, Unix seconds, increasing; at most 367): one row
    /// `(day index, scans, first visits, bots)` per day that has any, the scans after the
    /// roll-up mark included. The database does the sums, one index range per day, so a
    /// year costs a few hundred range reads, not tens of thousands of rows sent back.
    pub async fn scan_days(
        &self,
        qr_code_id: Uuid,
        boundaries: &[i64],
    ) -> Result<Vec<(usize, ScanBucket)>, StoreError> {
        if boundaries.len() < 2 || boundaries.len() > 367 {
            return Err(StoreError::invalid("boundaries", "2 to 367 day boundaries"));
        }
        let days = boundaries.len() - 1;
        let (rows, tail): (Vec<BucketRow>, Vec<TailRow>) = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.read_snapshot).await?;
            let mut q = sqlx::QueryBuilder::new("WITH days (i, s, e) AS (");
            for i in 0..days {
                q.push(if i == 0 { "VALUES (" } else { ", (" });
                q.push_bind(i as i64)
                    .push(", ")
                    .push_bind(boundaries[i])
                    .push(", ")
                    .push_bind(boundaries[i + 1])
                    .push(")");
            }
            q.push(
                ") SELECT d.i, CAST(SUM(b.scans) AS BIGINT), CAST(SUM(b.visitors) AS BIGINT), \
                 CAST(SUM(b.bots) AS BIGINT) FROM days d JOIN qr_scan_buckets b \
                 ON b.qr_code_id = ",
            );
            q.push_bind(qr_code_id);
            q.push(" AND b.bucket_start >= d.s AND b.bucket_start < d.e GROUP BY d.i ORDER BY d.i");
            let rows = q.build_query_as().fetch_all(&mut *tx).await?;
            let tail = read_tail!(tx, &[qr_code_id]);
            tx.commit().await?;
            Ok::<_, StoreError>((rows, tail))
        })?;
        let mut by_day: HashMap<usize, ScanBucket> = rows
            .into_iter()
            .filter_map(|(i, scans, visitors, bots)| {
                let i = usize::try_from(i).ok().filter(|&i| i < days)?;
                let b = ScanBucket {
                    start: boundaries[i],
                    scans: to_u64(scans),
                    visitors: to_u64(visitors),
                    bots: to_u64(bots),
                };
                Some((i, b))
            })
            .collect();
        for r in &tail {
            // Days are given by the buckets they hold, as the sums above.
            let start = bucket(r.scanned_at.0);
            let i = boundaries.partition_point(|&b| b <= start);
            if i == 0 || i > days {
                continue;
            }
            let b = by_day.entry(i - 1).or_insert(ScanBucket {
                start: boundaries[i - 1],
                scans: 0,
                visitors: 0,
                bots: 0,
            });
            b.scans += 1;
            b.visitors += u64::from(r.first_visit);
        }
        let mut out: Vec<(usize, ScanBucket)> = by_day.into_iter().collect();
        out.sort_by_key(|(i, _)| *i);
        Ok(out)
    }

    /// Counts per `(dimension, value)` of a code over UTC days `[from_day, to_day)`, most
    /// frequent first within each dimension, the scans after the roll-up mark included.
    /// Dimensions: `device`, `os`, `browser`, `referrer` (`(direct)` when none), `source`,
    /// `bot`.
    pub async fn scan_breakdown(
        &self,
        qr_code_id: Uuid,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        const DIMENSIONS: [(&str, &str, &str); 6] = [
            ("device", "device", "qr_scan_daily"),
            ("os", "os", "qr_scan_daily"),
            ("browser", "browser", "qr_scan_daily"),
            ("referrer", "referrer", "qr_scan_daily"),
            ("source", "source", "qr_scan_daily"),
            ("bot", "name", "qr_bot_daily"),
        ];
        let (counts, tail): (Vec<Vec<(String, i64)>>, Vec<TailRow>) = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.read_snapshot).await?;
            let mut counts = Vec::with_capacity(DIMENSIONS.len());
            for (_, column, table) in DIMENSIONS {
                let sql = format!(
                    "SELECT {column}, CAST(SUM(count) AS BIGINT) AS n FROM {table} \
                     WHERE qr_code_id = $1 AND day >= $2 AND day < $3 GROUP BY {column}"
                );
                let rows: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(sql.as_str()))
                    .bind(qr_code_id)
                    .bind(from_day)
                    .bind(to_day)
                    .fetch_all(&mut *tx)
                    .await?;
                counts.push(rows);
            }
            let tail = read_tail!(tx, &[qr_code_id]);
            tx.commit().await?;
            Ok::<_, StoreError>((counts, tail))
        })?;
        let tail: Vec<&TailRow> = tail
            .iter()
            .filter(|r| (from_day..to_day).contains(&day(r.scanned_at.0)))
            .collect();
        let mut out = Vec::new();
        for ((dimension, _, _), rows) in DIMENSIONS.into_iter().zip(counts) {
            let mut merged: HashMap<String, u64> =
                rows.into_iter().map(|(v, n)| (v, to_u64(n))).collect();
            for r in &tail {
                let value = match dimension {
                    "device" => &r.device,
                    "os" => &r.os,
                    "browser" => &r.browser,
                    "referrer" => &r.referrer,
                    "source" => &r.source,
                    _ => continue,
                };
                *merged.entry(value.clone()).or_default() += 1;
            }
            let mut rows: Vec<(String, u64)> = merged.into_iter().collect();
            rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            out.extend(rows.into_iter().map(|(v, n)| {
                let v = if dimension == "referrer" && v.is_empty() {
                    "(direct)".to_string()
                } else {
                    v
                };
                (dimension.to_string(), v, n)
            }));
        }
        Ok(out)
    }

    /// Up to `limit` stored scans of a code after `(at, id)` in time order: the pages of
    /// the CSV export.
    ///
    /// Scans are clustered by time (the recorder appends), so a page walks the time range
    /// in which the code has scans: from the start of its first quarter-hour bucket to its
    /// last scan, both read first from the roll-ups (one row each), skipping other codes'
    /// scans in between.
    pub async fn scans_page(
        &self,
        qr_code_id: Uuid,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<StoredScan>, StoreError> {
        let (bounds, tail): (Option<ExportBounds>, Vec<TailRow>) = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.read_snapshot).await?;
            let bounds = sqlx::query_as(
                "SELECT (SELECT MIN(bucket_start) FROM qr_scan_buckets WHERE qr_code_id = $1), \
                     (SELECT last_scan_at FROM qr_code_stats WHERE qr_code_id = $1)",
            )
            .bind(qr_code_id)
            .fetch_optional(&mut *tx)
            .await?;
            let tail = read_tail!(tx, &[qr_code_id]);
            tx.commit().await?;
            Ok::<_, StoreError>((bounds, tail))
        })?;
        let (first_bucket, last) = bounds.unwrap_or((None, None));
        // Scans after the roll-up mark widen the range.
        let first_bucket = tail
            .iter()
            .map(|r| bucket(r.scanned_at.0))
            .chain(first_bucket)
            .min();
        let last = tail
            .iter()
            .map(|r| r.scanned_at)
            .chain(last)
            .max_by_key(|t| t.0);
        let (Some(first_bucket), Some(last)) = (first_bucket, last) else {
            return Ok(Vec::new());
        };
        let from = OffsetDateTime::from_unix_timestamp(first_bucket)
            .map_err(|e| StoreError::internal(format!("bucket start out of range: {e}")))?;
        const COLS: &str = "SELECT id, scanned_at, address, device, os, browser, referrer, \
             source, visitor, first_visit FROM qr_scans \
             WHERE scanned_at >= $1 AND scanned_at <= $2 AND qr_code_id = $3";
        let rows: Vec<ScanRow> = on_pool!(self, |pool| {
            match after {
                None => {
                    sqlx::query_as(AssertSqlSafe(format!(
                        "{COLS} ORDER BY scanned_at, id LIMIT $4"
                    )))
                    .bind(Ts(from))
                    .bind(last)
                    .bind(qr_code_id)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                }
                Some((at, id)) => {
                    sqlx::query_as(AssertSqlSafe(format!(
                        "{COLS} AND (scanned_at > $4 OR (scanned_at = $4 AND id > $5)) \
                         ORDER BY scanned_at, id LIMIT $6"
                    )))
                    .bind(Ts(from.max(at)))
                    .bind(last)
                    .bind(qr_code_id)
                    .bind(Ts(at))
                    .bind(id)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await
                }
            }
        })?;
        Ok(rows
            .into_iter()
            .map(|r| StoredScan {
                id: r.id,
                at: r.scanned_at.0,
                address: r.address,
                device: r.device,
                os: r.os,
                browser: r.browser,
                referrer: Some(r.referrer).filter(|r| !r.is_empty()),
                source: r.source,
                visitor: r.visitor,
                first_visit: r.first_visit,
            })
            .collect())
    }

    /// The time now as the store keeps it (for callers that stamp scans).
    pub fn scan_clock(&self) -> OffsetDateTime {
        now()
    }
}
