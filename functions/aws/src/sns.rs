//! `MessagePublisher` on Amazon SNS. Each message attribute is sent as an SNS `String` attribute, so
//! subscribers can filter with a subscription filter policy (e.g. `{"event_type": ["failed"]}`).

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use crate::sdk_error::port_error;
use distillery_core::ports::{MessagePublisher, OutboundMessage, PortError};

#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
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
