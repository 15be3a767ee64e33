//! The ledger contract (`distillery_core::testing::ledger_contract`) on the in-memory ledger the unit
//! tests use. `functions/aws/tests/ledger_contract_dynamodb.rs` runs the same checks on the DynamoDB
//! ledger, so this fake provably behaves like the real one.

use std::sync::Arc;

use distillery_core::testing::fakes::FixedClock;
use distillery_core::testing::memory::InMemoryRunLedger;

async fn fresh(_check: &'static str, clock: Arc<FixedClock>) -> ((), InMemoryRunLedger) {
    ((), InMemoryRunLedger::with_clock(clock))
}

distillery_core::run_ledger_contract!(fresh);
