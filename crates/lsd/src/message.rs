//! The BT-SEARCH announce (BEP 14): HTTP-over-UDP text, decoded and encoded.

use bytes::BufMut;
use webtorrent_types::InfoHashV1;

use crate::error::{DecodeError, EncodeError, Header};

/// The largest datagram [`Announce::decode`] reads. BEP 14 asks senders to stay below
/// 1400 bytes; a little slack is left for senders that do not.
pub const MAX_DATAGRAM_LEN: usize = 1500;

/// The datagram size [`Announce::encode`] stays within (BEP 14: "should not exceed
/// 1400 bytes to avoid MTU/fragmentation problems").
pub const MAX_ENCODED_LEN: usize = 1400;

/// The most `Infohash` headers one announce may carry, in either direction.
///
/// A header line is 52 bytes: 24 of them, with the longest `Host`, `Port` and `cookie`,
/// stay within [`MAX_ENCODED_LEN`].
pub const MAX_INFO_HASHES: usize = 24;

/// The most header lines [`Announce::decode`] reads (known and unknown ones together).
pub const MAX_HEADERS: usize = 40;

/// The longest `Host` or `cookie` value, in bytes, in either direction.
pub const MAX_VALUE_LEN: usize = 64;

/// One BT-SEARCH announce: "I listen on `port` and take part in these swarms".
///
/// Decoding borrows `host` and `cookie` from the datagram.
///
/// ```text
/// BT-SEARCH * HTTP/1.1\r\n
/// Host: 239.192.152.143:6771\r\n
/// Port: 6881\r\n
/// Infohash: <40 hex>\r\n        (one or more)
/// cookie: <opaque>\r\n          (optional)
/// \r\n
/// \r\n
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce<'a> {
    /// The `Host` header: the multicast group the announce was sent to, such as
    /// `239.192.152.143:6771` or `[ff15::efc0:988f]:6771`. Optional when decoding (it
    /// carries no information a receiver needs), written when present.
    pub host: Option<&'a str>,
    /// The port the sender accepts BitTorrent connections on (never 0).
    pub port: u16,
    /// The swarms announced, in message order, at least one, at most
    /// [`MAX_INFO_HASHES`]. A v2 torrent is announced by its truncated info-hash.
    pub info_hashes: Vec<InfoHashV1>,
    /// The sender's `cookie`, letting it recognise its own announces looped back to it.
    pub cookie: Option<&'a str>,
}

impl<'a> Announce<'a> {
    /// Decodes one datagram.
    ///
    /// Lenient where senders differ: the method, header names and `HTTP/1.x` version
    /// are matched in any case, runs of spaces and tabs are allowed around tokens and
    /// values, bare `\n` line ends are accepted, and the closing empty lines may be
    /// missing. Unknown headers are skipped (BEP 14 asks for forwards compatibility).
    ///
    /// Strict where a mistake would mislead: the datagram is at most
    /// [`MAX_DATAGRAM_LEN`] bytes and [`MAX_HEADERS`] header lines, there is exactly one
    /// `Port` (1 to 65535), at least one and at most [`MAX_INFO_HASHES`] `Infohash`
    /// headers of exactly 40 hex digits, at most one `Host` and one `cookie`, each
    /// printable ASCII of at most [`MAX_VALUE_LEN`] bytes, and nothing but line ends
    /// and blanks after the empty line that ends the headers.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the first problem found. LSD never replies, so every
    /// error just means "drop the datagram".
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        if datagram.len() > MAX_DATAGRAM_LEN {
            return Err(DecodeError::TooLong {
                len: datagram.len(),
                max: MAX_DATAGRAM_LEN,
            });
        }
        let mut lines = Lines {
            rest: datagram,
            offset: 0,
        };
        let Some((_, request_line)) = lines.next_line() else {
            return Err(DecodeError::Empty);
        };
        check_request_line(request_line)?;

        let mut host = None;
        let mut port = None;
        let mut cookie = None;
        let mut info_hashes = Vec::new();
        let mut headers = 0usize;
        let mut line_number = 1usize;
        let mut ended = false;
        while let Some((offset, line)) = lines.next_line() {
            line_number += 1;
            if line.is_empty() {
                ended = true;
                break;
            }
            headers += 1;
            if headers > MAX_HEADERS {
                return Err(DecodeError::TooManyHeaders { max: MAX_HEADERS });
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(DecodeError::MalformedHeader {
                    line: line_number,
                    offset,
                });
            };
            let name = trim_blanks(&line[..colon]);
            let value = trim_blanks(&line[colon + 1..]);
            if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
                return Err(DecodeError::MalformedHeader {
                    line: line_number,
                    offset,
                });
            }
            if name.eq_ignore_ascii_case(b"infohash") {
                if info_hashes.len() == MAX_INFO_HASHES {
                    return Err(DecodeError::TooManyInfoHashes {
                        max: MAX_INFO_HASHES,
                    });
                }
                info_hashes.push(parse_info_hash(value).ok_or(DecodeError::InvalidValue {
                    header: Header::Infohash,
                    line: line_number,
                })?);
            } else if name.eq_ignore_ascii_case(b"port") {
                set_once(&mut port, Header::Port, line_number, parse_port(value))?;
            } else if name.eq_ignore_ascii_case(b"host") {
                set_once(&mut host, Header::Host, line_number, parse_text(value))?;
            } else if name.eq_ignore_ascii_case(b"cookie") {
                set_once(&mut cookie, Header::Cookie, line_number, parse_text(value))?;
            }
        }
        if ended {
            // BEP 14 closes with two empty lines; accept any number of line ends and blanks.
            if let Some(extra) = lines
                .rest
                .iter()
                .position(|&b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
            {
                return Err(DecodeError::TrailingBytes {
                    offset: lines.offset + extra,
                });
            }
        }
        let port = port.ok_or(DecodeError::MissingHeader {
            header: Header::Port,
        })?;
        if info_hashes.is_empty() {
            return Err(DecodeError::MissingHeader {
                header: Header::Infohash,
            });
        }
        Ok(Self {
            host,
            port,
            info_hashes,
            cookie,
        })
    }

    /// The exact number of bytes [`Announce::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        const REQUEST_LINE: usize = b"BT-SEARCH * HTTP/1.1\r\n".len();
        const INFOHASH_LINE: usize = b"Infohash: \r\n".len() + 40;
        let host = self.host.map_or(0, |h| b"Host: \r\n".len() + h.len());
        let port = b"Port: \r\n".len() + decimal_len(self.port);
        let cookie = self.cookie.map_or(0, |c| b"cookie: \r\n".len() + c.len());
        REQUEST_LINE
            + host
            + port
            + INFOHASH_LINE * self.info_hashes.len()
            + cookie
            + b"\r\n\r\n".len()
    }

    /// Writes the datagram in the order BEP 14 and libtorrent use: request line,
    /// `Host`, `Port`, the `Infohash` lines, `cookie`, then two empty lines. Info-hashes
    /// are lowercase hex.
    ///
    /// Returns the number of bytes written.
    ///
    /// # Errors
    /// [`EncodeError`] if the announce could not be decoded back to itself: no
    /// info-hash or more than [`MAX_INFO_HASHES`], port 0, a `Host` or `cookie` that is
    /// empty, too long or not printable ASCII without spaces, or a datagram longer than
    /// [`MAX_ENCODED_LEN`]. Nothing is written then.
    pub fn encode(&self, out: &mut impl BufMut) -> Result<usize, EncodeError> {
        if self.info_hashes.is_empty() {
            return Err(EncodeError::NoInfoHash);
        }
        if self.info_hashes.len() > MAX_INFO_HASHES {
            return Err(EncodeError::TooManyInfoHashes {
                count: self.info_hashes.len(),
                max: MAX_INFO_HASHES,
            });
        }
        if self.port == 0 {
            return Err(EncodeError::PortZero);
        }
        for (header, value) in [(Header::Host, self.host), (Header::Cookie, self.cookie)] {
            if let Some(value) = value
                && parse_text(value.as_bytes()).is_none()
            {
                return Err(EncodeError::InvalidValue { header });
            }
        }
        let len = self.encoded_len();
        if len > MAX_ENCODED_LEN {
            return Err(EncodeError::TooLong {
                len,
                max: MAX_ENCODED_LEN,
            });
        }
        if out.remaining_mut() < len {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available: out.remaining_mut(),
            });
        }
        out.put_slice(b"BT-SEARCH * HTTP/1.1\r\n");
        if let Some(host) = self.host {
            out.put_slice(b"Host: ");
            out.put_slice(host.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"Port: ");
        let mut digits = [0u8; 5];
        out.put_slice(write_decimal(self.port, &mut digits));
        out.put_slice(b"\r\n");
        for hash in &self.info_hashes {
            out.put_slice(b"Infohash: ");
            let mut hex = [0u8; 40];
            for (pair, byte) in hex.chunks_exact_mut(2).zip(hash.as_bytes()) {
                pair[0] = HEX[usize::from(byte >> 4)];
                pair[1] = HEX[usize::from(byte & 0x0f)];
            }
            out.put_slice(&hex);
            out.put_slice(b"\r\n");
        }
        if let Some(cookie) = self.cookie {
            out.put_slice(b"cookie: ");
            out.put_slice(cookie.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n\r\n");
        Ok(len)
    }

    /// Encodes into a new vector (see [`Announce::encode`]).
    ///
    /// # Errors
    /// As [`Announce::encode`].
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Splits a datagram into lines ended by `\n` (with an optional `\r` before it); the
/// last line may lack its end.
struct Lines<'a> {
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its line end, and the offset it starts at.
    fn next_line(&mut self) -> Option<(usize, &'a [u8])> {
        if self.rest.is_empty() {
            return None;
        }
        let start = self.offset;
        let (line, consumed) = match self.rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&self.rest[..end], end + 1),
            None => (self.rest, self.rest.len()),
        };
        self.rest = &self.rest[consumed..];
        self.offset += consumed;
        Some((start, line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

fn check_request_line(line: &[u8]) -> Result<(), DecodeError> {
    let mut tokens = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|t| !t.is_empty());
    let method = tokens.next().ok_or(DecodeError::BadRequestLine)?;
    if !method.eq_ignore_ascii_case(b"BT-SEARCH") {
        return Err(DecodeError::NotBtSearch);
    }
    let target = tokens.next().ok_or(DecodeError::BadRequestLine)?;
    let version = tokens.next().ok_or(DecodeError::BadRequestLine)?;
    let version_ok = version.len() == 8
        && version[..7].eq_ignore_ascii_case(b"HTTP/1.")
        && version[7].is_ascii_digit();
    if target != b"*" || !version_ok || tokens.next().is_some() {
        return Err(DecodeError::BadRequestLine);
    }
    Ok(())
}

fn set_once<T>(
    slot: &mut Option<T>,
    header: Header,
    line: usize,
    value: Option<T>,
) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateHeader { header, line });
    }
    *slot = Some(value.ok_or(DecodeError::InvalidValue { header, line })?);
    Ok(())
}

fn trim_blanks(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// RFC 9110 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_info_hash(value: &[u8]) -> Option<InfoHashV1> {
    if value.len() != 40 {
        return None;
    }
    let mut out = [0u8; 20];
    for (byte, pair) in out.iter_mut().zip(value.chunks_exact(2)) {
        *byte = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
    }
    Some(InfoHashV1(out))
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_port(value: &[u8]) -> Option<u16> {
    if value.is_empty() || value.len() > 5 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = value
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok().filter(|&p| p != 0)
}

/// A `Host` or `cookie` value: 1 to [`MAX_VALUE_LEN`] bytes of visible ASCII.
fn parse_text(value: &[u8]) -> Option<&str> {
    if value.is_empty() || value.len() > MAX_VALUE_LEN || !value.iter().all(u8::is_ascii_graphic) {
        return None;
    }
    // Visible ASCII is valid UTF-8, so this never fails.
    std::str::from_utf8(value).ok()
}

fn decimal_len(n: u16) -> usize {
    match n {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1000..=9999 => 4,
        _ => 5,
    }
}

fn write_decimal(mut n: u16, buf: &mut [u8; 5]) -> &[u8] {
    let len = decimal_len(n);
    for slot in buf[..len].iter_mut().rev() {
        // `n % 10` is below 10, so the cast keeps every bit.
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIBTORRENT: &[u8] = include_bytes!("../testdata/libtorrent-2.0.8-announce.bin");

    fn hash(byte: u8) -> InfoHashV1 {
        InfoHashV1([byte; 20])
    }

    #[test]
    fn decodes_libtorrent_capture() {
        let a = Announce::decode(LIBTORRENT).unwrap();
        assert_eq!(a.host, Some("239.192.152.143:6771"));
        assert_eq!(a.port, 46881);
        assert_eq!(a.info_hashes, vec![hash(0xaa)]);
        assert_eq!(a.cookie, Some("32294e80"));
        // We write the same bytes libtorrent does.
        assert_eq!(a.to_vec().unwrap(), LIBTORRENT);
    }

    #[test]
    fn encoded_len_is_exact() {
        let a = Announce {
            host: Some("[ff15::efc0:988f]:6771"),
            port: 6,
            info_hashes: vec![hash(1), hash(2)],
            cookie: None,
        };
        let bytes = a.to_vec().unwrap();
        assert_eq!(bytes.len(), a.encoded_len());
        assert_eq!(Announce::decode(&bytes).unwrap(), a);
    }

    #[test]
    fn lenient_case_spacing_and_line_ends() {
        let text = b"bt-search   *\tHTTP/1.0\n  HOST :  239.192.152.143:6771 \nport:6881\r\n\
                     INFOHASH:\tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nX-Other: whatever: here\n\
                     Cookie: abc\n";
        let a = Announce::decode(text).unwrap();
        assert_eq!(a.host, Some("239.192.152.143:6771"));
        assert_eq!(a.port, 6881);
        assert_eq!(a.info_hashes, vec![hash(0xaa)]);
        assert_eq!(a.cookie, Some("abc"));
    }

    #[test]
    fn several_info_hashes_keep_order() {
        let mut text = b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n".to_vec();
        for b in [3u8, 1, 2] {
            text.extend_from_slice(format!("Infohash: {}\r\n", hash(b).to_hex()).as_bytes());
        }
        text.extend_from_slice(b"\r\n\r\n");
        let a = Announce::decode(&text).unwrap();
        assert_eq!(a.info_hashes, vec![hash(3), hash(1), hash(2)]);
        assert_eq!(a.host, None);
        assert_eq!(a.cookie, None);
    }

    fn err(text: &[u8]) -> DecodeError {
        Announce::decode(text).unwrap_err()
    }

    const IH: &str = "Infohash: 0123456789abcdef0123456789abcdef01234567\r\n";

    #[test]
    fn rejects_wrong_request_lines() {
        assert_eq!(err(b""), DecodeError::Empty);
        assert_eq!(
            err(b"M-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n"),
            DecodeError::NotBtSearch
        );
        for line in [
            "BT-SEARCH",
            "BT-SEARCH /x HTTP/1.1",
            "BT-SEARCH * HTTP/2.0",
            "BT-SEARCH * HTTP/1.1 extra",
            "BT-SEARCH * HTTP/1.",
        ] {
            let text = format!("{line}\r\nPort: 1\r\n{IH}\r\n");
            assert_eq!(err(text.as_bytes()), DecodeError::BadRequestLine, "{line}");
        }
    }

    #[test]
    fn rejects_bad_values() {
        let cases: &[(&str, DecodeError)] = &[
            (
                "Port: 0\r\n",
                DecodeError::InvalidValue {
                    header: Header::Port,
                    line: 2,
                },
            ),
            (
                "Port: 65536\r\n",
                DecodeError::InvalidValue {
                    header: Header::Port,
                    line: 2,
                },
            ),
            (
                "Port: +80\r\n",
                DecodeError::InvalidValue {
                    header: Header::Port,
                    line: 2,
                },
            ),
            (
                "Port: 000080\r\n",
                DecodeError::InvalidValue {
                    header: Header::Port,
                    line: 2,
                },
            ),
            (
                "Port: 1\r\nPort: 1\r\n",
                DecodeError::DuplicateHeader {
                    header: Header::Port,
                    line: 3,
                },
            ),
            (
                "Port: 1\r\nInfohash: 0123\r\n",
                DecodeError::InvalidValue {
                    header: Header::Infohash,
                    line: 3,
                },
            ),
            (
                "Port: 1\r\nInfohash: 0123456789abcdef0123456789abcdef0123456g\r\n",
                DecodeError::InvalidValue {
                    header: Header::Infohash,
                    line: 3,
                },
            ),
            (
                "Port: 1\r\ncookie: a b\r\n",
                DecodeError::InvalidValue {
                    header: Header::Cookie,
                    line: 3,
                },
            ),
            (
                "Port: 1\r\nHost:\r\n",
                DecodeError::InvalidValue {
                    header: Header::Host,
                    line: 3,
                },
            ),
            (
                "Port: 1\r\nno colon here\r\n",
                DecodeError::MalformedHeader {
                    line: 3,
                    offset: 31,
                },
            ),
            (
                "Port: 1\r\nbad name: x\r\n",
                DecodeError::MalformedHeader {
                    line: 3,
                    offset: 31,
                },
            ),
        ];
        for (headers, expected) in cases {
            let text = format!("BT-SEARCH * HTTP/1.1\r\n{headers}{IH}\r\n\r\n");
            assert_eq!(&err(text.as_bytes()), expected, "{headers:?}");
        }
    }

    #[test]
    fn rejects_missing_headers() {
        assert_eq!(
            err(format!("BT-SEARCH * HTTP/1.1\r\n{IH}\r\n").as_bytes()),
            DecodeError::MissingHeader {
                header: Header::Port
            }
        );
        assert_eq!(
            err(b"BT-SEARCH * HTTP/1.1\r\nPort: 5\r\n\r\n"),
            DecodeError::MissingHeader {
                header: Header::Infohash
            }
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let text = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n{IH}\r\n\r\nbody");
        assert_eq!(
            err(text.as_bytes()),
            DecodeError::TrailingBytes {
                offset: text.len() - 4
            }
        );
    }

    #[test]
    fn bounds_counts_and_sizes() {
        let mut text = b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n".to_vec();
        for _ in 0..=MAX_INFO_HASHES {
            text.extend_from_slice(b"Infohash:0000000000000000000000000000000000000000\n");
        }
        assert_eq!(
            err(&text),
            DecodeError::TooManyInfoHashes {
                max: MAX_INFO_HASHES
            }
        );
        let mut text = b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n".to_vec();
        text.extend(std::iter::repeat_n(&b"a:\n"[..], MAX_HEADERS).flatten());
        assert_eq!(err(&text), DecodeError::TooManyHeaders { max: MAX_HEADERS });
        let huge = vec![b'a'; MAX_DATAGRAM_LEN + 1];
        assert_eq!(
            err(&huge),
            DecodeError::TooLong {
                len: MAX_DATAGRAM_LEN + 1,
                max: MAX_DATAGRAM_LEN
            }
        );
    }

    #[test]
    fn encode_refuses_what_would_not_decode() {
        let good = Announce {
            host: None,
            port: 1,
            info_hashes: vec![hash(1)],
            cookie: None,
        };
        let cases = [
            (
                Announce {
                    info_hashes: vec![],
                    ..good.clone()
                },
                EncodeError::NoInfoHash,
            ),
            (
                Announce {
                    port: 0,
                    ..good.clone()
                },
                EncodeError::PortZero,
            ),
            (
                Announce {
                    cookie: Some("a\r\nPort: 2"),
                    ..good.clone()
                },
                EncodeError::InvalidValue {
                    header: Header::Cookie,
                },
            ),
            (
                Announce {
                    host: Some(""),
                    ..good.clone()
                },
                EncodeError::InvalidValue {
                    header: Header::Host,
                },
            ),
            (
                Announce {
                    info_hashes: vec![hash(1); MAX_INFO_HASHES + 1],
                    ..good.clone()
                },
                EncodeError::TooManyInfoHashes {
                    count: MAX_INFO_HASHES + 1,
                    max: MAX_INFO_HASHES,
                },
            ),
        ];
        for (announce, expected) in cases {
            let mut out = Vec::new();
            assert_eq!(announce.encode(&mut out), Err(expected));
            assert!(out.is_empty());
        }
        let mut small = [0u8; 10];
        assert!(matches!(
            good.encode(&mut &mut small[..]),
            Err(EncodeError::BufferTooSmall { available: 10, .. })
        ));
    }

    #[test]
    fn the_most_info_hashes_fit_in_a_datagram() {
        let a = Announce {
            host: Some("[ff15::efc0:988f]:6771"),
            port: 65535,
            info_hashes: vec![hash(7); MAX_INFO_HASHES],
            cookie: Some(&"c".repeat(MAX_VALUE_LEN)),
        };
        let bytes = a.to_vec().unwrap();
        assert!(bytes.len() <= MAX_ENCODED_LEN, "{}", bytes.len());
        assert_eq!(Announce::decode(&bytes).unwrap(), a);
    }
}
