//! Distillery's library.
//!
//! Layers (the layout is the architecture):
//! - [`domain`]: pure rules and types: dataset validation, runs and their statuses, settings, naming,
//!   backoff, guardrails, message rendering. No AWS crate is imported here.
//! - [`ports`]: the narrow traits the use cases need from the outside world.
//! - [`app`]: the use cases behind each Lambda, written only against [`domain`] and [`ports`].
//! - [`adapters`]: one AWS adapter per port (plus in-memory ones for tests), and the Lambda glue.
//!
//! `testing` (hidden) holds the fixtures the unit tests and the integration test crates share.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod ports;
#[doc(hidden)]
pub mod testing;
