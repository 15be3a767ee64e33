//! `distillery runs reconcile [--dry-run]` against moto (the ledger) and the Bedrock simulator: a run
//! whose job finished while nothing polled it, and a running job that no run owns.

use std::collections::BTreeMap;
use std::time::Duration;

use assert_cmd::Command;
use bedrock_sim::{Operation, SimConfig, SimHandle, Timing};
use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_core::domain::run::{RunId, RunStatus};
use distillery_core::domain::tags::RUN_ID_TAG;
use distillery_core::ports::{
    CustomizationService, DistillationJobRequest, JobStatus, RunLedger, TrainingData,
};
use distillery_test_support::Moto;

const TABLE: &str = "distillery-reconcile-cli-test";

fn request(name: &str, run_id: &str) -> DistillationJobRequest {
    let tags = BTreeMap::from([(RUN_ID_TAG.to_string(), run_id.to_string())]);
    DistillationJobRequest {
        job_name: name.into(),
        custom_model_name: format!("{name}-model"),
        role_arn: "arn:aws:iam::123456789012:role/distillery-bedrock-distillation".into(),
        student: "amazon.nova-lite-v1:0:300k".into(),
        teacher: "amazon.nova-pro-v1:0".into(),
        max_response_length: 1000,
        training_data: TrainingData::S3 {
            s3_uri: "s3://datasets/incoming/x.jsonl".into(),
        },
        output_s3_uri: "s3://datasets/output/".into(),
        client_request_token: format!("tok-{name}"),
        job_tags: tags.clone(),
        custom_model_tags: tags,
        custom_model_kms_key_id: None,
    }
}

fn distillery(moto: &Moto, sim: &SimHandle) -> Command {
    let mut cmd = Command::cargo_bin("distillery").unwrap();
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ENDPOINT_URL_BEDROCK", sim.endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("TABLE_NAME", TABLE)
        .env_remove("TOPIC_ARN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn reconcile_dry_run_changes_nothing_then_repairs() {
    let moto = Moto::start();
    let sim = bedrock_sim::start(SimConfig {
        timing: Timing {
            phase_ms: 20,
            stop_ms: 20,
            pt_ms: 20,
        },
        ..SimConfig::default()
    });
    let cfg = moto.sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&cfg);
    create_table(&dynamo, TABLE).await.unwrap();
    let ledger = DynamoRunLedger::new(dynamo, TABLE);
    let bedrock = BedrockCustomizationService::from_conf(
        &distillery_test_support::sdk_config(sim.endpoint()).await,
    );

    // A training run whose job completes in 60 ms; nothing polls it.
    let finished = bedrock
        .create_distillation_job(&request("finished-job", "run-finished"))
        .await
        .unwrap();
    let mut run = distillery_core::testing::sample_run(
        "datasets",
        "incoming/finished.jsonl",
        "etag-1",
        10,
        chrono::Utc::now(),
    );
    run.run_id = RunId("run-finished".into());
    run.status = RunStatus::Training;
    run.job_arn = Some(finished.clone());
    run.launched_at = Some(chrono::Utc::now());
    ledger.create(&run).await.unwrap();
    // A job that trains until stopped, for a run the ledger never heard of.
    sim.hang_next_jobs(1);
    let orphan = bedrock
        .create_distillation_job(&request("orphan-job", "run-ghost"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let dry = stdout_of(distillery(&moto, &sim).args([
        "runs",
        "reconcile",
        "--dry-run",
        "--quiet-period-seconds",
        "0",
    ]));
    assert!(
        dry.starts_with("dry run: checked 0 received/validating run(s), 1 training run(s)"),
        "{dry}"
    );
    assert_eq!(dry.matches("[would repair]").count(), 2, "{dry}");
    assert!(
        dry.contains(&orphan) && dry.contains("run-finished"),
        "{dry}"
    );
    assert!(sim
        .calls_of(Operation::StopModelCustomizationJob)
        .is_empty());
    let id = RunId("run-finished".into());
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Training
    );

    let done = stdout_of(distillery(&moto, &sim).args([
        "runs",
        "reconcile",
        "--quiet-period-seconds",
        "0",
    ]));
    assert_eq!(done.matches("[repaired]").count(), 2, "{done}");
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().status,
        RunStatus::Completed
    );
    let stops = sim.calls_of(Operation::StopModelCustomizationJob);
    assert_eq!(stops.len(), 1, "{stops:?}");
    let job = bedrock.get_job(&orphan).await.unwrap();
    assert!(
        matches!(job.status, JobStatus::Stopping | JobStatus::Stopped),
        "{job:?}"
    );

    // Nothing left to do; JSON output.
    let again = stdout_of(distillery(&moto, &sim).args([
        "runs",
        "reconcile",
        "--quiet-period-seconds",
        "0",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(v["findings"].as_array().unwrap().len(), 0, "{v}");
}
