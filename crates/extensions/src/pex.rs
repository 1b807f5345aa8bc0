//! `ut_pex` (BEP 11): peer exchange messages and the per-connection state that sends
//! and receives them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use webtorrent_bencode::{DecodeOptions, OwnedValue};

use crate::error::PexMessageError;

/// Top-level keys are byte strings; nothing nests.
const DECODE: DecodeOptions = DecodeOptions::new().max_depth(4).max_items(Some(256));

/// libtorrent's pace, which other clients enforce: one message a minute per connection.
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);

/// BEP 11's limit on `added` (and on `dropped`) entries per message.
pub const MAX_PEX_PEERS: usize = 50;

/// The per-peer flags byte of `added.f` / `added6.f`.
///
/// ```
/// use webtorrent_extensions::PexFlags;
///
/// let flags = PexFlags::SEED.with(PexFlags::UTP);
/// assert!(flags.contains(PexFlags::SEED) && !flags.contains(PexFlags::ENCRYPTION));
/// assert_eq!(flags.0, 0x06);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// No flag.
    pub const NONE: Self = Self(0);
    /// 0x01: the peer prefers encryption.
    pub const ENCRYPTION: Self = Self(0x01);
    /// 0x02: the peer is a seed (or upload-only).
    pub const SEED: Self = Self(0x02);
    /// 0x04: the peer supports uTP.
    pub const UTP: Self = Self(0x04);
    /// 0x08: the peer supports `ut_holepunch`.
    pub const HOLEPUNCH: Self = Self(0x08);
    /// 0x10: the sender connected to the peer (so the peer is reachable).
    pub const OUTGOING: Self = Self(0x10);

    /// Whether every bit of `other` is set.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// These flags and `other`'s.
    #[must_use]
    pub const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

/// A peer in a PEX message: its address and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PexPeer {
    /// The address to connect to.
    pub addr: SocketAddr,
    /// What the sender knows about it.
    pub flags: PexFlags,
}

impl PexPeer {
    /// A peer with these flags.
    #[must_use]
    pub const fn new(addr: SocketAddr, flags: PexFlags) -> Self {
        Self { addr, flags }
    }
}

/// One `ut_pex` message: peers the sender connected to and dropped since its previous
/// message. IPv4 and IPv6 peers share the lists; the codec splits them into `added` /
/// `added6` and `dropped` / `dropped6`.
///
/// ```
/// use webtorrent_extensions::{PexFlags, PexMessage, PexPeer};
///
/// let msg = PexMessage::new(
///     vec![PexPeer::new("10.0.0.1:6881".parse()?, PexFlags::SEED)],
///     vec!["[2001:db8::1]:51413".parse()?],
/// );
/// let bytes = msg.to_vec();
/// assert_eq!(PexMessage::decode(&bytes)?, msg);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PexMessage {
    /// `added` and `added6`, with their flags (`added.f`, `added6.f`).
    pub added: Vec<PexPeer>,
    /// `dropped` and `dropped6`.
    pub dropped: Vec<SocketAddr>,
}

impl PexMessage {
    /// A message with these lists.
    #[must_use]
    pub const fn new(added: Vec<PexPeer>, dropped: Vec<SocketAddr>) -> Self {
        Self { added, dropped }
    }

    /// Whether both lists are empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }

    /// Decodes a payload (after the extended message id).
    ///
    /// Keys other than the six of BEP 11, and keys whose values are not byte strings,
    /// are ignored. A flags list shorter than its peer list leaves the remaining peers
    /// without flags; extra flag bytes are ignored.
    ///
    /// # Errors
    /// [`PexMessageError`] when the payload is not a bencoded dictionary or a peer list
    /// is not a whole number of entries.
    pub fn decode(payload: &[u8]) -> Result<Self, PexMessageError> {
        let value = DECODE.decode(payload)?;
        let dict = value.as_dict().ok_or(PexMessageError::NotADictionary)?;
        let bytes = |key: &[u8]| {
            dict.get(key)
                .and_then(webtorrent_bencode::Value::as_bytes)
                .unwrap_or_default()
        };
        let added4 = compact(bytes(b"added"), "added", 6)?;
        let added6 = compact(bytes(b"added6"), "added6", 18)?;
        let dropped4 = compact(bytes(b"dropped"), "dropped", 6)?;
        let dropped6 = compact(bytes(b"dropped6"), "dropped6", 18)?;
        let mut added: Vec<PexPeer> = with_flags(added4, bytes(b"added.f"));
        added.extend(with_flags(added6, bytes(b"added6.f")));
        let mut dropped = dropped4;
        dropped.extend(dropped6);
        Ok(Self { added, dropped })
    }

    /// Appends the payload (without the extended message id) to `out`. Empty lists are
    /// still written for IPv4, as libtorrent does; IPv6 keys only when they have peers.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut dict = BTreeMap::new();
        let (mut a4, mut f4, mut a6, mut f6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for peer in &self.added {
            match peer.addr {
                SocketAddr::V4(a) => {
                    push_v4(&mut a4, a);
                    f4.push(peer.flags.0);
                }
                SocketAddr::V6(a) => {
                    push_v6(&mut a6, a);
                    f6.push(peer.flags.0);
                }
            }
        }
        let (mut d4, mut d6) = (Vec::new(), Vec::new());
        for addr in &self.dropped {
            match addr {
                SocketAddr::V4(a) => push_v4(&mut d4, *a),
                SocketAddr::V6(a) => push_v6(&mut d6, *a),
            }
        }
        dict.insert(b"added".to_vec(), OwnedValue::Bytes(a4));
        dict.insert(b"added.f".to_vec(), OwnedValue::Bytes(f4));
        dict.insert(b"dropped".to_vec(), OwnedValue::Bytes(d4));
        if !a6.is_empty() {
            dict.insert(b"added6".to_vec(), OwnedValue::Bytes(a6));
            dict.insert(b"added6.f".to_vec(), OwnedValue::Bytes(f6));
        }
        if !d6.is_empty() {
            dict.insert(b"dropped6".to_vec(), OwnedValue::Bytes(d6));
        }
        OwnedValue::Dict(dict).encode_into(out);
    }

    /// The payload as a new buffer.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Pairs addresses with their flag bytes; missing flags are zero.
fn with_flags(addrs: Vec<SocketAddr>, flags: &[u8]) -> Vec<PexPeer> {
    addrs
        .into_iter()
        .enumerate()
        .map(|(i, addr)| PexPeer {
            addr,
            flags: PexFlags(flags.get(i).copied().unwrap_or(0)),
        })
        .collect()
}

fn push_v4(out: &mut Vec<u8>, a: SocketAddrV4) {
    out.extend_from_slice(&a.ip().octets());
    out.extend_from_slice(&a.port().to_be_bytes());
}

fn push_v6(out: &mut Vec<u8>, a: SocketAddrV6) {
    out.extend_from_slice(&a.ip().octets());
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// Splits a compact peer list: 4 + 2 bytes (IPv4) or 16 + 2 bytes (IPv6) per peer.
fn compact(
    bytes: &[u8],
    key: &'static str,
    entry: usize,
) -> Result<Vec<SocketAddr>, PexMessageError> {
    if !bytes.len().is_multiple_of(entry) {
        return Err(PexMessageError::BadCompactLength {
            key,
            len: bytes.len(),
            entry,
        });
    }
    Ok(bytes
        .chunks_exact(entry)
        .filter_map(|c| {
            // `entry` is 6 or 18 and `c` is exactly `entry` bytes: `port` has two.
            let (ip, port) = c.split_at(entry - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip = if let Ok(v4) = <[u8; 4]>::try_from(ip) {
                IpAddr::V4(Ipv4Addr::from(v4))
            } else {
                IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?))
            };
            Some(SocketAddr::new(ip, port))
        })
        .collect())
}

/// Whether a peer address from PEX is worth dialing: not port 0, not an unspecified,
/// multicast or broadcast address.
#[must_use]
pub fn is_valid_peer_addr(addr: &SocketAddr) -> bool {
    if addr.port() == 0 {
        return false;
    }
    match addr.ip() {
        IpAddr::V4(ip) => !(ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast()),
        IpAddr::V6(ip) => !(ip.is_unspecified() || ip.is_multicast()),
    }
}

/// Whether an address is on a local network: loopback, private (RFC 1918), link-local,
/// or IPv6 unique local (`fc00::/7`). IPv4-mapped IPv6 addresses are judged as IPv4.
#[must_use]
pub fn is_local_addr(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_local_addr(&IpAddr::V4(v4)),
            None => {
                let first = ip.segments()[0];
                ip.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
            }
        },
    }
}

/// Settings of a [`PexState`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PexConfig {
    /// Least time between two messages we send. Default [`PEX_INTERVAL`].
    pub interval: Duration,
    /// Most `added` (and most `dropped`) peers per message we send. Default
    /// [`MAX_PEX_PEERS`].
    pub max_per_message: usize,
    /// Most added peers accepted from one received message; the rest are ignored.
    /// Default [`MAX_PEX_PEERS`].
    pub accept_per_message: usize,
    /// Most added peers accepted from the peer per minute. Default 100.
    pub accept_per_minute: usize,
}

impl Default for PexConfig {
    fn default() -> Self {
        Self {
            interval: PEX_INTERVAL,
            max_per_message: MAX_PEX_PEERS,
            accept_per_message: MAX_PEX_PEERS,
            accept_per_minute: 100,
        }
    }
}

/// What a received PEX message yields after flood protection and address checks.
///
/// `added` may name our own address: libtorrent lists the receiving peer among the
/// connected ones. The driver, which knows our listen addresses, filters it out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PexUpdate {
    /// New candidates for the connection manager.
    pub added: Vec<PexPeer>,
    /// Peers the sender disconnected from (valid addresses only, capped like `added`).
    pub dropped: Vec<SocketAddr>,
    /// Added entries ignored: invalid addresses, duplicates, or over a cap.
    pub ignored: usize,
}

/// PEX state of one connection, both ways.
///
/// Sending: [`poll_message`](Self::poll_message) compares our current peer set with
/// what this peer has been told and yields a diff at most once per
/// [`PexConfig::interval`], with at most [`PexConfig::max_per_message`] added and
/// dropped peers; whatever does not fit goes in later messages.
///
/// Receiving: [`handle_message`](Self::handle_message) drops invalid addresses and
/// caps the peers accepted per message and per minute, so that a peer cannot flood the
/// connection manager with made-up addresses. A peer that is not itself on a local
/// network cannot name local addresses ([`is_local_addr`]) either, so PEX cannot be used
/// to make us dial into our own network (libtorrent has the same rule).
///
/// ```
/// use std::time::{Duration, Instant};
/// use webtorrent_extensions::{PexConfig, PexFlags, PexPeer, PexState};
///
/// let remote = "10.0.0.9:6881".parse()?;
/// let mut pex = PexState::new(remote, PexConfig::default());
/// let peers = [PexPeer::new("10.0.0.1:6881".parse()?, PexFlags::NONE), PexPeer::new(remote, PexFlags::NONE)];
/// let now = Instant::now();
/// let first = pex.poll_message(now, peers).expect("a first message");
/// assert_eq!(first.added.len(), 1); // never the connection's own peer
/// assert_eq!(pex.poll_message(now, []), None); // not before a minute has passed
/// let later = pex.poll_message(now + Duration::from_secs(60), []).expect("a diff");
/// assert_eq!(later.dropped, vec!["10.0.0.1:6881".parse()?]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PexState {
    remote: SocketAddr,
    config: PexConfig,
    /// The peers this connection's peer has been told about.
    advertised: BTreeMap<SocketAddr, PexFlags>,
    last_sent: Option<Instant>,
    window_start: Option<Instant>,
    accepted_in_window: usize,
}

impl PexState {
    /// The state of the connection to `remote` (which is never advertised to itself).
    #[must_use]
    pub const fn new(remote: SocketAddr, config: PexConfig) -> Self {
        Self {
            remote,
            config,
            advertised: BTreeMap::new(),
            last_sent: None,
            window_start: None,
            accepted_in_window: 0,
        }
    }

    /// When a message may next be sent: `None` if now.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.last_sent.map(|t| t + self.config.interval)
    }

    /// The message to send now, given our current set of connected peers, or `None`
    /// when it is too early or nothing changed. The peers in the message count as told
    /// once it is returned, so poll only once the peer enabled `ut_pex`
    /// ([`crate::Registry::peer_id`]) and send what this returns
    /// ([`crate::Registry::ut_pex`]). Calling it on every tick is cheap when it is not
    /// due; [`next_due`](Self::next_due) tells when it is.
    pub fn poll_message(
        &mut self,
        now: Instant,
        current: impl IntoIterator<Item = PexPeer>,
    ) -> Option<PexMessage> {
        if self.next_due().is_some_and(|due| now < due) {
            return None;
        }
        let current: BTreeMap<SocketAddr, PexFlags> = current
            .into_iter()
            .filter(|p| p.addr != self.remote && is_valid_peer_addr(&p.addr))
            .map(|p| (p.addr, p.flags))
            .collect();
        let added: Vec<PexPeer> = current
            .iter()
            .filter(|(addr, _)| !self.advertised.contains_key(addr))
            .take(self.config.max_per_message)
            .map(|(&addr, &flags)| PexPeer { addr, flags })
            .collect();
        let dropped: Vec<SocketAddr> = self
            .advertised
            .keys()
            .filter(|addr| !current.contains_key(addr))
            .take(self.config.max_per_message)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return None;
        }
        for peer in &added {
            self.advertised.insert(peer.addr, peer.flags);
        }
        for addr in &dropped {
            self.advertised.remove(addr);
        }
        self.last_sent = Some(now);
        Some(PexMessage { added, dropped })
    }

    /// Filters a message received from the peer.
    pub fn handle_message(&mut self, now: Instant, message: &PexMessage) -> PexUpdate {
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= Duration::from_secs(60))
        {
            self.window_start = Some(now);
            self.accepted_in_window = 0;
        }
        let mut update = PexUpdate::default();
        let mut seen = std::collections::BTreeSet::new();
        let remote_is_local = is_local_addr(&self.remote.ip());
        let acceptable = |addr: &SocketAddr| {
            is_valid_peer_addr(addr) && (remote_is_local || !is_local_addr(&addr.ip()))
        };
        for peer in &message.added {
            let room = update.added.len() < self.config.accept_per_message
                && self.accepted_in_window < self.config.accept_per_minute;
            if room && acceptable(&peer.addr) && seen.insert(peer.addr) {
                update.added.push(*peer);
                self.accepted_in_window += 1;
            } else {
                update.ignored += 1;
            }
        }
        update.dropped = message
            .dropped
            .iter()
            .filter(|a| acceptable(a))
            .take(self.config.accept_per_message)
            .copied()
            .collect();
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn decodes_bep11_layout() {
        let mut payload = b"d5:added12:".to_vec();
        payload.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80]);
        payload.extend_from_slice(b"7:added.f1:\x12");
        payload.extend_from_slice(b"7:dropped6:");
        payload.extend_from_slice(&[1, 2, 3, 4, 0, 1]);
        payload.push(b'e');
        let msg = PexMessage::decode(&payload).unwrap();
        assert_eq!(
            msg.added,
            vec![
                PexPeer::new(v4("10.0.0.1:6881"), PexFlags(0x12)),
                PexPeer::new(v4("192.168.1.2:80"), PexFlags::NONE),
            ]
        );
        assert_eq!(msg.dropped, vec![v4("1.2.3.4:1")]);
    }

    #[test]
    fn bad_lengths_and_types() {
        assert_eq!(
            PexMessage::decode(b"d5:added5:abcdee"),
            Err(PexMessageError::BadCompactLength {
                key: "added",
                len: 5,
                entry: 6
            })
        );
        assert_eq!(
            PexMessage::decode(b"le"),
            Err(PexMessageError::NotADictionary)
        );
        assert_eq!(
            PexMessage::decode(b"d5:addedi1e3:fooi2ee"),
            Ok(PexMessage::default())
        );
    }

    #[test]
    fn sender_caps_and_paces() {
        let remote = v4("10.9.9.9:1");
        let mut pex = PexState::new(remote, PexConfig::default());
        let peers: Vec<PexPeer> = (1..=120u8)
            .map(|i| PexPeer::new(v4(&format!("10.0.0.{i}:6881")), PexFlags::NONE))
            .collect();
        let t0 = Instant::now();
        let m1 = pex.poll_message(t0, peers.clone()).unwrap();
        assert_eq!(m1.added.len(), 50);
        assert_eq!(pex.next_due(), Some(t0 + PEX_INTERVAL));
        assert_eq!(
            pex.poll_message(t0 + Duration::from_secs(59), peers.clone()),
            None
        );
        let t1 = t0 + PEX_INTERVAL;
        let m2 = pex.poll_message(t1, peers.clone()).unwrap();
        assert_eq!(m2.added.len(), 50);
        assert!(m2.added.iter().all(|p| !m1.added.contains(p)));
        let t2 = t1 + PEX_INTERVAL;
        let m3 = pex.poll_message(t2, peers.clone()).unwrap();
        assert_eq!(m3.added.len(), 20);
        // Every peer told: nothing to send.
        assert_eq!(pex.poll_message(t2 + PEX_INTERVAL, peers.clone()), None);
        // Every peer gone: dropped in batches of 50.
        let t3 = t2 + 2 * PEX_INTERVAL;
        let m4 = pex.poll_message(t3, []).unwrap();
        assert_eq!((m4.added.len(), m4.dropped.len()), (0, 50));
    }

    #[test]
    fn sender_skips_invalid_and_remote() {
        let remote = v4("10.9.9.9:1");
        let mut pex = PexState::new(remote, PexConfig::default());
        let peers = [
            PexPeer::new(remote, PexFlags::NONE),
            PexPeer::new(v4("10.0.0.1:0"), PexFlags::NONE),
            PexPeer::new(v4("0.0.0.0:1"), PexFlags::NONE),
        ];
        assert_eq!(pex.poll_message(Instant::now(), peers), None);
    }

    #[test]
    fn receiver_flood_protection() {
        let mut pex = PexState::new(v4("10.9.9.9:1"), PexConfig::default());
        let mut added: Vec<PexPeer> = (0..200u16)
            .map(|i| {
                PexPeer::new(
                    v4(&format!("10.1.{}.{}:7000", i / 256, i % 256)),
                    PexFlags::NONE,
                )
            })
            .collect();
        added.insert(0, PexPeer::new(v4("224.0.0.1:7000"), PexFlags::NONE));
        added.insert(0, PexPeer::new(v4("255.255.255.255:7000"), PexFlags::NONE));
        added.insert(0, PexPeer::new(v4("10.0.0.1:0"), PexFlags::NONE));
        added.insert(
            0,
            PexPeer::new("[::]:7000".parse().unwrap(), PexFlags::NONE),
        );
        added.insert(
            0,
            PexPeer::new("[ff02::1]:7000".parse().unwrap(), PexFlags::NONE),
        );
        let msg = PexMessage::new(added, vec![v4("0.0.0.0:5"), v4("10.2.0.1:5")]);
        let t0 = Instant::now();
        let u1 = pex.handle_message(t0, &msg);
        assert_eq!(u1.added.len(), 50);
        assert!(u1.added.iter().all(|p| is_valid_peer_addr(&p.addr)));
        assert_eq!(u1.ignored, 205 - 50);
        assert_eq!(u1.dropped, vec![v4("10.2.0.1:5")]);
        let u2 = pex.handle_message(t0 + Duration::from_secs(1), &msg);
        assert_eq!(u2.added.len(), 50);
        // 100 a minute.
        let u3 = pex.handle_message(t0 + Duration::from_secs(2), &msg);
        assert_eq!(u3.added.len(), 0);
        let u4 = pex.handle_message(t0 + Duration::from_secs(61), &msg);
        assert_eq!(u4.added.len(), 50);
    }

    #[test]
    fn remote_peers_cannot_name_local_addresses() {
        let local = [
            "127.0.0.1:80",
            "192.168.1.1:80",
            "10.0.0.1:80",
            "172.16.5.4:80",
            "169.254.1.1:80",
            "[::1]:80",
            "[fe80::1]:80",
            "[fd00::1]:80",
            "[::ffff:192.168.0.1]:80",
        ];
        let mut added: Vec<PexPeer> = local
            .iter()
            .map(|a| PexPeer::new(a.parse().unwrap(), PexFlags::NONE))
            .collect();
        let public = [v4("8.8.8.8:6881"), "[2001:db8::7]:6881".parse().unwrap()];
        added.extend(public.iter().map(|&a| PexPeer::new(a, PexFlags::NONE)));
        let msg = PexMessage::new(added, vec![v4("192.168.1.1:80"), v4("8.8.4.4:1")]);
        let now = Instant::now();

        let mut from_remote = PexState::new(v4("203.0.113.5:6881"), PexConfig::default());
        let u = from_remote.handle_message(now, &msg);
        assert_eq!(u.added.iter().map(|p| p.addr).collect::<Vec<_>>(), public);
        assert_eq!(u.ignored, local.len());
        assert_eq!(u.dropped, vec![v4("8.8.4.4:1")]);

        // A peer on our own network may name both.
        let mut from_lan = PexState::new(v4("192.168.1.7:6881"), PexConfig::default());
        let u = from_lan.handle_message(now, &msg);
        assert_eq!(u.added.len(), local.len() + public.len());
    }

    #[test]
    fn duplicates_count_once() {
        let mut pex = PexState::new(v4("10.9.9.9:1"), PexConfig::default());
        let p = PexPeer::new(v4("10.0.0.1:1"), PexFlags::NONE);
        let u = pex.handle_message(Instant::now(), &PexMessage::new(vec![p, p, p], vec![]));
        assert_eq!((u.added, u.ignored), (vec![p], 2));
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<Ipv4Addr>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(ip.into(), p)),
            (any::<Ipv6Addr>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(ip.into(), p)),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(
            added in prop::collection::vec((arb_addr(), any::<u8>()), 0..60),
            dropped in prop::collection::vec(arb_addr(), 0..60),
        ) {
            let added: Vec<PexPeer> =
                added.into_iter().map(|(a, f)| PexPeer::new(a, PexFlags(f))).collect();
            let msg = PexMessage::new(added, dropped);
            let back = PexMessage::decode(&msg.to_vec()).unwrap();
            // The codec groups IPv4 before IPv6; order within each family is kept.
            let by_family = |m: &PexMessage| {
                let mut a = m.added.clone();
                a.sort_by_key(|p| p.addr.is_ipv6());
                let mut d = m.dropped.clone();
                d.sort_by_key(SocketAddr::is_ipv6);
                (a, d)
            };
            prop_assert_eq!(by_family(&back), by_family(&msg));
        }

        #[test]
        fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = PexMessage::decode(&bytes);
        }

        #[test]
        fn receiver_only_yields_valid_capped(
            added in prop::collection::vec((arb_addr(), any::<u8>()), 0..200),
        ) {
            let mut pex = PexState::new("10.9.9.9:1".parse().unwrap(), PexConfig::default());
            let msg = PexMessage::new(
                added.into_iter().map(|(a, f)| PexPeer::new(a, PexFlags(f))).collect(),
                vec![],
            );
            let u = pex.handle_message(Instant::now(), &msg);
            prop_assert!(u.added.len() <= MAX_PEX_PEERS);
            prop_assert!(u.added.iter().all(|p| is_valid_peer_addr(&p.addr)));
            prop_assert_eq!(u.added.len() + u.ignored, msg.added.len());
        }
    }
}
