//! A local stand-in for the Step Functions callback API (the task-token side of
//! `.waitForTaskToken` Task states), for the local stack where aws-local-stepfunctions runs the ASL
//! and has no task tokens of its own.
//!
//! It speaks Step Functions' real wire protocol (awsJson1_0: `POST /`, `X-Amz-Target:
//! AWSStepFunctions.<Op>`, `Content-Type: application/x-amz-json-1.0`) for the three operations a
//! worker calls with a token, so the Lambdas' real `aws-sdk-sfn` client reaches it through
//! `AWS_ENDPOINT_URL_SFN`:
//! - `SendTaskSuccess {taskToken, output}`, `SendTaskFailure {taskToken, error?, cause?}`,
//!   `SendTaskHeartbeat {taskToken}`; success is HTTP 200 `{}`.
//!
//! Validation and errors follow botocore's model (stepfunctions 2016-11-23): taskToken 1..=2048
//! characters, output at most 262144 bytes of UTF-8 (the API reference counts the payload in bytes),
//! error at most 256 and cause at most 32768 characters; a length violation is AWS's common
//! `ValidationException`. Errors are HTTP 400 with `{"__type": "<namespace>#<Code>", "message": ...}`,
//! the shape the SDKs parse (they keep what follows `#`):
//! - `InvalidToken`: the token is not one Step Functions could have minted (here: characters outside
//!   the base64/base64url alphabet, which every real token is written in).
//! - `TaskDoesNotExist`: a well-formed token nobody registered.
//! - `TaskTimedOut`: the token's task is closed (it timed out, or already got its success or
//!   failure); AWS answers `Task Timed Out: 'Provided task does not exist anymore'` there.
//! - `InvalidOutput`: SendTaskSuccess with an `output` that is not JSON.
//!
//! The local control API (not AWS; used by tests/stack/runner/run-execution.mjs and tests):
//! - `POST /local/tasks {taskToken, timeoutMs?, heartbeatMs?, execution?, state?}`: registers an
//!   open task (201; 409 if the token is known). With `timeoutMs`/`heartbeatMs` this server closes
//!   the task itself when the time (or the time since the last heartbeat) runs out, so the close and
//!   a racing SendTaskSuccess are decided in one place.
//! - `POST /local/tasks/wait {taskToken, waitMs?}`: long-polls (up to `waitMs`, default 10000, at
//!   most 60000) until the task is closed; answers the task `{taskToken, status, output?, error?,
//!   cause?, heartbeats}` with `status` `OPEN` (still open after `waitMs`), `SUCCEEDED`, `FAILED`,
//!   `TIMED_OUT` or `HEARTBEAT_TIMED_OUT`. 404 for an unknown token.
//! - `POST /local/tasks/close {taskToken}`: closes an open task as `TIMED_OUT` (a later send gets
//!   `TaskTimedOut`); answers the task as it now is (a task already closed keeps its outcome).
//! - `GET /local/tasks`: every task, in registration order.
//! - `GET /local/calls`: every Step Functions call received, oldest first: `{op, taskToken, output?,
//!   error?, cause?, time, result}` where `result` is `ok` or the error code answered.
//! - `POST /local/reset`: forgets tasks and calls.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

/// botocore's stepfunctions model: `TaskToken` (min 1, max 2048).
pub const TASK_TOKEN_MAX: usize = 2048;
/// `SensitiveData` (max 262144), in bytes of UTF-8 per the API reference.
pub const OUTPUT_MAX_BYTES: usize = 262_144;
/// `SensitiveError` (max 256).
pub const ERROR_MAX: usize = 256;
/// `SensitiveCause` (max 32768).
pub const CAUSE_MAX: usize = 32_768;

/// The namespace AWS puts before `#` in `__type` (clients keep what follows it).
const ERROR_NAMESPACE: &str = "com.amazonaws.swf.service.v2.model";

/// A task's state, as the control API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    Open,
    Succeeded,
    Failed,
    TimedOut,
    HeartbeatTimedOut,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    pub task_token: String,
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub heartbeats: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// One Step Functions call received (`GET /local/calls`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallRecord {
    pub op: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// RFC 3339, when the call arrived.
    pub time: String,
    /// `ok`, or the error code answered.
    pub result: String,
}

struct Task {
    view: TaskView,
    timeout_at: Option<Instant>,
    heartbeat: Option<Duration>,
    last_beat: Instant,
    /// Tells waiters (and the deadline watcher) that the task changed.
    changed: watch::Sender<()>,
}

#[derive(Default)]
struct Shared {
    tasks: HashMap<String, Task>,
    order: Vec<String>,
    calls: Vec<CallRecord>,
}

type SharedState = Arc<Mutex<Shared>>;

/// A running server; stops when dropped.
pub struct SfnLocal {
    addr: SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SfnLocal {
    /// Binds 127.0.0.1:`port` (0 = a free port) and serves on the current tokio runtime.
    pub async fn bind(port: u16) -> std::io::Result<SfnLocal> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = router(Arc::default());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SfnLocal {
            addr,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves until the process ends (for the binary).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SfnLocal {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn router(state: SharedState) -> Router {
    Router::new()
        .route("/", post(aws_call).get(health))
        .route("/local/tasks", post(register).get(list_tasks))
        .route("/local/tasks/wait", post(wait_task))
        .route("/local/tasks/close", post(close_task))
        .route("/local/calls", get(list_calls))
        .route("/local/reset", post(reset))
        .with_state(state)
}

async fn health() -> &'static str {
    "sfn-local: POST / with X-Amz-Target: AWSStepFunctions.<Op>\n"
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An awsJson1_0 error, as Step Functions sends it.
fn aws_error(code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "__type": format!("{ERROR_NAMESPACE}#{code}"), "message": message.into() });
    let mut r = (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

fn aws_ok() -> Response {
    let mut r = (StatusCode::OK, "{}").into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

/// AWS's wording for a constraint violation ("1 validation error detected: ...").
fn validation(member: &str, constraint: &str) -> (String, String) {
    (
        "ValidationException".to_string(),
        format!(
            "1 validation error detected: Value at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

fn string_member(body: &Value, member: &str) -> Result<Option<String>, (String, String)> {
    match body.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err((
            "SerializationException".to_string(),
            format!("'{member}' must be a string"),
        )),
    }
}

struct Request {
    token: Option<String>,
    output: Option<String>,
    error: Option<String>,
    cause: Option<String>,
}

/// The model's constraints, in the order AWS's framework checks them (before the service runs).
fn parse_request(op: &str, body: &Value) -> Result<Request, (String, String)> {
    let token = string_member(body, "taskToken")?;
    let output = string_member(body, "output")?;
    let error = string_member(body, "error")?;
    let cause = string_member(body, "cause")?;
    let req = Request {
        token,
        output,
        error,
        cause,
    };
    match &req.token {
        None => {
            return Err((
                "ValidationException".into(),
                "1 validation error detected: Value null at 'taskToken' failed to satisfy constraint: Member must not be null".into(),
            ))
        }
        Some(t) if t.is_empty() => {
            return Err(validation(
                "taskToken",
                "Member must have length greater than or equal to 1",
            ))
        }
        Some(t) if t.chars().count() > TASK_TOKEN_MAX => {
            return Err(validation(
                "taskToken",
                "Member must have length less than or equal to 2048",
            ))
        }
        _ => {}
    }
    if op == "SendTaskSuccess" {
        match &req.output {
            None => return Err((
                "ValidationException".into(),
                "1 validation error detected: Value null at 'output' failed to satisfy constraint: Member must not be null".into(),
            )),
            Some(o) if o.len() > OUTPUT_MAX_BYTES => {
                return Err(validation(
                    "output",
                    "Member must have length less than or equal to 262144",
                ))
            }
            _ => {}
        }
    }
    if op == "SendTaskFailure" {
        if req
            .error
            .as_ref()
            .is_some_and(|e| e.chars().count() > ERROR_MAX)
        {
            return Err(validation(
                "error",
                "Member must have length less than or equal to 256",
            ));
        }
        if req
            .cause
            .as_ref()
            .is_some_and(|c| c.chars().count() > CAUSE_MAX)
        {
            return Err(validation(
                "cause",
                "Member must have length less than or equal to 32768",
            ));
        }
    }
    Ok(req)
}

/// Real tokens are base64 (or base64url) text; anything else could not have come from Step Functions.
fn well_formed(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

async fn aws_call(State(state): State<SharedState>, headers: HeaderMap, body: String) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let op = target
        .strip_prefix("AWSStepFunctions.")
        .unwrap_or_default()
        .to_string();
    let parsed: Value = match serde_json::from_str(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return aws_error(
                "SerializationException",
                "the request body is not a JSON object",
            )
        }
    };
    if !matches!(
        op.as_str(),
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat"
    ) {
        // Step Functions' answer to an X-Amz-Target it does not serve; this server serves only the
        // callback operations (the runner does the rest).
        return aws_error(
            "UnknownOperationException",
            format!("sfn-local does not serve '{target}'"),
        );
    }
    let mut record = CallRecord {
        op: op.clone(),
        task_token: parsed["taskToken"].as_str().map(str::to_string),
        output: parsed["output"].as_str().map(str::to_string),
        error: parsed["error"].as_str().map(str::to_string),
        cause: parsed["cause"].as_str().map(str::to_string),
        time: now_rfc3339(),
        result: "ok".into(),
    };
    let outcome = handle(&state, &op, &parsed);
    if let Err((code, _)) = &outcome {
        record.result = code.clone();
    }
    state.lock().unwrap().calls.push(record);
    match outcome {
        Ok(()) => aws_ok(),
        Err((code, message)) => aws_error(&code, message),
    }
}

fn handle(state: &SharedState, op: &str, body: &Value) -> Result<(), (String, String)> {
    let req = parse_request(op, body)?;
    let token = req.token.unwrap_or_default();
    if !well_formed(&token) {
        return Err(("InvalidToken".into(), "Invalid token".into()));
    }
    if op == "SendTaskSuccess" {
        let output = req.output.as_deref().unwrap_or_default();
        if serde_json::from_str::<Value>(output).is_err() {
            return Err((
                "InvalidOutput".into(),
                "Invalid output: the output is not valid JSON".into(),
            ));
        }
    }
    let mut s = state.lock().unwrap();
    let task = s.tasks.get_mut(&token).ok_or_else(|| {
        (
            "TaskDoesNotExist".to_string(),
            "Task does not exist".to_string(),
        )
    })?;
    // A deadline that passed but whose watcher has not run yet still closes the task first.
    expire_if_due(task, Instant::now());
    if task.view.status != TaskStatus::Open {
        return Err((
            "TaskTimedOut".into(),
            "Task Timed Out: 'Provided task does not exist anymore'".into(),
        ));
    }
    match op {
        "SendTaskSuccess" => {
            task.view.status = TaskStatus::Succeeded;
            task.view.output = req.output;
        }
        "SendTaskFailure" => {
            task.view.status = TaskStatus::Failed;
            task.view.error = req.error;
            task.view.cause = req.cause;
        }
        _ => {
            task.view.heartbeats += 1;
            task.last_beat = Instant::now();
        }
    }
    task.changed.send_replace(());
    Ok(())
}

/// Closes an open task whose time (or heartbeat interval) ran out. Returns whether it did.
fn expire_if_due(task: &mut Task, now: Instant) -> bool {
    if task.view.status != TaskStatus::Open {
        return false;
    }
    if task.timeout_at.is_some_and(|t| now >= t) {
        task.view.status = TaskStatus::TimedOut;
    } else if task.heartbeat.is_some_and(|h| now >= task.last_beat + h) {
        task.view.status = TaskStatus::HeartbeatTimedOut;
    } else {
        return false;
    }
    task.changed.send_replace(());
    true
}

fn next_deadline(task: &Task) -> Option<Instant> {
    let beat = task.heartbeat.map(|h| task.last_beat + h);
    match (task.timeout_at, beat) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterBody {
    task_token: String,
    timeout_ms: Option<u64>,
    heartbeat_ms: Option<u64>,
    execution: Option<String>,
    state: Option<String>,
}

async fn register(State(state): State<SharedState>, Json(b): Json<RegisterBody>) -> Response {
    let now = Instant::now();
    let (tx, _) = watch::channel(());
    let task = Task {
        view: TaskView {
            task_token: b.task_token.clone(),
            status: TaskStatus::Open,
            output: None,
            error: None,
            cause: None,
            heartbeats: 0,
            execution: b.execution,
            state: b.state,
        },
        timeout_at: b.timeout_ms.map(|ms| now + Duration::from_millis(ms)),
        heartbeat: b.heartbeat_ms.map(Duration::from_millis),
        last_beat: now,
        changed: tx,
    };
    let has_deadline = task.timeout_at.is_some() || task.heartbeat.is_some();
    {
        let mut s = state.lock().unwrap();
        if s.tasks.contains_key(&b.task_token) {
            return (
                StatusCode::CONFLICT,
                Json(json!({ "message": "token already registered" })),
            )
                .into_response();
        }
        s.order.push(b.task_token.clone());
        s.tasks.insert(b.task_token.clone(), task);
    }
    if has_deadline {
        tokio::spawn(watch_deadlines(state, b.task_token));
    }
    (StatusCode::CREATED, Json(json!({}))).into_response()
}

/// Closes the task when its deadline passes; a heartbeat moves the deadline, so it is re-read after
/// every wake-up.
async fn watch_deadlines(state: SharedState, token: String) {
    loop {
        let (deadline, mut changed) = {
            let mut s = state.lock().unwrap();
            let Some(task) = s.tasks.get_mut(&token) else {
                return;
            };
            if expire_if_due(task, Instant::now()) || task.view.status != TaskStatus::Open {
                return;
            }
            let Some(d) = next_deadline(task) else { return };
            (d, task.changed.subscribe())
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = changed.changed() => {}
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    task_token: String,
    wait_ms: Option<u64>,
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "message": "unknown task token" })),
    )
        .into_response()
}

async fn wait_task(State(state): State<SharedState>, Json(b): Json<TokenBody>) -> Response {
    let until = Instant::now() + Duration::from_millis(b.wait_ms.unwrap_or(10_000).min(60_000));
    loop {
        let mut changed = {
            let mut s = state.lock().unwrap();
            let Some(task) = s.tasks.get_mut(&b.task_token) else {
                return not_found();
            };
            expire_if_due(task, Instant::now());
            if task.view.status != TaskStatus::Open || Instant::now() >= until {
                return Json(task.view.clone()).into_response();
            }
            task.changed.subscribe()
        };
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = changed.changed() => {}
        }
    }
}

async fn close_task(State(state): State<SharedState>, Json(b): Json<TokenBody>) -> Response {
    let mut s = state.lock().unwrap();
    let Some(task) = s.tasks.get_mut(&b.task_token) else {
        return not_found();
    };
    if !expire_if_due(task, Instant::now()) && task.view.status == TaskStatus::Open {
        task.view.status = TaskStatus::TimedOut;
        task.changed.send_replace(());
    }
    Json(task.view.clone()).into_response()
}

async fn list_tasks(State(state): State<SharedState>) -> Json<Vec<TaskView>> {
    let s = state.lock().unwrap();
    Json(
        s.order
            .iter()
            .filter_map(|t| s.tasks.get(t).map(|task| task.view.clone()))
            .collect(),
    )
}

async fn list_calls(State(state): State<SharedState>) -> Json<Vec<CallRecord>> {
    Json(state.lock().unwrap().calls.clone())
}

async fn reset(State(state): State<SharedState>) -> StatusCode {
    *state.lock().unwrap() = Shared::default();
    StatusCode::NO_CONTENT
}
