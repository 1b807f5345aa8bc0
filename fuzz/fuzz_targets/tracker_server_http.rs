//! Feeds arbitrary text to the HTTP tracker's announce and scrape handlers: every answer
//! must be bencode the client crate reads as an answer or a `failure reason`.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use webtorrent_tracker::TrackerError;
use webtorrent_tracker::http::{parse_announce_response, parse_scrape_response};
use webtorrent_tracker_server::http::HttpHandler;
use webtorrent_tracker_server::{StoreConfig, SwarmStore};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let handler = HttpHandler::default();
    let mut store = SwarmStore::new(StoreConfig::default(), 1);
    let remote = "192.0.2.1:4000".parse().unwrap();
    let body = handler.announce(&mut store, Instant::now(), remote, query);
    match parse_announce_response(&body) {
        Ok(_) | Err(TrackerError::Failure { .. }) => {}
        Err(e) => panic!("own announce answer does not parse: {e}"),
    }
    let body = handler.scrape(&store, query);
    match parse_scrape_response(&body) {
        Ok(_) | Err(TrackerError::Failure { .. }) => {}
        Err(e) => panic!("own scrape answer does not parse: {e}"),
    }
});
