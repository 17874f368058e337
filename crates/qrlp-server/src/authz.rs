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
}

impl Permission {
    /// Every permission, in the order of the documentation.
    pub const ALL: [Permission; 14] = [
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
            | Permission::DevicesRead => Role::Viewer,
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
        }
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

/// Whether an API key's `scopes` allow `permission`: `*` allows everything; `read` allows
/// every `:read` permission; otherwise the scope must be named.
pub fn scopes_allow(scopes: &[String], permission: Permission) -> bool {
    if permission == Permission::Authenticated {
        return true;
    }
    scopes.iter().any(|s| {
        s == "*"
            || s == permission.scope()
            || (s == "read" && permission.scope().ends_with(":read"))
    })
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
}

/// The permission each protected operation declares, for the documentation's role matrix:
/// `(method, path, permission)`. Paths under `/api/v1/organizations/{org_id}` are also
/// served under `/api/organizations/{org_id}`.
pub const ROUTE_PERMISSIONS: &[(&str, &str, Permission)] = &[
    ("GET", "/api/v1/users/me", Permission::Authenticated),
    ("POST", "/api/v1/users", Permission::MembersWrite),
    ("GET", "/api/v1/users/{user_id}", Permission::MembersRead),
    ("GET", "/api/v1/organizations", Permission::Authenticated),
    ("POST", "/api/v1/organizations", Permission::Authenticated),
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
    ("GET", "/api/v1/ws/dashboard", Permission::DevicesRead),
    ("GET", "/api/v1/ws/training", Permission::DevicesRead),
    ("GET", "/api/v1/ws/security", Permission::SecurityRead),
    (
        "GET",
        "/api/v1/ws/device/{device_id}",
        Permission::DevicesRead,
    ),
];

/// The role matrix as a Markdown table: one row per permission, one column per role.
pub fn role_matrix_markdown() -> String {
    let roles = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];
    let mut out =
        String::from("| permission | owner | admin | member | viewer |\n|---|---|---|---|---|\n");
    for p in Permission::ALL {
        out.push_str(&format!("| `{}` |", p.scope()));
        for r in roles {
            out.push_str(if role_grants(r, p) { " yes |" } else { " no |" });
        }
        out.push('\n');
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
    fn every_scope_round_trips() {
        for p in Permission::ALL {
            assert_eq!(Permission::from_scope(p.scope()), Some(p));
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
