//! `callpush rotate-key`: add the next call-push signing key.

use std::path::PathBuf;

use callpush_server::config::Config;
use callpush_server::keyring;
use callpush_server::store::Store;
use callpush_server::time::now_ms;

/// Arguments of `callpush rotate-key`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Hours until the new key starts signing. Devices learn it when they renew their lease
    /// (daily by default), so give them a day; 0 activates at once.
    #[arg(long, default_value_t = 24)]
    activate_after_hours: u32,
    /// The server's configuration file, to find its database.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Adds the key to the database every instance reads.
pub fn run(args: Args) -> Result<(), String> {
    let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let store = Store::connect(&config.database_url, 2).await.map_err(|e| e.to_string())?;
        let now = now_ms();
        let activates_at = now + i64::from(args.activate_after_hours) * 3_600_000;
        let kid = keyring::rotate(&store, now, activates_at).await.map_err(|e| e.to_string())?;
        println!("new signing key {kid}: published now, signing from unix ms {activates_at}");
        Ok(())
    })
}
