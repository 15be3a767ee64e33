//! The status-poller and throughput-provisioner use cases driven through the REAL adapters: the
//! Bedrock adapter (aws-sdk-bedrock) against the Bedrock simulator, and the DynamoDB run ledger
//! (aws-sdk-dynamodb) against a moto server. Nothing here is mocked; every assertion reads back what
//! the simulator's call log or the DynamoDB table holds.
//!
//! Needs `.venv/bin/moto_server` (run `scripts/bootstrap.sh` once; `make test` does it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use bedrock_sim::{Operation, SimConfig, SimHandle, Timing};
use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_core::app::poll_status::{PollConfig, PollOutcome, PollStatusInput, StatusPoller};
use distillery_core::app::provision_throughput::{
    ProvisionConfig, ProvisionOutcome, ProvisionThroughputInput, ThroughputProvisioner,
};
use distillery_core::domain::errors::ErrorType;
use distillery_core::domain::naming;
use distillery_core::domain::run::{Run, RunId, RunStatus};
use distillery_core::domain::settings::{Commitment, ServingMode, ServingPolicy};
use distillery_core::ports::{
    CustomizationService, DistillationJobRequest, RunLedger, SystemClock, TrainingData,
};
use distillery_core::testing::sample_run;
use distillery_test_support::Moto;

struct Env {
    _moto: Arc<Moto>,
    sim: SimHandle,
    ledger: DynamoRunLedger,
    bedrock: BedrockCustomizationService,
}

/// A fresh table on the shared moto, and a simulator of its own with the given phase duration.
async fn env(table: &str, phase_ms: u64) -> Env {
    let moto = Moto::shared();
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_table(&dynamo, table)
        .await
        .expect("create ledger table");
    let sim = bedrock_sim::start(SimConfig {
        timing: Timing {
            phase_ms,
            stop_ms: phase_ms,
            pt_ms: phase_ms,
        },
        ..SimConfig::default()
    });
    // SDK retries off, so an injected throttle reaches the use case (the state machine retries).
    let bedrock_conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(sim.endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    Env {
        _moto: moto,
        sim,
        ledger: DynamoRunLedger::new(dynamo, table),
        bedrock: BedrockCustomizationService::from_conf(&bedrock_conf),
    }
}

fn poll_config(max_job_duration_seconds: u64) -> PollConfig {
    PollConfig {
        initial_wait_seconds: 1,
        max_wait_seconds: 1,
        max_job_duration_seconds,
        give_up_after_permanent_errors: 5,
    }
}

fn provision_config(max_model_units: u32) -> ProvisionConfig {
    ProvisionConfig {
        policy: ServingPolicy {
            allow_provisioning: true,
            max_model_units,
            allowed_commitments: vec![Commitment::None],
        },
        initial_wait_seconds: 1,
        max_wait_seconds: 1,
        budget_checks: 200,
        queue: Default::default(),
    }
}

/// Launches a real distillation job in the simulator and records the run as `training`, the way the
/// job launcher leaves it.
async fn launched_run(e: &Env, tag: &str, serving: ServingMode, model_units: u32) -> RunId {
    let mut run = sample_run(
        "datasets",
        &format!("incoming/{tag}.jsonl"),
        tag,
        2048,
        chrono::Utc::now(),
    );
    run.settings.serving = serving;
    run.settings.model_units = model_units;
    let run_id = run.run_id.clone();
    let req = DistillationJobRequest {
        job_name: naming::job_name(&run_id, tag),
        custom_model_name: naming::custom_model_name(&run_id, tag),
        role_arn: "arn:aws:iam::123456789012:role/distillery-bedrock".into(),
        student: run.settings.student.clone(),
        teacher: run.settings.teacher.clone(),
        max_response_length: 1000,
        training_data: TrainingData::S3 {
            s3_uri: run.dataset.s3_uri(),
        },
        output_s3_uri: "s3://datasets/output/".into(),
        client_request_token: naming::client_request_token(&run_id, "create-job"),
        job_tags: BTreeMap::new(),
        custom_model_tags: BTreeMap::new(),
        custom_model_kms_key_id: None,
    };
    let job_arn = e
        .bedrock
        .create_distillation_job(&req)
        .await
        .expect("create job in the simulator");
    let now = chrono::Utc::now();
    run.status = RunStatus::Training;
    run.job_name = Some(req.job_name.clone());
    run.job_arn = Some(job_arn);
    run.custom_model_name = Some(req.custom_model_name.clone());
    run.launched_at = Some(now);
    e.ledger.create(&run).await.expect("record run");
    run_id
}

async fn stored(e: &Env, id: &RunId) -> Run {
    e.ledger.get(id).await.unwrap().expect("run in the ledger")
}

/// Polls like the state machine does (short waits) until the job is terminal; returns the last
/// output and the number of polls.
async fn poll_until_terminal(
    poller: &StatusPoller<'_>,
    run_id: &RunId,
) -> (distillery_core::app::poll_status::PollStatusOutput, u32) {
    let mut attempt = 0;
    loop {
        let out = poller
            .poll(&PollStatusInput {
                run_id: run_id.clone(),
                attempt,
                consecutive_errors: 0,
                give_up: false,
            })
            .await
            .expect("poll");
        if out.terminal {
            return (out, attempt + 1);
        }
        assert!(attempt < 200, "job never finished: {out:?}");
        attempt = out.attempt;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn polls_through_sub_statuses_to_completed_writing_only_changes() {
    let e = env("ledger-poll-complete", 300).await;
    let run_id = launched_run(&e, "support-chats", ServingMode::None, 1).await;
    let history_before = stored(&e, &run_id).await.history.len();
    let clock = SystemClock;
    let poller = StatusPoller {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &clock,
        config: poll_config(3600),
    };

    let (out, polls) = poll_until_terminal(&poller, &run_id).await;
    assert_eq!(out.outcome, PollOutcome::Completed);
    assert_eq!(out.job_status, "Completed");
    let model_arn = out.output_model_arn.clone().expect("output model ARN");

    let run = stored(&e, &run_id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.custom_model_arn.as_deref(), Some(model_arn.as_str()));
    assert!(run.finished_at.is_some());
    let detail = run.training_detail.clone().unwrap();
    assert_eq!(detail.training.as_deref(), Some("Completed"));

    // The simulator's model ARN is the one recorded.
    let gets = e.sim.calls_of(Operation::GetModelCustomizationJob);
    assert_eq!(gets.len() as u32, polls);

    // History: one entry per observed change, never one per poll.
    let new_entries = &run.history[history_before..];
    let training: Vec<_> = new_entries
        .iter()
        .filter(|h| h.to == RunStatus::Training)
        .collect();
    assert!(
        training.len() >= 2,
        "expected the sub-status walk in history: {new_entries:#?}"
    );
    assert!(
        (new_entries.len() as u32) < polls,
        "{} history entries for {polls} polls: a write happened without a change",
        new_entries.len()
    );
    for pair in training.windows(2) {
        assert_ne!(
            pair[0].detail, pair[1].detail,
            "two history entries record the same sub-statuses"
        );
    }
    assert!(training
        .iter()
        .any(|h| h.detail.as_deref().unwrap().contains("training=InProgress")));
    assert_eq!(new_entries.last().unwrap().to, RunStatus::Completed);

    // A retried poll is answered from the ledger: no Bedrock call, no write.
    let calls = e.sim.calls().len();
    let again = poller
        .poll(&PollStatusInput {
            run_id: run_id.clone(),
            attempt: 9,
            consecutive_errors: 0,
            give_up: false,
        })
        .await
        .unwrap();
    assert_eq!(again.outcome, PollOutcome::Completed);
    assert_eq!(again.output_model_arn.as_deref(), Some(model_arn.as_str()));
    assert_eq!(e.sim.calls().len(), calls);
    assert_eq!(stored(&e, &run_id).await, run);
}

#[tokio::test]
async fn a_job_the_simulator_fails_fails_the_run_with_bedrocks_message() {
    let e = env("ledger-poll-failed", 150).await;
    e.sim.fail_next_jobs(
        1,
        "Teacher model invocation failed: too many invalid records",
    );
    let run_id = launched_run(&e, "broken-chats", ServingMode::None, 1).await;
    let clock = SystemClock;
    let poller = StatusPoller {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &clock,
        config: poll_config(3600),
    };
    let (out, _) = poll_until_terminal(&poller, &run_id).await;
    assert_eq!(out.outcome, PollOutcome::Failed);
    let msg = out.failure_message.clone().unwrap();
    assert!(msg.contains("too many invalid records"), "{msg}");
    let run = stored(&e, &run_id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.failure_reason.as_deref(), Some(msg.as_str()));
    assert_eq!(run.custom_model_arn, None);
}

#[tokio::test]
async fn a_job_past_the_bound_is_stopped_and_the_run_failed() {
    // Phases of a minute: the job is still in progress when we look.
    let e = env("ledger-poll-timeout", 60_000).await;
    let run_id = launched_run(&e, "slow-chats", ServingMode::None, 1).await;
    let clock = SystemClock;
    let poller = StatusPoller {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &clock,
        config: poll_config(1),
    };
    let first = poller
        .poll(&PollStatusInput {
            run_id: run_id.clone(),
            attempt: 0,
            consecutive_errors: 0,
            give_up: false,
        })
        .await
        .unwrap();
    assert_eq!(first.outcome, PollOutcome::Running);
    assert!(e
        .sim
        .calls_of(Operation::StopModelCustomizationJob)
        .is_empty());

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let out = poller
        .poll(&PollStatusInput {
            run_id: run_id.clone(),
            attempt: 1,
            consecutive_errors: 0,
            give_up: false,
        })
        .await
        .unwrap();
    assert_eq!((out.outcome, out.terminal), (PollOutcome::TimedOut, true));
    let stops = e.sim.calls_of(Operation::StopModelCustomizationJob);
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(stops[0].succeeded());
    let run = stored(&e, &run_id).await;
    assert_eq!(run.status, RunStatus::Stopped);
    let reason = run.failure_reason.clone().unwrap();
    assert!(reason.contains("MAX_JOB_DURATION_SECONDS=1"), "{reason}");

    // The simulator agrees the job is stopping.
    let job = e
        .bedrock
        .get_job(run.job_arn.as_deref().unwrap())
        .await
        .unwrap();
    assert!(
        matches!(
            job.status,
            distillery_core::ports::JobStatus::Stopping
                | distillery_core::ports::JobStatus::Stopped
        ),
        "{job:?}"
    );

    // Polled again (a retry): still timed_out, no second stop.
    let again = poller
        .poll(&PollStatusInput {
            run_id: run_id.clone(),
            attempt: 2,
            consecutive_errors: 0,
            give_up: false,
        })
        .await
        .unwrap();
    assert_eq!(again.outcome, PollOutcome::TimedOut);
    assert_eq!(
        e.sim.calls_of(Operation::StopModelCustomizationJob).len(),
        1
    );
}

/// Trains a job to completion in the simulator and returns the completed run's id.
async fn completed_run(e: &Env, tag: &str, serving: ServingMode, model_units: u32) -> RunId {
    let run_id = launched_run(e, tag, serving, model_units).await;
    let clock = SystemClock;
    let poller = StatusPoller {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &clock,
        config: poll_config(3600),
    };
    let (out, _) = poll_until_terminal(&poller, &run_id).await;
    assert_eq!(out.outcome, PollOutcome::Completed);
    run_id
}

async fn provision_until_done(
    p: &ThroughputProvisioner<'_>,
    run_id: &RunId,
    start_attempt: u32,
) -> distillery_core::app::provision_throughput::ProvisionThroughputOutput {
    let mut attempt = start_attempt;
    loop {
        let out = p
            .provision(&ProvisionThroughputInput {
                run_id: run_id.clone(),
                attempt,
                evaluation_error: None,
            })
            .await
            .expect("provision");
        if out.outcome != ProvisionOutcome::Creating {
            return out;
        }
        assert!(attempt < 200, "never left Creating: {out:?}");
        attempt = out.attempt;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn provisioning_with_retries_buys_exactly_one_throughput() {
    let e = env("ledger-provision", 150).await;
    let run_id = completed_run(&e, "served-chats", ServingMode::Provisioned, 1).await;
    e.sim.clear_calls();
    let p = ThroughputProvisioner {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &SystemClock,
        config: provision_config(1),
    };

    // First invocation: Bedrock throttles the purchase; the run is already `provisioning` with its
    // name recorded, and the error is the retryable `Throttled`.
    e.sim
        .throttle_next_of(Operation::CreateProvisionedModelThroughput, 1);
    let err = p
        .provision(&ProvisionThroughputInput {
            run_id: run_id.clone(),
            attempt: 0,
            evaluation_error: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::Throttled, "{err:?}");
    let run = stored(&e, &run_id).await;
    assert_eq!(run.status, RunStatus::Provisioning);
    let name = run.provisioned_model_name.clone().unwrap();

    // The state machine's retry: looks the name up, buys once.
    let out = p
        .provision(&ProvisionThroughputInput {
            run_id: run_id.clone(),
            attempt: 0,
            evaluation_error: None,
        })
        .await
        .unwrap();
    assert_eq!(out.outcome, ProvisionOutcome::Creating);
    let pt_arn = out.provisioned_model_arn.clone().unwrap();

    // A duplicate invocation while Creating buys nothing more.
    let dup = p
        .provision(&ProvisionThroughputInput {
            run_id: run_id.clone(),
            attempt: 1,
            evaluation_error: None,
        })
        .await
        .unwrap();
    assert_eq!(dup.provisioned_model_arn.as_deref(), Some(pt_arn.as_str()));

    let done = provision_until_done(&p, &run_id, 2).await;
    assert_eq!(done.outcome, ProvisionOutcome::InService);
    assert_eq!(done.provisioned_model_arn.as_deref(), Some(pt_arn.as_str()));

    let creates = e.sim.calls_of(Operation::CreateProvisionedModelThroughput);
    let succeeded: Vec<_> = creates.iter().filter(|c| c.succeeded()).collect();
    assert_eq!(creates.len(), 2, "one throttled, one real: {creates:#?}");
    assert_eq!(succeeded.len(), 1);
    assert_eq!(
        succeeded[0].field("provisionedModelName"),
        Some(name.as_str())
    );
    assert_eq!(
        succeeded[0].field("clientRequestToken"),
        Some(
            distillery_core::app::provision_throughput::throughput_client_request_token(&run_id)
                .as_str()
        )
    );
    assert_eq!(succeeded[0].resource_arn.as_deref(), Some(pt_arn.as_str()));
    // Every lookup before the purchase went by name.
    let first_get = &e.sim.calls_of(Operation::GetProvisionedModelThroughput)[0];
    assert!(!first_get.succeeded());

    let run = stored(&e, &run_id).await;
    assert_eq!(run.status, RunStatus::Ready);
    assert_eq!(run.provisioned_model_arn.as_deref(), Some(pt_arn.as_str()));
    let statuses: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
    assert!(statuses.ends_with(&[
        RunStatus::Completed,
        RunStatus::Provisioning,
        RunStatus::Provisioning,
        RunStatus::Ready
    ]));

    // After ready, a retry is answered from the ledger.
    let calls = e.sim.calls().len();
    let again = provision_until_done(&p, &run_id, 9).await;
    assert_eq!(again.outcome, ProvisionOutcome::InService);
    assert_eq!(e.sim.calls().len(), calls);
}

#[tokio::test]
async fn a_throughput_the_simulator_fails_fails_provisioning() {
    let e = env("ledger-provision-failed", 150).await;
    let run_id = completed_run(&e, "unlucky-chats", ServingMode::Provisioned, 1).await;
    e.sim
        .fail_next_throughputs(1, "Insufficient model units available for this account");
    let p = ThroughputProvisioner {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &SystemClock,
        config: provision_config(1),
    };
    let out = provision_until_done(&p, &run_id, 0).await;
    assert_eq!(out.outcome, ProvisionOutcome::Failed);
    let run = stored(&e, &run_id).await;
    assert_eq!(run.status, RunStatus::ProvisioningFailed);
    assert!(run
        .failure_reason
        .as_deref()
        .unwrap()
        .contains("Insufficient model units"));
    assert_eq!(
        e.sim
            .calls_of(Operation::CreateProvisionedModelThroughput)
            .len(),
        1
    );
}

#[tokio::test]
async fn a_guardrail_violation_calls_no_bedrock_and_is_recorded() {
    let e = env("ledger-provision-guardrail", 150).await;
    let run_id = completed_run(&e, "huge-chats", ServingMode::Provisioned, 4).await;
    e.sim.clear_calls();
    let p = ThroughputProvisioner {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &SystemClock,
        config: provision_config(2),
    };
    let err = p
        .provision(&ProvisionThroughputInput {
            run_id: run_id.clone(),
            attempt: 0,
            evaluation_error: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::GuardrailViolation);
    assert!(err.message.contains("modelUnits 4"), "{}", err.message);
    assert!(e.sim.calls().is_empty(), "{:#?}", e.sim.calls());
    let run = stored(&e, &run_id).await;
    assert_eq!(run.status, RunStatus::ProvisioningFailed);
    assert!(run.failure_reason.unwrap().contains("MAX_MODEL_UNITS"));
}

#[tokio::test]
async fn serving_not_requested_leaves_the_run_completed() {
    let e = env("ledger-provision-none", 150).await;
    let run_id = completed_run(&e, "plain-chats", ServingMode::None, 1).await;
    e.sim.clear_calls();
    let before = stored(&e, &run_id).await;
    let p = ThroughputProvisioner {
        ledger: &e.ledger,
        bedrock: &e.bedrock,
        clock: &SystemClock,
        config: provision_config(1),
    };
    let out = provision_until_done(&p, &run_id, 0).await;
    assert_eq!(out.outcome, ProvisionOutcome::NotRequested);
    assert!(e.sim.calls().is_empty());
    assert_eq!(stored(&e, &run_id).await, before);
}
