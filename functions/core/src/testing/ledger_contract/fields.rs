//! Field updates: "any status" updates, every field of a `RunUpdate`, delivery records.

use chrono::Duration;

use super::{clock_start, create, deliver, delivery, refused, run_in, stored, update_ok};
use crate::domain::run::{RunStatus, RunUpdate, TrainingDetail, ValidationSummary};
use crate::ports::{Clock, RunLedger};
use crate::testing::fakes::FixedClock;

/// An empty `expected` means "any status": field-only updates are written whatever the status,
/// without a history entry, and a status change is still checked against the domain's rule.
pub async fn an_empty_expected_list_allows_field_only_updates(
    ledger: &dyn RunLedger,
    clock: &FixedClock,
) {
    let run = run_in("training", RunStatus::Training);
    create(ledger, &run).await;
    let id = &run.run_id;
    let detail = TrainingDetail {
        validation: Some("Completed".into()),
        data_processing: Some("InProgress".into()),
        training: Some("NotStarted".into()),
    };
    let r = update_ok(
        ledger,
        id,
        &[],
        &RunUpdate {
            training_detail: Some(detail.clone()),
            job_name: Some("job-1".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(r.status, RunStatus::Training);
    assert_eq!(
        r.history, run.history,
        "ledger contract: a field-only update adds no history entry"
    );
    assert_eq!(r.training_detail, Some(detail));
    assert_eq!(r.job_name.as_deref(), Some("job-1"));
    assert_eq!(r.updated_at, clock.now());
    refused(
        ledger,
        id,
        &[],
        &RunUpdate::to(RunStatus::Launching),
        "any status expected, but the domain forbids training -> launching",
    )
    .await;
    let r = update_ok(ledger, id, &[], &RunUpdate::to(RunStatus::Completed)).await;
    assert_eq!(r.status, RunStatus::Completed);
}

/// A gate result with every figure set, so a ledger that drops one fails the contract.
fn evaluation(t: chrono::DateTime<chrono::Utc>) -> crate::domain::evaluation::EvaluationRecord {
    crate::testing::sample_evaluation(t, true)
}

/// Every field of an update is written; a field the update leaves `None` keeps its value.
pub async fn fields_are_set_and_none_leaves_them_as_they_are(
    ledger: &dyn RunLedger,
    clock: &FixedClock,
) {
    let run = run_in("fields", RunStatus::Launching);
    create(ledger, &run).await;
    let id = &run.run_id;
    let t = clock_start() - Duration::minutes(7);
    let full = RunUpdate {
        status: Some(RunStatus::Training),
        detail: Some("job started".into()),
        training_detail: Some(TrainingDetail {
            validation: Some("InProgress".into()),
            ..Default::default()
        }),
        job_name: Some("job".into()),
        job_arn: Some("arn:job".into()),
        custom_model_name: Some("model".into()),
        custom_model_arn: Some("arn:model".into()),
        provisioned_model_name: Some("pt".into()),
        provisioned_model_arn: Some("arn:pt".into()),
        deployment_name: Some("deployment".into()),
        deployment_arn: Some("arn:deployment".into()),
        serving_expires_at: Some(t + Duration::hours(24)),
        expiry_warning_sent_for: Some(t + Duration::hours(23)),
        retired_at: Some(t + Duration::hours(25)),
        validation: Some(ValidationSummary {
            valid: true,
            records: 100,
            ..Default::default()
        }),
        quality_gate: Some(crate::domain::evaluation::GatePlan::Armed {
            held_out_uri: "s3://b/runs/fields/heldout.jsonl".into(),
            records: 20,
            sha256: "cd".repeat(32),
            min_score: 0.75,
            min_score_origin: "S3 metadata".into(),
        }),
        evaluation: Some(evaluation(t)),
        failure_reason: Some("none yet".into()),
        snapshot: Some(crate::domain::snapshot::DatasetSnapshot {
            uri: "s3://b/runs/fields/dataset.jsonl".into(),
            bucket: "b".into(),
            key: "runs/fields/dataset.jsonl".into(),
            size: 42,
            sha256: "ab".repeat(32),
            etag: "etag-1".into(),
            source: crate::domain::snapshot::ObjectPin::VersionId {
                version_id: "v1".into(),
            },
        }),
        launched_at: Some(t),
        finished_at: Some(t + Duration::seconds(1)),
        delivery: Some(delivery("training", "slack", true, None)),
        job_wait: Some(crate::domain::run::JobWait {
            task_token: "AQ-token".into(),
            since: t,
            entries: 2,
            consecutive_errors: 1,
        }),
        queue: Some(crate::domain::run::QueueEntry {
            since: t - Duration::minutes(3),
            reason: "2 of 2 job slots taken".into(),
            task_token: Some("AQ-slot".into()),
            held_until: Some(t + Duration::minutes(10)),
            quota_refusals: 1,
            for_serving: false,
            admitted_at: Some(t - Duration::minutes(1)),
        }),
    };
    let r = update_ok(ledger, id, &[RunStatus::Launching], &full).await;
    let mut want = run.clone();
    full.apply_to(&mut want, clock.now());
    assert_eq!(
        r, want,
        "ledger contract: the written run is the domain's RunUpdate::apply_to"
    );

    clock.advance(Duration::seconds(1));
    let r = update_ok(
        ledger,
        id,
        &[RunStatus::Training],
        &RunUpdate {
            failure_reason: Some("changed".into()),
            ..Default::default()
        },
    )
    .await;
    want.failure_reason = Some("changed".into());
    want.updated_at = clock.now();
    assert_eq!(r, want, "ledger contract: None must leave a field as it is");
}

/// Delivery records are appended in order by field-only updates; the status and history stay.
pub async fn delivery_records_append_in_order(ledger: &dyn RunLedger, _clock: &FixedClock) {
    let run = run_in("deliveries", RunStatus::Validated);
    create(ledger, &run).await;
    let records = [
        delivery("validated", "sns", true, None),
        delivery("validated", "slack", false, Some("HTTP 500")),
        delivery("validated", "slack", true, Some("retried")),
    ];
    for (i, d) in records.iter().enumerate() {
        let expected: &[RunStatus] = if i == 0 { &[RunStatus::Validated] } else { &[] };
        update_ok(ledger, &run.run_id, expected, &deliver(d.clone())).await;
    }
    let r = stored(ledger, &run.run_id).await;
    assert_eq!(
        r.deliveries, records,
        "ledger contract: deliveries are appended in order"
    );
    assert_eq!((r.status, r.history), (RunStatus::Validated, run.history));
}
