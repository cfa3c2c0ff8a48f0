//! The WNS emulator.

use std::net::SocketAddr;

use super::credentials::TestCredentials;
use super::faults::FaultPlan;
use super::hub::DeviceHub;

/// A local WNS.
pub struct WnsEmulator {
    addr: SocketAddr,
    faults: FaultPlan,
}

impl WnsEmulator {
    /// Starts on a free loopback port.
    pub async fn start(_credentials: &TestCredentials, _hub: DeviceHub) -> std::io::Result<Self> {
        Err(std::io::Error::other("the WNS emulator is not available in this build"))
    }

    /// The origin channel URIs are sent to (`endpoint_override`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The classic (login.live.com) token endpoint.
    pub fn live_token_url(&self) -> String {
        format!("http://{}/accesstoken.srf", self.addr)
    }

    /// The Entra ID token endpoint of `tenant`.
    pub fn entra_token_url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}/oauth2/v2.0/token", self.addr)
    }

    /// Its scripted faults and request log.
    pub fn faults(&self) -> &FaultPlan {
        &self.faults
    }
}
