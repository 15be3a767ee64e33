//! job-launcher Lambda: `{"runId"}` → the Bedrock distillation job for that run, created exactly once
//! (`{"runId","jobArn","jobName","customModelName"}`). All logic lives in
//! `distillery_core::app::launch_job`; this binary builds the SDK clients once per container.

use std::sync::Arc;

use distillery_core::adapters::bedrock::BedrockCustomizationService;
use distillery_core::adapters::dynamodb::DynamoRunLedger;
use distillery_core::adapters::lambda::init_tracing;
use distillery_core::app::launch_job::{
    JobLauncherService, LaunchJobInput, LaunchJobOutput, LauncherConfig,
};
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

fn build(sdk: &aws_config::SdkConfig) -> Result<JobLauncherService, StepError> {
    let config = LauncherConfig::from_env()?;
    let table = std::env::var("TABLE_NAME")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| StepError::config("environment variable TABLE_NAME is required"))?;
    Ok(JobLauncherService {
        ledger: Arc::new(DynamoRunLedger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            table,
        )),
        bedrock: Arc::new(BedrockCustomizationService::from_conf(sdk)),
        clock: Arc::new(SystemClock),
        config,
    })
}

async fn handle(
    service: Result<&JobLauncherService, &StepError>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<LaunchJobOutput, Diagnostic> {
    let service = service.map_err(|e| e.clone())?;
    let input: LaunchJobInput = serde_json::from_value(event.payload).map_err(|e| {
        StepError::bad_event(format!("job-launcher expects {{\"runId\": string}}: {e}"))
    })?;
    let out = service.handle(input).await.inspect_err(|e| {
        tracing::error!(error_type = %e.error_type, error = %e.message, "launch step failed");
    })?;
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = build(&sdk);
    let service = &service;
    lambda_runtime::run(service_fn(move |event| async move {
        handle(service.as_ref(), event).await
    }))
    .await
}
