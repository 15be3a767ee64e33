//! throughput-provisioner Lambda: `{"runId","attempt"}` → buys (once, guarded) and then tracks the
//! run's Provisioned Throughput when its settings ask for serving. All logic lives in
//! `distillery_core::app::provision_throughput`; this binary builds the SDK clients once per container.

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::{init_tracing, run_ledger_from_env, serve_step, StepFunction};
use distillery_core::app::provision_throughput::{
    ProvisionConfig, ProvisionThroughputInput, ProvisionThroughputOutput, ThroughputProvisioner,
};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;

const PROVISION_THROUGHPUT: StepFunction<ProvisionThroughputInput> = StepFunction {
    name: "throughput-provisioner",
    expected_shape: r#"{"runId": string, "attempt": number}"#,
    span: |input| tracing::info_span!("provision_throughput", run_id = %input.run_id, attempt = input.attempt),
};

/// The clients and configuration [`ThroughputProvisioner`] borrows, owned for the container's life.
struct Service {
    ledger: DynamoRunLedger,
    bedrock: BedrockCustomizationService,
    config: ProvisionConfig,
}

impl Service {
    async fn handle(
        &self,
        input: ProvisionThroughputInput,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let provisioner = ThroughputProvisioner {
            ledger: &self.ledger,
            bedrock: &self.bedrock,
            clock: &SystemClock,
            config: self.config.clone(),
        };
        let out = provisioner.provision(&input).await?;
        tracing::info!(outcome = ?out.outcome, provisioned_model_arn = ?out.provisioned_model_arn, next_wait_seconds = out.next_wait_seconds, "provisioning step done");
        Ok(out)
    }
}

/// The service with its clients, built once per container. A configuration problem (a bad
/// `MAX_MODEL_UNITS`, say) is returned by every invocation as a typed `ConfigInvalid` error (see
/// `serve_step`), not an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<Service, StepError> {
    let config = ProvisionConfig::from_env(&Limits::load()?)?;
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
    serve_step(PROVISION_THROUGHPUT, &service, |service, input| {
        service.handle(input)
    })
    .await
}
