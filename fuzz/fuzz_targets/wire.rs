//! Decodes arbitrary bytes as a handshake followed by peer messages: nothing may panic,
//! and every decoded message must re-encode to exactly the bytes it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_wire::{Bitfield, Decoder, Handshake, Message};

fuzz_target!(|data: &[u8]| {
    let mut at = match Handshake::decode(data) {
        Ok(Some((handshake, used))) => {
            assert_eq!(handshake.to_bytes()[..], data[..used]);
            used
        }
        // Not a handshake: read the bytes as messages anyway.
        Ok(None) | Err(_) => 0,
    };
    // A small limit too, so that the oversize path is exercised.
    let decoder = Decoder::with_max_frame(if data.first() == Some(&0) { 64 } else { 1 << 20 });
    while let Ok(Some((message, used))) = decoder.decode(&data[at..]) {
        assert_eq!(message.to_vec()[..], data[at..at + used]);
        if let Message::Bitfield(bytes) = &message {
            let pieces = u32::try_from(bytes.len() * 8).unwrap_or(u32::MAX);
            if let Ok(b) = Bitfield::from_bytes(bytes, pieces.saturating_sub(3)) {
                assert_eq!(b.as_bytes(), &bytes[..]);
                assert_eq!(b.iter().count() as u32, b.count());
            }
        }
        assert_eq!(message.clone().into_owned(), message);
        at += used;
    }
});
