//! One HTTP attempt: POST the envelope with its headers, no redirects, bounded by the
//! timeout, keeping the first KiB of the answer. Host names are resolved through the SSRF
//! guard, so the address actually connected to is the one checked (no DNS rebinding).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_tls::connect::{Resolve, Resolver};
use actix_web::web::Bytes;
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;

use super::ssrf::UrlPolicy;
use crate::config::Settings;

const RESPONSE_KEEP: usize = 1024;

/// Headers herald sets itself on a webhook (the request's own and every signature scheme's):
/// an endpoint's `headers` may not name them, and a stored one that does is never sent.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "user-agent",
    "host",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-id",
    "x-webhook-timestamp",
    "x-webhook-signature",
];

/// Whether `name` (in any case) is one of the headers herald sets itself.
pub fn is_reserved_header(name: &str) -> bool {
    RESERVED_HEADERS.iter().any(|reserved| reserved.eq_ignore_ascii_case(name))
}

#[derive(Debug, Clone)]
pub struct SendOutcome {
    pub status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub retry_after: Option<String>,
    /// The SSRF guard refused the target: not worth retrying.
    pub refused: bool,
}

impl SendOutcome {
    /// No answer: the attempt failed before or while talking to the endpoint.
    fn failed(error: String, duration_ms: i64) -> Self {
        Self {
            status: None,
            response_body: None,
            error: Some(error),
            duration_ms,
            retry_after: None,
            refused: false,
        }
    }
}

struct GuardedResolver {
    policy: Arc<UrlPolicy>,
}

impl Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let name = host.trim_start_matches('[').trim_end_matches(']').to_string();
            let lookup = name.clone();
            let addrs: Vec<SocketAddr> =
                actix_web::rt::task::spawn_blocking(move || (lookup.as_str(), port).to_socket_addrs())
                    .await
                    .map_err(|e| e.to_string())??
                    .collect();
            let allowed: Vec<SocketAddr> =
                addrs.into_iter().filter(|a| self.policy.check_ip(a.ip()).is_ok()).collect();
            if allowed.is_empty() {
                return Err(format!("{name} resolves to no permitted (public) address").into());
            }
            Ok(allowed)
        })
    }
}

/// A client for webhook delivery: guarded resolver, no redirects, no connection cap (each
/// endpoint actor enforces its own in-flight limit), `delivery.timeout`. HTTPS trusts the
/// webpki roots and the CAs of `security.trusted_ca_file`.
pub fn build_client(policy: Arc<UrlPolicy>, settings: &Settings) -> awc::Client {
    let timeout = settings.delivery.timeout;
    let tcp = actix_tls::connect::Connector::new(Resolver::custom(GuardedResolver { policy })).service();
    let mut connector =
        awc::Connector::new().connector(tcp).timeout(timeout.min(Duration::from_secs(10))).limit(0);
    // Without extra CAs, awc's own default stays in use: exactly what herald always trusted.
    let trusted = &settings.security.trusted_cas;
    if !trusted.is_empty() {
        connector = connector.rustls_0_23(Arc::new(trusted.client_config()));
    }
    awc::Client::builder()
        .connector(connector)
        .timeout(timeout)
        .disable_redirects()
        .add_default_header(("User-Agent", concat!("herald/", env!("CARGO_PKG_VERSION"))))
        .finish()
}

/// What a subscriber sent back, made safe to store: PostgreSQL text cannot hold NUL.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

pub async fn send(
    client: &awc::Client,
    policy: &UrlPolicy,
    url: &str,
    headers: &[(String, String)],
    body: Bytes,
    timeout: Duration,
) -> SendOutcome {
    let started = Instant::now();
    let elapsed = |s: Instant| s.elapsed().as_millis() as i64;
    // Literal addresses never reach the resolver, so they are checked here, on every attempt.
    if let Err(e) = policy.check_url(url) {
        return SendOutcome {
            refused: true,
            ..SendOutcome::failed(format!("refused by the SSRF guard: {e}"), 0)
        };
    }
    let mut req = client.post(url).insert_header(("Content-Type", "application/json"));
    for (name, value) in headers {
        req = req.insert_header((name.as_str(), value.as_str()));
    }
    let exchange = async {
        let mut res = req.send_body(body).await.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut kept = Vec::with_capacity(256);
        while kept.len() < RESPONSE_KEEP {
            match res.next().await {
                Some(Ok(chunk)) => {
                    kept.extend_from_slice(&chunk[..chunk.len().min(RESPONSE_KEEP - kept.len())]);
                }
                _ => break,
            }
        }
        Ok::<_, String>((status, retry_after, storable(&String::from_utf8_lossy(&kept))))
    };
    match actix_web::rt::time::timeout(timeout, exchange).await {
        Ok(Ok((status, retry_after, body))) => SendOutcome {
            status: Some(status),
            response_body: Some(body),
            error: None,
            duration_ms: elapsed(started),
            retry_after,
            refused: false,
        },
        Ok(Err(e)) => SendOutcome::failed(storable(&e), elapsed(started)),
        Err(_) => {
            SendOutcome::failed(format!("timed out after {} ms", timeout.as_millis()), elapsed(started))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_reserved_header;

    #[test]
    fn herald_s_own_headers_are_reserved_in_any_case() {
        for name in ["Content-Type", "host", "Webhook-Signature", "X-WEBHOOK-ID"] {
            assert!(is_reserved_header(name), "{name}");
        }
        for name in ["Authorization", "x-tenant", "webhook-ids"] {
            assert!(!is_reserved_header(name), "{name}");
        }
    }
}
