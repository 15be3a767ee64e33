//! Issue 13, the quality gate end to end: the validator holds records out, the job trains on the
//! rest, the student's deployment is evaluated against its teacher (the real `model-evaluator`
//! through the simulator's Converse) before anything serves or is bought, and the gate decides.
//! The local stack runs with `QUALITY_GATE=off`; each dataset here switches it on with its
//! `distillery-quality-gate` metadata (raising safety is what metadata may do).

use distillery_core::domain::evaluation::GatePlan;
use distillery_core::ports::CustomizationService;

use super::*;

async fn set_student_quality(stack: &Stack, quality: f64) {
    stack.set_student_quality(quality).await.unwrap();
}

/// Converse calls the simulator answered as `who` (student, teacher, judge).
fn converse_calls(calls: &[Value], who: &str) -> usize {
    calls_of(calls, "Converse")
        .0
        .iter()
        .filter(|c| c["request"]["answeredAs"] == who)
        .count()
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_student_that_passes_its_gate_is_served_on_the_evaluated_deployment() {
    let stack = stack().await;
    set_student_quality(&stack, 1.0).await;
    let key = unique_key("support-tickets-gate-pass");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[
                ("distillery-serving", "on-demand"),
                ("distillery-quality-gate", "on"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let states = ex.states_entered();
    for s in [
        "StartEvaluation",
        "EvaluateModel",
        "CheckEvaluation",
        "NotifyReady",
    ] {
        assert!(
            states.contains(&s.to_string()),
            "{s} not entered: {states:?}"
        );
    }
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    let Some(GatePlan::Armed { records, .. }) = &run.quality_gate else {
        panic!("the gate is armed: {:?}", run.quality_gate);
    };
    assert_eq!(*records, 20, "5% of 120 is below the minimum slice of 20");
    let e = run.evaluation.clone().expect("the evaluation is recorded");
    assert!(e.decision.passed, "{e:?}");
    assert_eq!(e.decision.summary.records, 20);
    assert_eq!(Some(&e.student_model), run.deployment_arn.as_ref());

    // Every held-out record was asked of the student and the teacher, and judged twice; the
    // deployment the student was evaluated on is the one that serves.
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(converse_calls(&calls, "student"), 20);
    assert_eq!(converse_calls(&calls, "teacher"), 20);
    assert_eq!(converse_calls(&calls, "judge"), 40);
    assert_eq!(calls_of(&calls, "CreateCustomModelDeployment").0.len(), 1);
    assert!(calls_of(&calls, "DeleteCustomModelDeployment").0.is_empty());

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "ready"], "{sns:?}");
    assert!(
        sns[0]
            .message
            .contains("Quality gate: armed: 20 held-out records"),
        "{}",
        sns[0].message
    );
    assert!(
        sns[1]
            .message
            .contains("Quality gate: passed: the student won or tied on 100% of 20"),
        "{}",
        sns[1].message
    );
    assert!(sns[1].message.contains("Student vs teacher: mean latency"));

    // `runs show` says the same.
    let out = stack.cli(&["runs", "show", id.as_str()]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("quality gate          passed"), "{text}");

    // `distillery eval` evaluates again with another judge: a new record, the status unchanged.
    let judge = "us.amazon.nova-premier-v1:0";
    let out = stack
        .cli(&["eval", id.as_str(), "--judge", judge, "--format", "json"])
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["judgeModel"], judge, "{printed}");
    let again = stack.run(&id).await.unwrap();
    assert_eq!(again.status, RunStatus::Ready);
    let e2 = again.evaluation.expect("re-evaluated");
    assert_eq!(e2.judge_model, judge);
    assert!(e2.evaluated_at > e.evaluated_at);
    let calls = stack.bedrock_calls().await.unwrap();
    let judged_by_new = calls_of(&calls, "Converse")
        .0
        .iter()
        .filter(|c| c["request"]["answeredAs"] == "judge" && c["request"]["modelId"] == judge)
        .count();
    assert_eq!(
        judged_by_new, 40,
        "every record judged twice by the new judge"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_student_that_fails_its_gate_buys_nothing_and_leaves_no_deployment() {
    let stack = stack().await;
    set_student_quality(&stack, 0.2).await;
    let key = unique_key("support-tickets-gate-fail");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[
                ("distillery-serving", "provisioned"),
                ("distillery-quality-gate", "on"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert_eq!(ex.error.as_deref(), Some("GateFailed"), "{}", explain(&ex));
    assert!(ex
        .states_entered()
        .contains(&"NotifyGateFailed".to_string()));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::GateFailed, "{run:?}");
    let e = run.evaluation.clone().expect("the evaluation is recorded");
    assert!(!e.decision.passed);
    assert!(e.decision.summary.score < 0.7, "{:?}", e.decision.summary);
    assert!(run.provisioned_model_arn.is_none(), "{run:?}");
    assert!(run.custom_model_arn.is_some(), "the trained model is kept");

    // Zero throughput bought; the evaluation deployment created once and deleted.
    let calls = stack.bedrock_calls().await.unwrap();
    assert!(calls_of(&calls, "CreateProvisionedModelThroughput")
        .0
        .is_empty());
    assert_eq!(calls_of(&calls, "CreateCustomModelDeployment").0.len(), 1);
    assert_eq!(calls_of(&calls, "DeleteCustomModelDeployment").0.len(), 1);
    let bedrock = stack.bedrock().await;
    assert!(bedrock
        .list_provisioned_throughputs()
        .await
        .unwrap()
        .is_empty());
    assert!(
        bedrock
            .list_custom_model_deployments()
            .await
            .unwrap()
            .is_empty(),
        "no deployment is left"
    );

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "gate_failed"], "{sns:?}");
    let body = &sns[1].message;
    assert!(body.contains("nothing was bought"), "{body}");
    assert!(body.contains("the threshold is 70%"), "{body}");
    assert!(body.contains("The 3 worst examples"), "{body}");
    assert!(
        body.contains("student: ") && body.contains("teacher: ") && body.contains("judge: "),
        "{body}"
    );
    assert_eq!(delivered(&run, "gate_failed", "sns"), Some(true));

    // Its deployment is gone: `distillery eval` says what to give instead of calling a deleted ARN.
    let out = stack.cli(&["eval", id.as_str()]).await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gate_failed") && err.contains("give the model id"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_dataset_too_small_for_a_slice_skips_the_gate_and_says_so() {
    let stack = stack().await;
    let small: String = String::from_utf8(sample_dataset())
        .unwrap()
        .lines()
        .take(110)
        .map(|l| format!("{l}\n"))
        .collect();
    let key = unique_key("support-tickets-gate-small");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            small.into_bytes(),
            &[
                ("distillery-serving", "on-demand"),
                ("distillery-quality-gate", "on"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    assert!(!ex.states_entered().contains(&"EvaluateModel".to_string()));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready);
    let Some(GatePlan::Skipped { reason }) = &run.quality_gate else {
        panic!("the gate is skipped: {:?}", run.quality_gate);
    };
    assert!(reason.contains("110 records"), "{reason}");
    assert!(run.evaluation.is_none());
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(converse_calls(&calls, "student"), 0);
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "ready"], "{sns:?}");
    for m in &sns {
        assert!(
            m.message
                .contains("Quality gate: skipped: the dataset has 110 records"),
            "{}",
            m.message
        );
    }
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn throttled_runtime_calls_are_retried_and_the_gate_still_decides() {
    let stack = stack().await;
    set_student_quality(&stack, 1.0).await;
    stack
        .bedrock_faults(&json!({"kind": "throttle", "count": 5, "operation": "Converse"}))
        .await
        .unwrap();
    let key = unique_key("support-tickets-gate-throttled");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[
                ("distillery-serving", "on-demand"),
                ("distillery-quality-gate", "on"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready);
    assert!(run.evaluation.expect("evaluated").decision.passed);
    let calls = stack.bedrock_calls().await.unwrap();
    let (_, throttled) = calls_of(&calls, "Converse");
    assert_eq!(throttled.len(), 5, "five Converse calls were throttled");
    assert!(
        throttled.iter().all(|c| c["status"] == 429),
        "{throttled:?}"
    );
    // Every held-out record was still answered by both models and judged twice.
    assert_eq!(converse_calls(&calls, "student"), 20);
    assert_eq!(converse_calls(&calls, "teacher"), 20);
    assert_eq!(converse_calls(&calls, "judge"), 40);
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_provisioned_run_buys_its_throughput_only_after_the_gate_passed_on_a_deployment() {
    let stack = stack().await;
    set_student_quality(&stack, 1.0).await;
    let key = unique_key("support-tickets-gate-provisioned");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[
                ("distillery-serving", "provisioned"),
                ("distillery-quality-gate", "on"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    let e = run.evaluation.clone().expect("evaluated");
    assert!(e.decision.passed);
    assert_eq!(Some(&e.student_model), run.deployment_arn.as_ref());
    assert!(run.provisioned_model_arn.is_some() && run.serving_expires_at.is_some());

    // In order: the evaluation deployment made, the student asked, the deployment deleted, then
    // (and only then) one throughput bought; none of the deployment is left.
    let calls = stack.bedrock_calls().await.unwrap();
    let position = |op: &str| {
        calls
            .iter()
            .position(|c| c["operation"] == op && c["status"].as_u64().is_some_and(|s| s < 300))
            .unwrap_or_else(|| panic!("no {op}"))
    };
    let last_student = calls
        .iter()
        .rposition(|c| c["request"]["answeredAs"] == "student")
        .unwrap();
    assert!(position("CreateCustomModelDeployment") < last_student);
    assert!(last_student < position("DeleteCustomModelDeployment"));
    assert!(position("DeleteCustomModelDeployment") < position("CreateProvisionedModelThroughput"));
    assert_eq!(
        calls_of(&calls, "CreateProvisionedModelThroughput").0.len(),
        1
    );
    let bedrock = stack.bedrock().await;
    assert!(bedrock
        .list_custom_model_deployments()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        bedrock.list_provisioned_throughputs().await.unwrap().len(),
        1
    );
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "ready"], "{sns:?}");
    assert!(
        sns[1].message.contains("Quality gate: passed"),
        "{}",
        sns[1].message
    );
}
