//! serde layer: round trips, borrowing, canonical output, errors.
#![cfg(feature = "serde")]

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use webtorrent_bencode::{
    DecodeErrorKind, DecodeOptions, Error, OwnedValue, RawBencode, ValueType, bytes, decode,
    decode_strict, from_bytes, from_bytes_with, from_value, to_vec,
};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Torrent<'a> {
    // Field order deliberately not sorted.
    info: Info<'a>,
    announce: String,
    #[serde(
        rename = "announce-list",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    announce_list: Option<Vec<Vec<String>>>,
    #[serde(borrow)]
    comment: Option<&'a str>,
    #[serde(rename = "creation date")]
    creation_date: Option<i64>,
    #[serde(rename = "url-list", default, skip_serializing_if = "Vec::is_empty")]
    url_list: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Info<'a> {
    name: &'a str,
    #[serde(rename = "piece length")]
    piece_length: u32,
    #[serde(borrow, serialize_with = "bytes::serialize")]
    pieces: &'a [u8],
    length: Option<u64>,
    files: Option<Vec<File>>,
    private: Option<bool>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct File {
    path: Vec<String>,
    length: u64,
}

fn sample() -> Torrent<'static> {
    Torrent {
        info: Info {
            name: "dir",
            piece_length: 16384,
            pieces:
                b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13",
            length: None,
            files: Some(vec![
                File {
                    path: vec!["a.txt".into()],
                    length: 3,
                },
                File {
                    path: vec!["sub".into(), "b.bin".into()],
                    length: 70000,
                },
            ]),
            private: Some(true),
        },
        announce: "udp://tracker.example:6969".into(),
        announce_list: Some(vec![
            vec!["udp://tracker.example:6969".into()],
            vec!["wss://t.example".into()],
        ]),
        comment: None,
        creation_date: Some(1_700_000_000),
        url_list: vec![],
    }
}

#[test]
fn torrent_round_trip_is_canonical() {
    let torrent = sample();
    let encoded = to_vec(&torrent).unwrap();
    let expected: &[u8] = b"d8:announce26:udp://tracker.example:6969\
        13:announce-listll26:udp://tracker.example:6969el15:wss://t.exampleee\
        13:creation datei1700000000e\
        4:infod5:filesld6:lengthi3e4:pathl5:a.txteed6:lengthi70000e4:pathl3:sub5:b.bineee\
        4:name3:dir12:piece lengthi16384e\
        6:pieces20:\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\
        7:privatei1eee";
    assert_eq!(
        encoded.escape_ascii().to_string(),
        expected.escape_ascii().to_string()
    );
    assert!(decode_strict(&encoded).is_ok());
    let back: Torrent<'_> = from_bytes(&encoded).unwrap();
    assert_eq!(back, torrent);
    // Borrowed fields point into the input.
    let range = encoded.as_ptr_range();
    assert!(range.contains(&back.info.name.as_ptr()));
    assert!(range.contains(&back.info.pieces.as_ptr()));
}

#[test]
fn lenient_input_and_missing_options() {
    // Unsorted keys, leading zeros, unknown keys, absent optional keys.
    let input =
        b"d4:infod6:lengthi0042e4:name1:x12:piece lengthi16e6:pieces0:7:unknownli1eee8:announce0:e";
    let t: Torrent<'_> = from_bytes(input).unwrap();
    assert_eq!(t.info.length, Some(42));
    assert_eq!(t.info.files, None);
    assert_eq!(t.info.private, None);
    assert_eq!(t.comment, None);
    assert_eq!(t.announce_list, None);
    assert!(t.url_list.is_empty());
    // Strict options refuse the same input.
    let e = from_bytes_with::<Torrent<'_>>(input, &DecodeOptions::new().strict(true)).unwrap_err();
    assert!(matches!(e, Error::Decode(ref d) if d.kind == DecodeErrorKind::NonCanonicalInteger));
}

#[test]
fn duplicate_keys_first_wins_in_serde_too() {
    #[derive(Deserialize)]
    struct S {
        a: i64,
        b: i64,
    }
    let s: S = from_bytes(b"d1:bi2e1:ai1e1:ai3ee").unwrap();
    assert_eq!((s.a, s.b), (1, 2));
    let m: BTreeMap<String, i64> = from_bytes(b"d1:bi2e1:ai1e1:bi9ee").unwrap();
    assert_eq!(m, BTreeMap::from([("a".into(), 1), ("b".into(), 2)]));
}

#[test]
fn integers_of_every_width_are_range_checked() {
    assert_eq!(from_bytes::<u8>(b"i255e").unwrap(), 255);
    assert_eq!(from_bytes::<i8>(b"i-128e").unwrap(), -128);
    assert_eq!(from_bytes::<u16>(b"i65535e").unwrap(), 65535);
    assert_eq!(from_bytes::<i16>(b"i-32768e").unwrap(), -32768);
    assert_eq!(from_bytes::<u32>(b"i4294967295e").unwrap(), u32::MAX);
    assert_eq!(from_bytes::<i32>(b"i-2147483648e").unwrap(), i32::MIN);
    assert_eq!(
        from_bytes::<u64>(b"i9223372036854775807e").unwrap(),
        i64::MAX as u64
    );
    assert_eq!(
        from_bytes::<i64>(b"i-9223372036854775808e").unwrap(),
        i64::MIN
    );
    assert_eq!(from_bytes::<i128>(b"i-5e").unwrap(), -5);
    assert_eq!(from_bytes::<u128>(b"i5e").unwrap(), 5);
    assert_eq!(from_bytes::<usize>(b"i7e").unwrap(), 7);

    let e = from_bytes::<u8>(b"i256e").unwrap_err();
    assert_eq!(
        e,
        Error::IntegerOutOfRange {
            value: 256,
            target: "u8",
            offset: Some(0)
        }
    );
    let e = from_bytes::<Vec<u64>>(b"li1ei-1ee").unwrap_err();
    assert_eq!(e.to_string(), "integer -1 out of range for u64 at byte 4");
    assert!(from_bytes::<i8>(b"i128e").is_err());
    assert!(from_bytes::<u16>(b"i65536e").is_err());
    assert!(from_bytes::<i32>(b"i2147483648e").is_err());
    assert!(from_bytes::<u128>(b"i-1e").is_err());

    for v in [0u64, 1, 1 << 40, i64::MAX as u64] {
        assert_eq!(from_bytes::<u64>(&to_vec(&v).unwrap()).unwrap(), v);
    }
    let e = to_vec(&u64::MAX).unwrap_err();
    assert!(matches!(e, Error::IntegerOutOfRange { offset: None, .. }));
    assert!(to_vec(&i128::MIN).is_err());
    assert!(to_vec(&u128::MAX).is_err());
    assert_eq!(to_vec(&-7i128).unwrap(), b"i-7e");
}

#[test]
fn bool_is_zero_or_one() {
    assert_eq!(to_vec(&true).unwrap(), b"i1e");
    assert_eq!(to_vec(&false).unwrap(), b"i0e");
    assert!(from_bytes::<bool>(b"i1e").unwrap());
    assert!(!from_bytes::<bool>(b"i0e").unwrap());
    let e = from_bytes::<bool>(b"i2e").unwrap_err();
    assert!(matches!(
        e,
        Error::IntegerOutOfRange {
            value: 2,
            target: "bool",
            ..
        }
    ));
    assert!(from_bytes::<bool>(b"4:true").is_err());
}

#[test]
fn strings_bytes_and_chars() {
    assert_eq!(from_bytes::<&str>(b"5:hello").unwrap(), "hello");
    assert_eq!(from_bytes::<String>(b"5:hello").unwrap(), "hello");
    assert_eq!(from_bytes::<&[u8]>(b"2:\xff\x00").unwrap(), b"\xff\x00");
    assert_eq!(from_bytes::<char>(b"2:\xc3\xa9").unwrap(), 'é');
    assert!(from_bytes::<char>(b"2:ab").is_err());
    assert_eq!(to_vec(&'é').unwrap(), b"2:\xc3\xa9");
    assert_eq!(to_vec("hi").unwrap(), b"2:hi");
    let e = from_bytes::<Vec<String>>(b"l2:\xff\xffe").unwrap_err();
    assert_eq!(e, Error::InvalidUtf8 { offset: Some(1) });
    // `bytes` helpers.
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct B {
        #[serde(with = "bytes")]
        hash: [u8; 3],
        #[serde(with = "bytes")]
        boxed: Box<[u8]>,
        #[serde(
            default,
            with = "bytes::option",
            skip_serializing_if = "Option::is_none"
        )]
        maybe: Option<Vec<u8>>,
    }
    let b = B {
        hash: *b"abc",
        boxed: Box::from(&b"\x01"[..]),
        maybe: Some(vec![2]),
    };
    let enc = to_vec(&b).unwrap();
    assert_eq!(enc, b"d5:boxed1:\x014:hash3:abc5:maybe1:\x02e");
    assert_eq!(from_bytes::<B>(&enc).unwrap(), b);
    let b2: B = from_bytes(b"d5:boxed0:4:hash3:xyze").unwrap();
    assert_eq!(b2.maybe, None);
    assert!(
        from_bytes::<B>(b"d5:boxed0:4:hash2:xye").is_err(),
        "array length is checked"
    );
}

#[test]
fn collections_and_maps() {
    let v: Vec<u32> = from_bytes(b"li1ei2ei3ee").unwrap();
    assert_eq!(v, [1, 2, 3]);
    assert_eq!(to_vec(&v).unwrap(), b"li1ei2ei3ee");
    let t: (i64, String, Vec<i64>) = from_bytes(b"li-1e1:xlee").unwrap();
    assert_eq!(t, (-1, "x".into(), vec![]));
    let e = from_bytes::<(i64, i64)>(b"li1ei2ei3ee").unwrap_err();
    assert_eq!(
        e,
        Error::TrailingItems {
            extra: 1,
            offset: Some(0)
        }
    );
    assert!(from_bytes::<(i64, i64, i64)>(b"li1ei2ee").is_err());

    // Maps with text keys, written sorted whatever the map's order.
    let mut m = HashMap::new();
    m.insert("zeta".to_string(), 1);
    m.insert("alpha".to_string(), 2);
    m.insert("mid".to_string(), 3);
    let enc = to_vec(&m).unwrap();
    assert_eq!(enc, b"d5:alphai2e3:midi3e4:zetai1ee");
    assert_eq!(from_bytes::<HashMap<String, i64>>(&enc).unwrap(), m);
    // Borrowed byte keys.
    let m: BTreeMap<&[u8], &[u8]> = from_bytes(b"d2:\xff\x001:ae").unwrap();
    assert_eq!(m.get(&b"\xff\x00"[..]), Some(&&b"a"[..]));

    // Byte-string keys through a newtype (e.g. scrape responses keyed by
    // info-hash).
    #[derive(Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Hash(#[serde(with = "bytes")] [u8; 2]);
    let m = BTreeMap::from([(Hash(*b"\x02\x01"), 5u32), (Hash(*b"\x01\xff"), 6)]);
    let enc = to_vec(&m).unwrap();
    assert_eq!(enc, b"d2:\x01\xffi6e2:\x02\x01i5ee");
    assert_eq!(from_bytes::<BTreeMap<Hash, u32>>(&enc).unwrap(), m);

    // Keys must be strings.
    assert_eq!(
        to_vec(&BTreeMap::from([(1, 2)])).unwrap_err(),
        Error::KeyNotBytes
    );
    assert_eq!(
        to_vec(&BTreeMap::from([(vec![1u8], 2)])).unwrap_err(),
        Error::KeyNotBytes
    );
}

#[test]
fn enums() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Event {
        Started,
        Stopped,
    }
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    enum Msg {
        Unit,
        Newtype(i64),
        Tuple(i64, String),
        Struct { b: i64, a: i64 },
    }
    assert_eq!(to_vec(&Event::Started).unwrap(), b"7:started");
    assert_eq!(from_bytes::<Event>(b"7:stopped").unwrap(), Event::Stopped);
    assert!(from_bytes::<Event>(b"5:other").is_err());
    let cases: [(Msg, &[u8]); 4] = [
        (Msg::Unit, b"4:Unit"),
        (Msg::Newtype(5), b"d7:Newtypei5ee"),
        (Msg::Tuple(1, "x".into()), b"d5:Tupleli1e1:xee"),
        (Msg::Struct { b: 2, a: 1 }, b"d6:Structd1:ai1e1:bi2eee"),
    ];
    for (msg, enc) in cases {
        assert_eq!(to_vec(&msg).unwrap(), enc);
        assert_eq!(from_bytes::<Msg>(enc).unwrap(), msg);
    }
    assert!(
        from_bytes::<Msg>(b"d4:Unit0:e").is_err(),
        "unit variant with data"
    );
    assert!(
        from_bytes::<Msg>(b"7:Newtype").is_err(),
        "data variant without data"
    );
    assert!(
        from_bytes::<Msg>(b"d7:Newtypei5e4:Unit0:e").is_err(),
        "two entries"
    );
    assert!(from_bytes::<Msg>(b"i1e").is_err());
}

#[test]
fn none_fields_are_skipped_and_unrepresentable_values_error() {
    #[derive(Serialize)]
    struct S {
        b: Option<i64>,
        a: Option<Option<i64>>,
        c: Option<i64>,
    }
    assert_eq!(
        to_vec(&S {
            b: None,
            a: Some(None),
            c: Some(1)
        })
        .unwrap(),
        b"d1:ci1ee"
    );
    let m = BTreeMap::from([("x", None), ("y", Some(2))]);
    assert_eq!(to_vec(&m).unwrap(), b"d1:yi2ee");
    assert_eq!(
        to_vec(&vec![Some(1), None]).unwrap_err(),
        Error::Unsupported {
            what: "None outside a dictionary value"
        }
    );
    assert!(to_vec(&None::<i64>).is_err());
    assert!(to_vec(&1.5f64).is_err());
    assert!(to_vec(&1.5f32).is_err());
    assert!(to_vec(&()).is_err());
    assert!(from_bytes::<f64>(b"i1e").is_err());
    assert!(from_bytes::<()>(b"i1e").is_err());

    // A struct that serializes two entries with one key.
    #[derive(Serialize)]
    struct Clash {
        a: i64,
        #[serde(flatten)]
        rest: BTreeMap<String, i64>,
    }
    let e = to_vec(&Clash {
        a: 1,
        rest: BTreeMap::from([("a".into(), 2)]),
    })
    .unwrap_err();
    assert_eq!(e, Error::DuplicateKey { key: b"a".to_vec() });
    assert_eq!(e.to_string(), "duplicate dictionary key b\"a\"");
}

#[test]
fn flatten_captures_unknown_keys() {
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Known {
        name: String,
        #[serde(flatten)]
        rest: BTreeMap<String, OwnedValue>,
    }
    let input = b"d5:extrali1ee4:name1:n1:zd1:ai1eee";
    let k: Known = from_bytes(input).unwrap();
    assert_eq!(k.name, "n");
    assert_eq!(k.rest.len(), 2);
    assert_eq!(k.rest["extra"], OwnedValue::List(vec![OwnedValue::Int(1)]));
    assert_eq!(to_vec(&k).unwrap(), input);
}

#[test]
fn errors_carry_offsets() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct S {
        a: i64,
        b: String,
    }
    let e = from_bytes::<S>(b"d1:ai1ee").unwrap_err();
    assert_eq!(
        e,
        Error::MissingField {
            field: "b",
            offset: Some(0)
        }
    );
    assert_eq!(e.to_string(), "missing field `b` at byte 0");
    let e = from_bytes::<Vec<S>>(b"ld1:a1:x1:b0:ee").unwrap_err();
    assert_eq!(
        e,
        Error::InvalidType {
            expected: "an integer",
            found: ValueType::Bytes,
            offset: Some(5)
        }
    );
    assert_eq!(e.offset(), Some(5));
    let e = from_bytes::<S>(b"i1e").unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidType {
            found: ValueType::Int,
            offset: Some(0),
            ..
        }
    ));
    let e = from_bytes::<S>(b"d1:ai1e").unwrap_err();
    assert!(matches!(e, Error::Decode(ref d) if d.kind == DecodeErrorKind::UnexpectedEof));
    assert_eq!(e.offset(), Some(7));
    // Custom errors from visitors get the innermost offset.
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    enum E {
        A,
    }
    let e = from_bytes::<Vec<E>>(b"l1:A1:Be").unwrap_err();
    assert!(
        matches!(
            e,
            Error::Custom {
                offset: Some(4),
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn raw_bencode_keeps_original_bytes() {
    #[derive(Serialize, Deserialize)]
    struct Outer<'a> {
        #[serde(borrow)]
        info: RawBencode<'a>,
        z: i64,
    }
    let input = b"d1:zi1e4:infod4:name1:a6:lengthi01eee";
    let o: Outer<'_> = from_bytes(input).unwrap();
    assert_eq!(o.info.as_bytes(), b"d4:name1:a6:lengthi01ee");
    assert_eq!(o.info.decode().unwrap().as_dict().map(|d| d.len()), Some(2));
    // Serialized verbatim (the rest is canonical).
    assert_eq!(
        to_vec(&o).unwrap(),
        b"d4:infod4:name1:a6:lengthi01ee1:zi1ee"
    );
    assert_eq!(
        format!("{:?}", o.info),
        r#"RawBencode(b"d4:name1:a6:lengthi01ee")"#
    );
    assert!(RawBencode::new(b"d1:a").is_err());
    assert!(RawBencode::new(b"i1ei2e").is_err());
    assert_eq!(
        OwnedValue::from(RawBencode::new(b"i1e").unwrap()),
        OwnedValue::Raw(b"i1e".to_vec())
    );
}

#[test]
fn owned_and_borrowed_values_through_serde() {
    let input = b"d1:bl1:xi-5ee1:ad1:ki1eee";
    let owned: OwnedValue = from_bytes(input).unwrap();
    assert_eq!(owned, decode(input).unwrap().to_owned());
    assert_eq!(to_vec(&owned).unwrap(), owned.encode());
    assert_eq!(to_vec(&decode(input).unwrap()).unwrap(), owned.encode());
    let raw = OwnedValue::List(vec![OwnedValue::Raw(b"d1:bi1e1:ai2ee".to_vec())]);
    assert_eq!(to_vec(&raw).unwrap(), b"ld1:bi1e1:ai2eee");
    assert_eq!(to_vec(&raw).unwrap(), raw.encode());
    // Duplicate keys: first wins.
    let owned: OwnedValue = from_bytes(b"d1:ai1e1:ai2ee").unwrap();
    assert_eq!(owned.encode(), b"d1:ai1ee");
    // from_value reports offsets relative to the value.
    let v = decode(b"li1e1:xe").unwrap();
    let second = v.as_list().and_then(|l| l.get(1)).unwrap();
    let e = from_value::<i64>(second).unwrap_err();
    assert_eq!(e.offset(), Some(0));
    assert_eq!(from_value::<&str>(second).unwrap(), "x");
}

#[test]
fn maximum_default_depth_is_safe_everywhere() {
    // Tests run on 2 MiB threads: every recursive walk of a tree at the
    // default depth limit must fit.
    let depth = webtorrent_bencode::DEFAULT_MAX_DEPTH;
    let input = [
        b"d1:a".repeat(depth / 2),
        b"l".repeat(depth / 2),
        b"i1e".to_vec(),
        b"e".repeat(depth),
    ]
    .concat();
    let value = decode_strict(&input).unwrap();
    let owned: OwnedValue = from_bytes(&input).unwrap();
    assert_eq!(owned, value.to_owned());
    assert_eq!(to_vec(&owned).unwrap(), input);
    assert_eq!(to_vec(&value).unwrap(), input);
    assert_eq!(owned.encode(), input);
    assert!(format!("{value:?}").len() > depth);
    assert_eq!(value.clone(), value);
    let too_deep = [b"l".to_vec(), input.clone(), b"e".to_vec()].concat();
    assert!(matches!(
        from_bytes::<OwnedValue>(&too_deep),
        Err(Error::Decode(ref e)) if e.kind == DecodeErrorKind::DepthLimitExceeded { max_depth: 256 }
    ));
}
