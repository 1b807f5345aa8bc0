//! Feeds arbitrary frames on four WebSocket connections to the tracker's signaling handler:
//! every frame it sends must decode with the client crate's decoder, and once every
//! connection has closed the store must be empty.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use webtorrent_tracker::ws::decode_server;
use webtorrent_tracker_server::ws::WsHandler;
use webtorrent_tracker_server::{StoreConfig, SwarmStore};

fuzz_target!(|data: &[u8]| {
    let mut store = SwarmStore::new(StoreConfig::default(), 1);
    let mut ws = WsHandler::default();
    let now = Instant::now();
    let mut out = Vec::new();
    // Frames are separated by 0xff; the first byte of each picks the connection (low two
    // bits) or, with bit 7 set, closes it.
    for chunk in data.split(|&b| b == 0xff) {
        let Some((&head, rest)) = chunk.split_first() else {
            continue;
        };
        let conn = u64::from(head & 3);
        if head & 0x80 != 0 {
            ws.close(&mut store, conn);
            continue;
        }
        let Ok(text) = std::str::from_utf8(rest) else {
            continue;
        };
        out.clear();
        ws.message(&mut store, now, conn, text, &mut out);
        for send in &out {
            if let Err(e) = decode_server(&send.text) {
                panic!("own frame does not decode ({e}): {}", send.text);
            }
        }
    }
    for conn in 0..4 {
        ws.close(&mut store, conn);
    }
    assert_eq!(store.peer_count(), 0);
});
