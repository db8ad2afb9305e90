//! How an optional knob is switched off. TOML has no `null`, so every
//! optional knob also takes `"off"` (or `false`), in TOML and JSON alike;
//! JSON's `null` still works, and `None` is written as `"off"`:
//!
//! - a section (`liveness`, `memory`, `breaker`, `autoscale`): a table of
//!   settings, `true` for the defaults, or `"off"` / `false`;
//! - a duration (`promote_after`, `heartbeat_interval`, ...): a humantime
//!   string (`"30s"`) or `"off"`;
//! - a number (`failure_rate`, `warning_percent`, `max_tasks`, ...): the
//!   number or `"off"`.
//!
//! One visitor ([`OffOr`]) reads the spellings of "off" for all three and
//! hands anything else to the visitor of the value itself.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::{self, value::MapAccessDeserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The spelling of "switched off".
const OFF: &str = "off";

fn is_off(word: &str) -> bool {
    word.eq_ignore_ascii_case(OFF) || word.eq_ignore_ascii_case("none")
}

/// Writes `None` as `"off"`, `Some(value)` as the value.
fn serialize_or_off<S: Serializer, T: Serialize>(
    value: Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => value.serialize(serializer),
        None => serializer.serialize_str(OFF),
    }
}

/// `None` for `"off"`, `"none"`, `false` or `null`; anything else is read
/// by the value's own visitor `V`.
struct OffOr<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for OffOr<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each value's visitor names "off" too: it words the errors.
        self.0.expecting(f)
    }

    fn visit_str<E: de::Error>(self, word: &str) -> Result<Self::Value, E> {
        if is_off(word) {
            return Ok(None);
        }
        self.0.visit_str(word).map(Some)
    }

    fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
        if !on {
            return Ok(None);
        }
        self.0.visit_bool(on).map(Some)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map).map(Some)
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        self.0.visit_u64(n).map(Some)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        self.0.visit_i64(n).map(Some)
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
        self.0.visit_f64(n).map(Some)
    }
}

/// A section: a table, `true` (defaults), or `"off"` / `false` / `null`.
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
        T: Deserialize<'de> + Default,
    {
        deserializer.deserialize_any(OffOr(Section(PhantomData)))
    }

    struct Section<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for Section<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of settings, `true` for the defaults, or \"off\"")
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map))
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
            Ok(T::default())
        }
    }
}

/// A duration: a humantime string (`"30s"`), or `"off"` / `false` / `null`.
pub(crate) mod duration {
    use humantime_serde::re::humantime;

    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = value.map(|d| humantime::format_duration(d).to_string());
        serialize_or_off(text, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_any(OffOr(Humantime))
    }

    struct Humantime;

    impl Visitor<'_> for Humantime {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"30s\", or \"off\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            humantime::parse_duration(text)
                .map_err(|e| E::custom(format!("invalid duration {text:?}: {e} (or \"off\")")))
        }
    }
}

/// A number (`0.5`, `100`), or `"off"` / `false` / `null`.
pub(crate) mod number {
    use super::*;

    pub(crate) fn serialize<S: Serializer, T: Serialize + Copy>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serialize_or_off(*value, serializer)
    }

    pub(crate) fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        deserializer.deserialize_any(OffOr(Number(PhantomData)))
    }

    /// Any number, read as `T` (an integer knob refuses a fraction).
    struct Number<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for Number<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, or \"off\"")
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
            T::deserialize(n.into_deserializer())
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
            T::deserialize(n.into_deserializer())
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
            T::deserialize(n.into_deserializer())
        }
    }
}
