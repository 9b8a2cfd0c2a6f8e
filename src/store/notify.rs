//! Cluster announcements on PostgreSQL: each publish runs `pg_notify` with the event's seq
//! inside its transaction (delivered at commit, in commit order), and every node listens on
//! one dedicated connection. Notifications only hurry things along: the stream hub also
//! reads periodically, so a lost one delays and never loses.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

pub const CHANNEL: &str = "herald_events";
/// diesel's notification iterator never blocks: poll at this pace.
const POLL: Duration = Duration::from_millis(5);
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Calls `on_seq` for every seq another transaction announced; reconnects by itself.
pub fn spawn_listener(url: String, on_seq: impl Fn(i64) + Send + 'static) {
    let run = move || {
        loop {
            let mut conn = match PgConnection::establish(&url).map_err(|e| e.to_string()).and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|_| c).map_err(|e| e.to_string())
            }) {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("cluster listener: cannot listen ({e}); retrying");
                    std::thread::sleep(RECONNECT_AFTER);
                    continue;
                }
            };
            log::debug!("cluster listener: listening on {CHANNEL}");
            'poll: loop {
                let mut newest = None;
                for note in conn.notifications_iter() {
                    match note {
                        Ok(n) => newest = n.payload.parse::<i64>().ok().max(newest),
                        Err(e) => {
                            log::warn!("cluster listener: connection lost ({e}); reconnecting");
                            break 'poll;
                        }
                    }
                }
                if let Some(seq) = newest {
                    on_seq(seq);
                }
                std::thread::sleep(POLL);
            }
            std::thread::sleep(RECONNECT_AFTER);
        }
    };
    if let Err(e) = std::thread::Builder::new().name("herald-listen".into()).spawn(run) {
        log::error!("cluster listener: cannot start its thread: {e}");
    }
}
