//! `qrlp device`: the device side of the fleet (seed 002). `enroll` makes the device's keys
//! (they never leave the device directory), registers with a single-use token, keeps the
//! certificate and checks the ML-KEM-768 key exchange; `agent` sends signed heartbeats and
//! rotates keys when the server asks; `status` shows the device and checks that the server
//! still accepts it. Signing, proofs and the post-quantum operations are `qrlp-fleet`'s.
//!
//! The device directory (mode 0700): `ed25519.key` and `ml_kem.key` (secrets, mode 0600),
//! `device.pem` (its certificate), `ca.pem` (the organization's device CA) and
//! `device.json` (id, server, key version, the server's public keys).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Subcommand;
use qrlp_fleet::enroll::{enrollment_proof_message, rotation_proof_message};
use qrlp_fleet::pq::{self, KemKeyPair};
use qrlp_fleet::signing::{DeviceKey, Request};
use serde_json::{json, Value};

/// Arguments of `qrlp device`.
#[derive(clap::Args, Debug)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
    /// The device directory.
    #[arg(
        long,
        global = true,
        default_value = "./qrlp-device",
        env = "QRLP_DEVICE_DIR"
    )]
    dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum DeviceCommand {
    /// Make this device's keys, register it with an enrollment token, store its
    /// certificate, and check the ML-KEM-768 key exchange with the server.
    Enroll {
        /// The server's base URL, e.g. https://fleet.example.com.
        #[arg(long)]
        server: String,
        /// The single-use enrollment token (`tok_…`).
        #[arg(long, env = "QRLP_ENROLLMENT_TOKEN")]
        token: String,
        /// Device name [default: the host name].
        #[arg(long)]
        name: Option<String>,
        /// Device type.
        #[arg(long = "type", default_value = "generic")]
        device_type: String,
        /// Organization id (checked against the token's).
        #[arg(long)]
        organization: Option<String>,
    },
    /// Send signed heartbeats every interval; rotate keys when the server asks. With
    /// `--data`, also take part in federated learning: join the organization's open rounds,
    /// train locally on the CSV and submit encrypted updates (the data never leaves).
    Agent {
        /// Local training data: a CSV with a header row, numeric features and a 0/1 label.
        #[arg(long)]
        data: Option<PathBuf>,
        /// The label column [default: `label`, else `target`, else the last column].
        #[arg(long)]
        label: Option<String>,
        /// Seed of local training's shuffling.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Test only: send `global + K·(update − global)`, a poisoned update.
        #[arg(long, value_name = "K", hide = true)]
        poison: Option<f32>,
        /// Seconds between polls for training rounds (each poll is one or two signed
        /// requests: mind `fleet.device_requests_per_minute`).
        #[arg(long, default_value_t = 2.0)]
        poll: f64,
        /// Seconds between heartbeats [default: the server's update_interval].
        #[arg(long)]
        interval: Option<f64>,
        /// Stop after this many heartbeats [default: run until SIGINT/SIGTERM].
        #[arg(long)]
        count: Option<u64>,
        /// Report `training` instead of `online`.
        #[arg(long)]
        training: bool,
    },
    /// Show the device and check that the server accepts it (a signed key exchange).
    Status,
    /// Load tool: enroll many simulated devices with an admin API key and heartbeat them
    /// all, each every interval, then print latency percentiles as JSON. Keys stay in
    /// memory; nothing is written to the device directory.
    Simulate {
        /// The server's base URL.
        #[arg(long)]
        server: String,
        /// An API key with devices:write, to make the enrollment tokens.
        #[arg(long, env = "QRLP_API_KEY")]
        api_key: String,
        /// Number of devices.
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        /// Seconds between each device's heartbeats.
        #[arg(long, default_value_t = 5.0)]
        interval: f64,
        /// Seconds of heartbeating after enrollment (with `--train`: the most to wait for
        /// a round).
        #[arg(long, default_value_t = 60.0)]
        duration: f64,
        /// Instead of heartbeating, take part in one training round: every device joins
        /// the organization's open round, pulls the global model when it starts and submits
        /// a synthetic update (the model plus noise, sealed as an agent's), all at once;
        /// prints the submission latencies and the time from the last submission to the
        /// round's end.
        #[arg(long)]
        train: bool,
    },
}

/// Runs `qrlp device`.
pub fn run(args: DeviceArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match args.command {
            DeviceCommand::Enroll {
                server,
                token,
                name,
                device_type,
                organization,
            } => enroll(&args.dir, &server, &token, name, &device_type, organization).await,
            DeviceCommand::Agent {
                data,
                label,
                seed,
                poison,
                poll,
                interval,
                count,
                training,
            } => {
                let trainer = match &data {
                    Some(path) => Some(crate::device_fl::Trainer::new(
                        path,
                        label.as_deref(),
                        seed,
                        poison,
                    )?),
                    None => None,
                };
                agent(&args.dir, interval, count, training, trainer, poll).await
            }
            DeviceCommand::Status => status(&args.dir).await,
            DeviceCommand::Simulate {
                server,
                api_key,
                devices,
                interval,
                duration,
                train,
            } => simulate(&server, &api_key, devices, interval, duration, train).await,
        }
    })
}

/// How long an idle connection is reused: below the server's keep-alive (5 s by default),
/// so that a request (a submission, which is not retried) is never written into a
/// connection the server is closing.
const POOL_IDLE: Duration = Duration::from_secs(3);

fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_idle_timeout(POOL_IDLE)
        .build()
        .context("cannot build the HTTP client")
}

/// Writes `bytes` to `path` atomically with mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn read_private(path: &Path) -> anyhow::Result<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

pub(crate) struct Device {
    dir: PathBuf,
    meta: Value,
    key: DeviceKey,
}

impl Device {
    fn load(dir: &Path) -> anyhow::Result<Device> {
        let meta: Value = serde_json::from_slice(&read_private(&dir.join("device.json"))?)
            .context("device.json is not valid JSON")?;
        let key = DeviceKey::from_secret(&read_private(&dir.join("ed25519.key"))?)
            .map_err(|e| anyhow!("ed25519.key: {e}"))?;
        Ok(Device {
            dir: dir.to_path_buf(),
            meta,
            key,
        })
    }

    pub(crate) fn id(&self) -> &str {
        self.meta["device_id"].as_str().unwrap_or_default()
    }

    fn server(&self) -> &str {
        self.meta["server"].as_str().unwrap_or_default()
    }

    fn version(&self) -> u32 {
        self.meta["key_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(1)
    }

    fn save_meta(&self) -> anyhow::Result<()> {
        write_private(
            &self.dir.join("device.json"),
            &serde_json::to_vec_pretty(&self.meta)?,
        )
    }

    /// Sends a signed `POST` of `body` to `path`; the JSON answer, or an error naming the
    /// server's code and reason.
    async fn post(
        &self,
        http: &reqwest::Client,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        self.signed(http, "POST", path, Some(body)).await
    }

    /// Sends a signed request (`GET` without a body, `POST` with one).
    pub(crate) async fn signed(
        &self,
        http: &reqwest::Client,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b)?,
            None => Vec::new(),
        };
        let headers = self.sign(method, path, &bytes);
        self.send(http, method, path, headers, bytes).await
    }

    /// The signature headers of a request: CPU work, kept apart from sending so that a
    /// large body can be signed off the async threads.
    pub(crate) fn sign(
        &self,
        method: &str,
        path: &str,
        bytes: &[u8],
    ) -> [(&'static str, String); 5] {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.key
            .sign_request(
                self.id(),
                self.version(),
                &Request {
                    method,
                    path_and_query: path,
                    body: bytes,
                },
                now,
                None,
            )
            .to_pairs()
    }

    /// Sends a request signed by [`Device::sign`]; the JSON answer, or an error naming the
    /// server's code and reason.
    pub(crate) async fn send(
        &self,
        http: &reqwest::Client,
        method: &str,
        path: &str,
        headers: [(&'static str, String); 5],
        bytes: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.server());
        let mut req = if method == "GET" {
            http.get(url)
        } else {
            http.post(url)
        }
        .header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        answer(req.body(bytes).send().await?).await
    }
}

async fn answer(r: reqwest::Response) -> anyhow::Result<Value> {
    let status = r.status();
    let bytes = r.bytes().await?;
    let v: Value = if bytes.len() > 1 << 20 {
        // A model: parsed off the async thread.
        tokio::task::spawn_blocking(move || serde_json::from_slice(&bytes).unwrap_or(Value::Null))
            .await?
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    if !status.is_success() {
        let e = &v["error"];
        bail!(
            "server answered {status}: {} {}{}",
            e["code"].as_str().unwrap_or("?"),
            e["message"].as_str().unwrap_or(""),
            e["details"]["reason"]
                .as_str()
                .map(|r| format!(" (reason: {r})"))
                .unwrap_or_default()
        );
    }
    Ok(v)
}

async fn enroll(
    dir: &Path,
    server: &str,
    token: &str,
    name: Option<String>,
    device_type: &str,
    organization: Option<String>,
) -> anyhow::Result<ExitCode> {
    let server = server.trim_end_matches('/').to_string();
    if dir.join("device.json").exists() {
        bail!("{} already holds an enrolled device", dir.display());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let key = DeviceKey::generate();
    let kem = KemKeyPair::generate();
    write_private(&dir.join("ed25519.key"), &key.secret()[..])?;
    write_private(&dir.join("ml_kem.key"), kem.seed())?;
    let name = name.unwrap_or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "qrlp-device".into())
    });
    let kem_public = kem.public_key();
    let proof = key.sign_bytes(&enrollment_proof_message(
        token,
        &key.public_key(),
        &kem_public,
    ));
    let cpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut body = json!({
        "enrollment_token": token,
        "device_info": {"name": name, "type": device_type, "capabilities": {"cpu_cores": cpu}},
        "public_keys": {"ed25519": B64.encode(key.public_key()), "ml_kem_768": B64.encode(&kem_public)},
        "proof": B64.encode(proof),
    });
    if let Some(o) = organization {
        body["organization_id"] = json!(o);
    }
    let http = client()?;
    let reg = answer(
        http.post(format!("{server}/api/v1/devices/register"))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {server}"))?,
    )
    .await?;
    std::fs::write(
        dir.join("device.pem"),
        reg["certificate"].as_str().unwrap_or_default(),
    )?;
    std::fs::write(
        dir.join("ca.pem"),
        reg["ca_certificate"].as_str().unwrap_or_default(),
    )?;
    let meta = json!({
        "device_id": reg["device_id"],
        "server": server,
        "key_version": 1,
        "update_interval": reg["config"]["update_interval"],
        "server_endpoint": reg["config"]["server_endpoint"],
        "training_config": reg["config"]["training_config"],
        "encryption_key": reg["quantum_keys"]["encryption_key"],
        "signing_key": reg["quantum_keys"]["signing_key"],
    });
    let device = Device {
        dir: dir.to_path_buf(),
        meta,
        key,
    };
    device.save_meta()?;
    let check = key_exchange(&device, &http).await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "device_id": device.id(),
            "directory": dir.display().to_string(),
            "certificate": dir.join("device.pem").display().to_string(),
            "key_version": "v1",
            "key_exchange": check,
        }))?
    );
    Ok(ExitCode::SUCCESS)
}

/// The ML-KEM-768 round trip: encapsulate to the server's key, have the server decapsulate,
/// compare the key confirmations and check the server's FN-DSA-512 signature.
async fn key_exchange(device: &Device, http: &reqwest::Client) -> anyhow::Result<Value> {
    let ek = B64
        .decode(device.meta["encryption_key"].as_str().unwrap_or_default())
        .context("device.json: encryption_key")?;
    let (ct, shared) = pq::encapsulate(&ek).map_err(|e| anyhow!("server encryption key: {e}"))?;
    let path = format!("/api/v1/devices/{}/key-exchange", device.id());
    let x = device
        .post(http, &path, &json!({"ciphertext": B64.encode(&ct)}))
        .await?;
    let theirs = B64
        .decode(x["confirmation"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let mine = pq::key_confirmation(&shared, device.id(), &ct);
    if theirs != mine {
        bail!("ML-KEM-768 key exchange: the server derived another secret");
    }
    let signing_key = B64
        .decode(device.meta["signing_key"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let sig = B64
        .decode(x["signature"].as_str().unwrap_or_default())
        .unwrap_or_default();
    if !pq::pq_verify(
        &signing_key,
        &pq::confirmation_signed_message(device.id(), &mine),
        &sig,
    ) {
        bail!("ML-KEM-768 key exchange: the server's FN-DSA-512 signature does not verify");
    }
    Ok(
        json!({"algorithm": "ML-KEM-768", "shared_secret_agreed": true,
              "server_signature": "FN-DSA-512 valid"}),
    )
}

async fn rotate(device: &mut Device, http: &reqwest::Client) -> anyhow::Result<()> {
    let next = device.version() + 1;
    let key = DeviceKey::generate();
    let kem = KemKeyPair::generate();
    let kem_public = kem.public_key();
    let proof = key.sign_bytes(&rotation_proof_message(
        device.id(),
        next,
        &key.public_key(),
        &kem_public,
    ));
    let path = format!("/api/v1/devices/{}/keys", device.id());
    let r = device
        .post(
            http,
            &path,
            &json!({
                "public_keys": {"ed25519": B64.encode(key.public_key()), "ml_kem_768": B64.encode(&kem_public)},
                "proof": B64.encode(proof),
            }),
        )
        .await?;
    // The server holds the new version now: keep the new keys before anything else.
    write_private(&device.dir.join("ed25519.key"), &key.secret()[..])?;
    write_private(&device.dir.join("ml_kem.key"), kem.seed())?;
    std::fs::write(
        device.dir.join("device.pem"),
        r["certificate"].as_str().unwrap_or_default(),
    )?;
    device.key = key;
    device.meta["key_version"] = json!(next);
    device.save_meta()?;
    eprintln!(
        "{}: rotated to key v{next}; v{} valid until {}",
        device.id(),
        next - 1,
        r["previous_key_valid_until"].as_str().unwrap_or("?")
    );
    Ok(())
}

async fn agent(
    dir: &Path,
    interval: Option<f64>,
    count: Option<u64>,
    training: bool,
    mut trainer: Option<crate::device_fl::Trainer>,
    poll: f64,
) -> anyhow::Result<ExitCode> {
    let mut device = Device::load(dir)?;
    let http = client()?;
    let mut every =
        interval.unwrap_or_else(|| device.meta["update_interval"].as_f64().unwrap_or(300.0));
    if !(0.05..=86_400.0).contains(&every) {
        bail!("--interval must be between 0.05 and 86400 seconds");
    }
    let stop = shutdown();
    tokio::pin!(stop);
    let path = format!("/api/v1/devices/{}/heartbeat", device.id());
    let status = if training { "training" } else { "online" };
    let mut sent = 0u64;
    loop {
        match device.post(&http, &path, &json!({"status": status})).await {
            Ok(ack) => {
                sent += 1;
                if interval.is_none() {
                    if let Some(i) = ack["update_interval"].as_f64() {
                        every = i.max(1.0);
                    }
                }
                if ack["rotate_keys"] == true {
                    if let Err(e) = rotate(&mut device, &http).await {
                        eprintln!("{}: key rotation failed: {e:#}", device.id());
                    }
                }
            }
            Err(e) => {
                eprintln!("{}: heartbeat failed: {e:#}", device.id());
                if e.to_string().contains("reason: revoked") {
                    return Ok(ExitCode::from(3));
                }
            }
        }
        if count.is_some_and(|c| sent >= c) {
            return Ok(ExitCode::SUCCESS);
        }
        let next_beat = tokio::time::Instant::now() + Duration::from_secs_f64(every);
        loop {
            let wait = match &trainer {
                Some(_) => Duration::from_secs_f64(poll.clamp(0.05, 60.0)),
                None => Duration::from_secs_f64(every),
            };
            let until = (tokio::time::Instant::now() + wait).min(next_beat);
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                () = &mut stop => return Ok(ExitCode::SUCCESS),
            }
            if let Some(t) = trainer.as_mut() {
                match t.poll(&device, &http).await {
                    Ok(lines) => {
                        for l in lines {
                            println!("{}: {l}", device.id());
                        }
                    }
                    Err(e) => eprintln!("{}: training poll failed: {e:#}", device.id()),
                }
            }
            if tokio::time::Instant::now() >= next_beat {
                break;
            }
        }
    }
}

async fn shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut a), Ok(mut b)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = a.recv() => {},
            _ = b.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn status(dir: &Path) -> anyhow::Result<ExitCode> {
    let device = Device::load(dir)?;
    let http = client()?;
    let check = key_exchange(&device, &http).await;
    let accepted = check.is_ok();
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "device_id": device.id(),
            "server": device.server(),
            "key_version": format!("v{}", device.version()),
            "update_interval": device.meta["update_interval"],
            "certificate": dir.join("device.pem").display().to_string(),
            "accepted_by_server": accepted,
            "key_exchange": check.unwrap_or_else(|e| json!({"error": format!("{e:#}")})),
        }))?
    );
    Ok(if accepted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Enrolls one simulated device in memory.
async fn enroll_simulated(
    http: &reqwest::Client,
    server: &str,
    api_key: &str,
    i: usize,
) -> anyhow::Result<Device> {
    let t = answer(
        http.post(format!("{server}/api/v1/devices/enrollment-tokens"))
            .header("x-api-key", api_key)
            .json(&json!({}))
            .send()
            .await?,
    )
    .await?;
    let token = t["token"].as_str().unwrap_or_default().to_string();
    let key = DeviceKey::generate();
    let kem = KemKeyPair::generate().public_key();
    let proof = key.sign_bytes(&enrollment_proof_message(&token, &key.public_key(), &kem));
    let reg = answer(
        http.post(format!("{server}/api/v1/devices/register"))
            .json(&json!({
                "enrollment_token": token,
                "device_info": {"name": format!("sim-{i}"), "type": "simulated", "capabilities": {}},
                "public_keys": {"ed25519": B64.encode(key.public_key()), "ml_kem_768": B64.encode(&kem)},
                "proof": B64.encode(proof),
            }))
            .send()
            .await?,
    )
    .await?;
    Ok(Device {
        dir: PathBuf::new(),
        meta: json!({"device_id": reg["device_id"], "server": server, "key_version": 1}),
        key,
    })
}

async fn simulate(
    server: &str,
    api_key: &str,
    devices: usize,
    interval: f64,
    duration: f64,
    train: bool,
) -> anyhow::Result<ExitCode> {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    if !(1..=100_000).contains(&devices) || !(0.05..=3600.0).contains(&interval) {
        bail!("--devices must be 1 to 100000 and --interval 0.05 to 3600 seconds");
    }
    let server = server.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(devices)
        .pool_idle_timeout(POOL_IDLE)
        .build()?;
    let started = Instant::now();
    let mut fleet = Vec::with_capacity(devices);
    // Enroll 16 at a time.
    let mut next = 0;
    while next < devices {
        let batch: Vec<_> = (next..devices.min(next + 16))
            .map(|i| enroll_simulated(&http, &server, api_key, i))
            .collect();
        for d in futures_util::future::join_all(batch).await {
            fleet.push(Arc::new(d?));
        }
        next += 16;
    }
    let enroll_secs = started.elapsed().as_secs_f64();
    if train {
        let out =
            crate::device_fl::simulate_round(&server, api_key, &fleet, &http, duration).await?;
        println!("{}", serde_json::to_string_pretty(&out)?);
        let complete = out["errors"] == 0
            && out["rounds"]
                .as_array()
                .is_some_and(|r| !r.is_empty() && r.iter().all(|r| r["status"] == "completed"));
        return Ok(if complete {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let lat: Arc<Mutex<Vec<u32>>> = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let mut tasks = Vec::with_capacity(devices);
    for (i, d) in fleet.iter().enumerate() {
        let (d, http, lat, errors) = (d.clone(), http.clone(), lat.clone(), errors.clone());
        // Spread the devices evenly over one interval.
        let offset = interval * (i as f64) / (devices as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(offset)).await;
            let path = format!("/api/v1/devices/{}/heartbeat", d.id());
            let mut tick = tokio::time::interval(Duration::from_secs_f64(interval));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while Instant::now() < deadline {
                tick.tick().await;
                let t = Instant::now();
                match d.post(&http, &path, &json!({"status": "online"})).await {
                    Ok(_) => {
                        let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
                        lat.lock().unwrap_or_else(|e| e.into_inner()).push(us);
                    }
                    Err(e) => {
                        if errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 5 {
                            eprintln!("heartbeat failed: {e:#}");
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = lat.lock().unwrap_or_else(|e| e.into_inner()).clone();
    l.sort_unstable();
    let pct = |p: f64| -> f64 {
        if l.is_empty() {
            return 0.0;
        }
        let idx = ((p / 100.0) * (l.len() as f64 - 1.0)).round() as usize;
        f64::from(l[idx.min(l.len() - 1)]) / 1000.0
    };
    let errors = errors.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "devices": devices,
            "interval_secs": interval,
            "duration_secs": duration,
            "enroll_secs": (enroll_secs * 10.0).round() / 10.0,
            "heartbeats": l.len(),
            "errors": errors,
            "rate_per_sec": (l.len() as f64 / duration * 10.0).round() / 10.0,
            "latency_ms": {"p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "max": pct(100.0)},
        }))?
    );
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
