//! The routing table of BEP 5: up to 160 buckets of K contacts, split when the bucket
//! holding our own id is full, with node states, replacement caches and refresh.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::id::NodeId;
use crate::krpc::NodeInfo;

/// Contacts per bucket (BEP 5's K).
pub const K: usize = 8;

/// A contact that has not answered or queried for this long is questionable.
pub const QUESTIONABLE_AFTER: Duration = Duration::from_secs(15 * 60);

/// A contact that failed to answer this many queries in a row is bad.
pub const BAD_AFTER_FAILURES: u8 = 2;

/// The state of a contact (BEP 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeState {
    /// Answered (or queried us after having answered) within 15 minutes.
    Good,
    /// Silent for 15 minutes, or never answered.
    Questionable,
    /// Failed several queries in a row.
    Bad,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) info: NodeInfo,
    pub(crate) last_response: Option<Instant>,
    pub(crate) last_query_from: Option<Instant>,
    pub(crate) failures: u8,
    pub(crate) bep42_ok: bool,
}

impl Entry {
    fn new(info: NodeInfo, bep42_ok: bool) -> Self {
        Self {
            info,
            last_response: None,
            last_query_from: None,
            failures: 0,
            bep42_ok,
        }
    }

    pub(crate) fn state(&self, now: Instant) -> NodeState {
        if self.failures >= BAD_AFTER_FAILURES {
            return NodeState::Bad;
        }
        let fresh = |t: Option<Instant>| {
            t.is_some_and(|t| now.saturating_duration_since(t) < QUESTIONABLE_AFTER)
        };
        if fresh(self.last_response)
            || (self.last_response.is_some() && fresh(self.last_query_from))
        {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }

    fn last_seen(&self) -> Option<Instant> {
        self.last_response.max(self.last_query_from)
    }
}

#[derive(Clone, Debug)]
struct Bucket {
    nodes: Vec<Entry>,
    replacements: VecDeque<Entry>,
    last_changed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            nodes: Vec::with_capacity(K),
            replacements: VecDeque::new(),
            last_changed: now,
        }
    }
}

/// How a contact was heard from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Contact {
    /// It answered one of our queries.
    Responded,
    /// It sent us a query.
    Queried,
}

/// What became of a contact offered to the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Added, or already there and refreshed.
    Added,
    /// The bucket is full; kept in its replacement cache. The contact returned, if
    /// any, is questionable and should be pinged to see whether it is still there.
    Replacement(Option<NodeInfo>),
    /// Refused.
    Rejected(&'static str),
}

/// Tunables of a [`RoutingTable`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct TableConfig {
    pub(crate) max_per_ip: usize,
    pub(crate) enforce_bep42: bool,
}

/// One address family's routing table.
#[derive(Clone, Debug)]
pub(crate) struct RoutingTable {
    own: NodeId,
    buckets: Vec<Bucket>,
    config: TableConfig,
}

fn limited_ip(ip: IpAddr) -> bool {
    !ip.is_loopback()
}

impl RoutingTable {
    pub(crate) fn new(own: NodeId, config: TableConfig, now: Instant) -> Self {
        Self {
            own,
            buckets: vec![Bucket::new(now)],
            config,
        }
    }

    fn index(&self, id: &NodeId) -> usize {
        self.own.common_prefix_len(id).min(self.buckets.len() - 1)
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.nodes.len()).sum()
    }

    pub(crate) fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.nodes.iter())
    }

    #[cfg(test)]
    pub(crate) fn get(&self, id: &NodeId) -> Option<&Entry> {
        self.buckets[self.index(id)]
            .nodes
            .iter()
            .find(|e| e.info.id == *id)
    }

    /// Offers a contact we heard from directly.
    pub(crate) fn insert(&mut self, now: Instant, info: NodeInfo, how: Contact) -> Insert {
        if info.id == self.own {
            return Insert::Rejected("our own id");
        }
        let bep42_ok = info.id.is_valid_for(info.addr.ip());
        if !bep42_ok && self.config.enforce_bep42 {
            return Insert::Rejected("id fails BEP 42 for its address");
        }
        // Another id at an address we hold: keep the one we know unless it is bad.
        let mut stale_same_addr = None;
        for (bi, b) in self.buckets.iter().enumerate() {
            if let Some(e) = b
                .nodes
                .iter()
                .find(|e| e.info.addr == info.addr && e.info.id != info.id)
            {
                if e.state(now) != NodeState::Bad {
                    return Insert::Rejected("another id at this address");
                }
                stale_same_addr = Some((bi, e.info.id));
            }
        }
        if let Some((bi, id)) = stale_same_addr {
            self.buckets[bi].nodes.retain(|e| e.info.id != id);
        }
        let bi = self.index(&info.id);
        let bucket = &mut self.buckets[bi];
        if let Some(e) = bucket.nodes.iter_mut().find(|e| e.info.id == info.id) {
            if e.info.addr != info.addr {
                return Insert::Rejected("known id at another address");
            }
            touch(e, now, how);
            bucket.last_changed = now;
            return Insert::Added;
        }
        if limited_ip(info.addr.ip()) {
            let same_ip = self
                .entries()
                .filter(|e| e.info.addr.ip() == info.addr.ip())
                .count();
            if same_ip >= self.config.max_per_ip {
                return Insert::Rejected("too many contacts at this IP");
            }
        }
        let mut entry = Entry::new(info, bep42_ok);
        touch(&mut entry, now, how);
        self.place(now, entry)
    }

    fn place(&mut self, now: Instant, entry: Entry) -> Insert {
        loop {
            let bi = self.index(&entry.info.id);
            let last = bi == self.buckets.len() - 1;
            let can_split = last && self.buckets.len() < 160;
            let bucket = &mut self.buckets[bi];
            if bucket.nodes.len() < K {
                bucket.nodes.push(entry);
                bucket.last_changed = now;
                return Insert::Added;
            }
            // A bad contact, or one failing BEP 42 when the newcomer passes, gives way.
            if let Some(pos) = bucket
                .nodes
                .iter()
                .position(|e| e.state(now) == NodeState::Bad)
                .or_else(|| {
                    entry
                        .bep42_ok
                        .then(|| bucket.nodes.iter().position(|e| !e.bep42_ok))
                        .flatten()
                })
            {
                bucket.nodes[pos] = entry;
                bucket.last_changed = now;
                return Insert::Added;
            }
            if can_split {
                self.split(now);
                continue;
            }
            let ping = bucket
                .nodes
                .iter()
                .filter(|e| e.state(now) == NodeState::Questionable)
                .min_by_key(|e| e.last_seen())
                .map(|e| e.info);
            if !entry.bep42_ok && bucket.replacements.len() >= K {
                return Insert::Rejected("replacement cache full");
            }
            bucket.replacements.retain(|e| e.info.id != entry.info.id);
            if bucket.replacements.len() >= K {
                bucket.replacements.pop_front();
            }
            bucket.replacements.push_back(entry);
            return Insert::Replacement(ping);
        }
    }

    fn split(&mut self, now: Instant) {
        let depth = self.buckets.len();
        let old = self
            .buckets
            .last_mut()
            .expect("a table has at least one bucket");
        let (stay, go): (Vec<_>, Vec<_>) = old
            .nodes
            .drain(..)
            .partition(|e| self.own.common_prefix_len(&e.info.id) < depth);
        let (rstay, rgo): (VecDeque<_>, VecDeque<_>) = old
            .replacements
            .drain(..)
            .partition(|e| self.own.common_prefix_len(&e.info.id) < depth);
        old.nodes = stay;
        old.replacements = rstay;
        let mut new = Bucket::new(now);
        new.nodes = go;
        new.replacements = rgo;
        self.buckets.push(new);
    }

    /// A query to `id` timed out. Bad contacts are replaced from the cache.
    pub(crate) fn failed(&mut self, now: Instant, id: &NodeId, addr: SocketAddr) {
        let bi = self.index(id);
        let bucket = &mut self.buckets[bi];
        let Some(pos) = bucket
            .nodes
            .iter()
            .position(|e| e.info.id == *id && e.info.addr == addr)
        else {
            bucket.replacements.retain(|e| e.info.id != *id);
            return;
        };
        let e = &mut bucket.nodes[pos];
        e.failures = e.failures.saturating_add(1);
        if e.state(now) == NodeState::Bad
            && let Some(r) = bucket.replacements.pop_back()
        {
            bucket.nodes[pos] = r;
            bucket.last_changed = now;
        }
    }

    /// The `n` known non-bad contacts closest to `target`.
    pub(crate) fn closest(&self, now: Instant, target: &NodeId, n: usize) -> Vec<NodeInfo> {
        let mut all: Vec<&Entry> = self
            .entries()
            .filter(|e| e.state(now) != NodeState::Bad)
            .collect();
        all.sort_by_key(|e| e.info.id.distance(target));
        all.into_iter().take(n).map(|e| e.info).collect()
    }

    /// Random targets in the buckets not changed for `interval`, marking them
    /// changed; `random` gives fresh random bytes per bucket.
    pub(crate) fn stale_buckets(
        &mut self,
        now: Instant,
        interval: Duration,
        mut random: impl FnMut() -> [u8; 20],
    ) -> Vec<NodeId> {
        let own = self.own;
        let mut out = Vec::new();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            if now.saturating_duration_since(b.last_changed) >= interval {
                b.last_changed = now;
                out.push(own.with_prefix_of(i, random()));
            }
        }
        out
    }

    /// A random target in each bucket, farthest first (after a bootstrap: the lookup of
    /// our own id fills the near buckets only).
    pub(crate) fn all_buckets(&self, mut random: impl FnMut() -> [u8; 20]) -> Vec<NodeId> {
        (0..self.buckets.len())
            .map(|i| self.own.with_prefix_of(i, random()))
            .collect()
    }

    /// Questionable contacts not heard from for `quiet`, at most `max`, to ping.
    pub(crate) fn to_ping(&self, now: Instant, quiet: Duration, max: usize) -> Vec<NodeInfo> {
        self.entries()
            .filter(|e| {
                e.state(now) == NodeState::Questionable
                    && e.last_seen()
                        .is_none_or(|t| now.saturating_duration_since(t) >= quiet)
            })
            .take(max)
            .map(|e| e.info)
            .collect()
    }
}

fn touch(e: &mut Entry, now: Instant, how: Contact) {
    match how {
        Contact::Responded => {
            e.last_response = Some(now);
            e.failures = 0;
        }
        Contact::Queried => e.last_query_from = Some(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> TableConfig {
        TableConfig {
            max_per_ip: 1,
            enforce_bep42: false,
        }
    }

    fn node(id: [u8; 20], i: u32) -> NodeInfo {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        NodeInfo {
            id: NodeId(id),
            addr: SocketAddr::from((ip, 6881)),
        }
    }

    fn random_id(seed: u32) -> [u8; 20] {
        let mut x = u64::from(seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut out = [0u8; 20];
        for b in &mut out {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        out
    }

    #[test]
    fn splits_and_keeps_k_per_bucket() {
        let now = Instant::now();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, cfg(), now);
        for i in 0..2000 {
            let _ = t.insert(now, node(random_id(i), i), Contact::Responded);
        }
        assert!(t.bucket_count() > 5);
        for b in &t.buckets {
            assert!(b.nodes.len() <= K);
            assert!(b.replacements.len() <= K);
        }
        // The far half of the id space has one bucket of K.
        assert_eq!(t.buckets[0].nodes.len(), K);
        let closest = t.closest(now, &own, K);
        assert_eq!(closest.len(), K);
        assert!(
            closest
                .windows(2)
                .all(|w| w[0].id.distance(&own) <= w[1].id.distance(&own))
        );
    }

    #[test]
    fn failures_make_bad_and_replacements_take_over() {
        let now = Instant::now();
        let own = NodeId([0; 20]);
        let mut t = RoutingTable::new(own, cfg(), now);
        // 9 contacts in the far bucket (first bit 1): 8 fit, one is cached.
        let mut ids = Vec::new();
        for i in 0..9u32 {
            let mut id = random_id(i + 100);
            id[0] |= 0x80;
            ids.push(id);
            let _ = t.insert(now, node(id, i), Contact::Responded);
        }
        // Split happened for bucket 0 → but the far bucket stays full with 8.
        assert_eq!(t.len(), 8);
        let victim = t.buckets[0].nodes[0].info;
        t.failed(now, &victim.id, victim.addr);
        assert_eq!(t.get(&victim.id).unwrap().state(now), NodeState::Good);
        t.failed(now, &victim.id, victim.addr);
        assert!(t.get(&victim.id).is_none());
        assert_eq!(t.len(), 8);
    }

    #[test]
    fn one_contact_per_ip_and_no_id_hopping() {
        let now = Instant::now();
        let mut t = RoutingTable::new(NodeId([0; 20]), cfg(), now);
        let a = node([1; 20], 1);
        assert_eq!(t.insert(now, a, Contact::Responded), Insert::Added);
        // Same IP, other port, other id: refused (poisoning).
        let b = NodeInfo {
            id: NodeId([2; 20]),
            addr: SocketAddr::new(a.addr.ip(), 7000),
        };
        assert!(matches!(
            t.insert(now, b, Contact::Responded),
            Insert::Rejected(_)
        ));
        // Same address, other id: refused while the first is not bad.
        let c = NodeInfo {
            id: NodeId([3; 20]),
            addr: a.addr,
        };
        assert!(matches!(
            t.insert(now, c, Contact::Responded),
            Insert::Rejected(_)
        ));
        // Same id from another address: refused.
        let d = node([1; 20], 9);
        assert!(matches!(
            t.insert(now, d, Contact::Responded),
            Insert::Rejected(_)
        ));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn questionable_after_15_minutes() {
        let now = Instant::now();
        let mut t = RoutingTable::new(NodeId([0; 20]), cfg(), now);
        let a = node([1; 20], 1);
        t.insert(now, a, Contact::Responded);
        let later = now + QUESTIONABLE_AFTER;
        assert_eq!(t.get(&a.id).unwrap().state(later), NodeState::Questionable);
        assert_eq!(t.to_ping(later, Duration::from_secs(60), 10), vec![a]);
        let stale = t.stale_buckets(later, QUESTIONABLE_AFTER, || [0x55; 20]);
        assert_eq!(stale.len(), 1);
    }

    #[test]
    fn bep42_enforced_or_ranked_last() {
        let now = Instant::now();
        let ip: IpAddr = "124.31.75.21".parse().unwrap();
        let mut random = random_id(77);
        random[19] = 1;
        let good = NodeInfo {
            id: NodeId::bep42(ip, random),
            addr: SocketAddr::new(ip, 1),
        };
        let bad = NodeInfo {
            id: NodeId([0x80; 20]),
            addr: "124.31.75.22:1".parse().unwrap(),
        };
        let strict = TableConfig {
            max_per_ip: 1,
            enforce_bep42: true,
        };
        let mut t = RoutingTable::new(NodeId([0; 20]), strict, now);
        assert!(matches!(
            t.insert(now, bad, Contact::Responded),
            Insert::Rejected(_)
        ));
        assert_eq!(t.insert(now, good, Contact::Responded), Insert::Added);

        // Not enforced: a failing id is admitted, but gives way to a valid one when full.
        let mut t = RoutingTable::new(NodeId([0; 20]), cfg(), now);
        for i in 0..K as u32 {
            let mut id = random_id(i + 500);
            id[0] |= 0x80;
            let ip = std::net::Ipv4Addr::from(0x0808_0000 + i);
            assert_eq!(
                t.insert(
                    now,
                    NodeInfo {
                        id: NodeId(id),
                        addr: SocketAddr::from((ip, 1))
                    },
                    Contact::Responded
                ),
                Insert::Added
            );
        }
        assert_eq!(t.len(), K);
        let mut r = random_id(9);
        r[0] = 0xff;
        let valid = NodeId::bep42(ip, r);
        assert!(valid.0[0] & 0x80 != 0, "the test needs a far id");
        assert_eq!(
            t.insert(
                now,
                NodeInfo {
                    id: valid,
                    addr: SocketAddr::new(ip, 2)
                },
                Contact::Responded
            ),
            Insert::Added
        );
        assert_eq!(t.len(), K);
    }
}
