//! The Push Kit v3 emulator.

use std::net::SocketAddr;

use super::credentials::TestCredentials;
use super::faults::FaultPlan;
use super::hub::DeviceHub;

/// A local Push Kit v3.
pub struct HarmonyEmulator {
    addr: SocketAddr,
    faults: FaultPlan,
}

impl HarmonyEmulator {
    /// Starts on a free loopback port.
    pub async fn start(_credentials: &TestCredentials, _hub: DeviceHub) -> std::io::Result<Self> {
        Err(std::io::Error::other("the Push Kit v3 emulator is not available in this build"))
    }

    /// Its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its scripted faults and request log.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }
}
