//! Lists as streams: every page, following `next_cursor` until it is `null`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{self, LocalBoxStream, Stream, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::http::{Client, Request};
use crate::models::Page;

/// Items per page requested (herald allows 1 to 250).
const PAGE_SIZE: u32 = 100;

/// A list route's items, page after page. Each page is one request (retried as any
/// request is); an error ends the stream.
///
/// ```no_run
/// # async fn run(herald: herald_client::Client) -> Result<(), herald_client::Error> {
/// use futures_util::TryStreamExt;
/// use herald_client::EventQuery;
///
/// let mut events = herald.events(&EventQuery { event_type: Some("order.*".into()), ..Default::default() });
/// while let Some(event) = events.try_next().await? {
///     println!("{} {}", event.id, event.event_type);
/// }
/// # Ok(()) }
/// ```
pub struct Pages<T> {
    inner: LocalBoxStream<'static, Result<T, Error>>,
}

struct State<T> {
    client: Client,
    request: Request,
    cursor: Option<String>,
    buffered: VecDeque<T>,
    last_page: bool,
}

impl<T: DeserializeOwned + 'static> Pages<T> {
    pub(crate) fn new(client: Client, request: Request) -> Pages<T> {
        let state = State { client, request, cursor: None, buffered: VecDeque::new(), last_page: false };
        let inner = stream::try_unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.buffered.pop_front() {
                    return Ok(Some((item, state)));
                }
                if state.last_page {
                    return Ok(None);
                }
                let mut request = state.request.clone().set_query("limit", PAGE_SIZE);
                if let Some(cursor) = &state.cursor {
                    request = request.set_query("cursor", cursor);
                }
                let page: Page<T> = state.client.send_json(request).await?;
                state.last_page = page.next_cursor.is_none();
                state.cursor = page.next_cursor;
                state.buffered.extend(page.data);
            }
        });
        Pages { inner: inner.boxed_local() }
    }

    /// Every item of every page, or the first error.
    pub async fn all(self) -> Result<Vec<T>, Error> {
        self.try_collect().await
    }
}

impl<T> Stream for Pages<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}
