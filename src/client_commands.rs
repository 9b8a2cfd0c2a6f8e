//! `herald publish`, `herald tail` and `herald listen`: the client library from a shell.

use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use herald_client::webhook::{SignatureScheme, generate_secret, signature_headers};
use herald_client::{Client, Error, NewEvent, StreamEvent, StreamOptions};
use serde_json::Value;

use crate::delivery::retry::{AttemptOutcome, classify};

/// Where herald is and the key to use.
#[derive(Args, Debug)]
pub struct Remote {
    /// herald's address
    #[arg(long, env = "HERALD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An API key of the organisation (hk_…)
    #[arg(long, env = "HERALD_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl Remote {
    fn client(&self) -> Result<Client, String> {
        let key = self.api_key.as_deref().ok_or("no API key: set HERALD_API_KEY or pass --api-key")?;
        Ok(Client::new(&self.url, key))
    }
}

/// `herald publish`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The event type, e.g. order.created
    #[arg(value_name = "TYPE")]
    pub event_type: String,
    /// The event's data, as JSON
    #[arg(value_name = "JSON")]
    pub data: String,
    /// Your id for the event: publishing it again returns the first one
    #[arg(long)]
    pub id: Option<String>,
    /// The Idempotency-Key header (one is generated when absent; every retry repeats it)
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Wait for every delivery's first attempt and print the outcomes
    #[arg(long)]
    pub wait: bool,
}

/// `herald tail`.
#[derive(Args, Debug)]
pub struct TailArgs {
    /// Only these event types, comma-separated; `order.*` matches a prefix
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Start after this sequence number (0: every event herald keeps); default: live only
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
}

/// `herald listen`.
#[derive(Args, Debug)]
pub struct ListenArgs {
    /// The local app's webhook URL, e.g. http://localhost:3000/webhooks
    #[arg(long, value_name = "URL")]
    pub forward_to: String,
    /// Only these event types, comma-separated; `order.*` matches a prefix
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// The Standard Webhooks secret to sign with (whsec_…); one is generated and printed when absent
    #[arg(long)]
    pub secret: Option<String>,
    /// Start after this sequence number; default: live only
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
}

/// Runs a client command on an actix system (awc needs one).
pub fn run(command: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    actix_web::rt::System::new().block_on(command)
}

/// The error's message and, one per line, its issues.
fn describe(error: &Error) -> String {
    match error {
        Error::Api(e) => {
            let mut text = format!("{} ({} {})", e.message, e.status, e.code);
            for issue in &e.issues {
                text.push_str(&format!("\n  {issue}"));
            }
            text
        }
        other => other.to_string(),
    }
}

pub async fn publish(remote: Remote, args: PublishArgs) -> Result<(), String> {
    let client = remote.client()?;
    let data: Value = serde_json::from_str(&args.data).map_err(|e| format!("JSON: not valid JSON ({e})"))?;
    let mut event = NewEvent::new(args.event_type, data);
    event.id = args.id;
    let answer = match (args.wait, args.idempotency_key) {
        (true, key) => client.publish_and_wait_with_key(&event, key).await.map(|a| to_json(&a)),
        (false, Some(key)) => client.publish_with_key(&event, key).await.map(|a| to_json(&a)),
        (false, None) => client.publish(&event).await.map(|a| to_json(&a)),
    };
    println!("{}", answer.map_err(|e| describe(&e))?);
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn stream_options(types: Vec<String>, since: Option<u64>) -> StreamOptions {
    StreamOptions { types, after_seq: since, ..StreamOptions::default() }
}

pub async fn tail(remote: Remote, args: TailArgs) -> Result<(), String> {
    let client = remote.client()?;
    let mut events = client.subscribe(stream_options(args.types, args.since));
    let mut out = std::io::stdout().lock();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| describe(&e))?;
        // A closed pipe (`herald tail | head`) ends the command quietly.
        if writeln!(out, "{}", event.raw).and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

pub async fn listen(remote: Remote, args: ListenArgs) -> Result<(), String> {
    let client = remote.client()?;
    let secret = if let Some(secret) = args.secret {
        secret
    } else {
        let secret = generate_secret();
        println!("Signing with {secret} (Standard Webhooks; pass --secret to choose one)");
        secret
    };
    println!("Forwarding events to {} — Ctrl-C to stop", args.forward_to);
    let forwarder = Forwarder {
        http: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        url: args.forward_to,
        secret,
    };
    let mut events = client.subscribe(stream_options(args.types, args.since));
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| describe(&e))?;
        forwarder.forward(&event).await;
    }
    Ok(())
}

struct Forwarder {
    http: awc::Client,
    url: String,
    secret: String,
}

/// What one try at the local app gave.
enum Outcome {
    Status(u16),
    Failed(String),
}

impl Forwarder {
    /// Sends one event until the local app takes it (2xx) or refuses it for good (another
    /// 4xx); a failing or absent app is retried with backoff, so later events wait their turn.
    async fn forward(&self, event: &StreamEvent) {
        let event_id = event.envelope::<Value>().map(|e| e.id).unwrap_or_default();
        let mut delay = Duration::from_millis(500);
        loop {
            let started = Instant::now();
            let outcome = self.send(&event_id, event).await;
            let ms = started.elapsed().as_millis();
            let line = format!("{} {} [{event_id}]", now_rfc3339(), event.event_type);
            match outcome {
                // As herald's own sender judges an answer: 408, 429 and 5xx are worth another try.
                Outcome::Status(status) if classify(Some(status)) != AttemptOutcome::Retriable => {
                    println!("{line} -> {status} in {ms} ms");
                    let _ = std::io::stdout().flush();
                    return;
                }
                Outcome::Status(status) => eprintln!("{line} -> {status} in {ms} ms; retrying in {delay:?}"),
                Outcome::Failed(why) => eprintln!("{line} -> {why}; retrying in {delay:?}"),
            }
            actix_web::rt::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    async fn send(&self, event_id: &str, event: &StreamEvent) -> Outcome {
        let body = event.raw.clone().into_bytes();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let headers = signature_headers(
            SignatureScheme::StandardWebhooks,
            event_id,
            now.as_secs() as i64,
            &body,
            &[&self.secret],
        );
        let mut request = self.http.post(&self.url).content_type("application/json");
        for header in headers {
            request = request.insert_header(header);
        }
        match request.send_body(body).await {
            Ok(mut response) => {
                // Read the answer so the connection can be reused.
                let _ = response.body().limit(64 * 1024).await;
                Outcome::Status(response.status().as_u16())
            }
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

fn now_rfc3339() -> String {
    crate::timefmt::rfc3339(crate::ids::now_ms())
}
