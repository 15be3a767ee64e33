//! AWS adapter for [`PipelineStarter`] on Step Functions: `StartExecution` of the Distillery state
//! machine. Used by `distillery submit`; the Lambdas never start executions.

use async_trait::async_trait;
use aws_sdk_sfn::Client;

use crate::sdk_error::port_error;
use distillery_core::ports::{PipelineStarter, PortError, TaskAnswer, TaskCallbacks};

#[derive(Debug, Clone)]
pub struct StepFunctionsStarter {
    client: Client,
    state_machine_arn: String,
}

impl StepFunctionsStarter {
    pub fn new(client: Client, state_machine_arn: impl Into<String>) -> Self {
        Self {
            client,
            state_machine_arn: state_machine_arn.into(),
        }
    }

    /// Builds the Step Functions client from shared SDK configuration (so callers need not depend on
    /// `aws-sdk-sfn`).
    pub fn from_conf(config: &aws_config::SdkConfig, state_machine_arn: impl Into<String>) -> Self {
        Self::new(Client::new(config), state_machine_arn)
    }

    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }
}

/// The text inside a [`PortError`], to re-classify it without repeating its prefix.
fn text_of(e: PortError) -> String {
    match e {
        PortError::Throttled(t)
        | PortError::QuotaExceeded(t)
        | PortError::Validation(t)
        | PortError::NotFound(t)
        | PortError::ObjectChanged(t)
        | PortError::Conflict(t)
        | PortError::AccessDenied(t)
        | PortError::Transient(t)
        | PortError::Other(t) => t,
    }
}

#[async_trait]
impl PipelineStarter for StepFunctionsStarter {
    async fn start(&self, name: &str, input: &serde_json::Value) -> Result<String, PortError> {
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.execution_arn().to_string()),
            Err(e) => {
                let what = format!("StartExecution {name} on {}", self.state_machine_arn);
                // Step Functions' own error codes are not in the shared table: classify them here.
                let kind: Option<fn(String) -> PortError> = e.as_service_error().and_then(|se| {
                    if se.is_state_machine_does_not_exist() || se.is_state_machine_deleting() {
                        Some(PortError::NotFound as fn(String) -> PortError)
                    } else if se.is_execution_already_exists() {
                        Some(PortError::Conflict)
                    } else if se.is_execution_limit_exceeded() {
                        Some(PortError::QuotaExceeded)
                    } else if se.is_invalid_arn()
                        || se.is_invalid_name()
                        || se.is_invalid_execution_input()
                    {
                        Some(PortError::Validation)
                    } else {
                        None
                    }
                });
                let err = port_error(&what, e);
                Err(match kind {
                    Some(k) => k(text_of(err)),
                    None => err,
                })
            }
        }
    }
}

/// AWS adapter for [`TaskCallbacks`]: `SendTaskSuccess` to the execution waiting on a task token
/// (the status poller's event mode). The client reaches a local endpoint through
/// `AWS_ENDPOINT_URL_SFN` on the local stack.
#[derive(Debug, Clone)]
pub struct StepFunctionsCallbacks {
    client: Client,
}

impl StepFunctionsCallbacks {
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(config),
        }
    }
}

#[async_trait]
impl TaskCallbacks for StepFunctionsCallbacks {
    async fn send_success(
        &self,
        task_token: &str,
        output: &serde_json::Value,
    ) -> Result<TaskAnswer, PortError> {
        let result = self
            .client
            .send_task_success()
            .task_token(task_token)
            .output(output.to_string())
            .send()
            .await;
        match result {
            Ok(_) => Ok(TaskAnswer::Delivered),
            Err(e) => {
                // A wait that already ended (timed out and re-entered with a new token, answered,
                // or its execution stopped) is not a failure: nothing waits on this token now.
                if let Some(se) = e.as_service_error() {
                    if se.is_task_timed_out() || se.is_task_does_not_exist() {
                        return Ok(TaskAnswer::Closed(se.to_string()));
                    }
                    if se.is_invalid_token() || se.is_invalid_output() {
                        let err = port_error("SendTaskSuccess", e);
                        return Err(PortError::Validation(text_of(err)));
                    }
                }
                Err(port_error("SendTaskSuccess", e))
            }
        }
    }
}
