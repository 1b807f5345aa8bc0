//! Decodes arbitrary bytes as a BEP 10 extension handshake: nothing may panic, a decoded
//! handshake re-encodes to bytes that decode to the same handshake, and the registry
//! merges it as an update without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_extensions::{ExtHandshake, Incoming, Registry};

fuzz_target!(|data: &[u8]| {
    let Ok(hs) = ExtHandshake::decode(data) else {
        return;
    };
    let again = ExtHandshake::decode(&hs.encode()).expect("our encoding decodes");
    assert_eq!(again, hs);

    let mut registry = Registry::with_builtins();
    for _ in 0..2 {
        match registry.handle(0, data) {
            Ok(Incoming::Handshake(merged)) => assert_eq!(merged.m.len(), hs.m.len()),
            other => panic!("a valid handshake was refused: {other:?}"),
        }
    }
    for (name, &id) in &hs.m {
        assert_eq!(registry.peer_id(name), (id != 0).then_some(id));
    }
});
