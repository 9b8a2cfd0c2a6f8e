//! The command line (clap).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::herald::Backend;
use crate::load::ClientKind;

const ABOUT: &str = "\
Starts herald (the release binary next to this one) on 127.0.0.1 with a fresh database,
a webhook receiver and a load generator in this process, runs a bounded scenario, and
prints a table, then one line `JSON {...}` (also written to --json FILE).

       cargo build --release --bin herald --bin herald-bench
       cargo run --release --bin herald-bench -- all --json bench.json";

const SCENARIOS: &str = "\
scenarios:
  e2e       N events published at concurrency C to 1 endpoint: events accepted/s,
            deliveries/s, publish-to-receive latency, duplicates    (N 20,000, C 32)
  latency   open loop at a fixed rate, latency from each event's scheduled send time
                                                            (1,000 events/s for 20 s, C 128)
  fanout    1 event type, 50 endpoints, 1,000 events: deliveries/s, completion time
  sse       K streams, events at a fixed rate: latency on the streams, herald's memory
            per stream                                     (K 1,000, 100 events/s for 10 s)
  inbound   Stripe-signed requests to an inbound source: verified requests/s  (N 10,000, C 32)
  limit     the same load generator against the receiver alone: this machine's ceiling for
            the e2e shape                                              (N 100,000, C 32)
  all       limit, then every scenario on every backend; e2e as a ratio of limit

Exit status: 0 when every scenario completed, 1 when one did not, 2 on a usage error.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    E2e,
    Latency,
    Fanout,
    Sse,
    Inbound,
    Limit,
    All,
}

impl Scenario {
    pub const EACH: [Scenario; 5] = [Self::E2e, Self::Latency, Self::Fanout, Self::Sse, Self::Inbound];

    pub fn name(self) -> &'static str {
        match self {
            Self::E2e => "e2e",
            Self::Latency => "latency",
            Self::Fanout => "fanout",
            Self::Sse => "sse",
            Self::Inbound => "inbound",
            Self::Limit => "limit",
            Self::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Sqlite,
    #[value(alias = "pg")]
    Postgres,
    Both,
}

#[derive(Debug, Parser)]
#[command(name = "herald-bench", about = ABOUT, after_help = SCENARIOS)]
pub struct Options {
    /// What to measure (the list below)
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The databases herald runs on, one run each
    #[arg(long = "backend", value_enum, default_value_t = BackendChoice::Both)]
    pub backend: BackendChoice,
    /// PostgreSQL admin connection; a database herald_bench_<pid> is made and dropped
    #[arg(
        long,
        value_name = "URL",
        env = "BENCH_PG_URL",
        default_value = "postgres://postgres@127.0.0.1/postgres"
    )]
    pub pg_url: String,
    /// Also write the JSON document to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Events (e2e, fanout, inbound) for the scenarios run
    #[arg(short = 'n', long, value_name = "N", value_parser = positive::<u64>)]
    pub events: Option<u64>,
    /// Requests of the limit scenario
    #[arg(long, value_name = "N", value_parser = positive::<u64>)]
    pub limit_events: Option<u64>,
    /// Requests in flight (connections) of the load generator
    #[arg(short = 'c', long, value_name = "C", value_parser = positive::<usize>)]
    pub concurrency: Option<usize>,
    /// Events per second (latency, sse)
    #[arg(long, value_name = "R", value_parser = positive::<f64>)]
    pub rate: Option<f64>,
    /// Seconds of offered load (latency, sse)
    #[arg(long, value_name = "S", value_parser = positive::<f64>)]
    pub duration: Option<f64>,
    /// Endpoints (fanout; default 50)
    #[arg(long, value_name = "E", value_parser = positive::<usize>)]
    pub endpoints: Option<usize>,
    /// Payload filters, for what evaluating them costs a publish: e2e adds N endpoints for
    /// its events with a filter no event meets (deliveries stay those of its one endpoint);
    /// fanout gives each of its endpoints a filter every event meets (there N only turns
    /// this on)
    #[arg(long, value_name = "N", value_parser = positive::<usize>, verbatim_doc_comment)]
    pub filtered: Option<usize>,
    /// e2e's and fanout's endpoints use ordering fifo (one delivery at a time, in event
    /// order): what ordered delivery carries
    #[arg(long, verbatim_doc_comment)]
    pub fifo: bool,
    /// Streams (sse); capped below the open-files limit
    #[arg(long, value_name = "K", value_parser = positive::<usize>)]
    pub streams: Option<usize>,
    /// Hard limit per scenario in seconds, setup excluded: what was measured by then is
    /// reported and the run marked INCOMPLETE
    #[arg(long, value_name = "S", default_value = "120", value_parser = seconds, verbatim_doc_comment)]
    pub timeout: Duration,
    /// The load generator's HTTP client
    #[arg(long, value_enum, default_value_t = ClientKind::Raw)]
    pub client: ClientKind,
    /// Load generator and SSE client threads
    #[arg(long, value_name = "T", default_value = "1", value_parser = positive::<usize>)]
    pub threads: usize,
    /// Webhook receiver threads
    #[arg(long, value_name = "W", default_value = "1", value_parser = positive::<usize>)]
    pub receiver_workers: usize,
    /// Webhooks over HTTPS: the receiver serves a built-in test certificate and herald trusts
    /// its CA (security.trusted_ca_file); e2e, latency, fanout. limit still uses plain HTTP
    /// (the load generator has no TLS)
    #[arg(long, verbatim_doc_comment)]
    pub tls: bool,
    /// herald binary (default: next to this program)
    #[arg(long, value_name = "PATH")]
    pub herald: Option<PathBuf>,
    /// Extra environment for herald, repeatable (HERALD_DATABASE__POOL_SIZE=8)
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = key_value)]
    pub env: Vec<(String, String)>,
}

impl Options {
    pub fn backends(&self) -> Vec<Backend> {
        match self.backend {
            BackendChoice::Sqlite => vec![Backend::Sqlite],
            BackendChoice::Postgres => vec![Backend::Postgres],
            BackendChoice::Both => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

/// A number above zero; `_` may group digits (`-n 100_000`).
fn positive<T: FromStr + PartialOrd + Default>(value: &str) -> Result<T, String> {
    let n: T = value.replace('_', "").parse().map_err(|_| format!("not a number: {value}"))?;
    if n > T::default() { Ok(n) } else { Err("must be positive".into()) }
}

fn seconds(value: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(positive(value)?).map_err(|e| e.to_string())
}

fn key_value(value: &str) -> Result<(String, String), String> {
    let (k, v) = value.split_once('=').ok_or("wants KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn run(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("herald-bench").chain(args.iter().copied()))
    }

    #[test]
    fn reads_scenario_and_options() {
        let o = run(&["e2e", "--backend", "sqlite", "-n", "1_000", "--env", "A=b=c", "--rate=5"]).unwrap();
        assert_eq!(o.scenario, Scenario::E2e);
        assert_eq!(o.backends(), vec![Backend::Sqlite]);
        assert_eq!(o.events, Some(1000));
        assert_eq!(o.rate, Some(5.0));
        assert_eq!(o.env, vec![("A".to_string(), "b=c".to_string())]);
        assert_eq!(o.timeout, Duration::from_secs(120));
        assert!(run(&["e2e", "-n", "0"]).is_err());
        assert!(run(&["nope"]).is_err());
        assert!(run(&["e2e", "latency"]).is_err());
        assert!(run(&["e2e", "--env", "A"]).is_err());
        assert!(run(&["e2e", "--timeout", "inf"]).is_err());
        assert_eq!(run(&["all"]).unwrap().backends().len(), 2);
        assert_eq!(run(&["all", "--backend", "pg"]).unwrap().backends(), vec![Backend::Postgres]);
        assert_eq!(run(&["sse", "--timeout", "2.5"]).unwrap().timeout, Duration::from_millis(2500));
        assert_eq!(run(&["sse", "--client", "awc"]).unwrap().client, ClientKind::Awc);
    }

    #[test]
    fn tls_is_a_flag_without_value() {
        assert!(!run(&["fanout"]).unwrap().tls);
        let o = run(&["fanout", "--tls", "--endpoints", "5"]).unwrap();
        assert!(o.tls);
        assert_eq!(o.endpoints, Some(5));
        assert!(run(&["e2e", "--tls"]).unwrap().tls);
        assert!(run(&["e2e", "--fifo"]).unwrap().fifo);
        assert!(!run(&["e2e"]).unwrap().fifo);
        assert!(run(&["e2e", "--fifo=yes"]).is_err());
        assert!(run(&["e2e", "--tls=yes"]).is_err());
    }

    #[test]
    fn filtered_takes_a_count() {
        assert_eq!(run(&["fanout"]).unwrap().filtered, None);
        let o = run(&["e2e", "--filtered", "50"]).unwrap();
        assert_eq!(o.scenario, Scenario::E2e);
        assert_eq!(o.filtered, Some(50));
        assert_eq!(run(&["fanout", "--filtered=50", "--endpoints", "200"]).unwrap().filtered, Some(50));
        assert!(run(&["e2e", "--filtered"]).is_err());
        assert!(run(&["e2e", "--filtered", "0"]).is_err());
        assert!(run(&["e2e", "--filtered", "many"]).is_err());
    }

    #[test]
    fn help_lists_every_scenario_and_option() {
        Options::command().debug_assert();
        let help = Options::command().render_long_help().to_string();
        for scenario in Scenario::EACH.iter().chain(&[Scenario::Limit, Scenario::All]) {
            let listed = format!("\n  {:<10}", scenario.name());
            assert!(help.contains(&listed), "{} is not described in:\n{help}", scenario.name());
        }
        for option in [
            "--backend",
            "--pg-url",
            "--json",
            "-n, --events",
            "--limit-events",
            "-c, --concurrency",
            "--rate",
            "--duration",
            "--endpoints",
            "--filtered",
            "--fifo",
            "--streams",
            "--timeout",
            "--client",
            "--threads",
            "--receiver-workers",
            "--tls",
            "--herald",
            "--env",
        ] {
            assert!(help.contains(option), "{option} missing from:\n{help}");
        }
    }
}
