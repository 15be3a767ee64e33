use super::*;
use crate::app::poll_status::fixtures::*;
use crate::domain::settings::{Commitment, ServingMode};
use crate::ports::SystemClock;
use crate::ports::{DeploymentStatus, ThroughputStatus};
use crate::testing::fakes::ScriptedBedrock;
use crate::testing::memory::InMemoryRunLedger;

const MODEL_ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:custom-model/m1";

fn config(max_units: u32) -> ProvisionConfig {
    ProvisionConfig {
        policy: ServingPolicy {
            allow_provisioning: true,
            max_model_units: max_units,
            allowed_commitments: vec![Commitment::None],
        },
        initial_wait_seconds: 30,
        max_wait_seconds: 300,
        budget_checks: 200,
        queue: crate::app::launch_job::AdmissionConfig {
            max_concurrent_jobs: None,
            max_queue_seconds: 3 * 3600,
            quota_retry_seconds: 600,
        },
    }
}

fn completed(serving: ServingMode) -> Run {
    let mut r = run(RunStatus::Completed, serving);
    r.custom_model_arn = Some(MODEL_ARN.into());
    r
}

/// The provisioner under test, on the system clock.
fn provisioner_for<'a>(
    ledger: &'a dyn RunLedger,
    bedrock: &'a ScriptedBedrock,
    config: ProvisionConfig,
) -> ThroughputProvisioner<'a> {
    ThroughputProvisioner {
        ledger,
        bedrock,
        clock: &SystemClock,
        config,
    }
}

fn input(attempt: u32) -> ProvisionThroughputInput {
    ProvisionThroughputInput {
        run_id: RunId("run-0123456789abcdef0123".into()),
        attempt,
        evaluation_error: None,
    }
}

#[tokio::test]
async fn not_requested_buys_nothing_and_writes_nothing() {
    let ledger = ledger_with(completed(ServingMode::None)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    let before = stored(&ledger, &input(0).run_id).await;
    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::NotRequested);
    assert_eq!((o.provisioned_model_arn, o.next_wait_seconds), (None, 0));
    assert!(bedrock.calls().is_empty());
    assert_eq!(stored(&ledger, &before.run_id).await, before);
}

#[tokio::test]
async fn creates_once_then_reports_creating_then_ready() {
    let ledger = ledger_with(completed(ServingMode::Provisioned)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    let id = input(0).run_id;

    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    assert_eq!((o.attempt, o.next_wait_seconds), (1, 30));
    let r = stored(&ledger, &id).await;
    assert_eq!(r.status, RunStatus::Provisioning);
    let name = r.provisioned_model_name.clone().unwrap();
    assert!(name.contains("0123456789abcdef0123"), "{name}");
    assert_eq!(r.provisioned_model_arn, o.provisioned_model_arn);
    // Looked up by name before buying, bought once, with the run's token and the custom model.
    assert_eq!(bedrock.calls(), vec!["get_pt", "create_pt"]);
    let req = bedrock.pt_requests()[0].clone();
    assert_eq!(req.provisioned_model_name, name);
    assert_eq!(req.model_id, MODEL_ARN);
    assert_eq!(
        req.client_request_token,
        throughput_client_request_token(&id)
    );
    assert_eq!(
        req.tags.get("distillery:run-id").map(String::as_str),
        Some(id.as_str())
    );

    // Still creating: no write, no second purchase, backoff grows.
    let o2 = p.provision(&input(1)).await.unwrap();
    assert_eq!(
        (o2.outcome, o2.next_wait_seconds),
        (ProvisionOutcome::Creating, 60)
    );
    assert_eq!(stored(&ledger, &id).await, r);
    assert_eq!(bedrock.count("create_pt"), 1);

    bedrock.set_pt_status(ThroughputStatus::InService, None);
    let o3 = p.provision(&input(2)).await.unwrap();
    assert_eq!(
        (o3.outcome, o3.next_wait_seconds),
        (ProvisionOutcome::InService, 0)
    );
    let r = stored(&ledger, &id).await;
    assert_eq!(r.status, RunStatus::Ready);
    assert_eq!(r.provisioned_model_arn, o.provisioned_model_arn);

    // Retried after ready: answered from the ledger.
    let calls = bedrock.calls().len();
    let o4 = p.provision(&input(3)).await.unwrap();
    assert_eq!(o4.outcome, ProvisionOutcome::InService);
    assert_eq!(bedrock.calls().len(), calls);
    assert_eq!(bedrock.count("create_pt"), 1);
}

#[tokio::test]
async fn a_retry_after_a_crash_finds_the_throughput_by_name() {
    // An earlier attempt recorded `provisioning` and bought, then died before recording the ARN.
    let mut r = completed(ServingMode::Provisioned);
    r.status = RunStatus::Provisioning;
    let name = provisioned_model_name_for(&r);
    r.provisioned_model_name = Some(name.clone());
    let ledger = ledger_with(r).await;
    let bedrock = ScriptedBedrock::default();
    let earlier = ThroughputRequest {
        provisioned_model_name: name.clone(),
        model_id: MODEL_ARN.into(),
        model_units: 1,
        commitment: Commitment::None,
        client_request_token: "t".into(),
        tags: Default::default(),
    };
    let arn = bedrock
        .create_provisioned_throughput(&earlier)
        .await
        .unwrap();
    bedrock.clear_calls();

    let p = provisioner_for(&ledger, &bedrock, config(1));
    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    assert_eq!(bedrock.calls(), vec!["get_pt"]);
    assert_eq!(
        stored(&ledger, &input(0).run_id)
            .await
            .provisioned_model_arn,
        Some(arn)
    );
}

#[tokio::test]
async fn a_failed_throughput_fails_the_run_with_bedrocks_message() {
    let ledger = ledger_with(completed(ServingMode::Provisioned)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    p.provision(&input(0)).await.unwrap();
    bedrock.set_pt_status(
        ThroughputStatus::Failed,
        Some("Insufficient model units in the account"),
    );
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Failed);
    let r = stored(&ledger, &input(0).run_id).await;
    assert_eq!(r.status, RunStatus::ProvisioningFailed);
    assert_eq!(
        r.failure_reason.as_deref(),
        Some("Insufficient model units in the account")
    );
    assert_eq!(
        p.provision(&input(2)).await.unwrap().outcome,
        ProvisionOutcome::Failed
    );
    assert_eq!(bedrock.count("create_pt"), 1);
}

#[tokio::test]
async fn a_guardrail_violation_buys_nothing_and_is_recorded() {
    let mut r = completed(ServingMode::Provisioned);
    r.settings.model_units = 3;
    let ledger = ledger_with(r).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(2));
    let e = p.provision(&input(0)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::GuardrailViolation);
    assert!(e.message.contains("modelUnits 3"), "{}", e.message);
    assert!(bedrock.calls().is_empty());
    let r = stored(&ledger, &input(0).run_id).await;
    assert_eq!(r.status, RunStatus::ProvisioningFailed);
    assert!(r
        .failure_reason
        .unwrap()
        .contains("exceeds the stack's maximum of 2"));

    // A commitment the stack does not allow is refused the same way.
    let mut r = completed(ServingMode::Provisioned);
    r.settings.commitment = Commitment::SixMonths;
    let ledger = ledger_with(r).await;
    let p = provisioner_for(&ledger, &bedrock, config(2));
    let e = p.provision(&input(0)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::GuardrailViolation);
    assert!(bedrock.calls().is_empty());
}

/// A run validated while the stack allowed provisioning, on a stack that has since turned it
/// off (`ALLOW_PROVISIONING=false`, or `MAX_MODEL_UNITS=0`): nothing is bought, the run ends
/// `provisioning_failed` naming the setting, both from `completed` and from a `provisioning`
/// run whose name was recorded but whose purchase had not happened yet.
#[tokio::test]
async fn a_stack_that_turned_provisioning_off_buys_nothing_for_an_earlier_run() {
    let off = || {
        let mut c = config(1);
        c.policy.allow_provisioning = false;
        c
    };
    let ledger = ledger_with(completed(ServingMode::Provisioned)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, off());
    let e = p.provision(&input(0)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::GuardrailViolation);
    assert!(
        e.message.contains("ALLOW_PROVISIONING is false"),
        "{}",
        e.message
    );
    assert!(bedrock.calls().is_empty());
    let r = stored(&ledger, &input(0).run_id).await;
    assert_eq!(r.status, RunStatus::ProvisioningFailed);
    assert!(
        r.failure_reason.unwrap().contains("ALLOW_PROVISIONING"),
        "the reason names the setting"
    );

    // Already `provisioning` (the name recorded, nothing bought): the check at purchase refuses.
    let mut r = completed(ServingMode::Provisioned);
    r.status = RunStatus::Provisioning;
    r.provisioned_model_name = Some(provisioned_model_name_for(&r));
    let ledger = ledger_with(r).await;
    let bedrock = ScriptedBedrock::default();
    let mut zero = config(1);
    zero.policy.max_model_units = 0;
    let p = provisioner_for(&ledger, &bedrock, zero);
    let e = p.provision(&input(0)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::GuardrailViolation);
    assert!(e.message.contains("MAX_MODEL_UNITS is 0"), "{}", e.message);
    assert_eq!(bedrock.count("create_pt"), 0);
    assert_eq!(
        stored(&ledger, &input(0).run_id).await.status,
        RunStatus::ProvisioningFailed
    );
}

#[tokio::test]
async fn a_run_that_is_not_completed_is_refused() {
    let ledger = ledger_with(run(RunStatus::Training, ServingMode::Provisioned)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    let e = p.provision(&input(0)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(bedrock.calls().is_empty());
    let ledger = InMemoryRunLedger::new();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    assert_eq!(
        p.provision(&input(0)).await.unwrap_err().error_type,
        ErrorType::NotFound
    );
}

/// Whatever its serving setting, a run whose job did not complete is a `Conflict`, never
/// `not_requested`: the provisioner's answer must not contradict the ledger.
#[tokio::test]
async fn a_failed_or_stopped_run_is_a_conflict_whatever_its_serving() {
    for status in [
        RunStatus::Failed,
        RunStatus::Stopped,
        RunStatus::Rejected,
        RunStatus::Validated,
        RunStatus::Skipped,
    ] {
        for serving in [ServingMode::None, ServingMode::Provisioned] {
            let ledger = ledger_with(run(status, serving)).await;
            let bedrock = ScriptedBedrock::default();
            let p = provisioner_for(&ledger, &bedrock, config(1));
            let before = stored(&ledger, &input(0).run_id).await;
            let e = p.provision(&input(0)).await.unwrap_err();
            assert_eq!(e.error_type, ErrorType::Conflict, "{status} {serving:?}");
            assert!(
                e.message.contains(&format!("is {status}"))
                    && e.message.contains("cannot buy Provisioned Throughput"),
                "{}",
                e.message
            );
            assert!(bedrock.calls().is_empty());
            assert_eq!(stored(&ledger, &before.run_id).await, before);
        }
    }
}

#[test]
fn config_from_env() {
    let limits = Limits::builtin();
    let d = ProvisionConfig::from_lookup(&limits, env(&[])).unwrap();
    assert_eq!(
        d.policy.max_model_units,
        limits.throughput.default_max_model_units
    );
    assert_eq!(d.policy.allowed_commitments, vec![Commitment::None]);
    let c = ProvisionConfig::from_lookup(
        &limits,
        env(&[
            ("MAX_MODEL_UNITS", "4"),
            ("ALLOWED_COMMITMENTS", "None, OneMonth"),
        ]),
    )
    .unwrap();
    assert_eq!(c.policy.max_model_units, 4);
    assert_eq!(
        c.policy.allowed_commitments,
        vec![Commitment::None, Commitment::OneMonth]
    );
    let e = ProvisionConfig::from_lookup(&limits, env(&[("ALLOWED_COMMITMENTS", "None,Forever")]))
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::ConfigInvalid);
    assert!(e.message.contains("ALLOWED_COMMITMENTS") && e.message.contains("Forever"));
    let e = ProvisionConfig::from_lookup(&limits, env(&[("MAX_MODEL_UNITS", "-1")])).unwrap_err();
    assert!(e.message.contains("MAX_MODEL_UNITS"));
    // Provisioning is off unless the stack turns it on; MAX_MODEL_UNITS may be 0.
    assert!(!d.policy.allow_provisioning);
    let c = ProvisionConfig::from_lookup(
        &limits,
        env(&[("ALLOW_PROVISIONING", "true"), ("MAX_MODEL_UNITS", "0")]),
    )
    .unwrap();
    assert!(c.policy.allow_provisioning);
    assert_eq!(c.policy.max_model_units, 0);
}

#[test]
fn sample_events_match_the_types() {
    let i: ProvisionThroughputInput = serde_json::from_str(include_str!(
        "../../../../../events/provision-throughput.json"
    ))
    .unwrap();
    assert_eq!(i.attempt, 0);
    let o: ProvisionThroughputOutput = serde_json::from_str(include_str!(
        "../../../../../events/provision-throughput-output.json"
    ))
    .unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    assert!(o.provisioned_model_arn.is_some());
    let e: ProvisionThroughputInput = serde_json::from_str(include_str!(
        "../../../../../events/provision-throughput-evaluation-error.json"
    ))
    .unwrap();
    assert_eq!(e.evaluation_error.unwrap()["Error"], "Throttled");
}

#[test]
fn names_and_tokens_are_what_bedrock_accepts() {
    let r = completed(ServingMode::Provisioned);
    let name = provisioned_model_name_for(&r);
    assert!(
        naming::PROVISIONED_MODEL_NAME_RE.is_match(&name) && name.len() <= 63,
        "{name}"
    );
    assert_eq!(name, provisioned_model_name_for(&r));
    let t = throughput_client_request_token(&r.run_id);
    assert!(naming::CLIENT_REQUEST_TOKEN_RE.is_match(&t), "{t}");
    let v = serde_json::to_value(ProvisionThroughputOutput {
        run_id: r.run_id.clone(),
        outcome: ProvisionOutcome::NotRequested,
        provisioned_model_arn: None,
        deployment_arn: None,
        attempt: 1,
        next_wait_seconds: 0,
    })
    .unwrap();
    assert_eq!(v["outcome"], "not_requested");
    for k in [
        "runId",
        "outcome",
        "provisionedModelArn",
        "deploymentArn",
        "attempt",
        "nextWaitSeconds",
    ] {
        assert!(v.get(k).is_some(), "missing {k}");
    }
}

/// A ledger where a rival (a duplicated execution, the reconciler) records `ready` just before this
/// step does: the step's own write then loses the race.
struct RivalWritesReadyFirst(InMemoryRunLedger, std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl RunLedger for RivalWritesReadyFirst {
    async fn create(&self, run: &Run) -> Result<crate::ports::CreateOutcome, PortError> {
        self.0.create(run).await
    }
    async fn get(&self, id: &RunId) -> Result<Option<Run>, PortError> {
        self.0.get(id).await
    }
    async fn update(
        &self,
        id: &RunId,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<Run, PortError> {
        if update.status == Some(RunStatus::Ready)
            && !self.1.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            self.0.update(id, expected, update).await?;
            return Err(PortError::Conflict("conditional write failed".into()));
        }
        self.0.update(id, expected, update).await
    }
    async fn list_recent(&self, limit: usize) -> Result<Vec<Run>, PortError> {
        self.0.list_recent(limit).await
    }
    async fn list_by_status(&self, s: RunStatus, limit: usize) -> Result<Vec<Run>, PortError> {
        self.0.list_by_status(s, limit).await
    }
}

#[tokio::test]
async fn a_lost_race_answers_from_the_ledger_instead_of_failing() {
    let ledger = RivalWritesReadyFirst(
        ledger_with(completed(ServingMode::Provisioned)).await,
        Default::default(),
    );
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    bedrock.set_pt_status(ThroughputStatus::InService, None);
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::InService, "{o:?}");
    assert!(o.provisioned_model_arn.is_some());
    let r = ledger.0.get(&input(0).run_id).await.unwrap().unwrap();
    assert_eq!(r.status, RunStatus::Ready);
    assert_eq!(bedrock.count("create_pt"), 1);
}

#[tokio::test]
async fn the_read_only_path_never_buys_and_records_a_throughput_gone_from_bedrock() {
    let mut r = run(RunStatus::Provisioning, ServingMode::Provisioned);
    r.custom_model_arn = Some(MODEL_ARN.into());
    r.provisioned_model_arn =
        Some("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/gone".into());
    let ledger = ledger_with(r).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    let o = p.record_throughput_state(&input(0).run_id).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Failed);
    assert_eq!(
        bedrock.count("create_pt"),
        0,
        "the read-only path never buys"
    );
    let stored = stored(&ledger, &input(0).run_id).await;
    assert_eq!(stored.status, RunStatus::ProvisioningFailed);
    let reason = stored.failure_reason.unwrap();
    assert!(
        reason.contains("no longer knows Provisioned Throughput"),
        "{reason}"
    );

    // A run with no ARN recorded is refused, not bought for.
    let mut r = run(RunStatus::Provisioning, ServingMode::Provisioned);
    r.run_id = RunId("run-no-arn".into());
    r.custom_model_arn = Some(MODEL_ARN.into());
    ledger.create(&r).await.unwrap();
    let e = p.record_throughput_state(&r.run_id).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert_eq!(bedrock.count("create_pt"), 0);
}

#[test]
fn the_provisioning_budget_is_the_state_machines() {
    let limits = Limits::builtin();
    let asl: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../../statemachine/distillery.asl.json"
    ))
    .unwrap();
    let bound = &asl["States"]["CheckProvisioningBudget"]["Choices"][0]["NumericGreaterThanEquals"];
    assert_eq!(
        bound.as_u64(),
        Some(limits.throughput.provisioning_budget_checks as u64),
        "statemachine CheckProvisioningBudget and data/limits.json throughput.provisioningBudgetChecks disagree"
    );
    let c = ProvisionConfig::from_lookup(&limits, env(&[])).unwrap();
    // 60, 120, 240, 480, then 900 for the rest of the 200 checks.
    assert_eq!(
        c.provisioning_window_seconds(),
        60 + 120 + 240 + 480 + 196 * 900
    );
}

// --- on-demand: a custom model deployment -------------------------------------------------------

fn provisioner<'a>(
    ledger: &'a dyn RunLedger,
    bedrock: &'a ScriptedBedrock,
) -> ThroughputProvisioner<'a> {
    ThroughputProvisioner {
        ledger,
        bedrock,
        clock: &SystemClock,
        // A policy that would refuse any throughput: on-demand buys nothing hourly, so no
        // model-unit or commitment guardrail may stop it.
        config: ProvisionConfig {
            policy: ServingPolicy {
                allow_provisioning: false,
                max_model_units: 0,
                allowed_commitments: vec![],
            },
            ..config(1)
        },
    }
}

#[tokio::test]
async fn on_demand_creates_one_deployment_across_retries_then_is_ready() {
    let ledger = ledger_with(completed(ServingMode::OnDemand)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner(&ledger, &bedrock);
    let id = input(0).run_id;

    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(
        (o.outcome, o.attempt, o.next_wait_seconds),
        (ProvisionOutcome::Creating, 1, 30)
    );
    let r = stored(&ledger, &id).await;
    assert_eq!(r.status, RunStatus::Provisioning);
    let name = r.deployment_name.clone().unwrap();
    assert_eq!(
        name,
        naming::deployment_name(&id, &r.dataset.display_name())
    );
    assert!(r.deployment_arn.is_some());
    assert_eq!(o.deployment_arn, r.deployment_arn);
    assert_eq!(
        (&o.provisioned_model_arn, &r.provisioned_model_arn),
        (&None, &None)
    );
    // Looked up by name before creating; created once, with the run's token, model and tags.
    assert_eq!(bedrock.calls(), vec!["get_deployment", "create_deployment"]);
    let req = bedrock.deployment_requests()[0].clone();
    assert_eq!(req.deployment_name, name);
    assert_eq!(req.model_arn, MODEL_ARN);
    assert_eq!(
        req.client_request_token,
        naming::deployment_client_request_token(&id)
    );
    assert_eq!(
        req.tags.get(tags::RUN_ID_TAG).map(String::as_str),
        Some(id.as_str())
    );
    assert_eq!(
        req.tags.get(tags::MANAGED_BY_TAG).map(String::as_str),
        Some(tags::MANAGED_BY_VALUE)
    );

    // Still Creating: looked up by the recorded ARN, nothing written, nothing created again.
    let o2 = p.provision(&input(1)).await.unwrap();
    assert_eq!(
        (o2.outcome, o2.next_wait_seconds),
        (ProvisionOutcome::Creating, 60)
    );
    assert_eq!(stored(&ledger, &id).await, r);
    assert_eq!(bedrock.count("create_deployment"), 1);
    assert_eq!(bedrock.count("get_pt") + bedrock.count("create_pt"), 0);

    bedrock.set_deployment_status(DeploymentStatus::Active, None);
    let o3 = p.provision(&input(2)).await.unwrap();
    assert_eq!(
        (o3.outcome, o3.next_wait_seconds),
        (ProvisionOutcome::InService, 0)
    );
    let ready = stored(&ledger, &id).await;
    assert_eq!(ready.status, RunStatus::Ready);
    assert_eq!(ready.deployment_arn, r.deployment_arn);
    assert_eq!(o3.deployment_arn, r.deployment_arn);

    // Retried after ready: answered from the ledger, Bedrock not asked.
    let calls = bedrock.calls().len();
    let o4 = p.provision(&input(3)).await.unwrap();
    assert_eq!(o4.outcome, ProvisionOutcome::InService);
    assert_eq!(o4.deployment_arn, r.deployment_arn);
    assert_eq!(bedrock.calls().len(), calls);
    assert_eq!(bedrock.count("create_deployment"), 1);
}

#[tokio::test]
async fn on_demand_retry_after_a_crash_finds_the_deployment_by_name() {
    // An earlier attempt recorded `provisioning` and the name, created, then died before
    // recording the ARN.
    let mut r = completed(ServingMode::OnDemand);
    r.status = RunStatus::Provisioning;
    let name = deployment_name_for(&r);
    r.deployment_name = Some(name.clone());
    let ledger = ledger_with(r).await;
    let bedrock = ScriptedBedrock::default();
    let earlier = crate::ports::DeploymentRequest {
        deployment_name: name.clone(),
        model_arn: MODEL_ARN.into(),
        description: None,
        client_request_token: "earlier-token".into(),
        tags: Default::default(),
    };
    let arn = bedrock
        .create_custom_model_deployment(&earlier)
        .await
        .unwrap();
    bedrock.clear_calls();

    let p = provisioner(&ledger, &bedrock);
    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    assert_eq!(bedrock.calls(), vec!["get_deployment"]);
    assert_eq!(
        stored(&ledger, &input(0).run_id).await.deployment_arn,
        Some(arn.clone())
    );
    assert_eq!(o.deployment_arn, Some(arn));
}

#[tokio::test]
async fn a_failed_deployment_fails_the_run_with_bedrocks_message_or_a_clear_default() {
    for (msg, want) in [
        (
            Some("The custom model was customized before 2025-07-16"),
            "The custom model was customized before 2025-07-16",
        ),
        (
            None,
            "Bedrock reported the custom model deployment Failed without a message",
        ),
    ] {
        let ledger = ledger_with(completed(ServingMode::OnDemand)).await;
        let bedrock = ScriptedBedrock::default();
        let p = provisioner(&ledger, &bedrock);
        p.provision(&input(0)).await.unwrap();
        bedrock.set_deployment_status(DeploymentStatus::Failed, msg);
        let o = p.provision(&input(1)).await.unwrap();
        assert_eq!(o.outcome, ProvisionOutcome::Failed);
        assert!(o.deployment_arn.is_some());
        let r = stored(&ledger, &input(0).run_id).await;
        assert_eq!(r.status, RunStatus::ProvisioningFailed);
        assert_eq!(r.failure_reason.as_deref(), Some(want));
        // Retried: the recorded outcome, no second create.
        assert_eq!(
            p.provision(&input(2)).await.unwrap().outcome,
            ProvisionOutcome::Failed
        );
        assert_eq!(bedrock.count("create_deployment"), 1);
    }
}

#[tokio::test]
async fn a_run_that_does_not_serve_is_not_requested_whatever_else_it_records() {
    // `auto` never reaches the ledger (it is settled at validation), but if it did it would not
    // be served rather than guessed at.
    for serving in [ServingMode::None, ServingMode::Auto] {
        let ledger = ledger_with(completed(serving)).await;
        let bedrock = ScriptedBedrock::default();
        let p = provisioner(&ledger, &bedrock);
        let before = stored(&ledger, &input(0).run_id).await;
        let o = p.provision(&input(0)).await.unwrap();
        assert_eq!(o.outcome, ProvisionOutcome::NotRequested, "{serving:?}");
        assert_eq!((o.deployment_arn, o.provisioned_model_arn), (None, None));
        assert!(bedrock.calls().is_empty());
        assert_eq!(stored(&ledger, &before.run_id).await, before);
    }
}

#[tokio::test]
async fn an_on_demand_run_that_did_not_complete_is_refused_naming_the_deployment() {
    let ledger = ledger_with(run(RunStatus::Failed, ServingMode::OnDemand)).await;
    let bedrock = ScriptedBedrock::default();
    let e = provisioner(&ledger, &bedrock)
        .provision(&input(0))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(
        e.message
            .contains("cannot create a custom model deployment"),
        "{}",
        e.message
    );
    assert!(bedrock.calls().is_empty());
}

#[tokio::test]
async fn on_demand_lost_race_answers_from_the_ledger() {
    let ledger = RivalWritesReadyFirst(
        ledger_with(completed(ServingMode::OnDemand)).await,
        Default::default(),
    );
    let bedrock = ScriptedBedrock::default();
    let p = provisioner(&ledger, &bedrock);
    p.provision(&input(0)).await.unwrap();
    bedrock.set_deployment_status(DeploymentStatus::Active, None);
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::InService, "{o:?}");
    assert!(o.deployment_arn.is_some());
    assert_eq!(bedrock.count("create_deployment"), 1);
}

#[tokio::test]
async fn the_read_only_path_reads_a_deployment_and_never_creates_one() {
    // Recorded ARN, deployment Active in Bedrock: recorded ready.
    let ledger = ledger_with(completed(ServingMode::OnDemand)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner(&ledger, &bedrock);
    p.provision(&input(0)).await.unwrap();
    bedrock.set_deployment_status(DeploymentStatus::Active, None);
    let o = p.record_throughput_state(&input(0).run_id).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::InService);
    assert_eq!(
        stored(&ledger, &input(0).run_id).await.status,
        RunStatus::Ready
    );
    assert_eq!(bedrock.count("create_deployment"), 1);

    // A recorded deployment Bedrock no longer knows: provisioning_failed, nothing created.
    let mut r = run(RunStatus::Provisioning, ServingMode::OnDemand);
    r.custom_model_arn = Some(MODEL_ARN.into());
    r.deployment_arn =
        Some("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/gone".into());
    let ledger = ledger_with(r).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner(&ledger, &bedrock);
    let o = p.record_throughput_state(&input(0).run_id).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Failed);
    let stored_run = stored(&ledger, &input(0).run_id).await;
    assert_eq!(stored_run.status, RunStatus::ProvisioningFailed);
    assert!(stored_run
        .failure_reason
        .unwrap()
        .contains("no longer knows custom model deployment"));
    assert_eq!(bedrock.calls(), vec!["get_deployment"]);

    // No deployment ARN recorded: refused, not created.
    let mut r = run(RunStatus::Provisioning, ServingMode::OnDemand);
    r.run_id = RunId("run-no-deployment-arn".into());
    r.custom_model_arn = Some(MODEL_ARN.into());
    ledger.create(&r).await.unwrap();
    let e = p.record_throughput_state(&r.run_id).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(
        e.message.contains("no custom model deployment ARN"),
        "{}",
        e.message
    );
    assert_eq!(bedrock.count("create_deployment"), 0);
}

/// The state machine sends a completed run to this step exactly when its serving mode serves:
/// CheckServing's choices (on PollStatus's `serving`) must agree with `ServingMode::serves`, or an
/// on-demand run would end `completed` without its deployment (or a `none` run reach the step).
#[test]
fn the_state_machine_routes_every_recorded_serving_mode_as_the_provisioner_expects() {
    let asl: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../../statemachine/distillery.asl.json"
    ))
    .unwrap();
    let check = &asl["States"]["CheckServing"];
    let route = |mode: ServingMode| -> String {
        let json = serde_json::to_value(mode).unwrap();
        check["Choices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Variable"] == "$.poll.serving" && c["StringEquals"] == json)
            .map(|c| c["Next"].as_str().unwrap().to_string())
            .unwrap_or_else(|| check["Default"].as_str().unwrap().to_string())
    };
    // `auto` is settled at validation: a recorded run never holds it.
    for mode in [
        ServingMode::None,
        ServingMode::OnDemand,
        ServingMode::Provisioned,
    ] {
        let want = if mode.serves() {
            "StartProvisioning"
        } else {
            "NotifyCompleted"
        };
        assert_eq!(route(mode), want, "{mode:?}");
    }
}

/// Buys and brings the run's throughput into service at `clock`'s time; returns the ready run.
async fn ready_with(run: Run, clock: &crate::testing::fakes::FixedClock) -> Run {
    let id = run.run_id.clone();
    let ledger = ledger_with(run).await;
    let bedrock = ScriptedBedrock::default();
    let mut cfg = config(1);
    cfg.policy.allowed_commitments = vec![Commitment::None, Commitment::OneMonth];
    let p = ThroughputProvisioner {
        ledger: &ledger,
        bedrock: &bedrock,
        clock,
        config: cfg,
    };
    p.provision(&input(0)).await.unwrap();
    bedrock.set_pt_status(ThroughputStatus::InService, None);
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::InService);
    stored(&ledger, &id).await
}

#[tokio::test]
async fn no_commitment_throughput_expires_its_ttl_after_it_goes_in_service() {
    let went_in_service = t0() + chrono::Duration::hours(5);
    let clock = crate::testing::fakes::FixedClock::at(went_in_service);
    let mut r = completed(ServingMode::Provisioned);
    r.pt_ttl_hours = Some(0.5);
    let r = ready_with(r, &clock).await;
    assert_eq!(r.status, RunStatus::Ready);
    assert_eq!(
        r.serving_expires_at,
        Some(went_in_service + chrono::Duration::minutes(30))
    );
    // A run recorded before runs carried a TTL gets the default 24 hours.
    let r = ready_with(completed(ServingMode::Provisioned), &clock).await;
    assert_eq!(
        r.serving_expires_at,
        Some(went_in_service + chrono::Duration::hours(24))
    );
}

#[tokio::test]
async fn committed_throughput_gets_no_expiry() {
    let clock = crate::testing::fakes::FixedClock::at(t0());
    let mut r = completed(ServingMode::Provisioned);
    r.settings.commitment = Commitment::OneMonth;
    r.pt_ttl_hours = Some(1.0);
    let r = ready_with(r, &clock).await;
    assert_eq!((r.status, r.serving_expires_at), (RunStatus::Ready, None));
}

/// `distillery runs retire` on a run still `provisioning`: the execution's next check answers
/// `retired` (the state machine then ends quietly) and neither buys nor reads anything.
#[tokio::test]
async fn a_run_retired_while_provisioning_is_answered_retired_and_nothing_is_bought() {
    let ledger = ledger_with(completed(ServingMode::Provisioned)).await;
    let bedrock = ScriptedBedrock::default();
    let p = provisioner_for(&ledger, &bedrock, config(1));
    let id = input(0).run_id;
    assert_eq!(
        p.provision(&input(0)).await.unwrap().outcome,
        ProvisionOutcome::Creating
    );
    ledger
        .update(
            &id,
            &[RunStatus::Provisioning],
            &RunUpdate::to(RunStatus::Retired).with_detail("retired by runs retire"),
        )
        .await
        .unwrap();
    let calls_before = bedrock.calls().len();
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(
        (o.outcome, o.next_wait_seconds),
        (ProvisionOutcome::Retired, 0)
    );
    assert_eq!(bedrock.calls().len(), calls_before, "{:?}", bedrock.calls());
    assert_eq!(stored(&ledger, &id).await.status, RunStatus::Retired);
    // The state machine routes the answer to a Succeed state, not to an error.
    let asl: serde_json::Value = serde_json::from_str(include_str!(
        "../../../../../statemachine/distillery.asl.json"
    ))
    .unwrap();
    let next = asl["States"]["CheckThroughput"]["Choices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["StringEquals"] == "retired")
        .map(|c| c["Next"].as_str().unwrap().to_string())
        .unwrap();
    assert_eq!(asl["States"][&next]["Type"], "Succeed");
}

/// A throughput or deployment the run records, deleted meanwhile (`runs retire` racing the loop, or
/// by hand), is never bought or created again: the run records that it is gone, and when the retire
/// won the race the step answers `retired`.
#[tokio::test]
async fn a_recorded_resource_that_is_gone_is_never_created_again() {
    for serving in [ServingMode::Provisioned, ServingMode::OnDemand] {
        let ledger = ledger_with(completed(serving)).await;
        let bedrock = ScriptedBedrock::default();
        let p = provisioner_for(&ledger, &bedrock, config(1));
        let id = input(0).run_id;
        let o = p.provision(&input(0)).await.unwrap();
        assert_eq!(o.outcome, ProvisionOutcome::Creating, "{serving:?}");
        let r = stored(&ledger, &id).await;
        match serving {
            ServingMode::Provisioned => bedrock
                .delete_provisioned_throughput(r.provisioned_model_arn.as_deref().unwrap())
                .await
                .unwrap(),
            _ => bedrock
                .delete_custom_model_deployment(r.deployment_arn.as_deref().unwrap())
                .await
                .unwrap(),
        }
        let o = p.provision(&input(1)).await.unwrap();
        assert_eq!(o.outcome, ProvisionOutcome::Failed, "{serving:?}");
        assert_eq!(
            bedrock.count("create_pt") + bedrock.count("create_deployment"),
            1,
            "{serving:?}: {:?}",
            bedrock.calls()
        );
        let r = stored(&ledger, &id).await;
        assert_eq!(r.status, RunStatus::ProvisioningFailed, "{serving:?}");
        assert!(
            r.failure_reason.unwrap().contains("no longer knows"),
            "{serving:?}"
        );
    }
}

// ---- The quality gate at the serving step ----

fn armed(mut r: Run) -> Run {
    r.quality_gate = Some(crate::domain::evaluation::GatePlan::Armed {
        held_out_uri: "s3://b/runs/r/heldout.jsonl".into(),
        records: 20,
        sha256: "ab".repeat(32),
        min_score: 0.7,
        min_score_origin: "the default".into(),
    });
    r
}

/// A provisioner whose policy allows one no-commitment model unit.
fn gate_provisioner<'a>(
    ledger: &'a dyn RunLedger,
    bedrock: &'a ScriptedBedrock,
) -> ThroughputProvisioner<'a> {
    provisioner_for(ledger, bedrock, config(1))
}

/// Drives an armed run to its Active deployment: `evaluate`, nothing served, nothing bought.
async fn to_evaluation(
    ledger: &InMemoryRunLedger,
    bedrock: &ScriptedBedrock,
) -> ProvisionThroughputOutput {
    let p = gate_provisioner(ledger, bedrock);
    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    bedrock.set_deployment_status(DeploymentStatus::Active, None);
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Evaluate);
    assert_eq!(o.next_wait_seconds, 0);
    let r = stored(ledger, &input(0).run_id).await;
    assert_eq!(
        r.status,
        RunStatus::Provisioning,
        "nothing serves before the gate"
    );
    assert!(r.deployment_arn.is_some());
    // Asked again before the evaluation is recorded: still evaluate, nothing written.
    let again = p.provision(&input(2)).await.unwrap();
    assert_eq!(again.outcome, ProvisionOutcome::Evaluate);
    assert_eq!(stored(ledger, &input(0).run_id).await, r);
    assert_eq!(bedrock.count("create_pt"), 0);
    o
}

/// Records an evaluation of `student` (the run's own deployment when `None`), as the evaluator does.
async fn record_evaluation_of(ledger: &InMemoryRunLedger, passed: bool, student: Option<&str>) {
    let run = stored(ledger, &input(0).run_id).await;
    let mut evaluation = crate::testing::sample_evaluation(chrono::Utc::now(), passed);
    evaluation.student_model = student.map(str::to_string).or(run.deployment_arn).unwrap();
    ledger
        .update(
            &input(0).run_id,
            &[],
            &RunUpdate {
                evaluation: Some(evaluation),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

async fn record_evaluation(ledger: &InMemoryRunLedger, passed: bool) {
    record_evaluation_of(ledger, passed, None).await
}

#[tokio::test]
async fn an_evaluation_of_another_model_never_decides_the_gate() {
    let ledger = ledger_with(armed(completed(ServingMode::Provisioned))).await;
    let bedrock = ScriptedBedrock::default();
    to_evaluation(&ledger, &bedrock).await;
    // Say `distillery eval --student <the teacher>` had recorded a pass.
    record_evaluation_of(&ledger, true, Some("amazon.nova-pro-v1:0")).await;
    let p = gate_provisioner(&ledger, &bedrock);
    let o = p.provision(&input(3)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Evaluate);
    assert_eq!(
        bedrock.count("create_pt") + bedrock.count("delete_deployment"),
        0
    );
    // Nor does the reconciler's read-only step serve the evaluation deployment, whatever is
    // recorded: not with that evaluation, not after a failing one, not for a provisioned run
    // whose gate passed (its serving is the throughput the pipeline buys).
    for passed in [true, false] {
        let o = p.record_throughput_state(&input(0).run_id).await.unwrap();
        assert_eq!(o.outcome, ProvisionOutcome::Evaluate, "{passed}");
        record_evaluation(&ledger, passed).await;
    }
    let o = p.record_throughput_state(&input(0).run_id).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Evaluate);
    assert_eq!(
        stored(&ledger, &input(0).run_id).await.status,
        RunStatus::Provisioning
    );
}

#[tokio::test]
async fn an_on_demand_run_that_passes_its_gate_is_ready_on_the_evaluated_deployment() {
    let ledger = ledger_with(armed(completed(ServingMode::OnDemand))).await;
    let bedrock = ScriptedBedrock::default();
    let evaluated = to_evaluation(&ledger, &bedrock).await;
    record_evaluation(&ledger, true).await;
    let o = gate_provisioner(&ledger, &bedrock)
        .provision(&input(3))
        .await
        .unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::InService);
    assert_eq!(o.deployment_arn, evaluated.deployment_arn);
    assert_eq!(
        stored(&ledger, &input(0).run_id).await.status,
        RunStatus::Ready
    );
    assert_eq!(bedrock.count("create_deployment"), 1);
    assert_eq!(bedrock.count("delete_deployment"), 0);
}

#[tokio::test]
async fn a_failed_gate_deletes_the_deployment_buys_nothing_and_ends_gate_failed() {
    for serving in [ServingMode::OnDemand, ServingMode::Provisioned] {
        let ledger = ledger_with(armed(completed(serving))).await;
        let bedrock = ScriptedBedrock::default();
        let evaluated = to_evaluation(&ledger, &bedrock).await;
        record_evaluation(&ledger, false).await;
        let p = gate_provisioner(&ledger, &bedrock);
        let o = p.provision(&input(3)).await.unwrap();
        assert_eq!(o.outcome, ProvisionOutcome::GateFailed, "{serving:?}");
        let r = stored(&ledger, &input(0).run_id).await;
        assert_eq!(r.status, RunStatus::GateFailed);
        let reason = r.failure_reason.clone().unwrap();
        assert!(
            reason.contains("50%")
                && reason.contains("70%")
                && reason.contains("nothing was bought"),
            "{reason}"
        );
        assert_eq!(bedrock.count("delete_deployment"), 1);
        assert!(matches!(
            bedrock
                .get_custom_model_deployment(evaluated.deployment_arn.as_deref().unwrap())
                .await,
            Err(PortError::NotFound(_))
        ));
        assert_eq!(bedrock.count("create_pt") + bedrock.count("get_pt"), 0);
        // A retried call answers from the ledger and changes nothing.
        let calls = bedrock.calls().len();
        let again = p.provision(&input(4)).await.unwrap();
        assert_eq!(again.outcome, ProvisionOutcome::GateFailed);
        assert_eq!(bedrock.calls().len(), calls);
    }
}

#[tokio::test]
async fn a_provisioned_run_that_passes_deletes_its_evaluation_deployment_then_buys_once() {
    let ledger = ledger_with(armed(completed(ServingMode::Provisioned))).await;
    let bedrock = ScriptedBedrock::default();
    to_evaluation(&ledger, &bedrock).await;
    assert_eq!(bedrock.count("create_pt"), 0);
    record_evaluation(&ledger, true).await;
    let p = gate_provisioner(&ledger, &bedrock);
    let o = p.provision(&input(3)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    let calls = bedrock.calls();
    let deleted = calls
        .iter()
        .position(|c| *c == "delete_deployment")
        .unwrap();
    let bought = calls.iter().position(|c| *c == "create_pt").unwrap();
    assert!(
        deleted < bought,
        "the evaluation deployment goes first: {calls:?}"
    );
    let r = stored(&ledger, &input(0).run_id).await;
    assert!(r.provisioned_model_name.is_some() && r.provisioned_model_arn.is_some());
    assert!(!r.serves_through_deployment());
    bedrock.set_pt_status(ThroughputStatus::InService, None);
    let o = p.provision(&input(4)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::InService);
    let r = stored(&ledger, &input(0).run_id).await;
    assert_eq!(r.status, RunStatus::Ready);
    assert!(r.serving_expires_at.is_some());
    assert_eq!(bedrock.count("create_pt"), 1);
    assert_eq!(bedrock.count("delete_deployment"), 1);
    assert_eq!(
        crate::app::retire_run::Serving::of(&r),
        Some(crate::app::retire_run::Serving::Throughput(
            r.provisioned_model_arn.clone().unwrap()
        )),
        "retiring a provisioned run deletes its throughput, not the evaluation deployment"
    );
}

#[tokio::test]
async fn an_evaluation_that_could_not_finish_fails_the_gate_closed() {
    let ledger = ledger_with(armed(completed(ServingMode::OnDemand))).await;
    let bedrock = ScriptedBedrock::default();
    to_evaluation(&ledger, &bedrock).await;
    let caught = serde_json::json!({
        "Error": "Throttled",
        "Cause": "{\"errorType\":\"Throttled\",\"errorMessage\":\"Bedrock throttled Converse 6 times\"}"
    });
    let o = gate_provisioner(&ledger, &bedrock)
        .provision(&ProvisionThroughputInput {
            evaluation_error: Some(caught),
            ..input(3)
        })
        .await
        .unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::GateFailed);
    let r = stored(&ledger, &input(0).run_id).await;
    assert_eq!(r.status, RunStatus::GateFailed);
    let reason = r.failure_reason.unwrap();
    assert!(
        reason.contains("could not finish")
            && reason.contains("Throttled: Bedrock throttled Converse 6 times"),
        "{reason}"
    );
    assert_eq!(bedrock.count("delete_deployment"), 1);
}

#[tokio::test]
async fn a_run_without_an_armed_gate_is_served_as_before() {
    for plan in [
        None,
        Some(crate::domain::evaluation::GatePlan::Off),
        Some(crate::domain::evaluation::GatePlan::Skipped {
            reason: "too few records".into(),
        }),
    ] {
        let mut r = completed(ServingMode::OnDemand);
        r.quality_gate = plan;
        let ledger = ledger_with(r).await;
        let bedrock = ScriptedBedrock::default();
        let p = gate_provisioner(&ledger, &bedrock);
        p.provision(&input(0)).await.unwrap();
        bedrock.set_deployment_status(DeploymentStatus::Active, None);
        let o = p.provision(&input(1)).await.unwrap();
        assert_eq!(o.outcome, ProvisionOutcome::InService);
    }
}

/// Bedrock refuses the throughput for its quota: the run waits as `serving_queued`, tries again
/// after the hold, and buys once Bedrock accepts; the wait's start is kept across refusals.
#[tokio::test]
async fn a_quota_refusal_queues_serving_and_the_next_call_tries_again() {
    let ledger = ledger_with(completed(ServingMode::Provisioned)).await;
    let bedrock = ScriptedBedrock::default();
    let clock = crate::testing::fakes::FixedClock::at(t0());
    let p = ThroughputProvisioner {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(1),
    };
    let id = input(0).run_id;
    bedrock.fail_next_pt(PortError::QuotaExceeded("provisioned model units".into()));
    bedrock.fail_next_pt(PortError::QuotaExceeded("provisioned model units".into()));
    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::ServingQueued);
    assert_eq!(o.next_wait_seconds, 600);
    assert_eq!(
        o.attempt, 0,
        "waiting spends none of the provisioning budget"
    );
    let r = stored(&ledger, &id).await;
    assert_eq!(r.status, RunStatus::ServingQueued);
    let q = r.queue.clone().unwrap();
    assert!(
        q.for_serving && q.reason.contains("Provisioned Throughput"),
        "{q:?}"
    );
    let since = q.since;

    clock.advance(chrono::Duration::minutes(10));
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::ServingQueued);
    let q = stored(&ledger, &id).await.queue.unwrap();
    assert_eq!((q.since, q.quota_refusals), (since, 2));

    clock.advance(chrono::Duration::minutes(10));
    let o = p.provision(&input(2)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Creating);
    assert_eq!(stored(&ledger, &id).await.status, RunStatus::Provisioning);
    assert_eq!(bedrock.count("create_pt"), 3, "two refused, one bought");
}

/// Past MAX_QUEUE_HOURS the run stops waiting: `provisioning_failed`, with why and what to do.
#[tokio::test]
async fn a_serving_wait_past_the_limit_ends_provisioning_failed() {
    let ledger = ledger_with(completed(ServingMode::OnDemand)).await;
    let bedrock = ScriptedBedrock::default();
    let clock = crate::testing::fakes::FixedClock::at(t0());
    let p = ThroughputProvisioner {
        ledger: &ledger,
        bedrock: &bedrock,
        clock: &clock,
        config: config(1),
    };
    let id = input(0).run_id;
    bedrock.fail_next_deployment(PortError::QuotaExceeded("deployments".into()));
    let o = p.provision(&input(0)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::ServingQueued);
    assert!(stored(&ledger, &id)
        .await
        .queue
        .unwrap()
        .reason
        .contains("custom model deployment"));
    // Refused again near the end: the wait is cut to what is left of the 3 hours.
    clock.advance(chrono::Duration::minutes(175));
    bedrock.fail_next_deployment(PortError::QuotaExceeded("deployments".into()));
    let o = p.provision(&input(1)).await.unwrap();
    assert_eq!(
        (o.outcome, o.next_wait_seconds),
        (ProvisionOutcome::ServingQueued, 300)
    );
    clock.advance(chrono::Duration::minutes(5));
    let o = p.provision(&input(2)).await.unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::Failed);
    let r = stored(&ledger, &id).await;
    assert_eq!(r.status, RunStatus::ProvisioningFailed);
    assert!(r.failure_reason.unwrap().contains("MAX_QUEUE_HOURS = 3"));
    assert_eq!(bedrock.count("create_deployment"), 2);
}
