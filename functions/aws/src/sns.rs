//! `MessagePublisher` on Amazon SNS. Each message attribute is sent as an SNS `String` attribute, so
//! subscribers can filter with a subscription filter policy (e.g. `{"event_type": ["failed"]}`).

use async_trait::async_trait;
use aws_sdk_sns::config::retry::RetryConfig;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::sdk_error::port_error;
use distillery_core::ports::{MessagePublisher, OutboundMessage, PortError};

#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

/// Attempts per Publish, the first included: throttling, 5xx and connection faults are retried by
/// the SDK with its standard jittered backoff. The notifier sends each message once and relies on
/// this (one retry policy, not a loop on top of the SDK's).
pub const SNS_MAX_ATTEMPTS: u32 = 3;

/// The SNS client configuration with Distillery's retry policy ([`SNS_MAX_ATTEMPTS`]).
pub fn with_retry_policy(builder: aws_sdk_sns::config::Builder) -> aws_sdk_sns::config::Builder {
    builder.retry_config(RetryConfig::standard().with_max_attempts(SNS_MAX_ATTEMPTS))
}

impl SnsPublisher {
    /// A publisher whose client has the retry policy, from the shared SDK configuration.
    pub fn from_conf(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        let conf = with_retry_policy(aws_sdk_sns::config::Builder::from(sdk)).build();
        Self::new(aws_sdk_sns::Client::from_conf(conf), topic_arn)
    }

    /// A publisher on `client` as it is configured (tests; production uses [`Self::from_conf`]).
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }
}

#[async_trait]
impl MessagePublisher for SnsPublisher {
    async fn publish(&self, msg: &OutboundMessage) -> Result<String, PortError> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&msg.subject)
            .message(&msg.body);
        for (name, value) in &msg.attributes {
            // SNS rejects empty attribute values; an empty one carries no filterable fact anyway.
            if value.is_empty() {
                continue;
            }
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| PortError::Validation(format!("SNS attribute {name}: {e}")))?;
            req = req.message_attributes(name, attr);
        }
        let out = req
            .send()
            .await
            .map_err(|e| port_error(&format!("SNS Publish to {}", self.topic_arn), e))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation::publish::PublishOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    fn message() -> OutboundMessage {
        OutboundMessage {
            subject: "s".into(),
            body: "b".into(),
            attributes: [("event_type".to_string(), "launched".to_string())]
                .into_iter()
                .collect(),
        }
    }

    /// Moved from the notifier's use-case tests when the retries moved into the SDK client: a
    /// throttled answer, then a 503, then success is one delivered `publish`, after 3 attempts.
    #[tokio::test]
    async fn throttling_and_5xx_are_retried_by_the_client_then_delivered() {
        let rule = mock!(aws_sdk_sns::Client::publish)
            .sequence()
            // SNS's query-protocol error body, as it throttles a Publish.
            .http_status(
                400,
                Some(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
                     <Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"
                        .into(),
                ),
            )
            .http_status(503, None)
            .output(|| PublishOutput::builder().message_id("m-1").build())
            .build();
        let client = mock_client!(
            aws_sdk_sns,
            RuleMode::Sequential,
            [&rule],
            with_retry_policy
        );
        let publisher = SnsPublisher::new(client, "arn:aws:sns:us-east-1:123456789012:t");
        assert_eq!(publisher.publish(&message()).await.unwrap(), "m-1");
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn a_fourth_failure_is_not_attempted_and_the_error_is_transient() {
        let rule = mock!(aws_sdk_sns::Client::publish)
            .sequence()
            .http_status(503, None)
            .times(3)
            .output(|| PublishOutput::builder().message_id("never").build())
            .build();
        let client = mock_client!(
            aws_sdk_sns,
            RuleMode::Sequential,
            [&rule],
            with_retry_policy
        );
        let publisher = SnsPublisher::new(client, "arn:aws:sns:us-east-1:123456789012:t");
        let err = publisher.publish(&message()).await.unwrap_err();
        assert!(matches!(err, PortError::Transient(_)), "{err}");
        assert_eq!(rule.num_calls(), SNS_MAX_ATTEMPTS as usize);
    }
}
