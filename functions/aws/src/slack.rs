//! `ChatWebhook` on a Slack incoming webhook (HTTPS POST of a JSON payload, reqwest + rustls).
//!
//! The webhook URL is a credential: anyone holding it can post to the channel. It is never logged,
//! never shown by `Debug`, and scrubbed from every error this adapter returns.

use std::time::Duration;

use async_trait::async_trait;

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
    /// `timeout` bounds each POST (connect + response).
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<Self, PortError> {
        let url = url.into().trim().to_string();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(PortError::Validation(
                "the Slack webhook secret does not hold an http(s) URL".into(),
            ));
        }
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
    async fn post(&self, payload: &serde_json::Value) -> Result<(), PortError> {
        let resp = self
            .client
            .post(&self.url)
            .json(payload)
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
        let bad =
            SlackWebhook::new("not a url SECRETTOKEN", Duration::from_millis(100)).unwrap_err();
        assert!(!bad.to_string().contains("SECRETTOKEN"));
    }

    #[tokio::test]
    async fn unreachable_webhook_is_transient_and_redacted() {
        // Port 9 on loopback: nothing listens there, the connection is refused at once.
        let w = SlackWebhook::new(
            "http://127.0.0.1:9/services/T/B/SECRETTOKEN",
            Duration::from_millis(500),
        )
        .unwrap();
        let err = w.post(&serde_json::json!({"text": "x"})).await.unwrap_err();
        assert!(matches!(err, PortError::Transient(_)), "{err:?}");
        assert!(!err.to_string().contains("SECRETTOKEN"), "{err}");
    }
}
