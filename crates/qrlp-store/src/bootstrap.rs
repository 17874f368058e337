//! `qrlp admin bootstrap`: a first organization, its owner and an API key, in one transaction.

use serde_json::json;
use uuid::Uuid;

use crate::api_keys::api_key_create_audit;
use crate::audit::AuditEntry;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::{
    ApiKey, AuditContext, Bootstrapped, NewApiKeyMaterial, Organization, Plan, Role, User,
    UserCredentials,
};
use crate::rows::CredentialsRow;
use crate::validate::{normalize, valid_email, valid_name, valid_prefix};
use crate::{sql, Store};

impl Store {
    /// In one transaction: creates the organization (`Conflict("name")` if the name exists,
    /// and then nothing changes), finds the user by email or creates them (without a
    /// password), makes them owner and stores an API key with scopes `["*"]`. Every step is
    /// audited with the system as actor.
    pub async fn bootstrap(
        &self,
        org_name: &str,
        plan: Plan,
        email: &str,
        user_name: &str,
        key: NewApiKeyMaterial,
    ) -> Result<Bootstrapped, StoreError> {
        let at = now();
        let organization = Organization {
            id: Uuid::now_v7(),
            name: valid_name("name", org_name)?,
            plan,
            created_at: at,
        };
        let email = valid_email(email)?;
        let user_name = valid_name("user_name", user_name)?;
        valid_prefix(&key.prefix)?;
        let key_name = valid_name("key_name", &key.name)?;
        let new_user = User {
            id: Uuid::now_v7(),
            email,
            name: user_name,
            created_at: at,
        };
        let ctx = AuditContext {
            org_id: Some(organization.id),
            ..AuditContext::system()
        };
        let entry = |action, target_type, target_id: Uuid, details| AuditEntry {
            org_id: Some(organization.id),
            ctx: &ctx,
            action,
            target_type,
            target_id: Some(target_id.to_string()),
            details,
            at,
        };
        let org_audit = entry(
            "organization.create",
            "organization",
            organization.id,
            json!({ "name": organization.name, "plan": plan, "bootstrap": true }),
        );
        let user_audit = entry(
            "user.create",
            "user",
            new_user.id,
            json!({ "email": new_user.email, "name": new_user.name }),
        );

        let (user, user_created, api_key): (User, bool, ApiKey) = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(sql::INSERT_ORG)
                .bind(organization.id)
                .bind(&organization.name)
                .bind(normalize(&organization.name))
                .bind(plan.as_str())
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &org_audit)?;
            let existing: Option<CredentialsRow> = sqlx::query_as(sql::FIND_USER_BY_EMAIL)
                .bind(normalize(&new_user.email))
                .fetch_optional(&mut *tx)
                .await?;
            let found = existing.map(|row| UserCredentials::from(row).user);
            let created = found.is_none();
            let user = match found {
                Some(user) => user,
                None => {
                    sqlx::query(sql::INSERT_USER)
                        .bind(new_user.id)
                        .bind(&new_user.email)
                        .bind(normalize(&new_user.email))
                        .bind(&new_user.name)
                        .bind(None::<&str>)
                        .bind(Ts(at))
                        .execute(&mut *tx)
                        .await?;
                    insert_audit!(&mut *tx, &user_audit)?;
                    new_user.clone()
                }
            };
            sqlx::query(sql::INSERT_MEMBER)
                .bind(organization.id)
                .bind(user.id)
                .bind(Role::Owner.as_str())
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            let member_audit = entry(
                "member.add",
                "user",
                user.id,
                json!({ "role": Role::Owner }),
            );
            insert_audit!(&mut *tx, &member_audit)?;
            let api_key = ApiKey {
                id: Uuid::now_v7(),
                org_id: organization.id,
                name: key_name.clone(),
                prefix: key.prefix.clone(),
                scopes: vec!["*".to_owned()],
                created_by: Some(user.id),
                created_at: at,
                last_used_at: None,
                expires_at: None,
                revoked_at: None,
            };
            insert_api_key!(&mut *tx, &api_key, &key.hash)?;
            insert_audit!(&mut *tx, &api_key_create_audit(&ctx, &api_key))?;
            tx.commit().await?;
            (user, created, api_key)
        });
        Ok(Bootstrapped {
            organization,
            user,
            user_created,
            api_key,
        })
    }
}
