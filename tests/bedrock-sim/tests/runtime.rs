//! The Bedrock runtime's Converse through the real `aws-sdk-bedrockruntime` client: foundation
//! models and inference profiles, custom model deployments and Provisioned Throughputs, the
//! student-quality knob, judge calls under the core's rubric, errors and injected faults.

mod common;

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_bedrock::types::{CustomModelDeploymentStatus, ModelCustomizationJobStatus};
use aws_sdk_bedrockruntime::config::Credentials;
use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::converse::{ConverseError, ConverseOutput};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, InferenceConfiguration, Message, StopReason, SystemContentBlock,
};
use aws_sdk_bedrockruntime::Client as Runtime;
use bedrock_sim::{Operation, SimHandle};
use common::*;
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::evaluation::{
    combine, decide, parse_judge_reply, Answer, JudgeRequest, Outcome, RecordResult, RUBRIC,
};
use serde_json::{json, Value};

/// The runtime client the evaluator will build: the simulator as its endpoint
/// (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` in the stack), test credentials.
async fn runtime_client(sim: &SimHandle, retry: RetryConfig) -> Runtime {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(sim.endpoint())
        .retry_config(retry)
        .load()
        .await;
    Runtime::new(&config)
}

fn user(text: &str) -> Message {
    Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(text.into()))
        .build()
        .unwrap()
}

async fn ask(rt: &Runtime, model: &str, prompt: &str) -> Result<ConverseOutput, ConverseError> {
    rt.converse()
        .model_id(model)
        .messages(user(prompt))
        .send()
        .await
        .map_err(|e| e.into_service_error())
}

fn text(out: &ConverseOutput) -> String {
    let message = out.output().unwrap().as_message().unwrap();
    assert_eq!(message.role(), &ConversationRole::Assistant);
    message.content()[0].as_text().unwrap().clone()
}

fn tokens(s: &str) -> i32 {
    s.len().div_ceil(4) as i32
}

/// A Completed job's custom model ARN.
async fn custom_model(sim: &SimHandle, job: &str) -> String {
    let client = client(sim).await;
    let arn = distill(&client, job)
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    let seen = poll_job(&client, &arn, Duration::from_secs(10), |o| {
        o.status() == Some(&ModelCustomizationJobStatus::Completed)
    })
    .await;
    seen.last().unwrap().output_model_arn().unwrap().to_string()
}

/// Creates a deployment of `model` and returns its ARN (not waiting for Active).
async fn deploy(sim: &SimHandle, model: &str, name: &str) -> String {
    client(sim)
        .await
        .create_custom_model_deployment()
        .model_deployment_name(name)
        .model_arn(model)
        .send()
        .await
        .unwrap()
        .custom_model_deployment_arn()
        .to_string()
}

async fn wait_active(sim: &SimHandle, arn: &str) {
    let client = client(sim).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = client
            .get_custom_model_deployment()
            .custom_model_deployment_identifier(arn)
            .send()
            .await
            .unwrap();
        if out.status() == &CustomModelDeploymentStatus::Active {
            return;
        }
        assert!(Instant::now() < deadline, "deployment {arn} never Active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_foundation_teacher_answers_with_usage_and_latency() {
    let sim = sim(30);
    let rt = runtime_client(&sim, RetryConfig::disabled()).await;
    let prompt = "How do I reset my password on the mobile app?";
    let out = rt
        .converse()
        .model_id(TEACHER)
        .system(SystemContentBlock::Text("You are a support agent.".into()))
        .messages(user(prompt))
        .inference_config(
            InferenceConfiguration::builder()
                .max_tokens(500)
                .temperature(0.2)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let answer = text(&out);
    assert_eq!(answer, bedrock_sim::teacher_answer(prompt));
    assert_eq!(out.stop_reason(), &StopReason::EndTurn);
    let usage = out.usage().unwrap();
    // 1 token per 4 bytes of everything sent (system + messages) and of the answer.
    let sent = "You are a support agent.".len() + prompt.len();
    assert_eq!(usage.input_tokens(), sent.div_ceil(4) as i32);
    assert_eq!(usage.output_tokens(), tokens(&answer));
    assert_eq!(
        usage.total_tokens(),
        usage.input_tokens() + usage.output_tokens()
    );
    let teacher_latency = out.metrics().unwrap().latency_ms();
    assert_eq!(teacher_latency, 900 + 12 * usage.output_tokens() as i64);
    // Same prompt, same answer; by its ARN too.
    let again = ask(
        &rt,
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
        prompt,
    )
    .await
    .unwrap();
    assert_eq!(text(&again), answer);
    // A student's base model answers as a student: faster.
    let student = ask(&rt, "amazon.nova-lite-v1:0", prompt).await.unwrap();
    assert!(student.metrics().unwrap().latency_ms() < teacher_latency);

    let calls = sim.calls_of(Operation::Converse);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].field("modelId"), Some(TEACHER));
    assert_eq!(calls[0].field("prompt"), Some(prompt));
    assert_eq!(calls[0].field("answeredAs"), Some("teacher"));
    assert_eq!(calls[2].field("answeredAs"), Some("student"));
    assert_eq!(calls[0].status, 200);
}

#[tokio::test]
async fn model_identifiers_are_checked_like_bedrock_checks_them() {
    let sim = sim(30);
    let rt = runtime_client(&sim, RetryConfig::disabled()).await;
    // A profile-only teacher by its bare id: refused; through its inference profile: answers.
    let e = ask(&rt, "amazon.nova-premier-v1:0", "hi")
        .await
        .unwrap_err();
    assert!(e.is_validation_exception(), "{e:?}");
    assert!(
        e.message()
            .unwrap()
            .contains("with on-demand throughput isn't supported"),
        "{e:?}"
    );
    let out = ask(&rt, "us.amazon.nova-premier-v1:0", "hi").await.unwrap();
    assert_eq!(text(&out), bedrock_sim::teacher_answer("hi"));
    let out = ask(
        &rt,
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-premier-v1:0",
        "hi",
    )
    .await
    .unwrap();
    assert_eq!(text(&out), bedrock_sim::teacher_answer("hi"));
    // Unknown model: ValidationException, Bedrock's wording.
    let e = ask(&rt, "acme.unknown-model-v9:0", "hi").await.unwrap_err();
    assert!(e.is_validation_exception());
    assert_eq!(
        e.message(),
        Some("The provided model identifier is invalid.")
    );
    // A missing deployment or throughput: ResourceNotFoundException (404).
    let missing = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl";
    let e = ask(&rt, missing, "hi").await.unwrap_err();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let e = ask(
        &rt,
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl",
        "hi",
    )
    .await
    .unwrap_err();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let call = sim
        .calls_of(Operation::Converse)
        .into_iter()
        .find(|c| c.status == 404)
        .unwrap();
    assert_eq!(
        call.error_type.as_deref(),
        Some("ResourceNotFoundException")
    );
    assert_eq!(call.field("modelId"), Some(missing));
}

#[tokio::test]
async fn requests_are_validated() {
    let sim = sim(30);
    let rt = runtime_client(&sim, RetryConfig::disabled()).await;
    let assistant = Message::builder()
        .role(ConversationRole::Assistant)
        .content(ContentBlock::Text("hello".into()))
        .build()
        .unwrap();
    let e = rt
        .converse()
        .model_id(TEACHER)
        .messages(assistant)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_validation_exception());
    assert!(e
        .message()
        .unwrap()
        .starts_with("A conversation must start with a user message"));
    let e = rt
        .converse()
        .model_id(TEACHER)
        .messages(user("a"))
        .messages(user("b"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        e.message()
            .unwrap()
            .starts_with("A conversation must alternate"),
        "{e:?}"
    );
    let e = rt
        .converse()
        .model_id(TEACHER)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        e.message().unwrap().contains("Value null at 'messages'"),
        "{e:?}"
    );
    let e = rt
        .converse()
        .model_id(TEACHER)
        .messages(user("a"))
        .inference_config(InferenceConfiguration::builder().temperature(1.5).build())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        e.message()
            .unwrap()
            .contains("'inferenceConfig.temperature'"),
        "{e:?}"
    );
    // maxTokens cuts the answer: stopReason max_tokens, outputTokens within the limit.
    let out = rt
        .converse()
        .model_id(TEACHER)
        .messages(user(
            "Write a long explanation of every billing rule we have",
        ))
        .inference_config(InferenceConfiguration::builder().max_tokens(5).build())
        .send()
        .await
        .unwrap();
    assert_eq!(out.stop_reason(), &StopReason::MaxTokens);
    assert!(out.usage().unwrap().output_tokens() <= 5);
    assert_eq!(text(&out).len(), 20);
}

#[tokio::test]
async fn deployments_and_throughputs_answer_as_the_student_once_ready() {
    let sim = sim(30);
    sim.set_deployment_ms(Some(300));
    let rt = runtime_client(&sim, RetryConfig::disabled()).await;
    let model = custom_model(&sim, "rt-student").await;
    let deployment = deploy(&sim, &model, "rt-student-od").await;
    // Creating: ModelNotReadyException (429).
    let e = ask(&rt, &deployment, "hi").await.unwrap_err();
    assert!(e.is_model_not_ready_exception(), "{e:?}");
    // The SDK treats it as retryable: with standard retries, three attempts, then the error.
    let retrying = runtime_client(
        &sim,
        RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)),
    )
    .await;
    let before = sim.calls_of(Operation::Converse).len();
    let e = ask(&retrying, &deployment, "hi").await.unwrap_err();
    assert!(e.is_model_not_ready_exception(), "{e:?}");
    assert_eq!(sim.calls_of(Operation::Converse).len() - before, 3);
    wait_active(&sim, &deployment).await;

    let prompts: Vec<String> = (0..40)
        .map(|i| format!("Customer question {i}: where is my order?"))
        .collect();
    sim.set_student_quality(1.0);
    for p in &prompts {
        let out = ask(&rt, &deployment, p).await.unwrap();
        assert_eq!(text(&out), bedrock_sim::teacher_answer(p));
    }
    sim.set_student_quality(0.0);
    for p in &prompts {
        let out = ask(&rt, &deployment, p).await.unwrap();
        assert_ne!(text(&out), bedrock_sim::teacher_answer(p));
        assert_eq!(text(&out), bedrock_sim::student_answer(p, 0.0));
        assert!(out.metrics().unwrap().latency_ms() < 900);
    }
    // The knob over HTTP, as a stack test changes it.
    let http = reqwest::Client::new();
    let set: Value = http
        .put(format!("{}/_sim/runtime", sim.endpoint()))
        .json(&json!({"studentQuality": 0.5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["studentQuality"], 0.5);
    assert_eq!(sim.student_quality(), 0.5);
    let bad = http
        .put(format!("{}/_sim/runtime", sim.endpoint()))
        .json(&json!({"studentQuality": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let agreeing = prompts
        .iter()
        .filter(|p| bedrock_sim::student_agrees(p, 0.5))
        .count();
    let mut matched = 0;
    for p in &prompts {
        if text(&ask(&rt, &deployment, p).await.unwrap()) == bedrock_sim::teacher_answer(p) {
            matched += 1;
        }
    }
    assert_eq!(matched, agreeing);
    assert!((8..=32).contains(&matched), "{matched} of 40 at 0.5");

    // A Provisioned Throughput of the custom model answers the same way once InService.
    let pt = client(&sim)
        .await
        .create_provisioned_model_throughput()
        .provisioned_model_name("rt-student-pt")
        .model_id(&model)
        .model_units(1)
        .send()
        .await
        .unwrap()
        .provisioned_model_arn()
        .to_string();
    let e = ask(&rt, &pt, "hi").await.unwrap_err();
    assert!(e.is_model_not_ready_exception(), "{e:?}");
    tokio::time::sleep(Duration::from_millis(60)).await;
    let out = ask(&rt, &pt, &prompts[0]).await.unwrap();
    assert_eq!(text(&out), bedrock_sim::student_answer(&prompts[0], 0.5));
    // A custom model ARN itself is not invocable.
    let e = ask(&rt, &model, "hi").await.unwrap_err();
    assert!(e.is_validation_exception(), "{e:?}");
    // A Failed deployment cannot answer: ValidationException (it will never be ready).
    sim.set_deployment_ms(Some(20));
    sim.fail_next_deployments(1, "no capacity");
    let failed = deploy(&sim, &model, "rt-student-failed").await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let e = ask(&rt, &failed, "hi").await.unwrap_err();
    assert!(e.is_validation_exception(), "{e:?}");
    assert!(
        e.message().unwrap().contains("its status is Failed"),
        "{e:?}"
    );
    // A deleted deployment is gone.
    client(&sim)
        .await
        .delete_custom_model_deployment()
        .custom_model_deployment_identifier(&deployment)
        .send()
        .await
        .unwrap();
    let e = ask(&rt, &deployment, "hi").await.unwrap_err();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_and_model_errors_are_typed() {
    let sim = sim(30);
    // Retries off: the throttle reaches the caller as ThrottlingException (429).
    let rt = runtime_client(&sim, RetryConfig::disabled()).await;
    sim.throttle_next_of(Operation::Converse, 1);
    let e = ask(&rt, TEACHER, "hi").await.unwrap_err();
    assert!(e.is_throttling_exception(), "{e:?}");
    // A control-plane throttle does not touch the runtime.
    sim.throttle_next_of(Operation::GetModelCustomizationJob, 1);
    ask(&rt, TEACHER, "hi").await.unwrap();
    sim.clear_faults();
    sim.clear_calls();
    // Standard retries (3 attempts): two throttles, then the answer.
    let retrying = runtime_client(
        &sim,
        RetryConfig::standard().with_initial_backoff(Duration::from_millis(5)),
    )
    .await;
    sim.throttle_next_of(Operation::Converse, 2);
    let out = ask(&retrying, TEACHER, "hi").await.unwrap();
    assert_eq!(text(&out), bedrock_sim::teacher_answer("hi"));
    let statuses: Vec<u16> = sim
        .calls_of(Operation::Converse)
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [429, 429, 200]);

    // ModelErrorException (424) with the model named.
    sim.model_error_next(1);
    let e = ask(&rt, TEACHER, "hi").await.unwrap_err();
    let ConverseError::ModelErrorException(m) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(m.original_status_code(), Some(500));
    assert_eq!(m.resource_name(), Some(TEACHER));
    assert_eq!(e.code(), Some("ModelErrorException"));
    // Over HTTP too.
    let http = reqwest::Client::new();
    let added = http
        .post(format!("{}/_sim/faults", sim.endpoint()))
        .json(&json!({"kind": "modelError", "count": 1, "message": "boom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let e = ask(&rt, TEACHER, "hi").await.unwrap_err();
    assert!(e.is_model_error_exception());
    assert_eq!(e.message(), Some("boom"));
    ask(&rt, TEACHER, "hi").await.unwrap();
}

/// Judges one prompt both ways through the runtime, as the evaluator will.
async fn judge_both(
    rt: &Runtime,
    judge: &str,
    prompt: &str,
    student: &str,
    teacher: &str,
) -> RecordResult {
    let first = JudgeRequest::student_first(prompt, student, teacher);
    let mut replies = Vec::new();
    for request in [first.clone(), first.swapped()] {
        let out = rt
            .converse()
            .model_id(judge)
            .system(SystemContentBlock::Text(RUBRIC.into()))
            .messages(user(&request.user_message()))
            .inference_config(
                InferenceConfiguration::builder()
                    .max_tokens(200)
                    .temperature(0.0)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        replies.push(parse_judge_reply(&text(&out)).unwrap());
    }
    let b = replies.pop().unwrap();
    let a = replies.pop().unwrap();
    let answer = |t: &str| Answer {
        text: t.into(),
        latency_ms: 0,
        output_tokens: 0,
    };
    RecordResult::score(
        0,
        prompt.into(),
        None,
        answer(student),
        answer(teacher),
        a,
        b,
    )
}

#[tokio::test]
async fn the_judge_follows_the_rubric_and_the_knob_decides_the_gate() {
    let sim = sim(30);
    sim.set_deployment_ms(Some(30));
    let rt = runtime_client(&sim, RetryConfig::disabled()).await;
    let model = custom_model(&sim, "rt-judged").await;
    let deployment = deploy(&sim, &model, "rt-judged-od").await;
    wait_active(&sim, &deployment).await;

    // One prompt: a weak student answer loses both orders; the teacher's own answer ties.
    let prompt = "Summarize the refund policy for annual plans";
    let teacher = bedrock_sim::teacher_answer(prompt);
    let weak = bedrock_sim::student_answer(prompt, 0.0);
    let r = judge_both(&rt, TEACHER, prompt, &weak, &teacher).await;
    assert_eq!(r.student_as_a.verdict.as_str(), "B");
    assert_eq!(r.student_as_b.verdict.as_str(), "A");
    assert_eq!(r.outcome, Outcome::Loss);
    assert!(r.judge_reason().contains("covers more of the request"));
    let r = judge_both(&rt, TEACHER, prompt, &teacher, &teacher).await;
    assert_eq!(
        combine(r.student_as_a.verdict, r.student_as_b.verdict),
        Outcome::Tie
    );
    let judged = sim
        .calls_of(Operation::Converse)
        .iter()
        .filter(|c| c.field("answeredAs") == Some("judge"))
        .count();
    assert_eq!(judged, 4);

    // Whole evaluations: 60 prompts through student, teacher and the judge, at two knob settings.
    let limits = Limits::builtin();
    for (quality, should_pass) in [(0.95, true), (0.2, false)] {
        sim.set_student_quality(quality);
        let mut results = Vec::new();
        for i in 0..60 {
            let p = format!("Held-out prompt {i}: how do I change my billing address?");
            let s = ask(&rt, &deployment, &p).await.unwrap();
            let t = ask(&rt, TEACHER, &p).await.unwrap();
            let mut r = judge_both(&rt, TEACHER, &p, &text(&s), &text(&t)).await;
            r.index = i;
            r.student.latency_ms = s.metrics().unwrap().latency_ms() as u64;
            r.teacher.latency_ms = t.metrics().unwrap().latency_ms() as u64;
            results.push(r);
        }
        let d = decide(&results, 0.7, "the test", &limits).unwrap();
        assert_eq!(d.passed, should_pass, "quality {quality}: {}", d.describe());
        assert_eq!(
            d.summary.wins, 0,
            "the simulated student never beats its teacher"
        );
        assert!(d.summary.student_mean_latency_ms < d.summary.teacher_mean_latency_ms);
        assert!(
            (d.summary.score - quality).abs() < 0.2,
            "{quality}: {}",
            d.summary.score
        );
    }
}
