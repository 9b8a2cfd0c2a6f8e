//! The webhook receiver: an actix-web server on its own worker threads that answers 204 at
//! once and records, per delivery, when it arrived and which (endpoint, event) it was, so
//! the bench can count deliveries, duplicates and publish-to-receive latency. With `--tls`
//! it also listens for HTTPS, where the endpoints point; the plain port stays for `limit`,
//! whose load generator speaks no TLS.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::util::{now_us, number_after, span_us};

/// What the receiver counts for the scenario under way.
#[derive(Default)]
pub struct Recorder {
    tally: Mutex<Tally>,
    unique: AtomicU64,
    duplicates: AtomicU64,
    other: AtomicU64,
    /// Deliveries to `/filtered-out/{n}`, the endpoints whose payload filter no event meets
    /// (`--filtered`). Never reset: a scenario compares its count before and after.
    filtered_out: AtomicU64,
}

#[derive(Default)]
struct Tally {
    endpoints: usize,
    events: usize,
    /// Deliveries seen per (endpoint, event index).
    counts: Vec<u16>,
    latencies_us: Vec<u32>,
    first_us: u64,
    last_us: u64,
}

/// What arrived since the last reset.
pub struct Received {
    pub unique: u64,
    pub duplicates: u64,
    /// Publish (or scheduled send) to receive, of each first delivery.
    pub latencies_us: Vec<u32>,
    pub last_us: u64,
}

impl Recorder {
    /// Starts counting for `endpoints` × `events` expected deliveries.
    pub fn reset(&self, endpoints: usize, events: usize) {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        *tally = Tally {
            endpoints,
            events,
            counts: vec![0; endpoints * events],
            latencies_us: Vec::with_capacity(endpoints * events),
            ..Tally::default()
        };
        self.unique.store(0, Ordering::SeqCst);
        self.duplicates.store(0, Ordering::SeqCst);
        self.other.store(0, Ordering::SeqCst);
    }

    pub fn unique(&self) -> u64 {
        self.unique.load(Ordering::Relaxed)
    }

    pub fn other(&self) -> u64 {
        self.other.load(Ordering::Relaxed)
    }

    /// Deliveries to the endpoints no event should reach, since the receiver started.
    pub fn filtered_out(&self) -> u64 {
        self.filtered_out.load(Ordering::SeqCst)
    }

    fn record(&self, endpoint: usize, body: &[u8], now: u64) {
        let (Some(index), Some(sent)) = (number_after(body, br#""i":"#), number_after(body, br#""t":"#))
        else {
            self.other.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let index = index as usize;
        if endpoint >= tally.endpoints || index >= tally.events {
            self.other.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let slot = endpoint * tally.events + index;
        tally.counts[slot] = tally.counts[slot].saturating_add(1);
        if tally.counts[slot] > 1 {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        tally.latencies_us.push(span_us(sent, now));
        if tally.first_us == 0 {
            tally.first_us = now;
        }
        tally.last_us = now;
        self.unique.fetch_add(1, Ordering::Relaxed);
    }

    pub fn take(&self) -> Received {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        Received {
            unique: self.unique.load(Ordering::SeqCst),
            duplicates: self.duplicates.load(Ordering::SeqCst),
            latencies_us: std::mem::take(&mut tally.latencies_us),
            last_us: tally.last_us,
        }
    }
}

async fn hook(recorder: web::Data<Recorder>, endpoint: web::Path<usize>, body: web::Bytes) -> HttpResponse {
    recorder.record(endpoint.into_inner(), &body, now_us());
    HttpResponse::NoContent().finish()
}

/// An endpoint whose filter no event meets: counted apart from every `/hook/{n}`, so the
/// scenario's expected deliveries are untouched and a filter that let an event through shows.
async fn filtered_out_hook(recorder: web::Data<Recorder>) -> HttpResponse {
    recorder.filtered_out.fetch_add(1, Ordering::Relaxed);
    HttpResponse::NoContent().finish()
}

pub struct Receiver {
    /// Plain HTTP.
    pub addr: SocketAddr,
    /// HTTPS, with `--tls`.
    pub tls_addr: Option<SocketAddr>,
    pub recorder: Arc<Recorder>,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Listens on 127.0.0.1 (a free port, and another for HTTPS when `tls`) with its own
    /// `workers` threads; `POST /hook/{n}` is endpoint number n, and `POST /filtered-out/{n}`
    /// an endpoint that should get nothing.
    pub fn start(workers: usize, tls: bool) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let secure = if tls {
            let config = crate::tls::server_config().map_err(io::Error::other)?;
            Some((std::net::TcpListener::bind("127.0.0.1:0")?, config))
        } else {
            None
        };
        let tls_addr = match &secure {
            Some((listener, _)) => Some(listener.local_addr()?),
            None => None,
        };
        let recorder = Arc::new(Recorder::default());
        let data = web::Data::from(recorder.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("bench-receiver".into()).spawn(move || {
            let served = actix_web::rt::System::new().block_on(async move {
                let mut server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/hook/{endpoint}", web::post().to(hook))
                        .route("/filtered-out/{endpoint}", web::post().to(filtered_out_hook))
                })
                .workers(workers.max(1))
                .backlog(4096)
                .keep_alive(Duration::from_secs(120))
                .disable_signals()
                .listen(listener)?;
                if let Some((listener, config)) = secure {
                    server = server.listen_rustls_0_23(listener, config)?;
                }
                let server = server.run();
                let _ = tx.send(server.handle());
                server.await
            });
            if let Err(e) = served {
                eprintln!("herald-bench: the receiver stopped: {e}");
            }
        })?;
        let handle = rx.recv().map_err(|_| io::Error::other("the receiver did not start"))?;
        Ok(Self { addr, tls_addr, recorder, handle, thread: Some(thread) })
    }

    /// Endpoint n's URL: HTTPS with `--tls`.
    pub fn url(&self, endpoint: usize) -> String {
        format!("{}/hook/{endpoint}", self.origin())
    }

    /// The URL of the n-th endpoint whose payload filter no event meets (`--filtered`): not
    /// one of the recorder's endpoints, so it adds nothing to what a scenario expects.
    pub fn filtered_out_url(&self, endpoint: usize) -> String {
        format!("{}/filtered-out/{endpoint}", self.origin())
    }

    fn origin(&self) -> String {
        match self.tls_addr {
            Some(addr) => format!("https://{addr}"),
            None => format!("http://{}", self.addr),
        }
    }

    pub fn stop(mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
