//! Rows as decoded from either backend, and their conversion into the model.
//!
//! The `FromRow` derives are generic over the row type, so one struct decodes a SQLite row
//! and a PostgreSQL row alike.

use sqlx::types::Json;
use uuid::Uuid;

use crate::db::Ts;
use crate::error::StoreError;
use crate::model::{
    ApiKey, ApiKeyAuth, AuditRecord, Member, OrgWithRole, Organization, Plan, Role, Session, User,
    UserCredentials,
};

fn plan(s: &str) -> Result<Plan, StoreError> {
    s.parse()
        .map_err(|_| StoreError::internal("stored plan is not a known plan"))
}

pub(crate) fn role(s: &str) -> Result<Role, StoreError> {
    s.parse()
        .map_err(|_| StoreError::internal("stored role is not a known role"))
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrgRow {
    id: Uuid,
    name: String,
    plan: String,
    created_at: Ts,
}

impl TryFrom<OrgRow> for Organization {
    type Error = StoreError;
    fn try_from(r: OrgRow) -> Result<Self, StoreError> {
        Ok(Organization {
            id: r.id,
            name: r.name,
            plan: plan(&r.plan)?,
            created_at: r.created_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrgRoleRow {
    #[sqlx(flatten)]
    org: OrgRow,
    role: String,
}

impl TryFrom<OrgRoleRow> for OrgWithRole {
    type Error = StoreError;
    fn try_from(r: OrgRoleRow) -> Result<Self, StoreError> {
        Ok(OrgWithRole {
            organization: r.org.try_into()?,
            role: role(&r.role)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    created_at: Ts,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            created_at: r.created_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: Option<String>,
}

impl From<CredentialsRow> for UserCredentials {
    fn from(r: CredentialsRow) -> Self {
        UserCredentials {
            user: r.user.into(),
            password_hash: r.password_hash,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MemberRow {
    #[sqlx(flatten)]
    user: UserRow,
    role: String,
    joined_at: Ts,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;
    fn try_from(r: MemberRow) -> Result<Self, StoreError> {
        Ok(Member {
            user: r.user.into(),
            role: role(&r.role)?,
            joined_at: r.joined_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: Uuid,
    org_id: Uuid,
    name: String,
    prefix: String,
    scopes: Json<Vec<String>>,
    created_by: Option<Uuid>,
    created_at: Ts,
    last_used_at: Option<Ts>,
    expires_at: Option<Ts>,
    revoked_at: Option<Ts>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            prefix: r.prefix,
            scopes: r.scopes.0,
            created_by: r.created_by,
            created_at: r.created_at.0,
            last_used_at: r.last_used_at.map(|t| t.0),
            expires_at: r.expires_at.map(|t| t.0),
            revoked_at: r.revoked_at.map(|t| t.0),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyAuthRow {
    #[sqlx(flatten)]
    key: ApiKeyRow,
    org_name: String,
    org_plan: String,
    org_created_at: Ts,
}

impl TryFrom<ApiKeyAuthRow> for ApiKeyAuth {
    type Error = StoreError;
    fn try_from(r: ApiKeyAuthRow) -> Result<Self, StoreError> {
        let key = ApiKey::from(r.key);
        Ok(ApiKeyAuth {
            organization: Organization {
                id: key.org_id,
                name: r.org_name,
                plan: plan(&r.org_plan)?,
                created_at: r.org_created_at.0,
            },
            key,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    session_id: Uuid,
    csrf_token: String,
    session_created_at: Ts,
    expires_at: Ts,
    #[sqlx(flatten)]
    user: UserRow,
}

impl From<SessionRow> for (Session, User) {
    fn from(r: SessionRow) -> Self {
        let user = User::from(r.user);
        let session = Session {
            id: r.session_id,
            user_id: user.id,
            csrf_token: r.csrf_token,
            created_at: r.session_created_at.0,
            expires_at: r.expires_at.0,
        };
        (session, user)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: Uuid,
    org_id: Option<Uuid>,
    actor_type: String,
    actor_id: Option<Uuid>,
    action: String,
    target_type: String,
    target_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: Json<serde_json::Value>,
    created_at: Ts,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            id: r.id,
            org_id: r.org_id,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            ip: r.ip,
            user_agent: r.user_agent,
            request_id: r.request_id,
            details: r.details.0,
            created_at: r.created_at.0,
        }
    }
}
