//! Records of tracked QR codes (issue 13): codes, their totals, the business card, the
//! per-organization tracking settings, scans as recorded and the analytics read back.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::Actor;

/// UTM parameters a code appends to its target at redirect time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrUtm {
    /// `utm_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// `utm_term`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// `utm_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// How a code's image is drawn unless a request says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrImageDefaults {
    /// Dark modules, `#RRGGBB` or `#RRGGBBAA`.
    pub fill_color: String,
    /// Light modules, `#RRGGBB` or `#RRGGBBAA`.
    pub back_color: String,
    /// `L`, `M`, `Q` or `H`.
    pub ecc: String,
    /// Quiet zone in modules.
    pub border: u32,
}

/// A tracked QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCode {
    /// UUID v7.
    pub id: Uuid,
    /// Owner.
    pub org_id: Uuid,
    /// Short-link slug: the code encodes `{base}/r/{slug}`.
    pub slug: String,
    /// Display name.
    pub label: String,
    /// Where the short link redirects (already normalised by the caller).
    pub target_url: String,
    /// Appended at redirect time.
    pub utm: QrUtm,
    /// Image defaults.
    pub image: QrImageDefaults,
    /// When archived (the short link answers 410), if it is.
    pub archived_at: Option<OffsetDateTime>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Who changed it last.
    pub updated_by: Actor,
}

/// Totals of a code, kept by the scan recorder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QrCodeStats {
    /// Scans counted (bots excluded).
    pub scans: u64,
    /// Visitors counted once per UTC day.
    pub unique_visitors: u64,
    /// Bot and previewer requests.
    pub bots: u64,
    /// Time of the last counted scan.
    pub last_scan_at: Option<OffsetDateTime>,
}

/// A code and its totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCodeWithStats {
    /// The code.
    pub code: QrCode,
    /// Its totals.
    pub stats: QrCodeStats,
}

/// What creating a code needs; the slug is the caller's (random) choice.
#[derive(Debug, Clone)]
pub struct NewQrCode {
    /// Owner.
    pub org_id: Uuid,
    /// Slug, unique across all organizations (a clash is `Conflict("slug")`).
    pub slug: String,
    /// Display name.
    pub label: String,
    /// Normalised target URL.
    pub target_url: String,
    /// UTM parameters.
    pub utm: QrUtm,
    /// Image defaults.
    pub image: QrImageDefaults,
}

/// A change to a code: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct QrCodeChange {
    /// New display name.
    pub label: Option<String>,
    /// New normalised target URL.
    pub target_url: Option<String>,
    /// New UTM parameters (replace the old ones whole).
    pub utm: Option<QrUtm>,
    /// New image defaults.
    pub image: Option<QrImageDefaults>,
}

/// What a redirect needs to know about a slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlugTarget {
    /// The code.
    pub qr_code_id: Uuid,
    /// Its organization.
    pub org_id: Uuid,
    /// Target URL.
    pub target_url: String,
    /// UTM parameters.
    pub utm: QrUtm,
    /// Whether the code is archived.
    pub archived: bool,
    /// The organization's tracking settings.
    pub settings: TrackingSettings,
}

/// An organization's scan tracking settings (all on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackingSettings {
    /// Record scans at all.
    pub tracking_enabled: bool,
    /// Keep the referrer's domain.
    pub record_referrer: bool,
    /// Use the user agent (device, OS, browser, and in the visitor hash).
    pub record_user_agent: bool,
}

impl Default for TrackingSettings {
    fn default() -> Self {
        TrackingSettings {
            tracking_enabled: true,
            record_referrer: true,
            record_user_agent: true,
        }
    }
}

/// The organization's business card.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BusinessCard {
    /// Display name.
    pub name: String,
    /// Telephone.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Web site.
    pub website: Option<String>,
    /// Postal address (may have several lines).
    pub address: Option<String>,
    /// Last change; `None` when never saved (the card then shows the organization's name).
    pub updated_at: Option<OffsetDateTime>,
}

/// An entry of the change log: one slug, or every code of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrCodeChangeEntry {
    /// Position in the log.
    pub seq: i64,
    /// The slug, or `None` for all codes of `org_id`.
    pub slug: Option<String>,
    /// The organization.
    pub org_id: Uuid,
}

/// Where a scan came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanSource {
    /// The QR code (its link carries the marker).
    Qr,
    /// The plain short link.
    Link,
}

impl ScanSource {
    /// `qr` or `link`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanSource::Qr => "qr",
            ScanSource::Link => "link",
        }
    }
}

/// One counted scan, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRecord {
    /// Given when the scan was accepted; storing the same id twice counts it once.
    pub id: Uuid,
    /// The code.
    pub qr_code_id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// Anonymised address (`203.0.113.0`, `2001:db8:1::`).
    ///
    /// The text fields are shared strings: a batch holds a few distinct values many times
    /// over, and they are bound to statements without being copied.
    pub address: Arc<str>,
    /// Device class.
    pub device: Arc<str>,
    /// OS family.
    pub os: Arc<str>,
    /// Browser family.
    pub browser: Arc<str>,
    /// Referrer domain.
    pub referrer: Option<Arc<str>>,
    /// QR or link.
    pub source: ScanSource,
    /// Salted visitor hash of the scan's UTC day.
    pub visitor: [u8; 16],
}

/// One bot or previewer request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotVisit {
    /// The code.
    pub qr_code_id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// Short bot name.
    pub name: String,
}

/// What one call of `record_scans` stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordOutcome {
    /// Scans newly stored (ids already stored are skipped).
    pub scans: u64,
    /// Of which first visits of their visitor that day.
    pub first_visits: u64,
    /// Bot visits counted.
    pub bots: u64,
}

/// One quarter-hour roll-up row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanBucket {
    /// Unix second the bucket starts at.
    pub start: i64,
    /// Scans.
    pub scans: u64,
    /// First visits.
    pub visitors: u64,
    /// Bot visits.
    pub bots: u64,
}

/// A stored scan as exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredScan {
    /// Id.
    pub id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// Anonymised address.
    pub address: String,
    /// Device class.
    pub device: String,
    /// OS.
    pub os: String,
    /// Browser.
    pub browser: String,
    /// Referrer domain.
    pub referrer: Option<String>,
    /// `qr` or `link`.
    pub source: String,
    /// Visitor hash.
    pub visitor: Vec<u8>,
    /// First scan of this visitor in its UTC day.
    pub first_visit: bool,
}
