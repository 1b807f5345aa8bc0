//! Decoder unit tests: BEP 3 examples, lenient inputs with raw spans, every
//! error kind, limits.

use webtorrent_bencode::{
    DEFAULT_MAX_DEPTH, DecodeError, DecodeErrorKind, DecodeOptions, OwnedValue, Value, ValueType,
    decode, decode_prefix, decode_strict,
};

fn kind_of(input: &[u8]) -> DecodeErrorKind {
    decode(input).expect_err("input must be rejected").kind
}

fn strict_err(input: &[u8]) -> DecodeError {
    decode_strict(input).expect_err("input must be rejected in strict mode")
}

#[test]
fn bep3_examples() {
    // Strings.
    let v = decode_strict(b"4:spam").unwrap();
    assert_eq!(v.as_bytes(), Some(&b"spam"[..]));
    assert_eq!(v.as_str(), Some("spam"));
    assert_eq!(v.raw(), b"4:spam");
    assert_eq!(v.value_type(), ValueType::Bytes);
    assert_eq!(decode_strict(b"0:").unwrap().as_bytes(), Some(&b""[..]));

    // Integers.
    assert_eq!(decode_strict(b"i3e").unwrap().as_int(), Some(3));
    assert_eq!(decode_strict(b"i-3e").unwrap().as_int(), Some(-3));
    assert_eq!(decode_strict(b"i0e").unwrap().as_int(), Some(0));

    // Lists.
    let v = decode_strict(b"l4:spam4:eggse").unwrap();
    let list = v.as_list().unwrap();
    assert_eq!(list.len(), 2);
    assert!(!list.is_empty());
    assert_eq!(list.get(0).and_then(Value::as_str), Some("spam"));
    assert_eq!(list.get(1).and_then(Value::as_str), Some("eggs"));
    assert!(list.get(2).is_none());
    let items: Vec<_> = list.iter().filter_map(Value::as_str).collect();
    assert_eq!(items, ["spam", "eggs"]);
    assert_eq!(list.raw(), b"l4:spam4:eggse");

    // Dictionaries.
    let v = decode_strict(b"d3:cow3:moo4:spam4:eggse").unwrap();
    let dict = v.as_dict().unwrap();
    assert_eq!(dict.len(), 2);
    assert_eq!(dict.get(b"cow").and_then(Value::as_str), Some("moo"));
    assert_eq!(dict.get(b"spam").and_then(Value::as_str), Some("eggs"));
    assert!(dict.get(b"missing").is_none());
    assert!(dict.is_sorted());
    let keys: Vec<_> = dict.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [&b"cow"[..], &b"spam"[..]]);

    let v = decode_strict(b"d4:spaml1:a1:bee").unwrap();
    let spam = v
        .as_dict()
        .and_then(|d| d.get(b"spam"))
        .and_then(Value::as_list)
        .unwrap();
    assert_eq!(spam.raw(), b"l1:a1:be");
}

#[test]
fn empty_containers() {
    let v = decode_strict(b"le").unwrap();
    assert!(v.as_list().unwrap().is_empty());
    let v = decode_strict(b"de").unwrap();
    assert!(v.as_dict().unwrap().is_empty());
    assert!(v.as_dict().unwrap().get(b"").is_none());
}

#[test]
fn accessors_return_none_for_other_types() {
    let v = decode(b"i1e").unwrap();
    assert!(v.as_bytes().is_none() && v.as_str().is_none());
    assert!(v.as_list().is_none() && v.as_dict().is_none());
    let v = decode(b"1:a").unwrap();
    assert!(v.as_int().is_none());
    let v = decode(b"2:\xff\xfe").unwrap();
    assert_eq!(v.as_bytes(), Some(&b"\xff\xfe"[..]));
    assert!(v.as_str().is_none(), "invalid UTF-8 is not a str");
}

#[test]
fn integer_extremes() {
    assert_eq!(
        decode_strict(b"i9223372036854775807e").unwrap().as_int(),
        Some(i64::MAX)
    );
    assert_eq!(
        decode_strict(b"i-9223372036854775808e").unwrap().as_int(),
        Some(i64::MIN)
    );
    assert_eq!(
        kind_of(b"i9223372036854775808e"),
        DecodeErrorKind::IntegerOverflow
    );
    assert_eq!(
        kind_of(b"i-9223372036854775809e"),
        DecodeErrorKind::IntegerOverflow
    );
    assert_eq!(
        kind_of(b"i99999999999999999999999999e"),
        DecodeErrorKind::IntegerOverflow
    );
    let e = decode(b"li1ei99999999999999999999e").unwrap_err();
    assert_eq!((e.offset, e.kind), (4, DecodeErrorKind::IntegerOverflow));
}

#[test]
fn lenient_accepts_non_canonical_and_keeps_raw_spans() {
    // Unsorted keys, leading zeros in an integer and a length, negative zero.
    let input = b"d4:infod4:name3:abc6:lengthi007ee3:negi-0e5:alpha03:xyze";
    let v = decode(input).unwrap();
    assert_eq!(v.raw(), input);
    let dict = v.as_dict().unwrap();
    assert!(!dict.is_sorted());
    let info = dict.get(b"info").unwrap();
    assert_eq!(info.raw(), b"d4:name3:abc6:lengthi007ee");
    let info = info.as_dict().unwrap();
    assert_eq!(info.get(b"length").unwrap().as_int(), Some(7));
    assert_eq!(info.get(b"length").unwrap().raw(), b"i007e");
    assert_eq!(info.get(b"name").unwrap().raw(), b"3:abc");
    assert_eq!(dict.get(b"neg").unwrap().as_int(), Some(0));
    assert_eq!(dict.get(b"neg").unwrap().raw(), b"i-0e");
    let alpha = dict.get(b"alpha").unwrap();
    assert_eq!(alpha.as_bytes(), Some(&b"xyz"[..]));
    assert_eq!(alpha.raw(), b"03:xyz");
    // Keys come back in input order.
    let keys: Vec<_> = dict.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [&b"info"[..], &b"neg"[..], &b"alpha"[..]]);

    // Every raw span re-decodes to the same value.
    for (_, value) in dict.iter() {
        assert_eq!(&decode(value.raw()).unwrap(), value);
    }

    // Canonical re-encoding differs from the input and is strict-valid.
    let canonical = v.to_owned().encode();
    assert_eq!(
        canonical,
        b"d5:alpha3:xyz4:infod6:lengthi7e4:name3:abce3:negi0ee"
    );
    assert!(decode_strict(&canonical).is_ok());
}

#[test]
fn duplicate_keys_first_wins() {
    let v = decode(b"d1:ai1e1:bi2e1:ai3ee").unwrap();
    let dict = v.as_dict().unwrap();
    assert_eq!(dict.len(), 3, "all entries are kept");
    assert!(!dict.is_sorted());
    assert_eq!(dict.get(b"a").and_then(Value::as_int), Some(1));
    assert_eq!(dict.get(b"b").and_then(Value::as_int), Some(2));
    let owned = v.to_owned();
    assert_eq!(
        owned.encode(),
        b"d1:ai1e1:bi2ee",
        "to_owned keeps the first too"
    );

    // Adjacent duplicates (sorted otherwise).
    let v = decode(b"d1:ai1e1:ai2ee").unwrap();
    assert_eq!(
        v.as_dict()
            .and_then(|d| d.get(b"a"))
            .and_then(Value::as_int),
        Some(1)
    );
}

#[test]
fn sorted_dict_lookup_is_exact() {
    let mut input = b"d".to_vec();
    let keys: Vec<String> = (0..200).map(|i| format!("k{i:04}")).collect();
    for (i, k) in keys.iter().enumerate() {
        input.extend_from_slice(format!("{}:{}i{}e", k.len(), k, i).as_bytes());
    }
    input.push(b'e');
    let v = decode_strict(&input).unwrap();
    let dict = v.as_dict().unwrap();
    assert!(dict.is_sorted());
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            dict.get(k.as_bytes()).and_then(Value::as_int),
            Some(i as i64)
        );
    }
    assert!(dict.get(b"k").is_none());
    assert!(dict.get(b"k9999").is_none());
    assert!(dict.get(b"").is_none());
}

#[test]
fn strict_rejects_each_non_canonical_form() {
    let cases: &[(&[u8], usize, DecodeErrorKind)] = &[
        (b"i03e", 0, DecodeErrorKind::NonCanonicalInteger),
        (b"i00e", 0, DecodeErrorKind::NonCanonicalInteger),
        (b"i-0e", 0, DecodeErrorKind::NonCanonicalInteger),
        (b"i-03e", 0, DecodeErrorKind::NonCanonicalInteger),
        (b"03:abc", 0, DecodeErrorKind::NonCanonicalLength),
        (b"00:", 0, DecodeErrorKind::NonCanonicalLength),
        (b"d1:bi1e1:ai2ee", 7, DecodeErrorKind::UnsortedKey),
        (b"d1:ai1e1:ai2ee", 7, DecodeErrorKind::DuplicateKey),
        (b"ld1:bi1e1:ai2eee", 8, DecodeErrorKind::UnsortedKey),
    ];
    for (input, offset, kind) in cases {
        let e = strict_err(input);
        assert_eq!(
            (e.offset, &e.kind),
            (*offset, kind),
            "input {:?}",
            input.escape_ascii()
        );
        assert!(
            decode(input).is_ok(),
            "lenient accepts {:?}",
            input.escape_ascii()
        );
    }
}

#[test]
fn every_error_kind_with_offset() {
    let cases: &[(&[u8], usize, DecodeErrorKind)] = &[
        (b"", 0, DecodeErrorKind::UnexpectedEof),
        (b"i12", 3, DecodeErrorKind::UnexpectedEof),
        (
            b"4:spa",
            0,
            DecodeErrorKind::LengthExceedsInput {
                length: 4,
                remaining: 3,
            },
        ),
        (b"12", 2, DecodeErrorKind::UnexpectedEof),
        (b"l", 1, DecodeErrorKind::UnexpectedEof),
        (b"d1:a", 4, DecodeErrorKind::UnexpectedEof),
        (b"x", 0, DecodeErrorKind::UnexpectedByte(b'x')),
        (b"e", 0, DecodeErrorKind::UnexpectedByte(b'e')),
        (b"l-1e", 1, DecodeErrorKind::UnexpectedByte(b'-')),
        (b"ie", 1, DecodeErrorKind::InvalidInteger),
        (b"i-e", 2, DecodeErrorKind::InvalidInteger),
        (b"i+1e", 1, DecodeErrorKind::InvalidInteger),
        (b"i1.5e", 2, DecodeErrorKind::InvalidInteger),
        (b"i--1e", 2, DecodeErrorKind::InvalidInteger),
        (b"i 1e", 1, DecodeErrorKind::InvalidInteger),
        (
            b"i9223372036854775808e",
            0,
            DecodeErrorKind::IntegerOverflow,
        ),
        (b"1x", 1, DecodeErrorKind::InvalidLength),
        (b"-1:a", 0, DecodeErrorKind::UnexpectedByte(b'-')),
        (b"di1ei2ee", 1, DecodeErrorKind::DictKeyNotBytes),
        (b"dlei1ee", 1, DecodeErrorKind::DictKeyNotBytes),
        (b"d1:ae", 4, DecodeErrorKind::DictMissingValue),
        (b"i1ei2e", 3, DecodeErrorKind::TrailingBytes),
        (b"lee", 2, DecodeErrorKind::TrailingBytes),
        (b"0:\n", 2, DecodeErrorKind::TrailingBytes),
    ];
    for (input, offset, kind) in cases {
        let e = decode(input).expect_err("must be rejected");
        assert_eq!(
            (e.offset(), e.kind()),
            (*offset, kind),
            "input {:?}",
            input.escape_ascii()
        );
    }
    // Display carries both.
    let e = decode(b"i1ex").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid bencode at byte 3: trailing bytes after the value"
    );
    let e = decode(b"x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid bencode at byte 0: unexpected byte 'x'"
    );
}

#[test]
fn depth_limit() {
    // Exactly at the limit is fine.
    let ok = [vec![b'l'; DEFAULT_MAX_DEPTH], vec![b'e'; DEFAULT_MAX_DEPTH]].concat();
    assert!(decode(&ok).is_ok());
    let too_deep = [
        vec![b'l'; DEFAULT_MAX_DEPTH + 1],
        vec![b'e'; DEFAULT_MAX_DEPTH + 1],
    ]
    .concat();
    let e = decode(&too_deep).unwrap_err();
    assert_eq!(
        e.kind,
        DecodeErrorKind::DepthLimitExceeded {
            max_depth: DEFAULT_MAX_DEPTH
        }
    );
    assert_eq!(e.offset, DEFAULT_MAX_DEPTH);
    // Dictionaries count too.
    let dicts = [b"d1:a".repeat(3), b"le".to_vec(), b"e".repeat(3)].concat();
    assert!(DecodeOptions::new().max_depth(4).decode(&dicts).is_ok());
    let e = DecodeOptions::new()
        .max_depth(3)
        .decode(&dicts)
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::DepthLimitExceeded { max_depth: 3 });
    // Depth 0 allows scalars only.
    let zero = DecodeOptions::new().max_depth(0);
    assert!(zero.decode(b"i1e").is_ok());
    assert!(zero.decode(b"le").is_err());
}

#[test]
fn depth_bomb_errors_quickly() {
    let bomb = vec![b'l'; 100_000];
    let start = std::time::Instant::now();
    let e = decode(&bomb).unwrap_err();
    assert_eq!(
        e.kind,
        DecodeErrorKind::DepthLimitExceeded {
            max_depth: DEFAULT_MAX_DEPTH
        }
    );
    // A huge configured limit must not overflow the stack either: decoding is
    // iterative, and the input ends before anything deep is built.
    let e = DecodeOptions::new()
        .max_depth(usize::MAX)
        .decode(&bomb)
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnexpectedEof);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn huge_length_prefix_errors_without_allocating() {
    let e = decode(b"9999999999999:x").unwrap_err();
    assert_eq!(e.offset, 0);
    assert_eq!(
        e.kind,
        DecodeErrorKind::LengthExceedsInput {
            length: 9_999_999_999_999,
            remaining: 1
        }
    );
    // Lengths past u64 saturate.
    let e = decode(b"99999999999999999999999999:x").unwrap_err();
    assert_eq!(
        e.kind,
        DecodeErrorKind::LengthExceedsInput {
            length: u64::MAX,
            remaining: 1
        }
    );
    // Inside a container, the offset is the length's.
    let e = decode(b"l1:a4294967296:e").unwrap_err();
    assert_eq!(e.offset, 4);
}

#[test]
fn item_limit() {
    let opts = DecodeOptions::new().max_items(Some(3));
    assert!(opts.decode(b"li1ei2ee").is_ok());
    let e = opts.decode(b"li1ei2ei3ee").unwrap_err();
    assert_eq!(
        (e.offset, e.kind),
        (7, DecodeErrorKind::ItemLimitExceeded { max_items: 3 })
    );
    // Keys are not counted.
    assert!(opts.decode(b"d1:ai1e1:bi2ee").is_ok());
    assert_eq!(DecodeOptions::default(), DecodeOptions::new());
    assert_eq!(DecodeOptions::new().max_items, None);
    assert!(!DecodeOptions::new().strict && DecodeOptions::new().strict(true).strict);
}

#[test]
fn prefix_decoding() {
    let msg = b"d8:msg_typei1e5:piecei0e10:total_sizei3eeabc";
    let (v, used) = decode_prefix(msg).unwrap();
    assert_eq!(used, msg.len() - 3);
    assert_eq!(&msg[used..], b"abc");
    assert_eq!(v.raw(), &msg[..used]);
    assert_eq!(
        decode(msg).unwrap_err().kind,
        DecodeErrorKind::TrailingBytes
    );
    let (_, used) = DecodeOptions::new()
        .strict(true)
        .decode_prefix(b"i1eXYZ")
        .unwrap();
    assert_eq!(used, 3);
    assert_eq!(
        decode_prefix(b"l").unwrap_err().kind,
        DecodeErrorKind::UnexpectedEof
    );
}

#[test]
fn to_owned_and_debug() {
    let v = decode(b"d1:bl1:xi-5ee1:a2:\x00\xffe").unwrap();
    let expected: OwnedValue = [
        ("a", OwnedValue::from(vec![0u8, 255])),
        (
            "b",
            OwnedValue::List(vec![OwnedValue::from("x"), OwnedValue::from(-5)]),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(v.to_owned(), expected);
    assert_eq!(format!("{v:?}"), r#"{b"b": [b"x", -5], b"a": b"\x00\xff"}"#);
    // Clone and equality are structural over the same input.
    assert_eq!(v.clone(), v);
    assert_ne!(
        decode(b"i1e").unwrap(),
        decode(b"i01e").unwrap(),
        "raw spans differ"
    );
}

#[test]
fn many_files_parse() {
    // A torrent-like file list with 100k entries.
    let mut input = b"d5:filesl".to_vec();
    for i in 0..100_000u32 {
        let name = format!("file{i}.bin");
        input.extend_from_slice(
            format!("d6:lengthi{}e4:pathl3:dir{}:{}ee", i, name.len(), name).as_bytes(),
        );
    }
    input.extend_from_slice(b"ee");
    let v = decode_strict(&input).unwrap();
    let files = v
        .as_dict()
        .and_then(|d| d.get(b"files"))
        .and_then(Value::as_list)
        .unwrap();
    assert_eq!(files.len(), 100_000);
    let last = files.get(99_999).and_then(Value::as_dict).unwrap();
    assert_eq!(last.get(b"length").and_then(Value::as_int), Some(99_999));
    assert_eq!(v.to_owned().encode(), input);
}

#[test]
fn overflowing_length_prefix_is_not_reported_as_a_number_the_input_never_said() {
    let err = webtorrent_bencode::decode(b"99999999999999999999:x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid bencode at byte 0: byte-string length of at least 2^64 - 1 exceeds the 1 remaining input bytes"
    );
}
