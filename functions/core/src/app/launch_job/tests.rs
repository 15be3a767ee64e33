//! The launcher on in-memory ports: one job per run, typed Bedrock errors, the snapshot check.

use super::*;
use crate::domain::run::ValidationSummary;
use crate::domain::snapshot::{DatasetSnapshot, ObjectPin};
use crate::ports::{JobState, JobStatus, SystemClock};
use crate::testing::fakes::ScriptedBedrock;
use crate::testing::memory::{InMemoryDatasetStore, InMemoryRunLedger};
use crate::testing::sample_run;

const VALIDATED_BYTES: &str = "{\"validated\": true}\n";

async fn setup(
    key: &str,
) -> (
    JobLauncherService,
    Arc<InMemoryRunLedger>,
    Arc<ScriptedBedrock>,
    RunId,
) {
    let (svc, ledger, bedrock, _, id) = setup_with(key, |_| {}).await;
    (svc, ledger, bedrock, id)
}

/// A validated run for `s3://data-bucket/<key>` whose snapshot is in the store (`edit` may change
/// the run before it is recorded).
async fn setup_with(
    key: &str,
    edit: impl FnOnce(&mut Run),
) -> (
    JobLauncherService,
    Arc<InMemoryRunLedger>,
    Arc<ScriptedBedrock>,
    Arc<InMemoryDatasetStore>,
    RunId,
) {
    let ledger = Arc::new(InMemoryRunLedger::new());
    let bedrock = Arc::new(ScriptedBedrock::default());
    let store = Arc::new(InMemoryDatasetStore::new());
    let mut run = sample_run("data-bucket", key, "etag", 10, chrono::Utc::now());
    let id = run.run_id.clone();
    run.status = RunStatus::Validated;
    run.validation = Some(ValidationSummary {
        valid: true,
        ..Default::default()
    });
    let snapshot_key = format!("runs/{id}/dataset.jsonl");
    let etag = store.insert("data-bucket", &snapshot_key, VALIDATED_BYTES, &[]);
    run.snapshot = Some(DatasetSnapshot {
        uri: format!("s3://data-bucket/{snapshot_key}"),
        bucket: "data-bucket".into(),
        key: snapshot_key,
        size: VALIDATED_BYTES.len() as u64,
        sha256: "00".repeat(32),
        etag: etag.trim_matches('"').to_string(),
        source: ObjectPin::IfMatch {
            etag: "etag".into(),
        },
    });
    edit(&mut run);
    ledger.create(&run).await.unwrap();
    let svc = JobLauncherService {
        slots: ledger.clone(),
        callbacks: Arc::new(crate::testing::fakes::RecordingCallbacks::default()),
        ledger: ledger.clone(),
        bedrock: bedrock.clone(),
        store: store.clone(),
        clock: Arc::new(SystemClock),
        config: LauncherConfig::from_lookup(|k| {
            (k == "BEDROCK_ROLE_ARN").then(|| "arn:aws:iam::1:role/bedrock".to_string())
        })
        .unwrap(),
    };
    (svc, ledger, bedrock, store, id)
}

#[tokio::test]
async fn launches_once_and_a_retry_returns_the_same_job() {
    let (svc, ledger, bedrock, id) =
        setup("incoming/Support Tickets.jsonl".replace(' ', "-").as_str()).await;
    let out = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    let again = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(out, again);
    assert_eq!(bedrock.job_requests().len(), 1);
    assert_eq!(bedrock.calls(), ["create_job"]);
    let req = bedrock.job_requests()[0].clone();
    assert_eq!(
        req.client_request_token,
        naming::client_request_token(&id, "create-job")
    );
    assert_eq!(req.output_s3_uri, format!("s3://data-bucket/output/{id}/"));
    assert_eq!(req.job_tags["distillery:run-id"], id.to_string());
    assert_eq!(req.job_tags["distillery:managed-by"], "distillery");
    // No CUSTOM_MODEL_KMS_KEY_ID: Bedrock's own key.
    assert_eq!(req.custom_model_kms_key_id, None);
    // Bedrock gets the validated snapshot, never the upload key.
    assert_eq!(
        req.training_data,
        TrainingData::S3 {
            s3_uri: format!("s3://data-bucket/runs/{id}/dataset.jsonl")
        }
    );
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Training);
    assert_eq!(run.job_arn.as_deref(), Some(out.job_arn.as_str()));
    assert!(run.launched_at.is_some());
    let path: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
    assert_eq!(
        path[path.len() - 2..],
        [RunStatus::Launching, RunStatus::Training]
    );
}

#[tokio::test]
async fn throttling_is_typed_and_the_retry_reuses_the_token() {
    let (svc, ledger, bedrock, id) = setup("incoming/a.jsonl").await;
    bedrock.fail_next_create(PortError::Throttled("slow".into()));
    bedrock.fail_next_create(PortError::QuotaExceeded("jobs".into()));
    let e = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Throttled);
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Launching
    );
    // Bedrock's quota: the run waits in the queue instead of failing.
    let out = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(out.outcome, LaunchOutcome::Queued);
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
    svc.handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    // Each retry resumes a run in `launching`: it looks for the job by name first (none yet).
    assert_eq!(
        bedrock.calls(),
        [
            "create_job",
            "get_job",
            "create_job",
            "get_job",
            "create_job"
        ]
    );
    let calls = bedrock.job_requests();
    assert_eq!(bedrock.job_lookups(), [calls[0].job_name.as_str(); 2]);
    assert_eq!(calls.len(), 3);
    assert!(calls
        .iter()
        .all(|c| c.client_request_token == calls[0].client_request_token
            && c.job_name == calls[0].job_name));
}

#[tokio::test]
async fn a_rejected_run_or_a_bad_key_is_not_launched() {
    let (svc, ledger, bedrock, _, id) = setup_with("incoming/a.jsonl", |run| {
        if let Some(s) = run.snapshot.as_mut() {
            s.key = "runs/has space/dataset.jsonl".into();
        }
    })
    .await;
    let e = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::ConfigInvalid);
    assert!(e.message.contains("space"), "{}", e.message);
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Validated
    );
    ledger
        .update(
            &id,
            &[RunStatus::Validated],
            &RunUpdate::to(RunStatus::Failed),
        )
        .await
        .unwrap();
    let e = svc.handle(LaunchJobInput::launch(id)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(bedrock.calls().is_empty());
    let missing = svc
        .handle(LaunchJobInput::launch(RunId("run-nope".into())))
        .await
        .unwrap_err();
    assert_eq!(missing.error_type, ErrorType::NotFound);
    let fixture: LaunchJobInput =
        serde_json::from_str(include_str!("../../../../../events/launch-job.json")).unwrap();
    assert!(fixture.run_id.as_str().starts_with("run-"));
    let _: LaunchJobOutput =
        serde_json::from_str(include_str!("../../../../../events/launch-job-output.json")).unwrap();
}

/// A launch the snapshot check refused: no Bedrock call, the run `failed` with `reason_has` in its
/// reason (which says how to retry), the error typed `want`.
async fn assert_refused(
    svc: &JobLauncherService,
    ledger: &InMemoryRunLedger,
    bedrock: &ScriptedBedrock,
    id: &RunId,
    want: ErrorType,
    reason_has: &str,
) {
    let e = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, want, "{}", e.message);
    assert!(e.message.contains(reason_has), "{}", e.message);
    assert!(bedrock.calls().is_empty(), "{:?}", bedrock.calls());
    let run = ledger.get(id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.failure_reason.unwrap();
    assert!(reason.contains(reason_has), "{reason}");
    assert!(
        reason.contains(&format!("distillery runs retry {id}")),
        "{reason}"
    );
    assert!(run.finished_at.is_some());
}

#[tokio::test]
async fn a_deleted_snapshot_launches_nothing_and_fails_the_run() {
    let (svc, ledger, bedrock, store, id) = setup_with("incoming/a.jsonl", |_| {}).await;
    store.remove("data-bucket", &format!("runs/{id}/dataset.jsonl"));
    assert_refused(
        &svc,
        &ledger,
        &bedrock,
        &id,
        ErrorType::NotFound,
        "is missing",
    )
    .await;
}

#[tokio::test]
async fn a_changed_snapshot_launches_nothing_and_fails_the_run() {
    let (svc, ledger, bedrock, store, id) = setup_with("incoming/a.jsonl", |_| {}).await;
    store.insert(
        "data-bucket",
        &format!("runs/{id}/dataset.jsonl"),
        "{\"not\": \"validated\"}\n",
        &[],
    );
    assert_refused(
        &svc,
        &ledger,
        &bedrock,
        &id,
        ErrorType::Conflict,
        "changed after validation",
    )
    .await;
}

#[tokio::test]
async fn an_uploaded_dataset_without_a_snapshot_is_never_launched_from_its_upload_key() {
    let (svc, ledger, bedrock, _, id) =
        setup_with("incoming/a.jsonl", |run| run.snapshot = None).await;
    assert_refused(
        &svc,
        &ledger,
        &bedrock,
        &id,
        ErrorType::Conflict,
        "no dataset snapshot",
    )
    .await;
}

#[tokio::test]
async fn an_unchanged_snapshot_with_the_upload_key_gone_still_launches() {
    let (svc, ledger, bedrock, store, id) = setup_with("incoming/a.jsonl", |_| {}).await;
    store.insert("data-bucket", "incoming/a.jsonl", "overwritten", &[]);
    store.remove("data-bucket", "incoming/a.jsonl");
    svc.handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(bedrock.calls(), ["create_job"]);
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Training
    );
}

/// A run put back in the queue by an attempt Bedrock refused with QuotaExceeded (no job created).
async fn left_launching_by_quota() -> (
    JobLauncherService,
    Arc<InMemoryRunLedger>,
    Arc<ScriptedBedrock>,
    Arc<InMemoryDatasetStore>,
    RunId,
) {
    let (svc, ledger, bedrock, store, id) = setup_with("incoming/a.jsonl", |_| {}).await;
    bedrock.fail_next_create(PortError::QuotaExceeded("jobs".into()));
    let out = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(out.outcome, LaunchOutcome::Queued);
    assert!(out.job_arn.is_empty());
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Queued);
    let q = run.queue.unwrap();
    assert_eq!(q.quota_refusals, 1);
    assert!(
        q.held_until.is_some(),
        "held back before it is offered a slot again"
    );
    assert!(q.reason.contains("quota"), "{}", q.reason);
    bedrock.clear_calls();
    (svc, ledger, bedrock, store, id)
}

#[tokio::test]
async fn a_retry_after_quota_exceeded_rechecks_the_snapshot_and_launches_nothing_if_it_changed() {
    let (svc, ledger, bedrock, store, id) = left_launching_by_quota().await;
    store.insert(
        "data-bucket",
        &format!("runs/{id}/dataset.jsonl"),
        "{\"not\": \"validated\"}\n",
        &[],
    );
    let e = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict, "{}", e.message);
    assert!(
        e.message.contains("changed after validation"),
        "{}",
        e.message
    );
    // Leaving the queue checks the snapshot first: refused before any Bedrock call.
    assert!(bedrock.calls().is_empty(), "{:?}", bedrock.calls());
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run
        .failure_reason
        .unwrap()
        .contains(&format!("distillery runs retry {id}")));
}

#[tokio::test]
async fn a_retry_after_quota_exceeded_launches_nothing_if_the_snapshot_was_deleted() {
    let (svc, ledger, bedrock, store, id) = left_launching_by_quota().await;
    store.remove("data-bucket", &format!("runs/{id}/dataset.jsonl"));
    let e = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::NotFound, "{}", e.message);
    assert!(e.message.contains("is missing"), "{}", e.message);
    assert!(bedrock.calls().is_empty(), "{:?}", bedrock.calls());
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Failed
    );
}

#[tokio::test]
async fn a_run_resumed_in_launching_adopts_the_job_an_earlier_attempt_created() {
    let (svc, ledger, bedrock, store, id) = setup_with("incoming/a.jsonl", |run| {
        run.status = RunStatus::Launching;
        run.job_name = Some("earlier-job-name".into());
    })
    .await;
    let arn = "arn:aws:bedrock:us-east-1:1:model-customization-job/nova/abcdef012345";
    lock_jobs(&bedrock).push_back(Ok(JobState {
        job_arn: arn.into(),
        status: JobStatus::InProgress,
        validation: None,
        data_processing: None,
        training: None,
        failure_message: None,
        output_model_arn: None,
        output_model_name: None,
    }));
    // The job already reads whatever it read: a snapshot changed since is not a reason to abandon
    // (or duplicate) a paid job, so it is not looked at.
    store.remove("data-bucket", &format!("runs/{id}/dataset.jsonl"));
    let out = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(out.job_arn, arn);
    assert_eq!(bedrock.calls(), ["get_job"]);
    assert_eq!(bedrock.job_lookups(), ["earlier-job-name"]);
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Training);
    assert_eq!(run.job_arn.as_deref(), Some(arn));
    assert!(run.launched_at.is_some());
}

#[tokio::test]
async fn a_failed_job_lookup_on_resume_is_typed_and_changes_nothing() {
    let (svc, ledger, bedrock, _, id) = left_launching_by_quota().await;
    lock_jobs(&bedrock).push_back(Err(PortError::Throttled("slow down".into())));
    let e = svc
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Throttled, "{}", e.message);
    assert_eq!(bedrock.calls(), ["get_job"]);
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Launching
    );
}

fn lock_jobs(
    bedrock: &ScriptedBedrock,
) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Result<JobState, PortError>>> {
    bedrock.jobs.lock().unwrap()
}

/// An invocation-log run in `mode` (the setup's snapshot kept for a curated run, dropped for a
/// native one unless `keep_snapshot`).
fn as_log_run(run: &mut Run, mode: LogRunMode, keep_snapshot: bool) {
    run.source = crate::domain::run::RunSource::Schedule;
    run.dataset = DatasetLocation::InvocationLogs {
        s3_uri: "s3://logs-bucket/bedrock-logs/".into(),
        request_metadata_filters: Some(serde_json::json!({"equals": {"app": "support-bot"}})),
        use_prompt_response: true,
        mode,
        schedule_name: Some("nightly".into()),
        window_start: None,
        window_end: None,
    };
    if !keep_snapshot {
        run.snapshot = None;
    }
}

#[tokio::test]
async fn a_curated_log_run_trains_on_its_snapshot_never_on_the_raw_logs() {
    let (svc, _, bedrock, _, id) = setup_with("incoming/a.jsonl", |run| {
        as_log_run(run, LogRunMode::Curated, true)
    })
    .await;
    svc.handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    let req = bedrock.job_requests.lock().unwrap()[0].clone();
    assert_eq!(
        req.training_data,
        TrainingData::S3 {
            s3_uri: format!("s3://data-bucket/runs/{id}/dataset.jsonl")
        }
    );
    // The output goes beside the snapshot, not into the logs' bucket.
    assert!(
        req.output_s3_uri.starts_with("s3://data-bucket/output/"),
        "{}",
        req.output_s3_uri
    );
}

#[tokio::test]
async fn a_curated_log_run_without_a_snapshot_is_never_launched_on_the_logs() {
    let (svc, ledger, bedrock, _, id) = setup_with("incoming/a.jsonl", |run| {
        as_log_run(run, LogRunMode::Curated, false)
    })
    .await;
    assert_refused(
        &svc,
        &ledger,
        &bedrock,
        &id,
        ErrorType::Conflict,
        "the raw logs are never passed to Bedrock",
    )
    .await;
}

#[tokio::test]
async fn a_native_log_run_passes_the_prefix_and_the_filter_to_bedrock() {
    let (svc, _, bedrock, _, id) = setup_with("incoming/a.jsonl", |run| {
        as_log_run(run, LogRunMode::Native, false)
    })
    .await;
    svc.handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    let req = bedrock.job_requests.lock().unwrap()[0].clone();
    assert_eq!(
        req.training_data,
        TrainingData::InvocationLogs {
            s3_uri: "s3://logs-bucket/bedrock-logs/".into(),
            use_prompt_response: true,
            request_metadata_filters: Some(serde_json::json!({"equals": {"app": "support-bot"}})),
        }
    );
    assert!(
        req.output_s3_uri.starts_with("s3://logs-bucket/output/"),
        "{}",
        req.output_s3_uri
    );
}

#[test]
fn the_choice_is_the_snapshot_whenever_there_is_one() {
    let mut run = sample_run(
        "data-bucket",
        "incoming/a.jsonl",
        "etag",
        10,
        chrono::Utc::now(),
    );
    as_log_run(&mut run, LogRunMode::Native, false);
    assert!(matches!(
        training_data(&run).unwrap().0,
        TrainingData::InvocationLogs { .. }
    ));
    run.snapshot = Some(DatasetSnapshot {
        uri: "s3://snap/runs/x/dataset.jsonl".into(),
        bucket: "snap".into(),
        key: "runs/x/dataset.jsonl".into(),
        size: 1,
        sha256: "00".repeat(32),
        etag: "e".into(),
        source: ObjectPin::IfMatch { etag: "e".into() },
    });
    let (data, bucket) = training_data(&run).unwrap();
    assert_eq!(
        data,
        TrainingData::S3 {
            s3_uri: "s3://snap/runs/x/dataset.jsonl".into()
        }
    );
    assert_eq!(bucket, "snap");
}

#[tokio::test]
async fn the_stacks_key_encrypts_the_custom_model_when_set() {
    let (mut svc, _, bedrock, id) = setup("incoming/keyed.jsonl").await;
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    svc.config = LauncherConfig::from_lookup(|k| match k {
        "BEDROCK_ROLE_ARN" => Some("arn:aws:iam::1:role/bedrock".into()),
        "CUSTOM_MODEL_KMS_KEY_ID" => Some(key.into()),
        _ => None,
    })
    .unwrap();
    svc.handle(LaunchJobInput::launch(id)).await.unwrap();
    assert_eq!(
        bedrock.job_requests()[0].custom_model_kms_key_id.as_deref(),
        Some(key)
    );
}

#[test]
fn kms_key_ids_have_bedrocks_shape() {
    for ok in [
        "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/distillery-data",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "alias/my_key/x",
    ] {
        assert!(is_kms_key_id(ok), "{ok}");
    }
    for bad in [
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:kms:us-east-1:1234:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "arn:aws:kms:us-east-1:123456789012:key/short",
        "alias/",
        "key with spaces",
    ] {
        assert!(!is_kms_key_id(bad), "{bad}");
    }
    let e = LauncherConfig::from_lookup(|k| match k {
        "BEDROCK_ROLE_ARN" => Some("arn:aws:iam::1:role/bedrock".into()),
        "CUSTOM_MODEL_KMS_KEY_ID" => Some("my-key".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(
        e.message
            .starts_with("CUSTOM_MODEL_KMS_KEY_ID must be a KMS key ARN"),
        "{}",
        e.message
    );
}
