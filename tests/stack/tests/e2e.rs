//! End-to-end tests: a real PutObject to moto → EventBridge → SQS → the real state machine
//! (aws-local-stepfunctions) → the five real Lambda binaries (cargo lambda watch) → moto and the
//! Bedrock simulator. Each test asserts on the run ledger, on the messages delivered (SNS through its
//! SQS subscription, Slack through the sink) and on the simulator's record of Bedrock calls.
//!
//! They need the local stack and share its fakes, so they are `#[ignore]`d for a plain `cargo test`
//! and run one at a time by `make e2e` (part of `make test`), which starts and stops the stack:
//! `tests/stack/with-stack.sh cargo test -p distillery-local-stack --test e2e -- --ignored --test-threads=1`.

use std::collections::BTreeSet;

use distillery_core::domain::run::{Run, RunId, RunStatus};
use distillery_local_stack::{repo_root, Execution, SnsDelivery, Stack};
use serde_json::{json, Value};

// Issue 10, point 2 (no paid job abandoned; the reconciler), in its own file.
#[path = "e2e/tracking.rs"]
mod tracking;

// Issue 12: Provisioned Throughput that expires, `runs retire` and `runs extend`.
#[path = "e2e/expiry.rs"]
mod expiry;

// Issue 11's local Step Functions side: sfn-local in the stack, reachable as the Lambdas reach it.
#[path = "e2e/sfn_local.rs"]
mod sfn_local;

const NEEDS_STACK: &str = "needs the local stack: run `make e2e`";

fn sample_dataset() -> Vec<u8> {
    std::fs::read(repo_root().join("examples/datasets/support-tickets.jsonl"))
        .expect("sample dataset")
}

/// A key no earlier test (or earlier run of the suite on the same stack) used.
fn unique_key(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("incoming/e2e-{nanos}/{name}.jsonl")
}

async fn stack() -> Stack {
    let s = Stack::connect().await.expect("local stack");
    s.reset_fakes()
        .await
        .expect("reset the simulator and the sink");
    s.take_sns_deliveries().await.expect("drain SNS");
    s
}

fn run_id(ex: &Execution) -> RunId {
    ex.run_id().unwrap_or_else(|| {
        panic!(
            "the validator returned no runId; states {:?}, error {:?}: {:?}",
            ex.states_entered(),
            ex.error,
            ex.cause
        )
    })
}

/// Bedrock calls the simulator answered, by operation: (answered 2xx, failed).
fn calls_of(calls: &[Value], op: &str) -> (Vec<Value>, Vec<Value>) {
    calls
        .iter()
        .filter(|c| c["operation"] == op)
        .cloned()
        .partition(|c| c["status"].as_u64().is_some_and(|s| s < 300))
}

/// SNS messages about `run`: by the `run_id` message attribute.
async fn sns_for(stack: &Stack, run: &RunId) -> Vec<SnsDelivery> {
    // The topic fans out to SQS synchronously in moto; a short pause covers a slow first delivery.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stack
        .take_sns_deliveries()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.attributes.get("run_id").map(String::as_str) == Some(run.as_str()))
        .collect()
}

fn milestones(msgs: &[SnsDelivery]) -> Vec<String> {
    msgs.iter()
        .map(|m| m.attributes.get("event_type").cloned().unwrap_or_default())
        .collect()
}

/// Slack payloads that mention `needle` (the job name or run id).
async fn slack_mentioning(stack: &Stack, needle: &str) -> Vec<Value> {
    stack
        .slack_messages()
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.to_string().contains(needle))
        .collect()
}

fn delivered(run: &Run, milestone: &str, channel: &str) -> Option<bool> {
    run.deliveries
        .iter()
        .rev()
        .find(|d| d.milestone == milestone && d.channel == channel)
        .map(|d| d.delivered)
}

fn explain(ex: &Execution) -> String {
    format!(
        "execution {} ({:?}: {:?}); states {:?}",
        ex.status,
        ex.error,
        ex.cause,
        ex.states_entered()
    )
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn happy_path_with_provisioning_ends_ready() {
    let stack = stack().await;
    let key = unique_key("support-tickets");
    let (event, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[("distillery-serving", "provisioned")],
        )
        .await
        .expect(NEEDS_STACK);
    assert_eq!(
        event["source"], "aws.s3",
        "the execution input is the EventBridge event"
    );
    assert!(ex.succeeded(), "{}", explain(&ex));
    let states = ex.states_entered();
    for s in [
        "ValidateDataset",
        "LaunchJob",
        "NotifyLaunched",
        "WaitForJobEvent",
        "ProvisionThroughput",
        "NotifyReady",
        "Ready",
    ] {
        assert!(
            states.contains(&s.to_string()),
            "{s} not entered: {states:?}"
        );
    }

    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready);
    assert!(
        run.job_arn.is_some() && run.custom_model_arn.is_some(),
        "{run:?}"
    );
    let pt_arn = run
        .provisioned_model_arn
        .clone()
        .expect("provisioned model ARN recorded");
    assert!(pt_arn.starts_with("arn:aws:bedrock:"), "{pt_arn}");
    let statuses: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
    for s in [
        RunStatus::Validated,
        RunStatus::Training,
        RunStatus::Completed,
        RunStatus::Provisioning,
        RunStatus::Ready,
    ] {
        assert!(statuses.contains(&s), "history lacks {s}: {statuses:?}");
    }

    let calls = stack.bedrock_calls().await.unwrap();
    let (jobs, _) = calls_of(&calls, "CreateModelCustomizationJob");
    assert_eq!(jobs.len(), 1, "exactly one job: {jobs:?}");
    let (pts, _) = calls_of(&calls, "CreateProvisionedModelThroughput");
    assert_eq!(pts.len(), 1, "exactly one Provisioned Throughput: {pts:?}");

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "ready"], "{sns:?}");
    assert!(
        sns[1].message.contains(&pt_arn),
        "the ready message names the provisioned model: {}",
        sns[1].message
    );
    assert_eq!(
        slack_mentioning(&stack, id.as_str()).await.len(),
        2,
        "Slack got launched + ready"
    );
    assert_eq!(delivered(&run, "ready", "sns"), Some(true));
    assert_eq!(delivered(&run, "ready", "slack"), Some(true));
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn without_provisioning_ends_completed() {
    let stack = stack().await;
    let key = unique_key("support-tickets");
    let (_, ex) = stack
        .upload_and_run(&key, sample_dataset(), &[("distillery-serving", "none")])
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    assert_eq!(
        ex.states_entered().last().map(String::as_str),
        Some("Completed")
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(
        run.custom_model_arn.is_some() && run.provisioned_model_arn.is_none(),
        "{run:?}"
    );
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateModelCustomizationJob").0.len(), 1);
    assert!(
        calls_of(&calls, "CreateProvisionedModelThroughput")
            .0
            .is_empty(),
        "nothing bought"
    );
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"]
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn invalid_dataset_is_rejected_with_a_line_numbered_report_and_no_bedrock_call() {
    let stack = stack().await;
    let body = std::fs::read(repo_root().join("examples/datasets/invalid-tickets.jsonl")).unwrap();
    let key = unique_key("invalid-tickets");
    let (_, ex) = stack
        .upload_and_run(&key, body, &[])
        .await
        .expect(NEEDS_STACK);
    assert!(!ex.succeeded());
    assert_eq!(
        ex.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex)
    );
    assert!(ex.states_entered().contains(&"NotifyRejected".to_string()));

    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Rejected);
    let v = run.validation.clone().expect("validation summary");
    assert!(!v.valid && v.invalid_records >= 3, "{v:?}");
    let uri = v.report_uri.clone().expect("report URI");
    let report: Value =
        serde_json::from_slice(&stack.read_s3_uri(&uri).await.unwrap()).expect("report is JSON");
    // The broken records are on lines 4 (truncated JSON), 8 (starts with assistant) and 13
    // (misspelt schemaVersion).
    let text = report.to_string();
    let lines: BTreeSet<u64> = collect_numbers(&report, "line");
    for l in [4, 8, 13] {
        assert!(lines.contains(&l), "report lacks line {l}: {text}");
    }

    assert!(
        stack.bedrock_calls().await.unwrap().is_empty(),
        "no Bedrock call for a rejected dataset"
    );
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["rejected"]);
}

/// Every number under a key named `key`, anywhere in `v`.
fn collect_numbers(v: &Value, key: &str) -> BTreeSet<u64> {
    let mut out = BTreeSet::new();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    if let Some(n) = x.as_u64() {
                        out.insert(n);
                    }
                }
                out.extend(collect_numbers(x, key));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| out.extend(collect_numbers(x, key))),
        _ => {}
    }
    out
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn duplicate_and_concurrent_deliveries_start_exactly_one_job() {
    let stack = stack().await;
    let key = unique_key("support-tickets");
    let event = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    // Two executions for the same object at once, then the same event delivered again.
    let (a, b) = tokio::join!(stack.run_execution(&event), stack.run_execution(&event));
    let (a, b) = (a.unwrap(), b.unwrap());
    let again = stack.run_execution(&event).await.unwrap();

    let all = [&a, &b, &again];
    let launched = all
        .iter()
        .filter(|e| e.states_entered().contains(&"LaunchJob".to_string()))
        .count();
    let duplicates = all
        .iter()
        .filter(|e| e.states_entered().last().map(String::as_str) == Some("Duplicate"))
        .count();
    assert_eq!(
        launched,
        1,
        "one execution launches: {:?}",
        all.map(|e| e.states_entered())
    );
    assert_eq!(
        duplicates,
        2,
        "the others end quietly as duplicates: {:?}",
        all.map(|e| e.states_entered())
    );
    for e in all {
        assert!(e.succeeded(), "{}", explain(e));
    }
    let ids: BTreeSet<String> = all.iter().map(|e| run_id(e).0).collect();
    assert_eq!(ids.len(), 1, "one run id for one object version: {ids:?}");

    let calls = stack.bedrock_calls().await.unwrap();
    let (jobs, _) = calls_of(&calls, "CreateModelCustomizationJob");
    assert_eq!(jobs.len(), 1, "exactly one job: {jobs:?}");
    let id = RunId(ids.into_iter().next().unwrap());
    assert_eq!(stack.run(&id).await.unwrap().status, RunStatus::Completed);
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"],
        "announced once"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn bedrock_job_failure_is_notified_with_bedrocks_message() {
    let stack = stack().await;
    let message = "Training failed: the teacher returned no usable responses (e2e injected)";
    stack
        .bedrock_faults(
            &json!({"kind": "failJob", "count": 1, "message": message, "phase": "training"}),
        )
        .await
        .unwrap();
    let key = unique_key("support-tickets");
    let (_, ex) = stack
        .upload_and_run(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    assert_eq!(ex.error.as_deref(), Some("JobFailed"), "{}", explain(&ex));
    assert!(ex.states_entered().contains(&"NotifyJobFailed".to_string()));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains(message),
        "failure reason has Bedrock's message: {reason}"
    );
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "failed"]);
    assert!(
        sns[1].message.contains(message),
        "SNS carries Bedrock's message: {}",
        sns[1].message
    );
    let slack = slack_mentioning(&stack, id.as_str()).await;
    assert_eq!(slack.len(), 2, "Slack got launched + failed");
    assert!(
        slack[1].to_string().contains(message),
        "Slack carries Bedrock's message: {}",
        slack[1]
    );
    let calls = stack.bedrock_calls().await.unwrap();
    assert!(calls_of(&calls, "CreateProvisionedModelThroughput")
        .0
        .is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn throttling_is_retried_and_quota_refusals_queue_the_run_until_it_launches() {
    let stack = stack().await;
    // More throttles than the SDK's own retries absorb, so the state machine's Retry must act too.
    stack
        .bedrock_faults(&json!([
            {"kind": "throttle", "count": 4, "operation": "CreateModelCustomizationJob"},
            {"kind": "quotaExceeded", "count": 2, "operation": "CreateModelCustomizationJob"}
        ]))
        .await
        .unwrap();
    let key = unique_key("support-tickets");
    let (_, ex) = stack
        .upload_and_run(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    // Throttling is retried by the state machine; a quota refusal is no failure: the run waits in
    // the queue (WaitForSlot) and tries again when its hold (QUOTA_RETRY_SECONDS) ends.
    let failures = ex.failures_of("LaunchJob");
    assert!(failures.iter().all(|f| f == "Throttled"), "{failures:?}");
    assert!(!failures.is_empty(), "{failures:?}");
    assert_eq!(
        ex.retries_of("LaunchJob"),
        failures.len(),
        "every failure was retried"
    );
    let states = ex.states_entered();
    let waits = states.iter().filter(|s| *s == "WaitForSlot").count();
    let retries = states.iter().filter(|s| *s == "SlotWaitTimedOut").count();
    assert_eq!((waits, retries), (2, 2), "{states:?}");

    let calls = stack.bedrock_calls().await.unwrap();
    let (ok, failed) = calls_of(&calls, "CreateModelCustomizationJob");
    assert_eq!(ok.len(), 1, "launched once in the end: {ok:?}");
    assert_eq!(
        failed.len(),
        6,
        "4 throttled + 2 quota-exceeded calls: {failed:?}"
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.queue.as_ref().map(|q| q.quota_refusals), Some(2));
    assert_eq!(
        run.history
            .iter()
            .filter(|h| h.to == RunStatus::Queued)
            .count(),
        2,
        "queued at each refusal: {:?}",
        run.history
    );
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"]
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn slack_down_does_not_stop_the_run_and_is_recorded() {
    let stack = stack().await;
    stack.set_slack_mode("fail").await.unwrap();
    let before = stack.slack_messages().await.unwrap().len();
    let key = unique_key("support-tickets");
    let (_, ex) = stack
        .upload_and_run(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let notified = ex
        .output_of("NotifyCompleted")
        .expect("NotifyCompleted ran");
    assert_eq!(notified["notification"]["slack"], "failed");
    assert_eq!(notified["notification"]["sns"], "delivered");

    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    for m in ["launched", "completed"] {
        assert_eq!(
            delivered(&run, m, "slack"),
            Some(false),
            "{m}: Slack failure recorded: {:?}",
            run.deliveries
        );
        assert_eq!(
            delivered(&run, m, "sns"),
            Some(true),
            "{m}: SNS delivered: {:?}",
            run.deliveries
        );
    }
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"]
    );
    assert_eq!(
        stack.slack_messages().await.unwrap().len(),
        before,
        "nothing reached Slack"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn provisioning_failure_is_notified_and_recorded() {
    let stack = stack().await;
    let message = "Insufficient capacity for the requested model units (e2e injected)";
    stack
        .bedrock_faults(&json!({"kind": "failThroughput", "count": 1, "message": message}))
        .await
        .unwrap();
    let key = unique_key("support-tickets");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[("distillery-serving", "provisioned")],
        )
        .await
        .expect(NEEDS_STACK);
    assert_eq!(
        ex.error.as_deref(),
        Some("ProvisioningFailed"),
        "{}",
        explain(&ex)
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::ProvisioningFailed);
    assert!(
        run.custom_model_arn.is_some(),
        "the trained model is kept: {run:?}"
    );
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "provisioning_failed"]);
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(
        calls_of(&calls, "CreateProvisionedModelThroughput").0.len(),
        1
    );
}

/// `make demo DATASET=examples/datasets/invalid-tickets.jsonl`, as a newcomer runs it: the demo binary
/// prints the stored report (verdict, counts, each error with its line and code, warnings grouped),
/// not just the notification text, and exits 0 (a rejection is an outcome the pipeline promises).
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn demo_prints_the_line_numbered_report_of_an_invalid_dataset() {
    let _ = stack().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distillery-demo"))
        .arg("--dataset")
        .arg(repo_root().join("examples/datasets/invalid-tickets.jsonl"))
        .output()
        .expect("run distillery-demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}\n{stdout}");
    assert!(
        !stdout.contains("=null"),
        "the report has null fields:\n{stdout}"
    );
    let report = stdout
        .split("== Validation report ")
        .nth(1)
        .unwrap_or_else(|| panic!("no report section:\n{stdout}"));
    let verdict = report.lines().nth(1).unwrap_or("");
    assert!(
        verdict.starts_with("verdict INVALID: 110 records,"),
        "verdict line: {verdict}"
    );
    // The broken records (see invalid_dataset_is_rejected_...): each error with its line and code.
    for (line, code) in [
        (4, "invalid_json"),
        (8, "role_order"),
        (13, "schema_version"),
    ] {
        let wanted = format!("line {line:>5}  [{code}]");
        assert!(
            report
                .lines()
                .any(|l| l.contains("error") && l.contains(&wanted)),
            "no '{wanted}' error line in:\n{report}"
        );
    }
}

/// Runs recorded straight into the ledger (the real DynamoDB adapter on moto) in every final status:
/// every terminal status (rejected, failed, stopped, provisioning_failed, retired, gate_failed) and
/// completed without serving.
async fn seed_final_runs(stack: &Stack) -> Vec<Run> {
    use distillery_core::domain::settings::ServingMode;
    use distillery_core::ports::{CreateOutcome, RunLedger};
    let finals = RunStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .chain([RunStatus::Completed]);
    let mut runs = Vec::new();
    for status in finals {
        let key = unique_key(&format!("stray-{status}"));
        let mut run = distillery_core::testing::sample_run(
            stack.bucket(),
            &key,
            "0123456789abcdef0123456789abcdef",
            100,
            chrono::Utc::now(),
        );
        run.status = status;
        run.settings.serving = ServingMode::None;
        if status != RunStatus::Rejected {
            run.job_arn = Some(format!(
                "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/{}",
                &run.run_id.as_str()[4..16]
            ));
        }
        assert!(run.is_final(), "{status}");
        let created = stack.ledger.create(&run).await.expect(NEEDS_STACK);
        assert!(matches!(created, CreateOutcome::Created(_)));
        runs.push(stack.run(&run.run_id).await.unwrap());
    }
    runs
}

/// Issue 10, point 3: a stray notifier input never rewrites a final run nor broadcasts news the
/// ledger contradicts; the other steps answer `Conflict` for a run in the wrong state too.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn stray_input_on_every_final_run_is_refused_changes_nothing_and_sends_nothing() {
    use distillery_core::domain::messages::Milestone;
    let stack = stack().await;
    let runs = seed_final_runs(&stack).await;
    for run in &runs {
        for milestone in Milestone::ALL {
            if milestone.announces().contains(&run.status) {
                continue;
            }
            for error in [
                None,
                Some(json!({"Error": "States.TaskFailed", "Cause": "stray"})),
            ] {
                let mut input = json!({"runId": run.run_id, "milestone": milestone.as_str()});
                if let Some(e) = &error {
                    input["error"] = e.clone();
                }
                let answer = stack
                    .invoke("notifier", input.to_string().into_bytes())
                    .await
                    .unwrap();
                let (error_type, message) =
                    answer.expect_err("a contradicting milestone is refused");
                let failure_milestone =
                    matches!(milestone, Milestone::Failed | Milestone::ProvisioningFailed);
                if error.is_some() && !failure_milestone {
                    // A caught error comes only with a failure milestone.
                    assert_eq!(error_type, "InvalidInput", "{milestone}: {message}");
                    continue;
                }
                assert_eq!(
                    error_type, "Conflict",
                    "{} {milestone}: {message}",
                    run.status
                );
                assert!(
                    message.contains(&format!("cannot announce '{milestone}'")),
                    "{message}"
                );
            }
        }
        // The steps that act on a run refuse a final one too. (The provisioner's recorded answers for
        // a run it served, and `not_requested` for a completed run without serving, are what
        // happened: a retry of that step gets them.)
        let launch = stack
            .invoke(
                "job-launcher",
                json!({"runId": run.run_id}).to_string().into_bytes(),
            )
            .await
            .unwrap();
        let (t, m) = launch.expect_err("a final run is not launched");
        assert_eq!(t, "Conflict", "job-launcher on {}: {m}", run.status);
        assert!(m.contains("cannot launch"), "{m}");
        let provision = stack
            .invoke(
                "throughput-provisioner",
                json!({"runId": run.run_id}).to_string().into_bytes(),
            )
            .await
            .unwrap();
        match (run.status, provision) {
            (RunStatus::Completed, Ok(out)) => assert_eq!(out["outcome"], "not_requested", "{out}"),
            (RunStatus::Ready | RunStatus::ProvisioningFailed, Ok(_)) => {}
            // Retired while (or after) being served: the execution's loop ends quietly on it.
            (RunStatus::Retired, Ok(out)) => assert_eq!(out["outcome"], "retired", "{out}"),
            (RunStatus::GateFailed, Ok(out)) => {
                assert_eq!(out["outcome"], "gate_failed", "{out}")
            }
            (s, Ok(out)) => panic!("throughput-provisioner on {s} answered {out}"),
            (s, Err((t, m))) => {
                assert_eq!(t, "Conflict", "throughput-provisioner on {s}: {m}");
                assert!(m.contains("cannot buy Provisioned Throughput"), "{m}");
            }
        }
    }
    // A run whose job is live, owned by an execution: a stray caught error neither ends it nor
    // announces anything (only the poller or the reconciler ends a job's run).
    let mut live = distillery_core::testing::sample_run(
        stack.bucket(),
        &unique_key("stray-training"),
        "0123456789abcdef0123456789abcdef",
        100,
        chrono::Utc::now(),
    );
    live.status = RunStatus::Training;
    live.owner_execution = Some(Stack::execution_id("owner-of-the-live-run"));
    live.job_arn = Some(
        "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/live".into(),
    );
    {
        use distillery_core::ports::RunLedger;
        stack.ledger.create(&live).await.unwrap();
    }
    let live = stack.run(&live.run_id).await.unwrap();
    for execution in [None, Some(Stack::execution_id("a-stray-execution"))] {
        let mut input = json!({
            "runId": live.run_id,
            "milestone": "failed",
            "error": {"Error": "States.TaskFailed", "Cause": "stray"},
        });
        if let Some(e) = execution {
            input["execution"] = json!(e);
        }
        let (t, m) = stack
            .invoke("notifier", input.to_string().into_bytes())
            .await
            .unwrap()
            .expect_err("a stray caught error on a live run is refused");
        assert_eq!(t, "Conflict", "{m}");
        assert!(m.contains("only the execution that owns the run"), "{m}");
    }
    let mut runs = runs;
    runs.push(live);

    // An unknown run id: nothing is sent about it.
    let answer = stack
        .invoke(
            "notifier",
            json!({"runId": "run-00000000000000000000", "milestone": "failed"})
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(answer.unwrap_err().0, "NotFound");

    for run in &runs {
        assert_eq!(
            &stack.run(&run.run_id).await.unwrap(),
            run,
            "the ledger record of the {} run is unchanged",
            run.status
        );
        assert!(
            sns_for(&stack, &run.run_id).await.is_empty(),
            "nothing on SNS about the {} run",
            run.status
        );
        assert!(
            slack_mentioning(&stack, run.run_id.as_str())
                .await
                .is_empty(),
            "nothing on Slack about the {} run",
            run.status
        );
    }
    assert!(
        stack.bedrock_calls().await.unwrap().is_empty(),
        "no Bedrock call was made for stray input"
    );
}

/// A body that is not JSON gets a typed `InvalidInput` from every function (not the runtime's own
/// error, whose type is a Rust type name).
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_body_that_is_not_json_is_an_invalid_input_for_every_function() {
    let stack = stack().await;
    for function in [
        "dataset-validator",
        "job-launcher",
        "status-poller",
        "throughput-provisioner",
        "notifier",
    ] {
        let answer = stack
            .invoke(function, b"this is not JSON".to_vec())
            .await
            .expect(NEEDS_STACK);
        let (error_type, message) = answer.expect_err("not JSON is an error");
        assert_eq!(error_type, "InvalidInput", "{function}: {message}");
        assert!(
            message.starts_with(&format!("{function}: the payload is not JSON (")),
            "{function}: {message}"
        );
    }
}

/// Identity, ownership, retry, Region and key handling (issue 10, points 4-7).
#[path = "e2e/identity.rs"]
mod identity;

// Trained bytes = validated bytes: the per-run snapshot (tests/stack/tests/e2e/snapshot.rs).
#[path = "e2e/snapshot.rs"]
mod snapshot;

// Event-driven completion and `runs stop` (issue 11): tests/stack/tests/e2e/events.rs.
#[path = "e2e/events.rs"]
mod events;

// Bedrock's job state-change events: simulator → EventBridge → rule queue → relay → status-poller
// (issue 11; tests/stack/tests/e2e/job_events.rs).
#[path = "e2e/job_events.rs"]
mod job_events;

// The cost estimate and the budget (issue 12): tests/stack/tests/e2e/budget.rs.
#[path = "e2e/budget.rs"]
mod budget;

// On-demand serving through a custom model deployment (issue 12): tests/stack/tests/e2e/serving.rs.
#[path = "e2e/serving.rs"]
mod serving;

// The quality gate's evaluator, invoked directly (issue 13): tests/stack/tests/e2e/evaluation.rs.
#[path = "e2e/evaluation.rs"]
mod evaluation;

// Issue 15: a burst of uploads through the launch queue.
#[path = "e2e/burst.rs"]
mod burst;

// The quality gate end to end (issue 13): tests/stack/tests/e2e/gate.rs.
#[path = "e2e/gate.rs"]
mod gate;

// The quality gate's held-out slice, set aside by the validator (issue 13):
// tests/stack/tests/e2e/held_out.rs.
#[path = "e2e/held_out.rs"]
mod held_out;

// Scheduled retraining from invocation logs, curated and native (issue 14):
// tests/stack/tests/e2e/invocation_logs.rs.
#[path = "e2e/invocation_logs.rs"]
mod invocation_logs;

// Issue 16: what an upload may ask for (ALLOW_PROVISIONING), on the stack's own adapters.
#[path = "e2e/security.rs"]
mod security;
