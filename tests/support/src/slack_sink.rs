//! A local stand-in for a Slack incoming webhook: records every JSON payload POSTed to it, so tests
//! assert on the real Block Kit payload the notifier sends. It can be switched to fail (HTTP 500) or
//! hang, to simulate Slack being down.
//!
//! Routes (the same in-process and in the `slack-sink` binary):
//! - `POST <any path not under /_sink/>`: the webhook; `ok` mode answers `200 ok` like Slack.
//! - `GET /_sink/messages`: the recorded payloads, a JSON array, oldest first.
//! - `POST /_sink/mode` with `{"mode":"ok|fail|hang|reject"}`: how the webhook answers next.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the webhook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkMode {
    /// 200 `ok`, payload recorded.
    Ok,
    /// 500, payload not recorded (Slack down).
    Fail,
    /// Never answers (within an hour): the client's timeout must fire.
    Hang,
    /// 400 `invalid_payload`, as Slack answers a bad payload: must not be retried.
    Reject,
}

#[derive(Debug, Default)]
struct Shared {
    payloads: Vec<Value>,
    attempts: usize,
    mode: Option<SinkMode>,
}

type SharedState = Arc<Mutex<Shared>>;

/// The webhook path handed out by [`SlackSink::url`]: shaped like a real one, whose last segment is
/// the secret part, so tests can check it never leaks.
pub const WEBHOOK_PATH: &str = "/services/T00000000/B00000000/sinkSecretToken0123456789";

/// A running sink; stops when dropped.
pub struct SlackSink {
    addr: SocketAddr,
    state: SharedState,
    /// `None` once [`SlackSink::wait`] took it.
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SlackSink {
    /// Binds 127.0.0.1 on a free port and serves on the current tokio runtime.
    pub async fn start() -> SlackSink {
        Self::bind(0)
            .await
            .expect("cannot bind the Slack sink on 127.0.0.1")
    }

    /// Binds 127.0.0.1:`port` (0 = a free port).
    pub async fn bind(port: u16) -> std::io::Result<SlackSink> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state: SharedState = Arc::default();
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(SlackSink {
            addr,
            state,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The webhook URL to store in the secret.
    pub fn url(&self) -> String {
        format!("{}{WEBHOOK_PATH}", self.base_url())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Payloads accepted so far, oldest first.
    pub fn payloads(&self) -> Vec<Value> {
        self.state.lock().unwrap().payloads.clone()
    }

    /// Every POST to the webhook, whatever the answer (to count retries).
    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().attempts
    }

    pub fn set_mode(&self, mode: SinkMode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    pub fn mode(&self) -> SinkMode {
        self.state.lock().unwrap().mode.unwrap_or(SinkMode::Ok)
    }

    /// Serves until the process ends (for the binary).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SlackSink {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn router(state: SharedState) -> Router {
    Router::new()
        .route("/_sink/messages", get(messages))
        .route("/_sink/mode", post(set_mode))
        .fallback(post(webhook))
        .with_state(state)
}

async fn messages(State(state): State<SharedState>) -> Json<Vec<Value>> {
    Json(state.lock().unwrap().payloads.clone())
}

#[derive(Deserialize)]
struct ModeBody {
    mode: SinkMode,
}

async fn set_mode(State(state): State<SharedState>, Json(body): Json<ModeBody>) -> StatusCode {
    state.lock().unwrap().mode = Some(body.mode);
    StatusCode::NO_CONTENT
}

async fn webhook(State(state): State<SharedState>, body: String) -> impl IntoResponse {
    let mode = {
        let mut s = state.lock().unwrap();
        s.attempts += 1;
        s.mode.unwrap_or(SinkMode::Ok)
    };
    match mode {
        SinkMode::Ok => match serde_json::from_str::<Value>(&body) {
            Ok(v) if v.get("text").is_some() || v.get("blocks").is_some() => {
                state.lock().unwrap().payloads.push(v);
                (StatusCode::OK, "ok")
            }
            // Slack refuses a payload with neither `text` nor `blocks`.
            _ => (StatusCode::BAD_REQUEST, "invalid_payload"),
        },
        SinkMode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        SinkMode::Reject => (StatusCode::BAD_REQUEST, "invalid_payload"),
        SinkMode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            (StatusCode::OK, "ok")
        }
    }
}
