//! `distillery-demo --dataset FILE`: one dataset through the whole pipeline on the local stack (see
//! `make demo`), printed as a timeline a person can read: the upload, each state machine step with its
//! time, the job and model names and ARNs, the Provisioned Throughput, the run's ledger history, and
//! every SNS and Slack message as delivered. For a rejected dataset it prints the validation report.
//!
//! `distillery-demo --source invocation-logs`: a scheduled retraining instead. 36 hours of generated
//! invocation logs go into the stack's log bucket, and the schedule fires: the validator reads its
//! window (curated, the stack's LOG_RUN_MODE), and the timeline follows as for an upload.
//!
//! Exits 0 when the run reached the outcome the pipeline promises (ready, completed or rejected) and
//! 1 otherwise, so a broken pipeline fails `make demo`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use distillery_core::domain::run::RunStatus;
use distillery_core::testing::invocation_logs::LogGenOptions;
use distillery_local_stack::{read_file, Execution, Stack};
use serde_json::Value;

mod report;
use report::{print_estimate, print_gate, print_report};

#[derive(Parser)]
#[command(about = "Run one dataset through the local Distillery pipeline and print its timeline")]
struct Args {
    /// Where the run's data comes from: `upload` (the dataset file, uploaded) or `invocation-logs`
    /// (generated logs and a scheduled run over them; serving and the gate are the stack's).
    #[arg(long, default_value = "upload")]
    source: String,
    /// The dataset: a JSONL file in Bedrock's bedrock-conversation-2024 format (`--source upload`).
    #[arg(long)]
    dataset: Option<PathBuf>,
    /// How the distilled model is served: `auto` (on-demand where the student supports it, else
    /// none), `on-demand` (a custom model deployment), `provisioned` (simulated Provisioned
    /// Throughput, with its expiry) or `none`.
    #[arg(long, default_value = "auto")]
    serving: String,
    /// Model units when serving is provisioned.
    #[arg(long, default_value = "1")]
    model_units: String,
    /// The quality gate for this dataset (`x-amz-meta-distillery-quality-gate`): `on` holds records
    /// out and evaluates the student against its teacher before it serves; `off` leaves it to the
    /// stack (off on the local stack).
    #[arg(long, default_value = "on")]
    quality_gate: String,
    /// How good the simulated student is (0..=1, the share of prompts it answers like its
    /// teacher): 0.2 shows a failing gate. Unset keeps the simulator's setting.
    #[arg(long)]
    student_quality: Option<f64>,
}

#[tokio::main]
async fn main() {
    match run().await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("demo: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn run() -> Result<bool> {
    let args = Args::parse();
    let stack = Stack::connect().await?;
    stack.reset_fakes().await?;
    stack.take_sns_deliveries().await?;
    let slack_before = stack.slack_messages().await?.len();
    if let Some(q) = args.student_quality {
        stack.set_student_quality(q).await?;
    }
    let (t0, execution) = match args.source.as_str() {
        "upload" => upload_and_run(&stack, &args).await?,
        "invocation-logs" => logs_and_run(&stack).await?,
        other => bail!("--source must be upload or invocation-logs, got '{other}'"),
    };
    report_run(&stack, t0, execution, slack_before).await
}

/// A scheduled retraining over freshly generated invocation logs: the 36 hours up to the current
/// hour, so they span two or three days.
async fn logs_and_run(stack: &Stack) -> Result<(chrono::DateTime<chrono::Utc>, Execution)> {
    use chrono::{DurationRound, TimeDelta};
    let now = chrono::Utc::now();
    let start = now.duration_trunc(TimeDelta::hours(1))? - TimeDelta::hours(36);
    heading("Distillery local demo: scheduled retraining from invocation logs");
    print_stack(stack);
    let t0 = chrono::Utc::now();
    let options = LogGenOptions {
        target_bytes: 0,
        min_hours: 36,
        records_per_file: 50,
        files_per_hour: 1,
        start,
        seed: now.timestamp() as u64,
        truncated_file: true,
        corrupt_file: true,
    };
    let generated = stack.put_invocation_logs(&options).await?;
    line(
        t0,
        chrono::Utc::now(),
        &format!(
            "wrote {} invocation log files ({} records, {} gzipped bytes) under {} for the {} hours from {} (several models and metadata, duplicates, multi-turn and image records, an offloaded body, a truncated and a corrupt file)",
            generated.files,
            generated.records,
            generated.bytes,
            stack.invocation_logs_uri(),
            generated.hours,
            start.format("%Y-%m-%d %H:00 UTC")
        ),
    );
    let schedule = format!("demo-retraining-{}", now.format("%Y%m%dT%H%M%S"));
    let input = serde_json::json!({
        "source": "distillery.schedule",
        "scheduleName": schedule,
        "scheduledTime": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    line(
        t0,
        chrono::Utc::now(),
        &format!("schedule {schedule} fired: {input}"),
    );
    let execution = stack.run_execution(&input).await?;
    if let Some(run_id) = execution.run_id() {
        let run = stack.run(&run_id).await?;
        if let Some(uri) = run.validation.as_ref().and_then(|v| v.report_uri.clone()) {
            let report: Value = serde_json::from_slice(&stack.read_s3_uri(&uri).await?)?;
            print_curation(&report);
        }
        print_estimate(&run);
    }
    Ok((t0, execution))
}

/// What a curated run read from its window and chose (the report's `curation`).
fn print_curation(report: &Value) {
    let c = &report["curation"];
    if c.is_null() {
        return;
    }
    heading("Curated window (the validator's read of the logs)");
    if let Some(w) = report.get("logWindow") {
        println!(
            "window    {} to {}",
            w["start"].as_str().unwrap_or("?"),
            w["end"].as_str().unwrap_or("?")
        );
    }
    println!(
        "files     {} in the window, {} read",
        c["filesInWindow"], c["filesRead"]
    );
    println!(
        "records   {} scanned, {} matched the filter, {} eligible in the window, {} distinct prompts chosen{}",
        c["scanned"],
        c["matched"],
        c["eligibleInWindow"],
        c["selected"],
        c["cappedAt"]
            .as_u64()
            .map(|n| format!(" (capped at {n})"))
            .unwrap_or_default()
    );
    if let Some(m) = c["ineligible"].as_object() {
        let reasons: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
        if !reasons.is_empty() {
            println!("ineligible {}", reasons.join(", "));
        }
    }
    for s in c["skippedFiles"].as_array().into_iter().flatten() {
        println!(
            "skipped   {}{}: {}",
            s["file"].as_str().unwrap_or("?"),
            s["line"]
                .as_u64()
                .map(|l| format!(" line {l}"))
                .unwrap_or_default(),
            s["reason"].as_str().unwrap_or("?")
        );
    }
}

/// One dataset file uploaded; the upload event starts the execution.
async fn upload_and_run(
    stack: &Stack,
    args: &Args,
) -> Result<(chrono::DateTime<chrono::Utc>, Execution)> {
    let Some(dataset) = &args.dataset else {
        bail!("--dataset FILE is needed with --source upload");
    };
    let body = read_file(dataset)?;
    let file_name = dataset
        .file_name()
        .and_then(|n| n.to_str())
        .context("the dataset path has no file name")?
        .to_string();
    if !file_name.ends_with(".jsonl") {
        bail!(
            "{}: the upload rule only starts runs for keys ending in .jsonl; rename the file",
            dataset.display()
        );
    }

    // A fresh key per demo run, so the same file can be demoed twice (a re-upload of the same key
    // and content would be the same run: a duplicate).
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let key = format!("incoming/demo-{stamp}/{file_name}");
    let lines = body.iter().filter(|b| **b == b'\n').count();
    let meta = [
        ("distillery-serving", args.serving.as_str()),
        ("distillery-model-units", args.model_units.as_str()),
        ("distillery-quality-gate", args.quality_gate.as_str()),
    ];

    heading("Distillery local demo");
    println!(
        "dataset   {} ({} bytes, {} lines)",
        dataset.display(),
        body.len(),
        lines
    );
    if args.serving == "provisioned" {
        println!(
            "serving   {} ({} model unit(s))",
            args.serving, args.model_units
        );
    } else {
        println!("serving   {}", args.serving);
    }
    println!(
        "gate      quality gate {}{}",
        args.quality_gate,
        args.student_quality
            .map(|q| format!(" (simulated student quality {q})"))
            .unwrap_or_default()
    );
    print_stack(stack);

    let t0 = chrono::Utc::now();
    let etag = stack.upload(&key, body, &meta).await?;
    line(
        t0,
        chrono::Utc::now(),
        &format!(
            "PutObject s3://{}/{key}  ETag {etag}  (x-amz-meta-distillery-serving: {})",
            stack.bucket(),
            args.serving
        ),
    );
    let event = stack
        .receive_upload_event(&key, Duration::from_secs(20))
        .await?;
    line(t0, chrono::Utc::now(), &format!(
        "EventBridge rule {} matched \"{}\" from {}; its SQS target handed the event to the state machine",
        stack.info.resources.upload_rule,
        event["detail-type"].as_str().unwrap_or("?"),
        event["source"].as_str().unwrap_or("?")
    ));
    let execution = stack.run_execution(&event).await?;
    if let Some(run_id) = execution.run_id() {
        print_estimate(&stack.run(&run_id).await?);
    }
    Ok((t0, execution))
}

/// The execution's steps, the run as the ledger holds it, and every message delivered.
async fn report_run(
    stack: &Stack,
    t0: chrono::DateTime<chrono::Utc>,
    execution: Execution,
    slack_before: usize,
) -> Result<bool> {
    print_steps(t0, &execution);
    println!(
        "\nexecution {}{}",
        execution.status,
        match (&execution.error, &execution.cause) {
            (Some(e), Some(c)) => format!(": {e}: {c}"),
            _ => String::new(),
        }
    );

    let Some(run_id) = execution.run_id() else {
        println!("(no run was recorded)");
        return Ok(false);
    };
    let run = stack.run(&run_id).await?;
    heading(&format!("Run {run_id} in the ledger: {}", run.status));
    let show = |label: &str, v: &Option<String>| {
        if let Some(v) = v {
            println!("{label:<24}{v}");
        }
    };
    println!("{:<24}{}", "dataset", run.dataset.s3_uri());
    println!(
        "{:<24}{} -> {}",
        "teacher -> student", run.settings.teacher, run.settings.student
    );
    show("job name", &run.job_name);
    show("job ARN", &run.job_arn);
    show("custom model name", &run.custom_model_name);
    show("custom model ARN", &run.custom_model_arn);
    println!("{:<24}{}", "serving", run.settings.serving);
    show("deployment name", &run.deployment_name);
    show("deployment ARN", &run.deployment_arn);
    show("provisioned model", &run.provisioned_model_name);
    show("provisioned ARN", &run.provisioned_model_arn);
    if run.provisioned_model_arn.is_some() {
        println!(
            "{:<24}{} model unit(s), commitment {}",
            "provisioned throughput",
            run.settings.model_units,
            run.settings.commitment.as_str()
        );
    }
    if let Some(at) = run.serving_expires_at {
        println!(
            "{:<24}{} (PT_TTL_HOURS; the reconciler deletes it then; `distillery runs extend {} --hours N` pushes it)",
            "throughput expires", at.format("%Y-%m-%d %H:%M:%S UTC"), run.run_id
        );
    }
    show("failure reason", &run.failure_reason);
    print_gate(&run);
    if let Some(v) = &run.validation {
        println!(
            "{:<24}{} records, {} invalid, {} errors, {} warnings",
            "validation", v.records, v.invalid_records, v.error_count, v.warning_count
        );
        show("report", &v.report_uri);
    }
    println!("\nhistory:");
    for h in &run.history {
        println!(
            "  {}  {:>13} -> {:<20} {}",
            h.at.format("%H:%M:%S%.3f"),
            h.from.map(|s| s.as_str()).unwrap_or("-"),
            h.to.as_str(),
            h.detail.as_deref().unwrap_or("")
        );
    }
    if !run.deliveries.is_empty() {
        println!("\ndeliveries:");
        for d in &run.deliveries {
            println!(
                "  {}  {:<20} {:<6} {}{}",
                d.at.format("%H:%M:%S%.3f"),
                d.milestone,
                d.channel,
                if d.delivered { "delivered" } else { "FAILED" },
                d.detail
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default()
            );
        }
    }

    if run.status == RunStatus::Rejected {
        if let Some(uri) = run.validation.as_ref().and_then(|v| v.report_uri.clone()) {
            heading(&format!("Validation report {uri}"));
            let report = stack.read_s3_uri(&uri).await?;
            print_report(&report);
        }
    }

    // Give the SNS → SQS fan-out a moment, then show what people received.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sns = stack.take_sns_deliveries().await?;
    heading(&format!(
        "SNS: {} message(s) delivered to the topic's SQS subscription",
        sns.len()
    ));
    for m in &sns {
        println!("--- {}", m.subject.as_deref().unwrap_or("(no subject)"));
        if !m.attributes.is_empty() {
            let attrs: Vec<String> = m
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("    attributes: {}", attrs.join(", "));
        }
        for l in m.message.lines() {
            println!("    {l}");
        }
    }
    let slack = stack.slack_messages().await?;
    let slack = &slack[slack_before.min(slack.len())..];
    heading(&format!(
        "Slack: {} message(s) received by the webhook",
        slack.len()
    ));
    for m in slack {
        let payload = m.get("payload").unwrap_or(m);
        println!("--- {}", payload["text"].as_str().unwrap_or("(no text)"));
        for b in payload["blocks"].as_array().into_iter().flatten() {
            for t in block_texts(b) {
                // Slack escapes &, < and > in mrkdwn; show the text as Slack renders it.
                let t = t
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&amp;", "&");
                for l in t.lines() {
                    println!("    {l}");
                }
            }
        }
    }
    println!();
    // A failed gate is an outcome the pipeline promises too (nothing bought, said why), and so is
    // a scheduled run skipped for too few new records.
    let ok = matches!(
        run.status,
        RunStatus::Ready
            | RunStatus::Completed
            | RunStatus::Rejected
            | RunStatus::GateFailed
            | RunStatus::Skipped
    );
    println!(
        "demo finished in {:.1} s: run {} is {}",
        (chrono::Utc::now() - t0).num_milliseconds() as f64 / 1000.0,
        run_id,
        run.status
    );
    Ok(ok)
}

/// Where the local services listen.
fn print_stack(stack: &Stack) {
    println!(
        "stack     moto {} | bedrock-sim {} | slack-sink {} | lambdas {}",
        stack.info.moto_url,
        stack.info.bedrock_sim_url,
        stack.info.slack_sink_url,
        stack.info.lambda_invoke_url
    );
}

fn heading(s: &str) {
    println!("\n== {s}");
}

fn line(t0: chrono::DateTime<chrono::Utc>, at: chrono::DateTime<chrono::Utc>, text: &str) {
    let rel = (at - t0).num_milliseconds() as f64 / 1000.0;
    println!("{}  +{rel:>6.2}s  {text}", at.format("%H:%M:%S%.3f"));
}

fn ms_to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_else(chrono::Utc::now)
}

/// One line per step; consecutive polls that report the same status are folded into one line.
fn print_steps(t0: chrono::DateTime<chrono::Utc>, ex: &Execution) {
    let mut last_poll: Option<String> = None;
    let mut folded = 0;
    for e in &ex.events {
        let at = ms_to_time(e["timestamp"].as_i64().unwrap_or(0));
        let name = e["state"]["name"].as_str().unwrap_or("");
        match e["type"].as_str().unwrap_or("") {
            "StateExited" => {
                let out = &e["state"]["output"];
                let text = match name {
                    "ValidateDataset" => {
                        let v = &out["validation"];
                        Some(format!(
                            "ValidateDataset: run {} valid={} records={} invalid={} duplicate={} ignored={}{}",
                            out["runId"].as_str().unwrap_or("?"), v["valid"], v["records"], v["invalidRecords"],
                            v["duplicate"], v["ignored"],
                            v["reportUri"].as_str().map(|u| format!(" report {u}")).unwrap_or_default()
                        ))
                    }
                    "LaunchJob" => {
                        let l = &out["launch"];
                        Some(format!(
                            "LaunchJob: job {} -> custom model {}\n{:>28}job ARN {}",
                            l["jobName"].as_str().unwrap_or("?"),
                            l["customModelName"].as_str().unwrap_or("?"),
                            "",
                            l["jobArn"].as_str().unwrap_or("?")
                        ))
                    }
                    "PollStatus" => {
                        let p = &out["poll"];
                        let status = format!(
                            "{} ({})",
                            p["jobStatus"].as_str().unwrap_or("?"),
                            p["outcome"].as_str().unwrap_or("?")
                        );
                        if last_poll.as_deref() == Some(status.as_str()) {
                            folded += 1;
                            None
                        } else {
                            let again = if folded > 0 {
                                format!(" [{folded} more poll(s) before]")
                            } else {
                                String::new()
                            };
                            folded = 0;
                            last_poll = Some(status.clone());
                            let (why, model) = job_answer_details(p);
                            Some(format!(
                                "PollStatus: job {status}{why}, next wait {}s{again}{model}",
                                p["nextWaitSeconds"]
                            ))
                        }
                    }
                    "WaitForJobEvent" => {
                        // The task's result is what the job state-change event's handler sent.
                        let p = &out["poll"];
                        let (why, model) = job_answer_details(p);
                        Some(format!(
                            "WaitForJobEvent: job {} ({}){why}, reported by Bedrock's job state-change event{model}",
                            p["jobStatus"].as_str().unwrap_or("?"),
                            p["outcome"].as_str().unwrap_or("?")
                        ))
                    }
                    "ProvisionThroughput" => {
                        let p = &out["provision"];
                        Some(format!(
                            "ProvisionThroughput: {}{}",
                            p["outcome"].as_str().unwrap_or("?"),
                            p["provisionedModelArn"]
                                .as_str()
                                .map(|a| format!("  {a}"))
                                .unwrap_or_default()
                        ))
                    }
                    // Notify<Milestone> states are Passes that only prepare the request; the one
                    // `Notify` task answers. Its output keeps an earlier answer when this one
                    // failed, so the answer counts only if it is for the milestone asked.
                    "Notify" => {
                        let asked = out["notify"]["request"]["milestone"]
                            .as_str()
                            .unwrap_or("?");
                        let r = &out["notification"];
                        if r["milestone"].as_str() == Some(asked) {
                            Some(format!(
                                "Notify: milestone {asked}  SNS {}  Slack {}",
                                r["sns"].as_str().unwrap_or("?"),
                                r["slack"].as_str().unwrap_or("?")
                            ))
                        } else {
                            Some(format!(
                                "Notify: milestone {asked}: the notifier failed: {}",
                                out["notificationError"]
                            ))
                        }
                    }
                    _ => None,
                };
                if let Some(t) = text {
                    line(t0, at, &t);
                }
            }
            "StateRetried" => line(
                t0,
                at,
                &format!(
                    "{name}: retry {} after {}",
                    e["retry"]["attempt"],
                    ex.failures_of(name).last().cloned().unwrap_or_default()
                ),
            ),
            "StateCaught" => line(
                t0,
                at,
                &format!(
                    "{name}: error caught -> {}",
                    e["catch"]["catcher"]["Next"].as_str().unwrap_or("?")
                ),
            ),
            "StateEntered" if matches!(e["state"]["type"].as_str(), Some("Succeed" | "Fail")) => {
                line(
                    t0,
                    at,
                    &format!("{name} ({})", e["state"]["type"].as_str().unwrap_or("")),
                )
            }
            _ => {}
        }
    }
}

/// The text of a Slack Block Kit block (section text and fields, context elements, headers).
fn block_texts(b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(t) = b["text"]["text"].as_str() {
        out.push(t.to_string());
    }
    for f in b["fields"].as_array().into_iter().flatten() {
        if let Some(t) = f["text"].as_str() {
            out.push(t.to_string());
        }
    }
    for el in b["elements"].as_array().into_iter().flatten() {
        if let Some(t) = el["text"].as_str() {
            out.push(t.to_string());
        } else if let Some(t) = el["text"]["text"].as_str() {
            let url = el["url"]
                .as_str()
                .map(|u| format!(" <{u}>"))
                .unwrap_or_default();
            out.push(format!("[{t}]{url}"));
        }
    }
    out
}

/// The failure message (`: …`) and the custom model line of a poll answer (PollStatus, or the event
/// that ended WaitForJobEvent), each empty when absent.
fn job_answer_details(poll: &Value) -> (String, String) {
    let why = poll["failureMessage"]
        .as_str()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let model = poll["outputModelArn"]
        .as_str()
        .map(|a| format!("\n{:>28}custom model ARN {a}", ""))
        .unwrap_or_default();
    (why, model)
}
