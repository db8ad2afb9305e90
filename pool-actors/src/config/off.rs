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
        deserializer.deserialize_any(SectionVisitor(PhantomData))
    }

    struct SectionVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for SectionVisitor<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table of settings, `true` for the defaults, or \"off\"")
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(Some)
        }

        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            Ok(on.then(T::default))
        }

        fn visit_str<E: de::Error>(self, word: &str) -> Result<Self::Value, E> {
            if is_off(word) {
                Ok(None)
            } else {
                Err(E::invalid_value(de::Unexpected::Str(word), &self))
            }
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
    }
}

/// A duration: a humantime string (`"30s"`), or `"off"` / `false` / `null`.
pub(crate) mod duration {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = value.map(|d| humantime_serde::re::humantime::format_duration(d).to_string());
        serialize_or_off(text, serializer)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl<'de> Visitor<'de> for DurationVisitor {
        type Value = Option<Duration>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"30s\", or \"off\"")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            if is_off(text) {
                return Ok(None);
            }
            humantime_serde::re::humantime::parse_duration(text)
                .map(Some)
                .map_err(|e| E::custom(format!("invalid duration {text:?}: {e} (or \"off\")")))
        }

        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            if on {
                Err(E::invalid_value(de::Unexpected::Bool(true), &self))
            } else {
                Ok(None)
            }
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
        deserializer.deserialize_any(NumberVisitor(PhantomData))
    }

    struct NumberVisitor<T>(PhantomData<T>);

    impl<'de, T: Deserialize<'de>> Visitor<'de> for NumberVisitor<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, or \"off\"")
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
            T::deserialize(n.into_deserializer()).map(Some)
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
            T::deserialize(n.into_deserializer()).map(Some)
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
            T::deserialize(n.into_deserializer()).map(Some)
        }

        fn visit_str<E: de::Error>(self, word: &str) -> Result<Self::Value, E> {
            if is_off(word) {
                Ok(None)
            } else {
                Err(E::invalid_value(de::Unexpected::Str(word), &self))
            }
        }

        fn visit_bool<E: de::Error>(self, on: bool) -> Result<Self::Value, E> {
            if on {
                Err(E::invalid_value(de::Unexpected::Bool(true), &self))
            } else {
                Ok(None)
            }
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
    }
}
