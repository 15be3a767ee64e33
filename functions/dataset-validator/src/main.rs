//! dataset-validator Lambda: an S3 "Object Created" EventBridge event, a `distillery submit` payload
//! or a schedule payload → a run in the ledger with a verdict (`{"runId","duplicate","ignored",
//! "valid",...}`, see docs/contracts.md). All logic lives in `distillery_core::app::validate_dataset`;
//! this binary builds the SDK clients once per container and hands them to it.

use std::sync::Arc;

use distillery_core::adapters::dynamodb::DynamoRunLedger;
use distillery_core::adapters::lambda::init_tracing;
use distillery_core::adapters::s3::S3DatasetStore;
use distillery_core::app::validate_dataset::{
    DatasetValidatorService, ValidateDatasetOutput, ValidatorConfig,
};
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

fn build(sdk: &aws_config::SdkConfig) -> Result<DatasetValidatorService, StepError> {
    let config = ValidatorConfig::from_env()?;
    let table = std::env::var("TABLE_NAME")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| StepError::config("environment variable TABLE_NAME is required"))?;
    Ok(DatasetValidatorService {
        ledger: Arc::new(DynamoRunLedger::new(
            aws_sdk_dynamodb::Client::new(sdk),
            table,
        )),
        store: Arc::new(S3DatasetStore::new(S3DatasetStore::client_from_conf(sdk))),
        clock: Arc::new(SystemClock),
        config,
    })
}

async fn handle(
    service: Result<&DatasetValidatorService, &StepError>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<ValidateDatasetOutput, Diagnostic> {
    let service = service.map_err(|e| e.clone())?;
    let out = service.handle(event.payload).await.inspect_err(|e| {
        tracing::error!(error_type = %e.error_type, error = %e.message, "validation step failed");
    })?;
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Configuration problems surface as a typed ConfigInvalid error on each invocation.
    let service = build(&sdk);
    let service = &service;
    lambda_runtime::run(service_fn(move |event| async move {
        handle(service.as_ref(), event).await
    }))
    .await
}
