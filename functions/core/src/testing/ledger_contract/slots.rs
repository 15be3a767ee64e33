//! The job slots ([`JobSlots`]) kept beside the runs: at most `max` holders, a holder asking again
//! keeps its slot, a release frees it, and racing acquirers never exceed the maximum.

use futures::future::join_all;

use crate::domain::run::RunId;
use crate::ports::{JobSlots, SlotGrant};
use crate::testing::fakes::FixedClock;

fn id(n: usize) -> RunId {
    RunId(format!("run-slot-{n:02}"))
}

/// Slots are taken up to the maximum, a holder asking again keeps its own, and a release frees one
/// for the next run.
pub async fn job_slots_are_taken_up_to_the_maximum_and_given_back(
    ledger: &dyn JobSlots,
    _clock: &FixedClock,
) {
    assert!(
        ledger.holders().await.unwrap().is_empty(),
        "ledger contract: no slot is held at first"
    );
    assert_eq!(ledger.acquire(&id(1), 2).await.unwrap(), SlotGrant::Taken);
    assert_eq!(ledger.acquire(&id(2), 2).await.unwrap(), SlotGrant::Taken);
    assert_eq!(
        ledger.acquire(&id(3), 2).await.unwrap(),
        SlotGrant::Full,
        "ledger contract: a third run must not get one of two slots"
    );
    assert_eq!(
        ledger.acquire(&id(1), 2).await.unwrap(),
        SlotGrant::AlreadyHeld,
        "ledger contract: a run holding a slot keeps it when it asks again (a retried launch), and the answer says so"
    );
    assert_eq!(ledger.holders().await.unwrap(), vec![id(1), id(2)]);
    ledger.release(&id(1)).await.unwrap();
    // Releasing a slot the run does not hold changes nothing.
    ledger.release(&id(9)).await.unwrap();
    assert_eq!(ledger.acquire(&id(3), 2).await.unwrap(), SlotGrant::Taken);
    assert_eq!(ledger.holders().await.unwrap(), vec![id(2), id(3)]);
    ledger.release(&id(2)).await.unwrap();
    ledger.release(&id(3)).await.unwrap();
    assert!(
        ledger.holders().await.unwrap().is_empty(),
        "ledger contract: the last release empties the slots"
    );
    assert_eq!(ledger.acquire(&id(4), 1).await.unwrap(), SlotGrant::Taken);
}

/// Many runs racing for three slots: exactly three win.
pub async fn racing_acquirers_never_exceed_the_maximum(ledger: &dyn JobSlots, _clock: &FixedClock) {
    let ids: Vec<RunId> = (0..12).map(id).collect();
    let won = join_all(ids.iter().map(|r| ledger.acquire(r, 3))).await;
    let winners = won
        .iter()
        .filter(|w| matches!(w, Ok(SlotGrant::Taken)))
        .count();
    assert!(won.iter().all(Result::is_ok), "ledger contract: {won:?}");
    assert_eq!(
        winners, 3,
        "ledger contract: exactly three of twelve racing runs get a slot"
    );
    assert_eq!(ledger.holders().await.unwrap().len(), 3);
}
