//! Creating and reading runs: an empty ledger, round trips, idempotent create.

use super::{create, rich_run, run_at, stored};
use crate::domain::run::RunStatus;
use crate::ports::{CreateOutcome, RunLedger};
use crate::testing::fakes::FixedClock;

/// An empty ledger knows no run: `get` is `None` and both lists are empty.
pub async fn get_of_an_unknown_run_is_none(ledger: &dyn RunLedger, _clock: &FixedClock) {
    let unknown = run_at("unknown", 0).run_id;
    assert_eq!(
        ledger.get(&unknown).await.unwrap(),
        None,
        "ledger contract: get of a run never created must be None"
    );
    assert!(ledger.list_recent(10).await.unwrap().is_empty());
    for status in RunStatus::ALL {
        assert!(
            ledger.list_by_status(status, 10).await.unwrap().is_empty(),
            "ledger contract: an empty ledger lists no {status} run"
        );
    }
}

/// `create` records the run as given and `get` returns it field for field, whatever the dataset,
/// status, history and optional fields.
pub async fn create_then_get_round_trips_every_field(ledger: &dyn RunLedger, _clock: &FixedClock) {
    let plain = run_at("plain", 0);
    let rich = rich_run();
    for run in [&plain, &rich] {
        create(ledger, run).await;
        assert_eq!(
            &stored(ledger, &run.run_id).await,
            run,
            "ledger contract: get must return the run exactly as created"
        );
    }
}

/// Creating a run whose id is already recorded changes nothing and answers `AlreadyExists` with the
/// run as stored (the first one), not the one offered: a duplicated event never makes a second run.
pub async fn create_is_idempotent_and_keeps_the_first_run(
    ledger: &dyn RunLedger,
    _clock: &FixedClock,
) {
    let run = run_at("a", 0);
    create(ledger, &run).await;
    match ledger.create(&run).await.unwrap() {
        CreateOutcome::AlreadyExists(existing) => assert_eq!(
            existing, run,
            "ledger contract: AlreadyExists must carry the stored run"
        ),
        other => panic!("ledger contract: a second create of the same run was {other:?}"),
    }
    let mut other = run_at("a", 30);
    other.status = RunStatus::Validated;
    other.settings.student = "someone-else".into();
    match ledger.create(&other).await.unwrap() {
        CreateOutcome::AlreadyExists(existing) => assert_eq!(
            existing, run,
            "ledger contract: AlreadyExists must carry the stored run, not the one offered"
        ),
        o => panic!("ledger contract: a create with a taken run id was {o:?}"),
    }
    assert_eq!(
        stored(ledger, &run.run_id).await,
        run,
        "ledger contract: a create with a taken run id must not overwrite the run"
    );
    assert_eq!(ledger.list_recent(10).await.unwrap().len(), 1);
}
