//! Memberships: add, list, change role, remove, with the last owner protected.

use serde_json::json;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, Member, OwnerRule, Page, PageRequest, Role};
use crate::rows::{self, MemberRow};
use crate::{page_of, sql, Store};

impl Store {
    /// Adds `user` to `org` with `role`. Audit: `member.add`. `Conflict("member")` when the
    /// user is a member already; `NotFound` when the organization or the user does not exist.
    pub async fn add_member(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        user: Uuid,
        role: Role,
    ) -> Result<Member, StoreError> {
        let at = now();
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "member.add",
            target_type: "user",
            target_id: Some(user.to_string()),
            details: json!({ "role": role }),
            at,
        };
        let row: MemberRow = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::INSERT_MEMBER)
                .bind(org)
                .bind(user)
                .bind(role.as_str())
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query_as(sql::GET_MEMBER)
                .bind(org)
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// The role of `user` in `org`, if a member.
    pub async fn get_role(&self, org: Uuid, user: Uuid) -> Result<Option<Role>, StoreError> {
        let role: Option<String> = on_pool!(self, |pool| {
            sqlx::query_scalar(sql::GET_ROLE)
                .bind(org)
                .bind(user)
                .fetch_optional(pool)
                .await
        })?;
        role.as_deref().map(rows::role).transpose()
    }

    /// The members of `org`, in joining order.
    pub async fn list_members(
        &self,
        org: Uuid,
        page: PageRequest,
    ) -> Result<Page<Member>, StoreError> {
        let (total, rows): (i64, Vec<MemberRow>) = self
            .page_rows(sql::COUNT_MEMBERS, sql::LIST_MEMBERS, org, page)
            .await?;
        let items = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, page, total))
    }

    /// Changes a member's role. Audit: `member.update` with `{"role": {"old", "new"}}`.
    /// `NotFound` when not a member; `Forbidden("owner")` when the change grants the owner
    /// role or touches an owner and `rule` does not allow it (decided on the role the target
    /// has inside the transaction, so a concurrent promotion cannot slip past);
    /// `Conflict("last_owner")` when it would leave the organization without an owner.
    pub async fn update_member_role(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        user: Uuid,
        role: Role,
        rule: OwnerRule,
    ) -> Result<Member, StoreError> {
        let at = now();
        let row: MemberRow = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(d.lock_org)
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let old: String = sqlx::query_scalar(sql::GET_ROLE)
                .bind(org)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let old = rows::role(&old)?;
            if (old == Role::Owner || role == Role::Owner) && rule != OwnerRule::MayManageOwners {
                return Err(StoreError::Forbidden("owner".into()));
            }
            if old == Role::Owner && role != Role::Owner {
                let owners: i64 = sqlx::query_scalar(sql::COUNT_OWNERS)
                    .bind(org)
                    .fetch_one(&mut *tx)
                    .await?;
                if owners <= 1 {
                    return Err(StoreError::Conflict("last_owner".into()));
                }
            }
            sqlx::query(sql::UPDATE_ROLE)
                .bind(org)
                .bind(user)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query_as(sql::GET_MEMBER)
                .bind(org)
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "member.update",
                target_type: "user",
                target_id: Some(user.to_string()),
                details: json!({ "role": { "old": old, "new": role } }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// Removes a member. Audit: `member.remove` with the role they had. `NotFound` when not
    /// a member; `Forbidden("owner")` for an owner unless `rule` allows it (checked inside
    /// the transaction); `Conflict("last_owner")` for the organization's only owner.
    pub async fn remove_member(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        user: Uuid,
        rule: OwnerRule,
    ) -> Result<(), StoreError> {
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(d.lock_org)
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let old: String = sqlx::query_scalar(sql::GET_ROLE)
                .bind(org)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let old = rows::role(&old)?;
            if old == Role::Owner && rule != OwnerRule::MayManageOwners {
                return Err(StoreError::Forbidden("owner".into()));
            }
            if old == Role::Owner {
                let owners: i64 = sqlx::query_scalar(sql::COUNT_OWNERS)
                    .bind(org)
                    .fetch_one(&mut *tx)
                    .await?;
                if owners <= 1 {
                    return Err(StoreError::Conflict("last_owner".into()));
                }
            }
            sqlx::query(sql::DELETE_MEMBER)
                .bind(org)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action: "member.remove",
                target_type: "user",
                target_id: Some(user.to_string()),
                details: json!({ "role": old }),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// True when users `a` and `b` are members of at least one common organization.
    pub async fn shares_organization(&self, a: Uuid, b: Uuid) -> Result<bool, StoreError> {
        let n: i64 = on_pool!(self, |pool| {
            sqlx::query_scalar(sql::SHARES_ORG)
                .bind(a)
                .bind(b)
                .fetch_one(pool)
                .await
        })?;
        Ok(n > 0)
    }
}
