//! Dashboard sign-in: an API key is exchanged for an HttpOnly, SameSite=Strict cookie, so
//! the page never keeps the key. The cookie then authenticates API calls and the stream.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieAge};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_web_lab::header::{ClearSiteData, ClearSiteDataDirective};
use serde::Deserialize;
use serde_json::json;

use crate::api::auth::{SESSION_COOKIE, cookie_session, resolve_key};
use crate::api::json::Json;
use crate::error::ApiError;
use crate::ids::{now_ms, secret_token, sha256_hex};
use crate::state::AppState;
use crate::store::sessions;
use crate::timefmt::rfc3339;

/// How long a sign-in lasts.
const SESSION_TTL_MS: i64 = 12 * 60 * 60 * 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    key: String,
}

fn cookie(req: &HttpRequest, value: String, max_age_secs: i64) -> Cookie<'static> {
    let mut c = Cookie::build(SESSION_COOKIE, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(CookieAge::seconds(max_age_secs))
        .finish();
    // Behind plain HTTP (a laptop, a test) a Secure cookie would never come back.
    if req.connection_info().scheme() == "https" {
        c.set_secure(true);
    }
    c
}

fn session_view(org_id: &str, expires_at: i64) -> serde_json::Value {
    json!({"org_id": org_id, "expires_at": rfc3339(expires_at)})
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<NewSession>,
) -> Result<HttpResponse, ApiError> {
    let owner = resolve_key(&state, body.0.key.trim())
        .await?
        .ok_or_else(|| ApiError::unauthorized("Invalid API key"))?;
    let token = secret_token::<32>("hs");
    let (now, hash) = (now_ms(), sha256_hex(token.as_bytes()));
    let expires_at = now + SESSION_TTL_MS;
    let stored = owner.clone();
    state.db.run(move |conn| sessions::insert(conn, &hash, &stored, now, expires_at)).await?;
    Ok(HttpResponse::Created()
        .cookie(cookie(&req, token, SESSION_TTL_MS / 1000))
        .json(session_view(&owner.org_id, expires_at)))
}

/// The session the cookie stands for, so a page can tell whether it is signed in.
pub async fn current(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let found = cookie_session(&req, &state).await?;
    let (owner, expires_at) = found.ok_or_else(|| ApiError::unauthorized("Not signed in"))?;
    Ok(HttpResponse::Ok().json(session_view(&owner.org_id, expires_at)))
}

/// Signs out: the stored session goes, so the cookie stops working even if a copy is kept.
pub async fn delete(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(c) = req.cookie(SESSION_COOKIE) {
        let hash = sha256_hex(c.value().as_bytes());
        state.db.run(move |conn| sessions::delete(conn, &hash)).await?;
    }
    // The expired cookie, and `Clear-Site-Data` for browsers that keep a copy elsewhere.
    let clear = ClearSiteData(vec![ClearSiteDataDirective::Cookies]);
    Ok(HttpResponse::NoContent().cookie(cookie(&req, String::new(), 0)).insert_header(clear).finish())
}
