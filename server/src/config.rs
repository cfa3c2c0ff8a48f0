//! Server configuration: defaults, then a TOML file, then `CALLPUSH_*` environment variables
//! (nested keys with `__`: `CALLPUSH_AUTH__HS256_SECRET`). With no configuration at all the
//! server runs on loopback with a SQLite file; API keys and device-token auth have no default
//! (`callpush serve --dev` generates development ones).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Everything `callpush serve` can be told. See `server/callpush.example.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://file.db` or `postgres://user:password@host/db`.
    pub database_url: String,
    /// Most database connections this instance opens (two at least: one is kept for storing new
    /// calls).
    pub database_connections: u32,
    /// Where generated development credentials are kept (`callpush serve --dev`).
    pub data_dir: PathBuf,
    /// The `iss` of every call push.
    pub server_id: String,
    /// API keys of app backends (`Authorization: Bearer <key>` on the backend routes).
    pub api_keys: Vec<String>,
    /// How device tokens are verified.
    pub auth: AuthConfig,
    /// Ringing.
    pub ring: RingConfig,
    /// Device registrations.
    #[serde(default)]
    pub registrar: RegistrarConfig,
    /// Where call state changes are posted, if anywhere.
    pub webhook: Option<WebhookConfig>,
    /// How pushes leave the server for platforms without a provider configured below.
    pub sender: SenderConfig,
    /// The real push providers. A platform configured here is sent through its provider;
    /// the others go to `sender`.
    pub providers: ProvidersConfig,
    /// `pretty` for people, `json` for log pipelines.
    pub log_format: LogFormat,
    /// Limits of the HTTP edge: timeouts, connections, long-polls.
    pub http: HttpConfig,
}

/// Limits of the HTTP edge, so slow or idle clients cannot hold the server's connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Longest time to receive a request's headers, ms (default 10000). On an HTTP/1.1
    /// connection kept alive it counts from the previous response, so it also bounds the wait
    /// for the next request.
    pub header_read_timeout_ms: u64,
    /// Longest time to receive a request's body, counted from its headers, ms (default 30000).
    /// A body still arriving then is answered `408` and its connection closed.
    pub body_read_timeout_ms: u64,
    /// A connection with no request in flight for this long is closed, ms (default 60000).
    pub idle_timeout_ms: u64,
    /// Most connections open at once; past it a connection is answered `503` and closed.
    /// Default: the process's open-file limit less a reserve for the database pool, provider
    /// connections and files.
    pub max_connections: Option<usize>,
    /// Most long-polls (`GET /v1/calls/{id}?wait=`) one user holds at once (default 8); past it
    /// `429 too_many_waits`.
    pub max_waits_per_user: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: None,
            max_waits_per_user: 8,
        }
    }
}

/// Device tokens: JWTs whose `sub` is the user id, verified with one of these. Local keys
/// (`hs256_secret`, `public_key_files`, `jwks_file`) are tried first, then the keys of
/// `jwks_url`; `issuer` and `audience` apply to every token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// An HS256 shared secret (at least 32 bytes).
    pub hs256_secret: Option<String>,
    /// PEM files of RS256, ES256 or EdDSA public keys.
    #[serde(default)]
    pub public_key_files: Vec<PathBuf>,
    /// A JWKS file of the identity provider's public keys.
    pub jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS URL (https): fetched at start, cached as its
    /// `Cache-Control` says (5 min to 24 h, 1 h without), fetched again when a token names an
    /// unknown `kid` (at most every 30 s). Requires `issuer` and `audience`.
    pub jwks_url: Option<String>,
    /// Extra trusted roots (PEM) for `jwks_url`, e.g. a private identity provider's CA; the
    /// system's roots are trusted as well.
    pub jwks_ca_file: Option<PathBuf>,
    /// The signature algorithms public keys may verify (default RS256, ES256, EdDSA); `HS*`
    /// never (that is `hs256_secret`), `none` never.
    #[serde(default = "AuthConfig::default_algorithms")]
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Required `iss`, if set.
    pub issuer: Option<String>,
    /// Required `aud`, if set.
    pub audience: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            hs256_secret: None,
            public_key_files: Vec::new(),
            jwks_file: None,
            jwks_url: None,
            jwks_ca_file: None,
            algorithms: AuthConfig::default_algorithms(),
            issuer: None,
            audience: None,
        }
    }
}

impl AuthConfig {
    /// RS256, ES256, EdDSA: what Firebase, Auth0, Cognito and Entra ID sign with, and more.
    pub fn default_algorithms() -> Vec<jsonwebtoken::Algorithm> {
        use jsonwebtoken::Algorithm;
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
    }

    /// Whether these settings can verify tokens safely: an HS256 secret long enough, only
    /// asymmetric algorithms for public keys, and a JWKS URL over https with the `issuer` and
    /// `audience` its tokens must carry.
    pub fn check(&self) -> Result<(), ConfigError> {
        use jsonwebtoken::Algorithm;
        if let Some(secret) = &self.hs256_secret {
            if secret.len() < 32 {
                return Err(ConfigError("auth.hs256_secret must be at least 32 bytes".into()));
            }
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError("auth.algorithms must name at least one algorithm".into()));
        }
        if let Some(hs) = self
            .algorithms
            .iter()
            .find(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            return Err(ConfigError(format!(
                "auth.algorithms: {hs:?} is not for public keys (a shared secret is `hs256_secret`)"
            )));
        }
        for (name, value) in [("issuer", &self.issuer), ("audience", &self.audience)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(ConfigError(format!("auth.{name} is empty")));
            }
        }
        match &self.jwks_url {
            Some(url) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| ConfigError(format!("auth.jwks_url is not a URL: {e}")))?;
                if parsed.scheme() != "https" || parsed.host().is_none() {
                    return Err(ConfigError("auth.jwks_url must be an https:// URL".into()));
                }
                if self.issuer.is_none() || self.audience.is_none() {
                    return Err(ConfigError(
                        "auth.jwks_url needs auth.issuer and auth.audience: the identity provider's keys \
                         sign tokens for every app it serves, so tokens must be shown to be for this one"
                            .into(),
                    ));
                }
            }
            None if self.jwks_ca_file.is_some() => {
                return Err(ConfigError("auth.jwks_ca_file is only used with auth.jwks_url".into()));
            }
            None => {}
        }
        Ok(())
    }
}

/// Ringing and delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingConfig {
    /// Ring time when a call does not say, seconds.
    pub default_ring_seconds: u32,
    /// Longest ring a call may ask for, seconds.
    pub max_ring_seconds: u32,
    /// Pushes sent at once by this instance.
    pub concurrency: usize,
    /// Deliveries claimed per database round trip.
    pub claim_batch: u32,
    /// How long a claim on a delivery holds without a heartbeat, ms. The instance renews its
    /// claims three times per lease while it lives; a dead instance's work is taken over within
    /// one lease. Instances' clocks must agree to well within it.
    pub claim_lease_ms: u32,
    /// On SIGTERM: how long in-flight pushes may take to finish before the instance hands what
    /// it still holds to the others and exits, seconds.
    pub drain_seconds: u32,
}

/// Device registrations (`PUT /v1/installations/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Most unexpired installations one user may have; a new one beyond it is refused with
    /// `409 too_many_installations` (renewals never are). Bounds the pushes one ring makes.
    pub max_installations_per_user: u32,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        RegistrarConfig { max_installations_per_user: 20 }
    }
}

/// Webhook target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// URL receiving `POST`s.
    pub url: String,
    /// HMAC-SHA256 key for the `Callpush-Signature` header.
    pub secret: String,
}

/// Where pushes go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SenderConfig {
    /// Append every push, as JSON lines, to a file: for development and tests.
    File {
        /// The file.
        path: PathBuf,
        /// Pretend each send takes this long (tests of slow fan-out), ms.
        #[serde(default)]
        delay_ms: u64,
    },
    /// Accept every push and send nothing: for load tests of the server itself.
    Noop,
}

/// Credentials and endpoints of the push providers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    /// Huawei Push Kit (HarmonyOS NEXT).
    pub harmony: Option<HarmonyConfig>,
    /// Firebase Cloud Messaging.
    pub fcm: Option<FcmConfig>,
    /// APNs (PushKit VoIP).
    pub apns: Option<ApnsConfig>,
    /// Windows Push Notification Services.
    pub wns: Option<WnsConfig>,
    /// A PEM file of extra trusted root certificates for provider connections (the emulators'
    /// test CA); the system's roots are trusted as well.
    pub ca_file: Option<PathBuf>,
}

/// Push Kit v3.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarmonyConfig {
    /// The service-account key file from the AppGallery Connect API console (JSON).
    pub service_account_file: PathBuf,
    /// API base URL.
    #[serde(default = "defaults::harmony_url")]
    pub base_url: String,
    /// Send as test messages (`pushOptions.testMessage`): for apps still in development.
    #[serde(default)]
    pub test_message: bool,
    /// Delivery receipts Push Kit posts to `POST /v1/receipts/harmony`, if configured.
    #[serde(default)]
    pub receipts: Option<HarmonyReceiptsConfig>,
}

/// Push Kit delivery receipts (V2): the callback user name and secret configured in
/// AppGallery Connect, with which Push Kit signs every receipt request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarmonyReceiptsConfig {
    /// The callback user name (optional in AppGallery Connect: empty when none was set).
    #[serde(default)]
    pub user_name: String,
    /// The callback secret as AppGallery Connect generates it: base64, decoded for the HMAC key.
    #[serde(default)]
    pub secret: Option<String>,
    /// A secret of an older receipt configuration: its text (UTF-8) is the HMAC key.
    #[serde(default)]
    pub legacy_secret: Option<String>,
}

impl HarmonyReceiptsConfig {
    /// The HMAC keys a receipt signature may be made with, or why there are none.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, ConfigError> {
        use base64::Engine;
        let mut keys = Vec::new();
        if let Some(secret) = &self.secret {
            let key = base64::engine::general_purpose::STANDARD.decode(secret.trim()).map_err(|_| {
                ConfigError(
                    "providers.harmony.receipts.secret must be base64, as AppGallery Connect gives it".into(),
                )
            })?;
            if key.is_empty() {
                return Err(ConfigError("providers.harmony.receipts.secret is empty".into()));
            }
            keys.push(key);
        }
        if let Some(legacy) = &self.legacy_secret {
            if legacy.is_empty() {
                return Err(ConfigError("providers.harmony.receipts.legacy_secret is empty".into()));
            }
            keys.push(legacy.as_bytes().to_vec());
        }
        if keys.is_empty() {
            return Err(ConfigError(
                "providers.harmony.receipts needs `secret` or `legacy_secret`: unsigned receipts are refused"
                    .into(),
            ));
        }
        Ok(keys)
    }
}

/// FCM HTTP v1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FcmConfig {
    /// The Firebase service-account key file (JSON).
    pub service_account_file: PathBuf,
    /// API base URL.
    #[serde(default = "defaults::fcm_url")]
    pub base_url: String,
    /// Token endpoint, if not the key file's `token_uri`.
    #[serde(default)]
    pub token_url: Option<String>,
}

/// APNs with token (`.p8`) authentication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApnsConfig {
    /// The `.p8` key file (PKCS#8 EC P-256).
    pub key_file: PathBuf,
    /// Its 10-character key id.
    pub key_id: String,
    /// The 10-character team id.
    pub team_id: String,
    /// The app's bundle id; VoIP pushes go to `<bundle_id>.voip`.
    pub bundle_id: String,
    /// Production endpoint.
    #[serde(default = "defaults::apns_production_url")]
    pub production_url: String,
    /// Sandbox endpoint.
    #[serde(default = "defaults::apns_sandbox_url")]
    pub sandbox_url: String,
}

/// WNS raw notifications.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WnsConfig {
    /// Which token flow the app's registration uses.
    pub flow: WnsFlow,
    /// Classic: the Package SID (`ms-app://S-1-15-2-…`). Entra ID: the application (client) id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// Entra ID: the directory (tenant) id.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// Token endpoint, if not the flow's (login.live.com or login.microsoftonline.com).
    #[serde(default)]
    pub token_url: Option<String>,
    /// Send to this origin instead of the channel URI's, keeping its path and query: for the
    /// emulator only. Channel URIs are still checked to be on notify.windows.com.
    #[serde(default)]
    pub endpoint_override: Option<String>,
}

/// WNS access-token flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WnsFlow {
    /// Microsoft Store / Partner Center registration: login.live.com client credentials.
    Live,
    /// Windows App SDK push: Entra ID (Azure AD) client credentials.
    Entra,
}

mod defaults {
    pub fn harmony_url() -> String {
        "https://push-api.cloud.huawei.com".into()
    }
    pub fn fcm_url() -> String {
        "https://fcm.googleapis.com".into()
    }
    pub fn apns_production_url() -> String {
        "https://api.push.apple.com".into()
    }
    pub fn apns_sandbox_url() -> String {
        "https://api.sandbox.push.apple.com".into()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://callpush.db".into(),
            database_connections: 16,
            data_dir: PathBuf::from("."),
            server_id: "callpush".into(),
            api_keys: Vec::new(),
            auth: AuthConfig::default(),
            ring: RingConfig {
                default_ring_seconds: 30,
                max_ring_seconds: 120,
                concurrency: 256,
                claim_batch: 256,
                claim_lease_ms: 3000,
                drain_seconds: 10,
            },
            registrar: RegistrarConfig::default(),
            webhook: None,
            sender: SenderConfig::File { path: PathBuf::from("callpush-pushes.jsonl"), delay_ms: 0 },
            providers: ProvidersConfig::default(),
            log_format: LogFormat::Pretty,
            http: HttpConfig::default(),
        }
    }
}

/// The top-level settings, as environment variables name them after `CALLPUSH_`.
const SETTINGS: [&str; 14] = [
    "listen",
    "database_url",
    "database_connections",
    "data_dir",
    "server_id",
    "api_keys",
    "auth",
    "ring",
    "registrar",
    "webhook",
    "sender",
    "providers",
    "log_format",
    "http",
];

/// Why the configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Defaults, then `file` (when given, it must exist), then `CALLPUSH_*` variables.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!("{} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only variables naming a setting: CALLPUSH_LOG (the log filter) and the test suites'
        // CALLPUSH_TEST_* share the prefix.
        let settings = Env::prefixed("CALLPUSH_")
            .filter(|key| {
                SETTINGS.contains(&key.as_str().to_ascii_lowercase().split("__").next().unwrap_or_default())
            })
            .split("__");
        let config: Config = figment.merge(settings).extract().map_err(|e| ConfigError(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let ring = &self.ring;
        if !(5..=120).contains(&ring.max_ring_seconds)
            || !(5..=ring.max_ring_seconds).contains(&ring.default_ring_seconds)
        {
            return Err(ConfigError("ring seconds must be 5 ≤ default ≤ max ≤ 120".into()));
        }
        if ring.concurrency == 0 || ring.claim_batch == 0 {
            return Err(ConfigError("ring.concurrency and ring.claim_batch must be positive".into()));
        }
        if !(300..=60_000).contains(&ring.claim_lease_ms) || ring.drain_seconds > 300 {
            return Err(ConfigError(
                "ring.claim_lease_ms must be 300 to 60000 and ring.drain_seconds at most 300".into(),
            ));
        }
        if self.database_connections < 2 {
            return Err(ConfigError(
                "database_connections must be at least 2: one is kept for storing new calls".into(),
            ));
        }
        if self.registrar.max_installations_per_user == 0 {
            return Err(ConfigError("registrar.max_installations_per_user must be positive".into()));
        }
        self.auth.check()?;
        if self.api_keys.iter().any(|k| k.len() < 16) {
            return Err(ConfigError("api keys must be at least 16 characters".into()));
        }
        if let Some(webhook) = &self.webhook {
            if !(webhook.url.starts_with("https://") || webhook.url.starts_with("http://"))
                || webhook.secret.len() < 16
            {
                return Err(ConfigError("webhook needs an http(s) url and a secret of 16+ bytes".into()));
            }
        }
        self.http.check()?;
        if let Some(receipts) = self.providers.harmony.as_ref().and_then(|h| h.receipts.as_ref()) {
            receipts.keys()?;
        }
        Ok(())
    }

    /// Whether device tokens can be verified with configured keys (otherwise development
    /// credentials are generated).
    pub fn has_device_auth(&self) -> bool {
        self.auth.hs256_secret.is_some()
            || !self.auth.public_key_files.is_empty()
            || self.auth.jwks_file.is_some()
            || self.auth.jwks_url.is_some()
    }
}

impl HttpConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if self.header_read_timeout_ms == 0 || self.body_read_timeout_ms == 0 || self.idle_timeout_ms == 0 {
            return Err(ConfigError("http timeouts must be positive".into()));
        }
        if self.max_connections == Some(0) || self.max_waits_per_user == 0 {
            return Err(ConfigError(
                "http.max_connections and http.max_waits_per_user must be positive".into(),
            ));
        }
        Ok(())
    }
}

// ---- finding the configuration: every `callpush` command finds it the same way ----

/// The environment variable naming the configuration file when `--config` is not given.
pub const CONFIG_ENV: &str = "CALLPUSH_CONFIG";

/// The file read from the working directory when neither `--config` nor [`CONFIG_ENV`] names one.
pub const CONFIG_FILE_NAME: &str = "callpush.toml";

/// Where the configuration came from, so a command can say where it looked. Paths are
/// absolute; relative paths inside the configuration (`data_dir`, a SQLite `database_url`)
/// are relative to the working directory, whichever way the file was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// `--config FILE`.
    Flag(PathBuf),
    /// `CALLPUSH_CONFIG=FILE`.
    Env(PathBuf),
    /// `callpush.toml` in the working directory.
    WorkingDir(PathBuf),
    /// No file: the defaults and `CALLPUSH_*` variables.
    Defaults {
        /// The working directory, against which relative paths resolve.
        cwd: PathBuf,
    },
}

impl ConfigSource {
    /// Finds the file: `flag`, else the file `env` (the value of [`CONFIG_ENV`]) names, else
    /// [`CONFIG_FILE_NAME`] in `cwd` if it exists. A file named by `flag` or `env` must exist.
    pub fn find(flag: Option<&Path>, env: Option<&std::ffi::OsStr>, cwd: &Path) -> Result<Self, ConfigError> {
        let absolute = |path: &Path| cwd.join(path);
        if let Some(file) = flag {
            let file = absolute(file);
            if !file.is_file() {
                return Err(ConfigError(format!("--config {}: no such file", file.display())));
            }
            return Ok(ConfigSource::Flag(file));
        }
        if let Some(file) = env.filter(|value| !value.is_empty()) {
            let file = absolute(Path::new(file));
            if !file.is_file() {
                return Err(ConfigError(format!("{CONFIG_ENV}={}: no such file", file.display())));
            }
            return Ok(ConfigSource::Env(file));
        }
        let file = cwd.join(CONFIG_FILE_NAME);
        if file.is_file() {
            return Ok(ConfigSource::WorkingDir(file));
        }
        Ok(ConfigSource::Defaults { cwd: cwd.to_owned() })
    }

    /// The file read, if any.
    pub fn file(&self) -> Option<&Path> {
        match self {
            ConfigSource::Flag(file) | ConfigSource::Env(file) | ConfigSource::WorkingDir(file) => Some(file),
            ConfigSource::Defaults { .. } => None,
        }
    }
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Flag(file) => write!(f, "--config {}", file.display()),
            ConfigSource::Env(file) => write!(f, "{CONFIG_ENV}={}", file.display()),
            ConfigSource::WorkingDir(file) => {
                write!(f, "{} (found in the working directory)", file.display())
            }
            ConfigSource::Defaults { cwd } => write!(
                f,
                "no configuration file (no --config, no {CONFIG_ENV}, no {CONFIG_FILE_NAME} in {}): \
                 the defaults and CALLPUSH_* variables",
                cwd.display()
            ),
        }
    }
}

impl Config {
    /// The configuration as every `callpush` command finds it: the file `--config` names
    /// (`flag`), else the one `CALLPUSH_CONFIG` names, else `callpush.toml` in the working
    /// directory if there is one, else none; then `CALLPUSH_*` variables over it.
    pub fn discover(flag: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
        let cwd = std::env::current_dir()
            .map_err(|e| ConfigError(format!("cannot read the working directory: {e}")))?;
        let source = ConfigSource::find(flag, std::env::var_os(CONFIG_ENV).as_deref(), &cwd)?;
        let config = Config::load(source.file())?;
        Ok((config, source))
    }
}

#[cfg(test)]
// figment's test jail returns its large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_then_file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "callpush.toml",
                r#"
                listen = "127.0.0.1:9000"
                api_keys = ["key-from-the-file-0001"]
                [ring]
                default_ring_seconds = 45
                max_ring_seconds = 90
                concurrency = 8
                claim_batch = 16
                "#,
            )?;
            jail.set_env("CALLPUSH_DATABASE_URL", "postgres://u:p@localhost/callpush");
            jail.set_env("CALLPUSH_AUTH__HS256_SECRET", "x".repeat(40));
            jail.set_env("CALLPUSH_LOG", "debug");
            jail.set_env("CALLPUSH_TEST_POSTGRES_URL", "postgres://elsewhere");
            let config = Config::load(Some(Path::new("callpush.toml"))).unwrap();
            assert_eq!(config.listen.port(), 9000);
            assert_eq!(config.ring.default_ring_seconds, 45);
            assert_eq!(config.database_url, "postgres://u:p@localhost/callpush");
            assert!(config.has_device_auth());
            assert_eq!(Config::load(None).unwrap().ring.default_ring_seconds, 30);
            assert_eq!(Config::load(None).unwrap().http, HttpConfig::default());
            jail.set_env("CALLPUSH_HTTP__MAX_CONNECTIONS", "500");
            jail.set_env("CALLPUSH_HTTP__IDLE_TIMEOUT_MS", "5000");
            let http = Config::load(None).unwrap().http;
            assert_eq!(
                (http.max_connections, http.idle_timeout_ms, http.max_waits_per_user),
                (Some(500), 5000, 8)
            );
            jail.set_env("CALLPUSH_HTTP__MAX_WAITS_PER_USER", "0");
            assert!(Config::load(None).is_err());
            jail.set_env("CALLPUSH_HTTP__MAX_WAITS_PER_USER", "8");
            jail.set_env("CALLPUSH_DATABASE_CONNECTIONS", "1");
            let refused = Config::load(None).unwrap_err().to_string();
            assert!(refused.contains("database_connections must be at least 2"), "{refused}");
            jail.set_env("CALLPUSH_DATABASE_CONNECTIONS", "2");
            assert_eq!(Config::load(None).unwrap().database_connections, 2);
            jail.set_env("CALLPUSH_AUTH__HS256_SECRET", "short");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn receipt_settings_are_checked_at_load() {
        figment::Jail::expect_with(|jail| {
            let file = |receipts: &str| {
                format!("[providers.harmony]\nservice_account_file = \"k.json\"\n[providers.harmony.receipts]\n{receipts}")
            };
            jail.create_file("none.toml", &file("user_name = \"u\""))?;
            assert!(Config::load(Some(Path::new("none.toml"))).is_err(), "a secret is required");
            jail.create_file("bad.toml", &file("secret = \"not base64!\""))?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            jail.create_file("good.toml", &file("secret = \"c2VjcmV0\""))?;
            let config = Config::load(Some(Path::new("good.toml"))).unwrap();
            let receipts = config.providers.harmony.unwrap().receipts.unwrap();
            assert_eq!(
                (receipts.user_name.as_str(), receipts.keys().unwrap()),
                ("", vec![b"secret".to_vec()])
            );
            Ok(())
        });
    }

    /// Every command finds the configuration this way: `--config`, `CALLPUSH_CONFIG`,
    /// `./callpush.toml`, nothing; a named file that is missing is an error naming it.
    #[test]
    fn the_configuration_file_is_found_by_flag_then_variable_then_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        let named = cwd.join("named.toml");
        std::fs::write(&named, "").unwrap();
        let env = Some(std::ffi::OsStr::new("named.toml"));
        assert_eq!(
            ConfigSource::find(None, None, cwd).unwrap(),
            ConfigSource::Defaults { cwd: cwd.to_owned() }
        );
        assert!(ConfigSource::find(None, None, cwd).unwrap().to_string().contains("no configuration file"));
        assert_eq!(ConfigSource::find(None, env, cwd).unwrap(), ConfigSource::Env(named.clone()));
        assert_eq!(ConfigSource::find(None, Some("".as_ref()), cwd).unwrap().file(), None);
        std::fs::write(cwd.join(CONFIG_FILE_NAME), "").unwrap();
        assert_eq!(
            ConfigSource::find(None, None, cwd).unwrap(),
            ConfigSource::WorkingDir(cwd.join(CONFIG_FILE_NAME))
        );
        assert_eq!(ConfigSource::find(None, env, cwd).unwrap(), ConfigSource::Env(named.clone()));
        assert_eq!(
            ConfigSource::find(Some(Path::new("named.toml")), Some("missing.toml".as_ref()), cwd).unwrap(),
            ConfigSource::Flag(named)
        );
        let missing = ConfigSource::find(Some(Path::new("missing.toml")), None, cwd).unwrap_err().to_string();
        assert!(
            missing.contains("--config") && missing.contains(&cwd.join("missing.toml").display().to_string())
        );
        let missing = ConfigSource::find(None, Some("missing.toml".as_ref()), cwd).unwrap_err().to_string();
        assert!(missing.contains("CALLPUSH_CONFIG="), "{missing}");
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listen_port = 1")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }

    /// The example file is the documentation of every setting: it must load as it is, and
    /// with its `[providers]` examples switched on.
    #[test]
    fn the_example_file_loads_with_and_without_its_provider_examples() {
        let example = include_str!("../callpush.example.toml");
        figment::Jail::expect_with(|jail| {
            jail.create_file("example.toml", example)?;
            let config = Config::load(Some(Path::new("example.toml"))).unwrap();
            assert_eq!(config, Config::default());

            let providers = example.split("[providers]").nth(1).unwrap();
            let switched_on: String = providers
                .lines()
                .filter_map(|line| line.strip_prefix("# "))
                .filter(|line| {
                    let key = line.split_once(" = ").map_or("", |(key, _)| key);
                    line.starts_with('[')
                        || (!key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                })
                .map(|line| format!("{line}\n"))
                .collect();
            jail.create_file("providers.toml", &format!("[providers]\n{switched_on}"))?;
            let config = Config::load(Some(Path::new("providers.toml"))).unwrap();
            let p = &config.providers;
            assert_eq!(p.ca_file.as_deref(), Some(Path::new("/etc/callpush/extra-roots.pem")));
            assert_eq!(p.harmony.as_ref().unwrap().base_url, defaults::harmony_url());
            let receipts = p.harmony.as_ref().unwrap().receipts.as_ref().unwrap();
            assert_eq!((receipts.user_name.as_str(), receipts.keys().unwrap().len()), ("callpush", 2));
            assert_eq!(
                p.fcm.as_ref().unwrap().token_url.as_deref(),
                Some("https://oauth2.googleapis.com/token")
            );
            let apns = p.apns.as_ref().unwrap();
            assert_eq!(
                (apns.bundle_id.as_str(), apns.sandbox_url.clone()),
                ("com.example.app", defaults::apns_sandbox_url())
            );
            assert_eq!(p.wns.as_ref().unwrap().flow, WnsFlow::Live);
            Ok(())
        });
    }
}
