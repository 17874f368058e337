//! Live channels of organizations (issue 12): one signing identity per channel, settings,
//! and the public token of its pages. Every lookup by id is scoped to an organization. The
//! identity seed and HMAC secret are stored sealed by the caller with the platform's data
//! key ([`crate::secret::DataKey`]); this module never sees them in clear.

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::AuditEntry;
use crate::db::{now, Ts};
use crate::error::StoreError;
use crate::model::{AuditContext, Page, PageRequest};
use crate::validate::valid_name;
use crate::{page_of, Store};

macro_rules! cols {
    () => {
        "id, org_id, name, public_token, interval_secs, ttl_secs, style, frame_format, \
         secrets_sealed, created_at, updated_at"
    };
}
const INSERT: &str = concat!(
    "INSERT INTO live_channels (",
    cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);
const ALL: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM live_channels ORDER BY created_at, id"
);
const GET: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM live_channels WHERE id = $1 AND org_id = $2"
);
const BY_TOKEN: &str = concat!(
    "SELECT ",
    cols!(),
    " FROM live_channels WHERE public_token = $1"
);

/// A live channel.
#[derive(Clone, PartialEq)]
pub struct LiveChannelRecord {
    /// Id (UUID v7).
    pub id: Uuid,
    /// Owning organization.
    pub org_id: Uuid,
    /// Display name.
    pub name: String,
    /// The unguessable token of its public pages (43 characters of base64url).
    pub public_token: String,
    /// Seconds between frames.
    pub interval_secs: f64,
    /// Frame validity, seconds.
    pub ttl_secs: f64,
    /// `live`, `professional` or `minimal`.
    pub style: String,
    /// `json` or `compact`.
    pub frame_format: String,
    /// Its Ed25519 identity seed and frame HMAC secret, sealed with the data key (opaque
    /// here).
    pub secrets_sealed: Vec<u8>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for LiveChannelRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChannelRecord")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("name", &self.name)
            .field("interval_secs", &self.interval_secs)
            .field("ttl_secs", &self.ttl_secs)
            .field("style", &self.style)
            .field("frame_format", &self.frame_format)
            .finish_non_exhaustive()
    }
}

/// Settings that can change after creation (`None`: unchanged).
#[derive(Clone, Debug, Default)]
pub struct LiveChannelPatch {
    /// New name.
    pub name: Option<String>,
    /// New interval.
    pub interval_secs: Option<f64>,
    /// New ttl.
    pub ttl_secs: Option<f64>,
    /// New style.
    pub style: Option<String>,
    /// New frame format.
    pub frame_format: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    org_id: Uuid,
    name: String,
    public_token: String,
    interval_secs: f64,
    ttl_secs: f64,
    style: String,
    frame_format: String,
    secrets_sealed: Vec<u8>,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<Row> for LiveChannelRecord {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(LiveChannelRecord {
            id: r.id,
            org_id: r.org_id,
            name: r.name,
            public_token: r.public_token,
            interval_secs: r.interval_secs,
            ttl_secs: r.ttl_secs,
            style: r.style,
            frame_format: r.frame_format,
            secrets_sealed: r.secrets_sealed,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

/// Checks the settings of a channel.
///
/// # Errors
/// [`StoreError::Invalid`] naming the field.
pub fn valid_live_settings(
    interval_secs: f64,
    ttl_secs: f64,
    style: &str,
    frame_format: &str,
) -> Result<(), StoreError> {
    if !(0.1..=3600.0).contains(&interval_secs) {
        return Err(StoreError::invalid(
            "interval_secs",
            "must be between 0.1 and 3600",
        ));
    }
    if !(interval_secs..=86_400.0).contains(&ttl_secs) {
        return Err(StoreError::invalid(
            "ttl_secs",
            "must be at least interval_secs and at most 86400",
        ));
    }
    if !matches!(style, "live" | "professional" | "minimal") {
        return Err(StoreError::invalid(
            "style",
            "must be live, professional or minimal",
        ));
    }
    if !matches!(frame_format, "json" | "compact") {
        return Err(StoreError::invalid(
            "frame_format",
            "must be json or compact",
        ));
    }
    Ok(())
}

fn audit_details(c: &LiveChannelRecord) -> serde_json::Value {
    json!({
        "name": c.name,
        "interval_secs": c.interval_secs,
        "ttl_secs": c.ttl_secs,
        "style": c.style,
        "frame_format": c.frame_format,
    })
}

impl Store {
    /// Stores a new channel (`id`, times set here). Audit: `live_channel.create` with its
    /// settings (never its secrets). `NotFound` when the organization does not exist.
    pub async fn create_live_channel(
        &self,
        ctx: &AuditContext,
        mut channel: LiveChannelRecord,
    ) -> Result<LiveChannelRecord, StoreError> {
        channel.name = valid_name("name", &channel.name)?;
        valid_live_settings(
            channel.interval_secs,
            channel.ttl_secs,
            &channel.style,
            &channel.frame_format,
        )?;
        channel.id = Uuid::now_v7();
        channel.created_at = now();
        channel.updated_at = channel.created_at;
        let c = &channel;
        let audit = AuditEntry {
            org_id: Some(c.org_id),
            ctx,
            action: "live_channel.create",
            target_type: "live_channel",
            target_id: Some(c.id.to_string()),
            details: audit_details(c),
            at: c.created_at,
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            sqlx::query(INSERT)
                .bind(c.id)
                .bind(c.org_id)
                .bind(&c.name)
                .bind(&c.public_token)
                .bind(c.interval_secs)
                .bind(c.ttl_secs)
                .bind(&c.style)
                .bind(&c.frame_format)
                .bind(&c.secrets_sealed)
                .bind(Ts(c.created_at))
                .bind(Ts(c.updated_at))
                .execute(&mut *tx)
                .await?;
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(channel)
    }

    /// The channels of `org`, oldest first.
    pub async fn list_live_channels(
        &self,
        org: Uuid,
        page: PageRequest,
    ) -> Result<Page<LiveChannelRecord>, StoreError> {
        const COUNT: &str = "SELECT COUNT(*) FROM live_channels WHERE org_id = $1";
        const LIST: &str = concat!(
            "SELECT ",
            cols!(),
            " FROM live_channels WHERE org_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3"
        );
        let (total, rows): (i64, Vec<Row>) = self.page_rows(COUNT, LIST, org, page).await?;
        let items = rows
            .into_iter()
            .map(LiveChannelRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_of(items, page, total))
    }

    /// Every channel of every organization (a node starts or watches them all).
    pub async fn all_live_channels(&self) -> Result<Vec<LiveChannelRecord>, StoreError> {
        let rows: Vec<Row> = on_pool!(self, |pool| sqlx::query_as(ALL).fetch_all(pool).await)?;
        rows.into_iter().map(LiveChannelRecord::try_from).collect()
    }

    /// The channel `id` of `org`; `NotFound` for another organization's.
    pub async fn get_live_channel(
        &self,
        org: Uuid,
        id: Uuid,
    ) -> Result<LiveChannelRecord, StoreError> {
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(GET)
                .bind(id)
                .bind(org)
                .fetch_optional(pool)
                .await
        })?;
        row.map(LiveChannelRecord::try_from)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// The channel whose public token is `token`, if any.
    pub async fn find_live_channel_by_token(
        &self,
        token: &str,
    ) -> Result<Option<LiveChannelRecord>, StoreError> {
        let row: Option<Row> = on_pool!(self, |pool| {
            sqlx::query_as(BY_TOKEN)
                .bind(token)
                .fetch_optional(pool)
                .await
        })?;
        row.map(LiveChannelRecord::try_from).transpose()
    }

    /// Changes the settings of channel `id` of `org`. Audit: `live_channel.update` with the
    /// new settings.
    pub async fn update_live_channel(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
        patch: LiveChannelPatch,
    ) -> Result<LiveChannelRecord, StoreError> {
        let mut c = self.get_live_channel(org, id).await?;
        if let Some(n) = &patch.name {
            c.name = valid_name("name", n)?;
        }
        if let Some(v) = patch.interval_secs {
            c.interval_secs = v;
        }
        if let Some(v) = patch.ttl_secs {
            c.ttl_secs = v;
        }
        if let Some(v) = patch.style {
            c.style = v;
        }
        if let Some(v) = patch.frame_format {
            c.frame_format = v;
        }
        valid_live_settings(c.interval_secs, c.ttl_secs, &c.style, &c.frame_format)?;
        c.updated_at = now();
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "live_channel.update",
            target_type: "live_channel",
            target_id: Some(id.to_string()),
            details: audit_details(&c),
            at: c.updated_at,
        };
        const UPDATE: &str = "UPDATE live_channels SET name = $3, interval_secs = $4, \
             ttl_secs = $5, style = $6, frame_format = $7, updated_at = $8 \
             WHERE id = $1 AND org_id = $2";
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query(UPDATE)
                .bind(id)
                .bind(org)
                .bind(&c.name)
                .bind(c.interval_secs)
                .bind(c.ttl_secs)
                .bind(&c.style)
                .bind(&c.frame_format)
                .bind(Ts(c.updated_at))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            insert_audit!(&mut *tx, &audit)?;
            tx.commit().await?;
        });
        Ok(c)
    }

    /// Deletes channel `id` of `org`. Audit: `live_channel.delete`.
    pub async fn delete_live_channel(
        &self,
        ctx: &AuditContext,
        org: Uuid,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let c = self.get_live_channel(org, id).await?;
        let audit = AuditEntry {
            org_id: Some(org),
            ctx,
            action: "live_channel.delete",
            target_type: "live_channel",
            target_id: Some(id.to_string()),
            details: json!({ "name": c.name }),
            at: now(),
        };
        on_pool!(self, |pool, d| {
            let mut tx = pool.begin_with(d.begin).await?;
            let n = sqlx::query("DELETE FROM live_channels WHERE id = $1 AND org_id = $2")
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
}
