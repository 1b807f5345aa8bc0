//! `serde::Serializer` producing canonical bencode.
//!
//! Lists are written straight through. Dictionary entries are buffered,
//! sorted by key and checked for duplicates before they are written, so the
//! output is canonical whatever order a struct declares its fields in.

use core::ops::Range;

use serde::ser::{self, Impossible, Serialize};

use super::error::Error;
use super::raw::RAW_TOKEN;
use crate::owned::{write_bytes, write_int};

/// Serializes one value into `out`.
pub(crate) struct Serializer<'o> {
    pub(crate) out: &'o mut Vec<u8>,
    /// Whether `None` may be written (as nothing): only directly as the value
    /// of a dictionary entry, which is then left out.
    pub(crate) none_allowed: bool,
}

impl<'o> Serializer<'o> {
    fn int(self, value: i64) -> Result<(), Error> {
        write_int(self.out, value);
        Ok(())
    }

    fn wide_int(self, value: i128, target: &'static str) -> Result<(), Error> {
        let n = i64::try_from(value).map_err(|_| Error::IntegerOutOfRange {
            value,
            target,
            offset: None,
        })?;
        self.int(n)
    }

    fn bytes(self, value: &[u8]) -> Result<(), Error> {
        write_bytes(self.out, value);
        Ok(())
    }

    /// Opens `d<variant>` for an enum variant with data.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'd');
        write_bytes(self.out, variant.as_bytes());
    }

    fn list(self, closers: usize) -> ListSerializer<'o> {
        self.out.push(b'l');
        ListSerializer {
            out: self.out,
            closers,
        }
    }

    fn dict(self, closers: usize) -> DictSerializer<'o> {
        DictSerializer {
            out: self.out,
            closers,
            keys: Vec::new(),
            values: Vec::new(),
            entries: Vec::new(),
            pending_key: None,
        }
    }
}

impl<'o> ser::Serializer for Serializer<'o> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ListSerializer<'o>;
    type SerializeTuple = ListSerializer<'o>;
    type SerializeTupleStruct = ListSerializer<'o>;
    type SerializeTupleVariant = ListSerializer<'o>;
    type SerializeMap = DictSerializer<'o>;
    type SerializeStruct = DictSerializer<'o>;
    type SerializeStructVariant = DictSerializer<'o>;

    /// `false` is `i0e`, `true` is `i1e`.
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.int(i64::from(v))
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.int(i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.int(i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.int(i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.int(v)
    }

    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.wide_int(v, "i64 (bencode integer)")
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.int(i64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.int(i64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.int(i64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.wide_int(i128::from(v), "i64 (bencode integer)")
    }

    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        match i128::try_from(v) {
            Ok(v) => self.wide_int(v, "i64 (bencode integer)"),
            Err(_) => Err(Error::IntegerOutOfRange {
                value: i128::MAX,
                target: "i64 (bencode integer)",
                offset: None,
            }),
        }
    }

    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "floating-point numbers",
        })
    }

    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "floating-point numbers",
        })
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.bytes(v.encode_utf8(&mut [0; 4]).as_bytes())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.bytes(v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.bytes(v)
    }

    fn serialize_none(self) -> Result<(), Error> {
        if self.none_allowed {
            Ok(())
        } else {
            Err(Error::Unsupported {
                what: "None outside a dictionary value",
            })
        }
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "the unit type",
        })
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(Error::Unsupported {
            what: "unit structs",
        })
    }

    /// A unit variant is its name as a byte string.
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.bytes(variant.as_bytes())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if name == RAW_TOKEN {
            // Already-encoded bencode: written verbatim.
            value.serialize(BytesSerializer { out: self.out })
        } else {
            value.serialize(self)
        }
    }

    /// Other variants are a one-entry dictionary `{variant: content}`.
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.open_variant(variant);
        value.serialize(Serializer {
            out: self.out,
            none_allowed: false,
        })?;
        self.out.push(b'e');
        Ok(())
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<ListSerializer<'o>, Error> {
        Ok(self.list(1))
    }

    fn serialize_tuple(self, _len: usize) -> Result<ListSerializer<'o>, Error> {
        Ok(self.list(1))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<ListSerializer<'o>, Error> {
        Ok(self.list(1))
    }

    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<ListSerializer<'o>, Error> {
        self.open_variant(variant);
        Ok(self.list(2))
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<DictSerializer<'o>, Error> {
        Ok(self.dict(1))
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<DictSerializer<'o>, Error> {
        Ok(self.dict(1))
    }

    fn serialize_struct_variant(
        mut self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<DictSerializer<'o>, Error> {
        self.open_variant(variant);
        Ok(self.dict(2))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Writes the items of a list (or tuple, or tuple variant) as they come.
pub(crate) struct ListSerializer<'o> {
    out: &'o mut Vec<u8>,
    /// How many `e` to write at the end: 2 for a tuple variant.
    closers: usize,
}

impl ListSerializer<'_> {
    fn item<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(Serializer {
            out: self.out,
            none_allowed: false,
        })
    }

    fn close(self) -> Result<(), Error> {
        self.out.extend(core::iter::repeat_n(b'e', self.closers));
        Ok(())
    }
}

impl ser::SerializeSeq for ListSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.item(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTuple for ListSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.item(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for ListSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.item(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for ListSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        self.item(value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// Where a buffered key lives.
enum Key {
    /// A struct field name.
    Field(&'static str),
    /// A range of [`DictSerializer::keys`].
    Buffered(Range<usize>),
}

/// Buffers the entries of a dictionary, then writes them sorted by key.
pub(crate) struct DictSerializer<'o> {
    out: &'o mut Vec<u8>,
    /// How many `e` to write at the end: 2 for a struct variant.
    closers: usize,
    /// Bytes of the map keys.
    keys: Vec<u8>,
    /// Encoded values, one after the other.
    values: Vec<u8>,
    entries: Vec<(Key, Range<usize>)>,
    /// A map key waiting for its value.
    pending_key: Option<Range<usize>>,
}

impl DictSerializer<'_> {
    fn key_bytes<'k>(keys: &'k [u8], key: &'k Key) -> &'k [u8] {
        match key {
            Key::Field(name) => name.as_bytes(),
            // Ranges are recorded from `keys` as it grew, so they are in bounds.
            Key::Buffered(range) => &keys[range.clone()],
        }
    }

    /// Encodes `value` and records it under `key`, unless it is `None`.
    fn entry<T: ?Sized + Serialize>(&mut self, key: Key, value: &T) -> Result<(), Error> {
        let start = self.values.len();
        value.serialize(Serializer {
            out: &mut self.values,
            none_allowed: true,
        })?;
        let end = self.values.len();
        // Every bencode value takes at least two bytes: nothing written means
        // the value was `None`, and the entry is left out.
        if end > start {
            self.entries.push((key, start..end));
        }
        Ok(())
    }

    fn close(mut self) -> Result<(), Error> {
        let keys = &self.keys;
        self.entries.sort_unstable_by(|(a, _), (b, _)| {
            Self::key_bytes(keys, a).cmp(Self::key_bytes(keys, b))
        });
        for pair in self.entries.windows(2) {
            if let [(a, _), (b, _)] = pair {
                let a = Self::key_bytes(keys, a);
                if a == Self::key_bytes(keys, b) {
                    return Err(Error::DuplicateKey { key: a.to_vec() });
                }
            }
        }
        self.out
            .reserve(self.values.len() + self.keys.len() + 8 * self.entries.len() + 2);
        self.out.push(b'd');
        for (key, value) in &self.entries {
            write_bytes(self.out, Self::key_bytes(keys, key));
            // Ranges are recorded from `values` as it grew, so they are in bounds.
            self.out.extend_from_slice(&self.values[value.clone()]);
        }
        self.out.extend(core::iter::repeat_n(b'e', self.closers));
        Ok(())
    }
}

impl ser::SerializeMap for DictSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Result<(), Error> {
        let start = self.keys.len();
        key.serialize(BytesSerializer {
            out: &mut self.keys,
        })?;
        self.pending_key = Some(start..self.keys.len());
        Ok(())
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Result<(), Error> {
        match self.pending_key.take() {
            Some(key) => self.entry(Key::Buffered(key), value),
            None => Err(ser::Error::custom("map value serialized before its key")),
        }
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStruct for DictSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.entry(Key::Field(key), value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

impl ser::SerializeStructVariant for DictSerializer<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.entry(Key::Field(key), value)
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// Appends the bytes of a string-like value, unframed: for dictionary keys
/// and for already-encoded bencode.
struct BytesSerializer<'o> {
    out: &'o mut Vec<u8>,
}

impl BytesSerializer<'_> {
    fn append(self, bytes: &[u8]) -> Result<(), Error> {
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

impl ser::Serializer for BytesSerializer<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.append(v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.append(v)
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.append(v.encode_utf8(&mut [0; 4]).as_bytes())
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.append(variant.as_bytes())
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_bool(self, _v: bool) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_i8(self, _v: i8) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_i16(self, _v: i16) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_i32(self, _v: i32) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_i64(self, _v: i64) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_u8(self, _v: u8) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_u16(self, _v: u16) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_u32(self, _v: u32) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_u64(self, _v: u64) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_some<T: ?Sized + Serialize>(self, _value: &T) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(Error::KeyNotBytes)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error::KeyNotBytes)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}
