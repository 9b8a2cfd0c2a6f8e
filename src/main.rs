//! The `herald` command: `serve` (the default), `migrate`, `keys create --org NAME`,
//! `keys revoke ID`, `keygen`, `secrets reencrypt`.

use std::process::ExitCode;

use herald::api::admin::issue_key;
use herald::store::{Db, orgs};
use herald::{Application, Settings};

const USAGE: &str = "usage: herald [serve]              run the server (the default)
       herald migrate              apply pending database migrations and exit
       herald keys create --org NAME   print a new API key for an organisation
       herald keys revoke ID       revoke an API key (and its dashboard sessions)
       herald keygen               print a new key for security.encryption_keys
       herald secrets reencrypt    encrypt every stored secret under the first key

Settings: config/default.toml < config/$HERALD_ENV.toml < HERALD_* variables
(HERALD_SERVER__PORT=9000, HERALD_DATABASE__URL=postgres://...). RUST_LOG sets log levels.";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        [] | ["serve"] => serve(),
        ["migrate"] => migrate(),
        ["keys", "create", "--org", name] => create_key(name),
        ["keys", "revoke", id] => revoke_key(id),
        ["keygen"] => {
            println!("{}", herald::secrets::generate_key());
            Ok(())
        }
        ["secrets", "reencrypt"] => reencrypt(),
        ["-h"] | ["--help"] | ["help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command: {}\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("herald: {message}");
            ExitCode::FAILURE
        }
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
    let mut conn = db.get().map_err(|e| e.message)?;
    let org = orgs::find_by_name(&mut conn, org_name)
        .map_err(|e| e.message)?
        .ok_or_else(|| format!("no organisation named {org_name:?}"))?;
    let key = issue_key(&mut conn, &org.id).map_err(|e| e.message)?;
    println!("{}", key.key);
    Ok(())
}

fn revoke_key(id: &str) -> Result<(), String> {
    let settings = Settings::load()?;
    let db = Db::connect(&settings.database.url, 1)?;
    db.migrate()?;
    let mut conn = db.get().map_err(|e| e.message)?;
    match herald::store::api_keys::revoke_any(&mut conn, id, herald::ids::now_ms()).map_err(|e| e.message)? {
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
    let mut conn = db.get().map_err(|e| e.message)?;
    let done = herald::store::sealed::check_all(&mut conn, &cipher, true)?;
    println!(
        "{} endpoint and source row(s) checked, {} secret value(s) rewritten under key {}",
        done.checked,
        done.rewritten,
        cipher.key_ids()[0]
    );
    Ok(())
}
