//! UDP tracker protocol (BEP 15), without I/O: the packet codec and
//! [`UdpTrackerMachine`], a per-tracker state machine driven by datagrams
//! and a clock the caller supplies.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use webtorrent_types::{InfoHashV1, PeerId};

use crate::{
    AnnounceRequest, AnnounceResponse, Event, Peer, ScrapeResponse, ScrapeStats, TrackerError,
};

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// The most info-hashes one scrape packet may carry.
pub const MAX_SCRAPE_HASHES: usize = 74;
/// The most peers decoded from one announce response (a datagram is at most
/// 64 KiB, so this is never reached over a real socket).
pub const MAX_UDP_PEERS: usize = 65_536 / 6;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// The address family of the socket a tracker is reached over; it decides
/// the size of peer entries in announce responses (6 or 18 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AddressFamily {
    /// IPv4: 6-byte peers.
    V4,
    /// IPv6: 18-byte peers.
    V6,
}

impl AddressFamily {
    /// The family of a socket address.
    #[must_use]
    pub const fn of(addr: &SocketAddr) -> Self {
        match addr {
            SocketAddr::V4(_) => Self::V4,
            SocketAddr::V6(_) => Self::V6,
        }
    }

    const fn peer_len(self) -> usize {
        match self {
            Self::V4 => 6,
            Self::V6 => 18,
        }
    }
}

/// The body of a BEP 15 announce request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpAnnounce {
    /// Info-hash.
    pub info_hash: InfoHashV1,
    /// Peer id.
    pub peer_id: PeerId,
    /// Bytes downloaded.
    pub downloaded: u64,
    /// Bytes left.
    pub left: u64,
    /// Bytes uploaded.
    pub uploaded: u64,
    /// Event.
    pub event: Event,
    /// Our IPv4 address, or 0 for "the packet's source".
    pub ip: Ipv4Addr,
    /// Key.
    pub key: u32,
    /// Peers wanted; -1 for the tracker's default.
    pub num_want: i32,
    /// Our peer port.
    pub port: u16,
}

impl From<&AnnounceRequest> for UdpAnnounce {
    fn from(r: &AnnounceRequest) -> Self {
        Self {
            info_hash: r.info_hash,
            peer_id: r.peer_id,
            downloaded: r.downloaded,
            left: r.left,
            uploaded: r.uploaded,
            event: r.event,
            ip: match r.ip {
                Some(IpAddr::V4(ip)) => ip,
                _ => Ipv4Addr::UNSPECIFIED,
            },
            key: r.key.unwrap_or(0),
            num_want: r
                .numwant
                .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
            port: r.port,
        }
    }
}

/// A BEP 15 request packet (client to tracker).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpRequest {
    /// Action 0.
    Connect {
        /// Transaction id.
        transaction_id: u32,
    },
    /// Action 1.
    Announce {
        /// Connection id from a connect response.
        connection_id: u64,
        /// Transaction id.
        transaction_id: u32,
        /// The announce.
        announce: UdpAnnounce,
    },
    /// Action 2.
    Scrape {
        /// Connection id from a connect response.
        connection_id: u64,
        /// Transaction id.
        transaction_id: u32,
        /// Up to [`MAX_SCRAPE_HASHES`] info-hashes.
        info_hashes: Vec<InfoHashV1>,
    },
}

/// A BEP 15 response packet (tracker to client).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpResponse {
    /// Action 0.
    Connect {
        /// Transaction id.
        transaction_id: u32,
        /// Connection id to use in the next requests.
        connection_id: u64,
    },
    /// Action 1.
    Announce {
        /// Transaction id.
        transaction_id: u32,
        /// Re-announce interval in seconds.
        interval: u32,
        /// Leechers.
        leechers: u32,
        /// Seeders.
        seeders: u32,
        /// Peers; all IPv4 or all IPv6, after the socket's family.
        peers: Vec<SocketAddr>,
    },
    /// Action 2: counts in the order of the request's info-hashes.
    Scrape {
        /// Transaction id.
        transaction_id: u32,
        /// Counts.
        stats: Vec<ScrapeStats>,
    },
    /// Action 3.
    Error {
        /// Transaction id.
        transaction_id: u32,
        /// The tracker's message.
        message: String,
    },
}

/// Why a datagram is not a valid BEP 15 packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpDecodeError {
    /// Shorter than its action requires.
    #[error("UDP tracker packet of {len} bytes is too short")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// An action number this side does not know.
    #[error("unknown UDP tracker action {action}")]
    UnknownAction {
        /// The action.
        action: u32,
    },
    /// A connect request without the magic protocol id.
    #[error("wrong protocol id {id:#x}")]
    WrongProtocolId {
        /// The id found.
        id: u64,
    },
    /// Bytes after a fixed-size packet, or a body that is not a whole
    /// number of entries.
    #[error("UDP tracker packet has {extra} stray trailing byte(s)")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// An announce event number that is not 0-3.
    #[error("unknown announce event {code}")]
    UnknownEvent {
        /// The number.
        code: u32,
    },
    /// A scrape with no info-hash or more than [`MAX_SCRAPE_HASHES`].
    #[error("scrape request with {count} info-hashes")]
    BadScrapeCount {
        /// The count.
        count: usize,
    },
}

impl From<UdpDecodeError> for TrackerError {
    fn from(e: UdpDecodeError) -> Self {
        Self::Malformed {
            what: match e {
                UdpDecodeError::TooShort { .. } => "UDP packet too short",
                UdpDecodeError::UnknownAction { .. } => "unknown UDP action",
                UdpDecodeError::WrongProtocolId { .. } => "wrong UDP protocol id",
                UdpDecodeError::TrailingBytes { .. } => "UDP packet has trailing bytes",
                UdpDecodeError::UnknownEvent { .. } => "unknown UDP announce event",
                UdpDecodeError::BadScrapeCount { .. } => "bad UDP scrape count",
            },
        }
    }
}

/// A bounds-checked big-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], UdpDecodeError> {
        let end = self.pos + N;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(UdpDecodeError::TooShort {
                len: self.buf.len(),
            })?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, UdpDecodeError> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, UdpDecodeError> {
        self.take().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, UdpDecodeError> {
        self.take().map(u64::from_be_bytes)
    }

    fn rest(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos..];
        self.pos = self.buf.len();
        rest
    }

    const fn finish(&self) -> Result<(), UdpDecodeError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(UdpDecodeError::TrailingBytes {
                extra: self.buf.len() - self.pos,
            })
        }
    }
}

impl UdpRequest {
    /// The transaction id.
    #[must_use]
    pub const fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id }
            | Self::Announce { transaction_id, .. }
            | Self::Scrape { transaction_id, .. } => *transaction_id,
        }
    }

    /// Appends the packet to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Self::Announce {
                connection_id,
                transaction_id,
                announce: a,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(a.info_hash.as_bytes());
                out.extend_from_slice(a.peer_id.as_bytes());
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&a.event.udp_code().to_be_bytes());
                out.extend_from_slice(&a.ip.octets());
                out.extend_from_slice(&a.key.to_be_bytes());
                out.extend_from_slice(&a.num_want.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
            }
            Self::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for h in info_hashes {
                    out.extend_from_slice(h.as_bytes());
                }
            }
        }
    }

    /// Decodes a request packet (the tracker's side). Bytes after an
    /// announce (BEP 41 options) are ignored.
    ///
    /// # Errors
    /// [`UdpDecodeError`] for anything that is not a valid request.
    pub fn decode(packet: &[u8]) -> Result<Self, UdpDecodeError> {
        let mut r = Reader::new(packet);
        let connection_id = r.u64()?;
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => {
                if connection_id != PROTOCOL_ID {
                    return Err(UdpDecodeError::WrongProtocolId { id: connection_id });
                }
                r.finish()?;
                Ok(Self::Connect { transaction_id })
            }
            ACTION_ANNOUNCE => {
                let info_hash = InfoHashV1(r.take()?);
                let peer_id = PeerId(r.take()?);
                let downloaded = r.u64()?;
                let left = r.u64()?;
                let uploaded = r.u64()?;
                let code = r.u32()?;
                let event =
                    Event::from_udp_code(code).ok_or(UdpDecodeError::UnknownEvent { code })?;
                let ip = Ipv4Addr::from(r.take::<4>()?);
                let key = r.u32()?;
                let num_want = i32::from_be_bytes(r.take()?);
                let port = r.u16()?;
                Ok(Self::Announce {
                    connection_id,
                    transaction_id,
                    announce: UdpAnnounce {
                        info_hash,
                        peer_id,
                        downloaded,
                        left,
                        uploaded,
                        event,
                        ip,
                        key,
                        num_want,
                        port,
                    },
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                let count = rest.len() / 20;
                if !rest.len().is_multiple_of(20) {
                    return Err(UdpDecodeError::TrailingBytes {
                        extra: rest.len() % 20,
                    });
                }
                if count == 0 || count > MAX_SCRAPE_HASHES {
                    return Err(UdpDecodeError::BadScrapeCount { count });
                }
                let info_hashes = rest
                    .chunks_exact(20)
                    .map(|c| {
                        let mut h = [0u8; 20];
                        h.copy_from_slice(c);
                        InfoHashV1(h)
                    })
                    .collect();
                Ok(Self::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            action => Err(UdpDecodeError::UnknownAction { action }),
        }
    }
}

impl UdpResponse {
    /// The transaction id.
    #[must_use]
    pub const fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id, .. }
            | Self::Announce { transaction_id, .. }
            | Self::Scrape { transaction_id, .. }
            | Self::Error { transaction_id, .. } => *transaction_id,
        }
    }

    /// Appends the packet to `out`. Announce peers are written in their own
    /// family's size; a tracker sends one family per socket.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Self::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&interval.to_be_bytes());
                out.extend_from_slice(&leechers.to_be_bytes());
                out.extend_from_slice(&seeders.to_be_bytes());
                for p in peers {
                    crate::http::encode_compact(out, p);
                }
            }
            Self::Scrape {
                transaction_id,
                stats,
            } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats {
                    out.extend_from_slice(&s.complete.to_be_bytes());
                    out.extend_from_slice(&s.downloaded.to_be_bytes());
                    out.extend_from_slice(&s.incomplete.to_be_bytes());
                }
            }
            Self::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
    }

    /// Decodes a response packet received over a socket of `family`.
    ///
    /// # Errors
    /// [`UdpDecodeError`] for anything that is not a valid response.
    pub fn decode(packet: &[u8], family: AddressFamily) -> Result<Self, UdpDecodeError> {
        let mut r = Reader::new(packet);
        let action = r.u32()?;
        let transaction_id = r.u32()?;
        match action {
            ACTION_CONNECT => {
                let connection_id = r.u64()?;
                r.finish()?;
                Ok(Self::Connect {
                    transaction_id,
                    connection_id,
                })
            }
            ACTION_ANNOUNCE => {
                let interval = r.u32()?;
                let leechers = r.u32()?;
                let seeders = r.u32()?;
                let rest = r.rest();
                let len = family.peer_len();
                if !rest.len().is_multiple_of(len) {
                    return Err(UdpDecodeError::TrailingBytes {
                        extra: rest.len() % len,
                    });
                }
                let peers = rest
                    .chunks_exact(len)
                    .take(MAX_UDP_PEERS)
                    .map(|c| {
                        let port = u16::from_be_bytes([c[len - 2], c[len - 1]]);
                        let ip = if len == 6 {
                            IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                        } else {
                            let mut o = [0u8; 16];
                            o.copy_from_slice(&c[..16]);
                            IpAddr::V6(Ipv6Addr::from(o))
                        };
                        SocketAddr::new(ip, port)
                    })
                    .collect();
                Ok(Self::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                if !rest.len().is_multiple_of(12) {
                    return Err(UdpDecodeError::TrailingBytes {
                        extra: rest.len() % 12,
                    });
                }
                let stats = rest
                    .chunks_exact(12)
                    .take(MAX_SCRAPE_HASHES)
                    .map(|c| {
                        let n = |i: usize| u32::from_be_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                        ScrapeStats {
                            complete: n(0),
                            downloaded: n(4),
                            incomplete: n(8),
                        }
                    })
                    .collect();
                Ok(Self::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => Ok(Self::Error {
                transaction_id,
                message: String::from_utf8_lossy(r.rest()).into_owned(),
            }),
            action => Err(UdpDecodeError::UnknownAction { action }),
        }
    }
}

/// Timing of [`UdpTrackerMachine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpConfig {
    /// The first retransmission timeout; attempt `n` waits `base_timeout·2^n`
    /// (BEP 15: 15 s).
    pub base_timeout: Duration,
    /// Retransmissions before giving up (BEP 15: 8, so the last wait is
    /// 3840 s).
    pub max_retransmits: u32,
    /// How long a connection id stays usable (BEP 15: 60 s).
    pub connection_lifetime: Duration,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            base_timeout: Duration::from_secs(15),
            max_retransmits: 8,
            connection_lifetime: Duration::from_secs(60),
        }
    }
}

impl UdpConfig {
    /// The same timings with a different first timeout (clients often use a
    /// few seconds instead of 15).
    #[must_use]
    pub const fn with_base_timeout(mut self, base: Duration) -> Self {
        self.base_timeout = base;
        self
    }

    /// The same timings with a different retransmission count.
    #[must_use]
    pub const fn with_max_retransmits(mut self, n: u32) -> Self {
        self.max_retransmits = n;
        self
    }

    fn timeout(&self, attempt: u32) -> Duration {
        self.base_timeout
            .saturating_mul(1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX))
    }
}

/// Identifies an operation of a [`UdpTrackerMachine`] in its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// What a [`UdpTrackerMachine`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UdpEvent {
    /// An announce finished.
    Announced {
        /// The operation.
        op: OpId,
        /// The answer.
        response: AnnounceResponse,
    },
    /// A scrape finished.
    Scraped {
        /// The operation.
        op: OpId,
        /// The answer.
        response: ScrapeResponse,
    },
    /// An operation failed: tracker error packet, malformed answer or
    /// timeout.
    Failed {
        /// The operation.
        op: OpId,
        /// Why.
        error: TrackerError,
    },
}

#[derive(Debug)]
enum Job {
    Announce(UdpAnnounce),
    Scrape(Vec<InfoHashV1>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connecting,
    Requesting,
}

#[derive(Debug)]
struct Current {
    op: OpId,
    job: Job,
    stage: Stage,
    transaction_id: u32,
    /// `n` of BEP 15: retransmissions since the last answer.
    attempt: u32,
    /// Transmissions over the whole operation.
    transmissions: u32,
    started: Instant,
    deadline: Instant,
}

/// The client side of BEP 15 for one tracker address, sans-IO.
///
/// Operations ([`announce`](Self::announce), [`scrape`](Self::scrape)) are
/// queued and run one at a time: connect (when no connection id younger
/// than [`UdpConfig::connection_lifetime`] is at hand), then the request,
/// each sent with a fresh transaction id and retransmitted after
/// `base_timeout·2^n`, `n` counting retransmissions since the tracker last
/// answered. The operation fails with [`TrackerError::Timeout`] once `n`
/// reaches [`UdpConfig::max_retransmits`] unanswered, or after
/// `2·(max_retransmits + 1)` transmissions in all (a tracker that answers
/// connects but never announces cannot keep it alive). Responses must carry
/// the pending transaction id; others are not accepted.
///
/// The run loop: after any call, drain [`poll_transmit`](Self::poll_transmit)
/// (send each datagram to the tracker) and [`poll_event`](Self::poll_event),
/// then sleep until [`poll_timeout`](Self::poll_timeout) or the next
/// datagram, and call [`handle_timeout`](Self::handle_timeout) or
/// [`handle_input`](Self::handle_input).
///
/// ```
/// use std::time::{Duration, Instant};
/// use webtorrent_tracker::udp::{AddressFamily, UdpConfig, UdpEvent, UdpResponse, UdpTrackerMachine};
/// use webtorrent_tracker::AnnounceRequest;
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let mut next_tid = 7u32;
/// let mut m = UdpTrackerMachine::new(AddressFamily::V4, UdpConfig::default(),
///     Box::new(move || { next_tid += 1; next_tid }));
/// let now = Instant::now();
/// let req = AnnounceRequest::new(InfoHashV1([1; 20]), PeerId([2; 20]), 6881);
/// let op = m.announce(now, &req);
///
/// let mut out = Vec::new();
/// assert!(m.poll_transmit(&mut out)); // the connect request
/// let mut answer = Vec::new();
/// UdpResponse::Connect { transaction_id: 8, connection_id: 99 }.encode(&mut answer);
/// assert!(m.handle_input(now, &answer));
/// assert!(m.poll_transmit(&mut out)); // the announce
/// answer.clear();
/// UdpResponse::Announce { transaction_id: 9, interval: 600, leechers: 1, seeders: 2,
///     peers: vec!["10.0.0.1:6881".parse().unwrap()] }.encode(&mut answer);
/// assert!(m.handle_input(now + Duration::from_millis(30), &answer));
/// match m.poll_event() {
///     Some(UdpEvent::Announced { op: o, response }) => {
///         assert_eq!(o, op);
///         assert_eq!(response.peers.len(), 1);
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(m.poll_timeout(), None);
/// ```
pub struct UdpTrackerMachine {
    family: AddressFamily,
    config: UdpConfig,
    transaction_ids: Box<dyn FnMut() -> u32 + Send>,
    connection: Option<(u64, Instant)>,
    queue: VecDeque<(OpId, Job)>,
    current: Option<Current>,
    next_op: u64,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<UdpEvent>,
}

impl std::fmt::Debug for UdpTrackerMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpTrackerMachine")
            .field("family", &self.family)
            .field("config", &self.config)
            .field("connection", &self.connection)
            .field("queued", &self.queue.len())
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl UdpTrackerMachine {
    /// A machine for a tracker reached over a socket of `family`.
    /// `transaction_ids` is the caller's random source for transaction ids
    /// (BEP 15 asks for random ones, so that spoofed answers are unlikely
    /// to match).
    #[must_use]
    pub fn new(
        family: AddressFamily,
        config: UdpConfig,
        transaction_ids: Box<dyn FnMut() -> u32 + Send>,
    ) -> Self {
        Self {
            family,
            config,
            transaction_ids,
            connection: None,
            queue: VecDeque::new(),
            current: None,
            next_op: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    fn push(&mut self, now: Instant, job: Job) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        self.queue.push_back((op, job));
        self.start_next(now);
        op
    }

    /// Queues an announce.
    pub fn announce(&mut self, now: Instant, request: &AnnounceRequest) -> OpId {
        self.push(now, Job::Announce(UdpAnnounce::from(request)))
    }

    /// Queues a scrape of up to [`MAX_SCRAPE_HASHES`] torrents.
    ///
    /// # Errors
    /// [`TrackerError::TooManyInfoHashes`] for more, or none.
    pub fn scrape(
        &mut self,
        now: Instant,
        info_hashes: &[InfoHashV1],
    ) -> Result<OpId, TrackerError> {
        if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
            return Err(TrackerError::TooManyInfoHashes {
                count: info_hashes.len(),
                limit: MAX_SCRAPE_HASHES,
            });
        }
        Ok(self.push(now, Job::Scrape(info_hashes.to_vec())))
    }

    /// Whether `datagram` answers the pending transmission (right length
    /// for a header and matching transaction id), for demultiplexing a
    /// shared socket.
    #[must_use]
    pub fn accepts(&self, datagram: &[u8]) -> bool {
        let Some(cur) = &self.current else {
            return false;
        };
        datagram.len() >= 8
            && u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]])
                == cur.transaction_id
    }

    fn connection_id(&self, now: Instant) -> Option<u64> {
        self.connection
            .filter(|(_, at)| now.saturating_duration_since(*at) < self.config.connection_lifetime)
            .map(|(id, _)| id)
    }

    fn start_next(&mut self, now: Instant) {
        if self.current.is_some() {
            return;
        }
        let Some((op, job)) = self.queue.pop_front() else {
            return;
        };
        self.current = Some(Current {
            op,
            job,
            stage: Stage::Connecting,
            transaction_id: 0,
            attempt: 0,
            transmissions: 0,
            started: now,
            deadline: now,
        });
        self.transmit(now);
    }

    /// Sends (or re-sends) the current operation's next packet with a fresh
    /// transaction id, connecting first when the connection id is stale.
    fn transmit(&mut self, now: Instant) {
        let connection_id = self.connection_id(now);
        let tid = (self.transaction_ids)();
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        let timeout = self.config.timeout(cur.attempt);
        cur.transmissions += 1;
        cur.transaction_id = tid;
        cur.deadline = now + timeout;
        let request = match connection_id {
            None => {
                cur.stage = Stage::Connecting;
                UdpRequest::Connect {
                    transaction_id: tid,
                }
            }
            Some(connection_id) => {
                cur.stage = Stage::Requesting;
                match &cur.job {
                    Job::Announce(a) => UdpRequest::Announce {
                        connection_id,
                        transaction_id: tid,
                        announce: *a,
                    },
                    Job::Scrape(h) => UdpRequest::Scrape {
                        connection_id,
                        transaction_id: tid,
                        info_hashes: h.clone(),
                    },
                }
            }
        };
        let mut buf = Vec::with_capacity(98);
        request.encode(&mut buf);
        self.transmits.push_back(buf);
    }

    fn finish(&mut self, now: Instant, event: UdpEvent) {
        self.current = None;
        self.events.push_back(event);
        self.start_next(now);
    }

    fn fail(&mut self, now: Instant, op: OpId, error: TrackerError) {
        self.finish(now, UdpEvent::Failed { op, error });
    }

    /// Feeds a datagram received from the tracker. Returns whether it was
    /// taken (it matched the pending transaction); a datagram that is not
    /// taken changes nothing.
    pub fn handle_input(&mut self, now: Instant, datagram: &[u8]) -> bool {
        if !self.accepts(datagram) {
            return false;
        }
        let Some(cur) = self.current.as_ref() else {
            return false;
        };
        let (op, stage) = (cur.op, cur.stage);
        let scrape_hashes = match &cur.job {
            Job::Scrape(h) => Some(h.clone()),
            Job::Announce(_) => None,
        };
        let response = match UdpResponse::decode(datagram, self.family) {
            Ok(r) => r,
            Err(e) => {
                self.fail(now, op, e.into());
                return true;
            }
        };
        match (stage, response) {
            (_, UdpResponse::Error { message, .. }) => {
                self.fail(now, op, TrackerError::Failure { reason: message });
            }
            (Stage::Connecting, UdpResponse::Connect { connection_id, .. }) => {
                self.connection = Some((connection_id, now));
                if let Some(cur) = self.current.as_mut() {
                    cur.attempt = 0;
                }
                self.transmit(now);
            }
            (
                Stage::Requesting,
                UdpResponse::Announce {
                    interval,
                    leechers,
                    seeders,
                    peers,
                    ..
                },
            ) if scrape_hashes.is_none() => {
                let response = AnnounceResponse {
                    interval: Duration::from_secs(u64::from(interval)),
                    min_interval: None,
                    tracker_id: None,
                    complete: Some(seeders),
                    incomplete: Some(leechers),
                    peers: peers.into_iter().map(Peer::from).collect(),
                    warning: None,
                };
                self.finish(now, UdpEvent::Announced { op, response });
            }
            (Stage::Requesting, UdpResponse::Scrape { stats, .. }) => {
                let Some(hashes) = scrape_hashes else {
                    self.fail(
                        now,
                        op,
                        TrackerError::Malformed {
                            what: "UDP response action does not match the request",
                        },
                    );
                    return true;
                };
                if stats.len() > hashes.len() {
                    self.fail(
                        now,
                        op,
                        TrackerError::Malformed {
                            what: "UDP scrape answers more torrents than asked",
                        },
                    );
                    return true;
                }
                let files = hashes.into_iter().zip(stats).collect();
                self.finish(
                    now,
                    UdpEvent::Scraped {
                        op,
                        response: ScrapeResponse { files },
                    },
                );
            }
            _ => self.fail(
                now,
                op,
                TrackerError::Malformed {
                    what: "UDP response action does not match the request",
                },
            ),
        }
        true
    }

    /// Advances the clock: retransmits, or gives up on, an operation whose
    /// timeout has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        if now < cur.deadline {
            return;
        }
        let cap = self
            .config
            .max_retransmits
            .saturating_add(1)
            .saturating_mul(2);
        if cur.attempt >= self.config.max_retransmits || cur.transmissions >= cap {
            let error = TrackerError::Timeout {
                attempts: cur.transmissions,
                waited: now.saturating_duration_since(cur.started),
            };
            let op = cur.op;
            self.fail(now, op, error);
        } else {
            if let Some(cur) = self.current.as_mut() {
                cur.attempt += 1;
            }
            self.transmit(now);
        }
    }

    /// The next datagram to send to the tracker, written into `out`
    /// (cleared first). `false` when there is none.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        out.clear();
        match self.transmits.pop_front() {
            Some(packet) => {
                out.extend_from_slice(&packet);
                true
            }
            None => false,
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next;
    /// `None` when idle.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.as_ref().map(|c| c.deadline)
    }

    /// The next finished operation.
    pub fn poll_event(&mut self) -> Option<UdpEvent> {
        self.events.pop_front()
    }

    /// Operations queued or running.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.queue.len() + usize::from(self.current.is_some())
    }

    /// Whether the machine holds nothing worth keeping at `now`: no
    /// operation and no connection id still valid.
    #[must_use]
    pub fn is_idle(&self, now: Instant) -> bool {
        self.pending() == 0 && self.connection_id(now).is_none()
    }

    /// Fails every queued and running operation with [`TrackerError::Shutdown`].
    pub fn cancel_all(&mut self) {
        if let Some(cur) = self.current.take() {
            self.events.push_back(UdpEvent::Failed {
                op: cur.op,
                error: TrackerError::Shutdown,
            });
        }
        while let Some((op, _)) = self.queue.pop_front() {
            self.events.push_back(UdpEvent::Failed {
                op,
                error: TrackerError::Shutdown,
            });
        }
        self.transmits.clear();
    }
}
