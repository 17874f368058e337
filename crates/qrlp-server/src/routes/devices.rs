//! Seed 002's device management under `/api/v1`: enrollment tokens (admins), registration
//! (with a token), the organization's CA certificate, the devices API, and the signed
//! device endpoints: heartbeat, key rotation and the ML-KEM-768 key exchange.
//!
//! A device of another organization answers 404 `DEVICE_NOT_FOUND` on every route.
//! Errors use seed 002's shape ([`crate::fleet::FleetError`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use qrlp_fleet::ca::{ca_certificate, device_certificate, CaKey, DeviceCertRequest};
use qrlp_fleet::enroll;
use qrlp_fleet::pq::{self, KemKeyPair, PqSigner};
use qrlp_fleet::rotation::version_label;
use qrlp_fleet::signing::{verify_bytes, SignedHeaders};
use qrlp_ratelimit::Quota;
use qrlp_store::{
    AuditContext, Device, DeviceCa, DeviceStatus, DeviceUpdate, NewDevice, NewEnrollmentToken,
    NewKeyVersion, StoreError,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz::need;
use crate::fleet::{rfc3339, Channel, FleetError, SeedErrorBody};
use crate::state::AppState;
use crate::views::{PageQuery, Pagination};

// ----- views ------------------------------------------------------------------------------

/// A device in seed 002's shape.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
  "id": "dev_123456789", "name": "Edge Device 001", "type": "raspberry_pi", "status": "online",
  "organization_id": "0190f3b2-0000-7000-8000-000000000001", "last_seen": "2024-01-15T10:25:00Z",
  "capabilities": {"cpu_cores": 4, "memory_gb": 8, "storage_gb": 256, "gpu": false},
  "security": {"certificate_expiry": "2024-07-15T00:00:00Z", "quantum_key_version": "v2"},
  "training": {"current_round": 5, "total_rounds_completed": 127, "avg_training_time": 45.2}
}))]
pub struct DeviceView {
    /// `dev_…`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// The device type given at registration.
    #[serde(rename = "type")]
    pub device_type: String,
    /// `online`, `offline` or `training`.
    pub status: &'static str,
    /// The organization.
    pub organization_id: Uuid,
    /// Last heartbeat.
    pub last_seen: Option<String>,
    /// As reported at registration.
    #[schema(value_type = Object)]
    pub capabilities: serde_json::Value,
    /// Certificate and key state.
    pub security: DeviceSecurityView,
    /// Learning rounds.
    #[schema(value_type = Object)]
    pub training: serde_json::Value,
    /// Seconds between heartbeats.
    pub update_interval: u32,
    /// Configuration sent to the device.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
    /// Registration time.
    pub created_at: String,
}

/// The `security` block of a device.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceSecurityView {
    /// The certificate's `notAfter`.
    pub certificate_expiry: String,
    /// The current key version, `v1`, `v2`, ...
    pub quantum_key_version: String,
    /// Whether a key rotation was asked for and not yet done.
    pub rotation_pending: bool,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        DeviceView {
            id: d.id.clone(),
            name: d.name.clone(),
            device_type: d.device_type.clone(),
            status: d.status.as_str(),
            organization_id: d.org_id,
            last_seen: d.last_seen.map(rfc3339),
            capabilities: d.capabilities.clone(),
            security: DeviceSecurityView {
                certificate_expiry: rfc3339(d.certificate_expiry),
                quantum_key_version: version_label(d.key_version),
                rotation_pending: d.rotation_requested_at.is_some(),
            },
            training: d.training.clone(),
            update_interval: d.update_interval,
            config: d.config.clone(),
            created_at: rfc3339(d.created_at),
        }
    }
}

/// `GET /devices`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    /// This page.
    pub devices: Vec<DeviceView>,
    /// Paging.
    pub pagination: Pagination,
}

/// Query of `GET /devices`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DeviceQuery {
    /// Page number (default 1).
    pub page: Option<u32>,
    /// Page size, 1 to 100 (default 20).
    pub size: Option<u32>,
    /// `online`, `offline` or `training`.
    pub status: Option<String>,
    /// Organization id; only the caller's own organization has devices to show.
    pub organization: Option<String>,
}

// ----- enrollment tokens --------------------------------------------------------------------

/// Body of `POST /devices/enrollment-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    /// Lifetime in seconds, 60 to 31536000 (default `fleet.enrollment_token_ttl_secs`, 24 h).
    pub expires_in: Option<u64>,
    /// Glob (`*`, `?`) the device name must match, e.g. `gate-*`.
    pub device_name_pattern: Option<String>,
    /// Capability floors: numbers are minimums, other values must be equal.
    #[schema(value_type = Option<Object>)]
    pub capabilities: Option<serde_json::Value>,
}

/// An enrollment token (its secret only in the creation answer).
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentTokenView {
    /// Token record id.
    pub id: Uuid,
    /// `tok_…`: shown once, at creation; give it to the device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The organization devices enroll into.
    pub organization_id: Uuid,
    /// Expiry.
    pub expires_at: String,
    /// Name glob.
    pub device_name_pattern: Option<String>,
    /// Capability floors.
    #[schema(value_type = Option<Object>)]
    pub capabilities: Option<serde_json::Value>,
    /// When a device used it.
    pub used_at: Option<String>,
    /// The device that used it.
    pub device_id: Option<String>,
    /// Creation time.
    pub created_at: String,
}

impl From<&qrlp_store::EnrollmentToken> for EnrollmentTokenView {
    fn from(t: &qrlp_store::EnrollmentToken) -> Self {
        EnrollmentTokenView {
            id: t.id,
            token: None,
            organization_id: t.org_id,
            expires_at: rfc3339(t.expires_at),
            device_name_pattern: t.name_pattern.clone(),
            capabilities: t.capabilities.clone(),
            used_at: t.used_at.map(rfc3339),
            device_id: t.device_id.clone(),
            created_at: rfc3339(t.created_at),
        }
    }
}

/// `GET /devices/enrollment-tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentTokenList {
    /// This page.
    pub tokens: Vec<EnrollmentTokenView>,
    /// Paging.
    pub pagination: Pagination,
}

pub(crate) fn json_body<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, FleetError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        FleetError::validation(&field, e.into_inner())
    })
}

/// The organization's device CA, made on first use (sealed at rest).
async fn device_ca(state: &AppState, org: Uuid) -> Result<(DeviceCa, CaKey), FleetError> {
    let key = state.data_key();
    let ca = match state
        .store()
        .get_device_ca(org)
        .await
        .map_err(FleetError::store)?
    {
        Some(ca) => ca,
        None => {
            let ca_key = CaKey::generate();
            let pq = PqSigner::generate();
            let cert = ca_certificate(&org.to_string(), &ca_key, OffsetDateTime::now_utc())
                .map_err(FleetError::internal)?;
            state
                .store()
                .ensure_device_ca(DeviceCa {
                    org_id: org,
                    cert_pem: cert,
                    key_sealed: key.seal(ca_aad(org).as_bytes(), &ca_key.secret()[..]),
                    pq_public: pq.public_key().to_vec(),
                    pq_sealed: key.seal(pq_aad(org).as_bytes(), pq.secret()),
                    created_at: OffsetDateTime::now_utc(),
                })
                .await
                .map_err(FleetError::store)?
        }
    };
    let secret = key
        .open(ca_aad(org).as_bytes(), &ca.key_sealed)
        .map_err(FleetError::internal)?;
    let ca_key = CaKey::from_secret(&secret).map_err(FleetError::internal)?;
    Ok((ca, ca_key))
}

fn ca_aad(org: Uuid) -> String {
    format!("qrlp-device-ca:{org}")
}

fn pq_aad(org: Uuid) -> String {
    format!("qrlp-device-ca-fn-dsa:{org}")
}

pub(crate) fn kem_aad(device: &str) -> String {
    format!("qrlp-device-kem:{device}")
}

/// Create a single-use enrollment token (admins). The token is shown once.
#[utoipa::path(
    post,
    path = "/api/v1/devices/enrollment-tokens",
    tag = "devices",
    request_body = CreateEnrollmentToken,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created; `token` is shown this once", body = EnrollmentTokenView),
        (status = 403, description = "Needs devices:write", body = SeedErrorBody),
        (status = 422, description = "Invalid field", body = SeedErrorBody)
    )
)]
pub async fn create_enrollment_token(
    State(state): State<AppState>,
    auth: Auth<need::DevicesWrite>,
    body: Bytes,
) -> Result<(StatusCode, Json<EnrollmentTokenView>), FleetError> {
    let body: CreateEnrollmentToken = json_body(&body)?;
    let ttl = body
        .expires_in
        .unwrap_or(state.config().fleet.enrollment_token_ttl_secs);
    if !(60..=31_536_000).contains(&ttl) {
        return Err(FleetError::validation(
            "expires_in",
            "must be between 60 and 31536000 seconds",
        ));
    }
    if let Some(c) = &body.capabilities {
        if !c.is_object() {
            return Err(FleetError::validation("capabilities", "must be an object"));
        }
    }
    let org = auth.org()?.organization.id;
    device_ca(&state, org).await?;
    let token = enroll::generate_token();
    let stored = state
        .store()
        .create_enrollment_token(
            &auth.audit(),
            NewEnrollmentToken {
                org_id: org,
                hash: token.hash,
                name_pattern: body.device_name_pattern,
                capabilities: body.capabilities,
                created_by: auth.principal.user_id(),
                expires_at: OffsetDateTime::now_utc()
                    + time::Duration::seconds(i64::try_from(ttl).unwrap_or(i64::MAX)),
            },
        )
        .await
        .map_err(FleetError::store)?;
    let mut view = EnrollmentTokenView::from(&stored);
    view.token = Some(token.secret.clone());
    Ok((StatusCode::CREATED, Json(view)))
}

/// List the organization's enrollment tokens (never their secrets).
#[utoipa::path(
    get,
    path = "/api/v1/devices/enrollment-tokens",
    tag = "devices",
    params(PageQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses((status = 200, description = "The tokens", body = EnrollmentTokenList))
)]
pub async fn list_enrollment_tokens(
    State(state): State<AppState>,
    auth: Auth<need::DevicesWrite>,
    Query(q): Query<PageQuery>,
) -> Result<Json<EnrollmentTokenList>, FleetError> {
    let page = q.request()?;
    let org = auth.org()?.organization.id;
    let p = state
        .store()
        .list_enrollment_tokens(org, page)
        .await
        .map_err(FleetError::store)?;
    Ok(Json(EnrollmentTokenList {
        tokens: p.items.iter().map(EnrollmentTokenView::from).collect(),
        pagination: Pagination::of(&p),
    }))
}

/// Delete an enrollment token of the organization.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/enrollment-tokens/{token_id}",
    tag = "devices",
    params(("token_id" = Uuid, Path, description = "Token record id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such token in your organization", body = SeedErrorBody)
    )
)]
pub async fn delete_enrollment_token(
    State(state): State<AppState>,
    auth: Auth<need::DevicesWrite>,
    Path(token_id): Path<String>,
) -> Result<StatusCode, FleetError> {
    let id = Uuid::parse_str(&token_id).map_err(|_| FleetError::not_found("Enrollment token"))?;
    let org = auth.org()?.organization.id;
    state
        .store()
        .delete_enrollment_token(&auth.audit(), org, id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => FleetError::not_found("Enrollment token"),
            e => FleetError::store(e),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- registration -----------------------------------------------------------------------

/// Body of `POST /devices/register`: the seed's fields, plus the device's public keys and a
/// proof that it holds their private halves.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
  "enrollment_token": "tok_abcdef123456",
  "device_info": {"name": "Edge Device 002", "type": "raspberry_pi",
    "capabilities": {"cpu_cores": 4, "memory_gb": 4, "storage_gb": 64}},
  "organization_id": "0190f3b2-0000-7000-8000-000000000001",
  "public_keys": {"ed25519": "base64", "ml_kem_768": "base64"},
  "proof": "base64 Ed25519 signature of the enrollment proof"
}))]
pub struct RegisterDevice {
    /// The single-use token an admin created.
    pub enrollment_token: String,
    /// Name, type and capabilities.
    pub device_info: DeviceInfo,
    /// Optional; when given it must be the token's organization.
    pub organization_id: Option<String>,
    /// The device's public keys (base64): `ed25519` (32 bytes, signs its requests; the
    /// certificate is for it) and `ml_kem_768` (1,184 bytes, lets the server send it secrets).
    pub public_keys: PublicKeys,
    /// Base64 Ed25519 signature, by the new key, of the enrollment proof message
    /// (`docs/fleet.md`): proves possession and binds the keys to the token.
    pub proof: String,
}

/// The seed's `device_info`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeviceInfo {
    /// 1 to 200 characters.
    pub name: String,
    /// E.g. `raspberry_pi`; 1 to 64 characters.
    #[serde(rename = "type")]
    pub device_type: String,
    /// `cpu_cores`, `memory_gb`, `storage_gb`, `gpu`, ...
    #[schema(value_type = Object)]
    #[serde(default)]
    pub capabilities: serde_json::Value,
}

/// A device's public keys, base64.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PublicKeys {
    /// Ed25519, 32 bytes.
    pub ed25519: String,
    /// ML-KEM-768 encapsulation key, 1,184 bytes.
    pub ml_kem_768: String,
}

/// Answer of `POST /devices/register`, in the seed's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    /// `dev_…`.
    pub device_id: String,
    /// X.509 certificate (PEM) for the device's Ed25519 key, signed by the organization's
    /// device CA.
    pub certificate: String,
    /// The server's post-quantum public keys for this device.
    pub quantum_keys: QuantumKeys,
    /// What the device should do.
    pub config: DeviceConfigView,
    /// The CA certificate (PEM) that signed `certificate`.
    pub ca_certificate: String,
    /// `v1`.
    pub key_version: String,
}

/// The seed's `quantum_keys`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuantumKeys {
    /// Base64 ML-KEM-768 encapsulation key the server holds the private half of, one per
    /// device: the device encapsulates to it to agree a secret with the server
    /// (`POST /devices/{id}/key-exchange`).
    pub encryption_key: String,
    /// Base64 FN-DSA-512 public key of the organization: verifies what the server signs for
    /// devices (key-exchange confirmations).
    pub signing_key: String,
    /// `ML-KEM-768`.
    pub encryption_algorithm: &'static str,
    /// `FN-DSA-512`.
    pub signing_algorithm: &'static str,
}

/// The seed's `config`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceConfigView {
    /// Base URL of the server (`server.public_base_url`, else the request's host).
    pub server_endpoint: String,
    /// Seconds between heartbeats.
    pub update_interval: u32,
    /// Learning parameters.
    #[schema(value_type = Object)]
    pub training_config: serde_json::Value,
}

pub(crate) fn decode_b64(field: &str, s: &str, max: usize) -> Result<Vec<u8>, FleetError> {
    if s.len() > max * 2 {
        return Err(FleetError::validation(field, "too long"));
    }
    B64.decode(s.trim())
        .map_err(|_| FleetError::validation(field, "must be standard base64"))
}

fn server_endpoint(state: &AppState, headers: &HeaderMap) -> String {
    let base = &state.config().server.public_base_url;
    if !base.is_empty() {
        return base.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{}:{}",
                state.config().server.host,
                state.config().server.port
            )
        });
    format!("http://{host}")
}

fn default_training_config() -> serde_json::Value {
    serde_json::json!({"batch_size": 32, "learning_rate": 0.001})
}

/// Register a device with an enrollment token. The device made its own keys: only their
/// public halves come here, and no private key is ever returned.
#[utoipa::path(
    post,
    path = "/api/v1/devices/register",
    tag = "devices",
    request_body = RegisterDevice,
    responses(
        (status = 201, description = "Registered", body = Registered),
        (status = 400, description = "`ENROLLMENT_TOKEN_EXPIRED`, or `INVALID_QUANTUM_KEY`", body = SeedErrorBody),
        (status = 401, description = "`INVALID_TOKEN`: unknown, used or another organization's token, or a proof that does not verify", body = SeedErrorBody),
        (status = 422, description = "Invalid field", body = SeedErrorBody)
    )
)]
pub async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Registered>), FleetError> {
    let req: RegisterDevice = json_body(&body)?;
    let invalid = |why: &'static str| {
        FleetError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "Enrollment token is invalid or already used",
        )
        .with("reason", why)
    };
    if !enroll::looks_like_token(&req.enrollment_token) {
        return Err(invalid("unknown"));
    }
    let name = req.device_info.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(FleetError::validation(
            "device_info.name",
            "must be 1 to 200 characters",
        ));
    }
    let dtype = req.device_info.device_type.trim().to_string();
    if dtype.is_empty() || dtype.len() > 64 || dtype.chars().any(char::is_control) {
        return Err(FleetError::validation(
            "device_info.type",
            "must be 1 to 64 characters",
        ));
    }
    let capabilities = match &req.device_info.capabilities {
        serde_json::Value::Null => serde_json::json!({}),
        c @ serde_json::Value::Object(_) => c.clone(),
        _ => {
            return Err(FleetError::validation(
                "device_info.capabilities",
                "must be an object",
            ))
        }
    };
    let hash = enroll::hash_token(&req.enrollment_token);
    let token = state
        .store()
        .find_enrollment_token(&hash)
        .await
        .map_err(FleetError::store)?
        .ok_or_else(|| invalid("unknown"))?;
    if token.used_at.is_some() {
        return Err(invalid("used"));
    }
    if let Some(org) = &req.organization_id {
        if org.trim() != token.org_id.to_string() {
            return Err(invalid("organization_mismatch"));
        }
    }
    let now = OffsetDateTime::now_utc();
    if token.expires_at <= now {
        return Err(FleetError::new(
            StatusCode::BAD_REQUEST,
            "ENROLLMENT_TOKEN_EXPIRED",
            "Device enrollment token expired",
        )
        .with("expired_at", rfc3339(token.expires_at)));
    }
    if let Some(p) = &token.name_pattern {
        if !enroll::name_matches(p, &name) {
            return Err(FleetError::validation(
                "device_info.name",
                format!("must match the token's pattern {p:?}"),
            ));
        }
    }
    if let Some(req_caps) = &token.capabilities {
        enroll::capabilities_satisfy(req_caps, &capabilities)
            .map_err(|m| FleetError::validation("device_info.capabilities", m))?;
    }
    let ed = decode_b64("public_keys.ed25519", &req.public_keys.ed25519, 64)?;
    let ed: [u8; 32] = ed
        .as_slice()
        .try_into()
        .ok()
        .filter(qrlp_fleet::signing::valid_public_key)
        .ok_or_else(|| {
            FleetError::validation(
                "public_keys.ed25519",
                "must be a 32-byte Ed25519 public key",
            )
        })?;
    let device_kem = decode_b64("public_keys.ml_kem_768", &req.public_keys.ml_kem_768, 2048)?;
    pq::check_kem_public_key(&device_kem).map_err(|_| {
        FleetError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUANTUM_KEY",
            "public_keys.ml_kem_768 is not an ML-KEM-768 encapsulation key",
        )
        .with("field", "public_keys.ml_kem_768")
    })?;
    let proof = decode_b64("proof", &req.proof, 128)?;
    let msg = enroll::enrollment_proof_message(&req.enrollment_token, &ed, &device_kem);
    if !verify_bytes(&ed, &msg, &proof) {
        return Err(invalid("proof_of_possession"));
    }

    let org = token.org_id;
    let (ca, ca_key) = device_ca(&state, org).await?;
    let device_id = enroll::new_device_id();
    let days = i64::from(state.config().fleet.certificate_days);
    let not_after = now + time::Duration::days(days);
    let cert = device_certificate(
        &ca_key,
        &DeviceCertRequest {
            org_id: &org.to_string(),
            device_id: &device_id,
            device_public_key: ed,
            not_before: now - time::Duration::minutes(5),
            not_after,
        },
    )
    .map_err(FleetError::internal)?;
    let server_kem = KemKeyPair::generate();
    let kem_public = server_kem.public_key();
    let interval = state.config().fleet.update_interval_secs;
    let ctx = AuditContext {
        org_id: Some(org),
        ..AuditContext::system()
    };
    let device = state
        .store()
        .register_device(
            &ctx,
            &hash,
            NewDevice {
                id: device_id.clone(),
                org_id: org,
                name: name.clone(),
                device_type: dtype,
                capabilities,
                config: serde_json::json!({ "training_config": default_training_config() }),
                update_interval: interval,
                certificate_pem: cert.clone(),
                certificate_expiry: not_after,
                kem_sealed: state
                    .data_key()
                    .seal(kem_aad(&device_id).as_bytes(), server_kem.seed()),
                kem_public: kem_public.clone(),
                ed25519_public: ed,
                device_kem_public: device_kem,
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => invalid("used"),
            e => FleetError::store(e),
        })?;
    let fleet = state.fleet();
    fleet.publish(
        org,
        Some(&device_id),
        &[Channel::Dashboard, Channel::Security],
        "device_registered",
        serde_json::json!({"device_id": device_id, "device_name": name, "status": "offline"}),
    );
    fleet.log(
        "info",
        "devices",
        Some(org),
        format!("device {device_id} registered"),
    );
    crate::fleet_webhooks::emit(
        &state,
        org,
        "device.registered",
        serde_json::json!({"device_id": device_id, "organization_id": org, "device_name": name}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            device_id,
            certificate: cert,
            quantum_keys: QuantumKeys {
                encryption_key: B64.encode(&kem_public),
                signing_key: B64.encode(&ca.pq_public),
                encryption_algorithm: "ML-KEM-768",
                signing_algorithm: "FN-DSA-512",
            },
            config: DeviceConfigView {
                server_endpoint: server_endpoint(&state, &headers),
                update_interval: device.update_interval,
                training_config: device
                    .config
                    .get("training_config")
                    .cloned()
                    .unwrap_or_else(default_training_config),
            },
            ca_certificate: ca.cert_pem,
            key_version: version_label(1),
        }),
    ))
}

/// Query of `GET /devices/ca`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CaQuery {
    /// The organization whose device CA to return.
    pub organization_id: String,
}

/// The organization's device CA certificate (PEM), for anyone who must check a device's
/// certificate. Public: a CA certificate is not a secret.
#[utoipa::path(
    get,
    path = "/api/v1/devices/ca",
    tag = "devices",
    params(CaQuery),
    responses(
        (status = 200, description = "PEM", content_type = "application/x-pem-file", body = String),
        (status = 404, description = "The organization has no device CA yet", body = SeedErrorBody)
    )
)]
pub async fn get_ca(
    State(state): State<AppState>,
    Query(q): Query<CaQuery>,
) -> Result<Response, FleetError> {
    let org = Uuid::parse_str(q.organization_id.trim())
        .map_err(|_| FleetError::validation("organization_id", "must be an organization id"))?;
    let ca = state
        .store()
        .get_device_ca(org)
        .await
        .map_err(FleetError::store)?
        .ok_or_else(|| FleetError::not_found("Device CA"))?;
    let mut r = ca.cert_pem.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-pem-file"),
    );
    Ok(r)
}

// ----- devices API ------------------------------------------------------------------------

/// List the organization's devices.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "devices",
    params(DeviceQuery),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "A page of devices", body = DeviceList),
        (status = 422, description = "Invalid parameter", body = SeedErrorBody)
    )
)]
pub async fn list_devices(
    State(state): State<AppState>,
    auth: Auth<need::DevicesRead>,
    Query(q): Query<DeviceQuery>,
) -> Result<Json<DeviceList>, FleetError> {
    let page = PageQuery {
        page: q.page,
        size: q.size,
    }
    .request()?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(DeviceStatus::parse(s).ok_or_else(|| {
            FleetError::validation("status", "must be online, offline or training")
        })?),
    };
    let org = auth.org()?.organization.id;
    if q.organization
        .as_deref()
        .is_some_and(|o| !o.is_empty() && o != org.to_string())
    {
        // Another organization's devices are not visible: an empty page.
        return Ok(Json(DeviceList {
            devices: Vec::new(),
            pagination: Pagination {
                page: page.page,
                size: page.size,
                total: 0,
                pages: 0,
            },
        }));
    }
    let p = state
        .store()
        .list_devices(org, status, page)
        .await
        .map_err(FleetError::store)?;
    Ok(Json(DeviceList {
        devices: p.items.iter().map(DeviceView::from).collect(),
        pagination: Pagination::of(&p),
    }))
}

fn not_found_as_device(id: &str) -> impl Fn(StoreError) -> FleetError + '_ {
    move |e| match e {
        StoreError::NotFound => FleetError::device_not_found(id),
        e => FleetError::store(e),
    }
}

/// Get one device.
#[utoipa::path(
    get,
    path = "/api/v1/devices/{device_id}",
    tag = "devices",
    params(("device_id" = String, Path, description = "`dev_…`")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 404, description = "`DEVICE_NOT_FOUND`", body = SeedErrorBody)
    )
)]
pub async fn get_device(
    State(state): State<AppState>,
    auth: Auth<need::DevicesRead>,
    Path(device_id): Path<String>,
) -> Result<Json<DeviceView>, FleetError> {
    let org = auth.org()?.organization.id;
    let d = state
        .store()
        .get_device(org, &device_id)
        .await
        .map_err(not_found_as_device(&device_id))?;
    Ok(Json(DeviceView::from(&d)))
}

/// Body of `PUT /devices/{device_id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevice {
    /// New name, 1 to 200 characters.
    pub name: Option<String>,
    /// Seconds between heartbeats, 1 to 86400.
    pub update_interval: Option<u32>,
    /// Learning parameters sent to the device.
    #[schema(value_type = Option<Object>)]
    pub training_config: Option<serde_json::Value>,
}

/// Update a device's configuration.
#[utoipa::path(
    put,
    path = "/api/v1/devices/{device_id}",
    tag = "devices",
    params(("device_id" = String, Path, description = "`dev_…`")),
    request_body = UpdateDevice,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The device", body = DeviceView),
        (status = 404, description = "`DEVICE_NOT_FOUND`", body = SeedErrorBody),
        (status = 422, description = "Invalid field", body = SeedErrorBody)
    )
)]
pub async fn update_device(
    State(state): State<AppState>,
    auth: Auth<need::DevicesWrite>,
    Path(device_id): Path<String>,
    body: Bytes,
) -> Result<Json<DeviceView>, FleetError> {
    let body: UpdateDevice = json_body(&body)?;
    let org = auth.org()?.organization.id;
    let current = state
        .store()
        .get_device(org, &device_id)
        .await
        .map_err(not_found_as_device(&device_id))?;
    if let Some(n) = &body.name {
        if n.trim().is_empty() || n.chars().count() > 200 {
            return Err(FleetError::validation(
                "name",
                "must be 1 to 200 characters",
            ));
        }
    }
    if let Some(i) = body.update_interval {
        if !(1..=86_400).contains(&i) {
            return Err(FleetError::validation(
                "update_interval",
                "must be between 1 and 86400",
            ));
        }
    }
    let config = match body.training_config {
        None => None,
        Some(tc @ serde_json::Value::Object(_)) => {
            let mut c = current.config.clone();
            if let Some(o) = c.as_object_mut() {
                o.insert("training_config".into(), tc);
            }
            Some(c)
        }
        Some(_) => {
            return Err(FleetError::validation(
                "training_config",
                "must be an object",
            ))
        }
    };
    let d = state
        .store()
        .update_device(
            &auth.audit(),
            org,
            &device_id,
            DeviceUpdate {
                name: body.name.map(|n| n.trim().to_string()),
                config,
                update_interval: body.update_interval,
            },
        )
        .await
        .map_err(not_found_as_device(&device_id))?;
    Ok(Json(DeviceView::from(&d)))
}

/// Deregister a device: its certificate is revoked and its next request refused.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{device_id}",
    tag = "devices",
    params(("device_id" = String, Path, description = "`dev_…`")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 204, description = "Deregistered"),
        (status = 404, description = "`DEVICE_NOT_FOUND`", body = SeedErrorBody)
    )
)]
pub async fn delete_device(
    State(state): State<AppState>,
    auth: Auth<need::DevicesWrite>,
    Path(device_id): Path<String>,
) -> Result<StatusCode, FleetError> {
    let org = auth.org()?.organization.id;
    state
        .store()
        .revoke_device(&auth.audit(), org, &device_id)
        .await
        .map_err(not_found_as_device(&device_id))?;
    let fleet = state.fleet();
    fleet.publish(
        org,
        Some(&device_id),
        &[Channel::Dashboard, Channel::Security],
        "device_deregistered",
        serde_json::json!({"device_id": device_id, "certificate_revoked": true}),
    );
    fleet.log(
        "info",
        "security",
        Some(org),
        format!("device {device_id} deregistered"),
    );
    Ok(StatusCode::NO_CONTENT)
}

// ----- signed device endpoints ------------------------------------------------------------

/// A signed device request, checked, rate-limited and tied to the path's device id.
async fn device_request(
    state: &AppState,
    device_id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(qrlp_store::DeviceAuth, SignedHeaders), FleetError> {
    let (auth, h) = signed_device_request(state, method, uri, headers, body).await?;
    if h.device_id != device_id {
        return Err(FleetError::new(
            StatusCode::FORBIDDEN,
            "INSUFFICIENT_PERMISSIONS",
            "A device may only act for itself",
        ));
    }
    Ok((auth, h))
}

/// A signed device request, checked and rate-limited per device (any device: the caller
/// decides what it may do).
pub(crate) async fn signed_device_request(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(qrlp_store::DeviceAuth, SignedHeaders), FleetError> {
    let id = state.fleet().identify(state, headers).await?;
    identified_device_request(state, id, method, uri, body).await
}

/// [`signed_device_request`] for a request already identified from its headers (a route
/// that reads a large body only after [`crate::fleet::Fleet::identify`]).
pub(crate) async fn identified_device_request(
    state: &AppState,
    id: crate::fleet::Identified,
    method: &Method,
    uri: &Uri,
    body: &[u8],
) -> Result<(qrlp_store::DeviceAuth, SignedHeaders), FleetError> {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let (auth, h) = state
        .fleet()
        .verify(state, id, method.as_str(), pq, body)
        .await?;
    let device_id = h.device_id.as_str();
    if let Some(limiter) = state.limiter() {
        let per_min = state.config().fleet.device_requests_per_minute;
        let quota = Quota::per_minute(per_min);
        match limiter
            .check(&format!("fleet-device:{device_id}"), quota)
            .await
        {
            Ok(d) if !d.allowed => {
                return Err(FleetError::quota(
                    per_min,
                    d.retry_after.unwrap_or(Duration::from_secs(1)),
                ))
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "device rate limit unavailable");
                return Err(FleetError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "Rate limiter unavailable; try again shortly",
                ));
            }
        }
    }
    Ok((auth, h))
}

/// Body of a heartbeat; every field optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// `online` (default) or `training`.
    pub status: Option<String>,
    /// Free-form health figures (`cpu_usage`, `memory_usage`, ...), at most 4 KiB.
    #[schema(value_type = Option<Object>)]
    pub metrics: Option<serde_json::Value>,
    /// The seed's training block (`current_round`, `total_rounds_completed`,
    /// `avg_training_time`).
    #[schema(value_type = Option<Object>)]
    pub training: Option<serde_json::Value>,
}

/// Answer of a heartbeat.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatAck {
    /// `dev_…`.
    pub device_id: String,
    /// The status recorded.
    pub status: &'static str,
    /// Seconds until the next heartbeat is due.
    pub update_interval: u32,
    /// The current key version.
    pub key_version: String,
    /// True when the device must rotate its keys now (`POST /devices/{id}/keys`).
    pub rotate_keys: bool,
    /// The server's clock.
    pub server_time: String,
}

/// Heartbeat of a device (signed request). Drives `online` / `training`; three missed
/// intervals make the device `offline`.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{device_id}/heartbeat",
    tag = "devices",
    params(("device_id" = String, Path, description = "`dev_…`")),
    request_body = Heartbeat,
    security(("device_signature" = [])),
    responses(
        (status = 200, description = "Recorded", body = HeartbeatAck),
        (status = 401, description = "`INVALID_TOKEN`: forged, stale, replayed, or revoked", body = SeedErrorBody),
        (status = 429, description = "`QUOTA_EXCEEDED`: over 100 requests per minute", body = SeedErrorBody)
    )
)]
pub async fn heartbeat(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HeartbeatAck>, FleetError> {
    let (auth, h) = device_request(&state, &device_id, &method, &uri, &headers, &body).await?;
    let hb: Heartbeat = if body.is_empty() {
        Heartbeat::default()
    } else {
        json_body(&body)?
    };
    let status = match hb.status.as_deref() {
        None | Some("online") => DeviceStatus::Online,
        Some("training") => DeviceStatus::Training,
        Some(_) => {
            return Err(FleetError::validation(
                "status",
                "must be online or training",
            ))
        }
    };
    for (field, v) in [("metrics", &hb.metrics), ("training", &hb.training)] {
        if let Some(v) = v {
            let len = serde_json::to_vec(v).map(|b| b.len()).unwrap_or(usize::MAX);
            if !v.is_object() || len > 4096 {
                return Err(FleetError::validation(
                    field,
                    "must be an object of at most 4 KiB",
                ));
            }
        }
    }
    let d = &auth.device;
    let now = OffsetDateTime::now_utc();
    let interval = d.update_interval.max(1);
    let offline_after = now + time::Duration::seconds(3 * i64::from(interval));
    state
        .store()
        .record_heartbeat(&d.id, status, now, offline_after, hb.training.as_ref())
        .await
        .map_err(not_found_as_device(&device_id))?;
    let fleet = state.fleet();
    fleet.publish(
        d.org_id,
        Some(&d.id),
        &[Channel::Dashboard],
        "device_heartbeat",
        serde_json::json!({
            "device_id": d.id, "status": status.as_str(), "last_seen": rfc3339(now),
            "key_version": version_label(h.key_version), "metrics": hb.metrics,
        }),
    );
    if d.status != status {
        fleet.publish(
            d.org_id,
            Some(&d.id),
            &[Channel::Dashboard],
            "device_status",
            serde_json::json!({
                "device_id": d.id, "status": status.as_str(), "previous_status": d.status.as_str(),
                "last_seen": rfc3339(now),
            }),
        );
        fleet.log(
            "info",
            "heartbeat",
            Some(d.org_id),
            format!(
                "device {} is {} (was {})",
                d.id,
                status.as_str(),
                d.status.as_str()
            ),
        );
    }
    Ok(Json(HeartbeatAck {
        device_id: d.id.clone(),
        status: status.as_str(),
        update_interval: interval,
        key_version: version_label(d.key_version),
        rotate_keys: d.rotation_requested_at.is_some(),
        server_time: rfc3339(now),
    }))
}

/// Body of `POST /devices/{device_id}/keys`: the device's next key version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeys {
    /// The new public keys.
    pub public_keys: PublicKeys,
    /// Base64 Ed25519 signature, by the *new* key, of the rotation proof message
    /// (`docs/fleet.md`).
    pub proof: String,
}

/// Answer of a key rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeysRotated {
    /// `dev_…`.
    pub device_id: String,
    /// The new version, e.g. `v2`.
    pub key_version: String,
    /// The certificate for the new Ed25519 key.
    pub certificate: String,
    /// Until when requests signed with the previous version are still accepted.
    pub previous_key_valid_until: String,
}

/// Register the device's next key version (signed with its current key). The previous
/// version stays valid for `fleet.rotation_grace_secs`.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{device_id}/keys",
    tag = "devices",
    params(("device_id" = String, Path, description = "`dev_…`")),
    request_body = RotateKeys,
    security(("device_signature" = [])),
    responses(
        (status = 201, description = "Rotated", body = KeysRotated),
        (status = 400, description = "`INVALID_QUANTUM_KEY`", body = SeedErrorBody),
        (status = 401, description = "`INVALID_TOKEN`", body = SeedErrorBody),
        (status = 409, description = "Not signed with the current key version", body = SeedErrorBody)
    )
)]
pub async fn rotate_keys(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<KeysRotated>), FleetError> {
    let (auth, h) = device_request(&state, &device_id, &method, &uri, &headers, &body).await?;
    let req: RotateKeys = json_body(&body)?;
    let d = &auth.device;
    if h.key_version != d.key_version {
        return Err(FleetError::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            "Rotate with the current key version",
        )
        .with("current_version", version_label(d.key_version)));
    }
    let ed = decode_b64("public_keys.ed25519", &req.public_keys.ed25519, 64)?;
    let ed: [u8; 32] = ed
        .as_slice()
        .try_into()
        .ok()
        .filter(qrlp_fleet::signing::valid_public_key)
        .ok_or_else(|| {
            FleetError::validation(
                "public_keys.ed25519",
                "must be a 32-byte Ed25519 public key",
            )
        })?;
    let kem = decode_b64("public_keys.ml_kem_768", &req.public_keys.ml_kem_768, 2048)?;
    pq::check_kem_public_key(&kem).map_err(|_| {
        FleetError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUANTUM_KEY",
            "public_keys.ml_kem_768 is not an ML-KEM-768 encapsulation key",
        )
    })?;
    let next = d.key_version + 1;
    let proof = decode_b64("proof", &req.proof, 128)?;
    if !verify_bytes(
        &ed,
        &enroll::rotation_proof_message(&d.id, next, &ed, &kem),
        &proof,
    ) {
        return Err(FleetError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "The proof of possession of the new key does not verify",
        )
        .with("reason", "proof_of_possession"));
    }
    let (_, ca_key) = device_ca(&state, d.org_id).await?;
    let now = OffsetDateTime::now_utc();
    let not_after = now + time::Duration::days(i64::from(state.config().fleet.certificate_days));
    let cert = device_certificate(
        &ca_key,
        &DeviceCertRequest {
            org_id: &d.org_id.to_string(),
            device_id: &d.id,
            device_public_key: ed,
            not_before: now - time::Duration::minutes(5),
            not_after,
        },
    )
    .map_err(FleetError::internal)?;
    let ctx = AuditContext {
        org_id: Some(d.org_id),
        ..AuditContext::system()
    };
    let updated = state
        .store()
        .rotate_device_key(
            &ctx,
            &d.id,
            NewKeyVersion {
                previous: d.key_version,
                ed25519_public: ed,
                kem_public: kem,
                certificate_pem: cert.clone(),
                certificate_expiry: not_after,
            },
        )
        .await
        .map_err(FleetError::store)?;
    let grace_until = now + state.fleet().policy().grace;
    let fleet = state.fleet();
    fleet.publish(
        d.org_id,
        Some(&d.id),
        &[Channel::Dashboard, Channel::Security],
        "key_rotated",
        serde_json::json!({
            "device_id": d.id, "key_version": version_label(next),
            "previous_version": version_label(d.key_version),
            "previous_key_valid_until": rfc3339(grace_until),
        }),
    );
    fleet.log(
        "info",
        "security",
        Some(d.org_id),
        format!("device {} rotated to key {}", d.id, version_label(next)),
    );
    crate::fleet_webhooks::emit(
        &state,
        d.org_id,
        "security.key_rotated",
        serde_json::json!({"device_id": d.id, "organization_id": d.org_id, "key_version": version_label(next)}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(KeysRotated {
            device_id: updated.id,
            key_version: version_label(updated.key_version),
            certificate: cert,
            previous_key_valid_until: rfc3339(grace_until),
        }),
    ))
}

/// Body of `POST /devices/{device_id}/key-exchange`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyExchange {
    /// Base64 ML-KEM-768 ciphertext (1,088 bytes) the device made by encapsulating to the
    /// `encryption_key` it received at registration.
    pub ciphertext: String,
}

/// Answer of the key exchange.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyExchanged {
    /// `ML-KEM-768`.
    pub algorithm: &'static str,
    /// Base64 HMAC-SHA256 key confirmation over the shared secret (`docs/fleet.md`); the
    /// device compares it with its own.
    pub confirmation: String,
    /// Base64 FN-DSA-512 signature of the organization over the confirmation; verify it
    /// with `quantum_keys.signing_key`.
    pub signature: String,
}

/// The ML-KEM-768 key exchange (signed request): the server decapsulates the device's
/// ciphertext with its private key for this device; both sides then hold the same secret,
/// which the confirmation proves without revealing it.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{device_id}/key-exchange",
    tag = "devices",
    params(("device_id" = String, Path, description = "`dev_…`")),
    request_body = KeyExchange,
    security(("device_signature" = [])),
    responses(
        (status = 200, description = "Decapsulated", body = KeyExchanged),
        (status = 400, description = "`INVALID_QUANTUM_KEY`: not an ML-KEM-768 ciphertext", body = SeedErrorBody),
        (status = 401, description = "`INVALID_TOKEN`", body = SeedErrorBody)
    )
)]
pub async fn key_exchange(
    State(state): State<AppState>,
    Path(device_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<KeyExchanged>, FleetError> {
    let (auth, _) = device_request(&state, &device_id, &method, &uri, &headers, &body).await?;
    let req: KeyExchange = json_body(&body)?;
    let ct = decode_b64("ciphertext", &req.ciphertext, 2048)?;
    let seed = state
        .data_key()
        .open(kem_aad(&device_id).as_bytes(), &auth.kem_sealed)
        .map_err(FleetError::internal)?;
    let kp = KemKeyPair::from_seed(&seed).map_err(FleetError::internal)?;
    let shared = kp.decapsulate(&ct).map_err(|_| {
        FleetError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_QUANTUM_KEY",
            "ciphertext is not an ML-KEM-768 ciphertext (1088 bytes)",
        )
    })?;
    let confirmation = pq::key_confirmation(&shared, &device_id, &ct);
    let ca = state
        .store()
        .get_device_ca(auth.device.org_id)
        .await
        .map_err(FleetError::store)?
        .ok_or_else(|| FleetError::internal("device without a CA"))?;
    let pq_secret = state
        .data_key()
        .open(pq_aad(auth.device.org_id).as_bytes(), &ca.pq_sealed)
        .map_err(FleetError::internal)?;
    let signer = PqSigner::from_secret(&pq_secret).map_err(FleetError::internal)?;
    let signature = signer
        .sign(&pq::confirmation_signed_message(&device_id, &confirmation))
        .map_err(FleetError::internal)?;
    Ok(Json(KeyExchanged {
        algorithm: "ML-KEM-768",
        confirmation: B64.encode(confirmation),
        signature: B64.encode(signature),
    }))
}
