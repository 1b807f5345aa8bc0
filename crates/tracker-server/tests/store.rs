//! The swarm store: counts, peer picking, limits and expiry.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use webtorrent_tracker::{Event, ScrapeStats};
use webtorrent_tracker_server::{
    PeerAddr, PeerAnnounce, PeerKind, StoreConfig, StoreError, SwarmStore,
};
use webtorrent_types::{InfoHashV1, PeerId};

const HASH: InfoHashV1 = InfoHashV1([7; 20]);

fn peer(n: u8, left: u64) -> PeerAnnounce {
    PeerAnnounce {
        peer_id: PeerId([n; 20]),
        addr: PeerAddr::Socket(SocketAddr::from(([10, 0, 0, n], 6881))),
        left,
        event: Event::None,
        numwant: None,
    }
}

fn small(max_swarms: usize, max_peers_per_swarm: usize, max_peers: usize) -> StoreConfig {
    let mut c = StoreConfig::default();
    c.max_swarms = max_swarms;
    c.max_peers_per_swarm = max_peers_per_swarm;
    c.max_peers = max_peers;
    c
}

#[test]
fn counts_follow_announces_and_stops() {
    let mut s = SwarmStore::new(StoreConfig::default(), 1);
    let now = Instant::now();
    s.announce(now, HASH, &peer(1, 0), PeerKind::Socket)
        .unwrap();
    s.announce(now, HASH, &peer(2, 10), PeerKind::Socket)
        .unwrap();
    let r = s
        .announce(now, HASH, &peer(3, 10), PeerKind::Socket)
        .unwrap();
    assert_eq!((r.seeders, r.leechers), (1, 2));
    assert!(r.stored);
    // Peer 2 completes: it becomes a seeder and the download is counted.
    let mut done = peer(2, 0);
    done.event = Event::Completed;
    s.announce(now, HASH, &done, PeerKind::Socket).unwrap();
    assert_eq!(
        s.scrape(&HASH),
        ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 1
        }
    );
    let mut stop = peer(1, 0);
    stop.event = Event::Stopped;
    let r = s.announce(now, HASH, &stop, PeerKind::Socket).unwrap();
    assert_eq!((r.seeders, r.leechers), (1, 1));
    assert!(r.peers.is_empty() && !r.stored);
    assert_eq!(s.peer_count(), 2);
}

#[test]
fn last_stop_removes_the_swarm() {
    let mut s = SwarmStore::new(StoreConfig::default(), 1);
    let now = Instant::now();
    s.announce(now, HASH, &peer(1, 5), PeerKind::Socket)
        .unwrap();
    let mut stop = peer(1, 5);
    stop.event = Event::Stopped;
    s.announce(now, HASH, &stop, PeerKind::Socket).unwrap();
    assert_eq!((s.swarm_count(), s.peer_count()), (0, 0));
    assert_eq!(s.scrape(&HASH), ScrapeStats::default());
}

#[test]
fn never_hands_out_self_or_seeders_to_seeders() {
    let mut s = SwarmStore::new(StoreConfig::default(), 9);
    let now = Instant::now();
    for n in 1..=5 {
        s.announce(now, HASH, &peer(n, 0), PeerKind::Socket)
            .unwrap();
    }
    s.announce(now, HASH, &peer(6, 1), PeerKind::Socket)
        .unwrap();
    let r = s
        .announce(now, HASH, &peer(1, 0), PeerKind::Socket)
        .unwrap();
    assert_eq!(r.peers.len(), 1);
    assert_eq!(r.peers[0].peer_id, PeerId([6; 20]));
    let r = s
        .announce(now, HASH, &peer(6, 1), PeerKind::Socket)
        .unwrap();
    assert_eq!(r.peers.len(), 5);
    assert!(r.peers.iter().all(|p| p.peer_id != PeerId([6; 20])));
}

#[test]
fn numwant_is_capped() {
    let mut config = StoreConfig::default();
    config.max_numwant = 3;
    let mut s = SwarmStore::new(config, 3);
    let now = Instant::now();
    for n in 1..=10 {
        s.announce(now, HASH, &peer(n, 1), PeerKind::Socket)
            .unwrap();
    }
    let mut a = peer(11, 1);
    a.numwant = Some(u32::MAX);
    assert_eq!(
        s.announce(now, HASH, &a, PeerKind::Socket)
            .unwrap()
            .peers
            .len(),
        3
    );
    a.numwant = Some(2);
    assert_eq!(
        s.announce(now, HASH, &a, PeerKind::Socket)
            .unwrap()
            .peers
            .len(),
        2
    );
    a.numwant = Some(0);
    assert!(
        s.announce(now, HASH, &a, PeerKind::Socket)
            .unwrap()
            .peers
            .is_empty()
    );
}

#[test]
fn kinds_are_filtered() {
    let mut s = SwarmStore::new(StoreConfig::default(), 5);
    let now = Instant::now();
    s.announce(now, HASH, &peer(1, 1), PeerKind::Socket)
        .unwrap();
    let mut v6 = peer(2, 1);
    v6.addr = PeerAddr::Socket("[2001:db8::2]:6881".parse().unwrap());
    s.announce(now, HASH, &v6, PeerKind::Socket).unwrap();
    let mut rtc = peer(3, 1);
    rtc.addr = PeerAddr::WebRtc(7);
    let r = s.announce(now, HASH, &rtc, PeerKind::WebRtc).unwrap();
    // Counted together, but a browser gets no socket peers.
    assert_eq!(r.leechers, 3);
    assert!(r.peers.is_empty());
    let mut only = |kind| {
        s.announce(now, HASH, &peer(4, 1), kind)
            .unwrap()
            .peers
            .into_iter()
            .map(|p| p.peer_id.0[0])
            .collect::<Vec<_>>()
    };
    assert_eq!(only(PeerKind::V4), vec![1]);
    assert_eq!(only(PeerKind::V6), vec![2]);
    assert_eq!(only(PeerKind::WebRtc), vec![3]);
    let mut both = only(PeerKind::Socket);
    both.sort_unstable();
    assert_eq!(both, vec![1, 2]);
}

#[test]
fn swarm_and_peer_limits_hold() {
    let mut s = SwarmStore::new(small(2, 3, 4), 1);
    let now = Instant::now();
    let h = |n| InfoHashV1([n; 20]);
    for n in 1..=3 {
        assert!(
            s.announce(now, h(1), &peer(n, 1), PeerKind::Socket)
                .unwrap()
                .stored
        );
    }
    // Swarm 1 is full: peer 4 gets peers and counts but is not stored.
    let r = s
        .announce(now, h(1), &peer(4, 1), PeerKind::Socket)
        .unwrap();
    assert!(!r.stored);
    assert_eq!((r.peers.len(), r.leechers), (3, 3));
    assert!(
        s.announce(now, h(2), &peer(1, 1), PeerKind::Socket)
            .unwrap()
            .stored
    );
    // Four peers in all: swarm 2 has room, the store has not.
    assert!(
        !s.announce(now, h(2), &peer(2, 1), PeerKind::Socket)
            .unwrap()
            .stored
    );
    assert_eq!(s.peer_count(), 4);
    assert_eq!(
        s.announce(now, h(3), &peer(1, 1), PeerKind::Socket),
        Err(StoreError::TooManySwarms { limit: 2 })
    );
    assert_eq!(s.swarm_count(), 2);
    // A known peer may still re-announce.
    let r = s
        .announce(now, h(2), &peer(1, 0), PeerKind::Socket)
        .unwrap();
    assert!(r.stored);
    assert_eq!((r.seeders, r.leechers), (1, 0));
}

#[test]
fn expiry_drops_silent_peers_and_empty_swarms() {
    let mut config = StoreConfig::default();
    config.peer_ttl = Duration::from_secs(60);
    let mut s = SwarmStore::new(config, 1);
    let t0 = Instant::now();
    s.announce(t0, HASH, &peer(1, 0), PeerKind::Socket).unwrap();
    s.announce(t0, HASH, &peer(2, 1), PeerKind::Socket).unwrap();
    s.announce(t0, InfoHashV1([1; 20]), &peer(3, 1), PeerKind::Socket)
        .unwrap();
    let t1 = t0 + Duration::from_secs(50);
    s.announce(t1, HASH, &peer(2, 1), PeerKind::Socket).unwrap();
    assert_eq!(s.expire(t0 + Duration::from_secs(61)), 2);
    assert_eq!((s.swarm_count(), s.peer_count()), (1, 1));
    assert_eq!(s.scrape(&HASH).complete, 0);
    assert_eq!(s.scrape(&HASH).incomplete, 1);
    // The index still works after the rebuild.
    let mut stop = peer(2, 1);
    stop.event = Event::Stopped;
    s.announce(t1, HASH, &stop, PeerKind::Socket).unwrap();
    assert_eq!((s.swarm_count(), s.peer_count()), (0, 0));
}

#[derive(Debug, Clone)]
enum Op {
    Announce {
        hash: u8,
        peer: u8,
        left: u64,
        event: u8,
    },
    Expire {
        secs: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..4, 0u8..12, 0u64..3, 0u8..4).prop_map(|(hash, peer, left, event)| Op::Announce { hash, peer, left, event }),
        1 => (0u64..200).prop_map(|secs| Op::Expire { secs }),
    ]
}

proptest! {
    /// Whatever the sequence of announces, stops and expiries, the counts
    /// match a plain model and the limits hold.
    #[test]
    fn counts_match_a_model(ops in proptest::collection::vec(op(), 0..200)) {
        use std::collections::HashMap;
        let mut config = small(3, 5, 12);
        config.peer_ttl = Duration::from_secs(100);
        let mut s = SwarmStore::new(config, 42);
        let t0 = Instant::now();
        let mut clock = 0u64;
        // (hash, peer) -> (seeder, last seen)
        let mut model: HashMap<(u8, u8), (bool, u64)> = HashMap::new();
        for op in ops {
            clock += 1;
            let now = t0 + Duration::from_secs(clock);
            match op {
                Op::Announce { hash, peer: p, left, event } => {
                    let mut a = peer(p, left);
                    a.event = Event::from_udp_code(u32::from(event)).unwrap();
                    let swarms: std::collections::HashSet<u8> = model.keys().map(|k| k.0).collect();
                    let in_swarm = model.keys().filter(|k| k.0 == hash).count();
                    let known = model.contains_key(&(hash, p));
                    let r = s.announce(now, InfoHashV1([hash; 20]), &a, PeerKind::Socket);
                    if a.event == Event::Stopped {
                        model.remove(&(hash, p));
                        prop_assert!(r.is_ok());
                    } else if !swarms.contains(&hash) && swarms.len() >= 3 {
                        prop_assert!(r.is_err());
                    } else {
                        let r = r.unwrap();
                        let fits = known || (in_swarm < 5 && model.len() < 12);
                        prop_assert_eq!(r.stored, fits);
                        if fits {
                            model.insert((hash, p), (left == 0, clock));
                        }
                        prop_assert!(r.peers.len() <= 50);
                        prop_assert!(r.peers.iter().all(|x| x.peer_id != a.peer_id));
                    }
                }
                Op::Expire { secs } => {
                    clock += secs;
                    let now = t0 + Duration::from_secs(clock);
                    s.expire(now);
                    model.retain(|_, (_, seen)| clock - *seen <= 100);
                }
            }
            prop_assert_eq!(s.peer_count(), model.len());
            for hash in 0u8..4 {
                let st = s.scrape(&InfoHashV1([hash; 20]));
                let seeders = model.iter().filter(|(k, v)| k.0 == hash && v.0).count();
                let all = model.keys().filter(|k| k.0 == hash).count();
                prop_assert_eq!(st.complete as usize, seeders);
                prop_assert_eq!(st.incomplete as usize, all - seeders);
            }
        }
    }
}

#[test]
fn tcp_peers_are_keyed_by_address_browsers_by_peer_id() {
    let mut s = SwarmStore::new(StoreConfig::default(), 1);
    let now = Instant::now();
    // Two clients sending the same (all-zero) peer id are two peers.
    let mut a = peer(0, 5);
    a.addr = PeerAddr::Socket(SocketAddr::from(([10, 0, 0, 1], 1000)));
    let mut b = a;
    b.addr = PeerAddr::Socket(SocketAddr::from(([10, 0, 0, 2], 1000)));
    s.announce(now, HASH, &a, PeerKind::Socket).unwrap();
    let r = s.announce(now, HASH, &b, PeerKind::Socket).unwrap();
    assert_eq!(r.leechers, 2);
    assert_eq!(r.peers.len(), 1);
    assert_eq!(r.peers[0].addr, a.addr);
    // Another peer id from a's address replaces a: nobody else can.
    let mut c = a;
    c.peer_id = PeerId([9; 20]);
    let r = s.announce(now, HASH, &c, PeerKind::Socket).unwrap();
    assert_eq!(r.leechers, 2);
    // Browsers with one peer id are one peer, whatever the connection.
    let mut w = peer(7, 5);
    w.addr = PeerAddr::WebRtc(1);
    s.announce(now, HASH, &w, PeerKind::WebRtc).unwrap();
    w.addr = PeerAddr::WebRtc(2);
    let r = s.announce(now, HASH, &w, PeerKind::WebRtc).unwrap();
    assert_eq!(r.leechers, 3);
    assert!(!s.remove(&HASH, &w.peer_id, PeerAddr::WebRtc(1)));
    assert!(s.remove(&HASH, &w.peer_id, PeerAddr::WebRtc(2)));
}
