//! The JSON shapes of the platform API: organizations, users, members, API keys, audit
//! records and pagination. They are built from the storage model, so that what is stored
//! and what is shown can change apart (an API key's hash, for one, is never shown).

use qrlp_store::{ApiKey, AuditRecord, Member, OrgWithRole, Organization, Page, User};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::ApiError;

/// RFC 3339 UTC text of a time.
pub fn ts(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `page` and `size` query parameters of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page number, from 1 (default 1).
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    pub size: Option<u32>,
}

impl PageQuery {
    /// The storage page request.
    ///
    /// # Errors
    /// 400 naming `page` or `size` when out of range.
    pub fn request(&self) -> Result<qrlp_store::PageRequest, ApiError> {
        let page = self.page.unwrap_or(1);
        let size = self.size.unwrap_or(20);
        if page == 0 {
            return Err(ApiError::invalid_field("page", "must be 1 or more"));
        }
        if !(1..=100).contains(&size) {
            return Err(ApiError::invalid_field("size", "must be between 1 and 100"));
        }
        Ok(qrlp_store::PageRequest { page, size })
    }
}

/// `{"page","size","total","pages"}`, as seed 002 shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    /// This page, from 1.
    pub page: u32,
    /// Items per page.
    pub size: u32,
    /// Items in all pages.
    pub total: u64,
    /// Number of pages.
    pub pages: u64,
}

impl Pagination {
    /// The pagination of a storage page.
    pub fn of<T>(p: &Page<T>) -> Pagination {
        Pagination {
            page: p.page,
            size: p.size,
            total: p.total,
            pages: p.pages(),
        }
    }
}

/// An organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    /// Its id.
    pub id: Uuid,
    /// Its name, unique regardless of case.
    pub name: String,
    /// `free`, `starter`, `professional` or `enterprise`.
    pub plan: String,
    /// Requests per hour the plan allows.
    pub requests_per_hour: u32,
    /// When it was created.
    pub created_at: String,
    /// The caller's role in it, in lists of the caller's organizations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl From<&Organization> for OrganizationView {
    fn from(o: &Organization) -> Self {
        OrganizationView {
            id: o.id,
            name: o.name.clone(),
            plan: o.plan.as_str().to_string(),
            requests_per_hour: o.plan.requests_per_hour(),
            created_at: ts(o.created_at),
            role: None,
        }
    }
}

impl From<&OrgWithRole> for OrganizationView {
    fn from(o: &OrgWithRole) -> Self {
        OrganizationView {
            role: Some(o.role.as_str().to_string()),
            ..OrganizationView::from(&o.organization)
        }
    }
}

/// A page of organizations.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationList {
    /// The organizations.
    pub organizations: Vec<OrganizationView>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Its id.
    pub id: Uuid,
    /// Email address, unique regardless of case.
    pub email: String,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            created_at: ts(u.created_at),
        }
    }
}

/// A member of an organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// The user.
    pub user: UserView,
    /// `owner`, `admin`, `member` or `viewer`.
    pub role: String,
    /// When the user joined.
    pub joined_at: String,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        MemberView {
            user: UserView::from(&m.user),
            role: m.role.as_str().to_string(),
            joined_at: ts(m.joined_at),
        }
    }
}

/// A page of members.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    /// The members.
    pub members: Vec<MemberView>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// An API key, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Its id.
    pub id: Uuid,
    /// Its organization.
    pub organization_id: Uuid,
    /// What it is for.
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    /// What it may do: `*`, `read`, or permission names such as `audit:read`.
    pub scopes: Vec<String>,
    /// The user who created it (it acts with that user's role).
    pub created_by: Option<Uuid>,
    /// When it was created.
    pub created_at: String,
    /// When it was last used (recorded at most once a minute).
    pub last_used_at: Option<String>,
    /// When it stops working.
    pub expires_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// `active`, `revoked` or `expired`.
    pub status: &'static str,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        let now = OffsetDateTime::now_utc();
        let status = if k.revoked_at.is_some() {
            "revoked"
        } else if k.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        };
        ApiKeyView {
            id: k.id,
            organization_id: k.org_id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            scopes: k.scopes.clone(),
            created_by: k.created_by,
            created_at: ts(k.created_at),
            last_used_at: k.last_used_at.map(ts),
            expires_at: k.expires_at.map(ts),
            revoked_at: k.revoked_at.map(ts),
            status,
        }
    }
}

/// A page of API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// The keys.
    pub api_keys: Vec<ApiKeyView>,
    /// Where this page is.
    pub pagination: Pagination,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Its id.
    pub id: Uuid,
    /// The organization acted on.
    pub organization_id: Option<Uuid>,
    /// `user`, `api_key` or `system`.
    pub actor_type: String,
    /// The user's or key's id.
    pub actor_id: Option<Uuid>,
    /// What was done, e.g. `api_key.revoke`.
    pub action: String,
    /// The kind of thing acted on, e.g. `api_key`.
    pub target_type: String,
    /// Its id.
    pub target_id: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The request id of the call.
    pub request_id: Option<String>,
    /// What changed.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// When.
    pub created_at: String,
}

impl From<&AuditRecord> for AuditView {
    fn from(a: &AuditRecord) -> Self {
        AuditView {
            id: a.id,
            organization_id: a.org_id,
            actor_type: a.actor_type.clone(),
            actor_id: a.actor_id,
            action: a.action.clone(),
            target_type: a.target_type.clone(),
            target_id: a.target_id.clone(),
            ip: a.ip.clone(),
            user_agent: a.user_agent.clone(),
            request_id: a.request_id.clone(),
            details: a.details.clone(),
            created_at: ts(a.created_at),
        }
    }
}

/// A page of audit records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// The records.
    pub audit_logs: Vec<AuditView>,
    /// Where this page is.
    pub pagination: Pagination,
}
