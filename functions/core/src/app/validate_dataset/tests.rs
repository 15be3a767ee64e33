use super::*;
use crate::domain::catalog::{Limits, ModelCatalog};
use crate::domain::errors::ErrorType;
use crate::ports::SystemClock;
use crate::testing::memory::{InMemoryDatasetStore, InMemoryRunLedger};

const BUCKET: &str = "distillery-datasets-123456789012";

/// Moved from the validation engine's tests when the engine became sans-I/O: the streamed
/// driver (odd-sized chunks, records straddling them) gives exactly the report of the sync one.
#[tokio::test]
async fn the_chunk_driver_matches_the_sync_one() {
    use crate::domain::validation::validate_reader;
    let good = good_line(1);
    let text = format!("{good}\nnot json\n").repeat(1000);
    let mut options =
        ValidationOptions::for_student(&ModelCatalog::builtin(), None, &Limits::builtin());
    options.limits.min_records = 0;
    let chunks: Vec<Result<Vec<u8>, PortError>> = text
        .as_bytes()
        .chunks(977)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let from_chunks = validate_chunks(Box::pin(futures::stream::iter(chunks)), &options)
        .await
        .unwrap();
    assert_eq!(
        from_chunks,
        validate_reader(text.as_bytes(), &options).unwrap()
    );
    assert_eq!(from_chunks.invalid_records, 1000);
}

#[tokio::test]
async fn a_read_failure_mid_stream_is_an_error_not_a_verdict() {
    let good = good_line(1);
    let chunks: Vec<Result<Vec<u8>, PortError>> = vec![
        Ok(format!("{good}\n").into_bytes()),
        Err(PortError::Transient("connection reset".into())),
    ];
    let options =
        ValidationOptions::for_student(&ModelCatalog::builtin(), None, &Limits::builtin());
    let err = validate_chunks(Box::pin(futures::stream::iter(chunks)), &options)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::Transient(_)), "{err}");
}

pub(crate) fn good_line(i: usize) -> String {
    serde_json::json!({
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "You are a support agent."}],
        "messages": [
            {"role": "user", "content": [{"text": format!("Question number {i}?")}]},
            {"role": "assistant", "content": [{"text": format!("Answer number {i}.")}]}
        ]
    })
    .to_string()
}

pub(crate) fn dataset(n: usize) -> String {
    (0..n).map(|i| good_line(i) + "\n").collect()
}

fn event(file: &str) -> Value {
    let path = format!("{}/../../events/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}

/// The validator with the quality gate off: these tests cover the single pass (the gate's two
/// passes are in `quality_gate_tests.rs`).
fn service(store: Arc<InMemoryDatasetStore>) -> (DatasetValidatorService, Arc<InMemoryRunLedger>) {
    service_env(store, &[("QUALITY_GATE", "off")])
}

/// The validator with `env` on top of the scheduled-run settings.
pub(crate) fn service_env(
    store: Arc<InMemoryDatasetStore>,
    env: &[(&str, &str)],
) -> (DatasetValidatorService, Arc<InMemoryRunLedger>) {
    let ledger = Arc::new(InMemoryRunLedger::new());
    let config = ValidatorConfig::from_lookup(|k| match k {
        "INVOCATION_LOGS_S3_URI" => Some("s3://logs-bucket/bedrock-logs/".into()),
        "SCHEDULE_BUCKET" => Some(BUCKET.into()),
        _ => env
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
            .or_else(|| crate::testing::permissive_stack(k)),
    })
    .unwrap();
    (
        DatasetValidatorService {
            ledger: ledger.clone(),
            lister: store.clone(),
            store,
            clock: Arc::new(SystemClock),
            config,
        },
        ledger,
    )
}

fn object_event(key: &str, etag: &str) -> Value {
    let mut e = event("s3-object-created.json");
    e["detail"]["object"]["key"] = key.into();
    e["detail"]["object"]["etag"] = etag.into();
    // The in-memory store is an unversioned bucket: S3 sends no version id for those.
    e["detail"]["object"]["version-id"] = Value::Null;
    e
}

#[test]
fn fixtures_parse_with_both_etag_spellings_and_aws_lambda_events() {
    for (file, want) in [
        ("s3-object-created.json", "b1946ac92492d2347c6235b4d2611184"),
        (
            "s3-object-created-moto.json",
            "\"b1946ac92492d2347c6235b4d2611184\"",
        ),
    ] {
        let v = event(file);
        let typed: aws_lambda_events::eventbridge::EventBridgeEvent<Value> =
            serde_json::from_value(v.clone()).unwrap();
        assert_eq!(typed.detail_type, "Object Created");
        let ValidateInput::ObjectCreated(e) = ValidateInput::parse(v).unwrap() else {
            panic!("{file} is not an S3 event");
        };
        let o = &e.detail.object;
        assert_eq!(o.etag.clone().or(o.e_tag.clone()).unwrap(), want);
    }
    assert!(matches!(
        ValidateInput::parse(event("submit.json")).unwrap(),
        ValidateInput::Submit(_)
    ));
    assert!(matches!(
        ValidateInput::parse(event("schedule.json")).unwrap(),
        ValidateInput::Schedule(_)
    ));
    let out: ValidateDatasetOutput =
        serde_json::from_value(event("validate-dataset-output.json")).unwrap();
    assert!(out.valid);
    let err =
        ValidateInput::parse(serde_json::json!({"source": "aws.s3", "detail": {}})).unwrap_err();
    assert_eq!(err.error_type, ErrorType::InvalidInput);
    assert!(err.message.contains("bucket"), "{}", err.message);
}

#[tokio::test]
async fn keys_outside_the_upload_area_are_ignored() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service(store);
    for key in ["other/a.jsonl", "incoming/a.csv"] {
        let out = svc.handle(object_event(key, "x")).await.unwrap();
        assert!(out.ignored && out.run_id.is_none());
    }
    assert!(ledger.all().is_empty());
}

#[tokio::test]
async fn a_valid_dataset_is_validated_once_and_a_duplicate_does_nothing() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let etag = store.insert(BUCKET, "incoming/support.jsonl", dataset(120), &[]);
    let (svc, ledger) = service(store.clone());
    let out = svc
        .handle(object_event("incoming/support.jsonl", &etag))
        .await
        .unwrap();
    assert!(out.valid && !out.duplicate, "{out:?}");
    assert_eq!(out.status, Some(RunStatus::Validated));
    assert_eq!(out.records, 120);
    let run_id = out.run_id.clone().unwrap();
    let report_key = format!("reports/{run_id}/report.json");
    assert_eq!(
        out.report_uri.as_deref(),
        Some(format!("s3://{BUCKET}/{report_key}").as_str())
    );
    let report: Value =
        serde_json::from_slice(&store.get_bytes(BUCKET, &report_key).unwrap()).unwrap();
    assert_eq!(report["validation"]["records"], 120);
    let run = ledger.all().remove(0);
    let path: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
    assert_eq!(
        path,
        [
            RunStatus::Received,
            RunStatus::Validating,
            RunStatus::Validated
        ]
    );

    let again = svc
        .handle(object_event("incoming/support.jsonl", &etag))
        .await
        .unwrap();
    assert!(again.duplicate && again.valid);
    assert_eq!(again.run_id, Some(run_id));
    assert_eq!(ledger.all().len(), 1);
    assert_eq!(ledger.all()[0].history.len(), 3);
}

#[tokio::test]
async fn an_invalid_line_rejects_the_run_with_its_line_number() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let mut body = dataset(110);
    body.push_str("{not json\n");
    let etag = store.insert(BUCKET, "incoming/bad.jsonl", body, &[]);
    let (svc, ledger) = service(store.clone());
    let out = svc
        .handle(object_event("incoming/bad.jsonl", &etag))
        .await
        .unwrap();
    assert!(!out.valid);
    assert_eq!(out.status, Some(RunStatus::Rejected));
    assert_eq!(out.invalid_records, 1);
    let run = ledger.all().remove(0);
    let summary = run.validation.unwrap();
    assert!(
        summary.first_errors[0].starts_with("line 111:"),
        "{:?}",
        summary.first_errors
    );
    assert!(run.failure_reason.unwrap().contains("line 111"));
}

#[tokio::test]
async fn bad_settings_and_bad_keys_are_rejections_with_the_reason() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let e1 = store.insert(
        BUCKET,
        "incoming/meta.jsonl",
        dataset(120),
        &[("distillery-student", "meta.llama3-1-8b-instruct-v1:0:128k")],
    );
    let e2 = store.insert(BUCKET, "incoming/my data+v=1@x.jsonl", dataset(120), &[]);
    let e3 = store.insert(
        BUCKET,
        "incoming/typo.jsonl",
        dataset(120),
        &[("distillery-studnet", "x")],
    );
    let (svc, ledger) = service(store);
    let out = svc
        .handle(object_event("incoming/meta.jsonl", &e1))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let out = svc
        .handle(object_event("incoming/my data+v=1@x.jsonl", &e2))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let out = svc
        .handle(object_event("incoming/typo.jsonl", &e3))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let reasons: Vec<String> = ledger
        .all()
        .into_iter()
        .map(|r| r.failure_reason.unwrap())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("amazon.nova-lite-v1:0:300k")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("space") && r.contains("'+'")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("distillery-studnet")),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn cli_overrides_win_and_schedule_runs_are_validated_directly() {
    let store = Arc::new(InMemoryDatasetStore::new());
    store.insert(
        BUCKET,
        "incoming/support-tickets.jsonl",
        dataset(120),
        &[("distillery-max-response-length", "500")],
    );
    let (svc, ledger) = service(store);
    let out = svc.handle(event("submit.json")).await.unwrap();
    assert!(out.valid, "{out:?}");
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.settings.student, "amazon.nova-micro-v1:0:128k");
    assert_eq!(run.settings.max_response_length, 2000);
    assert_eq!(run.source, RunSource::Cli);

    // The pass-through (`native`); the curated path is in `schedule_tests.rs`.
    let (svc, ledger) = service_env(
        Arc::new(InMemoryDatasetStore::new()),
        &[("QUALITY_GATE", "off"), ("LOG_RUN_MODE", "native")],
    );
    let out = svc.handle(event("schedule.json")).await.unwrap();
    assert!(
        out.valid && out.report_uri.is_some() && !out.skipped,
        "{out:?}"
    );
    let again = svc.handle(event("schedule.json")).await.unwrap();
    assert!(again.duplicate);
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        &run.dataset,
        DatasetLocation::InvocationLogs {
            mode: crate::domain::run::LogRunMode::Native,
            schedule_name: Some(name),
            window_start: None,
            window_end: None,
            ..
        } if name == "weekly-retraining"
    ));
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod snapshot_tests;

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod schedule_tests;

#[cfg(test)]
#[path = "curate_tests.rs"]
mod curate_tests;

/// [`service`] with extra stack variables.
fn service_with(
    store: Arc<InMemoryDatasetStore>,
    vars: &'static [(&'static str, &'static str)],
) -> (DatasetValidatorService, Arc<InMemoryRunLedger>) {
    let ledger = Arc::new(InMemoryRunLedger::new());
    let config = ValidatorConfig::from_lookup(|k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.to_string())
            .or_else(|| crate::testing::permissive_stack(k))
    })
    .unwrap();
    (
        DatasetValidatorService {
            ledger: ledger.clone(),
            lister: store.clone(),
            store,
            clock: Arc::new(SystemClock),
            config,
        },
        ledger,
    )
}

#[tokio::test]
async fn a_valid_run_carries_its_cost_estimate_on_the_run_and_in_the_report() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let etag = store.insert(BUCKET, "incoming/cost.jsonl", dataset(120), &[]);
    let (svc, ledger) = service_with(store.clone(), &[("MAX_RUN_COST_USD", "1000")]);
    let out = svc
        .handle(object_event("incoming/cost.jsonl", &etag))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    let run = ledger.all().remove(0);
    let e = run.validation.unwrap().cost_estimate.expect("an estimate");
    assert!(e.low_usd > 0.0 && e.low_usd <= e.high_usd, "{e:?}");
    assert_eq!(e.budget_usd, Some(1000.0));
    assert!(!e.over_budget);
    // No AWS_REGION in a test: the pair's Region prices the run.
    assert_eq!(e.region, "us-east-1");
    // SERVING_MODE defaults to auto, which settles to on-demand for the default Nova student in
    // us-east-1: a zero serving line (nothing when idle).
    assert_eq!(run.settings.serving, ServingMode::OnDemand);
    let items: Vec<&str> = e.line_items.iter().map(|i| i.item.as_str()).collect();
    assert_eq!(
        items,
        [
            "teacher_generation",
            "student_training",
            "model_storage",
            "serving"
        ]
    );
    assert_eq!(e.line_items[3].high_usd, 0.0);
    let report_key = format!("reports/{}/report.json", run.run_id);
    let report: Value =
        serde_json::from_slice(&store.get_bytes(BUCKET, &report_key).unwrap()).unwrap();
    assert_eq!(report["costEstimate"]["high_usd"], e.high_usd);
}

#[tokio::test]
async fn a_run_over_budget_is_rejected_naming_both_figures_and_a_higher_metadata_budget_is_refused()
{
    let store = Arc::new(InMemoryDatasetStore::new());
    let low = store.insert(
        BUCKET,
        "incoming/tiny-budget.jsonl",
        dataset(120),
        &[("distillery-max-run-cost-usd", "0.01")],
    );
    let high = store.insert(
        BUCKET,
        "incoming/big-budget.jsonl",
        dataset(120),
        &[("distillery-max-run-cost-usd", "5000")],
    );
    let (svc, ledger) = service_with(store.clone(), &[("MAX_RUN_COST_USD", "100")]);
    let out = svc
        .handle(object_event("incoming/tiny-budget.jsonl", &low))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected), "{out:?}");
    assert!(!out.valid);
    let run = ledger.all().remove(0);
    let reason = run.failure_reason.clone().unwrap();
    let e = run.validation.clone().unwrap().cost_estimate.unwrap();
    assert!(e.over_budget && e.budget_usd == Some(0.01));
    assert!(
        reason.starts_with(&format!(
            "over_budget: the high cost estimate USD {:.2} exceeds the budget USD 0.01 set by S3 metadata x-amz-meta-distillery-max-run-cost-usd; estimate USD {:.2} to USD {:.2} (teacher generation",
            e.high_usd,
            e.low_usd,
            e.high_usd
        )),
        "{reason}"
    );
    assert_eq!(run.validation.unwrap().first_errors, vec![reason]);
    // Rejected, so no snapshot: none recorded, none completed under runs/.
    assert!(run.snapshot.is_none(), "{:?}", run.snapshot);
    assert!(store
        .get_bytes(BUCKET, &format!("runs/{}/dataset.jsonl", run.run_id))
        .is_none());

    let out = svc
        .handle(object_event("incoming/big-budget.jsonl", &high))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let run = ledger
        .all()
        .into_iter()
        .find(|r| r.dataset.s3_uri().ends_with("big-budget.jsonl"))
        .unwrap();
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.contains("a run's budget of USD 5000 exceeds the stack's MAX_RUN_COST_USD of USD 100: metadata may only lower it"),
        "{reason}"
    );
    // Refused before a record was read.
    assert_eq!(run.validation.unwrap().records, 0);
}

#[test]
fn the_budget_and_ttl_variables_are_checked() {
    let e = ValidatorConfig::from_lookup(|k| (k == "MAX_RUN_COST_USD").then(|| "ten".into()))
        .unwrap_err();
    assert_eq!(
        e.message,
        "environment variable MAX_RUN_COST_USD must be a number of US dollars (0 or more), got 'ten'"
    );
    let e =
        ValidatorConfig::from_lookup(|k| (k == "PT_TTL_HOURS").then(|| "0".into())).unwrap_err();
    assert!(e.message.contains("PT_TTL_HOURS"), "{}", e.message);
    let c = ValidatorConfig::from_lookup(|_| None).unwrap();
    assert_eq!((c.max_run_cost_usd, c.pt_ttl_hours), (None, 24.0));
}

#[tokio::test]
async fn a_ttl_in_the_metadata_may_only_shorten_the_stacks_and_is_recorded_on_the_run() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let short = store.insert(
        BUCKET,
        "incoming/short-ttl.jsonl",
        dataset(120),
        &[
            ("distillery-serving", "provisioned"),
            ("distillery-pt-ttl-hours", "0.5"),
        ],
    );
    let long = store.insert(
        BUCKET,
        "incoming/long-ttl.jsonl",
        dataset(120),
        &[
            ("distillery-serving", "provisioned"),
            ("distillery-pt-ttl-hours", "48"),
        ],
    );
    let (svc, ledger) = service_with(store.clone(), &[("PT_TTL_HOURS", "24")]);
    let out = svc
        .handle(object_event("incoming/short-ttl.jsonl", &short))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    let run = ledger.all().remove(0);
    assert_eq!(run.pt_ttl_hours, Some(0.5));
    // The estimate counts the run's own (shorter) TTL.
    let e = run.validation.unwrap().cost_estimate.unwrap();
    let serving = e.line_items.iter().find(|i| i.item == "serving").unwrap();
    assert!(serving.basis.contains("x 0.5 hour(s)"), "{}", serving.basis);

    let out = svc
        .handle(object_event("incoming/long-ttl.jsonl", &long))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let run = ledger
        .all()
        .into_iter()
        .find(|r| r.dataset.s3_uri().ends_with("long-ttl.jsonl"))
        .unwrap();
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.contains(
            "a Provisioned Throughput TTL of 48 hour(s) exceeds the stack's PT_TTL_HOURS of 24 hour(s): metadata may only shorten it; the value came from S3 metadata x-amz-meta-distillery-pt-ttl-hours"
        ),
        "{reason}"
    );
}

#[tokio::test]
async fn a_queue_priority_in_the_metadata_is_recorded_and_high_needs_every_override_open() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let low = store.insert(
        BUCKET,
        "incoming/low.jsonl",
        dataset(120),
        &[("distillery-priority", "low")],
    );
    let high = store.insert(
        BUCKET,
        "incoming/high.jsonl",
        dataset(120),
        &[("distillery-priority", "high")],
    );
    let (svc, ledger) = service_with(store.clone(), &[("ALLOW_OVERRIDES", "serving")]);
    let out = svc
        .handle(object_event("incoming/low.jsonl", &low))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    let of = |name: &str| {
        ledger
            .all()
            .into_iter()
            .find(|r| r.dataset.s3_uri().ends_with(name))
            .unwrap()
    };
    assert_eq!(
        of("low.jsonl").priority,
        crate::domain::run::QueuePriority::Low
    );
    let out = svc
        .handle(object_event("incoming/high.jsonl", &high))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let reason = of("high.jsonl").failure_reason.unwrap();
    assert!(
        reason.contains("priority 'high'") && reason.contains("x-amz-meta-distillery-priority"),
        "{reason}"
    );

    let store = Arc::new(InMemoryDatasetStore::new());
    let high = store.insert(
        BUCKET,
        "incoming/high.jsonl",
        dataset(120),
        &[("distillery-priority", "high")],
    );
    let (svc, ledger) = service_with(store.clone(), &[("ALLOW_OVERRIDES", "all")]);
    let out = svc
        .handle(object_event("incoming/high.jsonl", &high))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    assert_eq!(
        ledger.all()[0].priority,
        crate::domain::run::QueuePriority::High
    );
}

#[test]
fn the_ttl_metadata_is_part_of_a_runs_identity_only_when_present() {
    use crate::domain::run::RunIdentity;
    use crate::domain::settings::{settings_fingerprint, SettingsOverrides};
    let config = ValidatorConfig::from_lookup(|k| {
        (k == "QUALITY_GATE")
            .then(|| "off".into())
            .or_else(|| crate::testing::permissive_stack(k))
    })
    .unwrap();
    let none = SettingsOverrides::default();
    let object = |metadata| object_run::ObjectVersion {
        bucket: BUCKET,
        key: "incoming/id.jsonl",
        version_id: None,
        etag: "abc",
        metadata,
    };
    let plain = std::collections::BTreeMap::from([(
        "distillery-serving".to_string(),
        "provisioned".to_string(),
    )]);
    let (id, settings) = object_run::run_for_object(&config, &object(&plain), &none, 1);
    // Without the key, the id is what it was before TTLs existed: the settings fingerprint alone.
    let before = RunId::for_dataset(&RunIdentity {
        bucket: BUCKET,
        key: "incoming/id.jsonl",
        version: "abc",
        settings_fingerprint: &settings_fingerprint(Ok(&settings.unwrap()), &plain, &none),
        attempt: 1,
    });
    assert_eq!(id, before);
    let mut with_ttl = plain.clone();
    with_ttl.insert("distillery-pt-ttl-hours".into(), "2".into());
    let (id2, _) = object_run::run_for_object(&config, &object(&with_ttl), &none, 1);
    assert_ne!(id2, id);
}

#[test]
fn a_fractional_stack_ttl_is_accepted() {
    let c = ValidatorConfig::from_lookup(|k| (k == "PT_TTL_HOURS").then(|| "0.25".into())).unwrap();
    assert_eq!(c.pt_ttl_hours, 0.25);
}

#[cfg(test)]
#[path = "serving_tests.rs"]
mod serving_tests;

#[cfg(test)]
#[path = "quality_gate_tests.rs"]
mod quality_gate_tests;

#[tokio::test]
async fn max_active_runs_rejects_the_excess_before_reading_and_admits_once_one_finished() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_with(
        store.clone(),
        &[("QUALITY_GATE", "off"), ("MAX_ACTIVE_RUNS", "2")],
    );
    // Two uploads become two validated (active) runs.
    for name in ["a", "b"] {
        let key = format!("incoming/{name}.jsonl");
        let etag = store.insert(BUCKET, &key, dataset(120), &[]);
        let out = svc.handle(object_event(&key, &etag)).await.unwrap();
        assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    }
    // The third is refused before a byte is read: no snapshot, the reason names the setting.
    let etag = store.insert(BUCKET, "incoming/c.jsonl", dataset(120), &[]);
    let out = svc
        .handle(object_event("incoming/c.jsonl", &etag))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected), "{out:?}");
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    let reason = run.failure_reason.clone().unwrap();
    assert!(
        reason.starts_with("MAX_ACTIVE_RUNS is 2 and 2 runs are already validated, queued, launching, training or provisioning"),
        "{reason}"
    );
    assert!(run.snapshot.is_none());
    assert_eq!(
        store.snapshot_counts().begun,
        2,
        "only the two admitted runs wrote snapshots"
    );
    // One of the two fails; a new upload is admitted.
    let first = ledger
        .all()
        .into_iter()
        .find(|r| r.status == RunStatus::Validated)
        .unwrap();
    ledger
        .update(
            &first.run_id,
            &[RunStatus::Validated],
            &RunUpdate::to(RunStatus::Failed),
        )
        .await
        .unwrap();
    let etag = store.insert(BUCKET, "incoming/d.jsonl", dataset(120), &[]);
    let out = svc
        .handle(object_event("incoming/d.jsonl", &etag))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    // A nonsense cap is a configuration error naming the variable.
    let e = ValidatorConfig::from_lookup(|k| (k == "MAX_ACTIVE_RUNS").then(|| "0".to_string()))
        .unwrap_err();
    assert!(e.message.contains("MAX_ACTIVE_RUNS"), "{}", e.message);
}
