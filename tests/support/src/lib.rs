//! Fixtures shared by integration tests: a real moto server process on a free loopback port, SDK
//! configuration aimed at it, (see `slack_sink`) a local Slack webhook sink, and (see `sfn_local`)
//! a local Step Functions task-token endpoint.

pub mod moto;
pub mod sfn_local;
pub mod slack_sink;

pub use moto::{sdk_config, Moto};
