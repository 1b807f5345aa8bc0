//! The UDP tracker (BEP 15), without I/O: stateless connection ids and a
//! datagram handler over the [`SwarmStore`].
//!
//! Packets are decoded and encoded with the client crate's codec
//! ([`UdpRequest`], [`UdpResponse`]); this module adds the tracker's side.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use webtorrent_tracker::udp::{UdpDecodeError, UdpRequest, UdpResponse};

use crate::store::{PeerAddr, PeerAnnounce, PeerKind, SwarmStore};

/// The length of one connection-id time slot.
const SLOT: Duration = Duration::from_secs(30);
/// Slots an id stays valid after the one it was issued in: with 30-second
/// slots, every id is accepted for at least two minutes (BEP 15 asks for
/// two) and at most two and a half.
const MAX_AGE_SLOTS: u64 = 4;

/// Stateless BEP 15 connection ids: a keyed hash of the client's address
/// and a time slot, so that the tracker keeps no per-client state and a
/// spoofed source address cannot obtain a usable id.
///
/// An id is 64 bits: 56 bits of SHA-256 over the secret, the slot number
/// and the address, then the slot number's low 8 bits, which tell the
/// verifier which slot to hash. The secret can be rotated; ids issued
/// under the previous secret stay valid until they expire.
#[derive(Clone)]
pub struct ConnectionIds {
    origin: Instant,
    current: [u8; 32],
    previous: Option<[u8; 32]>,
    /// The first slot of `current`.
    rotated_at: u64,
}

impl std::fmt::Debug for ConnectionIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets stay out of logs.
        f.debug_struct("ConnectionIds")
            .field("rotated_at", &self.rotated_at)
            .finish_non_exhaustive()
    }
}

impl ConnectionIds {
    /// Ids under `secret` (random bytes from the caller), with time slots
    /// counted from `origin`.
    #[must_use]
    pub const fn new(origin: Instant, secret: [u8; 32]) -> Self {
        Self {
            origin,
            current: secret,
            previous: None,
            rotated_at: 0,
        }
    }

    fn slot(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / SLOT.as_secs()
    }

    fn mac(secret: &[u8; 32], slot: u64, client: &SocketAddr) -> u64 {
        let ip = match client.ip() {
            IpAddr::V4(ip) => ip.to_ipv6_mapped(),
            IpAddr::V6(ip) => ip,
        };
        let digest = Sha256::new()
            .chain_update(secret)
            .chain_update(slot.to_be_bytes())
            .chain_update(ip.octets())
            .chain_update(client.port().to_be_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }

    fn id_for(&self, slot: u64, client: &SocketAddr) -> Option<u64> {
        let secret = if slot >= self.rotated_at {
            &self.current
        } else {
            self.previous.as_ref()?
        };
        Some((Self::mac(secret, slot, client) & !0xff) | (slot & 0xff))
    }

    /// A connection id for `client`, issued at `now`.
    #[must_use]
    pub fn issue(&self, now: Instant, client: &SocketAddr) -> u64 {
        let slot = self.slot(now);
        // A slot before the current secret's first has the previous secret,
        // which exists once there has been a rotation.
        self.id_for(slot, client).unwrap_or_default()
    }

    /// Whether `id` was issued to `client` less than its lifetime ago.
    #[must_use]
    pub fn verify(&self, now: Instant, client: &SocketAddr, id: u64) -> bool {
        let current = self.slot(now);
        let age = (current & 0xff).wrapping_sub(id & 0xff) & 0xff;
        if age > MAX_AGE_SLOTS || age > current {
            return false;
        }
        self.id_for(current - age, client) == Some(id)
    }

    /// Replaces the secret with `secret`. Ids issued under the old one stay
    /// valid for their lifetime. Refused (false) while ids of the secret
    /// before the old one may still be valid, so that no live id is ever
    /// invalidated: rotate at most every two and a half minutes.
    pub fn rotate(&mut self, now: Instant, secret: [u8; 32]) -> bool {
        let slot = self.slot(now);
        // The slots before `rotated_at` hash under `previous`, so the ids of
        // the secret before it are lost: wait until they have expired.
        if self.previous.is_some() && slot < self.rotated_at + MAX_AGE_SLOTS {
            return false;
        }
        // Ids of the current slot are already out under the current secret:
        // the new one starts with the next slot.
        self.previous = Some(std::mem::replace(&mut self.current, secret));
        self.rotated_at = slot + 1;
        true
    }
}

/// Settings of a [`UdpHandler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpConfig {
    /// The re-announce interval sent to clients.
    pub interval: Duration,
}

impl Default for UdpConfig {
    /// A 30-minute interval.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30 * 60),
        }
    }
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpDropped {
    /// Not a BEP 15 request, and no valid connection id to answer to.
    #[error("malformed UDP tracker request: {0}")]
    Malformed(#[from] UdpDecodeError),
    /// An announce or scrape whose connection id was not issued to the
    /// sender or has expired. Not answered: the sender's address may be
    /// spoofed.
    #[error("wrong or expired connection id {connection_id:#x}")]
    BadConnectionId {
        /// The id received.
        connection_id: u64,
    },
    /// A request the codec knows and this tracker does not serve.
    #[error("UDP tracker request not served")]
    Unsupported,
}

/// The tracker's side of BEP 15: one datagram in, at most one out.
///
/// Announces are stored under the datagram's source address (the request's
/// `ip` field is ignored, so that nobody can point a swarm at a third
/// party) and get peers of the socket's address family: 6-byte entries
/// over IPv4, 18-byte entries over IPv6. IPv4-mapped IPv6 sources, as a
/// dual-stack socket reports them, count as IPv4.
///
/// ```
/// use std::time::Instant;
/// use webtorrent_tracker::udp::{PROTOCOL_ID, UdpRequest, UdpResponse, AddressFamily};
/// use webtorrent_tracker_server::{StoreConfig, SwarmStore, udp::{UdpConfig, UdpHandler}};
///
/// let now = Instant::now();
/// let handler = UdpHandler::new(now, [9; 32], UdpConfig::default());
/// let mut store = SwarmStore::new(StoreConfig::default(), 1);
/// let client = "192.0.2.1:6881".parse().unwrap();
///
/// let mut packet = Vec::new();
/// UdpRequest::Connect { transaction_id: 5 }.encode(&mut packet);
/// let mut out = Vec::new();
/// handler.handle(&mut store, now, client, &packet, &mut out)?;
/// let UdpResponse::Connect { transaction_id: 5, connection_id } =
///     UdpResponse::decode(&out, AddressFamily::V4).unwrap() else { panic!() };
/// assert!(handler.connection_ids().verify(now, &client, connection_id));
/// # Ok::<(), webtorrent_tracker_server::udp::UdpDropped>(())
/// ```
#[derive(Debug, Clone)]
pub struct UdpHandler {
    ids: ConnectionIds,
    config: UdpConfig,
}

impl UdpHandler {
    /// A handler whose connection ids use `secret`, with slots from `origin`.
    #[must_use]
    pub const fn new(origin: Instant, secret: [u8; 32], config: UdpConfig) -> Self {
        Self {
            ids: ConnectionIds::new(origin, secret),
            config,
        }
    }

    /// The connection ids.
    #[must_use]
    pub const fn connection_ids(&self) -> &ConnectionIds {
        &self.ids
    }

    /// Rotates the connection-id secret; see [`ConnectionIds::rotate`].
    pub fn rotate_secret(&mut self, now: Instant, secret: [u8; 32]) -> bool {
        self.ids.rotate(now, secret)
    }

    /// Handles one datagram from `src`. On `Ok`, `out` holds the answer to
    /// send back to `src` (an error packet when the request was refused or
    /// malformed after a valid connection id); on `Err`, nothing is to be
    /// sent and `out` is unchanged.
    ///
    /// # Errors
    /// [`UdpDropped`] for datagrams that get no answer.
    pub fn handle(
        &self,
        store: &mut SwarmStore,
        now: Instant,
        src: SocketAddr,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), UdpDropped> {
        let src = SocketAddr::new(src.ip().to_canonical(), src.port());
        let request = match UdpRequest::decode(datagram) {
            Ok(r) => r,
            Err(e) => return self.malformed(now, src, datagram, e, out),
        };
        let response = match request {
            UdpRequest::Connect { transaction_id } => UdpResponse::Connect {
                transaction_id,
                connection_id: self.ids.issue(now, &src),
            },
            UdpRequest::Announce {
                connection_id,
                transaction_id,
                announce,
            } => {
                self.check(now, &src, connection_id)?;
                let peer = PeerAnnounce {
                    peer_id: announce.peer_id,
                    addr: PeerAddr::Socket(SocketAddr::new(src.ip(), announce.port)),
                    left: announce.left,
                    event: announce.event,
                    // Negative (BEP 15: -1) asks for the default.
                    numwant: u32::try_from(announce.num_want).ok(),
                };
                let kind = if src.is_ipv4() {
                    PeerKind::V4
                } else {
                    PeerKind::V6
                };
                match store.announce(now, announce.info_hash, &peer, kind) {
                    Ok(reply) => UdpResponse::Announce {
                        transaction_id,
                        interval: u32::try_from(self.config.interval.as_secs()).unwrap_or(u32::MAX),
                        leechers: reply.leechers,
                        seeders: reply.seeders,
                        peers: reply
                            .peers
                            .iter()
                            .filter_map(|p| match p.addr {
                                PeerAddr::Socket(a) => Some(a),
                                PeerAddr::WebRtc(_) => None,
                            })
                            .collect(),
                    },
                    Err(e) => UdpResponse::Error {
                        transaction_id,
                        message: e.to_string(),
                    },
                }
            }
            UdpRequest::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                self.check(now, &src, connection_id)?;
                UdpResponse::Scrape {
                    transaction_id,
                    stats: info_hashes.iter().map(|h| store.scrape(h)).collect(),
                }
            }
            // The codec may learn requests this tracker does not serve yet.
            _ => return Err(UdpDropped::Unsupported),
        };
        response.encode(out);
        Ok(())
    }

    fn check(&self, now: Instant, src: &SocketAddr, connection_id: u64) -> Result<(), UdpDropped> {
        if self.ids.verify(now, src, connection_id) {
            Ok(())
        } else {
            Err(UdpDropped::BadConnectionId { connection_id })
        }
    }

    /// A request that does not decode is answered with an error packet only
    /// when it starts with a connection id issued to its sender.
    fn malformed(
        &self,
        now: Instant,
        src: SocketAddr,
        datagram: &[u8],
        error: UdpDecodeError,
        out: &mut Vec<u8>,
    ) -> Result<(), UdpDropped> {
        let (Some(id), Some(tid)) = (datagram.get(..8), datagram.get(12..16)) else {
            return Err(error.into());
        };
        let mut id8 = [0u8; 8];
        id8.copy_from_slice(id);
        if !self.ids.verify(now, &src, u64::from_be_bytes(id8)) {
            return Err(error.into());
        }
        let mut tid4 = [0u8; 4];
        tid4.copy_from_slice(tid);
        UdpResponse::Error {
            transaction_id: u32::from_be_bytes(tid4),
            message: error.to_string(),
        }
        .encode(out);
        Ok(())
    }
}
