//! WebSocket signaling, sans-IO: frames in, frames out, checked field by
//! field against what bittorrent-tracker 11's server sends.

use std::collections::HashSet;
use std::time::Instant;

use proptest::prelude::*;
use serde_json::{Value, json};
use webtorrent_tracker_server::ws::{WsConfig, WsHandler, WsSend};
use webtorrent_tracker_server::{StoreConfig, SwarmStore};
use webtorrent_types::InfoHashV1;

fn bin(b: u8) -> String {
    char::from(b).to_string().repeat(20)
}

struct T {
    store: SwarmStore,
    ws: WsHandler,
    now: Instant,
}

impl T {
    fn new() -> Self {
        Self::with(WsConfig::default(), StoreConfig::default())
    }

    fn with(config: WsConfig, store: StoreConfig) -> Self {
        Self {
            store: SwarmStore::new(store, 5),
            ws: WsHandler::new(config),
            now: Instant::now(),
        }
    }

    fn send(&mut self, conn: u64, frame: &Value) -> Vec<(u64, Value)> {
        self.send_text(conn, &frame.to_string())
    }

    fn send_text(&mut self, conn: u64, text: &str) -> Vec<(u64, Value)> {
        let mut out = Vec::new();
        self.ws
            .message(&mut self.store, self.now, conn, text, &mut out);
        out.into_iter()
            .map(|WsSend { to, text }| (to, serde_json::from_str(&text).unwrap()))
            .collect()
    }
}

fn announce(hash: u8, peer: u8, left: u64, event: &str) -> Value {
    json!({
        "action": "announce", "info_hash": bin(hash), "peer_id": bin(peer),
        "uploaded": 0, "downloaded": 0, "left": left, "event": event, "numwant": 5,
    })
}

fn with_offers(mut frame: Value, ids: &[u8]) -> Value {
    frame["offers"] = ids
        .iter()
        .map(|&i| json!({"offer_id": bin(i), "offer": {"type": "offer", "sdp": format!("sdp{i}")}}))
        .collect();
    frame
}

#[test]
fn announce_reply_has_bittorrent_tracker_fields() {
    let mut t = T::new();
    let out = t.send(1, &announce(1, b'a', 0, "started"));
    assert_eq!(
        out,
        vec![(
            1,
            json!({"action": "announce", "info_hash": bin(1), "interval": 120, "complete": 1, "incomplete": 0})
        )]
    );
    let out = t.send(2, &announce(1, b'b', 10, "started"));
    assert_eq!(out[0].1["complete"], 1);
    assert_eq!(out[0].1["incomplete"], 1);
}

#[test]
fn offers_go_to_other_browsers_with_the_offerers_id() {
    let mut t = T::new();
    t.send(1, &announce(1, b'a', 0, "started"));
    t.send(2, &announce(1, b'b', 0, "started"));
    // A third connection offers three times; two peers can take them.
    let out = t.send(
        3,
        &with_offers(announce(1, b'c', 10, "started"), &[7, 8, 9]),
    );
    assert_eq!(out[0].0, 3);
    assert_eq!(out[0].1["incomplete"], 1);
    let relayed: Vec<_> = out[1..].to_vec();
    assert_eq!(relayed.len(), 2);
    let targets: HashSet<u64> = relayed.iter().map(|(to, _)| *to).collect();
    assert_eq!(targets, HashSet::from([1, 2]));
    let mut ids = HashSet::new();
    for (_, f) in &relayed {
        let keys: HashSet<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            HashSet::from(["action", "info_hash", "peer_id", "offer_id", "offer"])
        );
        assert_eq!(f["peer_id"], bin(b'c'));
        assert_eq!(f["info_hash"], bin(1));
        assert_eq!(f["offer"]["type"], "offer");
        ids.insert(f["offer_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 2, "each peer gets a different offer");
}

#[test]
fn answers_go_to_the_offerer_only_and_the_answerer_gets_nothing() {
    let mut t = T::new();
    t.send(1, &announce(1, b'a', 10, "started"));
    let answer = json!({
        "action": "announce", "info_hash": bin(1), "peer_id": bin(b'b'),
        "to_peer_id": bin(b'a'), "offer_id": bin(7), "answer": {"type": "answer", "sdp": "x"},
    });
    let out = t.send(2, &answer);
    assert_eq!(
        out,
        vec![(
            1,
            json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(b'b'), "offer_id": bin(7), "answer": {"type": "answer", "sdp": "x"}})
        )]
    );
    // The answerer joined the swarm as a leecher, as with bittorrent-tracker.
    assert_eq!(t.store.scrape(&InfoHashV1([1; 20])).incomplete, 2);
    // An answer to an unknown peer goes nowhere.
    let mut lost = answer;
    lost["to_peer_id"] = bin(b'z').into();
    assert!(t.send(2, &lost).is_empty());
}

#[test]
fn stopped_and_close_remove_peers() {
    let mut t = T::new();
    t.send(1, &announce(1, b'a', 0, "started"));
    t.send(1, &announce(2, b'a', 0, "started"));
    t.send(2, &announce(1, b'b', 5, "started"));
    let out = t.send(2, &announce(1, b'b', 5, "stopped"));
    assert_eq!(out[0].1["complete"], 1);
    assert_eq!(out[0].1["incomplete"], 0);
    assert_eq!(t.store.peer_count(), 2);
    t.ws.close(&mut t.store, 1);
    assert_eq!(t.store.peer_count(), 0);
    assert_eq!(t.store.swarm_count(), 0);
    assert_eq!(t.ws.connection_count(), 1);
}

#[test]
fn a_peer_id_taken_over_by_another_connection_stays_when_the_first_closes() {
    let mut t = T::new();
    t.send(1, &announce(1, b'a', 0, "started"));
    t.send(2, &announce(1, b'a', 0, "started"));
    t.ws.close(&mut t.store, 1);
    assert_eq!(t.store.peer_count(), 1);
    t.ws.close(&mut t.store, 2);
    assert_eq!(t.store.peer_count(), 0);
}

#[test]
fn scrape_single_multi_and_all() {
    let mut t = T::new();
    t.send(1, &announce(1, b'a', 0, "started"));
    t.send(2, &announce(2, b'b', 9, "started"));
    let one = t.send(3, &json!({"action": "scrape", "info_hash": bin(1)}));
    assert_eq!(
        one[0].1,
        json!({"action": "scrape", "files": {bin(1): {"complete": 1, "incomplete": 0, "downloaded": 0}}, "flags": {"min_request_interval": 600}})
    );
    let many = t.send(
        3,
        &json!({"action": "scrape", "info_hash": [bin(1), bin(2), bin(3)]}),
    );
    let files = many[0].1["files"].as_object().unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(files[&bin(2)]["incomplete"], 1);
    assert_eq!(files[&bin(3)]["complete"], 0);
    let all = t.send(3, &json!({"action": "scrape"}));
    assert_eq!(all[0].1["files"].as_object().unwrap().len(), 2);
}

#[test]
fn refusals_use_bittorrent_tracker_words() {
    let mut t = T::new();
    let reason = |out: Vec<(u64, Value)>| {
        assert_eq!(out.len(), 1);
        out[0].1.clone()
    };
    let r = reason(t.send_text(1, "not json"));
    assert!(r.get("failure reason").is_some());
    assert!(r.get("action").is_none());
    let mut bad = announce(1, b'a', 0, "started");
    bad["info_hash"] = "short".into();
    assert_eq!(
        reason(t.send(1, &bad)),
        json!({"failure reason": "invalid info_hash"})
    );
    let mut bad = announce(1, b'a', 0, "started");
    bad["peer_id"] = 5.into();
    assert_eq!(
        reason(t.send(1, &bad)),
        json!({"failure reason": "invalid peer_id"})
    );
    let bad = json!({"action": "announce", "info_hash": bin(1), "peer_id": bin(2), "offer_id": bin(3), "answer": {}});
    assert_eq!(
        reason(t.send(1, &bad)),
        json!({"failure reason": "invalid `to_peer_id` (required with `answer`)"})
    );
    assert_eq!(
        reason(t.send(1, &json!({"action": "dance"}))),
        json!({"failure reason": "invalid action in WS request: dance"})
    );
    assert_eq!(
        reason(t.send(1, &json!({"info_hash": bin(1)}))),
        json!({"failure reason": "invalid action in WS request: undefined"})
    );
    assert_eq!(
        reason(t.send(1, &announce(1, b'a', 0, "exploded"))),
        json!({"action": "announce", "info_hash": bin(1), "failure reason": "invalid event"})
    );
    // `paused` (BEP 21) is an ordinary announce.
    assert_eq!(
        reason(t.send(1, &announce(1, b'a', 0, "paused")))["complete"],
        1
    );
}

#[test]
fn allowlist_and_limits() {
    let mut config = WsConfig::default();
    config.max_message_bytes = 1000;
    config.max_swarms_per_connection = 2;
    let mut t = T::with(config, StoreConfig::default());
    t.store.set_allowlist(Some(HashSet::from([
        InfoHashV1([1; 20]),
        InfoHashV1([2; 20]),
        InfoHashV1([3; 20]),
    ])));
    let out = t.send(1, &announce(9, b'a', 0, "started"));
    assert_eq!(
        out[0].1,
        json!({"action": "announce", "info_hash": bin(9), "failure reason": "torrent not allowed on this tracker"})
    );
    t.send(1, &announce(1, b'a', 0, "started"));
    t.send(1, &announce(2, b'a', 0, "started"));
    let out = t.send(1, &announce(3, b'a', 0, "started"));
    assert_eq!(
        out[0].1["failure reason"],
        "too many torrents on one connection"
    );
    let big = format!(r#"{{"action":"scrape","pad":"{}"}}"#, "x".repeat(2000));
    let out = t.send_text(1, &big);
    assert!(
        out[0].1["failure reason"]
            .as_str()
            .unwrap()
            .contains("exceeds")
    );
    assert_eq!(t.store.peer_count(), 2);
}

proptest! {
    /// Whatever text arrives, the handler answers the sender with one
    /// JSON object or relays, never panics, and closing every connection
    /// empties the store.
    #[test]
    fn arbitrary_frames(frames in proptest::collection::vec((0u64..4, frame_strategy()), 1..40)) {
        let mut t = T::new();
        for (conn, text) in &frames {
            let mut out = Vec::new();
            t.ws.message(&mut t.store, t.now, *conn, text, &mut out);
            for send in out {
                prop_assert!(serde_json::from_str::<serde_json::Map<String, Value>>(&send.text).is_ok());
            }
        }
        for conn in 0..4 {
            t.ws.close(&mut t.store, conn);
        }
        prop_assert_eq!(t.store.peer_count(), 0);
    }
}

fn frame_strategy() -> impl Strategy<Value = String> {
    let id = prop_oneof![Just(bin(1)), Just(bin(2)), Just(bin(0xff)), ".{0,22}"];
    let event = prop_oneof![
        Just("started"),
        Just("stopped"),
        Just("completed"),
        Just("update"),
        Just("x")
    ];
    prop_oneof![
        (id.clone(), id.clone(), 0u64..3, event, 0usize..3).prop_map(|(h, p, left, e, n)| {
            let mut f = json!({"action": "announce", "info_hash": h, "peer_id": p, "left": left, "event": e});
            if n > 0 {
                f["offers"] = (0..n)
                    .map(|i| json!({"offer_id": bin(u8::try_from(i).unwrap()), "offer": {"type": "offer", "sdp": "s"}}))
                    .collect();
            }
            f.to_string()
        }),
        (id.clone(), id.clone(), id.clone()).prop_map(|(h, p, to)| json!({
            "action": "announce", "info_hash": h, "peer_id": p, "to_peer_id": to,
            "offer_id": bin(3), "answer": {"type": "answer", "sdp": "a"},
        }).to_string()),
        id.prop_map(|h| json!({"action": "scrape", "info_hash": h}).to_string()),
        ".{0,64}",
    ]
}
