//! Borrowed, zero-copy values that remember their exact input bytes.

use core::fmt;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use crate::OwnedValue;

/// A decoded bencode value borrowing from the input.
///
/// Every value, down to each integer and byte string, keeps the exact input
/// bytes it was decoded from ([`Value::raw`]), so hashing the `info`
/// dictionary of a torrent hashes the original bytes even when they are not
/// canonical bencode.
///
/// Dropping, cloning, comparing and [`Value::to_owned`] recurse once per
/// nesting level, which [`crate::DecodeOptions::max_depth`] bounds.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// An integer, `i…e`.
    Int(Int<'a>),
    /// A byte string, `<len>:<bytes>`.
    Bytes(ByteStr<'a>),
    /// A list, `l…e`.
    List(List<'a>),
    /// A dictionary, `d…e`.
    Dict(Dict<'a>),
}

/// The four kinds of bencode value, for error messages and dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueType {
    /// An integer.
    Int,
    /// A byte string.
    Bytes,
    /// A list.
    List,
    /// A dictionary.
    Dict,
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Int => "integer",
            Self::Bytes => "byte string",
            Self::List => "list",
            Self::Dict => "dictionary",
        })
    }
}

impl<'a> Value<'a> {
    /// The exact input bytes of this value, from its first byte (`i`, `l`,
    /// `d` or the first length digit) to its last.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        match self {
            Self::Int(v) => v.raw,
            Self::Bytes(v) => v.raw,
            Self::List(v) => v.raw,
            Self::Dict(v) => v.raw,
        }
    }

    /// Which kind of value this is.
    #[must_use]
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::Int(_) => ValueType::Int,
            Self::Bytes(_) => ValueType::Bytes,
            Self::List(_) => ValueType::List,
            Self::Dict(_) => ValueType::Dict,
        }
    }

    /// The integer, if this is one.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(v) => Some(v.value),
            _ => None,
        }
    }

    /// The content of the byte string (without its length prefix), if this
    /// is one.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Self::Bytes(v) => Some(v.bytes),
            _ => None,
        }
    }

    /// The byte string as text, if this is a byte string holding valid UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    #[must_use]
    pub fn as_list(&self) -> Option<&List<'a>> {
        match self {
            Self::List(v) => Some(v),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    #[must_use]
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match self {
            Self::Dict(v) => Some(v),
            _ => None,
        }
    }

    /// A deep, owned copy of the structure (not of the raw bytes).
    ///
    /// Encoding the result gives canonical bencode, which differs from
    /// [`Value::raw`] when the input was not canonical. Of duplicate
    /// dictionary keys the first is kept, as [`Dict::get`] does.
    #[must_use]
    pub fn to_owned(&self) -> OwnedValue {
        match self {
            Self::Int(v) => OwnedValue::Int(v.value),
            Self::Bytes(v) => OwnedValue::Bytes(v.bytes.to_vec()),
            Self::List(l) => OwnedValue::List(l.items.iter().map(Value::to_owned).collect()),
            Self::Dict(d) => {
                let mut map = BTreeMap::new();
                for (k, v) in &d.entries {
                    if let Entry::Vacant(e) = map.entry(k.to_vec()) {
                        e.insert(v.to_owned());
                    }
                }
                OwnedValue::Dict(map)
            }
        }
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(v) => fmt::Debug::fmt(v, f),
            Self::Bytes(v) => fmt::Debug::fmt(v, f),
            Self::List(v) => fmt::Debug::fmt(v, f),
            Self::Dict(v) => fmt::Debug::fmt(v, f),
        }
    }
}

/// Formats bytes as `b"…"` with non-printable bytes escaped.
pub(crate) struct BytesDebug<'b>(pub(crate) &'b [u8]);

impl fmt::Debug for BytesDebug<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// A decoded integer and its raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Int<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) value: i64,
}

impl<'a> Int<'a> {
    /// The exact input bytes, `i…e`.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The integer.
    #[must_use]
    pub fn get(&self) -> i64 {
        self.value
    }
}

impl fmt::Debug for Int<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

/// A decoded byte string and its raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteStr<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) bytes: &'a [u8],
}

impl<'a> ByteStr<'a> {
    /// The exact input bytes, length prefix included.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The content, without the length prefix.
    #[must_use]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The content as text, if it is valid UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.bytes).ok()
    }
}

impl fmt::Debug for ByteStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&BytesDebug(self.bytes), f)
    }
}

/// A decoded list and its raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct List<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) items: Vec<Value<'a>>,
}

impl<'a> List<'a> {
    /// The exact input bytes, `l…e`.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The number of items.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the list has no items.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item at `index`, if there is one.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&Value<'a>> {
        self.items.get(index)
    }

    /// The items, in input order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Value<'a>> + ExactSizeIterator {
        self.items.iter()
    }

    /// The items as a slice.
    #[must_use]
    pub fn as_slice(&self) -> &[Value<'a>] {
        &self.items
    }
}

impl<'l, 'a> IntoIterator for &'l List<'a> {
    type Item = &'l Value<'a>;
    type IntoIter = core::slice::Iter<'l, Value<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Debug for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.items).finish()
    }
}

/// A decoded dictionary and its raw bytes.
///
/// Entries are kept in input order, including any duplicate keys that the
/// lenient decoder accepted. [`Dict::get`] returns the **first** entry with a
/// key; it is a binary search when the keys are sorted (always the case for
/// canonical input) and a linear scan otherwise.
#[derive(Clone, PartialEq, Eq)]
pub struct Dict<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) entries: Vec<(&'a [u8], Value<'a>)>,
    /// Keys strictly increase (so there are no duplicates either).
    pub(crate) sorted: bool,
}

impl<'a> Dict<'a> {
    /// The exact input bytes, `d…e`.
    #[must_use]
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The number of entries, duplicates included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dictionary has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value of the first entry whose key is `key`.
    #[must_use]
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        if self.sorted {
            self.entries
                .binary_search_by(|(k, _)| (*k).cmp(key))
                .ok()
                .and_then(|i| self.entries.get(i))
                .map(|(_, v)| v)
        } else {
            self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
        }
    }

    /// Whether the keys are in strictly increasing byte order, as canonical
    /// bencode requires (so there are no duplicates either).
    #[must_use]
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// The entries `(key, value)`, in input order.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (&'a [u8], &Value<'a>)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (*k, v))
    }
}

impl fmt::Debug for Dict<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (BytesDebug(k), v)))
            .finish()
    }
}
