//! job-launcher Lambda: `{"runId"}` → the Bedrock distillation job for that run, created exactly once
//! (`{"runId","jobArn","jobName","customModelName"}`). All logic lives in
//! `distillery_core::app::launch_job`; this binary builds the SDK clients once per container.

use std::sync::Arc;

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::lambda::{
    init_tracing, no_span, run_ledger_from_env, serve_step, StepFunction,
};
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::launch_job::{JobLauncherService, LaunchJobInput, LauncherConfig};
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;

/// The use case opens its own run span.
const LAUNCH_JOB: StepFunction<LaunchJobInput> = StepFunction {
    name: "job-launcher",
    expected_shape: r#"{"runId": string}"#,
    span: no_span,
};

/// The service with its clients, built once per container. A configuration problem is returned by
/// every invocation as a typed `ConfigInvalid` error (see `serve_step`), not an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<JobLauncherService, StepError> {
    let config = LauncherConfig::from_env()?;
    Ok(JobLauncherService {
        ledger: Arc::new(run_ledger_from_env(sdk)?),
        bedrock: Arc::new(BedrockCustomizationService::from_conf(sdk)),
        store: Arc::new(S3DatasetStore::new(S3DatasetStore::client_from_conf(sdk))),
        clock: Arc::new(SystemClock),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = build(&sdk);
    serve_step(LAUNCH_JOB, &service, |service, input| service.handle(input)).await
}
