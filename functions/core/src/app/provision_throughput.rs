//! Use case: serve a distilled model (the `throughput-provisioner` Lambda): buy Provisioned
//! Throughput (`serving: provisioned`, here) or create an on-demand custom model deployment
//! (`serving: on-demand`, in [`deployment`]).
//!
//! Opt-in only: nothing happens unless the run's settings ask for serving. A run that does not ask
//! stays `completed`, which is its end state without serving.
//!
//! Provisioned Throughput is billed per model unit per hour until it is deleted, so this step:
//! - checks the cost guardrails again at purchase time, with its own configuration
//!   (`MAX_MODEL_UNITS`, `ALLOWED_COMMITMENTS`), because settings were resolved at upload time and the
//!   stack's policy may have been tightened since;
//! - buys at most one Provisioned Throughput per run, even when retried: the run is moved to
//!   `provisioning` with its deterministic provisioned model name BEFORE Bedrock is called, every
//!   call first looks the name up (`GetProvisionedModelThroughput`), and the create call carries a
//!   `clientRequestToken` derived from the run, so Bedrock itself deduplicates a retried create.
//!
//! The state machine calls this step in a loop (with a Wait of `nextWaitSeconds`) until the outcome
//! is `in_service`, `failed` or `not_requested`.

use serde::{Deserialize, Serialize};

use crate::config::{process_var, Env};
use crate::domain::backoff::next_wait_seconds;
use crate::domain::catalog::Limits;
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::guardrails::check_throughput;
use crate::domain::naming;
use crate::domain::run::{Run, RunId, RunStatus, RunUpdate};
use crate::domain::settings::ServingPolicy;
use crate::domain::tags;
use crate::ports::{
    Clock, CustomizationService, PortError, RunLedger, ThroughputRequest, ThroughputState,
    ThroughputStatus,
};

/// Step input: `{"runId","attempt"}`; `attempt` (0-based) defaults to 0. `evaluationError` is
/// the state machine's caught error when the quality gate's evaluation could not finish: the gate
/// then fails closed (nothing bought, the evaluation deployment deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionThroughputInput {
    pub run_id: RunId,
    #[serde(default)]
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_error: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProvisionOutcome {
    /// The run does not ask for serving: nothing was bought; the run stays `completed`.
    NotRequested,
    /// The Provisioned Throughput exists and is being created: wait and call again.
    Creating,
    /// It serves: the run is `ready`.
    InService,
    /// Bedrock reported it `Failed`: the run is `provisioning_failed`.
    Failed,
    /// The run's deployment is Active and its quality gate has not decided: evaluate the student
    /// (the `model-evaluator` loop), then call again.
    Evaluate,
    /// The student failed its quality gate: nothing was bought, the evaluation deployment was
    /// deleted, the run is `gate_failed`.
    GateFailed,
    /// The run's serving was deleted while it was being provisioned (`distillery runs retire`):
    /// the run is `retired`, and the retirement was announced when it happened.
    Retired,
    /// Bedrock refused the throughput or deployment for its quota: the run is `serving_queued`;
    /// wait `nextWaitSeconds` and call again.
    ServingQueued,
}

/// Step output, see `docs/contracts.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionThroughputOutput {
    pub run_id: RunId,
    pub outcome: ProvisionOutcome,
    pub provisioned_model_arn: Option<String>,
    /// The on-demand custom model deployment's ARN (`serving: on-demand`), once recorded.
    #[serde(default)]
    pub deployment_arn: Option<String>,
    /// The attempt number to pass to the next call (this call's attempt + 1).
    pub attempt: u32,
    /// Seconds to wait before calling again (0 unless the outcome is `creating`).
    pub next_wait_seconds: u64,
}

/// The `clientRequestToken` for a run's Provisioned Throughput: the same for every retry of the
/// same run, so Bedrock returns the first purchase instead of making a second one.
pub fn throughput_client_request_token(run_id: &RunId) -> String {
    naming::client_request_token(run_id, "provisioned-throughput")
}

/// The run's provisioned model name: unique per run, stable across retries.
pub fn provisioned_model_name_for(run: &Run) -> String {
    naming::provisioned_model_name(&run.run_id, &run.dataset.display_name())
}

/// When a throughput that goes into service `now` is deleted: `now` + the run's TTL for
/// no-commitment throughput; `None` for a commitment term, which Bedrock does not let anyone
/// delete before it ends (and which is paid for whole anyway).
pub fn serving_expiry(
    run: &Run,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    if run.settings.commitment != crate::domain::settings::Commitment::None {
        return None;
    }
    let hours = run
        .pt_ttl_hours
        .unwrap_or(crate::domain::cost::DEFAULT_PT_TTL_HOURS);
    Some(now + crate::domain::cost::hours_duration(hours))
}

/// Whether a step may buy a Provisioned Throughput when the run's is not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purchase {
    /// The state machine's step: buys once (the name and client request token deduplicate).
    Allowed,
    /// The reconciler: only reads and records.
    Never,
}

/// The provisioner's dependencies. Built once per Lambda container.
pub struct ThroughputProvisioner<'a> {
    pub ledger: &'a dyn RunLedger,
    pub bedrock: &'a dyn CustomizationService,
    /// Reads the time the throughput went InService (its expiry counts from then).
    pub clock: &'a dyn Clock,
    pub config: ProvisionConfig,
}

impl ThroughputProvisioner<'_> {
    /// One provisioning step. A quota refusal from Bedrock is no failure: the run waits as
    /// `serving_queued` and the state machine calls again after `nextWaitSeconds`
    /// ([`serving_queue`]).
    pub async fn provision(
        &self,
        input: &ProvisionThroughputInput,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        match self.provision_once(input).await {
            Err(e) if e.error_type == ErrorType::QuotaExceeded => {
                self.queue_for_serving(&input.run_id, input.attempt, e)
                    .await
            }
            other => other,
        }
    }

    async fn provision_once(
        &self,
        input: &ProvisionThroughputInput,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let mut run = self.load_run(&input.run_id).await?;
        if run.status == RunStatus::ServingQueued {
            match self.leave_serving_queue(&run, input.attempt).await? {
                Ok(back) => run = back,
                Err(expired) => return Ok(expired),
            }
        }

        // Only a run whose job completed can be served; anything else is a request the ledger
        // contradicts (a failed run is never answered `not_requested`).
        if let Some(out) = self.recorded_answer(&run, input.attempt) {
            return Ok(out);
        }
        let on_demand = run.serves_through_deployment();
        match run.status {
            RunStatus::Completed if on_demand => run = self.start_deployment(&run).await?,
            RunStatus::Completed => run = self.start(&run).await?,
            RunStatus::Provisioning => {}
            _ => {
                return Err(run.refuse(if on_demand {
                    "create a custom model deployment: only a run whose job completed can be served"
                } else {
                    "buy Provisioned Throughput: only a run whose job completed can be served"
                }))
            }
        }
        if run.gate_armed() {
            // A write the gate step loses to a concurrent one (`runs retire`, say) answers what the
            // run now records, as the provisioning steps below do.
            let settled = match self.settle_gate(run.clone(), input).await {
                Ok(settled) => settled,
                Err(e) if e.error_type == ErrorType::Conflict => Some(
                    self.after_lost_race(&input.run_id, input.attempt, Err(e))
                        .await?,
                ),
                Err(e) => return Err(e),
            };
            if let Some(out) = settled {
                return Ok(out);
            }
            run = self.load_run(&input.run_id).await?;
            if let Some(out) = self.recorded_answer(&run, input.attempt) {
                return Ok(out);
            }
        }
        let on_demand = run.serves_through_deployment();
        let result = if on_demand {
            self.advance_deployment(run, input.attempt, Purchase::Allowed)
                .await
        } else {
            self.advance(run, input.attempt, Purchase::Allowed).await
        };
        self.after_lost_race(&input.run_id, input.attempt, result)
            .await
    }

    /// The reconciler's read-only step: records what Bedrock says about the throughput (or, for an
    /// on-demand run, the deployment) the run records (`ready`, `provisioning_failed`, or nothing
    /// while it is `Creating`). It never buys nor creates: a run without a recorded ARN is refused,
    /// and a recorded ARN Bedrock no longer knows is recorded `provisioning_failed`.
    pub async fn record_throughput_state(
        &self,
        run_id: &RunId,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let run = self.load_run(run_id).await?;
        if let Some(out) = self.recorded_answer(&run, 0) {
            return Ok(out);
        }
        let on_demand = run.serves_through_deployment();
        let (recorded, what) = if on_demand {
            (&run.deployment_arn, "custom model deployment")
        } else {
            (&run.provisioned_model_arn, "Provisioned Throughput")
        };
        if run.status != RunStatus::Provisioning || recorded.is_none() {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {} is {} with no {what} ARN recorded: nothing to read",
                    run.run_id, run.status
                ),
            ));
        }
        let result = if on_demand {
            self.advance_deployment(run, 0, Purchase::Never).await
        } else {
            self.advance(run, 0, Purchase::Never).await
        };
        self.after_lost_race(run_id, 0, result).await
    }

    async fn load_run(&self, run_id: &RunId) -> Result<Run, StepError> {
        self.ledger
            .get(run_id)
            .await?
            .ok_or_else(|| StepError::not_found(format!("run {run_id} is not in the ledger")))
    }

    /// The answer for a run whose provisioning outcome is already on record (or that does not ask
    /// for serving), or `None` when Bedrock must be asked.
    fn recorded_answer(&self, run: &Run, attempt: u32) -> Option<ProvisionThroughputOutput> {
        let arn = run.provisioned_model_arn.clone();
        match run.status {
            RunStatus::Completed if !run.settings.serving.serves() => {
                tracing::info!(run_id = %run.run_id, "serving not requested; the run ends at completed");
                Some(self.output(run, ProvisionOutcome::NotRequested, None, attempt))
            }
            RunStatus::Ready => Some(self.output(run, ProvisionOutcome::InService, arn, attempt)),
            RunStatus::ProvisioningFailed => {
                Some(self.output(run, ProvisionOutcome::Failed, arn, attempt))
            }
            // Retired mid-provisioning: the execution's loop ends quietly instead of failing on a
            // Conflict (nothing is left to buy, and nothing may be bought).
            RunStatus::Retired => Some(self.output(run, ProvisionOutcome::Retired, arn, attempt)),
            RunStatus::GateFailed => {
                Some(self.output(run, ProvisionOutcome::GateFailed, arn, attempt))
            }
            _ => None,
        }
    }

    /// A ledger write lost a race (a concurrent execution, or the reconciler, wrote first): when the
    /// run now has its outcome on record, answer that, as the poller does, rather than end the
    /// execution in ProvisioningFailed while the run is `ready`.
    async fn after_lost_race(
        &self,
        run_id: &RunId,
        attempt: u32,
        result: Result<ProvisionThroughputOutput, StepError>,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        match result {
            Err(e) if e.error_type == ErrorType::Conflict => {
                let fresh = self.load_run(run_id).await?;
                match self.recorded_answer(&fresh, attempt) {
                    Some(out) => {
                        tracing::info!(run_id = %run_id, status = %fresh.status, "a concurrent write won: {}", e.message);
                        Ok(out)
                    }
                    None => Err(e),
                }
            }
            other => other,
        }
    }

    /// `completed` → `provisioning`, recording the provisioned model name before Bedrock is called
    /// (or `provisioning` → `provisioning` once a provisioned run's quality gate passed).
    /// A guardrail violation is recorded as `provisioning_failed` and returned as an error.
    async fn start(&self, run: &Run) -> Result<Run, StepError> {
        let s = &run.settings;
        if let Err(violation) = check_throughput(s.model_units, s.commitment, &self.config.policy) {
            self.record_guardrail_violation(run, &violation).await?;
            return Err(violation);
        }
        if run.custom_model_arn.is_none() {
            return Err(StepError::new(
                ErrorType::Conflict,
                format!(
                    "run {} is completed but has no custom model ARN recorded",
                    run.run_id
                ),
            ));
        }
        let name = provisioned_model_name_for(run);
        let mut update = RunUpdate::to(RunStatus::Provisioning).with_detail(format!(
            "buying Provisioned Throughput {name}: {} model unit(s), commitment {}",
            s.model_units,
            s.commitment.as_str()
        ));
        update.provisioned_model_name = Some(name);
        self.write(
            run,
            &[RunStatus::Completed, RunStatus::Provisioning],
            &update,
        )
        .await
    }

    /// One step of the `provisioning` loop: find (or create) the run's Provisioned Throughput and
    /// record what Bedrock says about it.
    async fn advance(
        &self,
        run: Run,
        attempt: u32,
        purchase: Purchase,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let name = run
            .provisioned_model_name
            .clone()
            .unwrap_or_else(|| provisioned_model_name_for(&run));
        // Prefer the ARN once we know it; the name finds one created by an earlier attempt that
        // crashed before it could record the ARN.
        let id = run
            .provisioned_model_arn
            .clone()
            .unwrap_or_else(|| name.clone());
        let state = match self.bedrock.get_provisioned_throughput(&id).await {
            Ok(state) => state,
            // Buy only when no ARN is recorded (found by name, or not bought yet). A recorded
            // throughput Bedrock no longer knows was deleted (`runs retire`, or by hand): buying it
            // again would leave one no run owns, billed by the hour.
            Err(PortError::NotFound(m))
                if purchase == Purchase::Never || run.provisioned_model_arn.is_some() =>
            {
                return self.record_gone(run, &id, &m, attempt).await;
            }
            Err(PortError::NotFound(_)) => {
                let arn = self.create(&run, &name).await?;
                let mut update = RunUpdate::to(RunStatus::Provisioning)
                    .with_detail(format!("Provisioned Throughput {arn} requested"));
                update.provisioned_model_arn = Some(arn.clone());
                update.provisioned_model_name = Some(name);
                let run = self
                    .write(&run, &[RunStatus::Provisioning], &update)
                    .await?;
                return Ok(self.output(&run, ProvisionOutcome::Creating, Some(arn), attempt));
            }
            Err(e) => return Err(e.context(format!("GetProvisionedModelThroughput {id}"))),
        };
        self.record_state(run, state, attempt).await
    }

    /// The throughput the run records is gone from Bedrock (deleted): nothing serves and nothing is
    /// billed, so the run's provisioning ended.
    async fn record_gone(
        &self,
        run: Run,
        arn: &str,
        not_found: &str,
        attempt: u32,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let reason = format!(
            "Bedrock no longer knows Provisioned Throughput {arn} ({not_found}): nothing serves the \
             model and nothing is billed for it"
        );
        let mut update = RunUpdate::to(RunStatus::ProvisioningFailed).with_detail(reason.clone());
        update.failure_reason = Some(reason);
        let run = self
            .write(&run, &[RunStatus::Provisioning], &update)
            .await?;
        Ok(self.output(
            &run,
            ProvisionOutcome::Failed,
            Some(arn.to_string()),
            attempt,
        ))
    }

    async fn create(&self, run: &Run, name: &str) -> Result<String, StepError> {
        let s = &run.settings;
        // Checked again right before the purchase: an earlier attempt may have passed a policy that
        // has since been tightened.
        if let Err(violation) = check_throughput(s.model_units, s.commitment, &self.config.policy) {
            self.record_guardrail_violation(run, &violation).await?;
            return Err(violation);
        }
        let model_id = run.custom_model_arn.clone().ok_or_else(|| {
            StepError::new(
                ErrorType::Conflict,
                format!("run {} has no custom model ARN to provision", run.run_id),
            )
        })?;
        let req = ThroughputRequest {
            provisioned_model_name: name.to_string(),
            model_id,
            model_units: s.model_units,
            commitment: s.commitment,
            client_request_token: throughput_client_request_token(&run.run_id),
            tags: tags::owned_by(&run.run_id),
        };
        tracing::info!(
            run_id = %run.run_id,
            provisioned_model_name = %name,
            model_units = s.model_units,
            commitment = s.commitment.as_str(),
            "creating Provisioned Throughput"
        );
        self.bedrock
            .create_provisioned_throughput(&req)
            .await
            .map_err(|e| e.context(format!("CreateProvisionedModelThroughput {name}")))
    }

    async fn record_state(
        &self,
        run: Run,
        state: ThroughputState,
        attempt: u32,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let arn = state.provisioned_model_arn.clone();
        match state.status {
            ThroughputStatus::Creating | ThroughputStatus::Updating => {
                // Record the ARN once (an earlier attempt may have crashed before doing so);
                // otherwise nothing changed and nothing is written.
                let run = if run.provisioned_model_arn.as_deref() != Some(arn.as_str()) {
                    let mut update = RunUpdate::to(RunStatus::Provisioning).with_detail(format!(
                        "Provisioned Throughput {arn} is {:?}",
                        state.status
                    ));
                    update.provisioned_model_arn = Some(arn.clone());
                    self.write(&run, &[RunStatus::Provisioning], &update)
                        .await?
                } else {
                    run
                };
                Ok(self.output(&run, ProvisionOutcome::Creating, Some(arn), attempt))
            }
            ThroughputStatus::InService => {
                let mut update = RunUpdate::to(RunStatus::Ready)
                    .with_detail(format!("Provisioned Throughput {arn} is InService"));
                update.provisioned_model_arn = Some(arn.clone());
                update.serving_expires_at = serving_expiry(&run, self.clock.now());
                let run = self
                    .write(&run, &[RunStatus::Provisioning], &update)
                    .await?;
                Ok(self.output(&run, ProvisionOutcome::InService, Some(arn), attempt))
            }
            ThroughputStatus::Failed => {
                let reason = state
                    .failure_message
                    .filter(|m| !m.trim().is_empty())
                    .unwrap_or_else(|| {
                        "Bedrock reported the Provisioned Throughput Failed without a message"
                            .into()
                    });
                let mut update = RunUpdate::to(RunStatus::ProvisioningFailed)
                    .with_detail(format!("Provisioned Throughput {arn} Failed: {reason}"));
                update.provisioned_model_arn = Some(arn.clone());
                update.failure_reason = Some(reason);
                let run = self
                    .write(&run, &[RunStatus::Provisioning], &update)
                    .await?;
                Ok(self.output(&run, ProvisionOutcome::Failed, Some(arn), attempt))
            }
        }
    }

    /// Records a refused purchase. `completed` cannot move straight to `provisioning_failed`, so the
    /// run passes through `provisioning` (the attempt did start; the guardrail stopped it).
    async fn record_guardrail_violation(
        &self,
        run: &Run,
        violation: &StepError,
    ) -> Result<(), StepError> {
        tracing::warn!(run_id = %run.run_id, "guardrail refused Provisioned Throughput: {}", violation.message);
        let run = if run.status == RunStatus::Completed {
            let update = RunUpdate::to(RunStatus::Provisioning)
                .with_detail("checking Provisioned Throughput guardrails");
            self.write(run, &[RunStatus::Completed], &update).await?
        } else {
            run.clone()
        };
        let mut update = RunUpdate::to(RunStatus::ProvisioningFailed)
            .with_detail(format!("guardrail: {}", violation.message));
        update.failure_reason = Some(format!("guardrail: {}", violation.message));
        self.write(&run, &[RunStatus::Provisioning], &update)
            .await?;
        Ok(())
    }

    /// A conditional ledger write; a lost race becomes a `Conflict` naming the run.
    async fn write(
        &self,
        run: &Run,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<Run, StepError> {
        let written = self
            .ledger
            .update(&run.run_id, expected, update)
            .await
            .map_err(|e| match e {
                PortError::Conflict(m) => StepError::new(
                    ErrorType::Conflict,
                    format!("run {} changed during provisioning: {m}", run.run_id),
                ),
                other => other.into(),
            })?;
        tracing::info!(run_id = %run.run_id, status = %written.status, detail = ?update.detail, "recorded provisioning change");
        Ok(written)
    }

    fn output(
        &self,
        run: &Run,
        outcome: ProvisionOutcome,
        provisioned_model_arn: Option<String>,
        attempt: u32,
    ) -> ProvisionThroughputOutput {
        ProvisionThroughputOutput {
            run_id: run.run_id.clone(),
            outcome,
            provisioned_model_arn,
            deployment_arn: run.deployment_arn.clone(),
            // Waiting for serving capacity is not a provisioning check: it must not spend the
            // state machine's provisioning budget (CheckProvisioningBudget).
            attempt: if outcome == ProvisionOutcome::ServingQueued {
                attempt
            } else {
                attempt.saturating_add(1)
            },
            next_wait_seconds: if outcome == ProvisionOutcome::ServingQueued {
                self.serving_retry_seconds(run)
            } else if outcome == ProvisionOutcome::Creating {
                next_wait_seconds(
                    self.config.initial_wait_seconds,
                    self.config.max_wait_seconds,
                    attempt,
                )
            } else {
                0
            },
        }
    }
}

mod config;
pub use config::ProvisionConfig;
mod deployment;
mod gate;
pub use deployment::deployment_name_for;

mod serving_queue;

#[cfg(test)]
mod tests;
