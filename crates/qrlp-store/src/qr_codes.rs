//! Tracked QR codes, the business card and the tracking settings: every change audited
//! and logged in `qr_code_changes` in its transaction, so that every server's slug cache
//! learns of it (see [`Store::qr_code_changes_since`]).

use serde_json::json;
use sqlx::types::Json;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use qrlp_webhook::{catalogue, Payload};

use crate::audit::AuditEntry;
use crate::chains::seed_timestamp;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::{Actor, AuditContext, Page, PageRequest};
use crate::qr_model::{
    BusinessCard, NewQrCode, QrCode, QrCodeChange, QrCodeChangeEntry, QrCodeStats, QrCodeWithStats,
    QrImageDefaults, QrUtm, SlugTarget, TrackingSettings,
};
use crate::scans::{add_tail, TailRow};
use crate::validate::valid_name;
use crate::{page_of, to_u64, Store};

const CODE_COLS: &str = "c.id, c.org_id, c.slug, c.label, c.target_url, c.utm, c.fill_color, \
     c.back_color, c.ecc, c.border, c.archived_at, c.created_at, c.updated_at, \
     c.updated_by_type, c.updated_by, s.scans, s.unique_visitors, s.bots, s.last_scan_at";
const CODE_FROM: &str = " FROM qr_codes c LEFT JOIN qr_code_stats s ON s.qr_code_id = c.id";

const INSERT_CODE: &str = "INSERT INTO qr_codes (id, org_id, slug, label, target_url, utm, \
     fill_color, back_color, ecc, border, archived_at, created_at, updated_at, updated_by_type, \
     updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, $11, $12, $13)";
const UPDATE_CODE: &str = "UPDATE qr_codes SET label = $3, target_url = $4, utm = $5, \
     fill_color = $6, back_color = $7, ecc = $8, border = $9, archived_at = $10, \
     updated_at = $11, updated_by_type = $12, updated_by = $13 WHERE id = $1 AND org_id = $2";
const INSERT_CHANGE: &str =
    "INSERT INTO qr_code_changes (slug, org_id, changed_at) VALUES ($1, $2, $3)";
const SLUG_TARGET: &str = "SELECT c.id, c.org_id, c.target_url, c.utm, c.archived_at, \
     t.tracking_enabled, t.record_referrer, t.record_user_agent FROM qr_codes c \
     LEFT JOIN qr_tracking_settings t ON t.org_id = c.org_id WHERE c.slug = $1";

/// Longest target URL stored (the URL rules allow 2000 characters).
const MAX_URL_LEN: usize = 2000;
/// Longest UTM value and business card field.
const MAX_FIELD_LEN: usize = 500;

#[derive(sqlx::FromRow)]
struct CodeRow {
    id: Uuid,
    org_id: Uuid,
    slug: String,
    label: String,
    target_url: String,
    utm: Json<QrUtm>,
    fill_color: String,
    back_color: String,
    ecc: String,
    border: i32,
    archived_at: Option<Ts>,
    created_at: Ts,
    updated_at: Ts,
    updated_by_type: String,
    updated_by: Option<Uuid>,
    scans: Option<i64>,
    unique_visitors: Option<i64>,
    bots: Option<i64>,
    last_scan_at: Option<Ts>,
}

fn actor(kind: &str, id: Option<Uuid>) -> Actor {
    match (kind, id) {
        ("user", Some(id)) => Actor::User(id),
        ("api_key", Some(id)) => Actor::ApiKey(id),
        _ => Actor::System,
    }
}

impl From<CodeRow> for QrCodeWithStats {
    fn from(r: CodeRow) -> Self {
        QrCodeWithStats {
            code: QrCode {
                id: r.id,
                org_id: r.org_id,
                slug: r.slug,
                label: r.label,
                target_url: r.target_url,
                utm: r.utm.0,
                image: QrImageDefaults {
                    fill_color: r.fill_color,
                    back_color: r.back_color,
                    ecc: r.ecc,
                    border: u32::try_from(r.border).unwrap_or(0),
                },
                archived_at: r.archived_at.map(|t| t.0),
                created_at: r.created_at.0,
                updated_at: r.updated_at.0,
                updated_by: actor(&r.updated_by_type, r.updated_by),
            },
            stats: QrCodeStats {
                scans: to_u64(r.scans.unwrap_or(0)),
                unique_visitors: to_u64(r.unique_visitors.unwrap_or(0)),
                bots: to_u64(r.bots.unwrap_or(0)),
                last_scan_at: r.last_scan_at.map(|t| t.0),
            },
        }
    }
}

#[derive(sqlx::FromRow)]
struct SlugRow {
    id: Uuid,
    org_id: Uuid,
    target_url: String,
    utm: Json<QrUtm>,
    archived_at: Option<Ts>,
    tracking_enabled: Option<bool>,
    record_referrer: Option<bool>,
    record_user_agent: Option<bool>,
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.chars().count() > max {
        return Err(StoreError::Invalid(format!(
            "{field}: must be at most {max} characters"
        )));
    }
    Ok(())
}

fn check_code_fields(
    target_url: &str,
    utm: &QrUtm,
    image: &QrImageDefaults,
) -> Result<(), StoreError> {
    if target_url.is_empty() {
        return Err(StoreError::invalid("target_url", "must not be empty"));
    }
    check_len("target_url", target_url, MAX_URL_LEN)?;
    for (name, v) in [
        ("utm.source", &utm.source),
        ("utm.medium", &utm.medium),
        ("utm.campaign", &utm.campaign),
        ("utm.term", &utm.term),
        ("utm.content", &utm.content),
    ] {
        if let Some(v) = v {
            check_len(name, v, MAX_FIELD_LEN)?;
        }
    }
    if !matches!(image.ecc.as_str(), "L" | "M" | "Q" | "H") {
        return Err(StoreError::invalid("ecc", "must be L, M, Q or H"));
    }
    check_len("fill_color", &image.fill_color, 9)?;
    check_len("back_color", &image.back_color, 9)?;
    Ok(())
}

fn code_details(code: &QrCode) -> serde_json::Value {
    json!({
        "slug": code.slug,
        "label": code.label,
        "target_url": code.target_url,
        "utm": code.utm,
        "fill_color": code.image.fill_color,
        "back_color": code.image.back_color,
        "ecc": code.image.ecc,
        "border": code.image.border,
    })
}

/// The webhook body of a change to `code`: what an endpoint needs to act on it.
fn code_event(event: &str, code: &QrCode, at: time::OffsetDateTime) -> Payload {
    Payload::new(event)
        .with("qr_code_id", code.id.to_string())
        .with("organization_id", code.org_id.to_string())
        .with("slug", code.slug.as_str())
        .with("label", code.label.as_str())
        .with("target_url", code.target_url.as_str())
        .with("archived", code.archived_at.is_some())
        .with("timestamp", seed_timestamp(at))
}

impl Store {
    /// Creates a code. Audit: `qr_code.create` with its fields. `Conflict("slug")` when the
    /// slug is taken (the caller draws another).
    pub async fn create_qr_code(
        &self,
        ctx: &AuditContext,
        new: NewQrCode,
    ) -> Result<QrCode, StoreError> {
        check_code_fields(&new.target_url, &new.utm, &new.image)?;
        let at = now();
        let code = QrCode {
            id: Uuid::now_v7(),
            org_id: new.org_id,
            slug: new.slug,
            label: valid_name("label", &new.label)?,
            target_url: new.target_url,
            utm: new.utm,
            image: new.image,
            archived_at: None,
            created_at: at,
            updated_at: at,
            updated_by: ctx.actor,
        };
        let audit = AuditEntry {
            org_id: Some(code.org_id),
            ctx,
            action: "qr_code.create",
            target_type: "qr_code",
            target_id: Some(code.id.to_string()),
            details: code_details(&code),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(INSERT_CODE)
                .bind(code.id)
                .bind(code.org_id)
                .bind(&code.slug)
                .bind(&code.label)
                .bind(&code.target_url)
                .bind(Json(&code.utm))
                .bind(&code.image.fill_color)
                .bind(&code.image.back_color)
                .bind(&code.image.ecc)
                .bind(i32::try_from(code.image.border).unwrap_or(i32::MAX))
                .bind(Ts(at))
                .bind(ctx.actor.type_str())
                .bind(ctx.actor.id())
                .execute(&mut *tx)
                .await
                .map_err(|e| slug_conflict(e.into()))?;
            sqlx::query(INSERT_CHANGE)
                .bind(Some(&code.slug))
                .bind(code.org_id)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            let payload = code_event(catalogue::QR_CREATED, &code, at);
            enqueue_event!(tx, code.org_id, &payload, at)?;
            tx.commit().await?;
        });
        Ok(code)
    }

    /// The codes of `org` with their totals, oldest first; archived ones only when
    /// `include_archived`.
    pub async fn list_qr_codes(
        &self,
        org: Uuid,
        include_archived: bool,
        page: PageRequest,
    ) -> Result<Page<QrCodeWithStats>, StoreError> {
        let (limit, offset) = page.limit_offset()?;
        let filter = if include_archived {
            ""
        } else {
            " AND c.archived_at IS NULL"
        };
        let count_sql = format!("SELECT COUNT(*) FROM qr_codes c WHERE c.org_id = $1{filter}");
        let list_sql = format!(
            "SELECT {CODE_COLS}{CODE_FROM} WHERE c.org_id = $1{filter} \
             ORDER BY c.created_at, c.id LIMIT $2 OFFSET $3"
        );
        let (total, rows, tail): (i64, Vec<CodeRow>, Vec<TailRow>) = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.read_snapshot).await?;
            let total = sqlx::query_scalar(AssertSqlSafe(count_sql.as_str()))
                .bind(org)
                .fetch_one(&mut *tx)
                .await?;
            let rows: Vec<CodeRow> = sqlx::query_as(AssertSqlSafe(list_sql.as_str()))
                .bind(org)
                .bind(limit)
                .bind(offset)
                .fetch_all(&mut *tx)
                .await?;
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            let mut tail = Vec::new();
            for chunk in ids.chunks(500) {
                tail.extend(read_tail!(tx, chunk));
            }
            tx.commit().await?;
            (total, rows, tail)
        });
        let items = rows
            .into_iter()
            .map(|r| {
                let mut code = QrCodeWithStats::from(r);
                add_tail(code.code.id, &mut code.stats, &tail);
                code
            })
            .collect();
        Ok(page_of(items, page, total))
    }

    /// The code `id` of `org` without its totals (reads no scan): for callers that need
    /// the code or only that it belongs to `org`. `NotFound` for another organization's
    /// code.
    pub async fn qr_code(&self, org: Uuid, id: Uuid) -> Result<QrCode, StoreError> {
        let sql = format!("SELECT {CODE_COLS}{CODE_FROM} WHERE c.id = $1 AND c.org_id = $2");
        let row: Option<CodeRow> = on_pool!(self, |pool| {
            sqlx::query_as(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        row.map(|r| QrCodeWithStats::from(r).code)
            .ok_or(StoreError::NotFound)
    }

    /// The code `id` of `org`; `NotFound` for another organization's code.
    pub async fn get_qr_code(&self, org: Uuid, id: Uuid) -> Result<QrCodeWithStats, StoreError> {
        let sql = format!("SELECT {CODE_COLS}{CODE_FROM} WHERE c.id = $1 AND c.org_id = $2");
        let (row, tail): (Option<CodeRow>, Vec<TailRow>) = on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.read_snapshot).await?;
            let row = sqlx::query_as(AssertSqlSafe(sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?;
            let tail = read_tail!(tx, &[id]);
            tx.commit().await?;
            Ok::<_, StoreError>((row, tail))
        })?;
        let mut code = row.map(QrCodeWithStats::from).ok_or(StoreError::NotFound)?;
        add_tail(code.code.id, &mut code.stats, &tail);
        Ok(code)
    }

    /// Changes a code. Audit: `qr_code.update` with the old and new value of each changed
    /// field (nothing changed: no record and no write).
    pub async fn update_qr_code(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
        change: QrCodeChange,
    ) -> Result<QrCode, StoreError> {
        self.modify_qr_code(ctx, org, id, |code| {
            let mut details = serde_json::Map::new();
            if let Some(label) = &change.label {
                let label = valid_name("label", label)?;
                crate::audit::change(&mut details, "label", &code.label, &label);
                code.label = label;
            }
            if let Some(url) = &change.target_url {
                crate::audit::change(&mut details, "target_url", &code.target_url, url);
                code.target_url = url.clone();
            }
            if let Some(utm) = &change.utm {
                if *utm != code.utm {
                    details.insert("utm".into(), json!({ "old": code.utm, "new": utm }));
                    code.utm = utm.clone();
                }
            }
            if let Some(image) = &change.image {
                let old = &code.image;
                crate::audit::change(
                    &mut details,
                    "fill_color",
                    &old.fill_color,
                    &image.fill_color,
                );
                crate::audit::change(
                    &mut details,
                    "back_color",
                    &old.back_color,
                    &image.back_color,
                );
                crate::audit::change(&mut details, "ecc", &old.ecc, &image.ecc);
                crate::audit::change(
                    &mut details,
                    "border",
                    &old.border.to_string(),
                    &image.border.to_string(),
                );
                code.image = image.clone();
            }
            check_code_fields(&code.target_url, &code.utm, &code.image)?;
            Ok((!details.is_empty()).then_some(("qr_code.update", details.into())))
        })
        .await
    }

    /// Archives (`archived`: the short link answers 410) or restores a code. Audit:
    /// `qr_code.archive` / `qr_code.restore` when the state changes.
    pub async fn set_qr_code_archived(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
        archived: bool,
    ) -> Result<QrCode, StoreError> {
        let at = now();
        self.modify_qr_code(ctx, org, id, |code| {
            if code.archived_at.is_some() == archived {
                return Ok(None);
            }
            code.archived_at = archived.then_some(at);
            let action = if archived {
                "qr_code.archive"
            } else {
                "qr_code.restore"
            };
            Ok(Some((
                action,
                json!({ "slug": code.slug, "label": code.label }),
            )))
        })
        .await
    }

    /// Reads the code, lets `apply` change it, and writes it back with its audit record
    /// and change-log entry, all in one transaction. `apply` returns `None` when nothing
    /// changed.
    async fn modify_qr_code(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
        apply: impl FnOnce(&mut QrCode) -> Result<Option<(&'static str, serde_json::Value)>, StoreError>,
    ) -> Result<QrCode, StoreError> {
        let get_sql = format!("SELECT {CODE_COLS}{CODE_FROM} WHERE c.id = $1 AND c.org_id = $2");
        let lock_sql = match self.backend_name() {
            "postgres" => format!("{get_sql} FOR UPDATE OF c"),
            _ => get_sql,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let row: CodeRow = sqlx::query_as(AssertSqlSafe(lock_sql.as_str()))
                .bind(id)
                .bind(org)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
            let mut code = QrCodeWithStats::from(row).code;
            let Some((action, details)) = apply(&mut code)? else {
                tx.rollback().await?;
                return Ok(code);
            };
            let at = now();
            code.updated_at = at;
            code.updated_by = ctx.actor;
            sqlx::query(UPDATE_CODE)
                .bind(code.id)
                .bind(code.org_id)
                .bind(&code.label)
                .bind(&code.target_url)
                .bind(Json(&code.utm))
                .bind(&code.image.fill_color)
                .bind(&code.image.back_color)
                .bind(&code.image.ecc)
                .bind(i32::try_from(code.image.border).unwrap_or(i32::MAX))
                .bind(code.archived_at.map(Ts))
                .bind(Ts(at))
                .bind(ctx.actor.type_str())
                .bind(ctx.actor.id())
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_CHANGE)
                .bind(Some(&code.slug))
                .bind(code.org_id)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            let audit = AuditEntry {
                org_id: Some(org),
                ctx,
                action,
                target_type: "qr_code",
                target_id: Some(code.id.to_string()),
                details,
                at,
            };
            insert_audit!(&mut *tx, &audit)?;
            // Archiving has its own event; every other change (restoring included) is an
            // update, with the fields that changed.
            let payload = if action == "qr_code.archive" {
                code_event(catalogue::QR_ARCHIVED, &code, at)
            } else {
                code_event(catalogue::QR_UPDATED, &code, at)
                    .with("action", action)
                    .with("changes", audit.details.clone())
            };
            enqueue_event!(tx, org, &payload, at)?;
            tx.commit().await?;
            Ok(code)
        })
    }

    /// What a redirect needs for `slug`, or `None` when no code has it.
    pub async fn find_slug(&self, slug: &str) -> Result<Option<SlugTarget>, StoreError> {
        let row: Option<SlugRow> = on_pool!(self, |pool| {
            sqlx::query_as(SLUG_TARGET)
                .bind(slug)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(|r| {
            let defaults = TrackingSettings::default();
            SlugTarget {
                qr_code_id: r.id,
                org_id: r.org_id,
                target_url: r.target_url,
                utm: r.utm.0,
                archived: r.archived_at.is_some(),
                settings: TrackingSettings {
                    tracking_enabled: r.tracking_enabled.unwrap_or(defaults.tracking_enabled),
                    record_referrer: r.record_referrer.unwrap_or(defaults.record_referrer),
                    record_user_agent: r.record_user_agent.unwrap_or(defaults.record_user_agent),
                },
            }
        }))
    }

    /// The newest position of the change log (0 when empty).
    pub async fn qr_code_changes_head(&self) -> Result<i64, StoreError> {
        let head: Option<i64> = on_pool!(self, |pool| {
            sqlx::query_scalar("SELECT MAX(seq) FROM qr_code_changes")
                .fetch_one(pool)
                .await
        })?;
        Ok(head.unwrap_or(0))
    }

    /// Change-log entries after `seq`, oldest first, at most 10,000.
    pub async fn qr_code_changes_since(
        &self,
        seq: i64,
    ) -> Result<Vec<QrCodeChangeEntry>, StoreError> {
        let rows: Vec<(i64, Option<String>, Uuid)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT seq, slug, org_id FROM qr_code_changes WHERE seq > $1 \
                 ORDER BY seq LIMIT 10000",
            )
            .bind(seq)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(seq, slug, org_id)| QrCodeChangeEntry { seq, slug, org_id })
            .collect())
    }

    /// Deletes change-log entries older than `before` (servers read them within seconds).
    pub async fn prune_qr_code_changes(
        &self,
        before: time::OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let n = on_pool!(self, |pool| {
            sqlx::query("DELETE FROM qr_code_changes WHERE changed_at < $1")
                .bind(Ts(before))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n)
    }

    /// The organization's tracking settings (defaults when never set).
    pub async fn tracking_settings(&self, org: Uuid) -> Result<TrackingSettings, StoreError> {
        let row: Option<(bool, bool, bool)> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT tracking_enabled, record_referrer, record_user_agent \
                 FROM qr_tracking_settings WHERE org_id = $1",
            )
            .bind(org)
            .fetch_optional(pool)
            .await
        })?;
        Ok(
            row.map_or_else(TrackingSettings::default, |(t, r, u)| TrackingSettings {
                tracking_enabled: t,
                record_referrer: r,
                record_user_agent: u,
            }),
        )
    }

    /// Replaces the organization's tracking settings. Audit: `qr_tracking.update` with the
    /// new values.
    pub async fn set_tracking_settings(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        settings: TrackingSettings,
    ) -> Result<TrackingSettings, StoreError> {
        let at = now();
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "qr_tracking.update",
            target_type: "organization",
            target_id: Some(org.to_string()),
            details: json!({
                "tracking_enabled": settings.tracking_enabled,
                "record_referrer": settings.record_referrer,
                "record_user_agent": settings.record_user_agent,
            }),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(
                "INSERT INTO qr_tracking_settings (org_id, tracking_enabled, record_referrer, \
                 record_user_agent, updated_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (org_id) DO UPDATE SET tracking_enabled = excluded.tracking_enabled, \
                 record_referrer = excluded.record_referrer, \
                 record_user_agent = excluded.record_user_agent, updated_at = excluded.updated_at",
            )
            .bind(org)
            .bind(settings.tracking_enabled)
            .bind(settings.record_referrer)
            .bind(settings.record_user_agent)
            .bind(Ts(at))
            .execute(&mut *tx)
            .await?;
            sqlx::query(INSERT_CHANGE)
                .bind(None::<String>)
                .bind(org)
                .bind(Ts(at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(settings)
    }

    /// The organization's business card, or `None` when never saved.
    pub async fn business_card(&self, org: Uuid) -> Result<Option<BusinessCard>, StoreError> {
        #[allow(clippy::type_complexity)]
        let row: Option<(
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Ts,
        )> = on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, phone, email, website, address, updated_at \
                     FROM qr_business_cards WHERE org_id = $1",
            )
            .bind(org)
            .fetch_optional(pool)
            .await
        })?;
        Ok(
            row.map(|(name, phone, email, website, address, at)| BusinessCard {
                name,
                phone,
                email,
                website,
                address,
                updated_at: Some(at.0),
            }),
        )
    }

    /// Saves the organization's business card (fields already validated by the caller).
    /// Audit: `qr_business.update` with the fields.
    pub async fn put_business_card(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        card: BusinessCard,
    ) -> Result<BusinessCard, StoreError> {
        let name = valid_name("name", &card.name)?;
        for (field, v) in [
            ("phone", &card.phone),
            ("email", &card.email),
            ("website", &card.website),
            ("address", &card.address),
        ] {
            if let Some(v) = v {
                check_len(
                    field,
                    v,
                    if field == "website" {
                        MAX_URL_LEN
                    } else {
                        MAX_FIELD_LEN
                    },
                )?;
            }
        }
        let at = now();
        let card = BusinessCard {
            name,
            updated_at: Some(at),
            ..card
        };
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "qr_business.update",
            target_type: "organization",
            target_id: Some(org.to_string()),
            details: json!({
                "name": card.name,
                "phone": card.phone,
                "email": card.email,
                "website": card.website,
                "address": card.address,
            }),
            at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(
                "INSERT INTO qr_business_cards (org_id, name, phone, email, website, address, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org_id) DO UPDATE \
                 SET name = excluded.name, phone = excluded.phone, email = excluded.email, \
                 website = excluded.website, address = excluded.address, \
                 updated_at = excluded.updated_at",
            )
            .bind(org)
            .bind(&card.name)
            .bind(&card.phone)
            .bind(&card.email)
            .bind(&card.website)
            .bind(&card.address)
            .bind(Ts(at))
            .execute(&mut *tx)
            .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(card)
    }
}

/// A unique violation on insert of a code can only be its slug (the id is fresh).
fn slug_conflict(e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict(_) => StoreError::Conflict("slug".into()),
        e => e,
    }
}
