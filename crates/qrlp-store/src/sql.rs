//! The SQL text, shared by both backends where the dialects agree.
//!
//! Placeholders are `$1`, `$2`, ... which PostgreSQL and SQLite both accept. Ids, times,
//! JSON and hashes are bound as typed values (see [`crate::db`]), so one statement serves
//! both backends; only transaction start and row locking differ ([`Dialect`]).

/// What differs between the two backends.
pub(crate) struct Dialect {
    /// Starts a write transaction. SQLite takes the write lock up front (`IMMEDIATE`), so a
    /// transaction that reads then writes cannot fail half-way on a stale snapshot; the busy
    /// timeout makes concurrent writers wait instead.
    pub begin: &'static str,
    /// Reads an organization's id inside a write transaction, locking the row on PostgreSQL
    /// so that owner counts cannot race (SQLite's write lock already serializes writers).
    pub lock_org: &'static str,
    /// Starts a read transaction that sees one snapshot throughout (the roll-ups and the
    /// scans after the roll-up mark must be read as of one instant).
    pub read_snapshot: &'static str,
    /// Reads the roll-up mark in a batch of scans: shared on PostgreSQL, so a roll-up step
    /// (which takes it exclusively) waits for the batch and the batch for the step.
    pub rollup_mark_shared: &'static str,
    /// Reads the roll-up mark in a roll-up step, taking it exclusively on PostgreSQL.
    pub rollup_mark_locked: &'static str,
    /// The Unix second starting a scan's quarter-hour bucket, from `scanned_at`.
    pub scan_bucket: &'static str,
}

pub(crate) const SQLITE: Dialect = Dialect {
    begin: "BEGIN IMMEDIATE",
    lock_org: "SELECT id FROM organizations WHERE id = $1",
    read_snapshot: "BEGIN",
    rollup_mark_shared: "SELECT through FROM qr_scan_rollup WHERE id = 1",
    rollup_mark_locked: "SELECT through FROM qr_scan_rollup WHERE id = 1",
    scan_bucket: "(CAST(strftime('%s', scanned_at) AS INTEGER) / 900) * 900",
};

pub(crate) const POSTGRES: Dialect = Dialect {
    begin: "BEGIN",
    lock_org: "SELECT id FROM organizations WHERE id = $1 FOR UPDATE",
    read_snapshot: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    rollup_mark_shared: "SELECT through FROM qr_scan_rollup WHERE id = 1 FOR SHARE",
    rollup_mark_locked: "SELECT through FROM qr_scan_rollup WHERE id = 1 FOR UPDATE",
    scan_bucket: "CAST(floor(extract(epoch FROM scanned_at) / 900) * 900 AS BIGINT)",
};

macro_rules! org_cols {
    () => {
        "o.id, o.name, o.plan, o.created_at"
    };
}

macro_rules! user_cols {
    () => {
        "u.id, u.email, u.name, u.created_at"
    };
}

macro_rules! api_key_cols {
    () => {
        "k.id, k.org_id, k.name, k.prefix, k.scopes, k.created_by, k.created_at, \
         k.last_used_at, k.expires_at, k.revoked_at"
    };
}

macro_rules! member_select {
    () => {
        concat!(
            "SELECT ",
            user_cols!(),
            ", m.role, m.created_at AS joined_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.org_id = $1"
        )
    };
}

macro_rules! audit_where {
    () => {
        " FROM audit_log WHERE org_id = $1 \
         AND ($2 IS NULL OR action = $2) \
         AND ($3 IS NULL OR actor_id = $3) \
         AND ($4 IS NULL OR created_at >= $4) \
         AND ($5 IS NULL OR created_at < $5)"
    };
}

pub(crate) const PING: &str = "SELECT 1";

// organizations
pub(crate) const INSERT_ORG: &str =
    "INSERT INTO organizations (id, name, name_norm, plan, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const GET_ORG: &str = concat!(
    "SELECT ",
    org_cols!(),
    " FROM organizations o WHERE o.id = $1"
);
pub(crate) const UPDATE_ORG: &str =
    "UPDATE organizations SET name = $2, name_norm = $3, plan = $4 WHERE id = $1";
pub(crate) const COUNT_ORGS_FOR_USER: &str = "SELECT COUNT(*) FROM memberships WHERE user_id = $1";
pub(crate) const LIST_ORGS_FOR_USER: &str = concat!(
    "SELECT ",
    org_cols!(),
    ", m.role FROM memberships m JOIN organizations o ON o.id = m.org_id \
     WHERE m.user_id = $1 ORDER BY o.created_at, o.id LIMIT $2 OFFSET $3"
);

// users
pub(crate) const INSERT_USER: &str = "INSERT INTO users \
     (id, email, email_norm, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const GET_USER: &str = concat!("SELECT ", user_cols!(), " FROM users u WHERE u.id = $1");
pub(crate) const FIND_USER_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_cols!(),
    ", u.password_hash FROM users u WHERE u.email_norm = $1"
);

// memberships
pub(crate) const INSERT_MEMBER: &str =
    "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)";
pub(crate) const GET_ROLE: &str = "SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2";
pub(crate) const GET_MEMBER: &str = concat!(member_select!(), " AND m.user_id = $2");
pub(crate) const COUNT_MEMBERS: &str = "SELECT COUNT(*) FROM memberships WHERE org_id = $1";
pub(crate) const LIST_MEMBERS: &str = concat!(
    member_select!(),
    " ORDER BY m.created_at, m.user_id LIMIT $2 OFFSET $3"
);
pub(crate) const COUNT_OWNERS: &str =
    "SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'";
pub(crate) const UPDATE_ROLE: &str =
    "UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2";
pub(crate) const DELETE_MEMBER: &str = "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2";
pub(crate) const SHARES_ORG: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM memberships a \
     JOIN memberships b ON b.org_id = a.org_id WHERE a.user_id = $1 AND b.user_id = $2 LIMIT 1) t";

// API keys
pub(crate) const INSERT_API_KEY: &str = "INSERT INTO api_keys \
     (id, org_id, name, prefix, key_hash, scopes, created_by, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const GET_API_KEY: &str = concat!(
    "SELECT ",
    api_key_cols!(),
    " FROM api_keys k WHERE k.id = $1 AND k.org_id = $2"
);
pub(crate) const COUNT_API_KEYS: &str = "SELECT COUNT(*) FROM api_keys WHERE org_id = $1";
pub(crate) const LIST_API_KEYS: &str = concat!(
    "SELECT ",
    api_key_cols!(),
    " FROM api_keys k WHERE k.org_id = $1 ORDER BY k.created_at, k.id LIMIT $2 OFFSET $3"
);
pub(crate) const REVOKE_API_KEY: &str =
    "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL";
pub(crate) const FIND_API_KEY: &str = concat!(
    "SELECT ",
    api_key_cols!(),
    ", o.name AS org_name, o.plan AS org_plan, o.created_at AS org_created_at \
     FROM api_keys k JOIN organizations o ON o.id = k.org_id WHERE k.key_hash = $1"
);
pub(crate) const TOUCH_API_KEY: &str = "UPDATE api_keys SET last_used_at = $2 \
     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)";

// sessions
pub(crate) const INSERT_SESSION: &str = "INSERT INTO sessions \
     (id, user_id, token_hash, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
pub(crate) const FIND_SESSION: &str = concat!(
    "SELECT s.id AS session_id, s.csrf_token, s.created_at AS session_created_at, \
     s.expires_at, ",
    user_cols!(),
    " FROM sessions s JOIN users u ON u.id = s.user_id \
     WHERE s.token_hash = $1 AND s.expires_at > $2"
);
pub(crate) const DELETE_SESSION: &str = "DELETE FROM sessions WHERE token_hash = $1";
pub(crate) const PURGE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";
pub(crate) const PURGE_USER_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2";

// audit
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_log \
     (id, org_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, \
     request_id, details, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
pub(crate) const COUNT_AUDIT_FILTERED: &str = concat!("SELECT COUNT(*)", audit_where!());
pub(crate) const LIST_AUDIT: &str = concat!(
    "SELECT id, org_id, actor_type, actor_id, action, target_type, target_id, ip, user_agent, \
     request_id, details, created_at",
    audit_where!(),
    " ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7"
);
pub(crate) const COUNT_AUDIT: &str = "SELECT COUNT(*) FROM audit_log WHERE org_id = $1";

/// One cheap read per table, for the PostgreSQL integrity check.
pub(crate) const TABLE_PROBES: [&str; 8] = [
    "SELECT 1 FROM organizations LIMIT 1",
    "SELECT 1 FROM users LIMIT 1",
    "SELECT 1 FROM memberships LIMIT 1",
    "SELECT 1 FROM api_keys LIMIT 1",
    "SELECT 1 FROM sessions LIMIT 1",
    "SELECT 1 FROM audit_log LIMIT 1",
    "SELECT 1 FROM invitations LIMIT 1",
    "SELECT 1 FROM password_resets LIMIT 1",
];

// invitations and password resets (issue 9)
macro_rules! invitation_cols {
    () => {
        "i.id, i.org_id, i.email, i.name, i.role, i.created_at, i.expires_at, i.accepted_at"
    };
}

pub(crate) const INSERT_INVITATION: &str = "INSERT INTO invitations \
     (id, org_id, email, email_norm, name, role, token_hash, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub(crate) const COUNT_INVITATIONS: &str = "SELECT COUNT(*) FROM invitations WHERE org_id = $1";
pub(crate) const LIST_INVITATIONS: &str = concat!(
    "SELECT ",
    invitation_cols!(),
    " FROM invitations i WHERE i.org_id = $1 ORDER BY i.created_at, i.id LIMIT $2 OFFSET $3"
);
/// The open invitation with a token hash (binds: hash, now).
pub(crate) const FIND_OPEN_INVITATION: &str = concat!(
    "SELECT ",
    invitation_cols!(),
    " FROM invitations i WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > $2"
);
/// Marks an invitation used, only if it still is open (binds: id, now, user).
pub(crate) const ACCEPT_INVITATION: &str = "UPDATE invitations SET accepted_at = $2, \
     accepted_by = $3 WHERE id = $1 AND accepted_at IS NULL AND expires_at > $2";
pub(crate) const DELETE_INVITATION: &str =
    "DELETE FROM invitations WHERE id = $1 AND org_id = $2 AND accepted_at IS NULL";
pub(crate) const PURGE_INVITATIONS: &str =
    "DELETE FROM invitations WHERE accepted_at IS NULL AND expires_at <= $1";
pub(crate) const USER_ID_BY_EMAIL: &str = "SELECT id FROM users WHERE email_norm = $1";
pub(crate) const SET_PASSWORD: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";
pub(crate) const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";
pub(crate) const INSERT_PASSWORD_RESET: &str = "INSERT INTO password_resets \
     (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
/// Takes a reset token: deletes it and returns its user when it had not expired.
pub(crate) const TAKE_PASSWORD_RESET: &str =
    "DELETE FROM password_resets WHERE token_hash = $1 RETURNING user_id, expires_at";
pub(crate) const PURGE_PASSWORD_RESETS: &str = "DELETE FROM password_resets WHERE expires_at <= $1";
pub(crate) const FIND_ORG_BY_NAME: &str = concat!(
    "SELECT ",
    org_cols!(),
    " FROM organizations o WHERE o.name_norm = $1"
);
