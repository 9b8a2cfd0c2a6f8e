//! The event stream consumer: herald's Server-Sent Events stream as a `Stream` of events
//! that survives disconnects and herald restarts. It remembers the last sequence number
//! it handed over, reconnects with backoff sending it as `Last-Event-ID`, and drops the
//! events herald sends again after a resume, so the application sees each event once,
//! in order, with no gap.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::Bytes;
use awc::error::PayloadError;
use futures_util::stream::{self, LocalBoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;

use crate::backoff::Backoff;
use crate::error::{ApiError, Error};
use crate::http::Client;
use crate::receiver::WebhookEvent;
use crate::sse::{Frame, Parser};

/// What to stream and where to start.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Event types (`order.created`) or prefixes (`order.*`); empty means every type.
    pub types: Vec<String>,
    /// A payload filter, as endpoints take (`{"data.amount": {"$gt": 100}}`).
    pub filter: Option<serde_json::Value>,
    /// Start after this sequence number (events already seen); `None` starts with live events.
    pub after_seq: Option<u64>,
    /// The longest wait between reconnection attempts (default 5 s).
    pub max_reconnect_delay: Option<Duration>,
    /// Reconnect when nothing, not even a keep-alive, arrives for this long (default 60 s;
    /// herald sends a keep-alive every 15 s by default).
    pub idle_timeout: Option<Duration>,
}

/// One event from the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// The event's sequence number (the SSE `id`), increasing along the stream.
    pub seq: u64,
    /// The event type (the SSE `event`).
    pub event_type: String,
    /// The event envelope as herald sent it: `{"id", "type", "version", "created_at", "data", …}`.
    pub raw: String,
}

impl StreamEvent {
    /// The envelope, with `data` read as `D`.
    pub fn envelope<D: DeserializeOwned>(&self) -> Result<WebhookEvent<D>, serde_json::Error> {
        serde_json::from_str(&self.raw)
    }
}

/// The events of [`Client::subscribe`]. It ends only on an error that reconnecting cannot
/// cure (a bad key, a bad filter); that error is its last item.
pub struct EventStream {
    inner: LocalBoxStream<'static, Result<StreamEvent, Error>>,
    last_seq: std::rc::Rc<std::cell::Cell<Option<u64>>>,
}

impl EventStream {
    /// The sequence number of the last event handed over: keep it to resume later with
    /// [`StreamOptions::after_seq`].
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq.get()
    }
}

impl Stream for EventStream {
    type Item = Result<StreamEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

type Body = LocalBoxStream<'static, Result<Bytes, PayloadError>>;

struct Consumer {
    client: Client,
    options: StreamOptions,
    last_seq: std::rc::Rc<std::cell::Cell<Option<u64>>>,
    body: Option<Body>,
    parser: Parser,
    ready: VecDeque<StreamEvent>,
    /// Connection attempts since bytes last arrived.
    failures: u32,
    finished: bool,
}

impl Client {
    /// Streams events live (`GET /v1/events/stream`), resuming by itself after disconnects.
    ///
    /// ```no_run
    /// # async fn run(herald: herald_client::Client) -> Result<(), herald_client::Error> {
    /// use futures_util::TryStreamExt;
    /// use herald_client::StreamOptions;
    ///
    /// let mut events = herald.subscribe(StreamOptions { types: vec!["order.*".into()], ..Default::default() });
    /// while let Some(event) = events.try_next().await? {
    ///     println!("#{} {}: {}", event.seq, event.event_type, event.raw);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn subscribe(&self, options: StreamOptions) -> EventStream {
        let last_seq = std::rc::Rc::new(std::cell::Cell::new(options.after_seq));
        let consumer = Consumer {
            client: self.clone(),
            options,
            last_seq: last_seq.clone(),
            body: None,
            parser: Parser::default(),
            ready: VecDeque::new(),
            failures: 0,
            finished: false,
        };
        let inner = stream::unfold(consumer, |mut consumer| async move {
            let item = consumer.next().await?;
            Some((item, consumer))
        });
        EventStream { inner: inner.boxed_local(), last_seq }
    }
}

impl Consumer {
    async fn next(&mut self) -> Option<Result<StreamEvent, Error>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                self.last_seq.set(Some(event.seq));
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                match self.connect().await {
                    Ok(body) => self.body = Some(body),
                    Err(e) if !e.is_retriable() => {
                        self.finished = true;
                        return Some(Err(e));
                    }
                    Err(e) => self.pause(&e.to_string()).await,
                }
                continue;
            };
            let idle = self.options.idle_timeout.unwrap_or(Duration::from_secs(60));
            match tokio::time::timeout(idle, body.next()).await {
                Ok(Some(Ok(bytes))) => {
                    self.failures = 0;
                    match self.parser.push(&bytes) {
                        Ok(frames) => frames.into_iter().for_each(|f| self.take(f)),
                        Err(why) => self.disconnected(why).await,
                    }
                }
                Ok(Some(Err(e))) => self.disconnected(&e.to_string()).await,
                Ok(None) => self.disconnected("the stream ended").await,
                Err(_) => self.disconnected("no data or keep-alive within the idle timeout").await,
            }
        }
    }

    /// Queues a frame's event unless it was handed over before (a resume repeats the last).
    fn take(&mut self, frame: Frame) {
        let Some(seq) = frame.id.as_deref().and_then(|id| id.trim().parse::<u64>().ok()) else {
            return;
        };
        if self.newest_seq().is_some_and(|last| seq <= last) {
            return;
        }
        let event_type = frame.event.unwrap_or_default();
        self.ready.push_back(StreamEvent { seq, event_type, raw: frame.data });
    }

    async fn disconnected(&mut self, why: &str) {
        self.body = None;
        self.parser.reset();
        self.pause(why).await;
    }

    async fn pause(&mut self, why: &str) {
        let first = Duration::from_millis(self.parser.retry_ms.unwrap_or(250).clamp(50, 10_000));
        let max = self.options.max_reconnect_delay.unwrap_or(Duration::from_secs(5));
        let delay = Backoff { base: first, max }.delay(self.failures);
        self.failures = self.failures.saturating_add(1);
        log::warn!("herald stream: {why}; reconnecting in {} ms", delay.as_millis());
        tokio::time::sleep(delay).await;
    }

    async fn connect(&mut self) -> Result<Body, Error> {
        let inner = &*self.client.inner;
        let mut request = inner.streaming.get(format!("{}/v1/events/stream", inner.base_url));
        let mut query: Vec<(&str, String)> = Vec::new();
        if !self.options.types.is_empty() {
            query.push(("types", self.options.types.join(",")));
        }
        if let Some(filter) = &self.options.filter {
            query.push(("filter", filter.to_string()));
        }
        if !query.is_empty() {
            request = request.query(&query).map_err(|e| Error::Decode(format!("query: {e}")))?;
        }
        if let Some(key) = self.client.api_key() {
            request = request.bearer_auth(key);
        }
        if let Some(seq) = self.newest_seq() {
            request = request.insert_header(("last-event-id", seq.to_string()));
        }
        let connect_timeout = Duration::from_secs(10);
        let sent = tokio::time::timeout(connect_timeout, request.send()).await.map_err(|_| Error::Timeout)?;
        let mut response = sent.map_err(|e| Error::Connect(e.to_string()))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.body().limit(64 * 1024).await.unwrap_or_default();
            return Err(Error::Api(ApiError::from_answer(status, response.headers(), &body)));
        }
        Ok(response.boxed_local())
    }

    fn newest_seq(&self) -> Option<u64> {
        self.ready.back().map(|e| e.seq).or(self.last_seq.get())
    }
}
