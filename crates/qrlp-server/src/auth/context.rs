//! What a protected handler knows: the principal, the organization and its role there,
//! where the request came from, and the [`Auth`] extractor that checks the permission the
//! handler declares.

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use qrlp_store::{Actor, ApiKey, AuditContext, Organization, Role, Session, User};
use uuid::Uuid;

use crate::authz::{role_grants, scopes_allow, Permission, Requirement};
use crate::client::ClientInfo;
use crate::error::ApiError;
use crate::request_id::RequestId;

/// An authenticated API key: the key, its organization and the role it acts with (its
/// creator's current role there).
#[derive(Debug)]
pub struct KeyPrincipal {
    /// The key (never its secret: only the hash is stored).
    pub key: ApiKey,
    /// The organization the key belongs to.
    pub organization: Organization,
    /// The role the key acts with.
    pub role: Role,
}

/// Who is making the request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// An API key.
    ApiKey(Arc<KeyPrincipal>),
    /// A logged-in user, by session cookie.
    Session {
        /// The user.
        user: User,
        /// The session.
        session: Session,
    },
}

impl Principal {
    /// The actor recorded in the audit log.
    pub fn actor(&self) -> Actor {
        match self {
            Principal::ApiKey(k) => Actor::ApiKey(k.key.id),
            Principal::Session { user, .. } => Actor::User(user.id),
        }
    }

    /// The user acting: the session's, or the key's creator.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Principal::ApiKey(k) => k.key.created_by,
            Principal::Session { user, .. } => Some(user.id),
        }
    }
}

/// The organization a request acts in and the principal's role there.
#[derive(Debug, Clone)]
pub struct OrgContext {
    /// The organization.
    pub organization: Organization,
    /// The principal's role in it.
    pub role: Role,
}

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    /// The client's IP address (behind a trusted proxy, the forwarded one).
    pub ip: Option<String>,
    /// The `User-Agent` header, at most 512 characters.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
}

impl RequestMeta {
    /// Reads the client's address (as [`ClientInfo`] derives it), user agent and current
    /// request id.
    pub fn of(parts_headers: &HeaderMap, client: &ClientInfo) -> RequestMeta {
        RequestMeta {
            ip: client.ip.map(|ip| ip.to_string()),
            user_agent: parts_headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(512).collect()),
            request_id: RequestId::current().map(|id| id.to_string()),
        }
    }

    /// An audit context for `actor` in `org`.
    pub fn audit(&self, org_id: Option<Uuid>, actor: Actor) -> AuditContext {
        AuditContext {
            org_id,
            actor,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Extractor: the TCP peer's address, when the server was started with connect info.
/// Behind a reverse proxy this is the proxy: use [`ClientInfo`] for the client.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// What a protected handler knows about the request's principal.
#[derive(Debug)]
pub struct AuthContext {
    /// Who.
    pub principal: Principal,
    /// In which organization, if one applies.
    pub org: Option<OrgContext>,
    /// From where.
    pub meta: RequestMeta,
}

impl AuthContext {
    /// Whether the principal holds `permission` in the request's organization.
    pub fn allows(&self, permission: Permission) -> bool {
        if !permission.needs_organization() {
            return match &self.principal {
                Principal::ApiKey(k) => scopes_allow(&k.key.scopes, permission),
                Principal::Session { .. } => true,
            };
        }
        let Some(org) = &self.org else { return false };
        if !role_grants(org.role, permission) {
            return false;
        }
        match &self.principal {
            Principal::ApiKey(k) => scopes_allow(&k.key.scopes, permission),
            Principal::Session { .. } => true,
        }
    }

    /// 403 unless the principal holds `permission`; 400 when no organization applies.
    ///
    /// # Errors
    /// As above.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if permission.needs_organization() && self.org.is_none() {
            return Err(no_organization());
        }
        if self.allows(permission) {
            return Ok(());
        }
        let role = self.org.as_ref().map_or("none", |o| o.role.as_str());
        Err(ApiError::forbidden(format!(
            "This needs the {permission} permission, which your role ({role}) or key scopes do not grant"
        ))
        .with_details(serde_json::json!({ "required": permission.scope(), "role": role })))
    }

    /// The organization of the request.
    ///
    /// # Errors
    /// 400 when none applies.
    pub fn org(&self) -> Result<&OrgContext, ApiError> {
        self.org.as_ref().ok_or_else(no_organization)
    }

    /// An audit context for a change in `org_id` (or the request's organization).
    pub fn audit(&self) -> AuditContext {
        self.meta.audit(
            self.org.as_ref().map(|o| o.organization.id),
            self.principal.actor(),
        )
    }
}

fn no_organization() -> ApiError {
    ApiError::invalid_field(
        "X-Organization-Id",
        "this route acts in one organization: send the X-Organization-Id header (you belong to several or none)",
    )
}

/// Extractor for protected handlers: the [`AuthContext`], after checking that the principal
/// holds `P`'s permission. The type parameter is the route's declared permission.
pub struct Auth<P: Requirement>(pub Arc<AuthContext>, PhantomData<P>);

impl<P: Requirement> std::ops::Deref for Auth<P> {
    type Target = AuthContext;

    fn deref(&self) -> &AuthContext {
        &self.0
    }
}

impl<P: Requirement, S: Send + Sync> FromRequestParts<S> for Auth<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = parts
            .extensions
            .get::<Arc<AuthContext>>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("Authentication required"))?;
        ctx.require(P::PERMISSION)?;
        Ok(Auth(ctx, PhantomData))
    }
}
