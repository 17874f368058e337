//! Invitations into an organization and "forgot password" tokens: single-use secrets kept
//! as SHA-256, each redeemed in one transaction with everything it grants.
//!
//! Membership of an organization is granted only by redeeming that organization's
//! invitation: an account created elsewhere (by another organization's invitation) gains
//! nothing, because only the invitee holds the token, and an existing account must be
//! signed in as itself to redeem.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{checked_time, now, Ts};
use crate::error::StoreError;
use crate::model::{
    Actor, AuditContext, Invitation, Member, NewInvitation, Page, PageRequest, Redeemer, User,
};
use crate::rows::{self, MemberRow};
use crate::validate::{normalize, valid_email, valid_name};
use crate::{page_of, sql, Store};

#[derive(sqlx::FromRow)]
pub(crate) struct InvitationRow {
    id: Uuid,
    org_id: Uuid,
    email: String,
    name: Option<String>,
    role: String,
    created_at: Ts,
    expires_at: Ts,
    accepted_at: Option<Ts>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = StoreError;
    fn try_from(r: InvitationRow) -> Result<Self, StoreError> {
        Ok(Invitation {
            id: r.id,
            org_id: r.org_id,
            email: r.email,
            name: r.name,
            role: rows::role(&r.role)?,
            created_at: r.created_at.0,
            expires_at: r.expires_at.0,
            accepted_at: r.accepted_at.map(|t| t.0),
        })
    }
}

impl Store {
    /// Stores an invitation. Audit: `invitation.create` with the email and role.
    /// `NotFound` when the organization does not exist. Whether an account with the email
    /// exists plays no part.
    pub async fn create_invitation(
        &self,
        ctx: &AuditContext,
        new: NewInvitation,
    ) -> Result<Invitation, StoreError> {
        let email = valid_email(&new.email)?;
        let name = new
            .name
            .as_deref()
            .map(|n| valid_name("name", n))
            .transpose()?;
        let invitation = Invitation {
            id: Uuid::now_v7(),
            org_id: new.org_id,
            email,
            name,
            role: new.role,
            created_at: now(),
            expires_at: checked_time("expires_at", new.expires_at)?,
            accepted_at: None,
        };
        let audit = AuditEntry {
            org_id: Some(new.org_id),
            ctx,
            action: "invitation.create",
            target_type: "invitation",
            target_id: Some(invitation.id.to_string()),
            details: json!({ "email": invitation.email, "role": invitation.role }),
            at: invitation.created_at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::INSERT_INVITATION)
                .bind(invitation.id)
                .bind(invitation.org_id)
                .bind(&invitation.email)
                .bind(normalize(&invitation.email))
                .bind(invitation.name.as_deref())
                .bind(invitation.role.as_str())
                .bind(&new.token_hash[..])
                .bind(Ts(invitation.created_at))
                .bind(Ts(invitation.expires_at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(invitation)
    }

    /// The invitations of `org`, oldest first (open, used and expired alike).
    pub async fn list_invitations(
        &self,
        org: Uuid,
        page: PageRequest,
    ) -> Result<Page<Invitation>, StoreError> {
        let (total, rows): (i64, Vec<InvitationRow>) = self
            .page_rows(sql::COUNT_INVITATIONS, sql::LIST_INVITATIONS, org, page)
            .await?;
        let items = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, page, total))
    }

    /// Withdraws an open invitation of `org`. Audit: `invitation.revoke`. `NotFound` for
    /// another organization's invitation or one already used.
    pub async fn revoke_invitation(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let at = now();
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "invitation.revoke",
            target_type: "invitation",
            target_id: Some(id.to_string()),
            details: json!({}),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(sql::DELETE_INVITATION)
                .bind(id)
                .bind(org)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Redeems the open invitation whose token hashes to `token_hash`, in one transaction:
    /// for [`Redeemer::NewAccount`] the account is created (audit `user.create`), then the
    /// membership (audit `member.add`), and the invitation is marked used.
    ///
    /// `NotFound` when no open, unexpired invitation has this token; `Conflict("account")`
    /// when a new account is asked for but the email has one (sign in as it and redeem
    /// again); `Forbidden("account")` when the signed-in account is not the invited email;
    /// `Conflict("member")` when already a member.
    pub async fn redeem_invitation(
        &self,
        ctx: &AuditContext,
        token_hash: &[u8; 32],
        redeemer: Redeemer,
    ) -> Result<Member, StoreError> {
        let at = now();
        let new_name = match &redeemer {
            Redeemer::NewAccount {
                name: Some(name), ..
            } => Some(valid_name("name", name)?),
            _ => None,
        };
        let row: MemberRow = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let found: Option<InvitationRow> = sqlx::query_as(sql::FIND_OPEN_INVITATION)
                .bind(&token_hash[..])
                .bind(Ts(at))
                .fetch_optional(&mut *tx)
                .await?;
            let invitation = Invitation::try_from(found.ok_or(StoreError::NotFound)?)?;
            let norm = normalize(&invitation.email);
            let existing: Option<Uuid> = sqlx::query_scalar(sql::USER_ID_BY_EMAIL)
                .bind(&norm)
                .fetch_optional(&mut *tx)
                .await?;
            let user_id = match (&redeemer, existing) {
                (Redeemer::NewAccount { .. }, Some(_)) => {
                    return Err(StoreError::Conflict("account".into()));
                }
                (Redeemer::SignedIn(id), Some(owner)) if *id == owner => owner,
                (Redeemer::SignedIn(_), _) => {
                    return Err(StoreError::Forbidden("account".into()));
                }
                (Redeemer::NewAccount { password_hash, .. }, None) => {
                    let fallback = invitation.email.split('@').next().unwrap_or("user");
                    let name = match new_name.clone().or_else(|| invitation.name.clone()) {
                        Some(n) => n,
                        None => valid_name("name", fallback).unwrap_or_else(|_| "User".into()),
                    };
                    let user = User {
                        id: Uuid::now_v7(),
                        email: invitation.email.clone(),
                        name,
                        created_at: at,
                    };
                    sqlx::query(sql::INSERT_USER)
                        .bind(user.id)
                        .bind(&user.email)
                        .bind(&norm)
                        .bind(&user.name)
                        .bind(password_hash.as_str())
                        .bind(Ts(at))
                        .execute(&mut *tx)
                        .await?;
                    let created = AuditContext {
                        actor: Actor::User(user.id),
                        ..ctx.clone()
                    };
                    let audit = AuditEntry {
                        org_id: Some(invitation.org_id),
                        ctx: &created,
                        action: "user.create",
                        target_type: "user",
                        target_id: Some(user.id.to_string()),
                        details: json!({ "email": user.email, "invitation": invitation.id }),
                        at,
                    };
                    insert_audit!(&mut *tx, &audit)?;
                    user.id
                }
            };
            let used = sqlx::query(sql::ACCEPT_INVITATION)
                .bind(invitation.id)
                .bind(Ts(at))
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if used != 1 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(sql::INSERT_MEMBER)
                .bind(invitation.org_id)
                .bind(user_id)
                .bind(invitation.role.as_str())
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            let actor = AuditContext {
                actor: Actor::User(user_id),
                ..ctx.clone()
            };
            let audit = AuditEntry {
                org_id: Some(invitation.org_id),
                ctx: &actor,
                action: "member.add",
                target_type: "user",
                target_id: Some(user_id.to_string()),
                details: json!({ "role": invitation.role, "invitation": invitation.id }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            let row = sqlx::query_as(sql::GET_MEMBER)
                .bind(invitation.org_id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Stores a "forgot password" token for the account with `email`; returns the account,
    /// or `None` (and stores nothing) when there is none. Audit: `user.password_reset_request`.
    pub async fn create_password_reset(
        &self,
        ctx: &AuditContext,
        email: &str,
        token_hash: &[u8; 32],
        expires_at: OffsetDateTime,
    ) -> Result<Option<User>, StoreError> {
        let Some(found) = self.find_user_by_email(email).await? else {
            return Ok(None);
        };
        let user = found.user;
        let at = now();
        let expires_at = checked_time("expires_at", expires_at)?;
        let audit = AuditEntry {
            org_id: None,
            ctx,
            action: "user.password_reset_request",
            target_type: "user",
            target_id: Some(user.id.to_string()),
            details: json!({}),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::INSERT_PASSWORD_RESET)
                .bind(&token_hash[..])
                .bind(user.id)
                .bind(Ts(at))
                .bind(Ts(expires_at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(Some(user))
    }

    /// Uses a "forgot password" token once: sets the new password, ends every session of
    /// the account, and records `user.password_reset`, in one transaction. `NotFound` when
    /// the token is unknown, used or expired.
    pub async fn reset_password(
        &self,
        ctx: &AuditContext,
        token_hash: &[u8; 32],
        password_hash: &str,
    ) -> Result<Uuid, StoreError> {
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let taken: Option<(Uuid, Ts)> = sqlx::query_as(sql::TAKE_PASSWORD_RESET)
                .bind(&token_hash[..])
                .fetch_optional(&mut *tx)
                .await?;
            let user = match taken {
                Some((user, expires)) if expires.0 > at => user,
                // An expired token is deleted all the same.
                Some(_) => {
                    tx.commit().await?;
                    return Err(StoreError::NotFound);
                }
                None => return Err(StoreError::NotFound),
            };
            sqlx::query(sql::SET_PASSWORD)
                .bind(user)
                .bind(password_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql::DELETE_USER_SESSIONS)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            let actor = AuditContext {
                actor: Actor::User(user),
                ..ctx.clone()
            };
            let audit = AuditEntry {
                org_id: None,
                ctx: &actor,
                action: "user.password_reset",
                target_type: "user",
                target_id: Some(user.to_string()),
                details: json!({}),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Deletes expired sessions, unused expired invitations and expired reset tokens;
    /// returns how many rows went. For the server's periodic housekeeping.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let at = now();
        on_pool!(self, |pool| {
            let mut n = 0;
            for statement in [
                sql::PURGE_SESSIONS,
                sql::PURGE_INVITATIONS,
                sql::PURGE_PASSWORD_RESETS,
            ] {
                n += sqlx::query(statement)
                    .bind(Ts(at))
                    .execute(pool)
                    .await?
                    .rows_affected();
            }
            Ok(n)
        })
    }
}
