//! `candado-pool`: the worker pool built on Candado's supervision core.
//!
//! Not built yet: this crate has no public API so far. It is where the priority
//! task router, round-robin and least-loaded dispatch, retries with backoff and
//! the dead-letter actor will live, on top of the `candado` supervisors.
#![forbid(unsafe_code)]
