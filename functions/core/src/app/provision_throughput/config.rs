//! The provisioner's settings, read from the environment once per container.

use super::*;

/// Provisioner settings, from the environment with defaults from `data/limits.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionConfig {
    pub policy: ServingPolicy,
    pub initial_wait_seconds: u64,
    pub max_wait_seconds: u64,
    /// The state machine's provisioning loop bound (`throughput.provisioningBudgetChecks`).
    pub budget_checks: u32,
    /// How long a run waits for serving capacity Bedrock refused for its quota
    /// (`MAX_QUEUE_HOURS`), and how often it tries again (`QUOTA_RETRY_SECONDS`).
    pub queue: crate::app::launch_job::AdmissionConfig,
}

impl ProvisionConfig {
    /// The longest a live execution keeps checking a throughput: the waits of every check of the
    /// budget. The reconciler leaves a `provisioning` run alone for this long (checks while
    /// `Creating` write nothing, so the run's `updated_at` says nothing about whether it is live).
    pub fn provisioning_window_seconds(&self) -> u64 {
        (0..self.budget_checks)
            .map(|attempt| {
                next_wait_seconds(self.initial_wait_seconds, self.max_wait_seconds, attempt)
            })
            .sum()
    }
}

impl ProvisionConfig {
    /// Reads `ALLOW_PROVISIONING`, `MAX_MODEL_UNITS`, `ALLOWED_COMMITMENTS` (comma list of `None`, `OneMonth`,
    /// `SixMonths`), `POLL_INITIAL_WAIT_SECONDS` and `POLL_MAX_WAIT_SECONDS` through `lookup`.
    /// Unset (or empty, see [`crate::config`]) means the default from `limits`.
    pub fn from_lookup(
        limits: &Limits,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StepError> {
        let env = Env::new(lookup);
        let policy = ServingPolicy::from_env(&env, limits)?;
        let initial_wait_seconds = env.positive_u64(
            "POLL_INITIAL_WAIT_SECONDS",
            limits.polling.initial_wait_seconds,
        )?;
        let max_wait_seconds =
            env.positive_u64("POLL_MAX_WAIT_SECONDS", limits.polling.max_wait_seconds)?;
        Ok(ProvisionConfig {
            policy,
            initial_wait_seconds,
            max_wait_seconds,
            budget_checks: limits.throughput.provisioning_budget_checks,
            queue: crate::app::launch_job::AdmissionConfig::from_env(&env)?,
        })
    }

    /// Reads the process environment.
    pub fn from_env(limits: &Limits) -> Result<Self, StepError> {
        Self::from_lookup(limits, process_var)
    }
}
