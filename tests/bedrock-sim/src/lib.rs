//! A local Amazon Bedrock simulator (control plane and runtime) for tests and the demo.
//!
//! It speaks Bedrock's restJson1 wire format for the model customization job, Provisioned Throughput
//! and custom model deployment operations the pipeline calls, enforces the API's constraints, runs jobs through a time-scaled
//! lifecycle, and injects faults on request. On the same port it serves the Bedrock runtime's
//! Converse with deterministic answers (teacher, student, judge). See `docs/bedrock-sim.md`.
//!
//! ```no_run
//! let sim = bedrock_sim::start(bedrock_sim::SimConfig::default());
//! // point the SDK at sim.endpoint() (AWS_ENDPOINT_URL_BEDROCK or endpoint_url)
//! sim.throttle_next(2);
//! ```

mod calls;
mod deployment;
mod events;
mod faults;
pub mod invocation_logs;
mod jobs;
mod runtime;
mod server;
mod sim;
mod throughput;
mod validate;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use calls::CallRecord;
pub use events::{EventRecord, Outcome, DETAIL_FIELDS, DETAIL_TYPE, ENVELOPE_FIELDS, SOURCE};
pub use faults::{Fault, Phase};
pub use jobs::Timing;
/// What the simulated models answer, so tests can predict it.
pub use runtime::{student_agrees, student_answer, teacher_answer, ModelKind};
pub use sim::{SimConfig, DEFAULT_STUDENT_QUALITY};
pub use wire::Operation;

use server::{lock, Shared};
use sim::Sim;

/// Serves the simulator on `listener` until `shutdown` completes (the binary's entry point).
/// Open connections are dropped at shutdown rather than drained: SDK clients keep idle keep-alive
/// connections, which would otherwise hold a graceful shutdown open.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let state: Shared = Arc::new(Mutex::new(Sim::new(config)));
    serve_state(listener, state, shutdown).await
}

async fn serve_state(
    listener: tokio::net::TcpListener,
    state: Shared,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::select! {
        r = axum::serve(listener, server::router(state.clone())) => r,
        // Never ends on its own: publishes job state-change events while the server runs.
        () = events::run_publisher(state) => Ok(()),
        () = shutdown => Ok(()),
    }
}

/// A running simulator on its own thread and runtime (so it works from sync tests, from any tokio
/// runtime flavour, and keeps answering while a test blocks). Stops when dropped.
pub struct SimHandle {
    addr: SocketAddr,
    endpoint: String,
    state: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts a simulator on 127.0.0.1 (`config.port`, 0 = a free port). Panics if it cannot bind: it is
/// test tooling, and the message says why.
pub fn start(config: SimConfig) -> SimHandle {
    let port = config.port;
    try_start(config)
        .unwrap_or_else(|e| panic!("bedrock-sim could not listen on 127.0.0.1:{port}: {e}"))
}

/// Like [`start`], returning the bind error instead of panicking.
pub fn try_start(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state: Shared = Arc::new(Mutex::new(Sim::new(config)));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = state.clone();
    let thread = std::thread::Builder::new()
        .name(format!("bedrock-sim-{}", addr.port()))
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("bedrock-sim: cannot build a runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("bedrock-sim: cannot use the listener: {e}");
                        return;
                    }
                };
                if let Err(e) = serve_state(listener, served, async {
                    let _ = stopped.await;
                })
                .await
                {
                    eprintln!("bedrock-sim stopped with an error: {e}");
                }
            });
        })?;
    Ok(SimHandle {
        addr,
        endpoint: format!("http://{addr}"),
        state,
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`, for `endpoint_url` or `AWS_ENDPOINT_URL_BEDROCK`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next `n` custom model deployments created end Failed with `message`.
    pub fn fail_next_deployments(&self, n: u32, message: &str) {
        self.inject(Fault::FailDeployment {
            count: Some(n),
            name_contains: None,
            message: Some(message.into()),
        });
    }

    /// Custom model deployments created from now on stay Creating for `ms` (None: as long as a
    /// Provisioned Throughput).
    pub fn set_deployment_ms(&self, ms: Option<u64>) {
        lock(&self.state).config.deployment_ms = ms;
    }

    /// Sets the share (0..=1) of prompts a student answers like its teacher (Converse). Panics
    /// outside 0..=1.
    pub fn set_student_quality(&self, quality: f64) {
        match sim::check_student_quality(quality) {
            Ok(q) => lock(&self.state).config.student_quality = q,
            Err(e) => panic!("bedrock-sim: {e}"),
        }
    }

    pub fn student_quality(&self) -> f64 {
        lock(&self.state).config.student_quality
    }

    /// The next `n` Converse calls get ModelErrorException.
    pub fn model_error_next(&self, n: u32) {
        self.inject(Fault::ModelError {
            count: n,
            message: None,
        });
    }

    /// Adds a fault (see [`Fault`]). Panics on a fault the real API could not produce.
    pub fn inject(&self, fault: Fault) {
        if let Err(e) = lock(&self.state).faults.add(fault) {
            panic!("bedrock-sim: {e}");
        }
    }

    /// The next `n` calls of any operation get ThrottlingException.
    pub fn throttle_next(&self, n: u32) {
        self.inject(Fault::Throttle {
            count: n,
            operation: None,
        });
    }

    /// The next `n` calls of `op` get ThrottlingException.
    pub fn throttle_next_of(&self, op: Operation, n: u32) {
        self.inject(Fault::Throttle {
            count: n,
            operation: Some(op),
        });
    }

    /// The next `n` CreateModelCustomizationJob calls get ServiceQuotaExceededException.
    pub fn quota_exceeded_next(&self, n: u32) {
        self.inject(Fault::QuotaExceeded {
            count: n,
            operation: None,
        });
    }

    /// The next `n` jobs created end Failed (in training) with `message`.
    pub fn fail_next_jobs(&self, n: u32, message: &str) {
        self.inject(Fault::FailJob {
            count: Some(n),
            name_contains: None,
            message: Some(message.into()),
            phase: Phase::Training,
        });
    }

    /// Every job created from now on whose name contains `name_part` ends Failed with `message`.
    pub fn fail_jobs_named(&self, name_part: &str, message: &str) {
        self.inject(Fault::FailJob {
            count: None,
            name_contains: Some(name_part.into()),
            message: Some(message.into()),
            phase: Phase::Training,
        });
    }

    /// The next `n` jobs created never finish on their own (InProgress until stopped).
    pub fn hang_next_jobs(&self, n: u32) {
        self.inject(Fault::HangJob {
            count: Some(n),
            name_contains: None,
        });
    }

    /// The next `n` Provisioned Throughputs created end Failed with `message`.
    pub fn fail_next_throughputs(&self, n: u32, message: &str) {
        self.inject(Fault::FailThroughput {
            count: Some(n),
            name_contains: None,
            message: Some(message.into()),
        });
    }

    pub fn active_faults(&self) -> Vec<Fault> {
        lock(&self.state).faults.active()
    }

    pub fn clear_faults(&self) {
        lock(&self.state).faults.clear();
    }

    /// Every Bedrock API call answered so far, oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.state).calls.clone()
    }

    /// The calls of one operation.
    pub fn calls_of(&self, op: Operation) -> Vec<CallRecord> {
        lock(&self.state)
            .calls
            .iter()
            .filter(|c| c.is(op))
            .cloned()
            .collect()
    }

    pub fn clear_calls(&self) {
        lock(&self.state).calls.clear();
    }

    /// Every job state-change event so far (published, dropped, failed or unsent), oldest first.
    pub fn events(&self) -> Vec<EventRecord> {
        lock(&self.state).events.clone()
    }

    /// The state-change events of one job.
    pub fn events_of(&self, job_name: &str) -> Vec<EventRecord> {
        lock(&self.state)
            .events
            .iter()
            .filter(|e| e.job_name == job_name)
            .cloned()
            .collect()
    }

    /// The next `n` job state-change events are dropped (not published).
    pub fn drop_next_events(&self, n: u32) {
        self.inject(Fault::DropEvents {
            count: Some(n),
            name_contains: None,
            job_status: None,
        });
    }

    /// Every job state-change event is dropped until the faults are cleared.
    pub fn drop_all_events(&self) {
        self.inject(Fault::DropEvents {
            count: None,
            name_contains: None,
            job_status: None,
        });
    }

    /// Changes durations for jobs and Provisioned Throughputs created from now on.
    pub fn set_timing(&self, timing: Timing) {
        lock(&self.state).config.timing = timing;
    }

    /// Forgets all jobs, Provisioned Throughputs, deployments, faults, calls and events.
    pub fn reset(&self) {
        lock(&self.state).reset();
    }

    /// Stops the server now (dropping the handle does the same).
    pub fn shutdown(self) {}
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
