//! Owned values and the canonical encoder.

use std::collections::BTreeMap;

/// An owned bencode value that can be built and encoded.
///
/// Dictionary keys live in a [`BTreeMap`], so they are unique and encoded in
/// sorted order: the output of [`OwnedValue::encode`] is canonical, except
/// inside [`OwnedValue::Raw`], which is written verbatim.
///
/// ```
/// use std::collections::BTreeMap;
/// use webtorrent_bencode::OwnedValue;
///
/// let mut dict = BTreeMap::new();
/// dict.insert(b"spam".to_vec(), OwnedValue::from("eggs"));
/// dict.insert(b"cow".to_vec(), OwnedValue::from(-3));
/// assert_eq!(OwnedValue::Dict(dict).encode(), b"d3:cowi-3e4:spam4:eggse");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OwnedValue {
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Self>),
    /// A dictionary; keys are encoded in sorted order.
    Dict(BTreeMap<Vec<u8>, Self>),
    /// Already-encoded bencode written verbatim (e.g. an original info dict).
    ///
    /// It must hold exactly one valid bencode value, or the output will not
    /// decode; [`OwnedValue::raw`] checks this.
    Raw(Vec<u8>),
}

impl OwnedValue {
    /// Wraps already-encoded bencode after checking (leniently) that it is
    /// exactly one value, so that it can be embedded verbatim.
    ///
    /// # Errors
    /// [`crate::DecodeError`] if `encoded` is not exactly one valid value.
    pub fn raw(encoded: impl Into<Vec<u8>>) -> Result<Self, crate::DecodeError> {
        let encoded = encoded.into();
        crate::decode(&encoded)?;
        Ok(Self::Raw(encoded))
    }

    /// Encodes into a new buffer of exactly the right size.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(i) => write_int(out, *i),
            Self::Bytes(b) => write_bytes(out, b),
            Self::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Self::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    write_bytes(out, k);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Self::Raw(raw) => out.extend_from_slice(raw),
        }
    }

    /// The length of [`OwnedValue::encode`]'s output.
    #[must_use]
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Int(i) => int_len(*i) + 2,
            Self::Bytes(b) => bytes_len(b),
            Self::List(items) => 2 + items.iter().map(Self::encoded_len).sum::<usize>(),
            Self::Dict(entries) => {
                2 + entries
                    .iter()
                    .map(|(k, v)| bytes_len(k) + v.encoded_len())
                    .sum::<usize>()
            }
            Self::Raw(raw) => raw.len(),
        }
    }

    /// The integer, if this is one.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as text, if this is a byte string holding valid UTF-8.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| core::str::from_utf8(b).ok())
    }

    /// The list, if this is one.
    #[must_use]
    pub fn as_list(&self) -> Option<&[Self]> {
        match self {
            Self::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    #[must_use]
    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Self>> {
        match self {
            Self::Dict(d) => Some(d),
            _ => None,
        }
    }
}

/// Number of decimal digits (and sign) of `i`.
fn int_len(i: i64) -> usize {
    let digits = i
        .unsigned_abs()
        .checked_ilog10()
        .map_or(1, |l| l as usize + 1);
    digits + usize::from(i < 0)
}

fn bytes_len(b: &[u8]) -> usize {
    b.len().checked_ilog10().map_or(1, |l| l as usize + 1) + 1 + b.len()
}

/// Appends the decimal digits of `n`.
fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[at..]);
}

/// Appends `i<n>e`.
pub(crate) fn write_int(out: &mut Vec<u8>, n: i64) {
    out.push(b'i');
    if n < 0 {
        out.push(b'-');
    }
    write_decimal(out, n.unsigned_abs());
    out.push(b'e');
}

/// Appends `<len>:<bytes>`.
pub(crate) fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // usize is at most 64 bits on every supported target.
    write_decimal(out, b.len() as u64);
    out.push(b':');
    out.extend_from_slice(b);
}

impl From<i64> for OwnedValue {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<i32> for OwnedValue {
    fn from(i: i32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<u32> for OwnedValue {
    fn from(i: u32) -> Self {
        Self::Int(i64::from(i))
    }
}

impl From<&str> for OwnedValue {
    fn from(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for OwnedValue {
    fn from(s: String) -> Self {
        Self::Bytes(s.into_bytes())
    }
}

impl From<&[u8]> for OwnedValue {
    fn from(b: &[u8]) -> Self {
        Self::Bytes(b.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for OwnedValue {
    fn from(b: &[u8; N]) -> Self {
        Self::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for OwnedValue {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b)
    }
}

impl From<Vec<Self>> for OwnedValue {
    fn from(items: Vec<Self>) -> Self {
        Self::List(items)
    }
}

impl From<BTreeMap<Vec<u8>, Self>> for OwnedValue {
    fn from(entries: BTreeMap<Vec<u8>, Self>) -> Self {
        Self::Dict(entries)
    }
}

impl FromIterator<Self> for OwnedValue {
    /// Collects into a list.
    fn from_iter<I: IntoIterator<Item = Self>>(iter: I) -> Self {
        Self::List(iter.into_iter().collect())
    }
}

impl<K: Into<Vec<u8>>> FromIterator<(K, Self)> for OwnedValue {
    /// Collects into a dictionary; of duplicate keys the last one wins.
    fn from_iter<I: IntoIterator<Item = (K, Self)>>(iter: I) -> Self {
        Self::Dict(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}
