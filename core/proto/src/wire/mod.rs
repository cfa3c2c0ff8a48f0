//! The wire contract (docs/wire-contract.md): the signed call-push JWT, its encryption to the
//! device's key (wire v2) and the envelope of each provider.
//!
//! Pure functions, no I/O. The server encodes with it and the client decodes with it, so
//! both sides share one implementation. No function here panics on any input.

mod envelope;
mod jwe;
mod jws;
mod keys;

pub use envelope::{
    encode_push, encode_sealed_push, encode_verification, harmony_delivery, missed_call_message_id,
    open_envelope, seal_for, sign_for_sealing, sign_verification_for_sealing, wrap, OpenedPush,
    ProviderPayload, PUSH_KEY,
};
pub use jwe::{
    is_jwe, open as open_sealed, seal, DeviceKey, DeviceSecret, SealRandomness, ALG_ECDH_ES, CRV_X25519,
    ENC_A256GCM,
};
pub use jws::{
    parse_claims, parse_verification, sign, sign_blank, sign_verification, Jws, MAX_JWS_LEN, PAD_CLAIM, TYP,
    VERIFY_EVENT,
};
pub use keys::{public_jwk, thumbprint, CallSigner, KeySet, ALG_EDDSA};
