use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::domain::catalog::Prices;
use crate::domain::tags::RUN_ID_TAG;
use crate::ports::{DeploymentStatus, ThroughputStatus};
use crate::testing::bedrock_account::BedrockAccount;
use crate::testing::fakes::{FixedClock, RenderingSender};
use crate::testing::memory::InMemoryRunLedger;
use crate::testing::sample_run;

const PT: &str = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/cccccccccccc";
const DEP: &str = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/dddddddddddd";
const ID: &str = "run-ready";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

/// A run that went ready at t0 with no-commitment throughput `PT` (2 model units) expiring at
/// t0 + 30 min.
fn ready_run() -> Run {
    let mut r = sample_run("data", "incoming/chats.jsonl", "e", 10, t0());
    r.run_id = RunId(ID.into());
    r.settings.serving = ServingMode::Provisioned;
    r.settings.model_units = 2;
    r.status = RunStatus::Ready;
    r.history.push(crate::domain::run::HistoryEntry {
        at: t0(),
        from: Some(RunStatus::Provisioning),
        to: RunStatus::Ready,
        detail: None,
    });
    r.provisioned_model_arn = Some(PT.into());
    r.serving_expires_at = Some(t0() + Duration::minutes(30));
    r
}

const MANAGED: [(&str, &str); 2] = [(MANAGED_BY_TAG, MANAGED_BY_VALUE), (RUN_ID_TAG, ID)];

struct World {
    ledger: InMemoryRunLedger,
    bedrock: BedrockAccount,
    clock: FixedClock,
}

impl World {
    async fn new(run: Run) -> World {
        let ledger = InMemoryRunLedger::new();
        ledger.create(&run).await.unwrap();
        World {
            ledger,
            bedrock: BedrockAccount::default(),
            // 1 h 30 min after it went ready.
            clock: FixedClock::at(t0() + Duration::minutes(90)),
        }
    }

    fn retirer<'a>(&'a self, sender: &'a RenderingSender<'a>) -> ServingRetirer<'a> {
        ServingRetirer {
            ledger: &self.ledger,
            bedrock: &self.bedrock,
            clock: &self.clock,
            notifier: Some(sender),
        }
    }

    async fn run(&self) -> Run {
        self.ledger.get(&RunId(ID.into())).await.unwrap().unwrap()
    }
}

#[tokio::test]
async fn retire_deletes_the_tagged_throughput_records_retired_and_announces_hours_and_cost() {
    let w = World::new(ready_run()).await;
    w.bedrock
        .add_throughput(PT, ThroughputStatus::InService, t0(), None, &MANAGED);
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let r = w
        .retirer(&sender)
        .retire(
            &RunId(ID.into()),
            RetireReason::Requested("ops@example".into()),
        )
        .await
        .unwrap();
    assert_eq!(r.result, "deleted");
    assert_eq!(r.serving, Serving::Throughput(PT.into()));
    assert!(!w.bedrock.has_throughput(PT));
    let run = w.run().await;
    assert_eq!(run.status, RunStatus::Retired);
    assert_eq!(run.retired_at, Some(w.clock.now()));
    let detail = run.history.last().unwrap().detail.clone().unwrap();
    assert!(
        detail.contains(PT) && detail.contains("deleted") && detail.contains("ops@example"),
        "{detail}"
    );

    let sent = sender.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].milestone, Milestone::Retired);
    // 1.5 hours x 2 units x the table's unit-hour price, marked unconfirmed as the table is.
    let price = Prices::builtin()
        .model_unit_hour_figure(&run.settings.student)
        .unwrap();
    let cost = format!("USD {:.2}", 1.5 * 2.0 * price.usd);
    assert!(sent[0].body.contains("1.50 hour(s)"), "{}", sent[0].body);
    assert!(sent[0].body.contains(&cost), "{cost} in {}", sent[0].body);
    assert_eq!(sent[0].body.contains("unconfirmed"), !price.confirmed);

    // Retiring again: the run is final.
    let e = w
        .retirer(&sender)
        .retire(&RunId(ID.into()), RetireReason::Requested("ops".into()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(e.message.contains("run-ready is retired"), "{}", e.message);
}

#[tokio::test]
async fn untagged_throughput_is_never_deleted_and_the_run_stays_ready() {
    let w = World::new(ready_run()).await;
    w.bedrock.add_throughput(
        PT,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, ID)],
    );
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let e = w
        .retirer(&sender)
        .retire(&RunId(ID.into()), RetireReason::Requested("ops".into()))
        .await
        .unwrap_err();
    assert!(
        e.message
            .contains("does not carry the tag distillery:managed-by=distillery"),
        "{}",
        e.message
    );
    assert!(w.bedrock.has_throughput(PT));
    assert_eq!(w.bedrock.count("delete_pt"), 0);
    assert_eq!(w.run().await.status, RunStatus::Ready);
    assert!(sender.sent().is_empty());
}

#[tokio::test]
async fn a_refused_delete_keeps_the_run_ready_and_names_the_commitment() {
    let mut run = ready_run();
    run.settings.commitment = Commitment::OneMonth;
    let w = World::new(run).await;
    w.bedrock
        .add_throughput(PT, ThroughputStatus::InService, t0(), None, &MANAGED);
    *w.bedrock.delete_pt_error.lock().unwrap() = Some(PortError::Validation(
        "commitment term has not expired".into(),
    ));
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let e = w
        .retirer(&sender)
        .retire(&RunId(ID.into()), RetireReason::Requested("ops".into()))
        .await
        .unwrap_err();
    assert!(
        e.message.contains("DeleteProvisionedModelThroughput")
            && e.message.contains("run-ready")
            && e.message
                .contains("OneMonth commitment cannot be deleted before its term ends"),
        "{}",
        e.message
    );
    assert_eq!(w.run().await.status, RunStatus::Ready);
    assert!(sender.sent().is_empty());
}

#[tokio::test]
async fn an_on_demand_run_retires_by_deleting_its_deployment() {
    let mut run = ready_run();
    run.settings.serving = ServingMode::OnDemand;
    run.provisioned_model_arn = None;
    run.serving_expires_at = None;
    run.deployment_arn = Some(DEP.into());
    let w = World::new(run).await;
    w.bedrock
        .add_deployment(DEP, DeploymentStatus::Active, t0(), &MANAGED);
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let r = w
        .retirer(&sender)
        .retire(&RunId(ID.into()), RetireReason::Requested("ops".into()))
        .await
        .unwrap();
    assert_eq!(r.serving, Serving::Deployment(DEP.into()));
    assert!(!w.bedrock.has_deployment(DEP));
    assert_eq!(w.run().await.status, RunStatus::Retired);
    let body = &sender.sent()[0].body;
    assert!(
        body.contains("on-demand deployment") && body.contains("billed per token"),
        "{body}"
    );
}

#[tokio::test]
async fn an_ended_run_that_left_a_deployment_has_it_deleted_and_keeps_its_status() {
    for status in [RunStatus::GateFailed, RunStatus::ProvisioningFailed] {
        let mut run = ready_run();
        run.status = status;
        run.settings.serving = ServingMode::OnDemand;
        run.provisioned_model_arn = None;
        run.serving_expires_at = None;
        run.deployment_arn = Some(DEP.into());
        let w = World::new(run).await;
        w.bedrock
            .add_deployment(DEP, DeploymentStatus::Active, t0(), &MANAGED);
        let sender = RenderingSender::new(&w.ledger, &w.clock);
        let r = w
            .retirer(&sender)
            .retire(&RunId(ID.into()), RetireReason::Requested("ops".into()))
            .await
            .unwrap();
        assert_eq!(r.serving, Serving::Deployment(DEP.into()));
        assert_eq!(r.result, "deleted");
        assert!(!w.bedrock.has_deployment(DEP), "{status}");
        let after = w.run().await;
        assert_eq!(after.status, status, "a final status stays");
        assert_eq!(after.retired_at, Some(w.clock.now()));
        assert!(sender.sent().is_empty(), "nothing announced again");
    }
}

#[tokio::test]
async fn only_a_ready_or_provisioning_run_can_be_retired() {
    let mut run = ready_run();
    run.status = RunStatus::Completed;
    let w = World::new(run).await;
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let e = w
        .retirer(&sender)
        .retire(&RunId(ID.into()), RetireReason::Requested("ops".into()))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(
        e.message.starts_with("run run-ready is completed")
            && e.message.contains("only a ready or provisioning run"),
        "{}",
        e.message
    );
    let e = w
        .retirer(&sender)
        .retire(
            &RunId("run-nope".into()),
            RetireReason::Requested("ops".into()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::NotFound);
}

#[tokio::test]
async fn extend_pushes_the_expiry_and_explains_runs_without_one() {
    let w = World::new(ready_run()).await;
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let run = w
        .retirer(&sender)
        .extend(&RunId(ID.into()), 2.5)
        .await
        .unwrap();
    // The expiry (t0 + 30 min) has already passed at the clock's t0 + 90 min: the hours count from
    // now, so the next pass does not delete what was just extended.
    assert_eq!(
        run.serving_expires_at,
        Some(t0() + Duration::minutes(90) + Duration::minutes(150))
    );
    assert_eq!(run.status, RunStatus::Ready);
    // An expiry still ahead is pushed from itself.
    let run = w
        .retirer(&sender)
        .extend(&RunId(ID.into()), 1.0)
        .await
        .unwrap();
    assert_eq!(
        run.serving_expires_at,
        Some(t0() + Duration::minutes(240) + Duration::minutes(60))
    );
    for bad in [0.0, -1.0, f64::NAN, 1e9] {
        let e = w
            .retirer(&sender)
            .extend(&RunId(ID.into()), bad)
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::InvalidInput, "{bad}");
    }

    type Change = Box<dyn Fn(&mut Run)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|r: &mut Run| {
                r.settings.commitment = Commitment::SixMonths;
                r.serving_expires_at = None;
            }),
            "SixMonths commitment",
        ),
        (
            Box::new(|r: &mut Run| {
                r.settings.serving = ServingMode::OnDemand;
                r.deployment_arn = Some(DEP.into());
                r.serving_expires_at = None;
            }),
            "served on demand",
        ),
        (
            Box::new(|r: &mut Run| {
                r.status = RunStatus::Provisioning;
                r.serving_expires_at = None;
            }),
            "once the run is ready",
        ),
        (
            Box::new(|r: &mut Run| r.status = RunStatus::Retired),
            "only a ready (or provisioning) run",
        ),
    ];
    for (change, says) in cases {
        let mut run = ready_run();
        change(&mut run);
        let w = World::new(run).await;
        let sender = RenderingSender::new(&w.ledger, &w.clock);
        let e = w
            .retirer(&sender)
            .extend(&RunId(ID.into()), 1.0)
            .await
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::Conflict, "{}", e.message);
        assert!(
            e.message.contains("run-ready") && e.message.contains(says),
            "{says}: {}",
            e.message
        );
    }
}
