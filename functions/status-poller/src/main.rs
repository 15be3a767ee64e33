//! status-poller Lambda: `{"runId","attempt"}` → the job's status, recorded on the run, plus whether
//! it is terminal and how long to wait before the next poll. All logic lives in
//! `distillery_core::app::poll_status`; this binary builds the SDK clients once per container.

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::{init_tracing, run_ledger_from_env, serve_step, StepFunction};
use distillery_core::app::poll_status::{
    PollConfig, PollStatusInput, PollStatusOutput, StatusPoller,
};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;

const POLL_STATUS: StepFunction<PollStatusInput> = StepFunction {
    name: "status-poller",
    expected_shape: r#"{"runId": string, "attempt": number}"#,
    span: |input| tracing::info_span!("poll_status", run_id = %input.run_id, attempt = input.attempt),
};

/// The clients and configuration [`StatusPoller`] borrows, owned for the container's life.
struct Service {
    ledger: DynamoRunLedger,
    bedrock: BedrockCustomizationService,
    config: PollConfig,
}

impl Service {
    async fn handle(&self, input: PollStatusInput) -> Result<PollStatusOutput, StepError> {
        let poller = StatusPoller {
            ledger: &self.ledger,
            bedrock: &self.bedrock,
            clock: &SystemClock,
            config: self.config.clone(),
        };
        let out = poller.poll(&input).await?;
        tracing::info!(outcome = ?out.outcome, job_status = %out.job_status, next_wait_seconds = out.next_wait_seconds, "polled");
        Ok(out)
    }
}

/// The service with its clients, built once per container. A configuration problem is returned by
/// every invocation as a typed `ConfigInvalid` error (see `serve_step`), not an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<Service, StepError> {
    let config = PollConfig::from_env(&Limits::load()?)?;
    Ok(Service {
        ledger: run_ledger_from_env(sdk)?,
        bedrock: BedrockCustomizationService::from_conf(sdk),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = build(&sdk);
    serve_step(POLL_STATUS, &service, |service, input| {
        service.handle(input)
    })
    .await
}
