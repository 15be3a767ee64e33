//! Fakes of the ports the use-case tests of every crate share: a clock tests set by hand and a
//! scripted Bedrock control plane that logs every call. (The ledger and the dataset store have
//! in-memory adapters in [`super::memory`]; integration tests use the real adapters.)

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::ports::{
    Clock, CustomizationService, DeploymentRequest, DeploymentState, DeploymentStatus,
    DistillationJobRequest, JobState, PortError, ThroughputRequest, ThroughputState,
    ThroughputStatus,
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
/// `stop_job`, `create_pt`, `get_pt`, `delete_pt`, `create_deployment`, `get_deployment`,
/// `delete_deployment`, `list_deployments`).
/// - `create_distillation_job` records the request and returns one ARN per client request token (as
///   Bedrock's idempotency does), or the next queued error of `create_job_errors`.
/// - `get_job` answers from the `jobs` queue (the last answer repeats; `NotFound` when empty).
/// - Provisioned Throughputs are created in `Creating` and kept by name and by ARN;
///   [`ScriptedBedrock::set_pt_status`] moves them all.
/// - Custom model deployments likewise (one ARN per client request token, as Bedrock's idempotency
///   does; another token for a name in use is `Validation`, as Bedrock answers);
///   [`ScriptedBedrock::set_deployment_status`] moves them all, delete removes one.
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
    /// Live deployments by ARN.
    pub deployments: Mutex<HashMap<String, DeploymentState>>,
    pub deployment_requests: Mutex<Vec<DeploymentRequest>>,
    /// Errors the next `create_custom_model_deployment` calls return, first queued first returned.
    pub create_deployment_errors: Mutex<VecDeque<PortError>>,
    pub create_pt_errors: Mutex<VecDeque<PortError>>,
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

    /// Every `create_custom_model_deployment` request so far, failed ones included.
    pub fn deployment_requests(&self) -> Vec<DeploymentRequest> {
        lock(&self.deployment_requests).clone()
    }

    /// The next `create_provisioned_throughput` call fails with `e`.
    pub fn fail_next_pt(&self, e: PortError) {
        lock(&self.create_pt_errors).push_back(e);
    }

    /// The next `create_custom_model_deployment` call fails with `e`.
    pub fn fail_next_deployment(&self, e: PortError) {
        lock(&self.create_deployment_errors).push_back(e);
    }

    /// Moves every deployment to `status` with failure message `msg`.
    pub fn set_deployment_status(&self, status: DeploymentStatus, msg: Option<&str>) {
        for d in lock(&self.deployments).values_mut() {
            d.status = status;
            d.failure_message = msg.map(str::to_string);
        }
    }

    fn log(&self, op: &str) {
        lock(&self.calls).push(op.to_string());
    }
}

/// The ARN a token gets, so a retry with the same token finds the same deployment.
fn deployment_arn(token: &str) -> String {
    let id: String = token
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/{id}")
}

/// A deployment by ARN or by name.
fn find_deployment<'a>(
    deployments: &'a HashMap<String, DeploymentState>,
    id: &str,
) -> Option<&'a DeploymentState> {
    deployments
        .get(id)
        .or_else(|| deployments.values().find(|d| d.deployment_name == id))
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
        if let Some(e) = lock(&self.create_pt_errors).pop_front() {
            return Err(e);
        }
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

    async fn delete_provisioned_throughput(&self, id: &str) -> Result<(), PortError> {
        self.log("delete_pt");
        // Gone by name and by ARN, as in Bedrock; deleting one that is not there is not an error
        // here (tests of refused deletes use the scripted failures).
        let mut pts = lock(&self.pts);
        if let Some(arn) = pts.get(id).map(|s| s.provisioned_model_arn.clone()) {
            pts.retain(|_, s| s.provisioned_model_arn != arn);
        }
        Ok(())
    }

    async fn create_custom_model_deployment(
        &self,
        req: &DeploymentRequest,
    ) -> Result<String, PortError> {
        self.log("create_deployment");
        lock(&self.deployment_requests).push(req.clone());
        if let Some(e) = lock(&self.create_deployment_errors).pop_front() {
            return Err(e);
        }
        let arn = deployment_arn(&req.client_request_token);
        let mut deployments = lock(&self.deployments);
        if deployments.contains_key(&arn) {
            return Ok(arn);
        }
        if deployments
            .values()
            .any(|d| d.deployment_name == req.deployment_name)
        {
            return Err(PortError::Validation(format!(
                "A custom model deployment named '{}' already exists",
                req.deployment_name
            )));
        }
        deployments.insert(
            arn.clone(),
            DeploymentState {
                deployment_arn: arn.clone(),
                deployment_name: req.deployment_name.clone(),
                model_arn: req.model_arn.clone(),
                status: DeploymentStatus::Creating,
                failure_message: None,
                created_at: None,
            },
        );
        Ok(arn)
    }

    async fn get_custom_model_deployment(&self, id: &str) -> Result<DeploymentState, PortError> {
        self.log("get_deployment");
        find_deployment(&lock(&self.deployments), id)
            .cloned()
            .ok_or_else(|| PortError::NotFound(format!("no custom model deployment {id}")))
    }

    async fn delete_custom_model_deployment(&self, id: &str) -> Result<(), PortError> {
        self.log("delete_deployment");
        let mut deployments = lock(&self.deployments);
        let arn = find_deployment(&deployments, id)
            .map(|d| d.deployment_arn.clone())
            .ok_or_else(|| PortError::NotFound(format!("no custom model deployment {id}")))?;
        deployments.remove(&arn);
        Ok(())
    }

    async fn list_custom_model_deployments(&self) -> Result<Vec<DeploymentState>, PortError> {
        self.log("list_deployments");
        let mut all: Vec<DeploymentState> = lock(&self.deployments).values().cloned().collect();
        all.sort_by(|a, b| a.deployment_arn.cmp(&b.deployment_arn));
        Ok(all)
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

/// A [`crate::app::notify::MilestoneSender`] that renders each milestone from the run as the ledger
/// holds it (refusing one the run's status contradicts, as the notifier does) and keeps the
/// messages, so a test reads what people would be told.
pub struct RenderingSender<'a> {
    pub ledger: &'a dyn crate::ports::RunLedger,
    pub clock: &'a dyn Clock,
    pub prices: crate::domain::catalog::Prices,
    pub sent: Mutex<Vec<crate::domain::messages::RenderedMessage>>,
}

impl<'a> RenderingSender<'a> {
    pub fn new(ledger: &'a dyn crate::ports::RunLedger, clock: &'a dyn Clock) -> Self {
        RenderingSender {
            ledger,
            clock,
            prices: crate::domain::catalog::Prices::builtin(),
            sent: Mutex::new(Vec::new()),
        }
    }

    pub fn sent(&self) -> Vec<crate::domain::messages::RenderedMessage> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl crate::app::notify::MilestoneSender for RenderingSender<'_> {
    async fn send(
        &self,
        run_id: &crate::domain::run::RunId,
        milestone: crate::domain::messages::Milestone,
    ) -> Result<crate::app::notify::NotifyOutput, crate::domain::errors::StepError> {
        use crate::domain::messages::{render_for_run, MessageContext};
        let run = self.ledger.get(run_id).await?.ok_or_else(|| {
            crate::domain::errors::StepError::not_found(format!("{run_id} not found"))
        })?;
        if !milestone.announces().contains(&run.status) {
            return Err(run.refuse(&format!("announce '{milestone}'")));
        }
        let ctx = MessageContext {
            region: "us-east-1",
            prices: &self.prices,
            now: self.clock.now(),
            caught: None,
        };
        lock(&self.sent).push(render_for_run(milestone, &run, &ctx));
        Ok(crate::app::notify::NotifyOutput {
            run_id: Some(run_id.to_string()),
            milestone: milestone.as_str().to_string(),
            sns: crate::app::notify::ChannelOutcome::Delivered,
            slack: crate::app::notify::ChannelOutcome::Disabled,
        })
    }
}

/// How a [`ScriptedRuntime`] answers a call.
pub type Responder =
    Box<dyn Fn(&crate::ports::ConverseRequest) -> Result<String, PortError> + Send + Sync>;

/// A Bedrock runtime whose answers a test scripts with a function of the request, that logs every
/// call and can fail the next calls. Usage: one token per 4 bytes (the simulator's rule); latency
/// 100 ms + 1 ms per output token.
pub struct ScriptedRuntime {
    respond: Responder,
    pub calls: Mutex<Vec<crate::ports::ConverseRequest>>,
    /// Errors the next calls return, first queued first returned.
    pub errors: Mutex<VecDeque<PortError>>,
}

impl ScriptedRuntime {
    pub fn new(
        respond: impl Fn(&crate::ports::ConverseRequest) -> Result<String, PortError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        ScriptedRuntime {
            respond: Box::new(respond),
            calls: Mutex::new(Vec::new()),
            errors: Mutex::new(VecDeque::new()),
        }
    }

    pub fn fail_next(&self, e: PortError) {
        lock(&self.errors).push_back(e);
    }

    pub fn calls(&self) -> Vec<crate::ports::ConverseRequest> {
        lock(&self.calls).clone()
    }

    /// The model ids called, in order.
    pub fn models_called(&self) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .map(|c| c.model_id.clone())
            .collect()
    }
}

#[async_trait]
impl crate::ports::ModelRuntime for ScriptedRuntime {
    async fn converse(
        &self,
        req: &crate::ports::ConverseRequest,
    ) -> Result<crate::ports::ConverseAnswer, PortError> {
        lock(&self.calls).push(req.clone());
        if let Some(e) = lock(&self.errors).pop_front() {
            return Err(e);
        }
        let text = (self.respond)(req)?;
        let tokens = |s: &str| s.len().div_ceil(4) as u64;
        let input = req.system.as_deref().map_or(0, tokens)
            + req.messages.iter().map(|m| tokens(&m.text)).sum::<u64>();
        let output = tokens(&text);
        Ok(crate::ports::ConverseAnswer {
            text,
            input_tokens: input,
            output_tokens: output,
            latency_ms: 100 + output,
            stop_reason: "end_turn".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, token: &str) -> DeploymentRequest {
        DeploymentRequest {
            deployment_name: name.into(),
            model_arn: "arn:aws:bedrock:us-east-1:123456789012:custom-model/m/abcdef012345".into(),
            description: None,
            client_request_token: token.into(),
            tags: Default::default(),
        }
    }

    #[tokio::test]
    async fn scripted_deployments_are_idempotent_unique_and_deletable() {
        let b = ScriptedBedrock::default();
        let arn = b
            .create_custom_model_deployment(&request("d-od-1", "tok-1"))
            .await
            .unwrap();
        let again = b
            .create_custom_model_deployment(&request("d-od-1", "tok-1"))
            .await
            .unwrap();
        assert_eq!(arn, again);
        let dup = b
            .create_custom_model_deployment(&request("d-od-1", "tok-2"))
            .await
            .unwrap_err();
        assert!(matches!(dup, PortError::Validation(_)), "{dup}");
        let by_name = b.get_custom_model_deployment("d-od-1").await.unwrap();
        assert_eq!(by_name.deployment_arn, arn);
        assert_eq!(by_name.status, DeploymentStatus::Creating);
        b.set_deployment_status(DeploymentStatus::Failed, Some("no capacity"));
        let failed = b.get_custom_model_deployment(&arn).await.unwrap();
        assert_eq!(failed.failure_message.as_deref(), Some("no capacity"));
        assert_eq!(b.list_custom_model_deployments().await.unwrap().len(), 1);
        b.delete_custom_model_deployment(&arn).await.unwrap();
        assert!(matches!(
            b.get_custom_model_deployment(&arn).await,
            Err(PortError::NotFound(_))
        ));
        assert_eq!(b.count("create_deployment"), 3);
        assert_eq!(b.deployment_requests().len(), 3);
    }
}
