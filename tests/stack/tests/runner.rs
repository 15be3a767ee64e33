//! The ASL runner (tests/stack/runner/run-execution.mjs) on a tiny definition with a
//! `lambda:invoke.waitForTaskToken` Task, end to end: the runner on Node 22, sfn-local in this
//! process, and a stand-in Lambda Invoke API whose "function" answers its task token through the
//! real `aws-sdk-sfn` client, as the deployed Lambdas will. Needs no local stack (only
//! node_modules, from scripts/bootstrap.sh).

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sfn::error::ProvideErrorMetadata;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use distillery_local_stack::repo_root;
use distillery_test_support::sfn_local::SfnLocal;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

/// `Pause` (a Wait with SecondsPath) then `AwaitJob` (waitForTaskToken; TimeoutSeconds from a
/// substitution, HeartbeatSecondsPath from the input). A Catch sends task failures to
/// `HandleFailure` and a timeout back into `AwaitJob` itself.
const DEFINITION: &str = r#"{
  "StartAt": "Prepare",
  "States": {
    "Prepare": { "Type": "Pass", "Next": "Pause" },
    "Pause": { "Type": "Wait", "SecondsPath": "$.waitSeconds", "Next": "AwaitJob" },
    "AwaitJob": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
      "Parameters": {
        "FunctionName": "${WorkerFunctionArn}",
        "Payload": { "mode.$": "$.mode", "label": "${Label}", "taskToken.$": "$$.Task.Token" }
      },
      "TimeoutSeconds": ${CallbackTimeoutSeconds},
      "HeartbeatSecondsPath": "$.heartbeatSeconds",
      "ResultPath": "$.job",
      "Retry": [ { "ErrorEquals": ["Retryable"], "MaxAttempts": 1, "IntervalSeconds": 1 } ],
      "Catch": [
        { "ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "HandleFailure" },
        { "ErrorEquals": ["States.Timeout"], "ResultPath": "$.timedOut", "Next": "AwaitJob" }
      ],
      "Next": "Done"
    },
    "HandleFailure": { "Type": "Pass", "End": true },
    "Done": { "Type": "Succeed" }
  }
}"#;

#[derive(Default)]
struct Worker {
    /// Invocations per mode.
    calls: HashMap<String, u32>,
    /// (mode, label, token) of every invocation.
    payloads: Vec<(String, String, String)>,
}

struct Fixture {
    _sfn_local: SfnLocal,
    sfn_url: String,
    sfn: aws_sdk_sfn::Client,
    lambda_url: String,
    worker: Arc<Mutex<Worker>>,
    _lambda: tokio::task::JoinHandle<()>,
}

async fn fixture() -> Fixture {
    let sfn_local = SfnLocal::bind(0).await.unwrap();
    let sfn_url = sfn_local.base_url();
    let sfn = aws_sdk_sfn::Client::new(&distillery_test_support::sdk_config(&sfn_url).await);
    let worker: Arc<Mutex<Worker>> = Arc::default();
    let app = Router::new()
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(invoke_worker),
        )
        .with_state((worker.clone(), sfn.clone()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let lambda_url = format!("http://{}", listener.local_addr().unwrap());
    let lambda = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fixture {
        _sfn_local: sfn_local,
        sfn_url,
        sfn,
        lambda_url,
        worker,
        _lambda: lambda,
    }
}

/// The stand-in function `worker`: how it answers its token depends on `mode` (and on how many
/// times it was invoked in that mode).
async fn invoke_worker(
    State((worker, sfn)): State<(Arc<Mutex<Worker>>, aws_sdk_sfn::Client)>,
    Path(name): Path<String>,
    Json(payload): Json<Value>,
) -> axum::response::Response {
    assert_eq!(
        name, "worker",
        "FunctionName resolves to the function's name"
    );
    let mode = payload["mode"].as_str().unwrap_or_default().to_string();
    let token = payload["taskToken"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let n = {
        let mut w = worker.lock().unwrap();
        w.payloads.push((
            mode.clone(),
            payload["label"].as_str().unwrap_or_default().to_string(),
            token.clone(),
        ));
        let n = w.calls.entry(mode.clone()).or_default();
        *n += 1;
        *n
    };
    let success = |sfn: aws_sdk_sfn::Client, token: String, n: u32| async move {
        sfn.send_task_success()
            .task_token(token)
            .output(json!({"jobStatus": "Completed", "invocation": n}).to_string())
            .send()
            .await
            .expect("SendTaskSuccess");
    };
    match (mode.as_str(), n) {
        ("succeed", _) | ("timeout-once", 2..) | ("retry-once", 2..) => {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                success(sfn, token, n).await;
            });
        }
        // Answers before the invocation returns: the token must already be registered.
        ("succeed-inline", _) => success(sfn, token, n).await,
        ("fail", _) => {
            tokio::spawn(async move {
                sfn.send_task_failure()
                    .task_token(token)
                    .error("Job.Failed")
                    .cause("the job failed")
                    .send()
                    .await
                    .expect("SendTaskFailure");
            });
        }
        ("timeout-once", 1) | ("silent", _) => {}
        ("retry-once", 1) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [("x-amz-function-error", "Unhandled")],
                Json(json!({"errorType": "Retryable", "errorMessage": "try again"})),
            )
                .into_response()
        }
        ("heartbeat", _) => {
            // Beats every 100 ms for ~1 s, twice the (scaled) 500 ms heartbeat interval.
            tokio::spawn(async move {
                for _ in 0..10 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    sfn.send_task_heartbeat()
                        .task_token(&token)
                        .send()
                        .await
                        .expect("SendTaskHeartbeat");
                }
                success(sfn, token, n).await;
            });
        }
        other => panic!("unknown worker mode {other:?}"),
    }
    Json(Value::Null).into_response()
}

struct Run {
    result: Value,
    events: Vec<Value>,
    tokens: Vec<(String, String)>,
    elapsed: Duration,
}

impl Run {
    fn states_entered(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| e["type"] == "StateEntered")
            .map(|e| e["state"]["name"].as_str().unwrap())
            .collect()
    }
}

async fn run(f: &Fixture, input: Value, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("callback.asl.json");
    std::fs::write(&definition, DEFINITION).unwrap();
    let root = repo_root();
    let node = root.join("node_modules/.bin/node");
    assert!(
        node.exists(),
        "{} is missing: run scripts/bootstrap.sh",
        node.display()
    );
    let started = Instant::now();
    let mut child = tokio::process::Command::new(node)
        .arg(root.join("tests/stack/runner/run-execution.mjs"))
        .arg("--definition")
        .arg(&definition)
        .args(["--invoke-url", &f.lambda_url, "--sfn-url", &f.sfn_url])
        .args(["--substitution", "CallbackTimeoutSeconds=20"])
        .args(["--substitution", "Label=from-a-substitution"])
        .args(["--retry-delay-scale", "0"])
        .args(extra)
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the runner ends")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let result = lines
        .iter()
        .find(|l| l["kind"] == "result")
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "no result (exit {:?}): {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        });
    Run {
        result,
        events: lines
            .iter()
            .filter(|l| l["kind"] == "event")
            .cloned()
            .collect(),
        tokens: lines
            .iter()
            .filter(|l| l["kind"] == "taskToken")
            .map(|l| {
                (
                    l["state"].as_str().unwrap().to_string(),
                    l["taskToken"].as_str().unwrap().to_string(),
                )
            })
            .collect(),
        elapsed: started.elapsed(),
    }
}

fn input(mode: &str) -> Value {
    json!({"mode": mode, "waitSeconds": 0, "heartbeatSeconds": 1000})
}

#[tokio::test]
async fn success_output_is_the_task_result() {
    let f = fixture().await;
    for mode in ["succeed", "succeed-inline"] {
        let r = run(&f, input(mode), &[]).await;
        assert_eq!(r.result["status"], "SUCCEEDED", "{mode}: {}", r.result);
        assert_eq!(
            r.result["output"]["job"],
            json!({"jobStatus": "Completed", "invocation": 1})
        );
        assert_eq!(r.states_entered(), ["Prepare", "Pause", "AwaitJob", "Done"]);
        assert_eq!(r.result["transitions"], 4);
        assert_eq!(r.result["transitionsByState"]["AwaitJob"], 1);
        assert_eq!(r.tokens.len(), 1);
        assert_eq!(r.tokens[0].0, "AwaitJob");
    }
    let w = f.worker.lock().unwrap();
    // The Payload reached the function with the token the runner minted, and the substitution.
    assert_eq!(w.payloads[0].1, "from-a-substitution");
    assert!(w.payloads[0].2.len() > 100, "an opaque AWS-like token");
    assert_ne!(w.payloads[0].2, w.payloads[1].2);
}

#[tokio::test]
async fn failure_is_routed_by_catch() {
    let f = fixture().await;
    let r = run(&f, input("fail"), &[]).await;
    assert_eq!(r.result["status"], "SUCCEEDED", "{}", r.result);
    assert_eq!(
        r.result["output"]["error"],
        json!({"Error": "Job.Failed", "Cause": "the job failed"})
    );
    assert_eq!(
        r.states_entered(),
        ["Prepare", "Pause", "AwaitJob", "HandleFailure"]
    );
    // The task is closed: a second answer gets TaskTimedOut, as from Step Functions.
    let token = &r.tokens[0].1;
    let e = f
        .sfn
        .send_task_success()
        .task_token(token)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_task_timed_out(), "{e:?}");
}

#[tokio::test]
async fn timeout_reenters_the_state_with_a_new_token_under_time_scale() {
    let f = fixture().await;
    // TimeoutSeconds 20 and a 2 s Wait at --time-scale 0.05: 1 s and 100 ms.
    let mut i = input("timeout-once");
    i["waitSeconds"] = json!(2);
    let r = run(&f, i, &["--time-scale", "0.05"]).await;
    assert_eq!(r.result["status"], "SUCCEEDED", "{}", r.result);
    assert_eq!(
        r.states_entered(),
        ["Prepare", "Pause", "AwaitJob", "AwaitJob", "Done"]
    );
    assert_eq!(
        r.result["output"]["timedOut"]["Error"], "States.Timeout",
        "States.TaskFailed (listed first) must not catch a timeout"
    );
    assert_eq!(r.result["output"]["job"]["invocation"], 2);
    assert_eq!(r.result["transitions"], 5);
    assert_eq!(r.result["transitionsByState"]["AwaitJob"], 2);
    assert_eq!(r.tokens.len(), 2);
    assert_ne!(r.tokens[0].1, r.tokens[1].1, "a re-entry gets a new token");
    assert!(
        r.elapsed >= Duration::from_millis(1100) && r.elapsed < Duration::from_secs(10),
        "{:?}",
        r.elapsed
    );
    // The Wait ran as a timer but is still reported as a Wait.
    let pause = r
        .events
        .iter()
        .find(|e| e["type"] == "StateEntered" && e["state"]["name"] == "Pause")
        .unwrap();
    assert_eq!(pause["state"]["type"], "Wait");
    // The timed-out token is closed in sfn-local.
    let e = f
        .sfn
        .send_task_success()
        .task_token(&r.tokens[0].1)
        .output("{}")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("TaskTimedOut"));
}

#[tokio::test]
async fn heartbeats_keep_the_task_alive_and_their_absence_fails_it() {
    let f = fixture().await;
    // HeartbeatSecondsPath 5 s and TimeoutSeconds 20 s at --time-scale 0.1: 500 ms between beats
    // at most, 2 s in all.
    let mut i = input("heartbeat");
    i["heartbeatSeconds"] = json!(5);
    let r = run(&f, i.clone(), &["--time-scale", "0.1"]).await;
    assert_eq!(r.result["status"], "SUCCEEDED", "{}", r.result);
    assert_eq!(r.result["output"]["job"]["jobStatus"], "Completed");

    assert!(r.elapsed >= Duration::from_secs(1), "{:?}", r.elapsed);

    i["mode"] = json!("silent");
    let r = run(&f, i, &["--time-scale", "0.1"]).await;
    // A heartbeat timeout is a task failure (States.TaskFailed matches it).
    assert_eq!(
        r.result["output"]["error"]["Error"],
        "States.HeartbeatTimeout"
    );
    assert_eq!(r.states_entered().last(), Some(&"HandleFailure"));
}

#[tokio::test]
async fn a_retry_gets_a_new_token_and_counts_as_a_transition() {
    let f = fixture().await;
    let r = run(&f, input("retry-once"), &[]).await;
    assert_eq!(r.result["status"], "SUCCEEDED", "{}", r.result);
    assert_eq!(r.result["transitions"], 5, "4 states + 1 retry");
    assert_eq!(r.result["transitionsByState"]["AwaitJob"], 2);
    assert_eq!(r.tokens.len(), 2);
    // The token of the failed invocation was closed.
    let e = f
        .sfn
        .send_task_heartbeat()
        .task_token(&r.tokens[0].1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("TaskTimedOut"));
}

#[tokio::test]
async fn a_placeholder_without_a_value_is_a_usage_error() {
    let f = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let definition = dir.path().join("callback.asl.json");
    std::fs::write(&definition, DEFINITION).unwrap();
    let root = repo_root();
    let out = tokio::process::Command::new(root.join("node_modules/.bin/node"))
        .arg(root.join("tests/stack/runner/run-execution.mjs"))
        .arg("--definition")
        .arg(&definition)
        .args(["--invoke-url", &f.lambda_url, "--sfn-url", &f.sfn_url])
        .args(["--substitution", "Label=x", "--input-file", "/dev/null"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("${CallbackTimeoutSeconds}"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
