//! The notifier through real clients: SNS → SQS, Secrets Manager and the DynamoDB ledger on a moto
//! server, Slack on the local webhook sink. Needs `.venv/bin/moto_server` (`scripts/bootstrap.sh`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use distillery_aws::dynamodb::{create_table, DynamoRunLedger};
use distillery_aws::secrets::SecretsManagerSource;
use distillery_aws::slack::SlackWebhook;
use distillery_aws::sns::SnsPublisher;
use distillery_core::app::notify::{
    ChannelOutcome, Notifier, NotifyConfig, NotifyInput, SlackConfig, WebhookFactory,
};
use distillery_core::domain::catalog::Prices;
use distillery_core::domain::messages::CaughtError;
use distillery_core::domain::run::{RunId, RunStatus, ValidationSummary};
use distillery_core::ports::{ChatWebhook, RunLedger, SystemClock};
use distillery_core::testing::sample_run;
use distillery_test_support::slack_sink::{SinkMode, SlackSink, WEBHOOK_PATH};
use distillery_test_support::Moto;
use serde_json::{json, Value};

/// The secret part of the sink's webhook URL: it must never show up in logs or records.
fn secret_token() -> &'static str {
    WEBHOOK_PATH.rsplit('/').next().unwrap()
}

/// Everything tracing writes while the guard lives, as text.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    /// JSON logs at debug level (our crate and the SDKs), as the Lambda would write them if asked.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::DEBUG)
            .with_current_span(true)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

struct Stack {
    _moto: Moto,
    sink: SlackSink,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    failed_only_queue_url: String,
    ledger: Arc<DynamoRunLedger>,
    notifier: Notifier,
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

async fn stack() -> Stack {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let sink = SlackSink::start().await;

    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic_arn = sns
        .create_topic()
        .name("distillery-notifications")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (queue_url, queue_arn) = queue(&sqs, "all-notifications").await;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();
    // A subscriber that only wants failures, filtering on the event_type attribute.
    let (failed_only_queue_url, failed_arn) = queue(&sqs, "failures-only").await;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&failed_arn)
        .attributes("FilterPolicy", r#"{"event_type": ["failed"]}"#)
        .send()
        .await
        .unwrap();

    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let secret_arn = secrets
        .create_secret()
        .name("distillery/slack-webhook")
        .secret_string(sink.url())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    create_table(&ddb, "distillery-runs").await.unwrap();
    let ledger = Arc::new(DynamoRunLedger::new(ddb, "distillery-runs"));

    let factory: WebhookFactory = Arc::new(|url: &str, timeout: Duration| {
        Ok(Arc::new(SlackWebhook::new(url, timeout)?) as Arc<dyn ChatWebhook>)
    });
    let notifier = Notifier::new(
        ledger.clone(),
        Arc::new(SnsPublisher::new(sns, topic_arn)),
        Arc::new(SecretsManagerSource::new(secrets)),
        factory,
        Arc::new(SystemClock),
        Prices::builtin(),
        NotifyConfig {
            region: "us-east-1".into(),
            slack: Some(SlackConfig {
                secret_id: secret_arn,
                timeout: Duration::from_millis(400),
                max_attempts: 3,
                url_cache_ttl: distillery_core::app::notify::SLACK_URL_CACHE_TTL,
                // The webhook is the local sink on 127.0.0.1, not hooks.slack.com.
                allow_any_url_for_tests: true,
            }),
            retry_base_delay: Duration::from_millis(20),
        },
    );
    Stack {
        _moto: moto,
        sink,
        sqs,
        queue_url,
        failed_only_queue_url,
        ledger,
        notifier,
    }
}

async fn seed(ledger: &DynamoRunLedger, id: &str, status: RunStatus) -> RunId {
    let run_id = RunId(id.into());
    let mut run = sample_run(
        "datasets",
        "incoming/support-chats.jsonl",
        "etag-1",
        2048,
        Utc::now(),
    );
    run.run_id = run_id.clone();
    run.status = status;
    run.job_name = Some(format!("distill-support-chats-{id}"));
    run.job_arn = Some(format!(
        "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/{id}"
    ));
    run.validation = Some(ValidationSummary {
        valid: true,
        records: 512,
        ..Default::default()
    });
    ledger.create(&run).await.unwrap();
    run_id
}

fn input(run_id: Option<&RunId>, milestone: &str) -> NotifyInput {
    NotifyInput {
        run_id: run_id.map(|r| r.to_string()),
        milestone: milestone.into(),
        error: None,
        input: None,
        execution: None,
    }
}

/// Drains a queue: every SNS envelope received within `wait`.
async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str, wait: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        let resp = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let msgs = resp.messages.unwrap_or_default();
        for m in &msgs {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if msgs.is_empty() && Instant::now() >= deadline {
            return out;
        }
    }
}

fn attr<'a>(envelope: &'a Value, name: &str) -> &'a str {
    assert_eq!(envelope["MessageAttributes"][name]["Type"], "String");
    envelope["MessageAttributes"][name]["Value"]
        .as_str()
        .unwrap()
}

#[tokio::test]
async fn launched_reaches_sqs_and_slack_exactly_once_and_logs_never_show_the_webhook() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let s = stack().await;
    let id = seed(&s.ledger, "run-aaaaaaaaaaaaaaaaaaa1", RunStatus::Training).await;

    let out = s
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    assert_eq!(out.slack, ChannelOutcome::Delivered);

    // SNS → SQS: moto wraps the message in the SNS envelope (no RawMessageDelivery).
    let got = drain(&s.sqs, &s.queue_url, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let env = &got[0];
    assert_eq!(env["Type"], "Notification");
    assert_eq!(
        env["Subject"],
        "Distillery: Distillation launched - support-chats (run-aaaaaaaaaaaaaaaaaaa1)"
    );
    let body = env["Message"].as_str().unwrap();
    assert!(
        body.contains("Job name: distill-support-chats-run-aaaaaaaaaaaaaaaaaaa1"),
        "{body}"
    );
    assert!(body.contains("Teacher -> student: amazon.nova-pro-v1:0 -> amazon.nova-lite-v1:0:300k"));
    assert!(body.contains("Records: 512"));
    assert_eq!(attr(env, "event_type"), "launched");
    assert_eq!(attr(env, "run_id"), id.as_str());
    // The failures-only subscription filtered it out.
    assert!(
        drain(&s.sqs, &s.failed_only_queue_url, Duration::from_secs(1))
            .await
            .is_empty()
    );

    // Slack: the real Block Kit payload, as the sink received it.
    let payloads = s.sink.payloads();
    assert_eq!(payloads.len(), 1);
    let blocks = payloads[0]["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("Distillation launched"));
    let context = blocks.last().unwrap();
    assert_eq!(context["type"], "context");
    assert!(context["elements"][0]["text"]
        .as_str()
        .unwrap()
        .contains(id.as_str()));

    // Both deliveries are on the run in DynamoDB.
    let run = s.ledger.get(&id).await.unwrap().unwrap();
    let recorded: Vec<(&str, &str, bool)> = run
        .deliveries
        .iter()
        .map(|d| (d.milestone.as_str(), d.channel.as_str(), d.delivered))
        .collect();
    assert_eq!(
        recorded,
        vec![("launched", "sns", true), ("launched", "slack", true)]
    );
    assert_eq!(run.status, RunStatus::Training);

    // A retried Lambda (same milestone) posts nothing new anywhere.
    let again = s
        .notifier
        .handle(input(Some(&id), "launched"))
        .await
        .unwrap();
    assert_eq!(
        (again.sns, again.slack),
        (ChannelOutcome::Delivered, ChannelOutcome::Delivered)
    );
    assert!(drain(&s.sqs, &s.queue_url, Duration::from_secs(1))
        .await
        .is_empty());
    assert_eq!(s.sink.attempts(), 1);
    assert_eq!(
        s.ledger.get(&id).await.unwrap().unwrap().deliveries.len(),
        2
    );

    let text = logs.text();
    assert!(text.contains(id.as_str()), "logs were not captured");
    assert!(
        !text.contains(secret_token()),
        "the webhook URL leaked into the logs"
    );
}

#[tokio::test]
async fn slack_down_never_fails_the_step_and_the_failure_is_on_record() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let s = stack().await;

    // 1. Slack answers 500: retried SLACK_MAX_ATTEMPTS times; the caught error still moves the run
    //    to failed first, and SNS (both subscriptions) gets the failure.
    // (The launcher's quota retries ran out before Bedrock took the job.)
    let id = seed(&s.ledger, "run-bbbbbbbbbbbbbbbbbbb2", RunStatus::Launching).await;
    s.sink.set_mode(SinkMode::Fail);
    let mut i = input(Some(&id), "failed");
    i.error = Some(CaughtError {
        error: "QuotaExceeded".into(),
        cause: r#"{"errorType":"QuotaExceeded","errorMessage":"concurrent customization jobs quota reached"}"#.into(),
    });
    let out = s.notifier.handle(i).await.unwrap();
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    assert_eq!(out.slack, ChannelOutcome::Failed);
    assert_eq!(s.sink.attempts(), 3);
    let run = s.ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.failure_reason.as_deref(),
        Some("QuotaExceeded: concurrent customization jobs quota reached")
    );
    let slack = run
        .deliveries
        .iter()
        .find(|d| d.channel == "slack")
        .unwrap();
    assert!(!slack.delivered);
    let detail = slack.detail.as_deref().unwrap();
    assert!(detail.contains("HTTP 500"), "{detail}");
    assert!(!detail.contains(secret_token()), "{detail}");
    let all = drain(&s.sqs, &s.queue_url, Duration::from_secs(2)).await;
    assert_eq!(all.len(), 1);
    assert_eq!(attr(&all[0], "event_type"), "failed");
    assert!(all[0]["Message"]
        .as_str()
        .unwrap()
        .contains("Reason: QuotaExceeded: concurrent customization jobs quota reached"));
    let failures = drain(&s.sqs, &s.failed_only_queue_url, Duration::from_secs(2)).await;
    assert_eq!(
        failures.len(),
        1,
        "the filter policy on event_type lets failures through"
    );

    // 2. Slack hangs: each attempt is cut at SLACK_TIMEOUT_MS.
    let id2 = seed(&s.ledger, "run-ccccccccccccccccccc3", RunStatus::Training).await;
    s.sink.set_mode(SinkMode::Hang);
    let started = Instant::now();
    let out = s
        .notifier
        .handle(input(Some(&id2), "launched"))
        .await
        .unwrap();
    assert_eq!(out.slack, ChannelOutcome::Failed);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(s.sink.attempts(), 6);
    let run2 = s.ledger.get(&id2).await.unwrap().unwrap();
    let detail = run2.deliveries.last().unwrap().detail.clone().unwrap();
    assert!(detail.contains("timed out after 400 ms"), "{detail}");

    // 3. Slack refuses the payload (4xx): not retried.
    let id3 = seed(&s.ledger, "run-ccccccccccccccccccc4", RunStatus::Completed).await;
    s.sink.set_mode(SinkMode::Reject);
    let out = s
        .notifier
        .handle(input(Some(&id3), "completed"))
        .await
        .unwrap();
    assert_eq!(out.slack, ChannelOutcome::Failed);
    assert_eq!(s.sink.attempts(), 7);

    // 4. Slack is back: the retried "launched" posts only the missing Slack message.
    s.sink.set_mode(SinkMode::Ok);
    drain(&s.sqs, &s.queue_url, Duration::from_secs(1)).await;
    let out = s
        .notifier
        .handle(input(Some(&id2), "launched"))
        .await
        .unwrap();
    assert_eq!(
        (out.sns, out.slack),
        (ChannelOutcome::Delivered, ChannelOutcome::Delivered)
    );
    assert_eq!(s.sink.payloads().len(), 1);
    assert!(drain(&s.sqs, &s.queue_url, Duration::from_secs(1))
        .await
        .is_empty());

    // 5. No run id (validation crashed before a run existed): a generic failure, no crash.
    let out = s
        .notifier
        .handle(NotifyInput {
            run_id: None,
            milestone: "failed".into(),
            error: Some(CaughtError {
                error: "States.TaskFailed".into(),
                cause: "validator crashed".into(),
            }),
            input: Some(json!({
                "source": "aws.s3",
                "detail": {"bucket": {"name": "datasets"}, "object": {"key": "incoming/broken.jsonl"}}
            })),
            execution: None,
        })
        .await
        .unwrap();
    assert_eq!(out.run_id, None);
    assert_eq!(out.sns, ChannelOutcome::Delivered);
    let got = drain(&s.sqs, &s.queue_url, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(attr(&got[0], "run_id"), "none");
    assert_eq!(
        got[0]["Subject"],
        "Distillery: Distillation failed - broken.jsonl"
    );
    assert!(got[0]["Message"]
        .as_str()
        .unwrap()
        .contains("s3://datasets/incoming/broken.jsonl"));

    assert!(
        !logs.text().contains(secret_token()),
        "the webhook URL leaked into the logs"
    );
}
