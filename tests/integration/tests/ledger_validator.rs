//! The run ledger on DynamoDB and the dataset validator on S3, against a real moto server through the
//! AWS SDK: conditional writes, indexes, streaming a multi-megabyte object, reports in S3.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use chrono::{Duration, TimeZone, Utc};
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::validate_dataset::{DatasetValidatorService, ValidatorConfig};
use distillery_core::domain::run::{Run, RunId, RunStatus, RunUpdate};
use distillery_core::ports::{CreateOutcome, PortError, RunLedger, SystemClock};
use distillery_core::testing::sample_run;
use distillery_test_support::Moto;
use serde_json::Value;

const BUCKET: &str = "distillery-datasets-test";

struct Env {
    _moto: Moto,
    s3: aws_sdk_s3::Client,
    ledger: Arc<DynamoRunLedger>,
}

async fn env(table: &str) -> Env {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&ddb, table).await.expect("create table");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .expect("bucket");
    Env {
        _moto: moto,
        s3,
        ledger: Arc::new(DynamoRunLedger::new(ddb, table)),
    }
}

fn validator(e: &Env) -> DatasetValidatorService {
    DatasetValidatorService {
        ledger: e.ledger.clone(),
        store: Arc::new(S3DatasetStore::new(e.s3.clone())),
        clock: Arc::new(SystemClock),
        config: ValidatorConfig::from_lookup(|_| None).unwrap(),
    }
}

fn line(i: usize, pad: usize) -> String {
    serde_json::json!({
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "You answer support tickets."}],
        "messages": [
            {"role": "user", "content": [{"text": format!("Ticket {i}: {}", "x".repeat(pad))}]},
            {"role": "assistant", "content": [{"text": format!("Reply {i}.")}]}
        ]
    })
    .to_string()
}

async fn upload(e: &Env, key: &str, body: String) -> String {
    let out =
        e.s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .expect("put");
    out.e_tag().unwrap().to_string()
}

/// moto's Object Created event shape (`eTag`), from the fixture.
fn moto_event(key: &str, etag: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/s3-object-created-moto.json"
    );
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["detail"]["bucket"]["name"] = BUCKET.into();
    v["detail"]["object"]["key"] = key.into();
    v["detail"]["object"]["eTag"] = etag.into();
    v
}

fn run_at(key: &str, minutes: i64) -> Run {
    let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes);
    sample_run(BUCKET, key, "etag", 1, at)
}

#[tokio::test]
async fn ledger_writes_are_conditional_and_never_go_backwards() {
    let e = env("runs-conditional").await;
    let run = run_at("incoming/a.jsonl", 0);
    assert!(matches!(
        e.ledger.create(&run).await.unwrap(),
        CreateOutcome::Created(_)
    ));
    match e.ledger.create(&run).await.unwrap() {
        CreateOutcome::AlreadyExists(existing) => assert_eq!(existing, run),
        other => panic!("second create was {other:?}"),
    }
    let id = &run.run_id;
    e.ledger
        .update(
            id,
            &[RunStatus::Received],
            &RunUpdate::to(RunStatus::Validating),
        )
        .await
        .unwrap();
    e.ledger
        .update(
            id,
            &[RunStatus::Validating],
            &RunUpdate::to(RunStatus::Validated),
        )
        .await
        .unwrap();
    // A late retry of an earlier step: the expected status no longer holds.
    let err = e
        .ledger
        .update(
            id,
            &[RunStatus::Received],
            &RunUpdate::to(RunStatus::Validating),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Conflict(_)), "{err}");
    // A backwards move, even from the right status.
    let err = e
        .ledger
        .update(
            id,
            &[RunStatus::Validated],
            &RunUpdate::to(RunStatus::Received),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Conflict(_)), "{err}");
    let missing = e
        .ledger
        .update(&RunId("run-missing".into()), &[], &RunUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(missing, PortError::NotFound(_)), "{missing}");

    // Concurrent writers on one run: every history entry survives (optimistic version counter).
    let mut tasks = Vec::new();
    for i in 0..6 {
        let ledger = e.ledger.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let u = RunUpdate {
                failure_reason: Some(format!("note {i}")),
                delivery: Some(distillery_core::domain::run::DeliveryRecord {
                    at: Utc::now(),
                    milestone: format!("m{i}"),
                    channel: "sns".into(),
                    delivered: true,
                    detail: None,
                }),
                ..Default::default()
            };
            ledger.update(&id, &[RunStatus::Validated], &u).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let run = e.ledger.get(id).await.unwrap().unwrap();
    assert_eq!(run.deliveries.len(), 6, "a concurrent update was lost");
    let path: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
    assert_eq!(
        path,
        [
            RunStatus::Received,
            RunStatus::Validating,
            RunStatus::Validated
        ]
    );
}

#[tokio::test]
async fn ledger_lists_newest_first_overall_and_by_status() {
    let e = env("runs-lists").await;
    for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
        e.ledger.create(&run_at(k, i as i64)).await.unwrap();
    }
    let b = run_at("b", 1).run_id;
    let d = run_at("d", 3).run_id;
    for id in [&b, &d] {
        e.ledger
            .update(
                id,
                &[RunStatus::Received],
                &RunUpdate::to(RunStatus::Validating),
            )
            .await
            .unwrap();
    }
    let names =
        |runs: Vec<Run>| -> Vec<String> { runs.iter().map(|r| r.dataset.display_name()).collect() };
    assert_eq!(
        names(e.ledger.list_recent(3).await.unwrap()),
        ["d", "c", "b"]
    );
    assert_eq!(
        names(e.ledger.list_recent(10).await.unwrap()),
        ["d", "c", "b", "a"]
    );
    assert_eq!(
        names(
            e.ledger
                .list_by_status(RunStatus::Validating, 10)
                .await
                .unwrap()
        ),
        ["d", "b"]
    );
    assert_eq!(
        names(
            e.ledger
                .list_by_status(RunStatus::Received, 1)
                .await
                .unwrap()
        ),
        ["c"]
    );
    assert!(e
        .ledger
        .list_by_status(RunStatus::Ready, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn validator_streams_a_multi_megabyte_object_and_a_duplicated_event_makes_one_run() {
    let e = env("runs-validator").await;
    let records = 12_000;
    let body: String = (0..records).map(|i| line(i, 400) + "\n").collect();
    let size = body.len();
    assert!(size > 5 * 1024 * 1024, "only {size} bytes");
    let key = "incoming/support-tickets.jsonl";
    let etag = upload(&e, key, body).await;
    let svc = validator(&e);
    let event = moto_event(key, &etag);
    // The same event delivered twice at once.
    let (a, b) = tokio::join!(svc.handle(event.clone()), svc.handle(event.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.run_id, b.run_id);
    assert_eq!(
        [a.duplicate, b.duplicate].iter().filter(|d| **d).count(),
        1,
        "{a:?} {b:?}"
    );
    let first = if a.duplicate { &b } else { &a };
    assert!(first.valid, "{first:?}");
    assert_eq!(first.records, records as u64);
    let all = e.ledger.list_recent(10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, RunStatus::Validated);
    assert_eq!(all[0].history.len(), 3);
    // And later, a third delivery is still a duplicate.
    assert!(svc.handle(event).await.unwrap().duplicate);
}

#[tokio::test]
async fn an_invalid_dataset_is_rejected_with_a_report_in_s3_naming_lines() {
    let e = env("runs-report").await;
    let mut body: String = (0..150).map(|i| line(i, 10) + "\n").collect();
    body.push_str("{\"schemaVersion\": \"bedrock-conversation-2024\"}\n");
    body.push_str("not json at all\n");
    let key = "incoming/broken.jsonl";
    let etag = upload(&e, key, body).await;
    let out = validator(&e).handle(moto_event(key, &etag)).await.unwrap();
    assert!(!out.valid);
    assert_eq!(out.status, Some(RunStatus::Rejected));
    assert_eq!(out.invalid_records, 2);
    let run_id = out.run_id.unwrap();
    let report_key = format!("reports/{run_id}/report.json");
    assert_eq!(
        out.report_uri.unwrap(),
        format!("s3://{BUCKET}/{report_key}")
    );
    let obj =
        e.s3.get_object()
            .bucket(BUCKET)
            .key(&report_key)
            .send()
            .await
            .unwrap();
    let report: Value =
        serde_json::from_slice(&obj.body.collect().await.unwrap().into_bytes()).unwrap();
    let lines: Vec<u64> = report["validation"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["line"].as_u64())
        .collect();
    assert!(lines.contains(&151) && lines.contains(&152), "{report}");
    let run = e.ledger.get(&run_id).await.unwrap().unwrap();
    assert!(run.failure_reason.unwrap().contains("line 151"));

    // Metadata overrides come from the object's user metadata.
    let key = "incoming/override.jsonl";
    let put =
        e.s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .metadata("distillery-student", "amazon.nova-micro-v1:0:128k")
            .body(ByteStream::from(
                (0..120)
                    .map(|i| line(i, 10) + "\n")
                    .collect::<String>()
                    .into_bytes(),
            ))
            .send()
            .await
            .unwrap();
    let out = validator(&e)
        .handle(moto_event(key, put.e_tag().unwrap()))
        .await
        .unwrap();
    assert!(out.valid, "{out:?}");
    let run = e.ledger.get(&out.run_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(run.settings.student, "amazon.nova-micro-v1:0:128k");
}
