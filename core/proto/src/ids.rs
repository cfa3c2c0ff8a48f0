//! The rules for the ids that travel in URL paths, file names and pushes, each written once: as
//! a check, as words for error messages, and as a pattern for the OpenAPI document.

/// The rule one kind of id follows: 1 to `max_len` bytes of ASCII letters, digits and a few
/// URL- and path-safe punctuation bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRule {
    /// The field the id travels in, for messages: `call_id`.
    pub field: &'static str,
    /// Longest id, bytes.
    pub max_len: usize,
    /// Bytes allowed besides ASCII letters and digits.
    pub punctuation: &'static [u8],
    /// The rule as a regular expression, for the OpenAPI document.
    pub pattern: &'static str,
    /// The rule in words, for messages.
    pub words: &'static str,
}

impl IdRule {
    /// Whether `id` follows the rule.
    pub fn accepts(&self, id: &str) -> bool {
        !id.is_empty()
            && id.len() <= self.max_len
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || self.punctuation.contains(&b))
    }

    /// What to tell whoever sent an id the rule refuses: `call_id must be 1 to 64 bytes of …`.
    pub fn refusal(&self) -> String {
        format!("{} must be {}", self.field, self.words)
    }
}

/// A call's id (`call_id`, claim `cid`).
pub const CALL_ID: IdRule = IdRule {
    field: "call_id",
    max_len: 64,
    punctuation: b"-_.:",
    pattern: "^[A-Za-z0-9._:-]{1,64}$",
    words: "1 to 64 bytes of ASCII letters, digits and -_.:",
};

/// An app installation's id (`installation_id`, claim `iid`).
pub const INSTALLATION_ID: IdRule = IdRule {
    field: "installation_id",
    max_len: 64,
    punctuation: b"-_.",
    pattern: "^[A-Za-z0-9._-]{1,64}$",
    words: "1 to 64 bytes of ASCII letters, digits and -_.",
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern, read by hand: `^[A-Za-z0-9<punctuation>]{1,<max_len>}$`, so the check, the
    /// words and the pattern cannot drift apart.
    #[test]
    fn check_words_and_pattern_say_the_same() {
        for rule in [CALL_ID, INSTALLATION_ID] {
            let class: String =
                rule.pattern.trim_start_matches("^[A-Za-z0-9").split(']').next().unwrap().into();
            let mut punctuation: Vec<u8> = class.bytes().collect();
            let mut expected = rule.punctuation.to_vec();
            punctuation.sort_unstable();
            expected.sort_unstable();
            assert_eq!(punctuation, expected, "{}", rule.field);
            assert!(rule.pattern.ends_with(&format!("]{{1,{}}}$", rule.max_len)), "{}", rule.field);
            let listed: Vec<u8> = rule.words.rsplit(' ').next().unwrap().bytes().collect();
            assert_eq!(listed, rule.punctuation, "{}", rule.field);
            assert!(rule.words.starts_with(&format!("1 to {} bytes", rule.max_len)));
        }
    }

    #[test]
    fn ids_are_checked_byte_by_byte() {
        // (rule, id, accepted)
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        let table = [
            (CALL_ID, "call-1", true),
            (CALL_ID, "a:b.c_d-e", true),
            (CALL_ID, long.as_str(), true),
            (CALL_ID, too_long.as_str(), false),
            (CALL_ID, "", false),
            (CALL_ID, "a/b", false),
            (CALL_ID, "a b", false),
            (CALL_ID, "é", false),
            (INSTALLATION_ID, "3f0e-41.a_b", true),
            (INSTALLATION_ID, "a:b", false),
            (INSTALLATION_ID, "../x", false),
        ];
        for (rule, id, accepted) in table {
            assert_eq!(rule.accepts(id), accepted, "{} {id:?}", rule.field);
        }
        assert_eq!(CALL_ID.refusal(), "call_id must be 1 to 64 bytes of ASCII letters, digits and -_.:");
    }
}
