//! The poller's settings.

use crate::config::{process_var, Env};
use crate::domain::catalog::Limits;
use crate::domain::errors::StepError;

/// Poller settings, from the environment with defaults from `data/limits.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    pub initial_wait_seconds: u64,
    pub max_wait_seconds: u64,
    pub max_job_duration_seconds: u64,
    pub give_up_after_permanent_errors: u32,
}

impl PollConfig {
    pub fn defaults(limits: &Limits) -> Self {
        PollConfig {
            initial_wait_seconds: limits.polling.initial_wait_seconds,
            max_wait_seconds: limits.polling.max_wait_seconds,
            max_job_duration_seconds: limits.polling.max_job_duration_hours.saturating_mul(3600),
            give_up_after_permanent_errors: limits.polling.give_up_after_permanent_errors.max(1),
        }
    }

    /// Reads `POLL_INITIAL_WAIT_SECONDS`, `POLL_MAX_WAIT_SECONDS` and `MAX_JOB_DURATION_SECONDS`
    /// through `lookup` (the process environment in Lambda; a map in tests). Unset (or empty, see
    /// [`crate::config`]) means the default; anything else must be a positive whole number.
    pub fn from_lookup(
        limits: &Limits,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StepError> {
        let env = Env::new(lookup);
        let d = Self::defaults(limits);
        let c = PollConfig {
            initial_wait_seconds: env
                .positive_u64("POLL_INITIAL_WAIT_SECONDS", d.initial_wait_seconds)?,
            max_wait_seconds: env.positive_u64("POLL_MAX_WAIT_SECONDS", d.max_wait_seconds)?,
            max_job_duration_seconds: env
                .positive_u64("MAX_JOB_DURATION_SECONDS", d.max_job_duration_seconds)?,
            give_up_after_permanent_errors: d.give_up_after_permanent_errors,
        };
        if c.initial_wait_seconds > c.max_wait_seconds {
            return Err(StepError::config(format!(
                "POLL_INITIAL_WAIT_SECONDS ({}) must not exceed POLL_MAX_WAIT_SECONDS ({})",
                c.initial_wait_seconds, c.max_wait_seconds
            )));
        }
        Ok(c)
    }

    /// Reads the process environment.
    pub fn from_env(limits: &Limits) -> Result<Self, StepError> {
        Self::from_lookup(limits, process_var)
    }
}
