//! `callpush-dev demo`: two calls through the whole path, on all four platforms, in one process.

/// Arguments of `callpush-dev demo`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = crate::demo::JSON_HELP)]
pub struct Args {
    /// Print JSON Lines, one JSON object per event, instead of text; `--help` lists the fields.
    #[arg(long)]
    json: bool,
}

/// Runs the demo, printing each event as it happens.
pub fn run(args: Args) -> Result<(), String> {
    crate::demo::main(args.json).map_err(|e| e.to_string())
}
