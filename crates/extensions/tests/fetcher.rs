//! The metadata fetcher end to end against fake peers in memory: each peer has a
//! registry and answers through the real codecs, honestly or not.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use webtorrent_extensions::{
    ExtHandshake, FetchError, FetchEvent, FetcherConfig, Incoming, METADATA_PIECE_SIZE,
    MetadataFetcher, MetadataMessage, MetadataServer, PeerRefused, Registry, ServerConfig,
};
use webtorrent_types::{InfoHashV1, InfoHashV2, InfoHashes};
use webtorrent_wire::Message;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Behaviour {
    Honest,
    /// Serves metadata with one byte flipped in every piece.
    Liar,
    /// Rejects every request.
    Rejecting,
    /// Never answers.
    Silent,
    /// Answers with a `total_size` other than the one it announced.
    WrongTotalSize,
}

struct FakePeer {
    behaviour: Behaviour,
    registry: Registry,
    server: MetadataServer,
    announced_size: u64,
}

fn frame(message: Message<'_>) -> (u8, Vec<u8>) {
    match message {
        Message::Extended { id, payload } => (id, payload.into_owned()),
        other => panic!("not an extended message: {other:?}"),
    }
}

impl FakePeer {
    fn new(behaviour: Behaviour, info: &[u8]) -> Self {
        let served: Vec<u8> = if behaviour == Behaviour::Liar {
            let mut bad = info.to_vec();
            for piece in bad.chunks_mut(METADATA_PIECE_SIZE) {
                piece[0] ^= 0xff;
            }
            bad
        } else {
            info.to_vec()
        };
        let config = ServerConfig::default();
        Self {
            behaviour,
            registry: Registry::with_builtins(),
            server: MetadataServer::new(Arc::from(served), config),
            announced_size: info.len() as u64,
        }
    }

    /// Its extension handshake, as bytes on the wire.
    fn handshake(&mut self) -> (u8, Vec<u8>) {
        let mut hs = ExtHandshake::ours();
        hs.metadata_size = Some(self.announced_size);
        frame(self.registry.handshake(hs))
    }

    /// Receives a frame from the downloader; returns its answer frame, if any.
    fn receive(&mut self, now: Instant, id: u8, payload: &[u8]) -> Option<(u8, Vec<u8>)> {
        let incoming = self.registry.handle(id, payload).expect("valid frame");
        let Incoming::Metadata(message) = incoming else {
            return None;
        };
        let MetadataMessage::Request { piece } = message else {
            panic!("the downloader only requests");
        };
        let answer = match self.behaviour {
            Behaviour::Silent => return None,
            Behaviour::Rejecting => MetadataMessage::Reject { piece },
            Behaviour::WrongTotalSize => {
                let MetadataMessage::Data { data, .. } = self.server.handle(now, &message)? else {
                    return None;
                };
                let bytes = data.to_vec();
                let wrong = MetadataMessage::Data {
                    piece,
                    total_size: Some(self.announced_size + 1),
                    data: &bytes,
                };
                return self.registry.ut_metadata(&wrong).map(frame);
            }
            Behaviour::Honest | Behaviour::Liar => self.server.handle(now, &message)?,
        };
        self.registry.ut_metadata(&answer).map(frame)
    }
}

/// A downloader connected to some fake peers.
struct Swarm {
    registries: BTreeMap<usize, Registry>,
    peers: BTreeMap<usize, FakePeer>,
    fetcher: MetadataFetcher<usize>,
    now: Instant,
    requests_per_peer: BTreeMap<usize, usize>,
}

impl Swarm {
    fn new(hashes: InfoHashes, config: FetcherConfig) -> Self {
        Self {
            registries: BTreeMap::new(),
            peers: BTreeMap::new(),
            fetcher: MetadataFetcher::new(hashes, config),
            now: Instant::now(),
            requests_per_peer: BTreeMap::new(),
        }
    }

    /// Connects a peer: handshakes both ways; returns what the fetcher said.
    fn connect(&mut self, key: usize, mut peer: FakePeer) -> Result<(), PeerRefused> {
        let mut ours = Registry::with_builtins();
        let (id, payload) = peer.handshake();
        let Ok(Incoming::Handshake(theirs)) = ours.handle(id, &payload) else {
            panic!("a handshake");
        };
        let (id, payload) = frame(ours.handshake(ExtHandshake::ours()));
        assert!(peer.receive(self.now, id, &payload).is_none());
        self.registries.insert(key, ours);
        self.peers.insert(key, peer);
        self.fetcher.add_peer(key, &theirs)
    }

    /// Sends every request the fetcher has, then delivers the answers, in rounds until
    /// the fetcher has nothing to send; returns the errors the fetcher reported.
    fn pump(&mut self) -> Vec<FetchError> {
        let mut errors = Vec::new();
        for _ in 0..100 {
            let now = self.now;
            let requests: Vec<_> = std::iter::from_fn(|| self.fetcher.poll_request(now)).collect();
            if requests.is_empty() {
                return errors;
            }
            let mut answers = Vec::new();
            for request in requests {
                *self.requests_per_peer.entry(request.peer).or_default() += 1;
                let registry = &self.registries[&request.peer];
                let (id, payload) = frame(registry.ut_metadata(&request.message()).unwrap());
                let peer = self.peers.get_mut(&request.peer).unwrap();
                if let Some(answer) = peer.receive(now, id, &payload) {
                    answers.push((request.peer, answer));
                }
            }
            for (key, (id, payload)) in answers {
                let registry = self.registries.get_mut(&key).unwrap();
                let Ok(Incoming::Metadata(answer)) = registry.handle(id, &payload) else {
                    panic!("a metadata answer");
                };
                if let Err(e) = self.fetcher.handle_message(now, &key, &answer) {
                    errors.push(e);
                }
            }
        }
        panic!("the fetcher keeps asking");
    }

    fn events(&mut self) -> Vec<FetchEvent<usize>> {
        std::iter::from_fn(|| self.fetcher.poll_event()).collect()
    }
}

/// A plausible info dictionary of about `len` bytes.
fn info_dict(len: usize) -> Vec<u8> {
    let pieces = (len.saturating_sub(80) / 20).max(1) * 20;
    let mut info = b"d6:lengthi123456789e4:name8:file.bin12:piece lengthi262144e6:pieces".to_vec();
    info.extend_from_slice(format!("{pieces}:").as_bytes());
    info.extend((0..pieces).map(|i| (i * 7 % 251) as u8));
    info.push(b'e');
    info
}

fn v1(info: &[u8]) -> InfoHashes {
    InfoHashes::from_v1(InfoHashV1(webtorrent_hash::sha1(info)))
}

#[test]
fn spreads_pieces_over_honest_peers() {
    let info = info_dict(5 * METADATA_PIECE_SIZE + 1234);
    let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
    for key in 0..3 {
        swarm
            .connect(key, FakePeer::new(Behaviour::Honest, &info))
            .unwrap();
    }
    assert!(swarm.pump().is_empty());
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
    assert!(swarm.fetcher.is_complete());
    assert_eq!(swarm.requests_per_peer.len(), 3, "every peer was asked");
    assert_eq!(swarm.requests_per_peer.values().sum::<usize>(), 6);
    assert_eq!(swarm.fetcher.poll_request(swarm.now), None);
    assert_eq!(swarm.fetcher.poll_timeout(), None);
}

#[test]
fn hybrid_and_v2_hashes_are_both_checked() {
    let info = info_dict(3000);
    let v1 = InfoHashV1(webtorrent_hash::sha1(&info));
    let v2 = InfoHashV2(webtorrent_hash::sha256(&info));
    for hashes in [InfoHashes::hybrid(v1, v2), InfoHashes::from_v2(v2)] {
        let mut swarm = Swarm::new(hashes, FetcherConfig::default());
        swarm
            .connect(0, FakePeer::new(Behaviour::Honest, &info))
            .unwrap();
        swarm.pump();
        assert_eq!(swarm.events(), vec![FetchEvent::Complete(info.clone())]);
    }
    // A hybrid torrent whose v2 hash does not match fails even though v1 does.
    let wrong = InfoHashes::hybrid(v1, InfoHashV2([9; 32]));
    let mut swarm = Swarm::new(wrong, FetcherConfig::default());
    swarm
        .connect(0, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    swarm.pump();
    assert_eq!(
        swarm.events(),
        vec![
            FetchEvent::PeerBanned(0),
            FetchEvent::HashMismatch {
                contributors: vec![0]
            }
        ]
    );
}

#[test]
fn lone_liar_is_banned_then_honest_peer_completes() {
    let info = info_dict(2 * METADATA_PIECE_SIZE + 10);
    let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
    swarm
        .connect(0, FakePeer::new(Behaviour::Liar, &info))
        .unwrap();
    swarm.pump();
    assert_eq!(
        swarm.events(),
        vec![
            FetchEvent::PeerBanned(0),
            FetchEvent::HashMismatch {
                contributors: vec![0]
            }
        ]
    );
    assert!(!swarm.fetcher.is_complete());
    // The liar cannot come back with a new handshake.
    let mut hs = ExtHandshake::default();
    hs.m.insert("ut_metadata".into(), 2);
    hs.metadata_size = Some(info.len() as u64);
    assert_eq!(swarm.fetcher.add_peer(0, &hs), Err(PeerRefused::Banned));

    swarm
        .connect(1, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    swarm.pump();
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn liar_among_honest_peers_is_found_by_single_source_attempts() {
    let info = info_dict(4 * METADATA_PIECE_SIZE);
    let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
    swarm
        .connect(0, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    swarm
        .connect(1, FakePeer::new(Behaviour::Liar, &info))
        .unwrap();
    swarm
        .connect(2, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    let mut events = Vec::new();
    for _ in 0..10 {
        swarm.pump();
        events.extend(swarm.events());
        if swarm.fetcher.is_complete() {
            break;
        }
    }
    let Some(FetchEvent::HashMismatch { contributors }) = events.first() else {
        panic!("the first attempt mixes the liar in: {events:?}");
    };
    assert!(contributors.contains(&1) && contributors.len() > 1);
    assert!(matches!(events.last(), Some(FetchEvent::Complete(got)) if *got == info));
    // No honest peer was banned.
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, FetchEvent::PeerBanned(p) if *p != 1))
    );
}

#[test]
fn rejecting_peer_backs_off_and_others_serve() {
    let info = info_dict(3 * METADATA_PIECE_SIZE);
    let config = FetcherConfig::default();
    let backoff = config.reject_backoff;
    let mut swarm = Swarm::new(v1(&info), config);
    swarm
        .connect(0, FakePeer::new(Behaviour::Rejecting, &info))
        .unwrap();
    assert!(swarm.pump().is_empty());
    assert!(swarm.events().is_empty());
    assert_eq!(
        swarm.requests_per_peer[&0], 3,
        "every piece asked once, then back-off"
    );
    assert_eq!(swarm.fetcher.poll_timeout(), Some(swarm.now + backoff));
    swarm.now += backoff - Duration::from_millis(1);
    swarm.pump();
    assert_eq!(swarm.requests_per_peer[&0], 3);

    // After the back-off it is asked again.
    swarm.now += Duration::from_millis(1);
    swarm.pump();
    assert_eq!(swarm.requests_per_peer[&0], 6);

    swarm
        .connect(1, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    swarm.pump();
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn silent_peer_times_out_and_pieces_move() {
    let info = info_dict(2 * METADATA_PIECE_SIZE);
    let config = FetcherConfig::default();
    let timeout = config.request_timeout;
    let mut swarm = Swarm::new(v1(&info), config);
    swarm
        .connect(0, FakePeer::new(Behaviour::Silent, &info))
        .unwrap();
    swarm.pump();
    assert_eq!(swarm.requests_per_peer[&0], 2);
    assert_eq!(swarm.fetcher.poll_timeout(), Some(swarm.now + timeout));
    swarm
        .connect(1, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    // Nothing free to ask for until the silent peer's requests expire.
    swarm.pump();
    assert!(!swarm.requests_per_peer.contains_key(&1));
    swarm.now += timeout;
    swarm.pump();
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn silent_peer_is_given_up_after_repeated_timeouts() {
    let info = info_dict(100);
    let config = FetcherConfig::default();
    let (timeout, max) = (config.request_timeout, config.max_failures);
    let mut swarm = Swarm::new(v1(&info), config);
    swarm
        .connect(0, FakePeer::new(Behaviour::Silent, &info))
        .unwrap();
    for _ in 0..10 {
        swarm.pump();
        swarm.now += timeout;
    }
    assert_eq!(swarm.requests_per_peer[&0], max as usize);
    assert_eq!(swarm.fetcher.poll_timeout(), None);
}

#[test]
fn oversized_and_unsupported_peers_are_refused() {
    let info = info_dict(1000);
    let mut config = FetcherConfig::default();
    config.max_metadata_size = 64 * 1024;
    let mut fetcher = MetadataFetcher::new(v1(&info), config);
    let mut hs = ExtHandshake::default();
    hs.metadata_size = Some(1000);
    assert_eq!(fetcher.add_peer(1, &hs), Err(PeerRefused::NoUtMetadata));
    hs.m.insert("ut_metadata".into(), 0);
    assert_eq!(fetcher.add_peer(1, &hs), Err(PeerRefused::NoUtMetadata));
    hs.m.insert("ut_metadata".into(), 5);
    hs.metadata_size = None;
    assert_eq!(fetcher.add_peer(1, &hs), Err(PeerRefused::NoMetadataSize));
    hs.metadata_size = Some(0);
    assert_eq!(fetcher.add_peer(1, &hs), Err(PeerRefused::NoMetadataSize));
    hs.metadata_size = Some(64 * 1024 + 1);
    assert_eq!(
        fetcher.add_peer(1, &hs),
        Err(PeerRefused::TooLarge {
            size: 64 * 1024 + 1,
            max: 64 * 1024
        })
    );
    hs.metadata_size = Some(u64::MAX);
    assert!(matches!(
        fetcher.add_peer(1, &hs),
        Err(PeerRefused::TooLarge { .. })
    ));
    assert_eq!(fetcher.peer_count(), 0);
    assert_eq!(fetcher.poll_request(Instant::now()), None);
}

#[test]
fn majority_size_wins_and_bad_answers_are_ignored() {
    let info = info_dict(3 * METADATA_PIECE_SIZE);
    let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
    // A peer announcing another size is left out while others agree on the real one.
    let mut odd = FakePeer::new(Behaviour::Honest, &info);
    odd.announced_size = 7;
    swarm.connect(0, odd).unwrap();
    swarm
        .connect(1, FakePeer::new(Behaviour::WrongTotalSize, &info))
        .unwrap();
    swarm
        .connect(2, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    let errors = swarm.pump();
    // Peer 1 had pieces 0 and 2; its first answer gets it dropped, so its second
    // answer is for a piece no longer asked of it.
    assert_eq!(
        errors,
        vec![
            FetchError::WrongTotalSize {
                got: Some(info.len() as u64 + 1),
                expected: info.len() as u64
            },
            FetchError::Unrequested(2)
        ]
    );
    assert_eq!(swarm.requests_per_peer[&1], 2, "not asked again");
    assert!(!swarm.requests_per_peer.contains_key(&0));
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn unsolicited_and_unknown_messages_change_nothing() {
    let info = info_dict(2 * METADATA_PIECE_SIZE);
    let mut fetcher = MetadataFetcher::new(v1(&info), FetcherConfig::default());
    let now = Instant::now();
    let data = MetadataMessage::Data {
        piece: 0,
        total_size: Some(info.len() as u64),
        data: &info[..METADATA_PIECE_SIZE],
    };
    assert_eq!(
        fetcher.handle_message(now, &9, &data),
        Err(FetchError::UnknownPeer)
    );
    let mut hs = ExtHandshake::default();
    hs.m.insert("ut_metadata".into(), 1);
    hs.metadata_size = Some(info.len() as u64);
    fetcher.add_peer(1, &hs).unwrap();
    fetcher.add_peer(2, &hs).unwrap();
    // Nothing asked yet.
    assert_eq!(
        fetcher.handle_message(now, &1, &data),
        Err(FetchError::Unrequested(0))
    );
    let first = fetcher.poll_request(now).unwrap();
    let other = if first.peer == 1 { 2 } else { 1 };
    // Answers from the wrong peer, for pieces out of range, or requests.
    assert_eq!(
        fetcher.handle_message(now, &other, &data),
        Err(FetchError::Unrequested(0))
    );
    let far = MetadataMessage::Data {
        piece: u32::MAX,
        total_size: Some(info.len() as u64),
        data: b"",
    };
    assert_eq!(
        fetcher.handle_message(now, &first.peer, &far),
        Err(FetchError::Unrequested(u32::MAX))
    );
    assert_eq!(
        fetcher.handle_message(now, &first.peer, &MetadataMessage::Request { piece: 0 }),
        Err(FetchError::NotAnAnswer)
    );
    // A short piece is refused and the piece is asked again elsewhere.
    let short = MetadataMessage::Data {
        piece: 0,
        total_size: Some(info.len() as u64),
        data: &info[..10],
    };
    assert_eq!(
        fetcher.handle_message(now, &first.peer, &short),
        Err(FetchError::WrongPieceLength {
            piece: 0,
            got: 10,
            expected: METADATA_PIECE_SIZE
        })
    );
    let again: Vec<_> = std::iter::from_fn(|| fetcher.poll_request(now)).collect();
    assert!(again.iter().all(|r| r.peer == other));
    assert_eq!(again.len(), 2);
    assert_eq!(fetcher.poll_event(), None);
}

#[test]
fn removed_peer_frees_its_pieces() {
    let info = info_dict(2 * METADATA_PIECE_SIZE);
    let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
    swarm
        .connect(0, FakePeer::new(Behaviour::Silent, &info))
        .unwrap();
    swarm.pump();
    swarm.fetcher.remove_peer(&0);
    swarm
        .connect(1, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    swarm.pump();
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn server_rate_limit_makes_fetcher_retry_later() {
    let info = info_dict(4 * METADATA_PIECE_SIZE);
    let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
    let mut peer = FakePeer::new(Behaviour::Honest, &info);
    let mut config = ServerConfig::default();
    config.burst = 2;
    config.per_second = 1;
    peer.server = MetadataServer::new(Arc::from(info.clone()), config);
    swarm.connect(0, peer).unwrap();
    swarm.pump();
    assert!(swarm.events().is_empty());
    swarm.now += Duration::from_secs(60);
    swarm.pump();
    swarm.now += Duration::from_secs(60);
    swarm.pump();
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn attempt_of_a_size_nobody_serves_any_more_gives_way() {
    let info = info_dict(2 * METADATA_PIECE_SIZE);
    let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
    // Two silent peers outvote the honest one on the size.
    for key in [0, 1] {
        let mut odd = FakePeer::new(Behaviour::Silent, &info);
        odd.announced_size = 3 * METADATA_PIECE_SIZE as u64;
        swarm.connect(key, odd).unwrap();
    }
    swarm
        .connect(2, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    swarm.pump();
    assert!(!swarm.requests_per_peer.contains_key(&2));
    // They leave: the honest peer's size is fetched.
    swarm.fetcher.remove_peer(&0);
    swarm.fetcher.remove_peer(&1);
    swarm.pump();
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn peers_that_only_reject_are_given_up() {
    let info = info_dict(2 * METADATA_PIECE_SIZE);
    let config = FetcherConfig::default();
    let (backoff, max) = (config.reject_backoff, config.max_failures);
    let mut swarm = Swarm::new(v1(&info), config);
    // Two rejecting peers outvote the honest one on the size, and stay connected.
    for key in [0, 1] {
        let mut odd = FakePeer::new(Behaviour::Rejecting, &info);
        odd.announced_size = 3 * METADATA_PIECE_SIZE as u64;
        swarm.connect(key, odd).unwrap();
    }
    swarm
        .connect(2, FakePeer::new(Behaviour::Honest, &info))
        .unwrap();
    for _ in 0..=max {
        swarm.pump();
        swarm.now += backoff;
    }
    assert_eq!(swarm.events(), vec![FetchEvent::Complete(info)]);
}

#[test]
fn abandoned_single_source_attempt_leaves_nothing_outstanding() {
    let info = info_dict(2 * METADATA_PIECE_SIZE);
    let config = FetcherConfig::default();
    let backoff = config.reject_backoff;
    let mut fetcher = MetadataFetcher::new(v1(&info), config);
    let mut hs = ExtHandshake::default();
    hs.m.insert("ut_metadata".into(), 1);
    hs.metadata_size = Some(info.len() as u64);
    fetcher.add_peer('a', &hs).unwrap();
    fetcher.add_peer('b', &hs).unwrap();
    let now = Instant::now();
    let size = Some(info.len() as u64);
    // 'a' sends a bad piece 0, 'b' a good piece 1: a mismatch with two contributors.
    let mut bad = info[..METADATA_PIECE_SIZE].to_vec();
    bad[0] ^= 1;
    let requests: Vec<_> = std::iter::from_fn(|| fetcher.poll_request(now)).collect();
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.peer, r.piece))
            .collect::<Vec<_>>(),
        [('a', 0), ('b', 1)]
    );
    let piece0 = MetadataMessage::Data {
        piece: 0,
        total_size: size,
        data: &bad,
    };
    let piece1 = MetadataMessage::Data {
        piece: 1,
        total_size: size,
        data: &info[METADATA_PIECE_SIZE..],
    };
    fetcher.handle_message(now, &'a', &piece0).unwrap();
    fetcher.handle_message(now, &'b', &piece1).unwrap();
    assert_eq!(
        fetcher.poll_event(),
        Some(FetchEvent::HashMismatch {
            contributors: vec!['a', 'b']
        })
    );
    // Single source now: 'a' is asked for both pieces, rejects one, and the attempt is
    // dropped with its other request.
    let requests: Vec<_> = std::iter::from_fn(|| fetcher.poll_request(now)).collect();
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.peer, r.piece))
            .collect::<Vec<_>>(),
        [('a', 0), ('a', 1)]
    );
    fetcher
        .handle_message(now, &'a', &MetadataMessage::Reject { piece: 0 })
        .unwrap();
    assert_eq!(
        fetcher.handle_message(now, &'a', &piece1),
        Err(FetchError::Unrequested(1))
    );
    // With 'b' gone, 'a' is the only source after its back-off: it must be free to ask.
    fetcher.remove_peer(&'b');
    let later = now + backoff;
    let requests: Vec<_> = std::iter::from_fn(|| fetcher.poll_request(later)).collect();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.peer == 'a'));
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn behaviour() -> impl Strategy<Value = Behaviour> {
        prop_oneof![
            Just(Behaviour::Honest),
            Just(Behaviour::Liar),
            Just(Behaviour::Rejecting),
            Just(Behaviour::Silent),
            Just(Behaviour::WrongTotalSize),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// With at least one honest peer among any mix of bad ones (some announcing a
        /// wrong size), the fetcher ends with the right bytes, never with others, and
        /// never bans an honest peer.
        #[test]
        fn any_mix_with_one_honest_peer_completes(
            others in prop::collection::vec((behaviour(), any::<bool>()), 0..6),
            honest_at in any::<prop::sample::Index>(),
            pieces in 1usize..6,
        ) {
            let info = info_dict(pieces * METADATA_PIECE_SIZE - 100);
            let mut swarm = Swarm::new(v1(&info), FetcherConfig::default());
            let mut peers = others;
            let at = honest_at.index(peers.len() + 1);
            peers.insert(at, (Behaviour::Honest, false));
            let behaviours: Vec<Behaviour> = peers.iter().map(|(b, _)| *b).collect();
            for (key, &(b, odd_size)) in peers.iter().enumerate() {
                let mut peer = FakePeer::new(b, &info);
                if odd_size {
                    // Announces (and is asked for) a size other than the real one.
                    peer.announced_size += METADATA_PIECE_SIZE as u64;
                }
                swarm.connect(key, peer).unwrap();
            }
            let mut events = Vec::new();
            for _ in 0..60 {
                swarm.pump();
                events.extend(swarm.events());
                if swarm.fetcher.is_complete() {
                    break;
                }
                swarm.now += Duration::from_secs(31);
            }
            let completes: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    FetchEvent::Complete(bytes) => Some(bytes),
                    _ => None,
                })
                .collect();
            prop_assert_eq!(completes, vec![&info], "events: {:?}", events);
            for e in &events {
                if let FetchEvent::PeerBanned(p) = e {
                    prop_assert_eq!(behaviours[*p], Behaviour::Liar);
                }
            }
        }
    }
}
