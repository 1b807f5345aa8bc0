//! The fast path of the TCP listener: plain HTTP/1 announces and scrapes,
//! read and answered without the general HTTP stack.
//!
//! Nearly every request a tracker gets is a `GET /announce` or `GET
//! /scrape` with a short head and no body, and most clients open a
//! connection for each. Those are recognised here from the raw head and
//! answered with one write; anything else (WebSocket upgrades, statistics,
//! other methods or paths, bodies, oversized heads) goes to hyper with the
//! bytes already read, so behaviour there is unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest head the fast path reads; longer ones go to hyper, whose
/// own limit then applies.
pub(crate) const FAST_HEAD_LIMIT: usize = 4096;

/// A request the fast path serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FastKind {
    /// `GET /announce`.
    Announce,
    /// `GET /scrape`.
    Scrape,
}

/// A request head the fast path serves.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FastRequest<'a> {
    pub(crate) kind: FastKind,
    /// The query string, without `?`.
    pub(crate) query: &'a str,
    /// Whether the connection stays open after the answer.
    pub(crate) keep_alive: bool,
}

/// The length of the head at the start of `buf` (up to and including the
/// blank line), if it is complete. `from` is where the previous search
/// stopped.
pub(crate) fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    buf.get(start..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| start + i + 4)
}

/// Whether the comma-separated header value `value` lists `token`.
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// `head` (a complete request head) as a fast-path request, or `None` when
/// it is anything else: another method, path or version, an upgrade, a
/// body, a malformed line.
pub(crate) fn classify(head: &[u8]) -> Option<FastRequest<'_>> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if method != "GET" || parts.next().is_some() {
        return None;
    }
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return None,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let kind = match path {
        "/announce" => FastKind::Announce,
        "/scrape" => FastKind::Scrape,
        _ => return None,
    };
    if query.contains('#') {
        return None;
    }
    for line in lines {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        // Obsolete line folding and names with spaces are hyper's to refuse.
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let value = value.as_bytes();
        if name.eq_ignore_ascii_case("connection") {
            if has_token(value, b"close") {
                keep_alive = false;
            }
            if has_token(value, b"upgrade") {
                return None;
            }
        } else if name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("expect")
            || (name.eq_ignore_ascii_case("content-length") && value.trim_ascii() != b"0")
        {
            return None;
        }
    }
    Some(FastRequest {
        kind,
        query,
        keep_alive,
    })
}

thread_local! {
    /// The `Date` header of the current second, formatted once per second.
    static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// A `200 OK` answer with a bencoded `body`, head and body in one buffer.
pub(crate) fn response(body: &[u8], keep_alive: bool) -> Vec<u8> {
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\ndate: ");
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        out.extend_from_slice(text.as_bytes());
    });
    if !keep_alive {
        out.extend_from_slice(b"\r\nconnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// A deadline `timeout` from now, for a head's arrival.
pub(crate) fn deadline(timeout: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + timeout
}

/// A connection whose first bytes were already read: they are read again
/// first, then the stream.
#[derive(Debug)]
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) const fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            pos: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.pos);
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_finds_the_blank_line_across_reads() {
        let buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
        assert_eq!(head_end(buf, 0), Some(27));
        // A search resumed after part of the terminator was seen.
        assert_eq!(head_end(buf, 25), Some(27));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r", 0), None);
        assert_eq!(head_end(b"", 10), None);
    }

    #[test]
    fn announces_and_scrapes_are_recognised() {
        let r =
            classify(b"GET /announce?info_hash=%01&port=1 HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert_eq!(
            r,
            FastRequest {
                kind: FastKind::Announce,
                query: "info_hash=%01&port=1",
                keep_alive: true
            }
        );
        let r = classify(b"GET /scrape HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(
            (r.kind, r.query, r.keep_alive),
            (FastKind::Scrape, "", false)
        );
        let r =
            classify(b"GET /announce?a HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        let r = classify(b"GET /announce?a HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(r.keep_alive);
    }

    #[test]
    fn everything_else_goes_to_the_general_path() {
        for head in [
            &b"POST /announce HTTP/1.1\r\n\r\n"[..],
            b"GET /announce HTTP/2.0\r\n\r\n",
            b"GET /stats HTTP/1.1\r\n\r\n",
            b"GET /announcer HTTP/1.1\r\n\r\n",
            b"GET  /announce HTTP/1.1\r\n\r\n",
            b"GET /announce HTTP/1.1 x\r\n\r\n",
            b"GET /announce HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            b"GET /announce HTTP/1.1\r\nConnection: upgrade\r\n\r\n",
            b"GET /announce HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
            b"GET /announce HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /announce HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET /announce HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET /announce HTTP/1.1\r\n folded\r\n\r\n",
            b"GET /announce HTTP/1.1\r\nno-colon\r\n\r\n",
            b"GET /announce?a#b HTTP/1.1\r\n\r\n",
            b"GET /announce\xff HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(classify(head), None, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn responses_carry_length_date_and_close() {
        let r = String::from_utf8(response(b"d8:intervali60ee", false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("\r\ncontent-length: 16\r\n"), "{r}");
        assert!(r.contains("\r\ndate: ") && r.contains(" GMT\r\n"), "{r}");
        assert!(r.contains("\r\nconnection: close\r\n\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nd8:intervali60ee"), "{r}");
        let r = String::from_utf8(response(b"de", true)).unwrap();
        assert!(!r.contains("connection"), "{r}");
    }

    #[tokio::test]
    async fn prefixed_reads_the_prefix_then_the_stream() {
        use tokio::io::AsyncReadExt;
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b"world")
            .await
            .unwrap();
        drop(a);
        let mut p = Prefixed::new(b"hello ".to_vec(), b);
        let mut all = String::new();
        p.read_to_string(&mut all).await.unwrap();
        assert_eq!(all, "hello world");
    }
}
