//! The `/_sim/...` control endpoints over HTTP, and the `bedrock-sim` binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_bedrock::types::ModelCustomizationJobStatus as Status;
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn faults_calls_timing_and_reset_over_http() {
    let sim = sim(1000);
    let client = client(&sim).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", sim.endpoint());

    let added: Value = http
        .post(url("/_sim/faults"))
        .json(&json!([
            {"kind": "throttle", "count": 1, "operation": "CreateModelCustomizationJob"},
            {"kind": "failJob", "nameContains": "doomed", "message": "Bad teacher output", "phase": "dataProcessing"}
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["active"].as_array().unwrap().len(), 2);

    // A fault the real API cannot produce is refused.
    let refused = http
        .post(url("/_sim/faults"))
        .json(&json!({"kind": "quotaExceeded", "operation": "GetModelCustomizationJob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let refused = http
        .post(url("/_sim/faults"))
        .json(&json!({"kind": "meteor"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    let updated: Value = http
        .put(url("/_sim/timing"))
        .json(&json!({"phaseMs": 40}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["phaseMs"], 40);

    let err = distill(&client, "doomed-1").send().await.unwrap_err();
    assert!(err.as_service_error().unwrap().is_throttling_exception());
    let arn = distill(&client, "doomed-1")
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    let last = poll_job(&client, &arn, Duration::from_secs(10), |o| {
        o.status() != Some(&Status::InProgress)
    })
    .await
    .pop()
    .unwrap();
    assert_eq!(last.status(), Some(&Status::Failed));
    assert_eq!(last.failure_message(), Some("Bad teacher output"));

    let calls: Value = http
        .get(url("/_sim/calls?operation=CreateModelCustomizationJob"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["status"], 429);
    assert_eq!(calls[0]["errorType"], "ThrottlingException");
    assert_eq!(calls[1]["status"], 201);
    assert_eq!(calls[1]["resourceArn"], arn.as_str());
    assert_eq!(calls[1]["request"]["jobName"], "doomed-1");
    assert_eq!(calls[1]["request"]["region"], "us-east-1");

    // Unserved routes answer UnknownOperationException and are logged.
    let unknown = http.get(url("/custom-models")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["x-amzn-errortype"],
        "UnknownOperationException"
    );

    let reset = http.post(url("/_sim/reset")).send().await.unwrap();
    assert_eq!(reset.status(), 204);
    assert!(sim.calls().is_empty());
    assert!(sim.active_faults().is_empty());
    let err = client
        .get_model_customization_job()
        .job_identifier(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(err
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());
}

#[tokio::test]
async fn errors_carry_the_error_type_header_and_a_json_message() {
    let sim = sim(1000);
    let response = reqwest::Client::new()
        .post(format!("{}/model-customization-jobs", sim.endpoint()))
        .header("content-type", "application/json")
        .body(r#"{"jobName": "bad_name"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "ValidationException"
    );
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body: Value = response.json().await.unwrap();
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with("6 validation errors detected:"),
        "{message}"
    );

    let response = reqwest::Client::new()
        .post(format!("{}/model-customization-jobs", sim.endpoint()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["x-amzn-errortype"],
        "SerializationException"
    );
}

/// Kills the child on drop so a failing assertion never leaves a simulator running.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prints_its_endpoint_and_serves_the_sdk() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_bedrock-sim"))
            .args([
                "--port",
                "0",
                "--phase-ms",
                "30",
                "--pt-ms",
                "30",
                "--student-quality",
                "0.25",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bedrock-sim"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrock::config::Credentials::new(
            "t", "t", None, None, "t",
        ))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let client = aws_sdk_bedrock::Client::new(&config);
    let arn = distill(&client, "from-binary")
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    let last = poll_job(&client, &arn, Duration::from_secs(10), |o| {
        o.status() == Some(&Status::Completed)
    })
    .await
    .pop()
    .unwrap();
    assert!(last.output_model_arn().is_some());

    let health: Value = reqwest::get(format!("{endpoint}/_sim/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["timing"]["phaseMs"], 30);
    assert_eq!(health["runtime"]["studentQuality"], 0.25);
    assert!(health["operations"]
        .as_array()
        .unwrap()
        .contains(&Value::from("Converse")));

    // The runtime on the same port, as AWS_ENDPOINT_URL_BEDROCK_RUNTIME reaches it.
    let runtime = aws_sdk_bedrockruntime::Client::new(&config);
    let out = runtime
        .converse()
        .model_id(TEACHER)
        .messages(
            aws_sdk_bedrockruntime::types::Message::builder()
                .role(aws_sdk_bedrockruntime::types::ConversationRole::User)
                .content(aws_sdk_bedrockruntime::types::ContentBlock::Text(
                    "ping".into(),
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(out.usage().unwrap().output_tokens() > 0);
}

#[test]
fn the_binary_refuses_a_student_quality_outside_0_to_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_bedrock-sim"))
        .args(["--port", "0", "--student-quality", "1.5"])
        .output()
        .expect("run bedrock-sim");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--student-quality must be from 0 to 1, got 1.5"),
        "{stderr}"
    );
}
