//! `SecretSource` on AWS Secrets Manager. Secret values are never logged nor put in errors.

use async_trait::async_trait;

use crate::sdk_error::port_error;
use distillery_core::ports::{PortError, SecretSource};

#[derive(Debug, Clone)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn secret_string(&self, secret_id: &str) -> Result<String, PortError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| port_error(&format!("Secrets Manager GetSecretValue {secret_id}"), e))?;
        out.secret_string().map(str::to_string).ok_or_else(|| {
            PortError::Validation(format!(
                "secret {secret_id} has no string value (binary secrets are not supported)"
            ))
        })
    }
}
