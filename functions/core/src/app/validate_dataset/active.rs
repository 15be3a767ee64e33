//! `MAX_ACTIVE_RUNS`: a cap on how many runs may be active at once, counted from the ledger's status
//! index when a run is validated. The excess is rejected with a message before a byte of its data is
//! read (issue 16 §1: an uploader cannot start any number of paid runs). The count is read, not
//! reserved, so a burst of simultaneous uploads may overshoot by the few validated in the same
//! moment. Queued runs count: they wait for a job slot (issue 15, `MAX_CONCURRENT_JOBS` bounds how
//! many train at once) but each will be paid for, so this stays a cap on what one burst commits.

use super::*;

/// The statuses in which a run holds, waits for, or is about to hold a paid job or serving step.
pub const ACTIVE_STATUSES: [RunStatus; 6] = [
    RunStatus::Validated,
    RunStatus::Queued,
    RunStatus::Launching,
    RunStatus::Training,
    RunStatus::Provisioning,
    RunStatus::ServingQueued,
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
                    "MAX_ACTIVE_RUNS is {max} and {active} runs are already validated, queued, launching, training or provisioning: \
                     this run was not started and nothing was read; upload the dataset again (or `distillery runs retry`) \
                     once one has finished, or raise MAX_ACTIVE_RUNS"
                )));
            }
        }
        Ok(None)
    }
}
