//! Ports: the narrow traits the use cases need from the outside world. One AWS adapter each lives in
//! the `distillery-aws` crate; in-memory ones live in `crate::testing::memory` for tests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::domain::errors::{ErrorType, StepError};
use crate::domain::run::{Run, RunId, RunStatus, RunUpdate};
use crate::domain::settings::Commitment;
pub use crate::domain::snapshot::ObjectPin;

/// Why a port call failed, classified so the use case can map it to a typed step error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("invalid request: {0}")]
    Validation(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A read pinned to one object version ([`ObjectPin`]) found the key holding other bytes (S3's
    /// 412 on `If-Match`), or the pinned version no longer exists.
    #[error("object changed: {0}")]
    ObjectChanged(String),
    /// A conditional write failed or the service reported a conflict.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// Timeouts, 5xx, connection errors: retryable.
    #[error("transient: {0}")]
    Transient(String),
    #[error("{0}")]
    Other(String),
}

impl From<crate::domain::run::UpdateRefused> for PortError {
    fn from(e: crate::domain::run::UpdateRefused) -> Self {
        PortError::Conflict(e.0)
    }
}

impl PortError {
    /// The step error for this failure (typed as `From<PortError>` does), with what was being done
    /// put in front: `"{context}: {port error}"`. See [`StepError::context`].
    pub fn context(self, context: impl std::fmt::Display) -> StepError {
        StepError::from(self).context(context)
    }
}

impl From<PortError> for StepError {
    fn from(e: PortError) -> Self {
        let t = match &e {
            PortError::Throttled(_) => ErrorType::Throttled,
            PortError::QuotaExceeded(_) => ErrorType::QuotaExceeded,
            PortError::Validation(_) => ErrorType::ConfigInvalid,
            PortError::NotFound(_) => ErrorType::NotFound,
            PortError::ObjectChanged(_) => ErrorType::Conflict,
            PortError::Conflict(_) => ErrorType::Conflict,
            PortError::AccessDenied(_) => ErrorType::AccessDenied,
            PortError::Transient(_) => ErrorType::Transient,
            PortError::Other(_) => ErrorType::Internal,
        };
        StepError::new(t, e.to_string())
    }
}

/// Result of creating a run that may already exist.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created(Run),
    /// A run with this id was already recorded; this is it, unchanged.
    AlreadyExists(Run),
}

/// The run ledger (DynamoDB in AWS). Every write is conditional so retries are safe.
#[async_trait]
pub trait RunLedger: Send + Sync {
    /// Records a new run unless one with the same id exists (conditional put).
    async fn create(&self, run: &Run) -> Result<CreateOutcome, PortError>;
    async fn get(&self, run_id: &RunId) -> Result<Option<Run>, PortError>;
    /// Applies `update` only if the run's current status is one of `expected` (and, when the update
    /// changes status, the move is allowed). Fails with `PortError::Conflict` otherwise, or
    /// `PortError::NotFound`. Returns the run as written.
    async fn update(
        &self,
        run_id: &RunId,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<Run, PortError>;
    /// Newest first.
    async fn list_recent(&self, limit: usize) -> Result<Vec<Run>, PortError>;
    /// Newest first, one status (GSI in DynamoDB).
    async fn list_by_status(&self, status: RunStatus, limit: usize) -> Result<Vec<Run>, PortError>;
}

/// The account's distillation-job slots (`MAX_CONCURRENT_JOBS`): a run holds one from just before
/// its job is created until the job ends, so no more jobs run at once than the stack allows. Each
/// call is one atomic conditional write (one DynamoDB item in AWS), so two launchers racing for the
/// last slot cannot both win.
#[async_trait]
pub trait JobSlots: Send + Sync {
    /// Takes a slot for `run_id` if fewer than `max` are held. A run that already holds one keeps
    /// it ([`SlotGrant::AlreadyHeld`]: a retried launch, or a slot another wake-up gave it).
    async fn acquire(&self, run_id: &RunId, max: u32) -> Result<SlotGrant, PortError>;
    /// Gives the run's slot back (nothing when it holds none).
    async fn release(&self, run_id: &RunId) -> Result<(), PortError>;
    /// The runs holding a slot.
    async fn holders(&self) -> Result<Vec<RunId>, PortError>;
}

/// What [`JobSlots::acquire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotGrant {
    /// This call took a free slot for the run.
    Taken,
    /// The run held a slot already; nothing changed.
    AlreadyHeld,
    /// Every slot is held by other runs.
    Full,
}

impl SlotGrant {
    /// Whether the run holds a slot now.
    pub fn holds(self) -> bool {
        !matches!(self, SlotGrant::Full)
    }
}

/// An object to read, and what S3 knows about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    pub version_id: Option<String>,
    pub size: u64,
    /// User metadata without the `x-amz-meta-` prefix, keys lowercased.
    pub metadata: BTreeMap<String, String>,
}

/// A dataset's bytes as they arrive, chunk by chunk, never the whole body at once. The validation
/// engine is sans-I/O: each chunk is pushed into it (`DatasetValidator::push_bytes`), so the domain
/// needs no async runtime and the adapter decides how bytes are read.
pub type DatasetChunks = futures::stream::BoxStream<'static, Result<Vec<u8>, PortError>>;

/// An object Distillery wrote, as S3 answered the write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenObject {
    pub bucket: String,
    pub key: String,
    /// The ETag S3 gave the object, without quotes (for a multipart upload, not an MD5).
    pub etag: String,
    pub size: u64,
}

/// An object being written chunk by chunk (S3: a multipart upload, parts of at least 5 MiB, or one
/// PutObject when the whole object is smaller), so memory stays bounded whatever its size. Nothing
/// is visible at the key before `finish`; `abort` (or any failed call) leaves nothing behind.
#[async_trait]
pub trait SnapshotSink: Send {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), PortError>;
    async fn finish(self: Box<Self>) -> Result<WrittenObject, PortError>;
    async fn abort(self: Box<Self>) -> Result<(), PortError>;
}

/// Reads datasets and writes reports and snapshots (S3 in AWS).
#[async_trait]
pub trait DatasetStore: Send + Sync {
    /// The object's metadata; with a pin, of exactly that version (else `PortError::ObjectChanged`).
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<ObjectInfo, PortError>;
    /// Streams the object (with a pin, exactly that version, else `PortError::ObjectChanged`); the
    /// stream must not buffer the body whole.
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<(ObjectInfo, DatasetChunks), PortError>;
    /// Writes a small object (reports). Returns its `s3://` URI.
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<String, PortError>;
    /// Starts writing `s3://bucket/key` chunk by chunk (a run's dataset snapshot).
    async fn begin_snapshot(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Box<dyn SnapshotSink>, PortError>;
}

/// One object a listing returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// One page of a listing, in key order; `next` continues it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectPage {
    pub objects: Vec<ListedObject>,
    pub next: Option<String>,
}

/// Lists objects under a prefix, a page at a time so memory stays bounded however many there are
/// (S3 ListObjectsV2 in AWS; invocation logs are read this way).
#[async_trait]
pub trait ObjectLister: Send + Sync {
    /// The page after `continuation` (the first page with `None`).
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
    ) -> Result<ObjectPage, PortError>;
}

/// Training data for a distillation job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TrainingData {
    S3 {
        s3_uri: String,
    },
    InvocationLogs {
        s3_uri: String,
        use_prompt_response: bool,
        request_metadata_filters: Option<serde_json::Value>,
    },
}

/// Everything `CreateModelCustomizationJob` needs for a distillation job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistillationJobRequest {
    pub job_name: String,
    pub custom_model_name: String,
    pub role_arn: String,
    pub student: String,
    pub teacher: String,
    pub max_response_length: u32,
    pub training_data: TrainingData,
    pub output_s3_uri: String,
    pub client_request_token: String,
    pub job_tags: BTreeMap<String, String>,
    pub custom_model_tags: BTreeMap<String, String>,
    /// `customModelKmsKeyId`: the customer managed key the distilled model's weights are encrypted
    /// with (`None`: an AWS owned key).
    pub custom_model_kms_key_id: Option<String>,
}

/// Bedrock's job status, as Bedrock spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    InProgress,
    Completed,
    Failed,
    Stopping,
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    pub job_arn: String,
    pub status: JobStatus,
    pub validation: Option<String>,
    pub data_processing: Option<String>,
    pub training: Option<String>,
    pub failure_message: Option<String>,
    pub output_model_arn: Option<String>,
    pub output_model_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputRequest {
    pub provisioned_model_name: String,
    pub model_id: String,
    pub model_units: u32,
    pub commitment: Commitment,
    pub client_request_token: String,
    pub tags: BTreeMap<String, String>,
}

/// Provisioned Throughput status, as Bedrock spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThroughputStatus {
    Creating,
    InService,
    Updating,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputState {
    pub provisioned_model_arn: String,
    pub status: ThroughputStatus,
    pub failure_message: Option<String>,
    pub model_units: u32,
}

/// One entry of ListModelCustomizationJobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    pub job_arn: String,
    pub job_name: String,
    pub status: JobStatus,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub custom_model_arn: Option<String>,
}

/// One entry of ListProvisionedModelThroughputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThroughputSummary {
    pub provisioned_model_arn: String,
    pub provisioned_model_name: String,
    pub status: ThroughputStatus,
    /// The model it serves (a custom model ARN for Distillery's).
    pub model_arn: String,
    pub model_units: u32,
    /// When a commitment term ends; Bedrock refuses to delete before then. None = no commitment.
    pub commitment_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What `CreateCustomModelDeployment` needs: an on-demand deployment of a custom model (pay per
/// token, nothing when idle); its ARN is the `modelId` for Converse/InvokeModel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRequest {
    /// 1–63 chars of `([0-9a-zA-Z][_-]?)+`, unique in the account and Region
    /// (`naming::deployment_name`).
    pub deployment_name: String,
    /// The custom model ARN (a completed job's output model).
    pub model_arn: String,
    pub description: Option<String>,
    /// Makes a retried create the same create (`naming::deployment_client_request_token`).
    pub client_request_token: String,
    pub tags: BTreeMap<String, String>,
}

/// A custom model deployment's status, as Bedrock spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    Creating,
    Active,
    Failed,
}

/// A custom model deployment as GetCustomModelDeployment (or one ListCustomModelDeployments entry)
/// describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentState {
    pub deployment_arn: String,
    pub deployment_name: String,
    /// The custom model it serves.
    pub model_arn: String,
    pub status: DeploymentStatus,
    /// Why it failed, when `status` is Failed.
    pub failure_message: Option<String>,
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The Bedrock model customization control plane.
#[async_trait]
pub trait CustomizationService: Send + Sync {
    /// Returns the job ARN.
    async fn create_distillation_job(
        &self,
        req: &DistillationJobRequest,
    ) -> Result<String, PortError>;
    /// `job` is a name or an ARN.
    async fn get_job(&self, job: &str) -> Result<JobState, PortError>;
    async fn stop_job(&self, job: &str) -> Result<(), PortError>;
    /// Returns the provisioned model ARN.
    async fn create_provisioned_throughput(
        &self,
        req: &ThroughputRequest,
    ) -> Result<String, PortError>;
    /// `id` is a name or an ARN.
    async fn get_provisioned_throughput(&self, id: &str) -> Result<ThroughputState, PortError>;
    async fn delete_provisioned_throughput(&self, id: &str) -> Result<(), PortError>;
    /// CreateCustomModelDeployment; returns the deployment ARN. The same request with the same
    /// client request token returns the same ARN; a name already used by another deployment is
    /// refused (Bedrock answers ValidationException: `PortError::Validation`).
    async fn create_custom_model_deployment(
        &self,
        req: &DeploymentRequest,
    ) -> Result<String, PortError>;
    /// `id` is a name or an ARN; a deployment that does not exist (or was deleted) is
    /// `PortError::NotFound`.
    async fn get_custom_model_deployment(&self, id: &str) -> Result<DeploymentState, PortError>;
    /// `id` is a name or an ARN.
    async fn delete_custom_model_deployment(&self, id: &str) -> Result<(), PortError>;

    // The reconciler's view of Bedrock. Default bodies refuse, so a test double that never lists
    // need not implement them; the AWS adapter and `testing::fakes::ScriptedBedrock` do.

    /// ListModelCustomizationJobs, every page (following `nextToken`), optionally one status only.
    async fn list_jobs(&self, status: Option<JobStatus>) -> Result<Vec<JobSummary>, PortError> {
        let _ = status;
        Err(PortError::Other(
            "ListModelCustomizationJobs is not implemented by this CustomizationService".into(),
        ))
    }
    /// ListProvisionedModelThroughputs, every page.
    async fn list_provisioned_throughputs(&self) -> Result<Vec<ThroughputSummary>, PortError> {
        Err(PortError::Other(
            "ListProvisionedModelThroughputs is not implemented by this CustomizationService"
                .into(),
        ))
    }
    /// ListCustomModelDeployments, every page.
    async fn list_custom_model_deployments(&self) -> Result<Vec<DeploymentState>, PortError> {
        Err(PortError::Other(
            "ListCustomModelDeployments is not implemented by this CustomizationService".into(),
        ))
    }
    /// ListTagsForResource: the resource's tags as a map.
    async fn list_tags(&self, resource_arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        let _ = resource_arn;
        Err(PortError::Other(
            "ListTagsForResource is not implemented by this CustomizationService".into(),
        ))
    }
}

/// Who said a turn of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ChatRole {
    User,
    Assistant,
}

/// One turn of a conversation sent to a model: text only (the evaluator sends nothing else).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTurn {
    pub role: ChatRole,
    pub text: String,
}

/// One Converse call: which model, the system prompt, the conversation (starting with a user turn,
/// roles alternating, as Bedrock requires) and the inference settings the caller fixes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConverseRequest {
    /// A foundation model id or ARN, an inference profile, a custom model deployment ARN or a
    /// Provisioned Throughput ARN.
    pub model_id: String,
    pub system: Option<String>,
    pub messages: Vec<ChatTurn>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
}

impl ConverseRequest {
    /// A single user turn to `model_id`.
    pub fn ask(model_id: &str, prompt: &str) -> Self {
        ConverseRequest {
            model_id: model_id.into(),
            system: None,
            messages: vec![ChatTurn {
                role: ChatRole::User,
                text: prompt.into(),
            }],
            max_tokens: None,
            temperature: None,
        }
    }
}

/// A model's answer and what it cost, as the runtime reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConverseAnswer {
    /// The text blocks of the answer, joined.
    pub text: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `metrics.latencyMs`: the service's own measure, not the caller's wall clock.
    pub latency_ms: u64,
    /// `end_turn`, `max_tokens`, ... as Bedrock names it.
    pub stop_reason: String,
}

/// The Bedrock runtime (Converse). Throttling is retried inside the adapter; what reaches the
/// caller is a failure after those retries.
#[async_trait]
pub trait ModelRuntime: Send + Sync {
    async fn converse(&self, req: &ConverseRequest) -> Result<ConverseAnswer, PortError>;
}

/// A message for people (SNS in AWS), with attributes subscribers can filter on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub subject: String,
    pub body: String,
    pub attributes: BTreeMap<String, String>,
}

#[async_trait]
pub trait MessagePublisher: Send + Sync {
    /// Returns the message id.
    async fn publish(&self, msg: &OutboundMessage) -> Result<String, PortError>;
}

/// A chat webhook (Slack incoming webhook). The URL is a secret: never log it. The adapter lays the
/// message out for its chat (Slack Block Kit is an adapter concern) from the message's content.
#[async_trait]
pub trait ChatWebhook: Send + Sync {
    async fn post(
        &self,
        message: &crate::domain::messages::RenderedMessage,
    ) -> Result<(), PortError>;
}

/// Secrets (Secrets Manager in AWS).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn secret_string(&self, secret_id: &str) -> Result<String, PortError>;
}

/// Starts a pipeline run (a Step Functions execution of the Distillery state machine in AWS).
#[async_trait]
pub trait PipelineStarter: Send + Sync {
    /// Starts one execution called `name` with `input` as its execution input; returns the
    /// execution's ARN. A name already used with another input is `PortError::Conflict`.
    async fn start(&self, name: &str, input: &serde_json::Value) -> Result<String, PortError>;
}

/// What became of a task-token callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskAnswer {
    /// The waiting state received the output and the execution moved on.
    Delivered,
    /// Nothing waits on that token any more (the wait timed out and was re-entered with a new
    /// token, the task was already answered, or the execution ended). Harmless: whoever waits now
    /// reads the run from the ledger.
    Closed(String),
}

/// Completes a state machine's wait on a task token (Step Functions `SendTaskSuccess` in AWS).
#[async_trait]
pub trait TaskCallbacks: Send + Sync {
    /// Resumes the state waiting on `task_token` with `output` as the task's result.
    async fn send_success(
        &self,
        task_token: &str,
        output: &serde_json::Value,
    ) -> Result<TaskAnswer, PortError>;
}

/// The clock, so tests control time.
pub trait Clock: Send + Sync {
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}
