//! Builds the application: store, migrations, first-start bootstrap, HTTP server. Binds its
//! own listener so a test can start the real server on port 0 and learn the port.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};

use crate::actors::Engine;
use crate::actors::inbound::Inbound;
use crate::api;
use crate::config::Settings;
use crate::ids::{new_id, now_ms};
use crate::metrics::Metrics;
use crate::secrets::Cipher;
use crate::state::AppState;
use crate::store::orgs::{self, Org};
use crate::store::{Db, DbConn, StoreError};

/// How long shutdown waits for buffered delivery results to be written.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Application {
    port: u16,
    server: Server,
    /// The key printed on first start, when this start created the `default` organisation.
    pub bootstrap_key: Option<String>,
    pub state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, String> {
        Self::build_with(settings, |_| {}).await
    }

    /// As `build`, with extra routes (the tests add one that panics).
    pub async fn build_with(
        settings: Settings,
        extra_routes: fn(&mut web::ServiceConfig),
    ) -> Result<Self, String> {
        install_crypto_provider();
        for warning in settings.warnings() {
            log::warn!("{warning}");
        }
        let security = &settings.security;
        if !security.trusted_cas.is_empty() {
            log::info!(
                "HTTPS deliveries also trust {} CA certificate(s) from {}",
                security.trusted_cas.len(),
                security.trusted_ca_file
            );
        }
        let settings = Arc::new(settings);
        let db = open_database(&settings).await?;
        let cipher = Arc::new(open_secrets(&settings, &db).await?);
        let (bootstrap_key, committed_seq) = first_start(&db, settings.limits.rate_limit_per_minute).await?;

        let address = (settings.server.host.as_str(), settings.server.port);
        let listener = TcpListener::bind(address).map_err(|e| {
            format!("server.host/server.port: cannot listen on {}:{}: {e}", address.0, address.1)
        })?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();

        let metrics = Arc::new(Metrics::default());
        let engine = Engine::start(db.clone(), settings.clone(), metrics.clone(), cipher, committed_seq);
        let state = web::Data::new(AppState {
            db,
            settings: settings.clone(),
            keys: Default::default(),
            schemas: Default::default(),
            limiter: Default::default(),
            metrics,
            inbound: actix::Actor::start(Inbound::new(engine.clone())),
            engine,
        });
        let server = http_server(state.clone(), &settings, listener, extra_routes)?;
        Ok(Self { port, server, bootstrap_key, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM, or the handle): stops accepting,
    /// lets answers in progress finish, then writes pending results and releases its claims.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (handle, hub) = (self.server.handle(), self.state.engine.hub.clone());
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            log::info!("shutting down: closing streams, finishing answers in progress");
            // Streams never end by themselves; end them first so the server can drain.
            hub.do_send(crate::actors::stream_hub::CloseStreams);
            handle.stop(true).await;
        });
        let result = self.server.await;
        self.state.engine.release_all(SHUTDOWN_DRAIN).await;
        result
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// On first start with an empty database, the `default` organisation and its key (the
/// key is answered, to be printed once); and the highest sequence number committed so far.
async fn first_start(db: &Db, rate_limit: u32) -> Result<(Option<String>, i64), String> {
    let db = db.clone();
    web::block(move || -> Result<(Option<String>, i64), String> {
        let mut conn = db.get().map_err(|e| e.to_string())?;
        let key = bootstrap(&mut conn, rate_limit).map_err(|e| e.to_string())?;
        let seq = crate::store::events::max_seq(&mut conn).map_err(|e| e.to_string())?;
        Ok((key, seq))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The HTTP server on `listener`: every route behind the middleware, started.
fn http_server(
    app_state: web::Data<AppState>,
    settings: &Settings,
    listener: TcpListener,
    extra_routes: fn(&mut web::ServiceConfig),
) -> Result<Server, String> {
    let max_body = settings.limits.max_body_bytes;
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(from_fn(api::idempotency::guard))
            .wrap(api::middleware::panic_reporter())
            .wrap(actix_web_lab::middleware::CatchPanic::default())
            .wrap(from_fn(api::middleware::outer))
            .configure(api::configure)
            .configure(extra_routes)
            .default_service(web::to(api::not_found))
    })
    // Streams cut off a client that does not read by shutting its socket down.
    .on_connect(|conn, data| {
        use std::os::fd::AsRawFd;
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            data.insert(crate::actors::stream_actor::ConnSocket(tcp.as_raw_fd()));
        }
    })
    .listen(listener)
    .map_err(|e| e.to_string())?
    // Signals are handled in `run_until_stopped`, which closes streams before draining.
    .disable_signals()
    // A connection's write buffer starts at 8 KiB; streams hand over at most
    // `stream_actor::MAX_WRITE` at a time, so at this limit it never grows, and thousands
    // of open streams stay at their first allocation.
    .h1_write_buffer_size(crate::actors::stream_actor::MAX_WRITE)
    // A client that hangs up ends its request's work at once (an idempotency key it
    // held is released, a `?wait=true` waiter removed) instead of when the answer is
    // finally written to nobody.
    .h1_allow_half_closed(false)
    .shutdown_timeout(SHUTDOWN_DRAIN.as_secs());
    if let Some(workers) = settings.server.workers {
        server = server.workers(workers.max(1));
    }
    Ok(server.run())
}

/// The node's keys for secrets at rest, checked against what the database holds (a node
/// that cannot decrypt it refuses to start); plaintext from before encryption is sealed.
async fn open_secrets(settings: &Settings, db: &Db) -> Result<Cipher, String> {
    let configured = settings.security.encryption_keys.expose().to_string();
    let dir = data_dir(&settings.database.url);
    let db = db.clone();
    web::block(move || {
        let cipher = Cipher::load(&configured, &dir)?;
        let mut conn = db.get().map_err(|e| e.to_string())?;
        let done = crate::store::sealed::check_all(&mut conn, &cipher, false)?;
        if done.rewritten > 0 {
            log::info!("encrypted {} stored secret(s) that were kept as plaintext", done.rewritten);
            // SQLite keeps old page versions in its free pages and write-ahead log: rewrite
            // the file and empty the log, so the plaintext is gone from disk too.
            if let crate::store::DbConn::Sqlite(_) = &mut *conn {
                use diesel::connection::SimpleConnection;
                conn.batch_execute(
                    "PRAGMA wal_checkpoint(TRUNCATE); VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
                )
                .map_err(|e| format!("compacting the database after encrypting its secrets: {e}"))?;
            }
        }
        Ok::<_, String>(cipher)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Where herald keeps its files: beside the SQLite database, or `./data` for PostgreSQL.
pub fn data_dir(database_url: &str) -> std::path::PathBuf {
    match crate::store::DatabaseUrl::parse(database_url) {
        Ok(url) if url.backend == crate::store::Backend::Sqlite => std::path::Path::new(&url.target)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| std::path::PathBuf::from("."), std::path::Path::to_path_buf),
        _ => std::path::PathBuf::from("./data"),
    }
}

/// Connects and migrates, off the async thread.
pub async fn open_database(settings: &Settings) -> Result<Db, String> {
    let (url, size) = (settings.database.url.clone(), settings.database.pool_size);
    web::block(move || {
        let db = Db::connect(&url, size)?;
        let applied = db.migrate()?;
        for m in applied {
            log::info!("applied migration {m}");
        }
        Ok::<_, String>(db)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// On first start with an empty database, creates organisation `default` and one key.
fn bootstrap(conn: &mut DbConn, rate_limit: u32) -> Result<Option<String>, StoreError> {
    if orgs::count(conn)? > 0 {
        return Ok(None);
    }
    let org = Org::new(new_id("org"), "default".into(), rate_limit as i32, now_ms());
    match orgs::insert(conn, &org) {
        Ok(()) => {}
        // Another node starting at the same moment won the race.
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    Ok(Some(crate::store::api_keys::issue(conn, &org.id)?.key))
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use actix_web::rt::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = actix_web::rt::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            log::warn!("cannot listen for SIGTERM ({e}); Ctrl-C only");
            let _ = actix_web::rt::signal::ctrl_c().await;
        }
    }
}

/// awc's TLS needs a process-wide crypto provider chosen explicitly.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
