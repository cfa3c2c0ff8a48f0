//! `callpush-dev demo`: two calls through the whole path, on all four platforms, in one process.

/// Arguments of `callpush-dev demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the timeline as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the demo and prints its timeline.
pub fn run(args: Args) -> Result<(), String> {
    crate::demo::main(args.json).map_err(|e| e.to_string())
}
