//! `callpush-dev emulate`: the four provider emulators alone, for trying senders by hand and for
//! benchmarks that run the server as its own process (server/benches/push_cost.rs).

use std::path::PathBuf;

use callpush_client::model::Platform;
use callpush_emulators::credentials::TestCredentials;
use callpush_emulators::device::token_for;
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
    /// Serve every emulator over TLS from the test CA (APNs always is): Push Kit and WNS
    /// HTTP/1.1, FCM HTTP/2 or HTTP/1.1 by ALPN. The printed URLs are https and
    /// `providers.ca_file` is the CA written into `--dir`.
    #[arg(long)]
    tls: bool,
    /// Bring N devices of every platform online, the tokens `device::token_for(platform, 0..N)`
    /// of callpush-emulators, dropping what they receive: a server in another process then
    /// rings them as it rings real devices (WNS drops raw notifications to offline devices).
    #[arg(long, value_name = "N", default_value_t = 0)]
    online: u32,
    /// Also write the printed `[providers]` configuration to this file, once the emulators
    /// listen (a benchmark waits for it).
    #[arg(long, value_name = "FILE")]
    config_out: Option<PathBuf>,
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
        let credentials = TestCredentials::default();
        let emulators = if args.tls {
            Emulators::start_tls(credentials).await
        } else {
            Emulators::start(credentials).await
        }
        .map_err(|e| e.to_string())?;
        let flow = match args.wns_flow {
            Flow::Live => WnsFlow::Live,
            Flow::Entra => WnsFlow::Entra,
        };
        let (providers, _) = emulators.providers_config(&args.dir, flow).map_err(|e| e.to_string())?;
        if let Some(url) = &args.receipt_url {
            emulators.harmony.receipts().configure(Some(emulators.receipt_settings(url)));
        }
        for platform in Platform::ALL.into_iter().filter(|_| args.online > 0) {
            let tokens: Vec<String> = (0..args.online).map(|n| token_for(platform, n)).collect();
            let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
            let mut devices = emulators.hub.subscribe_all(platform, &tokens);
            tokio::spawn(async move { while devices.recv().await.is_some() {} });
        }
        #[derive(serde::Serialize)]
        struct Snippet {
            providers: callpush_server::config::ProvidersConfig,
        }
        let ca_file = providers.ca_file.clone();
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
        if let Some(ca_file) = ca_file.filter(|_| args.tls) {
            println!("All speak TLS; their CA is {} (curl --cacert).", ca_file.display());
        }
        if args.online > 0 {
            println!("Online: token_for(platform, 0..{}) of every platform.", args.online);
        }
        match &args.receipt_url {
            Some(url) => println!("Push Kit posts signed delivery receipts to {url}."),
            None => println!(
                "Push Kit posts delivery receipts once told where: --receipt-url, or PUT /_emulator/receipts."
            ),
        }
        println!();
        println!("# Add to the configuration of `callpush serve` to send through them:");
        println!("{toml}");
        if let Some(path) = &args.config_out {
            // Written whole under another name first, so a reader never sees half of it.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, &toml).map_err(|e| format!("{}: {e}", partial.display()))?;
            std::fs::rename(&partial, path).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn toml_snippet<T: serde::Serialize>(value: &T) -> Result<String, String> {
    toml::to_string(value).map_err(|e| e.to_string())
}
