//! Scheduled invocation-log runs: the stack settings, the curated run's window, `skipped`.

use super::*;
use crate::domain::run::{LogRunMode, LogWindow};

fn schedule_event(time: &str) -> Value {
    let mut e = event("schedule.json");
    e["scheduledTime"] = time.into();
    e
}

fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

#[test]
fn log_run_settings_default_from_limits_json_and_are_checked() {
    let (svc, _) = service_env(Arc::new(InMemoryDatasetStore::new()), &[]);
    let logs = svc.config.invocation_logs.unwrap();
    let limits = Limits::builtin();
    assert_eq!(logs.mode, LogRunMode::Curated);
    assert_eq!(logs.lookback_days, 7);
    assert_eq!(
        logs.lookback_days,
        limits.invocation_log_runs.default_lookback_days
    );
    assert_eq!(logs.min_new_records, 100);
    assert_eq!(
        logs.min_new_records,
        limits.invocation_log_runs.default_min_new_records
    );

    let set = |vars: &'static [(&'static str, &'static str)]| {
        ValidatorConfig::from_lookup(|k| {
            if k == "INVOCATION_LOGS_S3_URI" {
                return Some("s3://logs/bedrock/".into());
            }
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
                .or_else(|| crate::testing::permissive_stack(k))
        })
    };
    let c = set(&[
        ("LOG_RUN_MODE", "Native"),
        ("LOOKBACK_DAYS", "30"),
        ("MIN_NEW_RECORDS", "500"),
    ])
    .unwrap();
    let logs = c.invocation_logs.unwrap();
    assert_eq!(
        (logs.mode, logs.lookback_days, logs.min_new_records),
        (LogRunMode::Native, 30, 500)
    );
    for (vars, named) in [
        (&[("LOG_RUN_MODE", "both")][..], "LOG_RUN_MODE must be curated or native, got 'both'"),
        (&[("LOOKBACK_DAYS", "0")][..], "LOOKBACK_DAYS must be a whole number of days from 1 to 365, got '0'"),
        (&[("LOOKBACK_DAYS", "400")][..], "got '400'"),
        (&[("MIN_NEW_RECORDS", "15001")][..], "got '15001'"),
        (&[("MIN_NEW_RECORDS", "99")][..], "MIN_NEW_RECORDS must be a whole number of records from 100 (Bedrock's minimum) to 15000 (its maximum), got '99'"),
    ] {
        let vars: &'static [(&'static str, &'static str)] = Box::leak(vars.to_vec().into_boxed_slice());
        let e = set(vars).unwrap_err();
        assert_eq!(e.error_type, ErrorType::ConfigInvalid);
        assert!(e.message.contains(named), "{}", e.message);
    }
}

#[tokio::test]
async fn a_curated_run_records_its_schedule_and_window_from_the_lookback() {
    let (svc, ledger) = service_env(
        Arc::new(InMemoryDatasetStore::new()),
        &[("LOG_RUN_MODE", "curated"), ("LOOKBACK_DAYS", "3")],
    );
    let out = svc
        .handle(schedule_event("2026-11-30T03:00:00Z"))
        .await
        .unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        run.dataset.log_window(),
        // Ends 30 minutes before the scheduled time (limits.json deliveryDelayMinutes).
        Some(LogWindow {
            start: t("2026-11-27T02:30:00Z"),
            end: t("2026-11-30T02:30:00Z"),
        })
    );
    assert_eq!(run.dataset.schedule_name(), Some("weekly-retraining"));
    // No logs under the prefix at all: zero new records, skipped (nothing launched).
    assert_eq!(run.status, RunStatus::Skipped);
    assert!(!out.valid && out.skipped);
    assert!(
        run.history
            .last()
            .unwrap()
            .detail
            .as_deref()
            .unwrap()
            .starts_with("0 new eligible record(s)"),
        "{:?}",
        run.history
    );
}

#[tokio::test]
async fn skip_run_records_skipped_with_the_reason_and_writes_the_report() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(
        store.clone(),
        &[("LOG_RUN_MODE", "curated"), ("MIN_NEW_RECORDS", "150")],
    );
    let window = LogWindow {
        start: t("2026-11-23T03:00:00Z"),
        end: t("2026-11-30T03:00:00Z"),
    };
    let dataset = DatasetLocation::InvocationLogs {
        s3_uri: "s3://logs-bucket/bedrock-logs/".into(),
        request_metadata_filters: None,
        use_prompt_response: false,
        mode: LogRunMode::Curated,
        schedule_name: Some("weekly-retraining".into()),
        window_start: Some(window.start),
        window_end: Some(window.end),
    };
    let id = RunId::for_schedule("weekly-retraining", "2026-11-30T03:00:00Z");
    let run = Run::new(
        id.clone(),
        RunSource::Schedule,
        dataset,
        svc.config.recorded_defaults(),
        t("2026-11-30T03:00:01Z"),
    );
    ledger.create(&run).await.unwrap();
    let run = ledger
        .update(
            &id,
            &[RunStatus::Received],
            &RunUpdate::to(RunStatus::Validating),
        )
        .await
        .unwrap();

    let out = svc.skip_run(&run, 42, window, None).await.unwrap();
    assert!(out.skipped && !out.valid && !out.duplicate, "{out:?}");
    assert_eq!(out.status, Some(RunStatus::Skipped));
    assert_eq!(out.records, 42);
    let recorded = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(recorded.status, RunStatus::Skipped);
    assert!(recorded.is_final());
    let detail = recorded.history.last().unwrap().detail.clone().unwrap();
    assert_eq!(
        detail,
        "42 new eligible record(s) (distinct prompts) in the invocation logs from 2026-11-23T03:00:00Z to \
         2026-11-30T03:00:00Z, fewer than MIN_NEW_RECORDS (150): nothing was launched, and the \
         next scheduled run reads this window again"
    );
    let key = svc.config.report_key(&id);
    assert_eq!(
        out.report_uri.as_deref(),
        Some(format!("s3://{BUCKET}/{key}").as_str())
    );
    let report: Value = serde_json::from_slice(&store.get_bytes(BUCKET, &key).unwrap()).unwrap();
    assert_eq!(report["eligibleRecords"], 42);
    assert_eq!(report["minNewRecords"], 150);
    assert_eq!(report["logWindow"]["start"], "2026-11-23T03:00:00Z");
    assert_eq!(report["note"], detail);

    // Only a validating run can be skipped; a second call is refused and changes nothing.
    let e = svc.skip_run(&recorded, 42, window, None).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert_eq!(
        ledger.get(&id).await.unwrap().unwrap().history.len(),
        recorded.history.len()
    );
}

#[test]
fn the_output_says_skipped_and_older_outputs_read_without_it() {
    let v = serde_json::json!({
        "runId": "run-5d41402abc4b2a76b971", "duplicate": false, "ignored": false, "valid": true,
        "status": "validated", "serving": "none", "reportUri": null, "records": 1, "invalidRecords": 0
    });
    let out: ValidateDatasetOutput = serde_json::from_value(v).unwrap();
    assert!(!out.skipped);
    let again = serde_json::to_value(&out).unwrap();
    assert_eq!(again["skipped"], false);
}

#[tokio::test]
async fn a_curated_run_starts_where_the_schedules_last_completed_run_ended() {
    let (svc, ledger) = service_env(
        Arc::new(InMemoryDatasetStore::new()),
        &[("LOG_RUN_MODE", "curated")],
    );
    let previous_end = t("2026-11-25T03:00:00Z");
    let id = RunId::for_schedule("weekly-retraining", "2026-11-25T03:00:00Z");
    let mut settings = svc.config.recorded_defaults();
    settings.serving = crate::domain::settings::ServingMode::None;
    let run = Run::new(
        id.clone(),
        RunSource::Schedule,
        DatasetLocation::InvocationLogs {
            s3_uri: "s3://logs-bucket/bedrock-logs/".into(),
            request_metadata_filters: None,
            use_prompt_response: false,
            mode: LogRunMode::Curated,
            schedule_name: Some("weekly-retraining".into()),
            window_start: Some(t("2026-11-18T03:00:00Z")),
            window_end: Some(previous_end),
        },
        settings,
        previous_end,
    );
    ledger.create(&run).await.unwrap();
    let mut from = RunStatus::Received;
    for next in [
        RunStatus::Validating,
        RunStatus::Validated,
        RunStatus::Launching,
        RunStatus::Training,
        RunStatus::Completed,
    ] {
        ledger
            .update(&id, &[from], &RunUpdate::to(next))
            .await
            .unwrap();
        from = next;
    }
    let out = svc
        .handle(schedule_event("2026-11-30T03:00:00Z"))
        .await
        .unwrap();
    let recorded = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        recorded.dataset.log_window(),
        Some(LogWindow {
            start: previous_end,
            end: t("2026-11-30T02:30:00Z"),
        })
    );
}

#[tokio::test]
async fn a_schedules_own_log_run_mode_overrides_the_stacks() {
    let (svc, ledger) = service_env(
        Arc::new(InMemoryDatasetStore::new()),
        &[("LOG_RUN_MODE", "curated")],
    );
    let mut e = schedule_event("2026-11-30T03:00:00Z");
    e["logRunMode"] = "native".into();
    let out = svc.handle(e).await.unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    // Native: nothing read, no window, validated for Bedrock to filter.
    assert!(matches!(
        run.dataset,
        DatasetLocation::InvocationLogs {
            mode: LogRunMode::Native,
            window_start: None,
            ..
        }
    ));
    assert_eq!(run.status, RunStatus::Validated);

    let mut e = schedule_event("2026-11-30T04:00:00Z");
    e["logRunMode"] = "both".into();
    let err = svc.handle(e).await.unwrap_err();
    assert_eq!(err.error_type, ErrorType::InvalidInput);
    assert!(err
        .message
        .contains("logRunMode must be curated or native, got 'both'"));
}
