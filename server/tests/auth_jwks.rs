//! Device tokens verified with the keys of an identity provider's JWKS URL, against a local
//! identity provider served over https with the emulators' test CA (`[auth] jwks_ca_file`):
//! which tokens pass, how the key set is fetched again (on an unknown `kid`, rate-limited, when
//! stale), and that a provider that is down, slow or answers garbage never takes away the keys
//! already held.

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use callpush_emulators::credentials::{FCM_PRIVATE_KEY, FCM_PUBLIC_KEY, HARMONY_PRIVATE_KEY};
use callpush_emulators::tls::TestCa;
use callpush_server::auth::jwks::{JwksError, JwksPolicy};
use callpush_server::auth::{AuthError, DeviceAuth};
use callpush_server::config::AuthConfig;
use callpush_server::time::now_secs;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use support::{Db, TestServer};
use tokio::task::JoinSet;

const ISSUER: &str = "https://securetoken.google.com/callpush-test";
const AUDIENCE: &str = "callpush-test";

// ---- signing keys, as an identity provider holds them ----

/// A signing key of the identity provider and its public half as a JWK.
struct Signer {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl Signer {
    fn rsa(kid: &str, private_pem: &str) -> Signer {
        let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap();
        Signer::from_jwk_of(kid, Algorithm::RS256, key)
    }

    fn ec(kid: &str) -> Signer {
        let pem = rcgen::KeyPair::generate().unwrap().serialize_pem();
        Signer::from_jwk_of(kid, Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes()).unwrap())
    }

    fn ed(kid: &str) -> Signer {
        use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
        let signing = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        Signer {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}),
        }
    }

    fn from_jwk_of(kid: &str, alg: Algorithm, key: EncodingKey) -> Signer {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        jwk["kid"] = kid.into();
        jwk["use"] = "sig".into();
        Signer { kid: kid.into(), alg, key, jwk }
    }

    /// A token for `user` as the provider issues it.
    fn token(&self, user: &str) -> String {
        self.token_with(claims(user))
    }

    fn token_with(&self, claims: Value) -> String {
        self.token_as(&self.kid, claims)
    }

    /// Signed with this key, naming `kid`.
    fn token_as(&self, kid: &str, claims: Value) -> String {
        let header = Header { kid: Some(kid.into()), ..Header::new(self.alg) };
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

fn claims(user: &str) -> Value {
    let now = now_secs();
    json!({"sub": user, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 600})
}

fn jwks(signers: &[&Signer]) -> Value {
    json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()})
}

// ---- the identity provider ----

/// What the identity provider answers at its JWKS URL.
#[derive(Clone)]
enum Answer {
    /// The key set, with `Cache-Control: public, max-age=<s>`.
    Keys(Value, u64),
    /// This status and body.
    Raw(u16, Vec<u8>),
    /// This body streamed without a `Content-Length`.
    Streamed(Vec<u8>),
    /// The key set, this long after the request.
    Slow(Duration, Value),
}

/// A JWKS URL served over https with a certificate of the emulators' test CA.
struct Idp {
    url: String,
    ca_file: PathBuf,
    fetches: Arc<AtomicUsize>,
    answer: Arc<Mutex<Answer>>,
    serving: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

type IdpState = (Arc<AtomicUsize>, Arc<Mutex<Answer>>);

async fn serve_jwks(State((fetches, answer)): State<IdpState>) -> Response {
    fetches.fetch_add(1, Ordering::SeqCst);
    let answer = answer.lock().unwrap().clone();
    match answer {
        Answer::Keys(keys, max_age) => (
            [(header::CACHE_CONTROL, format!("public, max-age={max_age}, must-revalidate"))],
            axum::Json(keys),
        )
            .into_response(),
        Answer::Raw(status, body) => (StatusCode::from_u16(status).unwrap(), body).into_response(),
        Answer::Streamed(body) => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
            Body::from_stream(futures::stream::iter(chunks)).into_response()
        }
        Answer::Slow(delay, keys) => {
            tokio::time::sleep(delay).await;
            axum::Json(keys).into_response()
        }
    }
}

impl Idp {
    async fn start(answer: Answer) -> Idp {
        let ca = TestCa::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("test-ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem).unwrap();
        let fetches = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(Mutex::new(answer));
        let router =
            Router::new().route("/jwks.json", get(serve_jwks)).with_state((fetches.clone(), answer.clone()));
        let acceptor = tokio_rustls::TlsAcceptor::from(ca.server_config.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}/jwks.json", listener.local_addr().unwrap().port());
        let serving = tokio::spawn(async move {
            // Aborting this task drops the listener and every connection: the provider is down.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                while connections.try_join_next().is_some() {}
                let (acceptor, router) = (acceptor.clone(), router.clone());
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
                        .await;
                });
            }
        });
        Idp { url, ca_file, fetches, answer, serving, _dir: dir }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Stops answering: connections are refused from now on.
    fn go_down(&self) {
        self.serving.abort();
    }

    fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            jwks_url: Some(self.url.clone()),
            jwks_ca_file: Some(self.ca_file.clone()),
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            ..AuthConfig::default()
        }
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// Short intervals, so the tests need not wait half a minute; the bounds they test are the same.
fn policy(min_refresh_interval: Duration) -> JwksPolicy {
    JwksPolicy {
        min_refresh_interval,
        connect_timeout: Duration::from_secs(2),
        fetch_timeout: Duration::from_secs(2),
        ..JwksPolicy::default()
    }
}

/// Waits until `condition` holds, for at most 10 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_error(auth: &DeviceAuth) -> Option<JwksError> {
    auth.jwks_status().unwrap().last_error
}

// ---- through the server's API ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_tokens_the_jwks_keys_verify_and_refuses_the_rest() {
    let (rsa, ec, ed) = (Signer::rsa("rsa-1", FCM_PRIVATE_KEY), Signer::ec("ec-1"), Signer::ed("ed-1"));
    let idp = Idp::start(Answer::Keys(jwks(&[&rsa, &ec, &ed]), 3600)).await;
    let auth = idp.auth_config();
    // The test server keeps its HS256 secret: local keys work alongside the JWKS URL.
    let server = TestServer::start_with(Db::Sqlite, |config| {
        config.auth = AuthConfig { hs256_secret: config.auth.hs256_secret.take(), ..auth };
    })
    .await;
    let delete = |token: String| {
        let server = &server;
        async move { server.call(Method::DELETE, "/v1/installations/phone-1", Some(&token), None).await.0 }
    };
    // The key set is fetched at start, in the background.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while delete(rsa.token("uid-1")).await != StatusCode::NOT_FOUND {
        assert!(tokio::time::Instant::now() < deadline, "the JWKS keys were never fetched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // `sub` is the user: what uid-1 registers, uid-1 withdraws; nobody else can.
    for signer in [&rsa, &ec, &ed] {
        let body = json!({"platform": "fcm", "token": format!("fcm-token-{}-0123", signer.kid)});
        let (status, lease) = server
            .call(Method::PUT, "/v1/installations/phone-1", Some(&signer.token("uid-1")), Some(body))
            .await;
        assert_eq!(status, StatusCode::OK, "{:?}: {lease}", signer.alg);
        assert_eq!(delete(signer.token("uid-2")).await, StatusCode::NOT_FOUND, "{:?}", signer.alg);
        assert_eq!(delete(signer.token("uid-1")).await, StatusCode::NO_CONTENT, "{:?}", signer.alg);
    }
    // The HS256 secret, with the issuer and audience every token must carry.
    let local = |claims: &Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(support::SECRET.as_bytes()),
        )
        .unwrap()
    };
    assert_eq!(delete(local(&claims("uid-1"))).await, StatusCode::NOT_FOUND);
    assert_eq!(delete(TestServer::token("uid-1")).await, StatusCode::UNAUTHORIZED, "no iss, no aud");

    let now = now_secs();
    let with = |change: Value| {
        let mut claims = claims("uid-1");
        claims.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        claims
    };
    let mut refused = vec![
        ("another issuer", rsa.token_with(with(json!({"iss": "https://securetoken.google.com/other"})))),
        ("another audience", rsa.token_with(with(json!({"aud": "other-project"})))),
        ("no audience", ec.token_with(json!({"sub": "uid-1", "iss": ISSUER, "exp": now + 600}))),
        ("expired", ed.token_with(with(json!({"iat": now - 7200, "exp": now - 3600})))),
        ("not yet valid", rsa.token_with(with(json!({"nbf": now + 600})))),
        ("a user id with a space", rsa.token("uid 1")),
        (
            "signed by another key under a known kid",
            Signer::rsa("x", HARMONY_PRIVATE_KEY).token_as("rsa-1", claims("uid-1")),
        ),
        ("an EC key's kid on an RSA signature", rsa.token_as("ec-1", claims("uid-1"))),
    ];
    // alg none, naming a key the set has.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims("uid-1").to_string());
    refused.push(("alg none", format!("{none_header}.{body}.")));
    refused.push(("alg none, unsigned", format!("{none_header}.{body}")));
    // HS256 with the RSA public key as the secret: the classic algorithm confusion.
    for secret in [FCM_PUBLIC_KEY.as_bytes().to_vec(), rsa.jwk["n"].as_str().unwrap().as_bytes().to_vec()] {
        let header = Header { kid: Some("rsa-1".into()), ..Header::new(Algorithm::HS256) };
        let token =
            jsonwebtoken::encode(&header, &claims("uid-1"), &EncodingKey::from_secret(&secret)).unwrap();
        refused.push(("HS256 signed with the public key", token));
    }
    for (why, token) in refused {
        let (status, body) =
            server.call(Method::DELETE, "/v1/installations/phone-1", Some(&token), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{why}");
        assert!(!body.to_string().contains(&token), "{why}: the answer repeats the token");
    }
    // None of these named a key the set might have been missing: one fetch, at start.
    assert_eq!(idp.fetches(), 1);
}

// ---- the key cache ----

#[tokio::test]
async fn an_unknown_kid_fetches_the_set_once_and_the_rotated_key_passes() {
    let old = Signer::rsa("rsa-1", FCM_PRIVATE_KEY);
    let idp = Idp::start(Answer::Keys(jwks(&[&old]), 3600)).await;
    let auth = DeviceAuth::with_policy(&idp.auth_config(), policy(Duration::from_millis(500))).unwrap();
    // The first token waits for the fetch the verifier started.
    assert_eq!(auth.authenticate(&old.token("uid-1")).await, Ok("uid-1".into()));
    assert_eq!(idp.fetches(), 1);
    for _ in 0..5 {
        assert_eq!(auth.authenticate(&old.token("uid-1")).await, Ok("uid-1".into()));
    }
    assert_eq!(idp.fetches(), 1, "known keys are not fetched again");

    // The provider rotates: its tokens name a new kid, which one fetch brings.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let new = Signer::rsa("rsa-2", HARMONY_PRIVATE_KEY);
    idp.answer(Answer::Keys(jwks(&[&old, &new]), 3600));
    let tokens: Vec<String> = (0..8).map(|i| new.token(&format!("uid-{i}"))).collect();
    let users = futures::future::join_all(tokens.iter().map(|t| auth.authenticate(t))).await;
    let expected: Vec<Result<String, AuthError>> = (0..8).map(|i| Ok(format!("uid-{i}"))).collect();
    assert_eq!(users, expected, "concurrent tokens share one fetch");
    assert_eq!(idp.fetches(), 2);
    assert_eq!(auth.jwks_status().unwrap().kids, [Some("rsa-1".into()), Some("rsa-2".into())]);

    // Without waiting (`verify`): refused while the fetch runs in the background, then passes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ec = Signer::ec("ec-3");
    idp.answer(Answer::Keys(jwks(&[&new, &ec]), 3600));
    assert!(auth.verify(&ec.token("uid-3")).is_err());
    eventually("the background fetch", || auth.verify(&ec.token("uid-3")).is_ok()).await;
    assert_eq!(idp.fetches(), 3);
    // The key the provider dropped is gone with it.
    assert!(auth.authenticate(&old.token("uid-1")).await.is_err());
}

#[tokio::test]
async fn made_up_kids_cannot_make_the_server_hammer_the_idp() {
    let rsa = Signer::rsa("rsa-1", FCM_PRIVATE_KEY);
    let idp = Idp::start(Answer::Keys(jwks(&[&rsa]), 3600)).await;
    let interval = Duration::from_secs(2);
    let auth = DeviceAuth::with_policy(&idp.auth_config(), policy(interval)).unwrap();
    assert_eq!(auth.authenticate(&rsa.token("uid-1")).await, Ok("uid-1".into()));
    assert_eq!(idp.fetches(), 1);

    // Right after a fetch, no made-up kid fetches at all, waiting or not. (An attacker cannot
    // sign them; a real signature under another header costs nothing to copy.)
    let signed = rsa.token("uid-1");
    let (_, rest) = signed.split_once('.').unwrap();
    let bogus: Vec<String> = (0..50)
        .map(|i| {
            let header = json!({"alg": "RS256", "typ": "JWT", "kid": format!("bogus-{i}")});
            format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
        })
        .collect();
    for result in futures::future::join_all(bogus.iter().map(|t| auth.authenticate(t))).await {
        assert_eq!(result, Err(AuthError::Invalid("no key has the token's kid".into())));
    }
    for token in &bogus {
        assert!(auth.verify(token).is_err());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(idp.fetches(), 1);

    // Once the interval has passed, a flood makes one fetch, and the next flood none.
    tokio::time::sleep(interval).await;
    let started = std::time::Instant::now();
    for result in futures::future::join_all(bogus.iter().map(|t| auth.authenticate(t))).await {
        assert!(result.is_err());
    }
    for token in &bogus {
        assert!(auth.verify(token).is_err());
    }
    for result in futures::future::join_all(bogus.iter().map(|t| auth.authenticate(t))).await {
        assert!(result.is_err());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        started.elapsed() < interval,
        "the floods took longer than the interval: the count below means nothing"
    );
    assert_eq!(idp.fetches(), 2);
    // The real key passed all along.
    assert_eq!(auth.authenticate(&rsa.token("uid-1")).await, Ok("uid-1".into()));
    assert_eq!(idp.fetches(), 2);
}

#[tokio::test]
async fn when_the_idp_is_down_slow_or_failing_the_keys_held_still_work() {
    let rsa = Signer::rsa("rsa-1", FCM_PRIVATE_KEY);
    let keys = jwks(&[&rsa]);
    let idp = Idp::start(Answer::Keys(keys.clone(), 3600)).await;
    let interval = Duration::from_millis(300);
    let auth = DeviceAuth::with_policy(&idp.auth_config(), policy(interval)).unwrap();
    assert_eq!(auth.authenticate(&rsa.token("uid-1")).await, Ok("uid-1".into()));

    let unknown = rsa.token_as("rotated", claims("uid-1"));
    for (answer, expected) in [
        (Some(Answer::Raw(503, b"maintenance".to_vec())), JwksError::Status(503)),
        (
            Some(Answer::Slow(Duration::from_secs(5), keys.clone())),
            JwksError::Timeout(Duration::from_secs(2)),
        ),
        (None, JwksError::Fetch(String::new())),
    ] {
        match answer {
            Some(answer) => idp.answer(answer),
            None => idp.go_down(),
        }
        tokio::time::sleep(interval).await;
        let fetches = idp.fetches();
        assert!(auth.authenticate(&unknown).await.is_err());
        let error = last_error(&auth).expect("the failed fetch is recorded");
        match expected {
            JwksError::Fetch(_) => assert!(matches!(error, JwksError::Fetch(_)), "{error}"),
            expected => assert_eq!(error, expected),
        }
        if !matches!(error, JwksError::Fetch(_)) {
            assert_eq!(idp.fetches(), fetches + 1);
        }
        // The key held before is still in service.
        assert_eq!(auth.authenticate(&rsa.token("uid-1")).await, Ok("uid-1".into()), "after {error}");
        assert!(auth.verify(&rsa.token("uid-1")).is_ok());
        assert_eq!(auth.jwks_status().unwrap().kids, [Some("rsa-1".into())]);
    }
    assert_eq!(auth.jwks_status().unwrap().failures, 3);
}

#[tokio::test]
async fn oversized_or_garbage_key_sets_are_refused_with_a_clear_error() {
    let rsa = Signer::rsa("rsa-1", FCM_PRIVATE_KEY);
    let limit = JwksPolicy::default().max_bytes;
    let mut huge = br#"{"keys": [], "padding": ""#.to_vec();
    huge.resize(limit + 1024, b'x');
    huge.extend_from_slice(b"\"}");
    let idp = Idp::start(Answer::Raw(200, huge.clone())).await;
    let interval = Duration::from_millis(300);
    let auth = DeviceAuth::with_policy(&idp.auth_config(), policy(interval)).unwrap();
    let token = rsa.token("uid-1");
    assert_eq!(auth.authenticate(&token).await, Err(AuthError::KeysUnavailable));
    assert_eq!(last_error(&auth), Some(JwksError::TooLarge { limit }));
    assert!(!auth.jwks_status().unwrap().loaded);

    for (answer, check) in [
        (
            Answer::Streamed(huge),
            (|e: &JwksError| matches!(e, JwksError::TooLarge { .. })) as fn(&JwksError) -> bool,
        ),
        (Answer::Raw(200, b"<html>Sign in</html>".to_vec()), |e| matches!(e, JwksError::Malformed(_))),
        (Answer::Raw(200, br#"{"keys": {"kty": "RSA"}}"#.to_vec()), |e| matches!(e, JwksError::Malformed(_))),
        (
            Answer::Raw(200, br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.to_vec()),
            |e| matches!(e, JwksError::NoUsableKeys(why) if why.contains("symmetric")),
        ),
        (Answer::Raw(404, Vec::new()), |e| *e == JwksError::Status(404)),
    ] {
        idp.answer(answer);
        // Without a key set the verifier also retries by itself (backing off), so a fetch of
        // the previous answer may just have ended: try until this answer's error shows.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            tokio::time::sleep(interval).await;
            assert_eq!(auth.authenticate(&token).await, Err(AuthError::KeysUnavailable));
            let error = last_error(&auth).unwrap();
            if check(&error) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {error}");
        }
    }

    // A good answer at last; garbage afterwards leaves the good keys in service.
    idp.answer(Answer::Keys(jwks(&[&rsa]), 3600));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while auth.authenticate(&token).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "the good key set was never taken");
        tokio::time::sleep(interval).await;
    }
    assert_eq!(last_error(&auth), None);
    tokio::time::sleep(interval).await;
    idp.answer(Answer::Raw(200, b"\0\xff garbage".to_vec()));
    tokio::time::sleep(interval).await;
    assert!(auth.authenticate(&rsa.token_as("rotated", claims("uid-1"))).await.is_err());
    assert!(matches!(last_error(&auth), Some(JwksError::Malformed(_))));
    assert_eq!(auth.authenticate(&token).await, Ok("uid-1".into()));
}

#[tokio::test]
async fn the_set_is_fetched_again_when_it_goes_stale() {
    let rsa = Signer::rsa("rsa-1", FCM_PRIVATE_KEY);
    let idp = Idp::start(Answer::Keys(jwks(&[&rsa]), 1)).await;
    // max-age=1 is below the least lifetime: kept for the least, 1 s here (5 min by default).
    let policy = JwksPolicy { min_lifetime: Duration::from_secs(1), ..policy(Duration::from_millis(200)) };
    let auth = DeviceAuth::with_policy(&idp.auth_config(), policy).unwrap();
    assert_eq!(auth.authenticate(&rsa.token("uid-1")).await, Ok("uid-1".into()));
    let started = std::time::Instant::now();
    // No token asks for it: the verifier fetches a stale set by itself, and keeps doing so.
    let rotated = Signer::ec("ec-2");
    idp.answer(Answer::Keys(jwks(&[&rotated]), 1));
    eventually("a fetch once the set went stale", || idp.fetches() >= 3).await;
    assert!(started.elapsed() >= Duration::from_millis(900), "fetched before the set went stale");
    assert!(auth.verify(&rotated.token("uid-2")).is_ok());
    assert!(auth.verify(&rsa.token("uid-1")).is_err(), "the dropped key is gone");
}

#[tokio::test]
async fn the_idps_certificate_is_checked() {
    let rsa = Signer::rsa("rsa-1", FCM_PRIVATE_KEY);
    let idp = Idp::start(Answer::Keys(jwks(&[&rsa]), 3600)).await;
    // Without the test CA among the trusted roots, the provider's certificate is not trusted.
    let auth = DeviceAuth::with_policy(
        &AuthConfig { jwks_ca_file: None, ..idp.auth_config() },
        policy(Duration::from_millis(300)),
    )
    .unwrap();
    assert_eq!(auth.authenticate(&rsa.token("uid-1")).await, Err(AuthError::KeysUnavailable));
    let error = last_error(&auth).unwrap().to_string();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(idp.fetches(), 0, "no request went out over the untrusted connection");
}
