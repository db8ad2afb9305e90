//! An explicit list of restart or retry delays.

use std::time::Duration;

use crate::SpecError;

/// An explicit retry schedule: the n-th delay of a streak is the n-th entry,
/// and the last entry repeats once the list runs out.
///
/// Written for schedules a team agreed on in words ("retry after 1, 5 and 30
/// minutes") rather than as `base × multiplier^n`. It holds at most
/// [`BackoffSteps::MAX`] delays inline, so that [`BackoffConfig`] stays `Copy`
/// (supervisors copy it on every restart they plan). Entries must not
/// decrease: the schedule a reader sees is the one that runs.
///
/// ```
/// use std::time::Duration;
/// use candado::BackoffSteps;
///
/// let minutes = |m: u64| Duration::from_secs(60 * m);
/// let steps = BackoffSteps::new(&[minutes(1), minutes(5), minutes(30)]).unwrap();
/// assert_eq!(steps.delay(0), minutes(1));
/// assert_eq!(steps.delay(2), minutes(30));
/// assert_eq!(steps.delay(9), minutes(30)); // the last one repeats
/// assert!(BackoffSteps::new(&[]).is_err());
/// ```
///
/// [`BackoffConfig`]: crate::BackoffConfig
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffSteps {
    delays: [Duration; BackoffSteps::MAX],
    len: u8,
}

impl BackoffSteps {
    /// Most delays a schedule holds.
    pub const MAX: usize = 8;

    /// A schedule of `delays`, checked: not empty, at most [`Self::MAX`]
    /// entries, never decreasing. `Duration::MAX` entries are allowed (they
    /// are bounded by the backoff's `cap` when used).
    pub fn new(delays: &[Duration]) -> Result<Self, SpecError> {
        if delays.is_empty() {
            return Err(SpecError::BackoffStepsEmpty);
        }
        if delays.len() > Self::MAX {
            return Err(SpecError::BackoffStepsTooMany {
                len: delays.len(),
                max: Self::MAX,
            });
        }
        if let Some(i) = delays.windows(2).position(|w| w[1] < w[0]) {
            return Err(SpecError::BackoffStepsDecrease {
                index: i + 1,
                delay: delays[i + 1],
                previous: delays[i],
            });
        }
        let mut inline = [Duration::ZERO; Self::MAX];
        inline[..delays.len()].copy_from_slice(delays);
        Ok(Self {
            delays: inline,
            len: delays.len() as u8,
        })
    }

    /// The delays, in order.
    pub fn as_slice(&self) -> &[Duration] {
        &self.delays[..usize::from(self.len)]
    }

    /// The delay of attempt `n` (0-based); the last entry repeats.
    pub fn delay(&self, attempt: u32) -> Duration {
        let slice = self.as_slice();
        let last = slice.len().saturating_sub(1);
        let index = usize::try_from(attempt).map_or(last, |n| n.min(last));
        slice.get(index).copied().unwrap_or_default()
    }

    /// The first delay.
    pub fn first(&self) -> Duration {
        self.delay(0)
    }

    /// The last (and largest) delay.
    pub fn last(&self) -> Duration {
        self.delay(u32::MAX)
    }
}

/// A list of humantime durations (`["1m", "5m", "30m"]`), checked as
/// [`BackoffSteps::new`] checks it.
#[cfg(feature = "serde")]
impl serde::Serialize for BackoffSteps {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.as_slice().len()))?;
        for delay in self.as_slice() {
            seq.serialize_element(&humantime_serde::Serde::from(*delay))?;
        }
        seq.end()
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for BackoffSteps {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let list: Vec<humantime_serde::Serde<Duration>> =
            serde::Deserialize::deserialize(deserializer)?;
        let delays: Vec<Duration> = list.into_iter().map(|d| d.into_inner()).collect();
        Self::new(&delays).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_empty_long_and_decreasing_lists() {
        assert_eq!(BackoffSteps::new(&[]), Err(SpecError::BackoffStepsEmpty));
        let nine = [Duration::from_secs(1); 9];
        assert!(matches!(
            BackoffSteps::new(&nine),
            Err(SpecError::BackoffStepsTooMany { len: 9, max: 8 })
        ));
        let down = [Duration::from_secs(5), Duration::from_secs(1)];
        assert!(matches!(
            BackoffSteps::new(&down),
            Err(SpecError::BackoffStepsDecrease { index: 1, .. })
        ));
    }

    #[test]
    fn the_last_entry_repeats_and_max_entries_are_kept() {
        let steps = BackoffSteps::new(&[Duration::from_secs(1), Duration::MAX]).unwrap();
        assert_eq!(steps.first(), Duration::from_secs(1));
        assert_eq!(steps.delay(1), Duration::MAX);
        assert_eq!(steps.delay(u32::MAX), Duration::MAX);
        assert_eq!(steps.last(), Duration::MAX);
        assert_eq!(steps.as_slice().len(), 2);
    }
}
