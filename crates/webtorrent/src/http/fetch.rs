//! Fetching a `.torrent` by URL for `POST /api/torrents {"url": …}`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;

use super::ApiError;

/// A lazily made HTTP(S) client (rustls with the *ring* provider and the platform's
/// certificate verifier), bounded in time and size.
#[derive(Debug)]
pub(super) struct Fetcher {
    client: OnceLock<Result<reqwest::Client, String>>,
    timeout: Duration,
    max: usize,
}

impl Fetcher {
    pub(super) fn new(timeout: Duration, max: usize) -> Self {
        Self {
            client: OnceLock::new(),
            timeout,
            max,
        }
    }

    fn client(&self) -> Result<&reqwest::Client, ApiError> {
        self.client
            .get_or_init(|| make_client(self.timeout))
            .as_ref()
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.clone()))
    }

    /// The body at `url` (`http://` or `https://`), at most the configured size.
    pub(super) async fn get(&self, url: &str) -> Result<Vec<u8>, ApiError> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "only http:// and https:// URLs (or magnet links) can be added",
            ));
        }
        let client = self.client()?;
        let bad = |e: reqwest::Error| {
            let status = if e.is_timeout() {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            ApiError::new(status, format!("cannot fetch {url}: {e}"))
        };
        let fetch = async {
            let mut response = client.get(parsed).send().await.map_err(bad)?;
            if !response.status().is_success() {
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("{url} answered {}", response.status()),
                ));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(bad)? {
                if body.len() + chunk.len() > self.max {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("{url} is larger than {} bytes", self.max),
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, fetch)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("{url} did not answer in time"),
                )
            })?
    }
}

fn make_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new(Arc::clone(&provider))
        .map_err(|e| format!("certificate verifier: {e}"))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(timeout)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}
