//! Cluster announcements on PostgreSQL, sent inside the transaction that makes the change
//! (so they arrive at commit, in commit order) and heard by every node on one dedicated
//! connection:
//! - `herald_events`: the highest seq a publish committed (streams read up to it);
//! - `herald_work`: deliveries were stored for endpoints another node owns (owners claim);
//! - `herald_endpoints`: an endpoint changed (its owner reloads its settings).
//!
//! Notifications only hurry things along: every node also reads periodically, so a lost one
//! delays and never loses.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::DbConn;
use super::StoreError;

pub const CHANNEL: &str = "herald_events";
const WORK: &str = "herald_work";
const ENDPOINTS: &str = "herald_endpoints";
/// diesel's notification iterator never blocks, so the listener polls: every millisecond
/// while notifications came within `BUSY_FOR` (a publish on another node reaches its owner
/// fast), every `IDLE_POLL` when quiet (an idle node costs next to nothing).
const BUSY_POLL: Duration = Duration::from_millis(1);
const IDLE_POLL: Duration = Duration::from_millis(10);
const BUSY_FOR: Duration = Duration::from_millis(250);
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What another transaction announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Committed(i64),
    Work,
    EndpointChanged(String),
}

/// Inside a transaction that changed endpoint `id`: tell every node at commit.
pub fn endpoint_changed(c: &mut DbConn, id: &str) -> Result<(), StoreError> {
    if let DbConn::Pg(pg) = c {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(ENDPOINTS)
            .bind::<diesel::sql_types::Text, _>(id)
            .execute(pg)?;
    }
    Ok(())
}

/// Inside a transaction that stored deliveries this node does not own: wake their owners.
pub fn work_waiting(c: &mut DbConn) -> Result<(), StoreError> {
    if let DbConn::Pg(pg) = c {
        diesel::sql_query(format!("SELECT pg_notify('{WORK}', '')")).execute(pg)?;
    }
    Ok(())
}

fn parse(channel: &str, payload: &str) -> Option<Note> {
    match channel {
        CHANNEL => payload.parse().ok().map(Note::Committed),
        WORK => Some(Note::Work),
        ENDPOINTS => Some(Note::EndpointChanged(payload.to_string())),
        _ => None,
    }
}

/// Calls `on_note` for what other transactions announced (several commits of events are
/// folded into the newest); reconnects by itself.
pub fn spawn_listener(url: String, on_note: impl Fn(Note) + Send + 'static) {
    let run = move || {
        loop {
            let listen = format!("LISTEN {CHANNEL}; LISTEN {WORK}; LISTEN {ENDPOINTS};");
            let mut conn = match PgConnection::establish(&url)
                .map_err(|e| e.to_string())
                .and_then(|mut c| c.batch_execute(&listen).map(|()| c).map_err(|e| e.to_string()))
            {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("cluster listener: cannot listen ({e}); retrying");
                    std::thread::sleep(RECONNECT_AFTER);
                    continue;
                }
            };
            log::debug!("cluster listener: listening");
            let mut last_heard = std::time::Instant::now();
            'poll: loop {
                let (mut newest, mut work, mut changed) = (None, false, Vec::new());
                for note in conn.notifications_iter() {
                    match note.map(|n| parse(&n.channel, &n.payload)) {
                        Ok(Some(Note::Committed(seq))) => newest = newest.max(Some(seq)),
                        Ok(Some(Note::Work)) => work = true,
                        Ok(Some(Note::EndpointChanged(id))) if !changed.contains(&id) => changed.push(id),
                        Ok(_) => {}
                        Err(e) => {
                            log::warn!("cluster listener: connection lost ({e}); reconnecting");
                            break 'poll;
                        }
                    }
                }
                let heard = newest.is_some() || work || !changed.is_empty();
                for id in changed {
                    on_note(Note::EndpointChanged(id));
                }
                if work {
                    on_note(Note::Work);
                }
                if let Some(seq) = newest {
                    on_note(Note::Committed(seq));
                }
                if heard {
                    last_heard = std::time::Instant::now();
                }
                std::thread::sleep(if last_heard.elapsed() < BUSY_FOR { BUSY_POLL } else { IDLE_POLL });
            }
            std::thread::sleep(RECONNECT_AFTER);
        }
    };
    if let Err(e) = std::thread::Builder::new().name("herald-listen".into()).spawn(run) {
        log::error!("cluster listener: cannot start its thread: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_by_channel() {
        assert_eq!(parse(CHANNEL, "42"), Some(Note::Committed(42)));
        assert_eq!(parse(CHANNEL, "x"), None);
        assert_eq!(parse(WORK, ""), Some(Note::Work));
        assert_eq!(parse(ENDPOINTS, "ep_1"), Some(Note::EndpointChanged("ep_1".into())));
        assert_eq!(parse("other", "1"), None);
    }
}
