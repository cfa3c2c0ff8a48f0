//! `callpush-dev emulate`: the four provider emulators alone, for trying senders by hand.

use std::path::PathBuf;

use callpush_emulators::credentials::TestCredentials;
use callpush_emulators::Emulators;
use callpush_server::config::WnsFlow;

/// Arguments of `callpush-dev emulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the test credential files and the emulators' CA.
    #[arg(long, default_value = "callpush-emulators")]
    dir: PathBuf,
    /// The WNS token flow the printed configuration uses.
    #[arg(long, value_enum, default_value = "live")]
    wns_flow: Flow,
    /// Where the Push Kit emulator posts its delivery receipts (a server's
    /// `/v1/receipts/harmony`); without it, it posts none until told (`PUT /_emulator/receipts`).
    #[arg(long)]
    receipt_url: Option<String>,
}

/// The WNS token flow, on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Flow {
    /// login.live.com (Microsoft Store registration).
    Live,
    /// Entra ID (Windows App SDK).
    Entra,
}

/// Starts the emulators, prints the configuration that sends to them, runs until Ctrl-C.
pub fn run(args: Args) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
        let emulators = Emulators::start(TestCredentials::default()).await.map_err(|e| e.to_string())?;
        let flow = match args.wns_flow {
            Flow::Live => WnsFlow::Live,
            Flow::Entra => WnsFlow::Entra,
        };
        let (providers, _) = emulators.providers_config(&args.dir, flow).map_err(|e| e.to_string())?;
        if let Some(url) = &args.receipt_url {
            emulators.harmony.receipts().configure(Some(emulators.receipt_settings(url)));
        }
        #[derive(serde::Serialize)]
        struct Snippet {
            providers: callpush_server::config::ProvidersConfig,
        }
        let toml = toml_snippet(&Snippet { providers })?;
        println!("Push Kit  {}", emulators.harmony.base_url());
        println!("FCM       {}   (token endpoint {})", emulators.fcm.base_url(), emulators.fcm.token_url());
        println!(
            "APNs      {} (production), {} (sandbox)",
            emulators.apns.production_url(),
            emulators.apns.sandbox_url()
        );
        println!("WNS       {}", emulators.wns.endpoint());
        println!("Each serves POST /_emulator/faults, DELETE /_emulator/faults and GET /_emulator/requests.");
        match &args.receipt_url {
            Some(url) => println!("Push Kit posts signed delivery receipts to {url}."),
            None => println!(
                "Push Kit posts delivery receipts once told where: --receipt-url, or PUT /_emulator/receipts."
            ),
        }
        println!();
        println!("# Add to the configuration of `callpush serve` to send through them:");
        println!("{toml}");
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn toml_snippet<T: serde::Serialize>(value: &T) -> Result<String, String> {
    toml::to_string(value).map_err(|e| e.to_string())
}
