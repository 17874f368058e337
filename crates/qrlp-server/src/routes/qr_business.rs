//! The organization's business QR code (seed 004): its card, edited with `GET`/`PUT
//! .../qr-business`, and its image, a vCard 3.0 that phones import (defaults 500 px, Q).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use qrlp_config::{Color, EcLevel};
use qrlp_store::BusinessCard;
use qrlp_tracking::vcard::Card;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Auth;
use crate::authz::need;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Input;
use crate::qr::image::{image_response_named, safe_filename, IfNoneMatch};
use crate::qr::url::normalize_url;
use crate::routes::qr_codes::{image_spec, ImageQuery};
use crate::state::AppState;
use crate::store_error;

/// Quiet zone of the business code, in modules.
const BORDER: u32 = 4;

/// The business card.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusinessCardView {
    /// The organization.
    pub organization_id: Uuid,
    /// Display name (the organization's name until the card is saved).
    pub name: String,
    /// Telephone.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Web site.
    pub website: Option<String>,
    /// Postal address; may have several lines.
    pub address: Option<String>,
    /// Last change, RFC 3339; `null` when never saved.
    pub updated_at: Option<String>,
    /// The vCard 3.0 text the image encodes.
    pub vcard: String,
}

/// Body of `PUT .../qr-business`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutBusinessCard {
    /// Display name, 1 to 200 characters.
    pub name: String,
    /// Telephone: digits, spaces and `+ - ( ) . /`, at most 40 characters.
    pub phone: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Web site (the qr-api seed's URL rules).
    pub website: Option<String>,
    /// Postal address, at most 500 characters; line breaks allowed.
    pub address: Option<String>,
}

fn card_of(c: &BusinessCard) -> Card {
    Card {
        name: c.name.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
        website: c.website.clone(),
        address: c.address.clone(),
    }
}

async fn current(
    state: &AppState,
    org: &qrlp_store::Organization,
) -> Result<BusinessCard, ApiError> {
    Ok(state
        .store()
        .business_card(org.id)
        .await
        .map_err(store_error)?
        .unwrap_or_else(|| BusinessCard {
            name: org.name.clone(),
            ..BusinessCard::default()
        }))
}

fn view(org: Uuid, c: &BusinessCard) -> BusinessCardView {
    BusinessCardView {
        organization_id: org,
        name: c.name.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
        website: c.website.clone(),
        address: c.address.clone(),
        updated_at: c.updated_at.and_then(|t| t.format(&Rfc3339).ok()),
        vcard: card_of(c).to_vcard(),
    }
}

/// The business card.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-business",
    tag = "qr-codes",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The card", body = BusinessCardView),
        (status = 403, description = "Not a member of this organization", body = ErrorBody)
    )
)]
pub async fn get_business(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
) -> Result<Json<BusinessCardView>, ApiError> {
    let org = &auth.org()?.organization;
    let card = current(&state, org).await?;
    Ok(Json(view(org.id, &card)))
}

fn optional(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Replace the business card. The image changes with it (its `ETag` too).
#[utoipa::path(
    put,
    path = "/api/v1/organizations/{org_id}/qr-business",
    tag = "qr-codes",
    params(("org_id" = Uuid, Path, description = "Organization id")),
    request_body = PutBusinessCard,
    security(("api_key" = []), ("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The saved card", body = BusinessCardView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "The role does not allow it", body = ErrorBody)
    )
)]
pub async fn put_business(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesWrite>,
    Input(body): Input<PutBusinessCard>,
) -> Result<Json<BusinessCardView>, ApiError> {
    let org = auth.org()?.organization.id;
    let name = qrlp_store::valid_name("name", &body.name).map_err(store_error)?;
    let phone = optional(body.phone);
    if let Some(p) = &phone {
        let ok = p.chars().count() <= 40
            && p.chars().any(|c| c.is_ascii_digit())
            && p.chars()
                .all(|c| c.is_ascii_digit() || " +-().//".contains(c));
        if !ok {
            return Err(ApiError::invalid_field(
                "phone",
                "digits, spaces and + - ( ) . / only, at most 40 characters",
            ));
        }
    }
    let email = optional(body.email)
        .map(|e| qrlp_store::valid_email(&e))
        .transpose()
        .map_err(store_error)?;
    let website = optional(body.website)
        .map(|w| normalize_url(&w).map_err(|e| ApiError::invalid_field("website", e.message())))
        .transpose()?;
    let address = optional(body.address);
    if let Some(a) = &address {
        if a.chars().count() > 500 || a.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
            return Err(ApiError::invalid_field(
                "address",
                "at most 500 characters; line breaks are the only control characters allowed",
            ));
        }
    }
    let saved = state
        .store()
        .put_business_card(
            &auth.audit(),
            org,
            BusinessCard {
                name,
                phone,
                email,
                website,
                address,
                updated_at: None,
            },
        )
        .await
        .map_err(store_error)?;
    Ok(Json(view(org, &saved)))
}

/// The business code's image (seed 004): a vCard 3.0 of the card; same parameters, headers
/// and statuses as a tracked code's image, with defaults 500 px and Q for print.
#[utoipa::path(
    get,
    path = "/api/v1/organizations/{org_id}/qr-business/image",
    tag = "qr-codes",
    params(
        ("org_id" = Uuid, Path, description = "Organization id"),
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
            ("Content-Disposition" = String, description = "inline; filename=\"<name>.png\"")
        )),
        (status = 304, description = "Not modified"),
        (status = 400, description = "Invalid parameter", body = ErrorBody),
        (status = 403, description = "Another organization's path", body = ErrorBody)
    )
)]
pub async fn business_image(
    State(state): State<AppState>,
    auth: Auth<need::QrCodesRead>,
    if_none_match: IfNoneMatch,
    query: Result<Query<ImageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let spec = image_spec(query, 500, EcLevel::Q, (Color::BLACK, Color::WHITE), BORDER)?;
    let org = &auth.org()?.organization;
    let card = current(&state, org).await?;
    let payload = card_of(&card).to_vcard();
    let etag = spec.etag(&payload);
    let stem = safe_filename(&card.name);
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
