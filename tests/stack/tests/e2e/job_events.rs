//! Bedrock's job state-change events on the local stack (issue 11): the simulator publishes each status
//! change to moto's EventBridge (default bus), the job-event rule (`events/bedrock-job-event-pattern.json`)
//! routes Distillery's jobs (`distill-…`) to its SQS target, and job-event-relay invokes the
//! status-poller Lambda with each event, as a rule with a Lambda target would. A job no run owns is
//! answered `ignored` (delivered once); an event the Lambda refuses is attempted a bounded number of
//! times. The event path through a real run is in events.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use distillery_core::ports::{CustomizationService, DistillationJobRequest, TrainingData};
use distillery_local_stack::RelayDelivery;

use super::*;

/// The relay's `--max-receives` as start.sh runs it (its default).
const MAX_RECEIVES: usize = 3;

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}", nanos % 0xffff_ffff_ffff)
}

/// Launches a distillation job on the simulator directly (no run owns it: this is about events).
async fn launch(stack: &Stack, name: &str) -> String {
    let request = DistillationJobRequest {
        job_name: name.into(),
        custom_model_name: format!("{name}-model"),
        role_arn: "arn:aws:iam::123456789012:role/distillery-bedrock-distillation".into(),
        student: "amazon.nova-lite-v1:0:300k".into(),
        teacher: "amazon.nova-pro-v1:0".into(),
        max_response_length: 1000,
        training_data: TrainingData::S3 {
            s3_uri: format!("s3://{}/incoming/{name}.jsonl", stack.bucket()),
        },
        output_s3_uri: format!("s3://{}/output/{name}/", stack.bucket()),
        client_request_token: format!("tok-{name}"),
        job_tags: BTreeMap::new(),
        custom_model_tags: BTreeMap::new(),
        custom_model_kms_key_id: None,
    };
    stack
        .bedrock()
        .await
        .create_distillation_job(&request)
        .await
        .expect("CreateModelCustomizationJob on the simulator")
}

/// The simulator's events for `job`, once `done` holds for them (fails after `timeout`).
async fn sim_events(
    stack: &Stack,
    job: &str,
    timeout: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let events: Vec<Value> = stack
            .bedrock_events()
            .await
            .expect("GET /_sim/events")
            .into_iter()
            .filter(|e| e["jobName"] == job)
            .collect();
        if done(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{job}: the simulator's events did not reach the expected state: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn relayed(stack: &Stack, job: &str) -> Vec<RelayDelivery> {
    stack
        .relay_deliveries()
        .expect("the relay's delivery log")
        .into_iter()
        .filter(|d| d.job_name == job)
        .collect()
}

/// Waits until every event id in `ids` has a final attempt (delivered or given up).
async fn relayed_to_the_end(
    stack: &Stack,
    job: &str,
    ids: &BTreeSet<String>,
    timeout: Duration,
) -> Vec<RelayDelivery> {
    let deadline = Instant::now() + timeout;
    loop {
        let deliveries = relayed(stack, job);
        let finished: BTreeSet<String> = deliveries
            .iter()
            .filter(|d| d.result == "delivered" || d.result == "gaveUp")
            .map(|d| d.event_id.clone())
            .collect();
        if ids.is_subset(&finished) {
            return deliveries;
        }
        assert!(
            Instant::now() < deadline,
            "{job}: the relay did not finish with events {ids:?}; deliveries so far: {deliveries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn job_state_change_events_travel_eventbridge_to_the_relay_and_the_lambda() {
    let stack = stack().await;
    let n = suffix();
    let ours = format!("distill-e2e-events-{n}");
    let theirs = format!("adhoc-e2e-events-{n}");
    let arn = launch(&stack, &ours).await;
    launch(&stack, &theirs).await;

    // The simulator published one event per status change of both jobs.
    let terminal = |events: &[Value]| events.iter().any(|e| e["jobStatus"] == "Completed");
    let published = sim_events(&stack, &ours, Duration::from_secs(30), terminal).await;
    let statuses: Vec<&str> = published
        .iter()
        .map(|e| e["jobStatus"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["InProgress", "Completed"]);
    for e in &published {
        assert_eq!(e["outcome"], "published", "{e:#}");
        assert_eq!(e["event"]["detail"]["jobArn"], arn.as_str());
    }
    let other = sim_events(&stack, &theirs, Duration::from_secs(30), terminal).await;
    assert!(other.iter().all(|e| e["outcome"] == "published"));

    // Each of ours reached the relay with the id EventBridge gave it, and went to status-poller, which
    // answers an event for a job no run owns with `ignored`: delivered at the first attempt.
    let ids: BTreeSet<String> = published
        .iter()
        .map(|e| e["eventId"].as_str().unwrap().to_string())
        .collect();
    let deliveries = relayed_to_the_end(&stack, &ours, &ids, Duration::from_secs(60)).await;
    let mut attempts: BTreeMap<String, usize> = BTreeMap::new();
    for d in &deliveries {
        assert!(
            ids.contains(&d.event_id),
            "an event no one published: {d:?}"
        );
        *attempts.entry(d.event_id.clone()).or_default() += 1;
        assert!(
            ["delivered", "retrying", "gaveUp"].contains(&d.result.as_str()),
            "{d:?}"
        );
        if d.result != "delivered" {
            assert!(d.error_type.is_some(), "a failed attempt says why: {d:?}");
        }
    }
    assert!(
        attempts.values().all(|&a| (1..=MAX_RECEIVES).contains(&a)),
        "attempts per event: {attempts:?}"
    );
    assert!(
        deliveries.iter().all(|d| d.result == "delivered"),
        "status-poller takes every event of a job it does not track: {deliveries:#?}"
    );
    let first: BTreeMap<&str, &RelayDelivery> = deliveries
        .iter()
        .filter(|d| d.receive_count == 1)
        .map(|d| (d.job_status.as_str(), d))
        .collect();
    assert_eq!(
        first.keys().copied().collect::<Vec<_>>(),
        vec!["Completed", "InProgress"]
    );
    for d in first.values() {
        // Relayed within seconds of the status change (the event's time has whole seconds).
        assert!(
            d.event_age_ms < 15_000,
            "slow first delivery ({} ms): {d:?}",
            d.event_age_ms
        );
    }
    // Some time later, nothing more for this job: no event is retried forever.
    let settled = deliveries.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(relayed(&stack, &ours).len(), settled);

    // The rule's prefix kept the other job's events off the queue.
    assert!(
        relayed(&stack, &theirs).is_empty(),
        "a job not named distill-… was relayed"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_dropped_event_never_reaches_the_relay() {
    let stack = stack().await;
    let job = format!("distill-e2e-dropped-{}", suffix());
    stack
        .bedrock_faults(
            &json!({"kind": "dropEvents", "nameContains": job, "jobStatus": "Completed"}),
        )
        .await
        .unwrap();
    launch(&stack, &job).await;
    let events = sim_events(&stack, &job, Duration::from_secs(30), |events| {
        events.iter().any(|e| e["jobStatus"] == "Completed")
    })
    .await;
    let outcomes: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["jobStatus"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![("InProgress", "published"), ("Completed", "dropped")]
    );
    let in_progress: BTreeSet<String> = [events[0]["eventId"].as_str().unwrap().to_string()].into();
    relayed_to_the_end(&stack, &job, &in_progress, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let statuses: BTreeSet<String> = relayed(&stack, &job)
        .into_iter()
        .map(|d| d.job_status)
        .collect();
    assert_eq!(statuses, BTreeSet::from(["InProgress".to_string()]));
}
