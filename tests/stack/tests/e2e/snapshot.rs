//! The bytes Bedrock trains on are the bytes that were validated. Each test acts between two steps
//! of a real execution (the runner holds `LaunchJob` until the test is done: overwrite or delete the
//! upload key, or the snapshot itself), or processes two uploads to one key in order, then asserts on
//! the ledger, the training URI in the simulator's call log, the snapshot's bytes and the messages.

use sha2::{Digest, Sha256};

use super::*;
use distillery_local_stack::BetweenSteps;

const LAUNCH: &str = "LaunchJob";

/// The sample dataset's first `n` lines: valid, and different bytes from the whole file.
fn first_lines(n: usize) -> Vec<u8> {
    let text = String::from_utf8(sample_dataset()).unwrap();
    text.lines()
        .take(n)
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The run id the validator returned, from the events of an execution still running.
fn run_id_so_far(events: &[Value]) -> RunId {
    let partial = Execution {
        status: String::new(),
        output: None,
        error: None,
        cause: None,
        events: events.to_vec(),
        ..Default::default()
    };
    run_id(&partial)
}

/// Uploads `body` under a new key, and runs its execution with `between` done before `LaunchJob`.
/// Returns the key and the execution.
async fn run_with_act_before_launch<'a>(
    stack: &'a Stack,
    name: &str,
    body: Vec<u8>,
    between: impl FnOnce(&'a Stack, String, RunId) -> BetweenSteps<'a> + 'a,
) -> (String, Execution) {
    let key = unique_key(name);
    stack.upload(&key, body, &[]).await.expect(NEEDS_STACK);
    let event = stack
        .receive_upload_event(&key, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    let key2 = key.clone();
    let act: BetweenSteps<'a> = Box::new(move |events: Vec<Value>| {
        let id = run_id_so_far(&events);
        between(stack, key2, id)(events)
    });
    let (ex, paused) = stack
        .run_execution_pausing_before(&event, LAUNCH, act)
        .await
        .expect("execution");
    assert!(
        paused,
        "the execution never reached {LAUNCH}: {}",
        explain(&ex)
    );
    (key, ex)
}

/// Before launch: the run is validated with a snapshot, and Bedrock has not been called.
async fn assert_validated_and_not_launched(stack: &Stack, id: &RunId) -> Run {
    let run = stack.run(id).await.unwrap();
    assert_eq!(run.status, RunStatus::Validated, "{run:?}");
    let (created, _) = calls_of(
        &stack.bedrock_calls().await.unwrap(),
        "CreateModelCustomizationJob",
    );
    assert!(created.is_empty(), "no job before LaunchJob: {created:?}");
    run
}

/// The one job's training URI (from the simulator's call log) is the run's snapshot, whose bytes
/// are `validated`.
async fn assert_trained_on_snapshot_of(stack: &Stack, run: &Run, validated: &[u8]) {
    let snap = run
        .snapshot
        .clone()
        .expect("a validated run has a snapshot");
    assert_eq!(
        snap.uri,
        format!("s3://{}/runs/{}/dataset.jsonl", stack.bucket(), run.run_id)
    );
    let calls = stack.bedrock_calls().await.unwrap();
    let (created, _) = calls_of(&calls, "CreateModelCustomizationJob");
    assert_eq!(created.len(), 1, "exactly one job: {created:?}");
    assert_eq!(
        created[0]["request"]["trainingDataS3Uri"], snap.uri,
        "Bedrock was given the snapshot, not the upload key: {}",
        created[0]
    );
    // The distilled weights are encrypted with the stack's key (CUSTOM_MODEL_KMS_KEY_ID), a value
    // the simulator checked against Bedrock's KmsKeyId pattern.
    assert_eq!(
        created[0]["request"]["customModelKmsKeyId"],
        stack.info.lambda_env["CUSTOM_MODEL_KMS_KEY_ID"]
    );
    let bytes = stack.read_s3_uri(&snap.uri).await.unwrap();
    assert!(bytes == validated, "the snapshot holds the validated bytes");
    assert_eq!(snap.size, validated.len() as u64);
    assert_eq!(snap.sha256, hex::encode(Sha256::digest(validated)));
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn overwrite_after_validation_still_trains_on_the_validated_bytes() {
    let stack = stack().await;
    let v1 = sample_dataset();
    let v2 = first_lines(110);
    let v2_for_act = v2.clone();
    let (key, ex) = run_with_act_before_launch(&stack, "overwritten", v1.clone(), |s, key, id| {
        Box::new(move |_| {
            Box::pin(async move {
                assert_validated_and_not_launched(s, &id).await;
                s.upload(&key, v2_for_act, &[]).await?;
                Ok(())
            })
        })
    })
    .await;
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_trained_on_snapshot_of(&stack, &run, &v1).await;
    // The upload key really holds other bytes now.
    let now = stack
        .read_s3_uri(&format!("s3://{}/{key}", stack.bucket()))
        .await
        .unwrap();
    assert!(now == v2 && now != v1);
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"]
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn delete_after_validation_still_trains_on_the_snapshot() {
    let stack = stack().await;
    let v1 = sample_dataset();
    let (key, ex) = run_with_act_before_launch(&stack, "deleted", v1.clone(), |s, key, id| {
        Box::new(move |_| {
            Box::pin(async move {
                assert_validated_and_not_launched(s, &id).await;
                s.s3.delete_object()
                    .bucket(s.bucket())
                    .key(&key)
                    .send()
                    .await?;
                Ok(())
            })
        })
    })
    .await;
    assert!(ex.succeeded(), "{}", explain(&ex));
    let run = stack.run(&run_id(&ex)).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_trained_on_snapshot_of(&stack, &run, &v1).await;
    assert!(
        stack
            .read_s3_uri(&format!("s3://{}/{key}", stack.bucket()))
            .await
            .is_err(),
        "the upload key is gone"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_snapshot_deleted_or_changed_before_launch_launches_nothing_and_fails_the_run() {
    let stack = stack().await;
    for (name, change, reason) in [
        (
            "snapshot-deleted",
            false,
            "is missing; nothing was launched",
        ),
        ("snapshot-changed", true, "changed after validation"),
    ] {
        let (_, ex) = run_with_act_before_launch(&stack, name, sample_dataset(), |s, _, id| {
            Box::new(move |_| {
                Box::pin(async move {
                    let run = assert_validated_and_not_launched(s, &id).await;
                    let snap = run.snapshot.expect("snapshot");
                    if change {
                        s.s3.put_object()
                            .bucket(&snap.bucket)
                            .key(&snap.key)
                            .body(first_lines(100).into())
                            .send()
                            .await?;
                    } else {
                        s.s3.delete_object()
                            .bucket(&snap.bucket)
                            .key(&snap.key)
                            .send()
                            .await?;
                    }
                    Ok(())
                })
            })
        })
        .await;
        assert_eq!(ex.error.as_deref(), Some("RunFailed"), "{}", explain(&ex));
        let id = run_id(&ex);
        let run = stack.run(&id).await.unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        let recorded = run.failure_reason.clone().unwrap_or_default();
        assert!(recorded.contains(reason), "{name}: {recorded}");
        assert!(
            recorded.contains(&format!("distillery runs retry {id}")),
            "{recorded}"
        );
        assert!(run.job_arn.is_none());
        let calls = stack.bedrock_calls().await.unwrap();
        assert!(
            calls_of(&calls, "CreateModelCustomizationJob").0.is_empty()
                && calls_of(&calls, "CreateModelCustomizationJob").1.is_empty(),
            "{name}: no CreateModelCustomizationJob call at all: {calls:?}"
        );
        let sns = sns_for(&stack, &id).await;
        assert_eq!(milestones(&sns), ["failed"], "{name}");
        assert!(sns[0].message.contains(reason), "{}", sns[0].message);
        assert_eq!(slack_mentioning(&stack, id.as_str()).await.len(), 1);
    }
}

/// Invalid v1 then valid v2 to the same key (the stack's bucket is unversioned, so each event pins
/// by its ETag): v1's execution finds other bytes under the key and rejects its run as changed (never
/// valid, nothing read); v2's execution validates v2 and trains on v2's snapshot. One job in all.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn invalid_v1_then_valid_v2_to_one_key_makes_one_job_on_v2s_snapshot() {
    let stack = stack().await;
    let key = unique_key("v1-then-v2");
    let v1 = std::fs::read(repo_root().join("examples/datasets/invalid-tickets.jsonl")).unwrap();
    let v2 = sample_dataset();
    let etag1 = stack.upload(&key, v1, &[]).await.expect(NEEDS_STACK);
    let event1 = stack
        .receive_upload_event(&key, std::time::Duration::from_secs(20))
        .await
        .unwrap();
    stack.upload(&key, v2.clone(), &[]).await.unwrap();
    let event2 = stack
        .receive_upload_event(&key, std::time::Duration::from_secs(20))
        .await
        .unwrap();

    let ex1 = stack.run_execution(&event1).await.unwrap();
    assert_eq!(
        ex1.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex1)
    );
    let id1 = run_id(&ex1);
    let run1 = stack.run(&id1).await.unwrap();
    assert_eq!(run1.status, RunStatus::Rejected);
    assert!(
        !run1.history.iter().any(|h| h.to == RunStatus::Validated),
        "v1 was never recorded valid"
    );
    assert!(run1.snapshot.is_none());
    let reason = run1.failure_reason.clone().unwrap_or_default();
    assert_eq!(
        reason,
        format!(
            "s3://{}/{key} changed after the upload event (ETag \"{}\"); the newer upload is validated by its own run",
            stack.bucket(),
            etag1.trim_matches('"')
        )
    );

    let ex2 = stack.run_execution(&event2).await.unwrap();
    assert!(ex2.succeeded(), "{}", explain(&ex2));
    let id2 = run_id(&ex2);
    assert_ne!(id1, id2);
    let run2 = stack.run(&id2).await.unwrap();
    assert_eq!(run2.status, RunStatus::Completed);
    assert_trained_on_snapshot_of(&stack, &run2, &v2).await;

    // Both runs' messages, from one drain of the SNS subscription.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let sns = stack.take_sns_deliveries().await.unwrap();
    let of = |id: &RunId| -> Vec<SnsDelivery> {
        sns.iter()
            .filter(|m| m.attributes.get("run_id").map(String::as_str) == Some(id.as_str()))
            .cloned()
            .collect()
    };
    let (sns1, sns2) = (of(&id1), of(&id2));
    assert_eq!(milestones(&sns1), ["rejected"], "{sns1:?}");
    assert!(
        sns1[0].message.contains("changed after the upload event"),
        "{}",
        sns1[0].message
    );
    assert_eq!(milestones(&sns2), ["launched", "completed"], "{sns2:?}");
}

/// The SAM template's bucket is versioned (the local stack's is not): there each event is read by its
/// version id. A versioned bucket made here, and events in real S3's shape (`events/s3-object-created.json`:
/// `etag`, `version-id`) for two versions of one key, run through the real state machine: v1 (invalid)
/// is rejected on v1's own bytes, read by its version id although v2 is current; v2 trains on its
/// snapshot. One job in all.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn on_a_versioned_bucket_each_event_is_read_by_its_version_id() {
    use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
    let stack = stack().await;
    let bucket = "distillery-datasets-versioned";
    // Already there when the suite ran before on this stack.
    let _ = stack.s3.create_bucket().bucket(bucket).send().await;
    stack
        .s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect(NEEDS_STACK);
    let key = unique_key("versioned");
    let v1 = std::fs::read(repo_root().join("examples/datasets/invalid-tickets.jsonl")).unwrap();
    let v2 = sample_dataset();
    let mut events = Vec::new();
    for body in [&v1, &v2] {
        let put = stack
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
        let mut event: Value = serde_json::from_slice(
            &std::fs::read(repo_root().join("events/s3-object-created.json")).unwrap(),
        )
        .unwrap();
        event["detail"]["bucket"]["name"] = bucket.into();
        event["detail"]["object"]["key"] = key.as_str().into();
        event["detail"]["object"]["size"] = body.len().into();
        event["detail"]["object"]["etag"] = put.e_tag().unwrap().trim_matches('"').into();
        event["detail"]["object"]["version-id"] = put.version_id().unwrap().into();
        events.push(event);
    }

    let ex1 = stack.run_execution(&events[0]).await.unwrap();
    assert_eq!(
        ex1.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex1)
    );
    let run1 = stack.run(&run_id(&ex1)).await.unwrap();
    assert_eq!(run1.status, RunStatus::Rejected);
    let v = run1.validation.clone().unwrap();
    assert!(
        v.invalid_records >= 3,
        "v1's own bytes were validated: {v:?}"
    );
    assert!(run1.snapshot.is_none());
    let report: Value =
        serde_json::from_slice(&stack.read_s3_uri(&v.report_uri.unwrap()).await.unwrap()).unwrap();
    assert_eq!(report["read"]["pinnedBy"], "versionId", "{report}");
    assert_eq!(
        report["read"]["versionId"],
        events[0]["detail"]["object"]["version-id"]
    );

    let ex2 = stack.run_execution(&events[1]).await.unwrap();
    assert!(ex2.succeeded(), "{}", explain(&ex2));
    let run2 = stack.run(&run_id(&ex2)).await.unwrap();
    assert_eq!(run2.status, RunStatus::Completed);
    let snap = run2.snapshot.clone().unwrap();
    assert_eq!(
        serde_json::to_value(&snap.source).unwrap(),
        json!({"pinnedBy": "versionId", "versionId": events[1]["detail"]["object"]["version-id"]})
    );
    assert_eq!(snap.bucket, bucket);
    let (created, _) = calls_of(
        &stack.bedrock_calls().await.unwrap(),
        "CreateModelCustomizationJob",
    );
    assert_eq!(created.len(), 1, "one job: {created:?}");
    assert_eq!(created[0]["request"]["trainingDataS3Uri"], snap.uri);
    assert!(stack.read_s3_uri(&snap.uri).await.unwrap() == v2);
    assert_eq!(snap.sha256, hex::encode(Sha256::digest(&v2)));
}

/// A launch refused with QuotaExceeded puts the run back in the queue; it launches later (in
/// production, possibly hours later). Here the first attempt is the test's own invocation of the
/// launcher, the snapshot is overwritten before the execution's attempt, and that attempt must check
/// the snapshot again as the run leaves the queue, and launch nothing.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_snapshot_changed_between_a_quota_refusal_and_the_retry_launches_nothing() {
    let stack = stack().await;
    let (_, ex) = run_with_act_before_launch(
        &stack,
        "quota-then-changed",
        sample_dataset(),
        |s, _, id| {
            Box::new(move |_| {
                Box::pin(async move {
                    let run = assert_validated_and_not_launched(s, &id).await;
                    s.bedrock_faults(&json!([
                        {"kind": "quotaExceeded", "count": 1, "operation": "CreateModelCustomizationJob"}
                    ]))
                    .await?;
                    let refused = s
                        .invoke("job-launcher", json!({ "runId": id }).to_string().into_bytes())
                        .await?
                        .expect("the quota refusal queues the run");
                    assert_eq!(refused["outcome"], "queued", "{refused}");
                    let queued = s.run(&id).await?;
                    assert_eq!(queued.status, RunStatus::Queued);
                    assert_eq!(queued.queue.map(|q| q.quota_refusals), Some(1));
                    let snap = run.snapshot.expect("snapshot");
                    s.s3.put_object()
                        .bucket(&snap.bucket)
                        .key(&snap.key)
                        .body(first_lines(100).into())
                        .send()
                        .await?;
                    Ok(())
                })
            })
        },
    )
    .await;
    assert_eq!(ex.error.as_deref(), Some("RunFailed"), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.job_arn.is_none());
    let reason = run.failure_reason.clone().unwrap_or_default();
    assert!(reason.contains("changed after validation"), "{reason}");
    let job_name = run
        .job_name
        .clone()
        .expect("job name recorded at launching");

    let calls = stack.bedrock_calls().await.unwrap();
    let (created, refused) = calls_of(&calls, "CreateModelCustomizationJob");
    assert!(created.is_empty(), "no job: {created:?}");
    assert_eq!(refused.len(), 1, "only the quota refusal: {refused:?}");
    // Refused before Bedrock was asked anything more.
    let (found, not_found) = calls_of(&calls, "GetModelCustomizationJob");
    assert!(
        found.is_empty() && not_found.is_empty(),
        "{found:?} {not_found:?}"
    );
    assert!(job_name.starts_with("distill-"), "{job_name}");

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["failed"]);
    assert!(
        sns[0].message.contains("changed after validation"),
        "{}",
        sns[0].message
    );
}
