//! Fixtures shared by integration tests: a real moto server process on a free loopback port, SDK
//! configuration aimed at it, and (see `slack_sink`) a local Slack webhook sink.

pub mod moto;
pub mod slack_sink;

pub use moto::{sdk_config, Moto};
