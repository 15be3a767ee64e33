//! AWS adapter for [`ModelRuntime`]: the Bedrock runtime's Converse through
//! `aws-sdk-bedrockruntime`. Reaches the local simulator when `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`
//! is set (the SDK reads it itself).

use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, InferenceConfiguration, Message, SystemContentBlock,
};
use aws_sdk_bedrockruntime::Client;

use crate::sdk_error::port_error;
use distillery_core::ports::{ChatRole, ConverseAnswer, ConverseRequest, ModelRuntime, PortError};

/// Attempts per Converse call, the first included. The evaluator keeps a few calls in flight and a
/// new deployment or a busy teacher throttles (ThrottlingException, and ModelNotReadyException
/// while a deployment warms up, both retryable for the SDK). The standard policy backs off
/// exponentially with full jitter from 1 s, capped at 20 s: six attempts wait at most
/// 1 + 2 + 4 + 8 + 16 = 31 s in all, which rides out a throttling burst yet costs a batch (sized
/// in limits.json for minutes, not seconds) little. A call still throttled after that fails the
/// batch as `Throttled`, which the state machine retries.
pub const MAX_ATTEMPTS: u32 = 6;

/// One attempt may take this long. A teacher writing ~1,000 tokens at ~30 tokens/s needs about
/// 35 s; an attempt hung longer than this is cut and retried rather than eating the batch's
/// budget.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(90);

/// The retry policy the adapter uses (public so tests can shorten the backoff, not change it).
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

/// The Bedrock runtime through the AWS SDK.
#[derive(Clone)]
pub struct BedrockRuntime {
    client: Client,
}

impl BedrockRuntime {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client on `config` with [`retry_config`] and [`ATTEMPT_TIMEOUT`].
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Self::with_retry(config, retry_config())
    }

    /// A client on `config` with another retry policy (tests: a short backoff).
    pub fn with_retry(config: &aws_config::SdkConfig, retry: RetryConfig) -> Self {
        let conf = aws_sdk_bedrockruntime::config::Builder::from(config)
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .build();
        Self::new(Client::from_conf(conf))
    }
}

fn message(role: ChatRole, text: &str) -> Result<Message, PortError> {
    let role = match role {
        ChatRole::User => ConversationRole::User,
        ChatRole::Assistant => ConversationRole::Assistant,
    };
    Message::builder()
        .role(role)
        .content(ContentBlock::Text(text.into()))
        .build()
        .map_err(|e| PortError::Validation(format!("building a Converse message: {e}")))
}

fn count(n: i32) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[async_trait]
impl ModelRuntime for BedrockRuntime {
    async fn converse(&self, req: &ConverseRequest) -> Result<ConverseAnswer, PortError> {
        let what = format!("Converse with {}", req.model_id);
        let mut call = self.client.converse().model_id(&req.model_id);
        if let Some(system) = &req.system {
            call = call.system(SystemContentBlock::Text(system.clone()));
        }
        for turn in &req.messages {
            call = call.messages(message(turn.role, &turn.text)?);
        }
        if req.max_tokens.is_some() || req.temperature.is_some() {
            let mut inference = InferenceConfiguration::builder();
            if let Some(max) = req.max_tokens {
                inference = inference.max_tokens(i32::try_from(max).unwrap_or(i32::MAX));
            }
            if let Some(t) = req.temperature {
                inference = inference.temperature(t);
            }
            call = call.inference_config(inference.build());
        }
        let out = call.send().await.map_err(|e| port_error(&what, e))?;
        let text = out
            .output()
            .and_then(|o| o.as_message().ok())
            .map(|m| {
                m.content()
                    .iter()
                    .filter_map(|b| b.as_text().ok())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("")
            })
            .ok_or_else(|| PortError::Other(format!("{what}: the answer holds no message")))?;
        let (input_tokens, output_tokens) = out.usage().map_or((0, 0), |u| {
            (count(u.input_tokens()), count(u.output_tokens()))
        });
        let latency_ms = out
            .metrics()
            .map_or(0, |m| u64::try_from(m.latency_ms()).unwrap_or(0));
        Ok(ConverseAnswer {
            text,
            input_tokens,
            output_tokens,
            latency_ms,
            stop_reason: out.stop_reason().as_str().to_string(),
        })
    }
}
