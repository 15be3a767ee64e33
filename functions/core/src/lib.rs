//! Distillery's library.
//!
//! Layers (the layout is the architecture):
//! - [`domain`]: pure rules and types: dataset validation, runs and their statuses, settings, naming,
//!   backoff, guardrails, message rendering. No AWS crate is imported here.
//! - [`ports`]: the narrow traits the use cases need from the outside world.
//! - [`app`]: the use cases behind each Lambda, written only against [`domain`] and [`ports`].
//! - [`config`]: the one reader of environment variables (one meaning for "empty", errors that name
//!   the variable), used by every configuration and by the data files of `domain::catalog`.
//!
//! This crate depends on no AWS SDK, HTTP client, Lambda runtime or async runtime (CI checks it:
//! `scripts/check-core-deps.sh`). The AWS adapters and the Lambda glue are in `distillery-aws`.
//!
//! `testing` (hidden) holds what the tests of every crate share: fixtures, fakes of the ports
//! (`testing::fakes`), in-memory adapters (`testing::memory`) with the same semantics as the AWS
//! ones, and the contract every run ledger passes (`testing::ledger_contract`).

pub mod app;
pub mod config;
pub mod domain;
pub mod ports;
#[doc(hidden)]
pub mod testing;
