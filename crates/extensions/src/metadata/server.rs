//! Answering `ut_metadata` requests from the info dictionary we have.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::{METADATA_PIECE_SIZE, MetadataMessage, piece_count};

/// Settings of a [`MetadataServer`]: a token bucket per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Requests answered in a burst. Default 64 (a 1 MiB info dictionary).
    pub burst: u32,
    /// Requests answered per second after the burst. Default 8 (128 KiB/s).
    pub per_second: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            burst: 64,
            per_second: 8,
        }
    }
}

/// Fixed-point scale of the token bucket: one request costs this many units.
const UNIT: u64 = 1000;

/// Answers one peer's `ut_metadata` requests (BEP 9) from the info dictionary.
///
/// Make one per connection, sharing the bytes through an [`Arc`]. Requests for pieces
/// out of range, and requests beyond the rate limit, are answered with a reject, so an
/// honest peer can retry later; data and rejects sent to us are not for the server and
/// get no answer. Advertise [`metadata_size`](Self::metadata_size) in our extension
/// handshake.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use webtorrent_extensions::{MetadataMessage, MetadataServer, ServerConfig};
///
/// let info: Arc<[u8]> = Arc::from(&b"d4:name1:ae"[..]);
/// let mut server = MetadataServer::new(info, ServerConfig::default());
/// let now = Instant::now();
/// assert_eq!(
///     server.handle(now, &MetadataMessage::Request { piece: 0 }),
///     Some(MetadataMessage::Data { piece: 0, total_size: Some(11), data: b"d4:name1:ae" }),
/// );
/// assert_eq!(
///     server.handle(now, &MetadataMessage::Request { piece: 1 }),
///     Some(MetadataMessage::Reject { piece: 1 }),
/// );
/// ```
#[derive(Debug, Clone)]
pub struct MetadataServer {
    info: Arc<[u8]>,
    config: ServerConfig,
    /// Tokens in units of 1/[`UNIT`] request.
    tokens: u64,
    last: Option<Instant>,
}

impl MetadataServer {
    /// A server for these info-dictionary bytes.
    #[must_use]
    pub fn new(info: Arc<[u8]>, config: ServerConfig) -> Self {
        let tokens = u64::from(config.burst) * UNIT;
        Self {
            info,
            config,
            tokens,
            last: None,
        }
    }

    /// The `metadata_size` to announce in the extension handshake.
    #[must_use]
    pub fn metadata_size(&self) -> u64 {
        self.info.len() as u64
    }

    /// The answer to a message from the peer: data or a reject for a request, `None`
    /// for anything else.
    pub fn handle(
        &mut self,
        now: Instant,
        message: &MetadataMessage<'_>,
    ) -> Option<MetadataMessage<'_>> {
        let MetadataMessage::Request { piece } = *message else {
            return None;
        };
        self.refill(now);
        if u64::from(piece) >= piece_count(self.metadata_size()) || self.tokens < UNIT {
            return Some(MetadataMessage::Reject { piece });
        }
        self.tokens -= UNIT;
        // `piece` is below the piece count, so its start is within the bytes.
        let start = piece as usize * METADATA_PIECE_SIZE;
        let end = (start + METADATA_PIECE_SIZE).min(self.info.len());
        Some(MetadataMessage::Data {
            piece,
            total_size: Some(self.metadata_size()),
            data: self.info.get(start..end).unwrap_or_default(),
        })
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = self
            .last
            .map_or(Duration::ZERO, |last| now.saturating_duration_since(last));
        self.last = Some(now);
        let per_ms = u64::from(self.config.per_second);
        let earned = u64::try_from(elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(per_ms);
        let cap = u64::from(self.config.burst) * UNIT;
        self.tokens = self.tokens.saturating_add(earned).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(len: usize) -> Arc<[u8]> {
        (0..len)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn serves_every_piece_and_rejects_out_of_range() {
        let bytes = info(2 * METADATA_PIECE_SIZE + 100);
        let mut server = MetadataServer::new(bytes.clone(), ServerConfig::default());
        let now = Instant::now();
        let mut got = Vec::new();
        for piece in 0..3 {
            match server.handle(now, &MetadataMessage::Request { piece }) {
                Some(MetadataMessage::Data {
                    piece: p,
                    total_size,
                    data,
                }) => {
                    assert_eq!(p, piece);
                    assert_eq!(total_size, Some(bytes.len() as u64));
                    got.extend_from_slice(data);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, &bytes[..]);
        for piece in [3, u32::MAX] {
            assert_eq!(
                server.handle(now, &MetadataMessage::Request { piece }),
                Some(MetadataMessage::Reject { piece })
            );
        }
        assert_eq!(
            server.handle(now, &MetadataMessage::Reject { piece: 0 }),
            None
        );
    }

    #[test]
    fn rate_limited_per_connection() {
        let config = ServerConfig {
            burst: 3,
            per_second: 2,
        };
        let mut server = MetadataServer::new(info(10), config);
        let t0 = Instant::now();
        let request = MetadataMessage::Request { piece: 0 };
        for _ in 0..3 {
            assert!(matches!(
                server.handle(t0, &request),
                Some(MetadataMessage::Data { .. })
            ));
        }
        assert_eq!(
            server.handle(t0, &request),
            Some(MetadataMessage::Reject { piece: 0 })
        );
        // Half a second earns one request at 2 per second.
        let t1 = t0 + Duration::from_millis(500);
        assert!(matches!(
            server.handle(t1, &request),
            Some(MetadataMessage::Data { .. })
        ));
        assert_eq!(
            server.handle(t1, &request),
            Some(MetadataMessage::Reject { piece: 0 })
        );
        // A long pause refills to the burst, no more.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(matches!(
                server.handle(t2, &request),
                Some(MetadataMessage::Data { .. })
            ));
        }
        assert_eq!(
            server.handle(t2, &request),
            Some(MetadataMessage::Reject { piece: 0 })
        );
    }
}
