//! The sans-IO LSD state machine: when to announce which torrents, and which received
//! announces to believe.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use webtorrent_types::InfoHashV1;

use crate::error::DecodeError;
use crate::message::{Announce, MAX_INFO_HASHES};

/// How often each torrent is announced (BEP 14: every 5 minutes).
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The least time between two announces we send (BEP 14: "no more than 1 announce per
/// minute"), however many torrents are due.
pub const MIN_SEND_INTERVAL: Duration = Duration::from_secs(60);

/// The most events kept for the caller; peers found beyond it are dropped (and
/// counted in [`Stats::events_dropped`]) until the caller drains them.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// Settings of an [`Lsd`] state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Our BitTorrent listen port, sent in the `Port` header.
    pub port: u16,
    /// Our cookie, sent in lowercase hex. Announces carrying it are our own, looped
    /// back, and are ignored. Pick it at random, once per session.
    pub cookie: u32,
    /// Where announces go: the multicast group (the default is
    /// [`IPV4_GROUP`](crate::IPV4_GROUP)), or any address on networks without
    /// multicast. Also sent as the `Host` header.
    pub destination: SocketAddr,
    /// How often each torrent is announced ([`ANNOUNCE_INTERVAL`]).
    pub announce_interval: Duration,
    /// The least time between two announces ([`MIN_SEND_INTERVAL`]). Torrents that
    /// fall due meanwhile wait and are announced together, up to
    /// `max_info_hashes_per_announce` per datagram, the longest waiting first.
    pub min_send_interval: Duration,
    /// The most info-hashes per datagram, 1 to [`MAX_INFO_HASHES`] (the default).
    /// Some older implementations read only one.
    pub max_info_hashes_per_announce: usize,
    /// Datagrams a single source IP may send in a burst before it is rate limited.
    pub source_burst: u32,
    /// The time a source earns one more datagram after its burst is spent. The
    /// default, 2 s, lets a neighbour announce 150 torrents one per datagram every 5
    /// minutes, as libtorrent does.
    pub source_refill: Duration,
    /// The most sources whose rate is tracked; beyond it the one heard from least
    /// recently is forgotten.
    pub max_sources: usize,
}

impl Config {
    /// The BEP 14 defaults, announcing `port` to the IPv4 group.
    pub fn new(port: u16, cookie: u32) -> Self {
        Self {
            port,
            cookie,
            destination: SocketAddr::V4(crate::IPV4_GROUP),
            announce_interval: ANNOUNCE_INTERVAL,
            min_send_interval: MIN_SEND_INTERVAL,
            max_info_hashes_per_announce: MAX_INFO_HASHES,
            source_burst: 20,
            source_refill: Duration::from_secs(2),
            max_sources: 256,
        }
    }

    /// The same settings, sending to `destination` instead.
    #[must_use]
    pub fn with_destination(mut self, destination: SocketAddr) -> Self {
        self.destination = destination;
        self
    }
}

/// What the caller does next, from [`Lsd::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send the bytes written into the caller's buffer.
    Transmit(Transmit),
    /// Something happened.
    Event(Event),
    /// Nothing to do before this time, unless a datagram arrives or torrents change.
    Timeout(Instant),
    /// Nothing to do until a datagram arrives or a torrent is added.
    Idle,
}

/// A datagram to send: the bytes are in the buffer given to [`Lsd::poll_output`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transmit {
    /// Where to send it ([`Config::destination`]).
    pub destination: SocketAddr,
    /// The datagram's length, the buffer's whole content.
    pub len: usize,
    /// How many info-hashes it announces.
    pub info_hashes: usize,
}

/// Something the caller may act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A neighbour takes part in one of our torrents and accepts connections at `addr`
    /// (the datagram's source IP with the announced port).
    Peer {
        /// The torrent.
        info_hash: InfoHashV1,
        /// Where to connect.
        addr: SocketAddr,
    },
}

/// What became of a datagram given to [`Lsd::handle_datagram`], for logs and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// A valid announce; `peers` of its info-hashes are torrents of ours and were
    /// queued as [`Event::Peer`].
    Accepted {
        /// The number of events queued.
        peers: usize,
    },
    /// Our own announce, looped back (its cookie is ours).
    Own,
    /// The source sent more than its share; the datagram was not read.
    RateLimited,
    /// Not an announce we accept.
    Malformed(DecodeError),
    /// The source address cannot be connected to (unspecified, multicast or
    /// broadcast), so neither can the peer; the datagram was not read.
    BadSource,
}

/// Counters since the state machine was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Announces sent.
    pub sent: u64,
    /// Valid announces received from others.
    pub accepted: u64,
    /// Our own announces received.
    pub own: u64,
    /// Datagrams dropped by the per-source rate limit.
    pub rate_limited: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Datagrams from a source that cannot be connected to.
    pub bad_source: u64,
    /// Peer events dropped because [`MAX_QUEUED_EVENTS`] were waiting.
    pub events_dropped: u64,
}

/// A token bucket per source IP.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u32,
    refilled: Instant,
    seen: Instant,
}

/// The BEP 14 state machine for one socket (one interface, one group).
///
/// Feed it the torrents to announce ([`Lsd::add_torrent`]) and the datagrams the
/// socket receives ([`Lsd::handle_datagram`]); then call [`Lsd::poll_output`] until it
/// returns [`Output::Timeout`] or [`Output::Idle`], sending every
/// [`Output::Transmit`] and acting on every [`Output::Event`]. Call it again at the
/// timeout, after each datagram, and after adding a torrent.
///
/// Each torrent is announced as soon as possible once added, then every
/// [`Config::announce_interval`]; no two announces are closer than
/// [`Config::min_send_interval`], so torrents due meanwhile are batched, several
/// info-hashes per datagram. Received announces are rate limited per source IP,
/// our own are recognised by their cookie, and only info-hashes of our torrents
/// become events.
#[derive(Debug)]
pub struct Lsd {
    config: Config,
    host: String,
    cookie: String,
    /// Each torrent and when it is next due (`None`: as soon as possible).
    torrents: HashMap<InfoHashV1, Option<Instant>>,
    last_send: Option<Instant>,
    sources: HashMap<IpAddr, Bucket>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Lsd {
    /// A state machine with no torrents.
    ///
    /// `max_info_hashes_per_announce` is clamped to 1..=[`MAX_INFO_HASHES`], and
    /// `max_sources` to at least 1.
    pub fn new(mut config: Config) -> Self {
        config.max_info_hashes_per_announce = config
            .max_info_hashes_per_announce
            .clamp(1, MAX_INFO_HASHES);
        config.max_sources = config.max_sources.max(1);
        let mut host_addr = config.destination;
        if let SocketAddr::V6(v6) = &mut host_addr {
            // The Host header names the group, never a local interface's scope.
            v6.set_scope_id(0);
            v6.set_flowinfo(0);
        }
        Self {
            host: host_addr.to_string(),
            cookie: format!("{:x}", config.cookie),
            config,
            torrents: HashMap::new(),
            last_send: None,
            sources: HashMap::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether `datagram` looks like an LSD announce, for callers that share a socket
    /// between protocols. [`Lsd::handle_datagram`] still checks it fully.
    pub fn accepts(datagram: &[u8]) -> bool {
        datagram
            .get(..9)
            .is_some_and(|m| m.eq_ignore_ascii_case(b"BT-SEARCH"))
    }

    /// Starts announcing a torrent (a v2 torrent by its truncated info-hash) and
    /// reporting peers for it. Returns false if it was already there.
    pub fn add_torrent(&mut self, info_hash: InfoHashV1) -> bool {
        if self.torrents.contains_key(&info_hash) {
            return false;
        }
        self.torrents.insert(info_hash, None);
        true
    }

    /// Stops announcing a torrent and reporting its peers. Returns false if it was not
    /// there. Events already queued for it stay queued.
    pub fn remove_torrent(&mut self, info_hash: &InfoHashV1) -> bool {
        self.torrents.remove(info_hash).is_some()
    }

    /// The torrents announced, in no particular order.
    pub fn torrents(&self) -> impl Iterator<Item = &InfoHashV1> {
        self.torrents.keys()
    }

    /// Reads a datagram received from `source` at `now`.
    ///
    /// A source that cannot be dialled is refused first, then the source's rate is
    /// checked, then the datagram is decoded, our own announces are dropped, and each info-hash of ours is queued as
    /// an [`Event::Peer`] (repeats within one datagram once).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &[u8],
    ) -> Received {
        if !connectable(source.ip()) {
            self.stats.bad_source += 1;
            return Received::BadSource;
        }
        if !self.take_token(now, source.ip()) {
            self.stats.rate_limited += 1;
            return Received::RateLimited;
        }
        let announce = match Announce::decode(datagram) {
            Ok(announce) => announce,
            Err(e) => {
                self.stats.malformed += 1;
                return Received::Malformed(e);
            }
        };
        if announce.cookie == Some(self.cookie.as_str()) {
            self.stats.own += 1;
            return Received::Own;
        }
        self.stats.accepted += 1;
        let mut addr = source;
        addr.set_port(announce.port);
        let mut peers = 0;
        for (i, info_hash) in announce.info_hashes.iter().enumerate() {
            if !self.torrents.contains_key(info_hash)
                || announce.info_hashes[..i].contains(info_hash)
            {
                continue;
            }
            if self.events.len() >= MAX_QUEUED_EVENTS {
                self.stats.events_dropped += 1;
                continue;
            }
            self.events.push_back(Event::Peer {
                info_hash: *info_hash,
                addr,
            });
            peers += 1;
        }
        Received::Accepted { peers }
    }

    /// The next thing to do at `now`. A [`Output::Transmit`] has written its datagram
    /// into `buf` (cleared first); `buf` is left alone otherwise.
    ///
    /// Call it until it returns [`Output::Timeout`] or [`Output::Idle`].
    pub fn poll_output(&mut self, now: Instant, buf: &mut Vec<u8>) -> Output {
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        let Some(earliest) = self.torrents.values().min() else {
            return Output::Idle;
        };
        // `None` (as soon as possible) sorts before every time.
        let mut when = earliest.unwrap_or(now);
        if let Some(allowed) = self
            .last_send
            .and_then(|last| last.checked_add(self.config.min_send_interval))
        {
            when = when.max(allowed);
        }
        if when > now {
            return Output::Timeout(when);
        }
        self.announce(now, buf)
    }

    /// Builds one announce of the torrents due, the longest waiting first.
    fn announce(&mut self, now: Instant, buf: &mut Vec<u8>) -> Output {
        let mut due: Vec<(Option<Instant>, InfoHashV1)> = self
            .torrents
            .iter()
            .filter(|(_, due)| due.is_none_or(|d| d <= now))
            .map(|(hash, due)| (*due, *hash))
            .collect();
        due.sort_unstable();
        due.truncate(self.config.max_info_hashes_per_announce);
        let next = now
            .checked_add(self.config.announce_interval)
            .unwrap_or(now);
        for (_, hash) in &due {
            self.torrents.insert(*hash, Some(next));
        }
        self.last_send = Some(now);
        let announce = Announce {
            host: Some(&self.host),
            port: self.config.port,
            info_hashes: due.into_iter().map(|(_, hash)| hash).collect(),
            cookie: Some(&self.cookie),
        };
        buf.clear();
        match announce.encode(buf) {
            Ok(len) => {
                self.stats.sent += 1;
                Output::Transmit(Transmit {
                    destination: self.config.destination,
                    len,
                    info_hashes: announce.info_hashes.len(),
                })
            }
            // Only port 0 gets here: the count is clamped, the host is a formatted
            // socket address, the cookie is hex, and the longest announce fits. Port
            // 0 means "not listening": there is nothing to announce, ever.
            Err(_) => Output::Idle,
        }
    }

    /// Spends one of `ip`'s tokens; false if it has none left.
    fn take_token(&mut self, now: Instant, ip: IpAddr) -> bool {
        let burst = self.config.source_burst;
        let refill = self.config.source_refill;
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.config.max_sources {
            let stalest = self
                .sources
                .iter()
                .min_by_key(|(_, bucket)| bucket.seen)
                .map(|(ip, _)| *ip);
            if let Some(stalest) = stalest {
                self.sources.remove(&stalest);
            }
        }
        let bucket = self.sources.entry(ip).or_insert(Bucket {
            tokens: burst,
            refilled: now,
            seen: now,
        });
        bucket.seen = bucket.seen.max(now);
        if refill.is_zero() {
            return true;
        }
        let elapsed = now.saturating_duration_since(bucket.refilled);
        let earned = elapsed.as_nanos() / refill.as_nanos();
        if earned > 0 {
            let earned_u32 = u32::try_from(earned).unwrap_or(u32::MAX);
            bucket.tokens = bucket.tokens.saturating_add(earned_u32).min(burst);
            // Keep the remainder of a partly earned token; if the sum would overflow,
            // the bucket is full anyway.
            let spent = refill.saturating_mul(earned_u32);
            bucket.refilled = bucket.refilled.checked_add(spent).unwrap_or(now);
        }
        if bucket.tokens == 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }
}

/// Whether a peer at `ip` can be dialled: some kernels give `0.0.0.0` as the source
/// of multicast sent without a source address.
fn connectable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()),
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: u16 = 6881;

    fn hash(b: u8) -> InfoHashV1 {
        InfoHashV1([b; 20])
    }

    fn lsd() -> Lsd {
        Lsd::new(Config::new(PORT, 0xbeef))
    }

    fn neighbour() -> SocketAddr {
        "192.168.1.7:6771".parse().unwrap()
    }

    fn datagram(port: u16, hashes: &[InfoHashV1], cookie: Option<&str>) -> Vec<u8> {
        Announce {
            host: Some("239.192.152.143:6771"),
            port,
            info_hashes: hashes.to_vec(),
            cookie,
        }
        .to_vec()
        .unwrap()
    }

    /// Drains outputs: the transmits' decoded info-hashes, the events, the final state.
    fn drain(lsd: &mut Lsd, now: Instant) -> (Vec<Vec<InfoHashV1>>, Vec<Event>, Output) {
        let mut buf = Vec::new();
        let mut sent = Vec::new();
        let mut events = Vec::new();
        loop {
            match lsd.poll_output(now, &mut buf) {
                Output::Transmit(t) => {
                    assert_eq!(t.len, buf.len());
                    assert_eq!(t.destination, lsd.config().destination);
                    let a = Announce::decode(&buf).unwrap();
                    assert_eq!(a.port, PORT);
                    assert_eq!(a.host, Some("239.192.152.143:6771"));
                    assert_eq!(a.cookie, Some("beef"));
                    assert_eq!(a.info_hashes.len(), t.info_hashes);
                    sent.push(a.info_hashes);
                }
                Output::Event(e) => events.push(e),
                other => return (sent, events, other),
            }
        }
    }

    #[test]
    fn idle_without_torrents() {
        let mut lsd = lsd();
        assert_eq!(drain(&mut lsd, Instant::now()).2, Output::Idle);
    }

    #[test]
    fn announces_at_once_then_every_interval_never_faster_than_min() {
        let t0 = Instant::now();
        let mut lsd = lsd();
        assert!(lsd.add_torrent(hash(1)));
        assert!(!lsd.add_torrent(hash(1)));
        let (sent, _, next) = drain(&mut lsd, t0);
        assert_eq!(sent, vec![vec![hash(1)]]);
        assert_eq!(next, Output::Timeout(t0 + ANNOUNCE_INTERVAL));

        // A torrent added 10 s later waits for the per-minute limit.
        let t1 = t0 + Duration::from_secs(10);
        lsd.add_torrent(hash(2));
        let (sent, _, next) = drain(&mut lsd, t1);
        assert!(sent.is_empty());
        assert_eq!(next, Output::Timeout(t0 + MIN_SEND_INTERVAL));
        let (sent, _, next) = drain(&mut lsd, t0 + MIN_SEND_INTERVAL);
        assert_eq!(sent, vec![vec![hash(2)]]);
        assert_eq!(next, Output::Timeout(t0 + ANNOUNCE_INTERVAL));

        // Each torrent keeps its own 5-minute period.
        let (sent, _, next) = drain(&mut lsd, t0 + ANNOUNCE_INTERVAL);
        assert_eq!(sent, vec![vec![hash(1)]]);
        let t2 = t0 + MIN_SEND_INTERVAL + ANNOUNCE_INTERVAL;
        assert_eq!(next, Output::Timeout(t2));
        let (sent, _, next) = drain(&mut lsd, t2);
        assert_eq!(sent, vec![vec![hash(2)]]);
        assert_eq!(next, Output::Timeout(t0 + 2 * ANNOUNCE_INTERVAL));

        // Torrents due at the same time go out together.
        let t3 = t0 + 2 * ANNOUNCE_INTERVAL + Duration::from_secs(30);
        lsd.remove_torrent(&hash(2));
        lsd.add_torrent(hash(3));
        let (sent, _, _) = drain(&mut lsd, t3);
        // A torrent never announced goes first.
        assert_eq!(sent, vec![vec![hash(3), hash(1)]]);
    }

    #[test]
    fn many_torrents_are_batched_and_round_robin() {
        let t0 = Instant::now();
        let mut cfg = Config::new(PORT, 0xbeef);
        cfg.max_info_hashes_per_announce = 10;
        let mut lsd = Lsd::new(cfg);
        for b in 0..25 {
            lsd.add_torrent(hash(b));
        }
        let mut seen = Vec::new();
        let mut now = t0;
        let mut sizes = Vec::new();
        let next = loop {
            let (sent, _, next) = drain(&mut lsd, now);
            assert_eq!(sent.len(), 1, "one datagram per minute");
            sizes.push(sent[0].len());
            seen.extend(sent.into_iter().flatten());
            let Output::Timeout(at) = next else {
                panic!("expected a timeout, got {next:?}")
            };
            if at != now + MIN_SEND_INTERVAL {
                break at;
            }
            now = at;
        };
        assert_eq!(sizes, vec![10, 10, 5]);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 25, "every torrent announced once");
        // Nothing more until the first batch is due again.
        assert_eq!(next, t0 + ANNOUNCE_INTERVAL);
        let (sent, _, _) = drain(&mut lsd, next);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].len(), 10);
    }

    #[test]
    fn reports_peers_of_our_torrents_only() {
        let now = Instant::now();
        let mut lsd = lsd();
        lsd.add_torrent(hash(1));
        lsd.add_torrent(hash(2));
        drain(&mut lsd, now);
        let d = datagram(5000, &[hash(9), hash(2), hash(1), hash(2)], Some("other"));
        assert_eq!(
            lsd.handle_datagram(now, neighbour(), &d),
            Received::Accepted { peers: 2 }
        );
        let addr: SocketAddr = "192.168.1.7:5000".parse().unwrap();
        let (_, events, _) = drain(&mut lsd, now);
        assert_eq!(
            events,
            vec![
                Event::Peer {
                    info_hash: hash(2),
                    addr
                },
                Event::Peer {
                    info_hash: hash(1),
                    addr
                },
            ]
        );
        assert!(lsd.remove_torrent(&hash(1)));
        assert!(!lsd.remove_torrent(&hash(1)));
        assert_eq!(
            lsd.handle_datagram(now, neighbour(), &d),
            Received::Accepted { peers: 1 }
        );
    }

    #[test]
    fn ipv6_source_keeps_its_scope() {
        let now = Instant::now();
        let mut lsd =
            Lsd::new(Config::new(PORT, 1).with_destination(SocketAddr::V6(crate::IPV6_GROUP)));
        lsd.add_torrent(hash(1));
        let source: SocketAddr = "[fe80::1%3]:6771".parse().unwrap();
        lsd.handle_datagram(now, source, &datagram(7000, &[hash(1)], None));
        let mut buf = Vec::new();
        assert_eq!(
            lsd.poll_output(now, &mut buf),
            Output::Event(Event::Peer {
                info_hash: hash(1),
                addr: "[fe80::1%3]:7000".parse().unwrap()
            })
        );
        let Output::Transmit(_) = lsd.poll_output(now, &mut buf) else {
            panic!("expected an announce")
        };
        assert_eq!(
            Announce::decode(&buf).unwrap().host,
            Some("[ff15::efc0:988f]:6771")
        );
    }

    #[test]
    fn own_announces_are_ignored() {
        let now = Instant::now();
        let mut lsd = lsd();
        lsd.add_torrent(hash(1));
        let mut buf = Vec::new();
        let Output::Transmit(t) = lsd.poll_output(now, &mut buf) else {
            panic!("expected an announce")
        };
        assert_eq!(
            lsd.handle_datagram(now, "127.0.0.1:6771".parse().unwrap(), &buf[..t.len]),
            Received::Own
        );
        assert_eq!(lsd.stats().own, 1);
        assert_eq!(
            lsd.poll_output(now, &mut buf),
            Output::Timeout(now + ANNOUNCE_INTERVAL)
        );
    }

    #[test]
    fn sources_are_rate_limited_each_on_its_own() {
        let t0 = Instant::now();
        let mut lsd = lsd();
        lsd.add_torrent(hash(1));
        let d = datagram(5000, &[hash(1)], None);
        for _ in 0..20 {
            assert_eq!(
                lsd.handle_datagram(t0, neighbour(), &d),
                Received::Accepted { peers: 1 }
            );
        }
        assert_eq!(
            lsd.handle_datagram(t0, neighbour(), &d),
            Received::RateLimited
        );
        // Garbage costs tokens too.
        let other: SocketAddr = "192.168.1.8:1".parse().unwrap();
        for _ in 0..20 {
            assert!(matches!(
                lsd.handle_datagram(t0, other, b"junk"),
                Received::Malformed(_)
            ));
        }
        assert_eq!(lsd.handle_datagram(t0, other, &d), Received::RateLimited);
        // One token back after 2 s, and only one.
        let t1 = t0 + Duration::from_millis(2500);
        assert_eq!(
            lsd.handle_datagram(t1, neighbour(), &d),
            Received::Accepted { peers: 1 }
        );
        assert_eq!(
            lsd.handle_datagram(t1, neighbour(), &d),
            Received::RateLimited
        );
        // The half token earned is kept: 1.5 s later another one is ready.
        let t2 = t1 + Duration::from_millis(1500);
        assert_eq!(
            lsd.handle_datagram(t2, neighbour(), &d),
            Received::Accepted { peers: 1 }
        );
        assert_eq!(lsd.stats().rate_limited, 3);
    }

    #[test]
    fn source_table_is_bounded() {
        let now = Instant::now();
        let mut cfg = Config::new(PORT, 1);
        cfg.max_sources = 4;
        cfg.source_burst = 1;
        let mut lsd = Lsd::new(cfg);
        for i in 0..100u8 {
            let src = SocketAddr::from(([10, 0, 0, i], 1));
            lsd.handle_datagram(now + Duration::from_millis(u64::from(i)), src, b"x");
        }
        assert_eq!(lsd.sources.len(), 4);
    }

    #[test]
    fn event_queue_is_bounded() {
        let now = Instant::now();
        let mut cfg = Config::new(PORT, 1);
        cfg.source_refill = Duration::ZERO;
        let mut lsd = Lsd::new(cfg);
        let hashes: Vec<_> = (0..MAX_INFO_HASHES as u8).map(hash).collect();
        for h in &hashes {
            lsd.add_torrent(*h);
        }
        let d = datagram(1, &hashes, None);
        for _ in 0..100 {
            lsd.handle_datagram(now, neighbour(), &d);
        }
        assert_eq!(lsd.events.len(), MAX_QUEUED_EVENTS);
        assert_eq!(
            lsd.stats().events_dropped,
            (100 * MAX_INFO_HASHES - MAX_QUEUED_EVENTS) as u64
        );
    }

    #[test]
    fn unconnectable_sources_are_refused() {
        let now = Instant::now();
        let mut lsd = lsd();
        lsd.add_torrent(hash(1));
        let d = datagram(5000, &[hash(1)], None);
        for source in [
            "0.0.0.0:6771",
            "239.192.152.143:6771",
            "255.255.255.255:6771",
            "[::]:6771",
            "[ff15::efc0:988f]:6771",
        ] {
            let source: SocketAddr = source.parse().unwrap();
            assert_eq!(lsd.handle_datagram(now, source, &d), Received::BadSource);
        }
        assert_eq!(lsd.stats().bad_source, 5);
        assert_eq!(drain(&mut lsd, now).1, vec![]);
    }

    #[test]
    fn port_zero_never_announces() {
        let mut lsd = Lsd::new(Config::new(0, 1));
        lsd.add_torrent(hash(1));
        assert_eq!(drain(&mut lsd, Instant::now()).0, Vec::<Vec<_>>::new());
    }

    #[test]
    fn accepts_is_a_cheap_prefilter() {
        assert!(Lsd::accepts(b"bt-search * HTTP/1.1\r\n"));
        assert!(!Lsd::accepts(b"d1:ad2:id20:"));
        assert!(!Lsd::accepts(b"BT-SEAR"));
    }
}
