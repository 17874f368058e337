//! The training half of `qrlp device agent --data FILE.csv`: find the organization's open
//! rounds, join them (sharing only the local feature count, `Σx` and `Σx²`), pull the
//! global model, standardise with the federation's statistics, train locally with
//! `qrlp_federated::train`, clip the update when the job is differentially private, seal it
//! to the server (`qrlp_fleet::transport`) and submit it with the local accuracy.
//!
//! The data never leaves the device: only the statistics above and the sealed update do.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use qrlp_federated::train::{
    accuracy, fit, log_loss, Activation, Dataset, FeatureStats, FitConfig, LogisticRegression, Mlp,
    Model, Standardizer,
};
use qrlp_federated::{ModelShape, Parameters};
use qrlp_fleet::transport::{seal_update, Binding};
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

use crate::device::Device;

/// A CSV of numeric features and a 0/1 label column.
pub struct LocalData {
    /// Examples (unstandardised).
    pub data: Dataset,
}

/// Reads `path`: a header row, numeric columns; `label` names the label column (default
/// `label`, else `target`, else the last column).
pub fn load_csv(path: &Path, label: Option<&str>) -> anyhow::Result<LocalData> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let headers: Vec<String> = rdr
        .headers()
        .context("the CSV has no header row")?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.len() < 2 {
        bail!("the CSV needs at least one feature column and a label column");
    }
    let li = match label {
        Some(l) => headers
            .iter()
            .position(|h| h == l)
            .ok_or_else(|| anyhow!("no column named {l:?} in {}", path.display()))?,
        None => headers
            .iter()
            .position(|h| h == "label")
            .or_else(|| headers.iter().position(|h| h == "target"))
            .unwrap_or(headers.len() - 1),
    };
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.with_context(|| format!("row {}", n + 2))?;
        for (i, cell) in rec.iter().enumerate() {
            let v: f32 = cell.trim().parse().with_context(|| {
                format!("row {} column {}: {cell:?} is not a number", n + 2, i + 1)
            })?;
            if i == li {
                if v != 0.0 && v != 1.0 {
                    bail!("row {}: the label must be 0 or 1", n + 2);
                }
                labels.push(v);
            } else {
                features.push(v);
            }
        }
    }
    let dim = headers.len() - 1;
    let data = Dataset::new(features, labels, dim).map_err(|e| anyhow!("{e}"))?;
    Ok(LocalData { data })
}

/// `data` standardised by `s` (a copy).
pub fn standardised(data: &Dataset, s: Option<&Standardizer>) -> anyhow::Result<Dataset> {
    let mut d = data.clone();
    if let Some(s) = s {
        s.apply(&mut d).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(d)
}

/// A model of `architecture` for `dim` features holding `params`.
pub fn model_of(
    architecture: &str,
    dim: usize,
    hidden: usize,
    activation: &str,
    params: &Parameters,
) -> anyhow::Result<Box<dyn Model>> {
    let mut m: Box<dyn Model> = match architecture {
        "logistic_regression" => {
            Box::new(LogisticRegression::new(dim).map_err(|e| anyhow!("{e}"))?)
        }
        "mlp" => {
            let act = if activation == "tanh" {
                Activation::Tanh
            } else {
                Activation::Relu
            };
            let mut rng = ChaCha20Rng::seed_from_u64(0);
            Box::new(Mlp::new(dim, hidden, act, &mut rng).map_err(|e| anyhow!("{e}"))?)
        }
        other => bail!("this agent trains logistic_regression and mlp, not {other:?}"),
    };
    m.set_parameters(params)
        .map_err(|e| anyhow!("the model does not fit the architecture: {e}"))?;
    Ok(m)
}

/// Decodes a `GET /fl/models/{version}` answer.
pub fn parameters_of(model: &Value) -> anyhow::Result<Parameters> {
    let shape: ModelShape =
        serde_json::from_value(model["shape"].clone()).context("model shape")?;
    let bytes = B64
        .decode(model["parameters"].as_str().unwrap_or_default())
        .context("model parameters")?;
    if !bytes.len().is_multiple_of(4) {
        bail!("model parameters are not f32 values");
    }
    let values = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Parameters::new(shape, values).map_err(|e| anyhow!("{e}"))
}

/// The standardiser in an answer's `standardization` field, if any.
pub fn standardizer_of(v: &Value) -> Option<Standardizer> {
    serde_json::from_value(v.clone()).ok()
}

/// Whether the server refused for good (a 4xx answer), rather than being unreachable or
/// failing for a while.
fn refused(e: &anyhow::Error) -> bool {
    e.to_string().starts_with("server answered 4")
}

/// The training agent's state across polls.
pub struct Trainer {
    local: LocalData,
    stats: Value,
    done: HashSet<String>,
    rng: ChaCha20Rng,
    poison: Option<f32>,
    /// Rounds submitted.
    pub submitted: u64,
}

impl Trainer {
    /// An agent over the CSV at `path`.
    pub fn new(
        path: &Path,
        label: Option<&str>,
        seed: u64,
        poison: Option<f32>,
    ) -> anyhow::Result<Trainer> {
        let local = load_csv(path, label)?;
        let stats = serde_json::to_value(FeatureStats::of(&local.data))?;
        Ok(Trainer {
            local,
            stats,
            done: HashSet::new(),
            rng: ChaCha20Rng::seed_from_u64(seed),
            poison,
            submitted: 0,
        })
    }

    /// One poll: joins every open round not done yet and, for those ready, trains and
    /// submits. Returns the lines to print.
    pub async fn poll(
        &mut self,
        device: &Device,
        http: &reqwest::Client,
    ) -> anyhow::Result<Vec<String>> {
        let open = device
            .signed(http, "GET", "/api/v1/fl/open-rounds", None)
            .await?;
        let mut out = Vec::new();
        for r in open["rounds"].as_array().cloned().unwrap_or_default() {
            let id = r["round_id"].as_str().unwrap_or_default().to_string();
            if r["submitted"] == true || self.done.contains(&id) {
                continue;
            }
            let path = format!("/api/v1/fl/rounds/{id}/join");
            let answer = match device
                .signed(
                    http,
                    "POST",
                    &path,
                    Some(&json!({"feature_stats": self.stats})),
                )
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    // Full, closed or not eligible: nothing to do in this round. Anything
                    // else (the server unreachable, restarting) is tried again next poll.
                    if refused(&e) {
                        self.done.insert(id.clone());
                    }
                    out.push(format!("{id}: not joined: {e:#}"));
                    continue;
                }
            };
            if answer["ready"] != true {
                continue;
            }
            match self.train_and_submit(device, http, &answer).await {
                Ok(line) => {
                    self.submitted += 1;
                    out.push(line);
                    self.done.insert(id);
                }
                Err(e) => {
                    if refused(&e) {
                        self.done.insert(id.clone());
                    }
                    out.push(format!("{id}: submission failed: {e:#}"));
                }
            }
        }
        Ok(out)
    }

    async fn train_and_submit(
        &mut self,
        device: &Device,
        http: &reqwest::Client,
        answer: &Value,
    ) -> anyhow::Result<String> {
        let round_id = answer["round_id"].as_str().unwrap_or_default();
        let version = answer["model_version"].as_str().unwrap_or_default();
        let model = device
            .signed(http, "GET", &format!("/api/v1/fl/models/{version}"), None)
            .await?;
        let global = parameters_of(&model)?;
        let t = &answer["training"];
        let dim = self.local.data.dim();
        if t["input_dim"].as_u64() != Some(dim as u64) {
            bail!(
                "the round trains on {} features, the local data has {dim}",
                t["input_dim"]
            );
        }
        let data = standardised(
            &self.local.data,
            standardizer_of(&answer["standardization"]).as_ref(),
        )?;
        let mut m = model_of(
            t["architecture"].as_str().unwrap_or_default(),
            dim,
            t["hidden_units"].as_u64().unwrap_or(16) as usize,
            t["activation"].as_str().unwrap_or("relu"),
            &global,
        )?;
        let cfg = FitConfig {
            learning_rate: t["learning_rate"].as_f64().unwrap_or(0.1) as f32,
            epochs: t["epochs"].as_u64().unwrap_or(1) as u32,
            batch_size: t["batch_size"].as_u64().unwrap_or(32) as u32,
            l2: t["l2"].as_f64().unwrap_or(0.0) as f32,
        };
        fit(m.as_mut(), &data, &cfg, &mut self.rng).map_err(|e| anyhow!("training: {e}"))?;
        let acc = accuracy(m.as_ref(), &data).map_err(|e| anyhow!("{e}"))?;
        let loss = log_loss(m.as_ref(), &data).map_err(|e| anyhow!("{e}"))?;
        let mut update = m.values().to_vec();
        if let Some(s) = t["clipping_norm"].as_f64() {
            qrlp_federated::dp::clip_update(&mut update, global.values(), s)
                .map_err(|e| anyhow!("{e}"))?;
        }
        if let Some(k) = self.poison {
            // Test mode: a scaled-up update, as a poisoned participant would send.
            for (u, g) in update.iter_mut().zip(global.values()) {
                *u = g + k * (*u - g);
            }
        }
        submit_update(
            device,
            http,
            answer,
            &update,
            data.len() as u64,
            json!({"accuracy": acc, "loss": loss}),
        )
        .await?;
        Ok(format!(
            "{round_id} (round {}/{}): trained on {} examples, local accuracy {acc:.4}, loss {loss:.4}",
            answer["round_number"],
            answer["total_rounds"],
            data.len()
        ))
    }
}

/// Seals `update` to the server for the round of a join `answer` (its transport keys and
/// model version) and submits it with `num_samples` and `metrics`; the server's answer.
///
/// # Errors
/// When the answer lacks its keys, or the server refuses or cannot be reached.
pub async fn submit_update(
    device: &Device,
    http: &reqwest::Client,
    answer: &Value,
    update: &[f32],
    num_samples: u64,
    metrics: Value,
) -> anyhow::Result<Value> {
    let (path, body) = submission(device.id(), answer, update, num_samples, metrics)?;
    let headers = device.sign("POST", &path, &body);
    device.send(http, "POST", &path, headers, body).await
}

/// The path and JSON body of a submission of `update` by `device_id` to the round of a
/// join `answer`: the update sealed to the server (CPU work, no I/O).
///
/// # Errors
/// When the answer lacks its keys.
pub fn submission(
    device_id: &str,
    answer: &Value,
    update: &[f32],
    num_samples: u64,
    metrics: Value,
) -> anyhow::Result<(String, Vec<u8>)> {
    let round_id = answer["round_id"].as_str().unwrap_or_default();
    let version = answer["model_version"].as_str().unwrap_or_default();
    let plain: Vec<u8> = update.iter().flat_map(|v| v.to_le_bytes()).collect();
    let kem = B64
        .decode(answer["transport"]["kem_key"].as_str().unwrap_or_default())
        .context("transport.kem_key")?;
    let rk: [u8; 32] = B64
        .decode(
            answer["transport"]["round_key"]
                .as_str()
                .unwrap_or_default(),
        )
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow!("transport.round_key is not 32 bytes"))?;
    let number: u32 = version
        .rsplit_once(".v")
        .and_then(|(_, n)| n.parse().ok())
        .ok_or_else(|| anyhow!("model version {version:?}"))?;
    let env = seal_update(
        &kem,
        &rk,
        &Binding {
            round_id,
            device_id,
            model_version: number,
        },
        &plain,
    )
    .map_err(|e| anyhow!("{e}"))?;
    drop(plain);
    let body = serde_json::to_vec(&json!({
        "update": B64.encode(env),
        "num_samples": num_samples,
        "metrics": metrics,
    }))?;
    Ok((format!("/api/v1/fl/rounds/{round_id}/submit"), body))
}

/// `qrlp device simulate --train`: each simulated device finds the organization's open
/// round, joins it, pulls the global model when the round starts, and submits a synthetic
/// update (the model plus noise of ±0.01, sealed and signed as an agent's), all devices at
/// once. Then, with `api_key`, follows the rounds until they end. Returns the submission
/// latencies and, per round, the time from the last accepted submission to the round's end.
///
/// # Errors
/// When the rounds cannot be followed; a device's failure is counted, not returned.
pub async fn simulate_round(
    server: &str,
    api_key: &str,
    fleet: &[std::sync::Arc<Device>],
    http: &reqwest::Client,
    duration: f64,
) -> anyhow::Result<Value> {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    // Devices each have their own processor; simulated ones share this machine's. Two
    // prepare at a time (pull the model, make and seal the update), so the others'
    // connections are not starved of CPU; every submission is then sent at once.
    let cpu = std::sync::Arc::new(tokio::sync::Semaphore::new(2));
    let mut tasks = Vec::with_capacity(fleet.len());
    for (i, d) in fleet.iter().enumerate() {
        let (d, http, cpu) = (d.clone(), http.clone(), cpu.clone());
        tasks.push(tokio::spawn(async move {
            simulated_submission(&d, &http, &cpu, deadline, i as u64).await
        }));
    }
    let mut latencies = Vec::with_capacity(fleet.len());
    let mut last_ack: std::collections::BTreeMap<String, Instant> = Default::default();
    let mut errors = 0u64;
    for t in tasks {
        match t.await {
            Ok(Ok((round, latency, acked))) => {
                latencies.push(latency.as_secs_f64() * 1000.0);
                let e = last_ack.entry(round).or_insert(acked);
                *e = (*e).max(acked);
            }
            Ok(Err(e)) => {
                errors += 1;
                if errors <= 5 {
                    eprintln!("simulated device: {e:#}");
                }
            }
            Err(e) => {
                errors += 1;
                eprintln!("simulated device: {e}");
            }
        }
    }
    let mut rounds = Vec::new();
    for (id, acked) in last_ack {
        let limit = Instant::now() + Duration::from_secs(120);
        let (status, view) = loop {
            let r = http
                .get(format!("{server}/api/v1/fl/rounds/{id}"))
                .header("x-api-key", api_key)
                .send()
                .await?;
            let v: Value = r.json().await?;
            let s = v["status"].as_str().unwrap_or_default().to_string();
            if s == "completed" || s == "failed" || Instant::now() > limit {
                break (s, v);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        rounds.push(json!({
            "round_id": id,
            "status": status,
            "reason": view["reason"],
            "progress": view["progress"],
            "last_submission_to_end_ms": (acked.elapsed().as_secs_f64() * 1000.0).round(),
        }));
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (latencies.len() as f64 - 1.0)).round() as usize;
        (latencies[i.min(latencies.len() - 1)] * 10.0).round() / 10.0
    };
    Ok(json!({
        "devices": fleet.len(),
        "submissions": latencies.len(),
        "errors": errors,
        "submit_latency_ms": {"p50": pct(50.0), "p99": pct(99.0), "max": pct(100.0)},
        "rounds": rounds,
    }))
}

/// One simulated device's submission: the round, its latency, and when it was accepted.
async fn simulated_submission(
    device: &std::sync::Arc<Device>,
    http: &reqwest::Client,
    cpu: &tokio::sync::Semaphore,
    deadline: std::time::Instant,
    seed: u64,
) -> anyhow::Result<(String, std::time::Duration, std::time::Instant)> {
    use rand_chacha::rand_core::RngCore as _;
    use std::time::{Duration, Instant};
    let poll = Duration::from_millis(500);
    loop {
        if Instant::now() > deadline {
            bail!("no round started before the end of the simulation");
        }
        let open = device
            .signed(http, "GET", "/api/v1/fl/open-rounds", None)
            .await?;
        let round = open["rounds"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["submitted"] != true))
            .and_then(|r| r["round_id"].as_str())
            .map(str::to_string);
        let Some(id) = round else {
            tokio::time::sleep(poll).await;
            continue;
        };
        let answer = device
            .signed(
                http,
                "POST",
                &format!("/api/v1/fl/rounds/{id}/join"),
                Some(&json!({})),
            )
            .await?;
        if answer["ready"] != true {
            tokio::time::sleep(poll).await;
            continue;
        }
        let version = answer["model_version"].as_str().unwrap_or_default();
        let place = cpu.acquire().await?;
        let model = device
            .signed(http, "GET", &format!("/api/v1/fl/models/{version}"), None)
            .await?;
        // The CPU work (decoding the model, sealing, signing: tens of milliseconds for a
        // large model) off the async thread, so the other devices' connections keep moving.
        let d = device.clone();
        let (path, headers, body) = tokio::task::spawn_blocking(move || {
            let global = parameters_of(&model)?;
            drop(model);
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let update: Vec<f32> = global
                .values()
                .iter()
                .map(|g| g + (rng.next_u32() as f32 / u32::MAX as f32 - 0.5) * 0.02)
                .collect();
            drop(global);
            let (path, body) = submission(d.id(), &answer, &update, 100, json!({}))?;
            let headers = d.sign("POST", &path, &body);
            anyhow::Ok((path, headers, body))
        })
        .await??;
        drop(place);
        let t = Instant::now();
        device.send(http, "POST", &path, headers, body).await?;
        return Ok((id, t.elapsed(), Instant::now()));
    }
}
