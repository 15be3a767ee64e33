//! Creates the local stack's AWS resources on a running moto server, the way the SAM template creates
//! them in AWS: the dataset bucket with EventBridge notifications on, the upload rule (S3 Object
//! Created, bucket, key prefix and suffix) with an SQS target standing in for Step Functions, the run
//! ledger table (schema from `distillery_aws::dynamodb::create_table`), the SNS topic with
//! an SQS subscription to read what was announced, the Slack webhook secret, and the rule for Bedrock's
//! job state-change events (pattern from `events/bedrock-job-event-pattern.json`) with an SQS target
//! standing in for the status-poller Lambda (`job-event-relay` invokes the Lambda from it).
//!
//! Prints the resources as JSON (also written to `--out`), and writes the Lambda environment file
//! that `cargo lambda watch --env-file` reads.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use distillery_local_stack::{Resources, RESOURCE_NAMES};

#[derive(Parser)]
#[command(about = "Create the local stack's resources on moto")]
struct Args {
    /// moto server endpoint, e.g. http://127.0.0.1:5000
    #[arg(long)]
    moto: String,
    /// Slack incoming-webhook URL stored in the secret (the local Slack sink)
    #[arg(long)]
    slack_webhook_url: String,
    /// Key prefix that starts runs (the rule's filter and the validator's UPLOAD_PREFIX)
    #[arg(long, default_value = "incoming/")]
    upload_prefix: String,
    /// Key suffix that starts runs (the rule's filter and the validator's UPLOAD_SUFFIX)
    #[arg(long, default_value = ".jsonl")]
    upload_suffix: String,
    /// Where to write the resources as JSON
    #[arg(long)]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let cfg = distillery_test_support::sdk_config(&args.moto).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&cfg)
            .force_path_style(true)
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let sns = aws_sdk_sns::Client::new(&cfg);
    let events = aws_sdk_eventbridge::Client::new(&cfg);
    let secrets = aws_sdk_secretsmanager::Client::new(&cfg);
    let dynamodb = aws_sdk_dynamodb::Client::new(&cfg);
    let names = RESOURCE_NAMES;

    // The dataset bucket, announcing object events to EventBridge (not to SNS/SQS/Lambda directly).
    s3.create_bucket()
        .bucket(names.bucket)
        .send()
        .await
        .context("CreateBucket")?;
    s3.put_bucket_notification_configuration()
        .bucket(names.bucket)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .event_bridge_configuration(
                    aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                )
                .build(),
        )
        .send()
        .await
        .context("PutBucketNotificationConfiguration (EventBridge)")?;

    // The queue standing in for the state machine as the rule's target.
    let upload_queue_url = create_queue(&sqs, names.upload_events_queue).await?;
    let upload_queue_arn = queue_arn(&sqs, &upload_queue_url).await?;
    let pattern = serde_json::json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [names.bucket]},
            "object": {"key": [{"wildcard": format!("{}*{}", args.upload_prefix, args.upload_suffix)}]}
        }
    });
    events
        .put_rule()
        .name(names.upload_rule)
        .event_pattern(pattern.to_string())
        .state(aws_sdk_eventbridge::types::RuleState::Enabled)
        .send()
        .await
        .context("PutRule")?;
    events
        .put_targets()
        .rule(names.upload_rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("state-machine")
                .arn(&upload_queue_arn)
                .build()
                .context("target")?,
        )
        .send()
        .await
        .context("PutTargets")?;

    // SNS topic, read back through an SQS subscription (the SNS envelope is kept: Subject, Message,
    // MessageAttributes as delivered).
    let topic_arn = sns
        .create_topic()
        .name(names.topic)
        .send()
        .await
        .context("CreateTopic")?
        .topic_arn
        .context("CreateTopic returned no ARN")?;
    let inbox_url = create_queue(&sqs, names.notifications_queue).await?;
    let inbox_arn = queue_arn(&sqs, &inbox_url).await?;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(&inbox_arn)
        .send()
        .await
        .context("Subscribe")?;

    let secret_arn = secrets
        .create_secret()
        .name(names.slack_secret)
        .secret_string(&args.slack_webhook_url)
        .send()
        .await
        .context("CreateSecret")?
        .arn
        .context("CreateSecret returned no ARN")?;

    // Bedrock's job state-change events (issue 11): the rule on the default bus, with the queue
    // standing in for its status-poller Lambda target; job-event-relay invokes the Lambda from it.
    let job_events_url = create_queue(&sqs, names.job_events_queue).await?;
    let job_events_arn = queue_arn(&sqs, &job_events_url).await?;
    let job_pattern: serde_json::Value =
        serde_json::from_str(distillery_local_stack::JOB_EVENT_PATTERN)
            .context("events/bedrock-job-event-pattern.json is not JSON")?;
    events
        .put_rule()
        .name(names.job_event_rule)
        .description("Bedrock model customization job state changes of Distillery's jobs")
        .event_pattern(job_pattern.to_string())
        .state(aws_sdk_eventbridge::types::RuleState::Enabled)
        .send()
        .await
        .context("PutRule (job state-change events)")?;
    events
        .put_targets()
        .rule(names.job_event_rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("status-poller")
                .arn(&job_events_arn)
                .build()
                .context("target")?,
        )
        .send()
        .await
        .context("PutTargets (job state-change events)")?;

    // Where the application's Bedrock invocation logs land (scheduled runs read them).
    s3.create_bucket()
        .bucket(names.invocation_logs_bucket)
        .send()
        .await
        .context("CreateBucket (invocation logs)")?;

    distillery_aws::dynamodb::create_table(&dynamodb, names.table)
        .await
        .context("creating the run ledger table")?;

    let resources = Resources {
        moto_url: args.moto.clone(),
        bucket: names.bucket.to_string(),
        upload_prefix: args.upload_prefix.clone(),
        upload_suffix: args.upload_suffix.clone(),
        upload_events_queue_url: upload_queue_url,
        upload_rule: names.upload_rule.to_string(),
        topic_arn,
        notifications_queue_url: inbox_url,
        slack_secret_arn: secret_arn,
        table_name: names.table.to_string(),
        job_events_queue_url: job_events_url,
        job_event_rule: names.job_event_rule.to_string(),
        invocation_logs_uri: format!(
            "s3://{}/{}",
            names.invocation_logs_bucket, names.invocation_logs_prefix
        ),
    };
    let json = serde_json::to_string_pretty(&resources)?;
    std::fs::write(&args.out, &json).with_context(|| format!("writing {}", args.out.display()))?;
    println!("{json}");
    Ok(())
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .with_context(|| format!("CreateQueue {name}"))?
        .queue_url
        .with_context(|| format!("CreateQueue {name} returned no URL"))
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("GetQueueAttributes {url}"))?;
    attrs
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .with_context(|| format!("queue {url} has no QueueArn"))
}
