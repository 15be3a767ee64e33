//! Delivery: one rendered message sent on each channel, and how it went. What to say and what to
//! record on the run is decided by [`super::Notifier`]; this module only sends.
//!
//! - SNS: one call. Retries of throttling and transient faults are the SDK client's own (the SNS
//!   adapter's `RetryConfig`), not a second loop here.
//! - Slack has no SDK: its attempts and their backoff are here; each POST's timeout is the webhook
//!   adapter's (`distillery_aws::slack`), so a hang comes back as a transient error.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tracing::{info, warn};

use super::{ChannelOutcome, SlackConfig, ATTR_EVENT_TYPE, ATTR_RUN_ID, NO_RUN_ID};
use crate::domain::messages::RenderedMessage;
use crate::ports::{
    ChatWebhook, Clock, MessagePublisher, OutboundMessage, PortError, SecretSource,
};

/// Builds the webhook client from the URL read from the secret (an adapter; the app never sees HTTP).
pub type WebhookFactory =
    Arc<dyn Fn(&str, Duration) -> Result<Arc<dyn ChatWebhook>, PortError> + Send + Sync>;

/// The webhook, built from the secret and kept for [`SlackConfig::url_cache_ttl`].
struct SlackTarget {
    webhook: Arc<dyn ChatWebhook>,
    /// Kept only to scrub it from any error text before that text is logged or recorded.
    url: String,
}

/// The two channels and what they need.
pub(super) struct Channels {
    publisher: Arc<dyn MessagePublisher>,
    secrets: Arc<dyn SecretSource>,
    webhook_factory: WebhookFactory,
    /// Read from the secret on first use, with when it was read; read again once it is older
    /// than the config's `url_cache_ttl` (a rotated or revoked webhook takes effect within that
    /// bound). `Some((None, _))`: the secret is empty, so Slack is not configured (the stack
    /// creates the secret empty by default; filling it in turns Slack on within the same bound).
    /// An async mutex rather than a once-cell: a failed read is not kept.
    slack: futures::lock::Mutex<Option<CachedTarget>>,
    clock: Arc<dyn Clock>,
    /// First pause between Slack attempts; doubles each retry.
    retry_base_delay: Duration,
}

impl Channels {
    pub(super) fn new(
        publisher: Arc<dyn MessagePublisher>,
        secrets: Arc<dyn SecretSource>,
        webhook_factory: WebhookFactory,
        clock: Arc<dyn Clock>,
        retry_base_delay: Duration,
    ) -> Self {
        Self {
            publisher,
            secrets,
            webhook_factory,
            slack: futures::lock::Mutex::new(None),
            clock,
            retry_base_delay,
        }
    }

    /// Publishes once (the SDK client retries throttling and transient faults). Returns the
    /// outcome and a detail for the delivery record.
    pub(super) async fn publish_sns(
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
        match self.publisher.publish(&msg).await {
            Ok(id) => {
                info!(message_id = %id, "SNS message published");
                (ChannelOutcome::Delivered, format!("SNS message id {id}"))
            }
            Err(e) => {
                warn!(error = %e, "SNS publish failed");
                (ChannelOutcome::Failed, e.to_string())
            }
        }
    }

    pub(super) async fn post_slack(
        &self,
        cfg: &SlackConfig,
        message: &RenderedMessage,
    ) -> (ChannelOutcome, String) {
        let target = match self
            .slack_target(cfg.url_cache_ttl, || async {
                let secret = self.secrets.secret_string(&cfg.secret_id).await?;
                if secret.trim().is_empty() {
                    // Logged once per container: the result is kept, like the URL would be.
                    info!(
                        secret_id = %cfg.secret_id,
                        "the Slack webhook secret is empty: Slack is not configured, messages go to SNS only"
                    );
                    return Ok(None);
                }
                let url = webhook_url_from_secret(&secret, cfg.allow_any_url_for_tests)?;
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
            // The POST's timeout is the webhook adapter's: a hang comes back as a transient error.
            match target.webhook.post(message).await {
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

    /// The webhook, read from the secret on first use and kept for `ttl`; a failed read is not
    /// kept, so the next notification tries again.
    async fn slack_target<F, Fut>(
        &self,
        ttl: Duration,
        init: F,
    ) -> Result<Option<Arc<SlackTarget>>, PortError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<SlackTarget>, PortError>>,
    {
        let mut cached = self.slack.lock().await;
        let now = self.clock.now();
        if let Some((target, read_at)) = cached.as_ref() {
            // A clock that went backwards counts as fresh; anything else older than `ttl` is read
            // again.
            let age = (now - *read_at).to_std().unwrap_or_default();
            if age < ttl {
                return Ok(target.clone());
            }
        }
        let target = init().await?.map(Arc::new);
        *cached = Some((target.clone(), now));
        Ok(target)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry_base_delay * 2u32.saturating_pow(attempt.saturating_sub(1).min(8))
    }
}

/// What the secret said (`None`: empty, Slack off) and when it was read.
type CachedTarget = (Option<Arc<SlackTarget>>, chrono::DateTime<chrono::Utc>);

/// The only webhook URLs the secret may hold outside tests: Slack's incoming webhooks. Anything
/// else would send every milestone (run ids, buckets, keys, costs) to whoever wrote the secret.
pub const SLACK_WEBHOOK_PREFIX: &str = "https://hooks.slack.com/";

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
/// `webhook_url` key is accepted too (a common way to store it). Only a
/// [`SLACK_WEBHOOK_PREFIX`] URL is accepted, unless `allow_any_url_for_tests` (the local stack's
/// sink), which accepts any http(s) URL. Errors never include the value.
pub fn webhook_url_from_secret(
    secret: &str,
    allow_any_url_for_tests: bool,
) -> Result<String, PortError> {
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
    let url = url.trim().to_string();
    let starts_with = |prefix: &str| {
        url.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    if !(starts_with("https://") || starts_with("http://")) {
        return Err(PortError::Validation(
            "the Slack webhook secret does not hold an http(s) URL".into(),
        ));
    }
    // Case-insensitive on the scheme and host (both are), exact on the slash that ends the host,
    // so `https://hooks.slack.com.example.net/` is not Slack.
    if starts_with(SLACK_WEBHOOK_PREFIX) || allow_any_url_for_tests {
        Ok(url)
    } else {
        Err(PortError::Validation(format!(
            "the Slack webhook secret holds a URL (redacted) that is not a Slack incoming webhook: \
             only {SLACK_WEBHOOK_PREFIX}... URLs are accepted; put the webhook URL Slack gave you \
             in the secret"
        )))
    }
}
