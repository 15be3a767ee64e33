//! HTTP routing: Bedrock's REST paths onto [`Sim`], plus the `/_sim/...` control endpoints.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::Fault;
use crate::sim::{ApiRequest, Sim};
use crate::wire::{signed_region, ApiError, ErrorKind, Operation};

pub(crate) type Shared = Arc<Mutex<Sim>>;

/// Locks the state; a panic elsewhere must not take the simulator down with it.
pub(crate) fn lock(state: &Shared) -> MutexGuard<'_, Sim> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

type Params = Vec<(String, String)>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/model-customization-jobs", post(create_job).get(list_jobs))
        .route("/model-customization-jobs/{id}", get(get_job))
        .route("/model-customization-jobs/{id}/stop", post(stop_job))
        .route("/provisioned-model-throughput", post(create_pt))
        .route(
            "/provisioned-model-throughput/{id}",
            get(get_pt).delete(delete_pt),
        )
        .route("/provisioned-model-throughputs", get(list_pts))
        .route("/listTagsForResource", post(list_tags))
        .route("/tagResource", post(tag_resource))
        .route("/untagResource", post(untag_resource))
        .route(
            "/model-customization/custom-model-deployments",
            post(create_deployment).get(list_deployments),
        )
        .route(
            "/model-customization/custom-model-deployments/{id}",
            get(get_deployment).delete(delete_deployment),
        )
        // The Bedrock runtime (its own endpoint in AWS, `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`): no
        // control-plane path starts with `/model/`, so both share this server.
        .route("/model/{id}/converse", post(converse))
        .route(
            "/_sim/runtime",
            get(get_runtime).put(set_runtime).post(set_runtime),
        )
        .route(
            "/_sim/faults",
            get(list_faults).post(add_faults).delete(clear_faults),
        )
        .route("/_sim/calls", get(list_calls).delete(clear_calls))
        .route("/_sim/events", get(list_events).delete(clear_events))
        .route("/_sim/reset", post(reset))
        .route(
            "/_sim/timing",
            get(get_timing).put(set_timing).post(set_timing),
        )
        .route("/_sim/quota", get(get_quota).put(set_quota).post(set_quota))
        .route("/_sim/health", get(health))
        .fallback(unknown)
        .method_not_allowed_fallback(unknown)
        .with_state(state)
}

fn request_id_header(response: &mut Response) {
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-RequestId", v);
    }
}

/// Runs one Bedrock API call and encodes the answer the way Bedrock does.
fn run(
    state: &Shared,
    op: Operation,
    headers: &HeaderMap,
    id: Option<String>,
    query: Params,
    body: Bytes,
) -> Response {
    run_checked(state, op, headers, id, query, body, None)
}

/// [`run`], with what the HTTP layer found in a job's training data beforehand.
fn run_checked(
    state: &Shared,
    op: Operation,
    headers: &HeaderMap,
    id: Option<String>,
    query: Params,
    body: Bytes,
    data_failure: Option<String>,
) -> Response {
    let region = signed_region(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let mut sim = lock(state);
    let req = ApiRequest {
        op,
        region: region.unwrap_or_else(|| sim.config.region.clone()),
        id,
        query,
        body: body.to_vec(),
        data_failure,
    };
    let result = sim.handle(&req);
    drop(sim);
    let mut response = match result {
        Ok(ok) => match ok.body {
            Some(body) => (
                ok.status,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response(),
            None => ok.status.into_response(),
        },
        Err(err) => {
            tracing::info!(operation = %op, error = err.kind.type_name(), message = %err.message, "error answered");
            err.into_response()
        }
    };
    request_id_header(&mut response);
    response
}

async fn create_job(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let data_failure = check_invocation_logs(&s, &body).await;
    run_checked(
        &s,
        Operation::CreateModelCustomizationJob,
        &headers,
        None,
        vec![],
        body,
        data_failure,
    )
}

/// A job on invocation logs (native mode): reads and counts the logs, as Bedrock does before it
/// trains, outside the state lock. `Some(message)`: the job is to fail in its validation phase
/// (too few usable records, or logs it cannot read). Without `--s3-url`, or for any other job,
/// or a request the create will refuse anyway, `None`.
async fn check_invocation_logs(state: &Shared, body: &Bytes) -> Option<String> {
    let s3_url = lock(state).config.s3_url.clone()?;
    let request: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body).ok()?;
    let (uri, query) = crate::invocation_logs::LogQuery::from_request(&request)?.ok()?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .ok()?;
    match crate::invocation_logs::count_in_s3(&client, &s3_url, &uri, &query).await {
        Ok(count) if count.usable >= crate::invocation_logs::MIN_RECORDS => {
            tracing::info!(%uri, records = count.records, matched = count.matched, "invocation logs hold enough records");
            None
        }
        Ok(count) => {
            let message = crate::invocation_logs::too_few_message(&uri, &count, &query);
            tracing::info!(%uri, "{message}");
            Some(message)
        }
        Err(e) => Some(format!("Unable to read the invocation logs at {uri}: {e}")),
    }
}

async fn list_jobs(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    run(
        &s,
        Operation::ListModelCustomizationJobs,
        &headers,
        None,
        q,
        Bytes::new(),
    )
}

async fn list_tags(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    run(
        &s,
        Operation::ListTagsForResource,
        &headers,
        None,
        vec![],
        body,
    )
}

async fn tag_resource(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    run(&s, Operation::TagResource, &headers, None, vec![], body)
}

async fn untag_resource(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    run(&s, Operation::UntagResource, &headers, None, vec![], body)
}

async fn get_job(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    run(
        &s,
        Operation::GetModelCustomizationJob,
        &headers,
        Some(id),
        vec![],
        Bytes::new(),
    )
}

async fn stop_job(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    run(
        &s,
        Operation::StopModelCustomizationJob,
        &headers,
        Some(id),
        vec![],
        Bytes::new(),
    )
}

async fn create_pt(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    run(
        &s,
        Operation::CreateProvisionedModelThroughput,
        &headers,
        None,
        vec![],
        body,
    )
}

async fn get_pt(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    run(
        &s,
        Operation::GetProvisionedModelThroughput,
        &headers,
        Some(id),
        vec![],
        Bytes::new(),
    )
}

async fn delete_pt(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    run(
        &s,
        Operation::DeleteProvisionedModelThroughput,
        &headers,
        Some(id),
        vec![],
        Bytes::new(),
    )
}

async fn list_pts(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    run(
        &s,
        Operation::ListProvisionedModelThroughputs,
        &headers,
        None,
        q,
        Bytes::new(),
    )
}

async fn create_deployment(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    run(
        &s,
        Operation::CreateCustomModelDeployment,
        &headers,
        None,
        vec![],
        body,
    )
}

async fn list_deployments(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    run(
        &s,
        Operation::ListCustomModelDeployments,
        &headers,
        None,
        q,
        Bytes::new(),
    )
}

async fn get_deployment(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    run(
        &s,
        Operation::GetCustomModelDeployment,
        &headers,
        Some(id),
        vec![],
        Bytes::new(),
    )
}

async fn delete_deployment(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    run(
        &s,
        Operation::DeleteCustomModelDeployment,
        &headers,
        Some(id),
        vec![],
        Bytes::new(),
    )
}

async fn converse(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    run(&s, Operation::Converse, &headers, Some(id), vec![], body)
}

async fn unknown(State(s): State<Shared>, method: Method, uri: Uri) -> Response {
    let err = ApiError::new(
        ErrorKind::UnknownOperation,
        format!(
            "bedrock-sim does not serve {method} {}: see docs/bedrock-sim.md for the operations it covers",
            uri.path()
        ),
    );
    if !uri.path().starts_with("/_sim/") {
        lock(&s).log_unknown(method.as_str(), uri.path(), &err);
    }
    tracing::warn!(%method, path = uri.path(), "unknown route");
    err.into_response()
}

// ---- control endpoints ----

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Fault),
    Many(Vec<Fault>),
}

async fn add_faults(State(s): State<Shared>, body: Bytes) -> Response {
    let faults = match serde_json::from_slice::<OneOrMany>(&body) {
        Ok(OneOrMany::One(f)) => vec![f],
        Ok(OneOrMany::Many(v)) => v,
        Err(e) => {
            return ApiError::validation(format!(
                "body must be a fault or a list of faults ({{\"kind\": \"throttle\"|\"quotaExceeded\"|\"internalError\"|\"accessDenied\"|\"failJob\"|\"hangJob\"|\"failThroughput\"|\"failDeployment\"|\"modelError\"|\"dropEvents\"|\"duplicateEvents\"|\"delayEvents\", ...}}): {e}"
            ))
            .into_response()
        }
    };
    let mut sim = lock(&s);
    for fault in faults {
        if let Err(e) = sim.faults.add(fault) {
            return ApiError::validation(e).into_response();
        }
    }
    (
        StatusCode::CREATED,
        Json(json!({ "active": sim.faults.active() })),
    )
        .into_response()
}

async fn list_faults(State(s): State<Shared>) -> Json<Value> {
    Json(json!({ "active": lock(&s).faults.active() }))
}

async fn clear_faults(State(s): State<Shared>) -> StatusCode {
    lock(&s).faults.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct CallsQuery {
    operation: Option<String>,
}

async fn list_calls(State(s): State<Shared>, Query(q): Query<CallsQuery>) -> Json<Value> {
    let sim = lock(&s);
    let calls: Vec<_> = sim
        .calls
        .iter()
        .filter(|c| q.operation.as_deref().is_none_or(|o| c.operation == o))
        .collect();
    Json(json!({ "calls": calls }))
}

async fn clear_calls(State(s): State<Shared>) -> StatusCode {
    lock(&s).calls.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventsQuery {
    job_name: Option<String>,
    job_status: Option<String>,
    outcome: Option<String>,
}

/// The job state-change events, oldest first: `{"events": [EventRecord...]}`, optionally filtered.
async fn list_events(State(s): State<Shared>, Query(q): Query<EventsQuery>) -> Json<Value> {
    let sim = lock(&s);
    let events: Vec<_> = sim
        .events
        .iter()
        .filter(|e| q.job_name.as_deref().is_none_or(|n| e.job_name == n))
        .filter(|e| q.job_status.as_deref().is_none_or(|st| e.job_status == st))
        .filter(|e| {
            q.outcome
                .as_deref()
                .is_none_or(|o| json!(e.outcome).as_str() == Some(o))
        })
        .collect();
    Json(json!({ "events": events }))
}

async fn clear_events(State(s): State<Shared>) -> StatusCode {
    lock(&s).events.clear();
    StatusCode::NO_CONTENT
}

async fn reset(State(s): State<Shared>) -> StatusCode {
    lock(&s).reset();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TimingUpdate {
    phase_ms: Option<u64>,
    stop_ms: Option<u64>,
    pt_ms: Option<u64>,
    deployment_ms: Option<u64>,
}

/// The timing with the effective deployment duration beside it (`deploymentMs`).
fn timing_json(sim: &Sim) -> Value {
    let mut t = json!(sim.config.timing);
    t["deploymentMs"] = json!(sim.config.deployment_ms.unwrap_or(sim.config.timing.pt_ms));
    t
}

async fn get_timing(State(s): State<Shared>) -> Json<Value> {
    Json(timing_json(&lock(&s)))
}

async fn set_timing(State(s): State<Shared>, body: Bytes) -> Response {
    let update: TimingUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return ApiError::validation(format!(
                "body must be {{\"phaseMs\", \"stopMs\", \"ptMs\", \"deploymentMs\"}} (each optional): {e}"
            ))
            .into_response()
        }
    };
    let mut sim = lock(&s);
    let t = &mut sim.config.timing;
    t.phase_ms = update.phase_ms.unwrap_or(t.phase_ms);
    t.stop_ms = update.stop_ms.unwrap_or(t.stop_ms);
    t.pt_ms = update.pt_ms.unwrap_or(t.pt_ms);
    if update.deployment_ms.is_some() {
        sim.config.deployment_ms = update.deployment_ms;
    }
    Json(timing_json(&sim)).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuntimeUpdate {
    student_quality: Option<f64>,
}

fn runtime_json(sim: &Sim) -> Value {
    json!({ "studentQuality": sim.config.student_quality })
}

/// The runtime's knobs: `{"studentQuality": Q}`.
async fn get_runtime(State(s): State<Shared>) -> Json<Value> {
    Json(runtime_json(&lock(&s)))
}

async fn set_runtime(State(s): State<Shared>, body: Bytes) -> Response {
    let update: RuntimeUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return ApiError::validation(format!("body must be {{\"studentQuality\": 0..1}}: {e}"))
                .into_response()
        }
    };
    let mut sim = lock(&s);
    if let Some(q) = update.student_quality {
        match crate::sim::check_student_quality(q) {
            Ok(q) => sim.config.student_quality = q,
            Err(e) => return ApiError::validation(e).into_response(),
        }
    }
    Json(runtime_json(&sim)).into_response()
}

/// The account quota the simulator enforces: `{"maxInProgressJobs": N | null}` (null: none).
async fn get_quota(State(s): State<Shared>) -> Json<Value> {
    Json(json!({ "maxInProgressJobs": lock(&s).config.max_in_progress_jobs }))
}

/// Sets (or with null lifts) the quota of jobs InProgress/Stopping at once; a create past it is
/// refused with ServiceQuotaExceededException, as Bedrock does.
async fn set_quota(State(s): State<Shared>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct QuotaUpdate {
        max_in_progress_jobs: Option<usize>,
    }
    let update: QuotaUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return ApiError::validation(format!(
                "body must be {{\"maxInProgressJobs\": N or null}}: {e}"
            ))
            .into_response()
        }
    };
    let mut sim = lock(&s);
    sim.config.max_in_progress_jobs = update.max_in_progress_jobs;
    Json(json!({ "maxInProgressJobs": sim.config.max_in_progress_jobs })).into_response()
}

async fn health(State(s): State<Shared>) -> Json<Value> {
    let sim = lock(&s);
    Json(json!({
        "status": "ok",
        "region": sim.config.region,
        "accountId": sim.config.account_id,
        "timing": timing_json(&sim),
        "runtime": runtime_json(&sim),
        "eventsUrl": sim.config.events_url,
        "operations": Operation::ALL.iter().map(|o| o.name()).collect::<Vec<_>>(),
    }))
}
