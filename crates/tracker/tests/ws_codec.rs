//! The WebSocket tracker frames: bittorrent-tracker's own shapes, hostile frames, round
//! trips, and the reconnection back-off.

use std::time::Duration;

use proptest::prelude::*;
use webtorrent_tracker::ws::{
    self, Backoff, ClientMessage, MAX_FRAME_BYTES, OfferId, ServerMessage, Signal, WsAnnounce,
    WsAnnounceReply, WsAnswer, WsDecodeError, WsOffer,
};
use webtorrent_tracker::{Event, ScrapeResponse, ScrapeStats};
use webtorrent_types::{InfoHashV1, PeerId};

/// Twenty `Ã` (U+00C3): the bytes 0xc3 written one character per byte.
const HASH_C3: &str = "ÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃÃ";

fn peer(c: u8) -> PeerId {
    PeerId([c; 20])
}

#[test]
fn announce_is_written_as_bittorrent_tracker_reads_it() {
    let mut a = WsAnnounce::new(InfoHashV1([0xc3; 20]), peer(b'a'));
    a.event = Event::Started;
    a.left = Some(7);
    a.uploaded = 1;
    a.downloaded = 2;
    a.numwant = Some(5);
    a.offers.push(WsOffer {
        offer_id: OfferId([0x00; 20]),
        offer: Signal::sdp("offer", "v=0\r\n"),
    });
    let frame = ws::encode_client(&ClientMessage::Announce(a));
    let v: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
    assert_eq!(v["action"], "announce");
    assert_eq!(v["info_hash"], HASH_C3);
    // In UTF-8, each of those characters is two bytes: the JSON text carries 40 bytes.
    assert!(frame.contains(HASH_C3));
    assert_eq!(v["peer_id"], "a".repeat(20));
    assert_eq!(v["event"], "started");
    assert_eq!(
        (v["left"].as_u64(), v["numwant"].as_u64()),
        (Some(7), Some(5))
    );
    assert_eq!(
        (v["uploaded"].as_u64(), v["downloaded"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(v["offers"][0]["offer"]["type"], "offer");
    assert_eq!(v["offers"][0]["offer"]["sdp"], "v=0\r\n");
    // A zero byte is the character U+0000, escaped by JSON.
    assert_eq!(v["offers"][0]["offer_id"], "\u{0}".repeat(20));
    assert!(frame.contains(r#""offer_id":"\u0000\u0000"#), "{frame}");
}

#[test]
fn regular_announce_has_no_event_and_unknown_left_has_no_left() {
    let a = WsAnnounce::new(InfoHashV1([1; 20]), peer(b'a'));
    let frame = ws::encode_client(&ClientMessage::Announce(a));
    let v: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
    assert!(v.get("event").is_none() && v.get("left").is_none() && v.get("offers").is_none());
}

#[test]
fn answer_and_scrape_frames() {
    let frame = ws::encode_client(&ClientMessage::Answer(WsAnswer {
        info_hash: InfoHashV1([0xff; 20]),
        peer_id: peer(b'b'),
        to_peer_id: peer(b'a'),
        offer_id: OfferId([0x7f; 20]),
        answer: Signal::sdp("answer", "v=0"),
        trackerid: None,
    }));
    let v: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
    assert_eq!(v["action"], "announce");
    assert_eq!(v["to_peer_id"], "a".repeat(20));
    assert_eq!(v["offer_id"], "\u{7f}".repeat(20));
    assert_eq!(v["info_hash"], "ÿ".repeat(20));
    assert_eq!(v["answer"]["type"], "answer");

    let frame = ws::encode_client(&ClientMessage::Scrape(vec![
        InfoHashV1([0xc3; 20]),
        InfoHashV1([b'x'; 20]),
    ]));
    let v: serde_json::Value = serde_json::from_str(&frame).expect("JSON");
    assert_eq!(v["action"], "scrape");
    assert_eq!(v["info_hash"][0], HASH_C3);
    assert_eq!(v["info_hash"][1], "x".repeat(20));
    // A tracker may also get a single info-hash as a string.
    let single = format!(r#"{{"action":"scrape","info_hash":"{HASH_C3}"}}"#);
    assert_eq!(
        ws::decode_client(&single),
        Ok(ClientMessage::Scrape(vec![InfoHashV1([0xc3; 20])]))
    );
}

#[test]
fn bittorrent_tracker_replies_decode() {
    // The shapes bittorrent-tracker 11 sends (server.js `_onWebSocketRequest`).
    let reply = format!(
        r#"{{"complete":1,"incomplete":2,"action":"announce","info_hash":"{HASH_C3}","interval":120}}"#
    );
    assert_eq!(
        ws::decode_server(&reply),
        Ok(ServerMessage::Announced {
            info_hash: InfoHashV1([0xc3; 20]),
            reply: WsAnnounceReply {
                interval: Some(Duration::from_secs(120)),
                complete: Some(1),
                incomplete: Some(2),
                ..WsAnnounceReply::default()
            },
        })
    );
    let offer = format!(
        r#"{{"action":"announce","offer":{{"type":"offer","sdp":"v=0"}},"offer_id":"{}","peer_id":"{}","info_hash":"{HASH_C3}"}}"#,
        "o".repeat(20),
        "p".repeat(20)
    );
    match ws::decode_server(&offer) {
        Ok(ServerMessage::Offer {
            peer_id,
            offer_id,
            offer,
            ..
        }) => {
            assert_eq!(peer_id, peer(b'p'));
            assert_eq!(offer_id, OfferId([b'o'; 20]));
            assert_eq!(
                (offer.kind(), offer.sdp_text()),
                (Some("offer"), Some("v=0"))
            );
        }
        other => panic!("{other:?}"),
    }
    let answer = offer.replace(r#""offer":"#, r#""answer":"#);
    assert!(matches!(
        ws::decode_server(&answer),
        Ok(ServerMessage::Answer { .. })
    ));
    let scrape = format!(
        r#"{{"action":"scrape","files":{{"{HASH_C3}":{{"complete":3,"incomplete":4,"downloaded":3}}}},"flags":{{"min_request_interval":600}}}}"#
    );
    let Ok(ServerMessage::Scraped(files)) = ws::decode_server(&scrape) else {
        panic!("scrape reply")
    };
    assert_eq!(
        files.get(&InfoHashV1([0xc3; 20])),
        Some(ScrapeStats {
            complete: 3,
            downloaded: 3,
            incomplete: 4
        })
    );
    // A refused request that parsed names the torrent; one that did not names nothing.
    let refused = format!(
        r#"{{"action":"announce","failure reason":"torrent not allowed","info_hash":"{HASH_C3}"}}"#
    );
    assert_eq!(
        ws::decode_server(&refused),
        Ok(ServerMessage::Failure {
            info_hash: Some(InfoHashV1([0xc3; 20])),
            scrape: false,
            reason: "torrent not allowed".into()
        })
    );
    assert_eq!(
        ws::decode_server(r#"{"failure reason":"invalid info_hash"}"#),
        Ok(ServerMessage::Failure {
            info_hash: None,
            scrape: false,
            reason: "invalid info_hash".into()
        })
    );
}

#[test]
fn hostile_frames_are_typed_errors() {
    let h = HASH_C3;
    let cases: Vec<(String, WsDecodeError)> = vec![
        (
            "x".repeat(MAX_FRAME_BYTES + 1),
            WsDecodeError::TooLarge {
                len: MAX_FRAME_BYTES + 1,
                limit: MAX_FRAME_BYTES,
            },
        ),
        (
            "not json".into(),
            WsDecodeError::Json { line: 1, column: 2 },
        ),
        (
            "[1,2]".into(),
            WsDecodeError::WrongType {
                field: "frame",
                expected: "an object",
            },
        ),
        ("{}".into(), WsDecodeError::Missing { field: "action" }),
        (
            r#"{"action":7}"#.into(),
            WsDecodeError::WrongType {
                field: "action",
                expected: "a string",
            },
        ),
        (
            r#"{"action":"connect"}"#.into(),
            WsDecodeError::UnknownAction,
        ),
        (
            r#"{"action":"announce"}"#.into(),
            WsDecodeError::Missing { field: "info_hash" },
        ),
        (
            r#"{"action":"announce","info_hash":"short"}"#.into(),
            WsDecodeError::WrongLength {
                field: "info_hash",
                chars: 5,
            },
        ),
        (
            r#"{"action":"announce","info_hash":12}"#.into(),
            WsDecodeError::WrongType {
                field: "info_hash",
                expected: "a string",
            },
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{}"}}"#,
                "€".repeat(20)
            ),
            WsDecodeError::NotBinary { field: "info_hash" },
        ),
        (
            format!(r#"{{"action":"announce","info_hash":"{h}","complete":"1"}}"#),
            WsDecodeError::WrongType {
                field: "complete",
                expected: "a number",
            },
        ),
        (
            format!(r#"{{"action":"announce","info_hash":"{h}","complete":-1}}"#),
            WsDecodeError::OutOfRange { field: "complete" },
        ),
        (
            format!(r#"{{"action":"announce","info_hash":"{h}","incomplete":1.5}}"#),
            WsDecodeError::OutOfRange {
                field: "incomplete",
            },
        ),
        (
            format!(r#"{{"action":"announce","info_hash":"{h}","complete":4294967296}}"#),
            WsDecodeError::OutOfRange { field: "complete" },
        ),
        (
            format!(r#"{{"action":"announce","info_hash":"{h}","offer":{{}},"peer_id":"{h}"}}"#),
            WsDecodeError::Missing { field: "offer_id" },
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{h}","offer":"sdp","peer_id":"{h}","offer_id":"{h}"}}"#
            ),
            WsDecodeError::WrongType {
                field: "offer",
                expected: "object",
            },
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":"{h}","answer":{{}},"peer_id":"{h}","offer_id":"{}"}}"#,
                "o".repeat(21)
            ),
            WsDecodeError::WrongLength {
                field: "offer_id",
                chars: 21,
            },
        ),
        (
            r#"{"action":"scrape","files":[]}"#.into(),
            WsDecodeError::WrongType {
                field: "files",
                expected: "an object",
            },
        ),
        (
            r#"{"action":"scrape","files":{"short":{}}}"#.into(),
            WsDecodeError::WrongLength {
                field: "files",
                chars: 5,
            },
        ),
        (
            format!(r#"{{"action":"scrape","files":{{"{h}":{{"complete":true}}}}}}"#),
            WsDecodeError::WrongType {
                field: "complete",
                expected: "a number",
            },
        ),
        (
            r#"{"failure reason":42}"#.into(),
            WsDecodeError::WrongType {
                field: "failure reason",
                expected: "a string",
            },
        ),
    ];
    for (frame, expected) in cases {
        let got = ws::decode_server(&frame);
        match (&got, &expected) {
            // Only the kind matters for the JSON position.
            (Err(WsDecodeError::Json { .. }), WsDecodeError::Json { .. }) => {}
            _ => assert_eq!(got, Err(expected), "{}", &frame[..frame.len().min(120)]),
        }
    }
    // Deep nesting stops at serde_json's depth limit instead of the stack.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        ws::decode_server(&deep),
        Err(WsDecodeError::Json { .. })
    ));
    // Too many scrape entries.
    let many: String = (0..=ws::MAX_SCRAPE_FILES)
        .map(|i| format!(r#""{:020}":{{}}"#, i))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        ws::decode_server(&format!(r#"{{"action":"scrape","files":{{{many}}}}}"#)),
        Err(WsDecodeError::TooManyEntries {
            count: ws::MAX_SCRAPE_FILES + 1,
            limit: ws::MAX_SCRAPE_FILES
        })
    );
}

#[test]
fn hostile_client_frames_are_typed_errors() {
    let h = HASH_C3;
    assert_eq!(
        ws::decode_client(&format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{h}","answer":{{}},"offer_id":"{h}"}}"#
        )),
        Err(WsDecodeError::Missing {
            field: "to_peer_id"
        })
    );
    assert_eq!(
        ws::decode_client(&format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{h}","event":"exploded"}}"#
        )),
        Err(WsDecodeError::UnknownEvent)
    );
    assert_eq!(
        ws::decode_client(&format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{h}","offers":[1]}}"#
        )),
        Err(WsDecodeError::WrongType {
            field: "offers",
            expected: "an array of objects"
        })
    );
    assert_eq!(
        ws::decode_client(r#"{"action":"scrape","info_hash":{}}"#),
        Err(WsDecodeError::WrongType {
            field: "info_hash",
            expected: "a string or an array"
        })
    );
}

#[test]
fn backoff_doubles_up_to_its_cap_and_resets() {
    let s = Duration::from_secs;
    let mut b = Backoff::new(s(10), s(60), s(5));
    let delays: Vec<_> = (0..6).map(|_| b.next_delay(0)).collect();
    assert_eq!(delays, [s(10), s(20), s(40), s(60), s(60), s(60)]);
    assert_eq!(b.attempts(), 6);
    // Full jitter adds the whole of it.
    assert_eq!(b.next_delay(u64::MAX), s(65));
    b.reset();
    assert_eq!(
        b.next_delay(u64::MAX / 2),
        s(10) + Duration::from_nanos(2_499_999_999)
    );
    // Many failures never overflow.
    let mut b = Backoff::new(Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..100 {
        let _ = b.next_delay(u64::MAX);
    }
}

fn arb_signal() -> impl Strategy<Value = Signal> {
    (".{0,8}", ".{0,40}").prop_map(|(k, s)| Signal::sdp(&k, &s))
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::None),
        Just(Event::Started),
        Just(Event::Completed),
        Just(Event::Stopped)
    ]
}

fn arb_client() -> impl Strategy<Value = ClientMessage> {
    let hash = any::<[u8; 20]>().prop_map(InfoHashV1);
    let id = any::<[u8; 20]>().prop_map(PeerId);
    let offer = (any::<[u8; 20]>(), arb_signal()).prop_map(|(o, offer)| WsOffer {
        offer_id: OfferId(o),
        offer,
    });
    let announce = (
        hash.clone(),
        id.clone(),
        (any::<u64>(), any::<u64>(), any::<Option<u64>>()),
        arb_event(),
        any::<Option<u32>>(),
        proptest::collection::vec(offer, 0..4),
        proptest::option::of(".{0,10}"),
    )
        .prop_map(
            |(
                info_hash,
                peer_id,
                (uploaded, downloaded, left),
                event,
                numwant,
                offers,
                trackerid,
            )| {
                ClientMessage::Announce(WsAnnounce {
                    info_hash,
                    peer_id,
                    uploaded,
                    downloaded,
                    left,
                    event,
                    numwant,
                    offers,
                    trackerid,
                })
            },
        );
    let answer = (
        hash.clone(),
        id.clone(),
        id,
        any::<[u8; 20]>(),
        arb_signal(),
        proptest::option::of(".{0,10}"),
    )
        .prop_map(|(info_hash, peer_id, to_peer_id, o, answer, trackerid)| {
            ClientMessage::Answer(WsAnswer {
                info_hash,
                peer_id,
                to_peer_id,
                offer_id: OfferId(o),
                answer,
                trackerid,
            })
        });
    let scrape = proptest::collection::vec(hash, 0..5).prop_map(ClientMessage::Scrape);
    prop_oneof![announce, answer, scrape]
}

fn arb_server() -> impl Strategy<Value = ServerMessage> {
    let hash = any::<[u8; 20]>().prop_map(InfoHashV1);
    let id = any::<[u8; 20]>().prop_map(PeerId);
    let secs = proptest::option::of((0u64..1_000_000).prop_map(Duration::from_secs));
    let announced = (
        hash.clone(),
        secs.clone(),
        secs,
        any::<Option<u32>>(),
        any::<Option<u32>>(),
        proptest::option::of(".{0,20}"),
        proptest::option::of(".{0,20}"),
    )
        .prop_map(
            |(info_hash, interval, min_interval, complete, incomplete, warning, tracker_id)| {
                ServerMessage::Announced {
                    info_hash,
                    reply: WsAnnounceReply {
                        interval,
                        min_interval,
                        complete,
                        incomplete,
                        warning,
                        tracker_id,
                    },
                }
            },
        );
    let relayed = (
        hash.clone(),
        id,
        any::<[u8; 20]>(),
        arb_signal(),
        any::<bool>(),
    )
        .prop_map(|(info_hash, peer_id, o, signal, is_offer)| {
            if is_offer {
                ServerMessage::Offer {
                    info_hash,
                    peer_id,
                    offer_id: OfferId(o),
                    offer: signal,
                }
            } else {
                ServerMessage::Answer {
                    info_hash,
                    peer_id,
                    offer_id: OfferId(o),
                    answer: signal,
                }
            }
        });
    let scraped = proptest::collection::btree_map(
        any::<[u8; 20]>(),
        (any::<u32>(), any::<u32>(), any::<u32>()),
        0..5,
    )
    .prop_map(|m| {
        ServerMessage::Scraped(ScrapeResponse {
            files: m
                .into_iter()
                .map(|(h, (complete, downloaded, incomplete))| {
                    (
                        InfoHashV1(h),
                        ScrapeStats {
                            complete,
                            downloaded,
                            incomplete,
                        },
                    )
                })
                .collect(),
        })
    });
    let failure = (proptest::option::of(hash), any::<bool>(), ".{0,30}").prop_map(
        |(info_hash, scrape, reason)| ServerMessage::Failure {
            info_hash,
            scrape,
            reason,
        },
    );
    prop_oneof![announced, relayed, scraped, failure]
}

/// Scrape entries in a fixed order: a JSON object does not keep one.
fn sorted(m: ServerMessage) -> ServerMessage {
    match m {
        ServerMessage::Scraped(mut s) => {
            s.files.sort_by_key(|(h, _)| h.0);
            ServerMessage::Scraped(s)
        }
        other => other,
    }
}

proptest! {
    #[test]
    fn client_round_trip(m in arb_client()) {
        let frame = ws::encode_client(&m);
        prop_assert_eq!(ws::decode_client(&frame), Ok(m));
    }

    #[test]
    fn server_round_trip(m in arb_server()) {
        let frame = ws::encode_server(&m);
        prop_assert_eq!(ws::decode_server(&frame).map(sorted), Ok(sorted(m)));
    }

    #[test]
    fn decoders_survive_any_text(text in ".{0,200}") {
        let _ = ws::decode_server(&text);
        let _ = ws::decode_client(&text);
    }

    #[test]
    fn decoders_survive_mangled_frames(m in arb_server(), cut in any::<prop::sample::Index>(), byte in 0x20u8..0x7f) {
        let mut frame = ws::encode_server(&m).into_bytes();
        let i = cut.index(frame.len());
        frame[i] = byte;
        if let Ok(text) = std::str::from_utf8(&frame) {
            let _ = ws::decode_server(text);
            let _ = ws::decode_client(text);
        }
    }
}
