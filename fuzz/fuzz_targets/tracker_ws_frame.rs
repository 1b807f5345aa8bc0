//! Decodes arbitrary text as WebSocket tracker frames, both the tracker's and a client's:
//! whatever decodes must encode to a frame that decodes to an equal value (scrape entries
//! compared in a fixed order, since a JSON object keeps none). Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_tracker::ws::{self, ServerMessage};

fn sorted(m: ServerMessage) -> ServerMessage {
    match m {
        ServerMessage::Scraped(mut s) => {
            s.files.sort_by_key(|(h, _)| h.0);
            ServerMessage::Scraped(s)
        }
        other => other,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = ws::decode_server(text) {
        let again = ws::decode_server(&ws::encode_server(&m)).map(sorted);
        assert_eq!(again, Ok(sorted(m)));
    }
    if let Ok(m) = ws::decode_client(text) {
        assert_eq!(ws::decode_client(&ws::encode_client(&m)).as_ref(), Ok(&m));
    }
});
