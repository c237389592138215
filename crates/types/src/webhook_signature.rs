//! The webhook signing scheme (Standard Webhooks, `v1`), shared by the server's dispatcher,
//! which signs, and the Rust library's verifier, which checks.
//!
//! A secret is `whsec_` + base64 of the key bytes. Each delivery carries three headers:
//! `webhook-id` (the delivery's id, the same on every retry), `webhook-timestamp` (Unix seconds
//! of this attempt) and `webhook-signature`: `v1,` + base64 of
//! HMAC-SHA256(key, `"{id}.{timestamp}.{body}"`), several space-separated while a rotated-out
//! secret still signs.
//!
//! ```
//! use buzzer_types::webhook_signature::{sign, verify};
//!
//! let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
//! let body = br#"{"order":42}"#;
//! let header = sign(secret, "0000000000001", 1_700_000_000, body).unwrap();
//! assert!(header.starts_with("v1,"));
//! assert!(verify(secret, "0000000000001", "1700000000", body, &header).unwrap());
//! assert!(!verify(secret, "0000000000002", "1700000000", body, &header).unwrap());
//! ```

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Every secret starts with this.
pub const SECRET_PREFIX: &str = "whsec_";
/// Key sizes a secret given to the API may have, in bytes; generated ones have 32.
pub const SECRET_KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// A secret that is not `whsec_` + base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with {SECRET_PREFIX}")]
    Prefix,
    #[error("the part after {SECRET_PREFIX} must be standard base64")]
    Base64,
    #[error("the key must be {} to {} bytes long", SECRET_KEY_BYTES.start(), SECRET_KEY_BYTES.end())]
    Length,
}

/// The key bytes of a secret (any non-empty length: a receiver checks what it is given).
pub fn secret_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret
        .strip_prefix(SECRET_PREFIX)
        .ok_or(SecretError::Prefix)?;
    let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
    if key.is_empty() {
        return Err(SecretError::Length);
    }
    Ok(key)
}

/// Checks a secret given to the API: `whsec_` + base64 of 24 to 64 bytes.
pub fn validate_secret(secret: &str) -> Result<(), SecretError> {
    let key = secret_key(secret)?;
    if !SECRET_KEY_BYTES.contains(&key.len()) {
        return Err(SecretError::Length);
    }
    Ok(())
}

/// The secret for these key bytes.
pub fn encode_secret(key: &[u8]) -> String {
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One `v1,<base64>` signature of a delivery.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SecretError> {
    let key = secret_key(secret)?;
    let tag = mac(&key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// The `webhook-signature` header: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, SecretError> {
    let signatures = secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(signatures.join(" "))
}

/// Whether any `v1` signature in `header` is the one `secret` makes for this id, timestamp
/// (the header's text, as received) and body. The comparison takes the same time whatever
/// the bytes, so an attacker learns nothing from how long a wrong guess took.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> Result<bool, SecretError> {
    let key = secret_key(secret)?;
    let expected = mac(&key, id, timestamp, body);
    Ok(header.split_whitespace().any(|entry| {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            return false;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            return false;
        };
        // `verify_slice` compares in constant time.
        expected.clone().verify_slice(&tag).is_ok()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_webhooks_example_verifies() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = br#"{"test": 2432232314}"#;
        let header = sign(secret, id, 1614265330, body).unwrap();
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(secret, id, "1614265330", body, &header).unwrap());
        assert!(!verify(secret, id, "1614265331", body, &header).unwrap());
    }

    #[test]
    fn any_of_several_signatures_verifies() {
        let old = encode_secret(&[1; 24]);
        let new = encode_secret(&[2; 32]);
        let header = signature_header(&[&new, &old], "id", 5, b"{}").unwrap();
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&old, "id", "5", b"{}", &header).unwrap());
        assert!(verify(&new, "id", "5", b"{}", &header).unwrap());
        let other = encode_secret(&[3; 24]);
        assert!(!verify(&other, "id", "5", b"{}", &header).unwrap());
        assert!(!verify(&new, "id", "5", b"{}", "v2,abc v1,!!").unwrap());
    }

    #[test]
    fn secrets_are_checked() {
        assert_eq!(validate_secret("nope"), Err(SecretError::Prefix));
        assert_eq!(validate_secret("whsec_***"), Err(SecretError::Base64));
        assert_eq!(
            validate_secret(&encode_secret(&[0; 23])),
            Err(SecretError::Length)
        );
        assert!(validate_secret(&encode_secret(&[0; 24])).is_ok());
        assert_eq!(
            validate_secret(&encode_secret(&[0; 65])),
            Err(SecretError::Length)
        );
    }
}
