//! API keys: stored as SHA-256 hashes with a visible prefix; every lookup by id is scoped to
//! an organization.

use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{checked_time, now, Ts};
use crate::error::StoreError;
use crate::model::{ApiKey, ApiKeyAuth, AuditContext, NewApiKey, Page, PageRequest};
use crate::rows::{ApiKeyAuthRow, ApiKeyRow};
use crate::validate::{valid_name, valid_prefix, valid_scopes};
use crate::{page_of, sql, Store};

/// The audit record of a key creation: never the hash.
pub(crate) fn api_key_create_audit<'a>(ctx: &'a AuditContext, key: &ApiKey) -> AuditEntry<'a> {
    AuditEntry {
        org_id: Some(key.org_id),
        ctx,
        action: "api_key.create",
        target_type: "api_key",
        target_id: Some(key.id.to_string()),
        details: json!({
            "name": key.name,
            "prefix": key.prefix,
            "scopes": key.scopes,
            "expires_at": key.expires_at.and_then(|t| t.format(&Rfc3339).ok()),
        }),
        at: key.created_at,
    }
}

impl Store {
    /// Stores a new key (its hash and prefix only). Audit: `api_key.create` with name,
    /// prefix, scopes and expiry. `NotFound` when the organization or creator does not exist.
    pub async fn create_api_key(
        &self,
        ctx: &AuditContext,
        key: NewApiKey,
    ) -> Result<ApiKey, StoreError> {
        valid_prefix(&key.prefix)?;
        let api_key = ApiKey {
            id: Uuid::now_v7(),
            org_id: key.org_id,
            name: valid_name("name", &key.name)?,
            prefix: key.prefix,
            scopes: valid_scopes(&key.scopes)?,
            created_by: key.created_by,
            created_at: now(),
            last_used_at: None,
            expires_at: key
                .expires_at
                .map(|t| checked_time("expires_at", t))
                .transpose()?,
            revoked_at: None,
        };
        let audit = api_key_create_audit(ctx, &api_key);
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            insert_api_key!(&mut *tx, &api_key, &key.hash)?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(api_key)
    }

    /// The keys of `org`, oldest first, including revoked and expired ones.
    pub async fn list_api_keys(
        &self,
        org: Uuid,
        page: PageRequest,
    ) -> Result<Page<ApiKey>, StoreError> {
        let (total, rows): (i64, Vec<ApiKeyRow>) = self
            .page_rows(sql::COUNT_API_KEYS, sql::LIST_API_KEYS, org, page)
            .await?;
        Ok(page_of(
            rows.into_iter().map(ApiKey::from).collect(),
            page,
            total,
        ))
    }

    /// The key `id` of `org`; `NotFound` when it belongs to another organization.
    pub async fn get_api_key(&self, org: Uuid, id: Uuid) -> Result<ApiKey, StoreError> {
        let row: Option<ApiKeyRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql::GET_API_KEY)
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        row.map(ApiKey::from).ok_or(StoreError::NotFound)
    }

    /// Revokes the key `id` of `org` (idempotent: a revoked key keeps its first revocation
    /// time). Audit: `api_key.revoke` every time. `NotFound` for another organization's key.
    pub async fn revoke_api_key(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
    ) -> Result<ApiKey, StoreError> {
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let changed = sqlx::query(sql::REVOKE_API_KEY)
                .bind(id)
                .bind(org)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let row: ApiKeyRow = sqlx::query_as(sql::GET_API_KEY)
                .bind(id)
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let key = ApiKey::from(row);
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "api_key.revoke",
                target_type: "api_key",
                target_id: Some(id.to_string()),
                details: json!({
                    "name": key.name,
                    "prefix": key.prefix,
                    "already_revoked": changed == 0,
                }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok(key)
        })
    }

    /// The key with this SHA-256, with its organization, whether or not it is still active
    /// (the caller checks [`ApiKey::is_active`]).
    pub async fn find_api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyAuth>, StoreError> {
        let row: Option<ApiKeyAuthRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql::FIND_API_KEY)
                .bind(&hash[..])
                .fetch_optional(pool)
                .await
        })?;
        row.map(ApiKeyAuth::try_from).transpose()
    }

    /// Records that the key was used at `at` (never moves `last_used_at` backwards). Not
    /// audited; a missing key is not an error.
    pub async fn touch_api_key(&self, id: Uuid, at: OffsetDateTime) -> Result<(), StoreError> {
        let at = checked_time("at", at)?;
        on_pool!(self, |pool| {
            sqlx::query(sql::TOUCH_API_KEY)
                .bind(id)
                .bind(Ts(at))
                .execute(pool)
                .await
                .map(drop)
        })?;
        Ok(())
    }
}
