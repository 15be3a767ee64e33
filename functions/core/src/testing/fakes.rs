//! Fakes of the ports the use-case tests of every crate share: a clock tests set by hand and a
//! scripted Bedrock control plane that logs every call. (The ledger and the dataset store have
//! in-memory adapters in [`super::memory`]; integration tests use the real adapters.)

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::ports::{
    Clock, CustomizationService, DistillationJobRequest, JobState, PortError, ThroughputRequest,
    ThroughputState, ThroughputStatus,
};

/// Locks a fake's state; a panic in another test thread must not poison every later assertion.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A clock that reads the time it was set to, until a test moves it.
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn at(t: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(t))
    }

    /// From now on the clock reads `t`.
    pub fn set(&self, t: DateTime<Utc>) {
        *lock(&self.0) = t;
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        *lock(&self.0) += d;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// A scripted Bedrock. Every call is logged by operation name (`create_job`, `get_job`,
/// `stop_job`, `create_pt`, `get_pt`, `delete_pt`).
/// - `create_distillation_job` records the request and returns one ARN per client request token (as
///   Bedrock's idempotency does), or the next queued error of `create_job_errors`.
/// - `get_job` answers from the `jobs` queue (the last answer repeats; `NotFound` when empty).
/// - Provisioned Throughputs are created in `Creating` and kept by name and by ARN;
///   [`ScriptedBedrock::set_pt_status`] moves them all.
#[derive(Default)]
pub struct ScriptedBedrock {
    pub calls: Mutex<Vec<String>>,
    pub job_requests: Mutex<Vec<DistillationJobRequest>>,
    /// Errors the next `create_distillation_job` calls return, first queued first returned.
    pub create_job_errors: Mutex<VecDeque<PortError>>,
    pub jobs: Mutex<VecDeque<Result<JobState, PortError>>>,
    /// The identifier (name or ARN) of every `get_job` call, in order.
    pub job_lookups: Mutex<Vec<String>>,
    pub pts: Mutex<HashMap<String, ThroughputState>>,
    pub pt_requests: Mutex<Vec<ThroughputRequest>>,
    /// Errors the next `stop_job` calls return, first queued first returned.
    pub stop_job_errors: Mutex<VecDeque<PortError>>,
}

impl ScriptedBedrock {
    /// `get_job` answers these, in order, the last one repeating.
    pub fn with_jobs(jobs: Vec<JobState>) -> Self {
        let s = Self::default();
        *lock(&s.jobs) = jobs.into_iter().map(Ok).collect();
        s
    }

    /// The next `create_distillation_job` call (after any already queued errors) fails with `e`.
    pub fn fail_next_create(&self, e: PortError) {
        lock(&self.create_job_errors).push_back(e);
    }

    pub fn fail_next_stop(&self, e: PortError) {
        lock(&self.stop_job_errors).push_back(e);
    }

    /// Every call so far, by operation name.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }

    /// How many calls of operation `op` were made.
    pub fn count(&self, op: &str) -> usize {
        self.calls().iter().filter(|c| c.as_str() == op).count()
    }

    /// Forgets the calls logged so far.
    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Every `create_distillation_job` request so far, failed ones included.
    pub fn job_requests(&self) -> Vec<DistillationJobRequest> {
        lock(&self.job_requests).clone()
    }

    /// The identifier (name or ARN) of every `get_job` call so far.
    pub fn job_lookups(&self) -> Vec<String> {
        lock(&self.job_lookups).clone()
    }

    /// Every `create_provisioned_throughput` request so far.
    pub fn pt_requests(&self) -> Vec<ThroughputRequest> {
        lock(&self.pt_requests).clone()
    }

    /// Moves every Provisioned Throughput to `status` with failure message `msg`.
    pub fn set_pt_status(&self, status: ThroughputStatus, msg: Option<&str>) {
        for pt in lock(&self.pts).values_mut() {
            pt.status = status;
            pt.failure_message = msg.map(str::to_string);
        }
    }

    fn log(&self, op: &str) {
        lock(&self.calls).push(op.to_string());
    }
}

#[async_trait]
impl CustomizationService for ScriptedBedrock {
    async fn create_distillation_job(
        &self,
        req: &DistillationJobRequest,
    ) -> Result<String, PortError> {
        self.log("create_job");
        lock(&self.job_requests).push(req.clone());
        if let Some(e) = lock(&self.create_job_errors).pop_front() {
            return Err(e);
        }
        Ok(format!(
            "arn:aws:bedrock:us-east-1:1:model-customization-job/{}",
            req.client_request_token
        ))
    }

    async fn get_job(&self, job: &str) -> Result<JobState, PortError> {
        self.log("get_job");
        lock(&self.job_lookups).push(job.to_string());
        let mut q = lock(&self.jobs);
        if q.len() > 1 {
            q.pop_front().unwrap()
        } else {
            q.front()
                .cloned()
                .unwrap_or_else(|| Err(PortError::NotFound("no job".into())))
        }
    }

    async fn stop_job(&self, _job: &str) -> Result<(), PortError> {
        self.log("stop_job");
        match lock(&self.stop_job_errors).pop_front() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn create_provisioned_throughput(
        &self,
        req: &ThroughputRequest,
    ) -> Result<String, PortError> {
        self.log("create_pt");
        lock(&self.pt_requests).push(req.clone());
        let arn = format!(
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/{}",
            req.provisioned_model_name
        );
        let state = ThroughputState {
            provisioned_model_arn: arn.clone(),
            status: ThroughputStatus::Creating,
            failure_message: None,
            model_units: req.model_units,
        };
        let mut pts = lock(&self.pts);
        pts.insert(req.provisioned_model_name.clone(), state.clone());
        pts.insert(arn.clone(), state);
        Ok(arn)
    }

    async fn get_provisioned_throughput(&self, id: &str) -> Result<ThroughputState, PortError> {
        self.log("get_pt");
        lock(&self.pts)
            .get(id)
            .cloned()
            .ok_or_else(|| PortError::NotFound(format!("no provisioned model {id}")))
    }

    async fn delete_provisioned_throughput(&self, _id: &str) -> Result<(), PortError> {
        self.log("delete_pt");
        Ok(())
    }
}

/// Task-token callbacks that record what was sent; tokens named in `closed` answer
/// [`TaskAnswer::Closed`] as Step Functions does for a wait that already ended.
#[derive(Default)]
pub struct RecordingCallbacks {
    sent: Mutex<Vec<(String, serde_json::Value)>>,
    closed: Mutex<Vec<String>>,
}

impl RecordingCallbacks {
    /// Every `send_success` so far: (token, output).
    pub fn sent(&self) -> Vec<(String, serde_json::Value)> {
        self.sent.lock().expect("callbacks lock").clone()
    }

    /// From now on, `token` is closed.
    pub fn close(&self, token: &str) {
        self.closed
            .lock()
            .expect("callbacks lock")
            .push(token.to_string());
    }
}

#[async_trait]
impl crate::ports::TaskCallbacks for RecordingCallbacks {
    async fn send_success(
        &self,
        task_token: &str,
        output: &serde_json::Value,
    ) -> Result<crate::ports::TaskAnswer, PortError> {
        self.sent
            .lock()
            .expect("callbacks lock")
            .push((task_token.to_string(), output.clone()));
        if self
            .closed
            .lock()
            .expect("callbacks lock")
            .iter()
            .any(|t| t == task_token)
        {
            return Ok(crate::ports::TaskAnswer::Closed(format!(
                "task {task_token} already closed"
            )));
        }
        Ok(crate::ports::TaskAnswer::Delivered)
    }
}
