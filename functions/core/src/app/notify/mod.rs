//! Use case behind the `notifier` Lambda: tell people about one milestone of a run, on SNS and
//! (optionally) Slack, and keep the run ledger the source of truth.
//!
//! Order matters:
//! 1. When the state machine reached us through a Catch (`error` given), the failure is recorded on the
//!    run first, so the ledger is right even if every delivery fails.
//! 2. SNS, then Slack. A delivery that already succeeded for this milestone and channel (per the run's
//!    delivery records) is not sent again, so a retried Lambda does not double-post.
//! 3. Each delivery, good or bad, is recorded on the run. A Slack failure never fails the step.
//!
//! Delivery is at least once: a crash between a successful post and its ledger record makes the retry
//! post again. That is preferred to losing a message.

mod delivery;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn, Instrument};

use crate::domain::catalog::Prices;
use crate::domain::errors::StepError;
use crate::domain::messages::{
    render_for_run, render_without_run, CaughtError, MessageContext, Milestone,
};
use crate::domain::run::{DeliveryRecord, Run, RunId, RunStatus, RunUpdate};
use crate::ports::{Clock, MessagePublisher, PortError, RunLedger, SecretSource};

use delivery::Channels;
pub use delivery::{webhook_url_from_secret, WebhookFactory};

pub const CHANNEL_SNS: &str = "sns";
pub const CHANNEL_SLACK: &str = "slack";
/// SNS message attribute names subscribers filter on.
pub const ATTR_EVENT_TYPE: &str = "event_type";
pub const ATTR_RUN_ID: &str = "run_id";
/// The `run_id` attribute of a message about no recorded run (SNS refuses empty values).
pub const NO_RUN_ID: &str = "none";

/// Step input (docs/contracts.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub milestone: String,
    /// `{Error, Cause}` from a Step Functions Catch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    /// The execution input, passed when no run id exists yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The Step Functions execution asking (`$$.Execution.Id`). Only the execution that owns a run
    /// may record a caught error on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelOutcome {
    Delivered,
    Failed,
    /// Slack is not configured: `SLACK_SECRET_ARN` unset, or the secret's string empty.
    Disabled,
}

/// Step output (docs/contracts.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyOutput {
    pub run_id: Option<String>,
    pub milestone: String,
    pub sns: ChannelOutcome,
    pub slack: ChannelOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// Secret whose string is the webhook URL.
    pub secret_id: String,
    /// Bound on each POST.
    pub timeout: Duration,
    pub max_attempts: u32,
    /// How long the URL read from the secret is used before the secret is read again, so a
    /// rotated (or revoked) webhook takes effect within this bound ([`SLACK_URL_CACHE_TTL`]).
    pub url_cache_ttl: Duration,
    /// `SLACK_ALLOW_ANY_URL_FOR_TESTS=true`: accept any http(s) URL from the secret, not only
    /// `https://hooks.slack.com/`. Set only by the local stack (`tests/stack/start.sh`), whose
    /// webhook is a sink on 127.0.0.1; never by the SAM template.
    pub allow_any_url_for_tests: bool,
}

/// How long a container uses the webhook URL it read before reading the secret again.
pub const SLACK_URL_CACHE_TTL: Duration = Duration::from_secs(15 * 60);

/// The variable that lets a test stack post to a local sink instead of Slack.
pub const SLACK_ALLOW_ANY_URL_VAR: &str = "SLACK_ALLOW_ANY_URL_FOR_TESTS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// For console links and the delete command in messages.
    pub region: String,
    pub slack: Option<SlackConfig>,
    /// First pause between attempts; doubles each retry.
    pub retry_base_delay: Duration,
}

impl NotifyConfig {
    pub fn from_env() -> Result<Self, StepError> {
        Self::from_lookup(crate::config::process_var)
    }

    /// Reads `AWS_REGION`, `SLACK_SECRET_ARN`, `SLACK_TIMEOUT_MS`, `SLACK_MAX_ATTEMPTS`,
    /// `SLACK_ALLOW_ANY_URL_FOR_TESTS`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, StepError> {
        let env = crate::config::Env::new(get);
        let slack = match env.optional_string("SLACK_SECRET_ARN") {
            None => None,
            Some(secret_id) => Some(SlackConfig {
                secret_id,
                timeout: Duration::from_millis(env.positive_u64("SLACK_TIMEOUT_MS", 3000)?),
                max_attempts: env.positive_u64("SLACK_MAX_ATTEMPTS", 3)?.min(10) as u32,
                url_cache_ttl: SLACK_URL_CACHE_TTL,
                allow_any_url_for_tests: env.flag(SLACK_ALLOW_ANY_URL_VAR, false)?,
            }),
        };
        Ok(NotifyConfig {
            region: env.string_or("AWS_REGION", "us-east-1"),
            slack,
            retry_base_delay: Duration::from_millis(200),
        })
    }
}

/// Sends one milestone of a recorded run through the notifier's delivery (SNS, Slack, delivery
/// records), for use cases outside the state machine: the reconciler's expiry pass and
/// `distillery runs retire`.
#[async_trait::async_trait]
pub trait MilestoneSender: Send + Sync {
    async fn send(&self, run_id: &RunId, milestone: Milestone) -> Result<NotifyOutput, StepError>;
}

#[async_trait::async_trait]
impl MilestoneSender for Notifier {
    async fn send(&self, run_id: &RunId, milestone: Milestone) -> Result<NotifyOutput, StepError> {
        self.handle(NotifyInput {
            run_id: Some(run_id.to_string()),
            milestone: milestone.as_str().to_string(),
            error: None,
            input: None,
            execution: None,
        })
        .await
    }
}

pub struct Notifier {
    ledger: Arc<dyn RunLedger>,
    channels: Channels,
    clock: Arc<dyn Clock>,
    prices: Prices,
    config: NotifyConfig,
}

impl Notifier {
    pub fn new(
        ledger: Arc<dyn RunLedger>,
        publisher: Arc<dyn MessagePublisher>,
        secrets: Arc<dyn SecretSource>,
        webhook_factory: WebhookFactory,
        clock: Arc<dyn Clock>,
        prices: Prices,
        config: NotifyConfig,
    ) -> Self {
        Self {
            ledger,
            channels: Channels::new(
                publisher,
                secrets,
                webhook_factory,
                clock.clone(),
                config.retry_base_delay,
            ),
            clock,
            prices,
            config,
        }
    }

    pub async fn handle(&self, input: NotifyInput) -> Result<NotifyOutput, StepError> {
        let milestone = Milestone::parse(&input.milestone).ok_or_else(|| {
            let known: Vec<&str> = Milestone::ALL.iter().map(|m| m.as_str()).collect();
            StepError::invalid_input(format!(
                "field 'milestone': '{}' is not one of {}",
                input.milestone,
                known.join(", ")
            ))
        })?;
        let run_id = input
            .run_id
            .clone()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let span = tracing::info_span!(
            "notify",
            run_id = run_id.as_deref().unwrap_or(NO_RUN_ID),
            milestone = milestone.as_str()
        );
        async move {
            match &run_id {
                Some(id) => {
                    let id = RunId(id.clone());
                    match self.ledger.get(&id).await? {
                        Some(run) => self.notify_run(milestone, run, &input).await,
                        // Every run id the state machine passes was recorded by the validator: an
                        // unknown one is stray input, and nothing is broadcast about it.
                        None => Err(StepError::not_found(format!(
                            "run {id} is not in the ledger; no '{milestone}' message is sent for it"
                        ))),
                    }
                }
                // Only the validator's Catch has no run to name (it failed before recording one).
                None if milestone == Milestone::Failed && input.error.is_some() => {
                    warn!("no run id in the input; sending a generic failure message");
                    self.notify_without_run(milestone, &input).await
                }
                None => Err(StepError::invalid_input(format!(
                    "field 'runId' is required for a '{milestone}' message (only a caught step \
                     error, milestone 'failed' with 'error', may come without a run)"
                ))),
            }
        }
        .instrument(span)
        .await
    }

    async fn notify_run(
        &self,
        milestone: Milestone,
        mut run: Run,
        input: &NotifyInput,
    ) -> Result<NotifyOutput, StepError> {
        let caught = input.error.as_ref();
        if let Some(c) = caught {
            run = self
                .record_failure(run, milestone, c, input.execution.as_deref())
                .await?;
        }
        if !milestone.announces().contains(&run.status) {
            warn!(status = %run.status, "milestone contradicts the ledger; nothing is sent");
            return Err(run.refuse(&format!("announce '{milestone}'")));
        }
        let message = render_for_run(milestone, &run, &self.context(caught));
        let run_id = run.run_id.to_string();

        let sns = if already_delivered(&run, milestone, CHANNEL_SNS) {
            info!("SNS message for this milestone was already delivered; not sending again");
            ChannelOutcome::Delivered
        } else {
            let (outcome, detail) = self
                .channels
                .publish_sns(&message, Some(run.run_id.as_str()))
                .await;
            run = self
                .record_delivery(run, milestone, CHANNEL_SNS, outcome, detail)
                .await?;
            outcome
        };

        let slack = match &self.config.slack {
            None => ChannelOutcome::Disabled,
            Some(_) if already_delivered(&run, milestone, CHANNEL_SLACK) => {
                info!("Slack message for this milestone was already delivered; not sending again");
                ChannelOutcome::Delivered
            }
            Some(cfg) => {
                let (outcome, detail) = self.channels.post_slack(cfg, &message).await;
                // An empty secret means Slack is off: nothing was attempted, so nothing to record.
                if outcome != ChannelOutcome::Disabled {
                    self.record_delivery(run, milestone, CHANNEL_SLACK, outcome, detail)
                        .await?;
                }
                outcome
            }
        };
        Ok(NotifyOutput {
            run_id: Some(run_id),
            milestone: milestone.as_str().to_string(),
            sns,
            slack,
        })
    }

    /// A step failed before any run was recorded: the message names the execution's input instead.
    async fn notify_without_run(
        &self,
        milestone: Milestone,
        input: &NotifyInput,
    ) -> Result<NotifyOutput, StepError> {
        let ctx = self.context(input.error.as_ref());
        let message = render_without_run(milestone, None, input.input.as_ref(), &ctx);
        let (sns, _) = self.channels.publish_sns(&message, None).await;
        let slack = match &self.config.slack {
            None => ChannelOutcome::Disabled,
            Some(cfg) => self.channels.post_slack(cfg, &message).await.0,
        };
        Ok(NotifyOutput {
            run_id: None,
            milestone: milestone.as_str().to_string(),
            sns,
            slack,
        })
    }

    fn context<'a>(&'a self, caught: Option<&'a CaughtError>) -> MessageContext<'a> {
        MessageContext {
            region: &self.config.region,
            prices: &self.prices,
            now: self.clock.now(),
            caught,
        }
    }

    /// Records a caught step error on the run: `failed` (milestone `failed`) or `provisioning_failed`
    /// (milestone `provisioning_failed`) with the error as the reason, conditional on the status
    /// read. Nothing is written, and the request is a `Conflict`, when
    /// - another execution owns the run (stray input must never rewrite it);
    /// - the run is in a status that error can't come from: a `training` run has a live, billed job,
    ///   which only the poller or the reconciler may end with its true outcome, and a run past its job
    ///   isn't failed by a provisioning error's `failed` twin.
    ///
    /// A run already in the target status is left as it is (a retried notifier), and a final run is
    /// left for the milestone check to accept or refuse.
    async fn record_failure(
        &self,
        run: Run,
        milestone: Milestone,
        caught: &CaughtError,
        execution: Option<&str>,
    ) -> Result<Run, StepError> {
        let (target, from): (RunStatus, &[RunStatus]) = match milestone {
            Milestone::Failed => (
                RunStatus::Failed,
                &[
                    RunStatus::Received,
                    RunStatus::Validating,
                    RunStatus::Validated,
                    RunStatus::Launching,
                    // A step failed while the run waited for a job slot (a slot it was given is
                    // freed by the launch queue's sweep).
                    RunStatus::Queued,
                ],
            ),
            Milestone::ProvisioningFailed => (
                RunStatus::ProvisioningFailed,
                &[
                    RunStatus::Completed,
                    RunStatus::Provisioning,
                    RunStatus::ServingQueued,
                ],
            ),
            other => {
                return Err(StepError::invalid_input(format!(
                    "field 'error' comes only with milestone 'failed' or 'provisioning_failed', not '{other}'"
                )))
            }
        };
        if run.owner_execution.is_some() && !run.is_owned_by(execution) {
            warn!(owner = ?run.owner_execution, ?execution, "not the run's execution; nothing recorded");
            return Err(run.refuse(&format!(
                "record a caught error for execution {}: only the execution that owns the run ({}) may",
                execution.unwrap_or("(none given)"),
                run.owner_execution.as_deref().unwrap_or_default()
            )));
        }
        let mut run = run;
        for attempt in 0..2 {
            if run.status == target || run.is_final() {
                info!(status = %run.status, "run already recorded as it ends; failure not re-recorded");
                return Ok(run);
            }
            if !from.contains(&run.status) || !run.can_move_to(target) {
                let why = match (run.status, &run.job_arn) {
                    (RunStatus::Training, Some(job)) => format!(
                        "record '{milestone}' from a caught step error: job {job} is live in Bedrock, and only the poller or the reconciler ends it, with its true outcome"
                    ),
                    _ => format!("record '{milestone}' from a caught step error"),
                };
                warn!(status = %run.status, "a caught error can't end the run from here; nothing recorded");
                return Err(run.refuse(&why));
            }
            let update = RunUpdate {
                failure_reason: Some(caught.summary()),
                finished_at: Some(self.clock.now()),
                ..RunUpdate::to(target).with_detail(format!(
                    "step error caught by the state machine ({})",
                    milestone.as_str()
                ))
            };
            match self
                .ledger
                .update(&run.run_id, &[run.status], &update)
                .await
            {
                Ok(updated) => {
                    info!(from = %run.status, to = %target, "failure recorded on the run");
                    return Ok(updated);
                }
                Err(PortError::Conflict(e)) if attempt == 0 => {
                    warn!(error = %e, "run changed while recording the failure; re-reading");
                    run = self.reread(&run.run_id).await?;
                }
                Err(e) => return Err(e.context("recording the failure on the run")),
            }
        }
        Ok(run)
    }

    /// Appends a delivery record, conditional on the run's current status; one re-read on conflict.
    async fn record_delivery(
        &self,
        run: Run,
        milestone: Milestone,
        channel: &str,
        outcome: ChannelOutcome,
        detail: String,
    ) -> Result<Run, StepError> {
        let record = DeliveryRecord {
            at: self.clock.now(),
            milestone: milestone.as_str().to_string(),
            channel: channel.to_string(),
            delivered: outcome == ChannelOutcome::Delivered,
            detail: Some(detail),
        };
        let update = RunUpdate {
            delivery: Some(record),
            ..Default::default()
        };
        let mut expected = run.status;
        for attempt in 0..2 {
            match self.ledger.update(&run.run_id, &[expected], &update).await {
                Ok(updated) => return Ok(updated),
                Err(PortError::Conflict(e)) if attempt == 0 => {
                    warn!(channel, error = %e, "run changed while recording a delivery; re-reading");
                    expected = self.reread(&run.run_id).await?.status;
                }
                Err(e) => {
                    warn!(channel, error = %e, "could not record the delivery on the run");
                    return Err(e.context(format!("recording the {channel} delivery on the run")));
                }
            }
        }
        unreachable!("the loop returns on its second attempt")
    }

    async fn reread(&self, run_id: &RunId) -> Result<Run, StepError> {
        self.ledger.get(run_id).await?.ok_or_else(|| {
            StepError::not_found(format!("run {run_id} disappeared from the ledger"))
        })
    }
}

fn already_delivered(run: &Run, milestone: Milestone, channel: &str) -> bool {
    // The expiry warning repeats for each new expiry (`distillery runs extend`): it was sent when
    // the run records the warning for the expiry it has now.
    if milestone == Milestone::ExpiringSoon {
        return run.expiry_warning_sent_for.is_some()
            && run.expiry_warning_sent_for == run.serving_expires_at;
    }
    run.deliveries
        .iter()
        .any(|d| d.delivered && d.channel == channel && d.milestone == milestone.as_str())
}
