//! The local stack's harness, shared by the demo and the end-to-end tests.
//!
//! `tests/stack/start.sh` starts moto, the Bedrock simulator, the Slack sink, sfn-local (Step
//! Functions' task-token endpoint) and `cargo lambda watch`
//! (serving the five real Lambda binaries) on free 127.0.0.1 ports and records them in
//! `.local/stack/stack.json`. [`Stack::connect`] reads that file. An upload goes the way it goes in
//! AWS: a real PutObject to the moto bucket, S3 → EventBridge → the rule's SQS target; the harness
//! takes the event from that queue and starts an execution of the real ASL file with it
//! (`tests/stack/runner/run-execution.mjs`, aws-local-stepfunctions on Node 22).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_core::domain::run::{Run, RunId};
use distillery_core::ports::RunLedger;
use distillery_core::testing::invocation_logs::{
    files_under, write_invocation_logs, GeneratedLogs, LogGenOptions,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod burst;
mod execution;
mod fakes;
pub use execution::{BetweenSteps, Execution, ExecutionRequest, NOTIFY_TASK};

/// Names of the resources `stack-setup` creates (the SAM template's, with a local flavour).
pub struct ResourceNames {
    pub bucket: &'static str,
    pub upload_events_queue: &'static str,
    pub upload_rule: &'static str,
    pub topic: &'static str,
    pub notifications_queue: &'static str,
    pub slack_secret: &'static str,
    pub table: &'static str,
    /// The SQS queue standing in for the status-poller Lambda as the job-event rule's target (moto's
    /// EventBridge cannot target Lambda); `job-event-relay` invokes the Lambda with each message.
    pub job_events_queue: &'static str,
    /// The EventBridge rule on the default bus matching Bedrock's job state-change events.
    pub job_event_rule: &'static str,
    /// The bucket Bedrock's model invocation logs go to (no event notifications: its objects start
    /// no runs), and the prefix inside it (INVOCATION_LOGS_S3_URI).
    pub invocation_logs_bucket: &'static str,
    pub invocation_logs_prefix: &'static str,
}

pub const RESOURCE_NAMES: ResourceNames = ResourceNames {
    bucket: "distillery-datasets",
    upload_events_queue: "distillery-upload-events",
    upload_rule: "distillery-dataset-uploaded",
    topic: "distillery-notifications",
    notifications_queue: "distillery-notifications-inbox",
    slack_secret: "distillery/slack-webhook",
    table: "distillery-runs",
    job_events_queue: "distillery-job-events",
    job_event_rule: "distillery-job-state-change",
    invocation_logs_bucket: "distillery-invocation-logs",
    invocation_logs_prefix: "bedrock-logs/",
};

/// The job-event rule's pattern (`events/bedrock-job-event-pattern.json`): Bedrock's "Model
/// Customization Job State Change" events of jobs named `distill-…`. One data file, so the SAM
/// template's rule can be checked against the one the local stack runs.
pub const JOB_EVENT_PATTERN: &str = include_str!("../../../events/bedrock-job-event-pattern.json");

/// What `stack-setup` created.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub moto_url: String,
    pub bucket: String,
    pub upload_prefix: String,
    pub upload_suffix: String,
    pub upload_events_queue_url: String,
    pub upload_rule: String,
    pub topic_arn: String,
    pub notifications_queue_url: String,
    pub slack_secret_arn: String,
    pub table_name: String,
    /// The job-event rule's SQS target (see [`ResourceNames::job_events_queue`]).
    #[serde(default)]
    pub job_events_queue_url: String,
    #[serde(default)]
    pub job_event_rule: String,
    /// `s3://<invocation_logs_bucket>/<invocation_logs_prefix>`.
    #[serde(default)]
    pub invocation_logs_uri: String,
}

/// `.local/stack/stack.json`, written by `start.sh`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackInfo {
    pub moto_url: String,
    pub bedrock_sim_url: String,
    pub slack_sink_url: String,
    pub lambda_invoke_url: String,
    /// The same functions with the template's guardrails on (`ALLOW_PROVISIONING=false`,
    /// `MAX_CONCURRENT_JOBS=2`): `--invoke-url` for an execution that must see such a stack.
    #[serde(default)]
    pub guarded_lambda_invoke_url: String,
    /// sfn-local, the Step Functions task-token endpoint (empty for a stack.json written before it).
    #[serde(default)]
    pub sfn_url: String,
    pub resources: Resources,
    /// Lambda environment given to `cargo lambda watch`, for the record.
    #[serde(default)]
    pub lambda_env: BTreeMap<String, String>,
    /// JSON lines, one per delivery `job-event-relay` made (see [`RelayDelivery`]).
    #[serde(default)]
    pub job_event_relay_log: Option<String>,
}

/// One line of `job-event-relay`'s delivery log: one attempt to hand one job state-change event from
/// the rule's queue to the status-poller Lambda.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayDelivery {
    /// When the attempt ended (RFC 3339).
    pub time: String,
    /// The EventBridge event's `id`.
    pub event_id: String,
    pub job_name: String,
    pub job_status: String,
    /// The event's `time` (when the job reached the status).
    pub event_time: String,
    /// SQS's ApproximateReceiveCount for this attempt (1 = first delivery).
    pub receive_count: u32,
    /// How long the Invoke call took.
    pub invoke_ms: u64,
    /// From the event's `time` to the end of the attempt (whole-second `time`, so ±1 s).
    pub event_age_ms: i64,
    /// `delivered` (deleted), `retrying` (function or invoke error; left for redelivery), or
    /// `gaveUp` (failed on the last allowed receive; deleted).
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// The repository root (this crate lives in `tests/stack`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// `$DISTILLERY_STACK_DIR`, or `.local/stack` in the repo.
pub fn state_dir() -> PathBuf {
    std::env::var_os("DISTILLERY_STACK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".local/stack"))
}

/// A message as the SNS → SQS subscription delivered it.
#[derive(Debug, Clone, Serialize)]
pub struct SnsDelivery {
    pub subject: Option<String>,
    pub message: String,
    pub attributes: BTreeMap<String, String>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

/// A connection to a running local stack.
pub struct Stack {
    pub info: StackInfo,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub ledger: DynamoRunLedger,
    /// `${Name}` values every execution gets (the runner's `--substitution`); see
    /// [`default_substitutions`]. An execution can override them ([`ExecutionRequest::substitution`]).
    pub default_substitutions: BTreeMap<String, String>,
    http: reqwest::Client,
    root: PathBuf,
}

/// The definition substitutions the deployed stack would give the state machine, for the local
/// stack: job tracking by Bedrock's EventBridge events, with a fallback poll after
/// `$JOB_EVENT_FALLBACK_SECONDS` (default 5). A definition that uses neither ignores them.
pub fn default_substitutions() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("JobTrackingMode".to_string(), "events".to_string()),
        (
            "JobEventFallbackSeconds".to_string(),
            std::env::var("JOB_EVENT_FALLBACK_SECONDS").unwrap_or_else(|_| "5".to_string()),
        ),
    ])
}

/// One call sfn-local received (`GET /local/calls`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SfnCall {
    /// `SendTaskSuccess`, `SendTaskFailure` or `SendTaskHeartbeat`.
    pub op: String,
    pub task_token: Option<String>,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// RFC 3339.
    pub time: String,
    /// `ok`, or the error code sfn-local answered (`TaskTimedOut`, ...).
    pub result: String,
}

impl Stack {
    /// Reads `stack.json` from [`state_dir`]; fails with a hint when the stack is not running.
    pub async fn connect() -> Result<Stack> {
        let path = state_dir().join("stack.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} not found: start the local stack first (tests/stack/start.sh, or `make e2e` / `make demo`, which start and stop it)",
                path.display()
            )
        })?;
        let info: StackInfo =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let cfg = distillery_test_support::sdk_config(&info.moto_url).await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&cfg)
                .force_path_style(true)
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::new(&cfg);
        let ledger = DynamoRunLedger::new(
            aws_sdk_dynamodb::Client::new(&cfg),
            info.resources.table_name.clone(),
        );
        Ok(Stack {
            info,
            s3,
            sqs,
            ledger,
            default_substitutions: default_substitutions(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            root: repo_root(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.info.resources.bucket
    }

    /// PutObject into the dataset bucket, with S3 user metadata (`x-amz-meta-<key>`). Returns the ETag.
    pub async fn upload(
        &self,
        key: &str,
        body: Vec<u8>,
        metadata: &[(&str, &str)],
    ) -> Result<String> {
        let mut put = self
            .s3
            .put_object()
            .bucket(self.bucket())
            .key(key)
            .content_type("application/x-ndjson")
            .body(body.into());
        for (k, v) in metadata {
            put = put.metadata(*k, *v);
        }
        let out = put
            .send()
            .await
            .with_context(|| format!("PutObject {key}"))?;
        Ok(out.e_tag.unwrap_or_default())
    }

    /// Takes the EventBridge "Object Created" event for `key` from the rule's SQS target, the way
    /// Step Functions would receive it. Events for other keys are removed from the queue (a stale
    /// event from an earlier test must never start this test's execution).
    pub async fn receive_upload_event(&self, key: &str, timeout: Duration) -> Result<Value> {
        let keys = [key.to_string()];
        match self.receive_upload_events(&keys, timeout).await {
            Ok(mut found) => found
                .remove(key)
                .context("the upload event vanished from the result"),
            Err(_) => bail!(
                "no S3 Object Created event for s3://{}/{key} arrived on the rule's queue within {:?} (is EventBridge notification on, and does the key match {}*{}?)",
                self.bucket(),
                timeout,
                self.info.resources.upload_prefix,
                self.info.resources.upload_suffix
            ),
        }
    }

    /// Upload → EventBridge → SQS: the upload's event, as the state machine would be started with it.
    pub async fn upload_and_receive(
        &self,
        key: &str,
        body: Vec<u8>,
        metadata: &[(&str, &str)],
    ) -> Result<Value> {
        self.upload(key, body, metadata).await?;
        self.receive_upload_event(key, Duration::from_secs(20))
            .await
    }

    /// Upload → EventBridge → SQS → one execution.
    pub async fn upload_and_run(
        &self,
        key: &str,
        body: Vec<u8>,
        metadata: &[(&str, &str)],
    ) -> Result<(Value, Execution)> {
        let event = self.upload_and_receive(key, body, metadata).await?;
        let execution = self.run_execution(&event).await?;
        Ok((event, execution))
    }

    pub async fn run(&self, run_id: &RunId) -> Result<Run> {
        self.ledger
            .get(run_id)
            .await
            .map_err(|e| anyhow!("reading run {run_id} from the ledger: {e}"))?
            .ok_or_else(|| anyhow!("run {run_id} is not in the ledger"))
    }

    /// Everything the SNS topic delivered to its SQS subscription since the last call.
    pub async fn take_sns_deliveries(&self) -> Result<Vec<SnsDelivery>> {
        let url = &self.info.resources.notifications_queue_url;
        let mut all = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .context("ReceiveMessage (SNS subscription)")?;
            let msgs = out.messages.unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            for m in msgs {
                if let Some(h) = &m.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(h)
                        .send()
                        .await
                        .context("DeleteMessage (SNS subscription)")?;
                }
                let envelope: Value = serde_json::from_str(m.body.as_deref().unwrap_or("null"))
                    .context("an SNS delivery is not JSON")?;
                let mut attributes = BTreeMap::new();
                if let Some(obj) = envelope["MessageAttributes"].as_object() {
                    for (k, v) in obj {
                        attributes.insert(k.clone(), v["Value"].as_str().unwrap_or("").to_string());
                    }
                }
                all.push(SnsDelivery {
                    subject: envelope["Subject"].as_str().map(str::to_string),
                    message: envelope["Message"].as_str().unwrap_or_default().to_string(),
                    attributes,
                    received_at: chrono::Utc::now(),
                });
            }
        }
        Ok(all)
    }

    /// Runs the operator CLI (`target/debug/distillery`, built first if missing) against this stack:
    /// the Lambdas' endpoints, credentials, Region and table.
    pub async fn cli(&self, args: &[&str]) -> Result<std::process::Output> {
        let bin = self.root.join("target/debug/distillery");
        if !bin.exists() {
            let built = tokio::process::Command::new("cargo")
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "distillery-cli",
                    "--bin",
                    "distillery",
                ])
                .current_dir(&self.root)
                .status()
                .await
                .context("cargo build -p distillery-cli")?;
            anyhow::ensure!(built.success(), "building the CLI failed");
        }
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.args(args)
            .env("AWS_ENDPOINT_URL", &self.info.moto_url)
            .env("AWS_ENDPOINT_URL_BEDROCK", &self.info.bedrock_sim_url)
            .env(
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                &self.info.bedrock_sim_url,
            )
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("TABLE_NAME", &self.info.resources.table_name);
        // `runs stop` of a queued run resumes its wait through Step Functions (sfn-local here).
        if !self.info.sfn_url.is_empty() {
            cmd.env("AWS_ENDPOINT_URL_SFN", &self.info.sfn_url);
        }
        cmd.output()
            .await
            .with_context(|| format!("running {}", bin.display()))
    }

    /// [`Self::invoke`] with a JSON payload, for a call that must succeed: the function's answer, or
    /// its `errorType: errorMessage` as the error.
    pub async fn invoke_json(&self, function: &str, payload: &Value) -> Result<Value> {
        match self
            .invoke(function, payload.to_string().into_bytes())
            .await?
        {
            Ok(answer) => Ok(answer),
            Err((error_type, message)) => bail!("{function} failed: {error_type}: {message}"),
        }
    }

    /// `s3://bucket/prefix/` of the stack's invocation logs (the validator's INVOCATION_LOGS_S3_URI).
    pub fn invocation_logs_uri(&self) -> &str {
        &self.info.resources.invocation_logs_uri
    }

    /// Writes generated invocation logs (`distillery_core::testing::invocation_logs`: several
    /// models, metadata, days, multi-turn and image records, duplicates, an offloaded body) into the
    /// stack's log bucket in Bedrock's layout, as Bedrock would. Returns what was written.
    pub async fn put_invocation_logs(&self, options: &LogGenOptions) -> Result<GeneratedLogs> {
        let dir = tempfile::tempdir()?;
        let generated = write_invocation_logs(dir.path(), options)?;
        let (bucket, prefix) = self
            .invocation_logs_uri()
            .strip_prefix("s3://")
            .and_then(|r| r.split_once('/'))
            .ok_or_else(|| anyhow!("bad invocation log URI {}", self.invocation_logs_uri()))?;
        for (rel, path) in files_under(dir.path())? {
            self.s3
                .put_object()
                .bucket(bucket)
                .key(format!("{prefix}{rel}"))
                .body(std::fs::read(&path)?.into())
                .send()
                .await
                .with_context(|| format!("PutObject s3://{bucket}/{prefix}{rel}"))?;
        }
        Ok(generated)
    }

    /// Reads an `s3://bucket/key` object.
    pub async fn read_s3_uri(&self, uri: &str) -> Result<Vec<u8>> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow!("not an s3:// URI: {uri}"))?;
        let (bucket, key) = rest
            .split_once('/')
            .ok_or_else(|| anyhow!("no key in {uri}"))?;
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("GetObject {uri}"))?;
        Ok(out.body.collect().await?.into_bytes().to_vec())
    }

    async fn get_json(&self, url: &str) -> Result<Value> {
        let r = self
            .http
            .get(url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = r.status();
        let text = r.text().await?;
        if !status.is_success() {
            bail!("GET {url}: HTTP {status}: {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON: {text}"))
    }

    async fn post_json(&self, url: &str, body: &Value) -> Result<()> {
        let r = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status();
        if !status.is_success() {
            bail!(
                "POST {url}: HTTP {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use distillery_core::domain::naming;

    /// The job-event rule matches Bedrock's documented event and the job names the launcher makes, and
    /// nothing it should not: a check of the pattern file itself (moto's matching is checked in e2e).
    #[test]
    fn the_job_event_pattern_selects_our_jobs_state_changes() {
        let pattern: Value = serde_json::from_str(JOB_EVENT_PATTERN).expect("pattern JSON");
        assert_eq!(pattern["source"], serde_json::json!(["aws.bedrock"]));
        let sample: Value = serde_json::from_str(include_str!(
            "../../../events/bedrock-job-state-change-sample.json"
        ))
        .unwrap();
        assert_eq!(
            pattern["detail-type"],
            serde_json::json!([sample["detail-type"]])
        );
        let prefix = pattern["detail"]["jobName"][0]["prefix"]
            .as_str()
            .expect("a prefix on detail.jobName");
        let run = RunId::for_object(
            "distillery-datasets",
            "incoming/support-tickets.jsonl",
            "\"e\"",
        );
        assert!(naming::job_name(&run, "support-tickets").starts_with(prefix));
        for fixture in [
            include_str!("../../../events/bedrock-job-state-change-completed.json"),
            include_str!("../../../events/bedrock-job-state-change-failed.json"),
        ] {
            let event: Value = serde_json::from_str(fixture).unwrap();
            assert!(event["detail"]["jobName"]
                .as_str()
                .unwrap()
                .starts_with(prefix));
        }
        // The documented sample's job is not one of ours.
        assert!(!sample["detail"]["jobName"]
            .as_str()
            .unwrap()
            .starts_with(prefix));
    }
}
