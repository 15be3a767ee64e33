//! The ledger contract (`distillery_core::testing::ledger_contract`) on the DynamoDB ledger, through
//! the AWS SDK against a moto server: one fresh table per check. `functions/core/tests/
//! ledger_contract_memory.rs` runs the same checks on the in-memory ledger the unit tests use.
//!
//! Needs `.venv/bin/moto_server` (run `scripts/bootstrap.sh` once; `make test` does it).

use std::sync::Arc;

use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_core::testing::fakes::FixedClock;
use distillery_test_support::Moto;

async fn fresh(check: &'static str, clock: Arc<FixedClock>) -> (Arc<Moto>, DynamoRunLedger) {
    let moto = Moto::shared();
    let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    let table = format!("contract-{check}");
    create_table(&client, &table)
        .await
        .expect("create ledger table");
    (moto, DynamoRunLedger::with_clock(client, table, clock))
}

distillery_core::run_ledger_contract!(fresh);
