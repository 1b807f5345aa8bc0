//! Protocol-independent announce and scrape types.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use webtorrent_types::{InfoHashV1, PeerId};

/// The interval used when a tracker's answer does not say (30 minutes).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// The `event` of an announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Event {
    /// A regular re-announce.
    #[default]
    None,
    /// The download finished (sent once, never for a torrent that was
    /// complete when it started).
    Completed,
    /// The first announce of a session.
    Started,
    /// The torrent is stopping.
    Stopped,
}

impl Event {
    /// The `event` query value of HTTP announces; `None` for [`Event::None`],
    /// which sends no `event` key.
    #[must_use]
    pub const fn http_name(self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::Completed => Some("completed"),
            Self::Started => Some("started"),
            Self::Stopped => Some("stopped"),
        }
    }

    /// The BEP 15 code: 0 none, 1 completed, 2 started, 3 stopped.
    #[must_use]
    pub const fn udp_code(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Completed => 1,
            Self::Started => 2,
            Self::Stopped => 3,
        }
    }

    /// The event of a BEP 15 code, if the code is known.
    #[must_use]
    pub const fn from_udp_code(code: u32) -> Option<Self> {
        match code {
            0 => Some(Self::None),
            1 => Some(Self::Completed),
            2 => Some(Self::Started),
            3 => Some(Self::Stopped),
            _ => None,
        }
    }
}

/// What a client tells a tracker in an announce (HTTP or UDP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent's 20-byte wire info-hash (the truncated v2 hash for a
    /// v2-only torrent).
    pub info_hash: InfoHashV1,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The port we accept peer connections on.
    pub port: u16,
    /// Bytes uploaded this session.
    pub uploaded: u64,
    /// Bytes downloaded this session.
    pub downloaded: u64,
    /// Bytes still missing.
    pub left: u64,
    /// The event.
    pub event: Event,
    /// Peers wanted; `None` lets the tracker choose.
    pub numwant: Option<u32>,
    /// Ask for a compact (BEP 23) peer list. HTTP only: UDP is always compact.
    pub compact: bool,
    /// A random key identifying this client across IP changes.
    pub key: Option<u32>,
    /// Our address, when it differs from the one the tracker sees. UDP can
    /// only carry an IPv4 address here.
    pub ip: Option<IpAddr>,
    /// The `tracker id` a previous response of this tracker gave (HTTP).
    pub trackerid: Option<Vec<u8>>,
}

impl AnnounceRequest {
    /// A request with the usual defaults: `compact`, no event, no optional
    /// fields, zero counters.
    #[must_use]
    pub const fn new(info_hash: InfoHashV1, peer_id: PeerId, port: u16) -> Self {
        Self {
            info_hash,
            peer_id,
            port,
            uploaded: 0,
            downloaded: 0,
            left: 0,
            event: Event::None,
            numwant: None,
            compact: true,
            key: None,
            ip: None,
            trackerid: None,
        }
    }
}

/// One peer from an announce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Where to connect.
    pub addr: SocketAddr,
    /// The peer id, when the tracker gave one (dictionary model only).
    pub peer_id: Option<PeerId>,
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Self {
        Self {
            addr,
            peer_id: None,
        }
    }
}

/// A tracker's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// When to announce again ([`DEFAULT_INTERVAL`] if the tracker did not say).
    pub interval: Duration,
    /// The tracker asks not to announce more often than this.
    pub min_interval: Option<Duration>,
    /// To be sent back as `trackerid` in later announces (HTTP).
    pub tracker_id: Option<Vec<u8>>,
    /// Seeders.
    pub complete: Option<u32>,
    /// Leechers.
    pub incomplete: Option<u32>,
    /// Peers, IPv4 and IPv6 together, in the order the tracker gave them.
    pub peers: Vec<Peer>,
    /// A `warning message` the tracker added to a successful answer.
    pub warning: Option<String>,
}

/// Swarm counts for one torrent from a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u32,
    /// Completed downloads ever reported.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
}

/// A tracker's answer to a scrape: counts per info-hash, in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrapeResponse {
    /// One entry per torrent the tracker knows about.
    pub files: Vec<(InfoHashV1, ScrapeStats)>,
}

impl ScrapeResponse {
    /// The counts for one info-hash, if the response has them.
    #[must_use]
    pub fn get(&self, info_hash: &InfoHashV1) -> Option<ScrapeStats> {
        self.files
            .iter()
            .find(|(h, _)| h == info_hash)
            .map(|(_, s)| *s)
    }
}
