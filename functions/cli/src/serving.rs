//! `distillery runs retire <run-id>` (stop serving now) and `distillery runs extend <run-id>
//! --hours N` (keep no-commitment throughput longer): the same use case the scheduled reconciler
//! retires expired throughput with (`distillery_core::app::retire_run`).

use std::process::ExitCode;

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::notifier_from_env;
use distillery_core::app::notify::MilestoneSender;
use distillery_core::app::retire_run::{RetireReason, ServingRetirer};
use distillery_core::domain::errors::{ErrorType, StepError};
use distillery_core::domain::run::RunId;
use distillery_core::ports::SystemClock;

use crate::runs::Format;
use crate::usage_error;

/// Exit 1 for a run that does not exist, 2 (with the reason) for anything else.
fn failed(e: StepError) -> ExitCode {
    if e.error_type == ErrorType::NotFound {
        eprintln!("distillery: {}", e.message);
        return ExitCode::from(1);
    }
    usage_error(e.message)
}

pub async fn retire(
    sdk: &aws_config::SdkConfig,
    ledger: &DynamoRunLedger,
    run_id: &str,
    topic_arn: Option<String>,
    format: Format,
) -> ExitCode {
    let bedrock = BedrockCustomizationService::from_conf(sdk);
    let notifier = match topic_arn
        .filter(|t| !t.trim().is_empty())
        .map(|t| notifier_from_env(sdk, t))
        .transpose()
    {
        Ok(n) => n,
        Err(e) => return usage_error(e.message),
    };
    let who = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "an operator".into());
    let retirer = ServingRetirer {
        ledger,
        bedrock: &bedrock,
        clock: &SystemClock,
        notifier: notifier.as_ref().map(|n| n as &dyn MilestoneSender),
    };
    match retirer
        .retire(&RunId(run_id.to_string()), RetireReason::Requested(who))
        .await
    {
        Ok(r) => {
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                println!(
                    "run {} retired: {} {}{}",
                    r.run_id,
                    r.serving.arn(),
                    if r.result == "deleted" {
                        "deleted"
                    } else {
                        "was already gone"
                    },
                    match &r.notified {
                        Some(_) => "; announced",
                        None => "; not announced (no --topic-arn / TOPIC_ARN)",
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}

pub async fn extend(
    sdk: &aws_config::SdkConfig,
    ledger: &DynamoRunLedger,
    run_id: &str,
    hours: f64,
    format: Format,
) -> ExitCode {
    let bedrock = BedrockCustomizationService::from_conf(sdk);
    let retirer = ServingRetirer {
        ledger,
        bedrock: &bedrock,
        clock: &SystemClock,
        notifier: None,
    };
    match retirer.extend(&RunId(run_id.to_string()), hours).await {
        Ok(run) => {
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
            } else {
                println!(
                    "run {} now expires at {} (its Provisioned Throughput is deleted then; `distillery runs retire {}` deletes it sooner)",
                    run.run_id,
                    run.serving_expires_at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    run.run_id
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => failed(e),
    }
}
