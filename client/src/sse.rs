//! A Server-Sent Events parser (the WHATWG event-stream format), fed bytes as they arrive.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Frame {
    pub(crate) id: Option<String>,
    pub(crate) event: Option<String>,
    pub(crate) data: String,
}

/// Accumulates bytes across chunks; a frame may be split anywhere, even inside a
/// multi-byte character or between the CR and LF of a line ending.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    buf: Vec<u8>,
    current: Frame,
    has_data: bool,
    /// The server's last `retry:` hint: how long to wait before reconnecting.
    pub(crate) retry_ms: Option<u64>,
}

/// A line longer than this is not an event herald sends: the stream is broken.
const MAX_LINE: usize = 32 << 20;

impl Parser {
    /// Feeds a chunk; returns the frames it completed. `Err` when a line exceeds the limit.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Result<Vec<Frame>, &'static str> {
        self.buf.extend_from_slice(chunk);
        let mut frames = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            let end = match self.buf[i] {
                b'\n' => i + 1,
                // A CR at the end of the buffer may be half of a CRLF: wait for more.
                b'\r' if i + 1 == self.buf.len() => break,
                b'\r' if self.buf[i + 1] == b'\n' => i + 2,
                b'\r' => i + 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
            if let Some(frame) = self.line(&line) {
                frames.push(frame);
            }
            start = end;
            i = end;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_LINE {
            return Err("an event-stream line is too long");
        }
        Ok(frames)
    }

    /// Forgets a partial frame (after a disconnect).
    pub(crate) fn reset(&mut self) {
        *self = Parser { retry_ms: self.retry_ms, ..Parser::default() };
    }

    fn line(&mut self, line: &str) -> Option<Frame> {
        if line.is_empty() {
            let frame = std::mem::take(&mut self.current);
            let had_data = std::mem::take(&mut self.has_data);
            return had_data.then_some(frame);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.current.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.current.id = Some(value.to_string()),
            "retry" => self.retry_ms = value.parse().ok().or(self.retry_ms),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let text = "retry: 1000\n\n: keep-alive\n\nevent: order.created\nid: 7\ndata: {\"a\":\"é\"}\n\nid: 8\r\ndata: x\r\ndata: y\r\n\r\n";
        let mut parser = Parser::default();
        let whole = parser.push(text.as_bytes()).unwrap();
        assert_eq!(parser.retry_ms, Some(1000));
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].event.as_deref(), Some("order.created"));
        assert_eq!((whole[0].id.as_deref(), whole[0].data.as_str()), (Some("7"), "{\"a\":\"é\"}"));
        assert_eq!((whole[1].id.as_deref(), whole[1].data.as_str()), (Some("8"), "x\ny"));
        for split in 1..text.len() {
            let mut p = Parser::default();
            let mut frames = p.push(&text.as_bytes()[..split]).unwrap();
            frames.extend(p.push(&text.as_bytes()[split..]).unwrap());
            assert_eq!(frames, whole, "split at {split}");
        }
    }

    #[test]
    fn a_frame_without_data_is_not_dispatched() {
        let frames = Parser::default().push(b"id: 3\n\nevent: x\n\n").unwrap();
        assert!(frames.is_empty());
    }
}
