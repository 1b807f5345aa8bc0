//! The swarm store shared by every protocol: info-hash → peers.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use webtorrent_tracker::{Event, ScrapeStats};
use webtorrent_types::{InfoHashV1, PeerId};

/// Where a peer can be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A TCP/uTP address (HTTP and UDP announces).
    Socket(SocketAddr),
    /// A browser reached through WebRTC offers relayed by the tracker over
    /// its WebSocket connection, named by the server's connection number; it
    /// has no address to hand out.
    WebRtc(u64),
}

/// Which peers an announcer can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerKind {
    /// IPv4 socket addresses (a UDP announce over IPv4).
    V4,
    /// IPv6 socket addresses (a UDP announce over IPv6).
    V6,
    /// Socket addresses of either family (HTTP).
    Socket,
    /// WebRTC peers (WebSocket signaling).
    WebRtc,
}

impl PeerKind {
    const fn matches(self, addr: &PeerAddr) -> bool {
        matches!(
            (self, addr),
            (Self::V4, PeerAddr::Socket(SocketAddr::V4(_)))
                | (Self::V6, PeerAddr::Socket(SocketAddr::V6(_)))
                | (Self::Socket, PeerAddr::Socket(_))
                | (Self::WebRtc, PeerAddr::WebRtc(_))
        )
    }
}

/// Limits and timings of a [`SwarmStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The most swarms (info-hashes) held; announces of new info-hashes
    /// beyond it are refused.
    pub max_swarms: usize,
    /// The most peers held per swarm; new peers beyond it get an answer but
    /// are not stored.
    pub max_peers_per_swarm: usize,
    /// The most peers held over all swarms.
    pub max_peers: usize,
    /// A peer that has not announced for this long is dropped by
    /// [`SwarmStore::expire`].
    pub peer_ttl: Duration,
    /// Peers handed out when the announce does not say how many it wants.
    pub default_numwant: usize,
    /// The most peers handed out in one answer, whatever the announce asks.
    pub max_numwant: usize,
}

impl Default for StoreConfig {
    /// 100 000 swarms, 10 000 peers each, 1 000 000 peers in all, a
    /// 40-minute peer lifetime (a 30-minute interval and slack), 50 peers
    /// per answer by default and at most 82.
    fn default() -> Self {
        Self {
            max_swarms: 100_000,
            max_peers_per_swarm: 10_000,
            max_peers: 1_000_000,
            peer_ttl: Duration::from_secs(40 * 60),
            default_numwant: 50,
            max_numwant: 82,
        }
    }
}

/// One announce, as every protocol reduces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAnnounce {
    /// The announcer's peer id: the key of its entry for a browser (a TCP
    /// peer's key is its address).
    pub peer_id: PeerId,
    /// Where others can reach it.
    pub addr: PeerAddr,
    /// Bytes it still misses; 0 makes it a seeder.
    pub left: u64,
    /// The announce event.
    pub event: Event,
    /// Peers wanted; `None` for [`StoreConfig::default_numwant`].
    pub numwant: Option<u32>,
}

/// A peer handed out in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its address.
    pub addr: PeerAddr,
}

/// The store's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Seeders in the swarm, the announcer included.
    pub seeders: u32,
    /// Leechers in the swarm, the announcer included.
    pub leechers: u32,
    /// Peers for the announcer: never itself, never more than asked or
    /// [`StoreConfig::max_numwant`], no seeders for a seeder, none after a
    /// `stopped` event.
    pub peers: Vec<PeerInfo>,
    /// Whether the announcer is now in the swarm: false after `stopped`
    /// and when a limit kept a new peer out.
    pub stored: bool,
}

/// Why the store refused an announce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The info-hash is new and the store already holds
    /// [`StoreConfig::max_swarms`] swarms.
    #[error("tracker is full: {limit} torrents")]
    TooManySwarms {
        /// The limit.
        limit: usize,
    },
    /// The store has an allowlist (private tracker) without this info-hash.
    #[error("torrent not allowed on this tracker")]
    NotAllowed,
}

/// What identifies a peer within a swarm: its address for TCP peers (as
/// opentracker and bittorrent-tracker do: a client cannot take over
/// another's entry by reusing its peer id, and clients that send one peer id
/// for every torrent or none at all are still told apart), its peer id for
/// browsers, which have no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Id(PeerId),
    Addr(SocketAddr),
}

const fn key_of(peer_id: PeerId, addr: &PeerAddr) -> Key {
    match addr {
        PeerAddr::Socket(a) => Key::Addr(*a),
        PeerAddr::WebRtc(_) => Key::Id(peer_id),
    }
}

#[derive(Debug, Clone)]
struct Entry {
    peer_id: PeerId,
    addr: PeerAddr,
    seeder: bool,
    last_seen: Instant,
}

impl Entry {
    const fn key(&self) -> Key {
        key_of(self.peer_id, &self.addr)
    }
}

/// One torrent's peers: a vector for picking at random positions, an index
/// by [`Key`], and counts kept up to date.
#[derive(Debug, Default)]
struct Swarm {
    peers: Vec<Entry>,
    index: HashMap<Key, usize>,
    seeders: u32,
    downloaded: u32,
}

impl Swarm {
    fn leechers(&self) -> u32 {
        u32::try_from(self.peers.len())
            .unwrap_or(u32::MAX)
            .saturating_sub(self.seeders)
    }

    fn remove(&mut self, key: &Key) -> Option<Entry> {
        let i = self.index.remove(key)?;
        let entry = self.peers.swap_remove(i);
        if let Some(moved) = self.peers.get(i) {
            self.index.insert(moved.key(), i);
        }
        if entry.seeder {
            self.seeders -= 1;
        }
        Some(entry)
    }

    fn stats(&self) -> ScrapeStats {
        ScrapeStats {
            complete: self.seeders,
            downloaded: self.downloaded,
            incomplete: self.leechers(),
        }
    }
}

/// Every swarm the tracker knows, shared by HTTP, UDP and WebSocket
/// announces (a browser and a TCP client of one info-hash are counted
/// together).
///
/// Sans-IO: time is passed in, and peers are picked with a small
/// pseudo-random generator seeded by the caller. Memory is bounded by the
/// limits of [`StoreConfig`]; call [`SwarmStore::expire`] periodically to
/// drop peers that stopped announcing.
///
/// ```
/// use std::net::SocketAddr;
/// use std::time::Instant;
/// use webtorrent_tracker::Event;
/// use webtorrent_tracker_server::{PeerAddr, PeerAnnounce, PeerKind, StoreConfig, SwarmStore};
/// use webtorrent_types::{InfoHashV1, PeerId};
///
/// let mut store = SwarmStore::new(StoreConfig::default(), 7);
/// let now = Instant::now();
/// let torrent = InfoHashV1([1; 20]);
/// let seeder = PeerAnnounce {
///     peer_id: PeerId([b's'; 20]),
///     addr: PeerAddr::Socket("10.0.0.1:6881".parse::<SocketAddr>().unwrap()),
///     left: 0,
///     event: Event::Started,
///     numwant: None,
/// };
/// store.announce(now, torrent, &seeder, PeerKind::Socket)?;
/// let leecher = PeerAnnounce {
///     peer_id: PeerId([b'l'; 20]),
///     addr: PeerAddr::Socket("10.0.0.2:6881".parse::<SocketAddr>().unwrap()),
///     left: 100,
///     ..seeder
/// };
/// let reply = store.announce(now, torrent, &leecher, PeerKind::Socket)?;
/// assert_eq!((reply.seeders, reply.leechers), (1, 1));
/// assert_eq!(reply.peers[0].peer_id, seeder.peer_id);
/// # Ok::<(), webtorrent_tracker_server::StoreError>(())
/// ```
#[derive(Debug)]
pub struct SwarmStore {
    config: StoreConfig,
    swarms: HashMap<InfoHashV1, Swarm>,
    peer_count: usize,
    rng: u64,
    allowlist: Option<HashSet<InfoHashV1>>,
    counters: StoreCounters,
    scrapes: Cell<u64>,
}

/// Totals since the store was made, for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreCounters {
    /// Announces handled (refused ones included).
    pub announces: u64,
    /// Announces refused (allowlist, full store).
    pub refused: u64,
    /// Scraped info-hashes.
    pub scrapes: u64,
}

/// A summary of what a store holds, for statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// Swarms held.
    pub torrents: usize,
    /// Peers held over all swarms.
    pub peers: usize,
    /// Seeders among them.
    pub seeders: usize,
    /// Peers with an IPv4 address.
    pub ipv4: usize,
    /// Peers with an IPv6 address.
    pub ipv6: usize,
    /// Browser (WebRTC) peers.
    pub webrtc: usize,
    /// Totals since start.
    pub counters: StoreCounters,
}

impl SwarmStore {
    /// An empty store. `seed` drives which peers are handed out.
    #[must_use]
    pub fn new(config: StoreConfig, seed: u64) -> Self {
        Self {
            config,
            swarms: HashMap::new(),
            peer_count: 0,
            // xorshift must not start at zero.
            rng: seed | 1,
            allowlist: None,
            counters: StoreCounters::default(),
            scrapes: Cell::new(0),
        }
    }

    /// Accepts announces for these info-hashes only (a private tracker);
    /// `None` accepts every info-hash. Swarms already held are kept.
    pub fn set_allowlist(&mut self, allowlist: Option<HashSet<InfoHashV1>>) {
        self.allowlist = allowlist;
    }

    /// Whether announces for `info_hash` are accepted.
    #[must_use]
    pub fn allows(&self, info_hash: &InfoHashV1) -> bool {
        self.allowlist
            .as_ref()
            .is_none_or(|a| a.contains(info_hash))
    }

    /// A peer of a swarm, if held.
    #[must_use]
    pub fn peer(&self, info_hash: &InfoHashV1, peer_id: &PeerId) -> Option<PeerInfo> {
        let swarm = self.swarms.get(info_hash)?;
        let e = &swarm.peers[*swarm.index.get(&Key::Id(*peer_id))?];
        Some(PeerInfo {
            peer_id: e.peer_id,
            addr: e.addr,
        })
    }

    /// Marks a held peer as seen now; false if it is not held.
    pub fn touch(&mut self, now: Instant, info_hash: &InfoHashV1, peer_id: &PeerId) -> bool {
        let Some(swarm) = self.swarms.get_mut(info_hash) else {
            return false;
        };
        let Some(&i) = swarm.index.get(&Key::Id(*peer_id)) else {
            return false;
        };
        swarm.peers[i].last_seen = now;
        true
    }

    /// Removes a peer if it is held with address `addr` (not if another
    /// connection took its peer id over since); true if it was removed.
    pub fn remove(&mut self, info_hash: &InfoHashV1, peer_id: &PeerId, addr: PeerAddr) -> bool {
        let Some(swarm) = self.swarms.get_mut(info_hash) else {
            return false;
        };
        let key = key_of(*peer_id, &addr);
        let held = swarm
            .index
            .get(&key)
            .is_some_and(|&i| swarm.peers[i].addr == addr);
        if !held {
            return false;
        }
        swarm.remove(&key);
        self.peer_count -= 1;
        if swarm.peers.is_empty() {
            self.swarms.remove(info_hash);
        }
        true
    }

    /// Every info-hash held, in no particular order, at most `limit`.
    #[must_use]
    pub fn info_hashes(&self, limit: usize) -> Vec<InfoHashV1> {
        self.swarms.keys().take(limit).copied().collect()
    }

    /// What the store holds now and its totals. Walks every peer.
    #[must_use]
    pub fn stats(&self) -> StoreStats {
        let mut st = StoreStats {
            torrents: self.swarms.len(),
            peers: self.peer_count,
            counters: StoreCounters {
                scrapes: self.scrapes.get(),
                ..self.counters
            },
            ..StoreStats::default()
        };
        for swarm in self.swarms.values() {
            st.seeders += swarm.seeders as usize;
            for e in &swarm.peers {
                match e.addr {
                    PeerAddr::Socket(SocketAddr::V4(_)) => st.ipv4 += 1,
                    PeerAddr::Socket(SocketAddr::V6(_)) => st.ipv6 += 1,
                    PeerAddr::WebRtc(_) => st.webrtc += 1,
                }
            }
        }
        st
    }

    /// The limits in use.
    #[must_use]
    pub const fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Swarms held.
    #[must_use]
    pub fn swarm_count(&self) -> usize {
        self.swarms.len()
    }

    /// Peers held over all swarms.
    #[must_use]
    pub const fn peer_count(&self) -> usize {
        self.peer_count
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: enough to spread peer picks, not for secrets.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Records an announce and picks peers of `wanted` kind for the
    /// announcer.
    ///
    /// A `stopped` announce removes the peer and gets no peers. A new peer
    /// over a limit is not stored but still gets peers and counts.
    ///
    /// # Errors
    /// [`StoreError::TooManySwarms`] when the info-hash is new and the store
    /// is full of swarms.
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: InfoHashV1,
        announce: &PeerAnnounce,
        wanted: PeerKind,
    ) -> Result<AnnounceReply, StoreError> {
        self.counters.announces += 1;
        if !self.allows(&info_hash) {
            self.counters.refused += 1;
            return Err(StoreError::NotAllowed);
        }
        let seeder = announce.left == 0;
        let key = key_of(announce.peer_id, &announce.addr);
        if announce.event == Event::Stopped {
            let Some(swarm) = self.swarms.get_mut(&info_hash) else {
                return Ok(AnnounceReply {
                    seeders: 0,
                    leechers: 0,
                    peers: Vec::new(),
                    stored: false,
                });
            };
            if swarm.remove(&key).is_some() {
                self.peer_count -= 1;
            }
            let reply = AnnounceReply {
                seeders: swarm.seeders,
                leechers: swarm.leechers(),
                peers: Vec::new(),
                stored: false,
            };
            if swarm.peers.is_empty() {
                self.swarms.remove(&info_hash);
            }
            return Ok(reply);
        }
        if !self.swarms.contains_key(&info_hash) && self.swarms.len() >= self.config.max_swarms {
            self.counters.refused += 1;
            return Err(StoreError::TooManySwarms {
                limit: self.config.max_swarms,
            });
        }
        let room = self.peer_count < self.config.max_peers;
        let per_swarm = self.config.max_peers_per_swarm;
        let swarm = self.swarms.entry(info_hash).or_default();
        let stored = if let Some(&i) = swarm.index.get(&key) {
            let entry = &mut swarm.peers[i];
            let was_seeder = entry.seeder;
            entry.peer_id = announce.peer_id;
            entry.addr = announce.addr;
            entry.last_seen = now;
            entry.seeder = seeder;
            match (was_seeder, seeder) {
                (false, true) => swarm.seeders += 1,
                (true, false) => swarm.seeders -= 1,
                _ => {}
            }
            if announce.event == Event::Completed && !was_seeder {
                swarm.downloaded = swarm.downloaded.saturating_add(1);
            }
            true
        } else if room && swarm.peers.len() < per_swarm {
            swarm.index.insert(key, swarm.peers.len());
            swarm.peers.push(Entry {
                peer_id: announce.peer_id,
                addr: announce.addr,
                seeder,
                last_seen: now,
            });
            if seeder {
                swarm.seeders += 1;
            }
            if announce.event == Event::Completed {
                swarm.downloaded = swarm.downloaded.saturating_add(1);
            }
            self.peer_count += 1;
            true
        } else {
            false
        };
        let want = announce
            .numwant
            .map_or(self.config.default_numwant, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            })
            .min(self.config.max_numwant);
        let start = self.next_random();
        // Re-borrow: `next_random` needed `self` whole. The swarm exists
        // unless it was created just now and nothing was stored in it.
        let Some(swarm) = self.swarms.get(&info_hash) else {
            return Ok(AnnounceReply {
                seeders: 0,
                leechers: 0,
                peers: Vec::new(),
                stored,
            });
        };
        let peers = pick(swarm, start, want, key, seeder, wanted);
        let reply = AnnounceReply {
            seeders: swarm.seeders,
            leechers: swarm.leechers(),
            peers,
            stored,
        };
        if swarm.peers.is_empty() {
            self.swarms.remove(&info_hash);
        }
        Ok(reply)
    }

    /// The counts of one swarm; zeros for an unknown info-hash.
    #[must_use]
    pub fn scrape(&self, info_hash: &InfoHashV1) -> ScrapeStats {
        self.scrapes.set(self.scrapes.get() + 1);
        self.swarms
            .get(info_hash)
            .map(Swarm::stats)
            .unwrap_or_default()
    }

    /// Drops peers not seen for [`StoreConfig::peer_ttl`] and swarms left
    /// empty; returns how many peers were dropped. Walks every peer: call
    /// it every minute or so, not per announce.
    pub fn expire(&mut self, now: Instant) -> usize {
        let ttl = self.config.peer_ttl;
        let mut dropped = 0;
        self.swarms.retain(|_, swarm| {
            let before = swarm.peers.len();
            swarm
                .peers
                .retain(|e| now.saturating_duration_since(e.last_seen) <= ttl);
            if swarm.peers.len() != before {
                dropped += before - swarm.peers.len();
                swarm.index.clear();
                swarm.seeders = 0;
                for (i, e) in swarm.peers.iter().enumerate() {
                    swarm.index.insert(e.key(), i);
                    if e.seeder {
                        swarm.seeders += 1;
                    }
                }
            }
            !swarm.peers.is_empty()
        });
        self.peer_count -= dropped;
        dropped
    }
}

/// Up to `want` peers of `swarm`, from a random position on, skipping the
/// announcer, other kinds, and seeders when the announcer seeds.
fn pick(
    swarm: &Swarm,
    start: u64,
    want: usize,
    announcer: Key,
    seeder: bool,
    wanted: PeerKind,
) -> Vec<PeerInfo> {
    let len = swarm.peers.len();
    if len == 0 || want == 0 {
        return Vec::new();
    }
    // The remainder is below `len`, which is a usize.
    let start = usize::try_from(start % len as u64).unwrap_or(0);
    let mut out = Vec::with_capacity(want.min(len));
    for e in swarm.peers[start..].iter().chain(&swarm.peers[..start]) {
        if out.len() == want {
            break;
        }
        if e.key() == announcer || (seeder && e.seeder) || !wanted.matches(&e.addr) {
            continue;
        }
        out.push(PeerInfo {
            peer_id: e.peer_id,
            addr: e.addr,
        });
    }
    out
}
