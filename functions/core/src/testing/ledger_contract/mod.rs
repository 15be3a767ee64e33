//! The contract every [`RunLedger`] keeps, as checks any ledger can be run through: the in-memory
//! ledger (`functions/core/tests/ledger_contract_memory.rs`) and the DynamoDB ledger on moto
//! (`functions/aws/tests/ledger_contract_dynamodb.rs`) run every one of them, so the fake the unit
//! tests use provably behaves like the real ledger.
//!
//! Each check takes a fresh, empty ledger whose clock is `clock` (set to [`clock_start`]) and panics
//! with a message naming the broken rule. The checks are grouped by subject in this module's files
//! (`create`, `transitions`, `fields`, `concurrency`, `lists`, `slots`) and re-exported here;
//! [`run_ledger_contract!`](crate::run_ledger_contract) turns them into one test per check (a new
//! check goes into its file and into that macro's list; a unit test below checks the two agree).
//!
//! Only futures, no runtime: concurrent writers are joined with `futures::future::join_all`.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::domain::run::{
    DatasetLocation, DeliveryRecord, HistoryEntry, Run, RunId, RunSource, RunStatus, RunUpdate,
    TrainingDetail, ValidationSummary,
};
use crate::domain::settings::{Commitment, ServingMode};
use crate::ports::{CreateOutcome, PortError, RunLedger};
use crate::testing::sample_run;

mod concurrency;
mod create;
mod fields;
mod lists;
mod slots;
mod transitions;

pub use concurrency::*;
pub use create::*;
pub use fields::*;
pub use lists::*;
pub use slots::*;
pub use transitions::*;

const BUCKET: &str = "contract-datasets";

/// How many writers the concurrency checks start at once.
const WRITERS: usize = 6;

/// When the contract's runs are created: [`run_at`]`(name, m)` is created `m` minutes after it.
fn created_base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// What the ledger's clock reads when a check starts (after every run the checks create).
pub fn clock_start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap()
}

/// A run in `Received` for `incoming/{name}.jsonl` (its display name is `name`), created `minutes`
/// after the contract's base time.
pub fn run_at(name: &str, minutes: i64) -> Run {
    sample_run(
        BUCKET,
        &format!("incoming/{name}.jsonl"),
        name,
        1,
        created_base() + Duration::minutes(minutes),
    )
}

/// A run as if it were already in `status` (created straight in it, as tests seed ledgers).
fn run_in(name: &str, status: RunStatus) -> Run {
    let mut run = run_at(name, 0);
    run.status = status;
    // Serving requested, so that `completed` is not final and its moves can be checked.
    run.settings.serving = ServingMode::Provisioned;
    run
}

/// A run with every optional field set, a dataset that is not an S3 object, sub-second times and
/// several history entries and deliveries: whatever a ledger stores must come back unchanged.
fn rich_run() -> Run {
    let at = created_base() + Duration::nanoseconds(123_456_789);
    let mut run = Run::new(
        RunId::for_schedule("nightly", "2026-03-01T12:00:00Z"),
        RunSource::Schedule,
        DatasetLocation::InvocationLogs {
            s3_uri: "s3://logs-bucket/bedrock/".into(),
            request_metadata_filters: Some(serde_json::json!({"equals": {"team": "support"}})),
            use_prompt_response: true,
            mode: crate::domain::run::LogRunMode::Curated,
            schedule_name: Some("nightly".into()),
            window_start: Some(at - Duration::days(7)),
            window_end: Some(at),
        },
        run_at("rich", 0).settings,
        at,
    );
    run.settings.serving = ServingMode::Provisioned;
    run.settings.model_units = 2;
    run.settings.commitment = Commitment::OneMonth;
    let later = |s: i64| at + Duration::seconds(s);
    for (i, (from, to)) in [
        (RunStatus::Received, RunStatus::Validating),
        (RunStatus::Validating, RunStatus::Validated),
        (RunStatus::Validated, RunStatus::Launching),
        (RunStatus::Launching, RunStatus::Training),
    ]
    .into_iter()
    .enumerate()
    {
        run.history.push(HistoryEntry {
            at: later(i as i64 + 1),
            from: Some(from),
            to,
            detail: (i % 2 == 0).then(|| format!("step {i} ✓ \"quoted\"")),
        });
    }
    run.status = RunStatus::Training;
    run.training_detail = Some(TrainingDetail {
        validation: Some("Completed".into()),
        data_processing: Some("InProgress".into()),
        training: None,
    });
    run.job_name = Some("job-name".into());
    run.job_arn = Some("arn:aws:bedrock:us-east-1:123456789012:model-customization-job/x".into());
    run.custom_model_name = Some("custom-model".into());
    run.custom_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/m".into());
    run.provisioned_model_name = Some("provisioned".into());
    run.provisioned_model_arn =
        Some("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/p".into());
    run.validation = Some(ValidationSummary {
        valid: true,
        records: 1200,
        invalid_records: 3,
        error_count: 3,
        warning_count: 7,
        first_errors: vec!["line 7: [E001] bad".into(), "line 9: [E002] worse".into()],
        report_uri: Some("s3://contract-datasets/reports/r/report.json".into()),
        // Floats and nested line items round-trip through every ledger.
        cost_estimate: Some(crate::domain::cost::CostEstimate {
            currency: "USD".into(),
            low_usd: 2.27,
            high_usd: 962.75,
            line_items: vec![crate::domain::cost::CostLineItem {
                item: "serving".into(),
                low_usd: 960.0,
                high_usd: 960.0,
                basis: "2 model unit(s) x 24 hour(s)".into(),
                confirmed: false,
            }],
            confirmed: false,
            unconfirmed: vec!["x (as of 2026-11-29)".into()],
            missing: vec![],
            region: "us-east-1".into(),
            budget_usd: Some(1000.0),
            over_budget: false,
        }),
    });
    run.failure_reason = Some("not yet".into());
    run.launched_at = Some(later(3));
    run.finished_at = Some(later(5));
    run.updated_at = later(5);
    run.deliveries = vec![
        delivery("validated", "sns", true, None),
        delivery("validated", "slack", false, Some("HTTP 500")),
    ];
    run
}

fn delivery(
    milestone: &str,
    channel: &str,
    delivered: bool,
    detail: Option<&str>,
) -> DeliveryRecord {
    DeliveryRecord {
        at: created_base() + Duration::hours(1),
        milestone: milestone.into(),
        channel: channel.into(),
        delivered,
        detail: detail.map(str::to_string),
    }
}

/// A field-only update that appends `d`.
fn deliver(d: DeliveryRecord) -> RunUpdate {
    RunUpdate {
        delivery: Some(d),
        ..Default::default()
    }
}

async fn create(ledger: &dyn RunLedger, run: &Run) {
    match ledger.create(run).await {
        Ok(CreateOutcome::Created(written)) => assert_eq!(
            &written, run,
            "ledger contract: create must return the run it recorded"
        ),
        other => panic!(
            "ledger contract: creating {} in a ledger without it gave {other:?}",
            run.run_id
        ),
    }
}

async fn stored(ledger: &dyn RunLedger, id: &RunId) -> Run {
    match ledger.get(id).await {
        Ok(Some(run)) => run,
        other => panic!("ledger contract: get {id} after writing it gave {other:?}"),
    }
}

async fn update_ok(
    ledger: &dyn RunLedger,
    id: &RunId,
    expected: &[RunStatus],
    update: &RunUpdate,
) -> Run {
    let written = match ledger.update(id, expected, update).await {
        Ok(run) => run,
        Err(e) => panic!(
            "ledger contract: update of {id} expecting {expected:?} with {update:?} must succeed, \
             got {e}"
        ),
    };
    assert_eq!(
        stored(ledger, id).await,
        written,
        "ledger contract: update must return the run as written"
    );
    written
}

/// The update is refused with `Conflict` and the stored run is left exactly as it was.
async fn refused(
    ledger: &dyn RunLedger,
    id: &RunId,
    expected: &[RunStatus],
    update: &RunUpdate,
    why: &str,
) {
    let before = stored(ledger, id).await;
    match ledger.update(id, expected, update).await {
        Err(PortError::Conflict(_)) => {}
        other => panic!(
            "ledger contract: {why}: update of {id} ({}) expecting {expected:?} to {:?} must be \
             a Conflict, got {other:?}",
            before.status, update.status
        ),
    }
    assert_eq!(
        stored(ledger, id).await,
        before,
        "ledger contract: {why}: a refused update must write nothing"
    );
}

fn names(runs: &[Run]) -> Vec<String> {
    runs.iter().map(|r| r.dataset.display_name()).collect()
}

fn path(run: &Run) -> Vec<RunStatus> {
    run.history.iter().map(|h| h.to).collect()
}

/// One `#[tokio::test]` per contract check, each on a fresh ledger. `$fresh` is an async function
/// `(check: &'static str, clock: Arc<FixedClock>) -> (keep_alive, ledger)`: it builds an empty
/// ledger (named after the check where that matters, e.g. a table) that stamps updates with
/// `clock`; `keep_alive` (a server handle, or `()`) is dropped when the check ends. The caller's
/// crate needs tokio (with `macros`) as a dev-dependency.
#[macro_export]
#[doc(hidden)]
macro_rules! run_ledger_contract {
    (@checks $fresh:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                let clock = ::std::sync::Arc::new($crate::testing::fakes::FixedClock::at(
                    $crate::testing::ledger_contract::clock_start(),
                ));
                let (_keep_alive, ledger) = ($fresh)(stringify!($check), clock.clone()).await;
                $crate::testing::ledger_contract::$check(&ledger, &clock).await;
            }
        )*
    };
    ($fresh:expr) => {
        $crate::run_ledger_contract!(@checks $fresh;
            get_of_an_unknown_run_is_none,
            create_then_get_round_trips_every_field,
            create_is_idempotent_and_keeps_the_first_run,
            an_update_from_an_expected_status_moves_the_run_and_records_history,
            an_update_from_an_unexpected_status_is_a_conflict,
            a_backward_move_is_a_conflict_even_from_the_expected_status,
            every_move_follows_the_domain_rule,
            final_runs_never_move_but_take_field_updates,
            an_empty_expected_list_allows_field_only_updates,
            fields_are_set_and_none_leaves_them_as_they_are,
            delivery_records_append_in_order,
            an_update_of_an_unknown_run_is_not_found,
            concurrent_field_updates_are_all_kept,
            concurrent_moves_from_one_status_let_exactly_one_win,
            list_recent_is_newest_first_and_respects_the_limit,
            list_by_status_filters_newest_first_and_respects_the_limit,
            lists_break_ties_by_run_id,
            job_slots_are_taken_up_to_the_maximum_and_given_back,
            racing_acquirers_never_exceed_the_maximum,
        );
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every check of this module's files is in `run_ledger_contract!`'s list, so both ledgers run
    /// it.
    #[test]
    fn the_macro_runs_every_check() {
        let defined: BTreeSet<&str> = [
            include_str!("create.rs"),
            include_str!("transitions.rs"),
            include_str!("fields.rs"),
            include_str!("concurrency.rs"),
            include_str!("lists.rs"),
            include_str!("slots.rs"),
        ]
        .into_iter()
        .flat_map(|src| src.split("\npub async fn ").skip(1))
        .map(|s| s.split('(').next().unwrap())
        .collect();
        let src = include_str!("mod.rs");
        let (_, rest) = src.split_once("macro_rules! run_ledger_contract").unwrap();
        let (macro_src, _tests) = rest.split_once("\n#[cfg(test)]").unwrap();
        let (_, list) = macro_src.rsplit_once("@checks $fresh;").unwrap();
        let listed: BTreeSet<&str> = list
            .split(')')
            .next()
            .unwrap()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(defined.len(), 19, "{defined:?}");
        assert_eq!(defined, listed);
    }
}
