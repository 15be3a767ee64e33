//! `distillery runs reconcile [--dry-run]`: one reconciler pass by hand (the same use case the
//! scheduled reconciler runs, `distillery_core::app::reconcile`), printing what it found and did.

use std::process::ExitCode;

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::lambda::notifier_from_env;
use distillery_aws::sns::SnsPublisher;
use distillery_core::app::notify::MilestoneSender;
use distillery_core::app::reconcile::{
    render_findings, ReconcileConfig, ReconcileReport, Reconciler,
};
use distillery_core::domain::catalog::Limits;
use distillery_core::ports::{MessagePublisher, SystemClock};

use crate::runs::Format;
use crate::usage_error;

pub struct ReconcileArgs {
    pub dry_run: bool,
    pub quiet_period_seconds: Option<u64>,
    pub topic_arn: Option<String>,
    pub format: Format,
}

pub async fn run(
    sdk: &aws_config::SdkConfig,
    ledger: &DynamoRunLedger,
    args: ReconcileArgs,
) -> ExitCode {
    let limits = match Limits::load() {
        Ok(l) => l,
        Err(e) => return usage_error(e.to_string()),
    };
    let mut config = match ReconcileConfig::from_env(&limits, args.dry_run) {
        Ok(c) => c,
        Err(e) => return usage_error(e.message),
    };
    if let Some(q) = args.quiet_period_seconds {
        config.quiet_period_seconds = q;
    }
    let bedrock = BedrockCustomizationService::from_conf(sdk);
    let topic_arn = args.topic_arn.filter(|t| !t.trim().is_empty());
    let publisher = topic_arn.clone().map(|t| SnsPublisher::from_conf(sdk, t));
    // The expiry pass's milestones need the topic (and Slack, when SLACK_SECRET_ARN is set).
    let notifier = match topic_arn.map(|t| notifier_from_env(sdk, t)).transpose() {
        Ok(n) => n,
        Err(e) => return usage_error(e.message),
    };
    let reconciler = Reconciler {
        ledger,
        bedrock: &bedrock,
        publisher: publisher.as_ref().map(|p| p as &dyn MessagePublisher),
        notifier: notifier.as_ref().map(|n| n as &dyn MilestoneSender),
        clock: &SystemClock,
        config,
    };
    match reconciler.reconcile().await {
        Ok(report) => {
            print!("{}", render_report(&report, args.format));
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(format!("reconcile: {}", e.message)),
    }
}

pub fn render_report(report: &ReconcileReport, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(report).unwrap_or_default() + "\n";
    }
    let mut out = format!(
        "{}checked {} received/validating run(s), {} training run(s), {} provisioning run(s), {} ready run(s) with an expiry, {} running job(s), {} Provisioned Throughput(s): {} finding(s)\n",
        if report.dry_run { "dry run: " } else { "" },
        report.validation_runs_checked,
        report.training_runs_checked,
        report.provisioning_runs_checked,
        report.expiring_runs_checked,
        report.jobs_checked,
        report.throughputs_checked,
        report.findings.len()
    );
    out.push_str(&render_findings(&report.findings));
    if report.expiry_warnings > 0 {
        out.push_str(&format!(
            "{} expiring-soon message(s) {}\n",
            report.expiry_warnings,
            if report.dry_run { "due" } else { "sent" }
        ));
    }
    if let Some(id) = &report.message_id {
        out.push_str(&format!("summary published to SNS (message {id})\n"));
    }
    out
}
