//! `Idempotency-Key` on any POST: the first request with a key runs and its answer is
//! stored; a repeat within 24 h gets that answer back with `Idempotent-Replayed: true` and
//! creates nothing; the same key with another body is `409 CONFLICT`. Keys belong to the
//! organisation of the API key that sent them.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};

use crate::api::auth::{app_state, authenticate};
use crate::api::json::read_body;
use crate::error::ApiError;
use crate::ids::{now_ms, sha256_hex};
use crate::secrets::Purpose;
use crate::state::AppState;
use crate::store::idempotency::{self, Claim};

const MAX_KEY_LEN: usize = 255;
/// How long a repeat waits for the answer of the same request still in progress.
const IN_PROGRESS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
const IN_PROGRESS_POLL: std::time::Duration = std::time::Duration::from_millis(50);

pub async fn guard<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let key = match req.headers().get("idempotency-key") {
        Some(v) if req.method() == Method::POST => v.to_str().unwrap_or("").to_string(),
        _ => return next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_boxed_body),
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        let err = ApiError::invalid_field(
            &["Idempotency-Key"],
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        );
        return Ok(req.error_response(err));
    }
    // Unauthenticated requests go through and fail in their own extractor.
    let Ok(auth) = authenticate(req.request()).await else {
        return next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_boxed_body);
    };
    let state = app_state(req.request())?;
    let limit = state.settings.limits.max_body_bytes;
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    let body = match read_body(req.take_payload(), limit, declared).await {
        Ok(b) => b,
        Err(e) => return Ok(req.error_response(e)),
    };
    let fingerprint = fingerprint(&req, &body);
    match claim(&state, &auth.org_id, &key, &fingerprint).await {
        KeyClaim::Ours => {}
        KeyClaim::Answered(response) => return Ok(req.into_response(response)),
        KeyClaim::Failed(err) => return Ok(req.error_response(err)),
    }
    // From here the key is this request's: its answer is recorded, or the key released.
    // The work runs as a task of its own, so a client that hangs up does not cancel what it
    // asked for half-way: the answer is still recorded, and a repeat gets it.
    let claimed = ClaimedKey { db: state.db.clone(), org: auth.org_id.clone(), key, open: true };
    req.set_payload(bytes_payload(body));
    // A panic in the task drops the claim on its way out, which releases the key.
    match actix_web::rt::spawn(run_and_record(req, next, state, claimed)).await {
        Ok(answer) => answer,
        Err(_) => Err(ApiError::internal("handler panicked").into()),
    }
}

/// What a request is: its method, path, query and body, hashed.
fn fingerprint(req: &ServiceRequest, body: &[u8]) -> String {
    let mut material = format!("{} {}?{}\n", req.method(), req.path(), req.query_string()).into_bytes();
    material.extend_from_slice(body);
    sha256_hex(&material)
}

/// What became of claiming the key.
enum KeyClaim {
    /// The key is this request's: it runs.
    Ours,
    /// The key was used before: this is the answer (the first one, or a conflict).
    Answered(HttpResponse),
    Failed(ApiError),
}

/// Claims the key for a request with this fingerprint. A repeat of a request still running
/// waits a little for its answer rather than being refused at once: a client that hung up
/// and tried again gets the first answer.
async fn claim(state: &AppState, org_id: &str, key: &str, fingerprint: &str) -> KeyClaim {
    let deadline = tokio::time::Instant::now() + IN_PROGRESS_WAIT;
    loop {
        let (org, k, fp) = (org_id.to_string(), key.to_string(), fingerprint.to_string());
        let rec = match state.db.run(move |conn| idempotency::claim(conn, &org, &k, &fp, now_ms())).await {
            Err(e) => return KeyClaim::Failed(e.into()),
            Ok(Claim::Claimed) => return KeyClaim::Ours,
            Ok(Claim::Existing(rec)) => rec,
        };
        if rec.request_hash != fingerprint {
            let conflict = ApiError::conflict("Idempotency-Key was already used with a different request");
            return KeyClaim::Answered(conflict.error_response());
        }
        match (rec.status_code, rec.response_body) {
            (Some(status), Some(stored)) => return replay(state, status, &stored),
            _ if tokio::time::Instant::now() < deadline => tokio::time::sleep(IN_PROGRESS_POLL).await,
            _ => {
                let busy = ApiError::conflict("A request with this Idempotency-Key is still in progress");
                return KeyClaim::Answered(busy.error_response());
            }
        }
    }
}

/// The first answer again, marked as replayed.
fn replay(state: &AppState, status: i32, stored: &str) -> KeyClaim {
    let status = StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK);
    let body = match state.engine.ctx.cipher.reveal(Purpose::StoredAnswer, stored) {
        Ok(body) => body,
        Err(e) => return KeyClaim::Failed(ApiError::internal(e)),
    };
    KeyClaim::Answered(
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header(("idempotent-replayed", "true"))
            .body(body),
    )
}

/// Runs the request that owns the key, then records its answer for repeats (a server error
/// releases the key instead, so a retry can run).
async fn run_and_record<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    state: web::Data<AppState>,
    claimed: ClaimedKey,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = match next.call(req).await {
        Ok(r) => r.map_into_boxed_body(),
        Err(e) => {
            claimed.release().await;
            return Err(e);
        }
    };
    let status = res.status();
    let (http_req, response) = res.into_parts();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    // Kept encrypted: an answer may hold a secret (a new endpoint's, a rotated one).
    let stored = state.engine.ctx.cipher.seal(Purpose::StoredAnswer, &String::from_utf8_lossy(&bytes));
    if status.is_server_error() {
        claimed.release().await;
    } else {
        let (org, k) = (claimed.org.clone(), claimed.key.clone());
        let outcome =
            state.db.run(move |conn| idempotency::complete(conn, &org, &k, status.as_u16(), &stored)).await;
        match outcome {
            Ok(()) => claimed.keep(),
            Err(e) => {
                log::warn!("could not record the idempotency key's answer: {e}; releasing the key");
                claimed.release().await;
            }
        }
    }
    let mut rebuilt = head.set_body(BoxBody::new(bytes));
    rebuilt
        .headers_mut()
        .insert(HeaderName::from_static("idempotent-replayed"), HeaderValue::from_static("false"));
    Ok(ServiceResponse::new(http_req, rebuilt))
}

/// A key this request claimed. Unless its answer was recorded, the key is given back: by
/// `release` on the ordinary ways out, and on drop when the work never got there (the
/// handler panicked), so a repeat can run instead of answering "in progress" for a day.
struct ClaimedKey {
    db: crate::store::Db,
    org: String,
    key: String,
    open: bool,
}

impl ClaimedKey {
    fn keep(mut self) {
        self.open = false;
    }

    async fn release(mut self) {
        self.open = false;
        let (org, key) = (std::mem::take(&mut self.org), std::mem::take(&mut self.key));
        if let Err(e) = self.db.run(move |conn| idempotency::release(conn, &org, &key)).await {
            log::warn!("could not release an idempotency key: {e}");
        }
    }
}

impl Drop for ClaimedKey {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // Drop may run outside any async context (a panic unwinding, a worker stopping):
        // the release goes to a thread of its own.
        let (db, org, key) = (self.db.clone(), std::mem::take(&mut self.org), std::mem::take(&mut self.key));
        let _ =
            std::thread::Builder::new().name("herald-idem-release".into()).spawn(move || match db.get() {
                Ok(mut conn) => {
                    if let Err(e) = idempotency::release(&mut conn, &org, &key) {
                        log::warn!("could not release an abandoned idempotency key: {e}");
                    }
                }
                Err(_) => log::warn!("could not release an abandoned idempotency key: database unavailable"),
            });
    }
}

fn bytes_payload(body: actix_web::web::Bytes) -> actix_web::dev::Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(body);
    actix_web::dev::Payload::from(payload)
}
