//! Parses arbitrary text as a magnet URI; whatever parses must format to text that
//! parses back to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_magnet::Magnet;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(magnet) = Magnet::parse(text) else {
        return;
    };
    let formatted = magnet.to_string();
    let again = match Magnet::parse(&formatted) {
        Ok(again) => again,
        Err(e) => panic!("formatted magnet {formatted:?} does not parse: {e}"),
    };
    assert_eq!(again, magnet, "round trip changed the magnet: {formatted}");
    // Formatting is stable: the second rendering is the first.
    assert_eq!(again.to_string(), formatted);
});
