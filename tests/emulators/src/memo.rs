//! Remembers the last credential an emulator verified. Senders reuse one provider token for
//! many requests (they must), so the signature is checked once per token, as the real services
//! do, and the emulator's CPU does not drown the sender's in the benchmarks. Checks that depend
//! on the time stay with the caller and run on every request.

use std::sync::Mutex;

use crate::serve::lock;

/// The claims of the last token whose signature and fixed claims passed.
pub struct VerifiedToken<C> {
    last: Mutex<Option<(String, C)>>,
}

impl<C: Clone> Default for VerifiedToken<C> {
    fn default() -> Self {
        VerifiedToken { last: Mutex::new(None) }
    }
}

impl<C: Clone> VerifiedToken<C> {
    /// The claims of `jwt`: remembered if it is the last token that passed, else what `verify`
    /// says (remembered when it passes).
    pub fn claims<E>(&self, jwt: &str, verify: impl FnOnce() -> Result<C, E>) -> Result<C, E> {
        if let Some((token, claims)) = &*lock(&self.last) {
            if token == jwt {
                return Ok(claims.clone());
            }
        }
        let claims = verify()?;
        *lock(&self.last) = Some((jwt.to_owned(), claims.clone()));
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_each_new_token_once_and_never_remembers_a_refusal() {
        let memo = VerifiedToken::default();
        let calls = std::cell::Cell::new(0);
        let verify = |ok: bool| {
            calls.set(calls.get() + 1);
            if ok {
                Ok(1)
            } else {
                Err("refused")
            }
        };
        assert_eq!(memo.claims("a", || verify(true)), Ok(1));
        assert_eq!(memo.claims("a", || verify(true)), Ok(1));
        assert_eq!(calls.get(), 1);
        assert_eq!(memo.claims("b", || verify(false)), Err("refused"));
        assert_eq!(memo.claims("b", || verify(false)), Err("refused"));
        assert_eq!(calls.get(), 3);
        assert_eq!(memo.claims("a", || verify(true)), Ok(1), "a refusal does not evict");
        assert_eq!(calls.get(), 3);
    }
}
