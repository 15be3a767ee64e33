//! throughput-provisioner Lambda: `{"runId","attempt"}` → buys (once, guarded) and then tracks the
//! run's Provisioned Throughput when its settings ask for serving. All logic lives in
//! `distillery_core::app::provision_throughput`; this binary only builds the clients once.

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::{init_tracing, run_ledger_from_env, serve_step, StepFunction};
use distillery_core::app::provision_throughput::{
    ProvisionConfig, ProvisionThroughputInput, ThroughputProvisioner,
};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;

const PROVISION_THROUGHPUT: StepFunction<ProvisionThroughputInput> = StepFunction {
    name: "throughput-provisioner",
    expected_shape: r#"{"runId": string, "attempt": number}"#,
    span: |input| tracing::info_span!("provision_throughput", run_id = %input.run_id, attempt = input.attempt),
};

/// Configuration problems (a bad `MAX_MODEL_UNITS`, say) are reported on every invocation as a typed
/// `ConfigInvalid` error the state machine can route, rather than as an opaque init failure.
fn config_and_ledger(
    sdk: &aws_config::SdkConfig,
) -> Result<(ProvisionConfig, DynamoRunLedger), StepError> {
    let limits = Limits::load().map_err(|e| StepError::config(e.to_string()))?;
    let config = ProvisionConfig::from_env(&limits)?;
    let ledger = run_ledger_from_env(sdk)?;
    Ok((config, ledger))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_from_env().await;
    let bedrock = BedrockCustomizationService::from_conf(&sdk);
    let ready = config_and_ledger(&sdk);
    let provisioner = ready
        .as_ref()
        .map(|(config, ledger)| ThroughputProvisioner {
            ledger,
            bedrock: &bedrock,
            config: config.clone(),
        })
        .map_err(Clone::clone);
    serve_step(PROVISION_THROUGHPUT, &provisioner, |provisioner, input| async move {
        let out = provisioner.provision(&input).await?;
        tracing::info!(outcome = ?out.outcome, provisioned_model_arn = ?out.provisioned_model_arn, next_wait_seconds = out.next_wait_seconds, "provisioning step done");
        Ok(out)
    })
    .await
}
