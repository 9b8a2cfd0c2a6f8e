//! A minimal HTTP/1.1 client: keep-alive requests over tokio TCP for the load generator, a
//! response-head reader (httparse) and a chunked decoder for the SSE streams, and a blocking one-shot
//! call for setting herald up. Only what herald and the receiver answer is handled.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream as StdTcpStream};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const MAX_HEAD: usize = 64 * 1024;
/// More than herald or the receiver ever send.
const MAX_HEADERS: usize = 64;

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before the answer ended")
}

/// Writes a request. `headers` should not repeat Host or Content-Length.
pub fn encode_request(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    if !body.is_empty() || method == "POST" {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

#[derive(Debug, Clone, Copy)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
    pub chunked: bool,
    pub close: bool,
}

/// The answer's head and its length in bytes, once `buf` holds all of it (httparse).
fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(buf).map_err(|e| invalid(&format!("the answer's head is malformed: {e}")))? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = answer.code.ok_or_else(|| invalid("the answer has no status line"))?;
    let mut head = Head { status, content_length: None, chunked: false, close: answer.version == Some(0) };
    for header in answer.headers.iter() {
        let value = String::from_utf8_lossy(header.value);
        let value = value.trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok();
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if header.name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(Some((head, len)))
}

/// Decodes `Transfer-Encoding: chunked` from bytes as they arrive, in any split.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    state: ChunkState,
    size: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLineLf,
    FinalLf,
    Done,
}

impl ChunkDecoder {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Appends the payload found in `input` to `out`; returns how many bytes it used (all of
    /// them unless the body ended inside `input`).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
        use ChunkState::{
            Data, DataCr, DataLf, Done, Extension, FinalLf, Size, SizeLf, TrailerLine, TrailerLineLf,
            TrailerStart,
        };
        let mut i = 0;
        while i < input.len() && self.state != Done {
            if self.state == Data {
                let take = self.size.min(input.len() - i);
                out.extend_from_slice(&input[i..i + take]);
                self.size -= take;
                i += take;
                if self.size == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                    let digit = (b as char).to_digit(16).unwrap_or(0) as usize;
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit))
                        .ok_or_else(|| invalid("chunk size overflows"))?;
                    Size
                }
                (Size | Extension, b';' | b' ' | b'\t') => Extension,
                (Size | Extension, b'\r') => SizeLf,
                (Extension, _) => Extension,
                (SizeLf, b'\n') if self.size == 0 => TrailerStart,
                (SizeLf, b'\n') => Data,
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size,
                (TrailerStart, b'\r') => FinalLf,
                (TrailerLine, b'\r') => TrailerLineLf,
                (TrailerStart | TrailerLine, _) => TrailerLine,
                (TrailerLineLf, b'\n') => TrailerStart,
                (FinalLf, b'\n') => Done,
                _ => return Err(invalid("malformed chunked body")),
            };
        }
        Ok(i)
    }
}

/// One keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects, from `local` (a loopback source address) when given.
    pub async fn connect(local: Option<IpAddr>, addr: SocketAddr) -> io::Result<Self> {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        if let Some(ip) = local {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(4096) })
    }

    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(8192);
        self.stream.read_buf(&mut self.buf).await
    }

    pub async fn write_all(&mut self, raw: &[u8]) -> io::Result<()> {
        self.stream.write_all(raw).await
    }

    pub async fn read_head(&mut self) -> io::Result<Head> {
        loop {
            if let Some((head, len)) = parse_head(&self.buf)? {
                self.buf.drain(..len);
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("the answer's head is too large"));
            }
            if self.fill().await? == 0 {
                return Err(closed());
            }
        }
    }

    /// Sends a whole request and reads the whole answer.
    pub async fn request(&mut self, raw: &[u8]) -> io::Result<(Head, Vec<u8>)> {
        self.stream.write_all(raw).await?;
        let mut head = self.read_head().await?;
        let body = if head.chunked {
            let mut decoder = ChunkDecoder::default();
            let mut out = Vec::new();
            loop {
                let used = decoder.feed(&self.buf, &mut out)?;
                self.buf.drain(..used);
                if decoder.is_done() {
                    break out;
                }
                if self.fill().await? == 0 {
                    return Err(closed());
                }
            }
        } else if let Some(len) = head.content_length {
            while self.buf.len() < len {
                if self.fill().await? == 0 {
                    return Err(closed());
                }
            }
            self.buf.drain(..len).collect()
        } else if head.status == 204 || head.status == 304 || head.status < 200 {
            Vec::new()
        } else {
            // No length: the body ends with the connection.
            while self.fill().await? > 0 {}
            head.close = true;
            std::mem::take(&mut self.buf)
        };
        Ok((head, body))
    }

    /// Reads the next bytes of a streamed body into `out` (what was buffered first); 0 at the end.
    pub async fn read_stream(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            out.append(&mut self.buf);
            return Ok(n);
        }
        out.reserve(4096);
        self.stream.read_buf(out).await
    }
}

/// One request on a fresh connection, blocking (setup and readiness checks).
pub fn call_blocking(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = StdTcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut all_headers = vec![("Connection", "close")];
    all_headers.extend_from_slice(headers);
    let mut raw = Vec::with_capacity(256 + body.len());
    encode_request(&mut raw, method, path, &addr.to_string(), &all_headers, body);
    stream.write_all(&raw)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let (head, len) = parse_head(&answer)?.ok_or_else(closed)?;
    let rest = &answer[len..];
    let body = if head.chunked {
        let mut out = Vec::new();
        ChunkDecoder::default().feed(rest, &mut out)?;
        out
    } else {
        rest[..head.content_length.unwrap_or(rest.len()).min(rest.len())].to_vec()
    };
    Ok((head.status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_once_complete() {
        let raw = b"HTTP/1.1 202 Accepted\r\ncontent-length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}";
        let end = raw.len() - br#"{"ok":true}"#.len();
        for partial in 0..end {
            assert!(parse_head(&raw[..partial]).unwrap().is_none(), "{partial}");
        }
        let (head, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(
            (head.status, head.content_length, head.chunked, head.close, len),
            (202, Some(11), false, true, end)
        );
        let (head, _) =
            parse_head(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").unwrap().unwrap();
        assert!(head.chunked && head.close, "{head:?}");
        assert!(parse_head(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
    }

    #[test]
    fn chunks_split_anywhere() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let end = body.len() - b"NEXT".len();
        for split in 0..=end {
            let mut d = ChunkDecoder::default();
            let mut out = Vec::new();
            let a = d.feed(&body[..split], &mut out).unwrap();
            assert_eq!(a, split);
            let b = d.feed(&body[split..], &mut out).unwrap();
            assert!(d.is_done());
            assert_eq!(split + b, end);
            assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        }
    }
}
