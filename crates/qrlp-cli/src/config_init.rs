//! `qrlp config-init`: writes the full default configuration file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct ConfigInitArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "PATH")]
    output: Option<PathBuf>,
    /// Explain every key, with its environment variable names, in comments.
    #[arg(long)]
    with_comments: bool,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: ConfigInitArgs) -> anyhow::Result<ExitCode> {
    let text = qrlp_config::default_toml(args.with_comments);
    let Some(path) = args.output else {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(&path).with_context(|| {
        if path.exists() && !args.force {
            format!("{} exists; use --force to replace it", path.display())
        } else {
            format!("cannot create {}", path.display())
        }
    })?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}
