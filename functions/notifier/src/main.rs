//! notifier Lambda: `{"runId","milestone","error"?,"input"?}` → one message per milestone on SNS and,
//! when `SLACK_SECRET_ARN` is set, Slack; every delivery recorded on the run. All logic lives in
//! `distillery_core::app::notify`; this binary only builds the clients once per container (so the
//! Slack webhook URL, read from Secrets Manager on first use, is cached for the container's life).

use std::sync::Arc;
use std::time::Duration;

use distillery_aws::lambda::{
    init_tracing, no_span, required_env, run_ledger_from_env, serve_step, StepFunction,
};
use distillery_aws::secrets::SecretsManagerSource;
use distillery_aws::slack::SlackWebhook;
use distillery_aws::sns::SnsPublisher;
use distillery_core::app::notify::{Notifier, NotifyConfig, NotifyInput, WebhookFactory};
use distillery_core::domain::catalog::Prices;
use distillery_core::domain::errors::StepError;
use distillery_core::ports::{ChatWebhook, SystemClock};

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
    let config = NotifyConfig::from_env()?;
    let ledger = run_ledger_from_env(sdk)?;
    let topic_arn = required_env("TOPIC_ARN")?;
    let prices = Prices::load()?;
    let publisher = SnsPublisher::from_conf(sdk, topic_arn);
    let secrets = SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk));
    let factory: WebhookFactory = Arc::new(|url: &str, timeout: Duration| {
        Ok(Arc::new(SlackWebhook::new(url, timeout)?) as Arc<dyn ChatWebhook>)
    });
    Ok(Notifier::new(
        Arc::new(ledger),
        Arc::new(publisher),
        Arc::new(secrets),
        factory,
        Arc::new(SystemClock),
        prices,
        config,
    ))
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
