//! `MAX_ACTIVE_RUNS`: a cap on how many runs may be active at once, counted from the ledger's status
//! index when a run is validated. The excess is rejected with a message before a byte of its data is
//! read (issue 16 §1: an uploader cannot start any number of paid runs). The count is read, not
//! reserved, so a burst of simultaneous uploads may overshoot by the few validated in the same
//! moment; a queue that admits the excess later is the bursts issue's (docs/security.md).

use super::*;

/// The statuses in which a run holds, or is about to hold, a paid job or serving step.
pub const ACTIVE_STATUSES: [RunStatus; 4] = [
    RunStatus::Validated,
    RunStatus::Launching,
    RunStatus::Training,
    RunStatus::Provisioning,
];

impl DatasetValidatorService {
    /// The reason a new run may not start, when `MAX_ACTIVE_RUNS` runs are already active.
    pub(super) async fn active_runs_refusal(&self) -> Result<Option<String>, StepError> {
        let Some(max) = self.config.max_active_runs else {
            return Ok(None);
        };
        let mut active = 0usize;
        for status in ACTIVE_STATUSES {
            active += self
                .ledger
                .list_by_status(status, max as usize)
                .await
                .map_err(|e| e.context(format!("counting the {status} runs (MAX_ACTIVE_RUNS)")))?
                .len();
            if active >= max as usize {
                return Ok(Some(format!(
                    "MAX_ACTIVE_RUNS is {max} and {active} runs are already validated, launching, training or provisioning: \
                     this run was not started and nothing was read; upload the dataset again (or `distillery runs retry`) \
                     once one has finished, or raise MAX_ACTIVE_RUNS"
                )));
            }
        }
        Ok(None)
    }
}
