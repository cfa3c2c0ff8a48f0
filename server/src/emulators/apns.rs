//! The APNs emulator.

use std::net::SocketAddr;

use super::credentials::TestCredentials;
use super::faults::FaultPlan;
use super::hub::DeviceHub;

/// A local APNs.
pub struct ApnsEmulator {
    addr: SocketAddr,
    faults: FaultPlan,
}

impl ApnsEmulator {
    /// Starts on a free loopback port.
    pub async fn start(_credentials: &TestCredentials, _hub: DeviceHub) -> std::io::Result<Self> {
        Err(std::io::Error::other("the APNs emulator is not available in this build"))
    }

    /// The production endpoint (`https://127.0.0.1:<port>`).
    pub fn production_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The sandbox endpoint.
    pub fn sandbox_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The test CA senders must trust, PEM.
    pub fn ca_pem(&self) -> String {
        String::new()
    }

    /// Its scripted faults and request log.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }
}
