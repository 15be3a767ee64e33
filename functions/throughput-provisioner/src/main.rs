//! throughput-provisioner Lambda: `{"runId","attempt"}` → buys (once, guarded) and then tracks the
//! run's Provisioned Throughput when its settings ask for serving. All logic lives in
//! `distillery_core::app::provision_throughput`; this binary only builds the clients once.

use distillery_core::adapters::bedrock::BedrockCustomizationService;
use distillery_core::adapters::dynamodb::DynamoRunLedger;
use distillery_core::adapters::lambda::init_tracing;
use distillery_core::app::provision_throughput::{
    ProvisionConfig, ProvisionThroughputInput, ProvisionThroughputOutput, ThroughputProvisioner,
};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use tracing::Instrument;

/// Configuration problems (a bad `MAX_MODEL_UNITS`, say) are reported on every invocation as a typed
/// `ConfigInvalid` error the state machine can route, rather than as an opaque init failure.
fn load_config() -> Result<(ProvisionConfig, String), StepError> {
    let limits = Limits::load().map_err(|e| StepError::config(e.to_string()))?;
    let config = ProvisionConfig::from_env(&limits)?;
    let table = std::env::var("TABLE_NAME")
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| StepError::config("environment variable TABLE_NAME is required"))?;
    Ok((config, table))
}

async fn handle(
    provisioner: Result<&ThroughputProvisioner<'_>, &StepError>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<ProvisionThroughputOutput, Diagnostic> {
    let provisioner = provisioner.map_err(|e| e.clone())?;
    let input: ProvisionThroughputInput = serde_json::from_value(event.payload).map_err(|e| {
        StepError::bad_event(format!(
            "throughput-provisioner expects {{\"runId\": string, \"attempt\": number}}: {e}"
        ))
    })?;
    let span = tracing::info_span!("provision_throughput", run_id = %input.run_id, attempt = input.attempt);
    async {
        match provisioner.provision(&input).await {
            Ok(out) => {
                tracing::info!(outcome = ?out.outcome, provisioned_model_arn = ?out.provisioned_model_arn, next_wait_seconds = out.next_wait_seconds, "provisioning step done");
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
    let ready = load_config().map(|(config, table)| {
        let ledger = DynamoRunLedger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        (config, ledger)
    });
    if let Err(e) = &ready {
        tracing::error!(error_type = %e.error_type, "{}", e.message);
    }
    let provisioner = ready
        .as_ref()
        .map(|(config, ledger)| ThroughputProvisioner {
            ledger,
            bedrock: &bedrock,
            config: config.clone(),
        })
        .map_err(Clone::clone);
    let provisioner = &provisioner;
    lambda_runtime::run(service_fn(move |event| async move {
        handle(provisioner.as_ref(), event).await
    }))
    .await
}
