//! The platform's records as the rest of qrlp sees them.
//!
//! Every type is `Serialize` with snake_case fields and RFC 3339 timestamps. `Debug` never
//! shows a secret, a password hash or a key hash: the types that carry one hand-write it.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;

/// A subscription plan; it decides the organization's request budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// 100 requests an hour.
    #[default]
    Free,
    /// 1,000 requests an hour.
    Starter,
    /// 10,000 requests an hour.
    Professional,
    /// 100,000 requests an hour.
    Enterprise,
}

impl Plan {
    /// Every plan, cheapest first.
    pub const ALL: [Plan; 4] = [
        Plan::Free,
        Plan::Starter,
        Plan::Professional,
        Plan::Enterprise,
    ];

    /// The lowercase name used in storage, configuration and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Professional => "professional",
            Plan::Enterprise => "enterprise",
        }
    }

    /// The plan's request budget per organization and hour.
    pub fn requests_per_hour(self) -> u32 {
        match self {
            Plan::Free => 100,
            Plan::Starter => 1_000,
            Plan::Professional => 10_000,
            Plan::Enterprise => 100_000,
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = StoreError;

    /// Case-insensitive: `"Free"` and `"FREE"` are [`Plan::Free`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Plan::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                StoreError::invalid("plan", "must be free, starter, professional or enterprise")
            })
    }
}

impl<'de> serde::Deserialize<'de> for Plan {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A member's role in an organization. Roles are ordered by [`Role::rank`]:
/// `Owner > Admin > Member > Viewer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including the organization itself and its owners.
    Owner,
    /// Manages members and keys.
    Admin,
    /// Creates and changes the organization's resources.
    Member,
    /// Reads only.
    Viewer,
}

impl Role {
    /// Every role, strongest first.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    /// The lowercase name used in storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// Strength of the role: owner 3, admin 2, member 1, viewer 0.
    pub fn rank(self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
            Role::Viewer => 0,
        }
    }
}

impl PartialOrd for Role {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Role {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = StoreError;

    /// Case-insensitive: `"Owner"` is [`Role::Owner`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| StoreError::invalid("role", "must be owner, admin, member or viewer"))
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A tenant: everything owned in qrlp belongs to one organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    /// UUID v7.
    pub id: Uuid,
    /// Display name, unique case-insensitively.
    pub name: String,
    /// Subscription plan.
    pub plan: Plan,
    /// Creation time (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A person who can sign in to the web UI and be a member of organizations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// UUID v7.
    pub id: Uuid,
    /// Email as entered; unique case-insensitively.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Creation time (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A user with the argon2id PHC string needed to check a password. `Debug` hides the hash.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// argon2id PHC string; `None` for users that cannot sign in with a password.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
}

impl fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// An organization as seen by one of its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgWithRole {
    /// The organization.
    pub organization: Organization,
    /// The member's role in it.
    pub role: Role,
}

/// A membership as listed for an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// The member.
    pub user: User,
    /// The member's role.
    pub role: Role,
    /// When the membership was created (UTC, microseconds).
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// What [`crate::Store::create_api_key`] stores. The secret itself is never given to the
/// store, only its SHA-256 and its visible prefix. `Debug` hides the hash.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewApiKey {
    /// Owning organization.
    pub org_id: Uuid,
    /// Human label.
    pub name: String,
    /// Granted scopes (`"*"` for all).
    pub scopes: Vec<String>,
    /// The user who created it, if a user did.
    pub created_by: Option<Uuid>,
    /// After this instant the key no longer works.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The first characters of the secret, shown in lists (e.g. `qrlp_AbC1dEf`).
    pub prefix: String,
    /// SHA-256 of the whole secret.
    #[serde(skip_serializing)]
    pub hash: [u8; 32],
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("created_by", &self.created_by)
            .field("expires_at", &self.expires_at)
            .field("prefix", &self.prefix)
            .field("hash", &"<redacted>")
            .finish()
    }
}

/// The key material for [`crate::Store::bootstrap`]. `Debug` hides the hash.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewApiKeyMaterial {
    /// Human label.
    pub name: String,
    /// The first characters of the secret.
    pub prefix: String,
    /// SHA-256 of the whole secret.
    #[serde(skip_serializing)]
    pub hash: [u8; 32],
}

impl fmt::Debug for NewApiKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKeyMaterial")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("hash", &"<redacted>")
            .finish()
    }
}

/// A stored API key, without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// UUID v7.
    pub id: Uuid,
    /// Owning organization.
    pub org_id: Uuid,
    /// Human label.
    pub name: String,
    /// Visible prefix of the secret.
    pub prefix: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The user who created it.
    pub created_by: Option<Uuid>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last successful authentication, as recorded by [`crate::Store::touch_api_key`].
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Expiry.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Revocation time.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiKey {
    /// True when the key is neither revoked nor expired at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// An API key found by its hash, with its organization (for plan and isolation checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyAuth {
    /// The key (possibly revoked or expired: check [`ApiKey::is_active`]).
    pub key: ApiKey,
    /// Its organization.
    pub organization: Organization,
}

/// A web UI session. The cookie token is stored only as a hash; `Debug` hides the CSRF token.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    /// UUID v7.
    pub id: Uuid,
    /// The signed-in user.
    pub user_id: Uuid,
    /// The token that mutating cookie-authenticated requests must echo.
    pub csrf_token: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// After this instant the session is gone.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("csrf_token", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who performed an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A signed-in user.
    User(Uuid),
    /// A request authenticated by an API key.
    ApiKey(Uuid),
    /// qrlp itself (bootstrap, maintenance).
    System,
}

impl Actor {
    /// The stored `actor_type`: `"user"`, `"api_key"` or `"system"`.
    pub fn type_str(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::ApiKey(_) => "api_key",
            Actor::System => "system",
        }
    }

    /// The stored `actor_id` (none for the system).
    pub fn id(&self) -> Option<Uuid> {
        match self {
            Actor::User(id) | Actor::ApiKey(id) => Some(*id),
            Actor::System => None,
        }
    }
}

/// Who did something, from where: attached to every audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditContext {
    /// The organization for actions that are not about one organization (login, user
    /// creation). Org-scoped actions record the organization acted on instead.
    pub org_id: Option<Uuid>,
    /// The actor.
    pub actor: Actor,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// The request id of the HTTP request.
    pub request_id: Option<String>,
}

impl AuditContext {
    /// A context for actions qrlp performs itself, with no request attached.
    pub fn system() -> Self {
        AuditContext {
            org_id: None,
            actor: Actor::System,
            ip: None,
            user_agent: None,
            request_id: None,
        }
    }
}

/// One entry of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// UUID v7.
    pub id: Uuid,
    /// The organization it belongs to.
    pub org_id: Option<Uuid>,
    /// `"user"`, `"api_key"` or `"system"`.
    pub actor_type: String,
    /// The user or key id.
    pub actor_id: Option<Uuid>,
    /// Dotted action name, e.g. `"api_key.revoke"`.
    pub action: String,
    /// Kind of the target, e.g. `"api_key"`.
    pub target_type: String,
    /// Id of the target.
    pub target_id: Option<String>,
    /// Client IP address.
    pub ip: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// Action-specific JSON (never secrets or hashes).
    pub details: serde_json::Value,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Filters for [`crate::Store::list_audit`]; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditFilter {
    /// Exact action name.
    pub action: Option<String>,
    /// Actor id (user or key).
    pub actor_id: Option<Uuid>,
    /// Inclusive lower bound on `created_at`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Exclusive upper bound on `created_at`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

/// Largest page size.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Which page of a list to return: `page >= 1`, `1 <= size <= 100`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u32,
    /// Items per page.
    pub size: u32,
}

impl Default for PageRequest {
    /// Page 1 of 20.
    fn default() -> Self {
        PageRequest { page: 1, size: 20 }
    }
}

impl PageRequest {
    /// A checked page request.
    pub fn new(page: u32, size: u32) -> Result<Self, StoreError> {
        if page < 1 {
            return Err(StoreError::invalid("page", "must be at least 1"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(StoreError::invalid("size", "must be between 1 and 100"));
        }
        Ok(PageRequest { page, size })
    }

    /// Re-checks a request whose fields were set directly; returns `(limit, offset)`.
    pub(crate) fn limit_offset(self) -> Result<(i64, i64), StoreError> {
        let checked = PageRequest::new(self.page, self.size)?;
        let offset = (i64::from(checked.page) - 1) * i64::from(checked.size);
        Ok((i64::from(checked.size), offset))
    }
}

/// One page of a list, with the total across all pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    /// The items of this page, in the list's stable order.
    pub items: Vec<T>,
    /// 1-based page number.
    pub page: u32,
    /// Requested page size.
    pub size: u32,
    /// Number of items across all pages.
    pub total: u64,
}

impl<T> Page<T> {
    /// Number of pages: `ceil(total / size)`, 0 when there are no items.
    pub fn pages(&self) -> u64 {
        if self.size == 0 {
            return 0;
        }
        self.total.div_ceil(u64::from(self.size))
    }

    /// Applies `f` to every item, keeping the pagination.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            page: self.page,
            size: self.size,
            total: self.total,
        }
    }
}

/// What [`crate::Store::bootstrap`] created or reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bootstrapped {
    /// The new organization.
    pub organization: Organization,
    /// Its owner.
    pub user: User,
    /// False when a user with that email existed and was reused.
    pub user_created: bool,
    /// The new key, with scopes `["*"]`.
    pub api_key: ApiKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_and_roles_parse_case_insensitively() {
        assert_eq!("FREE".parse::<Plan>().ok(), Some(Plan::Free));
        assert_eq!(
            "Professional".parse::<Plan>().ok(),
            Some(Plan::Professional)
        );
        assert!("gold".parse::<Plan>().is_err());
        assert_eq!("Owner".parse::<Role>().ok(), Some(Role::Owner));
        assert!("root".parse::<Role>().is_err());
        assert_eq!(Plan::default(), Plan::Free);
        assert_eq!(Plan::Enterprise.requests_per_hour(), 100_000);
        assert!(Role::Owner > Role::Admin && Role::Member > Role::Viewer);
        assert_eq!(Role::Viewer.rank(), 0);
    }

    #[test]
    fn page_requests_and_pages() {
        assert!(PageRequest::new(0, 10).is_err());
        assert!(PageRequest::new(1, 0).is_err());
        assert!(PageRequest::new(1, 101).is_err());
        assert_eq!(PageRequest::default(), PageRequest { page: 1, size: 20 });
        let page = |total| Page::<()> {
            items: vec![],
            page: 1,
            size: 10,
            total,
        };
        assert_eq!(page(0).pages(), 0);
        assert_eq!(page(10).pages(), 1);
        assert_eq!(page(11).pages(), 2);
    }

    #[test]
    fn serde_names() {
        assert_eq!(
            serde_json::to_string(&Role::Admin).ok().as_deref(),
            Some("\"admin\"")
        );
        assert_eq!(
            serde_json::from_str::<Plan>("\"Starter\"").ok(),
            Some(Plan::Starter)
        );
    }
}

/// An invitation into an organization, as listed and returned to the inviter. The token
/// itself is never stored (only its SHA-256) and never part of this type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitation {
    /// UUID v7.
    pub id: Uuid,
    /// The organization it admits to.
    pub org_id: Uuid,
    /// The address invited, as entered.
    pub email: String,
    /// A display name suggested by the inviter, for a new account.
    pub name: Option<String>,
    /// The role the invitee gets.
    pub role: Role,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// After this instant it can no longer be redeemed.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was redeemed (it works once).
    #[serde(with = "time::serde::rfc3339::option")]
    pub accepted_at: Option<OffsetDateTime>,
}

/// What [`crate::Store::create_invitation`] stores. `Debug` hides the token hash.
#[derive(Clone, PartialEq, Eq)]
pub struct NewInvitation {
    /// The organization it admits to.
    pub org_id: Uuid,
    /// The address invited.
    pub email: String,
    /// A suggested display name.
    pub name: Option<String>,
    /// The role the invitee gets.
    pub role: Role,
    /// SHA-256 of the single-use token.
    pub token_hash: [u8; 32],
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for NewInvitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewInvitation")
            .field("org_id", &self.org_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("token_hash", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Who redeems an invitation.
#[derive(Clone, PartialEq, Eq)]
pub enum Redeemer {
    /// Nobody has this email yet: create the account with this name and password hash.
    NewAccount {
        /// Display name (the invitation's suggestion when `None`).
        name: Option<String>,
        /// argon2id PHC string of the password the invitee chose.
        password_hash: String,
    },
    /// The account signed in (by its own session) that must own the invited email.
    SignedIn(Uuid),
}

impl fmt::Debug for Redeemer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redeemer::NewAccount { name, .. } => f
                .debug_struct("NewAccount")
                .field("name", name)
                .field("password_hash", &"<redacted>")
                .finish(),
            Redeemer::SignedIn(id) => f.debug_tuple("SignedIn").field(id).finish(),
        }
    }
}

/// Whether a membership change may touch the owner role: granting it, or changing or
/// removing an owner. Decided by the caller's permission, checked by the store inside the
/// transaction against the role the target has at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRule {
    /// The caller holds the owner permission.
    MayManageOwners,
    /// The caller does not: owners are out of reach.
    OwnersUntouchable,
}
