//! The `herald` command: `serve` (the default), `migrate`, `keys create --org NAME`.

use std::process::ExitCode;

use herald::api::admin::issue_key;
use herald::store::{Db, orgs};
use herald::{Application, Settings};

const USAGE: &str = "usage: herald [serve]              run the server (the default)
       herald migrate              apply pending database migrations and exit
       herald keys create --org NAME   print a new API key for an organisation

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
