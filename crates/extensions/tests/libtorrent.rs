//! What libtorrent really sends, captured by `testdata/capture_libtorrent.py`: its
//! extension handshake and its answer to a `ut_metadata` request.

use std::net::{IpAddr, Ipv4Addr};

use webtorrent_extensions::{
    ExtHandshake, FetchEvent, FetcherConfig, LT_DONTHAVE, MetadataFetcher, MetadataMessage,
    UT_METADATA, UT_PEX,
};
use webtorrent_types::{InfoHashV1, InfoHashes};

const VERSIONS: [(&str, &[u8], &[u8], &[u8]); 2] = [
    (
        "2.0.8",
        include_bytes!("../testdata/libtorrent-2.0.8-ext-handshake.bin"),
        include_bytes!("../testdata/libtorrent-2.0.8-ut-metadata-data.bin"),
        include_bytes!("../testdata/libtorrent-2.0.8-info.bin"),
    ),
    (
        "2.1.1",
        include_bytes!("../testdata/libtorrent-2.1.1-ext-handshake.bin"),
        include_bytes!("../testdata/libtorrent-2.1.1-ut-metadata-data.bin"),
        include_bytes!("../testdata/libtorrent-2.1.1-info.bin"),
    ),
];

#[test]
fn libtorrent_extension_handshake() {
    for (version, handshake, _, info) in VERSIONS {
        let hs = ExtHandshake::decode(handshake).unwrap();
        assert_eq!(hs.client.as_deref(), Some(&*format!("libtorrent/{version}.0")));
        assert_eq!(hs.extension_id(UT_METADATA), Some(2));
        assert_eq!(hs.extension_id(UT_PEX), Some(1));
        assert_eq!(hs.extension_id(LT_DONTHAVE), Some(7));
        assert_eq!(hs.extension_id("upload_only"), Some(3));
        assert_eq!(hs.extension_id("ut_holepunch"), Some(4));
        assert_eq!(hs.extension_id("share_mode"), Some(8));
        assert_eq!(hs.metadata_size, Some(info.len() as u64));
        assert_eq!(hs.reqq, Some(2000));
        assert_eq!(hs.upload_only, Some(true), "a seed");
        assert_eq!(hs.your_ip, Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        // `complete_ago` is kept as an unknown key, and the whole dictionary re-encodes
        // to the same bytes (libtorrent writes canonical bencode).
        assert!(hs.extra.contains_key(b"complete_ago".as_slice()));
        assert_eq!(hs.encode(), handshake, "libtorrent {version}");
    }
}

#[test]
fn libtorrent_metadata_answer_completes_a_fetch() {
    for (_, handshake, data, info) in VERSIONS {
        let msg = MetadataMessage::decode(data).unwrap();
        assert_eq!(
            msg,
            MetadataMessage::Data {
                piece: 0,
                total_size: Some(info.len() as u64),
                data: info
            }
        );
        let hashes = InfoHashes::from_v1(InfoHashV1(webtorrent_hash::sha1(info)));
        let mut fetcher = MetadataFetcher::new(hashes, FetcherConfig::default());
        fetcher
            .add_peer((), &ExtHandshake::decode(handshake).unwrap())
            .unwrap();
        let now = std::time::Instant::now();
        let request = fetcher.poll_request(now).unwrap();
        assert_eq!(request.piece, 0);
        fetcher.handle_message(now, &(), &msg).unwrap();
        assert_eq!(fetcher.poll_event(), Some(FetchEvent::Complete(info.to_vec())));
    }
}
