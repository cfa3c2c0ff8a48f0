//! `callpush-dev`: the developer commands of callpush — the end-to-end demo, the provider
//! emulators, and inspecting a raw push as the device does. None of them is part of the
//! deployed `callpush` binary.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod demo;

/// callpush-dev: try callpush locally, without providers or devices.
#[derive(Debug, Parser)]
#[command(name = "callpush-dev", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run two calls through server, provider emulators and four simulated devices, one per
    /// platform, telling each event as it happens, then what it came to.
    Demo(commands::demo::Args),
    /// Run the Push Kit, FCM, APNs and WNS emulators alone.
    Emulate(commands::emulate::Args),
    /// Decode one raw push read from stdin, as the app receives it, and print the decision as JSON.
    Inspect(commands::inspect::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => commands::demo::run(args),
        Command::Emulate(args) => commands::emulate::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("callpush-dev: {message}");
            // 2, as for command-line usage errors: the command was asked something it cannot do.
            ExitCode::from(2)
        }
    }
}
