//! The async client: runs a [`FetchPlan`] over reqwest and checks every answer.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, RANGE, RETRY_AFTER};
use tokio::sync::Semaphore;
use webtorrent_storage::Layout;

use crate::{FetchPlan, HttpRequest, SeedKind, WebSeedError, WebSeedUrl};

/// Settings of [`WebSeedClient`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebSeedConfig {
    /// Time allowed for one HTTP request, connection to last body byte.
    pub timeout: Duration,
    /// Time allowed to connect (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time allowed between two reads of an answer: a server that stalls is given up on
    /// before [`timeout`](Self::timeout) when this is shorter.
    pub idle_timeout: Duration,
    /// Redirects followed per request.
    pub max_redirects: usize,
    /// Requests one [`WebSeed`] runs at the same time; more wait their turn.
    pub max_concurrent_requests: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for WebSeedConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(20),
            max_redirects: 5,
            max_concurrent_requests: 8,
            user_agent: concat!("webtorrent-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl WebSeedConfig {
    /// The same settings with another request timeout.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same settings with another idle timeout.
    #[must_use]
    pub const fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The same settings with another redirect limit.
    #[must_use]
    pub const fn with_max_redirects(mut self, max: usize) -> Self {
        self.max_redirects = max;
        self
    }

    /// The same settings with another limit on concurrent requests per seed (at least 1).
    #[must_use]
    pub const fn with_max_concurrent_requests(mut self, max: usize) -> Self {
        self.max_concurrent_requests = max;
        self
    }
}

/// The HTTP(S) client shared by every web seed: cheap to clone, keeps connections alive
/// between requests to the same server.
///
/// TLS is rustls with the *ring* provider and the platform's certificate verifier,
/// configured here rather than through a process-wide default.
#[derive(Clone, Debug)]
pub struct WebSeedClient {
    http: reqwest::Client,
    config: Arc<WebSeedConfig>,
}

impl WebSeedClient {
    /// A client with these settings.
    ///
    /// # Errors
    /// [`WebSeedError::Setup`] when the TLS or HTTP stack cannot be set up (no platform
    /// certificate store, say).
    pub fn new(config: WebSeedConfig) -> Result<Self, WebSeedError> {
        let setup = |what: &str, e: &dyn std::fmt::Display| WebSeedError::Setup {
            message: format!("{what}: {e}"),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
            .map_err(|e| setup("certificate verifier", &e))?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup("TLS versions", &e))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.idle_timeout)
            .redirect(reqwest::redirect::Policy::limited(config.max_redirects))
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| setup("HTTP client", &chain(&e)))?;
        Ok(Self {
            http,
            config: Arc::new(config),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &WebSeedConfig {
        &self.config
    }

    /// A seed at `url` for the torrent `layout` describes.
    #[must_use]
    pub fn seed(&self, url: WebSeedUrl, layout: Arc<Layout>) -> WebSeed {
        WebSeed {
            client: self.clone(),
            url,
            layout,
            permits: Arc::new(Semaphore::new(self.config.max_concurrent_requests.max(1))),
        }
    }

    /// Runs `plan`: the bytes it names, pad bytes as zeros.
    ///
    /// # Errors
    /// The first failing request's error; see [`WebSeedError`].
    pub async fn run(&self, plan: &FetchPlan) -> Result<Vec<u8>, WebSeedError> {
        self.run_limited(plan, None).await
    }

    async fn run_limited(
        &self,
        plan: &FetchPlan,
        permits: Option<&Semaphore>,
    ) -> Result<Vec<u8>, WebSeedError> {
        let mut buf = vec![0u8; plan.length];
        for request in &plan.requests {
            let end = request
                .buffer_offset
                .checked_add(request.length)
                .filter(|&end| end <= buf.len());
            let Some(end) = end else {
                // Only a hand-made plan can get here: `WebSeedUrl::plan` keeps requests
                // inside the buffer.
                return Err(WebSeedError::WrongLength {
                    url: request.url.clone(),
                    expected: plan.length as u64,
                    got: (request.buffer_offset as u64).saturating_add(request.length as u64),
                    more: false,
                });
            };
            // The semaphore is never closed, so acquiring fails never; without a permit
            // the request still runs rather than failing.
            let _permit = match permits {
                Some(p) => p.acquire().await.ok(),
                None => None,
            };
            self.get(request, &mut buf[request.buffer_offset..end])
                .await?;
        }
        Ok(buf)
    }

    async fn get(&self, request: &HttpRequest, out: &mut [u8]) -> Result<(), WebSeedError> {
        let url = &request.url;
        let map = |e: reqwest::Error| self.map_error(url, &e);
        let mut builder = self.http.get(url);
        if let Some(range) = &request.range {
            builder = builder.header(RANGE, range.header());
        }
        tracing::trace!(%url, range = ?request.range, "web seed request");
        let mut response = builder.send().await.map_err(map)?;
        let status = response.status();
        match (status, &request.range) {
            (StatusCode::PARTIAL_CONTENT, Some(range)) => {
                let header = response.headers().get(CONTENT_RANGE);
                let text = header.and_then(|h| h.to_str().ok());
                if !content_range_matches(text, &range.bytes, range.file_length) {
                    return Err(WebSeedError::BadContentRange {
                        url: url.clone(),
                        expected: range.bytes.clone(),
                        file_length: range.file_length,
                        got: text.map(str::to_owned),
                    });
                }
            }
            (StatusCode::OK, Some(range)) if !range.is_whole_file() => {
                return Err(WebSeedError::RangeIgnored {
                    url: url.clone(),
                    range: range.bytes.clone(),
                });
            }
            (StatusCode::OK, _) => {}
            _ => {
                let mut retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|h| h.to_str().ok())
                    .and_then(parse_seconds);
                if status == StatusCode::SERVICE_UNAVAILABLE
                    && retry_after.is_none()
                    && kind_of(request) == SeedKind::HttpSeed
                {
                    // BEP 17: the body of a 503 is the wait in seconds, as ASCII.
                    let mut body = Vec::new();
                    while let Ok(Some(chunk)) = response.chunk().await {
                        body.extend_from_slice(&chunk);
                        if body.len() > 32 {
                            break;
                        }
                    }
                    retry_after = std::str::from_utf8(&body).ok().and_then(parse_seconds);
                }
                return Err(WebSeedError::HttpStatus {
                    url: url.clone(),
                    status: status.as_u16(),
                    retry_after,
                });
            }
        }
        let expected = out.len() as u64;
        let wrong = |got: u64, more: bool| WebSeedError::WrongLength {
            url: url.clone(),
            expected,
            got,
            more,
        };
        if let Some(len) = response.content_length()
            && len != expected
        {
            return Err(wrong(len, false));
        }
        let mut at = 0usize;
        while let Some(chunk) = response.chunk().await.map_err(map)? {
            let Some(dst) = out.get_mut(at..at + chunk.len()) else {
                return Err(wrong((at + chunk.len()) as u64, true));
            };
            dst.copy_from_slice(&chunk);
            at += chunk.len();
        }
        if at != out.len() {
            return Err(wrong(at as u64, false));
        }
        Ok(())
    }

    fn map_error(&self, url: &str, e: &reqwest::Error) -> WebSeedError {
        if e.is_timeout() {
            WebSeedError::Timeout {
                url: url.to_owned(),
                after: self.config.timeout.min(self.config.idle_timeout),
            }
        } else if e.is_redirect() {
            WebSeedError::TooManyRedirects {
                url: url.to_owned(),
            }
        } else {
            WebSeedError::Connection {
                url: url.to_owned(),
                message: chain(e),
            }
        }
    }
}

/// One web seed of one torrent: fetches pieces and blocks from it.
///
/// Cheap to clone (clones share the request limit). It keeps no retry state: drive a
/// [`Backoff`](crate::Backoff) with the results to know when to use the seed next.
#[derive(Clone, Debug)]
pub struct WebSeed {
    client: WebSeedClient,
    url: WebSeedUrl,
    layout: Arc<Layout>,
    permits: Arc<Semaphore>,
}

impl WebSeed {
    /// The seed's URL.
    #[must_use]
    pub fn url(&self) -> &WebSeedUrl {
        &self.url
    }

    /// The torrent's layout.
    #[must_use]
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// Fetches all of piece `piece`. The caller verifies it
    /// ([`Layout::check_piece`]) and reports a mismatch to
    /// [`Backoff::on_hash_failure`](crate::Backoff::on_hash_failure).
    ///
    /// # Errors
    /// See [`WebSeedError`].
    pub async fn fetch_piece(&self, piece: u32) -> Result<Vec<u8>, WebSeedError> {
        let plan = self.url.plan_piece(&self.layout, piece)?;
        self.client.run_limited(&plan, Some(&self.permits)).await
    }

    /// Fetches the whole pieces `pieces` with as few requests as the files allow (see
    /// [`WebSeedUrl::plan_pieces`]): one buffer per piece, in order.
    ///
    /// # Errors
    /// See [`WebSeedError`]; nothing is returned unless every piece arrived.
    pub async fn fetch_pieces(
        &self,
        pieces: std::ops::Range<u32>,
    ) -> Result<Vec<Vec<u8>>, WebSeedError> {
        let plan = self.url.plan_pieces(&self.layout, pieces.clone())?;
        let mut data = self.client.run_limited(&plan, Some(&self.permits)).await?;
        let mut out = Vec::with_capacity(pieces.len());
        // Split from the back so that each split moves only one piece's bytes.
        for piece in pieces.rev() {
            // The plan covered these pieces, so their sizes are known and add up to the
            // buffer's length.
            let size = usize::try_from(self.layout.piece_size(piece)?).unwrap_or(usize::MAX);
            let at = data.len().saturating_sub(size);
            out.push(data.split_off(at));
        }
        out.reverse();
        Ok(out)
    }

    /// Fetches `spans` (each `(piece, offset, length)` inside one piece) with as few
    /// requests as the files allow (see [`WebSeedUrl::plan_spans`]): their bytes one after
    /// another.
    ///
    /// # Errors
    /// See [`WebSeedError`]; nothing is returned unless every span arrived.
    pub async fn fetch_spans(&self, spans: &[(u32, u64, u64)]) -> Result<Vec<u8>, WebSeedError> {
        let plan = self.url.plan_spans(&self.layout, spans)?;
        self.client.run_limited(&plan, Some(&self.permits)).await
    }

    /// Fetches `length` bytes at `offset` of piece `piece`.
    ///
    /// # Errors
    /// See [`WebSeedError`].
    pub async fn fetch(
        &self,
        piece: u32,
        offset: u64,
        length: u64,
    ) -> Result<Vec<u8>, WebSeedError> {
        let plan = self.url.plan(&self.layout, piece, offset, length)?;
        self.client.run_limited(&plan, Some(&self.permits)).await
    }
}

/// BEP 19 requests carry a byte range; BEP 17 ones name the bytes in the URL.
fn kind_of(request: &HttpRequest) -> SeedKind {
    if request.range.is_some() {
        SeedKind::UrlList
    } else {
        SeedKind::HttpSeed
    }
}

/// Whether a `Content-Range` value is `bytes first-last/total` with exactly the bytes
/// asked for and the file's length (or `*`).
fn content_range_matches(
    value: Option<&str>,
    bytes: &std::ops::Range<u64>,
    file_length: u64,
) -> bool {
    let Some(rest) = value.and_then(|v| v.trim().strip_prefix("bytes ")) else {
        return false;
    };
    let Some((span, total)) = rest.trim_start().split_once('/') else {
        return false;
    };
    let Some((first, last)) = span.split_once('-') else {
        return false;
    };
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let total_ok = total.trim() == "*" || number(total) == Some(file_length);
    total_ok
        && number(first) == Some(bytes.start)
        && number(last).and_then(|l| l.checked_add(1)) == Some(bytes.end)
}

/// Delta-seconds (`Retry-After: 120`, or a BEP 17 503 body). An HTTP date is ignored:
/// this crate reads no clock.
fn parse_seconds(text: &str) -> Option<Duration> {
    let t = text.trim();
    if t.is_empty() || t.len() > 12 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok().map(Duration::from_secs)
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_checked() {
        let r = 100..200;
        assert!(content_range_matches(Some("bytes 100-199/1000"), &r, 1000));
        assert!(content_range_matches(Some("bytes 100-199/*"), &r, 1000));
        assert!(!content_range_matches(Some("bytes 100-199/999"), &r, 1000));
        assert!(!content_range_matches(Some("bytes 100-198/1000"), &r, 1000));
        assert!(!content_range_matches(Some("bytes 0-99/1000"), &r, 1000));
        assert!(!content_range_matches(Some("bytes */1000"), &r, 1000));
        assert!(!content_range_matches(
            Some("bytes +100-199/1000"),
            &r,
            1000
        ));
        assert!(!content_range_matches(Some("items 100-199/1000"), &r, 1000));
        assert!(!content_range_matches(None, &r, 1000));
    }

    proptest::proptest! {
        #[test]
        fn content_range_round_trips(start in 0u64..u64::MAX / 2, len in 1u64..1 << 40, extra in 0u64..1 << 40, star: bool) {
            let bytes = start..start + len;
            let file_length = bytes.end + extra;
            let total = if star { "*".to_owned() } else { file_length.to_string() };
            let header = format!("bytes {}-{}/{total}", bytes.start, bytes.end - 1);
            proptest::prop_assert!(content_range_matches(Some(&header), &bytes, file_length));
            let shifted = start + 1..start + len + 1;
            proptest::prop_assert!(!content_range_matches(Some(&header), &shifted, file_length + 1));
            if !star {
                proptest::prop_assert!(!content_range_matches(Some(&header), &bytes, file_length + 1));
            }
        }

        #[test]
        fn content_range_never_panics(text in ".{0,40}", start: u64, end: u64, total: u64) {
            let _ = content_range_matches(Some(&text), &(start..end), total);
        }
    }

    #[test]
    fn seconds_parsed() {
        assert_eq!(parse_seconds(" 120\r\n"), Some(Duration::from_secs(120)));
        assert_eq!(parse_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_seconds("-1"), None);
        assert_eq!(parse_seconds(""), None);
        assert_eq!(parse_seconds("99999999999999999999"), None);
    }
}
