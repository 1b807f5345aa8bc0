//! Decodes arbitrary bytes as a `ut_pex` message: nothing may panic, a decoded message
//! re-encodes to an equal one, and the receiving side yields only valid addresses,
//! within its caps.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use webtorrent_extensions::{MAX_PEX_PEERS, PexConfig, PexMessage, PexState, is_valid_peer_addr};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = PexMessage::decode(data) else {
        return;
    };
    assert_eq!(PexMessage::decode(&msg.to_vec()).expect("our encoding decodes"), msg);

    let mut pex = PexState::new("127.0.0.1:1".parse().expect("an address"), PexConfig::default());
    let now = Instant::now();
    let update = pex.handle_message(now, &msg);
    assert!(update.added.len() <= MAX_PEX_PEERS);
    assert!(update.dropped.len() <= MAX_PEX_PEERS);
    assert!(update.added.iter().all(|p| is_valid_peer_addr(&p.addr)));
    assert_eq!(update.added.len() + update.ignored, msg.added.len());

    // Sending what we received: never more than the cap, never the remote itself.
    if let Some(out) = pex.poll_message(now, msg.added.iter().copied()) {
        assert!(out.added.len() <= MAX_PEX_PEERS);
        assert!(out.added.iter().all(|p| is_valid_peer_addr(&p.addr)));
    }
});
