//! Users: create, read, look up by email for sign-in.

use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, User, UserCredentials};
use crate::rows::{CredentialsRow, UserRow};
use crate::validate::{normalize, valid_email, valid_name};
use crate::{sql, Store};

impl Store {
    /// Creates a user. Audit: `user.create`, in `ctx.org_id`. `Conflict("email")` when the
    /// email exists (case-insensitively).
    pub async fn create_user(
        &self,
        ctx: &AuditContext,
        email: &str,
        name: &str,
        password_hash: Option<&str>,
    ) -> Result<User, StoreError> {
        let user = User {
            id: Uuid::now_v7(),
            email: valid_email(email)?,
            name: valid_name("name", name)?,
            created_at: now(),
        };
        let audit = AuditEntry {
            org_id: ctx.org_id,
            ctx,
            action: "user.create",
            target_type: "user",
            target_id: Some(user.id.to_string()),
            details: json!({ "email": user.email, "name": user.name }),
            at: user.created_at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::INSERT_USER)
                .bind(user.id)
                .bind(&user.email)
                .bind(normalize(&user.email))
                .bind(&user.name)
                .bind(password_hash)
                .bind(Ts(user.created_at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(user)
    }

    /// The user with this id.
    pub async fn get_user(&self, id: Uuid) -> Result<User, StoreError> {
        let row: Option<UserRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql::GET_USER)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.map(User::from).ok_or(StoreError::NotFound)
    }

    /// The user with this email (case-insensitively) and their password hash, for sign-in.
    pub async fn find_user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<UserCredentials>, StoreError> {
        let norm = normalize(email);
        let row: Option<CredentialsRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql::FIND_USER_BY_EMAIL)
                .bind(&norm)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(UserCredentials::from))
    }
}
