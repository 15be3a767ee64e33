//! status-poller Lambda: `{"runId","attempt"}` → the job's status, recorded on the run, plus whether
//! it is terminal and how long to wait before the next poll. All logic lives in
//! `distillery_core::app::poll_status`; this binary only builds the clients once per container.

use distillery_core::adapters::bedrock::BedrockCustomizationService;
use distillery_core::adapters::dynamodb::DynamoRunLedger;
use distillery_core::adapters::lambda::init_tracing;
use distillery_core::app::poll_status::{
    PollConfig, PollStatusInput, PollStatusOutput, StatusPoller,
};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use tracing::Instrument;

/// Configuration problems are reported on every invocation as a typed `ConfigInvalid` error (which
/// the state machine can route to a notification), rather than as an opaque init failure.
fn load_config() -> Result<(PollConfig, String), StepError> {
    let limits = Limits::load().map_err(|e| StepError::config(e.to_string()))?;
    let config = PollConfig::from_env(&limits)?;
    let table = std::env::var("TABLE_NAME")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| StepError::config("environment variable TABLE_NAME is required"))?;
    Ok((config, table))
}

async fn handle(
    poller: Result<&StatusPoller<'_>, &StepError>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<PollStatusOutput, Diagnostic> {
    let poller = poller.map_err(|e| e.clone())?;
    let input: PollStatusInput = serde_json::from_value(event.payload).map_err(|e| {
        StepError::bad_event(format!(
            "status-poller expects {{\"runId\": string, \"attempt\": number}}: {e}"
        ))
    })?;
    let span = tracing::info_span!("poll_status", run_id = %input.run_id, attempt = input.attempt);
    async {
        match poller.poll(&input).await {
            Ok(out) => {
                tracing::info!(outcome = ?out.outcome, job_status = %out.job_status, next_wait_seconds = out.next_wait_seconds, "polled");
                Ok(out)
            }
            Err(e) => {
                tracing::error!(error_type = %e.error_type, "{}", e.message);
                Err(e.into())
            }
        }
    }
    .instrument(span)
    .await
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_from_env().await;
    let bedrock = BedrockCustomizationService::from_conf(&sdk);
    let clock = SystemClock;
    let ready = load_config().map(|(config, table)| {
        let ledger = DynamoRunLedger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        (config, ledger)
    });
    if let Err(e) = &ready {
        tracing::error!(error_type = %e.error_type, "{}", e.message);
    }
    let poller = ready
        .as_ref()
        .map(|(config, ledger)| StatusPoller {
            ledger,
            bedrock: &bedrock,
            clock: &clock,
            config: config.clone(),
        })
        .map_err(Clone::clone);
    let poller = &poller;
    lambda_runtime::run(service_fn(move |event| async move {
        handle(poller.as_ref(), event).await
    }))
    .await
}
