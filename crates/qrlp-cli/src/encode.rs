//! `qrlp encode`: one code to a file, standard output or the terminal.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use qrlp_qr::QrCode;
use qrlp_render::{render_terminal, TerminalOptions};

use crate::symbol_args::{Format, SymbolArgs};

/// Arguments of `qrlp encode`.
#[derive(clap::Args, Debug)]
pub struct EncodeArgs {
    /// The text to encode; `-` reads standard input.
    #[arg(conflicts_with = "file")]
    pub text: Option<String>,
    /// Read the text from this file.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Write the image here (`-` for standard output); without it the code is drawn on the
    /// terminal.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Image format [default: from the output file's extension, else png].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// On the terminal, draw light modules as blocks (for dark terminals).
    #[arg(long)]
    pub invert: bool,
    #[command(flatten)]
    pub symbol: SymbolArgs,
}

fn read_text(args: &EncodeArgs) -> anyhow::Result<String> {
    match (&args.text, &args.file) {
        (_, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        }
        (Some(t), None) if t == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read standard input")?;
            // A trailing newline from `echo` is not part of the payload.
            if s.ends_with('\n') {
                s.pop();
                if s.ends_with('\r') {
                    s.pop();
                }
            }
            Ok(s)
        }
        (Some(t), None) => Ok(t.clone()),
        (None, None) => bail!("give the text to encode, `-` for standard input, or --file"),
    }
}

/// Runs `qrlp encode`.
pub fn run(args: EncodeArgs) -> anyhow::Result<ExitCode> {
    let text = read_text(&args)?;
    let opts = args.symbol.options()?;
    let Some(output) = &args.output else {
        let code = QrCode::encode_text_with(&text, &opts)?;
        let drawing = render_terminal(
            &code,
            &TerminalOptions {
                border: args.symbol.border,
                invert: args.invert,
            },
        );
        print!("{drawing}");
        return Ok(ExitCode::SUCCESS);
    };
    let to_stdout = output.as_os_str() == "-";
    let format = match (args.format, Format::from_path(output)) {
        (Some(f), _) | (None, Some(f)) => f,
        (None, None) if to_stdout => Format::Png,
        (None, None) => bail!(
            "cannot tell the format of {}: use a .png or .svg name, or --format",
            output.display()
        ),
    };
    let bytes = args.symbol.render(&opts, &text, format)?;
    if to_stdout {
        let mut out = std::io::stdout().lock();
        if format == Format::Png && out.is_terminal() {
            bail!("refusing to write PNG bytes to a terminal; use -o FILE");
        }
        out.write_all(&bytes)?;
    } else {
        std::fs::write(output, &bytes)
            .with_context(|| format!("cannot write {}", output.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
