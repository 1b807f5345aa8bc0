//! The decoder: one iterative pass, no recursion, no copying of byte strings.

use core::cmp::Ordering;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::value::{ByteStr, Dict, Int, List, Value};

/// Default for [`DecodeOptions::max_depth`].
pub const DEFAULT_MAX_DEPTH: usize = 256;

/// How to decode: strictness and resource limits.
///
/// The default is lenient with a nesting limit of [`DEFAULT_MAX_DEPTH`] and no
/// item limit.
///
/// **Lenient** mode accepts everything that has one obvious meaning, because
/// real torrents and peers produce it: unsorted dictionary keys, duplicate
/// keys (all entries are kept; [`Dict::get`] returns the first), integers with
/// leading zeros (`i03e` is 3) or negative zero (`i-0e` is 0), and lengths
/// with leading zeros (`03:abc`). It still rejects what is malformed: a sign
/// other than a single leading `-`, empty integers (`ie`, `i-e`), integers
/// that do not fit in `i64`, non-digit bytes, lengths past the end of the
/// input, non-string keys and keys without values.
///
/// **Strict** mode accepts canonical bencode only: keys strictly increasing
/// (sorted, unique), no leading zeros and no `-0` in integers, no leading zeros
/// in lengths. Re-encoding a strictly decoded value gives back the input.
///
/// ```
/// use webtorrent_bencode::DecodeOptions;
///
/// let lenient = DecodeOptions::new();
/// assert_eq!(lenient.decode(b"i03e").unwrap().as_int(), Some(3));
/// let strict = DecodeOptions::new().strict(true).max_depth(16);
/// assert!(strict.decode(b"i03e").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecodeOptions {
    /// Accept canonical bencode only.
    pub strict: bool,
    /// Maximum nesting of lists and dictionaries; a top-level list has depth 1.
    ///
    /// Decoding itself is iterative, but dropping, comparing and converting
    /// the resulting tree recurse once per level, so keep this well below the
    /// stack budget of the threads that handle values (a few thousand at
    /// most).
    pub max_depth: usize,
    /// Maximum number of values (integers, byte strings, lists and
    /// dictionaries; keys not counted), or `None` for no limit.
    ///
    /// Without a limit the number of values is still bounded by the input
    /// length (each takes at least two bytes); a decoded [`Value`] takes about
    /// 50 to 70 bytes of memory, so memory use is at most about 35 times the
    /// input length.
    pub max_items: Option<usize>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl DecodeOptions {
    /// Lenient decoding, nesting limit [`DEFAULT_MAX_DEPTH`], no item limit.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            strict: false,
            max_depth: DEFAULT_MAX_DEPTH,
            max_items: None,
        }
    }

    /// Sets whether to accept canonical bencode only.
    #[must_use]
    pub const fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets the maximum nesting of lists and dictionaries.
    #[must_use]
    pub const fn max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Sets the maximum number of values, or `None` for no limit.
    #[must_use]
    pub const fn max_items(mut self, max_items: Option<usize>) -> Self {
        self.max_items = max_items;
        self
    }

    /// Decodes exactly one value; trailing bytes are an error.
    ///
    /// # Errors
    /// [`DecodeError`] if the input is not one valid value under these
    /// options.
    pub fn decode<'a>(&self, input: &'a [u8]) -> Result<Value<'a>, DecodeError> {
        let (value, used) = parse(input, self)?;
        if used == input.len() {
            Ok(value)
        } else {
            Err(DecodeError::new(used, DecodeErrorKind::TrailingBytes))
        }
    }

    /// Decodes one value at the start of `input` and returns it with the
    /// number of bytes it took; the rest of the input is left alone.
    ///
    /// # Errors
    /// [`DecodeError`] if the input does not start with a valid value under
    /// these options.
    pub fn decode_prefix<'a>(&self, input: &'a [u8]) -> Result<(Value<'a>, usize), DecodeError> {
        parse(input, self)
    }
}

/// An open list or dictionary. Its children wait on a scratch stack shared by every open
/// container, from index `first` on, and move into a vector of exactly their number when it
/// closes: one allocation per container, none wasted on growth.
enum Frame<'a> {
    List {
        start: usize,
        first: usize,
    },
    Dict {
        start: usize,
        first: usize,
        key: Option<&'a [u8]>,
        sorted: bool,
    },
}

const fn err(offset: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError::new(offset, kind)
}

/// Parses one value starting at offset 0; returns it and the offset after it.
fn parse<'a>(input: &'a [u8], opts: &DecodeOptions) -> Result<(Value<'a>, usize), DecodeError> {
    let strict = opts.strict;
    let max_items = opts.max_items.unwrap_or(usize::MAX);
    let mut items = 0usize;
    let mut pos = 0usize;
    let mut stack: Vec<Frame<'a>> = Vec::new();
    let mut list_items: Vec<Value<'a>> = Vec::new();
    let mut dict_entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
    loop {
        let Some(&b) = input.get(pos) else {
            return Err(err(pos, DecodeErrorKind::UnexpectedEof));
        };
        let value = if b == b'e' {
            match stack.pop() {
                None => return Err(err(pos, DecodeErrorKind::UnexpectedByte(b))),
                Some(Frame::Dict { key: Some(_), .. }) => {
                    return Err(err(pos, DecodeErrorKind::DictMissingValue));
                }
                Some(Frame::List { start, first }) => {
                    pos += 1;
                    Value::List(List {
                        raw: &input[start..pos],
                        items: list_items.drain(first..).collect(),
                    })
                }
                Some(Frame::Dict {
                    start,
                    first,
                    key: None,
                    sorted,
                }) => {
                    pos += 1;
                    Value::Dict(Dict {
                        raw: &input[start..pos],
                        entries: dict_entries.drain(first..).collect(),
                        sorted,
                    })
                }
            }
        } else if let Some(Frame::Dict {
            first,
            key: key @ None,
            sorted,
            ..
        }) = stack.last_mut()
        {
            if !b.is_ascii_digit() {
                return Err(err(pos, DecodeErrorKind::DictKeyNotBytes));
            }
            let (k, next) = parse_bytes(input, pos, strict)?;
            if let Some((prev, _)) = dict_entries.get(*first..).and_then(<[_]>::last) {
                match (*prev).cmp(k) {
                    Ordering::Less => {}
                    Ordering::Equal if strict => {
                        return Err(err(pos, DecodeErrorKind::DuplicateKey));
                    }
                    Ordering::Greater if strict => {
                        return Err(err(pos, DecodeErrorKind::UnsortedKey));
                    }
                    Ordering::Equal | Ordering::Greater => *sorted = false,
                }
            }
            *key = Some(k);
            pos = next;
            continue;
        } else {
            items += 1;
            if items > max_items {
                return Err(err(pos, DecodeErrorKind::ItemLimitExceeded { max_items }));
            }
            match b {
                b'i' => {
                    let (value, next) = parse_int(input, pos, strict)?;
                    let raw = &input[pos..next];
                    pos = next;
                    Value::Int(Int { raw, value })
                }
                b'0'..=b'9' => {
                    let (bytes, next) = parse_bytes(input, pos, strict)?;
                    let raw = &input[pos..next];
                    pos = next;
                    Value::Bytes(ByteStr { raw, bytes })
                }
                b'l' | b'd' => {
                    if stack.len() >= opts.max_depth {
                        let max_depth = opts.max_depth;
                        return Err(err(pos, DecodeErrorKind::DepthLimitExceeded { max_depth }));
                    }
                    stack.push(if b == b'l' {
                        Frame::List {
                            start: pos,
                            first: list_items.len(),
                        }
                    } else {
                        Frame::Dict {
                            start: pos,
                            first: dict_entries.len(),
                            key: None,
                            sorted: true,
                        }
                    });
                    pos += 1;
                    continue;
                }
                _ => return Err(err(pos, DecodeErrorKind::UnexpectedByte(b))),
            }
        };
        match stack.last_mut() {
            None => return Ok((value, pos)),
            Some(Frame::List { .. }) => list_items.push(value),
            Some(Frame::Dict { key, .. }) => match key.take() {
                Some(k) => dict_entries.push((k, value)),
                // A value is parsed inside a dictionary only once its key is
                // set (the `key @ None` branch above handles the other case).
                None => unreachable!("dictionary value parsed before its key"),
            },
        }
    }
}

/// Parses `i…e` at `pos` (which holds the `i`); returns the integer and the
/// offset after the `e`.
fn parse_int(input: &[u8], pos: usize, strict: bool) -> Result<(i64, usize), DecodeError> {
    let mut i = pos + 1;
    let negative = input.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let digits = i;
    let mut magnitude: u64 = 0;
    while let Some(&d) = input.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(d - b'0')))
            .ok_or(err(pos, DecodeErrorKind::IntegerOverflow))?;
        i += 1;
    }
    match input.get(i) {
        None => return Err(err(i, DecodeErrorKind::UnexpectedEof)),
        Some(b'e') if i > digits => {}
        Some(_) => return Err(err(i, DecodeErrorKind::InvalidInteger)),
    }
    if strict && ((i - digits > 1 && input[digits] == b'0') || (negative && magnitude == 0)) {
        return Err(err(pos, DecodeErrorKind::NonCanonicalInteger));
    }
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    };
    let value = value.ok_or(err(pos, DecodeErrorKind::IntegerOverflow))?;
    Ok((value, i + 1))
}

/// Parses `<len>:<bytes>` at `pos` (which holds a digit); returns the content
/// and the offset after it. Nothing is allocated: the length is checked
/// against the remaining input before it is used.
fn parse_bytes(input: &[u8], pos: usize, strict: bool) -> Result<(&[u8], usize), DecodeError> {
    let mut i = pos;
    let mut length: u64 = 0;
    while let Some(&d) = input.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        length = length
            .saturating_mul(10)
            .saturating_add(u64::from(d - b'0'));
        i += 1;
    }
    match input.get(i) {
        None => return Err(err(i, DecodeErrorKind::UnexpectedEof)),
        Some(b':') if i > pos => {}
        Some(_) => return Err(err(i, DecodeErrorKind::InvalidLength)),
    }
    if strict && i - pos > 1 && input[pos] == b'0' {
        return Err(err(pos, DecodeErrorKind::NonCanonicalLength));
    }
    let start = i + 1;
    let remaining = input.len() - start;
    let len = usize::try_from(length)
        .ok()
        .filter(|&len| len <= remaining)
        .ok_or(err(
            pos,
            DecodeErrorKind::LengthExceedsInput { length, remaining },
        ))?;
    let end = start + len;
    Ok((&input[start..end], end))
}
