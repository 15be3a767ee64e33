//! Curated scheduled runs end to end through the validator, on generated invocation logs in the
//! in-memory store: the window, the filter, one record per prompt, `skipped`, and the converted
//! dataset validated and snapshotted like an upload.

use std::collections::BTreeSet;

use super::*;
use crate::domain::invocation_logs::{MetadataFilter, PreflightOptions};
use crate::testing::invocation_logs::{
    files_under, log_objects, reference_curation, write_invocation_logs, LogGenOptions, LogObject,
};

const LOGS_BUCKET: &str = "logs-bucket";
const LOGS_PREFIX: &str = "bedrock-logs/";
/// The schedule fires at 03:00 on the 30th; its window ends 30 minutes earlier (limits.json
/// `deliveryDelayMinutes`) and, with LOOKBACK_DAYS=3, starts at 02:30 on the 27th, two and a half
/// hours into the generated logs.
const FIRED_AT: &str = "2026-11-30T03:00:00Z";

fn schedule_event() -> Value {
    let mut e = event("schedule.json");
    e["scheduledTime"] = FIRED_AT.into();
    e
}

fn window() -> LogWindow {
    LogWindow {
        start: "2026-11-27T02:30:00Z".parse().unwrap(),
        end: "2026-11-30T02:30:00Z".parse().unwrap(),
    }
}

/// Six hours of logs from 00:00 on the 27th (so the first two and a half fall before the window),
/// with a truncated and a corrupt file, loaded into the store under `s3://logs-bucket/bedrock-logs/`;
/// and the log files as written, for the reference.
fn store_with_logs() -> (Arc<InMemoryDatasetStore>, Vec<LogObject>) {
    let dir = tempfile::tempdir().unwrap();
    let options = LogGenOptions {
        target_bytes: 0,
        min_hours: 6,
        records_per_file: 150,
        files_per_hour: 2,
        start: "2026-11-27T00:00:00Z".parse().unwrap(),
        seed: 11,
        truncated_file: true,
        corrupt_file: true,
    };
    write_invocation_logs(dir.path(), &options).unwrap();
    let store = Arc::new(InMemoryDatasetStore::new());
    for (rel, path) in files_under(dir.path()).unwrap() {
        let key = format!("{LOGS_PREFIX}{rel}");
        store.insert(LOGS_BUCKET, &key, std::fs::read(&path).unwrap(), &[]);
    }
    (store, log_objects(dir.path()).unwrap())
}

/// What a curated run must write (`reference_curation`: brute force, not the code under test).
fn expected_lines(
    files: &[LogObject],
    filter: Option<&str>,
    use_prompt_response: bool,
) -> BTreeSet<String> {
    let options = PreflightOptions {
        filter: filter.map(|f| MetadataFilter::parse(f).unwrap()),
        teacher: Some("amazon.nova-pro-v1:0".to_string()),
        use_prompt_response,
    };
    reference_curation(files, &window(), &options, 15_000)
}

fn curated_service(
    store: Arc<InMemoryDatasetStore>,
    extra: &'static [(&'static str, &'static str)],
) -> (DatasetValidatorService, Arc<InMemoryRunLedger>) {
    let mut vars = vec![
        ("LOG_RUN_MODE", "curated"),
        ("LOOKBACK_DAYS", "3"),
        ("QUALITY_GATE", "off"),
    ];
    vars.extend_from_slice(extra);
    service_env(store, Box::leak(vars.into_boxed_slice()))
}

fn lines_of(store: &InMemoryDatasetStore, key: &str) -> Vec<String> {
    let bytes = store.get_bytes(BUCKET, key).unwrap_or_default();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| format!("{l}\n"))
        .collect()
}

async fn run_of(ledger: &InMemoryRunLedger, out: &ValidateDatasetOutput) -> Run {
    ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_curated_run_trains_on_the_windows_distinct_prompts_validated_like_an_upload() {
    let (store, files) = store_with_logs();
    let expected = expected_lines(&files, None, false);
    // The window leaves out the hours before it.
    let all_day = LogWindow {
        start: "2026-11-26T00:00:00Z".parse().unwrap(),
        end: window().end,
    };
    let options = PreflightOptions {
        teacher: Some("amazon.nova-pro-v1:0".into()),
        ..Default::default()
    };
    assert!(reference_curation(&files, &all_day, &options, 15_000).len() > expected.len());
    let (svc, ledger) = curated_service(store.clone(), &[]);
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = run_of(&ledger, &out).await;
    assert!(
        expected.len() >= 100,
        "the window holds {} prompts",
        expected.len()
    );
    assert_eq!(run.status, RunStatus::Validated, "{:?}", run.history);
    assert!(out.valid && !out.skipped);

    let folder = format!("runs/{}/", run.run_id);
    let written = lines_of(&store, &format!("{folder}{FROM_LOGS_FILE}"));
    let distinct: BTreeSet<String> = written.iter().cloned().collect();
    assert_eq!(distinct.len(), written.len(), "one record per prompt");
    assert_eq!(distinct, expected);
    assert_eq!(out.records, expected.len() as u64);

    // Validated like an upload: a snapshot of exactly those bytes (no gate here), a cost estimate,
    // and a report that says what the window held.
    let snapshot = run.snapshot.clone().expect("a snapshot");
    assert_eq!(snapshot.key, format!("{folder}dataset.jsonl"));
    assert_eq!(
        store.get_bytes(BUCKET, &snapshot.key),
        store.get_bytes(BUCKET, &format!("{folder}{FROM_LOGS_FILE}"))
    );
    assert!(run.validation.as_ref().unwrap().cost_estimate.is_some());
    let report: Value = serde_json::from_slice(
        &store
            .get_bytes(BUCKET, &svc.config.report_key(&run.run_id))
            .unwrap(),
    )
    .unwrap();
    let curation = &report["curation"];
    assert_eq!(curation["selected"], expected.len() as u64);
    assert!(curation["eligibleInWindow"].as_u64().unwrap() >= expected.len() as u64);
    // The files of 00:00 and 01:00 were not read: 2 per hour of the 4 hours from 02:00, plus the
    // truncated and corrupt files written after the last hour.
    assert_eq!(curation["filesInWindow"], 2 * 4 + 2);
    let skipped = curation["skippedFiles"].to_string();
    assert!(skipped.contains("cannot be read as gzip"), "{skipped}");
    assert!(skipped.contains("truncated"), "{skipped}");
    assert_eq!(report["logWindow"]["start"], "2026-11-27T02:30:00Z");
    assert_eq!(report["logWindow"]["end"], "2026-11-30T02:30:00Z");

    // The launcher trains on the snapshot, not on the log prefix.
    let (training, _) = crate::app::launch_job::training_data(&run).unwrap();
    assert_eq!(
        training,
        crate::ports::TrainingData::S3 {
            s3_uri: snapshot.uri.clone()
        }
    );
}

#[tokio::test]
async fn the_filter_chooses_what_trains() {
    let (store, files) = store_with_logs();
    let filter = r#"{"equals":{"team":"support"}}"#;
    let expected = expected_lines(&files, Some(filter), false);
    let everything = expected_lines(&files, None, false);
    assert!(expected.len() >= 100 && expected.len() < everything.len());
    let (svc, ledger) = curated_service(
        store.clone(),
        &[(
            "REQUEST_METADATA_FILTERS",
            r#"{"equals":{"team":"support"}}"#,
        )],
    );
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = run_of(&ledger, &out).await;
    assert_eq!(run.status, RunStatus::Validated, "{:?}", run.history);
    let written: BTreeSet<String> =
        lines_of(&store, &format!("runs/{}/{FROM_LOGS_FILE}", run.run_id))
            .into_iter()
            .collect();
    assert_eq!(written, expected);
}

#[tokio::test]
async fn with_use_prompt_response_each_prompt_trains_with_its_latest_answer() {
    let (store, files) = store_with_logs();
    let expected = expected_lines(&files, None, true);
    // The same prompt was answered differently over time: which answer is kept matters.
    let prompts_only = expected_lines(&files, None, false);
    assert!(expected.len() >= 100, "{} labelled prompts", expected.len());
    let (svc, ledger) = curated_service(store.clone(), &[("USE_PROMPT_RESPONSE", "true")]);
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = run_of(&ledger, &out).await;
    assert_eq!(run.status, RunStatus::Validated, "{:?}", run.history);
    let written = lines_of(&store, &format!("runs/{}/{FROM_LOGS_FILE}", run.run_id));
    assert!(written.iter().all(|l| l.contains(r#""role":"assistant""#)));
    let written: BTreeSet<String> = written.into_iter().collect();
    // Exactly the reference: each prompt once, with the answer of its most recent call.
    assert_eq!(written, expected);
    assert!(written.len() <= prompts_only.len());
}

#[tokio::test]
async fn too_few_new_prompts_skip_the_run_and_write_nothing_to_train_on() {
    let (store, files) = store_with_logs();
    let expected = expected_lines(&files, None, false);
    let (svc, ledger) = curated_service(store.clone(), &[("MIN_NEW_RECORDS", "15000")]);
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = run_of(&ledger, &out).await;
    assert_eq!(run.status, RunStatus::Skipped);
    assert!(out.skipped && !out.valid);
    assert_eq!(out.records, expected.len() as u64);
    let detail = run.history.last().unwrap().detail.clone().unwrap();
    assert!(
        detail.starts_with(&format!("{} new eligible record(s)", expected.len())),
        "{detail}"
    );
    assert!(
        detail.contains("fewer than MIN_NEW_RECORDS (15000)"),
        "{detail}"
    );
    assert!(run.snapshot.is_none());
    assert!(store
        .get_bytes(BUCKET, &format!("runs/{}/{FROM_LOGS_FILE}", run.run_id))
        .is_none());
    let report: Value = serde_json::from_slice(
        &store
            .get_bytes(BUCKET, &svc.config.report_key(&run.run_id))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["curation"]["selected"], expected.len() as u64);
    assert_eq!(report["eligibleRecords"], expected.len() as u64);
}

#[tokio::test]
async fn a_bad_filter_rejects_the_run_before_any_log_is_read() {
    let (store, _) = store_with_logs();
    let (svc, ledger) = curated_service(
        store.clone(),
        &[(
            "REQUEST_METADATA_FILTERS",
            r#"{"equals":{"a":"b"},"orAll":[]}"#,
        )],
    );
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = run_of(&ledger, &out).await;
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.starts_with("REQUEST_METADATA_FILTERS: requestMetadataFilters"),
        "{reason}"
    );
    assert!(!out.valid);
}

#[tokio::test]
async fn files_listed_then_gone_or_too_large_are_reported_and_the_rest_still_trains() {
    let (store, files) = store_with_logs();
    let hour = format!(
        "{LOGS_PREFIX}AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/27/03"
    );
    // Too large to be a log file: listed, not read.
    let huge = format!("{hour}/huge.json.gz");
    store.insert(
        LOGS_BUCKET,
        &huge,
        vec![0u8; (super::curate::MAX_LOG_FILE_BYTES + 1) as usize],
        &[],
    );
    // Listed, then gone before the read: the listing comes from a store that still has it.
    let (listing, _) = store_with_logs();
    let gone = format!("{hour}/gone.json.gz");
    listing.insert(LOGS_BUCKET, &gone, b"x".to_vec(), &[]);
    listing.insert(LOGS_BUCKET, &huge, vec![0u8; 1], &[]);
    let expected = expected_lines(&files, None, false);
    let (mut svc, ledger) = curated_service(store.clone(), &[]);
    svc.lister = listing;
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = run_of(&ledger, &out).await;
    assert_eq!(run.status, RunStatus::Validated, "{:?}", run.history);
    assert_eq!(out.records, expected.len() as u64);
    let report: Value = serde_json::from_slice(
        &store
            .get_bytes(BUCKET, &svc.config.report_key(&run.run_id))
            .unwrap(),
    )
    .unwrap();
    let skipped = report["curation"]["skippedFiles"].to_string();
    assert!(
        skipped.contains("gone.json.gz") && skipped.contains("listed but gone"),
        "{skipped}"
    );
    // The size is checked as the bytes arrive too, whatever the listing said.
    assert!(
        skipped.contains("huge.json.gz") && skipped.contains("larger than a log file can be"),
        "{skipped}"
    );
}
