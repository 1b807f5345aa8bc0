//! Property tests of the BT-SEARCH codec.

use proptest::prelude::*;
use webtorrent_lsd::{
    Announce, DecodeError, EncodeError, MAX_DATAGRAM_LEN, MAX_ENCODED_LEN, MAX_INFO_HASHES,
    MAX_VALUE_LEN,
};
use webtorrent_types::InfoHashV1;

/// Visible ASCII, as `Host` and `cookie` allow.
fn value() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[!-~]{{1,{MAX_VALUE_LEN}}}"))
        .expect("the pattern is valid")
}

fn hashes() -> impl Strategy<Value = Vec<InfoHashV1>> {
    prop::collection::vec(any::<[u8; 20]>().prop_map(InfoHashV1), 1..=MAX_INFO_HASHES)
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity(
        host in prop::option::of(value()),
        port in 1u16..,
        info_hashes in hashes(),
        cookie in prop::option::of(value()),
    ) {
        let announce = Announce {
            host: host.as_deref(),
            port,
            info_hashes,
            cookie: cookie.as_deref(),
        };
        match announce.to_vec() {
            Ok(bytes) => {
                prop_assert_eq!(bytes.len(), announce.encoded_len());
                prop_assert!(bytes.len() <= MAX_ENCODED_LEN);
                prop_assert_eq!(Announce::decode(&bytes)?, announce);
            }
            Err(EncodeError::TooLong { len, max }) => {
                prop_assert_eq!(len, announce.encoded_len());
                prop_assert!(len > max);
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    /// Any casing of names, method and hex, any blanks, bare `\n` line ends and a
    /// missing final empty line decode to the same announce.
    #[test]
    fn lenient_spellings_decode_alike(
        port in 1u16..,
        info_hashes in prop::collection::vec(any::<[u8; 20]>().prop_map(InfoHashV1), 1..=4),
        cookie in prop::option::of("[0-9a-f]{1,8}"),
        upper in any::<[bool; 5]>(),
        blanks in prop::collection::vec(prop::sample::select(vec!["", " ", "  ", "\t", " \t "]), 8),
        crlf in any::<bool>(),
        closing in 0usize..3,
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let case = |s: &str, up: bool| if up { s.to_ascii_uppercase() } else { s.to_ascii_lowercase() };
        let mut text = format!(
            "{}{}*{}HTTP/1.1{eol}",
            case("bt-search", upper[0]), blanks[0].to_owned() + " ", " ".to_owned() + blanks[1]
        );
        text += &format!("{}{}:{}{port}{}{eol}", case("port", upper[1]), blanks[2], blanks[3], blanks[4]);
        for h in &info_hashes {
            text += &format!("{}:{}{}{eol}", case("infohash", upper[2]), blanks[5], case(&h.to_hex(), upper[3]));
        }
        if let Some(c) = &cookie {
            text += &format!("{}:{}{c}{}{eol}", case("cookie", upper[4]), blanks[6], blanks[7]);
        }
        for _ in 0..closing {
            text += eol;
        }
        let decoded = Announce::decode(text.as_bytes())?;
        prop_assert_eq!(decoded, Announce { host: None, port, info_hashes, cookie: cookie.as_deref() });
    }

    /// Arbitrary bytes never panic; whatever decodes encodes to an equal announce.
    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        let Ok(announce) = Announce::decode(&data) else { return Ok(()) };
        prop_assert!(data.len() <= MAX_DATAGRAM_LEN);
        if let Ok(bytes) = announce.to_vec() {
            prop_assert_eq!(Announce::decode(&bytes)?, announce);
        }
    }

    /// Mutating one byte of a valid announce never panics and, if it still decodes,
    /// still gives a well-formed announce.
    #[test]
    fn mutated_announces_never_panic(
        info_hashes in hashes(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let announce = Announce { host: Some("239.192.152.143:6771"), port: 6881, info_hashes, cookie: Some("1f") };
        let mut bytes = announce.to_vec().expect("24 hashes fit");
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(a) = Announce::decode(&bytes) {
            prop_assert!(a.port != 0);
            prop_assert!(!a.info_hashes.is_empty() && a.info_hashes.len() <= MAX_INFO_HASHES);
        }
    }
}

#[test]
fn decode_errors_are_displayable() {
    let e = Announce::decode(b"GET / HTTP/1.1\r\n\r\n").unwrap_err();
    assert_eq!(e, DecodeError::NotBtSearch);
    assert_eq!(e.to_string(), "the request's method is not BT-SEARCH");
}
