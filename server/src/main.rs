//! `callpush`: the command-line front of callpush-server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// callpush: incoming-call pushes for HarmonyOS NEXT, Android, iOS and Windows.
///
/// Every command finds the configuration the same way: `--config FILE`, else the file
/// CALLPUSH_CONFIG names, else ./callpush.toml, else none (defaults); `CALLPUSH_*` variables
/// override it. Only `serve` creates state; the others use what it keeps.
#[derive(Debug, Parser)]
#[command(name = "callpush", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: registrar, ring orchestration and senders, with the HTTP API.
    Serve(commands::serve::Args),
    /// Print a device token for a user, signed with the server's HS256 secret (configured, or
    /// the development one `serve --dev` keeps); never makes credentials.
    Token(commands::token::Args),
    /// Add the next call-push signing key to the server's database: servers publish it at their
    /// next key reload and sign with it later.
    RotateKey(commands::rotate_key::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::error::Error>> = match cli.command {
        Command::Serve(args) => commands::serve::run(args).map_err(Into::into),
        Command::Token(args) => commands::token::run(args).map_err(Into::into),
        Command::RotateKey(args) => commands::rotate_key::run(args).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("callpush: {error}");
            // 2, as for command-line usage errors: the command was asked something it cannot do.
            ExitCode::from(2)
        }
    }
}
