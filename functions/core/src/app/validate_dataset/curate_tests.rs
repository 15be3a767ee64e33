//! Curated scheduled runs end to end through the validator, on generated invocation logs in the
//! in-memory store: the window, the filter, one record per prompt, `skipped`, and the converted
//! dataset validated and snapshotted like an upload.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::domain::invocation_logs::convert::to_jsonl_line;
use crate::domain::invocation_logs::curate::{in_window, logged_at};
use crate::domain::invocation_logs::{log_file, MetadataFilter, Preflight, PreflightOptions};
use crate::testing::invocation_logs::{write_invocation_logs, LogGenOptions};

const LOGS_BUCKET: &str = "logs-bucket";
const LOGS_PREFIX: &str = "bedrock-logs/";
/// The schedule fires at 03:00 on the 30th; with LOOKBACK_DAYS=3 its window starts at 03:00 on
/// the 27th, three hours into the generated logs.
const FIRED_AT: &str = "2026-11-30T03:00:00Z";

fn schedule_event() -> Value {
    let mut e = event("schedule.json");
    e["scheduledTime"] = FIRED_AT.into();
    e
}

fn window() -> LogWindow {
    LogWindow {
        start: "2026-11-27T03:00:00Z".parse().unwrap(),
        end: FIRED_AT.parse().unwrap(),
    }
}

/// Six hours of logs from 00:00 on the 27th (so the first three fall before the window), with a
/// truncated and a corrupt file, loaded into the store under `s3://logs-bucket/bedrock-logs/`.
fn store_with_logs() -> Arc<InMemoryDatasetStore> {
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
    fn load(store: &InMemoryDatasetStore, root: &Path, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                load(store, root, &path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let key = format!("{LOGS_PREFIX}{rel}");
                store.insert(LOGS_BUCKET, &key, std::fs::read(&path).unwrap(), &[]);
            }
        }
    }
    load(&store, dir.path(), dir.path());
    store
}

/// What a curated run must write, computed apart from the code under test: every eligible record
/// logged within the window, converted without its answer, as a set (prompt-only lines of the same
/// prompt are identical, so the set has one line per distinct prompt).
fn expected_lines(
    store: &InMemoryDatasetStore,
    filter: Option<&str>,
    teacher: &str,
    use_prompt_response: bool,
) -> BTreeSet<String> {
    let options = PreflightOptions {
        filter: filter.map(|f| MetadataFilter::parse(f).unwrap()),
        teacher: Some(teacher.to_string()),
        use_prompt_response,
    };
    let mut preflight = Preflight::new(options);
    let mut lines = BTreeSet::new();
    let w = window();
    for key in store.keys(LOGS_BUCKET) {
        let Some(file) = log_file(&key) else { continue };
        let bytes = store.get_bytes(LOGS_BUCKET, &key).unwrap();
        let mut found = Vec::new();
        let outcome = preflight.add_file_with(&key, "", bytes.as_slice(), |e| {
            if in_window(&w, logged_at(e.timestamp, file.hour)) {
                found.push(to_jsonl_line(&e.prompt, None));
            }
        });
        if outcome != crate::domain::invocation_logs::FileOutcome::Corrupt {
            lines.extend(found);
        }
    }
    lines
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

#[tokio::test]
async fn a_curated_run_trains_on_the_windows_distinct_prompts_validated_like_an_upload() {
    let store = store_with_logs();
    let expected = expected_lines(&store, None, "amazon.nova-pro-v1:0", false);
    // Everything in the six hours, window or not: the window must leave some out.
    let (svc, ledger) = curated_service(store.clone(), &[]);
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        expected.len() >= 100,
        "the generated window holds {} prompts",
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
    // Files of the three hours before the window were not read: 2 per hour of 3 hours in the
    // window, plus the truncated and corrupt files written after the last hour.
    assert_eq!(curation["filesInWindow"], 2 * 3 + 2);
    let skipped = curation["skippedFiles"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be read as gzip")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|s| s["reason"].as_str().unwrap().contains("truncated")),
        "{skipped:?}"
    );
    assert_eq!(report["logWindow"]["start"], "2026-11-27T03:00:00Z");

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
async fn the_filter_and_use_prompt_response_choose_what_trains() {
    let store = store_with_logs();
    let filter = r#"{"equals":{"team":"support"}}"#;
    let expected = expected_lines(&store, Some(filter), "amazon.nova-pro-v1:0", false);
    let everything = expected_lines(&store, None, "amazon.nova-pro-v1:0", false);
    assert!(expected.len() >= 100 && expected.len() < everything.len());
    let (svc, ledger) = curated_service(
        store.clone(),
        &[(
            "REQUEST_METADATA_FILTERS",
            r#"{"equals":{"team":"support"}}"#,
        )],
    );
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Validated, "{:?}", run.history);
    let written: BTreeSet<String> =
        lines_of(&store, &format!("runs/{}/{FROM_LOGS_FILE}", run.run_id))
            .into_iter()
            .collect();
    assert_eq!(written, expected);

    // With usePromptResponse only the teacher's answered calls train, each with its answer.
    let labelled = expected_lines(&store, None, "amazon.nova-pro-v1:0", true);
    let store2 = store_with_logs();
    let (svc, ledger) = curated_service(
        store2.clone(),
        &[("USE_PROMPT_RESPONSE", "true"), ("MIN_NEW_RECORDS", "100")],
    );
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    if labelled.len() >= 100 {
        assert_eq!(run.status, RunStatus::Validated, "{:?}", run.history);
        let written = lines_of(&store2, &format!("runs/{}/{FROM_LOGS_FILE}", run.run_id));
        assert!(written.iter().all(|l| l.contains(r#""role":"assistant""#)));
        // One per distinct prompt, though the same prompt was answered differently.
        assert_eq!(written.len(), labelled.len());
        let prompts: BTreeSet<String> = written
            .iter()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l).unwrap();
                v["messages"].as_array_mut().unwrap().truncate(1);
                // The prompt is the system prompt and the user turn together.
                format!("{}|{}", v["system"], v["messages"][0]["content"][0]["text"])
            })
            .collect();
        assert_eq!(prompts.len(), written.len());
    } else {
        assert_eq!(run.status, RunStatus::Skipped, "{:?}", run.history);
        assert_eq!(out.records, labelled.len() as u64);
    }
}

#[tokio::test]
async fn too_few_new_prompts_skip_the_run_and_write_nothing_to_train_on() {
    let store = store_with_logs();
    let expected = expected_lines(&store, None, "amazon.nova-pro-v1:0", false);
    let (svc, ledger) = curated_service(store.clone(), &[("MIN_NEW_RECORDS", "100000")]);
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Skipped);
    assert!(out.skipped && !out.valid);
    assert_eq!(out.records, expected.len() as u64);
    let detail = run.history.last().unwrap().detail.clone().unwrap();
    assert!(
        detail.starts_with(&format!("{} new eligible record(s)", expected.len())),
        "{detail}"
    );
    assert!(
        detail.contains("fewer than MIN_NEW_RECORDS (100000)"),
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
    let store = store_with_logs();
    let (svc, ledger) = curated_service(
        store.clone(),
        &[(
            "REQUEST_METADATA_FILTERS",
            r#"{"equals":{"a":"b"},"orAll":[]}"#,
        )],
    );
    let out = svc.handle(schedule_event()).await.unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.starts_with("REQUEST_METADATA_FILTERS: requestMetadataFilters"),
        "{reason}"
    );
    assert!(!out.valid);
}
