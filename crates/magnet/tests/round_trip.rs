//! Property tests: every valid magnet formats to text that parses back to it.

use proptest::prelude::*;
use webtorrent_magnet::{FileRange, Magnet, PeerAddr};
use webtorrent_types::{InfoHashV1, InfoHashV2, hex};

/// Keys that parsing stores in a field rather than in `extra`.
fn is_known_key(key: &str) -> bool {
    let base = match key.split_once('.') {
        Some((b @ ("xt" | "tr" | "ws" | "as" | "xs"), n))
            if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) =>
        {
            b
        }
        _ => key,
    };
    matches!(
        base,
        "xt" | "dn" | "xl" | "tr" | "ws" | "as" | "xs" | "s" | "x.pe" | "so"
    )
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        "[a-z]{2,8}://[a-z.]{1,12}(:[0-9]{1,5})?/[ -~]{0,20}",
        Just(String::new()),
    ]
}

fn exact_source() -> impl Strategy<Value = String> {
    prop_oneof![
        text().prop_filter("not a btpk URN", |s| !s
            .get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:btpk:"))),
        any::<[u8; 32]>().prop_map(|k| format!("urn:btpk:{}", hex::encode(&k))),
    ]
}

fn peer() -> impl Strategy<Value = PeerAddr> {
    prop_oneof![
        any::<std::net::SocketAddr>().prop_filter_map("port 0", |addr| {
            let addr = match addr {
                std::net::SocketAddr::V6(mut v6) => {
                    v6.set_flowinfo(0);
                    std::net::SocketAddr::V6(v6)
                }
                v4 => v4,
            };
            (addr.port() != 0).then_some(PeerAddr::Ip(addr))
        }),
        ("[a-z][a-z0-9-]{0,12}(\\.[a-z]{2,5}){1,2}", 1u16..)
            .prop_map(|(host, port)| PeerAddr::Host { host, port }),
    ]
}

fn extra() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        (
            "\\PC{0,8}".prop_filter("known key", |k| !is_known_key(k)),
            text()
        ),
        "urn:(ed2k|sha1|tree:tiger):[A-Z0-9]{0,40}".prop_map(|v| ("xt".to_owned(), v)),
    ]
}

prop_compose! {
    fn magnet()(
        v1 in proptest::option::of(any::<[u8; 20]>().prop_map(InfoHashV1)),
        v2 in proptest::option::of(any::<[u8; 32]>().prop_map(InfoHashV2)),
        display_name in proptest::option::of(text()),
        exact_length in proptest::option::of(any::<u64>()),
        trackers in proptest::collection::vec(text(), 0..4),
        web_seeds in proptest::collection::vec(text(), 0..3),
        acceptable_sources in proptest::collection::vec(text(), 0..2),
        mut exact_sources in proptest::collection::vec(exact_source(), 0..3),
        salt in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        peers in proptest::collection::vec(peer(), 0..3),
        select_only in proptest::collection::vec(
            (any::<u32>(), any::<u32>()).prop_map(|(a, b)| FileRange { first: a.min(b), last: a.max(b) }),
            0..4,
        ),
        extra in proptest::collection::vec(extra(), 0..4),
        key in any::<[u8; 32]>(),
    ) -> Magnet {
        if v1.is_none() && v2.is_none() {
            // A magnet needs a hash or a BEP 46 key.
            exact_sources.push(format!("urn:btpk:{}", hex::encode(&key)));
        }
        Magnet {
            v1, v2, display_name, exact_length, trackers, web_seeds, acceptable_sources,
            exact_sources, salt, peers, select_only, extra,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn format_then_parse_is_identity(m in magnet()) {
        let text = m.to_string();
        prop_assert!(text.starts_with("magnet:?"));
        prop_assert!(!text.contains([' ', '#', '\n']), "{}", text);
        let parsed = Magnet::parse(&text);
        prop_assert_eq!(parsed, Ok(m), "{}", text);
    }

    #[test]
    fn parse_then_format_is_stable(m in magnet()) {
        // Whatever text we produce, reading and writing it again changes nothing.
        let text = m.to_string();
        let again = Magnet::parse(&text).unwrap().to_string();
        prop_assert_eq!(again, text);
    }

    #[test]
    fn arbitrary_text_never_panics(s in prop_oneof!["(magnet:\\?)?[ -~]{0,120}", "[mM]agnet\\PC{0,8}", "\\PC{0,60}"]) {
        if let Ok(m) = Magnet::parse(&s) {
            prop_assert_eq!(Magnet::parse(&m.to_string()), Ok(m));
        }
    }

    #[test]
    fn arbitrary_params_never_panic(
        params in proptest::collection::vec(
            (
                prop_oneof![
                    Just("xt".to_owned()), Just("dn".to_owned()), Just("xl".to_owned()),
                    Just("tr".to_owned()), Just("xs".to_owned()), Just("s".to_owned()),
                    Just("x.pe".to_owned()), Just("so".to_owned()), Just("xt.1".to_owned()),
                    "\\PC{0,4}",
                ],
                prop_oneof![
                    Just("urn:btih:".to_owned()), Just("urn:btmh:1220".to_owned()),
                    Just("urn:btpk:".to_owned()), "[0-9a-fA-F%+,:.\\-\\[\\]]{0,70}", "\\PC{0,20}",
                ],
                "[0-9a-f]{0,64}",
            ),
            0..6,
        ),
    ) {
        let mut uri = String::from("magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36");
        for (key, prefix, tail) in params {
            uri.push('&');
            uri.push_str(&key);
            uri.push('=');
            uri.push_str(&prefix);
            uri.push_str(&tail);
        }
        if let Ok(m) = Magnet::parse(&uri) {
            prop_assert_eq!(Magnet::parse(&m.to_string()), Ok(m));
        }
    }
}
