//! `HttpTracker`: announce and scrape over HTTP(S) with reqwest and rustls.

use std::sync::Arc;
use std::time::Duration;

use webtorrent_types::InfoHashV1;

use crate::{AnnounceRequest, AnnounceResponse, ScrapeResponse, TrackerError, http};

/// Settings of [`HttpTracker`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Time allowed for a whole request, connection to last body byte.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_response_bytes: 4 << 20,
            user_agent: concat!("webtorrent-rs/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl HttpConfig {
    /// The same settings with another timeout.
    #[must_use]
    pub const fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same settings with another response size cap.
    #[must_use]
    pub const fn with_max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }
}

/// An HTTP(S) tracker client (BEP 3, 7, 23, 48). Cheap to clone; one
/// instance serves any number of trackers and torrents.
///
/// TLS is rustls with the *ring* provider and the platform's certificate
/// verifier, configured here rather than through a process-wide default.
///
/// ```no_run
/// # async fn run() -> Result<(), webtorrent_tracker::TrackerError> {
/// use webtorrent_tracker::{AnnounceRequest, HttpConfig, HttpTracker};
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let client = HttpTracker::new(HttpConfig::default())?;
/// let req = AnnounceRequest::new(InfoHashV1([0; 20]), PeerId::ours([7; 12]), 6881);
/// let resp = client.announce("https://tracker.example/announce", &req).await?;
/// println!("{} peers, next announce in {:?}", resp.peers.len(), resp.interval);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpTracker {
    client: reqwest::Client,
    config: Arc<HttpConfig>,
}

fn transport(error: &reqwest::Error) -> TrackerError {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    TrackerError::Transport { message }
}

impl HttpTracker {
    /// A client with these settings.
    ///
    /// # Errors
    /// [`TrackerError::Transport`] if the TLS or HTTP stack cannot be set up
    /// (for example no platform certificate store).
    pub fn new(config: HttpConfig) -> Result<Self, TrackerError> {
        let setup = |what: &str, e: &dyn std::fmt::Display| TrackerError::Transport {
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
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| transport(&e))?;
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    /// Announces to the tracker at `url` (`http://` or `https://`).
    ///
    /// # Errors
    /// [`TrackerError::Failure`] when the tracker refuses,
    /// [`TrackerError::Timeout`], [`TrackerError::HttpStatus`],
    /// [`TrackerError::ResponseTooLarge`], [`TrackerError::Transport`], or a
    /// parse error.
    pub async fn announce(
        &self,
        url: &str,
        request: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        check_scheme(url)?;
        let body = self.get(&http::announce_url(url, request)).await?;
        http::parse_announce_response(&body)
    }

    /// Scrapes the tracker whose announce URL is `url` (BEP 48) for some
    /// torrents (all the tracker has, if `info_hashes` is empty).
    ///
    /// # Errors
    /// [`TrackerError::InvalidUrl`] when the announce URL has no scrape URL;
    /// otherwise as [`announce`](Self::announce).
    pub async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHashV1],
    ) -> Result<ScrapeResponse, TrackerError> {
        check_scheme(url)?;
        let scrape =
            http::scrape_url_for(url, info_hashes).ok_or_else(|| TrackerError::InvalidUrl {
                url: url.to_owned(),
                what: "the last path component does not start with `announce`",
            })?;
        let body = self.get(&scrape).await?;
        http::parse_scrape_response(&body)
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, TrackerError> {
        let timeout = |_| TrackerError::Timeout {
            attempts: 1,
            waited: self.config.timeout,
        };
        let map = |e: reqwest::Error| {
            if e.is_timeout() {
                timeout(())
            } else {
                // The URL holds the announce parameters and maybe a passkey: errors are
                // logged and shown, so it stays out of them.
                transport(&e.without_url())
            }
        };
        let mut response = self.client.get(url).send().await.map_err(map)?;
        let status = response.status();
        let limit = self.config.max_response_bytes;
        if let Some(len) = response.content_length()
            && usize::try_from(len).map_or(true, |len| len > limit)
        {
            return Err(TrackerError::ResponseTooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map)? {
            if body.len() + chunk.len() > limit {
                return Err(TrackerError::ResponseTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Some trackers send their `failure reason` with an error status.
            if let Err(e @ TrackerError::Failure { .. }) = http::parse_announce_response(&body) {
                return Err(e);
            }
            return Err(TrackerError::HttpStatus {
                status: status.as_u16(),
            });
        }
        Ok(body)
    }
}

fn check_scheme(url: &str) -> Result<(), TrackerError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err(TrackerError::InvalidUrl {
            url: url.to_owned(),
            what: "not an http:// or https:// URL",
        })
    }
}
