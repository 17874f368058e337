//! Web UI sessions, keyed by the SHA-256 of the cookie token.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{checked_time, now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, Session, User};
use crate::rows::SessionRow;
use crate::{sql, Store};

impl Store {
    /// Stores a web session for `user`, keyed by the SHA-256 of its cookie token. Audit:
    /// `auth.login`, in the same transaction. `NotFound` when the user does not exist.
    pub async fn create_session(
        &self,
        ctx: &AuditContext,
        user: Uuid,
        token_hash: &[u8; 32],
        csrf_token: &str,
        expires_at: OffsetDateTime,
    ) -> Result<Session, StoreError> {
        if csrf_token.is_empty() || csrf_token.len() > 256 {
            return Err(StoreError::invalid("csrf_token", "must be 1-256 bytes"));
        }
        let session = Session {
            id: Uuid::now_v7(),
            user_id: user,
            csrf_token: csrf_token.to_owned(),
            created_at: now(),
            expires_at: checked_time("expires_at", expires_at)?,
        };
        let audit = AuditEntry {
            org_id: ctx.org_id,
            ctx,
            action: "auth.login",
            target_type: "session",
            target_id: Some(session.id.to_string()),
            details: serde_json::json!({}),
            at: session.created_at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::INSERT_SESSION)
                .bind(session.id)
                .bind(user)
                .bind(&token_hash[..])
                .bind(&session.csrf_token)
                .bind(Ts(session.created_at))
                .bind(Ts(session.expires_at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(session)
    }

    /// The unexpired session with this token hash, and its user.
    pub async fn find_session(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<(Session, User)>, StoreError> {
        let at = now();
        let row: Option<SessionRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql::FIND_SESSION)
                .bind(&token_hash[..])
                .bind(Ts(at))
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(Into::into))
    }

    /// Deletes the session with this token hash (no error when there is none).
    pub async fn delete_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        on_pool!(self, |pool| {
            sqlx::query(sql::DELETE_SESSION)
                .bind(&token_hash[..])
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }

    /// Logs out: deletes the session with this token hash and writes `auth.logout` in the
    /// same transaction. Returns the session's user, or `None` when there was no such
    /// unexpired session (then nothing is written).
    pub async fn end_session(
        &self,
        ctx: &AuditContext,
        token_hash: &[u8; 32],
    ) -> Result<Option<Uuid>, StoreError> {
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let found: Option<SessionRow> = sqlx::query_as(sql::FIND_SESSION)
                .bind(&token_hash[..])
                .bind(Ts(at))
                .fetch_optional(&mut *tx)
                .await?;
            let Some((session, user)) = found.map(<(Session, User)>::from) else {
                return Ok(None);
            };
            sqlx::query(sql::DELETE_SESSION)
                .bind(&token_hash[..])
                .execute(&mut *tx)
                .await?;
            let actor = AuditContext {
                actor: crate::model::Actor::User(user.id),
                ..ctx.clone()
            };
            let audit = AuditEntry {
                org_id: ctx.org_id,
                ctx: &actor,
                action: "auth.logout",
                target_type: "session",
                target_id: Some(session.id.to_string()),
                details: serde_json::json!({}),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok(Some(user.id))
        })
    }

    /// Deletes every expired session; returns how many. For a periodic clean-up: expired
    /// sessions are already invisible to [`Store::find_session`].
    pub async fn purge_expired_sessions(&self) -> Result<u64, StoreError> {
        let at = now();
        let n = on_pool!(self, |pool| {
            sqlx::query(sql::PURGE_SESSIONS)
                .bind(Ts(at))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }
}
