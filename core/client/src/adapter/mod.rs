//! The common contract over the four providers: register, handle and unregister call pushes.
//!
//! [`PushAdapter`] is what the client drives. Each adapter contributes what differs between
//! platforms — token rules, the envelope, what the system call UI must be told — and shares
//! the rest: verification, the stale rule and the outcome.

mod registrar;

use async_trait::async_trait;

pub use callpush_proto::token::normalize_token;
pub use registrar::{InMemoryRegistrar, Registrar};

use crate::error::Error;
use crate::model::{
    ApnsEnvironment, HandleOutcome, IncomingCall, InstallationRequest, Outcome, Platform, PushEvent, RawPush,
    RegisterOptions, Registration, Rejection, RejectionKind, SystemReport, Verification,
};
use crate::wire::{is_jwe, open_envelope, open_sealed, DeviceSecret, Jws, KeySet};
use callpush_proto::registration;

/// What `handle` needs besides the push: the trusted keys, the time, who this device is, and
/// the keys encrypted pushes are sealed to.
#[derive(Debug, Clone, Copy)]
pub struct HandleContext<'a> {
    /// The server keys pushes must be signed with.
    pub keys: &'a KeySet,
    /// Now on the server's clock (device clock corrected by the registration offset), unix s.
    pub now: i64,
    /// The identity this device registered under; a push for anyone else is refused.
    /// `None` skips the check (the `inspect` command knows no identity).
    pub audience: Option<&'a str>,
    /// The installation's device keys (wire v2), newest first; empty when it has none.
    pub device_keys: &'a [DeviceSecret],
    /// Whether an unencrypted (wire v1) push is accepted: until the server has switched the
    /// installation to v2. After that a v1 push is refused as `downgraded`.
    pub accepts_v1: bool,
}

impl<'a> HandleContext<'a> {
    /// A context for wire v1 pushes only: no device key.
    pub fn v1(keys: &'a KeySet, now: i64, audience: Option<&'a str>) -> Self {
        HandleContext { keys, now, audience, device_keys: &[], accepts_v1: true }
    }
}

/// Register, handle and unregister call pushes for one provider.
#[async_trait]
pub trait PushAdapter: Send + Sync {
    /// The provider this adapter speaks for.
    fn platform(&self) -> Platform;

    /// What the app must do with the system call UI for `outcome`, inside the push callback.
    fn report(&self, outcome: Outcome) -> SystemReport;

    /// Validates `token` and `opts` into the request the registrar stores. Synchronous and
    /// pure, so apps and servers can check a token without registering it.
    fn installation(&self, token: &str, opts: &RegisterOptions) -> Result<InstallationRequest, Error> {
        installation_request(self.platform(), token, opts, opts.apns_environment)
    }

    /// Validates and normalises the token, then registers it under the installation id.
    async fn register(
        &self,
        registrar: &dyn Registrar,
        token: &str,
        opts: &RegisterOptions,
    ) -> Result<Registration, Error> {
        let request = self.installation(token, opts)?;
        registrar.put_installation(&request).await
    }

    /// Turns one raw push, exactly as the platform hands it to the app, into an outcome.
    ///
    /// Synchronous: iOS requires the CallKit report inside the PushKit callback, and
    /// HarmonyOS within 10 s. Never fails: a bad push is an outcome (`Rejected`), not an error.
    fn handle(&self, push: &RawPush, ctx: &HandleContext<'_>) -> HandleOutcome {
        self.decide(push, ctx).outcome
    }

    /// [`PushAdapter::handle`], plus what a verify push asks of the client.
    fn decide(&self, push: &RawPush, ctx: &HandleContext<'_>) -> Decision {
        let (outcome, call, error, verify) = decide(self.platform(), push, ctx);
        Decision { outcome: HandleOutcome { outcome, report: self.report(outcome), call, error }, verify }
    }

    /// Withdraws the registration, so its token stops ringing.
    async fn unregister(&self, registrar: &dyn Registrar, reg: &Registration) -> Result<(), Error> {
        registrar.delete_installation(&reg.installation_id).await
    }
}

/// The decision about one push, with the verify request of an authentic verify push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What the push means and what to report.
    pub outcome: HandleOutcome,
    /// For [`Outcome::Verify`]: what to answer.
    pub verify: Option<VerifyRequest>,
}

/// An authentic verify push, as the client answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Its claims.
    pub verification: Verification,
    /// HarmonyOS: the system call id `reportIncomingCallError` needs.
    pub system_call_id: Option<String>,
}

type Decided = (Outcome, Option<IncomingCall>, Option<Rejection>, Option<VerifyRequest>);

/// Decodes, verifies and classifies one push; the platform only changes the envelope.
fn decide(platform: Platform, push: &RawPush, ctx: &HandleContext<'_>) -> Decided {
    let rejected = |call, rejection| (Outcome::Rejected, call, Some(rejection), None);
    let opened = match open_envelope(platform, push) {
        Ok(Some(opened)) => opened,
        Ok(None) => return (Outcome::Ignore, None, None, None),
        Err(rejection) => return rejected(None, rejection),
    };
    // Wire v2: the JWS travels encrypted to this installation's key.
    let sealed = is_jwe(&opened.jws);
    let token = if sealed {
        match open_sealed(&opened.jws, ctx.device_keys) {
            Ok(jws) => jws,
            Err(rejection) => return rejected(None, rejection),
        }
    } else {
        opened.jws
    };
    let jws = match Jws::decode(&token) {
        Ok(jws) => jws,
        Err(rejection) => return rejected(None, rejection),
    };
    let call_of = |invite| IncomingCall::from_invite(invite, opened.system_call_id.clone());
    if !sealed && !ctx.accepts_v1 {
        let rejection = Rejection::new(
            RejectionKind::Downgraded,
            "the push is not encrypted, and the server encrypts every push to this installation",
        );
        return rejected(jws.claims().ok().map(call_of), rejection);
    }
    if let Err(rejection) = jws.verify(ctx.keys) {
        // Shown to help debugging, never acted on: these claims are not authentic.
        return rejected(jws.claims().ok().map(call_of), rejection);
    }
    // A verify push carries no call. Its audience is not checked here: the server checks it
    // when the nonce comes back with the user's token (the device may learn its new user from
    // the registrar after the push arrives).
    match jws.verification() {
        Ok(Some(verification)) => {
            let request = VerifyRequest { verification, system_call_id: opened.system_call_id.clone() };
            return (Outcome::Verify, None, None, Some(request));
        }
        Ok(None) => {}
        Err(rejection) => return rejected(None, rejection),
    }
    let invite = match jws.claims() {
        Ok(invite) => invite,
        Err(rejection) => return rejected(None, rejection),
    };
    if let Some(audience) = ctx.audience {
        if invite.aud != audience {
            let rejection = Rejection::new(
                RejectionKind::WrongAudience,
                "the push is addressed to another user than the one this device registered",
            );
            return rejected(Some(call_of(invite)), rejection);
        }
    }
    let outcome = match invite.evt {
        _ if ctx.now >= invite.exp => Outcome::Stale,
        PushEvent::Ring => Outcome::Ring,
        PushEvent::Cancel => Outcome::Cancel,
    };
    (outcome, Some(call_of(invite)), None, None)
}

fn installation_request(
    platform: Platform,
    token: &str,
    opts: &RegisterOptions,
    apns_environment: Option<ApnsEnvironment>,
) -> Result<InstallationRequest, Error> {
    Ok(registration::installation_request(platform, token, opts, apns_environment)?)
}

/// Huawei Push Kit for HarmonyOS NEXT: push-type 10 in-app call messages.
///
/// Every push that is a call but will not ring (cancel, stale, refused, duplicate) must be
/// answered with `voipCall.reportIncomingCallError` using the system call id.
#[derive(Debug, Clone, Copy, Default)]
pub struct HarmonyAdapter;

#[async_trait]
impl PushAdapter for HarmonyAdapter {
    fn platform(&self) -> Platform {
        Platform::Harmony
    }

    fn report(&self, outcome: Outcome) -> SystemReport {
        match outcome {
            Outcome::Ring => SystemReport::Ring,
            // A verify push arrives as an in-app call message too.
            Outcome::Cancel | Outcome::Stale | Outcome::Rejected | Outcome::Duplicate | Outcome::Verify => {
                SystemReport::ReportError
            }
            Outcome::Ignore => SystemReport::None,
        }
    }
}

/// Firebase Cloud Messaging HTTP v1: high-priority data messages on Android.
#[derive(Debug, Clone, Copy, Default)]
pub struct FcmAdapter;

#[async_trait]
impl PushAdapter for FcmAdapter {
    fn platform(&self) -> Platform {
        Platform::Fcm
    }

    fn report(&self, outcome: Outcome) -> SystemReport {
        ring_or_nothing(outcome)
    }
}

/// APNs VoIP pushes through PushKit on iOS.
///
/// iOS terminates an app that receives a VoIP push and does not report a call to CallKit,
/// so every push that does not ring is reported and ended at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApnsAdapter {
    environment: ApnsEnvironment,
}

impl ApnsAdapter {
    /// An adapter registering tokens for `environment` unless the options name another.
    pub fn new(environment: ApnsEnvironment) -> Self {
        ApnsAdapter { environment }
    }
}

#[async_trait]
impl PushAdapter for ApnsAdapter {
    fn platform(&self) -> Platform {
        Platform::Apns
    }

    fn report(&self, outcome: Outcome) -> SystemReport {
        match outcome {
            Outcome::Ring => SystemReport::Ring,
            _ => SystemReport::ReportAndEnd,
        }
    }

    fn installation(&self, token: &str, opts: &RegisterOptions) -> Result<InstallationRequest, Error> {
        let environment = opts.apns_environment.unwrap_or(self.environment);
        installation_request(Platform::Apns, token, opts, Some(environment))
    }
}

/// Windows Push Notification Services raw notifications.
#[derive(Debug, Clone, Copy, Default)]
pub struct WnsAdapter;

#[async_trait]
impl PushAdapter for WnsAdapter {
    fn platform(&self) -> Platform {
        Platform::Wns
    }

    fn report(&self, outcome: Outcome) -> SystemReport {
        ring_or_nothing(outcome)
    }
}

fn ring_or_nothing(outcome: Outcome) -> SystemReport {
    match outcome {
        Outcome::Ring => SystemReport::Ring,
        _ => SystemReport::None,
    }
}

/// The adapter for `platform`; APNs tokens default to the production environment.
pub fn adapter_for(platform: Platform) -> Box<dyn PushAdapter> {
    match platform {
        Platform::Harmony => Box::new(HarmonyAdapter),
        Platform::Fcm => Box::new(FcmAdapter),
        Platform::Apns => Box::new(ApnsAdapter::default()),
        Platform::Wns => Box::new(WnsAdapter),
    }
}
