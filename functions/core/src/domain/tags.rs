//! The tags Distillery puts on everything it creates in Bedrock (jobs, custom models, Provisioned
//! Throughput). The run-id tag is how the reconciler finds a resource that no live run owns, so every
//! creator and the reconciler use these constants, never a spelled-out key.

/// The run that created the resource; its value is the run id.
pub const RUN_ID_TAG: &str = "distillery:run-id";
/// Marks a resource as created by Distillery; its value is [`MANAGED_BY_VALUE`].
pub const MANAGED_BY_TAG: &str = "distillery:managed-by";
pub const MANAGED_BY_VALUE: &str = "distillery";

/// The tags every resource Distillery creates for a run carries: whose it is, and that Distillery
/// made it (what the reconciler and the tag-scoped IAM deletes rely on).
pub fn owned_by(run_id: &super::run::RunId) -> std::collections::BTreeMap<String, String> {
    std::collections::BTreeMap::from([
        (RUN_ID_TAG.to_string(), run_id.to_string()),
        (MANAGED_BY_TAG.to_string(), MANAGED_BY_VALUE.to_string()),
    ])
}
