//! Webhook signatures. The formats live in the client library (`herald_client::webhook`),
//! so herald's signer, its inbound verifier and every user's receiver share one definition.

pub use herald_client::webhook::{
    SignatureScheme, VerifyError, generate_secret, signature_headers, verify_github, verify_hmac_sha256,
    verify_standard_webhooks, verify_stripe,
};

/// How long a rotated-out secret stays in force beside the new one (endpoints' signing
/// secrets and sources' provider secrets alike).
pub const ROTATION_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

/// The secrets in force after a rotation: the current one first, then the previous one
/// until its grace period ends (outgoing signatures and inbound verification alike).
pub fn secrets_in_force<'a>(
    current: &'a str,
    previous: Option<&'a str>,
    until: Option<i64>,
    now: i64,
) -> Vec<&'a str> {
    let mut out = vec![current];
    if let (Some(prev), Some(until)) = (previous, until)
        && until > now
    {
        out.push(prev);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_previous_secret_stays_in_force_until_its_grace_ends() {
        assert_eq!(secrets_in_force("new", Some("old"), Some(100), 99), vec!["new", "old"]);
        assert_eq!(secrets_in_force("new", Some("old"), Some(100), 100), vec!["new"]);
        assert_eq!(secrets_in_force("new", None, None, 0), vec!["new"]);
    }
}
