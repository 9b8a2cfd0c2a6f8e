//! A fast webhook receiver for measuring herald by hand: answers 200 to every POST and
//! prints how many arrived each second. `cargo run --release --example receiver -- 9100`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(9100);
    let count = Arc::new(AtomicU64::new(0));
    let reporter = count.clone();
    std::thread::spawn(move || {
        let mut last = 0;
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = reporter.load(Ordering::Relaxed);
            if now != last {
                println!("received {now} total, {}/s", now - last);
            }
            last = now;
        }
    });
    let data = web::Data::new(count);
    HttpServer::new(move || {
        App::new().app_data(data.clone()).default_service(web::to(
            |c: web::Data<Arc<AtomicU64>>| async move {
                c.fetch_add(1, Ordering::Relaxed);
                HttpResponse::Ok().body("ok")
            },
        ))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
