//! Scans of tracked QR codes: batched recording with roll-ups, the daily visitor salt, and
//! the reads analytics need.
//!
//! [`Store::record_scans`] writes one batch in one transaction: the visitors first seen
//! that day, the scans (an id already stored is skipped, so a retried batch never counts a
//! scan twice), then the quarter-hour buckets, the daily breakdown rows and the per-code
//! totals, computed from the scans that were actually inserted, and the `qr.scan` webhook
//! events of the organizations that subscribed to them by name.

use std::collections::{HashMap, HashSet};

use sqlx::AssertSqlSafe;
use time::OffsetDateTime;
use uuid::Uuid;

use qrlp_webhook::{catalogue, Payload};

use crate::chains::seed_timestamp;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::qr_model::{BotVisit, RecordOutcome, ScanBucket, ScanRecord, StoredScan};
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
        let outcome = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let mut new_visitors: HashSet<(Uuid, i64, Vec<u8>)> = HashSet::new();
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
                new_visitors.extend(rows);
            }
            let mut inserted: HashSet<Uuid> = HashSet::new();
            let mut first = Vec::with_capacity(scans.len());
            for s in scans {
                // The first scan of the batch for a new visitor takes the mark.
                first.push(new_visitors.remove(&(s.qr_code_id, day(s.at), s.visitor.to_vec())));
            }
            let marked: Vec<(&ScanRecord, bool)> = scans.iter().zip(first).collect();
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
                        .push_bind(s.referrer.clone().unwrap_or_default())
                        .push_bind(s.source.as_str())
                        .push_bind(s.visitor.to_vec())
                        .push_bind(*first);
                });
                q.push(" ON CONFLICT DO NOTHING RETURNING id");
                let rows: Vec<(Uuid,)> = q.build_query_as().fetch_all(&mut *tx).await?;
                inserted.extend(rows.into_iter().map(|(id,)| id));
            }

            let mut buckets: HashMap<(Uuid, i64), Sums> = HashMap::new();
            type Cube<'a> = (Uuid, i64, &'a str, &'a str, &'a str, &'a str, &'static str);
            let mut daily: HashMap<Cube<'_>, i64> = HashMap::new();
            let mut bot_daily: HashMap<(Uuid, i64, &str), i64> = HashMap::new();
            let mut totals: HashMap<Uuid, (Sums, Option<OffsetDateTime>)> = HashMap::new();
            let mut outcome = RecordOutcome::default();
            for (s, first) in &marked {
                if !inserted.contains(&s.id) {
                    continue;
                }
                outcome.scans += 1;
                let v = i64::from(*first);
                outcome.first_visits += to_u64(v);
                let b = buckets.entry((s.qr_code_id, bucket(s.at))).or_default();
                b.scans += 1;
                b.visitors += v;
                let key = (
                    s.qr_code_id,
                    day(s.at),
                    s.device.as_str(),
                    s.os.as_str(),
                    s.browser.as_str(),
                    s.referrer.as_deref().unwrap_or(""),
                    s.source.as_str(),
                );
                *daily.entry(key).or_default() += 1;
                let t = totals.entry(s.qr_code_id).or_default();
                t.0.scans += 1;
                t.0.visitors += v;
                t.1 = t.1.max(Some(s.at));
            }
            for bot in bots {
                outcome.bots += 1;
                buckets
                    .entry((bot.qr_code_id, bucket(bot.at)))
                    .or_default()
                    .bots += 1;
                *bot_daily
                    .entry((bot.qr_code_id, day(bot.at), bot.name.as_str()))
                    .or_default() += 1;
                totals.entry(bot.qr_code_id).or_default().0.bots += 1;
            }

            // `qr.scan` events, only for codes whose organization has an active endpoint
            // that names the type (`*` does not cover it): one query per batch otherwise.
            let codes: Vec<Uuid> = totals.keys().copied().collect();
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
                    .with("device", s.device.as_str())
                    .with("os", s.os.as_str())
                    .with("browser", s.browser.as_str())
                    .with("referrer", s.referrer.as_deref())
                    .with("unique_visitor", *first);
                enqueue_event!(tx, *org, &payload, s.at)?;
            }

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
                q.build().execute(&mut *tx).await?;
            }
            let daily: Vec<_> = daily.into_iter().collect();
            for chunk in daily.chunks(CHUNK) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO qr_scan_daily (qr_code_id, day, device, os, browser, referrer, \
                     source, count) ",
                );
                q.push_values(
                    chunk,
                    |mut b, ((code, day, device, os, browser, referrer, source), n)| {
                        b.push_bind(*code)
                            .push_bind(*day)
                            .push_bind(*device)
                            .push_bind(*os)
                            .push_bind(*browser)
                            .push_bind(*referrer)
                            .push_bind(*source)
                            .push_bind(*n);
                    },
                );
                q.push(
                    " ON CONFLICT (qr_code_id, day, device, os, browser, referrer, source) \
                     DO UPDATE SET count = qr_scan_daily.count + excluded.count",
                );
                q.build().execute(&mut *tx).await?;
            }
            let bot_daily: Vec<_> = bot_daily.into_iter().collect();
            for chunk in bot_daily.chunks(CHUNK) {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO qr_bot_daily (qr_code_id, day, name, count) ",
                );
                q.push_values(chunk, |mut b, ((code, day, name), n)| {
                    b.push_bind(*code)
                        .push_bind(*day)
                        .push_bind(*name)
                        .push_bind(*n);
                });
                q.push(
                    " ON CONFLICT (qr_code_id, day, name) \
                     DO UPDATE SET count = qr_bot_daily.count + excluded.count",
                );
                q.build().execute(&mut *tx).await?;
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
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(outcome)
        })?;
        known.remember(&visitors);
        Ok(outcome)
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

    /// The roll-up buckets of a code starting in `[from, to)` (Unix seconds).
    pub async fn scan_buckets(
        &self,
        qr_code_id: Uuid,
        from: i64,
        to: i64,
    ) -> Result<Vec<ScanBucket>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT bucket_start, scans, visitors, bots FROM qr_scan_buckets \
                 WHERE qr_code_id = $1 AND bucket_start >= $2 AND bucket_start < $3 \
                 ORDER BY bucket_start",
            )
            .bind(qr_code_id)
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(start, scans, visitors, bots)| ScanBucket {
                start,
                scans: to_u64(scans),
                visitors: to_u64(visitors),
                bots: to_u64(bots),
            })
            .collect())
    }

    /// Sums of the roll-up buckets of a code per day, for days given by their boundaries
    /// (`boundaries[i]..boundaries[i + 1]`, Unix seconds, increasing; at most 367): one row
    /// `(day index, scans, first visits, bots)` per day that has any. The database does the
    /// sums, one index range per day, so a year costs a few hundred range reads, not tens of
    /// thousands of rows sent back.
    pub async fn scan_days(
        &self,
        qr_code_id: Uuid,
        boundaries: &[i64],
    ) -> Result<Vec<(usize, ScanBucket)>, StoreError> {
        if boundaries.len() < 2 || boundaries.len() > 367 {
            return Err(StoreError::invalid("boundaries", "2 to 367 day boundaries"));
        }
        let days = boundaries.len() - 1;
        let rows: Vec<(i64, i64, i64, i64)> = on_pool!(self, |pool| {
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
            q.build_query_as().fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(|(i, scans, visitors, bots)| {
                (
                    usize::try_from(i).unwrap_or(0),
                    ScanBucket {
                        start: boundaries[usize::try_from(i).unwrap_or(0)],
                        scans: to_u64(scans),
                        visitors: to_u64(visitors),
                        bots: to_u64(bots),
                    },
                )
            })
            .collect())
    }

    /// Counts per `(dimension, value)` of a code over UTC days `[from_day, to_day)`, most
    /// frequent first within each dimension. Dimensions: `device`, `os`, `browser`,
    /// `referrer` (`(direct)` when none), `source`, `bot`.
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
        let mut out = Vec::new();
        for (dimension, column, table) in DIMENSIONS {
            let sql = format!(
                "SELECT {column}, CAST(SUM(count) AS BIGINT) AS n FROM {table} \
                 WHERE qr_code_id = $1 AND day >= $2 AND day < $3 \
                 GROUP BY {column} ORDER BY n DESC, {column}"
            );
            let rows: Vec<(String, i64)> = on_pool!(self, |pool| {
                sqlx::query_as(AssertSqlSafe(sql.as_str()))
                    .bind(qr_code_id)
                    .bind(from_day)
                    .bind(to_day)
                    .fetch_all(pool)
                    .await
            })?;
            out.extend(rows.into_iter().map(|(v, n)| {
                let v = if dimension == "referrer" && v.is_empty() {
                    "(direct)".to_string()
                } else {
                    v
                };
                (dimension.to_string(), v, to_u64(n))
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
        let bounds: Option<(Option<i64>, Option<Ts>)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT (SELECT MIN(bucket_start) FROM qr_scan_buckets WHERE qr_code_id = $1), \
                 (SELECT last_scan_at FROM qr_code_stats WHERE qr_code_id = $1)",
            )
            .bind(qr_code_id)
            .fetch_optional(pool)
            .await
        })?;
        let (Some(first_bucket), Some(last)) = bounds.unwrap_or((None, None)) else {
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
