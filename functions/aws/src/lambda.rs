//! Lambda glue shared by the five binaries: JSON tracing, typed errors, and the runner that turns
//! a built service (or its configuration error) and an async handler into a Lambda function.

use std::future::Future;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use tracing::Instrument;

use crate::dynamodb::DynamoRunLedger;
use distillery_core::config::Env;
use distillery_core::domain::errors::StepError;

/// JSON logs (CloudWatch-friendly), level from `RUST_LOG` (default `info`), no ANSI colours, no
/// timestamps of our own (Lambda adds them).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .try_init();
}

/// The Lambda error for a step error: the `errorType` the state machine matches in Retry/Catch is
/// the [`distillery_core::domain::errors::ErrorType`].
pub fn diagnostic(e: StepError) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type.as_str().to_string(),
        error_message: e.message,
    }
}

/// A required variable of the process environment; unset or blank is a `ConfigInvalid` error naming
/// it ([`Env::required`]).
pub fn required_env(name: &str) -> Result<String, StepError> {
    Env::process().required(name)
}

/// The run ledger every function writes to: the DynamoDB table named by `TABLE_NAME` (required).
pub fn run_ledger_from_env(sdk: &aws_config::SdkConfig) -> Result<DynamoRunLedger, StepError> {
    let table = required_env("TABLE_NAME")?;
    Ok(DynamoRunLedger::new(
        aws_sdk_dynamodb::Client::new(sdk),
        table,
    ))
}

/// The notifier use case with its AWS clients: the ledger (`TABLE_NAME`), SNS (`topic_arn`) and,
/// when `SLACK_SECRET_ARN` is set, Slack through Secrets Manager. The notifier Lambda, the
/// reconciler (its `expiring_soon` and `retired` milestones) and `distillery runs retire` share
/// this one delivery.
pub fn notifier_from_env(
    sdk: &aws_config::SdkConfig,
    topic_arn: String,
) -> Result<distillery_core::app::notify::Notifier, StepError> {
    use distillery_core::app::notify::{Notifier, NotifyConfig, WebhookFactory};
    use distillery_core::ports::{ChatWebhook, SystemClock};
    use std::sync::Arc;
    let config = NotifyConfig::from_env()?;
    let ledger = run_ledger_from_env(sdk)?;
    let prices = distillery_core::domain::catalog::Prices::load()?;
    let publisher = crate::sns::SnsPublisher::from_conf(sdk, topic_arn);
    let secrets =
        crate::secrets::SecretsManagerSource::new(aws_sdk_secretsmanager::Client::new(sdk));
    let factory: WebhookFactory = Arc::new(|url: &str, timeout: std::time::Duration| {
        Ok(Arc::new(crate::slack::SlackWebhook::new(url, timeout)?) as Arc<dyn ChatWebhook>)
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

/// The step input of `function_name` from its JSON payload; a payload of another shape is a
/// `InvalidInput` error that names the function, the shape it expects and what serde found wrong.
pub fn parse_step_input<T: DeserializeOwned>(
    payload: serde_json::Value,
    function_name: &str,
    expected_shape: &str,
) -> Result<T, StepError> {
    serde_json::from_value(payload).map_err(|e| {
        StepError::invalid_input(format!("{function_name} expects {expected_shape}: {e}"))
    })
}

/// An invocation's payload as the runtime hands it over. A body that is not JSON at all still
/// reaches the handler (as `NotJson`): otherwise the runtime answers it itself, with a Rust type name
/// (`&lambda_runtime::deserializer::DeserializeError`) as the `errorType` the state machine sees.
#[derive(Debug, Clone, PartialEq)]
pub enum StepPayload {
    Json(serde_json::Value),
    /// What the JSON parser said about the body.
    NotJson(String),
}

impl<'de> Deserialize<'de> for StepPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Never fails: a parse error becomes `NotJson`, answered as `InvalidInput` by the runner.
        Ok(match serde_json::Value::deserialize(deserializer) {
            Ok(value) => StepPayload::Json(value),
            Err(e) => StepPayload::NotJson(e.to_string()),
        })
    }
}

impl StepPayload {
    /// The JSON payload, or an `InvalidInput` error naming the function and the parse error.
    pub fn into_json(self, function_name: &str) -> Result<serde_json::Value, StepError> {
        match self {
            StepPayload::Json(value) => Ok(value),
            StepPayload::NotJson(e) => Err(StepError::invalid_input(format!(
                "{function_name}: the payload is not JSON ({e})"
            ))),
        }
    }
}

/// What the shared runner needs to know about one Lambda besides its handler.
pub struct StepFunction<I> {
    /// The function's name, as InvalidInput messages give it (`job-launcher expects ...`).
    pub name: &'static str,
    /// The input shape InvalidInput messages say the function expects, e.g. `{"runId": string}`.
    pub expected_shape: &'static str,
    /// The span an invocation (its handler and the error log) runs in, from the parsed input; use
    /// [`no_span`] when the use case opens its own.
    pub span: fn(&I) -> tracing::Span,
}

/// For a [`StepFunction`] whose use case opens its own span.
pub fn no_span<I>(_: &I) -> tracing::Span {
    tracing::Span::none()
}

/// One invocation: the configuration error if the service could not be built (so every invocation
/// reports `ConfigInvalid` with its message, which the state machine can route, rather than an
/// opaque init failure), else the parsed input handed to `handler` inside the step's span, with a
/// failure logged with its `error_type`.
pub async fn run_step_handler<'s, S, I, O, H, Fut>(
    step: &StepFunction<I>,
    service: &'s Result<S, StepError>,
    payload: serde_json::Value,
    handler: &H,
) -> Result<O, StepError>
where
    I: DeserializeOwned,
    H: Fn(&'s S, I) -> Fut,
    Fut: Future<Output = Result<O, StepError>>,
{
    let service = service.as_ref().map_err(Clone::clone)?;
    let input: I = parse_step_input(payload, step.name, step.expected_shape)?;
    let span = (step.span)(&input);
    async move {
        handler(service, input).await.inspect_err(|e| {
            tracing::error!(error_type = %e.error_type, "{}", e.message);
        })
    }
    .instrument(span)
    .await
}

/// Serves `step` on the Lambda runtime until it shuts down: a configuration error is logged once
/// here and returned by every invocation (see [`run_step_handler`]); errors reach the state
/// machine with their [`distillery_core::domain::errors::ErrorType`] as `errorType`.
///
/// `service` is borrowed (it lives in `main` for the container's life) so that `handler` can hand
/// out futures that borrow it.
pub async fn serve_step<'s, S, I, O, H, Fut>(
    step: StepFunction<I>,
    service: &'s Result<S, StepError>,
    handler: H,
) -> Result<(), lambda_runtime::Error>
where
    I: DeserializeOwned,
    O: Serialize,
    H: Fn(&'s S, I) -> Fut,
    Fut: Future<Output = Result<O, StepError>>,
{
    if let Err(e) = service {
        tracing::error!(error_type = %e.error_type, "{}", e.message);
    }
    let step = &step;
    let handler = &handler;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<StepPayload>| async move {
            let payload = event.payload.into_json(step.name).map_err(diagnostic)?;
            run_step_handler(step, service, payload, handler)
                .await
                .map_err(diagnostic)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use distillery_core::domain::errors::ErrorType;

    #[test]
    fn diagnostic_keeps_the_error_type() {
        let d: Diagnostic = diagnostic(StepError::new(ErrorType::Throttled, "slow down"));
        assert_eq!(d.error_type, "Throttled");
        assert_eq!(d.error_message, "slow down");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ProbeInput {
        run_id: String,
    }

    const PROBE: StepFunction<ProbeInput> = StepFunction {
        name: "probe",
        expected_shape: r#"{"runId": string}"#,
        span: |input| tracing::info_span!("probe", run_id = %input.run_id),
    };

    /// Echoes the run id, or fails with the error type the run id names.
    async fn echo(prefix: &String, input: ProbeInput) -> Result<String, StepError> {
        match input.run_id.as_str() {
            "throttle" => Err(StepError::new(ErrorType::Throttled, "slow down")),
            id => Ok(format!("{prefix}{id}")),
        }
    }

    #[test]
    fn a_missing_or_blank_env_var_is_a_config_error_naming_it() {
        let required_value =
            |name: &str, value: Option<String>| Env::new(move |_| value.clone()).required(name);
        for value in [None, Some(String::new()), Some("  ".to_string())] {
            let e = required_value("TABLE_NAME", value).unwrap_err();
            assert_eq!(e.error_type, ErrorType::ConfigInvalid);
            assert_eq!(e.message, "environment variable TABLE_NAME is required");
        }
        assert_eq!(
            required_value("TABLE_NAME", Some("runs".into())).unwrap(),
            "runs"
        );
    }

    /// Reads a body the way `lambda_runtime` does (a streaming deserializer, no end-of-input check).
    fn runtime_reads(body: &[u8]) -> StepPayload {
        let mut de = serde_json::Deserializer::from_slice(body);
        StepPayload::deserialize(&mut de).expect("StepPayload never fails to deserialize")
    }

    #[test]
    fn a_body_that_is_not_json_is_an_invalid_input_naming_the_function() {
        for body in [&b"hello"[..], b"", b"{\"runId\": ", b"\xff\xfe"] {
            let e = runtime_reads(body).into_json("job-launcher").unwrap_err();
            assert_eq!(e.error_type, ErrorType::InvalidInput, "{body:?}");
            assert!(
                e.message
                    .starts_with("job-launcher: the payload is not JSON ("),
                "{}",
                e.message
            );
            assert_eq!(diagnostic(e).error_type, "InvalidInput");
        }
        assert_eq!(
            runtime_reads(br#"{"runId": "run-1"}"#)
                .into_json("x")
                .unwrap(),
            serde_json::json!({"runId": "run-1"})
        );
    }

    #[test]
    fn a_payload_of_the_wrong_shape_is_an_invalid_input_naming_function_and_shape() {
        let e = parse_step_input::<ProbeInput>(
            serde_json::json!({"attempt": 1}),
            "probe",
            r#"{"runId": string}"#,
        )
        .unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidInput);
        assert!(
            e.message
                .starts_with(r#"probe expects {"runId": string}: missing field `runId`"#),
            "{}",
            e.message
        );
        let ok: ProbeInput =
            parse_step_input(serde_json::json!({"runId": "run-1"}), "probe", "x").unwrap();
        assert_eq!(ok.run_id, "run-1");
    }

    #[tokio::test]
    async fn a_config_error_is_returned_on_every_invocation_and_the_handler_never_runs() {
        let service: Result<String, StepError> = Err(StepError::config(
            "environment variable TABLE_NAME is required",
        ));
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let handler = |_: &String, _: ProbeInput| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { Ok::<_, StepError>(()) }
        };
        for payload in [
            serde_json::json!({"runId": "run-1"}),
            serde_json::json!({"runId": "run-2"}),
            serde_json::json!("not even an object"),
        ] {
            let e = run_step_handler(&PROBE, &service, payload, &handler)
                .await
                .unwrap_err();
            assert_eq!(e.error_type, ErrorType::ConfigInvalid);
            assert_eq!(e.message, "environment variable TABLE_NAME is required");
            let d = diagnostic(e);
            assert_eq!(d.error_type, "ConfigInvalid");
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_built_service_gets_the_parsed_input_and_its_errors_keep_their_type() {
        let service: Result<String, StepError> = Ok("seen ".to_string());
        let out = run_step_handler(
            &PROBE,
            &service,
            serde_json::json!({"runId": "run-1"}),
            &echo,
        )
        .await
        .unwrap();
        assert_eq!(out, "seen run-1");

        let e = run_step_handler(&PROBE, &service, serde_json::json!({"run": 1}), &echo)
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidInput);
        assert!(e.message.starts_with("probe expects"), "{}", e.message);

        let e = run_step_handler(
            &PROBE,
            &service,
            serde_json::json!({"runId": "throttle"}),
            &echo,
        )
        .await
        .unwrap_err();
        assert_eq!(
            (e.error_type, e.message.as_str()),
            (ErrorType::Throttled, "slow down")
        );
    }

    #[tokio::test]
    async fn the_handler_runs_in_the_span_built_from_its_input() {
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
        let service: Result<(), StepError> = Ok(());
        let span_name = |_: &(), _: ProbeInput| async {
            Ok::<_, StepError>(tracing::Span::current().metadata().map(|m| m.name()))
        };
        let seen = run_step_handler(
            &PROBE,
            &service,
            serde_json::json!({"runId": "run-1"}),
            &span_name,
        )
        .await
        .unwrap();
        assert_eq!(seen, Some("probe"));
        let unspanned = StepFunction {
            span: no_span,
            ..PROBE
        };
        let seen = run_step_handler(
            &unspanned,
            &service,
            serde_json::json!({"runId": "run-1"}),
            &span_name,
        )
        .await
        .unwrap();
        assert_eq!(seen, None);
    }
}
