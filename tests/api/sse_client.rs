//! A real Server-Sent Events client for the tests: it parses the stream (fields, CR/LF/CRLF
//! line ends, comments, blank-line dispatch) instead of matching a whole body.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::helpers::TestApp;

#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Event { id: Option<String>, event: Option<String>, data: String },
    Comment(String),
    Retry(u64),
}

pub struct SseStream {
    pub status: u16,
    pub headers: awc::http::header::HeaderMap,
    rx: mpsc::Receiver<Frame>,
}

#[derive(Default)]
struct Parser {
    buf: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
}

impl Parser {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Frame>) {
        self.buf.extend_from_slice(chunk);
        loop {
            let Some(pos) = self.buf.iter().position(|b| *b == b'\n' || *b == b'\r') else { return };
            // A CR at the very end may be the first half of a CRLF: wait for more.
            if self.buf[pos] == b'\r' && pos + 1 == self.buf.len() {
                return;
            }
            let skip = if self.buf[pos] == b'\r' && self.buf.get(pos + 1) == Some(&b'\n') { 2 } else { 1 };
            let line = String::from_utf8_lossy(&self.buf[..pos]).to_string();
            self.buf.drain(..pos + skip);
            self.line(&line, out);
        }
    }

    fn line(&mut self, line: &str, out: &mut Vec<Frame>) {
        if line.is_empty() {
            if !self.data.is_empty() || self.event.is_some() {
                out.push(Frame::Event {
                    id: self.id.take(),
                    event: self.event.take(),
                    data: self.data.join("\n"),
                });
            }
            self.data.clear();
            return;
        }
        if let Some(comment) = line.strip_prefix(':') {
            out.push(Frame::Comment(comment.trim().to_string()));
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => self.id = Some(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            "retry" => {
                if let Ok(ms) = value.parse() {
                    out.push(Frame::Retry(ms));
                }
            }
            _ => {}
        }
    }
}

/// Opens a stream; `headers` such as Authorization or Last-Event-ID.
pub async fn connect(app: &TestApp, path: &str, headers: &[(&str, String)]) -> SseStream {
    let client = awc::Client::builder().timeout(Duration::from_secs(3600)).finish();
    let mut req = client.get(app.url(path));
    for (k, v) in headers {
        req = req.insert_header((*k, v.as_str()));
    }
    from_response(req.send().await.expect("stream request"))
}

/// Parses an already opened stream response.
pub fn from_response<S>(mut res: awc::ClientResponse<S>) -> SseStream
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    let status = res.status().as_u16();
    let resp_headers = res.headers().clone();
    // Bounded: a test that stops reading stops the socket being read (a slow client).
    let (tx, rx) = mpsc::channel(16);
    actix_web::rt::spawn(async move {
        let mut parser = Parser::default();
        while let Some(Ok(chunk)) = res.next().await {
            let mut frames = Vec::new();
            parser.feed(&chunk, &mut frames);
            for f in frames {
                if tx.send(f).await.is_err() {
                    return; // the test dropped the stream: disconnect
                }
            }
        }
    });
    SseStream { status, headers: resp_headers, rx }
}

pub fn auth(key: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {key}"))
}

impl SseStream {
    /// The next frame of any kind, or None on timeout or end of stream.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        tokio::time::timeout(timeout, self.rx.recv()).await.ok().flatten()
    }

    /// The next event (comments and retry hints skipped).
    pub async fn next_event(&mut self, timeout: Duration) -> Option<(i64, String, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if let Frame::Event { id, event, data } = self.next_frame(left).await? {
                let seq = id.expect("every event has an id").parse().expect("numeric id");
                return Some((
                    seq,
                    event.unwrap_or_default(),
                    serde_json::from_str(&data).expect("data is JSON"),
                ));
            }
        }
    }

    /// Events until `n` have arrived or `timeout` passes.
    pub async fn take_events(
        &mut self,
        n: usize,
        timeout: Duration,
    ) -> Vec<(i64, String, serde_json::Value)> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mixed_line_endings_and_comments() {
        let mut p = Parser::default();
        let mut out = Vec::new();
        p.feed(b"retry: 2000\r\n\r\n: keep-alive\n\nid: 7\r", &mut out);
        p.feed(b"\nevent: a.b\rdata: {\"x\":1}\n\n", &mut out);
        assert_eq!(
            out,
            vec![
                Frame::Retry(2000),
                Frame::Comment("keep-alive".into()),
                Frame::Event { id: Some("7".into()), event: Some("a.b".into()), data: "{\"x\":1}".into() },
            ]
        );
    }
}
