//! No paid job is abandoned, and the reconciler (issue 10, point 2): Bedrock errors while a job runs,
//! the pipeline giving up, and resources that no live run owns. Same harness as the rest of e2e.rs.

use std::collections::BTreeMap;
use std::time::Duration;

use distillery_core::domain::settings::Commitment;
use distillery_core::domain::tags::RUN_ID_TAG;
use distillery_core::ports::{
    CustomizationService, DistillationJobRequest, JobStatus, PortError, RunLedger,
    ThroughputRequest, TrainingData,
};

use super::*;

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A distillation job request as the launcher would make it, tagged for `run_id`.
fn job_request(stack: &Stack, name: &str, run_id: &str) -> DistillationJobRequest {
    let tags = BTreeMap::from([(RUN_ID_TAG.to_string(), run_id.to_string())]);
    DistillationJobRequest {
        job_name: name.into(),
        custom_model_name: format!("{name}-model"),
        role_arn: "arn:aws:iam::123456789012:role/distillery-bedrock-distillation".into(),
        student: "amazon.nova-lite-v1:0:300k".into(),
        teacher: "amazon.nova-pro-v1:0".into(),
        max_response_length: 1000,
        training_data: TrainingData::S3 {
            s3_uri: format!("s3://{}/incoming/{name}.jsonl", stack.bucket()),
        },
        output_s3_uri: format!("s3://{}/output/{name}/", stack.bucket()),
        client_request_token: format!("tok-{name}"),
        job_tags: tags.clone(),
        custom_model_tags: tags,
        custom_model_kms_key_id: None,
    }
}

fn sns_of_type(msgs: &[SnsDelivery], event_type: &str) -> Vec<SnsDelivery> {
    msgs.iter()
        .filter(|m| m.attributes.get("event_type").map(String::as_str) == Some(event_type))
        .cloned()
        .collect()
}

/// Uploads the sample dataset under `key` and runs the execution in polling mode (these tests are
/// about the poll loop; events mode reaches the same poller through its fallback poll). Job events
/// are dropped, as a stack deployed with `JobTracking=polling` has no job-event rule.
async fn upload_and_poll(stack: &Stack, key: &str) -> anyhow::Result<(Value, Execution)> {
    stack.bedrock_faults(&json!({"kind": "dropEvents"})).await?;
    let event = stack
        .upload_and_receive(key, sample_dataset(), &[("distillery-serving", "none")])
        .await?;
    let ex = stack
        .execution(&event)
        .substitution("JobTrackingMode", "polling")
        .run()
        .await?;
    Ok((event, ex))
}

async fn in_progress_jobs(stack: &Stack) -> Vec<String> {
    stack
        .bedrock()
        .await
        .list_jobs(Some(JobStatus::InProgress))
        .await
        .expect("ListModelCustomizationJobs")
        .into_iter()
        .map(|j| j.job_arn)
        .collect()
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn throttled_polling_storm_keeps_tracking_and_ends_with_the_jobs_true_outcome() {
    let stack = stack().await;
    // Far more throttles than the poll step's retries (and the SDK's) could absorb; the job keeps
    // running to Completed meanwhile.
    let throttles = 24;
    stack
        .bedrock_faults(&json!({"kind": "throttle", "count": throttles, "operation": "GetModelCustomizationJob"}))
        .await
        .unwrap();
    let key = unique_key("support-tickets");
    let (_, ex) = upload_and_poll(&stack, &key).await.expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert!(run.custom_model_arn.is_some());
    assert!(
        !run.history.iter().any(|h| h.to == RunStatus::Failed),
        "never recorded failed: {:?}",
        run.history
    );
    // The poller answered `running` with the poll error, rather than failing the step.
    let events = serde_json::to_string(&ex.events).unwrap();
    assert!(
        events.contains("pollError"),
        "no poll answered with a pollError"
    );
    assert!(!ex.states_entered().contains(&"NotifyRunError".to_string()));

    let calls = stack.bedrock_calls().await.unwrap();
    let (ok, failed) = calls_of(&calls, "GetModelCustomizationJob");
    assert_eq!(
        failed.len(),
        throttles,
        "every injected throttle was met: {failed:?}"
    );
    assert!(failed
        .iter()
        .all(|c| c["errorType"] == "ThrottlingException"));
    assert!(!ok.is_empty());
    assert!(
        in_progress_jobs(&stack).await.is_empty(),
        "no job left InProgress"
    );

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "completed"], "{sns:?}");
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn persistent_access_denied_stops_the_job_and_the_run_and_message_say_so() {
    let stack = stack().await;
    // The job would train forever; every poll is refused: the pipeline gives up after
    // polling.giveUpAfterPermanentErrors (5) polls, stops the job and says so.
    stack
        .bedrock_faults(&json!([
            {"kind": "hangJob", "count": 1},
            {"kind": "accessDenied", "count": 5, "operation": "GetModelCustomizationJob"}
        ]))
        .await
        .unwrap();
    let key = unique_key("support-tickets");
    let (_, ex) = upload_and_poll(&stack, &key).await.expect(NEEDS_STACK);
    assert_eq!(ex.error.as_deref(), Some("JobStopped"), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Stopped, "{run:?}");
    let job_arn = run.job_arn.clone().unwrap();
    let reason = run.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains(&format!("the pipeline stopped job {job_arn} because")),
        "{reason}"
    );
    assert!(reason.contains("non-retryable"), "{reason}");

    let calls = stack.bedrock_calls().await.unwrap();
    let (stops, _) = calls_of(&calls, "StopModelCustomizationJob");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["request"]["jobIdentifier"], job_arn.as_str());
    assert!(
        in_progress_jobs(&stack).await.is_empty(),
        "no job left InProgress"
    );

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "stopped"], "{sns:?}");
    assert!(
        sns[1].message.contains("the pipeline stopped job"),
        "{}",
        sns[1].message
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn reconciler_stops_an_orphaned_job_and_deletes_an_orphaned_throughput() {
    let stack = stack().await;
    let bedrock = stack.bedrock().await;
    let n = nanos();
    let ghost = format!("run-orphan-{n}");
    stack
        .bedrock_faults(&json!({"kind": "hangJob", "count": 1}))
        .await
        .unwrap();
    let job_arn = bedrock
        .create_distillation_job(&job_request(&stack, &format!("orphan-{n}"), &ghost))
        .await
        .expect("create the orphan job");
    let pt_arn = bedrock
        .create_provisioned_throughput(&ThroughputRequest {
            provisioned_model_name: format!("orphan-pt-{n}"),
            model_id: "amazon.nova-lite-v1:0:300k".into(),
            model_units: 1,
            commitment: Commitment::None,
            client_request_token: format!("pt-{n}"),
            tags: BTreeMap::from([(RUN_ID_TAG.to_string(), ghost.clone())]),
        })
        .await
        .expect("create the orphan throughput");
    // Past the stack's quiet period (RECONCILE_QUIET_PERIOD_SECONDS=2) and the PT's Creating.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stack.take_sns_deliveries().await.unwrap();

    let report = stack
        .invoke_json("status-poller", &json!({"reconcile": {}}))
        .await
        .expect("reconciler");
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let about = |arn: &str| {
        findings
            .iter()
            .find(|f| f["resourceArn"] == arn)
            .cloned()
            .unwrap_or_else(|| panic!("no finding about {arn}: {report}"))
    };
    assert_eq!(about(&job_arn)["action"], "repaired", "{report}");
    assert_eq!(about(&pt_arn)["action"], "repaired", "{report}");
    assert!(about(&pt_arn)["problem"]
        .as_str()
        .unwrap()
        .contains("not in the ledger"));

    let calls = stack.bedrock_calls().await.unwrap();
    let (stops, _) = calls_of(&calls, "StopModelCustomizationJob");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert_eq!(stops[0]["request"]["jobIdentifier"], job_arn.as_str());
    let (deletes, _) = calls_of(&calls, "DeleteProvisionedModelThroughput");
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(!in_progress_jobs(&stack).await.contains(&job_arn));
    assert!(matches!(
        bedrock.get_provisioned_throughput(&pt_arn).await,
        Err(PortError::NotFound(_))
    ));

    tokio::time::sleep(Duration::from_millis(200)).await;
    let sns = stack.take_sns_deliveries().await.unwrap();
    let summaries = sns_of_type(&sns, "reconciled");
    assert_eq!(summaries.len(), 1, "{sns:?}");
    assert!(
        summaries[0].message.contains(&job_arn),
        "{}",
        summaries[0].message
    );
    assert!(
        summaries[0].message.contains(&pt_arn),
        "{}",
        summaries[0].message
    );

    // Idempotent: a second pass finds nothing of these and says nothing.
    let again = stack
        .invoke_json("status-poller", &json!({"reconcile": {}}))
        .await
        .unwrap();
    assert!(
        !again.to_string().contains(&job_arn) && !again.to_string().contains(&pt_arn),
        "{again}"
    );
    let (stops, _) = calls_of(
        &stack.bedrock_calls().await.unwrap(),
        "StopModelCustomizationJob",
    );
    assert_eq!(stops.len(), 1);
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn reconciler_records_a_job_that_finished_while_nothing_polled() {
    let stack = stack().await;
    let bedrock = stack.bedrock().await;
    let n = nanos();
    let id = format!("run-unpolled-{n}");
    let job_arn = bedrock
        .create_distillation_job(&job_request(&stack, &format!("unpolled-{n}"), &id))
        .await
        .unwrap();
    // The ledger says training (its execution died after the launch); nothing polls it.
    let now = chrono::Utc::now();
    let mut run = distillery_core::testing::sample_run(
        stack.bucket(),
        &format!("incoming/unpolled-{n}.jsonl"),
        &format!("etag-{n}"),
        100,
        now,
    );
    run.run_id = RunId(id.clone());
    run.status = RunStatus::Training;
    run.job_arn = Some(job_arn.clone());
    run.launched_at = Some(now);
    stack.ledger.create(&run).await.unwrap();
    // The simulated job takes three 1 s phases.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stack.take_sns_deliveries().await.unwrap();

    let report = stack
        .invoke_json("status-poller", &json!({"reconcile": {}}))
        .await
        .expect("reconciler");
    let stored = stack.run(&RunId(id.clone())).await.unwrap();
    assert_eq!(stored.status, RunStatus::Completed, "{report}");
    assert!(stored.custom_model_arn.is_some());
    assert!(report.to_string().contains(&id), "{report}");
    let calls = stack.bedrock_calls().await.unwrap();
    assert!(calls_of(&calls, "StopModelCustomizationJob").0.is_empty());

    tokio::time::sleep(Duration::from_millis(200)).await;
    let sns = stack.take_sns_deliveries().await.unwrap();
    let summaries = sns_of_type(&sns, "reconciled");
    assert_eq!(summaries.len(), 1, "{sns:?}");
    assert!(
        summaries[0].message.contains(&id),
        "{}",
        summaries[0].message
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_failed_stop_keeps_the_run_tracked_and_the_reconciler_retries_it() {
    let stack = stack().await;
    // Every poll refused (the pipeline gives up after 5), and StopModelCustomizationJob answers 500
    // to the give-up's call (3 attempts: the SDK's standard retry).
    stack
        .bedrock_faults(&json!([
            {"kind": "hangJob", "count": 1},
            {"kind": "accessDenied", "count": 5, "operation": "GetModelCustomizationJob"},
            {"kind": "internalError", "count": 3, "operation": "StopModelCustomizationJob"}
        ]))
        .await
        .unwrap();
    let key = unique_key("support-tickets");
    let (_, ex) = upload_and_poll(&stack, &key).await.expect(NEEDS_STACK);
    assert_eq!(
        ex.error.as_deref(),
        Some("JobStopFailed"),
        "{}",
        explain(&ex)
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    // Not failed, not stopped: still tracked, with the reason.
    assert_eq!(run.status, RunStatus::Training, "{run:?}");
    let job_arn = run.job_arn.clone().unwrap();
    let reason = run.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("StopModelCustomizationJob failed"),
        "{reason}"
    );
    assert!(in_progress_jobs(&stack).await.contains(&job_arn));
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "stop_failed"], "{sns:?}");
    assert!(sns[1].message.contains("reconciler"), "{}", sns[1].message);
    let calls = stack.bedrock_calls().await.unwrap();
    let (ok_stops, failed_stops) = calls_of(&calls, "StopModelCustomizationJob");
    assert!(
        ok_stops.is_empty() && failed_stops.len() == 3,
        "{failed_stops:?}"
    );

    // The reconciler retries the stop and records it.
    let report = stack
        .invoke_json("status-poller", &json!({"reconcile": {}}))
        .await
        .expect("reconciler");
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Stopped, "{report}");
    assert!(run
        .failure_reason
        .unwrap_or_default()
        .contains("the reconciler retried the stop"));
    let (ok_stops, _) = calls_of(
        &stack.bedrock_calls().await.unwrap(),
        "StopModelCustomizationJob",
    );
    assert_eq!(ok_stops.len(), 1);
    assert_eq!(ok_stops[0]["request"]["jobIdentifier"], job_arn.as_str());
    assert!(!in_progress_jobs(&stack).await.contains(&job_arn));
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn reconciler_fails_a_run_stranded_in_validation_and_names_it() {
    let stack = stack().await;
    let n = nanos();
    let id = format!("run-stranded-{n}");
    // The validator gave up two hours ago (retries ran out): the run was left `validating`.
    let then = chrono::Utc::now() - chrono::Duration::hours(2);
    let mut run = distillery_core::testing::sample_run(
        stack.bucket(),
        &format!("incoming/stranded-{n}.jsonl"),
        &format!("etag-{n}"),
        100,
        then,
    );
    run.run_id = RunId(id.clone());
    run.status = RunStatus::Validating;
    stack.ledger.create(&run).await.unwrap();
    stack.take_sns_deliveries().await.unwrap();

    let report = stack
        .invoke_json("status-poller", &json!({"reconcile": {}}))
        .await
        .expect("reconciler");
    let stored = stack.run(&RunId(id.clone())).await.unwrap();
    assert_eq!(stored.status, RunStatus::Failed, "{report}");
    let reason = stored.failure_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("validation did not finish"), "{reason}");
    assert!(
        reason.contains(&format!("distillery runs retry {id}")),
        "{reason}"
    );
    assert!(stored.can_be_retried());

    tokio::time::sleep(Duration::from_millis(200)).await;
    let sns = stack.take_sns_deliveries().await.unwrap();
    let summaries = sns_of_type(&sns, "reconciled");
    assert_eq!(summaries.len(), 1, "{sns:?}");
    assert!(
        summaries[0].message.contains(&id),
        "{}",
        summaries[0].message
    );

    // Done once: the next pass does not name it again.
    let again = stack
        .invoke_json("status-poller", &json!({"reconcile": {}}))
        .await
        .unwrap();
    assert!(!again.to_string().contains(&id), "{again}");
}
