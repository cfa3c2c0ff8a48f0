//! The FCM HTTP v1 emulator.

use std::net::SocketAddr;

use super::credentials::TestCredentials;
use super::faults::FaultPlan;
use super::hub::DeviceHub;

/// A local FCM HTTP v1.
pub struct FcmEmulator {
    addr: SocketAddr,
    faults: FaultPlan,
}

impl FcmEmulator {
    /// Starts on a free loopback port.
    pub async fn start(_credentials: &TestCredentials, _hub: DeviceHub) -> std::io::Result<Self> {
        Err(std::io::Error::other("the FCM HTTP v1 emulator is not available in this build"))
    }

    /// Its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its OAuth token endpoint (the service-account file's `token_uri`).
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// Its scripted faults and request log.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }
}
