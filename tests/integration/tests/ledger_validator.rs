//! The dataset validator on S3 with the run ledger on DynamoDB, against a real moto server through the
//! AWS SDK: streaming a multi-megabyte object, a duplicated event making one run, reports in S3. The
//! ledger's own rules (conditional writes, transitions, indexes, concurrent writers) are the ledger
//! contract, run on DynamoDB by `functions/aws/tests/ledger_contract_dynamodb.rs`.

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::validate_dataset::{DatasetValidatorService, ValidatorConfig};
use distillery_core::domain::run::RunStatus;
use distillery_core::ports::{RunLedger, SystemClock};
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
        lister: Arc::new(S3DatasetStore::new(e.s3.clone())),
        clock: Arc::new(SystemClock),
        // The gate's two-pass split has its own tests (validate_dataset::quality_gate_tests, the
        // held_out e2e); these check the snapshot is the upload byte for byte.
        // Overrides open (the code's default is closed), as the local stack runs.
        config: ValidatorConfig::from_lookup(|k| {
            (k == "QUALITY_GATE")
                .then(|| "off".to_string())
                .or_else(|| distillery_core::testing::permissive_stack(k))
        })
        .unwrap(),
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

#[tokio::test]
async fn validator_streams_a_multi_megabyte_object_and_a_duplicated_event_makes_one_run() {
    let e = env("runs-validator").await;
    let records = 12_000;
    let body: String = (0..records).map(|i| line(i, 400) + "\n").collect();
    let size = body.len();
    assert!(size > 5 * 1024 * 1024, "only {size} bytes");
    let key = "incoming/support-tickets.jsonl";
    let etag = upload(&e, key, body.clone()).await;
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
    // The validated bytes were copied, in the same pass, to the run's snapshot.
    let snap = all[0].snapshot.clone().expect("a valid run has a snapshot");
    assert_eq!(snap.key, format!("runs/{}/dataset.jsonl", all[0].run_id));
    let copy =
        e.s3.get_object()
            .bucket(BUCKET)
            .key(&snap.key)
            .send()
            .await
            .unwrap();
    assert_eq!(copy.e_tag().unwrap().trim_matches('"'), snap.etag);
    let copy = copy.body.collect().await.unwrap().into_bytes();
    assert!(
        copy.as_ref() == body.as_bytes(),
        "the snapshot differs from the upload"
    );
    assert_eq!(snap.size, size as u64);
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
