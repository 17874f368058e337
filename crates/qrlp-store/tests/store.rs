//! The store test suite. Every case is an `async fn case_xxx(store: &Store)`; the harness
//! runs it on a fresh SQLite store in a temporary directory, always, and on PostgreSQL in a
//! schema of its own when `QRLP_TEST_POSTGRES_URL` is set (an unreachable server then fails
//! the test).

use qrlp_store::secret::{
    generate_api_key, generate_csrf_token, generate_token, hash_api_key, hash_password,
    looks_like_api_key, verify_password, GeneratedKey,
};
use qrlp_store::{
    Actor, ApiKey, AuditContext, AuditFilter, NewApiKey, NewApiKeyMaterial, NewInvitation,
    Organization, OwnerRule, PageRequest, Plan, Redeemer, Role, Store, StoreConfig, StoreError,
    User,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

#[macro_use]
mod harness;

cases! {
    case_migrations_are_idempotent,
    case_organization_lifecycle,
    case_organization_names_conflict_case_insensitively,
    case_organizations_for_user_paginate,
    case_user_emails_conflict_case_insensitively,
    case_members,
    case_last_owner_is_protected,
    case_api_keys,
    case_api_keys_are_isolated_by_organization,
    case_api_key_activity,
    case_sessions,
    case_audit_records_every_mutation,
    case_audit_is_atomic_with_the_change,
    case_audit_filters_and_order,
    case_bootstrap,
    case_bootstrap_reuses_existing_user,
    case_bootstrap_refuses_existing_org_name,
    case_integrity_check,
    case_timestamps_round_trip,
    case_invalid_input,
    case_concurrent_writers,
    case_owner_rule_races_200_times,
    case_invitations_are_single_use_and_bound_to_the_email,
    case_password_reset_is_single_use_and_ends_sessions,
    case_login_and_logout_are_audited_in_their_transaction,
    case_purge_removes_expired_rows,
}

// ----- helpers --------------------------------------------------------------------------

fn ctx(org: Option<Uuid>, actor: Actor) -> AuditContext {
    AuditContext {
        org_id: org,
        actor,
        ip: Some("127.0.0.1".into()),
        user_agent: Some("store-tests/1".into()),
        request_id: Some(format!("req-{}", Uuid::now_v7().simple())),
    }
}

fn system() -> AuditContext {
    AuditContext::system()
}

async fn user(store: &Store, email: &str) -> User {
    store
        .create_user(&system(), email, "Test User", None)
        .await
        .expect("create user")
}

async fn org_owned_by(store: &Store, name: &str) -> (Organization, User) {
    let owner = user(
        store,
        &format!("owner-{}@example.com", Uuid::now_v7().simple()),
    )
    .await;
    let org = store
        .create_organization(&system(), name, Plan::Free, owner.id)
        .await
        .expect("create org");
    (org, owner)
}

fn new_key(org: Uuid, created_by: Option<Uuid>, name: &str) -> (GeneratedKey, NewApiKey) {
    let generated = generate_api_key();
    let key = NewApiKey {
        org_id: org,
        name: name.into(),
        scopes: vec!["qr:read".into(), "qr:write".into()],
        created_by,
        expires_at: None,
        prefix: generated.prefix.clone(),
        hash: generated.hash,
    };
    (generated, key)
}

fn page(page: u32, size: u32) -> PageRequest {
    PageRequest::new(page, size).expect("valid page")
}

fn is_conflict(r: &StoreError, what: &str) -> bool {
    matches!(r, StoreError::Conflict(w) if w == what)
}

// ----- cases ----------------------------------------------------------------------------

async fn case_migrations_are_idempotent(store: &Store) {
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    store.ping().await.expect("ping");
    store.integrity_check().await.expect("integrity");
    assert!(matches!(store.backend_name(), "sqlite" | "postgres"));
    assert!(store.describe().starts_with(store.backend_name()));
}

async fn case_organization_lifecycle(store: &Store) {
    let (org, owner) = org_owned_by(store, "Acme Corp").await;
    assert_eq!(org.name, "Acme Corp");
    assert_eq!(org.plan, Plan::Free);
    assert_eq!(store.get_organization(org.id).await.expect("get"), org);
    assert_eq!(
        store.get_role(org.id, owner.id).await.expect("role"),
        Some(Role::Owner)
    );
    assert!(matches!(
        store.get_organization(Uuid::now_v7()).await,
        Err(StoreError::NotFound)
    ));

    let c = ctx(None, Actor::User(owner.id));
    let updated = store
        .update_organization(&c, org.id, Some("Acme Inc"), Some(Plan::Professional))
        .await
        .expect("update");
    assert_eq!(updated.name, "Acme Inc");
    assert_eq!(updated.plan, Plan::Professional);
    assert_eq!(updated.created_at, org.created_at);
    assert_eq!(store.get_organization(org.id).await.expect("get"), updated);

    // Only the plan this time; the name keeps.
    let again = store
        .update_organization(&c, org.id, None, Some(Plan::Starter))
        .await
        .expect("update plan");
    assert_eq!(again.name, "Acme Inc");

    let audit = store
        .list_audit(org.id, &AuditFilter::default(), page(1, 100))
        .await
        .expect("audit");
    let upd = &audit.items[1];
    assert_eq!(upd.action, "organization.update");
    assert_eq!(
        upd.details,
        serde_json::json!({
            "name": {"old": "Acme Corp", "new": "Acme Inc"},
            "plan": {"old": "free", "new": "professional"},
        })
    );
    assert_eq!(
        audit.items[0].details,
        serde_json::json!({"plan": {"old": "professional", "new": "starter"}})
    );
    assert!(matches!(
        store
            .update_organization(&c, Uuid::now_v7(), Some("x"), None)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn case_organization_names_conflict_case_insensitively(store: &Store) {
    let (org, owner) = org_owned_by(store, "Globex").await;
    let err = store
        .create_organization(&system(), "  gLOBEX ", Plan::Free, owner.id)
        .await
        .expect_err("duplicate name");
    assert!(is_conflict(&err, "name"), "{err:?}");
    assert!(
        !format!("{err}").contains("INSERT"),
        "no SQL in messages: {err}"
    );

    let (other, _) = org_owned_by(store, "Initech").await;
    let before = store.count_audit(other.id).await.expect("count");
    let err = store
        .update_organization(&system(), other.id, Some("GLOBEX"), None)
        .await
        .expect_err("rename onto existing name");
    assert!(is_conflict(&err, "name"), "{err:?}");
    assert_eq!(store.count_audit(other.id).await.expect("count"), before);
    assert_eq!(
        store.get_organization(other.id).await.expect("get").name,
        "Initech"
    );
    // Changing only the case of one's own name is fine.
    let renamed = store
        .update_organization(&system(), org.id, Some("GLOBEX"), None)
        .await
        .expect("same name, other case");
    assert_eq!(renamed.name, "GLOBEX");
    // Unknown owner: the referenced user does not exist.
    assert!(matches!(
        store
            .create_organization(&system(), "Hooli", Plan::Free, Uuid::now_v7())
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn case_organizations_for_user_paginate(store: &Store) {
    let u = user(store, "many@example.com").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let org = store
            .create_organization(&system(), &format!("Org {i}"), Plan::Free, u.id)
            .await
            .expect("create");
        ids.push(org.id);
    }
    let p1 = store
        .list_organizations_for_user(u.id, page(1, 2))
        .await
        .expect("page 1");
    assert_eq!((p1.total, p1.pages(), p1.items.len()), (5, 3, 2));
    let p3 = store
        .list_organizations_for_user(u.id, page(3, 2))
        .await
        .expect("page 3");
    assert_eq!(p3.items.len(), 1);
    let p4 = store
        .list_organizations_for_user(u.id, page(4, 2))
        .await
        .expect("page 4");
    assert!(p4.items.is_empty());
    assert_eq!(p4.total, 5);
    let all = store
        .list_organizations_for_user(u.id, page(1, 100))
        .await
        .expect("all");
    let listed: Vec<Uuid> = all.items.iter().map(|o| o.organization.id).collect();
    assert_eq!(listed, ids, "stable creation order");
    assert!(all.items.iter().all(|o| o.role == Role::Owner));
    let nobody = store
        .list_organizations_for_user(Uuid::now_v7(), PageRequest::default())
        .await
        .expect("empty");
    assert_eq!((nobody.total, nobody.pages()), (0, 0));
}

async fn case_user_emails_conflict_case_insensitively(store: &Store) {
    let phc = hash_password("correct horse").expect("hash");
    let created = store
        .create_user(&system(), "A@x.com", "Alice", Some(&phc))
        .await
        .expect("create");
    assert_eq!(created.email, "A@x.com");
    let err = store
        .create_user(&system(), "a@X.com", "Other Alice", None)
        .await
        .expect_err("duplicate");
    assert!(is_conflict(&err, "email"), "{err:?}");

    let found = store
        .find_user_by_email(" a@X.COM ")
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found.user, created);
    assert_eq!(found.password_hash.as_deref(), Some(phc.as_str()));
    assert!(!format!("{found:?}").contains(&phc), "Debug hides the hash");
    assert!(verify_password(
        "correct horse",
        found.password_hash.as_deref().unwrap_or("")
    ));
    assert!(store
        .find_user_by_email("nobody@x.com")
        .await
        .expect("find")
        .is_none());
    assert_eq!(store.get_user(created.id).await.expect("get"), created);
    assert!(matches!(
        store.get_user(Uuid::now_v7()).await,
        Err(StoreError::NotFound)
    ));
}

async fn case_members(store: &Store) {
    let (org, owner) = org_owned_by(store, "Members Inc").await;
    let bob = user(store, "bob@example.com").await;
    let carol = user(store, "carol@example.com").await;
    let c = ctx(None, Actor::User(owner.id));

    let m = store
        .add_member(&c, org.id, bob.id, Role::Viewer)
        .await
        .expect("add bob");
    assert_eq!((m.user.id, m.role), (bob.id, Role::Viewer));
    store
        .add_member(&c, org.id, carol.id, Role::Member)
        .await
        .expect("add carol");
    let err = store
        .add_member(&c, org.id, bob.id, Role::Admin)
        .await
        .expect_err("twice");
    assert!(is_conflict(&err, "member"), "{err:?}");
    assert!(matches!(
        store
            .add_member(&c, Uuid::now_v7(), bob.id, Role::Admin)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .add_member(&c, org.id, Uuid::now_v7(), Role::Admin)
            .await,
        Err(StoreError::NotFound)
    ));

    let list = store.list_members(org.id, page(1, 2)).await.expect("list");
    assert_eq!((list.total, list.pages()), (3, 2));
    let ids: Vec<Uuid> = list.items.iter().map(|m| m.user.id).collect();
    assert_eq!(ids, vec![owner.id, bob.id]);

    let m = store
        .update_member_role(&c, org.id, bob.id, Role::Admin, OwnerRule::MayManageOwners)
        .await
        .expect("promote");
    assert_eq!(m.role, Role::Admin);
    assert_eq!(
        store.get_role(org.id, bob.id).await.expect("role"),
        Some(Role::Admin)
    );
    assert!(matches!(
        store
            .update_member_role(
                &c,
                org.id,
                Uuid::now_v7(),
                Role::Admin,
                OwnerRule::MayManageOwners
            )
            .await,
        Err(StoreError::NotFound)
    ));

    assert!(store
        .shares_organization(bob.id, carol.id)
        .await
        .expect("shares"));
    let (_, stranger) = org_owned_by(store, "Elsewhere").await;
    assert!(!store
        .shares_organization(bob.id, stranger.id)
        .await
        .expect("shares"));

    store
        .remove_member(&c, org.id, carol.id, OwnerRule::MayManageOwners)
        .await
        .expect("remove");
    assert_eq!(store.get_role(org.id, carol.id).await.expect("role"), None);
    assert!(matches!(
        store
            .remove_member(&c, org.id, carol.id, OwnerRule::MayManageOwners)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(!store
        .shares_organization(bob.id, carol.id)
        .await
        .expect("shares"));
}

async fn case_last_owner_is_protected(store: &Store) {
    let (org, owner) = org_owned_by(store, "Solo").await;
    let c = ctx(None, Actor::User(owner.id));
    let before = store.count_audit(org.id).await.expect("count");
    let err = store
        .update_member_role(
            &c,
            org.id,
            owner.id,
            Role::Admin,
            OwnerRule::MayManageOwners,
        )
        .await
        .expect_err("demote last owner");
    assert!(is_conflict(&err, "last_owner"), "{err:?}");
    let err = store
        .remove_member(&c, org.id, owner.id, OwnerRule::MayManageOwners)
        .await
        .expect_err("remove last owner");
    assert!(is_conflict(&err, "last_owner"), "{err:?}");
    assert_eq!(store.count_audit(org.id).await.expect("count"), before);
    assert_eq!(
        store.get_role(org.id, owner.id).await.expect("role"),
        Some(Role::Owner)
    );

    // With a second owner, the first may step down, and then the second is protected.
    let second = user(store, "second@example.com").await;
    store
        .add_member(&c, org.id, second.id, Role::Owner)
        .await
        .expect("add owner");
    store
        .update_member_role(
            &c,
            org.id,
            owner.id,
            Role::Member,
            OwnerRule::MayManageOwners,
        )
        .await
        .expect("demote first owner");
    assert!(is_conflict(
        &store
            .remove_member(&c, org.id, second.id, OwnerRule::MayManageOwners)
            .await
            .expect_err("last"),
        "last_owner"
    ));
    // Owner to owner is not a demotion.
    store
        .update_member_role(
            &c,
            org.id,
            second.id,
            Role::Owner,
            OwnerRule::MayManageOwners,
        )
        .await
        .expect("no-op role change");
}

async fn case_api_keys(store: &Store) {
    let (org, owner) = org_owned_by(store, "Keys Ltd").await;
    let c = ctx(None, Actor::User(owner.id));
    let (secret, new) = new_key(org.id, Some(owner.id), "ci");
    let key = store
        .create_api_key(&c, new.clone())
        .await
        .expect("create key");
    assert_eq!(key.org_id, org.id);
    assert_eq!(key.prefix, secret.prefix);
    assert_eq!(
        key.scopes,
        vec!["qr:read".to_owned(), "qr:write".to_owned()]
    );
    assert_eq!(key.created_by, Some(owner.id));
    assert!(key.is_active(OffsetDateTime::now_utc()));
    assert!(!format!("{new:?}").contains(&format!("{:?}", new.hash)));

    // The same secret cannot be stored twice.
    let err = store.create_api_key(&c, new).await.expect_err("dup hash");
    assert!(is_conflict(&err, "api_key"), "{err:?}");

    let (_, second) = new_key(org.id, None, "deploy");
    let second = store.create_api_key(&c, second).await.expect("second");
    let list = store.list_api_keys(org.id, page(1, 1)).await.expect("list");
    assert_eq!((list.total, list.pages()), (2, 2));
    assert_eq!(list.items, vec![key.clone()]);
    assert_eq!(
        store.get_api_key(org.id, second.id).await.expect("get"),
        second
    );

    let auth = store
        .find_api_key(&hash_api_key(&secret.secret))
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(auth.key, key);
    assert_eq!(auth.organization, org);
    assert!(store
        .find_api_key(&[7u8; 32])
        .await
        .expect("find")
        .is_none());

    let revoked = store
        .revoke_api_key(&c, org.id, key.id)
        .await
        .expect("revoke");
    let at = revoked.revoked_at.expect("revoked");
    assert!(!revoked.is_active(OffsetDateTime::now_utc()));
    let again = store
        .revoke_api_key(&c, org.id, key.id)
        .await
        .expect("again");
    assert_eq!(again.revoked_at, Some(at), "idempotent");
    // Still found (the caller decides), and reported revoked.
    let auth = store
        .find_api_key(&secret.hash)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(auth.key.revoked_at, Some(at));

    let audit = store
        .list_audit(
            org.id,
            &AuditFilter {
                action: Some("api_key.revoke".into()),
                ..AuditFilter::default()
            },
            page(1, 10),
        )
        .await
        .expect("audit");
    assert_eq!(audit.total, 2, "every revoke is audited");
    assert_eq!(
        audit.items[0].details["already_revoked"],
        serde_json::json!(true)
    );
    assert_eq!(
        audit.items[1].details["already_revoked"],
        serde_json::json!(false)
    );
}

async fn case_api_keys_are_isolated_by_organization(store: &Store) {
    let (a, owner_a) = org_owned_by(store, "Tenant A").await;
    let (b, owner_b) = org_owned_by(store, "Tenant B").await;
    let (_, key_b) = new_key(b.id, Some(owner_b.id), "b");
    let key_b = store
        .create_api_key(&ctx(None, Actor::User(owner_b.id)), key_b)
        .await
        .expect("create");
    let ca = ctx(None, Actor::User(owner_a.id));
    let audit_a = store.count_audit(a.id).await.expect("count");
    let audit_b = store.count_audit(b.id).await.expect("count");
    assert!(matches!(
        store.get_api_key(a.id, key_b.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.revoke_api_key(&ca, a.id, key_b.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(store
        .list_api_keys(a.id, page(1, 10))
        .await
        .expect("list")
        .items
        .is_empty());
    let still = store.get_api_key(b.id, key_b.id).await.expect("get");
    assert!(
        still.revoked_at.is_none(),
        "the other organization's key is untouched"
    );
    assert_eq!(store.count_audit(a.id).await.expect("count"), audit_a);
    assert_eq!(store.count_audit(b.id).await.expect("count"), audit_b);
    // A key for an organization that does not exist.
    let (_, ghost) = new_key(Uuid::now_v7(), None, "ghost");
    assert!(matches!(
        store.create_api_key(&system(), ghost).await,
        Err(StoreError::NotFound)
    ));
}

async fn case_api_key_activity(store: &Store) {
    let (org, _) = org_owned_by(store, "Expiry").await;
    let now = OffsetDateTime::now_utc();
    let (_, mut new) = new_key(org.id, None, "short-lived");
    new.expires_at = Some(now - Duration::minutes(1));
    let expired = store.create_api_key(&system(), new).await.expect("create");
    assert!(!expired.is_active(now));
    let (_, mut new) = new_key(org.id, None, "long-lived");
    new.expires_at = Some(now + Duration::days(1));
    let live = store.create_api_key(&system(), new).await.expect("create");
    assert!(live.is_active(now));
    assert!(!live.is_active(now + Duration::days(2)));

    let used = datetime!(2030-05-06 07:08:09.123456789 UTC);
    store.touch_api_key(live.id, used).await.expect("touch");
    let earlier = used - Duration::hours(1);
    store
        .touch_api_key(live.id, earlier)
        .await
        .expect("touch earlier");
    let got = store.get_api_key(org.id, live.id).await.expect("get");
    assert_eq!(
        got.last_used_at,
        Some(datetime!(2030-05-06 07:08:09.123456 UTC))
    );
    // Touching is not audited and a missing key is not an error.
    store
        .touch_api_key(Uuid::now_v7(), used)
        .await
        .expect("missing key");
}

async fn case_sessions(store: &Store) {
    let u = user(store, "session@example.com").await;
    let c = ctx(None, Actor::User(u.id));
    let (token, hash) = generate_token();
    let csrf = generate_csrf_token();
    let expires = OffsetDateTime::now_utc() + Duration::hours(1);
    let session = store
        .create_session(&c, u.id, &hash, &csrf, expires)
        .await
        .expect("create");
    assert!(
        !format!("{session:?}").contains(&csrf),
        "Debug hides the CSRF token"
    );
    let (found, found_user) = store
        .find_session(&hash)
        .await
        .expect("find")
        .expect("exists");
    assert_eq!(found, session);
    assert_eq!(found_user, u);
    assert_eq!(found.csrf_token, csrf);
    assert_ne!(token.as_bytes(), &hash[..]);

    let (_, old_hash) = generate_token();
    store
        .create_session(
            &c,
            u.id,
            &old_hash,
            &csrf,
            OffsetDateTime::now_utc() - Duration::seconds(1),
        )
        .await
        .expect("create expired");
    assert!(store.find_session(&old_hash).await.expect("find").is_none());
    assert_eq!(store.purge_expired_sessions().await.expect("purge"), 1);
    assert!(
        store.find_session(&hash).await.expect("find").is_some(),
        "live one kept"
    );

    store.delete_session(&hash).await.expect("delete");
    assert!(store.find_session(&hash).await.expect("find").is_none());
    store.delete_session(&hash).await.expect("delete twice");
    assert!(matches!(
        store
            .create_session(&c, Uuid::now_v7(), &[1u8; 32], &csrf, expires)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn case_audit_records_every_mutation(store: &Store) {
    let admin = user(store, "admin@example.com").await;
    let base = ctx(None, Actor::User(admin.id));
    let org = store
        .create_organization(&base, "Audited", Plan::Starter, admin.id)
        .await
        .expect("org");
    let mut expected: Vec<(&str, String)> = vec![("organization.create", org.id.to_string())];
    let c = ctx(Some(org.id), Actor::User(admin.id));

    let u = store
        .create_user(&c, "member@example.com", "Member", None)
        .await
        .expect("user");
    expected.push(("user.create", u.id.to_string()));
    store
        .add_member(&c, org.id, u.id, Role::Member)
        .await
        .expect("add");
    expected.push(("member.add", u.id.to_string()));
    store
        .update_member_role(&c, org.id, u.id, Role::Viewer, OwnerRule::MayManageOwners)
        .await
        .expect("update");
    expected.push(("member.update", u.id.to_string()));
    let (_, new) = new_key(org.id, Some(admin.id), "audited");
    let key = store.create_api_key(&c, new).await.expect("key");
    expected.push(("api_key.create", key.id.to_string()));
    let kc = ctx(None, Actor::ApiKey(key.id));
    store
        .update_organization(&kc, org.id, None, Some(Plan::Enterprise))
        .await
        .expect("update org");
    expected.push(("organization.update", org.id.to_string()));
    store
        .revoke_api_key(&c, org.id, key.id)
        .await
        .expect("revoke");
    expected.push(("api_key.revoke", key.id.to_string()));
    store
        .remove_member(&c, org.id, u.id, OwnerRule::MayManageOwners)
        .await
        .expect("remove");
    expected.push(("member.remove", u.id.to_string()));
    store
        .record_audit(
            &c,
            "auth.login",
            "user",
            Some(&admin.id.to_string()),
            serde_json::json!({"method": "password"}),
        )
        .await
        .expect("standalone");
    expected.push(("auth.login", admin.id.to_string()));

    assert_eq!(
        store.count_audit(org.id).await.expect("count"),
        expected.len() as u64
    );
    let log = store
        .list_audit(org.id, &AuditFilter::default(), page(1, 100))
        .await
        .expect("list");
    let mut got: Vec<(&str, String)> = log
        .items
        .iter()
        .map(|r| (r.action.as_str(), r.target_id.clone().unwrap_or_default()))
        .collect();
    got.reverse();
    assert_eq!(got, expected);

    for r in &log.items {
        assert_eq!(r.org_id, Some(org.id));
        assert_eq!(r.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.user_agent.as_deref(), Some("store-tests/1"));
        let (actor_type, actor_id, request_id) = if r.action == "organization.create" {
            ("user", Some(admin.id), base.request_id.clone())
        } else if r.action == "organization.update" {
            ("api_key", Some(key.id), kc.request_id.clone())
        } else {
            ("user", Some(admin.id), c.request_id.clone())
        };
        assert_eq!(r.actor_type, actor_type, "{}", r.action);
        assert_eq!(r.actor_id, actor_id, "{}", r.action);
        assert_eq!(r.request_id, request_id, "{}", r.action);
    }
    let created = log
        .items
        .iter()
        .find(|r| r.action == "api_key.create")
        .expect("create");
    assert_eq!(created.target_type, "api_key");
    assert_eq!(created.details["name"], "audited");
    assert_eq!(created.details["prefix"], key.prefix.as_str());
    assert_eq!(
        created.details["scopes"],
        serde_json::json!(["qr:read", "qr:write"])
    );
    let text = serde_json::to_string(&log.items).expect("json");
    assert!(!text.contains("hash"), "no hashes in audit details");

    // A user created outside any organization is audited without one.
    user(store, "loner@example.com").await;
    assert_eq!(
        store.count_audit(org.id).await.expect("count"),
        expected.len() as u64
    );
}

async fn case_audit_is_atomic_with_the_change(store: &Store) {
    let (org, owner) = org_owned_by(store, "Atomic").await;
    let (other, _) = org_owned_by(store, "Atomic Two").await;
    let c = ctx(Some(org.id), Actor::User(owner.id));
    let start = store.count_audit(org.id).await.expect("count");

    let dup = store
        .create_user(&c, &owner.email.to_uppercase(), "Dup", None)
        .await
        .expect_err("duplicate email");
    assert!(is_conflict(&dup, "email"));
    let again = store
        .add_member(&c, org.id, owner.id, Role::Viewer)
        .await
        .expect_err("duplicate member");
    assert!(is_conflict(&again, "member"));
    let rename = store
        .update_organization(&c, org.id, Some("atomic two"), Some(Plan::Enterprise))
        .await
        .expect_err("name taken");
    assert!(is_conflict(&rename, "name"));
    assert_eq!(
        store.get_organization(org.id).await.expect("get").plan,
        Plan::Free
    );
    assert!(store
        .revoke_api_key(&c, org.id, Uuid::now_v7())
        .await
        .is_err());
    assert!(store
        .remove_member(&c, org.id, owner.id, OwnerRule::MayManageOwners)
        .await
        .is_err());
    assert_eq!(store.count_audit(org.id).await.expect("count"), start);
    assert_eq!(store.count_audit(other.id).await.expect("count"), 1);
}

async fn case_audit_filters_and_order(store: &Store) {
    let (org, owner) = org_owned_by(store, "Filters").await;
    let other_actor = Uuid::now_v7();
    let mine = ctx(Some(org.id), Actor::User(owner.id));
    let theirs = ctx(Some(org.id), Actor::ApiKey(other_actor));
    for i in 0..3 {
        store
            .record_audit(
                &mine,
                "auth.login",
                "user",
                None,
                serde_json::json!({ "i": i }),
            )
            .await
            .expect("record");
        store
            .record_audit(
                &theirs,
                "qr.create",
                "qr",
                None,
                serde_json::json!({ "i": i }),
            )
            .await
            .expect("record");
    }
    let all = store
        .list_audit(org.id, &AuditFilter::default(), page(1, 100))
        .await
        .expect("all");
    // organization.create + member? (owner membership is part of organization.create) + 6
    assert_eq!(all.total, 7);
    for pair in all.items.windows(2) {
        assert!(
            (pair[0].created_at, pair[0].id) > (pair[1].created_at, pair[1].id),
            "newest first"
        );
    }
    assert_eq!(
        all.items.last().map(|r| r.action.as_str()),
        Some("organization.create")
    );

    let logins = store
        .list_audit(
            org.id,
            &AuditFilter {
                action: Some("auth.login".into()),
                ..AuditFilter::default()
            },
            page(1, 2),
        )
        .await
        .expect("by action");
    assert_eq!(
        (logins.total, logins.pages(), logins.items.len()),
        (3, 2, 2)
    );
    assert_eq!(logins.items[0].details, serde_json::json!({ "i": 2 }));

    let by_actor = store
        .list_audit(
            org.id,
            &AuditFilter {
                actor_id: Some(other_actor),
                ..AuditFilter::default()
            },
            page(1, 100),
        )
        .await
        .expect("by actor");
    assert_eq!(by_actor.total, 3);
    assert!(by_actor.items.iter().all(|r| r.actor_type == "api_key"));

    // Time range: [since, until) around the middle records.
    let oldest_first: Vec<_> = all.items.iter().rev().collect();
    let since = oldest_first[2].created_at;
    let until = oldest_first[5].created_at;
    let range = store
        .list_audit(
            org.id,
            &AuditFilter {
                since: Some(since),
                until: Some(until),
                ..AuditFilter::default()
            },
            page(1, 100),
        )
        .await
        .expect("by time");
    let expected = oldest_first
        .iter()
        .filter(|r| r.created_at >= since && r.created_at < until)
        .count();
    assert_eq!(range.total as usize, expected);
    assert!(expected >= 1);
    assert!(range
        .items
        .iter()
        .all(|r| r.created_at >= since && r.created_at < until));
    let future = store
        .list_audit(
            org.id,
            &AuditFilter {
                since: Some(OffsetDateTime::now_utc() + Duration::hours(1)),
                ..AuditFilter::default()
            },
            page(1, 100),
        )
        .await
        .expect("future");
    assert_eq!(future.total, 0);
}

fn material(name: &str) -> (GeneratedKey, NewApiKeyMaterial) {
    let g = generate_api_key();
    let m = NewApiKeyMaterial {
        name: name.into(),
        prefix: g.prefix.clone(),
        hash: g.hash,
    };
    (g, m)
}

async fn case_bootstrap(store: &Store) {
    let (secret, key) = material("bootstrap");
    let b = store
        .bootstrap(
            "First Org",
            Plan::Enterprise,
            "root@example.com",
            "Root",
            key,
        )
        .await
        .expect("bootstrap");
    assert!(b.user_created);
    assert_eq!(b.organization.name, "First Org");
    assert_eq!(b.organization.plan, Plan::Enterprise);
    assert_eq!(b.user.email, "root@example.com");
    assert_eq!(b.api_key.scopes, vec!["*".to_owned()]);
    assert_eq!(b.api_key.created_by, Some(b.user.id));
    assert_eq!(b.api_key.prefix, secret.prefix);
    assert_eq!(
        store
            .get_organization(b.organization.id)
            .await
            .expect("org"),
        b.organization
    );
    assert_eq!(
        store
            .get_role(b.organization.id, b.user.id)
            .await
            .expect("role"),
        Some(Role::Owner)
    );
    let auth = store
        .find_api_key(&hash_api_key(&secret.secret))
        .await
        .expect("find")
        .expect("key");
    assert_eq!(auth.key, b.api_key);
    assert_eq!(auth.organization, b.organization);

    let log = store
        .list_audit(b.organization.id, &AuditFilter::default(), page(1, 100))
        .await
        .expect("audit");
    let actions: Vec<&str> = log.items.iter().rev().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "organization.create",
            "user.create",
            "member.add",
            "api_key.create"
        ]
    );
    assert!(log
        .items
        .iter()
        .all(|r| r.actor_type == "system" && r.actor_id.is_none()));
}

async fn case_bootstrap_reuses_existing_user(store: &Store) {
    let existing = user(store, "Existing@Example.com").await;
    let (_, key) = material("bootstrap");
    let b = store
        .bootstrap(
            "Second Org",
            Plan::Free,
            "existing@example.COM",
            "Ignored",
            key,
        )
        .await
        .expect("bootstrap");
    assert!(!b.user_created);
    assert_eq!(b.user, existing);
    assert_eq!(
        store.count_audit(b.organization.id).await.expect("count"),
        3
    );
}

async fn case_bootstrap_refuses_existing_org_name(store: &Store) {
    let (org, owner) = org_owned_by(store, "Taken").await;
    let audit_before = store.count_audit(org.id).await.expect("count");
    let orgs_before = store
        .list_organizations_for_user(owner.id, PageRequest::default())
        .await
        .expect("orgs");
    let (secret, key) = material("bootstrap");
    let err = store
        .bootstrap("TAKEN", Plan::Free, "fresh@example.com", "Fresh", key)
        .await
        .expect_err("existing name");
    assert!(is_conflict(&err, "name"), "{err:?}");
    assert!(store
        .find_user_by_email("fresh@example.com")
        .await
        .expect("find")
        .is_none());
    assert!(store
        .find_api_key(&secret.hash)
        .await
        .expect("find")
        .is_none());
    assert_eq!(
        store.count_audit(org.id).await.expect("count"),
        audit_before
    );
    assert_eq!(
        store
            .list_organizations_for_user(owner.id, PageRequest::default())
            .await
            .expect("orgs"),
        orgs_before
    );
    // Also with the existing user as the would-be owner: no membership, no key appears.
    let (secret, key) = material("bootstrap");
    assert!(store
        .bootstrap("taken", Plan::Free, &owner.email, "Owner", key)
        .await
        .is_err());
    assert!(store
        .find_api_key(&secret.hash)
        .await
        .expect("find")
        .is_none());
    assert_eq!(
        store
            .list_organizations_for_user(owner.id, PageRequest::default())
            .await
            .expect("orgs")
            .total,
        1
    );
}

async fn case_integrity_check(store: &Store) {
    let (secret, key) = material("integrity");
    store
        .bootstrap("Integrity", Plan::Free, "i@example.com", "I", key)
        .await
        .expect("bootstrap");
    store.integrity_check().await.expect("integrity");
    assert!(!store.describe().contains(&secret.secret));
}

async fn case_timestamps_round_trip(store: &Store) {
    let (org, owner) = org_owned_by(store, "Clock").await;
    assert_eq!(org.created_at.offset(), time::UtcOffset::UTC);
    assert_eq!(
        org.created_at.nanosecond() % 1000,
        0,
        "microsecond precision"
    );
    assert_eq!(
        store
            .get_organization(org.id)
            .await
            .expect("get")
            .created_at,
        org.created_at
    );

    let odd = datetime!(2031-12-31 23:59:59.999999999 +05:30);
    let (_, mut new) = new_key(org.id, Some(owner.id), "clock");
    new.expires_at = Some(odd);
    let key = store.create_api_key(&system(), new).await.expect("key");
    let expected = datetime!(2031-12-31 18:29:59.999999 UTC);
    assert_eq!(key.expires_at, Some(expected));
    assert_eq!(
        key.expires_at.map(|t| t.offset()),
        Some(time::UtcOffset::UTC)
    );
    let stored = store.get_api_key(org.id, key.id).await.expect("get");
    assert_eq!(stored, key, "what create returned is what is stored");
    let whole = datetime!(2032-01-01 00:00:00 UTC);
    store.touch_api_key(key.id, whole).await.expect("touch");
    assert_eq!(
        store
            .get_api_key(org.id, key.id)
            .await
            .expect("get")
            .last_used_at,
        Some(whole)
    );
    let (_, h) = generate_token();
    let s = store
        .create_session(&system(), owner.id, &h, "csrf", odd)
        .await
        .expect("session");
    assert_eq!(s.expires_at, expected);
    let (found, _) = store.find_session(&h).await.expect("find").expect("exists");
    assert_eq!(found, s);
    let json = serde_json::to_value(&key).expect("json");
    assert_eq!(json["expires_at"], "2031-12-31T18:29:59.999999Z");
}

async fn case_invalid_input(store: &Store) {
    let (org, owner) = org_owned_by(store, "Validation").await;
    let bad_page = PageRequest { page: 0, size: 10 };
    assert!(matches!(
        store.list_members(org.id, bad_page).await,
        Err(StoreError::Invalid(_))
    ));
    let huge = PageRequest {
        page: 1,
        size: 1000,
    };
    assert!(matches!(
        store.list_api_keys(org.id, huge).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.create_organization(&system(), "   ", Plan::Free, owner.id).await,
        Err(StoreError::Invalid(m)) if m.starts_with("name")
    ));
    assert!(matches!(
        store.create_user(&system(), "not-an-email", "X", None).await,
        Err(StoreError::Invalid(m)) if m.starts_with("email")
    ));
    let (_, mut new) = new_key(org.id, None, "bad");
    new.scopes = vec!["has space".into()];
    assert!(matches!(
        store.create_api_key(&system(), new).await,
        Err(StoreError::Invalid(m)) if m.starts_with("scopes")
    ));
    assert_eq!(store.count_audit(org.id).await.expect("count"), 1);
}

async fn case_concurrent_writers(store: &Store) {
    // Two owners step down at the same time: exactly one may succeed.
    let (org, first) = org_owned_by(store, "Race").await;
    let second = user(store, "race2@example.com").await;
    let c = ctx(None, Actor::User(first.id));
    store
        .add_member(&c, org.id, second.id, Role::Owner)
        .await
        .expect("second owner");
    let (a, b) = tokio::join!(
        store.update_member_role(
            &c,
            org.id,
            first.id,
            Role::Member,
            OwnerRule::MayManageOwners
        ),
        store.remove_member(&c, org.id, second.id, OwnerRule::MayManageOwners),
    );
    assert!(a.is_ok() != b.is_ok(), "exactly one wins: {a:?} / {b:?}");
    let loser = a.err().or(b.err()).expect("one error");
    assert!(is_conflict(&loser, "last_owner"), "{loser:?}");
    let owners = store
        .list_members(org.id, page(1, 10))
        .await
        .expect("members")
        .items
        .iter()
        .filter(|m| m.role == Role::Owner)
        .count();
    assert_eq!(owners, 1);

    // Many writers at once all land (SQLite queues them behind its write lock).
    let writes = (0..16).map(|i| {
        let store = store.clone();
        let c = ctx(Some(org.id), Actor::System);
        tokio::spawn(async move {
            store
                .create_user(&c, &format!("burst{i}@example.com"), "Burst", None)
                .await
        })
    });
    for handle in writes.collect::<Vec<_>>() {
        handle.await.expect("task").expect("create user");
    }
    let audited = store
        .list_audit(
            org.id,
            &AuditFilter {
                action: Some("user.create".into()),
                ..AuditFilter::default()
            },
            page(1, 100),
        )
        .await
        .expect("audit");
    assert_eq!(audited.total, 16);
}

// ----- secret helpers (no store) ---------------------------------------------------------

#[test]
fn api_keys_have_the_documented_shape() {
    let k = generate_api_key();
    assert!(k.secret.starts_with("qrlp_"));
    assert_eq!(k.secret.len(), 45);
    assert!(looks_like_api_key(&k.secret));
    assert_eq!(k.prefix, &k.secret[..12]);
    assert_eq!(k.hash, hash_api_key(&k.secret));
    assert_ne!(generate_api_key().secret, k.secret);
    assert!(!looks_like_api_key("qrlp_tooshort"));
    let debug = format!("{k:?}");
    assert!(!debug.contains(&k.secret), "{debug}");
    assert!(!debug.contains(&k.secret[12..]), "{debug}");
    // SHA-256 of the whole string, checked against a known vector.
    let h = hash_api_key("abc");
    assert_eq!(h[..4], [0xba, 0x78, 0x16, 0xbf]);
}

#[test]
fn reused_password_memory_gives_the_same_answers() {
    let mut work = qrlp_store::secret::PasswordWork::default();
    let mine = work.hash("correct horse battery").expect("hash");
    assert!(verify_password("correct horse battery", &mine));
    assert!(!verify_password("wrong horse battery", &mine));
    let theirs = hash_password("another password!").expect("hash");
    assert!(work.verify("another password!", &theirs));
    assert!(!work.verify("another password", &theirs));
    assert!(work.verify("correct horse battery", &mine));
    assert!(!work.verify("x", "not a phc string"));
}

#[test]
fn passwords_verify() {
    let phc = hash_password("s3cret pass").expect("hash");
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    assert!(verify_password("s3cret pass", &phc));
    assert!(!verify_password("wrong pass", &phc));
    assert!(!verify_password("s3cret pass", "not a phc string"));
    assert!(matches!(hash_password(""), Err(StoreError::Invalid(_))));
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Store>();
    check::<ApiKey>();
}

/// Several processes starting at once on a fresh SQLite file: each opens its own pool (the
/// first connection switches the file to WAL) and migrates; all succeed and the schema is
/// applied once. (Separate pools in one process take separate file locks, as separate
/// processes do.) Without the setup lock about one round in 20 failed to open ("database is
/// locked") and the first round failed to migrate ("table organizations already exists").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_starts_on_one_sqlite_file_all_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = StoreConfig {
            database_url: None,
            data_dir: dir.path().join("data"),
            max_connections: 2,
        };
        let mut starts = Vec::new();
        for _ in 0..4 {
            let cfg = cfg.clone();
            starts.push(tokio::spawn(async move {
                let store = Store::open(&cfg).await.expect("open");
                let migrated = store.migrate().await;
                store.close().await;
                migrated
            }));
        }
        for start in starts {
            let result = start.await.expect("task");
            assert!(result.is_ok(), "round {round}: {result:?}");
        }
        let store = Store::open(&cfg).await.expect("open");
        store.migrate().await.expect("migrate again");
        assert!(store.integrity_check().await.is_ok());
        store.close().await;
    }
}

// ----- issue 9: owner rule in the transaction, invitations, resets, purge -----------------

/// Finding 7: the owner rule was read outside the transaction. An admin removing a member
/// while an owner promotes that member to owner must never both succeed, and the
/// organization never ends without an owner, however the three changes interleave.
async fn case_owner_rule_races_200_times(store: &Store) {
    for round in 0..200 {
        let (org, owner) = org_owned_by(store, &format!("Race{round}")).await;
        let target = user(store, &format!("target{round}@example.com")).await;
        let c = ctx(None, Actor::User(owner.id));
        store
            .add_member(&c, org.id, target.id, Role::Member)
            .await
            .expect("member");
        let (promote, remove, step_down) = tokio::join!(
            store.update_member_role(
                &c,
                org.id,
                target.id,
                Role::Owner,
                OwnerRule::MayManageOwners
            ),
            store.remove_member(&c, org.id, target.id, OwnerRule::OwnersUntouchable),
            store.update_member_role(
                &c,
                org.id,
                owner.id,
                Role::Admin,
                OwnerRule::MayManageOwners
            ),
        );
        assert!(
            !(promote.is_ok() && remove.is_ok()),
            "round {round}: an admin removed a member who had become owner"
        );
        if let Err(e) = &remove {
            assert!(
                matches!(e, StoreError::Forbidden(r) if r == "owner"),
                "round {round}: {e:?}"
            );
        }
        if let Err(e) = &step_down {
            assert!(is_conflict(e, "last_owner"), "round {round}: {e:?}");
        }
        let members = store.list_members(org.id, page(1, 10)).await.expect("list");
        assert!(
            members.items.iter().any(|m| m.role == Role::Owner),
            "round {round}: no owner left"
        );
    }
}

fn invitation(org: Uuid, email: &str, role: Role, ttl: Duration) -> ([u8; 32], NewInvitation) {
    let (_, hash) = generate_token();
    (
        hash,
        NewInvitation {
            org_id: org,
            email: email.into(),
            name: Some("Invitee".into()),
            role,
            token_hash: hash,
            expires_at: OffsetDateTime::now_utc() + ttl,
        },
    )
}

async fn case_invitations_are_single_use_and_bound_to_the_email(store: &Store) {
    let (org, owner) = org_owned_by(store, "Inviting").await;
    let c = ctx(Some(org.id), Actor::User(owner.id));
    let (hash, new) = invitation(org.id, "New@Example.com", Role::Admin, Duration::hours(1));
    let inv = store.create_invitation(&c, new).await.expect("invite");
    assert_eq!(inv.role, Role::Admin);
    assert!(inv.accepted_at.is_none());
    let pw = hash_password("invitee's own password").expect("hash");
    let member = store
        .redeem_invitation(
            &system(),
            &hash,
            Redeemer::NewAccount {
                name: None,
                password_hash: pw.clone(),
            },
        )
        .await
        .expect("redeem");
    assert_eq!(member.role, Role::Admin);
    assert_eq!(member.user.name, "Invitee");
    let creds = store
        .find_user_by_email("new@example.com")
        .await
        .expect("find")
        .expect("created");
    assert!(verify_password(
        "invitee's own password",
        creds.password_hash.as_deref().unwrap()
    ));
    // Once only.
    let again = store
        .redeem_invitation(&system(), &hash, Redeemer::SignedIn(member.user.id))
        .await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    let listed = store
        .list_invitations(org.id, page(1, 10))
        .await
        .expect("list");
    assert_eq!(listed.total, 1);
    assert!(listed.items[0].accepted_at.is_some());

    // An existing account: a new-account redemption is refused, another account is
    // refused, the account itself succeeds.
    let (other_org, other_owner) = org_owned_by(store, "Other").await;
    let oc = ctx(Some(other_org.id), Actor::User(other_owner.id));
    let (hash, new) = invitation(
        other_org.id,
        "new@example.com",
        Role::Member,
        Duration::hours(1),
    );
    store.create_invitation(&oc, new).await.expect("invite");
    let planted = store
        .redeem_invitation(
            &system(),
            &hash,
            Redeemer::NewAccount {
                name: None,
                password_hash: pw,
            },
        )
        .await;
    assert!(
        matches!(&planted, Err(StoreError::Conflict(f)) if f == "account"),
        "{planted:?}"
    );
    let wrong = store
        .redeem_invitation(&system(), &hash, Redeemer::SignedIn(owner.id))
        .await;
    assert!(
        matches!(&wrong, Err(StoreError::Forbidden(f)) if f == "account"),
        "{wrong:?}"
    );
    store
        .redeem_invitation(&system(), &hash, Redeemer::SignedIn(member.user.id))
        .await
        .expect("the account itself redeems");
    assert_eq!(
        store
            .get_role(other_org.id, member.user.id)
            .await
            .expect("role"),
        Some(Role::Member)
    );

    // Expired and revoked invitations do nothing.
    let (hash, new) = invitation(
        org.id,
        "late@example.com",
        Role::Member,
        Duration::seconds(-1),
    );
    store.create_invitation(&c, new).await.expect("invite");
    let late = store
        .redeem_invitation(
            &system(),
            &hash,
            Redeemer::NewAccount {
                name: None,
                password_hash: "x".into(),
            },
        )
        .await;
    assert!(matches!(late, Err(StoreError::NotFound)), "{late:?}");
    assert!(store
        .find_user_by_email("late@example.com")
        .await
        .expect("find")
        .is_none());
    let (hash, new) = invitation(org.id, "gone@example.com", Role::Member, Duration::hours(1));
    let inv = store.create_invitation(&c, new).await.expect("invite");
    assert!(matches!(
        store.revoke_invitation(&oc, other_org.id, inv.id).await,
        Err(StoreError::NotFound)
    ));
    store
        .revoke_invitation(&c, org.id, inv.id)
        .await
        .expect("revoke");
    let gone = store
        .redeem_invitation(&system(), &hash, Redeemer::SignedIn(owner.id))
        .await;
    assert!(matches!(gone, Err(StoreError::NotFound)), "{gone:?}");
}

async fn case_password_reset_is_single_use_and_ends_sessions(store: &Store) {
    let (_, owner) = org_owned_by(store, "Forgetful").await;
    let c = ctx(None, Actor::User(owner.id));
    let (_, session) = generate_token();
    let later = OffsetDateTime::now_utc() + Duration::hours(1);
    store
        .create_session(&c, owner.id, &session, "csrf", later)
        .await
        .expect("session");
    let (_, token) = generate_token();
    assert!(store
        .create_password_reset(&system(), "nobody@example.com", &token, later)
        .await
        .expect("unknown email")
        .is_none());
    let found = store
        .create_password_reset(&system(), &owner.email, &token, later)
        .await
        .expect("reset")
        .expect("known email");
    assert_eq!(found.id, owner.id);
    let pw = hash_password("a brand new password").expect("hash");
    assert_eq!(
        store
            .reset_password(&system(), &token, &pw)
            .await
            .expect("reset"),
        owner.id
    );
    assert!(store.find_session(&session).await.expect("find").is_none());
    assert!(matches!(
        store.reset_password(&system(), &token, &pw).await,
        Err(StoreError::NotFound)
    ));
}

async fn case_login_and_logout_are_audited_in_their_transaction(store: &Store) {
    let (org, owner) = org_owned_by(store, "Audited").await;
    let c = ctx(Some(org.id), Actor::User(owner.id));
    let (_, hash) = generate_token();
    let later = OffsetDateTime::now_utc() + Duration::hours(1);
    store
        .create_session(&c, owner.id, &hash, "csrf", later)
        .await
        .expect("session");
    let (_, stale) = generate_token();
    store
        .create_session(
            &c,
            owner.id,
            &stale,
            "csrf",
            OffsetDateTime::now_utc() - Duration::seconds(1),
        )
        .await
        .expect("expired session");
    assert_eq!(
        store.end_session(&c, &hash).await.expect("logout"),
        Some(owner.id)
    );
    // Logout took the user's expired session with it.
    assert_eq!(store.purge_expired_sessions().await.expect("purge"), 0);
    assert_eq!(store.end_session(&c, &hash).await.expect("again"), None);
    for (action, n) in [("auth.login", 2), ("auth.logout", 1)] {
        let found = store
            .list_audit(
                org.id,
                &AuditFilter {
                    action: Some(action.into()),
                    ..AuditFilter::default()
                },
                page(1, 10),
            )
            .await
            .expect("audit");
        assert_eq!(found.total, n, "{action}");
    }
    // A session for a user that does not exist leaves no audit record.
    let before = store.count_audit(org.id).await.expect("count");
    let (_, h) = generate_token();
    assert!(store
        .create_session(&c, Uuid::now_v7(), &h, "csrf", later)
        .await
        .is_err());
    assert_eq!(store.count_audit(org.id).await.expect("count"), before);
}

async fn case_purge_removes_expired_rows(store: &Store) {
    let (org, owner) = org_owned_by(store, "Purge").await;
    let c = ctx(None, Actor::User(owner.id));
    let past = OffsetDateTime::now_utc() - Duration::seconds(1);
    let (_, old) = generate_token();
    store
        .create_session(&c, owner.id, &old, "csrf", past)
        .await
        .expect("expired session");
    let (_, live) = generate_token();
    store
        .create_session(&c, owner.id, &live, "csrf", past + Duration::hours(2))
        .await
        .expect("live session");
    let (_, new) = invitation(
        org.id,
        "old@example.com",
        Role::Member,
        Duration::seconds(-1),
    );
    store.create_invitation(&c, new).await.expect("invite");
    assert_eq!(store.purge_expired().await.expect("purge"), 2);
    assert!(store.find_session(&live).await.expect("find").is_some());
    assert_eq!(store.purge_expired().await.expect("purge again"), 0);
}
