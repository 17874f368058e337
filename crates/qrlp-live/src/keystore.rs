//! The identity file: the crate's only I/O (std::fs). An adapter at the edge of the core.
//!
//! The file is JSON, written atomically (a temporary file in the same directory, synced,
//! then renamed over the old one) with mode 0600 on Unix. Loading refuses a file that
//! the group or others may read or write. Secrets are standard base64:
//!
//! ```json
//! {"version":1,"generations":[
//!   {"created":"2025-01-11T15:30:45.000Z","not_after":null,
//!    "ed25519_secret":"…32 bytes…","fn_dsa_secret":"…1281 bytes, optional…"}]}
//! ```
//!
//! The last generation is current. [`KeyStore::rotate`] closes the current one (its
//! `not_after` becomes now + grace) and appends a new one; closed generations stay in the
//! file, and in the exported key set, until their `not_after` has passed.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::SigningIdentity;
use crate::keyset::KeySet;
use crate::text::{b64, format_timestamp, parse_timestamp, unb64};
use crate::FrameError;

/// Why the identity file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// Reading or writing failed.
    #[error("identity file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is readable or writable by the group or others.
    #[error(
        "identity file {path} has mode {mode:04o}: group and others must have no access (chmod 600)"
    )]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not a valid identity file.
    #[error("identity file {path} is invalid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A key in the file does not decode, or key generation failed.
    #[error("identity file key: {0}")]
    Key(#[from] FrameError),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    version: u32,
    generations: Vec<GenerationJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationJson {
    created: String,
    not_after: Option<String>,
    ed25519_secret: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fn_dsa_secret: Option<String>,
}

/// One key generation: an identity and its validity window.
#[derive(Debug, Clone)]
pub struct KeyGeneration {
    /// The keys.
    pub identity: Arc<SigningIdentity>,
    /// When it was made (ms); frames older than this do not verify with it.
    pub created_ms: u64,
    /// When it stops verifying (ms); `None` for the current generation.
    pub not_after_ms: Option<u64>,
}

/// The issuer's keys, backed by an identity file.
///
/// ```no_run
/// use qrlp_live::KeyStore;
/// let now = 1_736_609_445_000;
/// let mut store = KeyStore::load_or_generate("identity.json".as_ref(), false, now)?;
/// let key_set_json = store.key_set().to_json(); // publish this for offline verifiers
/// store.rotate(now + 86_400_000, 3_600_000, false)?; // old key verifies for one more hour
/// # Ok::<(), qrlp_live::KeyStoreError>(())
/// ```
#[derive(Debug)]
pub struct KeyStore {
    path: PathBuf,
    generations: Vec<KeyGeneration>,
    /// Kept outside an identity file (a PKCS#8 PEM key, a database row): never written
    /// back, never rotated.
    external: bool,
}

impl KeyStore {
    /// Loads the identity file, or creates it with a new identity when it does not exist.
    /// With `post_quantum`, a current generation without an FN-DSA key gets one (saved).
    ///
    /// # Errors
    /// See [`KeyStoreError`].
    pub fn load_or_generate(
        path: &Path,
        post_quantum: bool,
        now_ms: u64,
    ) -> Result<KeyStore, KeyStoreError> {
        Self::load_or_generate_with(path, post_quantum, now_ms, &mut rand_core::OsRng)
    }

    /// [`KeyStore::load_or_generate`] with a given RNG.
    pub fn load_or_generate_with<R: RngCore + CryptoRng>(
        path: &Path,
        post_quantum: bool,
        now_ms: u64,
        rng: &mut R,
    ) -> Result<KeyStore, KeyStoreError> {
        let mut store = match fs::symlink_metadata(path) {
            Ok(_) => KeyStore::load(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let store = KeyStore {
                    path: path.to_owned(),
                    generations: vec![KeyGeneration {
                        identity: Arc::new(SigningIdentity::generate(rng, post_quantum)?),
                        created_ms: now_ms,
                        not_after_ms: None,
                    }],
                    external: false,
                };
                store.save()?;
                return Ok(store);
            }
            Err(source) => {
                return Err(KeyStoreError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        if post_quantum && store.external {
            return Err(KeyStoreError::Invalid {
                path: path.to_owned(),
                message: "a PKCS#8 PEM identity holds only an Ed25519 key: use the ed25519 suite"
                    .into(),
            });
        }
        if post_quantum {
            if let Some(cur) = store.generations.last_mut() {
                if !cur.identity.supports(crate::Suite::FnDsa512) {
                    let seed = cur.identity.ed25519_seed();
                    let id =
                        SigningIdentity::from_ed25519_seed(*seed).with_generated_fn_dsa(rng)?;
                    cur.identity = Arc::new(id);
                    store.save()?;
                }
            }
        }
        Ok(store)
    }

    /// Loads an existing identity file.
    ///
    /// # Errors
    /// [`KeyStoreError::InsecurePermissions`] for a file others may access (Unix);
    /// [`KeyStoreError::Invalid`] for bad content.
    pub fn load(path: &Path) -> Result<KeyStore, KeyStoreError> {
        let io = |source| KeyStoreError::Io {
            path: path.to_owned(),
            source,
        };
        let invalid = |message: String| KeyStoreError::Invalid {
            path: path.to_owned(),
            message,
        };
        let meta = fs::metadata(path).map_err(io)?;
        check_permissions(path, &meta)?;
        if meta.len() > 1 << 20 {
            return Err(invalid("larger than 1 MiB".into()));
        }
        let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
        if text.trim_start().starts_with("-----BEGIN") {
            return KeyStore::from_pem(path, &text);
        }
        let file: FileJson =
            serde_json::from_str(&text).map_err(|e| invalid(format!("JSON: {e}")))?;
        if file.version != 1 {
            return Err(invalid(format!("unsupported version {}", file.version)));
        }
        if file.generations.is_empty() {
            return Err(invalid("no key generations".into()));
        }
        let mut generations = Vec::with_capacity(file.generations.len());
        for g in &file.generations {
            let time =
                |s: &str| parse_timestamp(s).ok_or_else(|| invalid(format!("bad time {s:?}")));
            let seed = Zeroizing::new(
                unb64(&g.ed25519_secret)
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .ok_or_else(|| invalid("ed25519_secret is not 32 bytes of base64".into()))?,
            );
            let mut identity = SigningIdentity::from_ed25519_seed(*seed);
            if let Some(pq) = &g.fn_dsa_secret {
                let bytes = Zeroizing::new(
                    unb64(pq).ok_or_else(|| invalid("fn_dsa_secret is not base64".into()))?,
                );
                identity = identity.with_fn_dsa_secret(&bytes)?;
            }
            generations.push(KeyGeneration {
                identity: Arc::new(identity),
                created_ms: time(&g.created)?,
                not_after_ms: g.not_after.as_deref().map(time).transpose()?,
            });
        }
        Ok(KeyStore {
            path: path.to_owned(),
            generations,
            external: false,
        })
    }

    /// An Ed25519 private key in PKCS#8 PEM, as `openssl genpkey -algorithm ed25519`
    /// writes it: one generation with no known start (valid from the epoch).
    fn from_pem(path: &Path, text: &str) -> Result<KeyStore, KeyStoreError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| {
            KeyStoreError::Invalid {
                path: path.to_owned(),
                message: format!("not an Ed25519 PKCS#8 PEM private key ({e})"),
            }
        })?;
        let seed = Zeroizing::new(key.to_bytes());
        Ok(KeyStore {
            path: path.to_owned(),
            generations: vec![KeyGeneration {
                identity: Arc::new(SigningIdentity::from_ed25519_seed(*seed)),
                created_ms: 0,
                not_after_ms: None,
            }],
            external: true,
        })
    }

    /// A key store of one identity kept elsewhere (a database row): never written to a file,
    /// never rotated here. `label` names it in messages.
    pub fn in_memory(label: &str, identity: SigningIdentity, created_ms: u64) -> KeyStore {
        KeyStore {
            path: PathBuf::from(label),
            generations: vec![KeyGeneration {
                identity: Arc::new(identity),
                created_ms,
                not_after_ms: None,
            }],
            external: true,
        }
    }

    /// Whether the identity is kept outside an identity file (a PKCS#8 PEM key file or a
    /// database row): never rewritten, so it cannot be rotated here.
    pub fn is_external(&self) -> bool {
        self.external
    }

    /// The current identity (the newest generation).
    pub fn current(&self) -> Arc<SigningIdentity> {
        // `load` and the constructors guarantee at least one generation.
        match self.generations.last() {
            Some(g) => g.identity.clone(),
            None => unreachable!("a key store always has a generation"),
        }
    }

    /// All generations, oldest first.
    pub fn generations(&self) -> &[KeyGeneration] {
        &self.generations
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes a new current identity: the old one verifies until `now_ms + grace_ms`;
    /// generations already past their `not_after` are dropped. Saves the file.
    ///
    /// # Errors
    /// Writing the file, or FN-DSA key generation.
    pub fn rotate(
        &mut self,
        now_ms: u64,
        grace_ms: u64,
        post_quantum: bool,
    ) -> Result<(), KeyStoreError> {
        self.rotate_with(now_ms, grace_ms, post_quantum, &mut rand_core::OsRng)
    }

    /// [`KeyStore::rotate`] with a given RNG.
    pub fn rotate_with<R: RngCore + CryptoRng>(
        &mut self,
        now_ms: u64,
        grace_ms: u64,
        post_quantum: bool,
        rng: &mut R,
    ) -> Result<(), KeyStoreError> {
        if self.external {
            return Err(KeyStoreError::Invalid {
                path: self.path.clone(),
                message: "a PKCS#8 PEM key cannot be rotated here: make a new key file".into(),
            });
        }
        let identity = Arc::new(SigningIdentity::generate(rng, post_quantum)?);
        let end = now_ms.saturating_add(grace_ms);
        for g in &mut self.generations {
            g.not_after_ms = Some(g.not_after_ms.map_or(end, |t| t.min(end)));
        }
        self.generations
            .retain(|g| g.not_after_ms.is_none_or(|t| t >= now_ms));
        self.generations.push(KeyGeneration {
            identity,
            created_ms: now_ms,
            not_after_ms: None,
        });
        self.save()
    }

    /// The public key set of every generation still in the file, with its window.
    pub fn key_set(&self) -> KeySet {
        let mut set = KeySet::new();
        for g in &self.generations {
            set.add_identity(&g.identity, g.created_ms, g.not_after_ms);
        }
        set
    }

    fn save(&self) -> Result<(), KeyStoreError> {
        let file = FileJson {
            version: 1,
            generations: self
                .generations
                .iter()
                .map(|g| GenerationJson {
                    created: format_timestamp(g.created_ms),
                    not_after: g.not_after_ms.map(format_timestamp),
                    ed25519_secret: b64(g.identity.ed25519_seed().as_ref()),
                    fn_dsa_secret: g.identity.fn_dsa_secret().map(b64),
                })
                .collect(),
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file).unwrap_or_default());
        write_atomic(&self.path, text.as_bytes()).map_err(|source| KeyStoreError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads the shared secret in `path` (its text, used as raw UTF-8 bytes like
/// `security.hmac_secret`; a final line break is not part of it), or `None` when there is
/// no such file. Refuses a file the group or others may access, as for the identity.
///
/// # Errors
/// [`KeyStoreError`] for an unreadable, insecure, empty or oversized file.
pub fn load_secret(path: &Path) -> Result<Option<Zeroizing<String>>, KeyStoreError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KeyStoreError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    check_permissions(path, &meta)?;
    let invalid = |message: &str| KeyStoreError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    };
    if meta.len() > 4096 {
        return Err(invalid("larger than 4 KiB"));
    }
    let text = Zeroizing::new(
        fs::read_to_string(path).map_err(|source| KeyStoreError::Io {
            path: path.to_owned(),
            source,
        })?,
    );
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    if secret.len() < 16 {
        return Err(invalid("a shared secret must be at least 16 bytes"));
    }
    Ok(Some(Zeroizing::new(secret.to_owned())))
}

/// Reads the shared secret in `path`, or creates the file (mode 0600) with a new one: 32
/// random bytes written as 64 lowercase hex digits. Two processes creating it at once end
/// up with the same secret: the file is linked into place only if it does not exist yet.
///
/// # Errors
/// As [`load_secret`], and writing the file.
pub fn load_or_generate_secret(path: &Path) -> Result<Zeroizing<String>, KeyStoreError> {
    if let Some(s) = load_secret(path)? {
        return Ok(s);
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    rand_core::OsRng.fill_bytes(raw.as_mut());
    let secret = Zeroizing::new(crate::text::hex(raw.as_ref()));
    write_new(path, format!("{}\n", secret.as_str()).as_bytes()).map_err(|source| {
        KeyStoreError::Io {
            path: path.to_owned(),
            source,
        }
    })?;
    // Whoever linked first won; everyone reads the file that is there.
    load_secret(path)?.ok_or_else(|| KeyStoreError::Invalid {
        path: path.to_owned(),
        message: "vanished after it was written".into(),
    })
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), KeyStoreError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyStoreError::InsecurePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path, _: &fs::Metadata) -> Result<(), KeyStoreError> {
    Ok(())
}

/// Writes `data` to a private temporary file beside `path` and links it into place only if
/// `path` does not exist; an existing file is left alone (not an error).
fn write_new(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = private_temp(path, data)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
        _ => {
            if let Some(d) = path.parent().and_then(|d| fs::File::open(d).ok()) {
                let _ = d.sync_all();
            }
            Ok(())
        }
    }
}

/// A synced temporary file with `data`, mode 0600, in `path`'s directory.
fn private_temp(path: &Path, data: &[u8]) -> std::io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "identity".into());
    let mut nonce = [0u8; 8];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let tmp = dir.join(format!(".{name}.tmp-{}", crate::text::hex(&nonce)));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = private_temp(path, data)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename durable; not every platform can open a directory.
    if let Some(d) = path.parent().and_then(|d| fs::File::open(d).ok()) {
        let _ = d.sync_all();
    }
    Ok(())
}
