//! Feeds arbitrary datagrams to the KRPC codec and to a DHT node: nothing panics,
//! whatever decodes encodes to bytes that decode to an equal message, and the node's
//! tables and stores stay within their caps.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use webtorrent_dht::{Config, Message, Node, NodeId, Output};

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let bytes = message.to_vec();
        let again = match Message::decode(&bytes) {
            Ok(again) => again,
            Err(e) => panic!("encoded message {bytes:?} does not decode: {e}"),
        };
        assert_eq!(again, message);
    }

    let now = Instant::now();
    let mut node = Node::new(Config::new([7; 32]), now);
    // A lookup in flight, so that replies have somewhere to go.
    let mut config_boot = Config::new([8; 32]);
    config_boot.bootstrap = vec!["10.0.0.1:6881".parse().expect("a valid address")];
    let mut booting = Node::new(config_boot, now);
    let _ = booting.get_peers(now, NodeId([1; 20]));
    let from: SocketAddr = "10.0.0.1:6881".parse().expect("a valid address");
    let mut buf = Vec::new();
    for n in [&mut node, &mut booting] {
        n.handle_datagram(now, from, data);
        let mut later = now;
        for _ in 0..64 {
            match n.poll_output(later, &mut buf) {
                Output::Transmit(_) => assert!(Message::decode(&buf).is_ok()),
                Output::Timeout(at) => later = at.max(later + Duration::from_secs(1)),
                _ => {}
            }
        }
        let stats = n.stats();
        assert!(stats.nodes_v4 <= 1 && stats.items <= 1 && stats.peers <= 1);
    }
});
