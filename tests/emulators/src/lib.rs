//! Local emulators of the four push providers, faithful to what each checks and answers
//! (docs/providers/apns.md, fcm.md, harmony.md, wns.md), for the server's tests and benches,
//! `callpush-dev emulate` and `callpush-dev demo`. None of it is part of the `callpush` binary.
//!
//! An emulator is a specification: each one states the provider's facts (scopes, grant types,
//! audiences, error reasons, limits, paths) itself, from the provider's public documentation,
//! and never borrows them from the sender it checks.
//!
//! Each emulator verifies the sender's credentials against the public test keys of
//! [`credentials`], checks headers, body schema, size limits and token format, answers with the
//! provider's documented success and error bodies, can be scripted to misbehave
//! ([`faults`]), and hands every accepted push, exactly as the device receives it, to the
//! simulated devices subscribed to its token ([`hub`]). The Push Kit emulator then posts signed
//! delivery receipts to a configured URL, as Push Kit does ([`harmony_receipts`]). [`device`] is such a device: the real
//! core `Client` on the `reqwest` transport.

pub mod apns;
pub mod credentials;
pub mod device;
pub mod faults;
pub mod fcm;
pub mod harmony;
pub mod harmony_receipts;
pub mod hub;
pub mod memo;
pub mod recording;
pub mod serve;
pub mod tls;
pub mod wns;

use std::path::Path;

use callpush_server::config::{
    ApnsConfig, FcmConfig, HarmonyConfig, HarmonyReceiptsConfig, ProvidersConfig, WnsConfig, WnsFlow,
};
use credentials::{CredentialFiles, TestCredentials};
use hub::DeviceHub;

/// All four emulators, sharing one device hub.
pub struct Emulators {
    /// Where accepted pushes go.
    pub hub: DeviceHub,
    /// The credentials they accept.
    pub credentials: TestCredentials,
    /// Push Kit v3.
    pub harmony: harmony::HarmonyEmulator,
    /// FCM HTTP v1 and its OAuth token endpoint.
    pub fcm: fcm::FcmEmulator,
    /// APNs over HTTP/2 with TLS.
    pub apns: apns::ApnsEmulator,
    /// WNS and its token endpoints.
    pub wns: wns::WnsEmulator,
}

impl Emulators {
    /// Starts the four on free loopback ports: APNs over TLS (HTTP/2), the others on plain
    /// HTTP.
    pub async fn start(credentials: TestCredentials) -> std::io::Result<Emulators> {
        Emulators::start_on(credentials, false).await
    }

    /// Starts the four on free loopback ports, every one over TLS from one test CA (the
    /// `ca_file` of [`Emulators::providers_config`]), each offering by ALPN what its provider
    /// speaks: APNs HTTP/2 only; FCM HTTP/2 or HTTP/1.1 (FCM HTTP v1 speaks HTTP/2); Push Kit
    /// and WNS HTTP/1.1, the only version docs/providers/harmony.md and wns.md give them.
    pub async fn start_tls(credentials: TestCredentials) -> std::io::Result<Emulators> {
        Emulators::start_on(credentials, true).await
    }

    async fn start_on(credentials: TestCredentials, all_tls: bool) -> std::io::Result<Emulators> {
        let hub = DeviceHub::default();
        let ca = tls::TestCa::new().map_err(std::io::Error::other)?;
        let tls = all_tls.then_some(&ca);
        Ok(Emulators {
            harmony: harmony::HarmonyEmulator::start_with(&credentials, hub.clone(), tls).await?,
            fcm: fcm::FcmEmulator::start_with(&credentials, hub.clone(), tls).await?,
            apns: apns::ApnsEmulator::start_with_ca(&credentials, hub.clone(), &ca).await?,
            wns: wns::WnsEmulator::start_with(&credentials, hub.clone(), tls).await?,
            hub,
            credentials,
        })
    }

    /// Writes the credential files and the test CA into `dir` and returns the providers
    /// configuration that sends through these emulators, with the WNS token flow `wns_flow`.
    pub fn providers_config(
        &self,
        dir: &Path,
        wns_flow: WnsFlow,
    ) -> std::io::Result<(ProvidersConfig, CredentialFiles)> {
        let files = self.credentials.write_files(dir, &self.fcm.token_url())?;
        let ca_file = dir.join("emulators-ca.pem");
        std::fs::write(&ca_file, self.apns.ca_pem())?;
        let c = &self.credentials;
        let (client_id, tenant_id, token_url) = match wns_flow {
            WnsFlow::Live => (c.wns_package_sid.clone(), None, self.wns.live_token_url()),
            WnsFlow::Entra => (
                c.wns_app_id.clone(),
                Some(c.wns_tenant_id.clone()),
                self.wns.entra_token_url(&c.wns_tenant_id),
            ),
        };
        let config = ProvidersConfig {
            harmony: Some(HarmonyConfig {
                service_account_file: files.harmony_service_account.clone(),
                base_url: self.harmony.base_url(),
                test_message: false,
                receipts: Some(HarmonyReceiptsConfig {
                    user_name: c.harmony_receipt_user_name.clone(),
                    secret: Some(c.harmony_receipt_secret.clone()),
                    legacy_secret: None,
                }),
            }),
            fcm: Some(FcmConfig {
                service_account_file: files.fcm_service_account.clone(),
                base_url: self.fcm.base_url(),
                token_url: None,
            }),
            apns: Some(ApnsConfig {
                key_file: files.apns_key.clone(),
                key_id: c.apns_key_id.clone(),
                team_id: c.apns_team_id.clone(),
                bundle_id: c.apns_bundle_id.clone(),
                production_url: self.apns.production_url(),
                sandbox_url: self.apns.sandbox_url(),
            }),
            wns: Some(WnsConfig {
                flow: wns_flow,
                client_id,
                client_secret: c.wns_client_secret.clone(),
                tenant_id,
                token_url: Some(token_url),
                endpoint_override: Some(self.wns.endpoint()),
            }),
            ca_file: Some(ca_file),
        };
        Ok((config, files))
    }

    /// The Push Kit emulator's receipt settings posting to `url` (a server's
    /// `/v1/receipts/harmony`), signed with the test credentials [`Emulators::providers_config`]
    /// configures the server with.
    pub fn receipt_settings(&self, url: &str) -> harmony_receipts::ReceiptSettings {
        harmony_receipts::ReceiptSettings {
            url: url.to_owned(),
            user_name: self.credentials.harmony_receipt_user_name.clone(),
            secret: Some(self.credentials.harmony_receipt_secret.clone()),
            legacy_secret: None,
            app_package_name: self.credentials.harmony_app_package_name.clone(),
        }
    }

    /// Sends the Push Kit emulator's delivery receipts to the server at `base` (its
    /// `/v1/receipts/harmony`).
    pub fn send_receipts_to(&self, base: &str) {
        let url = format!("{}/v1/receipts/harmony", base.trim_end_matches('/'));
        self.harmony.receipts().configure(Some(self.receipt_settings(&url)));
    }

    /// The emulators' test CA, PEM: what a sender must trust to reach them (the `ca_file` of
    /// [`Emulators::providers_config`]).
    pub fn ca_pem(&self) -> String {
        self.apns.ca_pem()
    }
}
