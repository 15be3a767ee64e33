//! status-poller Lambda: `{"runId","attempt"}` → the job's status, recorded on the run, plus whether
//! it is terminal and how long to wait before the next poll. All logic lives in
//! `distillery_core::app::poll_status`; this binary only builds the clients once per container.

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::{init_tracing, run_ledger_from_env, serve_step, StepFunction};
use distillery_core::app::poll_status::{PollConfig, PollStatusInput, StatusPoller};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;

const POLL_STATUS: StepFunction<PollStatusInput> = StepFunction {
    name: "status-poller",
    expected_shape: r#"{"runId": string, "attempt": number}"#,
    span: |input| tracing::info_span!("poll_status", run_id = %input.run_id, attempt = input.attempt),
};

/// Configuration problems are reported on every invocation as a typed `ConfigInvalid` error (which
/// the state machine can route to a notification), rather than as an opaque init failure.
fn config_and_ledger(
    sdk: &aws_config::SdkConfig,
) -> Result<(PollConfig, DynamoRunLedger), StepError> {
    let limits = Limits::load().map_err(|e| StepError::config(e.to_string()))?;
    let config = PollConfig::from_env(&limits)?;
    let ledger = run_ledger_from_env(sdk)?;
    Ok((config, ledger))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_from_env().await;
    let bedrock = BedrockCustomizationService::from_conf(&sdk);
    let clock = SystemClock;
    let ready = config_and_ledger(&sdk);
    let poller = ready
        .as_ref()
        .map(|(config, ledger)| StatusPoller {
            ledger,
            bedrock: &bedrock,
            clock: &clock,
            config: config.clone(),
        })
        .map_err(Clone::clone);
    serve_step(POLL_STATUS, &poller, |poller, input| async move {
        let out = poller.poll(&input).await?;
        tracing::info!(outcome = ?out.outcome, job_status = %out.job_status, next_wait_seconds = out.next_wait_seconds, "polled");
        Ok(out)
    })
    .await
}
