//! The `qrlp` command. Thin: it parses arguments and calls the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod admin;
mod batch;
mod config_init;
mod device;
mod device_fl;
mod encode;
mod fl;
mod generate;
mod keys;
mod live;
mod serve;
mod symbol_args;
mod verify;

/// qrlp: QR codes people can trust.
#[derive(Parser, Debug)]
#[command(name = "qrlp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Encode text into a QR code: PNG, SVG or the terminal.
    Encode(encode::EncodeArgs),
    /// Encode many payloads from a file into a directory, in parallel.
    Batch(batch::BatchArgs),
    /// Run the HTTP service: the QR API, health, readiness, metrics, OpenAPI.
    Serve(serve::ServeArgs),
    /// Write the full default configuration file.
    ConfigInit(config_init::ConfigInitArgs),
    /// Create or upgrade the database schema (the server also does this at start).
    Migrate(admin::MigrateArgs),
    /// Administration: `qrlp admin bootstrap --org NAME --email EMAIL`.
    Admin(admin::AdminArgs),
    /// Make one signed live frame: a QR image and/or its JSON document.
    Generate(generate::GenerateArgs),
    /// Verify a live frame (text, file or PNG photo); exit 0 only if valid.
    Verify(verify::VerifyArgs),
    /// The issuer's keys: `export` the public key set, `list`, `rotate`.
    Keys(keys::KeysArgs),
    /// Serve a live QR code that changes every few seconds: viewer, stream view, verify
    /// page, REST and Socket.IO.
    Live(live::LiveArgs),
    /// Ask a running live server for its status; exit 1 when none answers.
    Status(live::StatusArgs),
    /// The device side of the fleet: enroll this machine, run its agent, show its status.
    Device(device::DeviceArgs),
    /// Federated learning from the command line: start a training job, show a round,
    /// follow a job with a progress bar, evaluate a global model on a CSV.
    Fl(fl::FlArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Encode(args) => encode::run(args),
        Command::Batch(args) => batch::run(args),
        Command::Serve(args) => serve::run(args),
        Command::ConfigInit(args) => config_init::run(args),
        Command::Migrate(args) => admin::migrate(args),
        Command::Admin(args) => admin::admin(args),
        Command::Generate(args) => generate::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Live(args) => live::run(args),
        Command::Status(args) => live::status(args),
        Command::Device(args) => device::run(args),
        Command::Fl(args) => fl::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
