//! The slug cache: a bounded map read on every redirect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::http::HeaderValue;
use qrlp_store::{SlugTarget, TrackingSettings};
use qrlp_tracking::utm::{append, Utm};
use uuid::Uuid;

/// Entries kept at most; the map is cleared when full (misses then refill it).
const MAX_ENTRIES: usize = 200_000;

/// What a redirect needs, ready to use.
#[derive(Debug)]
pub struct Entry {
    /// The code.
    pub qr_code_id: Uuid,
    /// Its organization.
    pub org_id: Uuid,
    /// `Location`: the target with the UTM parameters.
    pub location: Option<HeaderValue>,
    /// Archived: 410.
    pub archived: bool,
    /// The organization's tracking settings.
    pub settings: TrackingSettings,
}

impl Entry {
    /// The entry of a stored code.
    pub fn from_target(t: SlugTarget) -> Entry {
        let utm = Utm {
            source: t.utm.source,
            medium: t.utm.medium,
            campaign: t.utm.campaign,
            term: t.utm.term,
            content: t.utm.content,
        };
        Entry {
            qr_code_id: t.qr_code_id,
            org_id: t.org_id,
            location: HeaderValue::from_str(&append(&t.target_url, &utm)).ok(),
            archived: t.archived,
            settings: t.settings,
        }
    }
}

/// Slug → entry, or `None` for a slug known not to exist.
#[derive(Default)]
pub struct SlugCache {
    map: RwLock<HashMap<Box<str>, Option<Arc<Entry>>>>,
    epoch: AtomicU64,
}

impl SlugCache {
    /// `Some(entry or None)` when cached.
    pub fn get(&self, slug: &str) -> Option<Option<Arc<Entry>>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(slug)
            .cloned()
    }

    /// The invalidation counter; read it before a lookup and pass it to
    /// [`SlugCache::insert_if_current`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches a lookup unless an invalidation happened since `epoch` (the lookup may then
    /// have read a value older than the change).
    pub fn insert_if_current(&self, slug: &str, entry: Option<Arc<Entry>>, epoch: u64) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(slug.into(), entry);
    }

    /// Drops `slug`.
    pub fn invalidate_slug(&self, slug: &str) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(slug);
    }

    /// Drops every entry of `org`.
    pub fn invalidate_org(&self, org: Uuid) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.retain(|_, e| e.as_ref().is_some_and(|e| e.org_id != org));
    }

    /// Drops everything.
    pub fn clear(&self) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.clear();
    }
}
