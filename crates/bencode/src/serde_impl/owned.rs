//! serde implementations for [`OwnedValue`] and [`Value`].

use core::fmt;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use super::raw::{BytesRef, RAW_TOKEN};
use crate::{OwnedValue, Value};

impl Serialize for OwnedValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Int(i) => serializer.serialize_i64(*i),
            Self::Bytes(b) => serializer.serialize_bytes(b),
            Self::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Self::Dict(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(&BytesRef(k), v)?;
                }
                map.end()
            }
            Self::Raw(raw) => serializer.serialize_newtype_struct(RAW_TOKEN, &BytesRef(raw)),
        }
    }
}

/// Serializes the structure (not the raw bytes): with [`crate::to_vec`] the
/// output is canonical, and duplicate keys are an error.
impl Serialize for Value<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Int(i) => serializer.serialize_i64(i.get()),
            Value::Bytes(b) => serializer.serialize_bytes(b.as_bytes()),
            Value::List(l) => {
                let mut seq = serializer.serialize_seq(Some(l.len()))?;
                for item in l {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Dict(d) => {
                let mut map = serializer.serialize_map(Some(d.len()))?;
                for (k, v) in d.iter() {
                    map.serialize_entry(&BytesRef(k), v)?;
                }
                map.end()
            }
        }
    }
}

/// A dictionary key read from any deserializer as bytes.
struct KeyBuf(Vec<u8>);

impl<'de> Deserialize<'de> for KeyBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::bytes::deserialize(deserializer).map(Self)
    }
}

/// Reads any self-describing input: integers, strings and byte strings, lists
/// and maps. Booleans become 0 or 1. Of duplicate map keys the first is kept.
impl<'de> Deserialize<'de> for OwnedValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OwnedVisitor;

        impl<'de> Visitor<'de> for OwnedVisitor {
            type Value = OwnedValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a bencode value")
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OwnedValue, E> {
                Ok(OwnedValue::Int(i64::from(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OwnedValue, E> {
                Ok(OwnedValue::Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OwnedValue, E> {
                i64::try_from(v).map(OwnedValue::Int).map_err(|_| {
                    E::invalid_value(de::Unexpected::Unsigned(v), &"an integer that fits i64")
                })
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<OwnedValue, E> {
                Ok(OwnedValue::Bytes(v.as_bytes().to_vec()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<OwnedValue, E> {
                Ok(OwnedValue::Bytes(v.into_bytes()))
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<OwnedValue, E> {
                Ok(OwnedValue::Bytes(v.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<OwnedValue, E> {
                Ok(OwnedValue::Bytes(v))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OwnedValue, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OwnedValue::List(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OwnedValue, A::Error> {
                let mut entries = BTreeMap::new();
                while let Some(KeyBuf(key)) = map.next_key()? {
                    match entries.entry(key) {
                        Entry::Vacant(e) => {
                            e.insert(map.next_value()?);
                        }
                        Entry::Occupied(_) => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(OwnedValue::Dict(entries))
            }
        }

        deserializer.deserialize_any(OwnedVisitor)
    }
}
