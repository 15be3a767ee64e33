//! dataset-validator Lambda: an S3 "Object Created" EventBridge event, a `distillery submit` payload
//! or a schedule payload → a run in the ledger with a verdict (`{"runId","duplicate","ignored",
//! "valid",...}`, see docs/contracts.md). All logic lives in `distillery_core::app::validate_dataset`;
//! this binary builds the SDK clients once per container and hands them to it.

use std::sync::Arc;

use distillery_aws::lambda::{
    init_tracing, no_span, run_ledger_from_env, serve_step, StepFunction,
};
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::validate_dataset::{DatasetValidatorService, ValidatorConfig};
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;

/// The validator takes the execution input as it is (it tells the three event kinds apart itself),
/// so parsing into a JSON value never fails; the use case opens its own run span.
const VALIDATE_DATASET: StepFunction<serde_json::Value> = StepFunction {
    name: "dataset-validator",
    expected_shape: "a JSON event",
    span: no_span,
};

/// The service with its clients, built once per container. A configuration problem is returned by
/// every invocation as a typed `ConfigInvalid` error (see `serve_step`), not an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<DatasetValidatorService, StepError> {
    let config = ValidatorConfig::from_env()?;
    let s3 = Arc::new(S3DatasetStore::new(S3DatasetStore::client_from_conf(sdk)));
    Ok(DatasetValidatorService {
        ledger: Arc::new(run_ledger_from_env(sdk)?),
        store: s3.clone(),
        lister: s3,
        clock: Arc::new(SystemClock),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = build(&sdk);
    serve_step(VALIDATE_DATASET, &service, |service, event| {
        service.handle(event)
    })
    .await
}
