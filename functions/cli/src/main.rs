//! `distillery`: the operator CLI. Each subcommand lives in its own module with its own `Args` and a
//! `run(args) -> ExitCode`; adding one is a variant here and a line in `main`.
//!
//! Exit codes, for every subcommand: 0 success, 1 a negative verdict (e.g. an invalid dataset),
//! 2 a usage or I/O error (clap also exits 2 on bad arguments), with a one-line cause on stderr.

mod aws;
mod eval;
mod follow;
mod logs;
mod reconcile;
mod runs;
mod serving;
mod submit;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "distillery",
    version,
    about = "Amazon Bedrock Model Distillation pipeline: validate datasets, preview invocation logs, submit and follow runs.",
    after_help = "Exit codes: 0 success; 1 a negative verdict (an invalid dataset, an unknown run); \
                  2 a usage, configuration, I/O or AWS error, with a one-line cause on stderr.\n\
                  `distillery <command> --help` lists each command's flags and environment variables."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a bedrock-conversation-2024 JSONL dataset locally, before a distillation job is launched.
    Validate(validate::ValidateArgs),
    /// List runs in the ledger (DynamoDB, TABLE_NAME), or show one with its history.
    Runs(runs::RunsArgs),
    /// Start a pipeline run (Step Functions, STATE_MACHINE_ARN) for a dataset already in S3.
    Submit(submit::SubmitArgs),
    /// Evaluate a run's student against its teacher on its held-out records again (the quality
    /// gate's evaluation), e.g. with another judge; the run's status never changes.
    Eval(eval::EvalArgs),
    /// Bedrock invocation logs as training data: `logs preview` counts what a job would train on.
    Logs(logs::LogsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    aws::init_logging();
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Runs(args) => runs::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Logs(args) => logs::run(args),
    }
}

/// Exit code for a usage or I/O error, after printing its one-line cause.
pub(crate) fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("distillery: {message}");
    ExitCode::from(2)
}
