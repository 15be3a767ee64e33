//! Event-driven completion (issue 11): Bedrock's job state-change events, published by the simulator
//! to moto's EventBridge, travel rule → SQS → job-event-relay → the real status-poller, which records
//! the status and resumes the real state machine's WaitForJobEvent through sfn-local with the real
//! aws-sdk-sfn client. Same harness as the rest of e2e.rs.

use std::time::{Duration, Instant};

use distillery_core::domain::run::RunUpdate;
use distillery_core::ports::RunLedger;

use super::*;

/// GetModelCustomizationJob calls the simulator answered for `job_arn`.
async fn gets_of(stack: &Stack, job_arn: &str) -> usize {
    let calls = stack.bedrock_calls().await.unwrap();
    calls_of(&calls, "GetModelCustomizationJob")
        .0
        .iter()
        .filter(|c| c["request"]["jobIdentifier"] == job_arn || c["resourceArn"] == job_arn)
        .count()
}

/// The simulator's event log for jobs whose name contains `needle`.
async fn sim_events(stack: &Stack, needle: &str) -> Vec<Value> {
    stack
        .bedrock_events()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e["jobName"].as_str().is_some_and(|n| n.contains(needle)))
        .collect()
}

/// The dataset name part of an upload key (what the job name contains).
fn dataset_slug(key: &str) -> String {
    key.rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".jsonl")
        .to_string()
}

fn count(list: &[String], item: &str) -> usize {
    list.iter().filter(|s| s.as_str() == item).count()
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_job_end_reaches_the_state_machine_by_event_with_no_poll_after_launch() {
    let stack = stack().await;
    let key = unique_key("event-complete");
    let input = stack
        .upload_and_receive(&key, sample_dataset(), &[("distillery-serving", "none")])
        .await
        .expect(NEEDS_STACK);
    // A fallback interval far longer than the job: only the event can end the wait.
    let ex = stack
        .execution(&input)
        .substitution("JobEventFallbackSeconds", 120)
        .run()
        .await
        .unwrap();
    assert!(ex.succeeded(), "{}", explain(&ex));
    let states = ex.states_entered();
    assert_eq!(count(&states, "WaitForJobEvent"), 1, "{states:?}");
    assert!(!states.iter().any(|s| s == "PollStatus"), "{states:?}");
    let run = stack.run(&run_id(&ex)).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let job_arn = run.job_arn.clone().unwrap();
    assert_eq!(
        gets_of(&stack, &job_arn).await,
        0,
        "no GetModelCustomizationJob after launch"
    );
    assert!(run.custom_model_arn.is_some());

    // The wait's token was recorded on the run, and exactly that token was answered.
    let token = run
        .job_wait
        .as_ref()
        .expect("jobWait on the run")
        .task_token
        .clone();
    let successes: Vec<_> = stack
        .sfn_calls()
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.op == "SendTaskSuccess" && c.task_token.as_deref() == Some(token.as_str()))
        .collect();
    assert_eq!(successes.len(), 1, "{successes:?}");
    let waited = ex.output_of("WaitForJobEvent").unwrap();
    assert_eq!(waited["poll"]["outcome"], "completed", "{waited:#}");
    let msgs = sns_for(&stack, &run.run_id).await;
    assert_eq!(milestones(&msgs), ["launched", "completed"]);
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_failed_job_is_reported_by_event_with_bedrocks_message() {
    let stack = stack().await;
    let key = unique_key("event-failed");
    stack
        .bedrock_faults(
            &json!({"kind": "failJob", "nameContains": dataset_slug(&key), "phase": "training",
            "message": "Training failed: the student ran out of memory at step 12"}),
        )
        .await
        .unwrap();
    let input = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    let ex = stack
        .execution(&input)
        .substitution("JobEventFallbackSeconds", 120)
        .run()
        .await
        .unwrap();
    assert_eq!(ex.error.as_deref(), Some("JobFailed"), "{}", explain(&ex));
    let run = stack.run(&run_id(&ex)).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let reason = run.failure_reason.clone().unwrap();
    assert!(reason.contains("ran out of memory at step 12"), "{reason}");
    assert_eq!(gets_of(&stack, run.job_arn.as_deref().unwrap()).await, 0);
    let msgs = sns_for(&stack, &run.run_id).await;
    assert_eq!(milestones(&msgs), ["launched", "failed"]);
    assert!(
        msgs[1].message.contains("ran out of memory at step 12"),
        "{}",
        msgs[1].message
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_dropped_event_is_noticed_by_the_fallback_poll() {
    let stack = stack().await;
    let key = unique_key("event-dropped");
    let slug = dataset_slug(&key);
    stack
        .bedrock_faults(&json!({"kind": "dropEvents", "nameContains": slug}))
        .await
        .unwrap();
    let input = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    let started = Instant::now();
    let ex = stack
        .execution(&input)
        .substitution("JobEventFallbackSeconds", 2)
        .run()
        .await
        .unwrap();
    assert!(ex.succeeded(), "{}", explain(&ex));
    let states = ex.states_entered();
    assert!(count(&states, "WaitForJobEvent") >= 2, "{states:?}");
    let run = stack.run(&run_id(&ex)).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(gets_of(&stack, run.job_arn.as_deref().unwrap()).await >= 1);
    let events = sim_events(&stack, &slug).await;
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e["outcome"] == "dropped"),
        "every event of this job was dropped: {events:?}"
    );
    // The job itself takes ~3 s on the local stack; one fallback interval (2 s) after its end, plus the
    // steps around it, bounds the whole execution.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn duplicate_and_out_of_order_events_change_nothing_and_announce_once() {
    let stack = stack().await;
    let key = unique_key("event-dup");
    let slug = dataset_slug(&key);
    stack
        .bedrock_faults(&json!([
            {"kind": "duplicateEvents", "nameContains": slug, "jobStatus": "Completed"},
            {"kind": "delayEvents", "nameContains": slug, "jobStatus": "InProgress", "delayMs": 6000}
        ]))
        .await
        .unwrap();
    let input = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    let ex = stack
        .execution(&input)
        .substitution("JobEventFallbackSeconds", 120)
        .run()
        .await
        .unwrap();
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let after_end = stack.run(&id).await.unwrap();
    assert_eq!(after_end.status, RunStatus::Completed);

    // Wait until the held-back InProgress event has been published (after Completed) and relayed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let events = sim_events(&stack, &slug).await;
        let late = events
            .iter()
            .any(|e| e["jobStatus"] == "InProgress" && e["outcome"] == "published");
        if late {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the delayed event was never published: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = sim_events(&stack, &slug).await;
    let completed_copies = events
        .iter()
        .filter(|e| e["jobStatus"] == "Completed" && e["outcome"] == "published")
        .count();
    assert_eq!(completed_copies, 2, "{events:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;

    let now = stack.run(&id).await.unwrap();
    assert_eq!(now.status, RunStatus::Completed);
    assert_eq!(
        now.history, after_end.history,
        "late and duplicate events wrote nothing"
    );
    let msgs = sns_for(&stack, &id).await;
    assert_eq!(
        milestones(&msgs),
        ["launched", "completed"],
        "announced once"
    );
}

/// Uploads the sample under `key` with the simulator told to keep the next job training until it is
/// stopped; returns the execution input.
async fn upload_hung_job(stack: &Stack, key: &str) -> Value {
    stack
        .bedrock_faults(&json!({"kind": "hangJob", "count": 1}))
        .await
        .unwrap();
    stack
        .upload_and_receive(key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK)
}

/// Waits until the run of the execution that `input` starts is `training`, then returns it.
async fn training_run(stack: &Stack, key: &str) -> Run {
    let ledger = &stack.ledger;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = ledger.list_recent(50).await.unwrap();
        if let Some(r) = runs.into_iter().find(|r| {
            r.dataset.s3_uri().ends_with(key)
                && r.status == RunStatus::Training
                && r.job_wait.is_some()
        }) {
            return r;
        }
        assert!(Instant::now() < deadline, "no training run for {key}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn runs_stop_during_training_ends_the_run_stopped_through_the_event_and_announces_it_once() {
    let stack = stack().await;
    let key = unique_key("event-stop");
    let input = upload_hung_job(&stack, &key).await;
    let execution = stack
        .execution(&input)
        .substitution("JobEventFallbackSeconds", 120)
        .run();
    let stop_and_watch = async {
        let run = training_run(&stack, &key).await;
        let id = run.run_id.as_str().to_string();
        // Someone follows the run live while someone else stops it.
        let watch_args = ["runs", "show", id.as_str(), "--watch", "--interval", "1"];
        let watch = stack.cli(&watch_args);
        let stop = async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            stack.cli(&["runs", "stop", &id]).await.unwrap()
        };
        let (watched, out) = tokio::join!(watch, stop);
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(stdout.contains("stopping job"), "{stdout}");
        (run, watched.unwrap())
    };
    let (ex, (run, watched)) = tokio::join!(execution, stop_and_watch);
    let ex = ex.unwrap();
    // --watch printed the run training, then stopped, and ended with 3 (an end other than completed).
    let lines = String::from_utf8_lossy(&watched.stdout).to_string();
    assert_eq!(watched.status.code(), Some(3), "{lines}");
    let statuses: Vec<&str> = lines
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(statuses.first(), Some(&"training"), "{lines}");
    assert_eq!(statuses.last(), Some(&"stopped"), "{lines}");
    assert!(lines.contains("since launch"), "{lines}");
    assert_eq!(ex.error.as_deref(), Some("JobStopped"), "{}", explain(&ex));
    let after = stack.run(&run.run_id).await.unwrap();
    assert_eq!(after.status, RunStatus::Stopped);
    assert!(
        after.history.iter().any(|h| h
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("requested by"))),
        "the stop request is noted: {:?}",
        after.history
    );
    assert_eq!(gets_of(&stack, after.job_arn.as_deref().unwrap()).await, 0);
    let msgs = sns_for(&stack, &run.run_id).await;
    assert_eq!(milestones(&msgs), ["launched", "stopped"], "announced once");

    // A second stop of the ended run is refused with its state.
    let again = stack
        .cli(&["runs", "stop", run.run_id.as_str()])
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr).to_string();
    assert!(stderr.contains("is stopped"), "{stderr}");
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn the_maximum_job_duration_is_still_enforced_in_event_mode() {
    let stack = stack().await;
    let key = unique_key("event-max-duration");
    let input = upload_hung_job(&stack, &key).await;
    let execution = stack
        .execution(&input)
        .substitution("JobEventFallbackSeconds", 2)
        .run();
    let age = async {
        let run = training_run(&stack, &key).await;
        // The job "started" two hours ago: past the stack's MAX_JOB_DURATION_SECONDS (300 locally).
        let update = RunUpdate {
            launched_at: Some(chrono::Utc::now() - chrono::Duration::hours(2)),
            ..Default::default()
        };
        stack
            .ledger
            .update(&run.run_id, &[RunStatus::Training], &update)
            .await
            .unwrap();
        run
    };
    let (ex, run) = tokio::join!(execution, age);
    let ex = ex.unwrap();
    assert_eq!(ex.error.as_deref(), Some("JobTimedOut"), "{}", explain(&ex));
    let after = stack.run(&run.run_id).await.unwrap();
    assert_eq!(after.status, RunStatus::Stopped);
    let reason = after.failure_reason.clone().unwrap();
    assert!(reason.contains("MAX_JOB_DURATION_SECONDS"), "{reason}");
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "StopModelCustomizationJob").0.len(), 1);
    let msgs = sns_for(&stack, &run.run_id).await;
    assert_eq!(milestones(&msgs), ["launched", "timed_out"]);
}
