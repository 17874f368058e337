//! `qrlp batch`: many codes from a file of payloads, written in parallel.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use crate::symbol_args::{Format, SymbolArgs};

/// Arguments of `qrlp batch`.
#[derive(clap::Args, Debug)]
pub struct BatchArgs {
    /// Input: one payload per line, or with --csv (or a .csv name) rows of `filename,data`.
    pub input: PathBuf,
    /// Directory to write the images into (created if missing).
    #[arg(short, long)]
    pub output_dir: PathBuf,
    /// Read the input as CSV `filename,data` rows (a first row `filename,data` is a header).
    #[arg(long)]
    pub csv: bool,
    /// Image format.
    #[arg(long, value_enum, default_value = "png")]
    pub format: Format,
    /// Worker threads [default: all cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub symbol: SymbolArgs,
}

/// One unit of work: where it came from, where it goes, what it holds.
struct Job {
    line: usize,
    name: Result<String, String>,
    data: Result<String, String>,
}

fn plain_jobs(bytes: &[u8], ext: &str) -> Vec<Job> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let digits = lines.len().max(1).to_string().len();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let data = match std::str::from_utf8(raw) {
                Ok("") => Err("empty payload".to_string()),
                Ok(s) => Ok(s.to_string()),
                Err(e) => Err(format!("not valid UTF-8 ({e})")),
            };
            Job {
                line: i + 1,
                name: Ok(format!("{:0digits$}.{ext}", i + 1)),
                data,
            }
        })
        .collect()
}

/// A file name from the CSV, kept inside the output directory.
fn safe_name(name: &str, ext: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("empty filename".into());
    }
    if name.contains(['/', '\\', '\0']) || name == "." || name == ".." {
        return Err(format!(
            "filename {name:?} must be a plain name, not a path"
        ));
    }
    let has_ext = Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext));
    Ok(if has_ext {
        name.to_string()
    } else {
        format!("{name}.{ext}")
    })
}

fn csv_jobs(bytes: &[u8], ext: &str) -> Vec<Job> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut jobs = Vec::new();
    for (i, record) in reader.byte_records().enumerate() {
        let line = i + 1;
        let job = match record {
            Err(e) => Job {
                line,
                name: Err(format!("bad CSV: {e}")),
                data: Err(String::new()),
            },
            Ok(r) => {
                let line = r.position().map_or(line, |p| p.line() as usize);
                if i == 0 && r.len() == 2 && &r[0] == b"filename" && &r[1] == b"data" {
                    continue;
                }
                if r.len() != 2 {
                    Job {
                        line,
                        name: Err(format!(
                            "expected 2 fields `filename,data`, found {}",
                            r.len()
                        )),
                        data: Err(String::new()),
                    }
                } else {
                    let text = |b: &[u8]| {
                        String::from_utf8(b.to_vec()).map_err(|e| format!("not valid UTF-8 ({e})"))
                    };
                    Job {
                        line,
                        name: text(&r[0]).and_then(|n| safe_name(&n, ext)),
                        data: text(&r[1]).and_then(|d| {
                            if d.is_empty() {
                                Err("empty payload".into())
                            } else {
                                Ok(d)
                            }
                        }),
                    }
                }
            }
        };
        jobs.push(job);
    }
    jobs
}

/// Runs `qrlp batch`.
pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let opts = args.symbol.options()?;
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let ext = args.format.extension();
    let is_csv = args.csv
        || args
            .input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let jobs = if is_csv {
        csv_jobs(&bytes, ext)
    } else {
        plain_jobs(&bytes, ext)
    };
    if jobs.is_empty() {
        bail!("{} holds no payloads", args.input.display());
    }
    std::fs::create_dir_all(&args.output_dir)
        .with_context(|| format!("cannot create {}", args.output_dir.display()))?;

    let workers = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(jobs.len() as u64).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    };
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let result = (|| -> Result<(), String> {
                    let name = job.name.clone()?;
                    let data = job.data.clone()?;
                    let image = args
                        .symbol
                        .render(&opts, &data, args.format)
                        .map_err(|e| format!("{e:#}"))?;
                    let path = args.output_dir.join(&name);
                    std::fs::write(&path, image)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))
                })();
                if let Err(msg) = result {
                    failures
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((job.line, msg));
                }
                if i.is_multiple_of(64) {
                    bar.set_position(next.load(Ordering::Relaxed).min(jobs.len()) as u64);
                }
            });
        }
    });
    bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let mut failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    failures.sort();
    for (line, msg) in &failures {
        eprintln!("line {line}: {msg}");
    }
    let ok = jobs.len() - failures.len();
    eprintln!(
        "{ok} written, {} failed, in {elapsed:.2} s ({:.0} codes/s on {workers} threads) -> {}",
        failures.len(),
        ok as f64 / elapsed.max(1e-9),
        args.output_dir.display()
    );
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
