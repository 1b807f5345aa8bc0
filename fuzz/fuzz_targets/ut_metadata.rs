//! Decodes arbitrary bytes as a `ut_metadata` message: nothing may panic, a decoded
//! message re-encodes to an equal one, and the fetcher and server take it without
//! panicking or breaking their invariants.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use webtorrent_extensions::{
    ExtHandshake, FetcherConfig, MetadataFetcher, MetadataMessage, MetadataServer, ServerConfig,
};
use webtorrent_types::{InfoHashV1, InfoHashes};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = MetadataMessage::decode(data) else {
        return;
    };
    let bytes = msg.to_vec();
    assert_eq!(MetadataMessage::decode(&bytes).expect("our encoding decodes"), msg);

    let info: Arc<[u8]> = Arc::from(vec![b'x'; 40_000]);
    let mut server = MetadataServer::new(info.clone(), ServerConfig::default());
    let now = Instant::now();
    if let Some(answer) = server.handle(now, &msg) {
        assert_eq!(answer.piece(), msg.piece());
    }

    // A fetcher that asked peer 1 for every piece of 40 000 bytes gets the message.
    let hashes = InfoHashes::from_v1(InfoHashV1(webtorrent_hash::sha1(&info)));
    let mut fetcher = MetadataFetcher::new(hashes, FetcherConfig::default());
    let mut hs = ExtHandshake::default();
    hs.m.insert("ut_metadata".into(), 1);
    hs.metadata_size = Some(info.len() as u64);
    fetcher.add_peer(1u8, &hs).expect("a valid peer");
    while fetcher.poll_request(now).is_some() {}
    let _ = fetcher.handle_message(now, &1, &msg);
    let _ = fetcher.handle_message(now, &2, &msg);
    while fetcher.poll_event().is_some() {}
    let later = now + Duration::from_secs(3600);
    while fetcher.poll_request(later).is_some() {}
    let _ = fetcher.poll_timeout();
});
