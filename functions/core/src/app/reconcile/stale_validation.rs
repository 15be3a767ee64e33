//! Pass 0: runs stranded before launch. A `received`/`validating` run whose validator gave up (its
//! retries ran out, or the Lambda timed out) is never written again: it would stay in progress
//! forever, block its identity (a re-upload is a Duplicate) and refuse `runs retry`. Past
//! `RECONCILE_STALE_VALIDATION_SECONDS` without an update it is recorded `failed`, which frees it for
//! a retry, and named in the summary.

use super::{Action, Finding, ReconcileReport, Reconciler, TRAINING_RUNS_PER_PASS};
use crate::domain::errors::StepError;
use crate::domain::run::{Run, RunStatus, RunUpdate};
use crate::ports::PortError;

/// The failure reason recorded on a run whose validation never finished.
pub fn stale_validation_reason(run: &Run) -> String {
    format!(
        "validation did not finish (last update {}); start a new attempt with `distillery runs retry {}`",
        run.updated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        run.run_id
    )
}

impl Reconciler<'_> {
    pub(super) async fn stale_validations(
        &self,
        report: &mut ReconcileReport,
    ) -> Result<(), StepError> {
        let now = self.clock.now();
        let stale_after = self.config.stale_validation_seconds;
        for status in [RunStatus::Received, RunStatus::Validating] {
            let runs = self
                .ledger
                .list_by_status(status, TRAINING_RUNS_PER_PASS)
                .await
                .map_err(|e| e.context(format!("listing {status} runs")))?;
            for run in runs {
                report.validation_runs_checked += 1;
                let idle = (now - run.updated_at).num_seconds();
                // A validator still inside its time (and anything in the quiet period) is live.
                if idle < stale_after as i64 || self.quiet(run.updated_at) {
                    continue;
                }
                let reason = stale_validation_reason(&run);
                let problem = format!(
                    "the run has been {} for {idle}s without an update, longer than \
                     RECONCILE_STALE_VALIDATION_SECONDS={stale_after}: its validator gave up",
                    run.status
                );
                let (action, detail) = if self.config.dry_run {
                    (
                        Action::WouldRepair,
                        format!("would record failed: {reason}"),
                    )
                } else {
                    let mut update = RunUpdate::to(RunStatus::Failed).with_detail(reason.clone());
                    update.failure_reason = Some(reason.clone());
                    update.finished_at = Some(now);
                    // Conditional on the status read: a validator that wrote meanwhile wins.
                    match self
                        .ledger
                        .update(&run.run_id, &[run.status], &update)
                        .await
                    {
                        Ok(_) => (Action::Repaired, format!("recorded failed: {reason}")),
                        Err(PortError::Conflict(m)) => {
                            tracing::info!(run_id = %run.run_id, "not reconciled now: {m}");
                            continue;
                        }
                        Err(e) => (
                            Action::NeedsAttention,
                            format!("recording it failed did not work: {e}; the next pass retries"),
                        ),
                    }
                };
                report.findings.push(Finding {
                    run_id: Some(run.run_id.clone()),
                    resource_arn: None,
                    problem,
                    action,
                    detail,
                });
            }
        }
        Ok(())
    }
}
