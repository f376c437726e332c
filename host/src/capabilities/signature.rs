//! `signature.verify`: webhook signatures checked with the group's secret
//! inside the host; the plugin learns only valid or invalid. Only
//! `handle-webhook` calls carry a secret: in any other call, or for a group
//! without one, every signature is invalid.

use super::CallScope;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Slack's replay window: a request timestamp further than this from now is refused.
const SLACK_WINDOW_SECONDS: i64 = 5 * 60;

/// The secret a webhook call may verify with, and the time it was received.
pub struct SigningKey {
    pub secret: Vec<u8>,
    pub now_ms: i64,
}

/// How a sender frames its HMAC-SHA256 signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// Hex digits, with an optional `sha256=` prefix (GitHub).
    HmacSha256Hex,
    HmacSha256Base64,
    /// Slack's `v0=` signature of `v0:<timestamp>:<body>`; the value is the
    /// request timestamp.
    SlackV0(String),
}

/// Check a signature with the call's key: every signature is invalid outside
/// `handle-webhook` or for a group without a secret.
pub fn check(scope: &mut CallScope, scheme: Scheme, payload: Vec<u8>, signature: String) -> bool {
    let valid = scope.signing.as_ref().is_some_and(|key| verify(&scheme, key, &payload, &signature));
    scope.signature_verified |= valid;
    valid
}

/// Whether `signature` is the HMAC-SHA256 of `payload` (as `scheme` frames it)
/// under `key.secret`. Compared in constant time.
pub fn verify(scheme: &Scheme, key: &SigningKey, payload: &[u8], signature: &str) -> bool {
    // An empty secret would make every signature forgeable.
    if key.secret.is_empty() {
        return false;
    }
    let signature = signature.trim();
    let (message, expected) = match scheme {
        Scheme::HmacSha256Hex => {
            let hex_digits = signature.strip_prefix("sha256=").unwrap_or(signature);
            (payload.to_vec(), hex::decode(hex_digits).ok())
        }
        Scheme::HmacSha256Base64 => {
            (payload.to_vec(), base64::engine::general_purpose::STANDARD.decode(signature).ok())
        }
        Scheme::SlackV0(timestamp) => {
            let Ok(seconds) = timestamp.trim().parse::<i64>() else { return false };
            if (key.now_ms / 1000).abs_diff(seconds) > SLACK_WINDOW_SECONDS as u64 {
                return false;
            }
            let framed = [format!("v0:{seconds}:").as_bytes(), payload].concat();
            (framed, signature.strip_prefix("v0=").and_then(|h| hex::decode(h).ok()))
        }
    };
    let Some(expected) = expected else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.secret).expect("HMAC takes a key of any length");
    mac.update(&message);
    mac.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Slack's documented example (api.slack.com/authentication/verifying-requests-from-slack).
    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SLACK_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const SLACK_TIMESTAMP: i64 = 1_531_420_618;

    fn key(secret: &str, now_ms: i64) -> SigningKey {
        SigningKey { secret: secret.as_bytes().to_vec(), now_ms }
    }

    fn hmac_of(secret: &str, payload: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    #[test]
    fn slack_v0_matches_slacks_example_within_five_minutes_only() {
        let slack = |now_s: i64| {
            let scheme = Scheme::SlackV0(SLACK_TIMESTAMP.to_string());
            verify(&scheme, &key(SLACK_SECRET, now_s * 1000), SLACK_BODY.as_bytes(), SLACK_SIGNATURE)
        };
        assert!(slack(SLACK_TIMESTAMP + 10));
        assert!(slack(SLACK_TIMESTAMP - 299), "clocks differ both ways");
        assert!(!slack(SLACK_TIMESTAMP + 301), "a replay after five minutes is refused");
        let tampered = SLACK_BODY.replace("roadrunner", "coyote");
        let scheme = Scheme::SlackV0(SLACK_TIMESTAMP.to_string());
        assert!(!verify(&scheme, &key(SLACK_SECRET, SLACK_TIMESTAMP * 1000), tampered.as_bytes(), SLACK_SIGNATURE));
    }

    #[test]
    fn hex_and_base64_schemes_accept_only_the_right_secret_and_payload() {
        let payload = br#"{"data":{"type":"StepCount"}}"#;
        let mac = hmac_of("whsec", payload);
        let hex_signature = hex::encode(&mac);
        let base64_signature = base64::engine::general_purpose::STANDARD.encode(&mac);
        let right = key("whsec", 0);
        assert!(verify(&Scheme::HmacSha256Hex, &right, payload, &hex_signature));
        assert!(verify(&Scheme::HmacSha256Hex, &right, payload, &format!("sha256={hex_signature}")), "GitHub's prefix");
        assert!(verify(&Scheme::HmacSha256Base64, &right, payload, &base64_signature));
        assert!(!verify(&Scheme::HmacSha256Hex, &key("other", 0), payload, &hex_signature));
        assert!(!verify(&Scheme::HmacSha256Hex, &right, b"{}", &hex_signature));
        assert!(!verify(&Scheme::HmacSha256Hex, &right, payload, "not hex"));
        assert!(!verify(&Scheme::HmacSha256Base64, &right, payload, &hex_signature));
    }
}
