//! Which organization a request acts in: the `{org_id}` of the path, a key's own, or a
//! session's `X-Organization-Id` header or only membership.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderMap;
use uuid::Uuid;

use super::context::{OrgContext, Principal};
use super::ORG_HEADER;
use crate::error::ApiError;
use crate::state::AppState;

/// The `{org_id}` segment of the request path, when its route has one.
pub(crate) fn org_id_param(req: &Request) -> Option<&str> {
    let template = req.extensions().get::<MatchedPath>()?.as_str();
    let index = template.split('/').position(|s| s == "{org_id}")?;
    req.uri().path().split('/').nth(index)
}

/// The organization a request acts in.
pub(crate) async fn resolve_org(
    state: &AppState,
    principal: &Principal,
    path_org: Option<&str>,
    headers: &HeaderMap,
) -> Result<Option<OrgContext>, ApiError> {
    let store = state.store();
    let explicit = match path_org {
        Some(raw) => Some(
            Uuid::parse_str(raw)
                .map_err(|_| ApiError::invalid_field("org_id", "not a valid organization id"))?,
        ),
        None => match headers.get(&ORG_HEADER) {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| Uuid::parse_str(s.trim()).ok())
                    .ok_or_else(|| {
                        ApiError::invalid_field("X-Organization-Id", "not a valid organization id")
                    })?,
            ),
            None => None,
        },
    };
    let not_member = || ApiError::forbidden("You are not a member of this organization");
    match principal {
        Principal::ApiKey(k) => match explicit {
            Some(id) if id != k.organization.id => Err(not_member()),
            _ => Ok(Some(OrgContext {
                organization: k.organization.clone(),
                role: k.role,
            })),
        },
        Principal::Session { user, .. } => {
            let id = match explicit {
                Some(id) => id,
                None => {
                    let page = qrlp_store::PageRequest { page: 1, size: 2 };
                    let mine = store
                        .list_organizations_for_user(user.id, page)
                        .await
                        .map_err(crate::store_error)?;
                    return Ok(match mine.items.as_slice() {
                        [only] if mine.total == 1 => Some(OrgContext {
                            organization: only.organization.clone(),
                            role: only.role,
                        }),
                        _ => None,
                    });
                }
            };
            let role = store
                .get_role(id, user.id)
                .await
                .map_err(crate::store_error)?
                .ok_or_else(not_member)?;
            let organization = store.get_organization(id).await.map_err(|e| match e {
                qrlp_store::StoreError::NotFound => not_member(),
                e => crate::store_error(e),
            })?;
            Ok(Some(OrgContext { organization, role }))
        }
    }
}
