//! One-time morphing QR chains (seed 003): the chain rows, the atomic scan, the scan log.
//!
//! A chain row keeps the last accepted value in the clear and the checkpoints (which
//! produce every value) sealed with the [`DataKey`], bound to the chain's id. So a copy of
//! the database alone shows the values already used and nothing to come.
//!
//! **Exactly once.** [`Store::scan_chain`] is one transaction: it reads the chain (locking
//! its row on PostgreSQL, holding the write lock on SQLite), checks the candidate against
//! the last accepted value, advances the chain, inserts the used value (unique per chain
//! and index, so even a bug above could not accept one position twice), records the scan
//! and writes the outbox events. Concurrent scans of one value serialize on the row: one
//! wins, the others then see a used value and are refused as "already scanned".

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::AuditContext;
use crate::secret::DataKey;
use crate::Store;
use qrlp_chain::{progress, Checkpoints};
use qrlp_webhook::{catalogue, Payload};

/// Longest stored `hashValue` of a refused scan, in characters.
pub const MAX_STORED_HASH_CHARS: usize = 128;

/// A chain, without its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    /// Integer id (`chainId`).
    pub id: i64,
    /// Owning organization.
    pub org_id: Uuid,
    /// 1-255 characters.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Number of values, 10-10,000.
    pub chain_length: i64,
    /// Index of the value shown now; -1 once exhausted.
    pub current_index: i64,
    /// Whether scans are accepted.
    pub is_active: bool,
    /// Accepted scans.
    pub valid_scans: i64,
    /// Refused scans.
    pub invalid_scans: i64,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed (a scan changes it).
    pub updated_at: OffsetDateTime,
}

impl Chain {
    /// `remaining` of the seed: values not yet used.
    pub fn remaining(&self) -> i64 {
        progress::remaining(self.current_index)
    }

    /// Whether every value was used.
    pub fn exhausted(&self) -> bool {
        self.current_index < 0
    }
}

#[derive(sqlx::FromRow)]
struct ChainRow {
    id: i64,
    org_id: Uuid,
    name: String,
    description: Option<String>,
    chain_length: i64,
    current_index: i64,
    is_active: bool,
    valid_scans: i64,
    invalid_scans: i64,
    created_at: Ts,
    updated_at: Ts,
}

impl From<ChainRow> for Chain {
    fn from(r: ChainRow) -> Self {
        Chain {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            description: r.description,
            chain_length: r.chain_length,
            current_index: r.current_index,
            is_active: r.is_active,
            valid_scans: r.valid_scans,
            invalid_scans: r.invalid_scans,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct ChainStateRow {
    #[sqlx(flatten)]
    chain: ChainRow,
    last_value: Vec<u8>,
}

const CHAIN_COLS: &str = "id, org_id, name, description, chain_length, current_index, \
     is_active, valid_scans, invalid_scans, created_at, updated_at";

/// A new chain. The caller checked the name; the store checks the length.
#[derive(Debug, Clone)]
pub struct NewChain {
    /// Owning organization.
    pub org_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Length, 10-10,000.
    pub chain_length: u32,
}

/// Changes to a chain; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ChainPatch {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// Accept scans or not. An exhausted chain cannot be reactivated.
    pub is_active: Option<bool>,
}

/// Who scanned, from where.
#[derive(Debug, Clone, Default)]
pub struct ScanSource {
    /// `api_key:<id>`, `user:<id>` or `public`.
    pub scanned_by: Option<String>,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
}

/// The verdict of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanVerdict {
    /// The candidate was the current value: the chain moved on.
    Accepted,
    /// The candidate was accepted before.
    AlreadyScanned,
    /// Not a value of this chain that was ever current.
    Invalid,
    /// Every value was used.
    Exhausted,
    /// The chain was deactivated.
    Inactive,
}

impl ScanVerdict {
    /// The `errorMessage` recorded for a refused scan.
    pub fn error_message(self) -> Option<&'static str> {
        match self {
            ScanVerdict::Accepted => None,
            ScanVerdict::AlreadyScanned => Some("QR code already scanned"),
            ScanVerdict::Invalid => Some("Invalid QR code"),
            ScanVerdict::Exhausted => Some("Chain exhausted"),
            ScanVerdict::Inactive => Some("Chain is inactive"),
        }
    }
}

/// What a scan did.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    /// The verdict.
    pub verdict: ScanVerdict,
    /// The chain after the scan.
    pub chain: Chain,
    /// The scan record's id.
    pub scan_id: i64,
    /// The index of the value accepted (or matched, for "already scanned").
    pub index: Option<i64>,
}

/// One recorded scan attempt.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScanRecord {
    /// Scan id.
    pub id: i64,
    /// Chain id.
    pub chain_id: i64,
    /// Id of the used value matched (accepted or already scanned).
    pub hash_id: Option<i64>,
    /// The value submitted (cut to 128 characters).
    pub hash_value: String,
    /// Index of the value matched, or the chain's current index for an invalid value.
    pub chain_index: Option<i64>,
    /// Whether it was accepted.
    pub is_valid: bool,
    /// Who.
    pub scanned_by: Option<String>,
    /// From where.
    pub ip_address: Option<String>,
    /// With what.
    pub user_agent: Option<String>,
    /// Why it was refused.
    pub error_message: Option<String>,
    /// When.
    #[sqlx(try_from = "Ts")]
    pub scanned_at: OffsetDateTime,
}

fn chain_aad(id: i64) -> Vec<u8> {
    format!("chain-checkpoints:{id}").into_bytes()
}

fn cut(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `2025-01-15T10:30:00Z`: the seed's timestamp form (UTC, whole seconds).
pub fn seed_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut seed).expect("the operating system's random source failed");
    seed
}

/// One scan to perform.
pub(crate) struct ScanJob {
    org: Option<Uuid>,
    id: i64,
    at: OffsetDateTime,
    candidate: Option<qrlp_chain::Value>,
    stored_hash: String,
    user_agent: Option<String>,
    source: ScanSource,
}

type ScanReply = tokio::sync::oneshot::Sender<Result<ScanOutcome, StoreError>>;

/// The queue of the SQLite scan writer.
pub(crate) type ScanQueue = tokio::sync::mpsc::Sender<(ScanJob, ScanReply)>;

/// Most scans committed together.
const MAX_GROUP: usize = 256;

const SELECT_FOR_SCAN_SQLITE: &str = "SELECT id, org_id, name, description, chain_length, \
     current_index, is_active, valid_scans, invalid_scans, created_at, updated_at, last_value \
     FROM chains WHERE id = $1 AND ($2 IS NULL OR org_id = $2)";
const SELECT_FOR_SCAN_PG: &str = "SELECT id, org_id, name, description, chain_length, \
     current_index, is_active, valid_scans, invalid_scans, created_at, updated_at, last_value \
     FROM chains WHERE id = $1 AND ($2 IS NULL OR org_id = $2) FOR UPDATE";

/// The body of one scan inside the open transaction `$tx` (see [`Store::scan_chain`]):
/// evaluates to `Result<ScanOutcome, StoreError>`. `$job` is a `&ScanJob`; `$select` reads the
/// chain row (locking it on PostgreSQL).
macro_rules! scan_in_tx {
    ($tx:ident, $job:expr, $select:expr) => {{
        let job: &ScanJob = $job;
        let id = job.id;
        let at = job.at;
        let candidate = job.candidate;
        let stored_hash = &job.stored_hash;
        let user_agent = &job.user_agent;
        let source = &job.source;
        async {
            let row: Option<ChainStateRow> = sqlx::query_as(sqlx::AssertSqlSafe($select))
                .bind(id)
                .bind(job.org)
                .fetch_optional(&mut *$tx)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound);
            };
            let mut chain = Chain::from(row.chain);
            let chain_id = u64::try_from(id).unwrap_or(0);
            let k = chain.current_index;
            let accepted = match (&candidate, u32::try_from(k)) {
                (Some(c), Ok(index)) if chain.is_active => {
                    let mut last = [0u8; 32];
                    if row.last_value.len() == 32 {
                        last.copy_from_slice(&row.last_value);
                    }
                    qrlp_chain::verify(chain_id, index, c, &last)
                }
                _ => false,
            };
            let (verdict, hash_id, index) = if accepted {
                let c = candidate.unwrap_or([0; 32]);
                let hash_id: i64 = sqlx::query_scalar(
                    "INSERT INTO chain_used_values (chain_id, chain_index, hash_value, used_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(id)
                .bind(k)
                .bind(&c[..])
                .bind(Ts(at))
                .fetch_one(&mut *$tx)
                .await?;
                let advanced = sqlx::query(
                    "UPDATE chains SET current_index = current_index - 1, last_value = $3, \
                     valid_scans = valid_scans + 1, is_active = (current_index > 0), \
                     updated_at = $4 WHERE id = $1 AND current_index = $2",
                )
                .bind(id)
                .bind(k)
                .bind(&c[..])
                .bind(Ts(at))
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if advanced != 1 {
                    return Err(StoreError::internal("chain moved during its own scan"));
                }
                chain.current_index = k - 1;
                chain.valid_scans += 1;
                chain.is_active = k > 0;
                chain.updated_at = at;
                (ScanVerdict::Accepted, Some(hash_id), Some(k))
            } else {
                let used: Option<(i64, i64)> = match &candidate {
                    Some(c) => {
                        sqlx::query_as(
                            "SELECT id, chain_index FROM chain_used_values \
                             WHERE chain_id = $1 AND hash_value = $2",
                        )
                        .bind(id)
                        .bind(&c[..])
                        .fetch_optional(&mut *$tx)
                        .await?
                    }
                    None => None,
                };
                let verdict = match used {
                    Some(_) => ScanVerdict::AlreadyScanned,
                    None if chain.exhausted() => ScanVerdict::Exhausted,
                    None if !chain.is_active => ScanVerdict::Inactive,
                    None => ScanVerdict::Invalid,
                };
                sqlx::query("UPDATE chains SET invalid_scans = invalid_scans + 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *$tx)
                    .await?;
                chain.invalid_scans += 1;
                match used {
                    Some((hash_id, index)) => (verdict, Some(hash_id), Some(index)),
                    None => (verdict, None, (k >= 0).then_some(k)),
                }
            };
            let scan_id: i64 = sqlx::query_scalar(
                "INSERT INTO chain_scans (chain_id, hash_id, hash_value, chain_index, is_valid, \
                 scanned_by, ip_address, user_agent, error_message, scanned_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(id)
            .bind(hash_id)
            .bind(&stored_hash)
            .bind(index)
            .bind(verdict == ScanVerdict::Accepted)
            .bind(source.scanned_by.as_deref())
            .bind(source.ip_address.as_deref())
            .bind(user_agent.as_deref())
            .bind(verdict.error_message())
            .bind(Ts(at))
            .fetch_one(&mut *$tx)
            .await?;
            if verdict == ScanVerdict::Accepted {
                let payload = Payload::new(catalogue::SCAN_SUCCESS)
                    .with("chainId", id)
                    .with("chainName", chain.name.as_str())
                    .with(
                        "hashValue",
                        qrlp_chain::to_hex(&candidate.unwrap_or([0; 32])),
                    )
                    .with("index", k)
                    .with("remaining", chain.remaining())
                    .with("timestamp", seed_timestamp(at));
                enqueue_event!($tx, chain.org_id, &payload, at)?;
                if chain.exhausted() {
                    let payload = Payload::new(catalogue::CHAIN_EXHAUSTED)
                        .with("chainId", id)
                        .with("chainName", chain.name.as_str())
                        .with("chainLength", chain.chain_length)
                        .with("timestamp", seed_timestamp(at));
                    enqueue_event!($tx, chain.org_id, &payload, at)?;
                }
            } else {
                let payload = Payload::new(catalogue::SCAN_FAILED)
                    .with("chainId", id)
                    .with("chainName", chain.name.as_str())
                    .with("hashValue", stored_hash.as_str())
                    .with("error", verdict.error_message().unwrap_or_default())
                    .with("currentIndex", chain.current_index)
                    .with("remaining", chain.remaining())
                    .with("timestamp", seed_timestamp(at));
                enqueue_event!($tx, chain.org_id, &payload, at)?;
            }
            Ok::<_, StoreError>(ScanOutcome {
                verdict,
                chain,
                scan_id,
                index,
            })
        }
        .await
    }};
}

/// Starts the SQLite scan writer: it takes the scans waiting (up to [`MAX_GROUP`]), runs
/// them in one `BEGIN IMMEDIATE` transaction, commits once, then answers.
/// It ends when the store (the queue's sender) is dropped.
fn spawn_scan_writer(pool: sqlx::SqlitePool) -> ScanQueue {
    let (sender, mut queue) = tokio::sync::mpsc::channel::<(ScanJob, ScanReply)>(4 * MAX_GROUP);
    tokio::spawn(async move {
        let mut group = Vec::with_capacity(MAX_GROUP);
        while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
            let results = scan_group(&pool, &group).await;
            match results {
                Ok(results) => {
                    for ((_, reply), result) in group.drain(..).zip(results) {
                        let _ = reply.send(result);
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    for (_, reply) in group.drain(..) {
                        let _ = reply.send(Err(StoreError::Unavailable(text.clone(), None)));
                    }
                }
            }
        }
    });
    sender
}

/// Runs `group` in one transaction and commits once. An unknown chain is answered
/// `NotFound` before anything was written, so the group goes on; any other error may
/// follow writes, so the whole group is rolled back and each scan runs again in its own
/// transaction (rare: the database itself failed).
async fn scan_group(
    pool: &sqlx::SqlitePool,
    group: &[(ScanJob, ScanReply)],
) -> Result<Vec<Result<ScanOutcome, StoreError>>, StoreError> {
    let mut tx = pool.begin_with(crate::sql::SQLITE.begin).await?;
    let mut results = Vec::with_capacity(group.len());
    for (job, _) in group {
        let result = scan_in_tx!(tx, job, SELECT_FOR_SCAN_SQLITE);
        match result {
            Ok(_) | Err(StoreError::NotFound) => results.push(result),
            Err(_) => {
                tx.rollback().await?;
                return scan_one_by_one(pool, group).await;
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

async fn scan_one_by_one(
    pool: &sqlx::SqlitePool,
    group: &[(ScanJob, ScanReply)],
) -> Result<Vec<Result<ScanOutcome, StoreError>>, StoreError> {
    let mut results = Vec::with_capacity(group.len());
    for (job, _) in group {
        let mut tx = pool.begin_with(crate::sql::SQLITE.begin).await?;
        let result = scan_in_tx!(tx, job, SELECT_FOR_SCAN_SQLITE);
        if result.is_ok() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        results.push(result);
    }
    Ok(results)
}

impl Store {
    /// Creates a chain: a random seed, its checkpoints sealed under `key`, the anchor as the
    /// last accepted value. Audit `chain.create` and event `chain.created` in the same
    /// transaction.
    pub async fn create_chain(
        &self,
        ctx: &AuditContext,
        key: &DataKey,
        new: NewChain,
    ) -> Result<Chain, StoreError> {
        if !(qrlp_chain::MIN_LENGTH..=qrlp_chain::MAX_LENGTH).contains(&new.chain_length) {
            return Err(StoreError::invalid(
                "chainLength",
                "must be between 10 and 10000",
            ));
        }
        let at = now();
        let length = i64::from(new.chain_length);
        let id: i64 = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO chains (org_id, name, description, chain_length, current_index, \
                 last_value, secret, is_active, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8, $8) RETURNING id",
            )
            .bind(new.org_id)
            .bind(&new.name)
            .bind(new.description.as_deref())
            .bind(length)
            .bind(length - 1)
            .bind(&[0u8; 32][..])
            .bind(&[][..] as &[u8])
            .bind(Ts(at))
            .fetch_one(&mut *tx)
            .await?;
            let chain_id = u64::try_from(id).map_err(|_| StoreError::internal("negative id"))?;
            let checkpoints = Checkpoints::generate(chain_id, new.chain_length, &random_seed())
                .map_err(|e| StoreError::invalid("chainLength", &e.to_string()))?;
            let sealed = key.seal(&chain_aad(id), &checkpoints.to_bytes());
            sqlx::query("UPDATE chains SET last_value = $2, secret = $3 WHERE id = $1")
                .bind(id)
                .bind(&checkpoints.anchor()[..])
                .bind(&sealed)
                .execute(&mut *tx)
                .await?;
            let audit = AuditEntry {
                org_id: Some(new.org_id),
                ctx,
                action: "chain.create",
                target_type: "chain",
                target_id: Some(id.to_string()),
                details: json!({ "name": new.name, "chain_length": length }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            let payload = Payload::new(catalogue::CHAIN_CREATED)
                .with("chainId", id)
                .with("chainName", new.name.as_str())
                .with("chainLength", length)
                .with("timestamp", seed_timestamp(at));
            enqueue_event!(tx, new.org_id, &payload, at)?;
            tx.commit().await?;
            Ok::<_, StoreError>(id)
        })?;
        self.get_chain(new.org_id, id).await
    }

    /// The chains of `org`, by id.
    pub async fn list_chains(&self, org: Uuid) -> Result<Vec<Chain>, StoreError> {
        let sql = format!("SELECT {CHAIN_COLS} FROM chains WHERE org_id = $1 ORDER BY id");
        let rows: Vec<ChainRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(org)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows.into_iter().map(Chain::from).collect())
    }

    /// Chain `id` of `org`; `NotFound` for another organization's.
    pub async fn get_chain(&self, org: Uuid, id: i64) -> Result<Chain, StoreError> {
        let sql = format!("SELECT {CHAIN_COLS} FROM chains WHERE id = $1 AND org_id = $2");
        let row: Option<ChainRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Chain::from).ok_or(StoreError::NotFound)
    }

    /// Chain `id` by id alone (the public scan page, which has no organization).
    pub async fn get_chain_public(&self, id: i64) -> Result<Chain, StoreError> {
        let sql = format!("SELECT {CHAIN_COLS} FROM chains WHERE id = $1");
        let row: Option<ChainRow> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(Chain::from).ok_or(StoreError::NotFound)
    }

    /// The chain and its current value, produced from its sealed checkpoints. `None` for the
    /// value when the chain is exhausted.
    pub async fn current_chain_value(
        &self,
        key: &DataKey,
        org: Uuid,
        id: i64,
    ) -> Result<(Chain, Option<qrlp_chain::Value>), StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            chain: ChainRow,
            secret: Vec<u8>,
        }
        let sql = format!("SELECT {CHAIN_COLS}, secret FROM chains WHERE id = $1 AND org_id = $2");
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        let row = row.ok_or(StoreError::NotFound)?;
        let chain = Chain::from(row.chain);
        if chain.exhausted() {
            return Ok((chain, None));
        }
        let plain = key.open(&chain_aad(id), &row.secret)?;
        let checkpoints = Checkpoints::from_bytes(
            u64::try_from(id).unwrap_or(0),
            u32::try_from(chain.chain_length).unwrap_or(0),
            &plain,
        )
        .map_err(|e| StoreError::internal(format!("chain {id}: {e}")))?;
        let index = u32::try_from(chain.current_index).unwrap_or(0);
        let value = checkpoints
            .value(index)
            .map_err(|e| StoreError::internal(format!("chain {id}: {e}")))?;
        Ok((chain, Some(value)))
    }

    /// Every value chain `id` has still to show, from the current one down to index 0. For
    /// load tests, which must submit valid values without asking the server for each; it
    /// needs the data key, like the server.
    #[doc(hidden)]
    pub async fn remaining_chain_values(
        &self,
        key: &DataKey,
        org: Uuid,
        id: i64,
    ) -> Result<Vec<qrlp_chain::Value>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            chain: ChainRow,
            secret: Vec<u8>,
        }
        let sql = format!("SELECT {CHAIN_COLS}, secret FROM chains WHERE id = $1 AND org_id = $2");
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        let row = row.ok_or(StoreError::NotFound)?;
        let chain = Chain::from(row.chain);
        let plain = key.open(&chain_aad(id), &row.secret)?;
        let checkpoints = Checkpoints::from_bytes(
            u64::try_from(id).unwrap_or(0),
            u32::try_from(chain.chain_length).unwrap_or(0),
            &plain,
        )
        .map_err(|e| StoreError::internal(format!("chain {id}: {e}")))?;
        let top = u32::try_from(chain.current_index.max(-1) + 1).unwrap_or(0);
        (0..top)
            .rev()
            .map(|i| {
                checkpoints
                    .value(i)
                    .map_err(|e| StoreError::internal(format!("chain {id}: {e}")))
            })
            .collect()
    }

    /// Scans `hash_value` against chain `id` (of `org`, or of any organization for the
    /// public page when `org` is `None`): one transaction that checks, advances, records
    /// and writes the events. Every attempt is recorded.
    ///
    /// On SQLite, scans are committed in groups by one writer task (group commit): the
    /// scans waiting when a transaction starts share it, and all are answered after the
    /// one commit (`synchronous=FULL`), so an answered scan is
    /// durable and writers never queue on SQLite's busy handler. On PostgreSQL each scan is
    /// its own transaction holding the chain's row lock.
    pub async fn scan_chain(
        &self,
        org: Option<Uuid>,
        id: i64,
        hash_value: &str,
        source: &ScanSource,
    ) -> Result<ScanOutcome, StoreError> {
        let job = ScanJob {
            org,
            id,
            at: now(),
            candidate: qrlp_chain::from_hex(hash_value.trim()),
            stored_hash: cut(hash_value, MAX_STORED_HASH_CHARS).to_string(),
            user_agent: source
                .user_agent
                .as_deref()
                .map(|u| cut(u, 512).to_string()),
            source: source.clone(),
        };
        match &self.inner.backend {
            crate::Backend::Sqlite(pool) => {
                let sender = self
                    .inner
                    .scan_writer
                    .get_or_init(|| spawn_scan_writer(pool.clone()));
                let (tx, rx) = tokio::sync::oneshot::channel();
                sender
                    .send((job, tx))
                    .await
                    .map_err(|_| StoreError::Unavailable("the scan writer stopped".into(), None))?;
                rx.await
                    .map_err(|_| StoreError::Unavailable("the scan writer stopped".into(), None))?
            }
            crate::Backend::Postgres(pool) => {
                let mut tx = pool.begin_with(crate::sql::POSTGRES.begin).await?;
                let outcome = scan_in_tx!(tx, &job, SELECT_FOR_SCAN_PG)?;
                tx.commit().await?;
                Ok(outcome)
            }
        }
    }

    /// The newest `limit` scans of chain `id` of `org`.
    pub async fn list_scans(
        &self,
        org: Uuid,
        id: i64,
        limit: u32,
    ) -> Result<Vec<ScanRecord>, StoreError> {
        self.get_chain(org, id).await?;
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, chain_id, hash_id, hash_value, chain_index, is_valid, scanned_by, \
                 ip_address, user_agent, error_message, scanned_at FROM chain_scans \
                 WHERE chain_id = $1 ORDER BY id DESC LIMIT $2",
            )
            .bind(id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }

    /// Renames, re-describes, deactivates or reactivates a chain. Audit: `chain.update`.
    /// An exhausted chain cannot be reactivated (`Conflict("exhausted")`).
    pub async fn update_chain(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: i64,
        patch: ChainPatch,
    ) -> Result<Chain, StoreError> {
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let sql = format!("SELECT {CHAIN_COLS} FROM chains WHERE id = $1 AND org_id = $2");
            let row: Option<ChainRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?;
            let old = Chain::from(row.ok_or(StoreError::NotFound)?);
            if patch.is_active == Some(true) && old.exhausted() {
                return Err(StoreError::Conflict("exhausted".into()));
            }
            let name = patch.name.clone().unwrap_or_else(|| old.name.clone());
            let description = match &patch.description {
                Some(d) => d.clone(),
                None => old.description.clone(),
            };
            let is_active = patch.is_active.unwrap_or(old.is_active);
            sqlx::query(
                "UPDATE chains SET name = $3, description = $4, is_active = $5, updated_at = $6 \
                 WHERE id = $1 AND org_id = $2",
            )
            .bind(id)
            .bind(org)
            .bind(&name)
            .bind(description.as_deref())
            .bind(is_active)
            .bind(Ts(at))
            .execute(&mut *tx)
            .await?;
            let mut details = serde_json::Map::new();
            crate::audit::change(&mut details, "name", &old.name, &name);
            if patch.description.is_some() {
                details.insert("description_changed".into(), json!(true));
            }
            if is_active != old.is_active {
                details.insert(
                    "is_active".into(),
                    json!({ "old": old.is_active, "new": is_active }),
                );
            }
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "chain.update",
                target_type: "chain",
                target_id: Some(id.to_string()),
                details: serde_json::Value::Object(details),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok(Chain {
                name,
                description,
                is_active,
                updated_at: at,
                ..old
            })
        })
    }

    /// Deletes a chain with its secret, used values and scans. Audit: `chain.delete`.
    pub async fn delete_chain(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: i64,
    ) -> Result<Chain, StoreError> {
        let old = self.get_chain(org, id).await?;
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let gone = sqlx::query("DELETE FROM chains WHERE id = $1 AND org_id = $2")
                .bind(id)
                .bind(org)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if gone == 0 {
                return Err(StoreError::NotFound);
            }
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "chain.delete",
                target_type: "chain",
                target_id: Some(id.to_string()),
                details: json!({ "name": old.name, "valid_scans": old.valid_scans }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(old)
    }
}
