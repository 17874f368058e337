//! The append-only audit log: the record written with every change, standalone events and
//! the filtered, newest-first listing. There is deliberately no update or delete.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::{checked_time, now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, AuditFilter, AuditRecord, Page, PageRequest};
use crate::rows::AuditRow;
use crate::{page_of, sql, to_u64, Store};

/// Longest stored `User-Agent`; longer ones are cut.
const MAX_USER_AGENT_LEN: usize = 512;

/// One audit record about to be written.
pub(crate) struct AuditEntry<'a> {
    pub org_id: Option<Uuid>,
    pub ctx: &'a AuditContext,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
    pub at: OffsetDateTime,
}

pub(crate) fn cut_user_agent(ua: &str) -> &str {
    match ua.char_indices().nth(MAX_USER_AGENT_LEN) {
        Some((i, _)) => &ua[..i],
        None => ua,
    }
}

/// Builds `{"field": {"old": .., "new": ..}}` entries for the fields that changed.
pub(crate) fn change(
    details: &mut serde_json::Map<String, serde_json::Value>,
    field: &str,
    old: &str,
    new: &str,
) {
    if old != new {
        details.insert(field.to_owned(), json!({ "old": old, "new": new }));
    }
}

impl Store {
    /// Records a standalone event (sign-in, sign-out, ...) in `ctx.org_id`.
    pub async fn record_audit(
        &self,
        ctx: &AuditContext,
        action: &str,
        target_type: &str,
        target_id: Option<&str>,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        if action.is_empty() || action.len() > 100 {
            return Err(StoreError::invalid("action", "must be 1-100 bytes"));
        }
        if target_type.is_empty() || target_type.len() > 100 {
            return Err(StoreError::invalid("target_type", "must be 1-100 bytes"));
        }
        let audit = AuditEntry {
            org_id: ctx.org_id,
            ctx,
            action,
            target_type,
            target_id: target_id.map(str::to_owned),
            details,
            at: now(),
        };
        on_pool!(self, |pool| insert_audit!(pool, &audit))?;
        Ok(())
    }

    /// The audit records of `org` that match `filter`, newest first.
    pub async fn list_audit(
        &self,
        org: Uuid,
        filter: &AuditFilter,
        page: PageRequest,
    ) -> Result<Page<AuditRecord>, StoreError> {
        let (limit, offset) = page.limit_offset()?;
        let since = filter
            .since
            .map(|t| checked_time("since", t))
            .transpose()?
            .map(Ts);
        let until = filter
            .until
            .map(|t| checked_time("until", t))
            .transpose()?
            .map(Ts);
        let action = filter.action.as_deref();
        let (total, rows): (i64, Vec<AuditRow>) = on_pool!(self, |pool| {
            let total = sqlx::query_scalar(sql::COUNT_AUDIT_FILTERED)
                .bind(org)
                .bind(action)
                .bind(filter.actor_id)
                .bind(since)
                .bind(until)
                .fetch_one(pool)
                .await?;
            let rows = sqlx::query_as(sql::LIST_AUDIT)
                .bind(org)
                .bind(action)
                .bind(filter.actor_id)
                .bind(since)
                .bind(until)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            (total, rows)
        });
        Ok(page_of(
            rows.into_iter().map(AuditRecord::from).collect(),
            page,
            total,
        ))
    }

    /// Number of audit records of `org`.
    pub async fn count_audit(&self, org: Uuid) -> Result<u64, StoreError> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(sql::COUNT_AUDIT)
                .bind(org)
                .fetch_one(pool)
                .await
        })?;
        Ok(to_u64(n))
    }
}
