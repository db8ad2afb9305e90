//! How an optional knob of a config is switched off (with the `serde`
//! feature). TOML has no `null`, so every optional knob also takes `"off"`
//! (or `false`), in TOML and JSON alike; JSON's `null` still works, and
//! `None` is written as `"off"`:
//!
//! - a duration ([`LivenessConfig::heartbeat_interval`], ...): a humantime
//!   string (`"30s"`) or `"off"` ([`duration`]);
//! - a number ([`BreakerConfig::failure_rate`], [`MemoryConfig::max_tasks`],
//!   ...): the number or `"off"` ([`number`]).
//!
//! One visitor ([`OffOr`]) reads the spellings of "off" and hands anything
//! else to the visitor of the value itself; a config of your own (a section
//! that may be switched off, say) can use it too.
//!
//! ```
//! # use std::time::Duration;
//! #[derive(serde::Deserialize)]
//! struct Knobs {
//!     #[serde(with = "candado::off::duration")]
//!     every: Option<Duration>,
//! }
//! let on: Knobs = serde_json::from_str(r#"{"every": "30s"}"#).unwrap();
//! assert_eq!(on.every, Some(Duration::from_secs(30)));
//! let off: Knobs = serde_json::from_str(r#"{"every": "off"}"#).unwrap();
//! assert_eq!(off.every, None);
//! ```
//!
//! [`LivenessConfig::heartbeat_interval`]: crate::LivenessConfig::heartbeat_interval
//! [`BreakerConfig::failure_rate`]: crate::BreakerConfig::failure_rate
//! [`MemoryConfig::max_tasks`]: crate::MemoryConfig::max_tasks

use std::fmt;
use std::time::Duration;

use serde::de::{self, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The spelling of "switched off".
const OFF: &str = "off";

fn is_off(word: &str) -> bool {
    word.eq_ignore_ascii_case(OFF) || word.eq_ignore_ascii_case("none")
}

/// Writes `None` as `"off"`, `Some(value)` as the value.
pub fn serialize_or_off<S: Serializer, T: Serialize>(
    value: Option<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => value.serialize(serializer),
        None => serializer.serialize_str(OFF),
    }
}

/// `None` for `"off"`, `"none"`, `false` or `null`; anything else is read
/// by the value's own visitor `V` (a map too: a section of settings).
#[derive(Debug)]
pub struct OffOr<V>(pub V);

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

/// A duration: a humantime string (`"30s"`), or `"off"` / `false` / `null`;
/// `#[serde(with = "candado::off::duration")]` on an `Option<Duration>`.
pub mod duration {
    use humantime_serde::re::humantime;

    use super::*;

    /// Writes a humantime string, or `"off"`.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = value.map(|d| humantime::format_duration(d).to_string());
        serialize_or_off(text, serializer)
    }

    /// Reads a humantime string, or `"off"` / `false` / `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
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

/// A number (`0.5`, `100`), or `"off"` / `false` / `null`;
/// `#[serde(with = "candado::off::number")]` on an `Option` of a number.
pub mod number {
    use std::marker::PhantomData;

    use super::*;

    /// Writes the number, or `"off"`.
    pub fn serialize<S: Serializer, T: Serialize + Copy>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serialize_or_off(*value, serializer)
    }

    /// Reads a number, or `"off"` / `false` / `null`.
    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
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
