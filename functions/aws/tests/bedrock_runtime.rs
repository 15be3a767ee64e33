//! The runtime adapter (`BedrockRuntime`, Converse through aws-sdk-bedrockruntime) against the
//! Bedrock simulator: an answer with usage and latency, throttling recovered by the adapter's
//! retry policy, and errors classified into `PortError` with the model named.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use bedrock_sim::{Operation, SimConfig, SimHandle};
use distillery_aws::bedrock_runtime::{retry_config, BedrockRuntime, MAX_ATTEMPTS};
use distillery_core::ports::{ConverseRequest, ModelRuntime, PortError};

const TEACHER: &str = "amazon.nova-pro-v1:0";

/// The simulator and the adapter on it, with the adapter's own retry policy but a short backoff.
async fn env() -> (SimHandle, BedrockRuntime) {
    let sim = bedrock_sim::start(SimConfig::default());
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrock::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(sim.endpoint())
        .load()
        .await;
    let retry = retry_config().with_initial_backoff(Duration::from_millis(5));
    (sim, BedrockRuntime::with_retry(&conf, retry))
}

#[tokio::test]
async fn a_foundation_model_answers_with_usage_latency_and_stop_reason() {
    let (_sim, rt) = env().await;
    let mut req = ConverseRequest::ask(TEACHER, "How do I reset my password?");
    req.system = Some("You are a support agent.".into());
    req.max_tokens = Some(500);
    req.temperature = Some(0.0);
    let answer = rt.converse(&req).await.unwrap();
    assert_eq!(
        answer.text,
        bedrock_sim::teacher_answer("How do I reset my password?")
    );
    assert_eq!(answer.output_tokens, answer.text.len().div_ceil(4) as u64);
    let input = "You are a support agent.".len().div_ceil(4)
        + "How do I reset my password?".len().div_ceil(4);
    assert_eq!(answer.input_tokens, input as u64);
    // The simulator's teacher: 900 ms + 12 ms per output token.
    assert_eq!(answer.latency_ms, 900 + 12 * answer.output_tokens);
    assert_eq!(answer.stop_reason, "end_turn");

    // max_tokens reaches the model.
    let mut short = ConverseRequest::ask(TEACHER, "How do I reset my password?");
    short.max_tokens = Some(3);
    let cut = rt.converse(&short).await.unwrap();
    assert_eq!(cut.stop_reason, "max_tokens");
    assert_eq!(cut.output_tokens, 3);
}

#[tokio::test]
async fn throttling_is_retried_until_the_attempts_run_out() {
    let (sim, rt) = env().await;
    // All but the last attempt throttled: the caller gets the answer.
    sim.throttle_next_of(Operation::Converse, MAX_ATTEMPTS - 1);
    let answer = rt
        .converse(&ConverseRequest::ask(TEACHER, "hi"))
        .await
        .unwrap();
    assert_eq!(answer.text, bedrock_sim::teacher_answer("hi"));
    let statuses: Vec<u16> = sim
        .calls_of(Operation::Converse)
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses.len(), MAX_ATTEMPTS as usize);
    assert_eq!(statuses.last(), Some(&200));
    sim.clear_calls();

    // Every attempt throttled: Throttled, naming the model.
    sim.throttle_next_of(Operation::Converse, MAX_ATTEMPTS);
    let e = rt
        .converse(&ConverseRequest::ask(TEACHER, "hi"))
        .await
        .unwrap_err();
    let PortError::Throttled(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains(TEACHER), "{m}");
    assert_eq!(
        sim.calls_of(Operation::Converse).len(),
        MAX_ATTEMPTS as usize
    );
}

#[tokio::test]
async fn errors_are_classified_with_the_model_named() {
    let (sim, rt) = env().await;
    // A model error (424) is worth another try later: Transient.
    sim.model_error_next(1);
    let e = rt
        .converse(&ConverseRequest::ask(TEACHER, "hi"))
        .await
        .unwrap_err();
    let PortError::Transient(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.contains("ModelErrorException") && m.contains(TEACHER),
        "{m}"
    );

    // A deployment that does not exist: NotFound.
    let gone = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef123456";
    let e = rt
        .converse(&ConverseRequest::ask(gone, "hi"))
        .await
        .unwrap_err();
    let PortError::NotFound(m) = &e else {
        panic!("{e:?}")
    };
    assert!(m.contains(gone), "{m}");

    // An identifier Bedrock does not know: Validation.
    let e = rt
        .converse(&ConverseRequest::ask("no-such-model", "hi"))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Validation(_)), "{e:?}");
}
