//! Feeds arbitrary datagrams to the BEP 14 codec and the LSD state machine: nothing
//! panics, whatever decodes encodes back to an equal announce, and the state machine
//! reports only torrents it was given, at the announced port.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use webtorrent_lsd::{Announce, Config, Event, Lsd, Output};
use webtorrent_types::InfoHashV1;

fuzz_target!(|data: &[u8]| {
    let decoded = Announce::decode(data);
    if let Ok(announce) = &decoded {
        if let Ok(bytes) = announce.to_vec() {
            let again = match Announce::decode(&bytes) {
                Ok(again) => again,
                Err(e) => panic!("encoded announce {bytes:?} does not decode: {e}"),
            };
            assert_eq!(&again, announce);
        }
    }

    // The torrents are the datagram's own first info-hash (if any) and a fixed one.
    let ours = InfoHashV1([0x42; 20]);
    let mut lsd = Lsd::new(Config::new(6881, 1));
    lsd.add_torrent(ours);
    if let Ok(announce) = &decoded {
        lsd.add_torrent(announce.info_hashes[0]);
    }
    let now = Instant::now();
    let source: SocketAddr = "10.1.2.3:6771".parse().expect("a valid address");
    lsd.handle_datagram(now, source, data);
    let mut buf = Vec::new();
    let mut later = now;
    for _ in 0..64 {
        match lsd.poll_output(later, &mut buf) {
            Output::Event(Event::Peer { info_hash, addr }) => {
                let announce = decoded.as_ref().expect("events come from valid announces");
                assert!(announce.info_hashes.contains(&info_hash));
                assert_eq!(addr.ip(), source.ip());
                assert_eq!(addr.port(), announce.port);
            }
            Output::Transmit(t) => assert_eq!(t.len, buf.len()),
            Output::Timeout(at) => later = at.max(later + Duration::from_secs(1)),
            _ => break,
        }
    }
});
