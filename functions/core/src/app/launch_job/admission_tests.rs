//! The launch queue on in-memory ports: slots, first in first out, waking, Bedrock's quota,
//! expiry, the sweep.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::domain::run::ValidationSummary;
use crate::domain::snapshot::{DatasetSnapshot, ObjectPin};
use crate::testing::fakes::{FixedClock, RecordingCallbacks, ScriptedBedrock};
use crate::testing::memory::{InMemoryDatasetStore, InMemoryRunLedger};
use crate::testing::sample_run;

struct Queue {
    svc: JobLauncherService,
    ledger: Arc<InMemoryRunLedger>,
    bedrock: Arc<ScriptedBedrock>,
    callbacks: Arc<RecordingCallbacks>,
    clock: Arc<FixedClock>,
    store: Arc<InMemoryDatasetStore>,
}

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap()
}

/// A launcher with `MAX_CONCURRENT_JOBS = max` (none when 0) and `MAX_QUEUE_HOURS = 2`.
fn queue(max: u32) -> Queue {
    let clock = Arc::new(FixedClock::at(t0()));
    let ledger = Arc::new(InMemoryRunLedger::with_clock(clock.clone()));
    let bedrock = Arc::new(ScriptedBedrock::default());
    let callbacks = Arc::new(RecordingCallbacks::default());
    let store = Arc::new(InMemoryDatasetStore::new());
    let config = LauncherConfig::from_lookup(|k| match k {
        "BEDROCK_ROLE_ARN" => Some("arn:aws:iam::1:role/bedrock".into()),
        "MAX_CONCURRENT_JOBS" => Some(max.to_string()),
        "MAX_QUEUE_HOURS" => Some("2".into()),
        _ => None,
    })
    .unwrap();
    Queue {
        svc: JobLauncherService {
            ledger: ledger.clone(),
            slots: ledger.clone(),
            callbacks: callbacks.clone(),
            bedrock: bedrock.clone(),
            store: store.clone(),
            clock: clock.clone(),
            config,
        },
        ledger,
        bedrock,
        callbacks,
        clock,
        store,
    }
}

impl Queue {
    /// A validated run with its snapshot in the store.
    async fn validated(&self, name: &str) -> RunId {
        self.validated_with(name, crate::domain::run::QueuePriority::Normal)
            .await
    }

    async fn validated_with(
        &self,
        name: &str,
        priority: crate::domain::run::QueuePriority,
    ) -> RunId {
        let mut run = sample_run(
            "data-bucket",
            &format!("incoming/{name}.jsonl"),
            "e",
            10,
            t0(),
        );
        run.status = RunStatus::Validated;
        run.validation = Some(ValidationSummary {
            valid: true,
            ..Default::default()
        });
        let key = format!("runs/{}/dataset.jsonl", run.run_id);
        let etag = self.store.insert("data-bucket", &key, "{}\n", &[]);
        run.snapshot = Some(DatasetSnapshot {
            uri: format!("s3://data-bucket/{key}"),
            bucket: "data-bucket".into(),
            key,
            size: 3,
            sha256: "00".repeat(32),
            etag: etag.trim_matches('"').to_string(),
            source: ObjectPin::IfMatch { etag: "e".into() },
        });
        run.priority = priority;
        self.ledger.create(&run).await.unwrap();
        run.run_id
    }

    async fn launch(&self, id: &RunId) -> LaunchJobOutput {
        self.svc
            .handle(LaunchJobInput::launch(id.clone()))
            .await
            .unwrap()
    }

    async fn run(&self, id: &RunId) -> Run {
        self.ledger.get(id).await.unwrap().unwrap()
    }

    async fn wait(&self, id: &RunId, token: &str) {
        self.svc
            .handle_action(LaunchJobInput {
                run_id: id.clone(),
                action: LauncherAction::AwaitSlot,
                task_token: Some(token.into()),
            })
            .await
            .unwrap();
    }

    async fn action(&self, id: &RunId, action: LauncherAction) -> serde_json::Value {
        self.svc
            .handle_action(LaunchJobInput {
                run_id: id.clone(),
                action,
                task_token: None,
            })
            .await
            .unwrap()
    }

    /// a launched (the one slot), then b and c queued in that order, both waiting (tokens
    /// `token-b`, `token-c`).
    async fn one_training_two_waiting(&self) -> (RunId, RunId, RunId) {
        let a = self.validated("a").await;
        let b = self.validated("b").await;
        let c = self.validated("c").await;
        self.launch(&a).await;
        self.launch(&b).await;
        self.clock.advance(Duration::seconds(1));
        self.launch(&c).await;
        self.wait(&b, "token-b").await;
        self.wait(&c, "token-c").await;
        (a, b, c)
    }

    /// The run's job ended (recorded by the poller), then the state machine's `FreeJobSlot`.
    async fn end_job(&self, id: &RunId) -> serde_json::Value {
        if self.run(id).await.status == RunStatus::Training {
            self.ledger
                .update(
                    id,
                    &[RunStatus::Training],
                    &RunUpdate::to(RunStatus::Completed).with_detail("job Completed"),
                )
                .await
                .unwrap();
        }
        self.action(id, LauncherAction::ReleaseSlot).await
    }

    fn woken(&self) -> Vec<String> {
        self.callbacks.sent().into_iter().map(|(t, _)| t).collect()
    }
}

#[tokio::test]
async fn runs_past_the_limit_wait_in_order_and_each_freed_slot_wakes_the_oldest() {
    let q = queue(2);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(q.validated(&format!("d{i}")).await);
        q.clock.advance(Duration::seconds(1));
    }
    let mut outcomes = Vec::new();
    for id in &ids {
        outcomes.push(q.launch(id).await);
        q.clock.advance(Duration::seconds(1));
    }
    let kinds: Vec<_> = outcomes.iter().map(|o| o.outcome).collect();
    use LaunchOutcome::*;
    assert_eq!(kinds, [Launched, Launched, Queued, Queued, Queued]);
    assert_eq!(
        outcomes[2..].iter().map(|o| o.position).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    assert_eq!(
        q.bedrock.count("create_job"),
        2,
        "never more jobs than slots"
    );
    let timeout = outcomes[4].queue_timeout_seconds.unwrap();
    assert!((7190..=7200).contains(&timeout), "{timeout}");
    for id in &ids[2..] {
        assert_eq!(q.run(id).await.status, RunStatus::Queued);
    }
    let reason = |r: Run| r.queue.unwrap().reason;
    assert!(reason(q.run(&ids[2]).await).contains("all 2 job slot(s) taken"));
    assert!(reason(q.run(&ids[3]).await).contains("ahead of it in the queue"));
    // The waits record their tokens; no slot is free, nobody is woken.
    for (i, id) in ids.iter().enumerate().skip(2) {
        q.wait(id, &format!("token-{i}")).await;
    }
    assert!(q.woken().is_empty());

    // The first job ends: its slot goes to the oldest waiting run, which then launches.
    q.end_job(&ids[0]).await;
    assert_eq!(q.woken(), ["token-2"]);
    // A newcomer arriving now cannot take a slot freed for an older run.
    let late = q.validated("late").await;
    assert_eq!(q.launch(&late).await.outcome, Queued);
    assert_eq!(q.launch(&ids[2]).await.outcome, Launched);
    assert_eq!(q.bedrock.count("create_job"), 3);

    q.end_job(&ids[1]).await;
    q.end_job(&ids[2]).await;
    assert_eq!(q.woken(), ["token-2", "token-3", "token-4"]);
    assert_eq!(q.launch(&ids[3]).await.outcome, Launched);
    assert_eq!(q.launch(&ids[4]).await.outcome, Launched);
    // A retried LaunchJob (the answer lost) neither creates again nor takes another slot.
    assert_eq!(q.launch(&ids[4]).await.outcome, Launched);
    assert_eq!(q.bedrock.count("create_job"), 5);
    assert_eq!(q.ledger.holders().await.unwrap().len(), 2);
    assert_eq!(q.run(&late).await.status, RunStatus::Queued);
    // Given slots in the order they joined the queue.
    let admitted: Vec<_> = {
        let mut v = Vec::new();
        for id in &ids[2..] {
            v.push(q.run(id).await.queue.unwrap().admitted_at.unwrap());
        }
        v
    };
    assert!(admitted.windows(2).all(|w| w[0] <= w[1]), "{admitted:?}");
}

#[tokio::test]
async fn a_run_given_a_slot_before_its_wait_began_wakes_itself_when_it_records_its_token() {
    let q = queue(1);
    let a = q.validated("a").await;
    let b = q.validated("b").await;
    assert_eq!(q.launch(&a).await.outcome, LaunchOutcome::Launched);
    assert_eq!(q.launch(&b).await.outcome, LaunchOutcome::Queued);
    // a's job ends before b's execution entered WaitForSlot.
    q.end_job(&a).await;
    assert!(q.woken().is_empty(), "no token yet");
    assert_eq!(q.ledger.holders().await.unwrap(), std::slice::from_ref(&b));
    q.wait(&b, "token-b").await;
    assert_eq!(q.woken(), ["token-b"]);
}

#[tokio::test]
async fn bedrocks_quota_queues_the_run_holds_it_back_and_frees_its_slot() {
    let q = queue(3);
    let a = q.validated("a").await;
    q.bedrock
        .fail_next_create(crate::ports::PortError::QuotaExceeded("jobs".into()));
    let out = q.launch(&a).await;
    assert_eq!(out.outcome, LaunchOutcome::Queued);
    assert!(
        q.ledger.holders().await.unwrap().is_empty(),
        "slot given back"
    );
    q.wait(&a, "token-a").await;
    assert!(
        q.woken().is_empty(),
        "held back: not offered a slot right after Bedrock refused"
    );
    // The wait's timeout is the hold, not MAX_QUEUE_HOURS: the run tries again when it ends.
    assert_eq!(out.queue_timeout_seconds, Some(600));
    q.clock
        .advance(Duration::seconds(super::admission::QUOTA_HOLD_SECONDS + 1));
    let out: LaunchJobOutput =
        serde_json::from_value(q.action(&a, LauncherAction::WaitTimedOut).await).unwrap();
    assert_eq!(out.outcome, LaunchOutcome::Launched);
    // The second attempt looked the job up under the recorded name before creating it.
    assert_eq!(q.bedrock.calls(), ["create_job", "get_job", "create_job"]);
    let run = q.run(&a).await;
    assert_eq!(run.status, RunStatus::Training);
    assert_eq!(run.queue.unwrap().quota_refusals, 1);
}

#[tokio::test]
async fn a_wait_that_times_out_expires_the_run_once_and_gives_its_place_on() {
    let q = queue(1);
    let (_, b, c) = q.one_training_two_waiting().await;
    q.clock.advance(Duration::hours(2));
    let out: LaunchJobOutput =
        serde_json::from_value(q.action(&b, LauncherAction::WaitTimedOut).await).unwrap();
    assert_eq!(out.outcome, LaunchOutcome::Expired);
    let run = q.run(&b).await;
    assert_eq!(run.status, RunStatus::Expired);
    assert!(run.failure_reason.unwrap().contains("MAX_QUEUE_HOURS = 2"));
    // A second expiry (a retried step) changes nothing.
    let again: LaunchJobOutput =
        serde_json::from_value(q.action(&b, LauncherAction::WaitTimedOut).await).unwrap();
    assert_eq!(again.outcome, LaunchOutcome::Expired);
    assert_eq!(
        q.run(&b).await.history.last().unwrap().to,
        RunStatus::Expired
    );
    assert_eq!(q.run(&b).await.history.len(), run.history.len());
    // LaunchJob for a run queued past the limit expires it too, rather than launching.
    assert_eq!(q.launch(&c).await.outcome, LaunchOutcome::Expired);
    assert_eq!(q.bedrock.count("create_job"), 1);
}

#[tokio::test]
async fn a_run_stopped_while_queued_never_launches_and_its_slot_goes_on() {
    let q = queue(1);
    let (a, b, c) = q.one_training_two_waiting().await;
    // `distillery runs stop` on b.
    q.ledger
        .update(
            &b,
            &[RunStatus::Queued],
            &RunUpdate::to(RunStatus::Stopped).with_detail("stopped by alice"),
        )
        .await
        .unwrap();
    // a's job ends: b holds the first place but is stopped, so c is next.
    q.end_job(&a).await;
    assert_eq!(q.woken(), ["token-c"]);
    let out = q.launch(&b).await;
    assert_eq!(out.outcome, LaunchOutcome::Stopped);
    assert_eq!(q.launch(&c).await.outcome, LaunchOutcome::Launched);
    assert_eq!(q.bedrock.count("create_job"), 2);
}

#[tokio::test]
async fn the_sweep_frees_slots_of_ended_runs_and_expires_waits_whose_execution_is_gone() {
    let q = queue(2);
    let a = q.validated("a").await;
    let b = q.validated("b").await;
    let c = q.validated("c").await;
    q.launch(&a).await;
    q.launch(&b).await;
    q.launch(&c).await;
    q.wait(&c, "token-c").await;
    // a's job ended but its FreeJobSlot never ran (the reconciler recorded the end).
    q.ledger
        .update(
            &a,
            &[RunStatus::Training],
            &RunUpdate::to(RunStatus::Failed).with_detail("job failed"),
        )
        .await
        .unwrap();
    let report = q.svc.sweep().await.unwrap();
    assert_eq!(report.slots_released, std::slice::from_ref(&a));
    assert_eq!(report.wake.woken, std::slice::from_ref(&c));
    assert_eq!(q.launch(&c).await.outcome, LaunchOutcome::Launched);
    // A queued run whose wait ended long ago (its execution is gone) is expired by the sweep.
    let d = q.validated("d").await;
    q.launch(&d).await;
    q.clock.advance(Duration::hours(4));
    let report = q.svc.sweep().await.unwrap();
    assert_eq!(report.expired, std::slice::from_ref(&d));
    assert_eq!(q.run(&d).await.status, RunStatus::Expired);
}

#[test]
fn settings_are_read_and_bad_values_are_named() {
    let cfg = |max: &str, hours: &str| {
        let (max, hours) = (max.to_string(), hours.to_string());
        LauncherConfig::from_lookup(move |k| match k {
            "BEDROCK_ROLE_ARN" => Some("arn:aws:iam::1:role/r".into()),
            "MAX_CONCURRENT_JOBS" => Some(max.clone()),
            "MAX_QUEUE_HOURS" => Some(hours.clone()),
            _ => None,
        })
    };
    let c = cfg("4", "0.5").unwrap().admission;
    assert_eq!(c.max_concurrent_jobs, Some(4));
    assert_eq!(c.max_queue_seconds, 1800);
    assert_eq!(cfg("0", "72").unwrap().admission.max_concurrent_jobs, None);
    let e = cfg("-1", "72").unwrap_err();
    assert!(e.message.contains("MAX_CONCURRENT_JOBS"), "{}", e.message);
    let e = cfg("2", "0").unwrap_err();
    assert!(e.message.contains("MAX_QUEUE_HOURS"), "{}", e.message);
}

#[test]
fn positions_follow_the_time_each_run_joined_the_queue() {
    let mut runs = Vec::new();
    for (i, minutes) in [(0, 5), (1, 1), (2, 3)] {
        let mut r = sample_run("b", &format!("k{i}"), "e", 1, t0());
        r.status = RunStatus::Queued;
        r.queue = Some(crate::domain::run::QueueEntry {
            since: t0() + Duration::minutes(minutes),
            reason: "x".into(),
            task_token: None,
            held_until: None,
            quota_refusals: 0,
            for_serving: false,
            admitted_at: None,
        });
        runs.push(r);
    }
    let ids: Vec<RunId> = runs.iter().map(|r| r.run_id.clone()).collect();
    let places = queue_places(runs);
    assert_eq!(places[&ids[1]].position, 1);
    assert_eq!(places[&ids[2]].position, 2);
    assert_eq!(places[&ids[0]].position, 3);
    assert_eq!(places[&ids[0]].of, 3);
}

#[test]
fn the_sample_payloads_parse() {
    let wait: LaunchJobInput =
        serde_json::from_str(include_str!("../../../../../events/await-slot.json")).unwrap();
    assert_eq!(wait.action, LauncherAction::AwaitSlot);
    assert!(wait.task_token.is_some());
    let queued: LaunchJobOutput = serde_json::from_str(include_str!(
        "../../../../../events/launch-job-queued-output.json"
    ))
    .unwrap();
    assert_eq!(
        (queued.outcome, queued.position),
        (LaunchOutcome::Queued, Some(3))
    );
    let sweep: serde_json::Value =
        serde_json::from_str(include_str!("../../../../../events/queue-sweep.json")).unwrap();
    let _: SweepInput = serde_json::from_value(sweep["sweep"].clone()).unwrap();
    // A bare `{"runId"}` is a launch.
    let launch: LaunchJobInput =
        serde_json::from_str(include_str!("../../../../../events/launch-job.json")).unwrap();
    assert_eq!(launch.action, LauncherAction::Launch);
}

#[tokio::test]
async fn a_run_stopped_after_it_was_given_a_slot_launches_nothing_and_hands_the_slot_on() {
    let q = queue(1);
    let (a, b, c) = q.one_training_two_waiting().await;
    q.end_job(&a).await;
    assert_eq!(q.woken(), ["token-b"]);
    // `runs stop` lands after b was given the slot, before its LaunchJob.
    q.ledger
        .update(
            &b,
            &[RunStatus::Queued],
            &RunUpdate::to(RunStatus::Stopped).with_detail("stopped by alice"),
        )
        .await
        .unwrap();
    assert_eq!(q.launch(&b).await.outcome, LaunchOutcome::Stopped);
    assert_eq!(q.woken(), ["token-b", "token-c"], "the slot went on to c");
    assert_eq!(q.launch(&c).await.outcome, LaunchOutcome::Launched);
    assert_eq!(q.bedrock.count("create_job"), 2);
}

#[tokio::test]
async fn a_woken_run_whose_snapshot_changed_fails_and_wakes_the_next() {
    let q = queue(1);
    let (a, b, c) = q.one_training_two_waiting().await;
    q.end_job(&a).await;
    q.store
        .remove("data-bucket", &format!("runs/{b}/dataset.jsonl"));
    let e = q
        .svc
        .handle(LaunchJobInput::launch(b.clone()))
        .await
        .unwrap_err();
    assert!(e.message.contains("is missing"), "{}", e.message);
    assert_eq!(q.run(&b).await.status, RunStatus::Failed);
    assert_eq!(q.woken(), ["token-b", "token-c"]);
    assert_eq!(q.ledger.holders().await.unwrap(), std::slice::from_ref(&c));
}

#[tokio::test]
async fn a_launch_resumed_without_a_slot_waits_but_a_job_already_created_is_adopted() {
    let q = queue(1);
    let a = q.validated("a").await;
    q.launch(&a).await;
    // b was left in `launching` with no slot (its first attempt died after giving it back).
    let b = q.validated("b").await;
    let mut update = RunUpdate::to(RunStatus::Launching);
    update.job_name = Some("distill-b-earlier".into());
    q.ledger
        .update(&b, &[RunStatus::Validated], &update)
        .await
        .unwrap();
    let out = q.launch(&b).await;
    assert_eq!(
        out.outcome,
        LaunchOutcome::Queued,
        "no job yet, no slot: it waits"
    );
    assert_eq!(q.bedrock.count("create_job"), 1);

    let c = q.validated("c").await;
    let mut update = RunUpdate::to(RunStatus::Launching);
    update.job_name = Some("distill-c-earlier".into());
    q.ledger
        .update(&c, &[RunStatus::Validated], &update)
        .await
        .unwrap();
    q.bedrock
        .jobs
        .lock()
        .unwrap()
        .push_back(Ok(crate::ports::JobState {
            job_arn: "arn:aws:bedrock:us-east-1:1:model-customization-job/nova/c0ffee".into(),
            status: crate::ports::JobStatus::InProgress,
            validation: None,
            data_processing: None,
            training: None,
            failure_message: None,
            output_model_arn: None,
            output_model_name: None,
        }));
    let out = q.launch(&c).await;
    assert_eq!(out.outcome, LaunchOutcome::Launched, "its job runs already");
    assert_eq!(q.bedrock.count("create_job"), 1);
}

#[tokio::test]
async fn the_sweep_resumes_a_run_given_a_slot_whose_wake_up_was_lost() {
    let q = queue(1);
    let a = q.validated("a").await;
    let b = q.validated("b").await;
    q.launch(&a).await;
    q.launch(&b).await;
    q.wait(&b, "token-b").await;
    q.callbacks.close("token-b");
    q.end_job(&a).await;
    assert_eq!(q.woken(), ["token-b"], "sent, but the answer was lost");
    // A new wait of b's (say, its execution's retry) records a new token.
    q.ledger
        .update(
            &b,
            &[RunStatus::Queued],
            &RunUpdate {
                queue: Some(crate::domain::run::QueueEntry {
                    task_token: Some("token-b2".into()),
                    ..q.run(&b).await.queue.unwrap()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let report = q.svc.sweep().await.unwrap();
    assert!(
        report.rewoken.is_empty(),
        "given its slot just now: not yet"
    );
    q.clock.advance(Duration::seconds(61));
    let report = q.svc.sweep().await.unwrap();
    assert_eq!(report.rewoken, std::slice::from_ref(&b));
    assert_eq!(q.woken().last().unwrap(), "token-b2");
}

#[tokio::test]
async fn a_high_priority_run_goes_first_and_a_low_one_lets_everyone_pass() {
    let q = queue(1);
    let a = q.validated("a").await;
    q.launch(&a).await;
    use crate::domain::run::QueuePriority;
    let low = q.validated_with("low", QueuePriority::Low).await;
    let normal = q.validated("normal").await;
    let high = q.validated_with("high", QueuePriority::High).await;
    // They queue in the order low, normal, high...
    for (id, token) in [(&low, "t-low"), (&normal, "t-normal"), (&high, "t-high")] {
        assert_eq!(q.launch(id).await.outcome, LaunchOutcome::Queued);
        q.clock.advance(Duration::seconds(1));
        q.wait(id, token).await;
    }
    // ...and are offered the slot high, normal, low.
    for id in [&a, &high, &normal] {
        q.end_job(id).await;
        let woken = q.woken();
        let next = woken.last().unwrap().clone();
        let expected = if *id == a {
            "t-high"
        } else if *id == high {
            "t-normal"
        } else {
            "t-low"
        };
        assert_eq!(next, expected);
        let run = match expected {
            "t-high" => &high,
            "t-normal" => &normal,
            _ => &low,
        };
        assert_eq!(q.launch(run).await.outcome, LaunchOutcome::Launched);
    }
    assert_eq!(q.woken(), ["t-high", "t-normal", "t-low"]);
}

#[tokio::test]
async fn a_slot_given_to_a_wait_that_is_gone_goes_on_and_a_training_run_keeps_its_own() {
    let q = queue(1);
    let (a, _, c) = q.one_training_two_waiting().await;
    // b's execution is gone (its wait closed) when a's job ends: the slot goes straight on to c.
    q.callbacks.close("token-b");
    q.end_job(&a).await;
    assert_eq!(q.woken(), ["token-b", "token-c"]);
    assert_eq!(q.ledger.holders().await.unwrap(), std::slice::from_ref(&c));
    // c was resumed, but its execution died before LaunchJob: a minute on, the sweep finds its
    // wait closed and gives the slot back (b, first in line, is tried again, and so on).
    q.callbacks.close("token-c");
    q.clock.advance(Duration::seconds(61));
    let report = q.svc.sweep().await.unwrap();
    assert!(report.slots_released.contains(&c), "{report:?}");
    assert!(q.ledger.holders().await.unwrap().is_empty());
    // c's execution was alive after all: its LaunchJob finds b ahead and waits again; that
    // wait's pass tries b (gone), then gives c the slot.
    assert_eq!(q.launch(&c).await.outcome, LaunchOutcome::Queued);
    q.wait(&c, "token-c2").await;
    assert_eq!(q.woken().last().map(String::as_str), Some("token-c2"));
    assert_eq!(q.launch(&c).await.outcome, LaunchOutcome::Launched);
    // A release asked for a run still training (after a failure was announced while its job
    // may run on) keeps the slot.
    let report = q.action(&c, LauncherAction::ReleaseSlot).await;
    assert_eq!(report["woken"], serde_json::json!([]));
    assert_eq!(q.ledger.holders().await.unwrap(), std::slice::from_ref(&c));
}

#[test]
fn a_queue_bound_that_could_outgrow_the_execution_history_is_refused() {
    let cfg = |hours: &str, retry: &str| {
        let (hours, retry) = (hours.to_string(), retry.to_string());
        LauncherConfig::from_lookup(move |k| match k {
            "BEDROCK_ROLE_ARN" => Some("arn:aws:iam::1:role/r".into()),
            "MAX_QUEUE_HOURS" => Some(hours.clone()),
            "QUOTA_RETRY_SECONDS" => Some(retry.clone()),
            _ => None,
        })
    };
    assert!(cfg("72", "600").is_ok());
    assert!(cfg("0.25", "2").is_ok(), "the local stack's settings");
    let e = cfg("72", "2").unwrap_err();
    assert!(
        e.message.contains("MAX_QUEUE_HOURS") && e.message.contains("QUOTA_RETRY_SECONDS"),
        "{}",
        e.message
    );
    let e = cfg("200", "600").unwrap_err();
    assert!(e.message.contains("at most 96"), "{}", e.message);
}
