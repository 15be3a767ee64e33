//! The tags Distillery puts on everything it creates in Bedrock (jobs, custom models, Provisioned
//! Throughput). The run-id tag is how the reconciler finds a resource that no live run owns, so every
//! creator and the reconciler use these constants, never a spelled-out key.

/// The run that created the resource; its value is the run id.
pub const RUN_ID_TAG: &str = "distillery:run-id";
/// Marks a resource as created by Distillery; its value is [`MANAGED_BY_VALUE`].
pub const MANAGED_BY_TAG: &str = "distillery:managed-by";
pub const MANAGED_BY_VALUE: &str = "distillery";
