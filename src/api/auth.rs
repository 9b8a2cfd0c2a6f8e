//! Who is calling: an organisation's API key (`Authorization: Bearer …`), a dashboard
//! session cookie standing for one, or the admin token from the configuration. Resolving
//! a key or session also spends one unit of its organisation's rate limit.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::api::rate_limit::RateStatus;
use crate::error::ApiError;
use crate::ids::{now_ms, sha256_hex};
use crate::state::AppState;
use crate::store::api_keys::{self, KeyOwner};
use crate::store::sessions;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "herald_session";

/// Requests per minute an organisation's dashboard sessions may make together.
const DASHBOARD_RATE_PER_MINUTE: u32 = 1200;

/// A resolved key stays cached this long: keys are looked up on every request, and a key
/// revoked on any node must stop working everywhere within a second.
const KEY_CACHE_TTL: Duration = Duration::from_millis(900);
const KEY_CACHE_MAX: usize = 10_000;

/// An authenticated organisation.
#[derive(Debug, Clone)]
pub struct OrgAuth {
    pub org_id: String,
    pub key_id: String,
}

/// The admin token was presented.
pub struct AdminAuth;

#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (KeyOwner, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &str) -> Option<KeyOwner> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(hash).filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL).map(|(o, _)| o.clone())
    }

    fn put(&self, hash: String, owner: KeyOwner) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= KEY_CACHE_MAX {
            entries.clear();
        }
        entries.insert(hash, (owner, Instant::now()));
    }

    /// Forgets a revoked key on this node at once.
    pub fn forget_key(&self, key_id: &str) {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, (o, _)| o.key_id != key_id);
    }
}

pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Finds the organisation behind an API key, from the cache or the store.
pub async fn resolve_key(state: &AppState, key: &str) -> Result<Option<KeyOwner>, ApiError> {
    let hash = sha256_hex(key.as_bytes());
    if let Some(owner) = state.keys.get(&hash) {
        return Ok(Some(owner));
    }
    let lookup = hash.clone();
    let now = now_ms();
    let found = state
        .db
        .run(move |conn| {
            let found = api_keys::find_owner(conn, &lookup)?;
            if let Some((owner, last_used)) = &found
                && api_keys::stale_use(*last_used, now)
            {
                api_keys::touch(conn, &owner.key_id, now)?;
            }
            Ok(found.map(|(owner, _)| owner))
        })
        .await?;
    if let Some(o) = &found {
        state.keys.put(hash, o.clone());
    }
    Ok(found)
}

/// The key owner behind the request's session cookie, if it is live, and when the session
/// expires (`None` without a cookie). Not cached: signing out must take effect on every
/// node at once, and the dashboard is light traffic.
pub async fn cookie_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<(KeyOwner, i64)>, ApiError> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else { return Ok(None) };
    let hash = sha256_hex(cookie.value().as_bytes());
    Ok(state.db.run(move |conn| sessions::find_valid(conn, &hash, now_ms())).await?)
}

/// A cookie is sent by the browser whoever asked for the request, so a state-changing
/// request carried by one must come from herald's own page. SameSite=Strict already keeps
/// the cookie off cross-site requests; this also covers browsers that ignore it.
fn check_same_origin(req: &HttpRequest) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = req.connection_info().host().to_string();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    if origin_host.eq_ignore_ascii_case(&host) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "Cross-site request refused: the session cookie only works from herald's own page",
        ))
    }
}

/// Who is calling, and whether through a dashboard session.
async fn owner_of(req: &HttpRequest, state: &AppState) -> Result<(KeyOwner, bool), ApiError> {
    if let Some(token) = bearer_token(req) {
        let owner =
            resolve_key(state, &token).await?.ok_or_else(|| ApiError::unauthorized("Invalid API key"))?;
        return Ok((owner, false));
    }
    if req.cookie(SESSION_COOKIE).is_none() {
        return Err(ApiError::unauthorized("Missing API key (Authorization: Bearer <key>)"));
    }
    check_same_origin(req)?;
    let found = cookie_session(req, state).await?;
    let (owner, _) =
        found.ok_or_else(|| ApiError::unauthorized("Session expired or signed out: sign in again"))?;
    Ok((owner, true))
}

/// Authenticates the request once; later calls on the same request reuse the answer.
pub async fn authenticate(req: &HttpRequest) -> Result<OrgAuth, ApiError> {
    if let Some(auth) = req.extensions().get::<OrgAuth>() {
        return Ok(auth.clone());
    }
    let state = app_state(req)?;
    let (owner, by_session) = owner_of(req, &state).await?;
    // People watching the dashboard get a bucket of their own, so a busy producer does not
    // lock them out and their page's polling does not eat the producer's limit.
    let status = if by_session {
        state.limiter.check(&format!("{}#dashboard", owner.org_id), DASHBOARD_RATE_PER_MINUTE)
    } else {
        state.limiter.check(&owner.org_id, owner.rate_limit_per_minute.max(1) as u32)
    };
    req.extensions_mut().insert(status);
    if !status.allowed {
        state.metrics.rate_limited.inc();
        return Err(ApiError::rate_limited(status.retry_after_secs));
    }
    let auth = OrgAuth { org_id: owner.org_id, key_id: owner.key_id };
    req.extensions_mut().insert(auth.clone());
    Ok(auth)
}

pub fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))
}

impl FromRequest for OrgAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

impl FromRequest for AdminAuth {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(check_admin(req))
    }
}

fn check_admin(req: &HttpRequest) -> Result<AdminAuth, ApiError> {
    let state = app_state(req)?;
    let Some(expected) = state.settings.admin_token.as_ref() else {
        return Err(ApiError::unauthorized("Admin routes are disabled: admin_token is not configured"));
    };
    let given = bearer_token(req).ok_or_else(|| ApiError::unauthorized("Missing admin token"))?;
    if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(AdminAuth)
    } else {
        Err(ApiError::unauthorized("Invalid admin token"))
    }
}

/// Compares without an early exit, so timing does not reveal how much of a token matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    // Hashing first makes the comparison length-independent too.
    let (ha, hb) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    ha.iter().zip(hb.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The headers a rate-limited answer carries.
pub fn rate_limit_headers(status: &RateStatus) -> [(&'static str, String); 3] {
    [
        ("ratelimit-limit", status.limit.to_string()),
        ("ratelimit-remaining", status.remaining.to_string()),
        ("ratelimit-reset", status.reset_secs.to_string()),
    ]
}
