//! Run ids, identity, ownership and the transition rule.

use super::*;

#[test]
fn run_id_is_stable_and_ignores_etag_quotes() {
    let a = RunId::for_object("b", "incoming/x.jsonl", "\"abc\"");
    let b = RunId::for_object("b", "incoming/x.jsonl", "abc");
    let c = RunId::for_object("b", "incoming/x.jsonl", "abd");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.as_str().len(), 24);
}

fn identity<'a>(version: &'a str, fingerprint: &'a str, attempt: u32) -> RunIdentity<'a> {
    RunIdentity {
        bucket: "b",
        key: "incoming/x.jsonl",
        version,
        settings_fingerprint: fingerprint,
        attempt,
    }
}

#[test]
fn dataset_run_id_covers_version_settings_and_attempt() {
    let base = RunId::for_dataset(&identity("v1", "resolved:{a}", 1));
    // Same bytes, same settings: one run, however the ETag is quoted.
    assert_eq!(base, RunId::for_dataset(&identity("v1", "resolved:{a}", 1)));
    assert_eq!(
        RunId::for_dataset(&identity("\"e\"", "s", 1)),
        RunId::for_dataset(&identity("e", "s", 1))
    );
    // Anything else is a new run.
    assert_ne!(base, RunId::for_dataset(&identity("v2", "resolved:{a}", 1)));
    assert_ne!(base, RunId::for_dataset(&identity("v1", "resolved:{b}", 1)));
    assert_ne!(base, RunId::for_dataset(&identity("v1", "resolved:{a}", 2)));
    assert_ne!(
        RunId::for_dataset(&identity("v1", "resolved:{a}", 2)),
        RunId::for_dataset(&identity("v1", "resolved:{a}", 3))
    );
    // Distinct from the old (bucket, key, ETag) id, so old ledgers never collide.
    assert_ne!(
        RunId::for_dataset(&identity("e", "s", 1)),
        RunId::for_object("b", "incoming/x.jsonl", "e")
    );
    assert_eq!(base.as_str().len(), 24);
}

#[test]
fn object_version_prefers_the_version_id() {
    assert_eq!(RunIdentity::object_version(Some("abc"), "etag"), "abc");
    assert_eq!(RunIdentity::object_version(Some("null"), "etag"), "etag");
    assert_eq!(RunIdentity::object_version(Some(""), "etag"), "etag");
    assert_eq!(RunIdentity::object_version(None, "etag"), "etag");
}

#[test]
fn ownership_and_retry_rules() {
    let mut run = crate::testing::sample_run("b", "incoming/x.jsonl", "e", 1, Utc::now());
    assert!(!run.is_owned_by(None));
    assert!(!run.is_owned_by(Some("arn:exec:1")));
    run.owner_execution = Some("arn:exec:1".into());
    assert!(run.is_owned_by(Some("arn:exec:1")));
    assert!(!run.is_owned_by(Some("arn:exec:2")));
    assert!(!run.is_owned_by(None));
    for s in RunStatus::ALL {
        run.status = s;
        let retryable = matches!(
            s,
            RunStatus::Rejected
                | RunStatus::Failed
                | RunStatus::Stopped
                | RunStatus::GateFailed
                | RunStatus::Expired
        );
        assert_eq!(run.can_be_retried(), retryable, "{s}");
    }
    // Older records have no attempt: they are first attempts.
    let mut json = serde_json::to_value(&run).unwrap();
    json.as_object_mut().unwrap().remove("attempt");
    let back: Run = serde_json::from_value(json).unwrap();
    assert_eq!(back.attempt, 1);
}

#[test]
fn completed_is_final_only_without_serving_and_a_final_run_never_moves() {
    let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 0, 0, 0).unwrap();
    let mut run = crate::testing::sample_run("b", "incoming/a.jsonl", "e", 1, at);
    run.status = RunStatus::Completed;
    run.settings.serving = ServingMode::Provisioned;
    assert!(!run.is_final());
    assert!(run.can_move_to(RunStatus::Provisioning));
    run.settings.serving = ServingMode::None;
    assert!(run.is_final());
    for next in RunStatus::ALL {
        assert!(!run.can_move_to(next), "{next}");
    }
    let refused = run
        .check_update(&[], &RunUpdate::to(RunStatus::Failed))
        .unwrap_err();
    assert_eq!(
        refused.0,
        format!(
            "run {} is completed, which is final (the model is trained and no serving was \
             requested); it cannot move to failed",
            run.run_id
        )
    );
    // Field-only updates (delivery records) are still taken.
    assert!(run.check_update(&[], &RunUpdate::default()).is_ok());
    let e = run.refuse("announce 'failed'");
    assert_eq!(e.error_type, crate::domain::errors::ErrorType::Conflict);
    assert!(e.message.ends_with(
        "is completed (final: the model is trained and no serving was requested); cannot announce 'failed'"
    ));
}

#[test]
fn transitions_never_go_backwards() {
    use RunStatus::*;
    assert!(Received.can_move_to(Validating));
    assert!(!Training.can_move_to(Launching));
    assert!(!Ready.can_move_to(Provisioning));
    assert!(Completed.can_move_to(Provisioning));
    for s in RunStatus::ALL {
        if s.is_terminal() {
            assert!(RunStatus::ALL.iter().all(|n| !s.can_move_to(*n)), "{s}");
        }
        assert_eq!(RunStatus::parse(s.as_str()), Some(s));
    }
    assert_eq!(
        RunStatus::parse("provisioning-failed"),
        Some(ProvisioningFailed)
    );
}

#[test]
fn skipped_is_reached_only_from_validating_and_is_final() {
    use RunStatus::*;
    let from: Vec<RunStatus> = RunStatus::ALL
        .into_iter()
        .filter(|s| s.can_move_to(Skipped))
        .collect();
    assert_eq!(from, vec![Validating]);
    assert!(Skipped.is_terminal());
    assert_eq!(RunStatus::parse("skipped"), Some(Skipped));
    assert_eq!(serde_json::to_value(Skipped).unwrap(), "skipped");
}

#[test]
fn an_invocation_log_record_written_before_modes_and_windows_reads_as_native_without_a_window() {
    let old = serde_json::json!({
        "kind": "invocation_logs",
        "s3_uri": "s3://logs/bedrock/",
        "use_prompt_response": false
    });
    let d: DatasetLocation = serde_json::from_value(old).unwrap();
    match &d {
        DatasetLocation::InvocationLogs {
            mode,
            schedule_name,
            window_start,
            window_end,
            ..
        } => {
            assert_eq!(*mode, LogRunMode::Native);
            assert_eq!(*schedule_name, None);
            assert_eq!((*window_start, *window_end), (None, None));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.log_window(), None);
    assert_eq!(d.schedule_name(), None);
}

#[test]
fn a_curated_log_run_records_its_schedule_and_window() {
    let start = "2026-11-23T05:00:00Z".parse().unwrap();
    let end = "2026-11-30T05:00:00Z".parse().unwrap();
    let d = DatasetLocation::InvocationLogs {
        s3_uri: "s3://logs/bedrock/".into(),
        request_metadata_filters: None,
        use_prompt_response: false,
        mode: LogRunMode::Curated,
        schedule_name: Some("nightly".into()),
        window_start: Some(start),
        window_end: Some(end),
    };
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(v["mode"], "curated");
    assert_eq!(v["schedule_name"], "nightly");
    assert_eq!(v["window_start"], "2026-11-23T05:00:00Z");
    let back: DatasetLocation = serde_json::from_value(v).unwrap();
    assert_eq!(back, d);
    let w = d.log_window().unwrap();
    assert_eq!(w.describe(), "2026-11-23T05:00:00Z to 2026-11-30T05:00:00Z");
    assert_eq!(d.schedule_name(), Some("nightly"));
    assert_eq!(LogRunMode::parse(" Native "), Some(LogRunMode::Native));
    assert_eq!(LogRunMode::parse("both"), None);
}
