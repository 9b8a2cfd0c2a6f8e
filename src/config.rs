//! Layered settings: the compiled-in `config/default.toml` < `config/default.toml` in the
//! working directory < `config/$HERALD_ENV.toml` < `HERALD_*` environment variables
//! (`__` between levels). Values are parsed and checked once here; past this point the
//! rest of herald trusts them. A bad value stops start-up with a message naming it.

use std::time::Duration;

use config::{Config, Environment, File, FileFormat};
use serde::{Deserialize, Deserializer};

use crate::delivery::ssrf::parse_cidr_list;
use crate::delivery::tls::TrustedCas;
use crate::timefmt::parse_duration_list;

/// Only the defaults are compiled in: an environment file (with, say, a test admin token)
/// must be on disk where herald runs, never inside every binary.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// `HERALD_ENV=production` refuses admin tokens shorter than this.
const PRODUCTION_ADMIN_TOKEN_LEN: usize = 32;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub admin_token: Option<Secret>,
    pub limits: LimitSettings,
    pub delivery: DeliverySettings,
    pub security: SecuritySettings,
    pub sse: SseSettings,
    pub inbound: InboundSettings,
    pub retention: RetentionSettings,
    pub metrics: MetricsSettings,
    /// `HERALD_ENV`, when set: `production` adds checks.
    #[serde(skip)]
    pub env_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// HTTP worker threads; unset means one per core.
    #[serde(default)]
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub max_body_bytes: usize,
    pub rate_limit_per_minute: u32,
    /// Endpoints an organisation may have (an admin may set another number per organisation).
    pub max_endpoints: u32,
    /// Streams an organisation may hold open at once on one node.
    pub max_streams: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliverySettings {
    #[serde(deserialize_with = "duration_list")]
    pub retry_schedule: Vec<Duration>,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    pub max_in_flight: u32,
    pub circuit_failure_threshold: u32,
    #[serde(with = "humantime_serde")]
    pub circuit_open_for: Duration,
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// An endpoint actor with nothing to do for this long stops (and starts again on need).
    #[serde(with = "humantime_serde")]
    pub idle_actor_ttl: Duration,
    /// Payload bytes an endpoint actor holds in memory; the rest waits in the store.
    pub queue_bytes: usize,
    /// Threads endpoint actors run on (signing, TLS and HTTP to subscribers); 0: one per core.
    pub arbiters: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SecuritySettings {
    /// Comma-separated base64 keys (32 bytes each) for secrets at rest: the first encrypts,
    /// all decrypt. Empty: a key file `herald.key` in the data directory.
    #[serde(default)]
    pub encryption_keys: Secret,
    pub allow_insecure_urls: bool,
    #[serde(deserialize_with = "cidr_list")]
    pub allowed_networks: Vec<ipnet::IpNet>,
    /// A PEM file of CA certificates HTTPS deliveries trust besides the webpki roots; empty
    /// for none.
    #[serde(default)]
    pub trusted_ca_file: String,
    /// The certificates of `trusted_ca_file`, read when the settings are loaded.
    #[serde(skip)]
    pub trusted_cas: TrustedCas,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SseSettings {
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    pub mailbox: usize,
    /// Bytes of frames a stream may have waiting for its client.
    pub mailbox_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InboundSettings {
    #[serde(with = "humantime_serde")]
    pub tolerance: Duration,
    /// Requests a source accepts per minute (per node); more answer 429.
    pub rate_limit_per_minute: u32,
    /// Rejected requests a source keeps as receipts per minute; the rest are only counted.
    pub rejected_receipts_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Events whose deliveries are all final are purged this long after they were made.
    #[serde(with = "humantime_serde")]
    pub events: Duration,
    #[serde(with = "humantime_serde")]
    pub receipts: Duration,
    /// How often the Janitor runs.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricsSettings {
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<Secret>,
}

/// A secret setting: compared, never printed.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

fn duration_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration_list(&s).map_err(serde::de::Error::custom)
}

fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let s = String::deserialize(d)?;
    parse_cidr_list(&s).map_err(serde::de::Error::custom)
}

impl Settings {
    /// Reads every layer, the environment included.
    pub fn load() -> Result<Self, String> {
        let env_name = std::env::var("HERALD_ENV").ok().filter(|s| !s.is_empty());
        let mut builder = Self::file_layers(env_name.as_deref())?;
        builder = builder.add_source(
            Environment::with_prefix("HERALD").prefix_separator("_").separator("__").try_parsing(true),
        );
        // DESIGN section 8 spells the database variable with one underscore; accept both.
        if std::env::var("HERALD_DATABASE__URL").is_err()
            && let Ok(url) = std::env::var("HERALD_DATABASE_URL")
        {
            builder = builder.set_override("database.url", url).map_err(|e| e.to_string())?;
        }
        Self::finish(builder, env_name.as_deref())
    }

    /// The file layers only, without the process environment: what tests start from.
    pub fn for_env(env_name: Option<&str>) -> Result<Self, String> {
        Self::finish(Self::file_layers(env_name)?, env_name)
    }

    fn file_layers(
        env_name: Option<&str>,
    ) -> Result<config::ConfigBuilder<config::builder::DefaultState>, String> {
        let mut builder = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::new("config/default", FileFormat::Toml).required(false));
        if let Some(name) = env_name {
            let path = format!("config/{name}.toml");
            if std::path::Path::new(&path).exists() {
                builder = builder.add_source(File::new(&path, FileFormat::Toml));
            } else {
                return Err(format!("HERALD_ENV={name}: no file {path}"));
            }
        }
        Ok(builder)
    }

    fn finish(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
        env_name: Option<&str>,
    ) -> Result<Self, String> {
        let mut settings: Settings = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| format!("invalid setting: {e}"))?;
        settings.env_name = env_name.map(str::to_string);
        settings.check()?;
        // Here rather than in `check`: the file is read once, and its certificates kept.
        settings.security.trusted_cas = TrustedCas::load(&settings.security.trusted_ca_file)?;
        Ok(settings)
    }

    /// Settings that work but likely not as meant; logged at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let d = &self.delivery;
        // A retry waits up to 20 % longer than its schedule says.
        let longest = d.retry_schedule.iter().sum::<Duration>().mul_f64(1.2);
        if d.disable_after <= longest {
            out.push(format!(
                "delivery.disable_after ({}) is not longer than delivery.retry_schedule at its longest ({}): \
                 an endpoint may be disabled while its oldest deliveries are still being retried",
                crate::timefmt::human_duration(d.disable_after),
                crate::timefmt::human_duration(longest),
            ));
        }
        out
    }

    fn check(&self) -> Result<(), String> {
        let positive = [
            ("database.pool_size", self.database.pool_size as u64),
            ("limits.max_body_bytes", self.limits.max_body_bytes as u64),
            ("limits.rate_limit_per_minute", self.limits.rate_limit_per_minute as u64),
            ("delivery.max_in_flight", self.delivery.max_in_flight as u64),
            ("delivery.circuit_failure_threshold", self.delivery.circuit_failure_threshold as u64),
            ("sse.mailbox", self.sse.mailbox as u64),
            ("sse.mailbox_bytes", self.sse.mailbox_bytes as u64),
            ("delivery.queue_bytes", self.delivery.queue_bytes as u64),
            ("limits.max_endpoints", self.limits.max_endpoints as u64),
            ("limits.max_streams", self.limits.max_streams as u64),
            ("inbound.rate_limit_per_minute", self.inbound.rate_limit_per_minute as u64),
            ("retention.interval", self.retention.interval.as_millis() as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("invalid setting: {name} must be greater than 0"));
            }
        }
        if self.delivery.timeout.is_zero() {
            return Err("invalid setting: delivery.timeout must be greater than 0".into());
        }
        if let Some(token) = &self.admin_token
            && token.expose().len() < 8
        {
            return Err("invalid setting: admin_token must be at least 8 characters".into());
        }
        crate::store::DatabaseUrl::parse(&self.database.url)?;
        let century = Duration::from_secs(36_500 * 86_400);
        if self.retention.events > century || self.retention.receipts > century {
            return Err(
                "invalid setting: retention.events and retention.receipts must be at most 36500d".into()
            );
        }
        if self.env_name.as_deref() == Some("production") {
            if self.admin_token.as_ref().is_some_and(|t| t.expose().len() < PRODUCTION_ADMIN_TOKEN_LEN) {
                return Err(format!(
                    "invalid setting: with HERALD_ENV=production, admin_token (HERALD_ADMIN_TOKEN) must be at \
                     least {PRODUCTION_ADMIN_TOKEN_LEN} characters"
                ));
            }
            if self.security.allow_insecure_urls {
                return Err("invalid setting: with HERALD_ENV=production, security.allow_insecure_urls \
                            (HERALD_SECURITY__ALLOW_INSECURE_URLS) must be false"
                    .into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let s = Settings::for_env(None).unwrap();
        assert_eq!(s.server.port, 8080);
        assert_eq!(s.delivery.retry_schedule.len(), 15);
        let constant = parse_duration_list(crate::delivery::retry::DEFAULT_SCHEDULE).unwrap();
        assert_eq!(s.delivery.retry_schedule, constant, "default.toml and retry::DEFAULT_SCHEDULE agree");
        let nominal: Duration = s.delivery.retry_schedule.iter().sum();
        assert!(
            nominal.mul_f64(0.8) >= Duration::from_secs(7 * 86_400),
            "at least 7 days at the shortest jitter"
        );
        assert!(s.warnings().is_empty(), "{:?}", s.warnings());
        assert_eq!(s.delivery.retry_schedule[1], Duration::from_secs(300));
        assert!(s.admin_token.is_none());
        assert!(s.security.trusted_ca_file.is_empty() && s.security.trusted_cas.is_empty());
    }

    #[test]
    fn test_env_overrides_defaults() {
        let s = Settings::for_env(Some("test")).unwrap();
        assert_eq!(s.server.port, 0);
        assert_eq!(s.delivery.retry_schedule[0], Duration::from_millis(10));
        assert!(s.security.allow_insecure_urls);
    }

    #[test]
    fn disabling_endpoints_before_their_retries_end_is_warned_about() {
        let mut s = Settings::for_env(None).unwrap();
        s.delivery.disable_after = Duration::from_secs(5 * 86_400);
        let warnings = s.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("delivery.disable_after (5d)") && warnings[0].contains("(10d 23h)"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_bad_duration_names_its_setting() {
        for (key, value, bad) in
            [("delivery.timeout", "soon", "soon"), ("delivery.retry_schedule", "5s,5x", "5x")]
        {
            let builder = Settings::file_layers(None).unwrap().set_override(key, value).unwrap();
            let err = Settings::finish(builder, None).unwrap_err();
            assert!(err.contains(key) && err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn unknown_env_is_an_error() {
        assert!(Settings::for_env(Some("nope")).unwrap_err().contains("HERALD_ENV"));
    }
}
