//! The test credentials the emulators check and `callpush-dev demo` / the tests send with: each
//! provider's credential files, made from the public test keys in `test-keys/`.

use std::path::{Path, PathBuf};

use serde_json::json;

/// Push Kit service-account key (RSA, PS256), private half.
pub const HARMONY_PRIVATE_KEY: &str = include_str!("../test-keys/harmony-service-account.pem");
/// Its public half, which the Push Kit emulator verifies with.
pub const HARMONY_PUBLIC_KEY: &str = include_str!("../test-keys/harmony-service-account.pub.pem");
/// FCM service-account key (RSA, RS256), private half.
pub const FCM_PRIVATE_KEY: &str = include_str!("../test-keys/fcm-service-account.pem");
/// Its public half, which the FCM emulator's token endpoint verifies with.
pub const FCM_PUBLIC_KEY: &str = include_str!("../test-keys/fcm-service-account.pub.pem");
/// APNs provider-token key (EC P-256, ES256), private half (`.p8`).
pub const APNS_PRIVATE_KEY: &str = include_str!("../test-keys/apns-AuthKey.p8");
/// Its public half, which the APNs emulator verifies with.
pub const APNS_PUBLIC_KEY: &str = include_str!("../test-keys/apns-AuthKey.pub.pem");

/// Everything an emulator needs to know about the credentials it accepts, and every value a
/// sender's configuration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestCredentials {
    /// Push Kit: AppGallery Connect project id (in the send URL).
    pub harmony_project_id: String,
    /// Push Kit: the service account's key id (`kid`).
    pub harmony_key_id: String,
    /// Push Kit: the service account (`iss`).
    pub harmony_sub_account: String,
    /// Push Kit receipts: the callback user name configured in AppGallery Connect.
    pub harmony_receipt_user_name: String,
    /// Push Kit receipts: the callback secret, base64 as AppGallery Connect generates it.
    pub harmony_receipt_secret: String,
    /// Push Kit receipts: the app's package name (`appPackageName`).
    pub harmony_app_package_name: String,
    /// FCM: Firebase project id (in the send URL).
    pub fcm_project_id: String,
    /// FCM: the service account's e-mail (`iss`).
    pub fcm_client_email: String,
    /// FCM: the key id.
    pub fcm_private_key_id: String,
    /// APNs: key id (`kid`).
    pub apns_key_id: String,
    /// APNs: team id (`iss`).
    pub apns_team_id: String,
    /// APNs: the app's bundle id.
    pub apns_bundle_id: String,
    /// WNS classic: Package SID.
    pub wns_package_sid: String,
    /// WNS Entra ID: application (client) id.
    pub wns_app_id: String,
    /// WNS Entra ID: tenant id.
    pub wns_tenant_id: String,
    /// WNS: the client secret (both flows).
    pub wns_client_secret: String,
}

impl Default for TestCredentials {
    fn default() -> Self {
        TestCredentials {
            harmony_project_id: "101811111111111111".into(),
            harmony_key_id: "test-key-id-0001".into(),
            harmony_sub_account: "100000001".into(),
            harmony_receipt_user_name: "callpush-receipts".into(),
            // base64 of "callpush test receipt secret 01"
            harmony_receipt_secret: "Y2FsbHB1c2ggdGVzdCByZWNlaXB0IHNlY3JldCAwMQ==".into(),
            harmony_app_package_name: "com.example.callpush".into(),
            fcm_project_id: "callpush-test".into(),
            fcm_client_email: "callpush@callpush-test.iam.gserviceaccount.com".into(),
            fcm_private_key_id: "0123456789abcdef0123456789abcdef01234567".into(),
            apns_key_id: "ABC123DEFG".into(),
            apns_team_id: "TEAM123456".into(),
            apns_bundle_id: "com.example.callpush".into(),
            wns_package_sid: "ms-app://S-1-15-2-1234567890-1234567890-1234567890-1234567890-1234567890-1234567890-123456789".into(),
            wns_app_id: "00000000-0000-0000-0000-00000000c0de".into(),
            wns_tenant_id: "11111111-1111-1111-1111-111111111111".into(),
            wns_client_secret: "test-wns-client-secret".into(),
        }
    }
}

/// The credential files of [`TestCredentials`], written to a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFiles {
    /// The Push Kit service-account JSON.
    pub harmony_service_account: PathBuf,
    /// The FCM service-account JSON (`token_uri` points at `fcm_token_url`).
    pub fcm_service_account: PathBuf,
    /// The APNs `.p8` key.
    pub apns_key: PathBuf,
}

impl TestCredentials {
    /// Writes the credential files into `dir`; the FCM key file names `fcm_token_url` as its
    /// `token_uri`, as a real one names Google's.
    pub fn write_files(&self, dir: &Path, fcm_token_url: &str) -> std::io::Result<CredentialFiles> {
        let harmony = json!({
            "project_id": self.harmony_project_id,
            "key_id": self.harmony_key_id,
            "private_key": HARMONY_PRIVATE_KEY,
            "sub_account": self.harmony_sub_account,
            "auth_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/authorize",
            "token_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/token",
            "auth_provider_cert_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/certs",
            "client_cert_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/x509?client_id=",
        });
        let fcm = json!({
            "type": "service_account",
            "project_id": self.fcm_project_id,
            "private_key_id": self.fcm_private_key_id,
            "private_key": FCM_PRIVATE_KEY,
            "client_email": self.fcm_client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": fcm_token_url,
        });
        let files = CredentialFiles {
            harmony_service_account: dir.join("harmony-service-account.json"),
            fcm_service_account: dir.join("fcm-service-account.json"),
            apns_key: dir.join(format!("AuthKey_{}.p8", self.apns_key_id)),
        };
        std::fs::write(&files.harmony_service_account, serde_json::to_vec_pretty(&harmony)?)?;
        std::fs::write(&files.fcm_service_account, serde_json::to_vec_pretty(&fcm)?)?;
        std::fs::write(&files.apns_key, APNS_PRIVATE_KEY)?;
        Ok(files)
    }
}
