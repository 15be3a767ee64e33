//! job-launcher Lambda: the Bedrock distillation job for a run, created exactly once, and the
//! launch queue around it (`distillery_core::app::launch_job`). Inputs:
//! - `{"runId"}` (`LaunchJob`) → `{"runId","outcome","jobArn","jobName","customModelName",
//!   "position","queueTimeoutSeconds"}`: launched, or queued for a job slot;
//! - `{"runId","action":"awaitSlot","taskToken"}` (`WaitForSlot`, `.waitForTaskToken`): records
//!   the wait's token and wakes whoever a free slot allows;
//! - `{"runId","action":"releaseSlot"}` (`FreeJobSlot`, after the job ended): gives the slot back
//!   and wakes the next queued runs;
//! - `{"runId","action":"waitTimedOut"}` (`SlotWaitTimedOut`): expires a run past `MAX_QUEUE_HOURS`,
//!   or tries the launch again after a quota hold;
//! - `{"sweep": {}}` (the scheduled safety net): frees stale slots, expires abandoned waits, wakes.
//!
//! This binary builds the SDK clients once per container.

use std::sync::Arc;

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::lambda::{init_tracing, run_ledger_from_env, serve_step, StepFunction};
use distillery_aws::s3::S3DatasetStore;
use distillery_aws::sfn::StepFunctionsCallbacks;
use distillery_core::app::launch_job::{
    JobLauncherService, LaunchJobInput, LauncherConfig, SweepInput,
};
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;
use serde::Deserialize;

/// The inputs this binary serves, told apart by the `sweep` key.
#[derive(Debug)]
enum Request {
    Sweep,
    Run(LaunchJobInput),
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        if let Some(s) = v.get("sweep") {
            return serde_json::from_value::<SweepInput>(s.clone())
                .map(|_| Request::Sweep)
                .map_err(|e| D::Error::custom(format!("field 'sweep': {e}")));
        }
        serde_json::from_value(v)
            .map(Request::Run)
            .map_err(D::Error::custom)
    }
}

/// The use case opens its own run span.
const JOB_LAUNCHER: StepFunction<Request> = StepFunction {
    name: "job-launcher",
    expected_shape: r#"{"runId": string, "action"?: "launch" | "awaitSlot" | "releaseSlot" | "waitTimedOut", "taskToken"?: string} or {"sweep": {}}"#,
    span: |input| match input {
        Request::Sweep => tracing::info_span!("queue_sweep"),
        Request::Run(_) => tracing::Span::none(),
    },
};

/// The service with its clients, built once per container. A configuration problem is returned by
/// every invocation as a typed `ConfigInvalid` error (see `serve_step`), not an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<JobLauncherService, StepError> {
    let config = LauncherConfig::from_env()?;
    let ledger = Arc::new(run_ledger_from_env(sdk)?);
    Ok(JobLauncherService {
        ledger: ledger.clone(),
        slots: ledger,
        callbacks: Arc::new(StepFunctionsCallbacks::from_conf(sdk)),
        bedrock: Arc::new(BedrockCustomizationService::from_conf(sdk)),
        store: Arc::new(S3DatasetStore::new(S3DatasetStore::client_from_conf(sdk))),
        clock: Arc::new(SystemClock),
        config,
    })
}

async fn handle(
    service: &JobLauncherService,
    input: Request,
) -> Result<serde_json::Value, StepError> {
    match input {
        Request::Sweep => Ok(serde_json::to_value(service.sweep().await?).unwrap_or_default()),
        Request::Run(input) => service.handle_action(input).await,
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = build(&sdk);
    serve_step(JOB_LAUNCHER, &service, handle).await
}
