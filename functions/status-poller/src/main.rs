//! status-poller Lambda, four entry points of one binary:
//! - `{"runId","attempt",...}` → the job's status, recorded on the run, plus whether it is terminal
//!   and how long to wait before the next poll (`distillery_core::app::poll_status`; polling mode);
//! - `{"runId","taskToken"}` → an entry of the state machine's wait for the job's end (event mode,
//!   `.waitForTaskToken`): records the token, polls once on a re-entry after a fallback timeout
//!   (`distillery_core::app::track_job`);
//! - a Bedrock `Model Customization Job State Change` event from the EventBridge rule → the status
//!   recorded on the run and, on an end, the waiting execution resumed with `SendTaskSuccess`;
//! - `{"reconcile": {"dryRun": false}}` → one reconciler pass (`distillery_core::app::reconcile`),
//!   invoked by the EventBridge schedule. The SAM template deploys this mode as its own function
//!   (`ReconcilerFunction`, same binary) so each mode gets only the permissions it needs: the poll
//!   loop never needs to list, delete throughput or publish to SNS. The reconciler's expiry pass
//!   announces `expiring_soon` and `retired` through the notifier's own delivery (SNS and Slack,
//!   recorded on the run).
//!
//! Why a mode and not a sixth crate: the reconciler polls training runs with the very same
//! `StatusPoller`, and needs the same clients; a second binary would duplicate this wiring.

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::{
    init_tracing, notifier_from_env, run_ledger_from_env, serve_step, StepFunction,
};
use distillery_aws::sfn::StepFunctionsCallbacks;
use distillery_aws::sns::SnsPublisher;
use distillery_core::app::notify::{MilestoneSender, Notifier};
use distillery_core::app::poll_status::{
    PollConfig, PollStatusInput, PollStatusOutput, StatusPoller,
};
use distillery_core::app::reconcile::{
    ReconcileConfig, ReconcileInput, ReconcileReport, Reconciler,
};
use distillery_core::app::track_job::{
    AwaitJobInput, AwaitJobOutput, JobEventOutput, JobStateChange, JobTracker,
};
use distillery_core::config::Env;
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::StepError;
use distillery_core::ports::{MessagePublisher, SystemClock};
use serde::{Deserialize, Serialize};

/// The inputs this binary serves, told apart by one key: `detail-type` (an EventBridge event),
/// `reconcile`, `taskToken`; anything else must be a poll input (so a malformed poll input gets the
/// poll input's own error).
#[derive(Debug)]
enum Request {
    Reconcile(ReconcileInput),
    Poll(PollStatusInput),
    AwaitJob(AwaitJobInput),
    JobEvent(Box<JobStateChange>),
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut v = serde_json::Value::deserialize(d)?;
        if JobStateChange::is_event_payload(&v) {
            return JobStateChange::from_json(&v)
                .map(|e| Request::JobEvent(Box::new(e)))
                .map_err(|e| D::Error::custom(e.message));
        }
        if v.get("taskToken").is_some() {
            return serde_json::from_value(v)
                .map(Request::AwaitJob)
                .map_err(D::Error::custom);
        }
        match v.as_object_mut().and_then(|o| o.remove("reconcile")) {
            Some(r) => serde_json::from_value(r)
                .map(Request::Reconcile)
                .map_err(|e| D::Error::custom(format!("field 'reconcile': {e}"))),
            None => serde_json::from_value(v)
                .map(Request::Poll)
                .map_err(D::Error::custom),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Response {
    Poll(PollStatusOutput),
    Reconcile(ReconcileReport),
    AwaitJob(AwaitJobOutput),
    JobEvent(JobEventOutput),
}

const STATUS_POLLER: StepFunction<Request> = StepFunction {
    name: "status-poller",
    expected_shape: r#"{"runId": string, "attempt": number, "consecutiveErrors"?: number, "giveUp"?: boolean} or {"runId": string, "taskToken": string} or a Bedrock "Model Customization Job State Change" event or {"reconcile": {"dryRun"?: boolean}}"#,
    span: |input| match input {
        Request::Poll(p) => {
            tracing::info_span!("poll_status", run_id = %p.run_id, attempt = p.attempt)
        }
        Request::AwaitJob(a) => tracing::info_span!("await_job", run_id = %a.run_id),
        Request::JobEvent(e) => tracing::info_span!(
            "job_event",
            event_id = %e.id,
            job_name = %e.detail.job_name,
            job_status = %e.detail.job_status
        ),
        Request::Reconcile(_) => tracing::info_span!("reconcile"),
    },
};

/// The clients and configuration the use cases borrow, owned for the container's life.
struct Service {
    ledger: DynamoRunLedger,
    bedrock: BedrockCustomizationService,
    limits: Limits,
    config: PollConfig,
    /// `TOPIC_ARN`, for the reconciler's summary; unset in the poll-only function.
    publisher: Option<SnsPublisher>,
    /// The reconciler's milestones (`expiring_soon`, `retired`), delivered as the notifier
    /// Lambda delivers every milestone; built when `TOPIC_ARN` is set.
    notifier: Option<Notifier>,
    callbacks: StepFunctionsCallbacks,
}

impl Service {
    fn poller(&self) -> StatusPoller<'_> {
        StatusPoller {
            ledger: &self.ledger,
            bedrock: &self.bedrock,
            clock: &SystemClock,
            config: self.config.clone(),
        }
    }

    fn tracker(&self) -> JobTracker<'_> {
        JobTracker {
            poller: self.poller(),
            callbacks: &self.callbacks,
        }
    }

    async fn handle(&self, input: Request) -> Result<Response, StepError> {
        match input {
            Request::AwaitJob(input) => {
                let out = self.tracker().await_job(&input).await?;
                tracing::info!(action = %out.action, entry = out.entry, fallback_poll = out.fallback_poll, "wait entered");
                Ok(Response::AwaitJob(out))
            }
            Request::JobEvent(event) => {
                Ok(Response::JobEvent(self.tracker().on_event(&event).await?))
            }
            Request::Poll(input) => {
                let out = self.poller().poll(&input).await?;
                tracing::info!(outcome = ?out.outcome, job_status = %out.job_status, next_wait_seconds = out.next_wait_seconds, "polled");
                Ok(Response::Poll(out))
            }
            Request::Reconcile(reconcile) => {
                let reconciler = Reconciler {
                    ledger: &self.ledger,
                    bedrock: &self.bedrock,
                    publisher: self.publisher.as_ref().map(|p| p as &dyn MessagePublisher),
                    notifier: self.notifier.as_ref().map(|n| n as &dyn MilestoneSender),
                    clock: &SystemClock,
                    config: ReconcileConfig::from_env(&self.limits, reconcile.dry_run)?,
                };
                let report = reconciler.reconcile().await?;
                tracing::info!(
                    findings = report.findings.len(),
                    dry_run = report.dry_run,
                    "reconciled"
                );
                Ok(Response::Reconcile(report))
            }
        }
    }
}

/// The service with its clients, built once per container. A configuration problem is returned by
/// every invocation as a typed `ConfigInvalid` error (see `serve_step`), not an opaque init failure.
fn build(sdk: &aws_config::SdkConfig) -> Result<Service, StepError> {
    let limits = Limits::load()?;
    let config = PollConfig::from_env(&limits)?;
    let topic_arn = Env::process().optional_string("TOPIC_ARN");
    let notifier = match &topic_arn {
        Some(t) => Some(notifier_from_env(sdk, t.clone())?),
        None => None,
    };
    Ok(Service {
        ledger: run_ledger_from_env(sdk)?,
        bedrock: BedrockCustomizationService::from_conf(sdk),
        limits,
        config,
        publisher: topic_arn.map(|t| SnsPublisher::from_conf(sdk, t)),
        notifier,
        callbacks: StepFunctionsCallbacks::from_conf(sdk),
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = build(&sdk);
    serve_step(STATUS_POLLER, &service, |service, input| {
        service.handle(input)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_inputs_parse_and_a_bad_poll_input_says_what_is_wrong() {
        let r: Request = serde_json::from_str(r#"{"reconcile":{"dryRun":true}}"#).unwrap();
        assert!(matches!(
            r,
            Request::Reconcile(ReconcileInput { dry_run: true })
        ));
        let r: Request = serde_json::from_str(r#"{"reconcile":{}}"#).unwrap();
        assert!(matches!(
            r,
            Request::Reconcile(ReconcileInput { dry_run: false })
        ));
        let r: Request = serde_json::from_str(r#"{"runId":"run-1","attempt":2}"#).unwrap();
        assert!(matches!(r, Request::Poll(p) if p.attempt == 2));
        let e = serde_json::from_str::<Request>(r#"{"attempt":2}"#).unwrap_err();
        assert!(e.to_string().contains("runId"), "{e}");
        let r: Request = serde_json::from_str(r#"{"runId":"run-1","taskToken":"AQ"}"#).unwrap();
        assert!(matches!(r, Request::AwaitJob(a) if a.task_token == "AQ"));
        let e = serde_json::from_str::<Request>(r#"{"taskToken":"AQ"}"#).unwrap_err();
        assert!(e.to_string().contains("runId"), "{e}");
        let sample = include_str!("../../../events/bedrock-job-state-change-completed.json");
        let r: Request = serde_json::from_str(sample).unwrap();
        assert!(matches!(r, Request::JobEvent(e) if e.detail.job_status == "Completed"));
        let e = serde_json::from_str::<Request>(
            r#"{"detail-type":"Batch Inference Job State Change","source":"aws.bedrock","detail":{"jobName":"j","jobArn":"a","jobStatus":"Completed"}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("'detail-type'"), "{e}");
    }
}
