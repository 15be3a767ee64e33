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

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn, Instrument};

use crate::domain::catalog::Prices;
use crate::domain::errors::StepError;
use crate::domain::messages::{
    render_for_run, render_without_run, CaughtError, MessageContext, Milestone, RenderedMessage,
};
use crate::domain::run::{DeliveryRecord, Run, RunId, RunStatus, RunUpdate};
use crate::ports::{
    ChatWebhook, Clock, MessagePublisher, OutboundMessage, PortError, RunLedger, SecretSource,
};

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// For console links and the delete command in messages.
    pub region: String,
    pub sns_max_attempts: u32,
    pub slack: Option<SlackConfig>,
    /// First pause between attempts; doubles each retry.
    pub retry_base_delay: Duration,
}

impl NotifyConfig {
    pub fn from_env() -> Result<Self, StepError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads `AWS_REGION`, `SLACK_SECRET_ARN`, `SLACK_TIMEOUT_MS`, `SLACK_MAX_ATTEMPTS`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, StepError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |k: &str, default: u64| -> Result<u64, StepError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    StepError::config(format!(
                        "environment variable {k} must be a positive whole number, got '{v}'"
                    ))
                }),
            }
        };
        let slack = match get("SLACK_SECRET_ARN") {
            None => None,
            Some(secret_id) => Some(SlackConfig {
                secret_id,
                timeout: Duration::from_millis(number("SLACK_TIMEOUT_MS", 3000)?),
                max_attempts: number("SLACK_MAX_ATTEMPTS", 3)?.min(10) as u32,
            }),
        };
        Ok(NotifyConfig {
            region: get("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            sns_max_attempts: 3,
            slack,
            retry_base_delay: Duration::from_millis(200),
        })
    }
}

/// Builds the webhook client from the URL read from the secret (an adapter; the app never sees HTTP).
pub type WebhookFactory =
    Arc<dyn Fn(&str, Duration) -> Result<Arc<dyn ChatWebhook>, PortError> + Send + Sync>;

/// The webhook, built once per container from the secret.
struct SlackTarget {
    webhook: Arc<dyn ChatWebhook>,
    /// Kept only to scrub it from any error text before that text is logged or recorded.
    url: String,
}

pub struct Notifier {
    ledger: Arc<dyn RunLedger>,
    publisher: Arc<dyn MessagePublisher>,
    secrets: Arc<dyn SecretSource>,
    webhook_factory: WebhookFactory,
    /// Read from the secret on first use. `None`: the secret is empty, so Slack is not configured
    /// (the stack creates the secret empty by default; filling it in turns Slack on for new
    /// containers).
    /// (An async mutex rather than a once-cell: a failed read is not kept, so the next call retries.)
    slack: futures::lock::Mutex<Option<Option<Arc<SlackTarget>>>>,
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
            publisher,
            secrets,
            webhook_factory,
            slack: futures::lock::Mutex::new(None),
            clock,
            prices,
            config,
        }
    }

    pub async fn handle(&self, input: NotifyInput) -> Result<NotifyOutput, StepError> {
        let milestone = Milestone::parse(&input.milestone).ok_or_else(|| {
            let known: Vec<&str> = Milestone::ALL.iter().map(|m| m.as_str()).collect();
            StepError::bad_event(format!(
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
                        Some(run) => self.notify_run(milestone, run, input.error.as_ref()).await,
                        None => {
                            warn!("run is not in the ledger; sending a message without it");
                            self.notify_without_run(milestone, Some(id.as_str()), &input)
                                .await
                        }
                    }
                }
                None => {
                    warn!("no run id in the input; sending a generic failure message");
                    self.notify_without_run(milestone, None, &input).await
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn notify_run(
        &self,
        milestone: Milestone,
        mut run: Run,
        caught: Option<&CaughtError>,
    ) -> Result<NotifyOutput, StepError> {
        if let Some(c) = caught {
            run = self.record_failure(run, milestone, c).await?;
        }
        let message = render_for_run(milestone, &run, &self.context(caught));
        let run_id = run.run_id.to_string();

        let sns = if already_delivered(&run, milestone, CHANNEL_SNS) {
            info!("SNS message for this milestone was already delivered; not sending again");
            ChannelOutcome::Delivered
        } else {
            let (outcome, detail) = self.publish_sns(&message, Some(run.run_id.as_str())).await;
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
                let (outcome, detail) = self.post_slack(cfg, &message).await;
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

    async fn notify_without_run(
        &self,
        milestone: Milestone,
        run_id: Option<&str>,
        input: &NotifyInput,
    ) -> Result<NotifyOutput, StepError> {
        let ctx = self.context(input.error.as_ref());
        let message = render_without_run(milestone, run_id, input.input.as_ref(), &ctx);
        let (sns, _) = self.publish_sns(&message, run_id).await;
        let slack = match &self.config.slack {
            None => ChannelOutcome::Disabled,
            Some(cfg) => self.post_slack(cfg, &message).await.0,
        };
        Ok(NotifyOutput {
            run_id: run_id.map(str::to_string),
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

    /// Moves the run to `failed` (or `provisioning_failed`) with the caught error as the reason,
    /// unless it is already terminal. Conditional on the status we read; on a lost race, re-read and
    /// try once more.
    async fn record_failure(
        &self,
        run: Run,
        milestone: Milestone,
        caught: &CaughtError,
    ) -> Result<Run, StepError> {
        let mut run = run;
        for attempt in 0..2 {
            if run.status.is_terminal() {
                info!(status = %run.status, "run is already terminal; failure not re-recorded");
                return Ok(run);
            }
            let preferred = if milestone == Milestone::ProvisioningFailed {
                [RunStatus::ProvisioningFailed, RunStatus::Failed]
            } else {
                [RunStatus::Failed, RunStatus::ProvisioningFailed]
            };
            let Some(target) = preferred.into_iter().find(|t| run.status.can_move_to(*t)) else {
                warn!(status = %run.status, "no failure status is reachable from here");
                return Ok(run);
            };
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
                Err(e) => return Err(e.into()),
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
                    return Err(e.into());
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

    /// Publishes with retries on throttling and transient faults. Returns the outcome and a detail
    /// for the delivery record.
    async fn publish_sns(
        &self,
        message: &RenderedMessage,
        run_id: Option<&str>,
    ) -> (ChannelOutcome, String) {
        let msg = OutboundMessage {
            subject: message.subject.clone(),
            body: message.body.clone(),
            attributes: [
                (
                    ATTR_EVENT_TYPE.to_string(),
                    message.milestone.as_str().to_string(),
                ),
                (
                    ATTR_RUN_ID.to_string(),
                    run_id.unwrap_or(NO_RUN_ID).to_string(),
                ),
            ]
            .into_iter()
            .collect(),
        };
        let attempts = self.config.sns_max_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match self.publisher.publish(&msg).await {
                Ok(id) => {
                    info!(message_id = %id, attempt, "SNS message published");
                    return (ChannelOutcome::Delivered, format!("SNS message id {id}"));
                }
                Err(e) => {
                    warn!(attempt, error = %e, "SNS publish failed");
                    last = e.to_string();
                    if !is_retryable(&e) {
                        break;
                    }
                    if attempt < attempts {
                        futures_timer::Delay::new(self.backoff(attempt)).await;
                    }
                }
            }
        }
        (ChannelOutcome::Failed, last)
    }

    async fn post_slack(
        &self,
        cfg: &SlackConfig,
        message: &RenderedMessage,
    ) -> (ChannelOutcome, String) {
        let target = match self
            .slack_target(|| async {
                let secret = self.secrets.secret_string(&cfg.secret_id).await?;
                if secret.trim().is_empty() {
                    // Logged once per container: the result is kept, like the URL would be.
                    info!(
                        secret_id = %cfg.secret_id,
                        "the Slack webhook secret is empty: Slack is not configured, messages go to SNS only"
                    );
                    return Ok(None);
                }
                let url = webhook_url_from_secret(&secret)?;
                let webhook = (self.webhook_factory)(&url, cfg.timeout)?;
                Ok::<_, PortError>(Some(SlackTarget { webhook, url }))
            })
            .await
        {
            Ok(Some(t)) => t,
            Ok(None) => return (ChannelOutcome::Disabled, String::new()),
            Err(e) => {
                let detail = format!("cannot get the Slack webhook: {e}");
                warn!(error = %detail, "Slack not delivered");
                return (ChannelOutcome::Failed, detail);
            }
        };
        let attempts = cfg.max_attempts.max(1);
        let mut last = String::new();
        let mut tried = 0;
        for attempt in 1..=attempts {
            tried = attempt;
            let post = target.webhook.post(&message.slack);
            let deadline = futures_timer::Delay::new(cfg.timeout);
            futures::pin_mut!(post);
            let result = match futures::future::select(post, deadline).await {
                futures::future::Either::Left((r, _)) => r,
                futures::future::Either::Right(_) => Err(PortError::Transient(format!(
                    "Slack webhook timed out after {} ms",
                    cfg.timeout.as_millis()
                ))),
            };
            match result {
                Ok(()) => {
                    info!(attempt, "Slack message posted");
                    return (
                        ChannelOutcome::Delivered,
                        format!("posted to Slack (attempt {attempt})"),
                    );
                }
                Err(e) => {
                    last = scrub(&e.to_string(), &target.url);
                    warn!(attempt, error = %last, "Slack post failed");
                    if !is_retryable(&e) {
                        break;
                    }
                    if attempt < attempts {
                        futures_timer::Delay::new(self.backoff(attempt)).await;
                    }
                }
            }
        }
        (
            ChannelOutcome::Failed,
            format!("failed after {tried} attempt(s): {last}"),
        )
    }

    /// The webhook, read from the secret on first use and kept for the container's life; a failed
    /// read is not kept, so the next notification tries again.
    async fn slack_target<F, Fut>(&self, init: F) -> Result<Option<Arc<SlackTarget>>, PortError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<SlackTarget>, PortError>>,
    {
        let mut cached = self.slack.lock().await;
        if let Some(target) = cached.as_ref() {
            return Ok(target.clone());
        }
        let target = init().await?.map(Arc::new);
        *cached = Some(target.clone());
        Ok(target)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.config.retry_base_delay * 2u32.saturating_pow(attempt.saturating_sub(1).min(8))
    }
}

fn already_delivered(run: &Run, milestone: Milestone, channel: &str) -> bool {
    run.deliveries
        .iter()
        .any(|d| d.delivered && d.channel == channel && d.milestone == milestone.as_str())
}

fn is_retryable(e: &PortError) -> bool {
    matches!(e, PortError::Throttled(_) | PortError::Transient(_))
}

fn scrub(text: &str, url: &str) -> String {
    if url.is_empty() {
        text.to_string()
    } else {
        text.replace(url, "<redacted webhook URL>")
    }
}

/// The secret's string is the webhook URL; a JSON object with a `url` / `webhookUrl` /
/// `webhook_url` key is accepted too (a common way to store it). Errors never include the value.
pub fn webhook_url_from_secret(secret: &str) -> Result<String, PortError> {
    let s = secret.trim();
    let url = if s.starts_with('{') {
        let v: Value = serde_json::from_str(s).map_err(|_| {
            PortError::Validation("the Slack webhook secret is neither a URL nor valid JSON".into())
        })?;
        ["url", "webhookUrl", "webhook_url"]
            .iter()
            .find_map(|k| v.get(*k).and_then(Value::as_str))
            .map(str::to_string)
            .ok_or_else(|| {
                PortError::Validation(
                    "the Slack webhook secret is JSON without a 'url' (or 'webhookUrl') key".into(),
                )
            })?
    } else {
        s.to_string()
    };
    if url.starts_with("https://") || url.starts_with("http://") {
        Ok(url)
    } else {
        Err(PortError::Validation(
            "the Slack webhook secret does not hold an http(s) URL".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::run::{DatasetLocation, RunSource, ValidationSummary};
    use crate::domain::settings::{Commitment, RunSettings, ServingMode};
    use crate::ports::CreateOutcome;
    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    const URL: &str = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
    }

    struct FixedClock;
    impl Clock for FixedClock {
        fn now(&self) -> DateTime<Utc> {
            now()
        }
    }

    /// A ledger with the real rules (expected status, allowed moves) and a hook to simulate another
    /// writer changing the run just before our next update.
    #[derive(Default)]
    struct FakeLedger {
        runs: Mutex<HashMap<RunId, Run>>,
        race_to: Mutex<Option<RunStatus>>,
        updates: AtomicUsize,
    }

    #[async_trait]
    impl RunLedger for FakeLedger {
        async fn create(&self, run: &Run) -> Result<CreateOutcome, PortError> {
            self.runs
                .lock()
                .unwrap()
                .insert(run.run_id.clone(), run.clone());
            Ok(CreateOutcome::Created(run.clone()))
        }
        async fn get(&self, run_id: &RunId) -> Result<Option<Run>, PortError> {
            Ok(self.runs.lock().unwrap().get(run_id).cloned())
        }
        async fn update(
            &self,
            run_id: &RunId,
            expected: &[RunStatus],
            update: &RunUpdate,
        ) -> Result<Run, PortError> {
            self.updates.fetch_add(1, Ordering::SeqCst);
            let mut runs = self.runs.lock().unwrap();
            let run = runs
                .get_mut(run_id)
                .ok_or_else(|| PortError::NotFound(run_id.to_string()))?;
            if let Some(to) = self.race_to.lock().unwrap().take() {
                RunUpdate::to(to).apply_to(run, now());
            }
            if !expected.contains(&run.status) {
                return Err(PortError::Conflict(format!("status is {}", run.status)));
            }
            if let Some(next) = update.status {
                if !run.status.can_move_to(next) {
                    return Err(PortError::Conflict(format!("{} -> {next}", run.status)));
                }
            }
            update.apply_to(run, now());
            Ok(run.clone())
        }
        async fn list_recent(&self, _: usize) -> Result<Vec<Run>, PortError> {
            Ok(vec![])
        }
        async fn list_by_status(&self, _: RunStatus, _: usize) -> Result<Vec<Run>, PortError> {
            Ok(vec![])
        }
    }

    #[derive(Default)]
    struct FakePublisher {
        sent: Mutex<Vec<OutboundMessage>>,
        calls: AtomicUsize,
        /// Errors returned by the next calls, in order.
        failures: Mutex<Vec<PortError>>,
    }

    #[async_trait]
    impl MessagePublisher for FakePublisher {
        async fn publish(&self, msg: &OutboundMessage) -> Result<String, PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut f = self.failures.lock().unwrap();
            if !f.is_empty() {
                return Err(f.remove(0));
            }
            self.sent.lock().unwrap().push(msg.clone());
            Ok(format!("msg-{}", self.sent.lock().unwrap().len()))
        }
    }

    #[derive(Default)]
    struct FakeSecrets {
        calls: AtomicUsize,
        /// The secret's string when set; the webhook URL otherwise.
        value: Mutex<Option<String>>,
    }

    #[async_trait]
    impl SecretSource for FakeSecrets {
        async fn secret_string(&self, _: &str) -> Result<String, PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .value
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| URL.to_string()))
        }
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        Ok,
        ServerError,
        BadRequest,
        Hang,
    }

    struct FakeWebhook {
        mode: Mutex<Mode>,
        posted: Mutex<Vec<Value>>,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl ChatWebhook for FakeWebhook {
        async fn post(&self, payload: &Value) -> Result<(), PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mode = *self.mode.lock().unwrap();
            match mode {
                Mode::Ok => {
                    self.posted.lock().unwrap().push(payload.clone());
                    Ok(())
                }
                // An adapter that forgot to redact: the use case must scrub the URL anyway.
                Mode::ServerError => Err(PortError::Transient(format!("HTTP 500 from {URL}"))),
                Mode::BadRequest => Err(PortError::Validation("HTTP 400: invalid_payload".into())),
                Mode::Hang => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(())
                }
            }
        }
    }

    struct Fixture {
        ledger: Arc<FakeLedger>,
        publisher: Arc<FakePublisher>,
        secrets: Arc<FakeSecrets>,
        webhook: Arc<FakeWebhook>,
        notifier: Notifier,
    }

    fn config(slack: bool) -> NotifyConfig {
        NotifyConfig {
            region: "us-east-1".into(),
            sns_max_attempts: 3,
            slack: slack.then(|| SlackConfig {
                secret_id: "arn:aws:secretsmanager:us-east-1:1:secret:slack".into(),
                timeout: Duration::from_millis(50),
                max_attempts: 3,
            }),
            retry_base_delay: Duration::from_millis(1),
        }
    }

    fn fixture(slack: bool) -> Fixture {
        let ledger = Arc::new(FakeLedger::default());
        let publisher = Arc::new(FakePublisher::default());
        let secrets = Arc::new(FakeSecrets::default());
        let webhook = Arc::new(FakeWebhook {
            mode: Mutex::new(Mode::Ok),
            posted: Mutex::new(vec![]),
            calls: AtomicUsize::new(0),
        });
        let w = webhook.clone();
        let factory: WebhookFactory = Arc::new(move |url, _timeout| {
            assert_eq!(url, URL);
            Ok(w.clone() as Arc<dyn ChatWebhook>)
        });
        let notifier = Notifier::new(
            ledger.clone(),
            publisher.clone(),
            secrets.clone(),
            factory,
            Arc::new(FixedClock),
            Prices::builtin(),
            config(slack),
        );
        Fixture {
            ledger,
            publisher,
            secrets,
            webhook,
            notifier,
        }
    }

    fn seed(f: &Fixture, status: RunStatus) -> RunId {
        let id = RunId("run-00000000000000000001".into());
        let mut run = Run::new(
            id.clone(),
            RunSource::S3Upload,
            DatasetLocation::S3Object {
                bucket: "bkt".into(),
                key: "incoming/chats.jsonl".into(),
                etag: "e".into(),
                version_id: None,
                size: 10,
            },
            RunSettings {
                teacher: "amazon.nova-pro-v1:0".into(),
                student: "amazon.nova-lite-v1:0:300k".into(),
                max_response_length: 1000,
                serving: ServingMode::Provisioned,
                model_units: 1,
                commitment: Commitment::None,
            },
            now(),
        );
        run.status = status;
        run.job_name = Some("distill-chats-1".into());
        run.job_arn = Some("arn:aws:bedrock:us-east-1:1:model-customization-job/x/y".into());
        run.validation = Some(ValidationSummary {
            valid: true,
            records: 321,
            ..Default::default()
        });
        f.ledger.runs.lock().unwrap().insert(id.clone(), run);
        id
    }

    fn input(id: Option<&RunId>, milestone: &str) -> NotifyInput {
        NotifyInput {
            run_id: id.map(|i| i.to_string()),
            milestone: milestone.into(),
            error: None,
            input: None,
        }
    }

    fn run_of(f: &Fixture, id: &RunId) -> Run {
        f.ledger.runs.lock().unwrap().get(id).cloned().unwrap()
    }

    #[tokio::test]
    async fn launched_goes_to_sns_and_slack_and_both_deliveries_are_recorded() {
        let f = fixture(true);
        let id = seed(&f, RunStatus::Training);
        let out = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(out.sns, ChannelOutcome::Delivered);
        assert_eq!(out.slack, ChannelOutcome::Delivered);
        assert_eq!(out.run_id.as_deref(), Some(id.as_str()));
        let sent = f.publisher.sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].attributes[ATTR_EVENT_TYPE], "launched");
        assert_eq!(sent[0].attributes[ATTR_RUN_ID], id.as_str());
        assert!(sent[0]
            .subject
            .starts_with("Distillery: Distillation launched - chats"));
        assert!(sent[0].body.contains("Job name: distill-chats-1"));
        let posted = f.webhook.posted.lock().unwrap().clone();
        assert_eq!(posted.len(), 1);
        assert_eq!(posted[0]["blocks"][0]["type"], "header");
        let run = run_of(&f, &id);
        assert_eq!(
            run.status,
            RunStatus::Training,
            "a delivery never moves the run"
        );
        let d: Vec<(&str, bool)> = run
            .deliveries
            .iter()
            .map(|d| (d.channel.as_str(), d.delivered))
            .collect();
        assert_eq!(d, vec![("sns", true), ("slack", true)]);
        assert!(run.deliveries.iter().all(|d| d.milestone == "launched"));
    }

    #[tokio::test]
    async fn a_retried_notify_does_not_post_twice_and_reads_the_secret_once() {
        let f = fixture(true);
        let id = seed(&f, RunStatus::Training);
        f.notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        let again = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(again.sns, ChannelOutcome::Delivered);
        assert_eq!(again.slack, ChannelOutcome::Delivered);
        assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 1);
        assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 1);
        assert_eq!(run_of(&f, &id).deliveries.len(), 2);
        // Another milestone is a new message, but the webhook secret is not read again.
        f.notifier
            .handle(input(Some(&id), "completed"))
            .await
            .unwrap();
        assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 2);
        assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 2);
        assert_eq!(f.secrets.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn slack_down_is_retried_then_recorded_without_failing_the_step() {
        let f = fixture(true);
        let id = seed(&f, RunStatus::Training);
        *f.webhook.mode.lock().unwrap() = Mode::ServerError;
        let out = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(out.sns, ChannelOutcome::Delivered);
        assert_eq!(out.slack, ChannelOutcome::Failed);
        assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 3);
        let run = run_of(&f, &id);
        let slack = run
            .deliveries
            .iter()
            .find(|d| d.channel == "slack")
            .unwrap();
        assert!(!slack.delivered);
        let detail = slack.detail.clone().unwrap();
        assert!(detail.contains("failed after 3 attempt(s)"), "{detail}");
        assert!(!detail.contains("SECRETTOKEN"), "{detail}");

        // Slack is back: the retried step posts the missing Slack message only.
        *f.webhook.mode.lock().unwrap() = Mode::Ok;
        let out = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(out.slack, ChannelOutcome::Delivered);
        assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 1);
        assert_eq!(f.webhook.posted.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn slack_4xx_is_not_retried_and_a_hang_times_out() {
        let f = fixture(true);
        let id = seed(&f, RunStatus::Training);
        *f.webhook.mode.lock().unwrap() = Mode::BadRequest;
        let out = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(out.slack, ChannelOutcome::Failed);
        assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 1);

        *f.webhook.mode.lock().unwrap() = Mode::Hang;
        let started = std::time::Instant::now();
        let out = f
            .notifier
            .handle(input(Some(&id), "completed"))
            .await
            .unwrap();
        assert_eq!(out.slack, ChannelOutcome::Failed);
        assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 4);
        assert!(started.elapsed() < Duration::from_secs(5));
        let run = run_of(&f, &id);
        let last = run.deliveries.last().unwrap();
        assert!(last
            .detail
            .as_deref()
            .unwrap()
            .contains("timed out after 50 ms"));
    }

    /// Log lines written while the guard lives (this thread only: the tests run on one thread).
    #[derive(Clone, Default)]
    struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for CapturedLogs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl CapturedLogs {
        fn start(&self) -> tracing::subscriber::DefaultGuard {
            let logs = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .with_writer(move || logs.clone())
                .finish();
            tracing::subscriber::set_default(subscriber)
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[tokio::test]
    async fn an_empty_slack_secret_means_slack_is_off_not_failing() {
        for empty in ["", "  \n\t"] {
            let logs = CapturedLogs::default();
            let _guard = logs.start();
            let f = fixture(true);
            *f.secrets.value.lock().unwrap() = Some(empty.to_string());
            let id = seed(&f, RunStatus::Training);
            for milestone in ["launched", "completed"] {
                let out = f
                    .notifier
                    .handle(input(Some(&id), milestone))
                    .await
                    .unwrap();
                assert_eq!(out.sns, ChannelOutcome::Delivered);
                assert_eq!(out.slack, ChannelOutcome::Disabled, "{empty:?} {milestone}");
            }
            // Without a run, too.
            let out = f.notifier.handle(input(None, "failed")).await.unwrap();
            assert_eq!(out.slack, ChannelOutcome::Disabled);
            // Nothing posted, no Slack delivery record (so no failure), the secret read once.
            assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 0);
            let run = run_of(&f, &id);
            assert!(
                run.deliveries
                    .iter()
                    .all(|d| d.channel == "sns" && d.delivered),
                "{:?}",
                run.deliveries
            );
            assert_eq!(run.deliveries.len(), 2);
            assert_eq!(f.secrets.calls.load(Ordering::SeqCst), 1);
            // Said once, at info level, never as a warning.
            let text = logs.text();
            let said: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("Slack webhook secret is empty"))
                .collect();
            assert_eq!(said.len(), 1, "{text}");
            assert!(said[0].contains("INFO"), "{}", said[0]);
            assert!(
                !text
                    .lines()
                    .any(|l| l.contains("WARN") && l.contains("Slack")),
                "{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_secret_that_is_not_a_url_is_still_a_delivery_failure() {
        let f = fixture(true);
        *f.secrets.value.lock().unwrap() = Some("not-a-url".into());
        let id = seed(&f, RunStatus::Training);
        let out = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(out.slack, ChannelOutcome::Failed);
        let run = run_of(&f, &id);
        let slack = run
            .deliveries
            .iter()
            .find(|d| d.channel == "slack")
            .unwrap();
        assert!(!slack.delivered);
        assert!(slack
            .detail
            .as_deref()
            .unwrap()
            .contains("does not hold an http(s) URL"));
    }

    #[tokio::test]
    async fn sns_transient_failures_are_retried_and_permanent_ones_recorded() {
        let f = fixture(false);
        let id = seed(&f, RunStatus::Training);
        *f.publisher.failures.lock().unwrap() = vec![
            PortError::Throttled("slow".into()),
            PortError::Transient("503".into()),
        ];
        let out = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(out.sns, ChannelOutcome::Delivered);
        assert_eq!(out.slack, ChannelOutcome::Disabled);
        assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 3);

        *f.publisher.failures.lock().unwrap() =
            vec![PortError::AccessDenied("no sns:Publish".into())];
        let out = f
            .notifier
            .handle(input(Some(&id), "completed"))
            .await
            .unwrap();
        assert_eq!(out.sns, ChannelOutcome::Failed);
        assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 4);
        let run = run_of(&f, &id);
        let last = run.deliveries.last().unwrap();
        assert_eq!((last.channel.as_str(), last.delivered), ("sns", false));
        assert!(last.detail.as_deref().unwrap().contains("no sns:Publish"));
        // Slack disabled: no Slack record at all.
        assert!(run.deliveries.iter().all(|d| d.channel == "sns"));
    }

    #[tokio::test]
    async fn a_caught_error_is_recorded_on_the_run_before_delivery() {
        let f = fixture(false);
        let id = seed(&f, RunStatus::Training);
        let mut i = input(Some(&id), "failed");
        i.error = Some(CaughtError {
            error: "Internal".into(),
            cause: r#"{"errorType":"Internal","errorMessage":"poller exploded"}"#.into(),
        });
        let out = f.notifier.handle(i.clone()).await.unwrap();
        assert_eq!(out.sns, ChannelOutcome::Delivered);
        let run = run_of(&f, &id);
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(
            run.failure_reason.as_deref(),
            Some("Internal: poller exploded")
        );
        assert_eq!(run.finished_at, Some(now()));
        assert!(f.publisher.sent.lock().unwrap()[0]
            .body
            .contains("Reason: Internal: poller exploded"));

        // Already terminal: the recorded reason stays as it was.
        i.error = Some(CaughtError {
            error: "Other".into(),
            cause: "later".into(),
        });
        f.notifier.handle(i).await.unwrap();
        let run = run_of(&f, &id);
        assert_eq!(
            run.failure_reason.as_deref(),
            Some("Internal: poller exploded")
        );
        assert_eq!(
            f.publisher.calls.load(Ordering::SeqCst),
            1,
            "same milestone, no repost"
        );
    }

    #[tokio::test]
    async fn provisioning_failure_moves_to_provisioning_failed() {
        let f = fixture(false);
        let id = seed(&f, RunStatus::Provisioning);
        let mut i = input(Some(&id), "provisioning_failed");
        i.error = Some(CaughtError {
            error: "GuardrailViolation".into(),
            cause: "too many model units".into(),
        });
        f.notifier.handle(i).await.unwrap();
        let run = run_of(&f, &id);
        assert_eq!(run.status, RunStatus::ProvisioningFailed);
        // From Completed (the provisioner failed before moving the run) it falls back to Failed.
        let f = fixture(false);
        let id = seed(&f, RunStatus::Completed);
        let mut i = input(Some(&id), "provisioning_failed");
        i.error = Some(CaughtError::default());
        f.notifier.handle(i).await.unwrap();
        assert_eq!(run_of(&f, &id).status, RunStatus::Failed);
    }

    #[tokio::test]
    async fn a_concurrent_status_change_is_re_read_and_the_delivery_still_recorded() {
        let f = fixture(false);
        let id = seed(&f, RunStatus::Training);
        *f.ledger.race_to.lock().unwrap() = Some(RunStatus::Completed);
        let out = f
            .notifier
            .handle(input(Some(&id), "launched"))
            .await
            .unwrap();
        assert_eq!(out.sns, ChannelOutcome::Delivered);
        let run = run_of(&f, &id);
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(run.deliveries.len(), 1);
        assert_eq!(f.ledger.updates.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn missing_or_unknown_run_id_still_publishes_a_generic_failure() {
        let f = fixture(true);
        let mut i = input(None, "failed");
        i.error = Some(CaughtError {
            error: "States.TaskFailed".into(),
            cause: "validator crashed".into(),
        });
        i.input = Some(
            serde_json::json!({"source": "distillery.cli", "bucket": "b", "key": "incoming/x.jsonl"}),
        );
        let out = f.notifier.handle(i).await.unwrap();
        assert_eq!(out.run_id, None);
        assert_eq!(out.sns, ChannelOutcome::Delivered);
        assert_eq!(out.slack, ChannelOutcome::Delivered);
        let sent = f.publisher.sent.lock().unwrap()[0].clone();
        assert_eq!(sent.attributes[ATTR_RUN_ID], NO_RUN_ID);
        assert!(sent.body.contains("Input: s3://b/incoming/x.jsonl"));
        assert!(sent.body.contains("validator crashed"));
        assert_eq!(f.ledger.updates.load(Ordering::SeqCst), 0);

        let out = f
            .notifier
            .handle(input(Some(&RunId("run-unknown".into())), "failed"))
            .await
            .unwrap();
        assert_eq!(out.run_id.as_deref(), Some("run-unknown"));
        assert_eq!(
            f.publisher.sent.lock().unwrap()[1].attributes[ATTR_RUN_ID],
            "run-unknown"
        );
    }

    #[tokio::test]
    async fn an_unknown_milestone_is_a_bad_event() {
        let f = fixture(false);
        let err = f
            .notifier
            .handle(input(None, "exploded"))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, crate::domain::errors::ErrorType::BadEvent);
        assert!(err.message.contains("'milestone'"));
    }

    #[test]
    fn config_reads_the_environment_contract() {
        let env: HashMap<&str, &str> = [
            ("AWS_REGION", "eu-west-1"),
            ("SLACK_SECRET_ARN", "arn:s"),
            ("SLACK_TIMEOUT_MS", "1500"),
            ("SLACK_MAX_ATTEMPTS", "5"),
        ]
        .into();
        let c = NotifyConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.region, "eu-west-1");
        let s = c.slack.unwrap();
        assert_eq!(
            (s.timeout, s.max_attempts),
            (Duration::from_millis(1500), 5)
        );
        let c = NotifyConfig::from_lookup(|_| None).unwrap();
        assert!(c.slack.is_none());
        let err = NotifyConfig::from_lookup(|k| {
            (k == "SLACK_SECRET_ARN" || k == "SLACK_TIMEOUT_MS").then(|| "soon".to_string())
        })
        .unwrap_err();
        assert!(err.message.contains("SLACK_TIMEOUT_MS"));
    }

    #[test]
    fn webhook_secret_forms_and_errors_without_the_value() {
        assert_eq!(webhook_url_from_secret(&format!(" {URL}\n")).unwrap(), URL);
        assert_eq!(
            webhook_url_from_secret(&format!(r#"{{"url":"{URL}"}}"#)).unwrap(),
            URL
        );
        let e = webhook_url_from_secret("xoxb-SECRETTOKEN").unwrap_err();
        assert!(!e.to_string().contains("SECRETTOKEN"));
        let e = webhook_url_from_secret(r#"{"token":"SECRETTOKEN"}"#).unwrap_err();
        assert!(!e.to_string().contains("SECRETTOKEN"));
    }

    #[test]
    fn sample_events_parse() {
        for (name, text) in [
            (
                "notify-launched.json",
                include_str!("../../../../events/notify-launched.json"),
            ),
            (
                "notify-rejected.json",
                include_str!("../../../../events/notify-rejected.json"),
            ),
            (
                "notify-failed-with-error.json",
                include_str!("../../../../events/notify-failed-with-error.json"),
            ),
            (
                "notify-failed-no-run.json",
                include_str!("../../../../events/notify-failed-no-run.json"),
            ),
            (
                "notify-completed.json",
                include_str!("../../../../events/notify-completed.json"),
            ),
            (
                "notify-ready.json",
                include_str!("../../../../events/notify-ready.json"),
            ),
            (
                "notify-provisioning-failed.json",
                include_str!("../../../../events/notify-provisioning-failed.json"),
            ),
        ] {
            let i: NotifyInput =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(Milestone::parse(&i.milestone).is_some(), "{name}");
        }
        let o: NotifyOutput =
            serde_json::from_str(include_str!("../../../../events/notify-output.json")).unwrap();
        assert_eq!(o.sns, ChannelOutcome::Delivered);
    }
}
