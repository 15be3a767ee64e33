//! The provisioner's on-demand path (`serving: on-demand`): a custom model deployment, billed per
//! token and nothing when idle, whose ARN is the `modelId` for Converse/InvokeModel.
//!
//! Same idempotency as the throughput path: the run is moved to `provisioning` with its
//! deterministic deployment name BEFORE Bedrock is called, every call looks the deployment up
//! first (by the recorded ARN, else by name, so an attempt that crashed after creating but before
//! recording the ARN is found), and the create carries a client request token derived from the
//! run. No model-unit or commitment guardrail applies: nothing is bought by the hour.

use super::{ProvisionOutcome, ProvisionThroughputOutput, Purchase, ThroughputProvisioner};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::naming;
use crate::domain::run::{Run, RunStatus, RunUpdate};
use crate::domain::tags;
use crate::ports::{DeploymentRequest, DeploymentState, DeploymentStatus, PortError};

/// The run's deployment name: unique per run, stable across retries.
pub fn deployment_name_for(run: &Run) -> String {
    naming::deployment_name(&run.run_id, &run.dataset.display_name())
}

impl ThroughputProvisioner<'_> {
    /// `completed` → `provisioning`, recording the deployment name before Bedrock is called.
    pub(super) async fn start_deployment(&self, run: &Run) -> Result<Run, StepError> {
        if run.custom_model_arn.is_none() {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {} is completed but has no custom model ARN recorded",
                    run.run_id
                ),
            ));
        }
        let name = deployment_name_for(run);
        let mut update = RunUpdate::to(RunStatus::Provisioning)
            .with_detail(format!("creating on-demand custom model deployment {name}"));
        update.deployment_name = Some(name);
        self.write(
            run,
            &[RunStatus::Completed, RunStatus::Provisioning],
            &update,
        )
        .await
    }

    /// One step of the `provisioning` loop for an on-demand run: find (or, when `purchase`
    /// allows, create) the run's deployment and record what Bedrock says about it.
    pub(super) async fn advance_deployment(
        &self,
        run: Run,
        attempt: u32,
        purchase: Purchase,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let name = run
            .deployment_name
            .clone()
            .unwrap_or_else(|| deployment_name_for(&run));
        let id = run.deployment_arn.clone().unwrap_or_else(|| name.clone());
        let state = match self.bedrock.get_custom_model_deployment(&id).await {
            Ok(state) => state,
            // Create only when no ARN is recorded (found by name, or not made yet). A recorded
            // deployment Bedrock no longer knows was deleted (`runs retire`, or by hand): creating
            // it again would leave one no run owns.
            Err(PortError::NotFound(m))
                if purchase == Purchase::Never || run.deployment_arn.is_some() =>
            {
                return self.record_deployment_gone(run, &id, &m, attempt).await;
            }
            Err(PortError::NotFound(_)) => {
                let arn = self.create_deployment(&run, &name).await?;
                let mut update = RunUpdate::to(RunStatus::Provisioning)
                    .with_detail(format!("on-demand custom model deployment {arn} requested"));
                update.deployment_arn = Some(arn);
                update.deployment_name = Some(name);
                let run = self
                    .write(&run, &[RunStatus::Provisioning], &update)
                    .await?;
                return Ok(self.output(&run, ProvisionOutcome::Creating, None, attempt));
            }
            Err(e) => return Err(e.context(format!("GetCustomModelDeployment {id}"))),
        };
        self.record_deployment_state(run, state, attempt).await
    }

    async fn create_deployment(&self, run: &Run, name: &str) -> Result<String, StepError> {
        let model_arn = run.custom_model_arn.clone().ok_or_else(|| {
            StepError::new(
                ErrorType::Conflict,
                format!("run {} has no custom model ARN to deploy", run.run_id),
            )
        })?;
        let req = DeploymentRequest {
            deployment_name: name.to_string(),
            model_arn,
            description: Some(format!(
                "Distillery run {} ({})",
                run.run_id,
                run.dataset.display_name()
            )),
            client_request_token: naming::deployment_client_request_token(&run.run_id),
            tags: tags::owned_by(&run.run_id),
        };
        tracing::info!(run_id = %run.run_id, deployment_name = %name, "creating custom model deployment");
        self.bedrock
            .create_custom_model_deployment(&req)
            .await
            .map_err(|e| e.context(format!("CreateCustomModelDeployment {name}")))
    }

    async fn record_deployment_state(
        &self,
        run: Run,
        state: DeploymentState,
        attempt: u32,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let arn = state.deployment_arn;
        let (status, outcome, detail, reason) = match state.status {
            DeploymentStatus::Creating => {
                // Record the ARN once (an earlier attempt may have crashed before doing so);
                // otherwise nothing changed and nothing is written.
                if run.deployment_arn.as_deref() == Some(arn.as_str()) {
                    return Ok(self.output(&run, ProvisionOutcome::Creating, None, attempt));
                }
                (
                    RunStatus::Provisioning,
                    ProvisionOutcome::Creating,
                    format!("on-demand custom model deployment {arn} is Creating"),
                    None,
                )
            }
            // Serving waits for the quality gate: evaluate on the deployment first. A decided
            // gate never makes this deployment `ready` here unless it passed and the run serves
            // on demand: a failed student is never served, and a provisioned run's evaluation
            // deployment is not its serving (the provisioner's gate step deletes it and buys the
            // throughput). So the reconciler, which only reads, can never serve either.
            DeploymentStatus::Active
                if run.gate_armed()
                    && (run.gate_passed() != Some(true)
                        || run.settings.serving
                            != crate::domain::settings::ServingMode::OnDemand) =>
            {
                if run.deployment_arn.as_deref() == Some(arn.as_str()) {
                    return Ok(self.output(&run, ProvisionOutcome::Evaluate, None, attempt));
                }
                (
                    RunStatus::Provisioning,
                    ProvisionOutcome::Evaluate,
                    format!(
                        "on-demand custom model deployment {arn} is Active; evaluating the student"
                    ),
                    None,
                )
            }
            DeploymentStatus::Active => (
                RunStatus::Ready,
                ProvisionOutcome::InService,
                format!("on-demand custom model deployment {arn} is Active"),
                None,
            ),
            DeploymentStatus::Failed => {
                let reason = state
                    .failure_message
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| {
                        "Bedrock reported the custom model deployment Failed without a message"
                            .into()
                    });
                (
                    RunStatus::ProvisioningFailed,
                    ProvisionOutcome::Failed,
                    format!("on-demand custom model deployment {arn} Failed: {reason}"),
                    Some(reason),
                )
            }
        };
        let mut update = RunUpdate::to(status).with_detail(detail);
        update.deployment_arn = Some(arn);
        update.failure_reason = reason;
        let run = self
            .write(&run, &[RunStatus::Provisioning], &update)
            .await?;
        Ok(self.output(&run, outcome, None, attempt))
    }

    /// The deployment the run records is gone from Bedrock (deleted): nothing serves the model.
    async fn record_deployment_gone(
        &self,
        run: Run,
        id: &str,
        not_found: &str,
        attempt: u32,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let reason = format!(
            "Bedrock no longer knows custom model deployment {id} ({not_found}): nothing serves \
             the model on demand"
        );
        let mut update = RunUpdate::to(RunStatus::ProvisioningFailed).with_detail(reason.clone());
        update.failure_reason = Some(reason);
        let run = self
            .write(&run, &[RunStatus::Provisioning], &update)
            .await?;
        Ok(self.output(&run, ProvisionOutcome::Failed, None, attempt))
    }
}
