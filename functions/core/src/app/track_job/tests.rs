use serde_json::json;

use super::*;
use crate::app::poll_status::fixtures::{job, ledger_with, run, stored, t0};
use crate::app::poll_status::PollConfig;
use crate::domain::settings::ServingMode;
use crate::ports::{JobStatus, RunLedger};
use crate::testing::fakes::{FixedClock, RecordingCallbacks, ScriptedBedrock};

const JOB_ARN: &str = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abc";

fn config() -> PollConfig {
    PollConfig {
        initial_wait_seconds: 60,
        max_wait_seconds: 900,
        max_job_duration_seconds: 3600,
        give_up_after_permanent_errors: 3,
    }
}

fn training_run() -> Run {
    let mut r = run(RunStatus::Training, ServingMode::None);
    r.job_name = Some("distill-support-chats-0123456789abcdef0123".into());
    r
}

fn event(status: &str) -> JobStateChange {
    JobStateChange::from_json(&json!({
        "id": format!("ev-{status}"),
        "source": "aws.bedrock",
        "detail-type": "Model Customization Job State Change",
        "detail": {
            "jobName": "distill-support-chats-0123456789abcdef0123",
            "jobArn": JOB_ARN,
            "jobStatus": status,
            "outputModelArn": "arn:aws:bedrock:us-east-1:123456789012:custom-model/m1",
            "outputModelName": "support-chats-distilled-0123456789abcdef0123",
            "failureMessage": if status == "Failed" { json!("the teacher refused 40% of prompts") } else { json!(null) },
        }
    }))
    .unwrap()
}

fn await_input(token: &str) -> AwaitJobInput {
    AwaitJobInput {
        run_id: training_run().run_id,
        task_token: token.into(),
    }
}

struct World {
    ledger: crate::testing::memory::InMemoryRunLedger,
    bedrock: ScriptedBedrock,
    clock: FixedClock,
    callbacks: RecordingCallbacks,
}

impl World {
    async fn new(bedrock_answers: Vec<JobState>) -> World {
        World {
            ledger: ledger_with(training_run()).await,
            bedrock: ScriptedBedrock::with_jobs(bedrock_answers),
            clock: FixedClock::at(t0() + chrono::Duration::minutes(5)),
            callbacks: RecordingCallbacks::default(),
        }
    }

    fn tracker(&self) -> JobTracker<'_> {
        JobTracker {
            poller: StatusPoller {
                ledger: &self.ledger,
                bedrock: &self.bedrock,
                clock: &self.clock,
                config: config(),
            },
            callbacks: &self.callbacks,
        }
    }

    async fn run(&self) -> Run {
        stored(&self.ledger, &training_run().run_id).await
    }
}

#[tokio::test]
async fn the_first_wait_records_its_token_without_asking_bedrock_and_the_end_event_answers_it() {
    let w = World::new(vec![]).await;
    let t = w.tracker();
    let out = t.await_job(&await_input("token-1")).await.unwrap();
    assert_eq!(
        (out.action.as_str(), out.entry, out.fallback_poll),
        ("waiting", 1, false)
    );
    assert_eq!(w.bedrock.count("get_job"), 0, "no poll on the first entry");
    assert_eq!(w.run().await.job_wait.unwrap().task_token, "token-1");

    let e = t.on_event(&event("Completed")).await.unwrap();
    assert_eq!(e.action, "recorded");
    assert_eq!(e.task.as_deref(), Some("delivered"));
    let r = w.run().await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        r.custom_model_arn.as_deref(),
        Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/m1")
    );
    let sent = w.callbacks.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "token-1");
    assert_eq!(sent[0].1["outcome"], "completed");
    assert_eq!(sent[0].1["terminal"], true);
    assert_eq!(sent[0].1["serving"], "none");
    assert_eq!(w.bedrock.count("get_job"), 0, "the event alone decided");
}

#[tokio::test]
async fn a_failed_job_is_sent_as_data_with_bedrocks_message() {
    let w = World::new(vec![]).await;
    let t = w.tracker();
    t.await_job(&await_input("token-1")).await.unwrap();
    t.on_event(&event("Failed")).await.unwrap();
    let r = w.run().await;
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(
        r.failure_reason.as_deref(),
        Some("the teacher refused 40% of prompts")
    );
    let sent = w.callbacks.sent();
    assert_eq!(sent[0].1["outcome"], "failed");
    assert_eq!(
        sent[0].1["failureMessage"],
        "the teacher refused 40% of prompts"
    );
}

#[tokio::test]
async fn an_event_before_the_wait_is_answered_when_the_wait_begins() {
    let w = World::new(vec![]).await;
    let t = w.tracker();
    let e = t.on_event(&event("Stopped")).await.unwrap();
    assert_eq!(e.task.as_deref(), Some("no_wait"));
    assert!(w.callbacks.sent().is_empty());
    let out = t.await_job(&await_input("token-late")).await.unwrap();
    assert_eq!(out.action, "answered");
    assert_eq!(out.outcome, Some(PollOutcome::Stopped));
    let sent = w.callbacks.sent();
    assert_eq!(
        (sent[0].0.as_str(), sent[0].1["outcome"].as_str()),
        ("token-late", Some("stopped"))
    );
}

#[tokio::test]
async fn duplicate_late_and_out_of_order_events_change_nothing() {
    let w = World::new(vec![]).await;
    let t = w.tracker();
    t.await_job(&await_input("token-1")).await.unwrap();
    t.on_event(&event("InProgress")).await.unwrap();
    assert!(w.callbacks.sent().is_empty(), "InProgress ends nothing");
    t.on_event(&event("Completed")).await.unwrap();
    let after_end = w.run().await;
    w.callbacks.close("token-1");

    for late in ["Completed", "InProgress", "Failed", "Stopped"] {
        let e = t.on_event(&event(late)).await.unwrap();
        assert_eq!(e.action, "unchanged", "{late}");
        assert_eq!(e.outcome, Some(PollOutcome::Completed), "{late}");
        assert_eq!(e.task.as_deref(), Some("closed"), "{late}");
    }
    let r = w.run().await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        r.history, after_end.history,
        "no history entry from late events"
    );
    assert_eq!(r.updated_at, after_end.updated_at);
}

#[tokio::test]
async fn a_wait_that_timed_out_polls_once_then_waits_again_with_a_new_token() {
    let w = World::new(vec![
        job(JobStatus::InProgress, "Completed", "InProgress", ""),
        job(JobStatus::Completed, "Completed", "Completed", "Completed"),
    ])
    .await;
    let t = w.tracker();
    t.await_job(&await_input("token-1")).await.unwrap();
    // The wait ran out with no event: the state machine enters it again.
    let out = t.await_job(&await_input("token-2")).await.unwrap();
    assert_eq!(
        (out.action.as_str(), out.entry, out.fallback_poll),
        ("waiting", 2, true)
    );
    assert_eq!(w.bedrock.count("get_job"), 1);
    let r = w.run().await;
    assert_eq!(r.job_wait.as_ref().unwrap().task_token, "token-2");
    assert_eq!(
        r.training_detail.unwrap().data_processing.as_deref(),
        Some("InProgress"),
        "the fallback poll records progress as a poll does"
    );
    // The event was lost again; the next fallback poll finds the job done and answers at once.
    let out = t.await_job(&await_input("token-3")).await.unwrap();
    assert_eq!(
        (out.action.as_str(), out.outcome),
        ("answered", Some(PollOutcome::Completed))
    );
    assert_eq!(w.run().await.status, RunStatus::Completed);
    assert_eq!(w.callbacks.sent()[0].0, "token-3");
}

#[tokio::test]
async fn the_maximum_duration_is_enforced_by_the_fallback_poll() {
    let w = World::new(vec![job(
        JobStatus::InProgress,
        "Completed",
        "Completed",
        "InProgress",
    )])
    .await;
    let t = w.tracker();
    t.await_job(&await_input("token-1")).await.unwrap();
    w.clock.set(t0() + chrono::Duration::hours(2));
    let out = t.await_job(&await_input("token-2")).await.unwrap();
    assert_eq!(out.outcome, Some(PollOutcome::TimedOut));
    assert_eq!(w.bedrock.count("stop_job"), 1);
    let r = w.run().await;
    assert_eq!(r.status, RunStatus::Stopped);
    assert!(r
        .failure_reason
        .unwrap()
        .contains("MAX_JOB_DURATION_SECONDS=3600"));
    assert_eq!(w.callbacks.sent()[0].1["outcome"], "timed_out");
}

#[tokio::test]
async fn events_for_other_jobs_are_ignored_and_a_bad_token_is_refused() {
    let w = World::new(vec![]).await;
    let t = w.tracker();
    let mut foreign = event("Completed");
    foreign.detail.job_name = "someone-elses-job".into();
    assert_eq!(t.on_event(&foreign).await.unwrap().action, "ignored");
    let mut other_arn = event("Completed");
    other_arn.detail.job_arn = format!("{JOB_ARN}-other");
    assert_eq!(t.on_event(&other_arn).await.unwrap().action, "ignored");
    let mut unknown = event("Completed");
    unknown.detail.job_status = "Paused".into();
    assert_eq!(t.on_event(&unknown).await.unwrap().action, "ignored");
    assert_eq!(w.run().await.status, RunStatus::Training);

    let e = t.await_job(&await_input(" ")).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::InvalidInput);
}

#[tokio::test]
async fn an_event_that_beats_the_launchers_write_asks_for_a_redelivery() {
    let w = World::new(vec![]).await;
    let mut launching = training_run();
    launching.run_id = RunId("run-aaaaaaaaaaaaaaaaaaaa".into());
    launching.status = RunStatus::Launching;
    launching.job_arn = None;
    w.ledger.create(&launching).await.unwrap();
    let mut e = event("Completed");
    e.detail.job_name = "distill-x-aaaaaaaaaaaaaaaaaaaa".into();
    let err = w.tracker().on_event(&e).await.unwrap_err();
    assert_eq!(err.error_type, ErrorType::Transient);
}

#[tokio::test]
async fn a_wait_on_a_run_without_a_job_is_a_conflict() {
    let w = World::new(vec![]).await;
    let mut validated = training_run();
    validated.run_id = RunId("run-bbbbbbbbbbbbbbbbbbbb".into());
    validated.status = RunStatus::Validated;
    validated.job_arn = None;
    w.ledger.create(&validated).await.unwrap();
    let err = w
        .tracker()
        .await_job(&AwaitJobInput {
            run_id: validated.run_id,
            task_token: "t".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::Conflict);
}

/// The in-memory ledger, except that the next `conflicts` updates lose a race (as the DynamoDB
/// adapter reports a run that kept changing under its attempts).
struct ContendedLedger {
    inner: crate::testing::memory::InMemoryRunLedger,
    conflicts: std::sync::Mutex<u32>,
}

#[async_trait::async_trait]
impl RunLedger for ContendedLedger {
    async fn create(&self, run: &Run) -> Result<crate::ports::CreateOutcome, PortError> {
        self.inner.create(run).await
    }
    async fn get(&self, run_id: &RunId) -> Result<Option<Run>, PortError> {
        self.inner.get(run_id).await
    }
    async fn update(
        &self,
        run_id: &RunId,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<Run, PortError> {
        {
            let mut left = self.conflicts.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                return Err(PortError::Conflict(format!(
                    "run {run_id} kept changing under 10 update attempts"
                )));
            }
        }
        self.inner.update(run_id, expected, update).await
    }
    async fn list_recent(&self, limit: usize) -> Result<Vec<Run>, PortError> {
        self.inner.list_recent(limit).await
    }
    async fn list_by_status(&self, status: RunStatus, limit: usize) -> Result<Vec<Run>, PortError> {
        self.inner.list_by_status(status, limit).await
    }
}

#[tokio::test]
async fn a_write_that_keeps_losing_races_while_training_is_retried_never_a_failure() {
    let ledger = ContendedLedger {
        inner: ledger_with(training_run()).await,
        conflicts: std::sync::Mutex::new(1),
    };
    let bedrock = ScriptedBedrock::with_jobs(vec![]);
    let clock = FixedClock::at(t0() + chrono::Duration::minutes(5));
    let callbacks = RecordingCallbacks::default();
    let tracker = JobTracker {
        poller: StatusPoller {
            ledger: &ledger,
            bedrock: &bedrock,
            clock: &clock,
            config: config(),
        },
        callbacks: &callbacks,
    };
    // The wait's token write loses: Transient (the step retries), not Conflict (the failure path).
    let e = tracker
        .await_job(&await_input("token-1"))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Transient, "{}", e.message);
    tracker.await_job(&await_input("token-2")).await.unwrap();

    // The end event's write loses: the delivery fails so EventBridge delivers it again.
    *ledger.conflicts.lock().unwrap() = 1;
    let e = tracker.on_event(&event("Completed")).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Transient, "{}", e.message);
    assert!(callbacks.sent().is_empty());
    let again = tracker.on_event(&event("Completed")).await.unwrap();
    assert_eq!(again.task.as_deref(), Some("delivered"));
    assert_eq!(callbacks.sent()[0].0, "token-2");
}

#[tokio::test]
async fn a_completed_event_without_the_model_asks_bedrock_once() {
    let mut done = job(JobStatus::Completed, "Completed", "Completed", "Completed");
    done.output_model_arn =
        Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/from-get".into());
    let w = World::new(vec![done]).await;
    let t = w.tracker();
    t.await_job(&await_input("token-1")).await.unwrap();
    let mut bare = event("Completed");
    bare.detail.output_model_arn = None;
    bare.detail.output_model_name = None;
    t.on_event(&bare).await.unwrap();
    assert_eq!(w.bedrock.count("get_job"), 1);
    let r = w.run().await;
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(
        r.custom_model_arn.as_deref(),
        Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/from-get")
    );
}

#[tokio::test]
async fn stopping_then_stopped_while_training_records_only_the_end() {
    let w = World::new(vec![]).await;
    let t = w.tracker();
    t.await_job(&await_input("token-1")).await.unwrap();
    let before = w.run().await;
    let e = t.on_event(&event("Stopping")).await.unwrap();
    assert_eq!(
        (e.action.as_str(), e.outcome),
        ("unchanged", Some(PollOutcome::Running))
    );
    assert_eq!(w.run().await.history, before.history);
    assert!(w.callbacks.sent().is_empty());
    let e = t.on_event(&event("Stopped")).await.unwrap();
    assert_eq!(e.action, "recorded");
    assert_eq!(w.run().await.status, RunStatus::Stopped);
    assert_eq!(w.callbacks.sent()[0].1["outcome"], "stopped");
}
