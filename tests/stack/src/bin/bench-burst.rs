//! `make bench-burst`: a burst of uploads through the launch queue, measured on the local stack.
//!
//! `--runs` datasets (50) are uploaded at once and run through the real state machine against the
//! guarded functions (`MAX_CONCURRENT_JOBS=2`) and a simulator refusing a third job in progress, as
//! Bedrock does at its quota. Prints, from the same run: the burst's wall time, runs per minute,
//! the peak number of concurrent executions and of jobs in progress, state transitions per run,
//! the largest queue wait and the final statuses; writes them to `target/bench/burst.json`. Needs
//! a stack started by `scripts/bench-burst.sh`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use distillery_local_stack::burst::BurstOptions;
use distillery_local_stack::{repo_root, Stack};

fn options() -> Result<(BurstOptions, PathBuf)> {
    let mut opts = BurstOptions {
        runs: 50,
        sim_max_jobs: 2,
        phase_ms: 300,
        stop_one: false,
    };
    let mut out = repo_root().join("target/bench/burst.json");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut number = |name: &str| -> Result<u64> {
            let v = args
                .next()
                .with_context(|| format!("{name} needs a value"))?;
            v.parse()
                .with_context(|| format!("{name}: '{v}' is not a whole number"))
        };
        match a.as_str() {
            "--runs" => opts.runs = number("--runs")? as usize,
            "--phase-ms" => opts.phase_ms = number("--phase-ms")?,
            "--out" => out = PathBuf::from(args.next().context("--out needs a path")?),
            "-h" | "--help" => {
                println!("usage: bench-burst [--runs 50] [--phase-ms 300] [--out target/bench/burst.json]\n(run it through scripts/bench-burst.sh, which starts the stack it needs)");
                std::process::exit(0);
            }
            other => bail!("unknown argument '{other}' (see --help)"),
        }
    }
    if !(1..=500).contains(&opts.runs) {
        bail!("--runs must be 1 to 500, got {}", opts.runs);
    }
    Ok((opts, out))
}

#[tokio::main]
async fn main() -> Result<()> {
    let (opts, out) = options()?;
    let stack = Stack::connect().await?;
    let (report, runs) = stack.burst(&opts).await?;
    let failed: Vec<&str> = runs
        .iter()
        .filter(|r| !r.execution.succeeded())
        .map(|r| r.key.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("{} execution(s) did not succeed: {failed:?}", failed.len());
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(&out, text.clone() + "\n")?;
    println!("{text}");
    println!(
        "bench-burst: {} runs in {:.1} s ({:.1} runs/min); peak {} concurrent executions, {} jobs in progress (quota {}); {:.1} transitions per run (max {}); largest queue wait {:.1} s; {} quota refusals; written to {}",
        report.runs,
        report.wall_seconds,
        report.runs_per_minute,
        report.peak_concurrent_executions,
        report.peak_jobs_in_progress,
        report.sim_max_jobs,
        report.transitions_per_run_mean,
        report.transitions_per_run_max,
        report.largest_queue_wait_seconds,
        report.quota_refusals,
        out.display()
    );
    Ok(())
}
