//! `make bench-orchestration`: event-driven vs polling job tracking, measured on the local stack.
//!
//! One distillation job that lasts "24 hours" runs through the real state machine three times: in
//! events mode, in polling mode (events dropped, as in an account without the EventBridge rule), and in
//! events mode with every event dropped (the fallback poll alone). Time is scaled by `--scale`: the
//! simulator's job lasts 24 h × scale, and the runner's `--time-scale` shortens every Wait state and the
//! event wait's fallback timeout by the same factor, so the state machine takes the same path it would
//! in AWS (Lambda calls themselves are not scaled: each adds its real duration).
//!
//! Measured per run: the execution's state transitions (counted by the runner as Step Functions bills
//! them), the delay between the simulator's job reaching `Completed` and the ledger recording it (real,
//! and divided by the scale), and the GetModelCustomizationJob calls for the job. Writes
//! `target/bench/orchestration.json`. Needs a stack started by `scripts/bench-orchestration.sh`
//! (real poll waits: POLL_INITIAL_WAIT_SECONDS=60, POLL_MAX_WAIT_SECONDS=900).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use distillery_core::domain::run::RunStatus;
use distillery_local_stack::{repo_root, Stack};
use serde_json::{json, Value};

const JOB_SECONDS: f64 = 24.0 * 3600.0;
const FALLBACK_SECONDS: u64 = 1800;

struct Options {
    scale: f64,
    out: PathBuf,
}

fn options() -> Result<Options> {
    let mut scale = 0.001;
    let mut out = repo_root().join("target/bench/orchestration.json");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--scale" => {
                let v = args.next().context("--scale needs a value")?;
                scale = v
                    .parse()
                    .with_context(|| format!("--scale: '{v}' is not a number"))?;
                if !(scale > 0.0 && scale <= 1.0) {
                    bail!("--scale must be in (0, 1], got {scale}");
                }
            }
            "--out" => out = PathBuf::from(args.next().context("--out needs a path")?),
            "-h" | "--help" => {
                println!("usage: bench-orchestration [--scale 0.001] [--out target/bench/orchestration.json]\n(run it through scripts/bench-orchestration.sh, which starts the stack it needs)");
                std::process::exit(0);
            }
            other => bail!("unknown argument '{other}' (see --help)"),
        }
    }
    Ok(Options { scale, out })
}

fn time(v: &Value, what: &str) -> Result<DateTime<Utc>> {
    let s = v
        .as_str()
        .with_context(|| format!("{what} is not a string: {v}"))?;
    Ok(DateTime::parse_from_rfc3339(s)
        .with_context(|| format!("{what} '{s}' is not RFC 3339"))?
        .with_timezone(&Utc))
}

/// One measured run: `mode` is the JobTrackingMode; `drop_events` drops every job event.
async fn measure(stack: &Stack, scale: f64, mode: &str, drop_events: bool) -> Result<Value> {
    stack.reset_fakes().await?;
    let http = reqwest::Client::new();
    let sim = &stack.info.bedrock_sim_url;
    // The simulator's job: three phases making 24 h × scale.
    let phase_ms = (JOB_SECONDS * scale * 1000.0 / 3.0).round() as u64;
    let timing: Value = http
        .get(format!("{sim}/_sim/timing"))
        .send()
        .await?
        .json()
        .await?;
    let mut timing = timing;
    timing["phaseMs"] = json!(phase_ms);
    http.put(format!("{sim}/_sim/timing"))
        .json(&timing)
        .send()
        .await?
        .error_for_status()
        .context("setting the simulator's timing")?;
    if drop_events {
        stack.bedrock_faults(&json!({"kind": "dropEvents"})).await?;
    }

    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let key = format!("incoming/bench-{nanos}/orchestration-{mode}.jsonl");
    let dataset = std::fs::read(repo_root().join("examples/datasets/support-tickets.jsonl"))?;
    let input = stack.upload_and_receive(&key, dataset, &[]).await?;
    eprintln!(
        "bench-orchestration: {mode}{}: a 24 h job at scale {scale} ({:.0} s real)...",
        if drop_events { " (events dropped)" } else { "" },
        JOB_SECONDS * scale
    );
    let started = std::time::Instant::now();
    let ex = stack
        .execution(&input)
        .substitution("JobTrackingMode", mode)
        .substitution("JobEventFallbackSeconds", FALLBACK_SECONDS)
        .time_scale(scale)
        .run()
        .await?;
    let wall = started.elapsed().as_secs_f64();
    if !ex.succeeded() {
        bail!(
            "{mode}: the execution did not succeed ({:?}: {:?}); states {:?}",
            ex.error,
            ex.cause,
            ex.states_entered()
        );
    }
    let run_id = ex.run_id().context("no run id")?;
    let run = stack.run(&run_id).await?;
    let job_arn = run.job_arn.clone().context("no job ARN on the run")?;
    let recorded = run
        .history
        .iter()
        .find(|h| h.to == RunStatus::Completed)
        .map(|h| h.at)
        .context("no history entry for completed")?;

    let events: Value = http
        .get(format!("{sim}/_sim/events"))
        .send()
        .await?
        .json()
        .await?;
    let completed = events["events"]
        .as_array()
        .context("event log")?
        .iter()
        .find(|e| e["jobArn"] == job_arn.as_str() && e["jobStatus"] == "Completed")
        .context("the simulator logged no Completed event for the job")?;
    let ended = time(&completed["statusTime"], "statusTime")?;
    let notice_real = (recorded - ended).num_milliseconds() as f64 / 1000.0;

    let calls = stack.bedrock_calls().await?;
    let gets = calls
        .iter()
        .filter(|c| {
            c["operation"] == "GetModelCustomizationJob"
                && (c["request"]["jobIdentifier"] == job_arn.as_str()
                    || c["resourceArn"] == job_arn.as_str())
        })
        .count();
    let waits = ex
        .transitions_by_state
        .get("WaitForJobEvent")
        .copied()
        .unwrap_or(0);
    let polls = ex
        .transitions_by_state
        .get("PollStatus")
        .copied()
        .unwrap_or(0);
    eprintln!(
        "bench-orchestration: {mode}: {} transitions, completion noticed {notice_real:.3} s after the job ended ({:.0} s unscaled), {gets} GetModelCustomizationJob calls",
        ex.transitions,
        notice_real / scale
    );
    Ok(json!({
        "transitions_24h": ex.transitions,
        "completion_notice_seconds": ((notice_real / scale) * 10.0).round() / 10.0,
        "completion_notice_seconds_local": (notice_real * 1000.0).round() / 1000.0,
        "bedrock_get_calls": gets,
        "wait_entries": waits,
        "polls": polls,
        "execution_seconds_local": (wall * 10.0).round() / 10.0,
        "transitions_by_state": ex.transitions_by_state,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let opts = options()?;
    let stack = Stack::connect().await?;
    let event_driven = measure(&stack, opts.scale, "events", false).await?;
    let polling = measure(&stack, opts.scale, "polling", true).await?;
    let dropped = measure(&stack, opts.scale, "events", true).await?;
    let report = json!({
        "scale": opts.scale,
        "job_hours": 24,
        "fallback_seconds": FALLBACK_SECONDS,
        "poll_waits_seconds": {"initial": 60, "max": 900},
        "event_driven": event_driven,
        "polling": polling,
        "event_driven_events_dropped": dropped,
        "note": "completion_notice_seconds = the local delay divided by the scale; event delivery (EventBridge -> queue -> Lambda) is not a scaled quantity, so in events mode completion_notice_seconds_local is the figure to read",
    });
    if let Some(dir) = opts.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&opts.out, serde_json::to_string_pretty(&report)? + "\n")?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!("bench-orchestration: wrote {}", opts.out.display());
    Ok(())
}
