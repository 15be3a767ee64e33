use std::sync::Mutex;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::domain::catalog::Limits;
use crate::ports::OutboundMessage;
use crate::testing::bedrock_account::BedrockAccount;
use crate::testing::fakes::{FixedClock, RenderingSender};
use crate::testing::memory::InMemoryRunLedger;
use crate::testing::sample_run;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

const JOB: &str =
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/nova/aaaaaaaaaaaa";
const JOB2: &str =
    "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/nova/bbbbbbbbbbbb";
const PT: &str = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/cccccccccccc";

#[derive(Default)]
struct Published(Mutex<Vec<OutboundMessage>>);

#[async_trait::async_trait]
impl MessagePublisher for Published {
    async fn publish(&self, msg: &OutboundMessage) -> Result<String, PortError> {
        self.0.lock().unwrap().push(msg.clone());
        Ok("msg-1".into())
    }
}

fn config(dry_run: bool) -> ReconcileConfig {
    let mut poll = PollConfig::defaults(&Limits::builtin());
    poll.max_job_duration_seconds = 3600 * 24;
    ReconcileConfig {
        poll,
        provision: ProvisionConfig::from_lookup(&Limits::builtin(), |_| None).unwrap(),
        quiet_period_seconds: 600,
        stale_validation_seconds: 3600,
        dry_run,
    }
}

fn run_in(id: &str, status: RunStatus, job_arn: Option<&str>) -> Run {
    let mut r = sample_run("data", &format!("incoming/{id}.jsonl"), id, 10, t0());
    r.run_id = RunId(id.into());
    r.status = status;
    r.job_arn = job_arn.map(str::to_string);
    r.launched_at = Some(t0());
    r
}

struct World {
    ledger: InMemoryRunLedger,
    bedrock: BedrockAccount,
    published: Published,
    clock: FixedClock,
}

impl World {
    async fn new(runs: Vec<Run>) -> World {
        let ledger = InMemoryRunLedger::new();
        for r in runs {
            ledger.create(&r).await.unwrap();
        }
        World {
            ledger,
            bedrock: BedrockAccount::default(),
            published: Published::default(),
            // An hour after everything was created: past the quiet period.
            clock: FixedClock::at(t0() + Duration::hours(1)),
        }
    }

    async fn reconcile(&self, dry_run: bool) -> ReconcileReport {
        Reconciler {
            ledger: &self.ledger,
            bedrock: &self.bedrock,
            publisher: Some(&self.published),
            notifier: None,
            clock: &self.clock,
            config: config(dry_run),
        }
        .reconcile()
        .await
        .unwrap()
    }

    /// One pass that delivers milestones through `sender`.
    async fn reconcile_notifying(
        &self,
        dry_run: bool,
        sender: &RenderingSender<'_>,
    ) -> ReconcileReport {
        Reconciler {
            ledger: &self.ledger,
            bedrock: &self.bedrock,
            publisher: Some(&self.published),
            notifier: Some(sender),
            clock: &self.clock,
            config: config(dry_run),
        }
        .reconcile()
        .await
        .unwrap()
    }

    async fn status(&self, id: &str) -> RunStatus {
        self.ledger
            .get(&RunId(id.into()))
            .await
            .unwrap()
            .unwrap()
            .status
    }
}

#[tokio::test]
async fn a_job_that_finished_while_nothing_polled_gets_its_true_outcome() {
    let w = World::new(vec![run_in("run-done", RunStatus::Training, Some(JOB))]).await;
    w.bedrock
        .add_job(JOB, JobStatus::Completed, t0(), &[(RUN_ID_TAG, "run-done")]);
    let report = w.reconcile(false).await;
    assert_eq!(w.status("run-done").await, RunStatus::Completed);
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].action, Action::Repaired);
    assert!(report.findings[0].detail.contains("recorded completed"));
    let msgs = w.published.0.lock().unwrap().clone();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].subject.contains("1 repaired"),
        "{}",
        msgs[0].subject
    );
    assert!(msgs[0].body.contains("run-done"), "{}", msgs[0].body);
    assert_eq!(msgs[0].attributes["event_type"], "reconciled");

    // Idempotent: the second pass finds nothing and says nothing.
    let again = w.reconcile(false).await;
    assert!(again.findings.is_empty(), "{again:?}");
    assert_eq!(w.published.0.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_running_job_of_a_training_run_is_left_alone() {
    let w = World::new(vec![run_in("run-live", RunStatus::Training, Some(JOB))]).await;
    w.bedrock.add_job(
        JOB,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-live")],
    );
    let report = w.reconcile(false).await;
    assert!(report.findings.is_empty(), "{report:?}");
    assert_eq!(w.bedrock.count("stop_job"), 0);
    assert_eq!(w.status("run-live").await, RunStatus::Training);
    assert!(w.published.0.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_overrunning_job_is_stopped_and_the_run_recorded_stopped() {
    let w = World::new(vec![run_in("run-long", RunStatus::Training, Some(JOB))]).await;
    w.bedrock.add_job(
        JOB,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-long")],
    );
    w.clock.set(t0() + Duration::hours(25));
    let report = w.reconcile(false).await;
    assert_eq!(w.bedrock.job_status(JOB), Some(JobStatus::Stopping));
    assert_eq!(w.status("run-long").await, RunStatus::Stopped);
    assert_eq!(report.findings[0].action, Action::Repaired);
}

#[tokio::test]
async fn orphaned_jobs_are_stopped_and_terminal_runs_are_not_rewritten() {
    let w = World::new(vec![
        run_in("run-failed", RunStatus::Failed, Some(JOB2)),
        run_in("run-other", RunStatus::Training, Some(JOB2)),
    ])
    .await;
    // Unknown run.
    w.bedrock.add_job(
        JOB,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-ghost")],
    );
    // A job the ledger calls failed, still running.
    let failed_job =
        "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/nova/dddddddddddd";
    w.bedrock.add_job(
        failed_job,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-failed")],
    );
    // Not Distillery's: no tag. Never touched.
    let foreign =
        "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/nova/eeeeeeeeeeee";
    w.bedrock
        .add_job(foreign, JobStatus::InProgress, t0(), &[("team", "search")]);
    // Created a minute ago: may be a launch in flight. Left alone.
    let fresh = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/nova/ffffffffffff";
    w.bedrock.add_job(
        fresh,
        JobStatus::InProgress,
        t0() + Duration::minutes(59),
        &[(RUN_ID_TAG, "run-ghost-2")],
    );
    // The live job of run-other.
    w.bedrock.add_job(
        JOB2,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-other")],
    );

    let dry = w.reconcile(true).await;
    assert_eq!(
        dry.findings
            .iter()
            .filter(|f| f.action == Action::WouldRepair)
            .count(),
        2,
        "{dry:?}"
    );
    assert_eq!(w.bedrock.count("stop_job"), 0, "a dry run acts on nothing");

    let report = w.reconcile(false).await;
    assert_eq!(w.bedrock.job_status(JOB), Some(JobStatus::Stopping));
    assert_eq!(w.bedrock.job_status(failed_job), Some(JobStatus::Stopping));
    assert_eq!(w.bedrock.job_status(foreign), Some(JobStatus::InProgress));
    assert_eq!(w.bedrock.job_status(fresh), Some(JobStatus::InProgress));
    assert_eq!(w.bedrock.job_status(JOB2), Some(JobStatus::InProgress));
    assert_eq!(w.status("run-failed").await, RunStatus::Failed);
    let ghost = report
        .findings
        .iter()
        .find(|f| f.resource_arn.as_deref() == Some(JOB))
        .unwrap();
    assert!(ghost.problem.contains("not in the ledger"), "{ghost:?}");
    let failed = report
        .findings
        .iter()
        .find(|f| f.resource_arn.as_deref() == Some(failed_job))
        .unwrap();
    assert!(failed.problem.contains("is failed"), "{failed:?}");
    assert_eq!(failed.action, Action::Repaired);
}

#[tokio::test]
async fn orphaned_throughput_is_deleted_when_safe_and_reported_otherwise() {
    let mut ready = run_in("run-ready", RunStatus::Ready, Some(JOB));
    ready.provisioned_model_arn = Some(PT.into());
    let w = World::new(vec![
        ready,
        run_in("run-failed", RunStatus::ProvisioningFailed, Some(JOB2)),
    ])
    .await;
    // Owned by a ready run: kept.
    w.bedrock.add_throughput(
        PT,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-ready")],
    );
    // Bought for a run that ended provisioning_failed: deleted.
    let stray = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/dddddddddddd";
    w.bedrock.add_throughput(
        stray,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-failed")],
    );
    // No run at all, but a commitment term: reported, not deleted.
    let committed = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/eeeeeeeeeeee";
    w.bedrock.add_throughput(
        committed,
        ThroughputStatus::InService,
        t0(),
        Some(t0() + Duration::days(30)),
        &[(RUN_ID_TAG, "run-ghost")],
    );
    // No run, still Creating: reported, not deleted.
    let creating = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/ffffffffffff";
    w.bedrock.add_throughput(
        creating,
        ThroughputStatus::Creating,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-ghost")],
    );
    let report = w.reconcile(false).await;
    assert!(w.bedrock.has_throughput(PT));
    assert!(!w.bedrock.has_throughput(stray));
    assert!(w.bedrock.has_throughput(committed));
    assert!(w.bedrock.has_throughput(creating));
    let by_arn = |a: &str| {
        report
            .findings
            .iter()
            .find(|f| f.resource_arn.as_deref() == Some(a))
            .unwrap()
            .clone()
    };
    assert_eq!(by_arn(stray).action, Action::Repaired);
    assert_eq!(by_arn(committed).action, Action::NeedsAttention);
    assert!(by_arn(committed).detail.contains("commitment term"));
    assert_eq!(by_arn(creating).action, Action::NeedsAttention);
    assert_eq!(report.findings.len(), 3, "{report:?}");
    let msg = w.published.0.lock().unwrap()[0].clone();
    assert!(
        msg.subject.contains("1 repaired, 2 need attention"),
        "{}",
        msg.subject
    );
}

#[tokio::test]
async fn a_failed_stop_is_reported_and_retried_next_pass() {
    let w = World::new(vec![run_in("run-ghostly", RunStatus::Rejected, None)]).await;
    w.bedrock.add_job(
        JOB,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-ghostly")],
    );
    *w.bedrock.stop_error.lock().unwrap() = Some(PortError::Transient("HTTP 503".into()));
    let report = w.reconcile(false).await;
    assert_eq!(report.findings[0].action, Action::NeedsAttention);
    assert!(report.findings[0].detail.contains("next pass retries"));
    *w.bedrock.stop_error.lock().unwrap() = None;
    let report = w.reconcile(false).await;
    assert_eq!(report.findings[0].action, Action::Repaired);
    assert_eq!(w.bedrock.job_status(JOB), Some(JobStatus::Stopping));
}

#[tokio::test]
async fn a_run_whose_stop_failed_gets_the_stop_retried() {
    let mut r = run_in("run-stuck", RunStatus::Training, Some(JOB));
    r.failure_reason = Some(format!(
        "{STOP_FAILED_REASON_PREFIX} the pipeline tried to stop job {JOB} (...) but StopModelCustomizationJob failed"
    ));
    let w = World::new(vec![r]).await;
    w.bedrock.add_job(
        JOB,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-stuck")],
    );
    let report = w.reconcile(false).await;
    assert_eq!(w.bedrock.job_status(JOB), Some(JobStatus::Stopping));
    assert_eq!(w.status("run-stuck").await, RunStatus::Stopped);
    assert_eq!(report.findings[0].action, Action::Repaired);
    let stored = w
        .ledger
        .get(&RunId("run-stuck".into()))
        .await
        .unwrap()
        .unwrap();
    assert!(stored
        .failure_reason
        .unwrap()
        .contains("the reconciler retried the stop"));
}

#[tokio::test]
async fn a_provisioning_run_whose_throughput_came_up_is_recorded_ready() {
    let mut r = run_in("run-pt", RunStatus::Provisioning, Some(JOB));
    r.settings.serving = crate::domain::settings::ServingMode::Provisioned;
    r.custom_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/x".into());
    r.provisioned_model_arn = Some(PT.into());
    let w = World::new(vec![r]).await;
    w.bedrock.add_throughput(
        PT,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-pt")],
    );
    // Past the quiet period but inside the provisioning loop's window: its execution may still be
    // checking (checks while Creating write nothing), so it is left alone.
    let report = w.reconcile(false).await;
    assert!(report.findings.is_empty(), "{report:?}");
    assert_eq!(w.status("run-pt").await, RunStatus::Provisioning);
    assert_eq!(w.bedrock.count("get_pt"), 0);

    w.clock.set(t0() + Duration::hours(60));
    let report = w.reconcile(false).await;
    assert_eq!(w.status("run-pt").await, RunStatus::Ready, "{report:?}");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert!(report.findings[0].detail.contains("recorded ready"));
    assert!(
        w.bedrock.has_throughput(PT),
        "an owned throughput is never deleted"
    );
    assert_eq!(w.bedrock.count("create_pt"), 0, "the reconciler never buys");
}

#[tokio::test]
async fn a_provisioning_on_demand_run_whose_deployment_came_up_is_recorded_ready() {
    const DEP: &str = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/od1";
    let mut r = run_in("run-od", RunStatus::Provisioning, Some(JOB));
    r.settings.serving = crate::domain::settings::ServingMode::OnDemand;
    r.custom_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/x".into());
    r.deployment_arn = Some(DEP.into());
    let w = World::new(vec![r]).await;
    w.bedrock.add_deployment(
        DEP,
        crate::ports::DeploymentStatus::Active,
        t0(),
        &[(RUN_ID_TAG, "run-od")],
    );
    w.clock.set(t0() + Duration::hours(60));
    let dry = w.reconcile(true).await;
    assert_eq!(dry.findings.len(), 1, "{dry:?}");
    assert!(
        dry.findings[0].problem.contains("Bedrock says Active"),
        "{dry:?}"
    );
    assert_eq!(w.status("run-od").await, RunStatus::Provisioning);

    let report = w.reconcile(false).await;
    assert_eq!(w.status("run-od").await, RunStatus::Ready, "{report:?}");
    assert!(
        report.findings[0].detail.contains("deployment Active"),
        "{report:?}"
    );
    assert!(w.bedrock.has_deployment(DEP));
    assert_eq!(w.bedrock.count("get_pt"), 0);
    assert_eq!(
        w.bedrock.count("create_deployment"),
        0,
        "the reconciler never creates"
    );
}

#[test]
fn input_parses_with_defaults() {
    let i: ReconcileInput = serde_json::from_str("{}").unwrap();
    assert!(!i.dry_run);
    let i: ReconcileInput = serde_json::from_str(r#"{"dryRun":true}"#).unwrap();
    assert!(i.dry_run);
    let sample: serde_json::Value =
        serde_json::from_str(include_str!("../../../../../events/reconcile.json")).unwrap();
    let i: ReconcileInput = serde_json::from_value(sample["reconcile"].clone()).unwrap();
    assert!(!i.dry_run);
}

#[tokio::test]
async fn a_refused_stop_of_a_job_still_in_progress_is_not_recorded_stopped() {
    let w = World::new(vec![run_in("run-long", RunStatus::Training, Some(JOB))]).await;
    w.bedrock.add_job(
        JOB,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-long")],
    );
    w.clock.set(t0() + Duration::hours(25));
    *w.bedrock.stop_error.lock().unwrap() =
        Some(PortError::Conflict("the job cannot be stopped now".into()));
    let report = w.reconcile(false).await;
    // The job still trains: the run stays training, its reason says the stop failed.
    assert_eq!(w.bedrock.job_status(JOB), Some(JobStatus::InProgress));
    assert_eq!(w.status("run-long").await, RunStatus::Training);
    let stored = w
        .ledger
        .get(&RunId("run-long".into()))
        .await
        .unwrap()
        .unwrap();
    let reason = stored.failure_reason.unwrap();
    assert!(reason.starts_with(STOP_FAILED_REASON_PREFIX), "{reason}");
    assert!(reason.contains("still InProgress"), "{reason}");
    assert_eq!(report.findings[0].action, Action::NeedsAttention);
}

#[tokio::test]
async fn a_refused_stop_of_an_orphaned_job_still_in_progress_needs_attention() {
    let w = World::new(vec![run_in("run-failed", RunStatus::Failed, Some(JOB2))]).await;
    w.bedrock.add_job(
        JOB,
        JobStatus::InProgress,
        t0(),
        &[(RUN_ID_TAG, "run-failed")],
    );
    *w.bedrock.stop_error.lock().unwrap() = Some(PortError::Validation(
        "the job cannot be stopped now".into(),
    ));
    let report = w.reconcile(false).await;
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].action, Action::NeedsAttention);
    assert!(
        report.findings[0].detail.contains("still InProgress"),
        "{}",
        report.findings[0].detail
    );
}

#[tokio::test]
async fn a_stop_of_a_job_bedrock_no_longer_knows_records_the_runs_end_once() {
    let mut r = run_in("run-gone", RunStatus::Training, Some(JOB));
    r.failure_reason = Some(format!(
        "{STOP_FAILED_REASON_PREFIX} the pipeline tried to stop job {JOB} (...) but StopModelCustomizationJob failed"
    ));
    // No such job in the account: GetModelCustomizationJob and the stop both answer NotFound.
    let w = World::new(vec![r]).await;
    let report = w.reconcile(false).await;
    assert_eq!(w.status("run-gone").await, RunStatus::Failed, "{report:?}");
    assert_eq!(report.findings.len(), 1, "{report:?}");
    assert_eq!(report.findings[0].action, Action::Repaired);
    let stored = w
        .ledger
        .get(&RunId("run-gone".into()))
        .await
        .unwrap()
        .unwrap();
    let reason = stored.failure_reason.unwrap();
    assert!(reason.contains("Bedrock no longer knows job"), "{reason}");
    // It does not recur.
    let again = w.reconcile(false).await;
    assert!(again.findings.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_run_stranded_in_validation_is_recorded_failed_and_can_be_retried() {
    let w = World::new(vec![
        run_in("run-stuck-validating", RunStatus::Validating, None),
        run_in("run-stuck-received", RunStatus::Received, None),
    ])
    .await;
    // Within RECONCILE_STALE_VALIDATION_SECONDS: the validator may still be at work.
    w.clock.set(t0() + Duration::minutes(59));
    let report = w.reconcile(false).await;
    assert!(report.findings.is_empty(), "{report:?}");
    assert_eq!(report.validation_runs_checked, 2);
    assert_eq!(
        w.status("run-stuck-validating").await,
        RunStatus::Validating
    );

    w.clock.set(t0() + Duration::hours(2));
    let dry = w.reconcile(true).await;
    assert_eq!(dry.findings.len(), 2, "{dry:?}");
    assert!(dry.findings.iter().all(|f| f.action == Action::WouldRepair));
    assert_eq!(
        w.status("run-stuck-validating").await,
        RunStatus::Validating
    );

    let report = w.reconcile(false).await;
    assert_eq!(report.findings.len(), 2, "{report:?}");
    for id in ["run-stuck-validating", "run-stuck-received"] {
        let stored = w.ledger.get(&RunId(id.into())).await.unwrap().unwrap();
        assert_eq!(stored.status, RunStatus::Failed);
        let reason = stored.failure_reason.clone().unwrap();
        assert!(
            reason.starts_with("validation did not finish (last update 2026-11-27T12:00:00Z)"),
            "{reason}"
        );
        assert!(
            reason.contains(&format!("distillery runs retry {id}")),
            "{reason}"
        );
        assert!(stored.can_be_retried(), "{id} must be retryable");
    }
    let msgs = w.published.0.lock().unwrap().clone();
    let summary = msgs.last().unwrap();
    assert!(
        summary.body.contains("[repaired] run run-stuck-validating"),
        "{}",
        summary.body
    );
    assert!(
        summary.subject.contains("2 repaired"),
        "{}",
        summary.subject
    );

    // Done once: the next pass finds nothing.
    let again = w.reconcile(false).await;
    assert!(again.findings.is_empty(), "{again:?}");
}

#[test]
fn stale_validation_setting_reads_its_variable() {
    let limits = Limits::builtin();
    let c = ReconcileConfig::from_lookup(&limits, |_| None, false).unwrap();
    assert_eq!(c.stale_validation_seconds, DEFAULT_STALE_VALIDATION_SECONDS);
    let c = ReconcileConfig::from_lookup(
        &limits,
        |k| (k == "RECONCILE_STALE_VALIDATION_SECONDS").then(|| "120".to_string()),
        false,
    )
    .unwrap();
    assert_eq!(c.stale_validation_seconds, 120);
    let e = ReconcileConfig::from_lookup(
        &limits,
        |k| (k == "RECONCILE_STALE_VALIDATION_SECONDS").then(|| "soon".to_string()),
        false,
    )
    .unwrap_err();
    assert!(
        e.message.contains("RECONCILE_STALE_VALIDATION_SECONDS"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_provisioning_run_whose_throughput_is_gone_is_recorded_and_nothing_is_bought() {
    let mut r = run_in("run-pt-gone", RunStatus::Provisioning, Some(JOB));
    r.settings.serving = crate::domain::settings::ServingMode::Provisioned;
    r.custom_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/x".into());
    r.provisioned_model_arn = Some(PT.into());
    let w = World::new(vec![r]).await;
    w.clock.set(t0() + Duration::hours(60));
    let dry = w.reconcile(true).await;
    assert_eq!(dry.findings.len(), 1, "{dry:?}");
    assert!(dry.findings[0].problem.contains("does not exist"));
    assert_eq!(w.status("run-pt-gone").await, RunStatus::Provisioning);
    let report = w.reconcile(false).await;
    assert_eq!(w.bedrock.count("create_pt"), 0, "the reconciler never buys");
    assert_eq!(
        w.status("run-pt-gone").await,
        RunStatus::ProvisioningFailed,
        "{report:?}"
    );
    assert_eq!(report.findings[0].action, Action::Repaired);
}

/// A ready run with no-commitment throughput `PT` that went InService at t0 and expires at
/// t0 + 2 h.
fn ready_expiring(id: &str) -> Run {
    let mut r = run_in(id, RunStatus::Ready, None);
    r.settings.serving = crate::domain::settings::ServingMode::Provisioned;
    r.provisioned_model_arn = Some(PT.into());
    r.history.push(crate::domain::run::HistoryEntry {
        at: t0(),
        from: Some(RunStatus::Provisioning),
        to: RunStatus::Ready,
        detail: None,
    });
    r.serving_expires_at = Some(t0() + Duration::hours(2));
    r
}

const MANAGED: (&str, &str) = (
    crate::domain::tags::MANAGED_BY_TAG,
    crate::domain::tags::MANAGED_BY_VALUE,
);

#[tokio::test]
async fn expired_tagged_throughput_is_deleted_and_the_run_retired_with_hours_and_cost() {
    let w = World::new(vec![ready_expiring("run-exp")]).await;
    w.bedrock.add_throughput(
        PT,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-exp"), MANAGED],
    );
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    // Not yet expired (an hour left, and already past the warning): nothing is deleted.
    let r = w.reconcile_notifying(false, &sender).await;
    assert!(w.bedrock.has_throughput(PT));
    assert_eq!(w.status("run-exp").await, RunStatus::Ready);
    assert_eq!((r.expiring_runs_checked, r.expiry_warnings), (1, 1));

    w.clock.set(t0() + Duration::hours(3));
    // Dry run: reported, nothing changed, nothing sent.
    let dry = w.reconcile_notifying(true, &sender).await;
    assert_eq!(dry.findings.len(), 1, "{dry:?}");
    assert_eq!(dry.findings[0].action, Action::WouldRepair);
    assert!(w.bedrock.has_throughput(PT));
    assert_eq!(w.status("run-exp").await, RunStatus::Ready);
    assert_eq!(sender.sent().len(), 1);

    let r = w.reconcile_notifying(false, &sender).await;
    assert!(!w.bedrock.has_throughput(PT));
    assert_eq!(w.status("run-exp").await, RunStatus::Retired);
    let f = &r.findings[0];
    assert_eq!(
        (f.action, f.resource_arn.as_deref()),
        (Action::Repaired, Some(PT))
    );
    assert!(
        f.problem
            .contains("serving expired at 2026-11-27T14:00:00Z"),
        "{}",
        f.problem
    );
    let run = w
        .ledger
        .get(&RunId("run-exp".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.retired_at, Some(t0() + Duration::hours(3)));
    assert!(run
        .history
        .last()
        .unwrap()
        .detail
        .as_deref()
        .unwrap()
        .contains("expired at"));
    let sent = sender.sent();
    let retired = sent.last().unwrap();
    assert_eq!(retired.milestone, Milestone::Retired);
    assert!(retired.body.contains("3.00 hour(s)"), "{}", retired.body);
    assert!(
        retired.body.contains("Cost incurred: USD "),
        "{}",
        retired.body
    );
    // Reported in the reconciler's summary too; the next pass finds nothing.
    assert!(r.message_id.is_some());
    let again = w.reconcile_notifying(false, &sender).await;
    assert!(again.findings.is_empty(), "{again:?}");
    assert_eq!(sender.sent().len(), 2);
}

#[tokio::test]
async fn expired_throughput_without_the_managed_by_tag_is_left_alone() {
    let w = World::new(vec![ready_expiring("run-exp")]).await;
    w.bedrock.add_throughput(
        PT,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-exp")],
    );
    w.clock.set(t0() + Duration::hours(3));
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let r = w.reconcile_notifying(false, &sender).await;
    assert!(w.bedrock.has_throughput(PT));
    assert_eq!(w.bedrock.count("delete_pt"), 0);
    assert_eq!(w.status("run-exp").await, RunStatus::Ready);
    assert_eq!(r.findings.len(), 1, "{r:?}");
    assert_eq!(r.findings[0].action, Action::NeedsAttention);
    assert!(
        r.findings[0].detail.contains("distillery:managed-by")
            && r.findings[0].detail.contains("stays ready"),
        "{}",
        r.findings[0].detail
    );
}

#[tokio::test]
async fn a_delete_bedrock_refuses_keeps_the_run_ready_and_is_retried_next_pass() {
    let w = World::new(vec![ready_expiring("run-exp")]).await;
    w.bedrock.add_throughput(
        PT,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-exp"), MANAGED],
    );
    *w.bedrock.delete_pt_error.lock().unwrap() = Some(PortError::Throttled("Rate exceeded".into()));
    w.clock.set(t0() + Duration::hours(3));
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let r = w.reconcile_notifying(false, &sender).await;
    assert_eq!(w.status("run-exp").await, RunStatus::Ready);
    assert_eq!(r.findings[0].action, Action::NeedsAttention);
    assert!(
        r.findings[0].detail.contains("Rate exceeded"),
        "{}",
        r.findings[0].detail
    );
    assert!(sender
        .sent()
        .iter()
        .all(|m| m.milestone != Milestone::Retired));

    *w.bedrock.delete_pt_error.lock().unwrap() = None;
    w.reconcile_notifying(false, &sender).await;
    assert_eq!(w.status("run-exp").await, RunStatus::Retired);
    assert!(!w.bedrock.has_throughput(PT));
}

#[tokio::test]
async fn the_expiring_soon_message_goes_out_once_an_hour_before_and_again_after_an_extension() {
    let w = World::new(vec![ready_expiring("run-exp")]).await;
    w.bedrock.add_throughput(
        PT,
        ThroughputStatus::InService,
        t0(),
        None,
        &[(RUN_ID_TAG, "run-exp"), MANAGED],
    );
    let sender = RenderingSender::new(&w.ledger, &w.clock);
    let id = RunId("run-exp".into());
    // 1 h 30 min before: too early.
    w.clock.set(t0() + Duration::minutes(30));
    let r = w.reconcile_notifying(false, &sender).await;
    assert_eq!(r.expiry_warnings, 0);
    assert!(sender.sent().is_empty());
    // 50 min before: warned, once.
    w.clock.set(t0() + Duration::minutes(70));
    let dry = w.reconcile_notifying(true, &sender).await;
    assert_eq!(dry.expiry_warnings, 1);
    assert!(sender.sent().is_empty(), "a dry run sends nothing");
    let r = w.reconcile_notifying(false, &sender).await;
    assert_eq!(r.expiry_warnings, 1);
    assert!(r.findings.is_empty(), "{r:?}");
    let sent = sender.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].milestone, Milestone::ExpiringSoon);
    assert!(
        sent[0].body.contains("2026-11-27T14:00:00Z")
            && sent[0]
                .body
                .contains("distillery runs extend run-exp --hours")
            && sent[0].body.contains("distillery runs retire run-exp"),
        "{}",
        sent[0].body
    );
    let run = w.ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.expiry_warning_sent_for, run.serving_expires_at);
    w.clock.set(t0() + Duration::minutes(80));
    let r = w.reconcile_notifying(false, &sender).await;
    assert_eq!(r.expiry_warnings, 0);
    assert_eq!(sender.sent().len(), 1);

    // Extended by an hour: the new expiry (15:00) is warned about in its own last hour.
    ServingRetirer {
        ledger: &w.ledger,
        bedrock: &w.bedrock,
        clock: &w.clock,
        notifier: None,
    }
    .extend(&id, 1.0)
    .await
    .unwrap();
    w.clock.set(t0() + Duration::minutes(110));
    let r = w.reconcile_notifying(false, &sender).await;
    assert_eq!((r.expiry_warnings, r.findings.len()), (0, 0));
    assert!(w.bedrock.has_throughput(PT));
    w.clock.set(t0() + Duration::minutes(130));
    let r = w.reconcile_notifying(false, &sender).await;
    assert_eq!(r.expiry_warnings, 1);
    assert_eq!(sender.sent().len(), 2);
    assert!(sender.sent()[1].body.contains("2026-11-27T15:00:00Z"));
}
