//! notifier Lambda: `{"runId","milestone","error"?,"input"?}` → one message per milestone on SNS and,
//! when `SLACK_SECRET_ARN` is set, Slack; every delivery recorded on the run. All logic lives in
//! `distillery_core::app::notify`; this binary only builds the clients once per container (so the
//! Slack webhook URL, read from Secrets Manager on first use, is cached for the container's life).

use distillery_aws::lambda::{
    init_tracing, no_span, notifier_from_env, required_env, serve_step, StepFunction,
};
use distillery_core::app::notify::{Notifier, NotifyInput};
use distillery_core::domain::errors::StepError;

/// No span: the run id may be absent (validation crashed before a run existed); the success log
/// line carries it instead.
const NOTIFY: StepFunction<NotifyInput> = StepFunction {
    name: "notifier",
    expected_shape: r#"{"runId"?: string, "milestone": string, "error"?: {"Error","Cause"}, "input"?: object}"#,
    span: no_span,
};

/// Configuration problems are reported on every invocation as a typed `ConfigInvalid` error rather
/// than as an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<Notifier, StepError> {
    notifier_from_env(sdk, required_env("TOPIC_ARN")?)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let notifier = build(&sdk);
    serve_step(NOTIFY, &notifier, |notifier, input| async move {
        let out = notifier.handle(input).await?;
        tracing::info!(
            run_id = out.run_id.as_deref().unwrap_or("none"),
            milestone = %out.milestone,
            sns = ?out.sns,
            slack = ?out.slack,
            "notified"
        );
        Ok(out)
    })
    .await
}
