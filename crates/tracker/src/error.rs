//! The error type of every tracker operation.

use std::time::Duration;

/// Why an announce or a scrape did not produce a usable answer.
///
/// Variants carry the data needed to log or act on them: a tracker's own
/// `failure reason` is [`TrackerError::Failure`], and a response that cannot
/// be understood is [`TrackerError::Malformed`] or [`TrackerError::Bencode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// The tracker refused the request with a `failure reason` (HTTP) or an
    /// error packet (UDP action 3).
    #[error("tracker failure: {reason}")]
    Failure {
        /// The tracker's text, decoded lossily as UTF-8.
        reason: String,
    },
    /// The HTTP response body is not valid bencode.
    #[error("tracker response is not bencode: {0}")]
    Bencode(#[from] webtorrent_bencode::DecodeError),
    /// The response is well-formed at the transport level but does not have
    /// the shape the protocol requires.
    #[error("malformed tracker response: {what}")]
    Malformed {
        /// Which part of the response was wrong.
        what: &'static str,
    },
    /// More peers (or scrape entries) than this crate accepts in one response.
    #[error("tracker response lists {count} entries, more than the limit of {limit}")]
    TooManyEntries {
        /// Entries in the response.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The HTTP tracker answered with a non-success status.
    #[error("tracker answered HTTP status {status}")]
    HttpStatus {
        /// The status code.
        status: u16,
    },
    /// The HTTP response body is larger than the configured cap.
    #[error("tracker response exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// No answer came in time: after `attempts` transmissions (UDP) or
    /// within the request timeout (HTTP).
    #[error("tracker did not answer after {attempts} attempt(s) over {waited:?}")]
    Timeout {
        /// Transmissions made.
        attempts: u32,
        /// Total time waited.
        waited: Duration,
    },
    /// The announce URL cannot be used (bad scheme, no host, …).
    #[error("invalid tracker URL {url:?}: {what}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// A scrape asked for more info-hashes than fit in one request.
    #[error("scrape of {count} info-hashes exceeds the limit of {limit}")]
    TooManyInfoHashes {
        /// Info-hashes asked for.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A transport error from the async clients (DNS, socket, TLS, HTTP),
    /// kept as text so that the error stays `Clone` and `Eq`.
    #[error("tracker transport error: {message}")]
    Transport {
        /// The underlying error's text.
        message: String,
    },
    /// A WebSocket tracker sent a frame that cannot be decoded. The
    /// connection stays up: each frame stands alone.
    #[error("bad WebSocket tracker frame: {0}")]
    Frame(#[from] crate::ws::WsDecodeError),
    /// The torrent is already announced on this WebSocket tracker by the same
    /// client (a tracker connection carries each info-hash once).
    #[error("info-hash already announced on this WebSocket tracker")]
    AlreadyAnnounced,
    /// The operation was cancelled because the client shut down.
    #[error("tracker client shut down")]
    Shutdown,
}
