//! Status changes: expected statuses, the domain's allowed moves, terminal runs, unknown runs.

use chrono::Duration;

use super::{create, deliver, delivery, path, refused, run_at, run_in, stored, update_ok};
use crate::domain::run::{HistoryEntry, RunId, RunStatus, RunUpdate};
use crate::domain::settings::ServingMode;
use crate::ports::{Clock, PortError, RunLedger};
use crate::testing::fakes::FixedClock;

/// An update from an expected status moves the run, appends one history entry (from, to, detail,
/// stamped with the ledger's clock), sets `updated_at` from the same clock and returns the run as
/// written. `expected` may list several statuses.
pub async fn an_update_from_an_expected_status_moves_the_run_and_records_history(
    ledger: &dyn RunLedger,
    clock: &FixedClock,
) {
    let run = run_at("a", 0);
    create(ledger, &run).await;
    let id = &run.run_id;
    let first_at = clock.now();
    let r = update_ok(
        ledger,
        id,
        &[RunStatus::Received],
        &RunUpdate::to(RunStatus::Validating).with_detail("started"),
    )
    .await;
    assert_eq!(r.status, RunStatus::Validating);
    assert_eq!(r.history.len(), 2);
    assert_eq!(
        r.history[1],
        HistoryEntry {
            at: first_at,
            from: Some(RunStatus::Received),
            to: RunStatus::Validating,
            detail: Some("started".into()),
        },
        "ledger contract: a status change appends one history entry stamped by the ledger's clock"
    );
    assert_eq!(r.history[0], run.history[0], "history is never rewritten");
    assert_eq!(
        r.updated_at, first_at,
        "updated_at comes from the ledger's clock"
    );
    assert_eq!(r.created_at, run.created_at, "created_at never changes");

    clock.advance(Duration::seconds(90));
    let r = update_ok(
        ledger,
        id,
        &[RunStatus::Validating, RunStatus::Validated],
        &RunUpdate::to(RunStatus::Validated),
    )
    .await;
    assert_eq!(
        path(&r),
        [
            RunStatus::Received,
            RunStatus::Validating,
            RunStatus::Validated
        ]
    );
    let last = r.history.last().unwrap();
    assert_eq!(
        (last.at, last.from, last.detail.as_deref()),
        (
            first_at + Duration::seconds(90),
            Some(RunStatus::Validating),
            None
        )
    );
    assert_eq!(r.updated_at, first_at + Duration::seconds(90));
}

/// A retried or late step whose expected status no longer holds gets `Conflict`, for status changes
/// and field-only updates alike, and nothing is written.
pub async fn an_update_from_an_unexpected_status_is_a_conflict(
    ledger: &dyn RunLedger,
    _clock: &FixedClock,
) {
    let run = run_at("a", 0);
    create(ledger, &run).await;
    let id = &run.run_id;
    let to_validating = RunUpdate::to(RunStatus::Validating);
    update_ok(ledger, id, &[RunStatus::Received], &to_validating).await;
    refused(
        ledger,
        id,
        &[RunStatus::Received],
        &to_validating,
        "a retried step (expected status no longer holds)",
    )
    .await;
    update_ok(
        ledger,
        id,
        &[RunStatus::Validating],
        &RunUpdate::to(RunStatus::Validated),
    )
    .await;
    refused(
        ledger,
        id,
        &[RunStatus::Received],
        &to_validating,
        "a late retry of an earlier step",
    )
    .await;
    refused(
        ledger,
        id,
        &[RunStatus::Launching, RunStatus::Training],
        &RunUpdate {
            failure_reason: Some("late".into()),
            ..Default::default()
        },
        "a field-only update from an unexpected status",
    )
    .await;
}

/// A move the domain forbids ([`RunStatus::can_move_to`]) is `Conflict` even when the expected
/// status matches: nothing moves a run backwards.
pub async fn a_backward_move_is_a_conflict_even_from_the_expected_status(
    ledger: &dyn RunLedger,
    _clock: &FixedClock,
) {
    let run = run_at("a", 0);
    create(ledger, &run).await;
    let id = &run.run_id;
    update_ok(
        ledger,
        id,
        &[RunStatus::Received],
        &RunUpdate::to(RunStatus::Validating),
    )
    .await;
    refused(
        ledger,
        id,
        &[RunStatus::Validating],
        &RunUpdate::to(RunStatus::Received),
        "a backwards move from the expected status",
    )
    .await;
    update_ok(
        ledger,
        id,
        &[RunStatus::Validating],
        &RunUpdate::to(RunStatus::Validated),
    )
    .await;
    refused(
        ledger,
        id,
        &[RunStatus::Validated],
        &RunUpdate::to(RunStatus::Received),
        "a backwards move from the expected status",
    )
    .await;
    refused(
        ledger,
        id,
        &[],
        &RunUpdate::to(RunStatus::Validating),
        "a backwards move with any status expected",
    )
    .await;
    let r = stored(ledger, id).await;
    assert_eq!(
        path(&r),
        [
            RunStatus::Received,
            RunStatus::Validating,
            RunStatus::Validated
        ]
    );
}

/// For every pair of statuses, the ledger accepts the move exactly when the domain allows it.
pub async fn every_move_follows_the_domain_rule(ledger: &dyn RunLedger, _clock: &FixedClock) {
    for from in RunStatus::ALL {
        // One run per status for the refused moves (a refused move leaves it where it was)...
        let stay = run_in(&format!("{from}-stays"), from);
        create(ledger, &stay).await;
        for to in RunStatus::ALL {
            if stay.can_move_to(to) {
                // ...and a fresh run for each allowed one.
                let run = run_in(&format!("{from}-to-{to}"), from);
                create(ledger, &run).await;
                let r = update_ok(ledger, &run.run_id, &[from], &RunUpdate::to(to)).await;
                assert_eq!(
                    (r.status, r.history.last().map(|h| (h.from, h.to))),
                    (to, Some((Some(from), to))),
                    "ledger contract: the allowed move {from} -> {to} must be recorded"
                );
            } else {
                refused(
                    ledger,
                    &stay.run_id,
                    &[from],
                    &RunUpdate::to(to),
                    &format!("the domain forbids {from} -> {to}"),
                )
                .await;
            }
        }
    }
}

/// A final run (a terminal status, or `completed` with no serving requested) never moves again,
/// whatever is expected, but still takes field-only updates (delivery records of its last
/// notification).
pub async fn final_runs_never_move_but_take_field_updates(
    ledger: &dyn RunLedger,
    _clock: &FixedClock,
) {
    let mut completed_unserved = run_in("final-completed-unserved", RunStatus::Completed);
    completed_unserved.settings.serving = ServingMode::None;
    let terminal = RunStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .map(|status| run_in(&format!("terminal-{status}"), status));
    for run in terminal.chain([completed_unserved]) {
        assert!(run.is_final());
        let status = run.status;
        create(ledger, &run).await;
        // (From the expected status too: `every_move_follows_the_domain_rule`.)
        for to in RunStatus::ALL {
            refused(
                ledger,
                &run.run_id,
                &[],
                &RunUpdate::to(to),
                &format!("{status} is final, whatever is expected"),
            )
            .await;
        }
        let d = delivery(status.as_str(), "sns", true, None);
        let r = update_ok(ledger, &run.run_id, &[], &deliver(d.clone())).await;
        assert_eq!((r.status, r.deliveries), (status, vec![d]));
        assert_eq!(r.history, run.history);
    }
}

/// An update of a run that does not exist is `NotFound` (not `Conflict`), whatever is expected, and
/// creates nothing.
pub async fn an_update_of_an_unknown_run_is_not_found(ledger: &dyn RunLedger, _clock: &FixedClock) {
    let missing = RunId("run-missing".into());
    for (expected, update) in [
        (&[][..], RunUpdate::default()),
        (
            &[RunStatus::Received][..],
            RunUpdate::to(RunStatus::Validating),
        ),
    ] {
        let err = ledger
            .update(&missing, expected, &update)
            .await
            .unwrap_err();
        assert!(
            matches!(err, PortError::NotFound(_)),
            "ledger contract: updating an unknown run must be NotFound, got {err}"
        );
    }
    assert_eq!(ledger.get(&missing).await.unwrap(), None);
}
