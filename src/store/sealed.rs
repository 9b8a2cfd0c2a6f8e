//! The secrets the store keeps encrypted (`crate::secrets`): endpoint secrets (current and
//! previous) and header values, source secrets (current and previous). At start every one
//! must open with the configured keys (a node that cannot decrypt what the database holds
//! refuses to start); plaintext left by a version before encryption is sealed then, and
//! `herald secrets reencrypt` moves every value to the first key.

use diesel::prelude::*;

use super::DbConn;
use super::schema::endpoints::dsl as e;
use super::schema::sources::dsl as s;
use crate::secrets::{Cipher, Purpose, SETTING};

/// What a pass over the stored secrets did.
#[derive(Debug, Default)]
pub struct Sealing {
    pub checked: usize,
    pub rewritten: usize,
}

/// The value to write instead of `stored`, if any: plaintext is sealed, and with
/// `reencrypt` a value under another key is sealed again under the first.
fn reseal(
    cipher: &Cipher,
    purpose: Purpose,
    stored: &str,
    reencrypt: bool,
) -> Result<Option<String>, String> {
    if !Cipher::is_sealed(stored) {
        return Ok(Some(cipher.seal(purpose, stored)));
    }
    let plain = cipher.open(purpose, stored).map_err(|e| {
        format!(
            "cannot decrypt the secrets in the database ({e}); set {SETTING} to the keys that encrypted them"
        )
    })?;
    Ok((reencrypt && !cipher.is_current(stored)).then(|| cipher.seal(purpose, &plain)))
}

/// Checks (and, where needed, rewrites) every stored secret. Each rewrite is conditional on
/// the value still being the one read, so a rotation made meanwhile is never undone.
pub fn check_all(conn: &mut DbConn, cipher: &Cipher, reencrypt: bool) -> Result<Sealing, String> {
    let mut done = Sealing::default();
    check_endpoints(conn, cipher, reencrypt, &mut done)?;
    check_sources(conn, cipher, reencrypt, &mut done)?;
    check_stored_answers(conn, cipher, reencrypt, &mut done)?;
    Ok(done)
}

fn db_error(e: diesel::result::Error) -> String {
    e.to_string()
}

/// Endpoints' secrets (current and previous) and header values.
fn check_endpoints(
    conn: &mut DbConn,
    cipher: &Cipher,
    reencrypt: bool,
    done: &mut Sealing,
) -> Result<(), String> {
    let endpoints: Vec<(String, String, Option<String>, String)> = e::endpoints
        .select((e::id, e::secret, e::previous_secret, e::headers))
        .load(conn)
        .map_err(db_error)?;
    for (id, secret, previous, headers) in endpoints {
        done.checked += 1;
        if let Some(new) = reseal(cipher, Purpose::EndpointSecret, &secret, reencrypt)? {
            done.rewritten +=
                diesel::update(e::endpoints.filter(e::id.eq(&id)).filter(e::secret.eq(&secret)))
                    .set(e::secret.eq(new))
                    .execute(conn)
                    .map_err(db_error)?;
        }
        if let Some(previous) = previous
            && let Some(new) = reseal(cipher, Purpose::EndpointSecret, &previous, reencrypt)?
        {
            done.rewritten +=
                diesel::update(e::endpoints.filter(e::id.eq(&id)).filter(e::previous_secret.eq(&previous)))
                    .set(e::previous_secret.eq(new))
                    .execute(conn)
                    .map_err(db_error)?;
        }
        if let Some(new) = reseal(cipher, Purpose::EndpointHeaders, &headers, reencrypt)? {
            done.rewritten +=
                diesel::update(e::endpoints.filter(e::id.eq(&id)).filter(e::headers.eq(&headers)))
                    .set(e::headers.eq(new))
                    .execute(conn)
                    .map_err(db_error)?;
        }
    }
    Ok(())
}

/// Sources' provider secrets (current and previous).
fn check_sources(
    conn: &mut DbConn,
    cipher: &Cipher,
    reencrypt: bool,
    done: &mut Sealing,
) -> Result<(), String> {
    let sources: Vec<(String, String, Option<String>)> =
        s::sources.select((s::id, s::secret, s::previous_secret)).load(conn).map_err(db_error)?;
    for (id, secret, previous) in sources {
        done.checked += 1;
        if let Some(new) = reseal(cipher, Purpose::SourceSecret, &secret, reencrypt)? {
            done.rewritten += diesel::update(s::sources.filter(s::id.eq(&id)).filter(s::secret.eq(&secret)))
                .set(s::secret.eq(new))
                .execute(conn)
                .map_err(db_error)?;
        }
        if let Some(previous) = previous
            && let Some(new) = reseal(cipher, Purpose::SourceSecret, &previous, reencrypt)?
        {
            done.rewritten +=
                diesel::update(s::sources.filter(s::id.eq(&id)).filter(s::previous_secret.eq(&previous)))
                    .set(s::previous_secret.eq(new))
                    .execute(conn)
                    .map_err(db_error)?;
        }
    }
    Ok(())
}

/// Answers kept for idempotent repeats (a create's or a rotation's holds a secret). There
/// may be a day's worth of them: at start only the ones still in plaintext are read (the
/// secrets already prove the keys), all of them when re-encrypting.
fn check_stored_answers(
    conn: &mut DbConn,
    cipher: &Cipher,
    reencrypt: bool,
    done: &mut Sealing,
) -> Result<(), String> {
    use super::schema::idempotency_keys::dsl as i;
    let mut answers = i::idempotency_keys.select((i::org_id, i::idem_key, i::response_body)).into_boxed();
    if !reencrypt {
        answers = answers.filter(i::response_body.not_like(format!("{}%", crate::secrets::PREFIX)));
    }
    let answers: Vec<(String, String, Option<String>)> = answers.load(conn).map_err(db_error)?;
    for (org, key, body) in answers {
        let Some(body) = body else { continue };
        if let Some(new) = reseal(cipher, Purpose::StoredAnswer, &body, reencrypt)? {
            done.rewritten +=
                diesel::update(i::idempotency_keys.find((&org, &key)).filter(i::response_body.eq(&body)))
                    .set(i::response_body.eq(new))
                    .execute(conn)
                    .map_err(db_error)?;
        }
    }
    Ok(())
}
