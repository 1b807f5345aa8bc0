//! Magnets as real clients write them, and malformed ones.

use webtorrent_magnet::{FileRange, Magnet, MagnetError, PeerAddr};
use webtorrent_types::{InfoHashV1, InfoHashV2, ParseError};

fn parse(uri: &str) -> Magnet {
    let magnet = Magnet::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
    assert_eq!(
        Magnet::parse(&magnet.to_string()).unwrap(),
        magnet,
        "round trip of {uri}"
    );
    magnet
}

/// libtorrent 2.0 `make_magnet_uri` for a hybrid torrent: both `xt`, lowercase escapes.
#[test]
fn libtorrent_hybrid() {
    let m = parse(
        "magnet:?xt=urn:btih:631a31dd0a46257d5078c0dee4e66e26f73e42ac\
         &xt=urn:btmh:1220d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb\
         &dn=bittorrent-v1-v2-hybrid-test\
         &tr=udp%3a%2f%2ftracker.opentrackr.org%3a1337%2fannounce",
    );
    assert_eq!(
        m.v1.unwrap().to_hex(),
        "631a31dd0a46257d5078c0dee4e66e26f73e42ac"
    );
    assert_eq!(
        m.v2.unwrap().to_hex(),
        "d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb"
    );
    let hashes = m.info_hashes().unwrap();
    assert!(hashes.is_hybrid());
    assert_eq!(hashes.wire(), m.v1.unwrap());
    assert_eq!(
        m.display_name.as_deref(),
        Some("bittorrent-v1-v2-hybrid-test")
    );
    assert_eq!(m.trackers, ["udp://tracker.opentrackr.org:1337/announce"]);
    assert_eq!(
        m.to_string(),
        "magnet:?xt=urn:btih:631a31dd0a46257d5078c0dee4e66e26f73e42ac\
         &xt=urn:btmh:1220d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb\
         &dn=bittorrent-v1-v2-hybrid-test\
         &tr=udp://tracker.opentrackr.org:1337/announce"
    );
}

/// A v2-only magnet: the wire name is the truncated SHA-256.
#[test]
fn v2_only() {
    let m = parse(
        "magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e\
         &dn=bittorrent-v2-test",
    );
    assert_eq!(m.v1, None);
    let wire = m.info_hashes().unwrap().wire();
    assert_eq!(wire.to_hex(), "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa");
}

/// qBittorrent's "Copy magnet link": uppercase escapes, several HTTPS trackers.
#[test]
fn qbittorrent() {
    let m = parse(
        "magnet:?xt=urn:btih:3B245504CF5F11BBDBE1201CEA6A6BF45AEE1BC0\
         &dn=ubuntu-22.04.3-desktop-amd64.iso\
         &tr=https%3A%2F%2Ftorrent.ubuntu.com%2Fannounce\
         &tr=https%3A%2F%2Fipv6.torrent.ubuntu.com%2Fannounce",
    );
    assert_eq!(
        m.v1.unwrap().to_hex(),
        "3b245504cf5f11bbdbe1201cea6a6bf45aee1bc0"
    );
    assert_eq!(
        m.trackers,
        [
            "https://torrent.ubuntu.com/announce",
            "https://ipv6.torrent.ubuntu.com/announce"
        ]
    );
}

/// The WebTorrent demo magnet: many `tr` (UDP and WebSocket), a `ws` and an `xs`.
#[test]
fn webtorrent_sintel() {
    let m = parse(
        "magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10&dn=Sintel\
         &tr=udp%3A%2F%2Fexplodie.org%3A6969&tr=udp%3A%2F%2Ftracker.coppersurfer.tk%3A6969\
         &tr=udp%3A%2F%2Ftracker.empire-js.us%3A1337\
         &tr=udp%3A%2F%2Ftracker.leechers-paradise.org%3A6969\
         &tr=udp%3A%2F%2Ftracker.opentrackr.org%3A1337&tr=wss%3A%2F%2Ftracker.btorrent.xyz\
         &tr=wss%3A%2F%2Ftracker.fastcast.nz&tr=wss%3A%2F%2Ftracker.openwebtorrent.com\
         &ws=https%3A%2F%2Fwebtorrent.io%2Ftorrents%2F\
         &xs=https%3A%2F%2Fwebtorrent.io%2Ftorrents%2Fsintel.torrent",
    );
    assert_eq!(m.display_name.as_deref(), Some("Sintel"));
    assert_eq!(m.trackers.len(), 8);
    assert_eq!(m.trackers[0], "udp://explodie.org:6969");
    assert_eq!(m.trackers[7], "wss://tracker.openwebtorrent.com");
    assert_eq!(m.web_seeds, ["https://webtorrent.io/torrents/"]);
    assert_eq!(
        m.exact_sources,
        ["https://webtorrent.io/torrents/sintel.torrent"]
    );
    assert_eq!(m.public_key(), None);
    let text = m.to_string();
    assert!(text.contains("&tr=wss://tracker.btorrent.xyz&"), "{text}");
    assert!(text.ends_with(
        "&ws=https://webtorrent.io/torrents/&xs=https://webtorrent.io/torrents/sintel.torrent"
    ));
}

/// Names with spaces, `+` and non-ASCII text; JS WebTorrent writes spaces as `+`.
#[test]
fn display_names() {
    let m = parse(
        "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36\
         &dn=Leaves+of+Grass%20%2B%20%C3%A9t%C3%A9%26more.epub",
    );
    assert_eq!(
        m.display_name.as_deref(),
        Some("Leaves of Grass + été&more.epub")
    );
    assert!(
        m.to_string()
            .ends_with("&dn=Leaves+of+Grass+%2B+%C3%A9t%C3%A9%26more.epub"),
        "{m}"
    );
}

/// A Gnutella-style magnet with several URNs, base32 btih, `xl`, `as` and `xs`.
#[test]
fn multiple_urns() {
    let m = parse(
        "magnet:?xt=urn:ed2k:354B15E68FB8F36D7CD88FF94116CDC1\
         &xt=urn:tree:tiger:7N5OAMRNGMSSEUE3ORHOKWN4WWIQ5X4EBOOTLJY\
         &xt=urn:btih:QHQXPYWMACKDWKP47RRVIV7VOURXFE5Q&xl=10826029\
         &dn=mediawiki-1.15.1.tar.gz&tr=udp%3A%2F%2Ftracker.example4.com%3A80%2Fannounce\
         &as=http%3A%2F%2Fdownload.wikimedia.org%2Fmediawiki%2F1.15%2Fmediawiki-1.15.1.tar.gz\
         &xs=http%3A%2F%2Fcache.example.org%2FXRX2PEFXOOEJFRVUCX6HMZMKS5TWG4K5\
         &xs=dchub://example.org",
    );
    assert_eq!(
        m.v1.unwrap().to_hex(),
        "81e177e2cc00943b29fcfc635457f575237293b0"
    );
    assert_eq!(m.exact_length, Some(10_826_029));
    assert_eq!(
        m.acceptable_sources,
        ["http://download.wikimedia.org/mediawiki/1.15/mediawiki-1.15.1.tar.gz"]
    );
    assert_eq!(m.exact_sources.len(), 2);
    assert_eq!(
        m.extra,
        [
            (
                "xt".to_owned(),
                "urn:ed2k:354B15E68FB8F36D7CD88FF94116CDC1".to_owned()
            ),
            (
                "xt".to_owned(),
                "urn:tree:tiger:7N5OAMRNGMSSEUE3ORHOKWN4WWIQ5X4EBOOTLJY".to_owned()
            ),
        ]
    );
}

/// Numbered forms, duplicates and unknown parameters.
#[test]
fn numbered_repeated_and_unknown() {
    let h = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";
    let m = parse(&format!(
        "magnet:?xt.1=urn:btih:{h}&xt.2=URN:BTIH:{}&tr.1=http://a/announce&tr.2=http://b/announce\
         &dn=first&dn=second&kt=joe+blow&x.custom=%3D%26&&flag",
        h.to_uppercase()
    ));
    assert_eq!(m.v1.unwrap().to_hex(), h);
    assert_eq!(m.trackers, ["http://a/announce", "http://b/announce"]);
    assert_eq!(m.display_name.as_deref(), Some("first"));
    assert_eq!(
        m.extra,
        [
            ("dn".to_owned(), "second".to_owned()),
            ("kt".to_owned(), "joe blow".to_owned()),
            ("x.custom".to_owned(), "=&".to_owned()),
            ("flag".to_owned(), String::new()),
        ]
    );
    assert!(
        m.to_string()
            .ends_with("&dn=second&kt=joe%20blow&x.custom=%3D%26&flag="),
        "{m}"
    );
}

/// BEP 46: no `xt`, a public key and a salt.
#[test]
fn mutable_torrent() {
    let key = "8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e";
    let m = parse(&format!("magnet:?xs=urn:btpk:{key}&s=6e"));
    assert_eq!(m.info_hashes(), None);
    assert_eq!(
        m.public_key()
            .map(|k| webtorrent_types::hex::encode(&k))
            .as_deref(),
        Some(key)
    );
    assert_eq!(m.salt.as_deref(), Some(&b"n"[..]));
    assert_eq!(m.to_string(), format!("magnet:?xs=urn:btpk:{key}&s=6e"));
}

/// BEP 53 file selection and `x.pe` peers.
#[test]
fn select_only_and_peers() {
    let m = parse(
        "magnet:?xt=urn:btih:d2474e86c95b19b8bcfdb92bc12c9d44667cfa36&so=0,2,4,6-8&so=10\
         &x.pe=10.0.0.1:6881&x.pe=%5B2001:db8::1%5D:51413&x.pe=[::1]:6881&x.pe=peer.example:7000",
    );
    assert_eq!(
        m.select_only,
        [
            FileRange::single(0),
            FileRange::single(2),
            FileRange::single(4),
            FileRange::new(6, 8).unwrap(),
            FileRange::single(10),
        ]
    );
    assert!(m.is_selected(7));
    assert!(!m.is_selected(9));
    assert_eq!(m.peers.len(), 4);
    assert_eq!(m.peers[0], PeerAddr::Ip("10.0.0.1:6881".parse().unwrap()));
    assert_eq!(m.peers[1].to_string(), "[2001:db8::1]:51413");
    assert_eq!(
        m.peers[3],
        PeerAddr::Host {
            host: "peer.example".into(),
            port: 7000
        }
    );
    let text = m.to_string();
    assert!(text.contains("&x.pe=%5B2001:db8::1%5D:51413&"), "{text}");
    assert!(text.ends_with("&so=0,2,4,6-8,10"), "{text}");
    assert!(Magnet::default().is_selected(123));
}

/// Tracker URLs keep `?`, `:` and `/` readable, and escape `&`, `=`, `+`, `#` and `%`.
#[test]
fn tracker_with_query() {
    let mut m = Magnet::new(InfoHashV1([0xab; 20]).into());
    m.trackers
        .push("http://t.example:8080/announce.php?passkey=a+b&x=%#frag".into());
    let text = m.to_string();
    assert_eq!(
        text,
        "magnet:?xt=urn:btih:abababababababababababababababababababab\
         &tr=http://t.example:8080/announce.php?passkey%3Da%2Bb%26x%3D%25%23frag"
    );
    assert_eq!(Magnet::parse(&text).unwrap(), m);
}

#[test]
fn errors() {
    let v1 = "d2474e86c95b19b8bcfdb92bc12c9d44667cfa36";
    let cases: Vec<(String, MagnetError)> = vec![
        ("magnet:?dn=x".into(), MagnetError::MissingInfoHash),
        (
            "magnet:?xt=urn:ed2k:354B15E68FB8F36D7CD88FF94116CDC1".into(),
            MagnetError::MissingInfoHash,
        ),
        (
            "magnet:?xt=urn:btih:abc".into(),
            MagnetError::InvalidInfoHash {
                value: "urn:btih:abc".into(),
                source: ParseError::UnknownEncoding { actual: 3 },
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{}z", &v1[..39]),
            MagnetError::InvalidInfoHash {
                value: format!("urn:btih:{}z", &v1[..39]),
                source: ParseError::InvalidHex {
                    index: 39,
                    found: 'z',
                },
            },
        ),
        (
            format!("magnet:?xt=urn:btmh:1114{v1}{}", &v1[..24]),
            MagnetError::InvalidInfoHash {
                value: format!("urn:btmh:1114{v1}{}", &v1[..24]),
                source: ParseError::UnsupportedMultihash {
                    prefix: "1114".into(),
                },
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&xt=urn:btih:{}", "0".repeat(40)),
            MagnetError::ConflictingInfoHash {
                first: v1.into(),
                second: "0".repeat(40),
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&xl=12a"),
            MagnetError::InvalidExactLength {
                value: "12a".into(),
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&xl=%2B5"),
            MagnetError::InvalidExactLength { value: "+5".into() },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&xl=18446744073709551616"),
            MagnetError::InvalidExactLength {
                value: "18446744073709551616".into(),
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&so=3-1"),
            MagnetError::InvalidSelectOnly {
                value: "3-1".into(),
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&so=1,,2"),
            MagnetError::InvalidSelectOnly {
                value: "1,,2".into(),
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&x.pe=1.2.3.4"),
            MagnetError::InvalidPeer {
                value: "1.2.3.4".into(),
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&dn=%FF"),
            MagnetError::InvalidUtf8 { key: "dn".into() },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&dn=100%"),
            MagnetError::InvalidPercentEscape {
                offset: 8 + 52 + 1 + 3 + 3,
            },
        ),
        (
            "magnet:?xs=urn:btpk:abcd".into(),
            MagnetError::InvalidPublicKey {
                value: "urn:btpk:abcd".into(),
                source: ParseError::TextLength {
                    expected: 64,
                    actual: 4,
                },
            },
        ),
        (
            format!("magnet:?xt=urn:btih:{v1}&s=xyz"),
            MagnetError::InvalidSalt {
                value: "xyz".into(),
                source: ParseError::TextLength {
                    expected: 4,
                    actual: 3,
                },
            },
        ),
        (
            "https://example.org/?xt=urn:btih:x".into(),
            MagnetError::NotMagnet,
        ),
    ];
    for (uri, expected) in cases {
        assert_eq!(Magnet::parse(&uri), Err(expected), "{uri}");
    }
}

#[test]
fn errors_display_their_data() {
    let err = Magnet::parse("magnet:?xt=urn:btih:abc").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid info-hash \"urn:btih:abc\": no supported encoding is 3 characters long"
    );
}

#[test]
fn construct_and_format() {
    let v2: InfoHashV2 = "caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e"
        .parse()
        .unwrap();
    let mut m = Magnet::new(v2.into());
    m.display_name = Some("My Video.mp4".into());
    m.trackers.push("wss://tracker.openwebtorrent.com".into());
    m.web_seeds
        .push("https://example.org/files/My Video.mp4".into());
    m.exact_length = Some(1234);
    assert_eq!(
        m.to_string(),
        "magnet:?xt=urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e\
         &dn=My+Video.mp4&xl=1234&tr=wss://tracker.openwebtorrent.com\
         &ws=https://example.org/files/My%20Video.mp4"
    );
    assert_eq!(m.to_uri().parse::<Magnet>().unwrap(), m);
}
