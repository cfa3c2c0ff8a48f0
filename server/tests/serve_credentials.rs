//! `callpush serve` never falls back to development credentials on its own: without API keys
//! or device-token auth it refuses to start, says what to configure and mentions `--dev`.

use std::process::Command;

#[test]
fn serve_without_credentials_exits_2_and_says_what_to_configure() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, missing_api_keys, missing_auth) in [
        ("", true, true),
        ("api_keys = [\"serve-test-api-key-0123\"]", false, true),
        ("[auth]\nhs256_secret = \"serve-test-device-secret-0123456789abcdef\"", true, false),
    ] {
        let config = dir.path().join("callpush.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase_url = \"sqlite://{db}\"\ndata_dir = \"{dir}\"\n{extra}\n",
                db = dir.path().join("callpush.db").display(),
                dir = dir.path().display(),
            ),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_callpush"));
        command.args(["serve", "--config", config.to_str().unwrap()]);
        for (name, _) in std::env::vars() {
            if name.starts_with("CALLPUSH_") {
                command.env_remove(name);
            }
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert_eq!(
            stderr.contains("api_keys") && stderr.contains("CALLPUSH_API_KEYS"),
            missing_api_keys,
            "{stderr}"
        );
        assert_eq!(
            stderr.contains("hs256_secret") && stderr.contains("CALLPUSH_AUTH__HS256_SECRET"),
            missing_auth,
            "{stderr}"
        );
        assert!(stderr.contains("callpush serve --dev"), "{stderr}");
        assert!(!dir.path().join("callpush-dev-credentials.json").exists(), "no credentials are made");
        assert!(!dir.path().join("callpush.db").exists(), "nothing is started");
    }
}
