//! The quality gate at the serving step: nothing serves and nothing is bought until an armed
//! run's gate has decided.
//!
//! The student of a distillation job is callable only through an on-demand deployment or a
//! Provisioned Throughput, and throughput is billed by the hour from the moment it is bought. So
//! the evaluation always runs on an on-demand deployment (billed per token, nothing when idle):
//! - `serving: on-demand`: the run's own deployment. Pass → `ready` on it; fail → deleted.
//! - `serving: provisioned`: a deployment made for the evaluation (the validator refuses a
//!   provisioned run whose student has no on-demand deployment in the Region while the gate is
//!   on). Pass → that deployment is deleted, then the throughput is bought as without a gate;
//!   fail → deleted, nothing bought.
//!
//! An evaluation that cannot finish (the state machine hands over its caught error) fails the
//! gate closed: a model nobody could measure is not paid for.

use super::{
    ProvisionOutcome, ProvisionThroughputInput, ProvisionThroughputOutput, ThroughputProvisioner,
};
use crate::domain::errors::StepError;
use crate::domain::evaluation::gate::pct;
use crate::domain::run::{Run, RunStatus, RunUpdate};
use crate::domain::settings::ServingMode;
use crate::ports::PortError;

/// "Error: cause" of a state machine's caught error (`{"Error","Cause"}`), kept short.
fn describe_caught(error: &serde_json::Value) -> String {
    let field = |k: &str| error.get(k).and_then(|v| v.as_str()).unwrap_or("").trim();
    let (name, cause) = (field("Error"), field("Cause"));
    // A Lambda error's Cause is its JSON body: show its message when it has one.
    let cause = serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|v| {
            v.get("errorMessage")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| cause.to_string());
    let text = match (name.is_empty(), cause.is_empty()) {
        (false, false) => format!("{name}: {cause}"),
        (false, true) => name.to_string(),
        (true, false) => cause,
        (true, true) => "no error details".to_string(),
    };
    crate::domain::evaluation::truncate_text(&text, 600)
}

impl ThroughputProvisioner<'_> {
    /// For a run whose gate is armed (and is `provisioning`): `Some(answer)` when the gate ends
    /// the run here, `None` to go on serving as asked (the deployment path asks for the
    /// evaluation once the deployment is Active; after a pass a provisioned run's throughput
    /// path has been started).
    pub(super) async fn settle_gate(
        &self,
        run: Run,
        input: &ProvisionThroughputInput,
    ) -> Result<Option<ProvisionThroughputOutput>, StepError> {
        match (run.gate_passed(), run.evaluation.as_ref()) {
            (None, _) => match &input.evaluation_error {
                Some(error) => {
                    let reason = format!(
                        "quality gate failed closed: the evaluation of the student could not \
                         finish ({}); nothing was bought",
                        describe_caught(error)
                    );
                    self.fail_gate(run, reason, input.attempt).await.map(Some)
                }
                None => Ok(None),
            },
            (Some(false), Some(evaluation)) => {
                let d = &evaluation.decision;
                let reason = format!(
                    "quality gate failed: the student won or tied on {} of {} held-out prompts \
                     ({} wins, {} ties, {} losses); the threshold is {} ({}); nothing was bought",
                    pct(d.summary.score),
                    d.summary.records,
                    d.summary.wins,
                    d.summary.ties,
                    d.summary.losses,
                    pct(d.threshold),
                    d.threshold_origin
                );
                self.fail_gate(run, reason, input.attempt).await.map(Some)
            }
            (Some(true), _)
                if run.settings.serving == ServingMode::Provisioned
                    && run.provisioned_model_name.is_none() =>
            {
                // The evaluation deployment goes first: if the purchase then fails, nothing
                // Distillery made for the evaluation is left behind.
                self.delete_evaluation_deployment(&run).await?;
                self.start(&run).await?;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Deletes the run's on-demand deployment, if it has one; one already gone is fine.
    async fn delete_evaluation_deployment(&self, run: &Run) -> Result<(), StepError> {
        let Some(id) = run
            .deployment_arn
            .clone()
            .or_else(|| run.deployment_name.clone())
        else {
            return Ok(());
        };
        match self.bedrock.delete_custom_model_deployment(&id).await {
            Ok(()) => {
                tracing::info!(run_id = %run.run_id, deployment = %id, "deleted the evaluation deployment");
                Ok(())
            }
            Err(PortError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.context(format!(
                "DeleteCustomModelDeployment {id} (the deployment the quality gate evaluated on)"
            ))),
        }
    }

    /// `provisioning` → `gate_failed`, after deleting the evaluation deployment.
    async fn fail_gate(
        &self,
        run: Run,
        reason: String,
        attempt: u32,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        self.delete_evaluation_deployment(&run).await?;
        tracing::warn!(run_id = %run.run_id, %reason, "quality gate failed");
        let mut update = RunUpdate::to(RunStatus::GateFailed).with_detail(reason.clone());
        update.failure_reason = Some(reason);
        let run = self
            .write(&run, &[RunStatus::Provisioning], &update)
            .await?;
        Ok(self.output(&run, ProvisionOutcome::GateFailed, None, attempt))
    }
}
