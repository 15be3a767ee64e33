//! The job launcher against the Bedrock simulator (real `aws-sdk-bedrock` calls over HTTP) and the
//! ledger on moto: one job per run however often it is retried, and Bedrock's throttling and quota
//! errors surfaced as typed step errors the state machine retries. The job trains on the run's
//! snapshot in S3 (moto), which the launcher checks is unchanged before it creates the job (again when
//! a retry resumes a run in `launching` and finds no job under its name).

use std::sync::Arc;

use aws_sdk_bedrock::config::retry::RetryConfig;
use bedrock_sim::{Operation, SimConfig};
use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::launch_job::{
    JobLauncherService, LaunchJobInput, LaunchOutcome, LauncherConfig,
};
use distillery_core::domain::errors::ErrorType;
use distillery_core::domain::run::{RunId, RunStatus, RunUpdate, ValidationSummary};
use distillery_core::domain::snapshot::{DatasetSnapshot, ObjectPin};
use distillery_core::ports::{
    CustomizationService, DatasetStore, JobStatus, RunLedger, SystemClock,
};
use distillery_core::testing::sample_run;
use distillery_test_support::Moto;

struct Env {
    _moto: Moto,
    sim: bedrock_sim::SimHandle,
    ledger: Arc<DynamoRunLedger>,
    launcher: JobLauncherService,
    bedrock: Arc<BedrockCustomizationService>,
    bedrock_client: aws_sdk_bedrock::Client,
    store: Arc<S3DatasetStore>,
}

const BUCKET: &str = "distillery-datasets";

async fn env(table: &str) -> Env {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&ddb, table).await.unwrap();
    let ledger = Arc::new(DynamoRunLedger::new(ddb, table));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    // One moto per test: the bucket may already exist when DISTILLERY_TEST_MOTO_URL is shared.
    let _ = s3.create_bucket().bucket(BUCKET).send().await;
    let store = Arc::new(S3DatasetStore::new(s3));
    let sim = bedrock_sim::start(SimConfig::default());
    // SDK retries off, so one injected fault is one error the launcher must classify.
    let bedrock_conf = aws_sdk_bedrock::config::Builder::from(&sdk)
        .endpoint_url(sim.endpoint())
        .retry_config(RetryConfig::disabled())
        .build();
    let bedrock_client = aws_sdk_bedrock::Client::from_conf(bedrock_conf);
    let bedrock = Arc::new(BedrockCustomizationService::new(bedrock_client.clone()));
    let launcher = JobLauncherService {
        slots: ledger.clone(),
        callbacks: Arc::new(distillery_core::testing::fakes::RecordingCallbacks::default()),
        ledger: ledger.clone(),
        bedrock: bedrock.clone(),
        store: store.clone(),
        clock: Arc::new(SystemClock),
        config: LauncherConfig::from_lookup(|k| {
            (k == "BEDROCK_ROLE_ARN")
                .then(|| "arn:aws:iam::123456789012:role/distillery-bedrock".to_string())
        })
        .unwrap(),
    };
    Env {
        _moto: moto,
        sim,
        ledger,
        launcher,
        bedrock,
        bedrock_client,
        store,
    }
}

/// A validated run whose snapshot (what the validator would have written) is in moto's bucket.
async fn validated_run(e: &Env, key: &str) -> RunId {
    let mut run = sample_run(BUCKET, key, "etag", 100, chrono::Utc::now());
    run.validation = Some(ValidationSummary {
        valid: true,
        ..Default::default()
    });
    let snapshot_key = format!("runs/{}/dataset.jsonl", run.run_id);
    let body = b"{\"validated\": true}\n".to_vec();
    let size = body.len() as u64;
    e.store
        .put(BUCKET, &snapshot_key, body, "application/x-ndjson")
        .await
        .unwrap();
    let etag = e
        .store
        .head(BUCKET, &snapshot_key, None)
        .await
        .unwrap()
        .etag;
    run.snapshot = Some(DatasetSnapshot {
        uri: format!("s3://{BUCKET}/{snapshot_key}"),
        bucket: BUCKET.into(),
        key: snapshot_key,
        size,
        sha256: "00".repeat(32),
        etag: etag.trim_matches('"').to_string(),
        source: ObjectPin::IfMatch {
            etag: "etag".into(),
        },
    });
    e.ledger.create(&run).await.unwrap();
    let id = run.run_id.clone();
    for (from, to) in [
        (RunStatus::Received, RunStatus::Validating),
        (RunStatus::Validating, RunStatus::Validated),
    ] {
        e.ledger
            .update(&id, &[from], &RunUpdate::to(to))
            .await
            .unwrap();
    }
    id
}

#[tokio::test]
async fn a_retried_launch_creates_exactly_one_job() {
    let e = env("launch-idempotent").await;
    let id = validated_run(&e, "incoming/support-tickets.jsonl").await;
    let out = e
        .launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert!(
        out.job_name.starts_with("distill-support-tickets-"),
        "{out:?}"
    );

    // A retry after success returns the recorded job without calling Bedrock.
    let again = e
        .launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(out, again);

    let id2 = validated_run(&e, "incoming/second.jsonl").await;
    let (a, b) = tokio::join!(
        e.launcher.handle(LaunchJobInput::launch(id2.clone())),
        e.launcher.handle(LaunchJobInput::launch(id2.clone()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.job_arn, b.job_arn);

    assert_ne!(out.job_arn, a.job_arn);
    // Bedrock (the simulator) lists exactly two jobs: one per run, whatever the retries.
    let listed = e
        .bedrock_client
        .list_model_customization_jobs()
        .send()
        .await
        .unwrap();
    assert_eq!(listed.model_customization_job_summaries().len(), 2);
    // Bedrock (the simulator) holds exactly one job per run.
    for (run, arn) in [(&id, &out.job_arn), (&id2, &a.job_arn)] {
        let state = e.bedrock.get_job(arn).await.unwrap();
        assert_eq!(&state.job_arn, arn);
        assert!(matches!(
            state.status,
            JobStatus::InProgress | JobStatus::Completed
        ));
        let r = e.ledger.get(run).await.unwrap().unwrap();
        assert_eq!(r.status, RunStatus::Training);
        assert_eq!(r.job_arn.as_ref(), Some(arn));
    }
}

#[tokio::test]
async fn a_crash_after_launching_is_recovered_with_the_same_token() {
    let e = env("launch-crash").await;
    let id = validated_run(&e, "incoming/crash.jsonl").await;
    // First attempt: Bedrock throttles after the run was marked `launching`.
    e.sim
        .throttle_next_of(Operation::CreateModelCustomizationJob, 1);
    let err = e
        .launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::Throttled, "{err}");
    assert_eq!(
        e.ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Launching
    );
    // Quota next: the run waits in the queue rather than failing.
    e.sim.quota_exceeded_next(1);
    let queued = e
        .launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(queued.outcome, LaunchOutcome::Queued, "{queued:?}");
    assert_eq!(
        e.ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
    // The retry succeeds; the request is the same (token and names).
    let out = e
        .launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    let calls = e.sim.calls_of(Operation::CreateModelCustomizationJob);
    assert_eq!(calls.len(), 3, "{calls:?}");
    let tokens: Vec<Option<&str>> = calls
        .iter()
        .map(|c| c.field("clientRequestToken"))
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(calls.iter().filter(|c| c.succeeded()).count(), 1);
    let run = e.ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.job_arn.as_deref(), Some(out.job_arn.as_str()));
    assert!(run.launched_at.is_some());
}

#[tokio::test]
async fn the_job_trains_on_the_snapshot_and_a_changed_snapshot_launches_nothing() {
    let e = env("launch-snapshot").await;
    let id = validated_run(&e, "incoming/snap.jsonl").await;
    e.launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    let calls = e.sim.calls_of(Operation::CreateModelCustomizationJob);
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].field("trainingDataS3Uri"),
        Some(format!("s3://{BUCKET}/runs/{id}/dataset.jsonl").as_str()),
        "{:?}",
        calls[0].request
    );

    // Another run whose snapshot was overwritten after validation: no Bedrock call, run failed.
    let id2 = validated_run(&e, "incoming/changed.jsonl").await;
    e.store
        .put(
            BUCKET,
            &format!("runs/{id2}/dataset.jsonl"),
            b"{\"not\": \"validated\"}\n".to_vec(),
            "application/x-ndjson",
        )
        .await
        .unwrap();
    let err = e
        .launcher
        .handle(LaunchJobInput::launch(id2.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::Conflict, "{err}");
    assert!(err.message.contains("changed after validation"), "{err}");
    assert_eq!(
        e.sim.calls_of(Operation::CreateModelCustomizationJob).len(),
        1
    );
    let run = e.ledger.get(&id2).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run
        .failure_reason
        .unwrap()
        .contains("changed after validation"));
}

/// The `GetModelCustomizationJob` calls that looked up `job_name` (by name, not ARN).
fn lookups_by_name(e: &Env, job_name: &str) -> Vec<bedrock_sim::CallRecord> {
    e.sim
        .calls_of(Operation::GetModelCustomizationJob)
        .into_iter()
        .filter(|c| c.field("jobIdentifier") == Some(job_name))
        .collect()
}

#[tokio::test]
async fn a_resumed_launch_adopts_its_job_by_name_or_rechecks_the_snapshot_before_creating() {
    let e = env("launch-resume").await;
    let overwrite_snapshot = |id: RunId| {
        let store = e.store.clone();
        async move {
            store
                .put(
                    BUCKET,
                    &format!("runs/{id}/dataset.jsonl"),
                    b"{\"not\": \"validated\"}\n".to_vec(),
                    "application/x-ndjson",
                )
                .await
                .unwrap()
        }
    };

    // 1. An attempt whose job Bedrock created, but whose answer was lost (here: the job is created
    // directly with the run's request after a throttled attempt left the run `launching`).
    let id = validated_run(&e, "incoming/lost-answer.jsonl").await;
    e.sim
        .throttle_next_of(Operation::CreateModelCustomizationJob, 1);
    let err = e
        .launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::Throttled, "{err}");
    let run = e.ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Launching);
    let req = e.launcher.build_request(&run).unwrap();
    let created = e.bedrock.create_distillation_job(&req).await.unwrap();
    // Changed after the job read it: the running job is adopted, not abandoned or duplicated.
    overwrite_snapshot(id.clone()).await;
    let out = e
        .launcher
        .handle(LaunchJobInput::launch(id.clone()))
        .await
        .unwrap();
    assert_eq!(out.job_arn, created);
    let lookups = lookups_by_name(&e, &req.job_name);
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert!(lookups[0].succeeded());
    let creates = e.sim.calls_of(Operation::CreateModelCustomizationJob);
    assert_eq!(creates.iter().filter(|c| c.succeeded()).count(), 1);
    let run = e.ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Training);
    assert_eq!(run.job_arn.as_deref(), Some(created.as_str()));

    // 2. QuotaExceeded (the run queued), then the snapshot changes before the next attempt: the
    // snapshot is checked again as the run leaves the queue, nothing is created and the run is
    // failed.
    let id2 = validated_run(&e, "incoming/quota-then-changed.jsonl").await;
    e.sim.quota_exceeded_next(1);
    let queued = e
        .launcher
        .handle(LaunchJobInput::launch(id2.clone()))
        .await
        .unwrap();
    assert_eq!(queued.outcome, LaunchOutcome::Queued, "{queued:?}");
    let job_name2 = e.ledger.get(&id2).await.unwrap().unwrap().job_name.unwrap();
    overwrite_snapshot(id2.clone()).await;
    let err = e
        .launcher
        .handle(LaunchJobInput::launch(id2.clone()))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::Conflict, "{err}");
    assert!(err.message.contains("changed after validation"), "{err}");
    let lookups = lookups_by_name(&e, &job_name2);
    assert!(lookups.is_empty(), "refused before any lookup: {lookups:?}");
    let creates2: Vec<_> = e
        .sim
        .calls_of(Operation::CreateModelCustomizationJob)
        .into_iter()
        .filter(|c| c.field("jobName") == Some(job_name2.as_str()))
        .collect();
    assert_eq!(creates2.len(), 1, "only the refused attempt: {creates2:?}");
    assert!(!creates2[0].succeeded());
    let run2 = e.ledger.get(&id2).await.unwrap().unwrap();
    assert_eq!(run2.status, RunStatus::Failed);
    assert!(run2.job_arn.is_none());
}
