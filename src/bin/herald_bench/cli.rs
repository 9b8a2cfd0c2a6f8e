//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::herald::Backend;
use crate::load::ClientKind;

pub const USAGE: &str = "\
usage: herald-bench <scenario> [options]
       cargo build --release --bin herald --bin herald-bench
       cargo run --release --bin herald-bench -- all --json bench.json

Starts herald (the release binary next to this one) on 127.0.0.1 with a fresh database,
a webhook receiver and a load generator in this process, runs a bounded scenario, and
prints a table, then one line `JSON {...}` (also written to --json FILE).

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

options:
  --backend sqlite|postgres|both   (default both)
  --pg-url URL          PostgreSQL admin connection; a database herald_bench_<pid> is made
                        and dropped (default $BENCH_PG_URL or postgres://postgres@127.0.0.1/postgres)
  --json FILE           also write the JSON document to FILE
  -n, --events N        events (e2e, fanout, inbound) for the scenarios run
  --limit-events N      requests of the limit scenario
  -c, --concurrency C   requests in flight (connections) of the load generator
  --rate R              events per second (latency, sse)
  --duration S          seconds of offered load (latency, sse)
  --endpoints E         endpoints (fanout; default 50)
  --filtered N          payload filters, for what evaluating them costs a publish: e2e adds
                        N endpoints for its events with a filter no event meets (deliveries
                        stay those of its one endpoint); fanout gives each of its endpoints a
                        filter every event meets (there N only turns this on)
  --fifo                e2e's and fanout's endpoints use ordering fifo (one delivery at a
                        time, in event order): what ordered delivery carries
  --streams K           streams (sse); capped below the open-files limit
  --timeout S           hard limit per scenario, setup excluded (default 120): what was
                        measured by then is reported and the run marked INCOMPLETE
  --client raw|awc      the load generator's HTTP client (default raw)
  --threads T           load generator and SSE client threads (default 1)
  --receiver-workers W  webhook receiver threads (default 1)
  --tls                 webhooks over HTTPS: the receiver serves a built-in test certificate
                        and herald trusts its CA (security.trusted_ca_file); e2e, latency,
                        fanout. limit still uses plain HTTP (the load generator has no TLS)
  --herald PATH         herald binary (default: next to this program)
  --env KEY=VALUE       extra environment for herald, repeatable (HERALD_DATABASE__POOL_SIZE=8)

Exit status: 0 when every scenario completed, 1 when one did not, 2 on a usage error.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "e2e" => Self::E2e,
            "latency" => Self::Latency,
            "fanout" => Self::Fanout,
            "sse" => Self::Sse,
            "inbound" => Self::Inbound,
            "limit" => Self::Limit,
            "all" => Self::All,
            _ => return None,
        })
    }

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

#[derive(Debug)]
pub struct Options {
    pub scenario: Scenario,
    pub backends: Vec<Backend>,
    pub pg_url: String,
    pub json: Option<PathBuf>,
    pub events: Option<u64>,
    pub limit_events: Option<u64>,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub duration: Option<f64>,
    pub endpoints: Option<usize>,
    /// `--filtered N`: payload filters on endpoints (e2e: N more that no event meets;
    /// fanout: one every event meets on each endpoint).
    pub filtered: Option<usize>,
    /// `--fifo`: e2e's and fanout's endpoints deliver in order, one at a time.
    pub fifo: bool,
    pub streams: Option<usize>,
    pub timeout: Duration,
    pub client: ClientKind,
    pub threads: usize,
    pub receiver_workers: usize,
    pub herald: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// The receiver answers webhooks over HTTPS.
    pub tls: bool,
}

pub enum Command {
    Help,
    Run(Box<Options>),
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.replace('_', "").parse().map_err(|_| format!("{flag}: not a number: {value}"))
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(flag: &str, value: &str) -> Result<T, String> {
    let n: T = number(flag, value)?;
    if n > T::default() { Ok(n) } else { Err(format!("{flag} must be positive")) }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut scenario = None;
    let mut backends = None;
    let mut o = Options {
        scenario: Scenario::All,
        backends: Vec::new(),
        pg_url: std::env::var("BENCH_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1/postgres".into()),
        json: None,
        events: None,
        limit_events: None,
        concurrency: None,
        rate: None,
        duration: None,
        endpoints: None,
        filtered: None,
        fifo: false,
        streams: None,
        timeout: Duration::from_secs(120),
        client: ClientKind::Raw,
        threads: 1,
        receiver_workers: 1,
        herald: None,
        env: Vec::new(),
        tls: false,
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if matches!(flag.as_str(), "-h" | "--help" | "help") {
            return Ok(Command::Help);
        }
        if !flag.starts_with('-') {
            if scenario.is_some() {
                return Err(format!("one scenario at a time (got {arg:?} too)"));
            }
            scenario = Some(Scenario::parse(&flag).ok_or_else(|| format!("unknown scenario {flag:?}"))?);
            continue;
        }
        // The flags without a value.
        if flag == "--tls" || flag == "--fifo" {
            if inline.is_some() {
                return Err(format!("{flag} takes no value"));
            }
            if flag == "--tls" {
                o.tls = true;
            } else {
                o.fifo = true;
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        let f = flag.as_str();
        match f {
            "--backend" => {
                backends = Some(match value.as_str() {
                    "sqlite" => vec![Backend::Sqlite],
                    "postgres" | "pg" => vec![Backend::Postgres],
                    "both" => vec![Backend::Sqlite, Backend::Postgres],
                    _ => return Err(format!("--backend: sqlite, postgres or both, not {value:?}")),
                })
            }
            "--pg-url" => o.pg_url = value,
            "--json" => o.json = Some(PathBuf::from(value)),
            "-n" | "--events" => o.events = Some(positive(f, &value)?),
            "--limit-events" => o.limit_events = Some(positive(f, &value)?),
            "-c" | "--concurrency" => o.concurrency = Some(positive(f, &value)?),
            "--rate" => o.rate = Some(positive(f, &value)?),
            "--duration" => o.duration = Some(positive(f, &value)?),
            "--endpoints" => o.endpoints = Some(positive(f, &value)?),
            "--filtered" => o.filtered = Some(positive(f, &value)?),
            "--streams" => o.streams = Some(positive(f, &value)?),
            "--timeout" => o.timeout = Duration::from_secs_f64(positive(f, &value)?),
            "--client" => {
                o.client = match value.as_str() {
                    "raw" => ClientKind::Raw,
                    "awc" => ClientKind::Awc,
                    _ => return Err(format!("--client: raw or awc, not {value:?}")),
                }
            }
            "--threads" => o.threads = positive(f, &value)?,
            "--receiver-workers" => o.receiver_workers = positive(f, &value)?,
            "--herald" => o.herald = Some(PathBuf::from(value)),
            "--env" => {
                let (k, v) = value.split_once('=').ok_or("--env wants KEY=VALUE")?;
                o.env.push((k.to_string(), v.to_string()));
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    o.scenario = scenario.ok_or("which scenario? (e2e, latency, fanout, sse, inbound, limit, all)")?;
    o.backends = backends.unwrap_or_else(|| vec![Backend::Sqlite, Backend::Postgres]);
    Ok(Command::Run(Box::new(o)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(o) => Ok(*o),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn reads_scenario_and_options() {
        let o = run(&["e2e", "--backend", "sqlite", "-n", "1_000", "--env", "A=b=c", "--rate=5"]).unwrap();
        assert_eq!(o.scenario, Scenario::E2e);
        assert_eq!(o.backends, vec![Backend::Sqlite]);
        assert_eq!(o.events, Some(1000));
        assert_eq!(o.rate, Some(5.0));
        assert_eq!(o.env, vec![("A".to_string(), "b=c".to_string())]);
        assert!(run(&["e2e", "-n", "0"]).is_err());
        assert!(run(&["nope"]).is_err());
        assert_eq!(run(&["all"]).unwrap().backends.len(), 2);
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
}
