//! Feeds arbitrary bytes to the UDP tracker's request handler, twice: as they are, and
//! with their first eight bytes replaced by a connection id issued to the sender, so that
//! announces and scrapes reach the store. An answer must be a response the client codec
//! decodes; a dropped datagram must leave the output empty.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use webtorrent_tracker::udp::{AddressFamily, UdpResponse};
use webtorrent_tracker_server::udp::{UdpConfig, UdpHandler};
use webtorrent_tracker_server::{StoreConfig, SwarmStore};

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let handler = UdpHandler::new(now, [7; 32], UdpConfig::default());
    let mut store = SwarmStore::new(StoreConfig::default(), 1);
    let src = SocketAddr::from(([192, 0, 2, 1], 4000));
    let mut packet = data.to_vec();
    for round in 0..2 {
        if round == 1 && packet.len() >= 8 {
            let id = handler.connection_ids().issue(now, &src);
            packet[..8].copy_from_slice(&id.to_be_bytes());
        }
        let mut out = Vec::new();
        match handler.handle(&mut store, now, src, &packet, &mut out) {
            Ok(()) => {
                if let Err(e) = UdpResponse::decode(&out, AddressFamily::V4) {
                    panic!("own answer does not decode: {e}");
                }
            }
            Err(_) => assert!(out.is_empty()),
        }
    }
});
