//! Property tests: encode/decode round trips, raw spans, no panics.

use std::collections::BTreeMap;

use proptest::prelude::*;
use webtorrent_bencode::{OwnedValue, Value, decode, decode_prefix, decode_strict};

/// Arbitrary owned values (no `Raw`), nested a few levels.
fn owned_value() -> impl Strategy<Value = OwnedValue> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(OwnedValue::Int),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(OwnedValue::Bytes),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(OwnedValue::List),
            prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..8), inner, 0..8)
                .prop_map(OwnedValue::Dict),
        ]
    })
}

/// Bytes that look like bencode often enough to reach deep into the decoder.
fn bencode_ish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"i".to_vec()),
        Just(b"e".to_vec()),
        Just(b"l".to_vec()),
        Just(b"d".to_vec()),
        Just(b"-".to_vec()),
        Just(b":".to_vec()),
        (0u8..10).prop_map(|d| vec![b'0' + d]),
        Just(b"1:a".to_vec()),
        Just(b"1:b".to_vec()),
        Just(b"i0e".to_vec()),
        Just(b"i03e".to_vec()),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

/// Checks that the raw span of `value` and of everything inside it decodes
/// (leniently) to an identical value.
fn check_spans(value: &Value<'_>) {
    let again = decode(value.raw()).expect("a raw span must re-decode");
    assert_eq!(&again, value);
    if let Some(list) = value.as_list() {
        list.iter().for_each(check_spans);
    }
    if let Some(dict) = value.as_dict() {
        dict.iter().for_each(|(_, v)| check_spans(v));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_strict_decode_round_trips(value in owned_value()) {
        let encoded = value.encode();
        prop_assert_eq!(encoded.len(), value.encoded_len());
        let mut appended = b"prefix".to_vec();
        value.encode_into(&mut appended);
        prop_assert_eq!(&appended[6..], &encoded[..]);
        let decoded = decode_strict(&encoded).expect("canonical output must decode strictly");
        prop_assert_eq!(decoded.raw(), &encoded[..]);
        prop_assert_eq!(decoded.to_owned(), value);
        check_spans(&decoded);
    }

    #[test]
    fn decode_never_panics(input in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode(&input);
        let _ = decode_strict(&input);
        let _ = decode_prefix(&input);
    }

    #[test]
    fn decoded_values_are_consistent(input in bencode_ish()) {
        if let Ok(value) = decode(&input) {
            prop_assert_eq!(value.raw(), &input[..]);
            check_spans(&value);
            // Canonical re-encoding decodes strictly to the same structure.
            let owned = value.to_owned();
            let canonical = owned.encode();
            prop_assert_eq!(decode_strict(&canonical).map(|v| v.to_owned()), Ok(owned));
        }
        if let Ok(value) = decode_strict(&input) {
            prop_assert_eq!(value.to_owned().encode(), input.clone());
        }
        if let Ok((value, used)) = decode_prefix(&input) {
            prop_assert_eq!(value.raw(), &input[..used]);
            prop_assert_eq!(decode(&input[..used]), Ok(value));
        }
    }

    #[test]
    fn integers_round_trip(n in any::<i64>()) {
        let encoded = OwnedValue::Int(n).encode();
        prop_assert_eq!(&encoded, &format!("i{n}e").into_bytes());
        prop_assert_eq!(decode_strict(&encoded).unwrap().as_int(), Some(n));
    }

    #[test]
    fn unsorted_dicts_get_first_entry(entries in prop::collection::vec(
        (prop::collection::vec(b'a'..b'd', 0..3), any::<i64>()), 0..12)
    ) {
        let mut input = b"d".to_vec();
        for (k, v) in &entries {
            OwnedValue::Bytes(k.clone()).encode_into(&mut input);
            OwnedValue::Int(*v).encode_into(&mut input);
        }
        input.push(b'e');
        let value = decode(&input).unwrap();
        let dict = value.as_dict().unwrap();
        prop_assert_eq!(dict.len(), entries.len());
        let mut first = BTreeMap::new();
        for (k, v) in &entries {
            first.entry(k.clone()).or_insert(*v);
        }
        for (k, v) in &first {
            prop_assert_eq!(dict.get(k).and_then(Value::as_int), Some(*v));
        }
        prop_assert!(dict.get(b"zzz").is_none());
    }
}

#[cfg(feature = "serde")]
mod serde_props {
    use super::*;
    use webtorrent_bencode::{from_bytes, to_vec};

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct Record {
        id: u32,
        delta: i16,
        name: String,
        tags: Vec<String>,
        #[serde(with = "webtorrent_bencode::bytes")]
        blob: Vec<u8>,
        parent: Option<Box<Self>>,
        flag: bool,
        scores: BTreeMap<String, i64>,
    }

    fn record() -> impl Strategy<Value = Record> {
        let leaf = (
            any::<u32>(),
            any::<i16>(),
            ".{0,8}",
            prop::collection::vec(".{0,4}", 0..3),
            prop::collection::vec(any::<u8>(), 0..16),
            any::<bool>(),
            prop::collection::btree_map(".{0,4}", any::<i64>(), 0..3),
        )
            .prop_map(|(id, delta, name, tags, blob, flag, scores)| Record {
                id,
                delta,
                name,
                tags,
                blob,
                parent: None,
                flag,
                scores,
            });
        leaf.prop_recursive(3, 8, 1, |inner| {
            (inner.clone(), inner).prop_map(|(mut child, parent)| {
                child.parent = Some(Box::new(parent));
                child
            })
        })
    }

    proptest! {
        #[test]
        fn serde_round_trips_canonically(r in record()) {
            let encoded = to_vec(&r).unwrap();
            let value = decode_strict(&encoded).expect("serde output must be canonical");
            prop_assert_eq!(value.to_owned().encode(), encoded.clone());
            prop_assert_eq!(from_bytes::<Record>(&encoded).unwrap(), r.clone());
            // Same bytes through the OwnedValue path.
            let owned: OwnedValue = from_bytes(&encoded).unwrap();
            prop_assert_eq!(to_vec(&owned).unwrap(), encoded);
        }
    }
}
