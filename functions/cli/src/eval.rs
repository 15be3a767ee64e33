//! `distillery eval <run-id>`: evaluate a run's student against its teacher on the run's held-out
//! records again (say, with another judge, or on a new deployment after the gate failed), with the
//! same use case the pipeline's `model-evaluator` runs (`distillery_core::app::evaluate_model`),
//! batch by batch with a progress bar. The new result replaces the run's recorded evaluation and
//! `runs/<run-id>/evaluation.jsonl`; it never changes the run's status (nothing is bought or
//! deleted here).

use std::process::ExitCode;

use clap::Args;
use distillery_aws::bedrock_runtime::BedrockRuntime;
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::evaluate_model::{EvaluateConfig, EvaluateModelInput, ModelEvaluator};
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::errors::ErrorType;
use distillery_core::domain::messages::gate::{comparison_line, verdict_line};
use distillery_core::domain::run::{RunId, RunStatus};
use distillery_core::ports::{RunLedger, SystemClock};

use crate::runs::Format;
use crate::usage_error;

const EVAL_HELP: &str = concat!(
    "Exit codes: 0 the student passed the gate; 1 it did not (or no such run); 2 a usage, \
     configuration or AWS error (one line on stderr).\n\n",
    "Environment:\n",
    "  TABLE_NAME                 the run ledger table (or --table)\n",
    "  QUALITY_GATE_JUDGE         the judge when --judge is not given (default: the run's teacher)\n",
    "  QUALITY_GATE_MIN_SCORE     the threshold for a run validated without a gate (default 0.7)\n",
    "  AWS_ENDPOINT_URL_BEDROCK_RUNTIME  the Bedrock runtime endpoint (the local stack's simulator)\n",
    crate::aws::aws_env_help!()
);

#[derive(Debug, Args)]
#[command(after_help = EVAL_HELP)]
pub struct EvalArgs {
    /// The run id, as `distillery runs list` or a notification gives it.
    run_id: String,
    /// The run ledger: the stack's DynamoDB table (its `TableName` output).
    #[arg(long, env = "TABLE_NAME")]
    table: Option<String>,
    /// The judge's model id (default: QUALITY_GATE_JUDGE, else the run's teacher).
    #[arg(long)]
    judge: Option<String>,
    /// The model id to call as the student (default: the run's deployment or throughput). Needed
    /// for a run whose deployment was deleted (a failed gate, a retired run).
    #[arg(long)]
    student: Option<String>,
    /// `text`: the verdict for people; `json`: the recorded evaluation.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

pub fn run(args: EvalArgs) -> ExitCode {
    let Some(table) = args.table.clone().filter(|t| !t.trim().is_empty()) else {
        return usage_error("the ledger table is not set: pass --table or set TABLE_NAME");
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return usage_error(format!("cannot start the async runtime: {e}")),
    };
    rt.block_on(evaluate(args, table))
}

async fn evaluate(args: EvalArgs, table: String) -> ExitCode {
    let sdk = match crate::aws::sdk_config().await {
        Ok(sdk) => sdk,
        Err(e) => return usage_error(e),
    };
    let limits = match Limits::load() {
        Ok(l) => l,
        Err(e) => return usage_error(e),
    };
    let mut config = match EvaluateConfig::from_env(&limits) {
        Ok(c) => c,
        Err(e) => return usage_error(e.message),
    };
    if let Some(judge) = args.judge.clone().filter(|j| !j.trim().is_empty()) {
        config.judge = Some(judge);
    }
    let ledger = DynamoRunLedger::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let store = S3DatasetStore::new(S3DatasetStore::client_from_conf(&sdk));
    let runtime = BedrockRuntime::from_conf(&sdk);
    let evaluator = ModelEvaluator {
        ledger: &ledger,
        store: &store,
        runtime: &runtime,
        clock: &SystemClock,
        config,
    };
    let run_id = RunId(args.run_id.clone());
    // The pipeline evaluates a provisioning run itself: a second evaluation now would race it
    // over the same results files.
    match ledger.get(&run_id).await {
        Ok(Some(run)) if run.status == RunStatus::Provisioning => {
            return usage_error(format!(
                "run {run_id} is provisioning: the pipeline is evaluating or serving it now; wait \
                 until it ends (`distillery runs show {run_id} --watch`)"
            ))
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            eprintln!("distillery: run {run_id} is not in the ledger");
            return ExitCode::from(1);
        }
        Err(e) => return usage_error(crate::aws::call_error(&sdk, "DynamoDB", &e.to_string())),
    }
    let progress = indicatif::ProgressBar::new_spinner();
    progress.set_message(format!("evaluating run {run_id}: batch 1"));
    let mut input = EvaluateModelInput {
        run_id: run_id.clone(),
        batch: 0,
        student_model: args.student.clone(),
    };
    let mut records = 0;
    loop {
        match evaluator.evaluate(&input).await {
            Ok(out) => {
                records += out.records;
                match out.next_batch {
                    Some(next) => {
                        progress.set_message(format!(
                            "evaluating run {run_id}: {records} records done, batch {}",
                            next + 1
                        ));
                        input.batch = next;
                    }
                    None => break,
                }
            }
            Err(e) => {
                progress.finish_and_clear();
                if e.error_type == ErrorType::NotFound && e.message.contains("not in the ledger") {
                    eprintln!("distillery: {}", e.message);
                    return ExitCode::from(1);
                }
                return usage_error(crate::aws::call_error(&sdk, "Bedrock", &e.message));
            }
        }
    }
    progress.finish_and_clear();
    let run = match ledger.get(&run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => return usage_error(format!("run {run_id} disappeared from the ledger")),
        Err(e) => return usage_error(e.to_string()),
    };
    let Some(evaluation) = run.evaluation else {
        return usage_error(format!("run {run_id}: no evaluation was recorded"));
    };
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&evaluation).unwrap_or_default()
        );
    } else {
        let d = &evaluation.decision;
        println!("run {run_id}: {records} held-out records evaluated");
        println!("  student: {}", evaluation.student_model);
        println!("  teacher: {}", evaluation.teacher_model);
        println!("  judge:   {}", evaluation.judge_model);
        println!("quality gate {}", verdict_line(d));
        println!("student vs teacher: {}", comparison_line(d));
        if !d.passed {
            for w in &d.worst {
                println!("{}", w.describe());
            }
        }
        println!("results: {}", evaluation.results_uri);
    }
    if evaluation.decision.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
