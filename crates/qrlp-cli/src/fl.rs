//! `qrlp fl`: drive federated learning with an API key. `start` starts a training job
//! (`POST /api/v1/fl/rounds`), `status` shows a round, `watch` follows a job to its end
//! with a progress bar, `evaluate` downloads a global model and measures its accuracy on a
//! CSV held out from training.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::device_fl::{load_csv, model_of, parameters_of, standardised, standardizer_of};

/// Arguments of `qrlp fl`.
#[derive(clap::Args, Debug)]
pub struct FlArgs {
    #[command(subcommand)]
    command: FlCommand,
    /// The server's base URL.
    #[arg(
        long,
        global = true,
        env = "QRLP_SERVER",
        default_value = "http://127.0.0.1:8000"
    )]
    server: String,
    /// An API key (`training:write` to start, `training:read` otherwise).
    #[arg(long, global = true, env = "QRLP_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

#[derive(Subcommand, Debug)]
enum FlCommand {
    /// Start a training job of `--rounds` rounds; prints its first round as JSON.
    Start {
        /// `logistic_regression` or `mlp`.
        #[arg(long, default_value = "logistic_regression")]
        architecture: String,
        /// Features per example.
        #[arg(long)]
        input_dim: u32,
        /// Hidden units (mlp).
        #[arg(long)]
        hidden_units: Option<u32>,
        /// Rounds.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// `fedavg`, `fedadam`, `trimmed_mean` or `median`.
        #[arg(long, default_value = "fedavg")]
        strategy: String,
        /// Share trimmed at each end (trimmed_mean).
        #[arg(long)]
        trim_fraction: Option<f64>,
        /// Quorum per round.
        #[arg(long, default_value_t = 2)]
        min_participants: u32,
        /// Most devices per round.
        #[arg(long)]
        max_participants: Option<u32>,
        /// Local step size.
        #[arg(long, default_value_t = 0.1)]
        learning_rate: f32,
        /// Local epochs per round.
        #[arg(long, default_value_t = 1)]
        epochs: u32,
        /// Local batch size.
        #[arg(long, default_value_t = 32)]
        batch_size: u32,
        /// Seconds per round before its deadline.
        #[arg(long, default_value_t = 300)]
        deadline_secs: u64,
        /// DP-FedAvg with noise multiplier `--noise` and clipping norm `--clip`.
        #[arg(long)]
        dp: bool,
        /// Noise multiplier z.
        #[arg(long, default_value_t = 1.0)]
        noise: f64,
        /// Clipping norm S.
        #[arg(long, default_value_t = 1.0)]
        clip: f64,
        /// δ.
        #[arg(long)]
        delta: Option<f64>,
        /// Stop before ε would exceed this.
        #[arg(long)]
        budget: Option<f64>,
        /// Follow the job after starting it (as `watch`).
        #[arg(long)]
        watch: bool,
    },
    /// Show a round as JSON.
    Status {
        /// `round_…`.
        round_id: String,
    },
    /// Follow a round's job until it ends; prints a JSON summary; exit 1 if it failed.
    Watch {
        /// Any round of the job.
        round_id: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 3600.0)]
        timeout: f64,
    },
    /// The privacy accountant, offline: ε after `--rounds` rounds of the sampled Gaussian
    /// mechanism (as the server reports for DP jobs, which use q = 1), as JSON.
    Epsilon {
        /// Noise multiplier z.
        #[arg(long)]
        noise: f64,
        /// Rounds.
        #[arg(long)]
        rounds: u64,
        /// δ.
        #[arg(long, default_value_t = 1e-5)]
        delta: f64,
        /// Sampling rate q.
        #[arg(long, default_value_t = 1.0)]
        q: f64,
    },
    /// Accuracy of a global model on a CSV (features and a 0/1 label), as JSON.
    Evaluate {
        /// `job_….vN`.
        #[arg(long)]
        model: String,
        /// The CSV.
        #[arg(long)]
        data: PathBuf,
        /// The label column.
        #[arg(long)]
        label: Option<String>,
    },
}

/// Runs `qrlp fl`.
pub fn run(args: FlArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    if let FlCommand::Epsilon {
        noise,
        rounds,
        delta,
        q,
    } = args.command
    {
        let mut acc = qrlp_federated::Accountant::default();
        acc.record(q, noise, rounds).map_err(|e| anyhow!("{e}"))?;
        let spent = acc.epsilon(delta).map_err(|e| anyhow!("{e}"))?;
        println!(
            "{}",
            json!({"q": q, "noise_multiplier": noise, "rounds": rounds, "delta": delta,
                "epsilon": spent.epsilon, "order": spent.order})
        );
        return Ok(ExitCode::SUCCESS);
    }
    let key = args
        .api_key
        .clone()
        .ok_or_else(|| anyhow!("an API key is required (--api-key or QRLP_API_KEY)"))?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        server: args.server.trim_end_matches('/').to_string(),
        key,
    };
    runtime.block_on(async move {
        match args.command {
            FlCommand::Start {
                architecture,
                input_dim,
                hidden_units,
                rounds,
                strategy,
                trim_fraction,
                min_participants,
                max_participants,
                learning_rate,
                epochs,
                batch_size,
                deadline_secs,
                dp,
                noise,
                clip,
                delta,
                budget,
                watch,
            } => {
                let mut body = json!({
                    "model_config": {"architecture": architecture, "input_dim": input_dim,
                        "hyperparameters": {"learning_rate": learning_rate, "epochs": epochs,
                            "batch_size": batch_size}},
                    "participant_criteria": {"min_participants": min_participants},
                    "rounds": rounds, "strategy": strategy, "deadline_secs": deadline_secs,
                });
                if let Some(h) = hidden_units {
                    body["model_config"]["hidden_units"] = json!(h);
                }
                if let Some(m) = max_participants {
                    body["participant_criteria"]["max_participants"] = json!(m);
                }
                if let Some(t) = trim_fraction {
                    body["trim_fraction"] = json!(t);
                }
                if dp {
                    body["privacy_settings"] = json!({"differential_privacy": true,
                        "noise_level": noise, "clipping_norm": clip});
                    if let Some(d) = delta {
                        body["privacy_settings"]["target_delta"] = json!(d);
                    }
                    if let Some(b) = budget {
                        body["privacy_settings"]["budget_epsilon"] = json!(b);
                    }
                }
                let round = api.send("POST", "/api/v1/fl/rounds", Some(&body)).await?;
                println!("{}", serde_json::to_string_pretty(&round)?);
                if watch {
                    let id = round["id"].as_str().unwrap_or_default().to_string();
                    return watch_job(&api, &id, 3600.0).await;
                }
                Ok(ExitCode::SUCCESS)
            }
            FlCommand::Status { round_id } => {
                let r = api
                    .send("GET", &format!("/api/v1/fl/rounds/{round_id}"), None)
                    .await?;
                println!("{}", serde_json::to_string_pretty(&r)?);
                Ok(ExitCode::SUCCESS)
            }
            FlCommand::Watch { round_id, timeout } => watch_job(&api, &round_id, timeout).await,
            FlCommand::Epsilon { .. } => Ok(ExitCode::SUCCESS),
            FlCommand::Evaluate { model, data, label } => {
                let m = api
                    .send("GET", &format!("/api/v1/fl/models/{model}"), None)
                    .await?;
                let params = parameters_of(&m)?;
                let local = load_csv(&data, label.as_deref())?;
                let dim = local.data.dim();
                let shape = &m["shape"];
                let hidden = shape
                    .as_array()
                    .and_then(|t| t.first())
                    .and_then(|t| t["dims"][0].as_u64())
                    .unwrap_or(16) as usize;
                let model_ = model_of(
                    m["architecture"].as_str().unwrap_or_default(),
                    dim,
                    hidden,
                    m["activation"].as_str().unwrap_or("relu"),
                    &params,
                )?;
                let d = standardised(&local.data, standardizer_of(&m["standardization"]).as_ref())?;
                let acc = qrlp_federated::train::accuracy(model_.as_ref(), &d)
                    .map_err(|e| anyhow!("{e}"))?;
                println!(
                    "{}",
                    json!({"model": model, "examples": d.len(), "accuracy": acc})
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

struct Api {
    http: reqwest::Client,
    server: String,
    key: String,
}

impl Api {
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.server);
        let mut req = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        }
        .header("x-api-key", &self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let e = &v["error"];
            bail!(
                "server answered {status}: {} {}",
                e["code"].as_str().unwrap_or("?"),
                e["message"].as_str().unwrap_or("")
            );
        }
        Ok(v)
    }
}

async fn watch_job(api: &Api, round_id: &str, timeout: f64) -> anyhow::Result<ExitCode> {
    let start = std::time::Instant::now();
    let mut current = round_id.to_string();
    let bar = indicatif::ProgressBar::new(1);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} rounds {pos}/{len} [{bar:30}] {msg}")
            .map_err(|e| anyhow!("{e}"))?
            .progress_chars("=> "),
    );
    loop {
        let r = api
            .send("GET", &format!("/api/v1/fl/rounds/{current}"), None)
            .await?;
        let job = &r["job"];
        bar.set_length(job["rounds"].as_u64().unwrap_or(1));
        bar.set_position(job["completed_rounds"].as_u64().unwrap_or(0));
        let mut msg = format!(
            "round {} {} {}/{} submitted",
            r["round_number"],
            r["status"].as_str().unwrap_or("?"),
            r["progress"]["completed_devices"],
            r["participants"]
        );
        if let Some(a) = r["progress"]["avg_accuracy"].as_f64() {
            msg.push_str(&format!(", local accuracy {a:.3}"));
        }
        if let Some(e) = r["privacy"]["epsilon"].as_f64() {
            msg.push_str(&format!(", ε {e:.3}"));
        }
        bar.set_message(msg);
        if job["status"] != "running" {
            bar.finish();
            // The last round's privacy is the job's.
            let last = match job["current_round_id"].as_str() {
                Some(id) if id != current => {
                    api.send("GET", &format!("/api/v1/fl/rounds/{id}"), None)
                        .await?
                }
                _ => r.clone(),
            };
            let summary = json!({
                "job_id": job["id"], "status": job["status"], "reason": job["reason"],
                "rounds": job["rounds"], "completed_rounds": job["completed_rounds"],
                "latest_model_version": job["latest_model_version"],
                "last_round_id": last["id"], "avg_accuracy": last["progress"]["avg_accuracy"],
                "epsilon": last["privacy"]["epsilon"], "target_delta": last["privacy"]["target_delta"],
            });
            println!("{summary}");
            return Ok(if job["status"] == "completed" {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        if let Some(id) = job["current_round_id"].as_str() {
            current = id.to_string();
        }
        if start.elapsed().as_secs_f64() > timeout {
            bar.abandon();
            bail!("the job did not end within {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
