//! `callpush`: the command-line front of callpush-server.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// callpush: incoming-call pushes for HarmonyOS NEXT, Android, iOS and Windows.
#[derive(Debug, Parser)]
#[command(name = "callpush", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: registrar, ring orchestration and senders, with the HTTP API.
    Serve(commands::serve::Args),
    /// Print a development device token for a user, signed with the server's HS256 secret.
    Token(commands::token::Args),
    /// Add the next call-push signing key; it is published now and signs later.
    RotateKey(commands::rotate_key::Args),
    /// Generate an Ed25519 call-push signing key; print its file and its public JWK.
    Keys(commands::keys::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => commands::serve::run(args),
        Command::Token(args) => commands::token::run(args),
        Command::RotateKey(args) => commands::rotate_key::run(args),
        Command::Keys(args) => commands::keys::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("callpush: {message}");
            // 2, as for command-line usage errors: the command was asked something it cannot do.
            ExitCode::from(2)
        }
    }
}
