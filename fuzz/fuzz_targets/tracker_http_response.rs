//! Parses arbitrary bytes as HTTP tracker announce and scrape responses; whatever
//! parses must encode to a body that parses back to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_tracker::http;

fuzz_target!(|data: &[u8]| {
    if let Ok(resp) = http::parse_announce_response(data) {
        let dict = http::encode_announce_response(&resp, false);
        match http::parse_announce_response(&dict) {
            Ok(again) => assert_eq!(again, resp, "dictionary-model round trip"),
            Err(e) => panic!("own dictionary-model encoding does not parse: {e}"),
        }
        let compact = http::encode_announce_response(&resp, true);
        let again = match http::parse_announce_response(&compact) {
            Ok(again) => again,
            Err(e) => panic!("own compact encoding does not parse: {e}"),
        };
        assert_eq!(again.peers.len(), resp.peers.len());
        assert_eq!(again.interval, resp.interval);
    }
    if let Ok(resp) = http::parse_scrape_response(data) {
        let body = http::encode_scrape_response(&resp);
        match http::parse_scrape_response(&body) {
            Ok(mut again) => {
                // The encoder sorts by info-hash; duplicates collapse.
                let mut want = resp.files.clone();
                want.sort_by_key(|(h, _)| *h.as_bytes());
                want.dedup_by_key(|(h, _)| *h.as_bytes());
                again.files.sort_by_key(|(h, _)| *h.as_bytes());
                assert_eq!(again.files.len(), want.len());
            }
            Err(e) => panic!("own scrape encoding does not parse: {e}"),
        }
    }
});
