//! The wire contract (docs/wire-contract.md): the signed call-push JWT and the envelope of each provider.
//!
//! Pure functions, no I/O. The server encodes with it and the client decodes with it, so
//! both sides share one implementation. No function here panics on any input.

mod envelope;
mod jws;
mod keys;

pub use envelope::{
    encode_push, encode_verification, harmony_delivery, missed_call_message_id, open_envelope, wrap,
    OpenedPush, ProviderPayload, PUSH_KEY,
};
pub use jws::{
    parse_claims, parse_verification, sign, sign_blank, sign_verification, Jws, MAX_JWS_LEN, TYP,
    VERIFY_EVENT,
};
pub use keys::{public_jwk, thumbprint, CallSigner, KeySet, ALG_EDDSA};
