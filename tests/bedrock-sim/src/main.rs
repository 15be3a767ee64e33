//! `bedrock-sim`: the Bedrock control-plane simulator as a process, for scripts and the local stack.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use distillery_core::domain::catalog::ModelCatalog;

/// Serves Bedrock's model customization, Provisioned Throughput and custom model deployment APIs,
/// and the Bedrock runtime's Converse, on 127.0.0.1.
/// Prints `listening on http://127.0.0.1:PORT` on stdout once ready; logs go to stderr.
#[derive(Parser, Debug)]
#[command(name = "bedrock-sim", version)]
struct Args {
    /// Port on 127.0.0.1; 0 or absent picks a free one.
    #[arg(long, default_value_t = 0, env = "BEDROCK_SIM_PORT")]
    port: u16,
    /// Duration of each job sub-status (validation, data processing, training), in milliseconds.
    #[arg(long, default_value_t = 1000, env = "BEDROCK_SIM_PHASE_MS")]
    phase_ms: u64,
    /// Duration of Stopping before Stopped, in milliseconds.
    #[arg(long, default_value_t = 500, env = "BEDROCK_SIM_STOP_MS")]
    stop_ms: u64,
    /// Duration of a Provisioned Throughput's Creating status, in milliseconds.
    #[arg(long, default_value_t = 1000, env = "BEDROCK_SIM_PT_MS")]
    pt_ms: u64,
    /// Duration of a custom model deployment's Creating status, in milliseconds (default: --pt-ms).
    #[arg(long, env = "BEDROCK_SIM_DEPLOYMENT_MS")]
    deployment_ms: Option<u64>,
    /// Region for ARNs when a request is not SigV4-signed.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Account id in ARNs.
    #[arg(long, default_value = "123456789012")]
    account_id: String,
    /// Quota: at most this many jobs in progress at once (unlimited when absent).
    #[arg(long)]
    max_in_progress_jobs: Option<usize>,
    /// Accept any custom model id in CreateProvisionedModelThroughput, not only models a Completed job
    /// in this simulator produced.
    #[arg(long)]
    lenient_model_ids: bool,
    /// EventBridge endpoint (moto's URL) to publish each job state-change event to (PutEvents, default
    /// bus, source aws.bedrock). Off when absent: events are only logged (GET /_sim/events).
    #[arg(long, env = "BEDROCK_SIM_EVENTS_URL")]
    events_url: Option<String>,
    /// S3 endpoint (moto's URL) to read the invocation logs of native invocation-log jobs from
    /// (path-style). Off when absent: such jobs are not checked.
    #[arg(long, env = "BEDROCK_SIM_S3_URL")]
    s3_url: Option<String>,
    /// Share (0..=1) of prompts on which a student (Converse on a custom model deployment or
    /// Provisioned Throughput) answers like its teacher; the simulated judge prefers the teacher's
    /// answer on the rest. Changeable at runtime: PUT /_sim/runtime {"studentQuality": Q}.
    #[arg(long, default_value_t = bedrock_sim::DEFAULT_STUDENT_QUALITY, env = "BEDROCK_SIM_STUDENT_QUALITY")]
    student_quality: f64,
    /// Supported pairs file (default: DISTILLERY_MODEL_PAIRS_FILE, else the built-in
    /// functions/core/data/model-pairs.json).
    #[arg(long)]
    model_pairs_file: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BEDROCK_SIM_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let catalog = match &args.model_pairs_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            ModelCatalog::from_json(&text).with_context(|| path.display().to_string())?
        }
        None => ModelCatalog::load().context("loading the supported model pairs")?,
    };
    let config = bedrock_sim::SimConfig {
        region: args.region,
        account_id: args.account_id,
        timing: bedrock_sim::Timing {
            phase_ms: args.phase_ms,
            stop_ms: args.stop_ms,
            pt_ms: args.pt_ms,
        },
        catalog,
        max_in_progress_jobs: args.max_in_progress_jobs,
        strict_model_ids: !args.lenient_model_ids,
        port: args.port,
        deployment_ms: args.deployment_ms,
        events_url: args.events_url,
        s3_url: args.s3_url,
        student_quality: args.student_quality,
    };
    if !(0.0..=1.0).contains(&config.student_quality) {
        anyhow::bail!(
            "--student-quality must be from 0 to 1, got {}",
            config.student_quality
        );
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    let addr = listener.local_addr()?;
    // Scripts read this one line to learn the port.
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    tracing::info!(%addr, "bedrock-sim ready");
    bedrock_sim::serve(listener, config, shutdown_signal()).await?;
    tracing::info!("bedrock-sim stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
