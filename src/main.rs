//! The `herald` command: the server and its maintenance commands, and the client commands
//! (`publish`, `tail`, `listen`) built on the `herald-client` library.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use herald::client_commands::{self, ListenArgs, PublishArgs, Remote, TailArgs};
use herald::store::{Db, api_keys, orgs};
use herald::{Application, Settings};

const SETTINGS_HELP: &str = "Settings: config/default.toml < config/$HERALD_ENV.toml < HERALD_* variables
(HERALD_SERVER__PORT=9000, HERALD_DATABASE__URL=postgres://...). RUST_LOG sets log levels.
The client commands talk to HERALD_URL (default http://127.0.0.1:8080) with HERALD_API_KEY.";

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "An event broker: signed webhooks, Server-Sent Events, inbound webhooks"
)]
#[command(after_help = SETTINGS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default)
    Serve,
    /// Apply pending database migrations and exit
    Migrate,
    /// Create or revoke API keys, working on the database directly
    #[command(subcommand)]
    Keys(Keys),
    /// Print a new key for security.encryption_keys
    Keygen,
    /// Maintain the secrets stored encrypted
    #[command(subcommand)]
    Secrets(Secrets),
    /// Publish one event and print herald's answer
    Publish {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        args: PublishArgs,
    },
    /// Print events as they are published, one JSON line each, until interrupted
    Tail {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        args: TailArgs,
    },
    /// Forward events to a local app as signed webhooks, in order, one at a time
    Listen {
        #[command(flatten)]
        remote: Remote,
        #[command(flatten)]
        args: ListenArgs,
    },
}

#[derive(Subcommand)]
enum Keys {
    /// Print a new API key for an organisation
    Create(CreateKey),
    /// Revoke an API key (and its dashboard sessions)
    Revoke {
        /// The key's id (key_…)
        id: String,
    },
}

#[derive(Args)]
struct CreateKey {
    /// The organisation's name (the first one is "default")
    #[arg(long)]
    org: String,
}

#[derive(Subcommand)]
enum Secrets {
    /// Encrypt every stored secret under the first of security.encryption_keys
    Reencrypt,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_log_level(&cli)))
        .init();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Migrate => migrate(),
        Command::Keys(Keys::Create(CreateKey { org })) => create_key(&org),
        Command::Keys(Keys::Revoke { id }) => revoke_key(&id),
        Command::Keygen => {
            println!("{}", herald::secrets::generate_key());
            Ok(())
        }
        Command::Secrets(Secrets::Reencrypt) => reencrypt(),
        Command::Publish { remote, args } => client_commands::run(client_commands::publish(remote, args)),
        Command::Tail { remote, args } => client_commands::run(client_commands::tail(remote, args)),
        Command::Listen { remote, args } => client_commands::run(client_commands::listen(remote, args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("herald: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The server logs its requests; the client commands keep stderr for what goes wrong.
fn default_log_level(cli: &Cli) -> &'static str {
    match cli.command {
        Some(Command::Publish { .. } | Command::Tail { .. } | Command::Listen { .. }) => "warn",
        _ => "info",
    }
}
fn serve() -> Result<(), String> {
    let settings = Settings::load()?;
    actix_web::rt::System::new().block_on(async move {
        let host = settings.server.host.clone();
        let app = Application::build(settings).await?;
        if let Some(key) = &app.bootstrap_key {
            println!(
                "First start: created organisation \"default\". Its API key (shown only now):\n\n    {key}\n"
            );
        }
        println!(
            "herald listening on http://{host}:{}  (dashboard: http://{host}:{}/)",
            app.port(),
            app.port()
        );
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn migrate() -> Result<(), String> {
    let settings = Settings::load()?;
    let db = Db::connect(&settings.database.url, 1)?;
    let applied = db.migrate()?;
    println!("{} migration(s) applied", applied.len());
    Ok(())
}

fn create_key(org_name: &str) -> Result<(), String> {
    let settings = Settings::load()?;
    let db = Db::connect(&settings.database.url, 1)?;
    db.migrate()?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let org = orgs::find_by_name(&mut conn, org_name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no organisation named {org_name:?}"))?;
    let key = api_keys::issue(&mut conn, &org.id).map_err(|e| e.to_string())?;
    println!("{}", key.key);
    Ok(())
}

fn revoke_key(id: &str) -> Result<(), String> {
    let settings = Settings::load()?;
    let db = Db::connect(&settings.database.url, 1)?;
    db.migrate()?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    match api_keys::revoke_any(&mut conn, id, herald::ids::now_ms()).map_err(|e| e.to_string())? {
        Some(org) => {
            println!("revoked {id} (organisation {org}); every node refuses it within a second");
            Ok(())
        }
        None => Err(format!("no live API key {id}")),
    }
}

/// Rewrites every stored secret under the first of `security.encryption_keys`, so older
/// keys can then be dropped from the setting.
fn reencrypt() -> Result<(), String> {
    let settings = Settings::load()?;
    let db = Db::connect(&settings.database.url, 1)?;
    db.migrate()?;
    let dir = herald::startup::data_dir(&settings.database.url);
    let cipher = herald::secrets::Cipher::load(settings.security.encryption_keys.expose(), &dir)?;
    let mut conn = db.get().map_err(|e| e.to_string())?;
    let done = herald::store::sealed::check_all(&mut conn, &cipher, true)?;
    println!(
        "{} endpoint and source row(s) checked, {} secret value(s) rewritten under key {}",
        done.checked,
        done.rewritten,
        cipher.key_ids()[0]
    );
    Ok(())
}
