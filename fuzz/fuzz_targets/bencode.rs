//! Decodes arbitrary bytes leniently and strictly.
//!
//! - Strict success: re-encoding `to_owned()` reproduces the input exactly.
//! - Lenient success: every raw span re-decodes to an identical value, and
//!   the canonical re-encoding decodes strictly to the same structure.
//! - Prefix decoding agrees with full decoding on the consumed bytes.
//! - The serde path never panics and agrees with `to_owned`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use webtorrent_bencode::{OwnedValue, Value, decode, decode_prefix, decode_strict, from_bytes};

fn check_spans(value: &Value<'_>) {
    let again = decode(value.raw()).expect("a raw span must re-decode");
    assert_eq!(&again, value, "a raw span must re-decode to the same value");
    if let Some(list) = value.as_list() {
        list.iter().for_each(check_spans);
    }
    if let Some(dict) = value.as_dict() {
        dict.iter().for_each(|(_, v)| check_spans(v));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = decode_strict(data) {
        assert_eq!(value.to_owned().encode(), data, "strict input must re-encode exactly");
    }
    match decode(data) {
        Ok(value) => {
            assert_eq!(value.raw(), data);
            check_spans(&value);
            let owned = value.to_owned();
            let canonical = owned.encode();
            assert_eq!(canonical.len(), owned.encoded_len());
            let strict = decode_strict(&canonical).expect("canonical output must decode strictly");
            assert_eq!(strict.to_owned(), owned);
            let via_serde: OwnedValue = from_bytes(data).expect("serde must accept valid input");
            assert_eq!(via_serde, owned);
        }
        Err(_) => {
            assert!(from_bytes::<OwnedValue>(data).is_err());
        }
    }
    if let Ok((value, used)) = decode_prefix(data) {
        assert_eq!(value.raw(), &data[..used]);
        assert_eq!(decode(&data[..used]).as_ref(), Ok(&value));
    }
});
