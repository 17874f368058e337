//! Authorization: the permissions routes declare, the role matrix, and how an API key's
//! scopes narrow its creator's role.
//!
//! Every protected handler takes an [`crate::auth::Auth<P>`] extractor whose type parameter
//! names its permission, so the declaration sits in the handler's signature;
//! [`ROUTE_PERMISSIONS`] lists the same declarations for the documentation, and a test
//! checks that every `/api/` operation of the OpenAPI document appears in it.
//!
//! A principal holds a permission in an organization when its role there grants it
//! ([`Role::grants`]) and, for an API key, when the key's scopes include it (or `*`). A key
//! acts for the user who created it: demoting that user narrows the key at once (within
//! the key cache's lifetime). A key with no creator (made by `qrlp admin bootstrap` before
//! any user could act) holds the owner's role.

use std::fmt;

use qrlp_store::Role;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Any authenticated principal; no organization role needed.
    Authenticated,
    /// Read the organization's details.
    OrganizationRead,
    /// Rename the organization.
    OrganizationWrite,
    /// Change the plan; grant or take away the owner role.
    OrganizationOwner,
    /// List members and see their profiles.
    MembersRead,
    /// Add, re-role and remove members; create users.
    MembersWrite,
    /// List API keys.
    ApiKeysRead,
    /// Create and revoke API keys.
    ApiKeysWrite,
    /// Read the audit log.
    AuditRead,
    /// See devices, their status and the fleet's channels.
    DevicesRead,
    /// Enroll, reconfigure and deregister devices.
    DevicesWrite,
    /// See device keys and the security audit.
    SecurityRead,
    /// Force key rotation.
    SecurityWrite,
    /// Read fleet metrics, alerts and logs.
    MonitoringRead,
    /// Create organizations (the caller becomes their owner). Not a role's permission: a
    /// user session holds it, an API key only when its scopes name it (`*` does not).
    OrganizationsCreate,
    /// List and read one-time chains, their current value, scans and statistics.
    ChainsRead,
    /// Create, change and delete chains.
    ChainsWrite,
    /// Submit a scanned chain value (a door scanner's key needs only this).
    ChainsScan,
    /// List webhook endpoints and their delivery logs.
    WebhooksRead,
    /// Create, change, delete and test webhook endpoints; rotate secrets; redeliver.
    WebhooksWrite,
    /// See tracked QR codes, their images and analytics, and the business card.
    QrCodesRead,
    /// Create, change, archive and restore tracked QR codes; edit the business card.
    QrCodesWrite,
    /// See live channels, their frames and status; verify their frames.
    LiveRead,
    /// Create, change and delete live channels; set their user text.
    LiveWrite,
    /// See training rounds, their progress and privacy spent; pull global models.
    TrainingRead,
    /// Start training jobs.
    TrainingWrite,
}

impl Permission {
    /// Every permission, in the order of the documentation.
    pub const ALL: [Permission; 26] = [
        Permission::Authenticated,
        Permission::OrganizationRead,
        Permission::OrganizationWrite,
        Permission::OrganizationOwner,
        Permission::MembersRead,
        Permission::MembersWrite,
        Permission::ApiKeysRead,
        Permission::ApiKeysWrite,
        Permission::AuditRead,
        Permission::DevicesRead,
        Permission::DevicesWrite,
        Permission::SecurityRead,
        Permission::SecurityWrite,
        Permission::MonitoringRead,
        Permission::OrganizationsCreate,
        Permission::ChainsRead,
        Permission::ChainsWrite,
        Permission::ChainsScan,
        Permission::WebhooksRead,
        Permission::WebhooksWrite,
        Permission::QrCodesRead,
        Permission::QrCodesWrite,
        Permission::LiveRead,
        Permission::LiveWrite,
        Permission::TrainingRead,
        Permission::TrainingWrite,
    ];

    /// The scope string an API key names it by, e.g. `members:write`.
    pub fn scope(self) -> &'static str {
        match self {
            Permission::Authenticated => "authenticated",
            Permission::OrganizationRead => "organization:read",
            Permission::OrganizationWrite => "organization:write",
            Permission::OrganizationOwner => "organization:owner",
            Permission::MembersRead => "members:read",
            Permission::MembersWrite => "members:write",
            Permission::ApiKeysRead => "api_keys:read",
            Permission::ApiKeysWrite => "api_keys:write",
            Permission::AuditRead => "audit:read",
            Permission::DevicesRead => "devices:read",
            Permission::DevicesWrite => "devices:write",
            Permission::SecurityRead => "security:read",
            Permission::SecurityWrite => "security:write",
            Permission::MonitoringRead => "monitoring:read",
            Permission::OrganizationsCreate => "organizations:create",
            Permission::ChainsRead => "chains:read",
            Permission::ChainsWrite => "chains:write",
            Permission::ChainsScan => "chains:scan",
            Permission::WebhooksRead => "webhooks:read",
            Permission::WebhooksWrite => "webhooks:write",
            Permission::QrCodesRead => "qr_codes:read",
            Permission::QrCodesWrite => "qr_codes:write",
            Permission::LiveRead => "live:read",
            Permission::LiveWrite => "live:write",
            Permission::TrainingRead => "training:read",
            Permission::TrainingWrite => "training:write",
        }
    }

    /// The permission a scope string names.
    pub fn from_scope(scope: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.scope() == scope)
    }

    /// The least role that grants it.
    pub fn min_role(self) -> Role {
        match self {
            Permission::Authenticated
            | Permission::OrganizationRead
            | Permission::MembersRead
            | Permission::DevicesRead
            | Permission::OrganizationsCreate
            | Permission::QrCodesRead
            | Permission::LiveRead
            | Permission::TrainingRead => Role::Viewer,
            Permission::QrCodesWrite | Permission::LiveWrite | Permission::TrainingWrite => {
                Role::Member
            }
            Permission::OrganizationWrite
            | Permission::MembersWrite
            | Permission::ApiKeysRead
            | Permission::ApiKeysWrite
            | Permission::AuditRead
            | Permission::DevicesWrite
            | Permission::SecurityRead
            | Permission::SecurityWrite
            | Permission::MonitoringRead => Role::Admin,
            Permission::OrganizationOwner => Role::Owner,
            Permission::ChainsRead => Role::Viewer,
            Permission::ChainsWrite | Permission::ChainsScan => Role::Member,
            Permission::WebhooksRead | Permission::WebhooksWrite => Role::Admin,
        }
    }
}

impl Permission {
    /// Whether the permission is held in one organization (by a role there). `false` for
    /// [`Permission::Authenticated`] and [`Permission::OrganizationsCreate`].
    pub fn needs_organization(self) -> bool {
        !matches!(
            self,
            Permission::Authenticated | Permission::OrganizationsCreate
        )
    }

    /// Whether `*` in a key's scopes covers it: not for [`Permission::OrganizationsCreate`],
    /// which a key holds only when named.
    pub fn in_wildcard(self) -> bool {
        self != Permission::OrganizationsCreate
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scope())
    }
}

/// Whether `role` grants `permission`: roles are ordered owner > admin > member > viewer and
/// each grants what the ones below it grant.
pub fn role_grants(role: Role, permission: Permission) -> bool {
    role.rank() >= permission.min_role().rank()
}

/// Whether an API key's `scopes` allow `permission`: `*` allows everything but
/// `organizations:create`; `read` allows every `:read` permission; otherwise the scope must
/// be named.
pub fn scopes_allow(scopes: &[String], permission: Permission) -> bool {
    if permission == Permission::Authenticated {
        return true;
    }
    scopes.iter().any(|s| {
        (s == "*" && permission.in_wildcard())
            || s == permission.scope()
            || (s == "read" && permission.scope().ends_with(":read"))
    })
}

/// Whether a principal holding `held` scopes may give a new key the scope `requested`:
/// delegation never escalates, so every scope of the new key must be covered by the
/// caller's (`*` only by `*`, `read` by `*` or `read`).
pub fn scope_covered(held: &[String], requested: &str) -> bool {
    match requested {
        "*" => held.iter().any(|s| s == "*"),
        "read" => held.iter().any(|s| s == "*" || s == "read"),
        other => Permission::from_scope(other).is_some_and(|p| scopes_allow(held, p)),
    }
}

/// Checks a list of scopes given when creating a key: every entry is `*`, `read` or a
/// permission's scope.
///
/// # Errors
/// The first unknown scope.
pub fn validate_scopes(scopes: &[String]) -> Result<(), String> {
    for s in scopes {
        if s != "*" && s != "read" && Permission::from_scope(s).is_none() {
            return Err(format!(
                "unknown scope {s:?}: use \"*\", \"read\" or one of {}",
                Permission::ALL[1..]
                    .iter()
                    .map(|p| p.scope())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// A permission as a type, for [`crate::auth::Auth`]'s parameter.
pub trait Requirement: Send + Sync + 'static {
    /// The permission.
    const PERMISSION: Permission;
}

macro_rules! requirements {
    ($($(#[$doc:meta])* $name:ident => $perm:ident;)*) => {
        /// Marker types naming each [`Permission`] in handler signatures.
        pub mod need {
            use super::{Permission, Requirement};
            $(
                $(#[$doc])*
                #[derive(Debug)]
                pub struct $name;
                impl Requirement for $name {
                    const PERMISSION: Permission = Permission::$perm;
                }
            )*
        }
    };
}

requirements! {
    /// Any authenticated principal.
    Authenticated => Authenticated;
    /// [`Permission::OrganizationRead`].
    OrganizationRead => OrganizationRead;
    /// [`Permission::OrganizationWrite`].
    OrganizationWrite => OrganizationWrite;
    /// [`Permission::MembersRead`].
    MembersRead => MembersRead;
    /// [`Permission::MembersWrite`].
    MembersWrite => MembersWrite;
    /// [`Permission::ApiKeysRead`].
    ApiKeysRead => ApiKeysRead;
    /// [`Permission::ApiKeysWrite`].
    ApiKeysWrite => ApiKeysWrite;
    /// [`Permission::AuditRead`].
    AuditRead => AuditRead;
    /// [`Permission::DevicesRead`].
    DevicesRead => DevicesRead;
    /// [`Permission::DevicesWrite`].
    DevicesWrite => DevicesWrite;
    /// [`Permission::SecurityRead`].
    SecurityRead => SecurityRead;
    /// [`Permission::SecurityWrite`].
    SecurityWrite => SecurityWrite;
    /// [`Permission::MonitoringRead`].
    MonitoringRead => MonitoringRead;
    /// [`Permission::OrganizationsCreate`].
    OrganizationsCreate => OrganizationsCreate;
    /// [`Permission::ChainsRead`].
    ChainsRead => ChainsRead;
    /// [`Permission::ChainsWrite`].
    ChainsWrite => ChainsWrite;
    /// [`Permission::ChainsScan`].
    ChainsScan => ChainsScan;
    /// [`Permission::WebhooksRead`].
    WebhooksRead => WebhooksRead;
    /// [`Permission::WebhooksWrite`].
    WebhooksWrite => WebhooksWrite;
    /// [`Permission::QrCodesRead`].
    QrCodesRead => QrCodesRead;
    /// [`Permission::QrCodesWrite`].
    QrCodesWrite => QrCodesWrite;
    /// [`Permission::LiveRead`].
    LiveRead => LiveRead;
    /// [`Permission::LiveWrite`].
    LiveWrite => LiveWrite;
    /// [`Permission::TrainingRead`].
    TrainingRead => TrainingRead;
    /// [`Permission::TrainingWrite`].
    TrainingWrite => TrainingWrite;
}

/// The permission each protected operation declares, for the documentation's role matrix:
/// `(method, path, permission)`. Paths under `/api/v1/organizations/{org_id}` are also
/// served under `/api/organizations/{org_id}`.
pub const ROUTE_PERMISSIONS: &[(&str, &str, Permission)] = &[
    ("GET", "/api/v1/users/me", Permission::Authenticated),
    ("POST", "/api/v1/users", Permission::MembersWrite),
    ("GET", "/api/v1/users/{user_id}", Permission::MembersRead),
    ("GET", "/api/v1/organizations", Permission::Authenticated),
    (
        "POST",
        "/api/v1/organizations",
        Permission::OrganizationsCreate,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}",
        Permission::OrganizationRead,
    ),
    (
        "PATCH",
        "/api/v1/organizations/{org_id}",
        Permission::OrganizationWrite,
    ),
    (
        "PUT",
        "/api/v1/organizations/{org_id}",
        Permission::OrganizationWrite,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/members",
        Permission::MembersRead,
    ),
    (
        "POST",
        "/api/v1/organizations/{org_id}/members",
        Permission::MembersWrite,
    ),
    (
        "PATCH",
        "/api/v1/organizations/{org_id}/members/{user_id}",
        Permission::MembersWrite,
    ),
    (
        "DELETE",
        "/api/v1/organizations/{org_id}/members/{user_id}",
        Permission::MembersWrite,
    ),
    ("GET", "/api/v1/api-keys", Permission::ApiKeysRead),
    ("POST", "/api/v1/api-keys", Permission::ApiKeysWrite),
    ("GET", "/api/v1/api-keys/{key_id}", Permission::ApiKeysRead),
    (
        "DELETE",
        "/api/v1/api-keys/{key_id}",
        Permission::ApiKeysWrite,
    ),
    ("GET", "/api/v1/audit", Permission::AuditRead),
    // Device fleet (seed 002).
    ("GET", "/api/v1/devices", Permission::DevicesRead),
    (
        "GET",
        "/api/v1/devices/enrollment-tokens",
        Permission::DevicesWrite,
    ),
    (
        "POST",
        "/api/v1/devices/enrollment-tokens",
        Permission::DevicesWrite,
    ),
    (
        "DELETE",
        "/api/v1/devices/enrollment-tokens/{token_id}",
        Permission::DevicesWrite,
    ),
    (
        "GET",
        "/api/v1/devices/{device_id}",
        Permission::DevicesRead,
    ),
    (
        "PUT",
        "/api/v1/devices/{device_id}",
        Permission::DevicesWrite,
    ),
    (
        "DELETE",
        "/api/v1/devices/{device_id}",
        Permission::DevicesWrite,
    ),
    ("GET", "/api/v1/security/keys", Permission::SecurityRead),
    (
        "POST",
        "/api/v1/security/keys/rotate",
        Permission::SecurityWrite,
    ),
    ("GET", "/api/v1/security/audit", Permission::SecurityRead),
    ("GET", "/api/v1/status", Permission::DevicesRead),
    (
        "GET",
        "/api/v1/monitoring/metrics",
        Permission::MonitoringRead,
    ),
    (
        "GET",
        "/api/v1/monitoring/alerts",
        Permission::MonitoringRead,
    ),
    ("GET", "/api/v1/monitoring/logs", Permission::MonitoringRead),
    ("GET", "/api/v1/users", Permission::MembersRead),
    (
        "PUT",
        "/api/v1/users/{user_id}/permissions",
        Permission::MembersWrite,
    ),
    // Federated learning (seed 002).
    ("GET", "/api/v1/fl/rounds", Permission::TrainingRead),
    ("POST", "/api/v1/fl/rounds", Permission::TrainingWrite),
    (
        "GET",
        "/api/v1/fl/rounds/{round_id}",
        Permission::TrainingRead,
    ),
    (
        "GET",
        "/api/v1/fl/models/{version}",
        Permission::TrainingRead,
    ),
    ("GET", "/api/v1/ws/dashboard", Permission::DevicesRead),
    ("GET", "/api/v1/ws/training", Permission::TrainingRead),
    ("GET", "/api/v1/ws/security", Permission::SecurityRead),
    (
        "GET",
        "/api/v1/ws/device/{device_id}",
        Permission::DevicesRead,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/invitations",
        Permission::MembersWrite,
    ),
    (
        "DELETE",
        "/api/v1/organizations/{org_id}/invitations/{invitation_id}",
        Permission::MembersWrite,
    ),
    ("GET", "/api/v1/chains", Permission::ChainsRead),
    ("POST", "/api/v1/chains", Permission::ChainsWrite),
    ("GET", "/api/v1/chains/{chainId}", Permission::ChainsRead),
    ("PATCH", "/api/v1/chains/{chainId}", Permission::ChainsWrite),
    (
        "DELETE",
        "/api/v1/chains/{chainId}",
        Permission::ChainsWrite,
    ),
    (
        "GET",
        "/api/v1/chains/{chainId}/current",
        Permission::ChainsRead,
    ),
    (
        "POST",
        "/api/v1/chains/{chainId}/scan",
        Permission::ChainsScan,
    ),
    (
        "GET",
        "/api/v1/chains/{chainId}/scans",
        Permission::ChainsRead,
    ),
    (
        "GET",
        "/api/v1/chains/{chainId}/stats",
        Permission::ChainsRead,
    ),
    ("GET", "/api/v1/webhooks", Permission::WebhooksRead),
    ("POST", "/api/v1/webhooks", Permission::WebhooksWrite),
    (
        "GET",
        "/api/v1/webhooks/event-types",
        Permission::WebhooksRead,
    ),
    ("GET", "/api/v1/webhooks/{id}", Permission::WebhooksRead),
    ("PATCH", "/api/v1/webhooks/{id}", Permission::WebhooksWrite),
    ("DELETE", "/api/v1/webhooks/{id}", Permission::WebhooksWrite),
    (
        "POST",
        "/api/v1/webhooks/{id}/rotate-secret",
        Permission::WebhooksWrite,
    ),
    (
        "POST",
        "/api/v1/webhooks/{id}/test",
        Permission::WebhooksWrite,
    ),
    (
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        Permission::WebhooksRead,
    ),
    (
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver",
        Permission::WebhooksWrite,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-codes",
        Permission::QrCodesRead,
    ),
    (
        "POST",
        "/api/v1/organizations/{org_id}/qr-codes",
        Permission::QrCodesWrite,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}",
        Permission::QrCodesRead,
    ),
    (
        "PATCH",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}",
        Permission::QrCodesWrite,
    ),
    (
        "POST",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/archive",
        Permission::QrCodesWrite,
    ),
    (
        "POST",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/restore",
        Permission::QrCodesWrite,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/image",
        Permission::QrCodesRead,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/timeline",
        Permission::QrCodesRead,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/breakdown",
        Permission::QrCodesRead,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-codes/{qr_code_id}/scans.csv",
        Permission::QrCodesRead,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-business",
        Permission::QrCodesRead,
    ),
    (
        "PUT",
        "/api/v1/organizations/{org_id}/qr-business",
        Permission::QrCodesWrite,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-business/image",
        Permission::QrCodesRead,
    ),
    (
        "GET",
        "/api/v1/organizations/{org_id}/qr-tracking",
        Permission::QrCodesRead,
    ),
    (
        "PUT",
        "/api/v1/organizations/{org_id}/qr-tracking",
        Permission::OrganizationWrite,
    ),
    ("GET", "/api/v1/live/channels", Permission::LiveRead),
    ("POST", "/api/v1/live/channels", Permission::LiveWrite),
    (
        "GET",
        "/api/v1/live/channels/{channel_id}",
        Permission::LiveRead,
    ),
    (
        "PATCH",
        "/api/v1/live/channels/{channel_id}",
        Permission::LiveWrite,
    ),
    (
        "DELETE",
        "/api/v1/live/channels/{channel_id}",
        Permission::LiveWrite,
    ),
    (
        "GET",
        "/api/v1/live/channels/{channel_id}/status",
        Permission::LiveRead,
    ),
    (
        "GET",
        "/api/v1/live/channels/{channel_id}/qr/current",
        Permission::LiveRead,
    ),
    (
        "POST",
        "/api/v1/live/channels/{channel_id}/verify",
        Permission::LiveRead,
    ),
    (
        "GET",
        "/api/v1/live/channels/{channel_id}/user-data",
        Permission::LiveRead,
    ),
    (
        "POST",
        "/api/v1/live/channels/{channel_id}/user-data",
        Permission::LiveWrite,
    ),
];

/// The rules some operations check besides their declared permission, inside the
/// handler or the store's transaction: `(method, path, rule)`. Part of the one
/// declaration the documentation is generated from.
pub const CONDITIONAL_RULES: &[(&str, &str, &str)] = &[
    (
        "PUT",
        "/api/v1/users/{user_id}/permissions",
        "granting `owner`, or changing an owner, needs `organization:owner` (checked in the transaction)",
    ),
    (
        "POST",
        "/api/v1/users",
        "role `owner` in the invitation needs `organization:owner`",
    ),
    (
        "POST",
        "/api/v1/organizations/{org_id}/members",
        "role `owner` in the invitation needs `organization:owner`",
    ),
    (
        "PATCH",
        "/api/v1/organizations/{org_id}/members/{user_id}",
        "granting `owner`, or changing an owner, needs `organization:owner` (checked in the transaction)",
    ),
    (
        "DELETE",
        "/api/v1/organizations/{org_id}/members/{user_id}",
        "removing an owner needs `organization:owner` (checked in the transaction); the last owner stays",
    ),
    (
        "POST",
        "/api/v1/api-keys",
        "every scope of the new key must be within the caller's scopes",
    ),
    (
        "PATCH",
        "/api/v1/organizations/{org_id}",
        "`plan` is refused: only an operator changes plans",
    ),
    (
        "PUT",
        "/api/v1/organizations/{org_id}",
        "`plan` is refused: only an operator changes plans",
    ),
    (
        "POST",
        "/api/v1/organizations",
        "a user session, or a key whose scopes name it (`*` does not); the plan is `free`",
    ),
];

/// The role matrix as Markdown: one row per permission, one column per role, then one row
/// per protected operation with its permission and conditional rules. Generated from
/// [`Permission`], [`ROUTE_PERMISSIONS`] and [`CONDITIONAL_RULES`]; `docs/platform.md`
/// must contain it (a test checks).
pub fn role_matrix_markdown() -> String {
    let roles = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];
    let mut out =
        String::from("| permission | owner | admin | member | viewer |\n|---|---|---|---|---|\n");
    for p in Permission::ALL {
        out.push_str(&format!("| `{}` |", p.scope()));
        for r in roles {
            let cell = if !p.in_wildcard() {
                " session or named scope |"
            } else if role_grants(r, p) {
                " yes |"
            } else {
                " no |"
            };
            out.push_str(cell);
        }
        out.push('\n');
    }
    out.push_str("\n| operation | permission | also |\n|---|---|---|\n");
    for (method, path, permission) in ROUTE_PERMISSIONS {
        let also = CONDITIONAL_RULES
            .iter()
            .filter(|(m, p, _)| m == method && p == path)
            .map(|(_, _, rule)| *rule)
            .collect::<Vec<_>>()
            .join("; ");
        out.push_str(&format!(
            "| `{method} {path}` | `{}` | {} |\n",
            permission.scope(),
            if also.is_empty() { "" } else { &also }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(role_grants(Role::Owner, Permission::OrganizationOwner));
        assert!(!role_grants(Role::Admin, Permission::OrganizationOwner));
        assert!(role_grants(Role::Admin, Permission::ApiKeysWrite));
        assert!(!role_grants(Role::Member, Permission::ApiKeysWrite));
        assert!(!role_grants(Role::Member, Permission::ApiKeysRead));
        assert!(role_grants(Role::Viewer, Permission::MembersRead));
        assert!(!role_grants(Role::Viewer, Permission::MembersWrite));
    }

    #[test]
    fn scopes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(scopes_allow(&s(&["*"]), Permission::AuditRead));
        assert!(scopes_allow(&s(&["read"]), Permission::AuditRead));
        assert!(!scopes_allow(&s(&["read"]), Permission::ApiKeysWrite));
        assert!(scopes_allow(
            &s(&["api_keys:write"]),
            Permission::ApiKeysWrite
        ));
        assert!(scopes_allow(&s(&[]), Permission::Authenticated));
        assert!(!scopes_allow(&s(&[]), Permission::MembersRead));
        assert!(validate_scopes(&s(&["*", "read", "audit:read"])).is_ok());
        assert!(validate_scopes(&s(&["root"])).is_err());
    }

    #[test]
    /// Finding 1: a key could mint a key with scopes it lacks.
    fn delegation_never_escalates() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let writer = s(&["api_keys:write"]);
        assert!(scope_covered(&writer, "api_keys:write"));
        for wider in [
            "*",
            "read",
            "members:write",
            "audit:read",
            "organizations:create",
        ] {
            assert!(!scope_covered(&writer, wider), "{wider}");
        }
        let all = s(&["*"]);
        assert!(scope_covered(&all, "read") && scope_covered(&all, "members:write"));
        assert!(
            !scope_covered(&all, "organizations:create"),
            "explicit only"
        );
        assert!(scope_covered(&s(&["read"]), "audit:read"));
        assert!(!scope_covered(&s(&["read"]), "*"));
        assert!(!scope_covered(&all, "nonsense"));
    }

    #[test]
    fn every_scope_round_trips() {
        for p in Permission::ALL {
            assert_eq!(Permission::from_scope(p.scope()), Some(p));
        }
    }

    #[test]
    fn every_conditional_rule_names_a_declared_operation() {
        for (method, path, _) in CONDITIONAL_RULES {
            assert!(
                ROUTE_PERMISSIONS
                    .iter()
                    .any(|(m, p, _)| m == method && p == path),
                "{method} {path}"
            );
        }
    }
}

#[cfg(test)]
mod doc_tests {
    /// The role matrix in `docs/platform.md` is the one the code enforces.
    #[test]
    fn documented_role_matrix_is_current() {
        let doc = include_str!("../../../docs/platform.md");
        assert!(
            doc.contains(&super::role_matrix_markdown()),
            "docs/platform.md must contain:\n{}",
            super::role_matrix_markdown()
        );
    }
}
