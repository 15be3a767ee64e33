//! Distillery's AWS side: one adapter per port of `distillery-core` and the Lambda glue.
//!
//! - [`bedrock`] (`CustomizationService`), [`bedrock_runtime`] (`ModelRuntime`, Converse), [`dynamodb`] (`RunLedger`), [`s3`] (`DatasetStore`),
//!   [`sns`] (`MessagePublisher`), [`secrets`] (`SecretSource`), [`sfn`] (`PipelineStarter`),
//!   [`slack`] (`ChatWebhook`, over HTTPS with reqwest; the Block Kit layout in [`slack_blocks`]).
//! - [`sdk_error`]: every SDK error classified into a `PortError` the same way.
//! - [`lambda`]: what the five binaries share (tracing, env, input parsing, serving a step).
//!
//! The core crate never depends on this one; this one depends on the core.

pub mod bedrock;
pub mod bedrock_runtime;
pub mod dynamodb;
pub mod lambda;
pub mod s3;
pub mod sdk_error;
pub mod secrets;
pub mod sfn;
pub mod slack;
pub mod slack_blocks;
pub mod sns;
