//! `list_recent` and `list_by_status`: order, limits, filters, ties.

use super::{create, names, run_at, update_ok};
use crate::domain::run::{Run, RunStatus, RunUpdate};
use crate::ports::RunLedger;
use crate::testing::fakes::FixedClock;

/// `list_recent` lists every run newest first (by creation, not by last update) and at most `limit`.
pub async fn list_recent_is_newest_first_and_respects_the_limit(
    ledger: &dyn RunLedger,
    _clock: &FixedClock,
) {
    for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
        create(ledger, &run_at(k, i as i64)).await;
    }
    // Updating the oldest run does not make it "recent".
    update_ok(
        ledger,
        &run_at("a", 0).run_id,
        &[RunStatus::Received],
        &RunUpdate::to(RunStatus::Validating),
    )
    .await;
    for (limit, want) in [
        (10, &["d", "c", "b", "a"][..]),
        (4, &["d", "c", "b", "a"][..]),
        (3, &["d", "c", "b"][..]),
        (2, &["d", "c"][..]),
        (1, &["d"][..]),
        (0, &[][..]),
    ] {
        assert_eq!(
            names(&ledger.list_recent(limit).await.unwrap()),
            want,
            "ledger contract: list_recent({limit}) is the newest {limit}, newest first"
        );
    }
}

/// `list_by_status` lists the runs in one status only, newest first, at most `limit`; a run that
/// moves leaves its old status's list.
pub async fn list_by_status_filters_newest_first_and_respects_the_limit(
    ledger: &dyn RunLedger,
    _clock: &FixedClock,
) {
    for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
        create(ledger, &run_at(k, i as i64)).await;
    }
    for k in [("b", 1), ("d", 3)] {
        update_ok(
            ledger,
            &run_at(k.0, k.1).run_id,
            &[RunStatus::Received],
            &RunUpdate::to(RunStatus::Validating),
        )
        .await;
    }
    let by = |status: RunStatus, limit: usize| async move {
        let runs = ledger.list_by_status(status, limit).await.unwrap();
        assert!(
            runs.iter().all(|r| r.status == status),
            "ledger contract: list_by_status({status}) lists only {status} runs"
        );
        names(&runs)
    };
    assert_eq!(by(RunStatus::Validating, 10).await, ["d", "b"]);
    assert_eq!(by(RunStatus::Validating, 1).await, ["d"]);
    assert_eq!(by(RunStatus::Received, 10).await, ["c", "a"]);
    assert_eq!(by(RunStatus::Received, 1).await, ["c"]);
    assert_eq!(by(RunStatus::Received, 0).await, Vec::<String>::new());
    assert!(by(RunStatus::Ready, 10).await.is_empty());
}

/// Runs created at the same instant are listed by run id, in both lists and across a `limit` that
/// cuts through them ([`Run::sort_newest_first`]), so every ledger lists them in one stable order.
pub async fn lists_break_ties_by_run_id(ledger: &dyn RunLedger, _clock: &FixedClock) {
    let tied: Vec<Run> = ["t1", "t2", "t3", "t4", "t5"]
        .iter()
        .map(|k| run_at(k, 5))
        .collect();
    let older = run_at("older", 0);
    let newer = run_at("newer", 10);
    for run in tied.iter().chain([&older, &newer]) {
        create(ledger, run).await;
    }
    let mut by_id: Vec<&Run> = tied.iter().collect();
    by_id.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    let by_id: Vec<String> = by_id.iter().map(|r| r.dataset.display_name()).collect();
    let with = |first: &str, tied: &[String], last: &str| -> Vec<String> {
        let mut v = vec![first.to_string()];
        v.extend(tied.iter().cloned());
        v.push(last.to_string());
        v
    };
    let all = with("newer", &by_id, "older");
    for limit in [7, 6, 4, 2] {
        assert_eq!(
            names(&ledger.list_recent(limit).await.unwrap()),
            all[..limit],
            "ledger contract: list_recent({limit}) breaks creation-time ties by run id"
        );
        assert_eq!(
            names(
                &ledger
                    .list_by_status(RunStatus::Received, limit)
                    .await
                    .unwrap()
            ),
            all[..limit],
            "ledger contract: list_by_status({limit}) breaks creation-time ties by run id"
        );
    }
}
