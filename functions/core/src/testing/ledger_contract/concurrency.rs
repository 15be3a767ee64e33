//! Concurrent writers on one run.

use std::collections::BTreeSet;

use futures::future::join_all;

use super::{create, delivery, path, run_at, stored, update_ok, WRITERS};
use crate::domain::run::{RunStatus, RunUpdate};
use crate::ports::{PortError, RunLedger};
use crate::testing::fakes::FixedClock;

/// Concurrent field updates of one run all land: no writer's change or delivery record is lost, and
/// the history is untouched.
pub async fn concurrent_field_updates_are_all_kept(ledger: &dyn RunLedger, _clock: &FixedClock) {
    let run = run_at("a", 0);
    create(ledger, &run).await;
    let id = &run.run_id;
    for (from, to) in [
        (RunStatus::Received, RunStatus::Validating),
        (RunStatus::Validating, RunStatus::Validated),
    ] {
        update_ok(ledger, id, &[from], &RunUpdate::to(to)).await;
    }
    let updates: Vec<RunUpdate> = (0..WRITERS)
        .map(|i| RunUpdate {
            failure_reason: Some(format!("note {i}")),
            delivery: Some(delivery(&format!("m{i}"), "sns", true, None)),
            ..Default::default()
        })
        .collect();
    let results = join_all(
        updates
            .iter()
            .map(|u| ledger.update(id, &[RunStatus::Validated], u)),
    )
    .await;
    for r in results {
        if let Err(e) = r {
            panic!("ledger contract: a concurrent field update failed: {e}");
        }
    }
    let run = stored(ledger, id).await;
    assert_eq!(
        run.deliveries.len(),
        WRITERS,
        "a concurrent update was lost"
    );
    let milestones: BTreeSet<String> = run.deliveries.iter().map(|d| d.milestone.clone()).collect();
    let want: BTreeSet<String> = (0..WRITERS).map(|i| format!("m{i}")).collect();
    assert_eq!(milestones, want, "a concurrent update was lost");
    let notes: Vec<String> = (0..WRITERS).map(|i| format!("note {i}")).collect();
    assert!(
        notes.contains(run.failure_reason.as_ref().unwrap()),
        "{:?}",
        run.failure_reason
    );
    assert_eq!(
        path(&run),
        [
            RunStatus::Received,
            RunStatus::Validating,
            RunStatus::Validated
        ]
    );
}

/// Concurrent writers moving a run from the same expected status: exactly one wins, the others get
/// `Conflict`, and the history records the move once.
pub async fn concurrent_moves_from_one_status_let_exactly_one_win(
    ledger: &dyn RunLedger,
    _clock: &FixedClock,
) {
    let run = run_at("a", 0);
    create(ledger, &run).await;
    let id = &run.run_id;
    let updates: Vec<RunUpdate> = (0..WRITERS)
        .map(|i| RunUpdate::to(RunStatus::Validating).with_detail(format!("writer {i}")))
        .collect();
    let results = join_all(
        updates
            .iter()
            .map(|u| ledger.update(id, &[RunStatus::Received], u)),
    )
    .await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(
        won, 1,
        "ledger contract: exactly one of {WRITERS} concurrent moves may win: {results:?}"
    );
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, PortError::Conflict(_)),
                "ledger contract: a lost race must be a Conflict, got {e}"
            );
        }
    }
    let r = stored(ledger, id).await;
    assert_eq!(path(&r), [RunStatus::Received, RunStatus::Validating]);
}
