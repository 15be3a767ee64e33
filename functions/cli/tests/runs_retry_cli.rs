//! `distillery runs retry` against a moto server: the ledger (DynamoDB) holds the old run, S3 the
//! dataset, Step Functions the state machine whose execution must carry `retryOf`.

use assert_cmd::Command;
use aws_sdk_s3::primitives::ByteStream;
use chrono::Utc;
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_core::app::validate_dataset::ValidateInput;
use distillery_core::domain::run::{Run, RunStatus};
use distillery_core::ports::RunLedger;
use distillery_core::testing::sample_run;
use distillery_test_support::Moto;
use predicates::prelude::*;
use serde_json::{json, Value};

const BUCKET: &str = "distillery-datasets";
const KEY: &str = "incoming/units.jsonl";
const TABLE: &str = "distillery-runs";

struct Fixture {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    sfn: aws_sdk_sfn::Client,
    ledger: DynamoRunLedger,
    state_machine_arn: String,
    etag: String,
}

/// The object as a careless user uploaded it (`distillery-model-units: 5`, over the cap of 1).
async fn fixture() -> Fixture {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let etag = s3
        .put_object()
        .bucket(BUCKET)
        .key(KEY)
        .metadata("distillery-serving", "provisioned")
        .metadata("distillery-model-units", "5")
        .body(ByteStream::from_static(b"{}\n"))
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&dynamo, TABLE).await.unwrap();
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let definition = json!({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}});
    let state_machine_arn = sfn
        .create_state_machine()
        .name("distillery-pipeline")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/distillery-state-machine")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    Fixture {
        moto,
        s3,
        sfn,
        ledger: DynamoRunLedger::new(dynamo, TABLE),
        state_machine_arn,
        etag,
    }
}

/// A run of the object in `status`, as the validator would have left it.
async fn seed(f: &Fixture, status: RunStatus, etag: &str) -> Run {
    let mut run = sample_run(BUCKET, KEY, etag.trim_matches('"'), 3, Utc::now());
    run.status = status;
    run.attempt = 1;
    f.ledger.create(&run).await.unwrap();
    run
}

fn distillery(f: &Fixture) -> Command {
    let mut cmd = Command::cargo_bin("distillery").unwrap();
    cmd.env("AWS_ENDPOINT_URL", &f.moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("STATE_MACHINE_ARN", &f.state_machine_arn)
        .env("TABLE_NAME", TABLE)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    for var in [
        "UPLOAD_PREFIX",
        "UPLOAD_SUFFIX",
        "DEFAULT_TEACHER",
        "DEFAULT_STUDENT",
        "DEFAULT_MAX_RESPONSE_LENGTH",
        "SERVING_MODE",
        "MODEL_UNITS",
        "COMMITMENT",
        "MAX_MODEL_UNITS",
        "ALLOWED_COMMITMENTS",
    ] {
        cmd.env_remove(var);
    }
    // A stack that allows what these tests ask for, as the local stack does (the code's defaults
    // are closed: tests of those set the variables themselves).
    cmd.env("ALLOW_PROVISIONING", "true")
        .env("ALLOW_OVERRIDES", "all");
    cmd
}

async fn execution_inputs(f: &Fixture) -> Vec<Value> {
    let list = f
        .sfn
        .list_executions()
        .state_machine_arn(&f.state_machine_arn)
        .send()
        .await
        .unwrap();
    let mut inputs = Vec::new();
    for e in list.executions() {
        let d = f
            .sfn
            .describe_execution()
            .execution_arn(e.execution_arn())
            .send()
            .await
            .unwrap();
        inputs.push(serde_json::from_str(d.input().unwrap()).unwrap());
    }
    inputs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn retry_starts_a_linked_attempt_with_changed_settings() {
    let f = fixture().await;
    let old = seed(&f, RunStatus::Rejected, &f.etag).await;
    let out = distillery(&f)
        .args([
            "runs",
            "retry",
            old.run_id.as_str(),
            "--model-units",
            "1",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let printed: Value = serde_json::from_slice(&out).unwrap();
    let new_id = printed["runId"].as_str().unwrap();
    assert!(new_id.starts_with("run-") && new_id != old.run_id.as_str());
    assert_eq!(printed["settings"]["modelUnits"], 1);
    let inputs = execution_inputs(&f).await;
    assert_eq!(
        inputs,
        vec![json!({
            "source": "distillery.cli",
            "bucket": BUCKET,
            "key": KEY,
            "overrides": {"modelUnits": "1"},
            "retryOf": old.run_id.as_str(),
        })]
    );
    match ValidateInput::parse(inputs[0].clone()).unwrap() {
        ValidateInput::Submit(p) => assert_eq!(p.retry_of.as_ref(), Some(&old.run_id)),
        other => panic!("{other:?}"),
    }
    // `runs show` names the link and the owner of a retried run.
    let mut linked = sample_run(BUCKET, KEY, "linked-etag", 3, Utc::now());
    linked.retry_of = Some(old.run_id.clone());
    linked.attempt = 2;
    linked.owner_execution = Some("arn:aws:states:us-east-1:123456789012:execution:sm:x".into());
    f.ledger.create(&linked).await.unwrap();
    distillery(&f)
        .args(["runs", "show", linked.run_id.as_str()])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "retry of              {} (attempt 2)",
            old.run_id
        )))
        .stdout(predicate::str::contains(
            "owner execution       arn:aws:states:us-east-1:123456789012:execution:sm:x",
        ));
    // The old run is untouched.
    assert_eq!(
        f.ledger.get(&old.run_id).await.unwrap().unwrap().status,
        RunStatus::Rejected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn retry_refuses_what_it_cannot_retry_and_starts_nothing() {
    let f = fixture().await;
    let training = seed(&f, RunStatus::Training, "other-etag-1").await;
    distillery(&f)
        .args(["runs", "retry", training.run_id.as_str()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "run {} is training: only a rejected, failed or stopped run can be retried",
            training.run_id
        )));
    distillery(&f)
        .args(["runs", "retry", "run-00000000000000000000"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "run run-00000000000000000000 is not in the ledger",
        ));
    // The setting is still wrong: named, with where it came from.
    let rejected = seed(&f, RunStatus::Rejected, &f.etag).await;
    distillery(&f)
        .args(["runs", "retry", rejected.run_id.as_str()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("modelUnits 5 exceeds"))
        .stderr(predicate::str::contains(
            "the value came from S3 metadata x-amz-meta-distillery-model-units",
        ));
    // The object changed since the run: its own upload made a run.
    let stale = seed(&f, RunStatus::Failed, "an-older-etag").await;
    distillery(&f)
        .args(["runs", "retry", stale.run_id.as_str(), "--model-units", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("changed since run"));
    // No state machine.
    distillery(&f)
        .env_remove("STATE_MACHINE_ARN")
        .args(["runs", "retry", rejected.run_id.as_str()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("STATE_MACHINE_ARN"));
    assert!(execution_inputs(&f).await.is_empty());
    let _ = &f.s3;
}
