//! Tracked QR codes of an organization (issue 13, seed 004): create, list with totals,
//! get, change, archive and restore; the code's image; its analytics (timeline,
//! breakdown, CSV export); and the organization's tracking settings.
//!
//! Documented under `/api/v1/organizations/{org_id}/...`; the same handlers answer under
//! seed 004's `/api/organizations/{org_id}/...`. Another organization's code is 404; another
//! organization's path is 403 (see [`crate::auth`]).

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use qrlp_config::{Color, EcLevel, ImageFormat};
use qrlp_store::{
    NewQrCode, QrCodeChange, QrCodeWithStats, QrImageDefaults, QrUtm, StoreError, TrackingSettings,
};
use qrlp_tracking::timeline::{Period, Timeline};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz::need;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::qr::image::{image_response_named, safe_filename, IfNoneMatch, ImageSpec, Scale};
use crate::qr::messages;
use crate::qr::url::normalize_url;
use crate::state::AppState;
use crate::store_error;
use crate::views::{PageQuery, Pagination};

/// Default quiet zone of a tracked code, in modules (the four ISO/IEC 18004 asks for).
pub const DEFAULT_BORDER: u32 = 4;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// UTM parameters appended to the target at redirect time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UtmView {
    /// `utm_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// `utm_term`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// `utm_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl UtmView {
    fn into_store(self) -> Result<QrUtm, ApiError> {
        let check = |name: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
            match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
                Some(s) if s.chars().count() > 200 || s.chars().any(char::is_control) => {
                    Err(ApiError::invalid_field(
                        name,
                        "must be at most 200 characters, no control characters",
                    ))
                }
                other => Ok(other),
            }
        };
        Ok(QrUtm {
            source: check("utm.source", self.source)?,
            medium: check("utm.medium", self.medium)?,
            campaign: check("utm.campaign", self.campaign)?,
            term: check("utm.term", self.term)?,
            content: check("utm.content", self.content)?,
        })
    }

    fn of(u: &QrUtm) -> UtmView {
        UtmView {
            source: u.source.clone(),
            medium: u.medium.clone(),
            campaign: u.campaign.clone(),
            term: u.term.clone(),
            content: u.content.clone(),
        }
    }
}

/// How the code's image is drawn unless the image request says otherwise.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageDefaultsView {
    /// Dark modules.
    pub fill_color: String,
    /// Light modules and quiet zone.
    pub back_color: String,
    /// L, M, Q or H.
    pub error_correction: String,
    /// Quiet zone in modules.
    pub border: u32,
}

/// Scan totals of a code.
#[derive(Debug, Serialize, ToSchema)]
pub struct TotalsView {
    /// Scans (bots and previewers excluded).
    pub scans: u64,
    /// Visitors, each counted once per UTC day.
    pub unique_visitors: u64,
    /// Bot and link-previewer requests, counted apart.
    pub bots: u64,
    /// Time of the last scan, RFC 3339.
    pub last_scan_at: Option<String>,
}

/// Who changed the code last.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActorView {
    /// `user`, `api_key` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user's or key's id.
    pub id: Option<Uuid>,
}

/// A tracked QR code.
#[derive(Debug, Serialize, ToSchema)]
pub struct QrCodeView {
    /// UUID.
    pub id: Uuid,
    /// The organization.
    pub organization_id: Uuid,
    /// Display name.
    pub label: String,
    /// Where the short link redirects (editable; the image does not change).
    pub target_url: String,
    /// UTM parameters added at redirect time.
    pub utm: UtmView,
    /// Random slug of the short link.
    pub slug: String,
    /// The plain short link, `{public_base_url}/r/{slug}`.
    pub short_link: String,
    /// What the QR code encodes: the short link with the `?q` marker of QR scans.
    pub qr_content: String,
    /// Image defaults.
    pub image: ImageDefaultsView,
    /// Whether archived (the short link then answers 410).
    pub archived: bool,
    /// When archived.
    pub archived_at: Option<String>,
    /// Scan totals.
    pub totals: TotalsView,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Who changed it last.
    pub updated_by: ActorView,
}

impl QrCodeView {
    fn of(state: &AppState, c: &QrCodeWithStats) -> QrCodeView {
        let t = state.tracking();
        let code = &c.code;
        QrCodeView {
            id: code.id,
            organization_id: code.org_id,
            label: code.label.clone(),
            target_url: code.target_url.clone(),
            utm: UtmView::of(&code.utm),
            slug: code.slug.clone(),
            short_link: t.short_link(&code.slug),
            qr_content: t.qr_payload(&code.slug),
            image: ImageDefaultsView {
                fill_color: code.image.fill_color.clone(),
                back_color: code.image.back_color.clone(),
                error_correction: code.image.ecc.clone(),
                border: code.image.border,
            },
            archived: code.archived_at.is_some(),
            archived_at: code.archived_at.map(rfc3339),
            totals: TotalsView {
                scans: c.stats.scans,
                unique_visitors: c.stats.unique_visitors,
                bots: c.stats.bots,
                last_scan_at: c.stats.last_scan_at.map(rfc3339),
            },
            created_at: rfc3339(code.created_at),
            updated_at: rfc3339(code.updated_at),
            updated_by: ActorView {
                kind: code.updated_by.type_str().to_string(),
                id: code.updated_by.id(),
            },
        }
    }
}

/// A page of codes.
#[derive(Debug, Serialize, ToSchema)]
pub struct QrCodeList {
    /// The codes, oldest first, each with its totals.
    pub qr_codes: Vec<QrCodeView>,
    /// Page, size, total, pages.
    pub pagination: Pagination,
}

/// Body of `POST .../qr-codes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQrCode {
    /// Display name, 1 to 200 characters.
    pub label: String,
    /// Where the short link goes: the qr-api seed's URL rules (http or https, at most 2000
    /// characters, `https://` added when there is no scheme, fragment removed).
    pub target_url: String,
    /// UTM parameters to add at redirect time.
    pub utm: Option<UtmView>,
    /// Dark module colour, `#RGB`, `#RRGGBB` or `#RRGGBBAA` (default black).
    pub fill_color: Option<String>,
    /// Light module colour (default white).
    pub back_color: Option<String>,
    /// Default error correction of the image: L, M, Q or H (default M).
    pub error_correction: Option<String>,
    /// Quiet zone in modules, 1 to 10 (default 4).
    pub border: Option<u32>,
}

/// Body of `PATCH .../qr-codes/{qr_code_id}`: fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateQrCode {
    /// New display name.
    pub label: Option<String>,
    /// New target URL (same rules as on creation). The image stays the same.
    pub target_url: Option<String>,
    /// New UTM parameters (replace the old ones; `{}` removes them).
    pub utm: Option<UtmView>,
    /// New dark module colour.
    pub fill_color: Option<String>,
    /// New light module colour.
    pub back_color: Option<String>,
    /// New default error correction.
    pub error_correction: Option<String>,
    /// New quiet zone.
    pub border: Option<u32>,
}

fn target(url: &str) -> Result<String, ApiError> {
    normalize_url(url).map_err(|e| ApiError::invalid_input(e.message()))
}

fn colour(v: Option<&str>, default: &str) -> Result<String, ApiError> {
    match v {
        None => Ok(default.to_string()),
        Some(s) => s
            .parse::<Color>()
            .map(|c| c.to_string())
            .map_err(|_| ApiError::invalid_input(messages::INVALID_COLOR)),
    }
}

fn ecc(v: Option<&str>, default: &str) -> Result<String, ApiError> {
    match v {
        None => Ok(default.to_string()),
        Some(s) => s
            .parse::<EcLevel>()
            .map(|l| l.as_str().to_string())
            .map_err(|_| ApiError::invalid_input(messages::INVALID_ECC)),
    }
}

fn border(v: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match v {
        None => Ok(default),
        Some(b) if qrlp_config::limits::BORDER.contains(&b) => Ok(b),
        Some(_) => Err(ApiError::invalid_input(messages::BORDER_RANGE)),
    }
}

fn org_of<P: crate::authz::Requirement>(auth: &Auth<P>) -> Result<Uuid, ApiError> {
    Ok(auth.org()?.organization.id)
}

/// List the organization's tracked codes, with their totals.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-codes",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        PageQuery,
        ("include_archived" = Option<bool>, Query, description = "Include archived codes (default false)")
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "A page of codes", body = QrCodeList),
        (status = 403, description = "Not a member of this organization", body = ErrorBody)
    )
)]
pub async fn list_qr_codes(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
    Query(q): Query<ListQuery>,
) -> Result<Json<QrCodeList>, ApiError> {
    let page = PageQuery {
        page: q.page,
        size: q.size,
    }
    .request()?;
    let org = org_of(&auth)?;
    let result = state
        .store()
        .list_qr_codes(org, q.include_archived.unwrap_or(false), page)
        .await
        .map_err(store_error)?;
    Ok(Json(QrCodeList {
        qr_codes: result
            .items
            .iter()
            .map(|c| QrCodeView::of(&state, c))
            .collect(),
        pagination: Pagination::of(&result),
    }))
}

/// Query of the list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1 to 100.
    pub size: Option<u32>,
    /// Include archived codes.
    pub include_archived: Option<bool>,
}

/// Create a tracked code. It encodes `{public_base_url}/r/{slug}?q`; the slug is random.
#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/qr-codes",
    tag = "qr-codes",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = CreateQrCode,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 201, description = "Created", body = QrCodeView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody)
    )
)]
pub async fn create_qr_code(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesWrite>,
    Input(body): Input<CreateQrCode>,
) -> Result<(StatusCode, Json<QrCodeView>), ApiError> {
    let org = org_of(&auth)?;
    let label = qrlp_store::valid_name("label", &body.label).map_err(store_error)?;
    let target_url = target(&body.target_url)?;
    let utm = body.utm.unwrap_or_default().into_store()?;
    let image = QrImageDefaults {
        fill_color: colour(body.fill_color.as_deref(), "#000000")?,
        back_color: colour(body.back_color.as_deref(), "#ffffff")?,
        ecc: ecc(body.error_correction.as_deref(), "M")?,
        border: border(body.border, DEFAULT_BORDER)?,
    };
    // A clash of 59.5-bit slugs is all but impossible; draw again if it happens.
    let mut attempt = 0;
    let code = loop {
        attempt += 1;
        let slug = qrlp_tracking::slug::generate(|buf| {
            #[allow(clippy::expect_used)]
            getrandom::fill(buf).expect("the operating system's random source failed");
        });
        let made = state
            .store()
            .create_qr_code(
                &auth.audit(),
                NewQrCode {
                    org_id: org,
                    slug: slug.clone(),
                    label: label.clone(),
                    target_url: target_url.clone(),
                    utm: utm.clone(),
                    image: image.clone(),
                },
            )
            .await;
        match made {
            Err(StoreError::Conflict(f)) if f == "slug" && attempt < 5 => continue,
            other => break other.map_err(store_error)?,
        }
    };
    state.tracking().forget(&code.slug);
    let view = QrCodeView::of(
        &state,
        &QrCodeWithStats {
            code,
            stats: Default::default(),
        },
    );
    Ok((StatusCode::CREATED, Json(view)))
}

/// Get one code with its totals.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id")
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The code", body = QrCodeView),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn get_qr_code(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
    Path((_, id)): Path<(Uuid, Uuid)>,
) -> Result<Json<QrCodeView>, ApiError> {
    let org = org_of(&auth)?;
    let code = state
        .store()
        .get_qr_code(org, id)
        .await
        .map_err(store_error)?;
    Ok(Json(QrCodeView::of(&state, &code)))
}

/// Change a code: label, target, UTM parameters, image defaults. A new target takes effect
/// on the next scan on every server (within 1 s); the image does not change.
#[utoipa::path(
    patch,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id")
    ),
    request_body = UpdateQrCode,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The changed code", body = QrCodeView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn update_qr_code(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesWrite>,
    Path((_, id)): Path<(Uuid, Uuid)>,
    Input(body): Input<UpdateQrCode>,
) -> Result<Json<QrCodeView>, ApiError> {
    let org = org_of(&auth)?;
    let store = state.store();
    let current = store.qr_code(org, id).await.map_err(store_error)?;
    let image_changed = body.fill_color.is_some()
        || body.back_color.is_some()
        || body.error_correction.is_some()
        || body.border.is_some();
    let change = QrCodeChange {
        label: body.label,
        target_url: body.target_url.as_deref().map(target).transpose()?,
        utm: body.utm.map(UtmView::into_store).transpose()?,
        image: if image_changed {
            let old = &current.image;
            Some(QrImageDefaults {
                fill_color: colour(body.fill_color.as_deref(), &old.fill_color)?,
                back_color: colour(body.back_color.as_deref(), &old.back_color)?,
                ecc: ecc(body.error_correction.as_deref(), &old.ecc)?,
                border: border(body.border, old.border)?,
            })
        } else {
            None
        },
    };
    let code = store
        .update_qr_code(&auth.audit(), org, id, change)
        .await
        .map_err(store_error)?;
    state.tracking().forget(&code.slug);
    let with = store.get_qr_code(org, id).await.map_err(store_error)?;
    Ok(Json(QrCodeView::of(&state, &with)))
}

async fn set_archived(
    state: &AppState,
    auth: &crate::auth::AuthContext,
    id: Uuid,
    archived: bool,
) -> Result<Json<QrCodeView>, ApiError> {
    let org = auth.org()?.organization.id;
    let code = state
        .store()
        .set_qr_code_archived(&auth.audit(), org, id, archived)
        .await
        .map_err(store_error)?;
    state.tracking().forget(&code.slug);
    let with = state
        .store()
        .get_qr_code(org, id)
        .await
        .map_err(store_error)?;
    Ok(Json(QrCodeView::of(state, &with)))
}

/// Archive a code: its short link answers 410 from the next scan; its history stays.
#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/archive",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id")
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Archived (again: no change)", body = QrCodeView),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn archive_qr_code(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesWrite>,
    Path((_, id)): Path<(Uuid, Uuid)>,
) -> Result<Json<QrCodeView>, ApiError> {
    set_archived(&state, &auth, id, true).await
}

/// Restore an archived code: its short link redirects again.
#[utoipa::path(
    post,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/restore",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id")
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "Restored (again: no change)", body = QrCodeView),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn restore_qr_code(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesWrite>,
    Path((_, id)): Path<(Uuid, Uuid)>,
) -> Result<Json<QrCodeView>, ApiError> {
    set_archived(&state, &auth, id, false).await
}

/// Query of the image endpoints (seed 004).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// `png` or `svg` (default png).
    #[param(value_type = Option<String>)]
    pub format: Option<String>,
    /// Exact width and height in pixels, 100 to 2000 (default 300; 500 for the business
    /// code).
    #[param(value_type = Option<u32>, minimum = 100, maximum = 2000)]
    pub size: Option<String>,
    /// L, M, Q or H (default M, or the code's default; Q for the business code).
    #[param(value_type = Option<String>)]
    pub error_correction: Option<String>,
}

/// The spec of an image request: `default_size` and `default_ecc` when absent.
pub fn image_spec(
    query: Result<Query<ImageQuery>, QueryRejection>,
    default_size: u32,
    default_ecc: EcLevel,
    colours: (Color, Color),
    border: u32,
) -> Result<ImageSpec, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::invalid_input(messages::INVALID_QUERY))?;
    let format = match q.format.as_deref() {
        None => ImageFormat::Png,
        Some(f) => f
            .parse::<ImageFormat>()
            .map_err(|_| ApiError::invalid_input(messages::INVALID_FORMAT))?,
    };
    let size = match q.size.as_deref() {
        None => default_size,
        Some(s) => s
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| qrlp_config::limits::SIZE.contains(n))
            .ok_or_else(|| ApiError::invalid_input(messages::SIZE_RANGE))?,
    };
    let ecc = match q.error_correction.as_deref() {
        None => default_ecc,
        Some(e) => e
            .parse::<EcLevel>()
            .map_err(|_| ApiError::invalid_input(messages::INVALID_ECC))?,
    };
    Ok(ImageSpec {
        format,
        ecc,
        scale: Scale::Size(size),
        border,
        fill: colours.0,
        back: colours.1,
    })
}

/// The code's image (seed 004): PNG or SVG of exactly `size` pixels, with a strong `ETag`
/// (304 on `If-None-Match`), `Cache-Control: public, max-age=86400` and
/// `Content-Disposition: inline; filename="<label>.png"`. It encodes the short link, so it
/// stays the same when the target changes.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/image",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id"),
        ImageQuery,
        ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier response")
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The image", content(
            (Vec<u8> = "image/png"),
            (String = "image/svg+xml")
        ), headers(
            ("ETag" = String, description = "Strong entity tag"),
            ("Cache-Control" = String, description = "public, max-age=86400"),
            ("Content-Disposition" = String, description = "inline; filename=\"<label>.png\"")
        )),
        (status = 304, description = "Not modified"),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 403, description = "Another organization's path", body = ErrorBody),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn qr_code_image(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
    Path((_, id)): Path<(Uuid, Uuid)>,
    if_none_match: IfNoneMatch,
    query: Result<Query<ImageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let org = org_of(&auth)?;
    // Parameters first: a bad request is 400 whatever the id.
    let query = query.map_err(|_| ApiError::invalid_input(messages::INVALID_QUERY))?;
    image_spec(
        Ok(Query(query.0.clone())),
        300,
        EcLevel::M,
        (Color::BLACK, Color::WHITE),
        4,
    )?;
    let code = state.store().qr_code(org, id).await.map_err(store_error)?;
    let default_ecc = code.image.ecc.parse::<EcLevel>().unwrap_or(EcLevel::M);
    let colours = (
        code.image.fill_color.parse().unwrap_or(Color::BLACK),
        code.image.back_color.parse().unwrap_or(Color::WHITE),
    );
    let spec = image_spec(Ok(query), 300, default_ecc, colours, code.image.border)?;
    let payload = state.tracking().qr_payload(&code.slug);
    let etag = spec.etag(&payload);
    let stem = safe_filename(&code.label);
    image_response_named(
        &if_none_match,
        spec.format,
        etag,
        state.config().qr.cache_max_age_secs,
        Some(&stem),
        || {
            let image = spec.render(&payload)?;
            state.metrics().observe_qr(spec.format);
            Ok(image)
        },
    )
}

/// Query of the timeline.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// `7d`, `30d`, `90d` or `1y` (default 30d).
    pub period: Option<String>,
    /// IANA time zone of the days, e.g. `Europe/Paris` (default UTC).
    pub tz: Option<String>,
}

/// One day of a timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineDay {
    /// Local date, `YYYY-MM-DD`.
    pub date: String,
    /// Scans.
    pub scans: u64,
    /// Visitors whose first scan of their UTC day falls on this local day.
    pub unique_visitors: u64,
    /// Bot and previewer requests.
    pub bots: u64,
}

/// Scans per day.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineView {
    /// The code.
    pub qr_code_id: Uuid,
    /// The period asked for.
    pub period: String,
    /// The time zone of the days.
    pub tz: String,
    /// Every day of the period, oldest first, zeros included.
    pub days: Vec<TimelineDay>,
    /// Sums over the period.
    pub totals: TimelineTotals,
}

/// Sums of a timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineTotals {
    /// Scans.
    pub scans: u64,
    /// Sum of the daily unique visitors.
    pub unique_visitors: u64,
    /// Bot and previewer requests.
    pub bots: u64,
}

/// Scans and unique visitors per day over the last 7, 30 or 90 days or the last year,
/// today included, in UTC or the given time zone; days without scans are zeros.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/timeline",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id"),
        TimelineQuery
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The timeline", body = TimelineView),
        (status = 400, description = "Unknown period or time zone", body = ErrorBody),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn timeline(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
    Path((_, id)): Path<(Uuid, Uuid)>,
    query: Result<Query<TimelineQuery>, QueryRejection>,
) -> Result<Json<TimelineView>, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::invalid_input(messages::INVALID_QUERY))?;
    let period = match q.period.as_deref() {
        None => Period::Days30,
        Some(p) => Period::parse(p)
            .ok_or_else(|| ApiError::invalid_field("period", "must be 7d, 30d, 90d or 1y"))?,
    };
    let line = Timeline::new(
        period,
        q.tz.as_deref(),
        OffsetDateTime::now_utc().unix_timestamp(),
    )
    .map_err(|_| {
        ApiError::invalid_field("tz", "not a known IANA time zone, such as Europe/Paris")
    })?;
    let org = org_of(&auth)?;
    state.store().qr_code(org, id).await.map_err(store_error)?;
    let sums = state
        .store()
        .scan_days(id, line.boundaries())
        .await
        .map_err(store_error)?;
    let mut days: Vec<TimelineDay> = line
        .dates()
        .map(|date| TimelineDay {
            date,
            scans: 0,
            unique_visitors: 0,
            bots: 0,
        })
        .collect();
    let mut totals = TimelineTotals {
        scans: 0,
        unique_visitors: 0,
        bots: 0,
    };
    for (i, b) in sums {
        if let Some(d) = days.get_mut(i) {
            d.scans += b.scans;
            d.unique_visitors += b.visitors;
            d.bots += b.bots;
            totals.scans += b.scans;
            totals.unique_visitors += b.visitors;
            totals.bots += b.bots;
        }
    }
    Ok(Json(TimelineView {
        qr_code_id: id,
        period: period.as_str().to_string(),
        tz: line.zone_name().to_string(),
        days,
        totals,
    }))
}

/// Query of the breakdown.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakdownQuery {
    /// `7d`, `30d`, `90d`, `1y` (UTC days, today included) or `all` (default).
    pub period: Option<String>,
}

/// A value and its count.
#[derive(Debug, Serialize, ToSchema)]
pub struct Count {
    /// The value (`mobile`, `iOS`, `Safari`, `example.com`, `(direct)`...).
    pub value: String,
    /// Scans.
    pub count: u64,
}

/// Scans by dimension.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownView {
    /// The code.
    pub qr_code_id: Uuid,
    /// The period.
    pub period: String,
    /// Scans counted.
    pub scans: u64,
    /// Device classes: mobile, tablet, desktop, other, unknown.
    pub devices: Vec<Count>,
    /// Operating systems.
    pub os: Vec<Count>,
    /// Browsers.
    pub browsers: Vec<Count>,
    /// Top 10 referrer domains; `(direct)` when none was sent or kept.
    pub referrers: Vec<Count>,
    /// `qr` (the code was scanned) and `link` (the plain short link was opened).
    pub sources: Vec<Count>,
    /// Bot and previewer requests, not counted as scans.
    pub bots: BotsView,
}

/// Bots counted apart.
#[derive(Debug, Serialize, ToSchema)]
pub struct BotsView {
    /// All bot and previewer requests.
    pub total: u64,
    /// Top 10 by name.
    pub top: Vec<Count>,
}

/// Device classes, OS, browsers, top referrers, QR versus link, and bots.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/breakdown",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id"),
        BreakdownQuery
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The breakdown", body = BreakdownView),
        (status = 400, description = "Unknown period", body = ErrorBody),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn breakdown(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
    Path((_, id)): Path<(Uuid, Uuid)>,
    query: Result<Query<BreakdownQuery>, QueryRejection>,
) -> Result<Json<BreakdownView>, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::invalid_input(messages::INVALID_QUERY))?;
    let period = q.period.unwrap_or_else(|| "all".into());
    let today = qrlp_tracking::visitor::utc_day(OffsetDateTime::now_utc().unix_timestamp());
    let from_day = match period.as_str() {
        "all" => i64::MIN / 2,
        p => {
            let p = Period::parse(p).ok_or_else(|| {
                ApiError::invalid_field("period", "must be 7d, 30d, 90d, 1y or all")
            })?;
            today - p.days() + 1
        }
    };
    let org = org_of(&auth)?;
    state.store().qr_code(org, id).await.map_err(store_error)?;
    let rows = state
        .store()
        .scan_breakdown(id, from_day, today + 1)
        .await
        .map_err(store_error)?;
    let mut view = BreakdownView {
        qr_code_id: id,
        period,
        scans: 0,
        devices: Vec::new(),
        os: Vec::new(),
        browsers: Vec::new(),
        referrers: Vec::new(),
        sources: Vec::new(),
        bots: BotsView {
            total: 0,
            top: Vec::new(),
        },
    };
    for (dimension, value, count) in rows {
        let item = Count { value, count };
        match dimension.as_str() {
            "device" => {
                view.scans += count;
                view.devices.push(item);
            }
            "os" => view.os.push(item),
            "browser" => view.browsers.push(item),
            "referrer" if view.referrers.len() < 10 => view.referrers.push(item),
            "source" => view.sources.push(item),
            "bot" => {
                view.bots.total += count;
                if view.bots.top.len() < 10 {
                    view.bots.top.push(item);
                }
            }
            _ => {}
        }
    }
    Ok(Json(view))
}

/// Rows per page read for the CSV export.
const CSV_PAGE: u32 = 2_000;

/// A CSV field: quoted when it holds a comma, quote or line break; a leading `=`, `+`,
/// `-` or `@` (spreadsheet formulas) is prefixed with `'`.
fn csv_field(out: &mut String, v: &str) {
    let v = if v.starts_with(['=', '+', '-', '@']) {
        std::borrow::Cow::Owned(format!("'{v}"))
    } else {
        std::borrow::Cow::Borrowed(v)
    };
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&v.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&v);
    }
}

/// Every recorded scan of the code as CSV, oldest first, streamed page by page:
/// `scanned_at,address,device,os,browser,referrer,source,visitor,first_visit`. Addresses
/// are anonymised as stored (IPv4 /24, IPv6 /48); `visitor` is the salted daily hash.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/scans.csv",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
        ("qr_code_id" = Uuid, Path, description = "QR code id")
    ),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The scans", content_type = "text/csv", body = String),
        (status = 404, description = "No such code in this organization", body = ErrorBody)
    )
)]
pub async fn scans_csv(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
    Path((_, id)): Path<(Uuid, Uuid)>,
) -> Result<Response, ApiError> {
    let org = org_of(&auth)?;
    let code = state.store().qr_code(org, id).await.map_err(store_error)?;
    let store = state.store().clone();
    let header_line = Bytes::from_static(
        b"scanned_at,address,device,os,browser,referrer,source,visitor,first_visit\n",
    );
    // State: (cursor, finished). The first item is the header.
    let pages = futures_util::stream::unfold(
        (None::<(OffsetDateTime, Uuid)>, false),
        move |(cursor, done)| {
            let store = store.clone();
            async move {
                if done {
                    return None;
                }
                match store.scans_page(id, cursor, CSV_PAGE).await {
                    Err(e) => {
                        tracing::warn!(error = %e, "scan export stopped");
                        Some((Err(std::io::Error::other("database error")), (cursor, true)))
                    }
                    Ok(rows) => {
                        if rows.is_empty() {
                            return None;
                        }
                        let last = rows.last().map(|r| (r.at, r.id));
                        let finished = rows.len() < CSV_PAGE as usize;
                        let mut out = String::with_capacity(rows.len() * 120);
                        for r in &rows {
                            out.push_str(&rfc3339(r.at));
                            out.push(',');
                            csv_field(&mut out, &r.address);
                            out.push(',');
                            csv_field(&mut out, &r.device);
                            out.push(',');
                            csv_field(&mut out, &r.os);
                            out.push(',');
                            csv_field(&mut out, &r.browser);
                            out.push(',');
                            csv_field(&mut out, r.referrer.as_deref().unwrap_or(""));
                            out.push(',');
                            csv_field(&mut out, &r.source);
                            out.push(',');
                            out.push_str(&hex::encode(&r.visitor));
                            out.push(',');
                            out.push_str(if r.first_visit { "true" } else { "false" });
                            out.push('\n');
                        }
                        Some((Ok(Bytes::from(out)), (last, finished)))
                    }
                }
            }
        },
    );
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(header_line) }),
        pages,
    );
    let mut r = Body::from_stream(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!(
            "attachment; filename=\"{}-scans.csv\"",
            safe_filename(&code.label)
        ))
        .map_err(ApiError::internal)?,
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The organization's scan tracking settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingSettingsView {
    /// Record scans at all (default true). Off: redirects still work, nothing is recorded.
    pub tracking_enabled: bool,
    /// Keep the referrer's domain (default true).
    pub record_referrer: bool,
    /// Use the user agent: device, OS, browser, and in the visitor hash (default true).
    /// Bots are still recognised by it and counted apart; it is never stored.
    pub record_user_agent: bool,
}

impl From<TrackingSettings> for TrackingSettingsView {
    fn from(s: TrackingSettings) -> Self {
        TrackingSettingsView {
            tracking_enabled: s.tracking_enabled,
            record_referrer: s.record_referrer,
            record_user_agent: s.record_user_agent,
        }
    }
}

/// The organization's tracking settings (opt-outs).
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-tracking",
    tag = "qr-codes",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The settings", body = TrackingSettingsView),
        (status = 403, description = "Not a member of this organization", body = ErrorBody)
    )
)]
pub async fn get_tracking(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
) -> Result<Json<TrackingSettingsView>, ApiError> {
    let org = org_of(&auth)?;
    let s = state
        .store()
        .tracking_settings(org)
        .await
        .map_err(store_error)?;
    Ok(Json(s.into()))
}

/// Replace the organization's tracking settings; every server applies them within 1 s.
#[utoipa::path(
    put,
    path = "/api/v1/organizations/{org_id}/qr-tracking",
    tag = "qr-codes",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = TrackingSettingsView,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The new settings", body = TrackingSettingsView),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody)
    )
)]
pub async fn put_tracking(
    State(state): State<AppState>,
    auth: Auth<need::OrganizationWrite>,
    Input(body): Input<TrackingSettingsView>,
) -> Result<Json<TrackingSettingsView>, ApiError> {
    let org = org_of(&auth)?;
    let s = state
        .store()
        .set_tracking_settings(
            &auth.audit(),
            org,
            TrackingSettings {
                tracking_enabled: body.tracking_enabled,
                record_referrer: body.record_referrer,
                record_user_agent: body.record_user_agent,
            },
        )
        .await
        .map_err(store_error)?;
    state.tracking().forget_org(org);
    Ok(Json(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        let mut s = String::new();
        csv_field(&mut s, "a,b");
        s.push('|');
        csv_field(&mut s, "=cmd()");
        s.push('|');
        csv_field(&mut s, "say \"hi\"");
        assert_eq!(s, "\"a,b\"|'=cmd()|\"say \"\"hi\"\"\"");
    }
}
