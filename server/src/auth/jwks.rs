//! Device-token keys from the identity provider's JWKS URL (`[auth] jwks_url`): Firebase Auth,
//! Auth0, Cognito and Entra ID publish theirs there and rotate them.
//!
//! The key set is fetched over verified TLS (the server's one HTTP stack, reqwest on rustls),
//! with timeouts and a size cap, and kept for as long as the provider's `Cache-Control` says
//! (within [`JwksPolicy`]'s bounds). A token naming a key not in the set (a `kid` not yet seen:
//! the provider rotated) has it fetched again early, at most once per
//! [`JwksPolicy::min_refresh_interval`], so a flood of tokens with made-up `kid`s cannot hammer
//! the provider. A fetch that fails leaves the keys already held in service, and says so in the
//! log.
//!
//! When to fetch and for how long a set is good are pure functions of their inputs and `now`
//! ([`JwksPolicy`]); [`RemoteKeys`] does the I/O around them. Which keys of a set are used, and
//! with which algorithms, is [`verify_key`]: never a symmetric key, never an algorithm the key's
//! type does not have, never one outside `[auth] algorithms`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// The signature algorithms of RSA keys.
pub(crate) const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Shortest RSA modulus accepted, bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Longest RSA modulus accepted, bits.
pub const MAX_RSA_BITS: usize = 8192;

/// How the key set is fetched and kept: every bound and rate in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksPolicy {
    /// A set is kept at least this long, whatever `Cache-Control` says (default 5 min).
    pub min_lifetime: Duration,
    /// A set is kept at most this long, whatever `Cache-Control` says (default 24 h).
    pub max_lifetime: Duration,
    /// How long a set is kept when the answer has no usable `max-age` (default 1 h).
    pub default_lifetime: Duration,
    /// A fetch starts at least this long after the last one ended, whatever triggers it
    /// (default 30 s).
    pub min_refresh_interval: Duration,
    /// After failed fetches, scheduled retries back off up to this (default 5 min).
    pub max_retry_interval: Duration,
    /// Longest time to connect (default 5 s).
    pub connect_timeout: Duration,
    /// Longest time for a whole fetch, connecting to the last byte (default 10 s).
    pub fetch_timeout: Duration,
    /// Largest key set read, bytes (default 256 KiB); a larger one is refused.
    pub max_bytes: usize,
    /// Most keys in a set (default 100); a set with more is refused.
    pub max_keys: usize,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        JwksPolicy {
            min_lifetime: Duration::from_secs(5 * 60),
            max_lifetime: Duration::from_secs(24 * 3600),
            default_lifetime: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_secs(30),
            max_retry_interval: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(10),
            max_bytes: 256 * 1024,
            max_keys: 100,
        }
    }
}

/// When the key set was last fetched and how that went: what the timing decisions look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheTimes {
    /// When the last fetch ended (while one runs: when it started), if one ever did.
    pub last_attempt: Option<Instant>,
    /// Until when the set held is good, if one is held.
    pub fresh_until: Option<Instant>,
    /// Fetches that failed since the last one that did not.
    pub failures: u32,
}

impl JwksPolicy {
    /// How long a set fetched with these `Cache-Control` and `Age` header values is good:
    /// `max-age` less `Age`, or the default without a `max-age`; `no-store`, `no-cache` or a
    /// `max-age` of 0 mean the least; always within [`Self::min_lifetime`] and
    /// [`Self::max_lifetime`].
    pub fn lifetime(&self, cache_control: Option<&str>, age: Option<&str>) -> Duration {
        let mut max_age = None;
        let mut uncacheable = false;
        for directive in cache_control.unwrap_or_default().split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" {
                uncacheable = true;
            } else if let Some(value) = directive.strip_prefix("max-age=") {
                let value = value.trim().trim_matches('"');
                if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                    // Too many digits for a u64: as long as can be, clamped below.
                    max_age = Some(value.parse::<u64>().unwrap_or(u64::MAX));
                }
            }
        }
        let lifetime = match (uncacheable, max_age) {
            (true, _) => Duration::ZERO,
            (false, Some(max_age)) => {
                let age = age.and_then(|a| a.trim().parse::<u64>().ok()).unwrap_or(0);
                Duration::from_secs(max_age.saturating_sub(age))
            }
            (false, None) => self.default_lifetime,
        };
        lifetime.clamp(self.min_lifetime, self.max_lifetime.max(self.min_lifetime))
    }

    /// Whether a fetch may start at `now`: the last one ended at least
    /// [`Self::min_refresh_interval`] ago (and none runs). This bounds fetches triggered by
    /// unknown `kid`s.
    pub fn may_fetch(&self, last_attempt: Option<Instant>, now: Instant) -> bool {
        last_attempt.is_none_or(|at| now.saturating_duration_since(at) >= self.min_refresh_interval)
    }

    /// How long after the last of `failures` failed fetches the next scheduled one starts: the
    /// least interval, doubling with each failure, at most [`Self::max_retry_interval`].
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.min_refresh_interval
            .saturating_mul(1 << doublings)
            .min(self.max_retry_interval.max(self.min_refresh_interval))
    }

    /// When the next scheduled fetch starts (at `now` or later): at once if none ever started;
    /// when the set held goes stale; after a failure, once the retry delay has passed — and
    /// never within [`Self::min_refresh_interval`] of the last start.
    pub fn next_fetch(&self, times: CacheTimes, now: Instant) -> Instant {
        let Some(at) = times.last_attempt else {
            return now;
        };
        let gap =
            if times.failures == 0 { self.min_refresh_interval } else { self.retry_delay(times.failures) };
        let retry = at.checked_add(gap).unwrap_or(at);
        // A failed fetch keeps the set held, and with it the time it goes stale.
        let stale = times.fresh_until.unwrap_or(at);
        stale.max(retry).max(now)
    }
}

/// A key device tokens may be verified with, and the algorithms it verifies.
#[derive(Clone)]
pub struct VerifyKey {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The key.
    pub key: DecodingKey,
    /// The algorithms a token verified with it may name; never empty, never `HS*` for a public key.
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey").field("kid", &self.kid).field("algorithms", &self.algorithms).finish()
    }
}

/// Why a key of a set is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// Its `use` or `key_ops` say it is not for verifying signatures.
    #[error("not a signature key (use / key_ops)")]
    NotForSignatures,
    /// A symmetric (`oct`) key: never in a key set tokens are verified with.
    #[error("a symmetric key: never trusted from a key set")]
    Symmetric,
    /// An elliptic curve not supported (P-256, P-384 and Ed25519 are).
    #[error("unsupported curve {0}")]
    UnsupportedCurve(String),
    /// Its `alg` is not a signature algorithm of its key type.
    #[error("alg {0} does not fit the key type")]
    AlgorithmMismatch(String),
    /// None of its algorithms is in `[auth] algorithms`.
    #[error("its algorithms ({0}) are not in [auth] algorithms")]
    NotAllowed(String),
    /// An RSA modulus shorter than [`MIN_RSA_BITS`] or longer than [`MAX_RSA_BITS`].
    #[error("an RSA key of {0} bits (2048 to 8192 are accepted)")]
    RsaSize(usize),
    /// The key's parameters cannot be read.
    #[error("unreadable key parameters: {0}")]
    Unreadable(String),
}

/// The key `jwk` describes and the algorithms it may verify, within `allowed`.
///
/// The algorithms come from the key, never from a token: an RSA key verifies `RS*`/`PS*`, a
/// P-256 key `ES256`, a P-384 key `ES384`, an Ed25519 key `EdDSA`, narrowed to the key's own
/// `alg` when it names one, and to `allowed`. Symmetric keys are refused, so a public key can
/// never serve as an HMAC secret.
pub fn verify_key(jwk: &Jwk, allowed: &[Algorithm]) -> Result<VerifyKey, KeyRefusal> {
    let common = &jwk.common;
    if common.public_key_use.as_ref().is_some_and(|u| *u != PublicKeyUse::Signature)
        || common.key_operations.as_ref().is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err(KeyRefusal::NotForSignatures);
    }
    let unreadable = |e: &dyn std::fmt::Display| KeyRefusal::Unreadable(e.to_string());
    let length = |value: &str| URL_SAFE_NO_PAD.decode(value).map_err(|e| unreadable(&e));
    let (family, key): (&[Algorithm], DecodingKey) = match &jwk.algorithm {
        AlgorithmParameters::OctetKey(_) => return Err(KeyRefusal::Symmetric),
        AlgorithmParameters::RSA(rsa) => {
            let n = length(&rsa.n)?;
            let bits = modulus_bits(&n);
            if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
                return Err(KeyRefusal::RsaSize(bits));
            }
            let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).map_err(|e| unreadable(&e))?;
            (&RSA_ALGORITHMS, key)
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let (family, size): (&[Algorithm], usize) = match ec.curve {
                EllipticCurve::P256 => (&[Algorithm::ES256], 32),
                EllipticCurve::P384 => (&[Algorithm::ES384], 48),
                ref other => return Err(KeyRefusal::UnsupportedCurve(format!("{other:?}"))),
            };
            if length(&ec.x)?.len() != size || length(&ec.y)?.len() != size {
                return Err(KeyRefusal::Unreadable(format!("coordinates of {size} bytes expected")));
            }
            (family, DecodingKey::from_ec_components(&ec.x, &ec.y).map_err(|e| unreadable(&e))?)
        }
        AlgorithmParameters::OctetKeyPair(okp) => {
            if okp.curve != EllipticCurve::Ed25519 {
                return Err(KeyRefusal::UnsupportedCurve(format!("{:?}", okp.curve)));
            }
            if length(&okp.x)?.len() != 32 {
                return Err(KeyRefusal::Unreadable("an Ed25519 key of 32 bytes expected".into()));
            }
            (&[Algorithm::EdDSA], DecodingKey::from_ed_components(&okp.x).map_err(|e| unreadable(&e))?)
        }
    };
    let family: Vec<Algorithm> = match common.key_algorithm {
        None => family.to_vec(),
        Some(named) => {
            let algorithm = signature_algorithm(named).filter(|a| family.contains(a));
            vec![algorithm.ok_or_else(|| KeyRefusal::AlgorithmMismatch(format!("{named:?}")))?]
        }
    };
    let algorithms: Vec<Algorithm> = family.iter().copied().filter(|a| allowed.contains(a)).collect();
    if algorithms.is_empty() {
        return Err(KeyRefusal::NotAllowed(names(&family)));
    }
    Ok(VerifyKey { kid: common.key_id.clone(), key, algorithms })
}

/// The signature algorithm a JWK `alg` names, if it names one.
fn signature_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The bits of a big-endian RSA modulus.
fn modulus_bits(n: &[u8]) -> usize {
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    n.first().map_or(0, |first| n.len() * 8 - first.leading_zeros() as usize)
}

/// `RS256, ES256`: algorithms for messages.
pub fn names(algorithms: &[Algorithm]) -> String {
    algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
}

/// The usable keys of a key set, and those left out with why.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// Keys to verify with.
    pub keys: Vec<VerifyKey>,
    /// Keys left out: their `kid` (if any) and why.
    pub skipped: Vec<(Option<String>, KeyRefusal)>,
}

/// Why a key set could not be fetched or used. The keys held before stay in service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// No answer within the fetch timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// No answer: connection refused, DNS, TLS (an untrusted certificate), a broken connection.
    #[error("fetching failed: {0}")]
    Fetch(String),
    /// An answer other than 2xx.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// A body larger than the cap.
    #[error("the key set is larger than {limit} bytes")]
    TooLarge {
        /// The cap, bytes.
        limit: usize,
    },
    /// A body that is not a JWKS (`{"keys": [...]}`).
    #[error("not a JWKS: {0}")]
    Malformed(String),
    /// More keys than the cap.
    #[error("the key set has {count} keys, more than {limit}")]
    TooManyKeys {
        /// Keys in the set.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// Not one key of the set can verify tokens.
    #[error("no usable signing key in the set: {0}")]
    NoUsableKeys(String),
}

/// The usable keys of a JWKS document: at most `max_keys` keys; keys this server cannot or must
/// not use are left out (and listed), so one odd key does not take the others down with it.
pub fn parse_key_set(body: &[u8], allowed: &[Algorithm], max_keys: usize) -> Result<KeySet, JwksError> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    // serde_json's messages name a line and column, never the content.
    let document: Document = serde_json::from_slice(body).map_err(|e| JwksError::Malformed(e.to_string()))?;
    if document.keys.len() > max_keys {
        return Err(JwksError::TooManyKeys { count: document.keys.len(), limit: max_keys });
    }
    let mut set = KeySet { keys: Vec::new(), skipped: Vec::new() };
    for value in document.keys {
        let kid = value.get("kid").and_then(|k| k.as_str()).map(|k| k.chars().take(64).collect());
        match serde_json::from_value::<Jwk>(value) {
            Ok(jwk) => match verify_key(&jwk, allowed) {
                Ok(key) => set.keys.push(key),
                Err(refusal) => set.skipped.push((kid, refusal)),
            },
            Err(e) => set.skipped.push((kid, KeyRefusal::Unreadable(e.to_string()))),
        }
    }
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKeys(describe_skipped(&set.skipped)));
    }
    Ok(set)
}

/// `kid "a": why; kid "b": why`, or `the set is empty`.
pub fn describe_skipped(skipped: &[(Option<String>, KeyRefusal)]) -> String {
    if skipped.is_empty() {
        return "the set is empty".into();
    }
    skipped
        .iter()
        .map(|(kid, why)| match kid {
            Some(kid) => format!("kid {kid:?}: {why}"),
            None => format!("a key without kid: {why}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the cache holds, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksStatus {
    /// Whether a key set was ever fetched (until then every token is refused).
    pub loaded: bool,
    /// The `kid`s of the keys held.
    pub kids: Vec<Option<String>>,
    /// Fetches started so far.
    pub fetches: u64,
    /// Fetches that failed since the last one that did not.
    pub failures: u32,
    /// Why the last fetch failed, if it did.
    pub last_error: Option<JwksError>,
}

/// The cache itself.
struct Cache {
    keys: Arc<[VerifyKey]>,
    loaded: bool,
    times: CacheTimes,
    /// Counts finished fetches, so a caller that waited on another's fetch does not fetch again.
    generation: u64,
    fetches: u64,
    last_error: Option<JwksError>,
}

/// The keys at a JWKS URL: fetched, cached, refreshed. Shared by every request.
pub struct RemoteKeys {
    url: String,
    client: reqwest::Client,
    policy: JwksPolicy,
    allowed: Vec<Algorithm>,
    cache: Mutex<Cache>,
    /// Held while fetching: one fetch at a time; others wait for its result.
    fetching: tokio::sync::Mutex<()>,
    /// A background fetch has been asked for and not yet run.
    fetch_queued: AtomicBool,
    /// The task that fetches the set when it goes stale.
    scheduler: Mutex<Option<tokio::task::AbortHandle>>,
}

/// A snapshot of the keys held, for one verification.
pub struct Snapshot {
    /// The keys.
    pub keys: Arc<[VerifyKey]>,
    /// Whether a set was ever fetched.
    pub loaded: bool,
    /// Changes with every finished fetch.
    pub generation: u64,
}

impl RemoteKeys {
    /// Keys from `url` (https only), verified with `client` (which must validate TLS), used
    /// with the algorithms in `allowed`. Nothing is fetched yet: [`RemoteKeys::start`] begins.
    pub fn new(
        url: String,
        client: reqwest::Client,
        allowed: Vec<Algorithm>,
        policy: JwksPolicy,
    ) -> Arc<Self> {
        Arc::new(RemoteKeys {
            url,
            client,
            policy,
            allowed,
            cache: Mutex::new(Cache {
                keys: Arc::from(Vec::new()),
                loaded: false,
                times: CacheTimes::default(),
                generation: 0,
                fetches: 0,
                last_error: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
            fetch_queued: AtomicBool::new(false),
            scheduler: Mutex::new(None),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        crate::sync::unpoisoned(self.cache.lock())
    }

    /// Starts the task that fetches the set now and whenever it goes stale, if a tokio runtime
    /// is at hand and it is not running yet. The task ends when these keys are dropped.
    pub fn start(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut scheduler = crate::sync::unpoisoned(self.scheduler.lock());
        if scheduler.is_some() {
            return;
        }
        let weak = Arc::downgrade(self);
        *scheduler = Some(runtime.spawn(keep_fresh(weak)).abort_handle());
    }

    /// The keys held now.
    pub fn snapshot(&self) -> Snapshot {
        let cache = self.lock();
        Snapshot { keys: cache.keys.clone(), loaded: cache.loaded, generation: cache.generation }
    }

    /// What the cache holds.
    pub fn status(&self) -> JwksStatus {
        let cache = self.lock();
        JwksStatus {
            loaded: cache.loaded,
            kids: cache.keys.iter().map(|k| k.kid.clone()).collect(),
            fetches: cache.fetches,
            failures: cache.times.failures,
            last_error: cache.last_error.clone(),
        }
    }

    /// Whether `algorithm` is one a key of this set may verify: a token naming another is no
    /// reason to fetch.
    pub fn allows(&self, algorithm: Algorithm) -> bool {
        self.allowed.contains(&algorithm)
    }

    /// A token names a key not held (`seen` is the generation of the snapshot it was checked
    /// against): waits for a fetch already under way, or fetches if the rate limit allows.
    /// Returns whether the keys may have changed since `seen`, so the token is worth checking
    /// again.
    pub async fn refresh_for_unknown_key(&self, seen: u64) -> bool {
        let _fetching = self.fetching.lock().await;
        let now = Instant::now();
        {
            let mut cache = self.lock();
            if cache.generation != seen {
                return true;
            }
            if !self.policy.may_fetch(cache.times.last_attempt, now) {
                return false;
            }
            cache.times.last_attempt = Some(now);
        }
        tracing::info!(url = %self.url, "a device token names a key not in the JWKS: fetching it again");
        self.fetch_and_keep().await;
        true
    }

    /// As [`RemoteKeys::refresh_for_unknown_key`], without waiting: for callers that cannot.
    /// At most one such fetch is queued at a time, and only when the rate limit allows.
    pub fn refresh_in_background(self: &Arc<Self>, seen: u64) {
        if !self.policy.may_fetch(self.lock().times.last_attempt, Instant::now()) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.fetch_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        runtime.spawn(async move {
            this.refresh_for_unknown_key(seen).await;
            this.fetch_queued.store(false, Ordering::Release);
        });
    }

    /// The scheduled fetch, if it is due at `now`; returns when the next one is.
    async fn scheduled_fetch(&self) -> Instant {
        let _fetching = self.fetching.lock().await;
        let now = Instant::now();
        {
            let mut cache = self.lock();
            let due = self.policy.next_fetch(cache.times, now);
            if due > now {
                return due;
            }
            cache.times.last_attempt = Some(now);
        }
        self.fetch_and_keep().await;
        let cache = self.lock();
        self.policy.next_fetch(cache.times, Instant::now())
    }

    /// Fetches the set and keeps it, or keeps the old one and logs why.
    async fn fetch_and_keep(&self) {
        let fetched = self.fetch().await;
        let now = Instant::now();
        let mut cache = self.lock();
        cache.fetches += 1;
        cache.generation += 1;
        // The least interval runs from the end of a fetch: however slow the provider answers,
        // the next fetch starts that long after.
        cache.times.last_attempt = Some(now);
        match fetched {
            Ok((set, lifetime)) => {
                let kids: Vec<&str> = set.keys.iter().map(|k| k.kid.as_deref().unwrap_or("-")).collect();
                tracing::info!(
                    url = %self.url,
                    keys = set.keys.len(),
                    kids = %kids.join(","),
                    lifetime_s = lifetime.as_secs(),
                    "fetched the identity provider's JWKS"
                );
                if !set.skipped.is_empty() {
                    let skipped = describe_skipped(&set.skipped);
                    tracing::warn!(url = %self.url, %skipped, "JWKS keys left out");
                }
                cache.keys = Arc::from(set.keys);
                cache.loaded = true;
                cache.times.fresh_until = now.checked_add(lifetime);
                cache.times.failures = 0;
                cache.last_error = None;
            }
            Err(e) => {
                cache.times.failures = cache.times.failures.saturating_add(1);
                tracing::warn!(
                    url = %self.url,
                    error = %e,
                    failures = cache.times.failures,
                    cached_keys = cache.keys.len(),
                    "fetching the identity provider's JWKS failed; the keys held stay in service"
                );
                cache.last_error = Some(e);
            }
        }
    }

    /// One fetch: the usable keys and how long they are good.
    async fn fetch(&self) -> Result<(KeySet, Duration), JwksError> {
        let request_error = |e: reqwest::Error| {
            if e.is_timeout() {
                JwksError::Timeout(self.policy.fetch_timeout)
            } else {
                // The URL is configuration, not a secret; the error's source chain says why.
                JwksError::Fetch(error_chain(&e))
            }
        };
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(request_error)?;
        if !response.status().is_success() {
            return Err(JwksError::Status(response.status().as_u16()));
        }
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let lifetime = self.policy.lifetime(
            header(reqwest::header::CACHE_CONTROL).as_deref(),
            header(reqwest::header::AGE).as_deref(),
        );
        let limit = self.policy.max_bytes;
        if response.content_length().is_some_and(|length| length > limit as u64) {
            return Err(JwksError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > limit {
                return Err(JwksError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok((parse_key_set(&body, &self.allowed, self.policy.max_keys)?, lifetime))
    }
}

impl Drop for RemoteKeys {
    fn drop(&mut self) {
        if let Some(task) = crate::sync::unpoisoned(self.scheduler.lock()).take() {
            task.abort();
        }
    }
}

/// Fetches the set at once, then whenever it goes stale (or, after a failure, to retry), for as
/// long as the keys are in use.
async fn keep_fresh(keys: Weak<RemoteKeys>) {
    loop {
        let Some(strong) = keys.upgrade() else {
            return;
        };
        let next = strong.scheduled_fetch().await;
        drop(strong);
        tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
    }
}

/// An error with its sources: reqwest's own message is only the outermost.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> JwksPolicy {
        JwksPolicy::default()
    }

    const MIN: Duration = Duration::from_secs(5 * 60);
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn cache_lifetime_follows_max_age_within_bounds() {
        let p = policy();
        let s = Duration::from_secs;
        for (cache_control, age, expected) in [
            (None, None, HOUR),
            (Some("public, max-age=19204, must-revalidate, no-transform"), None, s(19204)),
            (Some("max-age=19204"), Some("204"), s(19000)),
            (Some("MAX-AGE=7200"), None, s(7200)),
            (Some("max-age=\"7200\""), None, s(7200)),
            (Some("max-age=60"), None, MIN),
            (Some("max-age=0"), None, MIN),
            (Some("max-age=600"), Some("9999"), MIN),
            (Some("max-age=999999999"), None, DAY),
            (Some("max-age=99999999999999999999999999"), None, DAY),
            (Some("max-age=-5"), None, HOUR),
            (Some("max-age=soon"), None, HOUR),
            (Some("no-store"), None, MIN),
            (Some("no-cache, max-age=7200"), None, MIN),
            (Some("private"), None, HOUR),
            (Some("s-maxage=7200"), None, HOUR),
            (Some("max-age=7200"), Some("not a number"), s(7200)),
        ] {
            assert_eq!(p.lifetime(cache_control, age), expected, "{cache_control:?} age {age:?}");
        }
    }

    #[test]
    fn fetches_start_at_least_the_least_interval_apart() {
        let p = policy();
        let t0 = Instant::now();
        assert!(p.may_fetch(None, t0), "the first fetch is never held back");
        assert!(!p.may_fetch(Some(t0), t0));
        assert!(!p.may_fetch(Some(t0), t0 + Duration::from_secs(29)));
        assert!(p.may_fetch(Some(t0), t0 + Duration::from_secs(30)));
        assert!(p.may_fetch(Some(t0), t0 + HOUR));
        // A clock read before the attempt (another thread's `now`) is not a reason to fetch.
        assert!(!p.may_fetch(Some(t0 + Duration::from_secs(1)), t0));
    }

    #[test]
    fn retries_back_off_from_the_least_interval_to_the_most() {
        let p = policy();
        let s = Duration::from_secs;
        let delays: Vec<Duration> = (1..=7).map(|n| p.retry_delay(n)).collect();
        assert_eq!(delays, [s(30), s(60), s(120), s(240), s(300), s(300), s(300)]);
        assert_eq!(p.retry_delay(u32::MAX), s(300));
    }

    #[test]
    fn the_next_scheduled_fetch_on_a_virtual_clock() {
        let p = policy();
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let at = |last: u64, fresh: Option<u64>, failures: u32| CacheTimes {
            last_attempt: Some(t0 + s(last)),
            fresh_until: fresh.map(|f| t0 + s(f)),
            failures,
        };
        for (times, now, expected, why) in [
            (CacheTimes::default(), 0, 0, "never fetched: at once"),
            (at(0, Some(3600), 0), 10, 3600, "fetched, good for an hour: when it goes stale"),
            (at(0, Some(3600), 0), 4000, 4000, "stale already: now"),
            (at(0, None, 1), 1, 30, "the first fetch failed: retry after the least interval"),
            (at(100, None, 3), 101, 220, "third failure in a row: 4 × 30 s later"),
            (at(0, Some(3600), 1), 5, 3600, "a kid-triggered fetch failed on a fresh set: still when stale"),
            (at(3600, Some(3600), 2), 3601, 3660, "stale and failing: the retry delay"),
            (at(0, Some(10), 0), 5, 30, "a set good for less than the interval: not before the interval"),
        ] {
            assert_eq!(p.next_fetch(times, t0 + s(now)), t0 + s(expected), "{why}");
        }
    }

    fn rsa_jwk(kid: &str, alg: Option<&str>) -> serde_json::Value {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(
            callpush_emulators::credentials::FCM_PRIVATE_KEY.as_bytes(),
        )
        .unwrap();
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap()).unwrap();
        jwk["kid"] = kid.into();
        match alg {
            Some(alg) => jwk["alg"] = alg.into(),
            None => {
                jwk.as_object_mut().unwrap().remove("alg");
            }
        }
        jwk
    }

    const DEFAULT: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    #[test]
    fn keys_get_the_algorithms_of_their_type_never_a_tokens() {
        let key = |jwk: serde_json::Value, allowed: &[Algorithm]| {
            verify_key(&serde_json::from_value(jwk).unwrap(), allowed).map(|k| k.algorithms)
        };
        assert_eq!(key(rsa_jwk("a", None), &DEFAULT), Ok(vec![Algorithm::RS256]));
        assert_eq!(key(rsa_jwk("a", Some("RS256")), &DEFAULT), Ok(vec![Algorithm::RS256]));
        assert_eq!(key(rsa_jwk("a", None), &RSA_ALGORITHMS), Ok(RSA_ALGORITHMS.to_vec()));
        assert_eq!(key(rsa_jwk("a", Some("PS256")), &RSA_ALGORITHMS), Ok(vec![Algorithm::PS256]));
        assert!(matches!(key(rsa_jwk("a", Some("PS256")), &DEFAULT), Err(KeyRefusal::NotAllowed(_))));
        // An RSA key that says it is for HMAC or for ES256 is refused, not trusted either way.
        for alg in ["HS256", "ES256", "RSA-OAEP", "none"] {
            assert!(
                matches!(key(rsa_jwk("a", Some(alg)), &DEFAULT), Err(KeyRefusal::AlgorithmMismatch(_))),
                "{alg}"
            );
        }
        let mut encryption = rsa_jwk("a", None);
        encryption["use"] = "enc".into();
        assert_eq!(key(encryption, &DEFAULT), Err(KeyRefusal::NotForSignatures));
        let mut ops = rsa_jwk("a", None);
        ops["key_ops"] = serde_json::json!(["encrypt"]);
        assert_eq!(key(ops, &DEFAULT), Err(KeyRefusal::NotForSignatures));
        let mut verify = rsa_jwk("a", None);
        verify["use"] = "sig".into();
        verify["key_ops"] = serde_json::json!(["verify"]);
        assert!(key(verify, &DEFAULT).is_ok());
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0", "alg": "HS256"});
        assert_eq!(key(oct, &[Algorithm::HS256]), Err(KeyRefusal::Symmetric));
        let mut short = rsa_jwk("a", None);
        short["n"] = URL_SAFE_NO_PAD.encode([0xff; 128]).into();
        assert_eq!(key(short, &DEFAULT), Err(KeyRefusal::RsaSize(1024)));
        let ed = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32])});
        assert_eq!(key(ed, &DEFAULT), Ok(vec![Algorithm::EdDSA]));
        let short_ed =
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 31])});
        assert!(matches!(key(short_ed, &DEFAULT), Err(KeyRefusal::Unreadable(_))));
        let p384 = serde_json::json!({"kty": "EC", "crv": "P-384",
            "x": URL_SAFE_NO_PAD.encode([1u8; 48]), "y": URL_SAFE_NO_PAD.encode([2u8; 48])});
        assert!(matches!(key(p384.clone(), &DEFAULT), Err(KeyRefusal::NotAllowed(_))));
        assert_eq!(key(p384, &[Algorithm::ES384]), Ok(vec![Algorithm::ES384]));
        let p521 = serde_json::json!({"kty": "EC", "crv": "P-521",
            "x": URL_SAFE_NO_PAD.encode([1u8; 66]), "y": URL_SAFE_NO_PAD.encode([2u8; 66])});
        assert!(matches!(key(p521, &DEFAULT), Err(KeyRefusal::UnsupportedCurve(_))));
    }

    #[test]
    fn odd_keys_are_left_out_and_garbage_is_an_error() {
        let body = serde_json::json!({"keys": [
            rsa_jwk("good", Some("RS256")),
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "AKP", "kid": "future", "alg": "ML-DSA-44", "pub": "AAAA"},
            {"kid": "nothing"},
        ]});
        let set = parse_key_set(body.to_string().as_bytes(), &DEFAULT, 100).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("good"));
        let skipped: Vec<_> = set.skipped.iter().map(|(kid, _)| kid.clone().unwrap()).collect();
        assert_eq!(skipped, ["secret", "future", "nothing"]);
        assert!(describe_skipped(&set.skipped).contains("kid \"secret\": a symmetric key"));

        for garbage in [&b"<html>not json</html>"[..], b"{}", b"{\"keys\": 7}", b"[]", b"", b"\xff\xfe"] {
            assert!(
                matches!(parse_key_set(garbage, &DEFAULT, 100), Err(JwksError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(garbage)
            );
        }
        assert_eq!(
            parse_key_set(b"{\"keys\": []}", &DEFAULT, 100).unwrap_err(),
            JwksError::NoUsableKeys("the set is empty".into())
        );
        let only_secret = serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string();
        assert!(matches!(
            parse_key_set(only_secret.as_bytes(), &DEFAULT, 100),
            Err(JwksError::NoUsableKeys(why)) if why.contains("symmetric")
        ));
        let many = serde_json::json!({"keys": vec![rsa_jwk("k", None); 3]}).to_string();
        assert_eq!(
            parse_key_set(many.as_bytes(), &DEFAULT, 2).unwrap_err(),
            JwksError::TooManyKeys { count: 3, limit: 2 }
        );
    }

    #[test]
    fn modulus_bits_ignore_leading_zeros() {
        assert_eq!(modulus_bits(&[]), 0);
        assert_eq!(modulus_bits(&[0, 0, 1]), 1);
        assert_eq!(modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(modulus_bits(&[0xff; 256]), 2048);
    }
}
