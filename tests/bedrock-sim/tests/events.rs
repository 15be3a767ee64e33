//! Job state-change events (issue 11): one "Model Customization Job State Change" event per status
//! change, in the shape of the Bedrock user guide's sample (`events/bedrock-job-state-change-sample.json`),
//! sent with EventBridge PutEvents; and the event faults (dropEvents, duplicateEvents, delayEvents).
//!
//! PutEvents goes to a small in-test EventBridge stand-in that records each request, so these tests
//! need no moto; the local stack's e2e test covers moto's rule matching and the SQS delivery.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_bedrock::types::ModelCustomizationJobStatus as Status;
use bedrock_sim::{EventRecord, Fault, Outcome, SimConfig, SimHandle, Timing};
use common::*;
use serde_json::{json, Value};

fn fixture(name: &str) -> Value {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect::<BTreeSet<_>>()
}

/// One PutEvents request as the stand-in received it.
#[derive(Debug, Clone)]
struct PutEvents {
    target: String,
    content_type: String,
    body: Value,
}

/// A stand-in for EventBridge's PutEvents endpoint: records each request, answers with an EventId.
struct FakeEventBridge {
    url: String,
    received: Arc<Mutex<Vec<PutEvents>>>,
}

impl FakeEventBridge {
    /// Serves on its own thread and runtime (the tests' own runtime must not block on it), for the
    /// rest of the test process.
    fn start() -> Self {
        let received: Arc<Mutex<Vec<PutEvents>>> = Arc::default();
        let rec = received.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let rec = rec.clone();
                    async move {
                        let header = |k: &str| {
                            headers
                                .get(k)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        let mut all = rec.lock().unwrap();
                        all.push(PutEvents {
                            target: header("x-amz-target"),
                            content_type: header("content-type"),
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        });
                        axum::Json(json!({
                            "FailedEntryCount": 0,
                            "Entries": [{"EventId": format!("event-{}", all.len())}]
                        }))
                    }
                },
            ),
        );
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let _ = axum::serve(listener, app).await;
            });
        });
        FakeEventBridge { url, received }
    }

    fn received(&self) -> Vec<PutEvents> {
        self.received.lock().unwrap().clone()
    }
}

fn sim_to(events_url: Option<&str>, phase_ms: u64) -> SimHandle {
    bedrock_sim::start(SimConfig {
        timing: Timing {
            phase_ms,
            stop_ms: phase_ms,
            pt_ms: phase_ms,
        },
        events_url: events_url.map(str::to_string),
        ..SimConfig::default()
    })
}

/// Waits until the event log holds `n` events for `job`.
fn wait_events(sim: &SimHandle, job: &str, n: usize) -> Vec<EventRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let events = sim.events_of(job);
        if events.len() >= n {
            // A moment longer: an unexpected extra event would show up now.
            std::thread::sleep(Duration::from_millis(100));
            return sim.events_of(job);
        }
        assert!(
            Instant::now() < deadline,
            "{job}: expected {n} events, have {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn statuses(events: &[EventRecord]) -> Vec<(String, Outcome)> {
    events
        .iter()
        .map(|e| (e.job_status.clone(), e.outcome))
        .collect()
}

/// The documented shape: the envelope's members are exactly the sample's, `detail`'s are a subset of
/// the sample's, with the identity fields always present and `jobStatus` (not `status`).
fn assert_bedrock_shape(event: &Value) {
    let sample = fixture("bedrock-job-state-change-sample.json");
    assert_eq!(keys(event), keys(&sample), "envelope members: {event:#}");
    assert_eq!(event["source"], "aws.bedrock");
    assert_eq!(event["detail-type"], "Model Customization Job State Change");
    assert_eq!(event["version"], "0");
    assert_eq!(event["detail"]["version"], "0.0");
    assert_eq!(event["resources"], json!([event["detail"]["jobArn"]]));
    let documented = keys(&sample["detail"]);
    assert_eq!(
        documented,
        bedrock_sim::DETAIL_FIELDS
            .iter()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        "DETAIL_FIELDS must list the sample's detail members"
    );
    let detail = keys(&event["detail"]);
    assert!(
        detail.is_subset(&documented),
        "undocumented detail members: {:?}",
        detail.difference(&documented).collect::<Vec<_>>()
    );
    for required in [
        "jobName",
        "jobArn",
        "outputModelName",
        "roleArn",
        "jobStatus",
        "creationTime",
        "lastModifiedTime",
        "baseModelArn",
        "trainingDataConfig",
        "outputDataConfig",
    ] {
        assert!(
            event["detail"].get(required).is_some(),
            "{required} missing: {event:#}"
        );
    }
    let time = event["time"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(time).is_ok() && !time.contains('.'),
        "time {time} is not whole-second RFC 3339"
    );
}

#[test]
fn our_distillation_fixtures_have_the_documented_shape() {
    for name in [
        "bedrock-job-state-change-completed.json",
        "bedrock-job-state-change-failed.json",
    ] {
        assert_bedrock_shape(&fixture(name));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_job_announces_in_progress_then_completed_in_bedrocks_shape() {
    let sim = sim_to(None, 60);
    let client = client(&sim).await;
    let arn = distill(&client, "distill-events-ok")
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    let last = poll_job(&client, &arn, Duration::from_secs(10), |o| {
        o.status() == Some(&Status::Completed)
    })
    .await
    .pop()
    .unwrap();
    let events = wait_events(&sim, "distill-events-ok", 2);
    assert_eq!(
        statuses(&events),
        vec![
            ("InProgress".into(), Outcome::Unsent),
            ("Completed".into(), Outcome::Unsent)
        ]
    );
    for e in &events {
        assert_bedrock_shape(&e.event);
        assert_eq!(e.event["detail"]["jobArn"], arn.as_str());
        assert_eq!(e.event["detail"]["jobStatus"], e.job_status.as_str());
        assert_eq!(e.event["region"], "us-east-1");
        assert_eq!(e.event["account"], "123456789012");
    }
    let (started, done) = (&events[0].event["detail"], &events[1].event["detail"]);
    assert!(started.get("endTime").is_none() && started.get("outputModelArn").is_none());
    // The Completed event says what GetModelCustomizationJob says once Completed.
    assert_eq!(done["outputModelArn"], last.output_model_arn().unwrap());
    let end = last.end_time().unwrap();
    let end = chrono::DateTime::from_timestamp_millis(end.to_millis().unwrap()).unwrap();
    assert_eq!(done["endTime"], bedrock_sim_timestamp(end));
    assert_eq!(events[1].status_time, bedrock_sim_timestamp(end));
    assert_eq!(done["lastModifiedTime"], done["endTime"]);
    assert_eq!(
        done["trainingDataConfig"]["s3Uri"],
        "s3://distillery-data/incoming/support.jsonl"
    );
    // Published no earlier than the status change.
    assert!(events[1].published_at >= events[1].status_time);
}

fn bedrock_sim_timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_and_stopped_jobs_announce_every_status() {
    let sim = sim_to(None, 60);
    let client = client(&sim).await;
    sim.fail_jobs_named("doomed", "Teacher output was empty");
    distill(&client, "distill-doomed").send().await.unwrap();
    sim.hang_next_jobs(1);
    distill(&client, "distill-stopped").send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    client
        .stop_model_customization_job()
        .job_identifier("distill-stopped")
        .send()
        .await
        .unwrap();

    let failed = wait_events(&sim, "distill-doomed", 2);
    assert_eq!(
        statuses(&failed),
        vec![
            ("InProgress".into(), Outcome::Unsent),
            ("Failed".into(), Outcome::Unsent)
        ]
    );
    assert_eq!(
        failed[1].event["detail"]["failureMessage"],
        "Teacher output was empty"
    );
    assert!(failed[1].event["detail"].get("outputModelArn").is_none());

    let stopped = wait_events(&sim, "distill-stopped", 3);
    assert_eq!(
        stopped
            .iter()
            .map(|e| e.job_status.as_str())
            .collect::<Vec<_>>(),
        vec!["InProgress", "Stopping", "Stopped"]
    );
    for e in failed.iter().chain(&stopped) {
        assert_bedrock_shape(&e.event);
    }
    assert!(stopped[2].event["detail"].get("endTime").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn events_go_to_eventbridge_put_events_on_the_default_bus() {
    let bus = FakeEventBridge::start();
    let sim = sim_to(Some(&bus.url), 40);
    let client = client(&sim).await;
    distill(&client, "distill-published").send().await.unwrap();
    let events = wait_events(&sim, "distill-published", 2);
    assert_eq!(
        statuses(&events),
        vec![
            ("InProgress".into(), Outcome::Published),
            ("Completed".into(), Outcome::Published)
        ]
    );
    let sent = bus.received();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    for (put, record) in sent.iter().zip(&events) {
        assert_eq!(put.target, "AWSEvents.PutEvents");
        assert_eq!(put.content_type, "application/x-amz-json-1.1");
        let entries = put.body["Entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        // Default bus: no EventBusName.
        assert_eq!(
            keys(entry),
            ["Detail", "DetailType", "Resources", "Source", "Time"]
                .into_iter()
                .map(String::from)
                .collect()
        );
        assert_eq!(entry["Source"], "aws.bedrock");
        assert_eq!(entry["DetailType"], "Model Customization Job State Change");
        let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap();
        assert_eq!(detail, record.event["detail"]);
        assert_eq!(entry["Resources"], record.event["resources"]);
        assert!(entry["Time"].is_number());
        // The log carries EventBridge's id, in the event too.
        let id = record.event_id.clone().unwrap();
        assert_eq!(record.event["id"], id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_events_swallows_the_next_n_or_all() {
    let bus = FakeEventBridge::start();
    let sim = sim_to(Some(&bus.url), 40);
    let client = client(&sim).await;
    sim.drop_next_events(1);
    distill(&client, "distill-drop-one").send().await.unwrap();
    let events = wait_events(&sim, "distill-drop-one", 2);
    assert_eq!(
        statuses(&events),
        vec![
            ("InProgress".into(), Outcome::Dropped),
            ("Completed".into(), Outcome::Published)
        ]
    );
    assert!(events[0].event_id.is_none());
    assert_eq!(bus.received().len(), 1);
    assert!(sim.active_faults().is_empty());

    // Over HTTP, as tests of the local stack arm it: only the terminal event, every job.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{}/_sim/faults", sim.endpoint()))
        .json(&json!({"kind": "dropEvents", "jobStatus": "Completed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    distill(&client, "distill-drop-end-1").send().await.unwrap();
    distill(&client, "distill-drop-end-2").send().await.unwrap();
    for job in ["distill-drop-end-1", "distill-drop-end-2"] {
        assert_eq!(
            statuses(&wait_events(&sim, job, 2)),
            vec![
                ("InProgress".into(), Outcome::Published),
                ("Completed".into(), Outcome::Dropped)
            ]
        );
    }
    let dropped: Value = http
        .get(format!("{}/_sim/events?outcome=dropped", sim.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dropped["events"].as_array().unwrap().len(), 3);
    assert_eq!(bus.received().len(), 3);

    sim.clear_faults();
    sim.drop_all_events();
    distill(&client, "distill-drop-all").send().await.unwrap();
    assert_eq!(
        statuses(&wait_events(&sim, "distill-drop-all", 2)),
        vec![
            ("InProgress".into(), Outcome::Dropped),
            ("Completed".into(), Outcome::Dropped)
        ]
    );
    assert_eq!(sim.active_faults().len(), 1, "dropping all lasts");
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_and_delayed_events() {
    let bus = FakeEventBridge::start();
    let sim = sim_to(Some(&bus.url), 40);
    let client = client(&sim).await;
    sim.inject(Fault::DuplicateEvents {
        count: Some(1),
        name_contains: Some("twice".into()),
        job_status: Some("Completed".into()),
    });
    distill(&client, "distill-twice").send().await.unwrap();
    let events = wait_events(&sim, "distill-twice", 3);
    assert_eq!(
        events
            .iter()
            .map(|e| (e.job_status.as_str(), e.copy))
            .collect::<Vec<_>>(),
        vec![("InProgress", 1), ("Completed", 1), ("Completed", 2)]
    );
    assert_ne!(events[1].event_id, events[2].event_id);
    assert_eq!(events[1].event["detail"], events[2].event["detail"]);

    // Held back: the InProgress event arrives after the Completed one (out of order).
    sim.inject(Fault::DelayEvents {
        delay_ms: 400,
        count: Some(1),
        name_contains: None,
        job_status: Some("InProgress".into()),
    });
    distill(&client, "distill-late").send().await.unwrap();
    let events = wait_events(&sim, "distill-late", 2);
    assert_eq!(
        events
            .iter()
            .map(|e| (e.job_status.as_str(), e.delayed_ms))
            .collect::<Vec<_>>(),
        vec![("Completed", 0), ("InProgress", 400)]
    );
    assert!(events[0].status_time > events[1].status_time);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_eventbridge_is_logged_not_fatal() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sim = sim_to(Some(&format!("http://127.0.0.1:{port}")), 40);
    let client = client(&sim).await;
    distill(&client, "distill-nobus").send().await.unwrap();
    let events = wait_events(&sim, "distill-nobus", 2);
    assert!(events
        .iter()
        .all(|e| e.outcome == Outcome::Failed
            && e.error.as_deref().unwrap_or("").contains("PutEvents")));
    // The API still answers.
    client
        .get_model_customization_job()
        .job_identifier("distill-nobus")
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_forgets_events() {
    let sim = sim(40);
    let client = client(&sim).await;
    distill(&client, "distill-reset").send().await.unwrap();
    wait_events(&sim, "distill-reset", 1);
    sim.reset();
    assert!(sim.events().is_empty());
}
