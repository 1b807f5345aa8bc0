//! Feeds arbitrary datagrams to the KRPC codec: nothing panics, and whatever decodes
//! encodes to bytes that decode to an equal message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_dht::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let bytes = message.to_vec();
        let again = match Message::decode(&bytes) {
            Ok(again) => again,
            Err(e) => panic!("encoded message {bytes:?} does not decode: {e}"),
        };
        assert_eq!(again, message);
    }
});
