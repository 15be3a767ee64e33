//! `distillery runs list|show` against a real DynamoDB API (a moto server): runs are seeded through
//! the ledger adapter the Lambdas use, then read back through the CLI binary.

use std::sync::Arc;

use assert_cmd::Command;
use chrono::{DateTime, Duration, TimeZone, Utc};
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_core::domain::run::{
    DatasetLocation, DeliveryRecord, Run, RunId, RunSource, RunStatus, RunUpdate, ValidationSummary,
};
use distillery_core::domain::settings::{Commitment, RunSettings, ServingMode};
use distillery_core::ports::RunLedger;
use distillery_core::testing::fakes::FixedClock;
use distillery_test_support::Moto;
use predicates::prelude::*;
use serde_json::Value;

const TABLE: &str = "distillery-runs-cli-test";

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn settings() -> RunSettings {
    RunSettings {
        teacher: "amazon.nova-pro-v1:0".into(),
        student: "amazon.nova-lite-v1:0:300k".into(),
        max_response_length: 1000,
        serving: ServingMode::None,
        model_units: 1,
        commitment: Commitment::None,
    }
}

fn new_run(name: &str, created: DateTime<Utc>) -> Run {
    let key = format!("incoming/{name}.jsonl");
    Run::new(
        RunId::for_object("datasets", &key, name),
        RunSource::S3Upload,
        DatasetLocation::S3Object {
            bucket: "datasets".into(),
            key,
            etag: name.into(),
            version_id: None,
            size: 42,
        },
        settings(),
        created,
    )
}

/// The ledger stamps updates with its clock; a fixed one makes history times predictable.
fn ledger_at(client: &aws_sdk_dynamodb::Client, now: DateTime<Utc>) -> DynamoRunLedger {
    DynamoRunLedger::with_clock(client.clone(), TABLE, Arc::new(FixedClock::at(now)))
}

/// Seeds four runs, created an hour apart (oldest first): `old-training` (training), `rejected`
/// (rejected, with a validation summary and a failed Slack delivery), `training` (training, with a
/// job) and `fresh` (received). Returns their ids in that order.
async fn seed(client: &aws_sdk_dynamodb::Client) -> Vec<RunId> {
    create_table(client, TABLE).await.expect("create table");
    let names = ["old-training", "rejected", "training", "fresh"];
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let created = base_time() + Duration::hours(i as i64);
        let run = new_run(name, created);
        let later = created + Duration::minutes(5);
        let ledger = ledger_at(client, later);
        ledger.create(&run).await.expect("create run");
        let id = run.run_id.clone();
        let to = |s: RunStatus| RunUpdate::to(s);
        match *name {
            "old-training" | "training" => {
                for (from, next) in [
                    (RunStatus::Received, RunStatus::Validating),
                    (RunStatus::Validating, RunStatus::Validated),
                ] {
                    ledger.update(&id, &[from], &to(next)).await.unwrap();
                }
                let mut launching = to(RunStatus::Launching);
                launching.job_name = Some(format!("distill-{name}-job"));
                ledger
                    .update(&id, &[RunStatus::Validated], &launching)
                    .await
                    .unwrap();
                let mut training = to(RunStatus::Training).with_detail("job created");
                training.job_arn = Some(format!(
                    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/{name}"
                ));
                ledger
                    .update(&id, &[RunStatus::Launching], &training)
                    .await
                    .unwrap();
            }
            "rejected" => {
                ledger
                    .update(&id, &[RunStatus::Received], &to(RunStatus::Validating))
                    .await
                    .unwrap();
                let mut rejected =
                    to(RunStatus::Rejected).with_detail("dataset invalid: 1 error(s)");
                rejected.failure_reason = Some("dataset invalid: 1 error(s)".into());
                rejected.validation = Some(ValidationSummary {
                    valid: false,
                    records: 120,
                    invalid_records: 1,
                    error_count: 1,
                    warning_count: 0,
                    first_errors: vec!["line 7: [json] not JSON".into()],
                    report_uri: Some("s3://datasets/reports/x/report.json".into()),
                    cost_estimate: None,
                });
                ledger
                    .update(&id, &[RunStatus::Validating], &rejected)
                    .await
                    .unwrap();
                let delivery = RunUpdate {
                    delivery: Some(DeliveryRecord {
                        at: later,
                        milestone: "rejected".into(),
                        channel: "slack".into(),
                        delivered: false,
                        detail: Some("HTTP 500 from webhook".into()),
                    }),
                    ..Default::default()
                };
                ledger.update(&id, &[], &delivery).await.unwrap();
            }
            _ => {}
        }
        ids.push(id);
    }
    ids
}

fn distillery(moto: &Moto, table: &str) -> Command {
    let mut cmd = Command::cargo_bin("distillery").unwrap();
    cmd.env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("TABLE_NAME", table)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).unwrap()
}

/// The run ids in the order they appear in a text listing (first column, header skipped).
fn listed_ids(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn list_and_show_read_the_ledger() {
    let moto = Moto::start();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let ids = seed(&client).await;
    let [old_training, rejected, training, fresh] = [&ids[0], &ids[1], &ids[2], &ids[3]];
    let id = |r: &RunId| r.as_str().to_string();

    // Text: all runs, newest first, with status, creation time, dataset and job.
    let text = stdout_of(distillery(&moto, TABLE).args(["runs", "list"]));
    assert!(text.starts_with("RUN "), "header first:\n{text}");
    assert_eq!(
        listed_ids(&text),
        vec![id(fresh), id(training), id(rejected), id(old_training)],
        "newest first:\n{text}"
    );
    let training_line = text
        .lines()
        .find(|l| l.starts_with(training.as_str()))
        .unwrap();
    for part in ["training", "2026-03-01 14:00:00", "distill-training-job"] {
        assert!(training_line.contains(part), "{part} in {training_line}");
    }

    // --limit keeps the newest.
    let text = stdout_of(distillery(&moto, TABLE).args(["runs", "list", "--limit", "2"]));
    assert_eq!(listed_ids(&text), vec![id(fresh), id(training)]);

    // JSON: the full run records, same order.
    let json = stdout_of(distillery(&moto, TABLE).args(["runs", "list", "--format", "json"]));
    let runs: Vec<Value> = serde_json::from_str(&json).expect("list --format json is JSON");
    let order: Vec<&str> = runs.iter().map(|r| r["runId"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        vec![
            fresh.as_str(),
            training.as_str(),
            rejected.as_str(),
            old_training.as_str()
        ]
    );
    assert_eq!(runs[1]["status"], "training");
    assert_eq!(runs[1]["jobName"], "distill-training-job");
    assert_eq!(runs[2]["validation"]["records"], 120);

    // --status filters (through the byStatus index), still newest first.
    let text = stdout_of(distillery(&moto, TABLE).args(["runs", "list", "--status", "training"]));
    assert_eq!(listed_ids(&text), vec![id(training), id(old_training)]);
    let json = stdout_of(
        distillery(&moto, TABLE).args(["runs", "list", "--status", "rejected", "--format", "json"]),
    );
    let runs: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["runId"], rejected.as_str());
    let text = stdout_of(distillery(&moto, TABLE).args(["runs", "list", "--status", "ready"]));
    assert_eq!(text, "no runs\n");

    // A status that does not exist is a usage error naming the valid ones.
    distillery(&moto, TABLE)
        .args(["runs", "list", "--status", "trained"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown status 'trained'"))
        .stderr(predicate::str::contains("provisioning_failed"));

    // show: the fields and the full history, in order.
    let text = stdout_of(distillery(&moto, TABLE).args(["runs", "show", training.as_str()]));
    for expected in [
        format!("run                   {training}"),
        "status                training".to_string(),
        "dataset               s3://datasets/incoming/training.jsonl".to_string(),
        "teacher -> student    amazon.nova-pro-v1:0 -> amazon.nova-lite-v1:0:300k".to_string(),
        "maxResponseLength     1000".to_string(),
        "serving               none".to_string(),
        "created               2026-03-01 14:00:00".to_string(),
        "job name              distill-training-job".to_string(),
        "job ARN               arn:aws:bedrock:us-east-1:123456789012:model-customization-job/training"
            .to_string(),
    ] {
        assert!(text.contains(&expected), "'{expected}' in:\n{text}");
    }
    let history: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "history:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .collect();
    assert_eq!(
        history,
        vec![
            "  2026-03-01 14:00:00  - -> received",
            "  2026-03-01 14:05:00  received -> validating",
            "  2026-03-01 14:05:00  validating -> validated",
            "  2026-03-01 14:05:00  validated -> launching",
            "  2026-03-01 14:05:00  launching -> training  job created",
        ],
        "history of:\n{text}"
    );

    // show of a rejected run: the verdict, first errors, report, reason and delivery records.
    let text = stdout_of(distillery(&moto, TABLE).args(["runs", "show", rejected.as_str()]));
    for expected in [
        "failure               dataset invalid: 1 error(s)",
        "validation            invalid (120 records, 1 invalid, 1 errors, 0 warnings)",
        "report                s3://datasets/reports/x/report.json",
        "line 7: [json] not JSON",
        "validating -> rejected  dataset invalid: 1 error(s)",
        "notifications:\n  2026-03-01 13:05:00  rejected  slack  failed  HTTP 500 from webhook",
    ] {
        assert!(text.contains(expected), "'{expected}' in:\n{text}");
    }

    // show --format json: the record as stored.
    let json = stdout_of(distillery(&moto, TABLE).args([
        "runs",
        "show",
        fresh.as_str(),
        "--format",
        "json",
    ]));
    let run: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(run["runId"], fresh.as_str());
    assert_eq!(run["status"], "received");
    assert_eq!(run["history"].as_array().unwrap().len(), 1);

    // An unknown id: non-zero, and the message names the id and the table.
    distillery(&moto, TABLE)
        .args(["runs", "show", "run-00000000000000000000"])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "no run run-00000000000000000000 in table {TABLE}"
        )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_missing_table_is_a_clear_usage_error() {
    let moto = Moto::start();
    for args in [
        vec!["runs", "list"],
        vec!["runs", "list", "--status", "training"],
        vec!["runs", "show", "run-00000000000000000000"],
    ] {
        distillery(&moto, "no-such-table")
            .args(&args)
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(
                "table no-such-table does not exist",
            ));
    }
    // No table at all: say how to set it.
    distillery(&moto, "")
        .args(["runs", "list"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--table or set TABLE_NAME"));
}
