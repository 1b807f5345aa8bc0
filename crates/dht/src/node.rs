//! The sans-IO DHT node: answers queries, keeps the routing tables, runs lookups.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha1::{Digest, Sha1};

use crate::error::{ItemError, RestoreError};
use crate::id::NodeId;
use crate::item::{Item, MutableItem, check_value, immutable_target, mutable_target};
use crate::krpc::{
    Body, ErrorBody, Message, MutableFields, NodeInfo, PutArgs, Query, Response, Want, code,
};
use crate::store::{ItemStore, PeerStore, StoreLimits, Tokens};
use crate::table::{Contact, Insert, K, RoutingTable, TableConfig};

/// How often timers run when nothing else is due.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(5);
/// A bucket not changed for this long is refreshed with a lookup.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Peers returned in one `get_peers` reply at most.
pub const MAX_VALUES_PER_REPLY: usize = 50;
/// Candidates one lookup keeps at most.
const MAX_CANDIDATES: usize = 128;
/// Peers one lookup collects at most.
const MAX_LOOKUP_PEERS: usize = 2000;
/// A lookup ends after this long, whatever its state.
const LOOKUP_DEADLINE: Duration = Duration::from_secs(60);
/// Queries in flight at most, over all lookups.
const MAX_PENDING: usize = 2048;
/// Datagrams and events queued at most.
const MAX_QUEUED: usize = 4096;
const SAVE_MAGIC: &[u8; 6] = b"WTDHT\x01";

/// Settings of a [`Node`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Our node id; by default derived from `seed`.
    pub id: Option<NodeId>,
    /// Secret randomness for the id, transaction ids and token secrets. Drivers fill
    /// it from the operating system.
    pub seed: [u8; 32],
    /// Nodes to bootstrap from.
    pub bootstrap: Vec<SocketAddr>,
    /// BEP 43: send `ro=1` and answer no queries.
    pub read_only: bool,
    /// The client version sent as `v` (4 bytes by convention).
    pub version: Option<Vec<u8>>,
    /// How long to wait for an answer.
    pub query_timeout: Duration,
    /// Queries in flight per lookup (α).
    pub alpha: usize,
    /// Contacts per IP address in the routing table (loopback is not limited).
    pub max_nodes_per_ip: usize,
    /// Refuse contacts whose ids fail BEP 42 instead of only ranking them last.
    pub enforce_bep42: bool,
    /// Use the IPv4 table.
    pub ipv4: bool,
    /// Use the IPv6 table (BEP 32).
    pub ipv6: bool,
    /// Caps and lifetimes of what we store for others.
    pub limits: StoreLimits,
    /// Queries answered per second at most; the rest are dropped.
    pub max_answers_per_sec: u32,
    /// Queries answered per second at most for one source IP (loopback is not
    /// limited); the rest are dropped.
    pub max_answers_per_ip_per_sec: u32,
    /// Our public address, if known: the id is then made valid for it (BEP 42).
    pub external_ip: Option<IpAddr>,
    /// Lookups running at once at most.
    pub max_lookups: usize,
}

impl Config {
    /// Defaults with this seed.
    pub fn new(seed: [u8; 32]) -> Self {
        Self {
            id: None,
            seed,
            bootstrap: Vec::new(),
            read_only: false,
            version: Some(b"WR01".to_vec()),
            query_timeout: Duration::from_secs(2),
            alpha: 3,
            max_nodes_per_ip: 1,
            enforce_bep42: false,
            ipv4: true,
            ipv6: true,
            limits: StoreLimits::default(),
            max_answers_per_sec: 1000,
            max_answers_per_ip_per_sec: 20,
            external_ip: None,
            max_lookups: 64,
        }
    }
}

/// Identifies a lookup started on a [`Node`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// Too many lookups are running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many lookups running ({0})")]
pub struct Busy(pub usize);

/// A datagram to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
}

/// The result of a finished lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LookupDone {
    /// Which lookup.
    pub id: LookupId,
    /// The key looked up.
    pub target: NodeId,
    /// Queries sent.
    pub queries: u32,
    /// Replies received.
    pub responses: u32,
    /// The closest nodes that answered, nearest first.
    pub closest: Vec<NodeInfo>,
    /// `get_peers`: every peer found.
    pub peers: Vec<SocketAddr>,
    /// `get`: the item found (the highest `seq` for mutable items).
    pub item: Option<Item>,
    /// Announces or puts acknowledged.
    pub stored: u32,
}

/// Something for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// New peers from a `get_peers` lookup, as they arrive.
    Peers {
        /// Which lookup.
        lookup: LookupId,
        /// The torrent.
        info_hash: NodeId,
        /// Peers not reported before in this lookup.
        peers: Vec<SocketAddr>,
    },
    /// A lookup finished.
    Done(Box<LookupDone>),
}

/// What [`Node::poll_output`] has.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send the buffer to this destination.
    Transmit(Transmit),
    /// An event.
    Event(Event),
    /// Nothing until this instant (or a datagram or command).
    Timeout(Instant),
}

/// Statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Contacts in the IPv4 table.
    pub nodes_v4: usize,
    /// Contacts in the IPv6 table.
    pub nodes_v6: usize,
    /// Buckets of the IPv4 table.
    pub buckets_v4: usize,
    /// Torrents we hold peers for.
    pub torrents: usize,
    /// Peers held.
    pub peers: usize,
    /// Items held.
    pub items: usize,
    /// Lookups running.
    pub lookups: usize,
    /// Queries in flight.
    pub pending: usize,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Replies dropped: unknown transaction, wrong source or wrong id.
    pub unexpected_replies: u64,
    /// Queries dropped by the rate limit.
    pub rate_limited: u64,
}

#[derive(Clone, Debug)]
enum Kind {
    FindNode,
    GetPeers {
        announce: Option<(u16, bool)>,
    },
    Get {
        mutable: Option<([u8; 32], Vec<u8>)>,
    },
    Put {
        item: Item,
        cas: Option<i64>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CandState {
    Fresh,
    InFlight,
    Responded,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    addr: SocketAddr,
    id: Option<NodeId>,
    state: CandState,
    token: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
struct Lookup {
    kind: Kind,
    target: NodeId,
    internal: bool,
    // Keyed by distance (unknown ids sort last) and address.
    candidates: BTreeMap<([u8; 20], SocketAddr), Candidate>,
    in_flight: usize,
    /// Queries in flight past their short timeout.
    slow: usize,
    storing: usize,
    peers: HashSet<SocketAddr>,
    peer_list: Vec<SocketAddr>,
    item: Option<Item>,
    queries: u32,
    responses: u32,
    stored: u32,
    started: Instant,
    storing_phase: bool,
}

#[derive(Clone, Debug)]
enum Purpose {
    Ping,
    Lookup(LookupId),
    Store(LookupId),
}

#[derive(Clone, Debug)]
struct Pending {
    addr: SocketAddr,
    id: Option<NodeId>,
    deadline: Instant,
    /// Lookup queries: after this instant the query no longer holds one of the α slots
    /// (`None` once passed), so one slow node does not stall the lookup.
    short: Option<Instant>,
    purpose: Purpose,
}

/// A DHT node without I/O: feed it datagrams and time, send what it asks.
///
/// The contract: after [`Node::handle_datagram`] or a command, call
/// [`Node::poll_output`] until it returns [`Output::Timeout`]; call it again at that
/// instant at the latest.
#[derive(Debug)]
pub struct Node {
    config: Config,
    id: NodeId,
    table4: RoutingTable,
    table6: RoutingTable,
    tokens: Tokens,
    peers: PeerStore,
    items: ItemStore,
    pending: HashMap<u16, Pending>,
    lookups: BTreeMap<LookupId, Lookup>,
    next_lookup: u64,
    next_tid: u16,
    counter: u64,
    out: VecDeque<(SocketAddr, Message)>,
    events: VecDeque<Event>,
    next_maintenance: Instant,
    last_bootstrap: Option<Instant>,
    restored: Vec<NodeInfo>,
    budget: f64,
    budget_at: Instant,
    /// Queries answered per source IP in the current second.
    per_ip: HashMap<IpAddr, u32>,
    per_ip_second: Instant,
    stats: Stats,
}

/// Source IPs tracked by the per-IP limit at most; past it, unknown IPs share nothing
/// and are limited by the global budget only.
const MAX_TRACKED_IPS: usize = 4096;

impl Node {
    /// A node with this configuration; `now` starts its clocks.
    pub fn new(config: Config, now: Instant) -> Self {
        let mut counter = 0;
        let mut rand = |label: &[u8]| {
            counter += 1;
            random_bytes(&config.seed, label, counter)
        };
        let id = config.id.unwrap_or_else(|| match config.external_ip {
            Some(ip) => NodeId::bep42(ip, rand(b"id")),
            None => NodeId(rand(b"id")),
        });
        let mut secret = [0; 16];
        secret.copy_from_slice(&rand(b"token")[..16]);
        let tid = u16::from_be_bytes([rand(b"tid")[0], rand(b"tid")[1]]);
        let tc = TableConfig {
            max_per_ip: config.max_nodes_per_ip,
            enforce_bep42: config.enforce_bep42,
        };
        Self {
            id,
            table4: RoutingTable::new(id, tc, now),
            table6: RoutingTable::new(id, tc, now),
            tokens: Tokens::new(secret, now),
            peers: PeerStore::default(),
            items: ItemStore::default(),
            pending: HashMap::new(),
            lookups: BTreeMap::new(),
            next_lookup: 0,
            next_tid: tid,
            counter: 100,
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_maintenance: now,
            last_bootstrap: None,
            restored: Vec::new(),
            budget: f64::from(config.max_answers_per_sec),
            budget_at: now,
            per_ip: HashMap::new(),
            per_ip_second: now,
            stats: Stats::default(),
            config,
        }
    }

    /// A node resuming a table saved by [`Node::save`]: same id, and the saved
    /// contacts are tried first when bootstrapping. `config.id` is ignored.
    ///
    /// # Errors
    /// [`RestoreError`] if the bytes are not a saved table.
    pub fn restore(mut config: Config, saved: &[u8], now: Instant) -> Result<Self, RestoreError> {
        let rest = saved
            .strip_prefix(SAVE_MAGIC.as_slice())
            .ok_or(RestoreError::BadMagic)?;
        if rest.len() < 22 {
            return Err(RestoreError::Malformed);
        }
        config.id = NodeId::from_slice(&rest[..20]);
        let count = usize::from(u16::from_be_bytes([rest[20], rest[21]]));
        let mut body = &rest[22..];
        let mut restored = Vec::with_capacity(count);
        for _ in 0..count {
            let (&fam, tail) = body.split_first().ok_or(RestoreError::Malformed)?;
            let len = match fam {
                4 => 26,
                6 => 38,
                _ => return Err(RestoreError::Malformed),
            };
            if tail.len() < len {
                return Err(RestoreError::Malformed);
            }
            let nodes =
                crate::krpc::decode_nodes(&tail[..len], fam == 6).ok_or(RestoreError::Malformed)?;
            restored.extend(nodes);
            body = &tail[len..];
        }
        if !body.is_empty() {
            return Err(RestoreError::Malformed);
        }
        let mut node = Self::new(config, now);
        node.restored = restored;
        Ok(node)
    }

    /// The routing tables as bytes, for [`Node::restore`] after a restart.
    pub fn save(&self) -> Vec<u8> {
        let mut out = SAVE_MAGIC.to_vec();
        out.extend_from_slice(&self.id.0);
        let entries: Vec<NodeInfo> = self
            .table4
            .entries()
            .chain(self.table6.entries())
            .map(|e| e.info)
            .take(usize::from(u16::MAX))
            .collect();
        out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for n in entries {
            out.push(if n.addr.is_ipv6() { 6 } else { 4 });
            out.extend_from_slice(&crate::krpc::encode_nodes(&[n], n.addr.is_ipv6()));
        }
        out
    }

    /// Our node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Counters and sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            nodes_v4: self.table4.len(),
            nodes_v6: self.table6.len(),
            buckets_v4: self.table4.bucket_count(),
            torrents: self.peers.torrent_count(),
            peers: self.peers.peer_count(),
            items: self.items.len(),
            lookups: self.lookups.len(),
            pending: self.pending.len(),
            ..self.stats
        }
    }

    /// The `n` contacts closest to `target` in the tables, both families.
    pub fn closest_nodes(&self, now: Instant, target: &NodeId, n: usize) -> Vec<NodeInfo> {
        let mut all = self.table4.closest(now, target, n);
        all.extend(self.table6.closest(now, target, n));
        all.sort_by_key(|c| c.id.distance(target));
        all.truncate(n);
        all
    }

    /// Starts a lookup of our own id through the table, the saved contacts and the
    /// bootstrap nodes. The node also does this by itself while its table is
    /// nearly empty.
    ///
    /// # Errors
    /// [`Busy`] when too many lookups run.
    pub fn bootstrap(&mut self, now: Instant) -> Result<LookupId, Busy> {
        self.last_bootstrap = Some(now);
        self.start(now, Kind::FindNode, self.id, false)
    }

    /// Adds nodes to bootstrap from (duplicates and disabled families are skipped);
    /// they are used by the next [`Node::bootstrap`] and whenever the table is nearly
    /// empty.
    pub fn add_bootstrap(&mut self, addrs: &[SocketAddr]) {
        for a in addrs {
            if self.family_enabled(*a)
                && !self.config.bootstrap.contains(a)
                && self.config.bootstrap.len() < 64
            {
                self.config.bootstrap.push(*a);
            }
        }
    }

    /// Pings a node whose id we do not know (a peer's BEP 5 `PORT` message): it enters
    /// the routing table if it answers.
    pub fn ping(&mut self, now: Instant, addr: SocketAddr) {
        if self.family_enabled(addr) {
            let q = Query::Ping { id: self.id };
            self.send_query(now, addr, None, q, Purpose::Ping);
        }
    }

    /// Starts a `get_peers` lookup; peers arrive as [`Event::Peers`].
    ///
    /// # Errors
    /// [`Busy`] when too many lookups run.
    pub fn get_peers(&mut self, now: Instant, info_hash: NodeId) -> Result<LookupId, Busy> {
        self.start(now, Kind::GetPeers { announce: None }, info_hash, false)
    }

    /// Starts a `get_peers` lookup that ends announcing us on `port` to the closest
    /// nodes (`None`: the port we send from, `implied_port`).
    ///
    /// # Errors
    /// [`Busy`] when too many lookups run.
    pub fn announce(
        &mut self,
        now: Instant,
        info_hash: NodeId,
        port: Option<u16>,
    ) -> Result<LookupId, Busy> {
        let announce = Some((port.unwrap_or(0), port.is_none()));
        self.start(now, Kind::GetPeers { announce }, info_hash, false)
    }

    /// Starts a lookup of the nodes closest to `target`.
    ///
    /// # Errors
    /// [`Busy`] when too many lookups run.
    pub fn find_node(&mut self, now: Instant, target: NodeId) -> Result<LookupId, Busy> {
        self.start(now, Kind::FindNode, target, false)
    }

    /// Starts a BEP 44 `get` of an immutable item.
    ///
    /// # Errors
    /// [`Busy`] when too many lookups run.
    pub fn get_immutable(&mut self, now: Instant, target: NodeId) -> Result<LookupId, Busy> {
        self.start(now, Kind::Get { mutable: None }, target, false)
    }

    /// Starts a BEP 44 `get` of a mutable item.
    ///
    /// # Errors
    /// [`Busy`] when too many lookups run.
    pub fn get_mutable(
        &mut self,
        now: Instant,
        key: [u8; 32],
        salt: &[u8],
    ) -> Result<LookupId, Busy> {
        let target = mutable_target(&key, salt);
        self.start(
            now,
            Kind::Get {
                mutable: Some((key, salt.to_vec())),
            },
            target,
            false,
        )
    }

    /// Stores an immutable item (bencoded `value`) on the closest nodes; returns
    /// the lookup and the item's target.
    ///
    /// # Errors
    /// [`PutError`] when the value breaks BEP 44's limits or too many lookups run.
    pub fn put_immutable(
        &mut self,
        now: Instant,
        value: Vec<u8>,
    ) -> Result<(LookupId, NodeId), PutError> {
        check_value(&value)?;
        let target = immutable_target(&value);
        // Keep a copy: we are one of the nodes too.
        self.items
            .put_immutable(now, &self.config.limits, target, value.clone());
        let id = self.start(
            now,
            Kind::Put {
                item: Item::Immutable(value),
                cas: None,
            },
            target,
            false,
        )?;
        Ok((id, target))
    }

    /// Stores a signed mutable item on the closest nodes.
    ///
    /// # Errors
    /// [`PutError`] when the item does not verify or too many lookups run.
    pub fn put_mutable(
        &mut self,
        now: Instant,
        item: MutableItem,
        cas: Option<i64>,
    ) -> Result<LookupId, PutError> {
        item.verify()?;
        let target = item.target();
        let _ = self
            .items
            .put_mutable(now, &self.config.limits, item.clone(), None);
        Ok(self.start(
            now,
            Kind::Put {
                item: Item::Mutable(item),
                cas,
            },
            target,
            false,
        )?)
    }

    fn start(
        &mut self,
        now: Instant,
        kind: Kind,
        target: NodeId,
        internal: bool,
    ) -> Result<LookupId, Busy> {
        if !internal
            && self.lookups.values().filter(|l| !l.internal).count() >= self.config.max_lookups
        {
            return Err(Busy(self.config.max_lookups));
        }
        let id = LookupId(self.next_lookup);
        self.next_lookup += 1;
        let mut lookup = Lookup {
            kind,
            target,
            internal,
            candidates: BTreeMap::new(),
            in_flight: 0,
            slow: 0,
            storing: 0,
            peers: HashSet::new(),
            peer_list: Vec::new(),
            item: None,
            queries: 0,
            responses: 0,
            stored: 0,
            started: now,
            storing_phase: false,
        };
        for n in self.closest_nodes(now, &target, K * 2) {
            add_candidate(&mut lookup, n.addr, Some(n.id));
        }
        if lookup.candidates.len() < K {
            for n in &self.restored {
                add_candidate(&mut lookup, n.addr, Some(n.id));
            }
            for a in &self.config.bootstrap {
                if self.family_enabled(*a) {
                    add_candidate(&mut lookup, *a, None);
                }
            }
        }
        self.lookups.insert(id, lookup);
        self.advance(now, id);
        Ok(id)
    }

    fn family_enabled(&self, a: SocketAddr) -> bool {
        if a.is_ipv4() {
            self.config.ipv4
        } else {
            self.config.ipv6
        }
    }

    fn rand20(&mut self, label: &[u8]) -> [u8; 20] {
        self.counter += 1;
        random_bytes(&self.config.seed, label, self.counter)
    }

    fn new_tid(&mut self) -> u16 {
        for _ in 0..8 {
            self.next_tid = self.next_tid.wrapping_add(1);
            if !self.pending.contains_key(&self.next_tid) {
                break;
            }
        }
        self.next_tid
    }

    fn want(&self) -> Want {
        Want {
            v4: self.config.ipv4,
            v6: self.config.ipv6,
        }
    }

    fn send_query(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        id: Option<NodeId>,
        query: Query,
        purpose: Purpose,
    ) -> bool {
        if self.pending.len() >= MAX_PENDING || self.out.len() >= MAX_QUEUED {
            return false;
        }
        let tid = self.new_tid();
        let msg = Message {
            transaction_id: tid.to_be_bytes().to_vec(),
            version: self.config.version.clone(),
            ip: None,
            read_only: self.config.read_only,
            body: Body::Query(query),
        };
        self.out.push_back((addr, msg));
        let short =
            matches!(purpose, Purpose::Lookup(_)).then(|| now + self.config.query_timeout / 4);
        self.pending.insert(
            tid,
            Pending {
                addr,
                id,
                deadline: now + self.config.query_timeout,
                short,
                purpose,
            },
        );
        true
    }

    fn lookup_query(&self, kind: &Kind, target: NodeId) -> Query {
        let id = self.id;
        let want = self.want();
        match kind {
            Kind::FindNode => Query::FindNode { id, target, want },
            Kind::GetPeers { .. } => Query::GetPeers {
                id,
                info_hash: target,
                want,
            },
            Kind::Get { .. } | Kind::Put { .. } => Query::Get {
                id,
                target,
                seq: None,
                want,
            },
        }
    }

    /// Sends what the lookup may send now, or finishes it.
    fn advance(&mut self, now: Instant, lid: LookupId) {
        let Some(lookup) = self.lookups.get(&lid) else {
            return;
        };
        if lookup.storing_phase {
            if lookup.storing == 0 {
                self.finish(now, lid);
            }
            return;
        }
        let alpha = self.config.alpha.max(1);
        let found_immutable =
            matches!(lookup.kind, Kind::Get { mutable: None }) && lookup.item.is_some();
        let mut to_query = Vec::new();
        let mut converged = true;
        let mut in_flight = lookup.in_flight.saturating_sub(lookup.slow);
        for (key, c) in lookup
            .candidates
            .iter()
            .filter(|(_, c)| c.state != CandState::Failed)
            .take(K)
        {
            match c.state {
                CandState::Fresh => {
                    converged = false;
                    if in_flight < alpha {
                        to_query.push(*key);
                        in_flight += 1;
                    }
                }
                CandState::InFlight => converged = false,
                _ => {}
            }
        }
        let expired = now.saturating_duration_since(lookup.started) >= LOOKUP_DEADLINE;
        if converged || found_immutable || expired {
            self.converged(now, lid);
            return;
        }
        let query = self.lookup_query(&lookup.kind, lookup.target);
        for key in to_query {
            let Some(c) = self.lookups.get(&lid).and_then(|l| l.candidates.get(&key)) else {
                continue;
            };
            let (addr, id) = (c.addr, c.id);
            if self.send_query(now, addr, id, query.clone(), Purpose::Lookup(lid)) {
                let l = self
                    .lookups
                    .get_mut(&lid)
                    .expect("the lookup exists: checked above");
                l.in_flight += 1;
                l.queries += 1;
                if let Some(c) = l.candidates.get_mut(&key) {
                    c.state = CandState::InFlight;
                }
            }
        }
    }

    /// The search part is over: store (announce or put) or finish.
    fn converged(&mut self, now: Instant, lid: LookupId) {
        let Some(lookup) = self.lookups.get_mut(&lid) else {
            return;
        };
        let targets: Vec<(SocketAddr, NodeId, Vec<u8>)> = lookup
            .candidates
            .values()
            .filter(|c| c.state == CandState::Responded)
            .filter_map(|c| Some((c.addr, c.id?, c.token.clone()?)))
            .take(K)
            .collect();
        lookup.storing_phase = true;
        let target = lookup.target;
        let store_query: Option<Box<dyn Fn(Vec<u8>) -> Query>> = match &lookup.kind {
            Kind::GetPeers {
                announce: Some((port, implied)),
            } => {
                let (id, port, implied) = (self.id, *port, *implied);
                Some(Box::new(move |token| Query::AnnouncePeer {
                    id,
                    info_hash: target,
                    port,
                    implied_port: implied,
                    token,
                }))
            }
            Kind::Put { item, cas } => {
                let id = self.id;
                let (value, mutable) = match item {
                    Item::Immutable(v) => (v.clone(), None),
                    Item::Mutable(m) => (
                        m.value.clone(),
                        Some(MutableFields {
                            key: m.key,
                            signature: m.signature,
                            seq: m.seq,
                            salt: m.salt.clone(),
                            cas: *cas,
                        }),
                    ),
                };
                Some(Box::new(move |token| {
                    Query::Put(Box::new(PutArgs {
                        id,
                        token,
                        value: value.clone(),
                        mutable: mutable.clone(),
                    }))
                }))
            }
            _ => None,
        };
        if let Some(make) = store_query {
            for (addr, id, token) in targets {
                if self.send_query(now, addr, Some(id), make(token), Purpose::Store(lid))
                    && let Some(l) = self.lookups.get_mut(&lid)
                {
                    l.storing += 1;
                }
            }
        }
        self.advance(now, lid);
    }

    fn finish(&mut self, now: Instant, lid: LookupId) {
        let Some(l) = self.lookups.remove(&lid) else {
            return;
        };
        // A finished lookup of our own id (a bootstrap): refresh every bucket once, so
        // that the far ones are filled too.
        if matches!(l.kind, Kind::FindNode) && l.target == self.id && l.responses > 0 {
            for fam in [4, 6] {
                let table = if fam == 4 { &self.table4 } else { &self.table6 };
                if table.len() == 0 {
                    continue;
                }
                let count = table.bucket_count().min(16);
                let mut randoms: Vec<[u8; 20]> =
                    (0..count).map(|_| self.rand20(b"refresh")).collect();
                let table = if fam == 4 { &self.table4 } else { &self.table6 };
                let targets = table.all_buckets(|| randoms.pop().unwrap_or([0x5a; 20]));
                for t in targets.into_iter().take(count) {
                    let _ = self.start(now, Kind::FindNode, t, true);
                }
            }
        }
        // Queries still in flight for it are forgotten when they answer or time out.
        if l.internal {
            return;
        }
        let closest = l
            .candidates
            .values()
            .filter(|c| c.state == CandState::Responded)
            .filter_map(|c| {
                Some(NodeInfo {
                    id: c.id?,
                    addr: c.addr,
                })
            })
            .take(K)
            .collect();
        let done = LookupDone {
            id: lid,
            target: l.target,
            queries: l.queries,
            responses: l.responses,
            closest,
            peers: l.peer_list,
            item: l.item,
            stored: l.stored,
        };
        self.events.push_back(Event::Done(Box::new(done)));
    }

    /// Feeds one received datagram.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        let msg = match Message::decode(data) {
            Ok(m) => m,
            Err(e) => {
                self.stats.malformed += 1;
                tracing::debug!(%from, error = %e, "malformed KRPC");
                if let Some(tid) = e.transaction_id
                    && !self.config.read_only
                    && self.take_budget(now, from.ip())
                {
                    self.reply_error(from, tid, code::PROTOCOL, "malformed query");
                }
                return;
            }
        };
        match msg.body {
            Body::Query(q) => {
                if self.config.read_only || !self.take_budget(now, from.ip()) {
                    return;
                }
                self.answer(now, from, msg.transaction_id, msg.read_only, q);
            }
            Body::Response(r) => {
                self.on_reply(now, from, &msg.transaction_id, msg.read_only, Ok(*r))
            }
            Body::Error(e) => self.on_reply(now, from, &msg.transaction_id, msg.read_only, Err(e)),
        }
    }

    fn take_budget(&mut self, now: Instant, ip: IpAddr) -> bool {
        if !ip.is_loopback() {
            if now.saturating_duration_since(self.per_ip_second) >= Duration::from_secs(1) {
                self.per_ip.clear();
                self.per_ip_second = now;
            }
            let tracked = self.per_ip.len() < MAX_TRACKED_IPS || self.per_ip.contains_key(&ip);
            if tracked {
                let n = self.per_ip.entry(ip).or_insert(0);
                if *n >= self.config.max_answers_per_ip_per_sec {
                    self.stats.rate_limited += 1;
                    return false;
                }
                *n += 1;
            }
        }
        let rate = f64::from(self.config.max_answers_per_sec);
        let elapsed = now.saturating_duration_since(self.budget_at).as_secs_f64();
        self.budget = (self.budget + elapsed * rate).min(rate);
        self.budget_at = now;
        if self.budget >= 1.0 {
            self.budget -= 1.0;
            true
        } else {
            self.stats.rate_limited += 1;
            false
        }
    }

    fn table_for(&mut self, addr: SocketAddr) -> &mut RoutingTable {
        if addr.is_ipv4() {
            &mut self.table4
        } else {
            &mut self.table6
        }
    }

    fn reply(&mut self, to: SocketAddr, tid: Vec<u8>, body: Body) {
        if self.out.len() >= MAX_QUEUED {
            return;
        }
        let msg = Message {
            transaction_id: tid,
            version: self.config.version.clone(),
            ip: Some(to),
            read_only: false,
            body,
        };
        self.out.push_back((to, msg));
    }

    fn reply_error(&mut self, to: SocketAddr, tid: Vec<u8>, code: i64, message: &str) {
        self.reply(
            to,
            tid,
            Body::Error(ErrorBody {
                code,
                message: message.to_owned(),
            }),
        );
    }

    fn nodes_for(
        &self,
        now: Instant,
        from: SocketAddr,
        target: &NodeId,
        want: Want,
    ) -> (Vec<NodeInfo>, Vec<NodeInfo>) {
        let (v4, v6) = if want == Want::default() {
            (from.is_ipv4(), from.is_ipv6())
        } else {
            (want.v4, want.v6)
        };
        let n4 = if v4 {
            self.table4.closest(now, target, K)
        } else {
            Vec::new()
        };
        let n6 = if v6 {
            self.table6.closest(now, target, K)
        } else {
            Vec::new()
        };
        (n4, n6)
    }

    fn answer(&mut self, now: Instant, from: SocketAddr, tid: Vec<u8>, sender_ro: bool, q: Query) {
        if let Some(id) = q.id()
            && !sender_ro
            && self.family_enabled(from)
        {
            let _ = self
                .table_for(from)
                .insert(now, NodeInfo { id, addr: from }, Contact::Queried);
        }
        let mut r = Response {
            id: self.id,
            ..Response::default()
        };
        match q {
            Query::Ping { .. } => {}
            Query::FindNode { target, want, .. } => {
                (r.nodes, r.nodes6) = self.nodes_for(now, from, &target, want);
            }
            Query::GetPeers {
                info_hash, want, ..
            } => {
                (r.nodes, r.nodes6) = self.nodes_for(now, from, &info_hash, want);
                let (v4, v6) = if want == Want::default() {
                    (true, true)
                } else {
                    (want.v4, want.v6)
                };
                r.values = self.peers.get(
                    now,
                    &self.config.limits,
                    &info_hash,
                    MAX_VALUES_PER_REPLY,
                    v4,
                    v6,
                );
                r.token = Some(self.tokens.token(from.ip()));
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                if !self.tokens.check(from.ip(), &token) {
                    return self.reply_error(from, tid, code::PROTOCOL, "bad token");
                }
                let port = if implied_port { from.port() } else { port };
                if port == 0 {
                    return self.reply_error(from, tid, code::PROTOCOL, "port 0");
                }
                self.peers.announce(
                    now,
                    &self.config.limits,
                    info_hash,
                    SocketAddr::new(from.ip(), port),
                );
            }
            Query::Get {
                target, seq, want, ..
            } => {
                (r.nodes, r.nodes6) = self.nodes_for(now, from, &target, want);
                r.token = Some(self.tokens.token(from.ip()));
                match self.items.get(now, &self.config.limits, &target) {
                    Some(Item::Immutable(v)) => r.value = Some(v.clone()),
                    Some(Item::Mutable(m)) => {
                        if seq.is_some_and(|s| s >= m.seq) {
                            r.seq = Some(m.seq);
                        } else {
                            r.value = Some(m.value.clone());
                            r.seq = Some(m.seq);
                            r.mutable = Some(MutableFields {
                                key: m.key,
                                signature: m.signature,
                                seq: m.seq,
                                salt: Vec::new(),
                                cas: None,
                            });
                        }
                    }
                    None => {}
                }
            }
            Query::Put(p) => {
                if let Err((c, m)) = self.store_put(now, from.ip(), *p) {
                    return self.reply_error(from, tid, c, &m);
                }
            }
            Query::Unknown { .. } => {
                return self.reply_error(from, tid, code::METHOD_UNKNOWN, "method unknown");
            }
        }
        self.reply(from, tid, Body::Response(Box::new(r)));
    }

    fn store_put(&mut self, now: Instant, ip: IpAddr, p: PutArgs) -> Result<(), (i64, String)> {
        if !self.tokens.check(ip, &p.token) {
            return Err((code::PROTOCOL, "bad token".into()));
        }
        let err = |e: ItemError| (e.code(), e.to_string());
        check_value(&p.value).map_err(err)?;
        match p.mutable {
            None => {
                let target = immutable_target(&p.value);
                self.items
                    .put_immutable(now, &self.config.limits, target, p.value);
                Ok(())
            }
            Some(m) => {
                let item = MutableItem {
                    key: m.key,
                    salt: m.salt,
                    seq: m.seq,
                    value: p.value,
                    signature: m.signature,
                };
                item.verify().map_err(err)?;
                self.items
                    .put_mutable(now, &self.config.limits, item, m.cas)
                    .map_err(err)
            }
        }
    }

    fn on_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: &[u8],
        sender_ro: bool,
        reply: Result<Response, ErrorBody>,
    ) {
        let Ok(tid) = <[u8; 2]>::try_from(tid).map(u16::from_be_bytes) else {
            self.stats.unexpected_replies += 1;
            return;
        };
        // Only the address we asked may answer.
        if self.pending.get(&tid).is_none_or(|p| p.addr != from) {
            self.stats.unexpected_replies += 1;
            return;
        }
        let pending = self.pending.remove(&tid).expect("checked just above");
        let r = match reply {
            Ok(r) => {
                if pending.id.is_some_and(|id| id != r.id) || r.id == self.id {
                    // Answering with another node's id (or ours): count it as a failure.
                    self.stats.unexpected_replies += 1;
                    tracing::debug!(%from, "reply with an unexpected id");
                    if let Some(id) = pending.id {
                        self.table_for(from).failed(now, &id, from);
                    }
                    self.reply_failed(now, &pending);
                    return;
                }
                r
            }
            Err(e) => {
                tracing::debug!(%from, code = e.code, message = %e.message, "KRPC error");
                self.reply_failed(now, &pending);
                return;
            }
        };
        if !sender_ro && self.family_enabled(from) {
            let info = NodeInfo {
                id: r.id,
                addr: from,
            };
            if let Insert::Replacement(Some(ping)) =
                self.table_for(from).insert(now, info, Contact::Responded)
            {
                let q = Query::Ping { id: self.id };
                self.send_query(now, ping.addr, Some(ping.id), q, Purpose::Ping);
            }
        }
        match pending.purpose {
            Purpose::Ping => {}
            Purpose::Store(lid) => {
                if let Some(l) = self.lookups.get_mut(&lid) {
                    l.storing = l.storing.saturating_sub(1);
                    l.stored += 1;
                }
                self.advance(now, lid);
            }
            Purpose::Lookup(lid) => {
                if pending.short.is_none()
                    && let Some(l) = self.lookups.get_mut(&lid)
                {
                    l.slow = l.slow.saturating_sub(1);
                }
                self.lookup_reply(now, lid, from, pending.id, r);
            }
        }
    }

    fn reply_failed(&mut self, now: Instant, pending: &Pending) {
        match pending.purpose {
            Purpose::Ping => {}
            Purpose::Store(lid) => {
                if let Some(l) = self.lookups.get_mut(&lid) {
                    l.storing = l.storing.saturating_sub(1);
                }
                self.advance(now, lid);
            }
            Purpose::Lookup(lid) => {
                if let Some(l) = self.lookups.get_mut(&lid) {
                    l.in_flight = l.in_flight.saturating_sub(1);
                    if pending.short.is_none() {
                        l.slow = l.slow.saturating_sub(1);
                    }
                    if let Some(c) = find_candidate(l, pending.addr, pending.id) {
                        c.state = CandState::Failed;
                    }
                }
                self.advance(now, lid);
            }
        }
    }

    fn lookup_reply(
        &mut self,
        now: Instant,
        lid: LookupId,
        from: SocketAddr,
        expected: Option<NodeId>,
        r: Response,
    ) {
        let own = self.id;
        let enforce = self.config.enforce_bep42;
        let (v4, v6) = (self.config.ipv4, self.config.ipv6);
        let Some(l) = self.lookups.get_mut(&lid) else {
            return;
        };
        l.in_flight = l.in_flight.saturating_sub(1);
        l.responses += 1;
        // A bootstrap contact's id is learned now: file it under its distance.
        if expected.is_none() {
            l.candidates
                .retain(|_, c| !(c.addr == from && c.id.is_none()));
            add_candidate(l, from, Some(r.id));
        }
        if let Some(c) = find_candidate(l, from, Some(r.id)) {
            c.state = CandState::Responded;
            c.token = r.token.clone();
        }
        for n in r
            .nodes
            .iter()
            .filter(|_| v4)
            .chain(r.nodes6.iter().filter(|_| v6))
        {
            let ok = n.id != own
                && n.addr.port() != 0
                && !n.addr.ip().is_unspecified()
                && !n.addr.ip().is_multicast()
                && (!enforce || n.id.is_valid_for(n.addr.ip()));
            if ok {
                add_candidate(l, n.addr, Some(n.id));
            }
        }
        match &l.kind {
            Kind::GetPeers { .. } => {
                let mut fresh = Vec::new();
                for p in &r.values {
                    if l.peers.len() < MAX_LOOKUP_PEERS && p.port() != 0 && l.peers.insert(*p) {
                        fresh.push(*p);
                    }
                }
                l.peer_list.extend_from_slice(&fresh);
                if !fresh.is_empty() && !l.internal && self.events.len() < MAX_QUEUED {
                    self.events.push_back(Event::Peers {
                        lookup: lid,
                        info_hash: l.target,
                        peers: fresh,
                    });
                }
            }
            Kind::Get { mutable } => {
                if let Some(v) = &r.value {
                    let found = match mutable {
                        None => (immutable_target(v) == l.target && check_value(v).is_ok())
                            .then(|| Item::Immutable(v.clone())),
                        Some((key, salt)) => r.mutable.as_ref().and_then(|m| {
                            let item = MutableItem {
                                key: m.key,
                                salt: salt.clone(),
                                seq: m.seq,
                                value: v.clone(),
                                signature: m.signature,
                            };
                            let better = match &l.item {
                                Some(Item::Mutable(old)) => item.seq > old.seq,
                                _ => true,
                            };
                            if !better {
                                return None;
                            }
                            if m.key != *key || item.verify().is_err() {
                                tracing::debug!(%from, "a mutable item failed its checks");
                                return None;
                            }
                            Some(Item::Mutable(item))
                        }),
                    };
                    if found.is_some() {
                        l.item = found;
                    } else if mutable.is_none() {
                        tracing::debug!(%from, "an immutable item does not hash to its target");
                    }
                }
            }
            _ => {}
        }
        self.advance(now, lid);
    }

    /// Runs due timers: query timeouts, token rotation, refresh, pings, expiry.
    fn timers(&mut self, now: Instant) {
        let mut slowed = Vec::new();
        for p in self.pending.values_mut() {
            if p.short.is_some_and(|t| t <= now) {
                p.short = None;
                if let Purpose::Lookup(lid) = p.purpose {
                    slowed.push(lid);
                }
            }
        }
        for lid in slowed {
            if let Some(l) = self.lookups.get_mut(&lid) {
                l.slow += 1;
            }
            self.advance(now, lid);
        }
        let expired: Vec<u16> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for tid in expired {
            let p = self.pending.remove(&tid).expect("listed just above");
            if let Some(id) = p.id {
                self.table_for(p.addr).failed(now, &id, p.addr);
            }
            self.reply_failed(now, &p);
        }
        let stuck: Vec<LookupId> = self
            .lookups
            .iter()
            .filter(|(_, l)| {
                now.saturating_duration_since(l.started)
                    >= LOOKUP_DEADLINE + self.config.query_timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for lid in stuck {
            self.finish(now, lid);
        }
        if now < self.next_maintenance {
            return;
        }
        self.next_maintenance = now + MAINTENANCE_INTERVAL;
        let mut fresh = [0u8; 16];
        fresh.copy_from_slice(&self.rand20(b"token")[..16]);
        self.tokens.maybe_rotate(now, || fresh);
        self.peers.expire(now, &self.config.limits);
        self.items.expire(now, &self.config.limits);
        let total = self.table4.len() + self.table6.len();
        let bootstrap_due = self
            .last_bootstrap
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(30));
        if total < K
            && bootstrap_due
            && (!self.config.bootstrap.is_empty() || !self.restored.is_empty())
            && !self.lookups.values().any(|l| l.internal)
        {
            self.last_bootstrap = Some(now);
            let _ = self.start(now, Kind::FindNode, self.id, true);
            return;
        }
        for fam in [4, 6] {
            let mut randoms: Vec<[u8; 20]> = (0..4).map(|_| self.rand20(b"refresh")).collect();
            let table = if fam == 4 {
                &mut self.table4
            } else {
                &mut self.table6
            };
            if table.len() == 0 {
                continue;
            }
            let targets = table.stale_buckets(now, REFRESH_INTERVAL, || {
                randoms.pop().unwrap_or([0x33; 20])
            });
            let pings = table.to_ping(now, Duration::from_secs(5 * 60), 4);
            for t in targets.into_iter().take(4) {
                let _ = self.start(now, Kind::FindNode, t, true);
            }
            for p in pings {
                let q = Query::Ping { id: self.id };
                self.send_query(now, p.addr, Some(p.id), q, Purpose::Ping);
            }
        }
    }

    /// The next thing to do: a datagram to send (written to `buf`), an event, or the
    /// instant to call again at the latest.
    pub fn poll_output(&mut self, now: Instant, buf: &mut Vec<u8>) -> Output {
        self.timers(now);
        if let Some((to, msg)) = self.out.pop_front() {
            buf.clear();
            msg.encode(buf);
            return Output::Transmit(Transmit { destination: to });
        }
        if let Some(e) = self.events.pop_front() {
            return Output::Event(e);
        }
        let next = self
            .pending
            .values()
            .map(|p| p.short.map_or(p.deadline, |s| s.min(p.deadline)))
            .min()
            .unwrap_or(self.next_maintenance);
        Output::Timeout(next.min(self.next_maintenance))
    }
}

/// Why a put did not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PutError {
    /// The item breaks BEP 44.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// Too many lookups.
    #[error(transparent)]
    Busy(#[from] Busy),
}

fn add_candidate(l: &mut Lookup, addr: SocketAddr, id: Option<NodeId>) {
    let dist = id.map_or([0xff; 20], |id| id.distance(&l.target));
    let key = (dist, addr);
    if l.candidates.contains_key(&key) {
        return;
    }
    // One entry per id, and per address for unknown ids.
    if l.candidates
        .values()
        .any(|c| (id.is_some() && c.id == id) || c.addr == addr)
    {
        return;
    }
    if !addr.ip().is_loopback() {
        let same_ip = l
            .candidates
            .values()
            .filter(|c| c.addr.ip() == addr.ip())
            .count();
        if same_ip >= 2 {
            return;
        }
    }
    if l.candidates.len() >= MAX_CANDIDATES {
        let Some((&last, c)) = l.candidates.iter().next_back() else {
            return;
        };
        if last <= key || c.state != CandState::Fresh {
            return;
        }
        l.candidates.remove(&last);
    }
    l.candidates.insert(
        key,
        Candidate {
            addr,
            id,
            state: CandState::Fresh,
            token: None,
        },
    );
}

fn find_candidate(l: &mut Lookup, addr: SocketAddr, id: Option<NodeId>) -> Option<&mut Candidate> {
    let dist = id.map_or([0xff; 20], |id| id.distance(&l.target));
    l.candidates.get_mut(&(dist, addr))
}

fn random_bytes(seed: &[u8; 32], label: &[u8], counter: u64) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(seed);
    h.update(label);
    h.update(counter.to_be_bytes());
    h.finalize().into()
}
