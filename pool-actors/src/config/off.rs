//! How a section of the pool's config is read: a table of settings, `true`
//! for the pool's defaults, or `"off"` / `false` (Candado's
//! [`candado::off`] reads the spellings of "off"). A key the table leaves
//! out takes the pool's default, which for a few knobs differs from
//! Candado's ([`PoolDefault::DIFFERENCES`]): the table's keys are noted
//! as it is read.

use std::fmt;
use std::marker::PhantomData;

use candado::off::{serialize_or_off, OffOr};
use serde::de::{self, value::MapAccessDeserializer, DeserializeSeed, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::PoolDefault;

/// A section that may be switched off.
pub(crate) mod section {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serialize_or_off(value.as_ref(), serializer)
    }

    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + PoolDefault,
    {
        deserializer.deserialize_any(OffOr(Section(PhantomData)))
    }
}

/// A section that is always on (`[restart]`).
pub(crate) mod table {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: Serialize>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + PoolDefault,
    {
        deserializer.deserialize_map(Section(PhantomData))
    }
}

struct Section<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + PoolDefault> Visitor<'de> for Section<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of settings, `true` for the defaults, or \"off\"")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let mut given = Vec::new();
        let mut value = T::deserialize(MapAccessDeserializer::new(Noted {
            map,
            given: &mut given,
        }))?;
        for (key, set) in T::DIFFERENCES {
            if !given.iter().any(|g| g == key) {
                set(&mut value);
            }
        }
        Ok(value)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::pool_default())
    }
}

/// A table's entries, passed on unchanged; each key is noted.
struct Noted<'a, A> {
    map: A,
    given: &'a mut Vec<String>,
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Noted<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.map.next_key::<String>()? else {
            return Ok(None);
        };
        self.given.push(key.clone());
        seed.deserialize(key.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}
