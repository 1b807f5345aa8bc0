//! BEP 15 on the tracker's side: connection ids and the datagram handler,
//! checked through the client crate's codec.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use webtorrent_tracker::udp::{
    AddressFamily, PROTOCOL_ID, UdpAnnounce, UdpDecodeError, UdpRequest, UdpResponse,
};
use webtorrent_tracker::{Event, ScrapeStats};
use webtorrent_tracker_server::udp::{ConnectionIds, UdpConfig, UdpDropped, UdpHandler};
use webtorrent_tracker_server::{StoreConfig, SwarmStore};
use webtorrent_types::{InfoHashV1, PeerId};

const HASH: InfoHashV1 = InfoHashV1([3; 20]);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn announce(peer: u8, left: u64, port: u16) -> UdpAnnounce {
    UdpAnnounce {
        info_hash: HASH,
        peer_id: PeerId([peer; 20]),
        downloaded: 0,
        left,
        uploaded: 0,
        event: Event::Started,
        ip: std::net::Ipv4Addr::UNSPECIFIED,
        key: 0,
        num_want: -1,
        port,
    }
}

struct Tracker {
    handler: UdpHandler,
    store: SwarmStore,
    now: Instant,
}

impl Tracker {
    fn new() -> Self {
        Self::with_store(StoreConfig::default())
    }

    fn with_store(config: StoreConfig) -> Self {
        let now = Instant::now();
        Self {
            handler: UdpHandler::new(now, [0x5a; 32], UdpConfig::default()),
            store: SwarmStore::new(config, 11),
            now,
        }
    }

    fn send(&mut self, src: SocketAddr, request: &UdpRequest) -> Result<UdpResponse, UdpDropped> {
        let mut packet = Vec::new();
        request.encode(&mut packet);
        let mut out = Vec::new();
        self.handler
            .handle(&mut self.store, self.now, src, &packet, &mut out)?;
        // The client of a mapped address is an IPv4 client.
        let canonical = SocketAddr::new(src.ip().to_canonical(), src.port());
        Ok(UdpResponse::decode(&out, AddressFamily::of(&canonical)).unwrap())
    }

    fn connect(&mut self, src: SocketAddr) -> u64 {
        match self.send(src, &UdpRequest::Connect { transaction_id: 1 }) {
            Ok(UdpResponse::Connect {
                transaction_id: 1,
                connection_id,
            }) => connection_id,
            other => panic!("not a connect response: {other:?}"),
        }
    }

    fn announce(&mut self, src: SocketAddr, a: UdpAnnounce) -> Result<UdpResponse, UdpDropped> {
        let connection_id = self.connect(src);
        self.send(
            src,
            &UdpRequest::Announce {
                connection_id,
                transaction_id: 2,
                announce: a,
            },
        )
    }
}

#[test]
fn ids_last_two_minutes_whenever_issued() {
    let t0 = Instant::now();
    let ids = ConnectionIds::new(t0, [1; 32]);
    let client = addr("192.0.2.7:4000");
    for offset in 0..70 {
        let issued = t0 + Duration::from_secs(offset);
        let id = ids.issue(issued, &client);
        assert!(ids.verify(issued, &client, id));
        assert!(ids.verify(issued + Duration::from_secs(120), &client, id));
        assert!(!ids.verify(issued + Duration::from_secs(151), &client, id));
    }
}

#[test]
fn ids_belong_to_one_address_and_secret() {
    let t0 = Instant::now();
    let ids = ConnectionIds::new(t0, [1; 32]);
    let client = addr("192.0.2.7:4000");
    let id = ids.issue(t0, &client);
    assert!(!ids.verify(t0, &addr("192.0.2.7:4001"), id));
    assert!(!ids.verify(t0, &addr("192.0.2.8:4000"), id));
    assert!(!ids.verify(t0, &client, id ^ 0x100));
    assert!(!ConnectionIds::new(t0, [2; 32]).verify(t0, &client, id));
}

#[test]
fn rotation_keeps_live_ids() {
    let t0 = Instant::now();
    let mut ids = ConnectionIds::new(t0, [1; 32]);
    let client = addr("[2001:db8::1]:4000");
    let at = |s| t0 + Duration::from_secs(s);
    let old = ids.issue(at(100), &client);
    assert!(ids.rotate(at(100), [2; 32]));
    assert!(ids.verify(at(200), &client, old));
    // The next slot hashes under the new secret.
    let new = ids.issue(at(121), &client);
    assert_ne!(new, ids.issue(at(100), &client));
    assert!(ids.verify(at(200), &client, new));
    // Too soon: the first secret's ids are still live.
    assert!(!ids.rotate(at(200), [3; 32]));
    assert!(ids.verify(at(200), &client, old));
    assert!(ids.rotate(at(240), [3; 32]));
    assert!(ids.verify(at(240), &client, new));
    assert!(!ids.verify(at(240), &client, old));
}

#[test]
fn announce_scrape_and_peers_over_ipv4() {
    let mut t = Tracker::new();
    let seeder = addr("192.0.2.1:5000");
    let leecher = addr("192.0.2.2:5001");
    t.announce(seeder, announce(1, 0, 6881)).unwrap();
    match t.announce(leecher, announce(2, 99, 6882)).unwrap() {
        UdpResponse::Announce {
            transaction_id: 2,
            interval: 1800,
            leechers: 1,
            seeders: 1,
            peers,
        } => assert_eq!(peers, vec![addr("192.0.2.1:6881")]),
        other => panic!("{other:?}"),
    }
    let connection_id = t.connect(leecher);
    let r = t.send(
        leecher,
        &UdpRequest::Scrape {
            connection_id,
            transaction_id: 9,
            info_hashes: vec![HASH, InfoHashV1([0; 20])],
        },
    );
    let one = ScrapeStats {
        complete: 1,
        downloaded: 0,
        incomplete: 1,
    };
    assert_eq!(
        r,
        Ok(UdpResponse::Scrape {
            transaction_id: 9,
            stats: vec![one, ScrapeStats::default()]
        })
    );
}

#[test]
fn each_family_gets_its_own_peers() {
    let mut t = Tracker::new();
    t.announce(addr("192.0.2.1:5000"), announce(1, 5, 6881))
        .unwrap();
    t.announce(addr("[2001:db8::1]:5000"), announce(2, 5, 6882))
        .unwrap();
    // A dual-stack socket's IPv4-mapped source is IPv4.
    let mapped = addr("[::ffff:192.0.2.3]:5000");
    let Ok(UdpResponse::Announce {
        peers, leechers, ..
    }) = t.announce(mapped, announce(3, 5, 6883))
    else {
        panic!()
    };
    assert_eq!(leechers, 3);
    assert_eq!(peers, vec![addr("192.0.2.1:6881")]);
    let Ok(UdpResponse::Announce { peers, .. }) =
        t.announce(addr("[2001:db8::4]:5000"), announce(4, 5, 6884))
    else {
        panic!()
    };
    assert_eq!(peers, vec![addr("[2001:db8::1]:6882")]);
}

#[test]
fn numwant_zero_gets_no_peers_and_negative_the_default() {
    let mut t = Tracker::new();
    for n in 1..=3 {
        t.announce(addr(&format!("192.0.2.{n}:5000")), announce(n, 5, 6881))
            .unwrap();
    }
    let count = |t: &mut Tracker, num_want| {
        let mut a = announce(9, 5, 6889);
        a.num_want = num_want;
        match t.announce(addr("192.0.2.9:5000"), a) {
            Ok(UdpResponse::Announce { peers, .. }) => peers.len(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(count(&mut t, 0), 0);
    assert_eq!(count(&mut t, 2), 2);
    assert_eq!(count(&mut t, -1), 3);
    assert_eq!(count(&mut t, i32::MIN), 3);
}

#[test]
fn the_ip_field_is_ignored() {
    let mut t = Tracker::new();
    let mut a = announce(1, 5, 6881);
    a.ip = "198.51.100.1".parse().unwrap();
    t.announce(addr("192.0.2.1:5000"), a).unwrap();
    let Ok(UdpResponse::Announce { peers, .. }) =
        t.announce(addr("192.0.2.2:5000"), announce(2, 5, 6882))
    else {
        panic!()
    };
    assert_eq!(peers, vec![addr("192.0.2.1:6881")]);
}

#[test]
fn wrong_ids_and_garbage_get_no_answer() {
    let mut t = Tracker::new();
    let client = addr("192.0.2.1:5000");
    let id = t.connect(client);
    let request = UdpRequest::Announce {
        connection_id: id,
        transaction_id: 2,
        announce: announce(1, 0, 6881),
    };
    assert_eq!(
        t.send(addr("192.0.2.9:5000"), &request).unwrap_err(),
        UdpDropped::BadConnectionId { connection_id: id }
    );
    t.now += Duration::from_secs(200);
    assert!(matches!(
        t.send(client, &request),
        Err(UdpDropped::BadConnectionId { .. })
    ));
    let mut out = Vec::new();
    let r = t
        .handler
        .handle(&mut t.store, t.now, client, b"hello", &mut out);
    assert_eq!(
        r,
        Err(UdpDropped::Malformed(UdpDecodeError::TooShort { len: 5 }))
    );
    // A connect without the magic number.
    let mut bad = Vec::new();
    UdpRequest::Connect { transaction_id: 1 }.encode(&mut bad);
    bad[0] ^= 1;
    assert!(
        t.handler
            .handle(&mut t.store, t.now, client, &bad, &mut out)
            .is_err()
    );
    assert!(out.is_empty());
    assert_eq!(t.store.peer_count(), 0);
}

#[test]
fn malformed_after_a_valid_id_gets_an_error_packet() {
    let mut t = Tracker::new();
    let client = addr("192.0.2.1:5000");
    let id = t.connect(client);
    let mut packet = Vec::new();
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&1u32.to_be_bytes());
    packet.extend_from_slice(&77u32.to_be_bytes());
    packet.extend_from_slice(&[0; 10]);
    let mut out = Vec::new();
    t.handler
        .handle(&mut t.store, t.now, client, &packet, &mut out)
        .unwrap();
    match UdpResponse::decode(&out, AddressFamily::V4).unwrap() {
        UdpResponse::Error {
            transaction_id: 77,
            message,
        } => assert!(message.contains("too short"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_full_tracker_answers_with_an_error() {
    let mut config = StoreConfig::default();
    config.max_swarms = 1;
    let mut t = Tracker::with_store(config);
    let client = addr("192.0.2.1:5000");
    t.announce(client, announce(1, 0, 6881)).unwrap();
    let mut other = announce(1, 0, 6881);
    other.info_hash = InfoHashV1([4; 20]);
    match t.announce(client, other).unwrap() {
        UdpResponse::Error {
            transaction_id: 2,
            message,
        } => assert_eq!(message, "tracker is full: 1 torrents"),
        r => panic!("{r:?}"),
    }
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

proptest! {
    /// Any datagram gets either a well-formed response or nothing, and
    /// nothing is written when nothing is to be sent.
    #[test]
    fn hostile_datagrams(bytes in proptest::collection::vec(any::<u8>(), 0..200), src in arb_addr()) {
        let t = Tracker::new();
        let mut store = SwarmStore::new(StoreConfig::default(), 1);
        let mut out = Vec::new();
        match t.handler.handle(&mut store, t.now, src, &bytes, &mut out) {
            Ok(()) => {
                let family = if src.ip().to_canonical().is_ipv4() { AddressFamily::V4 } else { AddressFamily::V6 };
                prop_assert!(UdpResponse::decode(&out, family).is_ok());
            }
            Err(_) => prop_assert!(out.is_empty()),
        }
    }

    /// A connect and an announce with any field values: the answer carries
    /// the transaction id, and the peer is counted.
    #[test]
    fn announce_round_trip(
        src in arb_addr(),
        tid in any::<u32>(),
        peer in any::<[u8; 20]>(),
        hash in any::<[u8; 20]>(),
        left in any::<u64>(),
        num_want in any::<i32>(),
        port in any::<u16>(),
        event in 0u32..3,
    ) {
        let mut t = Tracker::new();
        let mut a = announce(0, left, port);
        a.peer_id = PeerId(peer);
        a.info_hash = InfoHashV1(hash);
        a.num_want = num_want;
        a.event = Event::from_udp_code(event).unwrap();
        let connection_id = t.connect(src);
        let r = t.send(src, &UdpRequest::Announce { connection_id, transaction_id: tid, announce: a }).unwrap();
        let UdpResponse::Announce { transaction_id, seeders, leechers, peers, .. } = r else {
            return Err(TestCaseError::fail("not an announce response"));
        };
        prop_assert_eq!(transaction_id, tid);
        prop_assert_eq!((seeders, leechers), if left == 0 { (1, 0) } else { (0, 1) });
        prop_assert!(peers.is_empty());
    }

    /// Ids verify for their own address during their lifetime only.
    #[test]
    fn ids_verify_only_where_issued(
        secret in any::<[u8; 32]>(),
        a in arb_addr(),
        b in arb_addr(),
        issued in 0u64..100_000,
        later in 0u64..300,
    ) {
        let t0 = Instant::now();
        let ids = ConnectionIds::new(t0, secret);
        let at = t0 + Duration::from_secs(issued);
        let id = ids.issue(at, &a);
        let now = at + Duration::from_secs(later);
        if later <= 120 {
            prop_assert!(ids.verify(now, &a, id));
        }
        if later > 150 {
            prop_assert!(!ids.verify(now, &a, id));
        }
        if a != b {
            prop_assert!(!ids.verify(at, &b, id));
        }
    }
}

#[test]
fn protocol_id_is_the_connect_magic() {
    // The handler answers only connects that carry the BEP 15 magic.
    let mut t = Tracker::new();
    let mut packet = PROTOCOL_ID.to_be_bytes().to_vec();
    packet.extend_from_slice(&0u32.to_be_bytes());
    packet.extend_from_slice(&42u32.to_be_bytes());
    let mut out = Vec::new();
    let client = addr("192.0.2.1:5000");
    t.handler
        .handle(&mut t.store, t.now, client, &packet, &mut out)
        .unwrap();
    assert_eq!(&out[..8], &[0, 0, 0, 0, 0, 0, 0, 42]);
}
