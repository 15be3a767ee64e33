//! `distillery runs list|show|stop|retire|extend|retry|reconcile`: read (and act on) the run ledger (DynamoDB). With `AWS_ENDPOINT_URL` set the SDK
//! talks to a local emulator (moto), so the same commands work against the local stack.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use distillery_aws::dynamodb::{DynamoRunLedger, RECENT_INDEX, STATUS_INDEX};
use distillery_core::app::launch_job::{
    queue_order, queue_places, QueuePlace, QUEUED_RUNS_PER_PASS,
};
use distillery_core::domain::messages::gate::{comparison_line, verdict_line};
use distillery_core::domain::run::{Run, RunId, RunStatus};
use distillery_core::domain::settings::ServingMode;
use distillery_core::ports::{PortError, RunLedger};

use crate::usage_error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = crate::aws::RUNS_HELP)]
pub struct RunsArgs {
    /// The run ledger: the stack's DynamoDB table (its `TableName` output).
    #[arg(long, env = "TABLE_NAME", global = true)]
    table: Option<String>,
    #[command(subcommand)]
    command: RunsCommand,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Runs, newest first.
    #[command(after_help = crate::aws::RUNS_HELP)]
    List {
        /// Only runs in this status (received, validating, rejected, validated, launching, training,
        /// completed, failed, stopped, provisioning, ready, provisioning_failed, retired,
        /// gate_failed, skipped, queued, expired, serving_queued). Queued runs are listed in the
        /// order they get job slots, the first --limit of the whole queue.
        #[arg(long, value_parser = parse_status)]
        status: Option<RunStatus>,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// `text`: a table for people; `json`: the run records, as stored.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// One run with its history and notification deliveries (exit 1 if there is no such run).
    /// With --watch, follow it live instead: a line (status, sub-statuses, time since launch) each
    /// time it changes, until it ends (exit 0 completed/ready/retired/skipped, 3 any other end).
    #[command(after_help = crate::aws::RUNS_HELP)]
    Show {
        /// The run id, as `runs list` or a notification gives it.
        run_id: String,
        /// `text`: a summary for people; `json`: the run record, as stored.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Follow the run until it ends, printing each change.
        #[arg(long)]
        watch: bool,
        /// With --watch: seconds between two reads of the ledger.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
    },
    /// Stop a run in training: StopModelCustomizationJob on its job (tokens used so far are billed;
    /// no model is produced). The run becomes 'stopped' when Bedrock reports the job stopped, and
    /// its execution announces that once, like any job end (if the execution has already ended,
    /// the reconciler records the end and reports it in its summary). Exit 2 for a run that is not
    /// training, 1 if there is no such run.
    #[command(after_help = crate::aws::RUNS_HELP)]
    Stop {
        /// The run id, as `runs list` or a notification gives it.
        run_id: String,
        /// `text`: one line for people; `json`: the stop request as one JSON object.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Stop serving a ready (or provisioning) run's model now: deletes its on-demand deployment or
    /// its Provisioned Throughput (only one tagged distillery:managed-by=distillery), records the
    /// run 'retired' and announces it (hours served and cost) on --topic-arn (and Slack when
    /// SLACK_SECRET_ARN is set). A commitment term cannot be deleted before it ends: Bedrock refuses
    /// and the run stays ready. A run that ended provisioning_failed or gate_failed with a
    /// deployment or throughput still recorded has it deleted too (its status stays, nothing is
    /// announced). Exit 2 for any other run or a refused delete, 1 if there is no such run.
    #[command(after_help = crate::aws::RUNS_HELP)]
    Retire {
        /// The run id, as `runs list` or a notification gives it.
        run_id: String,
        /// Announce the retirement on this SNS topic (the stack's `TopicArn` output).
        #[arg(long, env = "TOPIC_ARN")]
        topic_arn: Option<String>,
        /// `text`: one line for people; `json`: the retirement as one JSON object.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Keep a ready run's no-commitment Provisioned Throughput longer: pushes its expiry (when the
    /// scheduled reconciler deletes it) N hours later. Only runs with an expiry have one to push:
    /// not committed throughput (it cannot be deleted before its term ends) nor on-demand
    /// deployments (nothing is billed when idle). Exit 2 otherwise, 1 if there is no such run.
    #[command(after_help = crate::aws::RUNS_HELP)]
    Extend {
        /// The run id, as `runs list` or a notification gives it.
        run_id: String,
        /// Hours to add to the current expiry (fractions allowed, e.g. 0.5).
        #[arg(long)]
        hours: f64,
        /// `text`: one line for people; `json`: the run as one JSON object.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// A new attempt of a rejected, failed or stopped run (same object, optionally changed
    /// settings), recorded as a new run linked to it (`retryOf`, `attempt`). Starts an execution
    /// like `distillery submit`; exit 2 (nothing started) for any other run.
    #[command(after_help = crate::aws::RUNS_HELP)]
    Retry {
        /// The run to retry, as `runs list` or a notification gives it.
        run_id: String,
        /// The Distillery state machine (the stack's `StateMachineArn` output).
        #[arg(long, env = "STATE_MACHINE_ARN")]
        state_machine_arn: Option<String>,
        #[command(flatten)]
        settings: crate::submit::OverrideFlags,
        /// `text`: the execution and run for people; `json`: the submission as one JSON object.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Compare the ledger with Bedrock and repair what is safe (record jobs that ended while nothing
    /// polled, stop jobs and delete Provisioned Throughput that no live run owns, retire ready runs
    /// whose throughput expired and warn about those expiring within the hour); print the rest.
    #[command(after_help = crate::aws::RUNS_HELP)]
    Reconcile {
        /// Report what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Leave alone anything created or updated this recently (an in-flight transition).
        /// Default: RECONCILE_QUIET_PERIOD_SECONDS, else 600.
        #[arg(long)]
        quiet_period_seconds: Option<u64>,
        /// Publish one summary message to this SNS topic when something is found.
        #[arg(long, env = "TOPIC_ARN")]
        topic_arn: Option<String>,
        /// `text`: one line per finding; `json`: the report.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

fn parse_status(s: &str) -> Result<RunStatus, String> {
    RunStatus::parse(s).ok_or_else(|| {
        let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status '{s}' (one of: {})", all.join(", "))
    })
}

pub fn run(args: RunsArgs) -> ExitCode {
    let Some(table) = args.table.filter(|t| !t.trim().is_empty()) else {
        return usage_error("the ledger table is not set: pass --table or set TABLE_NAME");
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage_error(format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(async move {
        let sdk = match crate::aws::sdk_config().await {
            Ok(sdk) => sdk,
            Err(e) => return usage_error(e),
        };
        let ledger = DynamoRunLedger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
        match args.command {
            RunsCommand::List {
                status,
                limit,
                format,
            } => {
                let runs = match status {
                    // The queue's front is its oldest runs: read it whole, order, then cut.
                    Some(RunStatus::Queued) => ledger
                        .list_by_status(RunStatus::Queued, QUEUED_RUNS_PER_PASS)
                        .await
                        .map(|q| queue_order(q).into_iter().take(limit).collect()),
                    Some(s) => ledger.list_by_status(s, limit).await,
                    None => ledger.list_recent(limit).await,
                };
                let runs = match runs {
                    Ok(runs) => runs,
                    Err(e) => return usage_error(read_error(&sdk, ledger.table(), &e)),
                };
                let places = match queue_places_for(&ledger, &runs).await {
                    Ok(p) => p,
                    Err(e) => return usage_error(read_error(&sdk, ledger.table(), &e)),
                };
                print!("{}", render_list(&runs, &places, format));
                ExitCode::SUCCESS
            }
            RunsCommand::Show {
                run_id,
                watch: true,
                interval,
                ..
            } => {
                crate::follow::watch(&ledger, &run_id, std::time::Duration::from_secs(interval))
                    .await
            }
            RunsCommand::Stop { run_id, format } => {
                crate::follow::stop(&sdk, &ledger, &run_id, format).await
            }
            RunsCommand::Retire {
                run_id,
                topic_arn,
                format,
            } => crate::serving::retire(&sdk, &ledger, &run_id, topic_arn, format).await,
            RunsCommand::Extend {
                run_id,
                hours,
                format,
            } => crate::serving::extend(&sdk, &ledger, &run_id, hours, format).await,
            RunsCommand::Show { run_id, format, .. } => {
                match ledger.get(&RunId(run_id.clone())).await {
                    Ok(Some(run)) => {
                        let places =
                            match queue_places_for(&ledger, std::slice::from_ref(&run)).await {
                                Ok(p) => p,
                                Err(e) => return usage_error(read_error(&sdk, ledger.table(), &e)),
                            };
                        print!("{}", render_show(&run, places.get(&run.run_id), format));
                        ExitCode::SUCCESS
                    }
                    Ok(None) => {
                        eprintln!("distillery: no run {run_id} in table {}", ledger.table());
                        ExitCode::from(1)
                    }
                    Err(e) => usage_error(read_error(&sdk, ledger.table(), &e)),
                }
            }
            RunsCommand::Retry {
                run_id,
                state_machine_arn,
                settings,
                format,
            } => {
                crate::submit::retry(
                    &sdk,
                    &ledger,
                    &run_id,
                    state_machine_arn.as_deref(),
                    &settings,
                    format,
                )
                .await
            }
            RunsCommand::Reconcile {
                dry_run,
                quiet_period_seconds,
                topic_arn,
                format,
            } => {
                let args = crate::reconcile::ReconcileArgs {
                    dry_run,
                    quiet_period_seconds,
                    topic_arn,
                    format,
                };
                crate::reconcile::run(&sdk, &ledger, args).await
            }
        }
    })
}

/// The one-line cause for a failed read. DynamoDB answers `ResourceNotFoundException` for a table (or
/// index) that does not exist, which the SDK text alone does not make obvious.
fn read_error(sdk: &aws_config::SdkConfig, table: &str, e: &PortError) -> String {
    match e {
        PortError::NotFound(detail) => format!(
            "table {table} does not exist (or lacks the {STATUS_INDEX}/{RECENT_INDEX} indexes) in this \
             account and Region: check --table/TABLE_NAME, AWS_REGION and AWS_ENDPOINT_URL ({detail})"
        ),
        other => format!(
            "reading table {table}: {}",
            crate::aws::call_error(sdk, "DynamoDB", &other.to_string())
        ),
    }
}

/// The queue places of the queued runs among `runs` (none read when none is queued).
async fn queue_places_for(
    ledger: &DynamoRunLedger,
    runs: &[Run],
) -> Result<BTreeMap<RunId, QueuePlace>, PortError> {
    if !runs.iter().any(|r| r.status == RunStatus::Queued) {
        return Ok(BTreeMap::new());
    }
    let queued = ledger
        .list_by_status(RunStatus::Queued, QUEUED_RUNS_PER_PASS)
        .await?;
    Ok(queue_places(queued))
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub fn render_list(runs: &[Run], places: &BTreeMap<RunId, QueuePlace>, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(runs).unwrap_or_default() + "\n";
    }
    if runs.is_empty() {
        return "no runs\n".to_string();
    }
    let mut out = format!(
        "{:<24}  {:<19}  {:<19}  {:<30}  {}\n",
        "RUN", "STATUS", "CREATED (UTC)", "DATASET", "JOB"
    );
    for r in runs {
        let status = match places.get(&r.run_id) {
            Some(p) => format!("queued {}/{}", p.position, p.of),
            None => r.status.as_str().to_string(),
        };
        out.push_str(&format!(
            "{:<24}  {:<19}  {:<19}  {:<30}  {}\n",
            r.run_id.as_str(),
            status,
            time(&r.created_at),
            r.dataset.display_name(),
            r.job_name.as_deref().unwrap_or("-")
        ));
    }
    out
}

pub fn render_show(run: &Run, place: Option<&QueuePlace>, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(run).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let mut field = |name: &str, value: &str| out.push_str(&format!("{name:<22}{value}\n"));
    field("run", run.run_id.as_str());
    field("status", run.status.as_str());
    if let (Some(q), RunStatus::Queued) = (&run.queue, run.status) {
        let place = place.map_or(String::new(), |p| {
            format!("position {} of {}, ", p.position, p.of)
        });
        let priority = if run.priority.is_normal() {
            String::new()
        } else {
            format!(" (priority {})", run.priority)
        };
        field(
            "queue",
            &format!(
                "{place}waiting since {} UTC{priority}: {}",
                time(&q.since),
                q.reason
            ),
        );
        if let Some(until) = q.held_until {
            field("retries at", &format!("{} UTC", time(&until)));
        }
    }
    field("dataset", &run.dataset.s3_uri());
    if let Some(snap) = &run.snapshot {
        // What the job trains on: the validated copy, not the upload key above.
        field(
            "trains on",
            &format!(
                "{} ({} bytes, sha256 {}, read by {})",
                snap.uri,
                snap.size,
                snap.sha256,
                snap.source.describe()
            ),
        );
    }
    field(
        "teacher -> student",
        &format!("{} -> {}", run.settings.teacher, run.settings.student),
    );
    field(
        "maxResponseLength",
        &run.settings.max_response_length.to_string(),
    );
    let serving = match run.settings.serving {
        ServingMode::None | ServingMode::Auto | ServingMode::OnDemand => {
            run.settings.serving.to_string()
        }
        ServingMode::Provisioned => format!(
            "provisioned ({} model units, commitment {})",
            run.settings.model_units,
            run.settings.commitment.as_str()
        ),
    };
    field("serving", &serving);
    field("created", &time(&run.created_at));
    field("updated", &time(&run.updated_at));
    if let Some(old) = &run.retry_of {
        field("retry of", &format!("{old} (attempt {})", run.attempt));
    }
    let optional = [
        ("owner execution", &run.owner_execution),
        ("job name", &run.job_name),
        ("job ARN", &run.job_arn),
        ("custom model", &run.custom_model_name),
        ("custom model ARN", &run.custom_model_arn),
        ("provisioned model ARN", &run.provisioned_model_arn),
        ("deployment ARN", &run.deployment_arn),
        ("failure", &run.failure_reason),
    ];
    for (name, v) in optional {
        if let Some(v) = v {
            field(name, v);
        }
    }
    if let Some(t) = &run.serving_expires_at {
        field("serving expires", &time(t));
    }
    if let Some(t) = &run.retired_at {
        field("retired", &time(t));
    }
    if let Some(d) = &run.training_detail {
        field("training", &d.summary());
    }
    if let Some(v) = &run.validation {
        field(
            "validation",
            &format!(
                "{} ({} records, {} invalid, {} errors, {} warnings)",
                if v.valid { "valid" } else { "invalid" },
                v.records,
                v.invalid_records,
                v.error_count,
                v.warning_count
            ),
        );
        if let Some(uri) = &v.report_uri {
            field("report", uri);
        }
        for e in &v.first_errors {
            field("", e);
        }
    }
    // The quality gate: its verdict and figures once evaluated, else whether it is armed, off or
    // skipped (and why).
    match (&run.evaluation, &run.quality_gate) {
        (Some(e), _) => {
            field("quality gate", &verdict_line(&e.decision));
            field("student vs teacher", &comparison_line(&e.decision));
            field("evaluation", &e.results_uri);
        }
        (None, Some(plan)) => field("quality gate", &plan.describe()),
        (None, None) => {}
    }
    out.push_str("history:\n");
    for h in &run.history {
        let from = h.from.map(|s| s.as_str()).unwrap_or("-");
        let detail = h
            .detail
            .as_deref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default();
        out.push_str(&format!("  {}  {from} -> {}{detail}\n", time(&h.at), h.to));
    }
    // Delivery records are how a failed notification stays visible (docs/notifications.md).
    if !run.deliveries.is_empty() {
        out.push_str("notifications:\n");
        for d in &run.deliveries {
            let outcome = if d.delivered { "delivered" } else { "failed" };
            let detail = d
                .detail
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}  {}  {}  {outcome}{detail}\n",
                time(&d.at),
                d.milestone,
                d.channel
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use distillery_core::domain::snapshot::{DatasetSnapshot, ObjectPin};

    #[test]
    fn a_queued_run_shows_its_place_since_when_and_why() {
        let now = chrono::Utc::now();
        let mut runs = Vec::new();
        for (i, minutes) in [(0, 2), (1, 1)] {
            let mut r = distillery_core::testing::sample_run(
                "b",
                &format!("incoming/{i}.jsonl"),
                "e",
                3,
                now,
            );
            r.status = RunStatus::Queued;
            r.queue = Some(distillery_core::domain::run::QueueEntry {
                since: now - chrono::Duration::minutes(minutes),
                reason: "all 2 job slot(s) taken (MAX_CONCURRENT_JOBS)".into(),
                task_token: Some("never-shown".into()),
                held_until: None,
                quota_refusals: 0,
                for_serving: false,
                admitted_at: None,
            });
            runs.push(r);
        }
        let places = queue_places(runs.clone());
        let list = render_list(&runs, &places, Format::Text);
        let line_of = |r: &Run| {
            list.lines()
                .find(|l| l.starts_with(r.run_id.as_str()))
                .unwrap()
                .to_string()
        };
        // Run 0 joined the queue first (2 minutes ago).
        assert!(line_of(&runs[0]).contains("queued 1/2"), "{list}");
        assert!(line_of(&runs[1]).contains("queued 2/2"), "{list}");
        let show = render_show(&runs[1], places.get(&runs[1].run_id), Format::Text);
        assert!(show.contains("position 2 of 2, waiting since"), "{show}");
        assert!(show.contains("MAX_CONCURRENT_JOBS"), "{show}");
        assert!(!show.contains("never-shown"), "{show}");
    }

    #[test]
    fn show_names_the_snapshot_a_run_trains_on() {
        let mut run = distillery_core::testing::sample_run(
            "b",
            "incoming/a.jsonl",
            "e",
            3,
            chrono::Utc::now(),
        );
        assert!(!render_show(&run, None, Format::Text).contains("trains on"));
        run.snapshot = Some(DatasetSnapshot {
            uri: "s3://b/runs/run-1/dataset.jsonl".into(),
            bucket: "b".into(),
            key: "runs/run-1/dataset.jsonl".into(),
            size: 3,
            sha256: "ab".repeat(32),
            etag: "x".into(),
            source: ObjectPin::VersionId {
                version_id: "v7".into(),
            },
        });
        let text = render_show(&run, None, Format::Text);
        assert!(
            text.contains(&format!(
                "trains on             s3://b/runs/run-1/dataset.jsonl (3 bytes, sha256 {}, read by version id v7)",
                "ab".repeat(32)
            )),
            "{text}"
        );
    }

    #[test]
    fn show_says_what_the_quality_gate_decided_or_why_there_is_none() {
        let mut run = distillery_core::testing::sample_run(
            "b",
            "incoming/a.jsonl",
            "e",
            3,
            chrono::Utc::now(),
        );
        assert!(!render_show(&run, None, Format::Text).contains("quality gate"));
        run.quality_gate = Some(distillery_core::domain::evaluation::GatePlan::Off);
        assert!(render_show(&run, None, Format::Text)
            .contains("quality gate          off (QUALITY_GATE=off)"));
        run.evaluation = Some(distillery_core::testing::sample_evaluation(
            chrono::Utc::now(),
            false,
        ));
        let text = render_show(&run, None, Format::Text);
        assert!(
            text.contains("quality gate          failed: the student won or tied on 50% of 20"),
            "{text}"
        );
        assert!(
            text.contains("student vs teacher    mean latency 300 ms"),
            "{text}"
        );
    }
}
