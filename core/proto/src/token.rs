//! Push token rules per platform: what a real token looks like, and its normal form.

use crate::error::TokenError;
use crate::model::Platform;

/// Longest opaque token accepted (FCM tokens are about 160 bytes, Push Kit tokens shorter).
const MAX_OPAQUE_TOKEN: usize = 4096;
/// Shortest opaque token accepted; anything shorter is a placeholder, not a token.
const MIN_OPAQUE_TOKEN: usize = 8;
/// APNs tokens are 32 bytes on devices and longer on simulators; never assume the length.
const MIN_APNS_HEX: usize = 32;
const MAX_APNS_HEX: usize = 512;
/// Longest WNS channel URI accepted.
const MAX_CHANNEL_URI: usize = 2048;
/// The only domain WNS channels live under (docs/providers/wns.md#channel-uris).
const WNS_DOMAIN: &str = "notify.windows.com";

/// Checks `token` against `platform`'s rules and returns its normal form.
///
/// - Push Kit and FCM: opaque; surrounding whitespace removed; 8 to 4096 bytes of base64url,
///   base64 and `:.~` characters.
/// - APNs: hex, lowercased; an even number of digits, 32 to 512 of them.
/// - WNS: an `https` channel URI on `notify.windows.com` or a subdomain, port 443 if any,
///   no credentials; kept as given (channel URIs are opaque and must not be rewritten).
pub fn normalize_token(platform: Platform, token: &str) -> Result<String, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Empty { platform });
    }
    match platform {
        Platform::Harmony | Platform::Fcm => opaque(platform, token),
        Platform::Apns => apns(token),
        Platform::Wns => wns_channel(token).map(|()| token.to_owned()),
    }
}

fn length(platform: Platform, len: usize, min: usize, max: usize) -> Result<(), TokenError> {
    if len > max {
        return Err(TokenError::TooLong { platform, len, max });
    }
    if len < min {
        return Err(TokenError::TooShort { platform, len, min });
    }
    Ok(())
}

fn opaque(platform: Platform, token: &str) -> Result<String, TokenError> {
    length(platform, token.len(), MIN_OPAQUE_TOKEN, MAX_OPAQUE_TOKEN)?;
    if let Some((index, found)) = token.char_indices().find(|&(_, c)| {
        !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | '~' | '+' | '/' | '='))
    }) {
        return Err(TokenError::BadCharacter {
            platform,
            found,
            index,
            expected: "tokens are ASCII letters, digits and -_:.~+/=",
        });
    }
    Ok(token.to_owned())
}

fn apns(token: &str) -> Result<String, TokenError> {
    if token.starts_with('<') || token.contains(' ') {
        return Err(TokenError::DataDescription);
    }
    length(Platform::Apns, token.len(), MIN_APNS_HEX, MAX_APNS_HEX)?;
    if let Some((index, found)) = token.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(TokenError::BadCharacter {
            platform: Platform::Apns,
            found,
            index,
            expected: "APNs tokens are hex digits",
        });
    }
    if !token.len().is_multiple_of(2) {
        return Err(TokenError::OddLength { len: token.len() });
    }
    Ok(token.to_ascii_lowercase())
}

/// `https://<host>[:443]/...` with host `notify.windows.com` or `*.notify.windows.com`.
///
/// Parsed strictly by hand rather than with a URL library so that what is checked is exactly
/// what an HTTP client will connect to: anything a parser could read two ways is refused.
fn wns_channel(uri: &str) -> Result<(), TokenError> {
    length(Platform::Wns, uri.len(), 1, MAX_CHANNEL_URI)?;
    if let Some((index, found)) = uri.char_indices().find(|&(_, c)| !c.is_ascii_graphic()) {
        return Err(TokenError::BadCharacter {
            platform: Platform::Wns,
            found,
            index,
            expected: "channel URIs are printable ASCII without spaces",
        });
    }
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    if !scheme.eq_ignore_ascii_case("https") {
        return Err(TokenError::NotHttps { scheme: scheme.chars().take(16).collect() });
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(TokenError::BadAuthority { detail: "credentials (`@`) are not allowed" });
    }
    if authority.contains('\\') || authority.contains('%') {
        return Err(TokenError::BadAuthority { detail: "escapes and backslashes are not allowed" });
    }
    let host = match authority.rsplit_once(':') {
        Some((host, "443")) => host,
        Some(_) => return Err(TokenError::BadAuthority { detail: "only port 443 is allowed" }),
        None => authority,
    };
    let valid_labels = !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let host_lower = host.to_ascii_lowercase();
    let on_domain = host_lower == WNS_DOMAIN
        || host_lower.strip_suffix(WNS_DOMAIN).is_some_and(|prefix| prefix.ends_with('.'));
    if !valid_labels || !on_domain {
        return Err(TokenError::HostNotAllowed { host: host.chars().take(64).collect() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wns_accepts_notify_windows_com_and_its_subdomains_only() {
        for ok in [
            "https://notify.windows.com/?token=abc",
            "https://wns2-by3p.notify.windows.com/?token=AwYAAABa5cJ3%2f",
            "HTTPS://DM3P.Notify.Windows.com:443/w/?token=x",
            "https://cloud.notify.windows.com",
        ] {
            assert_eq!(normalize_token(Platform::Wns, ok), Ok(ok.to_owned()), "{ok}");
        }
        for bad in [
            "http://notify.windows.com/?token=x",
            "https://notify.windows.com.evil.com/?token=x",
            "https://evilnotify.windows.com/?token=x",
            "https://evil.com/notify.windows.com",
            "https://notify.windows.com@evil.com/",
            "https://evil.com#@notify.windows.com",
            "https://notify.windows.com:8443/",
            "https://notify.windows.com./",
            "https://x..notify.windows.com/",
            "https://evil.com\\.notify.windows.com/",
            "https://notify%2ewindows.com/",
            "notify.windows.com/?token=x",
            "https://",
        ] {
            assert!(normalize_token(Platform::Wns, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn apns_tokens_are_lowercase_hex_of_whole_bytes() {
        let hex = "AB".repeat(32);
        assert_eq!(normalize_token(Platform::Apns, &hex).unwrap(), "ab".repeat(32));
        assert_eq!(normalize_token(Platform::Apns, &"a".repeat(65)), Err(TokenError::OddLength { len: 65 }));
        assert_eq!(normalize_token(Platform::Apns, "<abcd 1234>"), Err(TokenError::DataDescription));
        assert!(matches!(
            normalize_token(Platform::Apns, &"g".repeat(64)),
            Err(TokenError::BadCharacter { index: 0, found: 'g', .. })
        ));
        // Simulator tokens are longer than 32 bytes.
        assert!(normalize_token(Platform::Apns, &"0f".repeat(80)).is_ok());
    }

    #[test]
    fn opaque_tokens_have_sane_length_and_charset() {
        let fcm = "dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx";
        assert_eq!(normalize_token(Platform::Fcm, &format!("  {fcm}\n")).unwrap(), fcm);
        assert_eq!(
            normalize_token(Platform::Harmony, "  "),
            Err(TokenError::Empty { platform: Platform::Harmony })
        );
        assert!(matches!(normalize_token(Platform::Fcm, "short"), Err(TokenError::TooShort { .. })));
        assert!(matches!(normalize_token(Platform::Fcm, &"a".repeat(5000)), Err(TokenError::TooLong { .. })));
        assert!(matches!(
            normalize_token(Platform::Harmony, "MAMzLg aZW12345"),
            Err(TokenError::BadCharacter { found: ' ', index: 6, .. })
        ));
    }
}
