use super::*;
use crate::domain::errors::ErrorType;
use crate::domain::messages::RenderedMessage;
use crate::domain::run::{DatasetLocation, RunSource, ValidationSummary};
use crate::domain::settings::{Commitment, RunSettings, ServingMode};
use crate::ports::CreateOutcome;
use crate::ports::{ChatWebhook, OutboundMessage};
use crate::testing::fakes::FixedClock;
use crate::testing::memory::InMemoryRunLedger;
use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const URL: &str = "https://hooks.slack.com/services/T0/B0/SECRETTOKEN";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

/// The in-memory ledger (the real rules: see `testing::ledger_contract`) with a hook to simulate
/// another writer changing the run just before our next update, and a count of our updates.
#[derive(Default)]
struct RacyLedger {
    inner: InMemoryRunLedger,
    race_to: Mutex<Option<RunStatus>>,
    updates: AtomicUsize,
}

#[async_trait]
impl RunLedger for RacyLedger {
    async fn create(&self, run: &Run) -> Result<CreateOutcome, PortError> {
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
        self.updates.fetch_add(1, Ordering::SeqCst);
        let race = self.race_to.lock().unwrap().take();
        if let Some(to) = race {
            self.inner.update(run_id, &[], &RunUpdate::to(to)).await?;
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

#[derive(Default)]
struct FakePublisher {
    sent: Mutex<Vec<OutboundMessage>>,
    calls: AtomicUsize,
    /// Errors returned by the next calls, in order.
    failures: Mutex<Vec<PortError>>,
}

#[async_trait]
impl MessagePublisher for FakePublisher {
    async fn publish(&self, msg: &OutboundMessage) -> Result<String, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut f = self.failures.lock().unwrap();
        if !f.is_empty() {
            return Err(f.remove(0));
        }
        self.sent.lock().unwrap().push(msg.clone());
        Ok(format!("msg-{}", self.sent.lock().unwrap().len()))
    }
}

#[derive(Default)]
struct FakeSecrets {
    calls: AtomicUsize,
    /// The secret's string when set; the webhook URL otherwise.
    value: Mutex<Option<String>>,
}

#[async_trait]
impl SecretSource for FakeSecrets {
    async fn secret_string(&self, _: &str) -> Result<String, PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(self
            .value
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| URL.to_string()))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ok,
    ServerError,
    BadRequest,
    Hang,
}

struct FakeWebhook {
    mode: Mutex<Mode>,
    posted: Mutex<Vec<RenderedMessage>>,
    calls: AtomicUsize,
}

#[async_trait]
impl ChatWebhook for FakeWebhook {
    async fn post(&self, message: &RenderedMessage) -> Result<(), PortError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            Mode::Ok => {
                self.posted.lock().unwrap().push(message.clone());
                Ok(())
            }
            // An adapter that forgot to redact: the use case must scrub the URL anyway.
            Mode::ServerError => Err(PortError::Transient(format!("HTTP 500 from {URL}"))),
            Mode::BadRequest => Err(PortError::Validation("HTTP 400: invalid_payload".into())),
            // What the webhook adapter answers when its POST timeout (the fixture's 50 ms) fires:
            // the timeout itself is the adapter's, tested in distillery-aws against a hanging sink.
            Mode::Hang => Err(PortError::Transient(
                "Slack webhook timed out after 50 ms".into(),
            )),
        }
    }
}

struct Fixture {
    ledger: Arc<RacyLedger>,
    publisher: Arc<FakePublisher>,
    secrets: Arc<FakeSecrets>,
    webhook: Arc<FakeWebhook>,
    clock: Arc<FixedClock>,
    notifier: Notifier,
}

fn config(slack: bool) -> NotifyConfig {
    NotifyConfig {
        region: "us-east-1".into(),
        slack: slack.then(|| SlackConfig {
            secret_id: "arn:aws:secretsmanager:us-east-1:1:secret:slack".into(),
            timeout: Duration::from_millis(50),
            max_attempts: 3,
            url_cache_ttl: SLACK_URL_CACHE_TTL,
            allow_any_url_for_tests: false,
        }),
        retry_base_delay: Duration::from_millis(1),
    }
}

fn fixture(slack: bool) -> Fixture {
    let ledger = Arc::new(RacyLedger::default());
    let publisher = Arc::new(FakePublisher::default());
    let secrets = Arc::new(FakeSecrets::default());
    let webhook = Arc::new(FakeWebhook {
        mode: Mutex::new(Mode::Ok),
        posted: Mutex::new(vec![]),
        calls: AtomicUsize::new(0),
    });
    let w = webhook.clone();
    let factory: WebhookFactory = Arc::new(move |url, _timeout| {
        assert_eq!(url, URL);
        Ok(w.clone() as Arc<dyn ChatWebhook>)
    });
    let clock = Arc::new(FixedClock::at(now()));
    let notifier = Notifier::new(
        ledger.clone(),
        publisher.clone(),
        secrets.clone(),
        factory,
        clock.clone(),
        Prices::builtin(),
        config(slack),
    );
    Fixture {
        ledger,
        publisher,
        secrets,
        webhook,
        clock,
        notifier,
    }
}

fn seed(f: &Fixture, status: RunStatus) -> RunId {
    seed_serving(f, status, ServingMode::Provisioned)
}

fn seed_serving(f: &Fixture, status: RunStatus, serving: ServingMode) -> RunId {
    seed_run(f, status, serving, None)
}

/// A run in `status`, owned by `owner` (an execution id) when given.
fn seed_run(f: &Fixture, status: RunStatus, serving: ServingMode, owner: Option<&str>) -> RunId {
    let id = RunId("run-00000000000000000001".into());
    let mut run = Run::new(
        id.clone(),
        RunSource::S3Upload,
        DatasetLocation::S3Object {
            bucket: "bkt".into(),
            key: "incoming/chats.jsonl".into(),
            etag: "e".into(),
            version_id: None,
            size: 10,
        },
        RunSettings {
            teacher: "amazon.nova-pro-v1:0".into(),
            student: "amazon.nova-lite-v1:0:300k".into(),
            max_response_length: 1000,
            serving,
            model_units: 1,
            commitment: Commitment::None,
        },
        now(),
    );
    run.status = status;
    run.owner_execution = owner.map(str::to_string);
    run.job_name = Some("distill-chats-1".into());
    run.job_arn = Some("arn:aws:bedrock:us-east-1:1:model-customization-job/x/y".into());
    run.validation = Some(ValidationSummary {
        valid: true,
        records: 321,
        ..Default::default()
    });
    let created = futures::executor::block_on(f.ledger.inner.create(&run)).unwrap();
    assert!(matches!(created, CreateOutcome::Created(_)));
    id
}

fn input(id: Option<&RunId>, milestone: &str) -> NotifyInput {
    NotifyInput {
        run_id: id.map(|i| i.to_string()),
        milestone: milestone.into(),
        error: None,
        input: None,
        execution: None,
    }
}

/// Records the job's completion, as the poller does before the state machine announces it.
fn complete(f: &Fixture, id: &RunId) {
    futures::executor::block_on(f.ledger.inner.update(
        id,
        &[RunStatus::Training],
        &RunUpdate::to(RunStatus::Completed),
    ))
    .unwrap();
}

fn run_of(f: &Fixture, id: &RunId) -> Run {
    futures::executor::block_on(f.ledger.inner.get(id))
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn launched_goes_to_sns_and_slack_and_both_deliveries_are_recorded() {
    let f = fixture(true);
    let id = seed(&f, RunStatus::Training);
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    assert_eq!(out.slack, ChannelOutcome::Delivered);
    assert_eq!(out.run_id.as_deref(), Some(id.as_str()));
    let sent = f.publisher.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].attributes[ATTR_EVENT_TYPE], "launched");
    assert_eq!(sent[0].attributes[ATTR_RUN_ID], id.as_str());
    assert!(sent[0]
        .subject
        .starts_with("Distillery: Distillation launched - chats"));
    assert!(sent[0].body.contains("Job name: distill-chats-1"));
    let posted = f.webhook.posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 1);
    // The message's content reached the webhook (its Slack layout: distillery-aws slack_blocks).
    assert_eq!(posted[0].milestone, Milestone::Launched);
    assert_eq!(posted[0].content.run_id.as_deref(), Some(id.as_str()));
    let run = run_of(&f, &id);
    assert_eq!(
        run.status,
        RunStatus::Training,
        "a delivery never moves the run"
    );
    let d: Vec<(&str, bool)> = run
        .deliveries
        .iter()
        .map(|d| (d.channel.as_str(), d.delivered))
        .collect();
    assert_eq!(d, vec![("sns", true), ("slack", true)]);
    assert!(run.deliveries.iter().all(|d| d.milestone == "launched"));
}

#[tokio::test]
async fn a_retried_notify_does_not_post_twice_and_reads_the_secret_once() {
    let f = fixture(true);
    let id = seed(&f, RunStatus::Training);
    f.notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    let again = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(again.sns, ChannelOutcome::Delivered);
    assert_eq!(again.slack, ChannelOutcome::Delivered);
    assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 1);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 1);
    assert_eq!(run_of(&f, &id).deliveries.len(), 2);
    // Another milestone is a new message, but the webhook secret is not read again.
    complete(&f, &id);
    f.notifier
        .handle(input(Some(&id), "completed"))
        .await
        .unwrap();
    assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 2);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 2);
    assert_eq!(f.secrets.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn slack_down_is_retried_then_recorded_without_failing_the_step() {
    let f = fixture(true);
    let id = seed(&f, RunStatus::Training);
    *f.webhook.mode.lock().unwrap() = Mode::ServerError;
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    assert_eq!(out.slack, ChannelOutcome::Failed);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 3);
    let run = run_of(&f, &id);
    let slack = run
        .deliveries
        .iter()
        .find(|d| d.channel == "slack")
        .unwrap();
    assert!(!slack.delivered);
    let detail = slack.detail.clone().unwrap();
    assert!(detail.contains("failed after 3 attempt(s)"), "{detail}");
    assert!(!detail.contains("SECRETTOKEN"), "{detail}");

    // Slack is back: the retried step posts the missing Slack message only.
    *f.webhook.mode.lock().unwrap() = Mode::Ok;
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.slack, ChannelOutcome::Delivered);
    assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 1);
    assert_eq!(f.webhook.posted.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn slack_4xx_is_not_retried_and_a_hang_times_out() {
    let f = fixture(true);
    let id = seed(&f, RunStatus::Training);
    *f.webhook.mode.lock().unwrap() = Mode::BadRequest;
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.slack, ChannelOutcome::Failed);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 1);

    *f.webhook.mode.lock().unwrap() = Mode::Hang;
    complete(&f, &id);
    let started = std::time::Instant::now();
    let out = f
        .notifier
        .handle(input(Some(&id), "completed"))
        .await
        .unwrap();
    assert_eq!(out.slack, ChannelOutcome::Failed);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 4);
    assert!(started.elapsed() < Duration::from_secs(5));
    let run = run_of(&f, &id);
    let last = run.deliveries.last().unwrap();
    assert!(last
        .detail
        .as_deref()
        .unwrap()
        .contains("timed out after 50 ms"));
}

/// Log lines written while the guard lives (this thread only: the tests run on one thread).
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn start(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || logs.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn an_empty_slack_secret_means_slack_is_off_not_failing() {
    for empty in ["", "  \n\t"] {
        let logs = CapturedLogs::default();
        let _guard = logs.start();
        let f = fixture(true);
        *f.secrets.value.lock().unwrap() = Some(empty.to_string());
        let id = seed(&f, RunStatus::Training);
        for milestone in ["launched", "completed"] {
            if milestone == "completed" {
                complete(&f, &id);
            }
            let out = f
                .notifier
                .handle(input(Some(&id), milestone))
                .await
                .unwrap();
            assert_eq!(out.sns, ChannelOutcome::Delivered);
            assert_eq!(out.slack, ChannelOutcome::Disabled, "{empty:?} {milestone}");
        }
        // Without a run, too.
        let mut no_run = input(None, "failed");
        no_run.error = Some(CaughtError::default());
        let out = f.notifier.handle(no_run).await.unwrap();
        assert_eq!(out.slack, ChannelOutcome::Disabled);
        // Nothing posted, no Slack delivery record (so no failure), the secret read once.
        assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 0);
        let run = run_of(&f, &id);
        assert!(
            run.deliveries
                .iter()
                .all(|d| d.channel == "sns" && d.delivered),
            "{:?}",
            run.deliveries
        );
        assert_eq!(run.deliveries.len(), 2);
        assert_eq!(f.secrets.calls.load(Ordering::SeqCst), 1);
        // Said once, at info level, never as a warning.
        let text = logs.text();
        let said: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Slack webhook secret is empty"))
            .collect();
        assert_eq!(said.len(), 1, "{text}");
        assert!(said[0].contains("INFO"), "{}", said[0]);
        assert!(
            !text
                .lines()
                .any(|l| l.contains("WARN") && l.contains("Slack")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_secret_that_is_not_a_url_is_still_a_delivery_failure() {
    let f = fixture(true);
    *f.secrets.value.lock().unwrap() = Some("not-a-url".into());
    let id = seed(&f, RunStatus::Training);
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.slack, ChannelOutcome::Failed);
    let run = run_of(&f, &id);
    let slack = run
        .deliveries
        .iter()
        .find(|d| d.channel == "slack")
        .unwrap();
    assert!(!slack.delivered);
    assert!(slack
        .detail
        .as_deref()
        .unwrap()
        .contains("does not hold an http(s) URL"));
}

/// SNS retries are the SDK client's (distillery-aws `sns` tests: throttled, then 503, then
/// delivered, in one `publish`); the use case publishes once and records what came back.
#[tokio::test]
async fn sns_failures_are_recorded_once_not_retried_on_top_of_the_sdk() {
    let f = fixture(false);
    let id = seed(&f, RunStatus::Training);
    *f.publisher.failures.lock().unwrap() = vec![PortError::Throttled("slow".into())];
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Failed);
    assert_eq!(out.slack, ChannelOutcome::Disabled);
    assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 1);

    *f.publisher.failures.lock().unwrap() = vec![PortError::AccessDenied("no sns:Publish".into())];
    complete(&f, &id);
    let out = f
        .notifier
        .handle(input(Some(&id), "completed"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Failed);
    assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 2);
    let run = run_of(&f, &id);
    let last = run.deliveries.last().unwrap();
    assert_eq!((last.channel.as_str(), last.delivered), ("sns", false));
    assert!(last.detail.as_deref().unwrap().contains("no sns:Publish"));
    // Slack disabled: no Slack record at all.
    assert!(run.deliveries.iter().all(|d| d.channel == "sns"));
    // A later notification of the failed milestone is sent again (the failure is on record).
    let out = f
        .notifier
        .handle(input(Some(&id), "completed"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
}

#[tokio::test]
async fn a_caught_error_is_recorded_on_the_run_before_delivery() {
    let f = fixture(false);
    // The launcher failed before Bedrock had a job.
    let id = seed(&f, RunStatus::Launching);
    let mut i = input(Some(&id), "failed");
    i.error = Some(CaughtError {
        error: "Internal".into(),
        cause: r#"{"errorType":"Internal","errorMessage":"poller exploded"}"#.into(),
    });
    let out = f.notifier.handle(i.clone()).await.unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    let run = run_of(&f, &id);
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.failure_reason.as_deref(),
        Some("Internal: poller exploded")
    );
    assert_eq!(run.finished_at, Some(now()));
    assert!(f.publisher.sent.lock().unwrap()[0]
        .body
        .contains("Reason: Internal: poller exploded"));

    // Already terminal: the recorded reason stays as it was.
    i.error = Some(CaughtError {
        error: "Other".into(),
        cause: "later".into(),
    });
    f.notifier.handle(i).await.unwrap();
    let run = run_of(&f, &id);
    assert_eq!(
        run.failure_reason.as_deref(),
        Some("Internal: poller exploded")
    );
    assert_eq!(
        f.publisher.calls.load(Ordering::SeqCst),
        1,
        "same milestone, no repost"
    );
}

#[tokio::test]
async fn provisioning_failure_moves_to_provisioning_failed() {
    let f = fixture(false);
    let id = seed(&f, RunStatus::Provisioning);
    let mut i = input(Some(&id), "provisioning_failed");
    i.error = Some(CaughtError {
        error: "GuardrailViolation".into(),
        cause: "too many model units".into(),
    });
    f.notifier.handle(i).await.unwrap();
    let run = run_of(&f, &id);
    assert_eq!(run.status, RunStatus::ProvisioningFailed);
    // From Completed too: the provisioner failed before it moved the run.
    let f = fixture(false);
    let id = seed(&f, RunStatus::Completed);
    let mut i = input(Some(&id), "provisioning_failed");
    i.error = Some(CaughtError::default());
    f.notifier.handle(i).await.unwrap();
    assert_eq!(run_of(&f, &id).status, RunStatus::ProvisioningFailed);
}

#[tokio::test]
async fn a_concurrent_status_change_is_re_read_and_the_delivery_still_recorded() {
    let f = fixture(false);
    let id = seed(&f, RunStatus::Training);
    *f.ledger.race_to.lock().unwrap() = Some(RunStatus::Completed);
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    let run = run_of(&f, &id);
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.deliveries.len(), 1);
    assert_eq!(f.ledger.updates.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn missing_or_unknown_run_id_still_publishes_a_generic_failure() {
    let f = fixture(true);
    let mut i = input(None, "failed");
    i.error = Some(CaughtError {
        error: "States.TaskFailed".into(),
        cause: "validator crashed".into(),
    });
    i.input = Some(
        serde_json::json!({"source": "distillery.cli", "bucket": "b", "key": "incoming/x.jsonl"}),
    );
    let out = f.notifier.handle(i).await.unwrap();
    assert_eq!(out.run_id, None);
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    assert_eq!(out.slack, ChannelOutcome::Delivered);
    let sent = f.publisher.sent.lock().unwrap()[0].clone();
    assert_eq!(sent.attributes[ATTR_RUN_ID], NO_RUN_ID);
    assert!(sent.body.contains("Input: s3://b/incoming/x.jsonl"));
    // The error's type and a generic reason; its own text stays in the execution history.
    assert!(
        sent.body
            .contains("Error: States.TaskFailed: the state machine could not run the step"),
        "{}",
        sent.body
    );
    assert!(!sent.body.contains("validator crashed"), "{}", sent.body);
    assert_eq!(f.ledger.updates.load(Ordering::SeqCst), 0);

    // A run id the ledger doesn't know is stray input: nothing is broadcast about it.
    let err = f
        .notifier
        .handle(input(Some(&RunId("run-unknown".into())), "failed"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::NotFound);
    assert!(
        err.message.contains("run-unknown is not in the ledger"),
        "{}",
        err.message
    );
    // Without a run, only a caught error may be announced.
    for milestone in ["completed", "failed", "ready"] {
        let err = f.notifier.handle(input(None, milestone)).await.unwrap_err();
        assert_eq!(err.error_type, ErrorType::InvalidInput, "{milestone}");
        assert!(
            err.message.contains("'runId' is required"),
            "{}",
            err.message
        );
    }
    assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 1);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 1);
}

/// A milestone the ledger contradicts is refused and nothing is sent or recorded, for every final
/// status and every milestone (with or without a caught error): the stray input of issue 10.
#[tokio::test]
async fn a_milestone_the_ledger_contradicts_is_refused_and_nothing_is_sent() {
    let finals = RunStatus::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .chain([RunStatus::Completed]);
    for status in finals {
        for milestone in Milestone::ALL {
            if milestone.announces().contains(&status) {
                continue;
            }
            for caught in [None, Some(CaughtError::default())] {
                let f = fixture(true);
                // Completed is final only when no serving was requested.
                let id = seed_serving(&f, status, ServingMode::None);
                let before = run_of(&f, &id);
                assert!(before.is_final(), "{status}");
                let mut i = input(Some(&id), milestone.as_str());
                i.error = caught.clone();
                let err = f.notifier.handle(i).await.unwrap_err();
                let error_milestone =
                    matches!(milestone, Milestone::Failed | Milestone::ProvisioningFailed);
                if caught.is_some() && !error_milestone {
                    // A caught error comes only with a failure milestone.
                    assert_eq!(
                        err.error_type,
                        ErrorType::InvalidInput,
                        "{status} {milestone}"
                    );
                } else {
                    assert_eq!(err.error_type, ErrorType::Conflict, "{status} {milestone}");
                    assert!(
                        err.message.contains(&format!("is {status} (final: "))
                            && err
                                .message
                                .contains(&format!("cannot announce '{milestone}'")),
                        "{}",
                        err.message
                    );
                }
                assert_eq!(
                    run_of(&f, &id),
                    before,
                    "{status} {milestone}: ledger unchanged"
                );
                assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 0);
                assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 0);
            }
        }
    }
}

/// A caught error never ends a run whose job is live in Bedrock (only the poller or the reconciler
/// records a job's true outcome), nor a run another execution owns; a provisioning error never
/// fails a run that isn't being served. Nothing is written or sent for any of them.
#[tokio::test]
async fn a_caught_error_never_ends_a_live_job_or_another_executions_run() {
    let owner = "arn:aws:states:us-east-1:1:execution:distillery:owner";
    let cases: [(RunStatus, &str, Option<&str>, &str); 5] = [
        (
            RunStatus::Training,
            "failed",
            Some(owner),
            "is live in Bedrock",
        ),
        (
            RunStatus::Training,
            "provisioning_failed",
            Some(owner),
            "cannot record 'provisioning_failed'",
        ),
        (
            RunStatus::Validated,
            "provisioning_failed",
            Some(owner),
            "cannot record 'provisioning_failed'",
        ),
        (
            RunStatus::Provisioning,
            "failed",
            Some(owner),
            "cannot record 'failed'",
        ),
        (
            RunStatus::Launching,
            "failed",
            Some("arn:aws:states:us-east-1:1:execution:distillery:stray"),
            "only the execution that owns the run",
        ),
    ];
    for (status, milestone, execution, why) in cases {
        let f = fixture(true);
        let id = seed_run(&f, status, ServingMode::Provisioned, Some(owner));
        let before = run_of(&f, &id);
        let mut i = input(Some(&id), milestone);
        i.error = Some(CaughtError::default());
        i.execution = execution.map(str::to_string);
        let err = f.notifier.handle(i).await.unwrap_err();
        assert_eq!(err.error_type, ErrorType::Conflict, "{status} {milestone}");
        assert!(
            err.message.contains(why),
            "{status} {milestone}: {}",
            err.message
        );
        assert_eq!(
            run_of(&f, &id),
            before,
            "{status} {milestone}: ledger unchanged"
        );
        assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 0);
        assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 0);
    }
    // The owner's own caught error is recorded.
    let f = fixture(false);
    let id = seed_run(
        &f,
        RunStatus::Validated,
        ServingMode::Provisioned,
        Some(owner),
    );
    let mut i = input(Some(&id), "failed");
    i.error = Some(CaughtError::default());
    i.execution = Some(owner.to_string());
    f.notifier.handle(i).await.unwrap();
    assert_eq!(run_of(&f, &id).status, RunStatus::Failed);
}

/// A run that is still on its way (not final) can't be announced as something it isn't either.
#[tokio::test]
async fn a_milestone_ahead_of_the_ledger_is_refused() {
    let f = fixture(true);
    let id = seed(&f, RunStatus::Training);
    for milestone in ["completed", "ready", "rejected", "stopped"] {
        let err = f
            .notifier
            .handle(input(Some(&id), milestone))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, ErrorType::Conflict, "{milestone}");
        assert!(
            err.message.contains("is training; cannot announce"),
            "{}",
            err.message
        );
    }
    assert_eq!(f.publisher.calls.load(Ordering::SeqCst), 0);
    assert_eq!(run_of(&f, &id).status, RunStatus::Training);
}

#[tokio::test]
async fn an_unknown_milestone_is_an_invalid_input() {
    let f = fixture(false);
    let err = f
        .notifier
        .handle(input(None, "exploded"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, ErrorType::InvalidInput);
    assert!(err.message.contains("'milestone'"));
}

#[test]
fn config_reads_the_environment_contract() {
    let env: HashMap<&str, &str> = [
        ("AWS_REGION", "eu-west-1"),
        ("SLACK_SECRET_ARN", "arn:s"),
        ("SLACK_TIMEOUT_MS", "1500"),
        ("SLACK_MAX_ATTEMPTS", "5"),
    ]
    .into();
    let c = NotifyConfig::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
    assert_eq!(c.region, "eu-west-1");
    let s = c.slack.unwrap();
    assert_eq!(
        (s.timeout, s.max_attempts),
        (Duration::from_millis(1500), 5)
    );
    let c = NotifyConfig::from_lookup(|_| None).unwrap();
    assert!(c.slack.is_none());
    let err = NotifyConfig::from_lookup(|k| {
        (k == "SLACK_SECRET_ARN" || k == "SLACK_TIMEOUT_MS").then(|| "soon".to_string())
    })
    .unwrap_err();
    assert!(err.message.contains("SLACK_TIMEOUT_MS"));
}

#[test]
fn webhook_secret_forms_and_errors_without_the_value() {
    assert_eq!(
        webhook_url_from_secret(&format!(" {URL}\n"), false).unwrap(),
        URL
    );
    assert_eq!(
        webhook_url_from_secret(&format!(r#"{{"url":"{URL}"}}"#), false).unwrap(),
        URL
    );
    let e = webhook_url_from_secret("xoxb-SECRETTOKEN", false).unwrap_err();
    assert!(!e.to_string().contains("SECRETTOKEN"));
    let e = webhook_url_from_secret(r#"{"token":"SECRETTOKEN"}"#, false).unwrap_err();
    assert!(!e.to_string().contains("SECRETTOKEN"));
}

/// Issue 16: outside tests, only Slack's own webhook URLs; the error never shows the URL.
#[test]
fn only_slack_webhook_urls_are_accepted_unless_the_test_allowance_is_set() {
    assert_eq!(
        webhook_url_from_secret("HTTPS://Hooks.Slack.com/services/T/B/SECRETTOKEN", false).unwrap(),
        "HTTPS://Hooks.Slack.com/services/T/B/SECRETTOKEN"
    );
    for other in [
        "http://hooks.slack.com/services/T/B/SECRETTOKEN",
        "https://hooks.slack.com.example.net/services/T/B/SECRETTOKEN",
        "https://hooks.slack.com@example.net/services/T/B/SECRETTOKEN",
        "https://example.net/hooks.slack.com/SECRETTOKEN",
        "http://127.0.0.1:9/services/T/B/SECRETTOKEN",
        "https://hooks.slack.com",
    ] {
        let e = webhook_url_from_secret(other, false).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("only https://hooks.slack.com/... URLs are accepted"),
            "{other}: {text}"
        );
        assert!(
            !text.contains("SECRETTOKEN") && !text.contains("example.net"),
            "{text}"
        );
        // The local stack's sink: any http(s) URL, only with the explicit allowance.
        assert_eq!(webhook_url_from_secret(other, true).unwrap(), other);
    }
    // The allowance never accepts what is not a URL at all.
    assert!(webhook_url_from_secret("xoxb-SECRETTOKEN", true).is_err());
    // It is read from its own, unmistakable variable, off unless set.
    let read = |v: Option<&str>| {
        NotifyConfig::from_lookup(|k| match k {
            "SLACK_SECRET_ARN" => Some("arn:s".into()),
            "SLACK_ALLOW_ANY_URL_FOR_TESTS" => v.map(str::to_string),
            _ => None,
        })
        .unwrap()
        .slack
        .unwrap()
    };
    assert!(!read(None).allow_any_url_for_tests);
    assert!(read(Some("true")).allow_any_url_for_tests);
    assert_eq!(read(None).url_cache_ttl, Duration::from_secs(900));
}

/// A non-Slack URL in the secret: Slack is not delivered (recorded as failed, without the URL),
/// SNS still is.
#[tokio::test]
async fn a_secret_holding_another_url_fails_slack_without_showing_it() {
    let f = fixture(true);
    *f.secrets.value.lock().unwrap() = Some("https://collector.example.net/SECRETTOKEN".into());
    let id = seed(&f, RunStatus::Training);
    let out = f
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    assert_eq!(out.slack, ChannelOutcome::Failed);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 0);
    let run = run_of(&f, &id);
    let slack = run
        .deliveries
        .iter()
        .find(|d| d.channel == CHANNEL_SLACK)
        .unwrap();
    let detail = slack.detail.clone().unwrap_or_default();
    assert!(detail.contains("not a Slack incoming webhook"), "{detail}");
    assert!(
        !detail.contains("SECRETTOKEN") && !detail.contains("collector"),
        "{detail}"
    );
}

/// The URL is read once, kept for the cache's bound, then read again (a rotated webhook takes
/// effect without a new container).
#[tokio::test]
async fn the_webhook_url_is_read_again_after_the_cache_bound() {
    let f = fixture(true);
    // A failure with no run is announced every time (no delivery record to deduplicate on).
    let failure = || {
        let mut i = input(None, "failed");
        i.error = Some(CaughtError {
            error: "States.TaskFailed".into(),
            cause: String::new(),
        });
        i
    };
    f.notifier.handle(failure()).await.unwrap();
    f.clock.advance(chrono::Duration::minutes(14));
    f.notifier.handle(failure()).await.unwrap();
    assert_eq!(f.secrets.calls.load(Ordering::SeqCst), 1, "kept");
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 2);
    f.clock.advance(chrono::Duration::minutes(2));
    f.notifier.handle(failure()).await.unwrap();
    assert_eq!(f.secrets.calls.load(Ordering::SeqCst), 2, "read again");
    // An emptied secret turns Slack off once the bound has passed.
    *f.secrets.value.lock().unwrap() = Some(String::new());
    f.clock.advance(chrono::Duration::minutes(16));
    let out = f.notifier.handle(failure()).await.unwrap();
    assert_eq!(out.slack, ChannelOutcome::Disabled);
    assert_eq!(f.webhook.calls.load(Ordering::SeqCst), 3);
}

#[test]
fn sample_events_parse() {
    for (name, text) in [
        (
            "notify-launched.json",
            include_str!("../../../../../events/notify-launched.json"),
        ),
        (
            "notify-rejected.json",
            include_str!("../../../../../events/notify-rejected.json"),
        ),
        (
            "notify-failed-with-error.json",
            include_str!("../../../../../events/notify-failed-with-error.json"),
        ),
        (
            "notify-failed-no-run.json",
            include_str!("../../../../../events/notify-failed-no-run.json"),
        ),
        (
            "notify-completed.json",
            include_str!("../../../../../events/notify-completed.json"),
        ),
        (
            "notify-ready.json",
            include_str!("../../../../../events/notify-ready.json"),
        ),
        (
            "notify-provisioning-failed.json",
            include_str!("../../../../../events/notify-provisioning-failed.json"),
        ),
        (
            "notify-gate-failed.json",
            include_str!("../../../../../events/notify-gate-failed.json"),
        ),
        (
            "notify-skipped.json",
            include_str!("../../../../../events/notify-skipped.json"),
        ),
    ] {
        let i: NotifyInput = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(Milestone::parse(&i.milestone).is_some(), "{name}");
    }
    let o: NotifyOutput =
        serde_json::from_str(include_str!("../../../../../events/notify-output.json")).unwrap();
    assert_eq!(o.sns, ChannelOutcome::Delivered);
}

#[tokio::test]
async fn skipped_is_announced_for_a_skipped_run_and_refused_for_any_other() {
    let f = fixture(true);
    let id = seed(&f, RunStatus::Skipped);
    let out = f
        .notifier
        .handle(input(Some(&id), "skipped"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    let sent = f.publisher.sent.lock().unwrap().clone();
    assert_eq!(sent[0].attributes[ATTR_EVENT_TYPE], "skipped");
    assert!(
        sent[0]
            .subject
            .starts_with("Distillery: Retraining skipped"),
        "{}",
        sent[0].subject
    );
    assert_eq!(run_of(&f, &id).status, RunStatus::Skipped);

    let other = fixture(false);
    let id = seed(&other, RunStatus::Validated);
    let e = other
        .notifier
        .handle(input(Some(&id), "skipped"))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict, "{}", e.message);
    assert!(other.publisher.sent.lock().unwrap().is_empty());
}
