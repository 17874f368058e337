//! Live generation: a tokio task making a frame every update interval and handing it to
//! channel subscribers and closure callbacks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde_json::Value;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::{guarded, lock, Inner, LiveFrame, ProtocolError};

/// Updates a slow subscriber may fall behind before it skips the oldest.
const CHANNEL_CAPACITY: usize = 64;

/// One live update: the frame and its QR code as PNG (the seed's `(qr_data, qr_image)`).
#[derive(Clone, Debug)]
pub struct LiveUpdate {
    /// The frame.
    pub frame: LiveFrame,
    /// The QR code, PNG.
    pub png: Vec<u8>,
    /// When it was made (local clock).
    pub generated_at: SystemTime,
}

/// Names a registered update callback, for [`crate::QrLiveProtocol::remove_update_callback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

type Callback = Arc<dyn Fn(&LiveUpdate) + Send + Sync>;
type Provider = Arc<dyn Fn() -> Option<Value> + Send + Sync>;

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub(crate) struct LiveState {
    pub sender: broadcast::Sender<Arc<LiveUpdate>>,
    callbacks: Mutex<Vec<(CallbackId, Callback)>>,
    next_callback: AtomicU64,
    pub provider: RwLock<Option<Provider>>,
    pub current: Mutex<Option<Arc<LiveUpdate>>>,
    running: Mutex<Option<Running>>,
    active: AtomicBool,
    pub updates: AtomicU64,
    pub callback_panics: AtomicU64,
    pub provider_panics: AtomicU64,
}

impl LiveState {
    pub fn new() -> LiveState {
        LiveState {
            sender: broadcast::channel(CHANNEL_CAPACITY).0,
            callbacks: Mutex::new(Vec::new()),
            next_callback: AtomicU64::new(1),
            provider: RwLock::new(None),
            current: Mutex::new(None),
            running: Mutex::new(None),
            active: AtomicBool::new(false),
            updates: AtomicU64::new(0),
            callback_panics: AtomicU64::new(0),
            provider_panics: AtomicU64::new(0),
        }
    }

    pub fn is_running(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    pub fn add_callback(&self, f: Callback) -> CallbackId {
        let id = CallbackId(self.next_callback.fetch_add(1, Ordering::Relaxed));
        lock(&self.callbacks).push((id, f));
        id
    }

    pub fn remove_callback(&self, id: CallbackId) -> bool {
        let mut callbacks = lock(&self.callbacks);
        let before = callbacks.len();
        callbacks.retain(|(i, _)| *i != id);
        callbacks.len() != before
    }

    /// Tells a running task to stop without waiting for it.
    pub fn signal_stop(&self) {
        if let Some(running) = lock(&self.running).as_ref() {
            // The receiver is gone only if the task already ended.
            let _ = running.stop.send(true);
        }
    }

    fn user_data(&self) -> Option<Value> {
        let provider = self
            .provider
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        match guarded(|| provider()) {
            Some(v) => v,
            None => {
                self.provider_panics.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    fn publish(&self, update: LiveUpdate) {
        let update = Arc::new(update);
        *lock(&self.current) = Some(Arc::clone(&update));
        self.updates.fetch_add(1, Ordering::Relaxed);
        // No subscriber is not an error.
        let _ = self.sender.send(Arc::clone(&update));
        let callbacks: Vec<Callback> = lock(&self.callbacks)
            .iter()
            .map(|(_, f)| Arc::clone(f))
            .collect();
        for f in callbacks {
            if guarded(|| f(&update)).is_none() {
                self.callback_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub(crate) fn start(inner: &Arc<Inner>) -> Result<(), ProtocolError> {
    let handle = tokio::runtime::Handle::try_current().map_err(|_| ProtocolError::NoRuntime)?;
    let mut running = lock(&inner.live.running);
    if running.as_ref().is_some_and(|r| !r.task.is_finished()) {
        return Ok(());
    }
    let (stop, stopped) = watch::channel(false);
    inner.live.active.store(true, Ordering::Release);
    let task = handle.spawn(run(Arc::clone(inner), stopped));
    *running = Some(Running { stop, task });
    Ok(())
}

pub(crate) async fn stop(inner: &Arc<Inner>) {
    let running = lock(&inner.live.running).take();
    if let Some(Running { stop, task }) = running {
        let _ = stop.send(true);
        // The task ends at its next await point; a panic inside it is already contained.
        let _ = task.await;
    }
    inner.live.active.store(false, Ordering::Release);
}

async fn run(inner: Arc<Inner>, mut stopped: watch::Receiver<bool>) {
    let period = crate::secs(inner.config.live.update_interval_secs)
        .max(std::time::Duration::from_millis(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let sign = inner.config.security.sign_qr_data;
    let encrypt = inner.config.security.encrypt_qr_data;
    let image = crate::ImageOptions::from_config(&inner.config);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            _ = ticker.tick() => {}
        }
        if *stopped.borrow() {
            break;
        }
        let user_data = inner.live.user_data();
        let made = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            made = inner.generate_bounded(user_data, sign, encrypt, &image, Some(std::time::Duration::ZERO)) => made,
        };
        match made {
            Ok((frame, png)) => inner.live.publish(LiveUpdate {
                frame,
                png,
                generated_at: SystemTime::now(),
            }),
            Err(_) => {
                inner.counters.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    inner.live.active.store(false, Ordering::Release);
}
