//! `ChatWebhook` on a Slack incoming webhook (HTTPS POST of a JSON payload, reqwest + rustls).
//!
//! The webhook URL is a credential: anyone holding it can post to the channel. It is never logged,
//! never shown by `Debug`, and scrubbed from every error this adapter returns.

use std::time::Duration;

use async_trait::async_trait;

use distillery_core::domain::messages::RenderedMessage;
use distillery_core::ports::{ChatWebhook, PortError};

/// Slack's error bodies are short codes ("invalid_payload", "no_service"); keep at most this much.
const MAX_BODY_IN_ERROR: usize = 200;

#[derive(Clone)]
pub struct SlackWebhook {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

impl std::fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackWebhook")
            .field("url", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SlackWebhook {
    /// `timeout` bounds each POST (connect + response): the one place a Slack timeout is enforced.
    /// `url` comes from `distillery_core::app::notify::webhook_url_from_secret`, which is where the
    /// secret's form is checked (a `https://hooks.slack.com/` URL, or any http(s) URL on a test
    /// stack that sets `SLACK_ALLOW_ANY_URL_FOR_TESTS`).
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, PortError> {
        let url = url.into().trim().to_string();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| {
                PortError::Other(format!("cannot build the HTTP client: {}", e.without_url()))
            })?;
        Ok(Self {
            client,
            url,
            timeout,
        })
    }

    /// Removes the URL (and its secret path alone, in case a server echoes only the path).
    fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.url, "<redacted webhook URL>");
        if let Some(path_start) = self
            .url
            .find("://")
            .and_then(|i| self.url[i + 3..].find('/').map(|j| i + 3 + j))
        {
            let path = &self.url[path_start..];
            if path.len() > 1 {
                out = out.replace(path, "/<redacted>");
            }
        }
        out
    }
}

#[async_trait]
impl ChatWebhook for SlackWebhook {
    async fn post(&self, message: &RenderedMessage) -> Result<(), PortError> {
        let resp = self
            .client
            .post(&self.url)
            .json(&crate::slack_blocks::payload(message))
            .send()
            .await
            .map_err(|e| {
                let timed_out = e.is_timeout();
                let e = self.redact(&e.without_url().to_string());
                if timed_out {
                    PortError::Transient(format!(
                        "Slack webhook timed out after {} ms",
                        self.timeout.as_millis()
                    ))
                } else {
                    PortError::Transient(format!("Slack webhook unreachable: {e}"))
                }
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let body: String = self
            .redact(body.trim())
            .chars()
            .take(MAX_BODY_IN_ERROR)
            .collect();
        let text = format!("Slack webhook answered HTTP {}: {body}", status.as_u16());
        // 429 and 5xx may pass; other 4xx (bad payload, revoked webhook) will not, so they are not
        // classified as retryable.
        Err(match status.as_u16() {
            429 => PortError::Throttled(text),
            403 => PortError::AccessDenied(text),
            404 | 410 => PortError::NotFound(text),
            500..=599 => PortError::Transient(text),
            _ => PortError::Validation(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> RenderedMessage {
        use distillery_core::domain::catalog::Prices;
        use distillery_core::domain::messages::{render_without_run, Milestone};
        let prices = Prices::builtin();
        let ctx = distillery_core::testing::messages::context(&prices);
        render_without_run(Milestone::Failed, None, None, &ctx)
    }

    #[test]
    fn debug_and_errors_never_show_the_url() {
        let w = SlackWebhook::new(
            "https://hooks.slack.com/services/T000/B000/SECRETTOKEN",
            Duration::from_millis(100),
        )
        .unwrap();
        assert!(!format!("{w:?}").contains("SECRETTOKEN"));
        let e = w.redact("failed for https://hooks.slack.com/services/T000/B000/SECRETTOKEN and /services/T000/B000/SECRETTOKEN");
        assert!(!e.contains("SECRETTOKEN"), "{e}");
        // (A secret that is not a URL is refused, without its value, by
        // `webhook_url_from_secret` in the core: see its tests.)
    }

    /// Moved from the notifier's use-case tests: the POST timeout is enforced here, so a webhook
    /// that never answers comes back as a transient, retryable error within the timeout.
    #[tokio::test]
    async fn a_hanging_webhook_times_out_as_a_transient_error() {
        use distillery_test_support::slack_sink::{SinkMode, SlackSink};
        let sink = SlackSink::bind(0).await.expect("bind the sink");
        sink.set_mode(SinkMode::Hang);
        let w = SlackWebhook::new(
            format!("{}/services/T/B/SECRETTOKEN", sink.base_url()),
            Duration::from_millis(50),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = w.post(&message()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(err, PortError::Transient(_)), "{err:?}");
        assert!(err.to_string().contains("timed out after 50 ms"), "{err}");
        assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_webhook_is_transient_and_redacted() {
        // Port 9 on loopback: nothing listens there, the connection is refused at once.
        let w = SlackWebhook::new(
            "http://127.0.0.1:9/services/T/B/SECRETTOKEN",
            Duration::from_millis(500),
        )
        .unwrap();
        let err = w.post(&message()).await.unwrap_err();
        assert!(matches!(err, PortError::Transient(_)), "{err:?}");
        assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
    }
}
