//! HTTP announce and scrape on the tracker's side, checked through the
//! client crate's URL builders and response parsers.

use std::net::SocketAddr;
use std::time::Instant;

use proptest::prelude::*;
use webtorrent_tracker::http::{
    announce_url, parse_announce_response, parse_scrape_response, scrape_url_for,
};
use webtorrent_tracker::{AnnounceRequest, Event, ScrapeStats, TrackerError};
use webtorrent_tracker_server::http::{
    HttpConfig, HttpHandler, HttpRequestError, MAX_QUERY_LEN, MAX_SCRAPE_HASHES, parse_announce,
    parse_scrape,
};
use webtorrent_tracker_server::{StoreConfig, SwarmStore};
use webtorrent_types::{InfoHashV1, PeerId};

const HASH: InfoHashV1 = InfoHashV1([0xfe; 20]);

fn query(url: &str) -> &str {
    url.split_once('?').unwrap().1
}

fn request(peer: u8, left: u64, port: u16) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(HASH, PeerId([peer; 20]), port);
    r.left = left;
    r
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Tracker {
    handler: HttpHandler,
    store: SwarmStore,
    now: Instant,
}

impl Tracker {
    fn new() -> Self {
        Self {
            handler: HttpHandler::new(HttpConfig::default()),
            store: SwarmStore::new(StoreConfig::default(), 5),
            now: Instant::now(),
        }
    }

    fn announce(&mut self, remote: &str, req: &AnnounceRequest) -> Vec<u8> {
        let url = announce_url("http://t.example/announce", req);
        self.handler
            .announce(&mut self.store, self.now, addr(remote), query(&url))
    }
}

#[test]
fn compact_answers_split_families() {
    let mut t = Tracker::new();
    t.announce("192.0.2.1:40000", &request(1, 0, 6881));
    t.announce("[2001:db8::2]:40000", &request(2, 5, 6882));
    let body = t.announce("[::ffff:192.0.2.3]:40000", &request(3, 5, 6883));
    let r = parse_announce_response(&body).unwrap();
    assert_eq!(r.interval.as_secs(), 1800);
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(2)));
    let mut peers: Vec<_> = r.peers.iter().map(|p| p.addr).collect();
    peers.sort();
    assert_eq!(
        peers,
        vec![addr("192.0.2.1:6881"), addr("[2001:db8::2]:6882")]
    );
    assert!(body.windows(6).any(|w| w == b"peers6"));
}

#[test]
fn dictionary_answers_carry_peer_ids() {
    let mut t = Tracker::new();
    t.announce("192.0.2.1:40000", &request(1, 0, 6881));
    let mut req = request(2, 5, 6882);
    req.compact = false;
    let r = parse_announce_response(&t.announce("192.0.2.2:40000", &req)).unwrap();
    assert_eq!(r.peers.len(), 1);
    assert_eq!(r.peers[0].addr, addr("192.0.2.1:6881"));
    assert_eq!(r.peers[0].peer_id, Some(PeerId([1; 20])));
}

#[test]
fn refusals_are_failure_reasons() {
    let mut t = Tracker::new();
    let now = t.now;
    let remote = addr("192.0.2.1:40000");
    let failure = |body: Vec<u8>| match parse_announce_response(&body) {
        Err(TrackerError::Failure { reason }) => reason,
        other => panic!("{other:?}"),
    };
    let body = t
        .handler
        .announce(&mut t.store, now, remote, "port=1&compact=1");
    assert_eq!(failure(body), "missing info_hash");
    let body = t
        .handler
        .announce(&mut t.store, now, remote, "info_hash=%zz&port=1");
    assert_eq!(failure(body), "invalid info_hash");
    let mut config = StoreConfig::default();
    config.max_swarms = 0;
    t.store = SwarmStore::new(config, 1);
    let body = t.announce("192.0.2.1:40000", &request(1, 0, 6881));
    assert_eq!(failure(body), "tracker is full: 0 torrents");
    assert_eq!(t.store.peer_count(), 0);
}

#[test]
fn scrape_reports_counts() {
    let mut t = Tracker::new();
    t.announce("192.0.2.1:40000", &request(1, 0, 6881));
    let mut done = request(2, 0, 6882);
    done.event = Event::Completed;
    t.announce("192.0.2.2:40000", &done);
    t.announce("192.0.2.3:40000", &request(3, 7, 6883));
    let other = InfoHashV1([1; 20]);
    let url = scrape_url_for("http://t.example/announce", &[HASH, other]).unwrap();
    let r = parse_scrape_response(&t.handler.scrape(&t.store, query(&url))).unwrap();
    assert_eq!(
        r.get(&HASH),
        Some(ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 1
        })
    );
    assert_eq!(r.get(&other), Some(ScrapeStats::default()));
    match parse_scrape_response(&t.handler.scrape(&t.store, "")) {
        Err(TrackerError::Failure { reason }) => assert_eq!(reason, "full scrape is not served"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn query_limits() {
    let long = "a".repeat(MAX_QUERY_LEN + 1);
    assert_eq!(
        parse_announce(&long),
        Err(HttpRequestError::QueryTooLong {
            len: MAX_QUERY_LEN + 1,
            limit: MAX_QUERY_LEN
        })
    );
    let one = format!("info_hash={}&", "%01".repeat(20));
    assert_eq!(
        parse_scrape(&one.repeat(MAX_SCRAPE_HASHES)).unwrap().len(),
        MAX_SCRAPE_HASHES
    );
    assert!(matches!(
        parse_scrape(&one.repeat(MAX_SCRAPE_HASHES + 1)),
        Err(HttpRequestError::TooManyInfoHashes { .. })
    ));
    // A 19-byte info-hash, a truncated escape, a negative port.
    let id = "%41".repeat(20);
    for q in [
        format!("info_hash={}&peer_id={id}&port=1", "%01".repeat(19)),
        format!("info_hash={id}&peer_id={id}%4&port=1"),
        format!("info_hash={id}&peer_id={id}&port=-1"),
        format!("info_hash={id}&peer_id={id}&port=1&event=resumed"),
    ] {
        assert!(
            matches!(parse_announce(&q), Err(HttpRequestError::Invalid { .. })),
            "{q}"
        );
    }
}

#[test]
fn lenient_defaults() {
    let id = "%41".repeat(20);
    let r = parse_announce(&format!(
        "info_hash={id}&peer_id={id}&port=1&numwant=-1&key=not-hex&unknown=1&event=&ip=peer.example"
    ))
    .unwrap();
    assert_eq!(r.left, u64::MAX);
    assert!(r.compact);
    assert_eq!(
        (r.numwant, r.key, r.event, r.ip),
        (None, None, Event::None, None)
    );
    let r = parse_announce(&format!(
        "info_hash={id}&peer_id={id}&port=1&event=paused&numwant=99999999999"
    ))
    .unwrap();
    assert_eq!((r.event, r.numwant), (Event::None, Some(u32::MAX)));
    // Raw bytes that need no escaping pass as they are.
    let r = parse_announce(&format!(
        "info_hash=AAAAAAAAAAAAAAAAAAAA&peer_id={id}&port=1"
    ))
    .unwrap();
    assert_eq!(r.info_hash, InfoHashV1([b'A'; 20]));
}

fn arb_request() -> impl Strategy<Value = AnnounceRequest> {
    (
        (any::<[u8; 20]>(), any::<[u8; 20]>(), any::<u16>()),
        (any::<u64>(), any::<u64>(), any::<u64>(), 0u32..4),
        (
            proptest::option::of(any::<u32>()),
            any::<bool>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<std::net::IpAddr>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..30)),
        ),
    )
        .prop_map(
            |((h, p, port), (up, down, left, ev), (numwant, compact, key, ip, tid))| {
                let mut r = AnnounceRequest::new(InfoHashV1(h), PeerId(p), port);
                r.uploaded = up;
                r.downloaded = down;
                r.left = left;
                r.event = Event::from_udp_code(ev).unwrap();
                r.numwant = numwant;
                r.compact = compact;
                r.key = key;
                r.ip = ip;
                r.trackerid = tid;
                r
            },
        )
}

proptest! {
    /// What the client crate sends, this crate reads back unchanged.
    #[test]
    fn announce_round_trip(req in arb_request()) {
        let url = announce_url("http://t.example/announce", &req);
        prop_assert_eq!(parse_announce(query(&url)).unwrap(), req);
    }

    #[test]
    fn scrape_round_trip(hashes in proptest::collection::vec(any::<[u8; 20]>(), 1..40)) {
        let hashes: Vec<_> = hashes.into_iter().map(InfoHashV1).collect();
        let url = scrape_url_for("http://t.example/announce", &hashes).unwrap();
        prop_assert_eq!(parse_scrape(query(&url)).unwrap(), hashes);
    }

    /// Any query string gets a bencoded answer the client can read: peers
    /// or a failure reason, never a panic.
    #[test]
    fn hostile_queries(q in "[a-z_=&%0-9A-F+.-]{0,300}") {
        let mut t = Tracker::new();
        let body = t.handler.announce(&mut t.store, t.now, addr("192.0.2.1:1"), &q);
        match parse_announce_response(&body) {
            Ok(_) | Err(TrackerError::Failure { .. }) => {}
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        }
        let body = t.handler.scrape(&t.store, &q);
        match parse_scrape_response(&body) {
            Ok(_) | Err(TrackerError::Failure { .. }) => {}
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        }
    }
}
