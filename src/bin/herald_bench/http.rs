//! A minimal HTTP/1.1 client: keep-alive requests over tokio TCP for the load generator, a
//! response-head reader and a chunked decoder for the SSE streams, and a blocking one-shot
//! call for setting herald up. Only what herald and the receiver answer is handled.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream as StdTcpStream};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const MAX_HEAD: usize = 64 * 1024;

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

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn parse_head(raw: &[u8]) -> io::Result<Head> {
    let text = std::str::from_utf8(raw).map_err(|_| invalid("the answer's head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("the answer has no status line"))?;
    let mut head =
        Head { status, content_length: None, chunked: false, close: status_line.starts_with("HTTP/1.0") };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            head.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(head)
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
        use ChunkState::*;
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
                (Size, b';' | b' ' | b'\t') | (Extension, b';' | b' ' | b'\t') => Extension,
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
            if let Some(end) = head_end(&self.buf) {
                let head = parse_head(&self.buf[..end - 4])?;
                self.buf.drain(..end);
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
    let end = head_end(&answer).ok_or_else(closed)?;
    let head = parse_head(&answer[..end - 4])?;
    let rest = &answer[end..];
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
