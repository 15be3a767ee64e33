//! Use case: reconcile the run ledger with Bedrock (the scheduled reconciler, and
//! `distillery runs reconcile`).
//!
//! Invariant it keeps: nothing Distillery created in Bedrock is left without a live run that owns it,
//! and the ledger does not contradict Bedrock. Pass 0 (`stale_validation`) records `failed` the
//! `received`/`validating` runs whose validator gave up (no update for
//! `RECONCILE_STALE_VALIDATION_SECONDS`), so they can be retried. Then three passes:
//!
//! 1. **Ledger → Bedrock, jobs.** Every `training` run is polled exactly as the state machine polls it
//!    ([`StatusPoller`]): a job that ended while nothing polled gets its true outcome recorded through
//!    the normal transitions; a job past `MAX_JOB_DURATION_SECONDS` is stopped and the run recorded
//!    `stopped`; a run whose earlier stop failed (`stop_failed`) is given up on again (`giveUp`), so the
//!    stop is retried until it succeeds or the job ends on its own.
//!    `provisioning` runs that record their throughput's ARN and were not updated within the
//!    provisioning window (the state machine's whole provisioning loop) get the throughput's state
//!    recorded through the provisioner's read-only path
//!    ([`ThroughputProvisioner::record_throughput_state`]): `ready` / `provisioning_failed` (it never
//!    buys: a run without a recorded ARN is reported).
//! 2. **Bedrock → ledger, jobs.** Every `InProgress` job carrying the `distillery:run-id` tag whose run
//!    does not own it (no such run; or the run is not `training`/`launching`, or records another job)
//!    is stopped. A terminal run is never rewritten (terminal statuses are final): the stop is
//!    reported against it.
//! 3. **Bedrock → ledger, Provisioned Throughput.** A throughput with the run-id tag whose run does not
//!    own it (no such run; or the run is not `provisioning`/`ready`, or records another ARN) is
//!    deleted when that is safe; otherwise it is reported for a person.
//!
//! **Safe to delete** means all of: it carries Distillery's run-id tag; no live run owns it (above);
//! it is not `Creating` or `Updating` (a purchase in flight may still be recorded by its run); it has
//! no commitment term still running (Bedrock refuses, and the term is paid anyway); and it is older
//! than the quiet period.
//!
//! **Concurrency rule.** The reconciler runs beside live executions, so it never acts on something
//! that can be an in-flight transition: a resource created, or a run updated, within
//! `quiet_period_seconds` is left alone this time (the launcher creates the job and then records it;
//! the provisioner buys and then records). Pass 1 is exempt: it is a poll, which live executions are
//! built to run beside, and a `training` run with a job ARN has no transition in flight. Every ledger
//! write is the poller's conditional write on
//! the status it read. Running it twice, or twice at once, repairs each thing at most once (a second
//! stop is refused by Bedrock as already stopping; a second delete finds nothing).
//!
//! 4. **Expiry.** A `ready` run whose no-commitment Provisioned Throughput is past its
//!    `serving_expires_at` is retired through the one retirement path ([`ServingRetirer`]): the
//!    throughput is deleted when it carries `distillery:managed-by = distillery` (never otherwise),
//!    the run recorded `retired` and the `retired` milestone announced. A delete Bedrock refuses
//!    (a commitment term, throttling) or an untagged throughput is reported and the run stays
//!    `ready`: the next pass retries. A run whose expiry is within [`EXPIRY_WARNING_SECONDS`] gets
//!    the `expiring_soon` milestone once per expiry (`expiry_warning_sent_for`; `distillery runs
//!    extend` moves the expiry, so the new one is warned about again).
//!
//! One summary message (SNS, through [`MessagePublisher`]) is published when anything was found;
//! the milestones of pass 4 go through the notifier's delivery ([`MilestoneSender`]: SNS and Slack,
//! recorded on the run) like every other milestone.

use serde::{Deserialize, Serialize};

use crate::app::notify::MilestoneSender;
use crate::app::poll_status::{
    decide, job_status_str, stop_job, PollConfig, PollOutcome, PollStatusInput, StatusPoller,
    StopAttempt, STOP_FAILED_REASON_PREFIX,
};
use crate::app::provision_throughput::{ProvisionConfig, ProvisionOutcome, ThroughputProvisioner};
use crate::app::retire_run::{RetireReason, ServingRetirer};
use crate::domain::errors::StepError;
use crate::domain::messages::Milestone;
use crate::domain::run::{Run, RunId, RunStatus, RunUpdate};
use crate::domain::tags::RUN_ID_TAG;
use crate::ports::{
    Clock, CustomizationService, DeploymentStatus, JobStatus, MessagePublisher, PortError,
    RunLedger, ThroughputStatus,
};

/// The `event_type` SNS attribute of the reconciler's summary.
pub const RECONCILED_EVENT_TYPE: &str = "reconciled";
/// The default quiet period: anything touched more recently may be an in-flight transition.
pub const DEFAULT_QUIET_PERIOD_SECONDS: u64 = 600;
/// The default time a `received`/`validating` run may go without an update before the reconciler
/// records it `failed` (the validator's retries ran out, or its Lambda timed out).
pub const DEFAULT_STALE_VALIDATION_SECONDS: u64 = 3600;
/// How long before a throughput's expiry the *expiring soon* message goes out.
pub const EXPIRY_WARNING_SECONDS: i64 = 3600;
/// How many `training` runs one pass looks at (newest first).
pub const TRAINING_RUNS_PER_PASS: usize = 500;
/// How many `ready` runs the expiry pass reads: all of them in practice. A bounded page would stop
/// seeing an old, extended throughput once enough newer runs (every on-demand run stays `ready`)
/// came after it, and it would then be billed with no end. The ledger pages through the status
/// index; a sparse index on the expiry would read less and is the next step if ledgers grow large.
pub const READY_RUNS_PER_PASS: usize = 1_000_000;

/// Input of the scheduled reconciler: `{"reconcile": {"dryRun": false}}` on the status-poller.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileInput {
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileConfig {
    pub poll: PollConfig,
    pub provision: ProvisionConfig,
    pub quiet_period_seconds: u64,
    /// `received`/`validating` runs not updated for this long are recorded `failed`.
    pub stale_validation_seconds: u64,
    pub dry_run: bool,
}

impl ReconcileConfig {
    /// The poller's settings ([`PollConfig::from_lookup`]), `RECONCILE_QUIET_PERIOD_SECONDS`
    /// (default [`DEFAULT_QUIET_PERIOD_SECONDS`]) and `RECONCILE_STALE_VALIDATION_SECONDS` (default
    /// [`DEFAULT_STALE_VALIDATION_SECONDS`]).
    pub fn from_lookup(
        limits: &crate::domain::catalog::Limits,
        lookup: impl Fn(&str) -> Option<String> + Clone,
        dry_run: bool,
    ) -> Result<Self, StepError> {
        let poll = PollConfig::from_lookup(limits, lookup.clone())?;
        let provision = ProvisionConfig::from_lookup(limits, lookup.clone())?;
        let env = crate::config::Env::new(lookup);
        let quiet_period_seconds = env.positive_u64(
            "RECONCILE_QUIET_PERIOD_SECONDS",
            DEFAULT_QUIET_PERIOD_SECONDS,
        )?;
        let stale_validation_seconds = env.positive_u64(
            "RECONCILE_STALE_VALIDATION_SECONDS",
            DEFAULT_STALE_VALIDATION_SECONDS,
        )?;
        Ok(ReconcileConfig {
            poll,
            provision,
            quiet_period_seconds,
            stale_validation_seconds,
            dry_run,
        })
    }

    pub fn from_env(
        limits: &crate::domain::catalog::Limits,
        dry_run: bool,
    ) -> Result<Self, StepError> {
        Self::from_lookup(limits, crate::config::process_var, dry_run)
    }
}

/// What was done about one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Repaired (ledger written, job stopped, throughput deleted).
    Repaired,
    /// `--dry-run`: this is what would be done.
    WouldRepair,
    /// Not safe or not possible to repair automatically: a person must look.
    NeedsAttention,
}

/// One disagreement between the ledger and Bedrock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub run_id: Option<RunId>,
    /// The job or throughput ARN concerned.
    pub resource_arn: Option<String>,
    pub problem: String,
    pub action: Action,
    /// What was done, or why nothing was.
    pub detail: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    pub dry_run: bool,
    /// `received`/`validating` runs looked at (pass 0).
    #[serde(default)]
    pub validation_runs_checked: usize,
    pub training_runs_checked: usize,
    pub provisioning_runs_checked: usize,
    pub jobs_checked: usize,
    pub throughputs_checked: usize,
    /// `ready` runs with an expiry looked at (pass 4).
    #[serde(default)]
    pub expiring_runs_checked: usize,
    /// *Expiring soon* messages sent (dry run: due).
    #[serde(default)]
    pub expiry_warnings: usize,
    pub findings: Vec<Finding>,
    /// The summary message's id, when one was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

pub struct Reconciler<'a> {
    pub ledger: &'a dyn RunLedger,
    pub bedrock: &'a dyn CustomizationService,
    pub publisher: Option<&'a dyn MessagePublisher>,
    /// Delivers the `expiring_soon` and `retired` milestones (none: retired without a message,
    /// and no warnings).
    pub notifier: Option<&'a dyn MilestoneSender>,
    pub clock: &'a dyn Clock,
    pub config: ReconcileConfig,
}

impl Reconciler<'_> {
    pub async fn reconcile(&self) -> Result<ReconcileReport, StepError> {
        let mut report = ReconcileReport {
            dry_run: self.config.dry_run,
            ..Default::default()
        };
        self.stale_validations(&mut report).await?;
        self.training_runs(&mut report).await?;
        self.provisioning_runs(&mut report).await?;
        self.tagged_jobs(&mut report).await?;
        self.expiring_serving(&mut report).await?;
        self.tagged_throughputs(&mut report).await?;
        if !report.findings.is_empty() {
            if let Some(publisher) = self.publisher {
                match publisher.publish(&summary_message(&report)).await {
                    Ok(id) => report.message_id = Some(id),
                    // The repairs are done and in the report; a lost summary must not hide them.
                    Err(e) => tracing::error!("reconciler summary not published: {e}"),
                }
            }
        }
        Ok(report)
    }

    fn quiet(&self, t: chrono::DateTime<chrono::Utc>) -> bool {
        (self.clock.now() - t).num_seconds() < self.config.quiet_period_seconds as i64
    }

    /// Pass 1: every `training` run is polled; a job that ended or overran is settled.
    async fn training_runs(&self, report: &mut ReconcileReport) -> Result<(), StepError> {
        let runs = self
            .ledger
            .list_by_status(RunStatus::Training, TRAINING_RUNS_PER_PASS)
            .await
            .map_err(|e| e.context("listing training runs"))?;
        for run in runs {
            let Some(job_arn) = run.job_arn.clone() else {
                continue;
            };
            report.training_runs_checked += 1;
            if self.config.dry_run {
                let job = match self.bedrock.get_job(&job_arn).await {
                    Ok(j) => j,
                    Err(e) => {
                        tracing::warn!(run_id = %run.run_id, "GetModelCustomizationJob: {e}");
                        continue;
                    }
                };
                let d = decide(&run, &job, self.clock.now(), &self.config.poll);
                if d.outcome.is_terminal() {
                    report.findings.push(Finding {
                        run_id: Some(run.run_id.clone()),
                        resource_arn: Some(job_arn),
                        problem: format!("the ledger says training; Bedrock says {:?}", job.status),
                        action: Action::WouldRepair,
                        detail: format!(
                            "would record {}{}",
                            outcome_word(d.outcome),
                            if d.stop_job { " and stop the job" } else { "" }
                        ),
                    });
                }
                continue;
            }
            let poller = StatusPoller {
                ledger: self.ledger,
                bedrock: self.bedrock,
                clock: self.clock,
                config: self.config.poll.clone(),
            };
            // A run whose stop failed (`stop_failed`) is given up on again: the stop is retried.
            let retry_stop = run
                .failure_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(STOP_FAILED_REASON_PREFIX));
            let input = PollStatusInput {
                run_id: run.run_id.clone(),
                attempt: 0,
                consecutive_errors: 0,
                give_up: retry_stop,
            };
            match poller.poll(&input).await {
                Ok(o) if o.outcome == PollOutcome::Running => {}
                Ok(o) => {
                    let action = if o.outcome == PollOutcome::StopFailed {
                        Action::NeedsAttention
                    } else {
                        Action::Repaired
                    };
                    report.findings.push(Finding {
                        run_id: Some(run.run_id.clone()),
                        resource_arn: Some(job_arn),
                        problem: format!(
                            "the ledger said training; Bedrock's job is {}",
                            o.job_status
                        ),
                        action,
                        detail: format!(
                            "recorded {}{}",
                            outcome_word(o.outcome),
                            o.failure_message
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default()
                        ),
                    });
                }
                // Another writer (a live execution) moved the run: nothing to repair here.
                Err(e) => tracing::info!(run_id = %run.run_id, "not reconciled now: {e}"),
            }
        }
        Ok(())
    }

    /// Pass 1b: `provisioning` runs gone quiet get their throughput's state recorded.
    async fn provisioning_runs(&self, report: &mut ReconcileReport) -> Result<(), StepError> {
        let runs = self
            .ledger
            .list_by_status(RunStatus::Provisioning, TRAINING_RUNS_PER_PASS)
            .await
            .map_err(|e| e.context("listing provisioning runs"))?;
        // Checks while `Creating` write nothing, so a live execution's run can look idle for as
        // long as its provisioning loop may last: leave it to its execution for that long.
        let window = self
            .config
            .provision
            .provisioning_window_seconds()
            .max(self.config.quiet_period_seconds);
        for run in runs {
            if (self.clock.now() - run.updated_at).num_seconds() < window as i64 {
                continue;
            }
            report.provisioning_runs_checked += 1;
            // An on-demand run (or a provisioned run still being evaluated by its quality gate)
            // records a deployment instead of a throughput.
            let deployment = run.serves_through_deployment();
            let recorded = if deployment {
                run.deployment_arn.clone()
            } else {
                run.provisioned_model_arn.clone()
            };
            let Some(arn) = recorded else {
                report.findings.push(Finding {
                    run_id: Some(run.run_id.clone()),
                    resource_arn: None,
                    problem: "the run is provisioning but records no Provisioned Throughput or \
                              deployment ARN"
                        .into(),
                    action: Action::NeedsAttention,
                    detail: "not bought by the reconciler; retry the run or check Bedrock".into(),
                });
                continue;
            };
            if self.config.dry_run {
                let settled = if deployment {
                    self.bedrock
                        .get_custom_model_deployment(&arn)
                        .await
                        .map(|d| {
                            (d.status != DeploymentStatus::Creating)
                                .then(|| format!("{:?}", d.status))
                        })
                } else {
                    self.bedrock
                        .get_provisioned_throughput(&arn)
                        .await
                        .map(|pt| {
                            matches!(
                                pt.status,
                                ThroughputStatus::InService | ThroughputStatus::Failed
                            )
                            .then(|| format!("{:?}", pt.status))
                        })
                };
                let bedrock_says = match settled {
                    Ok(Some(status)) => status,
                    Err(PortError::NotFound(_)) => "it does not exist".to_string(),
                    _ => continue,
                };
                report.findings.push(Finding {
                    run_id: Some(run.run_id.clone()),
                    resource_arn: Some(arn),
                    problem: format!("the ledger says provisioning; Bedrock says {bedrock_says}"),
                    action: Action::WouldRepair,
                    detail: "would record its state".into(),
                });
                continue;
            }
            let provisioner = ThroughputProvisioner {
                ledger: self.ledger,
                bedrock: self.bedrock,
                clock: self.clock,
                config: self.config.provision.clone(),
            };
            // Read-only: the reconciler records what Bedrock says and never buys.
            match provisioner.record_throughput_state(&run.run_id).await {
                Ok(o)
                    if matches!(
                        o.outcome,
                        ProvisionOutcome::InService | ProvisionOutcome::Failed
                    ) =>
                {
                    report.findings.push(Finding {
                        run_id: Some(run.run_id.clone()),
                        resource_arn: Some(arn),
                        problem: "the ledger said provisioning; the throughput had settled".into(),
                        action: Action::Repaired,
                        detail: match o.outcome {
                            ProvisionOutcome::InService if deployment => {
                                "recorded ready (deployment Active, billed per token)".into()
                            }
                            ProvisionOutcome::InService => {
                                "recorded ready (InService, billed by the hour)".into()
                            }
                            _ => "recorded provisioning_failed".into(),
                        },
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::info!(run_id = %run.run_id, "not reconciled now: {e}"),
            }
        }
        Ok(())
    }
}

fn outcome_word(o: PollOutcome) -> &'static str {
    match o {
        PollOutcome::Running => "running",
        PollOutcome::Completed => "completed",
        PollOutcome::Failed => "failed",
        PollOutcome::Stopped => "stopped",
        PollOutcome::TimedOut => "stopped (timed out)",
        PollOutcome::StopFailed => "a failed stop (the run stays training)",
    }
}

mod expiry;
mod orphans;
mod report;
pub use report::{render_findings, summary_message};
mod stale_validation;
pub use stale_validation::stale_validation_reason;

#[cfg(test)]
mod tests;
