//! `job-event-relay`: delivers Bedrock's job state-change events from the job-event rule's SQS queue to
//! the status-poller Lambda, the way an EventBridge rule with a Lambda target would (moto's EventBridge
//! cannot target Lambda, so the rule targets a queue and this process stands in for the delivery).
//!
//! Each message body is the event exactly as EventBridge put it on the queue; it becomes the Invoke
//! payload unchanged (`POST <lambda>/2015-03-31/functions/<function>/invocations`, as `cargo lambda
//! watch` serves). EventBridge invokes a Lambda target asynchronously, and an async invoke retries a
//! function error twice before giving up; here: HTTP 200 without `X-Amz-Function-Error` deletes the
//! message; an error leaves it to come back after a short, growing visibility timeout, and on its
//! `--max-receives`-th receive it is logged as given up and deleted. So a handler that refuses these
//! events (status-poller answers InvalidInput until it learns them) costs a few calls per event and
//! never a busy loop.
//!
//! Prints `relaying <queue> -> <invoke url>` on stdout once running; one human line per delivery on
//! stderr, and one JSON line per delivery (`distillery_local_stack::RelayDelivery`) to `--record`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use clap::Parser;
use distillery_local_stack::RelayDelivery;
use serde_json::Value;

#[derive(Parser)]
#[command(
    name = "job-event-relay",
    about = "Deliver job state-change events from the rule's SQS queue to the status-poller Lambda"
)]
struct Args {
    /// moto server endpoint (SQS), e.g. http://127.0.0.1:5000
    #[arg(long)]
    moto: String,
    /// The job-event rule's queue (resources.json `jobEventsQueueUrl`)
    #[arg(long)]
    queue_url: String,
    /// `cargo lambda watch` Invoke API base, e.g. http://127.0.0.1:9000
    #[arg(long)]
    lambda_url: String,
    /// The Lambda the rule targets
    #[arg(long, default_value = "status-poller")]
    function: String,
    /// Receives of one message before giving up on it (an async Lambda invoke makes 3 attempts)
    #[arg(long, default_value_t = 3)]
    max_receives: u32,
    /// Visibility timeout after the first failed attempt, doubled after each further one (seconds;
    /// AWS waits about a minute, then two; scaled down for tests)
    #[arg(long, default_value_t = 1)]
    retry_delay_seconds: i32,
    /// Append one JSON line per delivery attempt here
    #[arg(long)]
    record: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cfg = distillery_test_support::sdk_config(&args.moto).await;
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let http = reqwest::Client::builder()
        // The first invocation may start the function; an invocation never takes longer than this.
        .timeout(Duration::from_secs(120))
        .build()?;
    let invoke_url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        args.lambda_url.trim_end_matches('/'),
        args.function
    );
    let mut record = match &args.record {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => None,
    };
    println!("relaying {} -> {invoke_url}", args.queue_url);
    std::io::stdout().flush()?;

    loop {
        let received = sqs
            .receive_message()
            .queue_url(&args.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                // moto restarting or gone: wait instead of spinning.
                eprintln!(
                    "job-event-relay: ReceiveMessage failed: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for m in messages {
            let delivery = relay(&args, &sqs, &http, &invoke_url, &m).await;
            eprintln!(
                "job-event-relay: {} {} {} event {} receive {} -> {} ({} ms){}",
                delivery.job_name,
                delivery.job_status,
                delivery.event_time,
                delivery.event_id,
                delivery.receive_count,
                delivery.result,
                delivery.invoke_ms,
                delivery
                    .error_type
                    .as_ref()
                    .map(|t| format!(": {t}: {}", delivery.error_message.as_deref().unwrap_or("")))
                    .unwrap_or_default()
            );
            if let Some(file) = record.as_mut() {
                let line = serde_json::to_string(&delivery)?;
                writeln!(file, "{line}")?;
                file.flush()?;
            }
        }
    }
}

/// One delivery attempt of one message: invoke, then delete or leave for redelivery.
async fn relay(
    args: &Args,
    sqs: &aws_sdk_sqs::Client,
    http: &reqwest::Client,
    invoke_url: &str,
    m: &Message,
) -> RelayDelivery {
    let body = m.body.clone().unwrap_or_default();
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let receive_count: u32 = m
        .attributes
        .as_ref()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut delivery = RelayDelivery {
        time: String::new(),
        event_id: text(&event["id"]),
        job_name: text(&event["detail"]["jobName"]),
        job_status: text(&event["detail"]["jobStatus"]),
        event_time: text(&event["time"]),
        receive_count,
        invoke_ms: 0,
        event_age_ms: 0,
        result: String::new(),
        error_type: None,
        error_message: None,
    };

    let started = Instant::now();
    let outcome = http
        .post(invoke_url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await;
    let failure: Option<(String, String)> = match outcome {
        Err(e) => Some(("InvokeFailed".into(), e.to_string())),
        Ok(r) => {
            let function_error = r.headers().contains_key("x-amz-function-error");
            let status = r.status();
            let answer = r.text().await.unwrap_or_default();
            if status.is_success() && !function_error {
                None
            } else {
                let payload: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
                Some((
                    payload["errorType"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("HTTP {status}")),
                    payload["errorMessage"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or(answer),
                ))
            }
        }
    };
    delivery.invoke_ms = started.elapsed().as_millis() as u64;

    let receipt = m.receipt_handle.clone().unwrap_or_default();
    let delete = || async {
        if let Err(e) = sqs
            .delete_message()
            .queue_url(&args.queue_url)
            .receipt_handle(&receipt)
            .send()
            .await
        {
            eprintln!(
                "job-event-relay: DeleteMessage failed: {}",
                aws_sdk_sqs::error::DisplayErrorContext(&e)
            );
        }
    };
    delivery.result = match &failure {
        None => {
            delete().await;
            "delivered".into()
        }
        Some(_) if receive_count >= args.max_receives => {
            delete().await;
            "gaveUp".into()
        }
        Some(_) => {
            let exponent = receive_count.saturating_sub(1).min(10);
            let wait = args.retry_delay_seconds.saturating_mul(1 << exponent);
            if let Err(e) = sqs
                .change_message_visibility()
                .queue_url(&args.queue_url)
                .receipt_handle(&receipt)
                .visibility_timeout(wait)
                .send()
                .await
            {
                eprintln!(
                    "job-event-relay: ChangeMessageVisibility failed (the queue's own timeout applies): {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                );
            }
            "retrying".into()
        }
    };
    if let Some((t, msg)) = failure {
        delivery.error_type = Some(t);
        delivery.error_message = Some(msg);
    }
    let now = chrono::Utc::now();
    delivery.time = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    delivery.event_age_ms = chrono::DateTime::parse_from_rfc3339(&delivery.event_time)
        .map(|t| (now - t.with_timezone(&chrono::Utc)).num_milliseconds())
        .unwrap_or(0);
    delivery
}
