//! The `herald` binary: settings errors, `migrate`, `keys create`.

use std::process::Command;

use crate::helpers::{Backend, fresh_database, read_reply, test_settings};

fn herald(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(args)
        .env("HERALD_DATABASE__URL", database_url)
        .env_remove("HERALD_ENV")
        .output()
        .expect("run herald")
}

#[test]
fn a_bad_setting_stops_start_up_and_names_the_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env("HERALD_SERVER__PORT", "not-a-port")
        .output()
        .expect("run herald");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.port"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .env("HERALD_DELIVERY__RETRY_SCHEDULE", "5s,soon")
        .output()
        .expect("run herald");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("delivery.retry_schedule"), "{stderr}");
}

async fn migrate_then_create_key(backend: Backend) {
    let Some(db) = fresh_database(backend) else { return };
    let out = herald(&db.url, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count();
    let applied = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(applied.contains(&format!("{all} migration(s) applied")), "{applied}");
    let again = herald(&db.url, &["migrate"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("0 migration(s) applied"));

    let missing = herald(&db.url, &["keys", "create", "--org", "nobody"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no organisation named"));

    // First start creates `default`; the CLI then issues a second key that works.
    let mut settings = test_settings();
    settings.database.url = db.url.clone();
    let app = herald::Application::build(settings).await.unwrap();
    assert!(app.bootstrap_key.is_some());
    let port = app.port();
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());

    let out = herald(&db.url, &["keys", "create", "--org", "default"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.starts_with("hk_"));
    let res = awc::Client::default()
        .get(format!("http://127.0.0.1:{port}/v1/event-types"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read_reply(res).await.status, 200);
    handle.stop(false).await;
}

#[actix_web::test]
async fn migrate_and_keys_create_sqlite() {
    migrate_then_create_key(Backend::Sqlite).await;
}

#[actix_web::test]
async fn migrate_and_keys_create_postgres() {
    migrate_then_create_key(Backend::Postgres).await;
}

#[test]
fn herald_warns_at_start_when_endpoints_would_be_disabled_before_their_retries_end() {
    let Some(db) = fresh_database(Backend::Sqlite) else { return };
    let log_name = format!("herald-warns-{}", std::process::id());
    let mut node = crate::node::Node::start_with(
        &db.url,
        &log_name,
        &[("HERALD_DELIVERY__RETRY_SCHEDULE", "1h,1h"), ("HERALD_DELIVERY__DISABLE_AFTER", "2h")],
    );
    node.kill();
    let log = std::fs::read_to_string(std::env::temp_dir().join(format!("{log_name}.log"))).unwrap();
    assert!(
        log.contains(
            "delivery.disable_after (2h) is not longer than delivery.retry_schedule at its longest (2h 24m)"
        ),
        "{log}"
    );
    // The defaults need no warning.
    let log_name = format!("herald-quiet-{}", std::process::id());
    let mut node = crate::node::Node::start_with(&db.url, &log_name, &[]);
    node.kill();
    let log = std::fs::read_to_string(std::env::temp_dir().join(format!("{log_name}.log"))).unwrap();
    assert!(!log.contains("disable_after"), "{log}");
}
