//! Organizations: create (with the owner's membership), read, rename, change plan, list a user's.

use serde_json::json;
use uuid::Uuid;

use crate::audit::{change, AuditEntry};
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, OrgWithRole, Organization, Page, PageRequest, Plan, Role};
use crate::rows::{OrgRoleRow, OrgRow};
use crate::validate::{normalize, valid_name};
use crate::{page_of, sql, Store};

impl Store {
    /// Creates an organization with `owner` as its owner. Audit: `organization.create`.
    /// `Conflict("name")` when the name exists (case-insensitively); `NotFound` when the
    /// owner does not exist.
    pub async fn create_organization(
        &self,
        ctx: &AuditContext,
        name: &str,
        plan: Plan,
        owner: Uuid,
    ) -> Result<Organization, StoreError> {
        let org = Organization {
            id: Uuid::now_v7(),
            name: valid_name("name", name)?,
            plan,
            created_at: now(),
        };
        let norm = normalize(&org.name);
        let audit = AuditEntry {
            org_id: Some(org.id),
            ctx,
            action: "organization.create",
            target_type: "organization",
            target_id: Some(org.id.to_string()),
            details: json!({ "name": org.name, "plan": plan, "owner_id": owner }),
            at: org.created_at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::INSERT_ORG)
                .bind(org.id)
                .bind(&org.name)
                .bind(&norm)
                .bind(plan.as_str())
                .bind(Ts(org.created_at))
                .execute(&mut *tx)
                .await?;
            sqlx::query(sql::INSERT_MEMBER)
                .bind(org.id)
                .bind(owner)
                .bind(Role::Owner.as_str())
                .bind(Ts(org.created_at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(org)
    }

    /// The organization with this id.
    pub async fn get_organization(&self, id: Uuid) -> Result<Organization, StoreError> {
        let row: Option<OrgRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql::GET_ORG)
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        row.ok_or(StoreError::NotFound)?.try_into()
    }

    /// The organization with this name (case-insensitively), for operators' commands.
    pub async fn find_organization_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Organization>, StoreError> {
        let norm = normalize(name);
        let row: Option<OrgRow> = on_pool!(self, |pool| {
            sqlx::query_as(sql::FIND_ORG_BY_NAME)
                .bind(&norm)
                .fetch_optional(pool)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    /// The organizations `user` is a member of, with the user's role, oldest first.
    pub async fn list_organizations_for_user(
        &self,
        user: Uuid,
        page: PageRequest,
    ) -> Result<Page<OrgWithRole>, StoreError> {
        let (total, rows): (i64, Vec<OrgRoleRow>) = self
            .page_rows(
                sql::COUNT_ORGS_FOR_USER,
                sql::LIST_ORGS_FOR_USER,
                user,
                page,
            )
            .await?;
        let items = rows
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?;
        Ok(page_of(items, page, total))
    }

    /// Renames and/or changes the plan. Audit: `organization.update` with
    /// `{"name": {"old", "new"}, "plan": {"old", "new"}}` for the fields that changed.
    pub async fn update_organization(
        &self,
        ctx: &AuditContext,
        id: Uuid,
        name: Option<&str>,
        plan: Option<Plan>,
    ) -> Result<Organization, StoreError> {
        let new_name = name.map(|n| valid_name("name", n)).transpose()?;
        let at = now();
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(d.lock_org)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let current: OrgRow = sqlx::query_as(sql::GET_ORG)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let old = Organization::try_from(current)?;
            let updated = Organization {
                name: new_name.clone().unwrap_or_else(|| old.name.clone()),
                plan: plan.unwrap_or(old.plan),
                ..old.clone()
            };
            sqlx::query(sql::UPDATE_ORG)
                .bind(id)
                .bind(&updated.name)
                .bind(normalize(&updated.name))
                .bind(updated.plan.as_str())
                .execute(&mut *tx)
                .await?;
            let mut details = serde_json::Map::new();
            change(&mut details, "name", &old.name, &updated.name);
            change(
                &mut details,
                "plan",
                old.plan.as_str(),
                updated.plan.as_str(),
            );
            let audit = AuditEntry {
                org_id: Some(id),
                ctx,
                action: "organization.update",
                target_type: "organization",
                target_id: Some(id.to_string()),
                details: serde_json::Value::Object(details),
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
            Ok(updated)
        })
    }
}
