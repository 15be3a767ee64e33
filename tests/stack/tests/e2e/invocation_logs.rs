//! Issue 14: scheduled retraining from Bedrock invocation logs on the local stack. Generated logs
//! (several models, metadata, multi-turn and image records, duplicates, an offloaded body) are
//! written into the stack's log bucket; a schedule's execution input starts the run.
//! - curated (the stack's LOG_RUN_MODE): the validator reads the window, writes one record per
//!   prompt, validates it like an upload, and the job trains on the snapshot; the schedule's next
//!   run finds nothing new and ends `skipped`, announced, nothing launched.
//! - native (the schedule's `logRunMode`): the job gets the log prefix, and the simulator reads the
//!   logs from S3 as Bedrock would.

use chrono::{DateTime, Duration, Utc};
use distillery_core::domain::invocation_logs::PreflightOptions;
use distillery_core::domain::run::{DatasetLocation, LogRunMode, LogWindow};
use distillery_core::testing::invocation_logs::{
    log_objects, reference_curation, write_invocation_logs, LogGenOptions,
};

use super::*;

fn schedule_input(name: &str, at: DateTime<Utc>, mode: Option<&str>) -> Value {
    let mut input = json!({
        "source": "distillery.schedule",
        "scheduleName": name,
        "scheduledTime": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    if let Some(mode) = mode {
        input["logRunMode"] = mode.into();
    }
    input
}

/// A schedule name no earlier test (or earlier run of the suite on this stack) used.
fn unique_schedule(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("e2e-{name}-{nanos}")
}

/// Four hours of logs from `start`, then the truncated and the corrupt file in the fifth hour (each
/// test its own days, so one test's logs never fall in another's window).
fn four_hours_from(start: &str, seed: u64) -> LogGenOptions {
    LogGenOptions {
        target_bytes: 0,
        min_hours: 4,
        records_per_file: 200,
        files_per_hour: 2,
        start: start.parse().unwrap(),
        seed,
        truncated_file: true,
        corrupt_file: true,
    }
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_curated_schedule_trains_on_its_windows_prompts_then_skips_an_empty_window() {
    let stack = stack().await;
    // Thirty hours over two days, one file an hour, then the truncated and the corrupt file.
    let options = LogGenOptions {
        target_bytes: 0,
        min_hours: 30,
        records_per_file: 60,
        files_per_hour: 1,
        start: "2026-09-29T00:00:00Z".parse().unwrap(),
        seed: 21,
        truncated_file: true,
        corrupt_file: true,
    };
    let generated = stack
        .put_invocation_logs(&options)
        .await
        .expect(NEEDS_STACK);
    let schedule = unique_schedule("curated");
    let fired = "2026-09-30T07:00:00Z".parse::<DateTime<Utc>>().unwrap();
    // The window ends 30 minutes before the schedule fired (limits.json deliveryDelayMinutes).
    let end = fired - Duration::minutes(30);
    let ex = stack
        .run_execution(&schedule_input(&schedule, fired, None))
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.history);
    let DatasetLocation::InvocationLogs {
        mode,
        schedule_name,
        window_start,
        window_end,
        ..
    } = &run.dataset
    else {
        panic!("{:?}", run.dataset)
    };
    assert_eq!(*mode, LogRunMode::Curated);
    assert_eq!(schedule_name.as_deref(), Some(schedule.as_str()));
    // A schedule's first run reaches LOOKBACK_DAYS (7) back.
    assert_eq!(*window_start, Some(end - Duration::days(7)));
    assert_eq!(*window_end, Some(end));

    // The job trained on the validated snapshot of the converted window, never on the log prefix.
    let snap = run
        .snapshot
        .clone()
        .expect("a curated run trains on a snapshot");
    let calls = stack.bedrock_calls().await.unwrap();
    let (created, _) = calls_of(&calls, "CreateModelCustomizationJob");
    assert_eq!(created.len(), 1, "{calls:?}");
    assert_eq!(created[0]["request"]["trainingDataS3Uri"], snap.uri);
    assert!(created[0]["request"].get("invocationLogsS3Uri").is_none());
    let trained = stack.read_s3_uri(&snap.uri).await.unwrap();
    let lines: Vec<&str> = std::str::from_utf8(&trained).unwrap().lines().collect();
    let records = run.validation.as_ref().unwrap().records;
    assert_eq!(lines.len() as u64, records);
    // Exactly what the brute-force reference chooses from the same logs: one record per prompt
    // (its latest call), fewer than were logged (the logs repeat prompts, and some records are
    // multi-turn, images or failed reads).
    let dir = tempfile::tempdir().unwrap();
    write_invocation_logs(dir.path(), &options).unwrap();
    let reference = reference_curation(
        &log_objects(dir.path()).unwrap(),
        &LogWindow {
            start: end - Duration::days(7),
            end,
        },
        &PreflightOptions {
            teacher: Some(run.settings.teacher.clone()),
            ..Default::default()
        },
        15_000,
    );
    let distinct: BTreeSet<String> = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(distinct.len(), lines.len());
    assert_eq!(distinct, reference);
    assert!(
        records >= 100 && records < generated.records,
        "{records} of {}",
        generated.records
    );
    // The logs span two days.
    assert!(generated.hours >= 30);
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["schemaVersion"], "bedrock-conversation-2024");
    }
    // The report says what the window held, with the corrupt and truncated files named.
    let report: Value = serde_json::from_slice(
        &stack
            .read_s3_uri(
                run.validation
                    .as_ref()
                    .unwrap()
                    .report_uri
                    .as_ref()
                    .unwrap(),
            )
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["curation"]["selected"], records);
    let skipped = report["curation"]["skippedFiles"].to_string();
    assert!(
        skipped.contains("cannot be read as gzip") && skipped.contains("truncated"),
        "{skipped}"
    );
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "completed"]);

    // An hour later nothing new was logged: the window starts where the last one ended, and the
    // run is skipped, announced once, with no Bedrock call.
    stack.reset_fakes().await.unwrap();
    let ex = stack
        .run_execution(&schedule_input(&schedule, fired + Duration::hours(1), None))
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    assert!(
        ex.states_entered().contains(&"Skipped".to_string()),
        "{}",
        explain(&ex)
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Skipped);
    assert_eq!(run.dataset.log_window().unwrap().start, end);
    assert!(stack.bedrock_calls().await.unwrap().is_empty());
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["skipped"]);
    assert!(
        sns[0].message.contains("0 new eligible record(s)"),
        "{}",
        sns[0].message
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_native_schedule_hands_bedrock_the_log_prefix_and_the_simulator_reads_it() {
    let stack = stack().await;
    stack
        .put_invocation_logs(&four_hours_from("2026-08-01T00:00:00Z", 22))
        .await
        .expect(NEEDS_STACK);
    let schedule = unique_schedule("native");
    let fired = "2026-08-01T04:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let ex = stack
        .run_execution(&schedule_input(&schedule, fired, Some("native")))
        .await
        .expect(NEEDS_STACK);
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert!(ex.succeeded(), "{}: {:?}", explain(&ex), run.failure_reason);
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.history);
    assert!(matches!(
        run.dataset,
        DatasetLocation::InvocationLogs {
            mode: LogRunMode::Native,
            window_start: None,
            ..
        }
    ));
    // Nothing was read or copied: Bedrock reads the prefix itself.
    assert!(run.snapshot.is_none());
    assert_eq!(run.validation.as_ref().unwrap().records, 0);
    let calls = stack.bedrock_calls().await.unwrap();
    let (created, _) = calls_of(&calls, "CreateModelCustomizationJob");
    assert_eq!(created.len(), 1, "{calls:?}");
    assert_eq!(
        created[0]["request"]["invocationLogsS3Uri"],
        stack.invocation_logs_uri()
    );
    assert!(created[0]["request"].get("trainingDataS3Uri").is_none());
}
