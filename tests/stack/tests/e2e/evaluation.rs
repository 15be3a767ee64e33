//! Issue 13, the quality gate's evaluator: the real `model-evaluator` binary on the local stack
//! evaluates a ready on-demand run's held-out records through the simulator's Converse (student =
//! the run's deployment, teacher, judge both orders), writes the per-record results and records
//! the gate's decision on the run. The state machine does not call it yet, so the test invokes it
//! the way a Task state will, and writes the held-out file the validator will write.

use distillery_core::app::evaluate_model::HeldOutLine;

use super::*;

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn the_evaluator_scores_a_ready_runs_held_out_records_and_records_the_gate() {
    let stack = stack().await;
    let key = unique_key("support-tickets-eval");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[("distillery-serving", "on-demand")],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    let deployment = run.deployment_arn.clone().expect("a deployment");
    let snapshot = run.snapshot.clone().expect("a snapshot");

    // Three held-out records (the first three of the sample, as the validator will set them
    // aside), next to the snapshot.
    let dataset = String::from_utf8(sample_dataset()).unwrap();
    let held: Vec<String> = dataset
        .lines()
        .take(3)
        .enumerate()
        .map(|(index, l)| {
            serde_json::to_string(&HeldOutLine {
                index,
                record: serde_json::from_str(l).unwrap(),
            })
            .unwrap()
        })
        .collect();
    let folder = snapshot.key.trim_end_matches("dataset.jsonl").to_string();
    stack
        .upload(
            &format!("{folder}heldout.jsonl"),
            (held.join("\n") + "\n").into_bytes(),
            &[],
        )
        .await
        .unwrap();
    // A student that answers like its teacher on every prompt: every record ties.
    reqwest::Client::new()
        .put(format!("{}/_sim/runtime", stack.info.bedrock_sim_url))
        .json(&json!({"studentQuality": 1.0}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let out = stack
        .invoke_json(
            "model-evaluator",
            &json!({"runId": id.as_str(), "batch": 0}),
        )
        .await
        .unwrap();
    assert_eq!(out["done"], true, "{out}");
    assert_eq!(out["nextBatch"], Value::Null, "{out}");
    assert_eq!(out["records"], 3, "{out}");
    assert_eq!(out["passed"], true, "{out}");
    assert_eq!(out["score"], 1.0, "{out}");

    // The runtime calls the simulator saw: each record asked of the deployment and the teacher,
    // then judged twice by the teacher.
    let calls = stack.bedrock_calls().await.unwrap();
    let converse: Vec<&Value> = calls
        .iter()
        .filter(|c| c["operation"] == "Converse")
        .collect();
    let by = |who: &str| {
        converse
            .iter()
            .filter(|c| c["request"]["answeredAs"] == who)
            .map(|c| c["request"]["modelId"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(by("student"), vec![deployment.clone(); 3]);
    assert_eq!(by("teacher"), vec![run.settings.teacher.clone(); 3]);
    assert_eq!(by("judge"), vec![run.settings.teacher.clone(); 6]);

    // The results file and the decision on the run.
    let run = stack.run(&id).await.unwrap();
    assert_eq!(
        run.status,
        RunStatus::Ready,
        "the evaluator does not move the run"
    );
    let e = run.evaluation.expect("the gate recorded on the run");
    assert!(e.decision.passed);
    assert_eq!(e.decision.summary.records, 3);
    assert_eq!(e.decision.summary.ties, 3);
    assert_eq!(e.student_model, deployment);
    let results = stack.read_s3_uri(&e.results_uri).await.unwrap();
    let lines: Vec<Value> = String::from_utf8(results)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines
            .iter()
            .map(|l| l["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(lines.iter().all(|l| l["outcome"] == "tie"), "{lines:?}");
    // A record with a golden answer (the sample's first two end with one) is scored against it
    // too; one without has no such score.
    for l in &lines {
        assert_eq!(
            l["golden"].is_string(),
            l["rougeLVsGolden"].is_number(),
            "{l}"
        );
    }
    assert!(lines[0]["rougeLVsGolden"].is_number(), "{lines:?}");
}
