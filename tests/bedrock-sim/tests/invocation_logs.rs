//! Native invocation-log jobs (issue 14): the simulator reads the logs under
//! `invocationLogSource.s3Uri` from S3, applies `requestMetadataFilters`, and fails the job in its
//! validation phase when fewer than 100 records match, as Bedrock does.
//!
//! S3 is a small in-test stand-in serving ListObjectsV2 (path-style, the XML S3 answers) and
//! GetObject, so these tests need no moto; the local stack reads moto the same way.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_bedrock::types::{
    InvocationLogSource, InvocationLogsConfig, ModelCustomizationJobStatus as Status,
    RequestMetadataFilters, TrainingDataConfig,
};
use bedrock_sim::{SimConfig, SimHandle, Timing};
use common::*;
use serde_json::json;

const PREFIX: &str =
    "bedrock-logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/30/05";

type Objects = Arc<Mutex<BTreeMap<(String, String), Vec<u8>>>>;

/// A stand-in for S3 (path-style): `GET /<bucket>?list-type=2&prefix=` lists keys (one page of
/// at most `page` keys, with a continuation token), `GET /<bucket>/<key>` returns the object.
struct FakeS3 {
    url: String,
    objects: Objects,
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

impl FakeS3 {
    fn start(page: usize) -> Self {
        let objects: Objects = Arc::default();
        let store = objects.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let store = store.clone();
            async move {
                let path = percent_decode(uri.path().trim_start_matches('/'));
                let (bucket, key) = path.split_once('/').unwrap_or((&path, ""));
                let objects = store.lock().unwrap();
                if key.is_empty() {
                    let query = uri.query().unwrap_or_default();
                    let prefix = query_param(query, "prefix").unwrap_or_default();
                    let after = query_param(query, "continuation-token");
                    let keys: Vec<&String> = objects
                        .keys()
                        .filter(|(b, k)| {
                            b == bucket
                                && k.starts_with(&prefix)
                                && after.as_ref().is_none_or(|a| k > a)
                        })
                        .map(|(_, k)| k)
                        .collect();
                    let shown = &keys[..keys.len().min(page)];
                    let truncated = keys.len() > page;
                    let mut xml = String::from(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>",
                    );
                    for k in shown {
                        xml.push_str(&format!(
                            "<Contents><Key>{}</Key></Contents>",
                            k.replace('&', "&amp;")
                        ));
                    }
                    xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
                    if truncated {
                        xml.push_str(&format!(
                            "<NextContinuationToken>{}</NextContinuationToken>",
                            shown.last().unwrap()
                        ));
                    }
                    xml.push_str("</ListBucketResult>");
                    return (axum::http::StatusCode::OK, xml.into_bytes());
                }
                match objects.get(&(bucket.to_string(), key.to_string())) {
                    Some(body) => (axum::http::StatusCode::OK, body.clone()),
                    None => (
                        axum::http::StatusCode::NOT_FOUND,
                        b"<Error><Code>NoSuchKey</Code></Error>".to_vec(),
                    ),
                }
            }
        });
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let _ = axum::serve(listener, app).await;
            });
        });
        FakeS3 { url, objects }
    }

    fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        self.objects
            .lock()
            .unwrap()
            .insert((bucket.to_string(), key.to_string()), body);
    }
}

fn gzip(lines: &[String]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for l in lines {
        e.write_all(l.as_bytes()).unwrap();
        e.write_all(b"\n").unwrap();
    }
    e.finish().unwrap()
}

fn record(i: usize, app: &str, model: &str) -> String {
    json!({
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2026-11-30T05:00:00Z",
        "accountId": "123456789012",
        "region": "us-east-1",
        "requestId": format!("req-{i}"),
        "operation": "Converse",
        "modelId": model,
        "input": {"inputContentType": "application/json", "inputBodyJson": {"messages": [{"role": "user", "content": [{"text": format!("question {i}")}]}]}, "inputTokenCount": 5},
        "output": {"outputContentType": "application/json", "outputBodyJson": {"output": {"message": {"role": "assistant", "content": [{"text": "answer"}]}}}, "outputTokenCount": 3},
        "requestMetadata": {"app": app, "tenant": "acme"}
    })
    .to_string()
}

/// `support` records of app support-bot from the teacher, `other` of another app, spread over
/// files of 40 records, plus an offloaded body under `data/` that must not count.
fn write_logs(s3: &FakeS3, support: usize, other: usize) {
    let mut lines: Vec<String> = (0..support)
        .map(|i| record(i, "support-bot", "amazon.nova-pro-v1:0"))
        .collect();
    lines.extend((0..other).map(|i| record(1000 + i, "billing", "amazon.nova-pro-v1:0")));
    for (n, chunk) in lines.chunks(40).enumerate() {
        s3.put(
            "logs",
            &format!("{PREFIX}/part-{n:03}.json.gz"),
            gzip(chunk),
        );
    }
    let offloaded: Vec<String> = (0..200)
        .map(|i| record(5000 + i, "support-bot", "amazon.nova-pro-v1:0"))
        .collect();
    s3.put(
        "logs",
        &format!("{PREFIX}/data/offloaded.json.gz"),
        gzip(&offloaded),
    );
}

fn sim_reading(s3: Option<&FakeS3>) -> SimHandle {
    bedrock_sim::start(SimConfig {
        timing: Timing {
            phase_ms: 100,
            stop_ms: 100,
            pt_ms: 100,
        },
        s3_url: s3.map(|s| s.url.clone()),
        ..SimConfig::default()
    })
}

fn logs_config(filter: Option<RequestMetadataFilters>) -> TrainingDataConfig {
    let mut logs = InvocationLogsConfig::builder()
        .invocation_log_source(InvocationLogSource::S3Uri("s3://logs/bedrock-logs/".into()))
        .use_prompt_response(false);
    if let Some(f) = filter {
        logs = logs.request_metadata_filters(f);
    }
    TrainingDataConfig::builder()
        .invocation_logs_config(logs.build())
        .build()
}

fn support_bot() -> RequestMetadataFilters {
    RequestMetadataFilters::Equals([("app".to_string(), "support-bot".to_string())].into())
}

async fn final_state(
    sim: &SimHandle,
    job: &str,
    training: TrainingDataConfig,
) -> aws_sdk_bedrock::operation::get_model_customization_job::GetModelCustomizationJobOutput {
    let client = client(sim).await;
    distill(&client, job)
        .training_data_config(training)
        .send()
        .await
        .expect("CreateModelCustomizationJob is accepted; the data is checked later");
    poll_job(&client, job, Duration::from_secs(10), |o| {
        matches!(o.status(), Some(Status::Completed | Status::Failed))
    })
    .await
    .pop()
    .unwrap()
}

#[tokio::test]
async fn fewer_than_100_matching_records_fail_the_job_in_validation() {
    let s3 = FakeS3::start(2);
    // 99 support-bot records, many others, and 200 in an offloaded body that are not log records.
    write_logs(&s3, 99, 150);
    let sim = sim_reading(Some(&s3));
    let out = final_state(&sim, "logs-too-few", logs_config(Some(support_bot()))).await;
    assert_eq!(out.status(), Some(&Status::Failed));
    let message = out.failure_message().unwrap_or_default();
    assert!(
        message.contains("contain 99 records that match the request metadata filters")
            && message.contains("at least 100 are required")
            && message.contains("s3://logs/bedrock-logs/"),
        "{message}"
    );
    let details = out.status_details().and_then(|d| d.validation_details());
    assert_eq!(
        details.and_then(|v| v.status()).map(|s| s.as_str()),
        Some("Failed")
    );
}

#[tokio::test]
async fn one_hundred_matching_records_train() {
    let s3 = FakeS3::start(3);
    write_logs(&s3, 100, 10);
    let sim = sim_reading(Some(&s3));
    let out = final_state(&sim, "logs-enough", logs_config(Some(support_bot()))).await;
    assert_eq!(
        out.status(),
        Some(&Status::Completed),
        "{:?}",
        out.failure_message()
    );
}

#[tokio::test]
async fn without_a_filter_every_record_counts_and_not_equals_keeps_records_without_the_key() {
    let s3 = FakeS3::start(1000);
    write_logs(&s3, 60, 60);
    let sim = sim_reading(Some(&s3));
    let out = final_state(&sim, "logs-no-filter", logs_config(None)).await;
    assert_eq!(
        out.status(),
        Some(&Status::Completed),
        "{:?}",
        out.failure_message()
    );
    // notEquals on a key no record has: every record passes.
    let absent = RequestMetadataFilters::NotEquals([("team".to_string(), "x".to_string())].into());
    let out = final_state(&sim, "logs-not-equals", logs_config(Some(absent))).await;
    assert_eq!(
        out.status(),
        Some(&Status::Completed),
        "{:?}",
        out.failure_message()
    );
}

#[tokio::test]
async fn unreadable_logs_fail_the_job_and_without_s3_the_logs_are_not_checked() {
    let s3 = FakeS3::start(10);
    let sim = sim_reading(Some(&s3));
    // Nothing under the prefix at all.
    let out = final_state(&sim, "logs-empty", logs_config(None)).await;
    assert_eq!(out.status(), Some(&Status::Failed));
    assert!(
        out.failure_message()
            .unwrap_or_default()
            .contains("contain 0 records"),
        "{:?}",
        out.failure_message()
    );
    let unchecked = sim_reading(None);
    let out = final_state(&unchecked, "logs-unchecked", logs_config(None)).await;
    assert_eq!(out.status(), Some(&Status::Completed));
}

#[tokio::test]
async fn a_malformed_filter_is_a_validation_exception() {
    let sim = sim_reading(None);
    let client = client(&sim).await;
    let two = RequestMetadataFilters::Equals(
        [
            ("a".to_string(), "1".to_string()),
            ("b".to_string(), "2".to_string()),
        ]
        .into(),
    );
    let err = distill(&client, "logs-bad-filter")
        .training_data_config(logs_config(Some(two)))
        .send()
        .await
        .unwrap_err();
    let e = err.as_service_error().expect("a service error");
    assert!(e.is_validation_exception(), "{e:?}");
    assert!(e.to_string().contains("less than or equal to 1"), "{e}");
}
