//! What can go wrong fetching from a web seed.

use std::ops::Range;
use std::time::Duration;

use webtorrent_storage::StorageError;

/// An error from planning or running web seed requests.
///
/// Every variant but [`InvalidUrl`](Self::InvalidUrl), [`Layout`](Self::Layout) and
/// [`Setup`](Self::Setup) is about one seed at one moment: feed it to
/// [`Backoff::on_failure`](crate::Backoff::on_failure) and try the seed again later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebSeedError {
    /// The seed URL cannot be used (not `http://` or `https://`, or a BEP 17 URL with a
    /// fragment).
    #[error("unusable web seed URL {url:?}: {what}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// The piece or block asked for is not in the torrent.
    #[error(transparent)]
    Layout(#[from] StorageError),
    /// The HTTP client could not be built (TLS setup, for example).
    #[error("cannot set up the HTTP client: {message}")]
    Setup {
        /// What failed.
        message: String,
    },
    /// The server answered with a status that is not a success for this request
    /// (404, 5xx, or 503 "busy" with a wait time).
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The request URL.
        url: String,
        /// The status code.
        status: u16,
        /// How long the server asked us to wait (`Retry-After`, or the body of a BEP 17
        /// 503 answer).
        retry_after: Option<Duration>,
    },
    /// A 200 answer with the whole file to a request for part of it: the server ignores
    /// `Range`. The body is not read.
    #[error("{url}: the server ignored the byte range {range:?} and sent the whole file")]
    RangeIgnored {
        /// The request URL.
        url: String,
        /// The bytes of the file asked for.
        range: Range<u64>,
    },
    /// A 206 answer whose `Content-Range` is missing, malformed, or names other bytes or
    /// another file size than asked for.
    #[error("{url}: bad Content-Range {got:?} for bytes {expected:?} of {file_length} bytes")]
    BadContentRange {
        /// The request URL.
        url: String,
        /// The bytes of the file asked for.
        expected: Range<u64>,
        /// Length of the file in the torrent.
        file_length: u64,
        /// The header as received, `None` when missing or not text.
        got: Option<String>,
    },
    /// The body is not as long as the bytes asked for.
    #[error("{url}: expected {expected} bytes, got {got}{}", if *.more { " or more" } else { "" })]
    WrongLength {
        /// The request URL.
        url: String,
        /// Bytes asked for.
        expected: u64,
        /// Bytes announced (`Content-Length`) or received.
        got: u64,
        /// Whether reading stopped early because the body was already too long.
        more: bool,
    },
    /// The request did not complete in time, or the answer stalled (see
    /// [`WebSeedConfig::timeout`](crate::WebSeedConfig::timeout) and
    /// [`WebSeedConfig::idle_timeout`](crate::WebSeedConfig::idle_timeout)).
    #[error("{url}: no complete answer within {after:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// The time allowed (the shorter of the two timeouts).
        after: Duration,
    },
    /// More redirects than [`WebSeedConfig::max_redirects`](crate::WebSeedConfig::max_redirects).
    #[error("{url}: too many redirects")]
    TooManyRedirects {
        /// The request URL.
        url: String,
    },
    /// The connection failed: DNS, refused, reset, TLS, or a malformed HTTP answer.
    #[error("{url}: connection failed: {message}")]
    Connection {
        /// The request URL.
        url: String,
        /// The error chain from the HTTP stack.
        message: String,
    },
}

impl WebSeedError {
    /// The wait the server asked for, if it did.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether trying again can never help: the URL is unusable or the client cannot be
    /// set up. [`Layout`](Self::Layout) errors are the caller's bug and not the seed's
    /// fault, so they are not permanent for the seed either.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::InvalidUrl { .. } | Self::Setup { .. })
    }

    /// The HTTP status code, for [`HttpStatus`](Self::HttpStatus).
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }
}
