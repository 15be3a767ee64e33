//! sfn-local driven by the real `aws-sdk-sfn` client (the one the Lambdas use): every callback
//! operation, every error the model lists for them mapped to the SDK's typed error, the model's
//! length limits, the deadlines it enforces, and its local control API.

use std::time::Duration;

use aws_sdk_sfn::error::ProvideErrorMetadata;
use aws_sdk_sfn::Client;
use distillery_test_support::sfn_local::SfnLocal;
use serde_json::{json, Value};

struct Local {
    _server: SfnLocal,
    url: String,
    sfn: Client,
    http: reqwest::Client,
}

async fn start() -> Local {
    let server = SfnLocal::bind(0).await.unwrap();
    let url = server.base_url();
    let cfg = distillery_test_support::sdk_config(&url).await;
    Local {
        sfn: Client::new(&cfg),
        http: reqwest::Client::new(),
        url,
        _server: server,
    }
}

/// A token shaped like Step Functions' (long base64).
fn token(n: u32) -> String {
    format!("AQCEAAAAKgAAAAMAAAAAAAAAAT{n:08}QW5fZXhhbXBsZV90b2tlbl9mb3JfdGVzdHM=")
}

impl Local {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn register(&self, body: Value) {
        let (status, _) = self.post("/local/tasks", body).await;
        assert_eq!(status, 201);
    }

    async fn wait(&self, token: &str, wait_ms: u64) -> Value {
        let (status, v) = self
            .post(
                "/local/tasks/wait",
                json!({"taskToken": token, "waitMs": wait_ms}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    async fn calls(&self) -> Vec<Value> {
        self.http
            .get(format!("{}/local/calls", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn success_reaches_the_waiter_and_closes_the_task() {
    let l = start().await;
    let t = token(1);
    l.register(json!({"taskToken": t, "execution": "exec-1", "state": "WaitForJob"}))
        .await;
    assert_eq!(l.wait(&t, 10).await["status"], "OPEN");

    let waiter = {
        let (http, url, t) = (l.http.clone(), l.url.clone(), t.clone());
        tokio::spawn(async move {
            http.post(format!("{url}/local/tasks/wait"))
                .json(&json!({"taskToken": t, "waitMs": 5000}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    l.sfn
        .send_task_success()
        .task_token(&t)
        .output(r#"{"status":"Completed"}"#)
        .send()
        .await
        .expect("SendTaskSuccess");
    let done = waiter.await.unwrap();
    assert_eq!(done["status"], "SUCCEEDED");
    assert_eq!(done["output"], r#"{"status":"Completed"}"#);
    assert_eq!(done["execution"], "exec-1");

    // The task is closed: every later call is TaskTimedOut, as AWS answers for a closed task.
    let again = l
        .sfn
        .send_task_success()
        .task_token(&t)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert!(
        again.as_service_error().unwrap().is_task_timed_out(),
        "{again:?}"
    );
    let fail = l
        .sfn
        .send_task_failure()
        .task_token(&t)
        .send()
        .await
        .unwrap_err();
    assert!(fail.as_service_error().unwrap().is_task_timed_out());
    let beat = l
        .sfn
        .send_task_heartbeat()
        .task_token(&t)
        .send()
        .await
        .unwrap_err();
    assert!(beat.as_service_error().unwrap().is_task_timed_out());

    let calls = l.calls().await;
    let ops: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c["op"].as_str().unwrap(), c["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        ops,
        [
            ("SendTaskSuccess", "ok"),
            ("SendTaskSuccess", "TaskTimedOut"),
            ("SendTaskFailure", "TaskTimedOut"),
            ("SendTaskHeartbeat", "TaskTimedOut"),
        ]
    );
    assert_eq!(calls[0]["taskToken"], t.as_str());
    assert_eq!(calls[0]["output"], r#"{"status":"Completed"}"#);
    assert!(calls[0]["time"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn failure_carries_error_and_cause() {
    let l = start().await;
    let t = token(2);
    l.register(json!({"taskToken": t})).await;
    l.sfn
        .send_task_failure()
        .task_token(&t)
        .error("Bedrock.JobFailed")
        .cause("the job failed")
        .send()
        .await
        .expect("SendTaskFailure");
    let v = l.wait(&t, 1000).await;
    assert_eq!(v["status"], "FAILED");
    assert_eq!(v["error"], "Bedrock.JobFailed");
    assert_eq!(v["cause"], "the job failed");
    let calls = l.calls().await;
    assert_eq!(calls[0]["error"], "Bedrock.JobFailed");
    assert_eq!(calls[0]["cause"], "the job failed");

    // Neither error nor cause is required.
    let t2 = token(3);
    l.register(json!({"taskToken": t2})).await;
    l.sfn
        .send_task_failure()
        .task_token(&t2)
        .send()
        .await
        .unwrap();
    let v = l.wait(&t2, 1000).await;
    assert_eq!(v["status"], "FAILED");
    assert!(v.get("error").is_none());
}

#[tokio::test]
async fn timeout_closes_the_task() {
    let l = start().await;
    let t = token(4);
    l.register(json!({"taskToken": t, "timeoutMs": 150})).await;
    let v = l.wait(&t, 5000).await;
    assert_eq!(v["status"], "TIMED_OUT");
    let e = l
        .sfn
        .send_task_success()
        .task_token(&t)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_task_timed_out());
}

#[tokio::test]
async fn heartbeats_keep_a_task_open_until_they_stop() {
    let l = start().await;
    let t = token(5);
    l.register(json!({"taskToken": t, "heartbeatMs": 300, "timeoutMs": 10000}))
        .await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        l.sfn
            .send_task_heartbeat()
            .task_token(&t)
            .send()
            .await
            .expect("SendTaskHeartbeat");
    }
    // 600 ms of beats past a 300 ms heartbeat interval: still open.
    let v = l.wait(&t, 0).await;
    assert_eq!(v["status"], "OPEN");
    assert_eq!(v["heartbeats"], 4);
    let v = l.wait(&t, 5000).await;
    assert_eq!(v["status"], "HEARTBEAT_TIMED_OUT");
    let e = l
        .sfn
        .send_task_heartbeat()
        .task_token(&t)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_task_timed_out());
}

#[tokio::test]
async fn close_times_the_task_out_but_keeps_an_outcome() {
    let l = start().await;
    let t = token(6);
    l.register(json!({"taskToken": t})).await;
    let (s, v) = l.post("/local/tasks/close", json!({"taskToken": t})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("TIMED_OUT")));
    let e = l
        .sfn
        .send_task_success()
        .task_token(&t)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_task_timed_out());

    let t2 = token(7);
    l.register(json!({"taskToken": t2})).await;
    l.sfn
        .send_task_success()
        .task_token(&t2)
        .output("1")
        .send()
        .await
        .unwrap();
    let (_, v) = l.post("/local/tasks/close", json!({"taskToken": t2})).await;
    assert_eq!(v["status"], "SUCCEEDED");

    let (s, _) = l.post("/local/tasks", json!({"taskToken": t2})).await;
    assert_eq!(s, 409, "a token is registered once");
    let (s, _) = l
        .post("/local/tasks/wait", json!({"taskToken": token(99)}))
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn unknown_and_malformed_tokens() {
    let l = start().await;
    let e = l
        .sfn
        .send_task_success()
        .task_token(token(8))
        .output("{}")
        .send()
        .await
        .unwrap_err();
    let se = e.as_service_error().unwrap();
    assert!(se.is_task_does_not_exist(), "{e:?}");
    let e = l
        .sfn
        .send_task_heartbeat()
        .task_token(token(8))
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_task_does_not_exist());
    let e = l
        .sfn
        .send_task_failure()
        .task_token(token(8))
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_task_does_not_exist());

    for bad in ["not a token!", "{\"json\":1}", "tok\u{e9}n"] {
        let e = l
            .sfn
            .send_task_success()
            .task_token(bad)
            .output("{}")
            .send()
            .await
            .unwrap_err();
        assert!(
            e.as_service_error().unwrap().is_invalid_token(),
            "{bad}: {e:?}"
        );
        let e = l
            .sfn
            .send_task_heartbeat()
            .task_token(bad)
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_invalid_token());
        let e = l
            .sfn
            .send_task_failure()
            .task_token(bad)
            .send()
            .await
            .unwrap_err();
        assert!(e.as_service_error().unwrap().is_invalid_token());
    }
}

#[tokio::test]
async fn output_must_be_json() {
    let l = start().await;
    let t = token(9);
    l.register(json!({"taskToken": t})).await;
    for bad in ["", "not json", "{\"a\":", "{} {}"] {
        let e = l
            .sfn
            .send_task_success()
            .task_token(&t)
            .output(bad)
            .send()
            .await
            .unwrap_err();
        assert!(
            e.as_service_error().unwrap().is_invalid_output(),
            "{bad:?}: {e:?}"
        );
    }
    // The rejected sends left the task open.
    assert_eq!(l.wait(&t, 0).await["status"], "OPEN");
    for good in ["null", "\"text\"", "[1,2]", " {\"a\": 1} "] {
        let t = format!("{t}{}", good.len());
        l.register(json!({"taskToken": t})).await;
        l.sfn
            .send_task_success()
            .task_token(&t)
            .output(good)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{good:?}: {e:?}"));
    }
}

/// The code the SDK read from the error (`ValidationException` is not modelled for these operations,
/// so it arrives as an unhandled error that still carries its code).
fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or_default().to_string()
}

#[tokio::test]
async fn length_limits_from_the_model() {
    let l = start().await;
    // taskToken: 1..=2048.
    let longest = "A".repeat(2048);
    let e = l
        .sfn
        .send_task_heartbeat()
        .task_token(&longest)
        .send()
        .await
        .unwrap_err();
    assert!(
        e.as_service_error().unwrap().is_task_does_not_exist(),
        "2048 is allowed"
    );
    let e = l
        .sfn
        .send_task_heartbeat()
        .task_token("A".repeat(2049))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException", "{e:?}");
    let e = l
        .sfn
        .send_task_heartbeat()
        .task_token("")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException", "{e:?}");

    // output: at most 262144 bytes of UTF-8.
    let t = token(10);
    l.register(json!({"taskToken": t})).await;
    let big = |n: usize| format!("\"{}\"", "x".repeat(n - 2));
    let e = l
        .sfn
        .send_task_success()
        .task_token(&t)
        .output(big(262_145))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    // Multi-byte characters count as their bytes: 87382 three-byte characters are 262146 bytes.
    let wide = format!("\"{}\"", "\u{20ac}".repeat(87_382));
    assert!(wide.chars().count() < 262_144 && wide.len() > 262_144);
    let e = l
        .sfn
        .send_task_success()
        .task_token(&t)
        .output(wide)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    l.sfn
        .send_task_success()
        .task_token(&t)
        .output(big(262_144))
        .send()
        .await
        .expect("262144 bytes are allowed");

    // error <= 256, cause <= 32768 characters.
    let t = token(11);
    l.register(json!({"taskToken": t})).await;
    let e = l
        .sfn
        .send_task_failure()
        .task_token(&t)
        .error("E".repeat(257))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let e = l
        .sfn
        .send_task_failure()
        .task_token(&t)
        .cause("c".repeat(32_769))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert!(e.message().unwrap().contains("'cause'"), "{e:?}");
    l.sfn
        .send_task_failure()
        .task_token(&t)
        .error("E".repeat(256))
        .cause("c".repeat(32_768))
        .send()
        .await
        .expect("the limits themselves are allowed");
    let v = l.wait(&t, 0).await;
    assert_eq!(v["error"].as_str().unwrap().len(), 256);
}

#[tokio::test]
async fn other_operations_are_refused() {
    let l = start().await;
    let e = l.sfn.list_state_machines().send().await.unwrap_err();
    assert_eq!(code(&e), "UnknownOperationException", "{e:?}");
}

#[tokio::test]
async fn error_wire_shape() {
    let l = start().await;
    let r = l
        .http
        .post(&l.url)
        .header("x-amz-target", "AWSStepFunctions.SendTaskHeartbeat")
        .header("content-type", "application/x-amz-json-1.0")
        .body(json!({"taskToken": token(12)}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/x-amz-json-1.0"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["__type"],
        "com.amazonaws.swf.service.v2.model#TaskDoesNotExist"
    );
    assert!(v["message"].is_string());
}
