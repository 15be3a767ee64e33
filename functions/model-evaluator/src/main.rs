//! model-evaluator Lambda: `{"runId","batch"}` → evaluates one batch of the run's held-out records
//! (student vs teacher, judged both orders) and, on the last batch, records the quality gate's
//! decision on the run. All logic lives in `distillery_core::app::evaluate_model`; this binary
//! builds the SDK clients once per container. The state machine calls it in
//! a loop (EvaluateModel, CheckEvaluation) once the run's deployment is Active.

use distillery_aws::bedrock_runtime::BedrockRuntime;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::{init_tracing, run_ledger_from_env, serve_step, StepFunction};
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::evaluate_model::{
    EvaluateConfig, EvaluateModelInput, EvaluateModelOutput, ModelEvaluator,
};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;
use distillery_core::ports::SystemClock;

const EVALUATE_MODEL: StepFunction<EvaluateModelInput> = StepFunction {
    name: "model-evaluator",
    expected_shape: r#"{"runId": string, "batch": number}"#,
    span: |input| tracing::info_span!("evaluate_model", run_id = %input.run_id, batch = input.batch),
};

/// The clients and configuration [`ModelEvaluator`] borrows, owned for the container's life.
struct Service {
    ledger: DynamoRunLedger,
    store: S3DatasetStore,
    runtime: BedrockRuntime,
    config: EvaluateConfig,
}

impl Service {
    async fn handle(&self, input: EvaluateModelInput) -> Result<EvaluateModelOutput, StepError> {
        let evaluator = ModelEvaluator {
            ledger: &self.ledger,
            store: &self.store,
            runtime: &self.runtime,
            clock: &SystemClock,
            config: self.config.clone(),
        };
        let out = evaluator.evaluate(&input).await?;
        tracing::info!(records = out.records, next_batch = ?out.next_batch, passed = ?out.passed, score = ?out.score, "evaluation batch done");
        Ok(out)
    }
}

/// The service with its clients, built once per container. A configuration problem (a bad
/// `QUALITY_GATE_MIN_SCORE`, say) is returned by every invocation as a typed `ConfigInvalid`
/// error (see `serve_step`), not an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<Service, StepError> {
    let config = EvaluateConfig::from_env(&Limits::load()?)?;
    Ok(Service {
        ledger: run_ledger_from_env(sdk)?,
        store: S3DatasetStore::new(S3DatasetStore::client_from_conf(sdk)),
        runtime: BedrockRuntime::from_conf(sdk),
        config,
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = build(&sdk);
    serve_step(EVALUATE_MODEL, &service, |service, input| {
        service.handle(input)
    })
    .await
}
