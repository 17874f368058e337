//! `qrlp keys`: the issuer's keys. `export` writes the public key set that offline
//! verifiers load (`qrlp verify --keys`, the Python verifier, `/.well-known/qrlp-keys.json`);
//! `list` shows the key generations; `rotate` starts a new generation while the old one
//! keeps verifying for a grace period.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use qrlp_config::{Config, Override};
use qrlp_live::{format_timestamp, KeyStore, Suite};

/// Arguments of `qrlp keys`.
#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
    /// Identity file [default: $QRLP_DATA_DIR/identity.json, or ./qrlp-data/identity.json].
    #[arg(long, global = true)]
    identity_file: Option<PathBuf>,
    /// Configuration file (TOML, JSON or YAML); the environment overrides it.
    #[arg(
        long,
        short = 'c',
        env = "QRLP_CONFIG",
        value_name = "PATH",
        global = true
    )]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Write the public key set (JSON) that `qrlp verify --keys` reads: every key still in
    /// the identity file, with its validity window. Publish it for offline verifiers.
    Export {
        /// Write to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List the key generations: creation, end of validity and key id of each suite.
    List,
    /// Make a new current key generation; the old one keeps verifying frames for the grace
    /// period, then is dropped at the next rotation.
    Rotate {
        /// Seconds the old keys stay valid.
        #[arg(long, default_value_t = 86_400)]
        grace: u64,
        /// Give the new generation an FN-DSA-512 key too (kept when the current one has
        /// one).
        #[arg(long)]
        pq: bool,
    },
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The configuration of `file` and the environment, with `--identity-file` applied (what
/// `keys` and `verify` read).
pub(crate) fn load_config(
    file: Option<&Path>,
    identity_file: Option<&Path>,
) -> anyhow::Result<Config> {
    let o: Vec<Override> = identity_file
        .map(|p| {
            Override::new(
                "identity.identity_file",
                p.display().to_string(),
                "--identity-file",
            )
        })
        .into_iter()
        .collect();
    Config::load(file, &o).map_err(|problems| anyhow!("{problems}"))
}

/// Runs `qrlp keys`.
pub fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args.config.as_deref(), args.identity_file.as_deref())?;
    let path = qrlp_protocol::identity_path(&config);
    if !path.exists() {
        bail!(
            "no identity file at {}: `qrlp generate` creates one, or pass --identity-file PATH",
            path.display()
        );
    }
    let mut store = KeyStore::load(&path)?;
    match args.command {
        KeysCommand::Export { output } => {
            let json = store.key_set().to_json();
            match output {
                Some(p) => {
                    std::fs::write(&p, format!("{json}\n"))
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    eprintln!("wrote {} keys to {}", store.key_set().len(), p.display());
                }
                None => println!("{json}"),
            }
        }
        KeysCommand::List => print!("{}", list(&store)),
        KeysCommand::Rotate { grace, pq } => {
            let keep_pq = store.current().supports(Suite::FnDsa512);
            store.rotate(now_ms(), grace.saturating_mul(1000), pq || keep_pq)?;
            print!("{}", list(&store));
            eprintln!(
                "rotated: the previous keys verify for {grace} s more; publish the new key set \
                 (qrlp keys export)"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per generation, oldest first.
fn list(store: &KeyStore) -> String {
    let mut out = String::from(
        "generation  created                   not_after                 ed25519           fn-dsa-512        ed25519+fn-dsa-512\n",
    );
    let n = store.generations().len();
    for (i, g) in store.generations().iter().enumerate() {
        let kid = |s: Suite| {
            g.identity
                .key_id(s)
                .map_or_else(|| "-".to_string(), |k| k.to_string())
        };
        let label = if i + 1 == n {
            format!("{} current", i + 1)
        } else {
            (i + 1).to_string()
        };
        out.push_str(&format!(
            "{label:<11} {:<25} {:<25} {:<17} {:<17} {}\n",
            format_timestamp(g.created_ms),
            g.not_after_ms.map_or_else(|| "-".into(), format_timestamp),
            kid(Suite::Ed25519),
            kid(Suite::FnDsa512),
            kid(Suite::Hybrid),
        ));
    }
    out
}
