//! Decodes arbitrary bytes as BEP 15 requests and responses (both address families):
//! whatever decodes must encode to a packet that decodes to an equal value. The same
//! bytes are also fed to a UDP tracker state machine waiting for an answer, with the
//! transaction id forced to match, which must never panic.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use webtorrent_tracker::AnnounceRequest;
use webtorrent_tracker::udp::{AddressFamily, UdpConfig, UdpRequest, UdpResponse, UdpTrackerMachine};
use webtorrent_types::{InfoHashV1, PeerId};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = UdpRequest::decode(data) {
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(UdpRequest::decode(&out).as_ref(), Ok(&req));
    }
    for family in [AddressFamily::V4, AddressFamily::V6] {
        if let Ok(resp) = UdpResponse::decode(data, family) {
            let mut out = Vec::new();
            resp.encode(&mut out);
            assert_eq!(UdpResponse::decode(&out, family).as_ref(), Ok(&resp));
        }
    }
    let now = Instant::now();
    let mut m = UdpTrackerMachine::new(AddressFamily::V4, UdpConfig::default(), Box::new(|| 7));
    m.announce(now, &AnnounceRequest::new(InfoHashV1([1; 20]), PeerId([2; 20]), 1));
    let mut packet = data.to_vec();
    if packet.len() >= 8 {
        packet[4..8].copy_from_slice(&7u32.to_be_bytes());
    }
    m.handle_input(now, &packet);
    // Connected: the same bytes again, now as the announce answer.
    m.handle_input(now, &packet);
    while m.poll_event().is_some() {}
});
