//! Checking webhook deliveries on the receiving side.
//!
//! Buzzer signs every webhook delivery with the Standard Webhooks scheme: a `webhook-id`, a
//! `webhook-timestamp` (Unix seconds) and a `webhook-signature` holding one or more
//! `v1,<base64 HMAC-SHA256>` of `"{id}.{timestamp}.{body}"`, keyed with the subscription's
//! secret (`whsec_` + base64). [`verify`] checks all three against the raw body, in constant
//! time, and refuses a timestamp outside the tolerance so a captured delivery cannot be
//! replayed later. While a subscription's secret is being rotated, deliveries carry a
//! signature for each secret, so a receiver holding either one accepts them.
//!
//! ```
//! use std::time::Duration;
//! use buzzer::webhooks::{DEFAULT_TOLERANCE, verify};
//!
//! # fn handle(headers: &http::HeaderMap, body: &[u8]) -> Result<(), buzzer::webhooks::VerifyError> {
//! let secret = std::env::var("WEBHOOK_SECRET").unwrap_or_default();
//! // The body exactly as received: parse the JSON only after verifying it.
//! verify(&secret, headers, body, DEFAULT_TOLERANCE)?;
//! let event: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
//! # let _ = event; Ok(()) }
//! ```
//!
//! Deliveries are retried until answered with a 2xx, with the same `webhook-id` each time:
//! keep the ids already handled to drop duplicates.

use std::{collections::HashMap, time::Duration};

use buzzer_types::webhook_signature::{self, SecretError};
use jiff::Timestamp;

/// How far a delivery's timestamp may be from the receiver's clock (5 minutes), either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a delivery was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the webhook-timestamp header is not a Unix time in seconds")]
    InvalidTimestamp,
    #[error("the delivery is {seconds} s old, more than the tolerance allows")]
    TooOld { seconds: i64 },
    #[error(
        "the delivery is timestamped {seconds} s in the future, more than the tolerance allows"
    )]
    TooNew { seconds: i64 },
    #[error(
        "no signature matches: the secret, the body or the headers differ from what was signed"
    )]
    NoMatchingSignature,
    #[error("the secret is unusable: {0}")]
    Secret(#[from] SecretError),
}

/// Where [`verify`] reads the three headers from: an [`http::HeaderMap`] (axum, hyper,
/// reqwest), a list of pairs, or a map; names are matched case-insensitively.
pub trait WebhookHeaders {
    fn header(&self, name: &str) -> Option<&str>;
}

impl WebhookHeaders for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> WebhookHeaders for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> WebhookHeaders for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> WebhookHeaders for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<S: std::hash::BuildHasher> WebhookHeaders for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Checks a delivery: `body` is the request body exactly as received, `secret` the
/// subscription's `whsec_…` secret, `tolerance` how far its timestamp may be from now
/// ([`DEFAULT_TOLERANCE`]). Any one matching `v1` signature accepts it; the comparison takes
/// the same time whatever the bytes.
pub fn verify<H: WebhookHeaders + ?Sized>(
    secret: &str,
    headers: &H,
    body: &[u8],
    tolerance: Duration,
) -> Result<(), VerifyError> {
    verify_at(secret, headers, body, tolerance, Timestamp::now())
}

/// [`verify`] with the receiver's clock given, for tests.
pub fn verify_at<H: WebhookHeaders + ?Sized>(
    secret: &str,
    headers: &H,
    body: &[u8],
    tolerance: Duration,
    now: Timestamp,
) -> Result<(), VerifyError> {
    let id = required(headers, "webhook-id")?;
    let timestamp = required(headers, "webhook-timestamp")?;
    let signatures = required(headers, "webhook-signature")?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::InvalidTimestamp)?;
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let age = now.as_second().saturating_sub(sent);
    if age > tolerance {
        return Err(VerifyError::TooOld { seconds: age });
    }
    if -age > tolerance {
        return Err(VerifyError::TooNew { seconds: -age });
    }
    if webhook_signature::verify(secret, id, timestamp, body, signatures)? {
        Ok(())
    } else {
        Err(VerifyError::NoMatchingSignature)
    }
}

fn required<'h, H: WebhookHeaders + ?Sized>(
    headers: &'h H,
    name: &'static str,
) -> Result<&'h str, VerifyError> {
    headers.header(name).ok_or(VerifyError::MissingHeader(name))
}

#[cfg(test)]
mod tests {
    use buzzer_types::webhook_signature::{encode_secret, signature_header};

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn now() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    fn signed(secrets: &[&str], sent: i64, body: &[u8]) -> Vec<(String, String)> {
        vec![
            ("Webhook-Id".into(), "msg_1".into()),
            ("webhook-timestamp".into(), sent.to_string()),
            (
                "webhook-signature".into(),
                signature_header(secrets, "msg_1", sent, body).unwrap(),
            ),
        ]
    }

    #[test]
    fn a_signed_delivery_verifies_and_a_changed_one_does_not() {
        let secret = encode_secret(&[9; 32]);
        let headers = signed(&[&secret], NOW, br#"{"a":1}"#);
        assert_eq!(
            verify_at(&secret, &headers, br#"{"a":1}"#, DEFAULT_TOLERANCE, now()),
            Ok(())
        );
        assert_eq!(
            verify_at(&secret, &headers, br#"{"a":2}"#, DEFAULT_TOLERANCE, now()),
            Err(VerifyError::NoMatchingSignature)
        );
        let other = encode_secret(&[8; 32]);
        assert_eq!(
            verify_at(&other, &headers, br#"{"a":1}"#, DEFAULT_TOLERANCE, now()),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies() {
        let (old, new) = (encode_secret(&[1; 24]), encode_secret(&[2; 32]));
        let headers = signed(&[&new, &old], NOW, b"{}");
        assert_eq!(headers[2].1.split(' ').count(), 2);
        for secret in [&old, &new] {
            assert_eq!(
                verify_at(secret, &headers, b"{}", DEFAULT_TOLERANCE, now()),
                Ok(())
            );
        }
        let stranger = encode_secret(&[3; 32]);
        assert_eq!(
            verify_at(&stranger, &headers, b"{}", DEFAULT_TOLERANCE, now()),
            Err(VerifyError::NoMatchingSignature)
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let secret = encode_secret(&[9; 32]);
        let tolerance = Duration::from_secs(300);
        let at = |sent| {
            verify_at(
                &secret,
                &signed(&[&secret], sent, b"{}"),
                b"{}",
                tolerance,
                now(),
            )
        };
        assert_eq!(at(NOW - 300), Ok(()));
        assert_eq!(at(NOW + 300), Ok(()));
        assert_eq!(at(NOW - 301), Err(VerifyError::TooOld { seconds: 301 }));
        assert_eq!(at(NOW + 301), Err(VerifyError::TooNew { seconds: 301 }));
    }

    #[test]
    fn missing_or_malformed_headers_are_named() {
        let secret = encode_secret(&[9; 32]);
        let mut headers = signed(&[&secret], NOW, b"{}");
        headers.remove(2);
        assert_eq!(
            verify_at(&secret, &headers, b"{}", DEFAULT_TOLERANCE, now()),
            Err(VerifyError::MissingHeader("webhook-signature"))
        );
        let bad = [
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "yesterday"),
            ("webhook-signature", "v1,AAAA"),
        ];
        assert_eq!(
            verify_at(&secret, &bad, b"{}", DEFAULT_TOLERANCE, now()),
            Err(VerifyError::InvalidTimestamp)
        );
        assert!(matches!(
            verify_at(
                "not-a-secret",
                &signed(&[&secret], NOW, b"{}"),
                b"{}",
                DEFAULT_TOLERANCE,
                now()
            ),
            Err(VerifyError::Secret(_))
        ));
    }

    #[test]
    fn an_http_header_map_works() {
        let secret = encode_secret(&[5; 32]);
        let mut map = http::HeaderMap::new();
        for (k, v) in signed(&[&secret], NOW, b"[]") {
            map.insert(
                http::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        assert_eq!(
            verify_at(&secret, &map, b"[]", DEFAULT_TOLERANCE, now()),
            Ok(())
        );
    }
}
