//! Use case: stop serving a run's model (`retired`), and push its expiry back.
//!
//! One retirement path for everyone who ends serving: the reconciler's expiry pass (no-commitment
//! Provisioned Throughput whose `serving_expires_at` has passed) and `distillery runs retire`. It
//! deletes what serves the run (its on-demand deployment, else its Provisioned Throughput), records
//! the run `retired` with `retired_at` and why, and announces the `retired` milestone through the
//! notifier's delivery (hours served and the cost incurred are in that message).
//!
//! Deletion is tag-scoped: only a resource carrying `distillery:managed-by = distillery` (the tag
//! every creator puts on it, [`crate::domain::tags`]) is deleted; anything else is refused with the
//! reason and the run stays as it is, as does a run whose delete Bedrock refuses (a commitment term
//! still running, throttling): the caller reports it, and the reconciler retries on its next pass.
//!
//! `distillery runs extend` ([`ServingRetirer::extend`]) moves `serving_expires_at` later; only
//! no-commitment throughput has an expiry (a commitment cannot be deleted before its term ends, and
//! an on-demand deployment costs nothing when idle).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::app::notify::{MilestoneSender, NotifyOutput};
use crate::domain::cost::{format_budget, hours_duration};
use crate::domain::errors::{ErrorType, StepError};
use crate::domain::messages::Milestone;
use crate::domain::run::{Run, RunId, RunStatus, RunUpdate};
use crate::domain::settings::{Commitment, ServingMode};
use crate::domain::tags::{MANAGED_BY_TAG, MANAGED_BY_VALUE};
use crate::ports::{Clock, CustomizationService, PortError, RunLedger};

/// The longest one `runs extend` may add: a year. A typo of many zeros is refused rather than
/// keeping paid throughput for decades.
pub const MAX_EXTEND_HOURS: f64 = 24.0 * 366.0;

/// Why a run is retired (recorded in its history and shown in the `retired` message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetireReason {
    /// The reconciler found `serving_expires_at` (this value) passed.
    Expired(DateTime<Utc>),
    /// `distillery runs retire`, by this caller.
    Requested(String),
}

/// What serves a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "arn")]
pub enum Serving {
    Deployment(String),
    Throughput(String),
}

impl Serving {
    /// The run's serving resource: its deployment while the serving step works on one (serving
    /// on-demand, or a provisioned run still being evaluated by its quality gate), else its
    /// Provisioned Throughput (a provisioned run keeps its deleted evaluation deployment's ARN).
    pub fn of(run: &Run) -> Option<Serving> {
        // No fallback from one to the other: a provisioned run past its gate keeps its deleted
        // evaluation deployment's ARN, and answering with it while the throughput is being bought
        // would retire the run as the purchase goes out.
        if run.serves_through_deployment() {
            run.deployment_arn.clone().map(Serving::Deployment)
        } else {
            run.provisioned_model_arn.clone().map(Serving::Throughput)
        }
    }

    pub fn arn(&self) -> &str {
        match self {
            Serving::Deployment(a) | Serving::Throughput(a) => a,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Serving::Deployment(_) => "on-demand deployment",
            Serving::Throughput(_) => "Provisioned Throughput",
        }
    }

    fn delete_call(&self) -> &'static str {
        match self {
            Serving::Deployment(_) => "DeleteCustomModelDeployment",
            Serving::Throughput(_) => "DeleteProvisionedModelThroughput",
        }
    }
}

/// The result of a retirement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retirement {
    pub run_id: RunId,
    pub serving: Serving,
    /// `deleted`, or `already_gone` when Bedrock no longer knew it.
    pub result: String,
    pub retired_at: DateTime<Utc>,
    /// The `retired` message's delivery, when a sender was given and it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified: Option<NotifyOutput>,
}

pub struct ServingRetirer<'a> {
    pub ledger: &'a dyn RunLedger,
    pub bedrock: &'a dyn CustomizationService,
    pub clock: &'a dyn Clock,
    /// Announces `retired` (none: recorded only, e.g. a test).
    pub notifier: Option<&'a dyn MilestoneSender>,
}

impl ServingRetirer<'_> {
    async fn load(&self, run_id: &RunId) -> Result<Run, StepError> {
        self.ledger
            .get(run_id)
            .await?
            .ok_or_else(|| StepError::not_found(format!("run {run_id} is not in the ledger")))
    }

    /// Deletes the run's deployment or throughput now and records the run `retired`.
    pub async fn retire(
        &self,
        run_id: &RunId,
        reason: RetireReason,
    ) -> Result<Retirement, StepError> {
        let run = self.load(run_id).await?;
        self.retire_run(&run, reason).await
    }

    /// [`Self::retire`] for a run already read (the reconciler's list).
    pub async fn retire_run(
        &self,
        run: &Run,
        reason: RetireReason,
    ) -> Result<Retirement, StepError> {
        // A run that ended while something of it may still be up (a failed gate whose deployment
        // could not be deleted, a provisioning failure): the deletion is done, the status stays.
        let cleanup = matches!(
            run.status,
            RunStatus::ProvisioningFailed | RunStatus::GateFailed
        );
        if !matches!(run.status, RunStatus::Ready | RunStatus::Provisioning) && !cleanup {
            return Err(run.refuse(
                "retire it: only a ready or provisioning run (or one that ended provisioning_failed or \
                 gate_failed with something left) has a deployment or throughput to delete",
            ));
        }
        if cleanup {
            return self.clean_up_ended(run).await;
        }
        // The reconciler read the run a moment ago; `runs extend` may have moved the expiry since.
        if let RetireReason::Expired(at) = &reason {
            if run.serving_expires_at != Some(*at) || *at > self.clock.now() {
                return Err(StepError::conflict(format!(
                    "run {}'s expiry changed (now {:?}); not retired",
                    run.run_id, run.serving_expires_at
                )));
            }
        }
        let Some(serving) = Serving::of(run) else {
            return Err(run.refuse(
                "retire it yet: no deployment or Provisioned Throughput ARN is recorded on it (it is \
                 still being created); try again once `distillery runs show` lists one",
            ));
        };
        let result = self.delete_tagged(run, &serving).await?;
        let now = self.clock.now();
        let why = match &reason {
            RetireReason::Expired(at) => format!(
                "expired at {} (PT_TTL_HOURS)",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            RetireReason::Requested(by) => format!("`distillery runs retire` by {by}"),
        };
        let update = RunUpdate {
            retired_at: Some(now),
            ..RunUpdate::to(RunStatus::Retired).with_detail(format!(
                "{} {} {}: {why}",
                serving.what(),
                serving.arn(),
                if result == "deleted" {
                    "deleted"
                } else {
                    "was already gone"
                }
            ))
        };
        self.ledger
            .update(&run.run_id, &[run.status], &update)
            .await
            .map_err(|e| match e {
                PortError::Conflict(m) => StepError::conflict(format!(
                    "{} {} was deleted, but run {} changed meanwhile and was not recorded retired \
                     ({m}); run `distillery runs retire {}` again to record it",
                    serving.what(),
                    serving.arn(),
                    run.run_id,
                    run.run_id
                )),
                other => other.context(format!("recording run {} retired", run.run_id)),
            })?;
        tracing::info!(run_id = %run.run_id, arn = serving.arn(), %why, "retired");
        let notified = match self.notifier {
            None => None,
            // Serving is deleted and recorded: a lost message must not undo or hide that.
            Some(n) => match n.send(&run.run_id, Milestone::Retired).await {
                Ok(o) => Some(o),
                Err(e) => {
                    tracing::error!(run_id = %run.run_id, "retired message not sent: {e}");
                    None
                }
            },
        };
        Ok(Retirement {
            run_id: run.run_id.clone(),
            serving,
            result: result.to_string(),
            retired_at: now,
            notified,
        })
    }

    /// Deletes what a `provisioning_failed` or `gate_failed` run still records (tag-checked) and
    /// records `retiredAt`; the run's status is final and stays, and nothing is announced (the
    /// run's end was).
    async fn clean_up_ended(&self, run: &Run) -> Result<Retirement, StepError> {
        let Some(serving) = Serving::of(run) else {
            return Err(run.refuse(
                "retire it: no deployment or Provisioned Throughput ARN is recorded on it, so nothing is left to delete",
            ));
        };
        let result = self.delete_tagged(run, &serving).await?;
        let now = self.clock.now();
        self.ledger
            .update(
                &run.run_id,
                &[],
                &RunUpdate {
                    retired_at: Some(now),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.context(format!("recording run {} retiredAt", run.run_id)))?;
        tracing::info!(run_id = %run.run_id, arn = serving.arn(), result, "deleted what an ended run left");
        Ok(Retirement {
            run_id: run.run_id.clone(),
            serving,
            result: result.to_string(),
            retired_at: now,
            notified: None,
        })
    }

    /// Deletes `serving` when it carries Distillery's managed-by tag. `deleted` or `already_gone`.
    async fn delete_tagged(&self, run: &Run, serving: &Serving) -> Result<&'static str, StepError> {
        let arn = serving.arn();
        let tags = match self.bedrock.list_tags(arn).await {
            Ok(t) => t,
            Err(PortError::NotFound(_)) => return Ok("already_gone"),
            Err(e) => return Err(e.context(format!("ListTagsForResource {arn}"))),
        };
        if tags.get(MANAGED_BY_TAG).map(String::as_str) != Some(MANAGED_BY_VALUE) {
            return Err(StepError::new(
                ErrorType::GuardrailViolation,
                format!(
                    "not deleted: {} {arn} of run {} does not carry the tag {MANAGED_BY_TAG}={MANAGED_BY_VALUE}, \
                     and Distillery deletes only what it created; delete it yourself if it should go",
                    serving.what(),
                    run.run_id
                ),
            ));
        }
        let deleted = match serving {
            Serving::Deployment(a) => self.bedrock.delete_custom_model_deployment(a).await,
            Serving::Throughput(a) => self.bedrock.delete_provisioned_throughput(a).await,
        };
        match deleted {
            Ok(()) => Ok("deleted"),
            Err(PortError::NotFound(_)) => Ok("already_gone"),
            Err(e) => {
                let hint = match (serving, run.settings.commitment) {
                    (Serving::Throughput(_), c) if c != Commitment::None => format!(
                        "; a {} commitment cannot be deleted before its term ends",
                        c.as_str()
                    ),
                    _ => String::new(),
                };
                Err(e.context(format!(
                    "{} {arn} of run {}{hint}",
                    serving.delete_call(),
                    run.run_id
                )))
            }
        }
    }

    /// Pushes the run's `serving_expires_at` `hours` later. Only a ready (or provisioning) run with
    /// an expiry has one to push: no-commitment Provisioned Throughput.
    pub async fn extend(&self, run_id: &RunId, hours: f64) -> Result<Run, StepError> {
        if !(hours.is_finite() && hours > 0.0 && hours <= MAX_EXTEND_HOURS) {
            return Err(StepError::invalid_input(format!(
                "--hours must be a number of hours above 0 and at most {} (a year), got {hours}",
                format_budget(MAX_EXTEND_HOURS)
            )));
        }
        let run = self.load(run_id).await?;
        if !matches!(run.status, RunStatus::Ready | RunStatus::Provisioning) {
            return Err(run.refuse(
                "extend it: only a ready (or provisioning) run is served, and only no-commitment \
                 Provisioned Throughput expires",
            ));
        }
        if run.settings.serving == ServingMode::OnDemand || run.deployment_arn.is_some() {
            return Err(run.refuse(
                "extend it: it is served on demand, which is billed per token and costs nothing when \
                 idle, so it has no expiry (`distillery runs retire` deletes the deployment)",
            ));
        }
        if run.settings.commitment != Commitment::None {
            return Err(run.refuse(&format!(
                "extend it: its Provisioned Throughput has a {} commitment, which has no expiry and \
                 cannot be deleted before its term ends",
                run.settings.commitment.as_str()
            )));
        }
        let Some(current) = run.serving_expires_at else {
            return Err(run.refuse(
                "extend it yet: its expiry is set when its Provisioned Throughput goes InService; \
                 run `distillery runs extend` again once the run is ready",
            ));
        };
        // From now when the expiry has already passed (the scheduled pass has not reached it yet):
        // N more hours from a past time could still be in the past, and the pass would delete it.
        let from = current.max(self.clock.now());
        let update = RunUpdate {
            serving_expires_at: Some(from + hours_duration(hours)),
            ..Default::default()
        };
        let written = self
            .ledger
            .update(&run.run_id, &[run.status], &update)
            .await
            .map_err(|e| match e {
                PortError::Conflict(m) => StepError::conflict(format!(
                    "run {} changed while its expiry was being extended ({m}); check `distillery runs show {}` and try again",
                    run.run_id, run.run_id
                )),
                other => other.context(format!("extending run {}", run.run_id)),
            })?;
        tracing::info!(run_id = %run.run_id, from = %current, to = ?written.serving_expires_at, "expiry extended");
        Ok(written)
    }
}

#[cfg(test)]
mod tests;
