//! What libtorrent really sends, captured by `testdata/capture_libtorrent.py`: its
//! extension handshake and its answer to a `ut_metadata` request; and by
//! `testdata/capture_libtorrent_pex.py`: its first `ut_pex` message.

use std::net::{IpAddr, Ipv4Addr};

use webtorrent_extensions::{
    ExtHandshake, FetchEvent, FetcherConfig, LT_DONTHAVE, MetadataFetcher, MetadataMessage,
    PexConfig, PexFlags, PexMessage, PexPeer, PexState, UT_METADATA, UT_PEX,
};
use webtorrent_types::{InfoHashV1, InfoHashes};

/// One libtorrent version's captures.
struct Capture {
    version: &'static str,
    handshake: &'static [u8],
    metadata_data: &'static [u8],
    info: &'static [u8],
}

const VERSIONS: [Capture; 2] = [
    Capture {
        version: "2.0.8",
        handshake: include_bytes!("../testdata/libtorrent-2.0.8-ext-handshake.bin"),
        metadata_data: include_bytes!("../testdata/libtorrent-2.0.8-ut-metadata-data.bin"),
        info: include_bytes!("../testdata/libtorrent-2.0.8-info.bin"),
    },
    Capture {
        version: "2.1.1",
        handshake: include_bytes!("../testdata/libtorrent-2.1.1-ext-handshake.bin"),
        metadata_data: include_bytes!("../testdata/libtorrent-2.1.1-ut-metadata-data.bin"),
        info: include_bytes!("../testdata/libtorrent-2.1.1-info.bin"),
    },
];

#[test]
fn libtorrent_extension_handshake() {
    for Capture {
        version,
        handshake,
        info,
        ..
    } in VERSIONS
    {
        let hs = ExtHandshake::decode(handshake).unwrap();
        assert_eq!(
            hs.client.as_deref(),
            Some(&*format!("libtorrent/{version}.0"))
        );
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
    for Capture {
        handshake,
        metadata_data: data,
        info,
        ..
    } in VERSIONS
    {
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
        assert_eq!(
            fetcher.poll_event(),
            Some(FetchEvent::Complete(info.to_vec()))
        );
    }
}

#[test]
fn libtorrent_first_pex_message() {
    let captures: [&[u8]; 2] = [
        include_bytes!("../testdata/libtorrent-2.0.8-ut-pex.bin"),
        include_bytes!("../testdata/libtorrent-2.1.1-ut-pex.bin"),
    ];
    for bytes in captures {
        let msg = PexMessage::decode(bytes).unwrap();
        // The other connected peer (at the listen port its handshake announced) and,
        // as libtorrent does, the receiving peer itself; IPv6 keys present but empty.
        let expected = [
            PexPeer::new("127.0.0.1:7777".parse().unwrap(), PexFlags::NONE),
            PexPeer::new("127.0.0.1:6881".parse().unwrap(), PexFlags::NONE),
        ];
        assert_eq!(msg.added, expected);
        assert!(msg.dropped.is_empty());
        let mut pex = PexState::new("127.0.0.1:1".parse().unwrap(), PexConfig::default());
        let update = pex.handle_message(std::time::Instant::now(), &msg);
        assert_eq!(update.added, expected);
        assert_eq!(update.ignored, 0);
    }
}

/// The capture scripts sent these bytes and libtorrent answered them, so they are known
/// to work; our encoders must produce exactly them (with our version in `v`).
#[test]
fn what_the_capture_sent_is_what_we_encode() {
    let v = webtorrent_extensions::OUR_CLIENT_VERSION;
    let mut ours = ExtHandshake::ours();
    ours.m.insert(UT_METADATA.into(), 3);
    assert_eq!(
        ours.encode(),
        format!("d1:md11:ut_metadatai3ee1:v{}:{v}e", v.len()).as_bytes()
    );
    let mut pex = ExtHandshake::ours();
    pex.m.insert(UT_PEX.into(), 1);
    pex.listen_port = Some(6881);
    assert_eq!(
        pex.encode(),
        format!("d1:md6:ut_pexi1ee1:pi6881e1:v{}:{v}e", v.len()).as_bytes()
    );
    assert_eq!(
        MetadataMessage::Request { piece: 0 }.to_vec(),
        b"d8:msg_typei0e5:piecei0ee"
    );
}
