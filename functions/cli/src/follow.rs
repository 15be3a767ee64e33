//! `distillery runs stop <run-id>` (ask Bedrock to stop a training run's job) and
//! `distillery runs show <run-id> --watch` (follow a run live until it ends).

use std::process::ExitCode;
use std::time::Duration;

use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_core::app::stop_run::RunStopper;
use distillery_core::domain::errors::ErrorType;
use distillery_core::domain::run::{Run, RunId, RunStatus};
use distillery_core::ports::{RunLedger, SystemClock};

use crate::runs::Format;
use crate::usage_error;

/// Exit status of `runs show --watch` for a run that ended in another status than completed/ready/retired/skipped.
pub const EXIT_ENDED_BADLY: u8 = 3;

pub async fn stop(
    sdk: &aws_config::SdkConfig,
    ledger: &DynamoRunLedger,
    run_id: &str,
    format: Format,
) -> ExitCode {
    let bedrock = BedrockCustomizationService::from_conf(sdk);
    let who = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map(|u| format!("{u} (distillery runs stop)"))
        .unwrap_or_else(|| "distillery runs stop".into());
    let callbacks = distillery_aws::sfn::StepFunctionsCallbacks::from_conf(sdk);
    let stopper = RunStopper {
        ledger,
        bedrock: &bedrock,
        clock: &SystemClock,
        callbacks: &callbacks,
    };
    match stopper.stop(&RunId(run_id.to_string()), &who).await {
        Ok(request) => {
            if format == Format::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&request).unwrap_or_default()
                );
            } else if request.result == "dequeued" {
                println!(
                    "run {} was queued and is now 'stopped': no job was launched, nothing was billed",
                    request.run_id
                );
            } else if request.result == "stopping" {
                println!(
                    "stopping job {} of run {}: the run becomes 'stopped' when Bedrock reports the job stopped (follow it: distillery runs show {} --watch)",
                    request.job_arn, request.run_id, request.run_id
                );
            } else {
                println!(
                    "job {} of run {} had already ended ({}); the pipeline records how",
                    request.job_arn,
                    request.run_id,
                    request.job_status.as_deref().unwrap_or("ended")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.error_type == ErrorType::NotFound => {
            eprintln!("distillery: {}", e.message);
            ExitCode::from(1)
        }
        Err(e) => usage_error(e.message),
    }
}

/// One line of `--watch`: time, status, sub-statuses, time since launch (or creation).
pub fn watch_line(run: &Run, now: chrono::DateTime<chrono::Utc>) -> String {
    let since = run.launched_at.unwrap_or(run.created_at);
    let elapsed = (now - since).num_seconds().max(0);
    let (h, m, s) = (elapsed / 3600, (elapsed % 3600) / 60, elapsed % 60);
    let detail = run
        .training_detail
        .as_ref()
        .map(|d| format!("  {}", d.summary()))
        .unwrap_or_default();
    let last = run
        .history
        .last()
        .and_then(|h| h.detail.as_deref())
        .map(|d| format!("  ({d})"))
        .unwrap_or_default();
    format!(
        "{}  {:<19} {h:02}:{m:02}:{s:02} since {}{detail}{last}",
        now.format("%H:%M:%S"),
        run.status.as_str(),
        if run.launched_at.is_some() {
            "launch"
        } else {
            "creation"
        },
    )
}

/// Prints a line whenever the run changes, until it ends; exit 0 for completed/ready/retired/skipped (nothing new to train on is not a failure), 3 for any
/// other end, 1 if there is no such run.
pub async fn watch(ledger: &DynamoRunLedger, run_id: &str, interval: Duration) -> ExitCode {
    let id = RunId(run_id.to_string());
    let mut last_seen: Option<(RunStatus, usize, Option<String>)> = None;
    loop {
        let run = match ledger.get(&id).await {
            Ok(Some(run)) => run,
            Ok(None) => {
                eprintln!("distillery: no run {run_id} in table {}", ledger.table());
                return ExitCode::from(1);
            }
            Err(e) => return usage_error(format!("reading run {run_id}: {e}")),
        };
        let seen = (
            run.status,
            run.history.len(),
            run.training_detail.as_ref().map(|d| d.summary()),
        );
        if last_seen.as_ref() != Some(&seen) {
            println!("{}", watch_line(&run, chrono::Utc::now()));
            last_seen = Some(seen);
        }
        if run.is_settled() {
            return if matches!(
                run.status,
                RunStatus::Completed | RunStatus::Ready | RunStatus::Retired | RunStatus::Skipped
            ) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_ENDED_BADLY)
            };
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use distillery_core::domain::run::TrainingDetail;

    #[test]
    fn a_watch_line_gives_status_sub_status_and_time_since_launch() {
        let t0 = chrono::Utc
            .with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
            .unwrap();
        let mut run = distillery_core::testing::sample_run("b", "incoming/a.jsonl", "e", 10, t0);
        run.status = RunStatus::Training;
        run.launched_at = Some(t0);
        run.training_detail = Some(TrainingDetail {
            validation: Some("Completed".into()),
            data_processing: Some("InProgress".into()),
            training: None,
        });
        let line = watch_line(&run, t0 + chrono::Duration::seconds(3723));
        assert!(line.starts_with("11:02:03  training"), "{line}");
        assert!(line.contains("01:02:03 since launch"), "{line}");
        assert!(line.contains("dataProcessing=InProgress"), "{line}");
    }
}
