//! The device fleet: each organization's device CA, enrollment tokens, devices, their key
//! versions, heartbeats and the offline sweep.
//!
//! Invariants, besides the crate's:
//! - **Secrets sealed.** The CA key, the organization's FN-DSA key and the server's ML-KEM
//!   seed per device arrive here already sealed by the caller; enrollment tokens only as
//!   SHA-256. Nothing here can open them.
//! - **Single use.** Registration consumes its token in the transaction that creates the
//!   device (`used_at IS NULL AND expires_at > now` in the `UPDATE`), so two registrations
//!   racing on one token create one device.
//! - **Offline exactly once.** [`Store::mark_offline_due`] is one `UPDATE … RETURNING`:
//!   with several server processes each device is reported by exactly one of them.
//! - **Isolation.** Every lookup by id for an API caller takes the organization; a device,
//!   key or token of another organization is `NotFound`. Deregistered devices are
//!   `NotFound` to callers and refused to the device.

use serde::Serialize;
use serde_json::json;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{checked_time, now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, AuditRecord, Page, PageRequest};
use crate::rows::AuditRow;
use crate::{page_of, to_u64, Store};

/// A device's state, as seed 002 names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    /// Heartbeating.
    Online,
    /// Missed three update intervals (or never heartbeated).
    Offline,
    /// Heartbeating and busy with a learning round.
    Training,
}

impl DeviceStatus {
    /// Every status.
    pub const ALL: [DeviceStatus; 3] = [
        DeviceStatus::Online,
        DeviceStatus::Offline,
        DeviceStatus::Training,
    ];

    /// `online`, `offline` or `training`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Online => "online",
            DeviceStatus::Offline => "offline",
            DeviceStatus::Training => "training",
        }
    }

    /// The status named `s`.
    pub fn parse(s: &str) -> Option<DeviceStatus> {
        DeviceStatus::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// An organization's device CA as stored (secrets sealed).
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCa {
    /// The organization.
    pub org_id: Uuid,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA's Ed25519 key, sealed.
    pub key_sealed: Vec<u8>,
    /// The organization's FN-DSA-512 public key.
    pub pq_public: Vec<u8>,
    /// Its secret, sealed.
    pub pq_sealed: Vec<u8>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa")
            .field("org_id", &self.org_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What [`Store::create_enrollment_token`] stores. `Debug` hides the hash.
#[derive(Clone, PartialEq)]
pub struct NewEnrollmentToken {
    /// The organization devices enroll into.
    pub org_id: Uuid,
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// Glob the device name must match.
    pub name_pattern: Option<String>,
    /// Capability floors the device must meet.
    pub capabilities: Option<serde_json::Value>,
    /// The user who made it.
    pub created_by: Option<Uuid>,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for NewEnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewEnrollmentToken")
            .field("org_id", &self.org_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A stored enrollment token (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnrollmentToken {
    /// UUID v7.
    pub id: Uuid,
    /// The organization.
    pub org_id: Uuid,
    /// Glob the device name must match.
    pub name_pattern: Option<String>,
    /// Capability floors.
    pub capabilities: Option<serde_json::Value>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When a device used it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub used_at: Option<OffsetDateTime>,
    /// The device that used it.
    pub device_id: Option<String>,
}

/// What [`Store::register_device`] stores. `Debug` hides the sealed seed.
#[derive(Clone, PartialEq)]
pub struct NewDevice {
    /// `dev_…`.
    pub id: String,
    /// The organization.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// The seed's `type`, e.g. `raspberry_pi`.
    pub device_type: String,
    /// The seed's capabilities object.
    pub capabilities: serde_json::Value,
    /// Configuration sent to the device (the seed's `training_config` and more).
    pub config: serde_json::Value,
    /// Seconds between heartbeats.
    pub update_interval: u32,
    /// The device certificate, PEM.
    pub certificate_pem: String,
    /// Its `notAfter`.
    pub certificate_expiry: OffsetDateTime,
    /// The server's ML-KEM-768 encapsulation key for this device.
    pub kem_public: Vec<u8>,
    /// Its seed, sealed.
    pub kem_sealed: Vec<u8>,
    /// The device's Ed25519 key, version 1.
    pub ed25519_public: [u8; 32],
    /// The device's own ML-KEM-768 encapsulation key, version 1.
    pub device_kem_public: Vec<u8>,
}

impl std::fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDevice")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// `dev_…`.
    pub id: String,
    /// The organization.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// The seed's `type`.
    pub device_type: String,
    /// Current status.
    pub status: DeviceStatus,
    /// The seed's capabilities object.
    pub capabilities: serde_json::Value,
    /// Configuration sent to the device.
    pub config: serde_json::Value,
    /// The seed's training block.
    pub training: serde_json::Value,
    /// Seconds between heartbeats.
    pub update_interval: u32,
    /// The current certificate, PEM.
    pub certificate_pem: String,
    /// Its `notAfter`.
    #[serde(with = "time::serde::rfc3339")]
    pub certificate_expiry: OffsetDateTime,
    /// The server's ML-KEM-768 encapsulation key for this device.
    #[serde(skip)]
    pub kem_public: Vec<u8>,
    /// The current key version.
    pub key_version: u32,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last heartbeat.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
    /// When a key rotation was asked for and not yet done.
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotation_requested_at: Option<OffsetDateTime>,
    /// Deregistration time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// One key version of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceKeyRecord {
    /// The device.
    pub device_id: String,
    /// 1, 2, …
    pub version: u32,
    /// Ed25519 public key (request signing).
    pub ed25519_public: Vec<u8>,
    /// The device's ML-KEM-768 encapsulation key.
    pub kem_public: Vec<u8>,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the next version replaced it.
    #[serde(with = "time::serde::rfc3339::option")]
    pub superseded_at: Option<OffsetDateTime>,
}

/// What a signed request needs: the device (even deregistered), the sealed ML-KEM seed and
/// the key of the version the request names.
#[derive(Clone, PartialEq)]
pub struct DeviceAuth {
    /// The device.
    pub device: Device,
    /// The server's ML-KEM seed for it, sealed.
    pub kem_sealed: Vec<u8>,
    /// The key of the requested version, if the device has one.
    pub key: Option<DeviceKeyRecord>,
}

impl std::fmt::Debug for DeviceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuth")
            .field("device", &self.device.id)
            .field("key", &self.key.as_ref().map(|k| k.version))
            .finish_non_exhaustive()
    }
}

/// A device the offline sweep turned offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WentOffline {
    /// `dev_…`.
    pub id: String,
    /// The organization.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// Last heartbeat.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen: Option<OffsetDateTime>,
}

/// What `PUT /devices/{id}` may change; `None` keeps the value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceUpdate {
    /// New name.
    pub name: Option<String>,
    /// New configuration object.
    pub config: Option<serde_json::Value>,
    /// New heartbeat interval.
    pub update_interval: Option<u32>,
}

/// A new key version registered by the device.
#[derive(Debug, Clone, PartialEq)]
pub struct NewKeyVersion {
    /// The version being replaced (the request was signed with it).
    pub previous: u32,
    /// The new Ed25519 public key.
    pub ed25519_public: [u8; 32],
    /// The new ML-KEM-768 encapsulation key of the device.
    pub kem_public: Vec<u8>,
    /// The certificate for the new Ed25519 key.
    pub certificate_pem: String,
    /// Its `notAfter`.
    pub certificate_expiry: OffsetDateTime,
}

/// Counts of an organization's devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FleetCounts {
    /// Registered, not deregistered.
    pub total: u64,
    /// Online.
    pub online: u64,
    /// Training.
    pub training: u64,
    /// Offline.
    pub offline: u64,
    /// With a rotation asked for and not done.
    pub rotation_pending: u64,
}

macro_rules! device_cols {
    () => {
        "d.id, d.org_id, d.name, d.device_type, d.status, d.capabilities, d.config, d.training, \
         d.update_interval, d.certificate_pem, d.certificate_expiry, d.kem_public, d.key_version, \
         d.created_at, d.last_seen, d.rotation_requested_at, d.revoked_at"
    };
}
macro_rules! key_cols {
    () => {
        "k.device_id, k.version, k.ed25519_public, k.kem_public, k.created_at, k.superseded_at"
    };
}
macro_rules! token_cols {
    () => {
        "t.id, t.org_id, t.name_pattern, t.capabilities, t.created_by, t.created_at, \
         t.expires_at, t.used_at, t.device_id"
    };
}
macro_rules! device_filter {
    () => {
        " WHERE d.org_id = $1 AND d.revoked_at IS NULL AND ($2 IS NULL OR d.status = $2)"
    };
}

/// Audit actions shown by the security audit: keys, devices, enrollment, sign-ins, API keys
/// and memberships.
pub const SECURITY_AUDIT_PREFIXES: [&str; 6] = [
    "security.",
    "device.",
    "auth.",
    "api_key.",
    "member.",
    "enrollment_token.",
];

#[derive(sqlx::FromRow)]
struct CaRow {
    org_id: Uuid,
    cert_pem: String,
    key_sealed: Vec<u8>,
    pq_public: Vec<u8>,
    pq_sealed: Vec<u8>,
    created_at: Ts,
}

impl From<CaRow> for DeviceCa {
    fn from(r: CaRow) -> Self {
        DeviceCa {
            org_id: r.org_id,
            cert_pem: r.cert_pem,
            key_sealed: r.key_sealed,
            pq_public: r.pq_public,
            pq_sealed: r.pq_sealed,
            created_at: r.created_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: Uuid,
    org_id: Uuid,
    name_pattern: Option<String>,
    capabilities: Option<Json<serde_json::Value>>,
    created_by: Option<Uuid>,
    created_at: Ts,
    expires_at: Ts,
    used_at: Option<Ts>,
    device_id: Option<String>,
}

impl From<TokenRow> for EnrollmentToken {
    fn from(r: TokenRow) -> Self {
        EnrollmentToken {
            id: r.id,
            org_id: r.org_id,
            name_pattern: r.name_pattern,
            capabilities: r.capabilities.map(|j| j.0),
            created_by: r.created_by,
            created_at: r.created_at.0,
            expires_at: r.expires_at.0,
            used_at: r.used_at.map(|t| t.0),
            device_id: r.device_id,
        }
    }
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    id: String,
    org_id: Uuid,
    name: String,
    device_type: String,
    status: String,
    capabilities: Json<serde_json::Value>,
    config: Json<serde_json::Value>,
    training: Json<serde_json::Value>,
    update_interval: i64,
    certificate_pem: String,
    certificate_expiry: Ts,
    kem_public: Vec<u8>,
    key_version: i64,
    created_at: Ts,
    last_seen: Option<Ts>,
    rotation_requested_at: Option<Ts>,
    revoked_at: Option<Ts>,
}

fn small(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl TryFrom<DeviceRow> for Device {
    type Error = StoreError;
    fn try_from(r: DeviceRow) -> Result<Self, StoreError> {
        Ok(Device {
            status: DeviceStatus::parse(&r.status)
                .ok_or_else(|| StoreError::internal("stored device status is not known"))?,
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            device_type: r.device_type,
            capabilities: r.capabilities.0,
            config: r.config.0,
            training: r.training.0,
            update_interval: small(r.update_interval),
            certificate_pem: r.certificate_pem,
            certificate_expiry: r.certificate_expiry.0,
            kem_public: r.kem_public,
            key_version: small(r.key_version),
            created_at: r.created_at.0,
            last_seen: r.last_seen.map(|t| t.0),
            rotation_requested_at: r.rotation_requested_at.map(|t| t.0),
            revoked_at: r.revoked_at.map(|t| t.0),
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    device_id: String,
    version: i64,
    ed25519_public: Vec<u8>,
    kem_public: Vec<u8>,
    created_at: Ts,
    superseded_at: Option<Ts>,
}

impl From<KeyRow> for DeviceKeyRecord {
    fn from(r: KeyRow) -> Self {
        DeviceKeyRecord {
            device_id: r.device_id,
            version: small(r.version),
            ed25519_public: r.ed25519_public,
            kem_public: r.kem_public,
            created_at: r.created_at.0,
            superseded_at: r.superseded_at.map(|t| t.0),
        }
    }
}

#[derive(sqlx::FromRow)]
struct OfflineRow {
    id: String,
    org_id: Uuid,
    name: String,
    last_seen: Option<Ts>,
}

fn cap_json(field: &str, v: &serde_json::Value) -> Result<(), StoreError> {
    let len = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
    if !v.is_object() || len > 16 * 1024 {
        return Err(StoreError::invalid(
            field,
            "must be a JSON object of at most 16 KiB",
        ));
    }
    Ok(())
}

impl Store {
    /// The organization's device CA, if it has one.
    pub async fn get_device_ca(&self, org: Uuid) -> Result<Option<DeviceCa>, StoreError> {
        let sql = "SELECT org_id, cert_pem, key_sealed, pq_public, pq_sealed, created_at \
                   FROM device_cas WHERE org_id = $1";
        let row: Option<CaRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql).bind(org).fetch_optional(pool).await
        })?;
        Ok(row.map(DeviceCa::from))
    }

    /// Stores `ca` unless the organization has one already; returns the one that stays
    /// (two processes racing keep the first). Audit: `security.device_ca_created` when new.
    pub async fn ensure_device_ca(&self, ca: DeviceCa) -> Result<DeviceCa, StoreError> {
        let at = now();
        let insert = "INSERT INTO device_cas \
             (org_id, cert_pem, key_sealed, pq_public, pq_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id) DO NOTHING";
        let ctx = AuditContext {
            org_id: Some(ca.org_id),
            ..AuditContext::system()
        };
        let audit = AuditEntry {
            org_id: Some(ca.org_id),
            ctx: &ctx,
            action: "security.device_ca_created",
            target_type: "organization",
            target_id: Some(ca.org_id.to_string()),
            details: json!({ "algorithm": "Ed25519", "pq_signing_algorithm": "FN-DSA-512" }),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(insert)
                .bind(ca.org_id)
                .bind(&ca.cert_pem)
                .bind(&ca.key_sealed)
                .bind(&ca.pq_public)
                .bind(&ca.pq_sealed)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                insert_audit!(&mut *tx, &audit)?;
            }
            tx.commit().await?;
        });
        self.get_device_ca(ca.org_id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Stores a new enrollment token. Audit: `enrollment_token.create`.
    pub async fn create_enrollment_token(
        &self,
        ctx: &AuditContext,
        t: NewEnrollmentToken,
    ) -> Result<EnrollmentToken, StoreError> {
        if let Some(c) = &t.capabilities {
            cap_json("capabilities", c)?;
        }
        if let Some(p) = &t.name_pattern {
            if p.is_empty() || p.chars().count() > 200 {
                return Err(StoreError::invalid(
                    "device_name_pattern",
                    "must be 1 to 200 characters",
                ));
            }
        }
        let token = EnrollmentToken {
            id: Uuid::now_v7(),
            org_id: t.org_id,
            name_pattern: t.name_pattern,
            capabilities: t.capabilities,
            created_by: t.created_by,
            created_at: now(),
            expires_at: checked_time("expires_at", t.expires_at)?,
            used_at: None,
            device_id: None,
        };
        let audit = AuditEntry {
            org_id: Some(token.org_id),
            ctx,
            action: "enrollment_token.create",
            target_type: "enrollment_token",
            target_id: Some(token.id.to_string()),
            details: json!({
                "expires_at": token.expires_at.format(&time::format_description::well_known::Rfc3339).ok(),
                "device_name_pattern": token.name_pattern,
            }),
            at: token.created_at,
        };
        let insert = "INSERT INTO device_enrollment_tokens \
             (id, org_id, token_hash, name_pattern, capabilities, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(insert)
                .bind(token.id)
                .bind(token.org_id)
                .bind(&t.hash[..])
                .bind(token.name_pattern.as_deref())
                .bind(token.capabilities.as_ref().map(Json))
                .bind(token.created_by)
                .bind(Ts(token.created_at))
                .bind(Ts(token.expires_at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(token)
    }

    /// The token with this SHA-256, used or not, expired or not.
    pub async fn find_enrollment_token(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<EnrollmentToken>, StoreError> {
        let sql = concat!(
            "SELECT ",
            token_cols!(),
            " FROM device_enrollment_tokens t WHERE t.token_hash = $1"
        );
        let row: Option<TokenRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(&hash[..])
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(EnrollmentToken::from))
    }

    /// The organization's tokens, oldest first.
    pub async fn list_enrollment_tokens(
        &self,
        org: Uuid,
        page: PageRequest,
    ) -> Result<Page<EnrollmentToken>, StoreError> {
        let (total, rows): (i64, Vec<TokenRow>) = self
            .page_rows(
                "SELECT COUNT(*) FROM device_enrollment_tokens WHERE org_id = $1",
                const_format_tokens(),
                org,
                page,
            )
            .await?;
        Ok(page_of(
            rows.into_iter().map(EnrollmentToken::from).collect(),
            page,
            total,
        ))
    }

    /// Deletes an unused token of `org`. Audit: `enrollment_token.delete`.
    pub async fn delete_enrollment_token(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let at = now();
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "enrollment_token.delete",
            target_type: "enrollment_token",
            target_id: Some(id.to_string()),
            details: json!({}),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n =
                sqlx::query("DELETE FROM device_enrollment_tokens WHERE id = $1 AND org_id = $2")
                    .bind(id)
                    .bind(org)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Registers a device, consuming the token `token_hash` in the same transaction.
    /// Audit: `device.registered`. `Conflict("token")` when the token was used, expired or
    /// deleted since the caller looked at it.
    pub async fn register_device(
        &self,
        ctx: &AuditContext,
        token_hash: &[u8; 32],
        d_new: NewDevice,
    ) -> Result<Device, StoreError> {
        cap_json("capabilities", &d_new.capabilities)?;
        cap_json("config", &d_new.config)?;
        let at = now();
        let expiry = checked_time("certificate_expiry", d_new.certificate_expiry)?;
        let training =
            json!({"current_round": null, "total_rounds_completed": 0, "avg_training_time": null});
        let audit = AuditEntry {
            org_id: Some(d_new.org_id),
            ctx,
            action: "device.registered",
            target_type: "device",
            target_id: Some(d_new.id.clone()),
            details: json!({ "name": d_new.name, "type": d_new.device_type, "key_version": 1 }),
            at,
        };
        let consume = "UPDATE device_enrollment_tokens SET used_at = $2, device_id = $3 \
             WHERE token_hash = $1 AND org_id = $4 AND used_at IS NULL AND expires_at > $2";
        let insert = "INSERT INTO devices (id, org_id, name, device_type, status, capabilities, \
             config, training, update_interval, certificate_pem, certificate_expiry, kem_public, \
             kem_sealed, key_version, created_at, last_seen, offline_after) \
             VALUES ($1, $2, $3, $4, 'offline', $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, NULL, NULL)";
        let insert_key = "INSERT INTO device_keys \
             (device_id, version, ed25519_public, kem_public, created_at) VALUES ($1, $2, $3, $4, $5)";
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(consume)
                .bind(&token_hash[..])
                .bind(Ts(at))
                .bind(&d_new.id)
                .bind(d_new.org_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict("token".into()));
            }
            sqlx::query(insert)
                .bind(&d_new.id)
                .bind(d_new.org_id)
                .bind(&d_new.name)
                .bind(&d_new.device_type)
                .bind(Json(&d_new.capabilities))
                .bind(Json(&d_new.config))
                .bind(Json(&training))
                .bind(i64::from(d_new.update_interval))
                .bind(&d_new.certificate_pem)
                .bind(Ts(expiry))
                .bind(&d_new.kem_public)
                .bind(&d_new.kem_sealed)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            sqlx::query(insert_key)
                .bind(&d_new.id)
                .bind(1_i64)
                .bind(&d_new.ed25519_public[..])
                .bind(&d_new.device_kem_public)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        self.get_device(d_new.org_id, &d_new.id).await
    }

    /// The device `id` of `org`; `NotFound` for another organization's or a deregistered one.
    pub async fn get_device(&self, org: Uuid, id: &str) -> Result<Device, StoreError> {
        let sql = concat!(
            "SELECT ",
            device_cols!(),
            " FROM devices d WHERE d.id = $1 AND d.org_id = $2 AND d.revoked_at IS NULL"
        );
        let row: Option<DeviceRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// For a signed request: the device `id` (deregistered too), its sealed ML-KEM seed and
    /// its key `version`. `None` when there is no such device.
    pub async fn device_auth(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Option<DeviceAuth>, StoreError> {
        let sql = concat!(
            "SELECT ",
            device_cols!(),
            ", d.kem_sealed FROM devices d WHERE d.id = $1"
        );
        let key_sql = concat!(
            "SELECT ",
            key_cols!(),
            " FROM device_keys k WHERE k.device_id = $1 AND k.version = $2"
        );
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            device: DeviceRow,
            kem_sealed: Vec<u8>,
        }
        let (row, key): (Option<Row>, Option<KeyRow>) = on_pool!(self, |pool| {
            let row = sqlx::query_as(sql).bind(id).fetch_optional(pool).await?;
            let key = sqlx::query_as(key_sql)
                .bind(id)
                .bind(i64::from(version))
                .fetch_optional(pool)
                .await?;
            (row, key)
        });
        let Some(row) = row else { return Ok(None) };
        Ok(Some(DeviceAuth {
            device: row.device.try_into()?,
            kem_sealed: row.kem_sealed,
            key: key.map(DeviceKeyRecord::from),
        }))
    }

    /// The organization's devices (not deregistered), oldest first, optionally of one status.
    pub async fn list_devices(
        &self,
        org: Uuid,
        status: Option<DeviceStatus>,
        page: PageRequest,
    ) -> Result<Page<Device>, StoreError> {
        let (limit, offset) = page.limit_offset()?;
        let count = concat!("SELECT COUNT(*) FROM devices d", device_filter!());
        let list = concat!(
            "SELECT ",
            device_cols!(),
            " FROM devices d",
            device_filter!(),
            " ORDER BY d.created_at, d.id LIMIT $3 OFFSET $4"
        );
        let status = status.map(DeviceStatus::as_str);
        let (total, rows): (i64, Vec<DeviceRow>) = on_pool!(self, |pool| {
            let total = sqlx::query_scalar(count)
                .bind(org)
                .bind(status)
                .fetch_one(pool)
                .await?;
            let rows = sqlx::query_as(list)
                .bind(org)
                .bind(status)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            (total, rows)
        });
        let items = rows
            .into_iter()
            .map(Device::try_from)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, page, total))
    }

    /// Changes a device's name, configuration or interval. Audit: `device.update`.
    pub async fn update_device(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: &str,
        u: DeviceUpdate,
    ) -> Result<Device, StoreError> {
        if let Some(c) = &u.config {
            cap_json("config", c)?;
        }
        let at = now();
        let mut changed = serde_json::Map::new();
        if let Some(n) = &u.name {
            changed.insert("name".into(), json!(n));
        }
        if let Some(i) = u.update_interval {
            changed.insert("update_interval".into(), json!(i));
        }
        if u.config.is_some() {
            changed.insert("config".into(), json!(true));
        }
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "device.update",
            target_type: "device",
            target_id: Some(id.to_string()),
            details: serde_json::Value::Object(changed),
            at,
        };
        let sql = "UPDATE devices SET name = COALESCE($3, name), config = COALESCE($4, config), \
             update_interval = COALESCE($5, update_interval) \
             WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL";
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(sql)
                .bind(id)
                .bind(org)
                .bind(u.name.as_deref())
                .bind(u.config.as_ref().map(Json))
                .bind(u.update_interval.map(i64::from))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        self.get_device(org, id).await
    }

    /// Deregisters a device: its certificate and keys stop working at once. Audit:
    /// `device.deregistered`.
    pub async fn revoke_device(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: &str,
    ) -> Result<(), StoreError> {
        let at = now();
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "device.deregistered",
            target_type: "device",
            target_id: Some(id.to_string()),
            details: json!({ "certificate_revoked": true }),
            at,
        };
        let sql = "UPDATE devices SET revoked_at = $3, status = 'offline', offline_after = NULL \
                   WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL";
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(sql)
                .bind(id)
                .bind(org)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records a heartbeat: the status, the time, and when the device counts as offline
    /// (`offline_after`). Optionally replaces the training block. Not audited.
    pub async fn record_heartbeat(
        &self,
        id: &str,
        status: DeviceStatus,
        at: OffsetDateTime,
        offline_after: OffsetDateTime,
        training: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE devices SET status = $2, last_seen = $3, offline_after = $4, \
                   training = COALESCE($5, training) WHERE id = $1 AND revoked_at IS NULL";
        let n = on_pool!(self, |pool| {
            sqlx::query(sql)
                .bind(id)
                .bind(status.as_str())
                .bind(Ts(checked_time("at", at)?))
                .bind(Ts(checked_time("offline_after", offline_after)?))
                .bind(training.map(Json))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Turns offline every device whose `offline_after` is before `now`, and returns them.
    /// One statement: a device is returned by exactly one caller, however many servers run
    /// the sweep at once.
    pub async fn mark_offline_due(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<WentOffline>, StoreError> {
        let sql = "UPDATE devices SET status = 'offline' \
                   WHERE status <> 'offline' AND revoked_at IS NULL AND offline_after < $1 \
                   RETURNING id, org_id, name, last_seen";
        let rows: Vec<OfflineRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(Ts(checked_time("now", now)?))
                .fetch_all(pool)
                .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| WentOffline {
                id: r.id,
                org_id: r.org_id,
                name: r.name,
                last_seen: r.last_seen.map(|t| t.0),
            })
            .collect())
    }

    /// Asks devices of `org` to rotate their keys at their next heartbeat: one device, or
    /// all. Returns the ids asked. Audit: `security.key_rotation_requested`.
    pub async fn request_key_rotation(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        device: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let at = now();
        let sql = "UPDATE devices SET rotation_requested_at = $3 \
                   WHERE org_id = $1 AND revoked_at IS NULL AND ($2 IS NULL OR id = $2) RETURNING id";
        let ids: Vec<String> = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let ids: Vec<String> = sqlx::query_scalar(sql)
                .bind(org)
                .bind(device)
                .bind(Ts(at))
                .fetch_all(&mut *tx)
                .await?;
            if device.is_some() && ids.is_empty() {
                return Err(StoreError::NotFound);
            }
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "security.key_rotation_requested",
                target_type: "device",
                target_id: device.map(str::to_string),
                details: json!({ "devices": ids.len(), "scope": if device.is_some() { "device" } else { "all" } }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            ids
        });
        Ok(ids)
    }

    /// Scheduled rotation: asks every device whose current key was made before `due_before`
    /// and that has no pending request. Returns `(device id, org)` pairs.
    pub async fn request_due_rotations(
        &self,
        due_before: OffsetDateTime,
    ) -> Result<Vec<(String, Uuid)>, StoreError> {
        let at = now();
        let sql = "UPDATE devices SET rotation_requested_at = $1 \
                   WHERE rotation_requested_at IS NULL AND revoked_at IS NULL AND id IN \
                   (SELECT k.device_id FROM device_keys k WHERE k.superseded_at IS NULL AND k.created_at <= $2) \
                   RETURNING id, org_id";
        let rows: Vec<(String, Uuid)> = on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(Ts(at))
                .bind(Ts(checked_time("due_before", due_before)?))
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }

    /// Registers key version `previous + 1` for device `id` with its new certificate; the
    /// previous version is marked superseded now (its grace starts). Fails with
    /// `Conflict("key_version")` when the device's current version is not `previous`.
    /// Audit: `security.key_rotated`.
    pub async fn rotate_device_key(
        &self,
        ctx: &AuditContext,
        id: &str,
        k: NewKeyVersion,
    ) -> Result<Device, StoreError> {
        let at = now();
        let expiry = checked_time("certificate_expiry", k.certificate_expiry)?;
        let next = k.previous + 1;
        let bump = "UPDATE devices SET key_version = $3, certificate_pem = $4, \
                    certificate_expiry = $5, rotation_requested_at = NULL \
                    WHERE id = $1 AND key_version = $2 AND revoked_at IS NULL";
        let supersede = "UPDATE device_keys SET superseded_at = $2 \
                         WHERE device_id = $1 AND superseded_at IS NULL";
        let insert_key = "INSERT INTO device_keys \
             (device_id, version, ed25519_public, kem_public, created_at) VALUES ($1, $2, $3, $4, $5)";
        let org: Uuid = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(bump)
                .bind(id)
                .bind(i64::from(k.previous))
                .bind(i64::from(next))
                .bind(&k.certificate_pem)
                .bind(Ts(expiry))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n != 1 {
                return Err(StoreError::Conflict("key_version".into()));
            }
            sqlx::query(supersede)
                .bind(id)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            sqlx::query(insert_key)
                .bind(id)
                .bind(i64::from(next))
                .bind(&k.ed25519_public[..])
                .bind(&k.kem_public)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            let org: Uuid = sqlx::query_scalar("SELECT org_id FROM devices WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "security.key_rotated",
                target_type: "device",
                target_id: Some(id.to_string()),
                details: json!({ "from_version": k.previous, "to_version": next }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            org
        });
        self.get_device(org, id).await
    }

    /// The key versions of the organization's devices (not deregistered), newest device
    /// key first within each device.
    pub async fn list_device_keys(
        &self,
        org: Uuid,
        page: PageRequest,
    ) -> Result<Page<DeviceKeyRecord>, StoreError> {
        let (total, rows): (i64, Vec<KeyRow>) = self
            .page_rows(
                "SELECT COUNT(*) FROM device_keys k JOIN devices d ON d.id = k.device_id \
                 WHERE d.org_id = $1 AND d.revoked_at IS NULL",
                const_format_keys(),
                org,
                page,
            )
            .await?;
        Ok(page_of(
            rows.into_iter().map(DeviceKeyRecord::from).collect(),
            page,
            total,
        ))
    }

    /// Counts of the organization's devices, and when its oldest current key was made.
    pub async fn fleet_counts(
        &self,
        org: Uuid,
    ) -> Result<(FleetCounts, Option<OffsetDateTime>), StoreError> {
        let sql = "SELECT status, COUNT(*), SUM(CASE WHEN rotation_requested_at IS NULL THEN 0 ELSE 1 END) \
                   FROM devices WHERE org_id = $1 AND revoked_at IS NULL GROUP BY status";
        let oldest_sql =
            "SELECT MIN(k.created_at) FROM device_keys k JOIN devices d ON d.id = k.device_id \
                   WHERE d.org_id = $1 AND d.revoked_at IS NULL AND k.superseded_at IS NULL";
        let (rows, oldest): (Vec<(String, i64, i64)>, Option<Ts>) = on_pool!(self, |pool| {
            let rows = sqlx::query_as(sql).bind(org).fetch_all(pool).await?;
            let oldest = sqlx::query_scalar(oldest_sql)
                .bind(org)
                .fetch_one(pool)
                .await?;
            (rows, oldest)
        });
        let mut c = FleetCounts::default();
        for (status, n, pending) in rows {
            let n = to_u64(n);
            c.total += n;
            c.rotation_pending += to_u64(pending);
            match DeviceStatus::parse(&status) {
                Some(DeviceStatus::Online) => c.online += n,
                Some(DeviceStatus::Training) => c.training += n,
                _ => c.offline += n,
            }
        }
        Ok((c, oldest.map(|t| t.0)))
    }

    /// The organization's security audit events (see [`SECURITY_AUDIT_PREFIXES`]), newest
    /// first.
    pub async fn list_security_audit(
        &self,
        org: Uuid,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let (total, rows): (i64, Vec<AuditRow>) = self
            .page_rows(
                const_format_audit_count(),
                const_format_audit_list(),
                org,
                page,
            )
            .await?;
        Ok(page_of(
            rows.into_iter().map(AuditRecord::from).collect(),
            page,
            total,
        ))
    }
}

macro_rules! security_where {
    () => {
        " FROM audit_log WHERE org_id = $1 AND (action LIKE 'security.%' OR action LIKE 'device.%' \
         OR action LIKE 'auth.%' OR action LIKE 'api_key.%' OR action LIKE 'member.%' \
         OR action LIKE 'enrollment_token.%')"
    };
}

fn const_format_audit_count() -> &'static str {
    concat!("SELECT COUNT(*)", security_where!())
}

fn const_format_audit_list() -> &'static str {
    concat!(
        "SELECT id, org_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, \
         request_id, details, created_at",
        security_where!(),
        " ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )
}

fn const_format_tokens() -> &'static str {
    concat!(
        "SELECT ",
        token_cols!(),
        " FROM device_enrollment_tokens t WHERE t.org_id = $1 \
         ORDER BY t.created_at, t.id LIMIT $2 OFFSET $3"
    )
}

fn const_format_keys() -> &'static str {
    concat!(
        "SELECT ",
        key_cols!(),
        " FROM device_keys k JOIN devices d ON d.id = k.device_id \
     WHERE d.org_id = $1 AND d.revoked_at IS NULL \
     ORDER BY d.created_at, d.id, k.version DESC LIMIT $2 OFFSET $3"
    )
}
