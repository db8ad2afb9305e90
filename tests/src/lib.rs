#![doc = include_str!("../../README.md")]

/// docs/testing.md: its examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/testing.md")]
mod testing_md {}
