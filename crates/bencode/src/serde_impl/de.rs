//! `serde::Deserializer` over a decoded [`Value`] tree.
//!
//! Byte strings and text are lent out with the input's lifetime, so `&'de str`
//! and `&'de [u8]` fields borrow from the input.

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Visitor};
use serde::forward_to_deserialize_any;

use super::error::Error;
use super::raw::RAW_TOKEN;
use crate::{Dict, Value};

/// Where `part` starts inside `base`, if it lies inside it.
fn offset_in(base: &[u8], part: &[u8]) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
    (offset.checked_add(part.len())? <= base.len()).then_some(offset)
}

/// Deserializes one value of the tree.
#[derive(Clone, Copy)]
pub(crate) struct ValueDeserializer<'v, 'de> {
    value: &'v Value<'de>,
    /// The whole input, for error offsets.
    base: &'de [u8],
}

impl<'v, 'de> ValueDeserializer<'v, 'de> {
    pub(crate) fn new(value: &'v Value<'de>, base: &'de [u8]) -> Self {
        Self { value, base }
    }

    fn offset(&self) -> Option<usize> {
        offset_in(self.base, self.value.raw())
    }

    fn invalid_type(&self, expected: &'static str) -> Error {
        Error::InvalidType {
            expected,
            found: self.value.value_type(),
            offset: self.offset(),
        }
    }

    fn int(&self) -> Result<i64, Error> {
        self.value
            .as_int()
            .ok_or_else(|| self.invalid_type("an integer"))
    }

    fn out_of_range(&self, value: i64, target: &'static str) -> Error {
        Error::IntegerOutOfRange {
            value: i128::from(value),
            target,
            offset: self.offset(),
        }
    }

    fn bytes(&self, expected: &'static str) -> Result<&'de [u8], Error> {
        self.value
            .as_bytes()
            .ok_or_else(|| self.invalid_type(expected))
    }

    fn str(&self) -> Result<&'de str, Error> {
        let bytes = self.bytes("a byte string")?;
        core::str::from_utf8(bytes).map_err(|_| Error::InvalidUtf8 {
            offset: self.offset(),
        })
    }

    fn list_access(&self, list: &'v [Value<'de>]) -> ListAccess<'v, 'de> {
        ListAccess {
            items: list.iter(),
            base: self.base,
        }
    }

    /// Runs `visit` and tags an error raised inside it with this value's
    /// offset, unless a more precise one is already set.
    fn tag<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| e.or_offset(self.offset()))
    }
}

macro_rules! deserialize_int {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            let value = self.int()?;
            let n = <$ty>::try_from(value).map_err(|_| self.out_of_range(value, stringify!($ty)))?;
            self.tag(visitor.$visit(n))
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDeserializer<'_, 'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.value {
            Value::Int(i) => visitor.visit_i64(i.get()),
            Value::Bytes(b) => visitor.visit_borrowed_bytes(b.as_bytes()),
            Value::List(l) => return self.visit_list(l.as_slice(), visitor),
            Value::Dict(d) => visitor.visit_map(DictAccess::new(d, self.base)),
        };
        self.tag(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.int()? {
            0 => self.tag(visitor.visit_bool(false)),
            1 => self.tag(visitor.visit_bool(true)),
            other => Err(self.out_of_range(other, "bool")),
        }
    }

    deserialize_int! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::Unsupported {
            what: "floating-point numbers",
        })
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::Unsupported {
            what: "floating-point numbers",
        })
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let s = self.str()?;
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => self.tag(visitor.visit_char(c)),
            _ => Err(self.invalid_type("a byte string holding one character")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let s = self.str()?;
        self.tag(visitor.visit_borrowed_str(s))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let b = self.bytes("a byte string")?;
        self.tag(visitor.visit_borrowed_bytes(b))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Absent keys are `None`; a present value is always `Some`.
        self.tag(visitor.visit_some(self))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(Error::Unsupported {
            what: "the unit type",
        })
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(Error::Unsupported {
            what: "unit structs",
        })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == RAW_TOKEN {
            self.tag(visitor.visit_borrowed_bytes(self.value.raw()))
        } else {
            self.tag(visitor.visit_newtype_struct(self))
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::List(l) => self.visit_list(l.as_slice(), visitor),
            _ => Err(self.invalid_type("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Dict(d) => self.tag(visitor.visit_map(DictAccess::new(d, self.base))),
            _ => Err(self.invalid_type("a dictionary")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        const EXPECTED: &str = "a byte string or a one-entry dictionary (enum)";
        let access = match self.value {
            Value::Bytes(b) => EnumAccess {
                variant: b.as_bytes(),
                variant_offset: self.offset(),
                content: None,
                de: self,
            },
            Value::Dict(d) if d.len() == 1 => match d.iter().next() {
                Some((variant, content)) => EnumAccess {
                    variant,
                    variant_offset: offset_in(self.base, variant),
                    content: Some(content),
                    de: self,
                },
                None => return Err(self.invalid_type(EXPECTED)),
            },
            _ => return Err(self.invalid_type(EXPECTED)),
        };
        self.tag(visitor.visit_enum(access))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let b = self.bytes("a byte string")?;
        KeyDeserializer {
            key: b,
            offset: self.offset(),
        }
        .deserialize_identifier(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

impl<'v, 'de> ValueDeserializer<'v, 'de> {
    fn visit_list<V: Visitor<'de>>(
        &self,
        list: &'v [Value<'de>],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = self.list_access(list);
        let value = self.tag(visitor.visit_seq(&mut access))?;
        match access.items.len() {
            0 => Ok(value),
            extra => Err(Error::TrailingItems {
                extra,
                offset: self.offset(),
            }),
        }
    }
}

/// Items of a list.
struct ListAccess<'v, 'de> {
    items: core::slice::Iter<'v, Value<'de>>,
    base: &'de [u8],
}

impl<'de> de::SeqAccess<'de> for ListAccess<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            Some(item) => seed
                .deserialize(ValueDeserializer::new(item, self.base))
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// Entries of a dictionary. Of duplicate keys only the first is visited, as
/// [`Dict::get`] would return it.
struct DictAccess<'v, 'de> {
    entries: core::iter::Enumerate<core::slice::Iter<'v, (&'de [u8], Value<'de>)>>,
    /// For dictionaries with duplicate keys: which entries repeat an earlier key.
    duplicate: Option<Vec<bool>>,
    value: Option<&'v Value<'de>>,
    base: &'de [u8],
}

impl<'v, 'de> DictAccess<'v, 'de> {
    fn new(dict: &'v Dict<'de>, base: &'de [u8]) -> Self {
        let duplicate = if dict.is_sorted() {
            None
        } else {
            find_duplicates(&dict.entries)
        };
        Self {
            entries: dict.entries.iter().enumerate(),
            duplicate,
            value: None,
            base,
        }
    }
}

/// Marks the entries whose key already appeared earlier; `None` if there are
/// none. O(n log n), for dictionaries whose keys are not sorted.
fn find_duplicates(entries: &[(&[u8], Value<'_>)]) -> Option<Vec<bool>> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // Stable, so among equal keys the earliest entry comes first.
    order.sort_by_key(|&i| entries[i].0);
    let mut duplicate: Option<Vec<bool>> = None;
    for pair in order.windows(2) {
        if let [first, second] = *pair
            && entries[first].0 == entries[second].0
        {
            duplicate.get_or_insert_with(|| vec![false; entries.len()])[second] = true;
        }
    }
    duplicate
}

impl<'de> de::MapAccess<'de> for DictAccess<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        for (index, (key, value)) in self.entries.by_ref() {
            if self
                .duplicate
                .as_ref()
                .is_some_and(|d| d.get(index) == Some(&true))
            {
                continue;
            }
            self.value = Some(value);
            let offset = offset_in(self.base, key);
            return seed.deserialize(KeyDeserializer { key, offset }).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(ValueDeserializer::new(value, self.base)),
            None => Err(de::Error::custom("map value requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// The variant of an enum: a byte string (unit variant) or the single entry of
/// a dictionary (other variants).
struct EnumAccess<'v, 'de> {
    variant: &'de [u8],
    /// Where the variant name (or the byte string holding it) starts.
    variant_offset: Option<usize>,
    content: Option<&'v Value<'de>>,
    /// The whole enum value, for errors.
    de: ValueDeserializer<'v, 'de>,
}

impl<'v, 'de> de::EnumAccess<'de> for EnumAccess<'v, 'de> {
    type Error = Error;
    type Variant = VariantAccess<'v, 'de>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), Error> {
        let variant = seed.deserialize(KeyDeserializer {
            key: self.variant,
            offset: self.variant_offset,
        })?;
        Ok((
            variant,
            VariantAccess {
                content: self.content,
                de: self.de,
            },
        ))
    }
}

/// The content of an enum variant.
struct VariantAccess<'v, 'de> {
    content: Option<&'v Value<'de>>,
    de: ValueDeserializer<'v, 'de>,
}

impl<'v, 'de> VariantAccess<'v, 'de> {
    fn content(&self) -> Result<ValueDeserializer<'v, 'de>, Error> {
        match self.content {
            Some(value) => Ok(ValueDeserializer::new(value, self.de.base)),
            None => Err(self
                .de
                .invalid_type("a one-entry dictionary (enum variant with data)")),
        }
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None => Ok(()),
            Some(_) => Err(self.de.invalid_type("a byte string (unit enum variant)")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.content()?)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_seq(self.content()?, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_map(self.content()?, visitor)
    }
}

/// A dictionary key (or enum variant name): a borrowed byte string.
#[derive(Clone, Copy)]
struct KeyDeserializer<'de> {
    key: &'de [u8],
    offset: Option<usize>,
}

impl KeyDeserializer<'_> {
    fn tag<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| e.or_offset(self.offset))
    }
}

impl<'de> de::Deserializer<'de> for KeyDeserializer<'de> {
    type Error = Error;

    /// Text keys are visited as `str`, others as bytes.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match core::str::from_utf8(self.key) {
            Ok(s) => visitor.visit_borrowed_str(s),
            Err(_) => visitor.visit_borrowed_bytes(self.key),
        };
        self.tag(result)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match core::str::from_utf8(self.key) {
            Ok(s) => self.tag(visitor.visit_borrowed_str(s)),
            Err(_) => Err(Error::InvalidUtf8 {
                offset: self.offset,
            }),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.tag(visitor.visit_borrowed_bytes(self.key))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.tag(visitor.visit_some(self))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.tag(visitor.visit_newtype_struct(self))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match core::str::from_utf8(self.key) {
            Ok(s) => {
                let unit_variant = BorrowedStrDeserializer::<'de, Error>::new(s);
                self.tag(visitor.visit_enum(unit_variant))
            }
            Err(_) => Err(Error::InvalidUtf8 {
                offset: self.offset,
            }),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        false
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        unit unit_struct seq tuple tuple_struct map struct
    }
}
