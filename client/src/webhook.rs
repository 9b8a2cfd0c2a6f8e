//! Webhook signatures: how herald signs the webhooks it sends, and how to check them.
//!
//! herald signs with one of two schemes, chosen per endpoint:
//!
//! - **Standard Webhooks** (the default, <https://www.standardwebhooks.com>): headers
//!   `webhook-id` (the event id, the same on every retry), `webhook-timestamp` (unix seconds)
//!   and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed
//!   with the base64-decoded part of a `whsec_…` secret.
//! - **`hmac-sha256`**: `X-Webhook-Id`, `X-Webhook-Timestamp` and
//!   `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`, keyed with the
//!   secret string's own bytes.
//!
//! During a secret rotation herald sends one signature per secret in force, separated by
//! spaces; a receiver accepts the request when any of them verifies. Every comparison is
//! constant-time. Stripe's and GitHub's formats are here too, for receivers of those.
//!
//! ```
//! use herald_client::webhook::{SignatureScheme, signature_headers, verify_standard_webhooks};
//!
//! let secret = herald_client::webhook::generate_secret();
//! let body = br#"{"id":"evt_1","type":"order.created","data":{}}"#;
//! let headers = signature_headers(SignatureScheme::StandardWebhooks, "evt_1", 1_700_000_000, body, &[&secret]);
//! let get = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str());
//! let checked = verify_standard_webhooks(
//!     &[&secret], get("webhook-id"), get("webhook-timestamp"), get("webhook-signature"),
//!     body, 1_700_000_010, 300,
//! );
//! assert!(checked.is_ok());
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How an endpoint's outgoing requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureScheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`.
    #[default]
    StandardWebhooks,
    /// herald's `hmac-sha256`: `X-Webhook-Id`, `X-Webhook-Timestamp`, `X-Webhook-Signature: sha256=<hex>`.
    HmacSha256,
}

impl SignatureScheme {
    /// The scheme named `standard-webhooks` or `hmac-sha256`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard-webhooks" => Some(Self::StandardWebhooks),
            "hmac-sha256" => Some(Self::HmacSha256),
            _ => None,
        }
    }

    /// The scheme's name, as endpoints' `signature_scheme` field spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard-webhooks",
            Self::HmacSha256 => "hmac-sha256",
        }
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // Secrets and keys made without OS entropy would be guessable; there is no safe fallback.
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

/// A new `whsec_` secret (32 random bytes), usable with any Standard Webhooks library.
pub fn generate_secret() -> String {
    format!("whsec_{}", B64.encode(random_bytes::<32>()))
}

/// The HMAC key of a Standard Webhooks secret. Secrets that are not `whsec_` + base64
/// (for example ones a user chose) are used as raw bytes rather than refused.
pub fn secret_key_bytes(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| B64.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        m.update(part);
    }
    m
}

/// Outgoing signature headers; one signature per secret so receivers keep verifying
/// during a rotation. With no secret the signature header is left out rather than sent empty.
pub fn signature_headers(
    scheme: SignatureScheme,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[&str],
) -> Vec<(&'static str, String)> {
    let ts = timestamp.to_string();
    let (names, signature) = match scheme {
        SignatureScheme::StandardWebhooks => {
            let sigs: Vec<String> = secrets
                .iter()
                .map(|s| {
                    let parts: [&[u8]; 5] = [msg_id.as_bytes(), b".", ts.as_bytes(), b".", body];
                    let tag = mac(&secret_key_bytes(s), &parts).finalize().into_bytes();
                    format!("v1,{}", B64.encode(tag))
                })
                .collect();
            (["webhook-id", "webhook-timestamp", "webhook-signature"], sigs.join(" "))
        }
        SignatureScheme::HmacSha256 => {
            let sigs: Vec<String> = secrets
                .iter()
                .map(|s| {
                    let tag = mac(s.as_bytes(), &[ts.as_bytes(), b".", body]).finalize().into_bytes();
                    format!("sha256={}", hex::encode(tag))
                })
                .collect();
            (["X-Webhook-Id", "X-Webhook-Timestamp", "X-Webhook-Signature"], sigs.join(" "))
        }
    };
    let mut headers = vec![(names[0], msg_id.to_owned()), (names[1], ts)];
    if !secrets.is_empty() {
        headers.push((names[2], signature));
    }
    headers
}

/// Why an inbound request was not accepted.
#[derive(Debug, PartialEq)]
pub enum VerifyError {
    /// The named header is absent or empty.
    MissingHeader(&'static str),
    /// The payload is the complete human-readable reason.
    Malformed(&'static str),
    /// The timestamp is further from now than the tolerance (either way).
    StaleTimestamp,
    /// No signature matches the body under any of the secrets.
    BadSignature,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "missing header {name}"),
            Self::Malformed(reason) => f.write_str(reason),
            Self::StaleTimestamp => f.write_str("timestamp outside the tolerance"),
            Self::BadSignature => f.write_str("no signature matches the body"),
        }
    }
}

impl std::error::Error for VerifyError {}

fn required<'a>(value: Option<&'a str>, name: &'static str) -> Result<&'a str, VerifyError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(VerifyError::MissingHeader(name)),
    }
}

fn fresh(value: &str, now: i64, tolerance_secs: i64, bad: &'static str) -> Result<(), VerifyError> {
    let ts: i64 = value.parse().map_err(|_| VerifyError::Malformed(bad))?;
    // Both directions: a far-future timestamp would otherwise stay replayable for that long.
    if now.abs_diff(ts) > tolerance_secs.max(0) as u64 {
        return Err(VerifyError::StaleTimestamp);
    }
    Ok(())
}

/// Any of `keys` signing `parts` to any of `candidates`. An undecodable candidate is kept
/// as an empty tag so it simply never matches while the others still can.
fn any_signature_matches(
    keys: &[Vec<u8>],
    parts: &[&[u8]],
    candidates: &[Vec<u8>],
) -> Result<(), VerifyError> {
    for key in keys {
        let m = mac(key, parts);
        if candidates.iter().any(|c| m.clone().verify_slice(c).is_ok()) {
            return Ok(());
        }
    }
    Err(VerifyError::BadSignature)
}

fn raw_keys(secrets: &[&str]) -> Vec<Vec<u8>> {
    secrets.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn hex_or_empty(s: &str) -> Vec<u8> {
    hex::decode(s.trim()).unwrap_or_default()
}

/// `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]`; other schemes (v0) are ignored.
pub fn verify_stripe(
    secrets: &[&str],
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let header = required(header, "Stripe-Signature")?;
    let mut t = None;
    let mut sigs = Vec::new();
    for (key, value) in header.split(',').filter_map(|item| item.split_once('=')) {
        match key.trim() {
            "t" => t = Some(value.trim()),
            "v1" => sigs.push(hex_or_empty(value)),
            _ => {}
        }
    }
    let t = t.ok_or(VerifyError::Malformed("Stripe-Signature has no t= timestamp"))?;
    fresh(t, now, tolerance_secs, "Stripe-Signature timestamp is not a number")?;
    if sigs.is_empty() {
        return Err(VerifyError::Malformed("Stripe-Signature has no v1 signature"));
    }
    any_signature_matches(&raw_keys(secrets), &[t.as_bytes(), b".", body], &sigs)
}

/// `X-Hub-Signature-256: sha256=<hex>`. GitHub signs no timestamp, so nothing limits replays here.
pub fn verify_github(secrets: &[&str], header: Option<&str>, body: &[u8]) -> Result<(), VerifyError> {
    let header = required(header, "X-Hub-Signature-256")?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(VerifyError::Malformed("X-Hub-Signature-256 does not start with sha256="))?;
    let sig = hex::decode(hex_sig).map_err(|_| VerifyError::Malformed("X-Hub-Signature-256 is not hex"))?;
    any_signature_matches(&raw_keys(secrets), &[body], &[sig])
}

/// Standard Webhooks: space-separated `v1,<base64>` entries; other versions are ignored.
pub fn verify_standard_webhooks(
    secrets: &[&str],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let id = required(id, "webhook-id")?;
    let timestamp = required(timestamp, "webhook-timestamp")?;
    let signature = required(signature, "webhook-signature")?;
    fresh(timestamp, now, tolerance_secs, "webhook-timestamp is not a number")?;
    let sigs: Vec<Vec<u8>> = signature
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .map(|b64| B64.decode(b64).unwrap_or_default())
        .collect();
    if sigs.is_empty() {
        return Err(VerifyError::Malformed("webhook-signature has no v1 signature"));
    }
    let keys: Vec<Vec<u8>> = secrets.iter().map(|s| secret_key_bytes(s)).collect();
    any_signature_matches(&keys, &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body], &sigs)
}

/// herald's own `hmac-sha256` scheme. The id is required because inbound deduplication
/// keys on it, although this scheme does not sign it.
pub fn verify_hmac_sha256(
    secrets: &[&str],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    required(id, "X-Webhook-Id")?;
    let timestamp = required(timestamp, "X-Webhook-Timestamp")?;
    let signature = required(signature, "X-Webhook-Signature")?;
    fresh(timestamp, now, tolerance_secs, "X-Webhook-Timestamp is not a number")?;
    let sigs: Vec<Vec<u8>> = signature
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter_map(|entry| entry.strip_prefix("sha256="))
        .map(hex_or_empty)
        .collect();
    if sigs.is_empty() {
        return Err(VerifyError::Malformed("X-Webhook-Signature has no sha256= signature"));
    }
    any_signature_matches(&raw_keys(secrets), &[timestamp.as_bytes(), b".", body], &sigs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const TOL: i64 = 300;
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    fn sw(secrets: &[&str], h: &[(&'static str, String)], body: &[u8], now: i64) -> Result<(), VerifyError> {
        let (id, ts, sig) =
            (header(h, "webhook-id"), header(h, "webhook-timestamp"), header(h, "webhook-signature"));
        verify_standard_webhooks(secrets, id, ts, sig, body, now, TOL)
    }

    fn hs(secrets: &[&str], h: &[(&'static str, String)], body: &[u8], now: i64) -> Result<(), VerifyError> {
        let (id, ts, sig) =
            (header(h, "X-Webhook-Id"), header(h, "X-Webhook-Timestamp"), header(h, "X-Webhook-Signature"));
        verify_hmac_sha256(secrets, id, ts, sig, body, now, TOL)
    }

    /// A Stripe header built from herald's hmac-sha256 signature, which covers the same bytes.
    fn stripe_header(secret: &str, ts: i64, body: &[u8]) -> String {
        let h = signature_headers(SignatureScheme::HmacSha256, "x", ts, body, &[secret]);
        format!("t={ts},v1={}", &header(&h, "X-Webhook-Signature").unwrap()["sha256=".len()..])
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in [SignatureScheme::StandardWebhooks, SignatureScheme::HmacSha256] {
            assert_eq!(SignatureScheme::parse(s.as_str()), Some(s));
        }
        assert_eq!(SignatureScheme::parse("HMAC"), None);
        assert_eq!(SignatureScheme::default(), SignatureScheme::StandardWebhooks);
    }

    #[test]
    fn generated_secrets_are_whsec_with_32_random_bytes() {
        let (a, b) = (generate_secret(), generate_secret());
        assert!(a.starts_with("whsec_"));
        assert_eq!(secret_key_bytes(&a).len(), 32);
        assert_ne!(a, b);
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
    }

    #[test]
    fn secret_key_falls_back_to_raw_bytes() {
        assert_eq!(secret_key_bytes("whsec_AAEC"), vec![0, 1, 2]);
        assert_eq!(secret_key_bytes("plain secret"), b"plain secret".to_vec());
        assert_eq!(secret_key_bytes("whsec_not base64!"), b"whsec_not base64!".to_vec());
    }

    #[test]
    fn standard_webhooks_spec_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let (id, ts, body) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        let h = signature_headers(SignatureScheme::StandardWebhooks, id, ts, body, &[secret]);
        assert_eq!(header(&h, "webhook-id"), Some(id));
        assert_eq!(header(&h, "webhook-timestamp"), Some("1614265330"));
        assert_eq!(header(&h, "webhook-signature"), Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
        assert_eq!(sw(&[secret], &h, body, ts + 10), Ok(()));
    }

    #[test]
    fn hmac_sha256_and_stripe_known_vector() {
        // Computed with Python: hmac.new(b"whsec_test_secret", b'1700000000.{"id":"evt_1"}', sha256)
        let expected = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";
        let h = signature_headers(SignatureScheme::HmacSha256, "evt_1", NOW, BODY, &["whsec_test_secret"]);
        assert_eq!(header(&h, "X-Webhook-Signature"), Some(format!("sha256={expected}").as_str()));
        assert_eq!(header(&h, "X-Webhook-Id"), Some("evt_1"));
        let stripe = format!("t={NOW},v0=00,v1={expected}");
        assert_eq!(verify_stripe(&["whsec_test_secret"], Some(&stripe), BODY, NOW, TOL), Ok(()));
    }

    #[test]
    fn github_documented_vector() {
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let secret = "It's a Secret to Everybody";
        assert_eq!(verify_github(&[secret], Some(sig), b"Hello, World!"), Ok(()));
        assert_eq!(verify_github(&[secret], Some(sig), b"Hello, World?"), Err(VerifyError::BadSignature));
        assert_eq!(verify_github(&["other"], Some(sig), b"Hello, World!"), Err(VerifyError::BadSignature));
    }

    #[test]
    fn round_trips_and_rejects_tampering_and_wrong_secrets() {
        let secret = generate_secret();
        let s = [secret.as_str()];
        let h = signature_headers(SignatureScheme::StandardWebhooks, "evt_1", NOW, BODY, &s);
        assert_eq!(sw(&s, &h, BODY, NOW), Ok(()));
        assert_eq!(sw(&s, &h, b"{}", NOW), Err(VerifyError::BadSignature));
        assert_eq!(sw(&[&generate_secret()], &h, BODY, NOW), Err(VerifyError::BadSignature));

        let h = signature_headers(SignatureScheme::HmacSha256, "evt_1", NOW, BODY, &["k1"]);
        assert_eq!(hs(&["k1"], &h, BODY, NOW), Ok(()));
        assert_eq!(hs(&["k1"], &h, b"{}", NOW), Err(VerifyError::BadSignature));
        assert_eq!(hs(&["k2"], &h, BODY, NOW), Err(VerifyError::BadSignature));

        let st = stripe_header("sk", NOW, BODY);
        assert_eq!(verify_stripe(&["sk"], Some(&st), BODY, NOW, TOL), Ok(()));
        assert_eq!(verify_stripe(&["sk"], Some(&st), b"{}", NOW, TOL), Err(VerifyError::BadSignature));
        assert_eq!(verify_stripe(&["nope"], Some(&st), BODY, NOW, TOL), Err(VerifyError::BadSignature));
    }

    #[test]
    fn the_signed_id_and_timestamp_cannot_be_swapped() {
        let h = signature_headers(SignatureScheme::StandardWebhooks, "evt_1", NOW, BODY, &["whsec_AAEC"]);
        let sig = header(&h, "webhook-signature");
        let r =
            verify_standard_webhooks(&["whsec_AAEC"], Some("evt_2"), Some("1700000000"), sig, BODY, NOW, TOL);
        assert_eq!(r, Err(VerifyError::BadSignature));
        let st = stripe_header("sk", NOW, BODY).replace("t=1700000000", "t=1700000001");
        assert_eq!(verify_stripe(&["sk"], Some(&st), BODY, NOW, TOL), Err(VerifyError::BadSignature));
    }

    #[test]
    fn stale_and_future_timestamps() {
        let h = signature_headers(SignatureScheme::StandardWebhooks, "evt_1", NOW, BODY, &["whsec_AAEC"]);
        assert_eq!(sw(&["whsec_AAEC"], &h, BODY, NOW + TOL), Ok(()));
        assert_eq!(sw(&["whsec_AAEC"], &h, BODY, NOW + TOL + 1), Err(VerifyError::StaleTimestamp));
        assert_eq!(sw(&["whsec_AAEC"], &h, BODY, NOW - TOL - 1), Err(VerifyError::StaleTimestamp));
        let h = signature_headers(SignatureScheme::HmacSha256, "evt_1", NOW, BODY, &["k"]);
        assert_eq!(hs(&["k"], &h, BODY, NOW - 301), Err(VerifyError::StaleTimestamp));
        assert_eq!(hs(&["k"], &h, BODY, i64::MIN), Err(VerifyError::StaleTimestamp));
        let st = stripe_header("sk", NOW, BODY);
        assert_eq!(verify_stripe(&["sk"], Some(&st), BODY, NOW + 301, TOL), Err(VerifyError::StaleTimestamp));
        assert_eq!(verify_stripe(&["sk"], Some(&st), BODY, NOW - 301, TOL), Err(VerifyError::StaleTimestamp));
    }

    #[test]
    fn missing_headers_are_named() {
        use VerifyError::MissingHeader;
        assert_eq!(verify_stripe(&["k"], None, BODY, NOW, TOL), Err(MissingHeader("Stripe-Signature")));
        assert_eq!(verify_github(&["k"], Some("  "), BODY), Err(MissingHeader("X-Hub-Signature-256")));
        let r = verify_standard_webhooks(&["k"], None, Some("1"), Some("v1,AA=="), BODY, NOW, TOL);
        assert_eq!(r, Err(MissingHeader("webhook-id")));
        let r = verify_standard_webhooks(&["k"], Some("m"), None, Some("v1,AA=="), BODY, NOW, TOL);
        assert_eq!(r, Err(MissingHeader("webhook-timestamp")));
        let r = verify_standard_webhooks(&["k"], Some("m"), Some("1"), None, BODY, NOW, TOL);
        assert_eq!(r, Err(MissingHeader("webhook-signature")));
        let r = verify_hmac_sha256(&["k"], None, Some("1"), Some("sha256=00"), BODY, NOW, TOL);
        assert_eq!(r, Err(MissingHeader("X-Webhook-Id")));
        let r = verify_hmac_sha256(&["k"], Some("m"), Some(""), Some("sha256=00"), BODY, NOW, TOL);
        assert_eq!(r, Err(MissingHeader("X-Webhook-Timestamp")));
        let r = verify_hmac_sha256(&["k"], Some("m"), Some("1"), None, BODY, NOW, TOL);
        assert_eq!(r, Err(MissingHeader("X-Webhook-Signature")));
    }

    #[test]
    fn malformed_headers() {
        let malformed =
            |r: Result<(), VerifyError>| assert!(matches!(r, Err(VerifyError::Malformed(_))), "{r:?}");
        malformed(verify_stripe(&["k"], Some("v1=00"), BODY, NOW, TOL));
        malformed(verify_stripe(&["k"], Some("t=abc,v1=00"), BODY, NOW, TOL));
        malformed(verify_stripe(&["k"], Some(&format!("t={NOW},v0=00")), BODY, NOW, TOL));
        malformed(verify_github(&["k"], Some("sha1=00"), BODY));
        malformed(verify_github(&["k"], Some("sha256=zz"), BODY));
        let ts = NOW.to_string();
        malformed(verify_standard_webhooks(&["k"], Some("m"), Some("soon"), Some("v1,AA=="), BODY, NOW, TOL));
        malformed(verify_standard_webhooks(&["k"], Some("m"), Some(&ts), Some("v2,AA=="), BODY, NOW, TOL));
        malformed(verify_hmac_sha256(&["k"], Some("m"), Some(&ts), Some("md5=00"), BODY, NOW, TOL));
        // A garbled entry beside a recognised scheme is just a signature that does not match.
        let r = verify_stripe(&["k"], Some(&format!("t={NOW},v1=zz")), BODY, NOW, TOL);
        assert_eq!(r, Err(VerifyError::BadSignature));
    }

    #[test]
    fn rotation_sends_both_and_either_verifies() {
        let (old, new) = (generate_secret(), generate_secret());
        let h = signature_headers(SignatureScheme::StandardWebhooks, "evt_1", NOW, BODY, &[&old, &new]);
        let sig = header(&h, "webhook-signature").unwrap();
        assert_eq!(sig.split(' ').filter(|e| e.starts_with("v1,")).count(), 2);
        assert_eq!(sw(&[&old], &h, BODY, NOW), Ok(()));
        assert_eq!(sw(&[&new], &h, BODY, NOW), Ok(()));
        // Unknown versions beside v1 are skipped, as the spec requires.
        let with_v2 = vec![h[0].clone(), h[1].clone(), ("webhook-signature", format!("v2,xyz {sig}"))];
        assert_eq!(sw(&[&new], &with_v2, BODY, NOW), Ok(()));

        let h = signature_headers(SignatureScheme::HmacSha256, "evt_1", NOW, BODY, &["a", "b"]);
        let sig = header(&h, "X-Webhook-Signature").unwrap();
        assert!(sig.starts_with("sha256=") && sig.contains(" sha256="));
        assert_eq!(hs(&["b"], &h, BODY, NOW), Ok(()));
        // Earlier herald versions joined them with commas; receivers still accept that.
        let commas = vec![h[0].clone(), h[1].clone(), ("X-Webhook-Signature", sig.replace(' ', ","))];
        assert_eq!(hs(&["a"], &commas, BODY, NOW), Ok(()));

        // The receiving side rotates too: one signature, several candidate secrets.
        let st = stripe_header("new", NOW, BODY);
        assert_eq!(verify_stripe(&["old", "new"], Some(&st), BODY, NOW, TOL), Ok(()));
        let two = format!("{st},v1={}", "ab".repeat(32));
        assert_eq!(verify_stripe(&["new"], Some(&two), BODY, NOW, TOL), Ok(()));
        assert_eq!(verify_stripe(&[], Some(&st), BODY, NOW, TOL), Err(VerifyError::BadSignature));
    }

    #[test]
    fn no_secret_means_no_signature_header() {
        let h = signature_headers(SignatureScheme::HmacSha256, "evt_1", NOW, BODY, &[]);
        assert_eq!(h.len(), 2);
        assert_eq!(header(&h, "X-Webhook-Signature"), None);
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            VerifyError::MissingHeader("Stripe-Signature").to_string(),
            "missing header Stripe-Signature"
        );
        assert_eq!(VerifyError::StaleTimestamp.to_string(), "timestamp outside the tolerance");
        assert_eq!(VerifyError::Malformed("x is odd").to_string(), "x is odd");
        assert_eq!(VerifyError::BadSignature.to_string(), "no signature matches the body");
    }
}
