//! Pure domain logic. Nothing in here may import an AWS crate.

pub mod backoff;
pub mod catalog;
pub mod cost;
pub mod errors;
pub mod evaluation;
pub mod guardrails;
pub mod invocation_logs;
pub mod messages;
pub mod naming;
pub mod run;
pub mod settings;
pub mod snapshot;
pub mod tags;
pub mod validation;
