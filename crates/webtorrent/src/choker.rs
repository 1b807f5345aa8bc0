//! The choker: which peers we upload to. Sans-IO: time is passed in as [`Instant`].
//!
//! Tit-for-tat as BEP 3 describes it, with the refinements common clients use:
//!
//! - **Regular slots** (4 by default, or automatic, see [`UnchokeSlots::RateBased`]) go at
//!   each rechoke to the interested peers that rank best. While downloading, the rank is
//!   the rate at which a peer sends *us* data. While seeding it is, by
//!   [`SeedingMode`], either round robin (the default: every interested peer gets a turn)
//!   or the rate at which we upload to them.
//! - **Snubbed** peers (no block from them for [`SNUB_TIMEOUT`] while we wanted some; the
//!   engine decides) never get a regular slot. They may still be unchoked optimistically.
//! - **Optimistic slots** (1 by default) rotate every 30 s among the interested peers
//!   that hold no regular slot. The choice is deterministic (no randomness needed):
//!   smooth weighted round robin, where a newly connected peer weighs 3 and any other
//!   peer 1, so new peers get three times the turns while they are new (they have nothing
//!   to trade yet) and every waiting peer's turn comes.
//! - **Anti-flapping**: a full rechoke happens at most once per interval (10 s); calling
//!   [`Choker::rechoke`] earlier does nothing. Ties favour peers already unchoked.
//! - **Between rechokes**, slots are refilled at once: a peer that leaves or loses
//!   interest frees its slot for the best waiting peer, and an interested peer takes a
//!   free slot as soon as it asks.
//!
//! Slots are shared by every [`Transport`]: a WebRTC peer competes with TCP and uTP
//! peers for the same slots.
//!
//! # Driving it
//!
//! The engine tells the choker about peers (`add_peer`, `remove_peer`,
//! `set_interested`, `set_rates`, `set_snubbed`, `record_upload`), calls
//! [`Choker::rechoke`] when [`Choker::poll_timeout`] is reached, and after every call
//! drains [`Choker::poll_decision`], sending `choke`/`unchoke` messages. Only changes are
//! reported: a peer is never told `unchoke` twice in a row.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use webtorrent::choker::{Choker, ChokerConfig, Decision, Transport};
//!
//! let start = Instant::now();
//! let mut choker = Choker::new(ChokerConfig::default(), start);
//! for (peer, rate) in [(1u32, 50_000), (2, 10_000), (3, 90_000), (4, 0), (5, 20_000), (6, 30_000)] {
//!     choker.add_peer(peer, Transport::Tcp, start);
//!     choker.set_interested(&peer, true, start); // free slots fill at once
//!     choker.set_rates(&peer, rate, 0);
//! }
//! while choker.poll_decision().is_some() {}
//!
//! let now = choker.poll_timeout();
//! choker.rechoke(now);
//! let mut decisions = Vec::new();
//! while let Some(d) = choker.poll_decision() {
//!     decisions.push(d);
//! }
//! // The four fastest senders hold the regular slots, one other peer the optimistic one.
//! for peer in [3, 1, 6, 5] {
//!     assert!(choker.is_unchoked(&peer) && !choker.is_optimistic(&peer));
//! }
//! assert_eq!(choker.unchoked_count(), 5);
//! assert!(choker.poll_timeout() == now + Duration::from_secs(10));
//! // Only changes are reported: peer 6 was waiting, peer 3 held a slot already.
//! assert!(decisions.contains(&Decision::Unchoke(6)));
//! assert!(!decisions.contains(&Decision::Unchoke(3)));
//! ```

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// How long a peer may leave us without a block we asked for before the engine should
/// call it snubbed ([`Choker::set_snubbed`]).
pub const SNUB_TIMEOUT: Duration = Duration::from_secs(60);

/// The transport a peer is connected over. Every transport shares the same slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// BitTorrent over TCP.
    Tcp,
    /// BitTorrent over uTP (BEP 29).
    Utp,
    /// WebTorrent over a WebRTC data channel.
    WebRtc,
}

impl std::fmt::Display for Transport {
    /// `tcp`, `utp` or `webrtc`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Utp => "utp",
            Self::WebRtc => "webrtc",
        })
    }
}

/// How many regular unchoke slots there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnchokeSlots {
    /// A fixed number.
    Fixed(usize),
    /// Decided at each rechoke from the upload rates to the unchoked peers, at most
    /// `max`: peers are taken fastest first while each clears a rising bar (1 KiB/s for
    /// the first, then 1 KiB/s more per slot), plus one slot to try someone new. Slow
    /// links end up with few slots, fast ones with many; the count grows by at most one
    /// per rechoke (only unchoked peers have an upload rate) and starts at one.
    RateBased {
        /// Upper bound on the slots.
        max: usize,
    },
}

/// How regular slots are given out while seeding (we download nothing, so download
/// rates say nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SeedingMode {
    /// Every interested peer gets a turn. A turn ends once the peer was sent
    /// [`ChokerConfig::round_robin_quota`] bytes or held the slot for
    /// [`ChokerConfig::round_robin_turn`]; the slot then goes to the peer that has waited
    /// longest. Spreads the data over the swarm.
    #[default]
    RoundRobin,
    /// The peers we upload to fastest keep the slots.
    FastestUpload,
}

/// Settings of a [`Choker`]. Build from [`ChokerConfig::default`] and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChokerConfig {
    /// Regular slots: `Fixed(4)` by default.
    pub slots: UnchokeSlots,
    /// Optimistic slots: 1 by default.
    pub optimistic_slots: usize,
    /// Least time between two rechokes: 10 s.
    pub rechoke_interval: Duration,
    /// Time between two optimistic rotations: 30 s.
    pub optimistic_interval: Duration,
    /// How long a peer counts as new after it connects (triple weight for optimistic
    /// unchokes): 60 s.
    pub new_peer_period: Duration,
    /// Seeding: which peers get the regular slots.
    pub seeding_mode: SeedingMode,
    /// Round robin: bytes after which a turn ends: 4 MiB.
    pub round_robin_quota: u64,
    /// Round robin: time after which a turn ends even below the quota: 30 s.
    pub round_robin_turn: Duration,
}

impl Default for ChokerConfig {
    fn default() -> Self {
        Self {
            slots: UnchokeSlots::Fixed(4),
            optimistic_slots: 1,
            rechoke_interval: Duration::from_secs(10),
            optimistic_interval: Duration::from_secs(30),
            new_peer_period: Duration::from_secs(60),
            seeding_mode: SeedingMode::RoundRobin,
            round_robin_quota: 4 * 1024 * 1024,
            round_robin_turn: Duration::from_secs(30),
        }
    }
}

/// A change to send to a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decision<K> {
    /// Send `choke`.
    Choke(K),
    /// Send `unchoke`.
    Unchoke(K),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Choked,
    Regular,
    Optimistic,
}

#[derive(Debug, Clone)]
struct Peer {
    transport: Transport,
    connected_at: Instant,
    interested: bool,
    snubbed: bool,
    download_rate: u64,
    upload_rate: u64,
    slot: Slot,
    /// Smooth weighted round robin credit for optimistic unchokes.
    credit: i64,
    /// Round robin: when the current regular turn started, bytes sent in it.
    turn_started: Option<Instant>,
    turn_uploaded: u64,
    /// Round robin: when the last regular turn ended.
    last_turn_end: Option<Instant>,
}

/// The choker of one torrent, keyed by the engine's peer id `K`. See the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct Choker<K> {
    config: ChokerConfig,
    peers: HashMap<K, Peer>,
    seeding: bool,
    /// Regular slots in force (recomputed at each rechoke for `RateBased`).
    regular_slots: usize,
    next_rechoke: Instant,
    last_optimistic: Option<Instant>,
    out: VecDeque<Decision<K>>,
}

impl<K: Copy + Eq + Hash + Ord> Choker<K> {
    /// A choker with no peers; the first rechoke is due at `now`.
    pub fn new(config: ChokerConfig, now: Instant) -> Self {
        let regular_slots = match config.slots {
            UnchokeSlots::Fixed(n) => n,
            UnchokeSlots::RateBased { max } => max.min(1),
        };
        Self {
            config,
            peers: HashMap::new(),
            seeding: false,
            regular_slots,
            next_rechoke: now,
            last_optimistic: None,
            out: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ChokerConfig {
        &self.config
    }

    /// A newly connected peer: choked and not interested, as the wire starts. Returns
    /// `false` (and changes nothing) if the peer is known already.
    pub fn add_peer(&mut self, peer: K, transport: Transport, now: Instant) -> bool {
        if self.peers.contains_key(&peer) {
            return false;
        }
        self.peers.insert(
            peer,
            Peer {
                transport,
                connected_at: now,
                interested: false,
                snubbed: false,
                download_rate: 0,
                upload_rate: 0,
                slot: Slot::Choked,
                credit: 0,
                turn_started: None,
                turn_uploaded: 0,
                last_turn_end: None,
            },
        );
        true
    }

    /// A peer that disconnected. Its slot, if it had one, goes to a waiting peer at once.
    /// No decision is reported for the peer itself.
    pub fn remove_peer(&mut self, peer: &K, now: Instant) {
        if let Some(p) = self.peers.remove(peer)
            && p.slot != Slot::Choked
        {
            self.fill_slots(now);
        }
    }

    /// The peer's interest in our pieces changed. A peer that loses interest is choked
    /// and its slot refilled; one that gains it takes a free slot if there is one.
    pub fn set_interested(&mut self, peer: &K, interested: bool, now: Instant) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        if p.interested == interested {
            return;
        }
        p.interested = interested;
        if !interested && p.slot != Slot::Choked {
            self.set_slot(*peer, Slot::Choked, now);
        }
        self.fill_slots(now);
    }

    /// The peer's current rates in bytes per second: what we receive from it and what we
    /// send to it (see [`crate::ratelimit::RateMeter`]). Used at the next rechoke.
    pub fn set_rates(&mut self, peer: &K, download_rate: u64, upload_rate: u64) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.download_rate = download_rate;
            p.upload_rate = upload_rate;
        }
    }

    /// Whether the peer is snubbing us (see [`SNUB_TIMEOUT`]). A snubbed peer loses its
    /// regular slot at the next rechoke.
    pub fn set_snubbed(&mut self, peer: &K, snubbed: bool) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.snubbed = snubbed;
        }
    }

    /// Bytes of piece data sent to the peer (counts towards its round-robin turn).
    pub fn record_upload(&mut self, peer: &K, bytes: u64) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.turn_uploaded = p.turn_uploaded.saturating_add(bytes);
        }
    }

    /// Switches between downloading (`false`, the start) and seeding. The ranking changes,
    /// so a rechoke is due at once.
    pub fn set_seeding(&mut self, seeding: bool, now: Instant) {
        if self.seeding != seeding {
            self.seeding = seeding;
            self.next_rechoke = self.next_rechoke.min(now);
        }
    }

    /// Whether we are seeding.
    pub fn is_seeding(&self) -> bool {
        self.seeding
    }

    /// When [`Choker::rechoke`] is next due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_rechoke
    }

    /// The next choke/unchoke change to send, oldest first.
    pub fn poll_decision(&mut self) -> Option<Decision<K>> {
        self.out.pop_front()
    }

    /// Whether the peer holds a slot (regular or optimistic).
    pub fn is_unchoked(&self, peer: &K) -> bool {
        self.peers.get(peer).is_some_and(|p| p.slot != Slot::Choked)
    }

    /// Whether the peer holds an optimistic slot.
    pub fn is_optimistic(&self, peer: &K) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|p| p.slot == Slot::Optimistic)
    }

    /// The transport of a peer, if known.
    pub fn transport(&self, peer: &K) -> Option<Transport> {
        self.peers.get(peer).map(|p| p.transport)
    }

    /// Peers holding a slot.
    pub fn unchoked_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.slot != Slot::Choked)
            .count()
    }

    /// Regular slots in force (fixed, or the last automatic decision).
    pub fn regular_slots(&self) -> usize {
        self.regular_slots
    }

    /// Peers known.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Reassigns every slot if a rechoke is due (`now >= poll_timeout()`); does nothing
    /// otherwise. Rotates the optimistic slots when their interval has passed.
    pub fn rechoke(&mut self, now: Instant) {
        if now < self.next_rechoke {
            return;
        }
        self.next_rechoke = now + self.config.rechoke_interval;
        self.regular_slots = match self.config.slots {
            UnchokeSlots::Fixed(n) => n,
            UnchokeSlots::RateBased { max } => self.rate_based_slots(max),
        };

        // Regular slots: best ranked interested peers that are not snubbing us.
        let mut ranked: Vec<K> = self
            .peers
            .iter()
            .filter(|(_, p)| p.interested && !p.snubbed)
            .map(|(k, _)| *k)
            .collect();
        self.sort_by_rank(&mut ranked, now);
        ranked.truncate(self.regular_slots);

        let mut target: HashMap<K, Slot> = self.peers.keys().map(|k| (*k, Slot::Choked)).collect();
        for k in &ranked {
            target.insert(*k, Slot::Regular);
        }
        let rotate = self
            .last_optimistic
            .is_none_or(|t| now.saturating_duration_since(t) >= self.config.optimistic_interval);
        if rotate {
            self.last_optimistic = Some(now);
        } else {
            // Keep the optimistic peers that are still eligible.
            for (k, p) in &self.peers {
                if p.slot == Slot::Optimistic && p.interested && target[k] == Slot::Choked {
                    target.insert(*k, Slot::Optimistic);
                }
            }
        }
        let previous: Vec<K> = self
            .peers
            .iter()
            .filter(|(_, p)| p.slot == Slot::Optimistic)
            .map(|(k, _)| *k)
            .collect();
        // Fill the optimistic slots (a rotation prefers peers other than the last ones)
        // before applying anything, so no peer is choked and unchoked in one rechoke.
        let mut optimistic = target.values().filter(|s| **s == Slot::Optimistic).count();
        while optimistic < self.config.optimistic_slots {
            let Some(k) = self.pick_optimistic(&target, &previous, now) else {
                break;
            };
            target.insert(k, Slot::Optimistic);
            optimistic += 1;
        }
        self.apply(&target, now);
    }

    fn optimistic_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.slot == Slot::Optimistic)
            .count()
    }

    fn regular_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.slot == Slot::Regular)
            .count()
    }

    /// Slots for `RateBased`: see [`UnchokeSlots::RateBased`].
    fn rate_based_slots(&self, max: usize) -> usize {
        let mut rates: Vec<u64> = self
            .peers
            .values()
            .filter(|p| p.slot != Slot::Choked)
            .map(|p| p.upload_rate)
            .collect();
        rates.sort_unstable_by(|a, b| b.cmp(a));
        let mut slots = 0usize;
        let mut bar = 1024u64;
        for r in rates {
            if r < bar {
                break;
            }
            slots += 1;
            bar = bar.saturating_add(1024);
        }
        (slots + 1).min(max)
    }

    /// Sorts candidates best first, by the rule of the current mode.
    fn sort_by_rank(&self, peers: &mut [K], now: Instant) {
        let rr = self.seeding && self.config.seeding_mode == SeedingMode::RoundRobin;
        peers.sort_by(|a, b| {
            // Every key comes from self.peers.
            let (pa, pb) = (&self.peers[a], &self.peers[b]);
            let held = |p: &Peer| p.slot == Slot::Regular;
            if rr {
                return self
                    .rr_key(pa, now)
                    .cmp(&self.rr_key(pb, now))
                    .then(a.cmp(b));
            }
            let rate = |p: &Peer| {
                if self.seeding {
                    p.upload_rate
                } else {
                    p.download_rate
                }
            };
            rate(pb)
                .cmp(&rate(pa))
                .then(held(pb).cmp(&held(pa)))
                .then(a.cmp(b))
        });
    }

    /// Round-robin rank (smaller first): peers in the middle of their turn, by start of
    /// turn; then everyone else, longest waiting first (never served counts as longest).
    fn rr_key(&self, p: &Peer, now: Instant) -> (u8, Option<Instant>) {
        if p.slot == Slot::Regular
            && let Some(started) = p.turn_started
        {
            let over = p.turn_uploaded >= self.config.round_robin_quota
                || now.saturating_duration_since(started) >= self.config.round_robin_turn;
            if !over {
                return (0, Some(started));
            }
            return (1, Some(now));
        }
        (1, p.last_turn_end)
    }

    /// Picks the next optimistic peer by smooth weighted round robin among the interested
    /// peers that are choked in `slots`; `avoid` (the last optimistic peers) only if
    /// nobody else waits.
    fn pick_optimistic(
        &mut self,
        slots: &HashMap<K, Slot>,
        avoid: &[K],
        now: Instant,
    ) -> Option<K> {
        let new_period = self.config.new_peer_period;
        let weight = |p: &Peer| -> i64 {
            if now.saturating_duration_since(p.connected_at) < new_period {
                3
            } else {
                1
            }
        };
        // Every waiting peer earns credit; the last optimistic peers earn but are passed
        // over if anyone else waits.
        let mut candidates: Vec<K> = self
            .peers
            .iter()
            .filter(|(k, p)| p.interested && slots.get(k) == Some(&Slot::Choked))
            .map(|(k, _)| *k)
            .collect();
        candidates.sort_unstable();
        let others_wait = candidates.iter().any(|k| !avoid.contains(k));
        let mut total = 0i64;
        let mut best: Option<(i64, K)> = None;
        for k in &candidates {
            if let Some(p) = self.peers.get_mut(k) {
                let w = weight(p);
                total += w;
                p.credit = p.credit.saturating_add(w);
                let eligible = !others_wait || !avoid.contains(k);
                if eligible && best.is_none_or(|(c, _)| p.credit > c) {
                    best = Some((p.credit, *k));
                }
            }
        }
        let (_, chosen) = best?;
        if let Some(p) = self.peers.get_mut(&chosen) {
            p.credit = p.credit.saturating_sub(total);
        }
        Some(chosen)
    }

    /// Gives free regular slots to the best waiting peers and free optimistic slots to
    /// the next optimistic candidates (between rechokes).
    fn fill_slots(&mut self, now: Instant) {
        if self.regular_count() < self.regular_slots {
            let mut waiting: Vec<K> = self
                .peers
                .iter()
                .filter(|(_, p)| p.interested && !p.snubbed && p.slot == Slot::Choked)
                .map(|(k, _)| *k)
                .collect();
            self.sort_by_rank(&mut waiting, now);
            let free = self.regular_slots - self.regular_count();
            for k in waiting.into_iter().take(free) {
                self.set_slot(k, Slot::Regular, now);
            }
        }
        while self.optimistic_count() < self.config.optimistic_slots {
            let current: HashMap<K, Slot> = self.peers.iter().map(|(k, p)| (*k, p.slot)).collect();
            let Some(k) = self.pick_optimistic(&current, &[], now) else {
                break;
            };
            self.set_slot(k, Slot::Optimistic, now);
        }
    }

    /// Moves every peer to its target slot: chokes first, then unchokes.
    fn apply(&mut self, target: &HashMap<K, Slot>, now: Instant) {
        let mut keys: Vec<K> = target.keys().copied().collect();
        keys.sort_unstable();
        for k in &keys {
            if target[k] == Slot::Choked {
                self.set_slot(*k, Slot::Choked, now);
            }
        }
        for k in &keys {
            if target[k] != Slot::Choked {
                self.set_slot(*k, target[k], now);
            }
        }
    }

    /// Sets one peer's slot, keeping turn bookkeeping and reporting choke/unchoke changes.
    fn set_slot(&mut self, peer: K, slot: Slot, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let old = p.slot;
        if old == Slot::Regular && slot != Slot::Regular {
            p.turn_started = None;
            p.last_turn_end = Some(now);
        }
        if slot == Slot::Regular {
            let turn_over = p.turn_started.is_some_and(|s| {
                p.turn_uploaded >= self.config.round_robin_quota
                    || now.saturating_duration_since(s) >= self.config.round_robin_turn
            });
            if old != Slot::Regular || turn_over {
                p.turn_started = Some(now);
                p.turn_uploaded = 0;
            }
        }
        p.slot = slot;
        match (old == Slot::Choked, slot == Slot::Choked) {
            (true, false) => self.out.push_back(Decision::Unchoke(peer)),
            (false, true) => self.out.push_back(Decision::Choke(peer)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn secs(t: Instant, s: u64) -> Instant {
        t + Duration::from_secs(s)
    }

    fn drain(c: &mut Choker<u32>) -> Vec<Decision<u32>> {
        std::iter::from_fn(|| c.poll_decision()).collect()
    }

    #[test]
    fn transports_print_their_short_names() {
        let names: Vec<String> = [Transport::Tcp, Transport::Utp, Transport::WebRtc]
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names, ["tcp", "utp", "webrtc"]);
    }

    fn unchoked(c: &Choker<u32>) -> Vec<u32> {
        let mut v: Vec<u32> = c
            .peers
            .keys()
            .copied()
            .filter(|k| c.is_unchoked(k))
            .collect();
        v.sort_unstable();
        v
    }

    fn regular(c: &Choker<u32>) -> Vec<u32> {
        let mut v: Vec<u32> = c
            .peers
            .keys()
            .copied()
            .filter(|k| c.is_unchoked(k) && !c.is_optimistic(k))
            .collect();
        v.sort_unstable();
        v
    }

    fn optimistic(c: &Choker<u32>) -> Option<u32> {
        c.peers.keys().copied().find(|k| c.is_optimistic(k))
    }

    /// A choker with `n` interested peers 1..=n, downloading at `rate(peer)`.
    fn swarm(config: ChokerConfig, n: u32, rate: impl Fn(u32) -> u64, t: Instant) -> Choker<u32> {
        let mut c = Choker::new(config, t);
        for k in 1..=n {
            c.add_peer(k, Transport::Tcp, t);
            c.set_rates(&k, rate(k), 0);
            c.set_interested(&k, true, t);
        }
        drain(&mut c);
        c
    }

    fn config(slots: usize, optimistic: usize) -> ChokerConfig {
        ChokerConfig {
            slots: UnchokeSlots::Fixed(slots),
            optimistic_slots: optimistic,
            ..ChokerConfig::default()
        }
    }

    #[test]
    fn rechoke_picks_the_fastest_and_reports_changes_only() {
        let t = Instant::now();
        // Rates: peer k sends k * 1000 B/s.
        let mut c = swarm(config(4, 0), 8, |k| u64::from(k) * 1000, t);
        // Before the first rechoke the first four to ask hold the slots.
        assert_eq!(unchoked(&c), [1, 2, 3, 4]);
        c.rechoke(t);
        assert_eq!(unchoked(&c), [5, 6, 7, 8]);
        let d = drain(&mut c);
        assert_eq!(
            d,
            [
                Decision::Choke(1),
                Decision::Choke(2),
                Decision::Choke(3),
                Decision::Choke(4),
                Decision::Unchoke(5),
                Decision::Unchoke(6),
                Decision::Unchoke(7),
                Decision::Unchoke(8),
            ]
        );
        // Same rates ten seconds later: no change, nothing reported.
        c.rechoke(secs(t, 10));
        assert!(drain(&mut c).is_empty());
        // Peer 1 becomes the fastest: it replaces the slowest holder, peer 5.
        c.set_rates(&1, 1_000_000, 0);
        c.rechoke(secs(t, 20));
        assert_eq!(drain(&mut c), [Decision::Choke(5), Decision::Unchoke(1)]);
    }

    #[test]
    fn no_rechoke_before_the_interval() {
        let t = Instant::now();
        let mut c = swarm(config(2, 0), 4, u64::from, t);
        c.rechoke(t);
        assert_eq!(unchoked(&c), [3, 4]);
        drain(&mut c);
        assert_eq!(c.poll_timeout(), secs(t, 10));
        c.set_rates(&1, 1_000_000, 0);
        c.rechoke(secs(t, 9));
        assert!(drain(&mut c).is_empty(), "rechoked before 10 s");
        c.rechoke(secs(t, 10));
        assert_eq!(unchoked(&c), [1, 4]);
    }

    #[test]
    fn ties_keep_current_holders() {
        let t = Instant::now();
        let mut c = swarm(config(2, 0), 4, |_| 500, t);
        c.rechoke(t);
        let before = unchoked(&c);
        drain(&mut c);
        for i in 1..10 {
            c.rechoke(secs(t, 10 * i));
            assert_eq!(unchoked(&c), before);
        }
        assert!(drain(&mut c).is_empty());
    }

    #[test]
    fn snubbed_peers_get_no_regular_slot() {
        let t = Instant::now();
        let mut c = swarm(config(2, 0), 4, |k| u64::from(k) * 1000, t);
        c.set_snubbed(&4, true);
        c.rechoke(t);
        assert_eq!(unchoked(&c), [2, 3]);
        // Unsnubbed: back at the next rechoke.
        c.set_snubbed(&4, false);
        c.rechoke(secs(t, 10));
        assert_eq!(unchoked(&c), [3, 4]);
        // A snubbed peer may still be unchoked optimistically.
        let mut c = swarm(config(1, 1), 2, |k| u64::from(k) * 1000, t);
        c.set_snubbed(&2, true);
        c.rechoke(t);
        assert_eq!(regular(&c), [1]);
        assert_eq!(optimistic(&c), Some(2));
    }

    #[test]
    fn optimistic_rotates_every_30_s_and_everyone_gets_a_turn() {
        let t = Instant::now();
        let mut c = Choker::new(config(2, 1), t);
        for k in 1..=6 {
            c.add_peer(k, Transport::Tcp, t);
            c.set_interested(&k, true, t);
            // Peers 5 and 6 are fast: they keep the regular slots.
            c.set_rates(&k, if k >= 5 { 100_000 } else { 10 }, 0);
        }
        let mut seen = HashSet::new();
        let mut last = None;
        for round in 0..12u64 {
            let now = secs(t, 10 * round);
            c.rechoke(now);
            assert_eq!(regular(&c), [5, 6]);
            let o = optimistic(&c).expect("an optimistic peer");
            if round % 3 == 0 {
                assert_ne!(Some(o), last, "no rotation at {} s", 10 * round);
                seen.insert(o);
            } else {
                assert_eq!(Some(o), last, "rotated early at {} s", 10 * round);
            }
            last = Some(o);
        }
        // Four rotations over four waiting peers: each had one.
        assert_eq!(seen, HashSet::from([1, 2, 3, 4]));
    }

    #[test]
    fn a_lone_optimistic_peer_is_not_choked_and_unchoked_on_rotation() {
        let t = Instant::now();
        let mut c = swarm(config(1, 1), 2, |k| u64::from(k) * 1000, t);
        c.rechoke(t);
        assert_eq!((regular(&c), optimistic(&c)), (vec![2], Some(1)));
        drain(&mut c);
        c.rechoke(secs(t, 30));
        assert_eq!(optimistic(&c), Some(1));
        assert!(drain(&mut c).is_empty());
    }

    #[test]
    fn new_peers_get_three_times_the_optimistic_turns() {
        let t = Instant::now();
        let mut cfg = config(0, 1);
        cfg.new_peer_period = Duration::from_secs(1_000_000);
        let mut c = Choker::new(cfg, t);
        // Peers 1..=3 are old (connected long ago), peer 4 is new for the whole test.
        let long_ago = t;
        let now0 = secs(t, 10_000);
        for k in 1..=3 {
            c.add_peer(k, Transport::Tcp, long_ago);
        }
        c.config.new_peer_period = Duration::from_secs(1000);
        c.add_peer(4, Transport::WebRtc, now0);
        for k in 1..=4 {
            c.set_interested(&k, true, now0);
        }
        let mut turns: HashMap<u32, u32> = HashMap::new();
        for round in 0..30u64 {
            let now = now0 + Duration::from_secs(30 * round);
            // Keep peer 4 new throughout.
            c.peers.get_mut(&4).expect("peer 4").connected_at = now;
            c.rechoke(now);
            *turns
                .entry(optimistic(&c).expect("optimistic"))
                .or_default() += 1;
        }
        // Weights 3:1:1:1, never the same peer twice in a row: the new peer gets every
        // other turn, the old ones share the rest.
        assert_eq!(turns[&4], 15, "{turns:?}");
        for k in 1..=3 {
            assert_eq!(turns[&k], 5, "{turns:?}");
        }
        assert_eq!(c.transport(&4), Some(Transport::WebRtc));
    }

    #[test]
    fn leaving_peer_frees_its_slot_at_once() {
        let t = Instant::now();
        let mut c = swarm(config(2, 1), 5, |k| u64::from(k) * 1000, t);
        c.rechoke(t);
        assert_eq!(regular(&c), [4, 5]);
        let o = optimistic(&c).expect("optimistic");
        drain(&mut c);
        // A regular holder leaves: the best waiting peer takes its slot.
        c.remove_peer(&5, secs(t, 1));
        let best_waiting = if o == 3 { 2 } else { 3 };
        assert_eq!(drain(&mut c), [Decision::Unchoke(best_waiting)]);
        // The optimistic peer leaves: another waiting peer is unchoked.
        c.remove_peer(&o, secs(t, 2));
        let d = drain(&mut c);
        assert_eq!(d.len(), 1);
        assert!(matches!(d[0], Decision::Unchoke(k) if c.is_optimistic(&k)));
        // A choked peer leaves: nothing to do.
        c.add_peer(9, Transport::Utp, secs(t, 3));
        c.remove_peer(&9, secs(t, 3));
        assert!(drain(&mut c).is_empty());
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn interest_changes_between_rechokes() {
        let t = Instant::now();
        let mut c = Choker::new(config(2, 0), t);
        for k in 1..=3 {
            assert!(c.add_peer(k, Transport::Tcp, t));
        }
        assert!(!c.add_peer(1, Transport::Tcp, t));
        // A free slot is taken as soon as a peer is interested.
        c.set_interested(&1, true, t);
        assert_eq!(drain(&mut c), [Decision::Unchoke(1)]);
        c.set_interested(&1, true, t);
        assert!(drain(&mut c).is_empty());
        c.set_interested(&2, true, t);
        c.set_interested(&3, true, t);
        assert_eq!(drain(&mut c), [Decision::Unchoke(2)]);
        // Losing interest gives the slot away at once.
        c.set_interested(&1, false, secs(t, 1));
        assert_eq!(drain(&mut c), [Decision::Choke(1), Decision::Unchoke(3)]);
        // Unknown peers are ignored.
        c.set_interested(&77, true, t);
        c.set_rates(&77, 1, 1);
        c.set_snubbed(&77, true);
        c.record_upload(&77, 1);
        c.remove_peer(&77, t);
        assert!(drain(&mut c).is_empty());
    }

    #[test]
    fn seeding_round_robin_gives_everyone_a_turn() {
        let t = Instant::now();
        let mut c = swarm(config(2, 0), 8, |_| 0, t);
        c.set_seeding(true, t);
        assert!(c.is_seeding());
        // Peer 1 would win on upload rate; round robin ignores rates.
        c.set_rates(&1, 0, 10_000_000);
        let mut served = HashSet::new();
        for round in 0..8u64 {
            let now = secs(t, 10 * round);
            c.rechoke(now);
            let holders = regular(&c);
            assert_eq!(holders.len(), 2);
            for k in &holders {
                served.insert(*k);
                // Each holder is sent its quota within the round: its turn ends.
                c.record_upload(k, c.config().round_robin_quota);
            }
        }
        assert_eq!(served, (1..=8).collect::<HashSet<_>>());
    }

    #[test]
    fn round_robin_turns_end_by_time_too() {
        let t = Instant::now();
        let mut c = swarm(config(1, 0), 2, |_| 0, t);
        c.set_seeding(true, t);
        c.rechoke(t);
        let first = regular(&c);
        // Below the quota, the turn lasts 30 s: two more rounds, then the other peer.
        c.rechoke(secs(t, 10));
        c.rechoke(secs(t, 20));
        assert_eq!(regular(&c), first);
        c.rechoke(secs(t, 30));
        assert_ne!(regular(&c), first);
        c.rechoke(secs(t, 60));
        assert_eq!(regular(&c), first);
    }

    #[test]
    fn seeding_fastest_upload_ranks_by_upload_rate() {
        let t = Instant::now();
        let mut cfg = config(2, 0);
        cfg.seeding_mode = SeedingMode::FastestUpload;
        let mut c = swarm(cfg, 5, |k| u64::from(k) * 1000, t);
        for k in 1..=5u32 {
            c.set_rates(&k, u64::from(k) * 1000, u64::from(10 - k) * 1000);
        }
        c.set_seeding(true, t);
        c.rechoke(t);
        assert_eq!(regular(&c), [1, 2]);
        // Back to downloading: a rechoke is due at once and ranks by download rate.
        c.set_seeding(false, secs(t, 1));
        assert_eq!(c.poll_timeout(), secs(t, 1));
        c.rechoke(secs(t, 1));
        assert_eq!(regular(&c), [4, 5]);
    }

    #[test]
    fn rate_based_slots_follow_upload_rates() {
        let t = Instant::now();
        let mut cfg = config(0, 0);
        cfg.slots = UnchokeSlots::RateBased { max: 8 };
        let mut c = swarm(cfg, 10, u64::from, t);
        assert_eq!(c.regular_slots(), 1);
        c.rechoke(t);
        assert_eq!(
            c.regular_slots(),
            1,
            "nothing uploaded yet: one slot to probe"
        );
        let holder = regular(&c)[0];
        c.set_rates(&holder, 0, 50_000);
        c.rechoke(secs(t, 10));
        assert_eq!(c.regular_slots(), 2);
        for k in 1..=10 {
            c.set_rates(&k, u64::from(k), 1_000_000);
        }
        for r in 2..12 {
            c.rechoke(secs(t, 10 * r));
        }
        assert_eq!(
            c.regular_slots(),
            8,
            "fast uploads open slots up to the cap"
        );
        assert_eq!(regular(&c).len(), 8);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(u32),
        Remove(u32),
        Interest(u32, bool),
        Rates(u32, u64, u64),
        Snub(u32, bool),
        Upload(u32, u64),
        Seeding(bool),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let k = 0u32..12;
        prop_oneof![
            k.clone().prop_map(Op::Add),
            k.clone().prop_map(Op::Remove),
            (k.clone(), any::<bool>()).prop_map(|(k, b)| Op::Interest(k, b)),
            (k.clone(), 0u64..1_000_000, 0u64..1_000_000).prop_map(|(k, d, u)| Op::Rates(k, d, u)),
            (k.clone(), any::<bool>()).prop_map(|(k, b)| Op::Snub(k, b)),
            (k, 0u64..8_000_000).prop_map(|(k, b)| Op::Upload(k, b)),
            any::<bool>().prop_map(Op::Seeding),
            (0u64..25_000).prop_map(Op::Advance),
        ]
    }

    proptest! {
        /// Whatever the engine does, decisions replay to the choker's state, slots are
        /// never exceeded, only interested peers are unchoked, and no snubbed peer holds a
        /// regular slot right after a rechoke.
        #[test]
        fn invariants_hold(ops in proptest::collection::vec(op(), 1..200), slots in 0usize..5, opt in 0usize..3) {
            let t = Instant::now();
            let mut c = Choker::new(config(slots, opt), t);
            let mut now = t;
            let mut view: HashSet<u32> = HashSet::new();
            for op in ops {
                match op {
                    Op::Add(k) => { c.add_peer(k, Transport::Tcp, now); }
                    Op::Remove(k) => { c.remove_peer(&k, now); view.remove(&k); }
                    Op::Interest(k, b) => c.set_interested(&k, b, now),
                    Op::Rates(k, d, u) => c.set_rates(&k, d, u),
                    Op::Snub(k, b) => c.set_snubbed(&k, b),
                    Op::Upload(k, b) => c.record_upload(&k, b),
                    Op::Seeding(b) => c.set_seeding(b, now),
                    Op::Advance(ms) => {
                        now += Duration::from_millis(ms);
                        let due = now >= c.poll_timeout();
                        c.rechoke(now);
                        if due {
                            for (k, p) in &c.peers {
                                prop_assert!(!(p.snubbed && p.slot == Slot::Regular), "snubbed {k} regular");
                            }
                        }
                    }
                }
                while let Some(d) = c.poll_decision() {
                    match d {
                        Decision::Unchoke(k) => prop_assert!(view.insert(k), "double unchoke {k}"),
                        Decision::Choke(k) => prop_assert!(view.remove(&k), "double choke {k}"),
                    }
                }
                let state: HashSet<u32> = c.peers.keys().copied().filter(|k| c.is_unchoked(k)).collect();
                prop_assert_eq!(&state, &view);
                prop_assert!(c.regular_count() <= slots);
                prop_assert!(c.optimistic_count() <= opt);
                for k in &state {
                    prop_assert!(c.peers[k].interested, "uninterested {k} unchoked");
                }
            }
        }
    }
}
