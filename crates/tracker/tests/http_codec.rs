//! HTTP tracker codec: URLs, real-shaped responses, hostile input, round trips.

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use webtorrent_tracker::http::{
    MAX_PEERS, announce_url, encode_announce_response, encode_failure, encode_scrape_response,
    parse_announce_response, parse_scrape_response, scrape_url, scrape_url_for,
};
use webtorrent_tracker::{
    AnnounceRequest, AnnounceResponse, DEFAULT_INTERVAL, Event, Peer, ScrapeResponse, ScrapeStats,
    TrackerError,
};
use webtorrent_types::{InfoHashV1, PeerId};

fn request() -> AnnounceRequest {
    let mut hash = [0u8; 20];
    for (i, b) in hash.iter_mut().enumerate() {
        *b = u8::try_from(i * 13).expect("small");
    }
    AnnounceRequest::new(InfoHashV1(hash), PeerId(*b"-RW0100-a.b~c d/e%f\xff"), 51413)
}

#[test]
fn announce_url_encodes_bytes_and_all_fields() {
    let mut req = request();
    req.uploaded = 1;
    req.downloaded = 2;
    req.left = 3;
    req.event = Event::Completed;
    req.numwant = Some(50);
    req.key = Some(0xdead_beef);
    req.ip = Some("2001:db8::1".parse().expect("ip"));
    req.trackerid = Some(b"t id".to_vec());
    let url = announce_url("http://t.example:8000/announce", &req);
    assert_eq!(
        url,
        "http://t.example:8000/announce?info_hash=%00%0D%1A%274AN%5Bhu%82%8F%9C%A9%B6%C3%D0%DD%EA%F7\
         &peer_id=-RW0100-a.b~c%20d%2Fe%25f%FF&port=51413&uploaded=1&downloaded=2&left=3&compact=1\
         &event=completed&numwant=50&key=DEADBEEF&ip=2001%3Adb8%3A%3A1&trackerid=t%20id"
    );
}

#[test]
fn announce_url_keeps_query_and_fragment() {
    let req = request();
    let with_query = announce_url("https://t.example/ann?passkey=abc", &req);
    assert!(with_query.starts_with("https://t.example/ann?passkey=abc&info_hash="));
    let trailing_amp = announce_url("https://t.example/ann?passkey=abc&", &req);
    assert!(trailing_amp.starts_with("https://t.example/ann?passkey=abc&info_hash="));
    let frag = announce_url("http://t.example/announce#x", &req);
    assert!(frag.starts_with("http://t.example/announce?info_hash="));
    assert!(frag.ends_with("compact=1#x"));
    let mut plain = request();
    plain.compact = false;
    assert!(announce_url("http://t/announce", &plain).ends_with("&compact=0"));
}

#[test]
fn scrape_urls_per_bep_48() {
    let cases = [
        (
            "http://example.com/announce",
            Some("http://example.com/scrape"),
        ),
        (
            "http://example.com/x/announce",
            Some("http://example.com/x/scrape"),
        ),
        (
            "http://example.com/announce.php",
            Some("http://example.com/scrape.php"),
        ),
        ("http://example.com/a", None),
        (
            "http://example.com/announce?x2%0644",
            Some("http://example.com/scrape?x2%0644"),
        ),
        (
            "http://example.com/announce?x=2/4",
            Some("http://example.com/scrape?x=2/4"),
        ),
        ("http://example.com/x%064announce", None),
        ("http://announce.example.com", None),
        ("http://announce.example.com/", None),
        ("http://example.com/announce/", None),
    ];
    for (announce, scrape) in cases {
        assert_eq!(scrape_url(announce).as_deref(), scrape, "{announce}");
    }
    let url = scrape_url_for(
        "http://t/announce?k=v",
        &[InfoHashV1([0xaa; 20]), InfoHashV1([b'a'; 20])],
    )
    .expect("scrapable");
    assert_eq!(
        url,
        format!(
            "http://t/scrape?k=v&info_hash={}&info_hash={}",
            "%AA".repeat(20),
            "a".repeat(20)
        )
    );
}

#[test]
fn compact_response_with_everything() {
    let mut body =
        b"d8:completei10e10:incompletei3e8:intervali1800e12:min intervali900e5:peers12:".to_vec();
    body.extend_from_slice(&[1, 2, 3, 4, 0x1a, 0xe1, 5, 6, 7, 8, 0, 80]);
    body.extend_from_slice(b"6:peers618:");
    body.extend_from_slice(&[
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1f, 0x90,
    ]);
    body.extend_from_slice(b"10:tracker id3:xyz15:warning message5:helloe");
    let r = parse_announce_response(&body).expect("valid");
    assert_eq!(r.interval, Duration::from_secs(1800));
    assert_eq!(r.min_interval, Some(Duration::from_secs(900)));
    assert_eq!((r.complete, r.incomplete), (Some(10), Some(3)));
    assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));
    assert_eq!(r.warning.as_deref(), Some("hello"));
    let addrs: Vec<SocketAddr> = r.peers.iter().map(|p| p.addr).collect();
    let want: Vec<SocketAddr> = ["1.2.3.4:6881", "5.6.7.8:80", "[2001:db8::1]:8080"]
        .iter()
        .map(|s| s.parse().expect("addr"))
        .collect();
    assert_eq!(addrs, want);
}

#[test]
fn dict_model_response_with_peer_ids_and_dns_names() {
    let body = b"d8:intervali60e5:peersl\
        d2:ip9:127.0.0.17:peer id20:-qB4520-abcdefghijkl4:porti6881ee\
        d2:ip3:::14:porti1ee\
        d2:ip16:peer.example.org4:porti2ee\
        ee";
    let r = parse_announce_response(body).expect("valid");
    assert_eq!(r.peers.len(), 2, "the DNS name is skipped");
    assert_eq!(r.peers[0].addr, "127.0.0.1:6881".parse().expect("addr"));
    assert_eq!(r.peers[0].peer_id, Some(PeerId(*b"-qB4520-abcdefghijkl")));
    assert_eq!(r.peers[1].addr, "[::1]:1".parse().expect("addr"));
    assert_eq!(r.peers[1].peer_id, None);
}

#[test]
fn missing_interval_defaults() {
    let r = parse_announce_response(b"d5:peers0:e").expect("valid");
    assert_eq!(r.interval, DEFAULT_INTERVAL);
    assert!(r.peers.is_empty());
}

#[test]
fn failure_reason_wins() {
    let err =
        parse_announce_response(b"d14:failure reason12:unregistered8:intervali5ee").unwrap_err();
    assert_eq!(
        err,
        TrackerError::Failure {
            reason: "unregistered".into()
        }
    );
    let err = parse_scrape_response(&encode_failure("no scrape")).unwrap_err();
    assert_eq!(
        err,
        TrackerError::Failure {
            reason: "no scrape".into()
        }
    );
}

#[test]
fn malformed_responses_are_typed_errors() {
    let malformed: &[&[u8]] = &[
        b"d5:peers7:abcdefge",
        b"d6:peers617:aaaaaaaaaaaaaaaaae",
        b"d8:intervali-1ee",
        b"d8:interval3:abce",
        b"d8:intervali4294967296ee",
        b"d5:peersi3ee",
        b"d5:peersli1eee",
        b"d5:peersld4:porti1eeee",
        b"d5:peersld2:ip9:127.0.0.14:porti65536eeee",
        b"d5:peersld2:ip9:127.0.0.14:porti1e7:peer id3:abceee",
        b"d14:failure reasoni1ee",
        b"d8:completei-5ee",
        b"li1ee",
    ];
    for body in malformed {
        let err = parse_announce_response(body).unwrap_err();
        assert!(
            matches!(err, TrackerError::Malformed { .. }),
            "{err:?} for {:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert!(matches!(
        parse_announce_response(b"d8:interval"),
        Err(TrackerError::Bencode(_))
    ));
    assert!(matches!(
        parse_announce_response(b""),
        Err(TrackerError::Bencode(_))
    ));
    assert!(matches!(
        parse_announce_response(b"de garbage"),
        Err(TrackerError::Bencode(_))
    ));
}

#[test]
fn huge_peer_lists_are_refused() {
    let n = MAX_PEERS + 1;
    let mut body = format!("d5:peers{}:", n * 6).into_bytes();
    body.extend(std::iter::repeat_n(7u8, n * 6));
    body.push(b'e');
    assert_eq!(
        parse_announce_response(&body).unwrap_err(),
        TrackerError::TooManyEntries {
            count: n,
            limit: MAX_PEERS
        }
    );
    // IPv4 and IPv6 together count too.
    let half = MAX_PEERS / 2 + 1;
    let mut body = format!("d5:peers{}:", half * 6).into_bytes();
    body.extend(std::iter::repeat_n(7u8, half * 6));
    body.extend(format!("6:peers6{}:", half * 18).into_bytes());
    body.extend(std::iter::repeat_n(7u8, half * 18));
    body.push(b'e');
    assert!(matches!(
        parse_announce_response(&body),
        Err(TrackerError::TooManyEntries { .. })
    ));
}

#[test]
fn scrape_response() {
    let mut body = b"d5:filesd20:".to_vec();
    body.extend_from_slice(&[0xaa; 20]);
    body.extend_from_slice(b"d8:completei5e10:downloadedi50e10:incompletei10eee5:flagsd20:min_request_intervali3600eee");
    let r = parse_scrape_response(&body).expect("valid");
    assert_eq!(
        r.get(&InfoHashV1([0xaa; 20])),
        Some(ScrapeStats {
            complete: 5,
            downloaded: 50,
            incomplete: 10
        })
    );
    assert_eq!(r.get(&InfoHashV1([0xbb; 20])), None);
    assert!(
        parse_scrape_response(b"de")
            .expect("valid")
            .files
            .is_empty()
    );
    assert!(matches!(
        parse_scrape_response(b"d5:filesd3:abcdeee"),
        Err(TrackerError::Malformed { .. })
    ));
    assert!(matches!(
        parse_scrape_response(b"d5:filesli1eee"),
        Err(TrackerError::Malformed { .. })
    ));
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
}

fn arb_response(with_ids: bool) -> impl Strategy<Value = AnnounceResponse> {
    let peer =
        (arb_addr(), proptest::option::of(any::<[u8; 20]>())).prop_map(move |(addr, id)| Peer {
            addr,
            peer_id: if with_ids { id.map(PeerId) } else { None },
        });
    (
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(peer, 0..20),
        proptest::option::of("[ -~]{0,12}"),
    )
        .prop_map(|(i, m, tid, c, inc, peers, warning)| AnnounceResponse {
            interval: Duration::from_secs(u64::from(i)),
            min_interval: m.map(|m| Duration::from_secs(u64::from(m))),
            tracker_id: tid,
            complete: c,
            incomplete: inc,
            peers,
            warning,
        })
}

proptest! {
    #[test]
    fn dict_model_round_trip(resp in arb_response(true)) {
        let body = encode_announce_response(&resp, false);
        prop_assert_eq!(parse_announce_response(&body).expect("own encoding"), resp);
    }

    #[test]
    fn compact_round_trip(resp in arb_response(false)) {
        let body = encode_announce_response(&resp, true);
        let mut parsed = parse_announce_response(&body).expect("own encoding");
        // Compact puts IPv4 first, then IPv6.
        let mut want = resp.clone();
        want.peers.sort_by_key(|p| p.addr.is_ipv6());
        parsed.peers.sort_by_key(|p| p.addr.is_ipv6());
        prop_assert_eq!(parsed, want);
    }

    #[test]
    fn scrape_round_trip(files in proptest::collection::btree_map(any::<[u8; 20]>(), any::<(u32, u32, u32)>(), 0..10)) {
        let resp = ScrapeResponse {
            files: files.into_iter().map(|(h, (c, d, i))| (InfoHashV1(h), ScrapeStats { complete: c, downloaded: d, incomplete: i })).collect(),
        };
        prop_assert_eq!(parse_scrape_response(&encode_scrape_response(&resp)).expect("own encoding"), resp);
    }

    #[test]
    fn percent_encoding_decodes_back(bytes in any::<[u8; 20]>()) {
        let mut req = request();
        req.info_hash = InfoHashV1(bytes);
        let url = announce_url("http://t/announce", &req);
        let q = url.split("info_hash=").nth(1).and_then(|s| s.split('&').next()).expect("param");
        let mut decoded = Vec::new();
        let mut it = q.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hi = it.next().expect("hex");
                let lo = it.next().expect("hex");
                let s = [hi, lo];
                decoded.push(u8::from_str_radix(std::str::from_utf8(&s).expect("ascii"), 16).expect("hex"));
            } else {
                decoded.push(b);
            }
        }
        prop_assert_eq!(decoded, bytes.to_vec());
    }

    #[test]
    fn parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_announce_response(&body);
        let _ = parse_scrape_response(&body);
    }
}
