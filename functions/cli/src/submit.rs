//! `distillery submit s3://bucket/key`: start a pipeline run for a dataset already in S3, with
//! per-run overrides, by starting the state machine (Step Functions `StartExecution`). The checks
//! and the payload live in `distillery_core::app::submit_run`; this module parses flags and prints.
//!
//! The overrides are checked first with the validator's own rules (stack defaults, `MAX_MODEL_UNITS`,
//! `ALLOWED_COMMITMENTS`, `ALLOW_PROVISIONING`, ... read from this environment as the validator reads
//! its own), so a bad flag exits 2 before any execution is started.
//!
//! `ALLOW_OVERRIDES` applies to the object's metadata, not to these flags: whoever runs `submit`
//! starts the execution with their own IAM rights (`states:StartExecution`), which the stack's owner
//! grants operators on purpose, while metadata is set by anyone who may upload. `ALLOW_PROVISIONING`,
//! `MAX_MODEL_UNITS` and `ALLOWED_COMMITMENTS` bind flags too: they are the stack's, not the caller's.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use distillery_aws::dynamodb::DynamoRunLedger;
use distillery_aws::s3::S3DatasetStore;
use distillery_aws::sfn::StepFunctionsStarter;
use distillery_core::app::submit_run::{
    parse_s3_uri, retry as retry_run, submit, RetryRequest, Submission, SubmitRequest,
};
use distillery_core::app::validate_dataset::ValidatorConfig;
use distillery_core::domain::run::RunId;
use distillery_core::domain::settings::SettingsOverrides;
use distillery_core::ports::SystemClock;

use crate::runs::Format;
use crate::usage_error;

const SUBMIT_HELP: &str = concat!(
    "The overrides are checked locally first, with the stack's limits read from the same variables \
     the validator reads (DEFAULT_TEACHER, DEFAULT_STUDENT, SERVING_MODE, MODEL_UNITS, \
     MAX_MODEL_UNITS, COMMITMENT, ALLOWED_COMMITMENTS, ALLOW_PROVISIONING, ALLOW_OVERRIDES, \
     UPLOAD_PREFIX, UPLOAD_SUFFIX); a bad flag exits 2 before any execution is started. \
     ALLOW_OVERRIDES limits the object's x-amz-meta-distillery-* metadata, not these flags: a flag \
     wins over the metadata for its setting.\n\n",
    "Environment:\n",
    "  STATE_MACHINE_ARN          the Distillery state machine (or --state-machine-arn)\n",
    crate::aws::aws_env_help!(),
    "\n\n",
    "Exit codes: 0 the execution was started; 2 a usage, configuration or AWS error (one line on stderr)."
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Serving {
    Auto,
    None,
    OnDemand,
    Provisioned,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CommitmentArg {
    #[value(name = "None")]
    None,
    #[value(name = "OneMonth")]
    OneMonth,
    #[value(name = "SixMonths")]
    SixMonths,
}

#[derive(Debug, Args)]
#[command(after_help = SUBMIT_HELP)]
pub struct SubmitArgs {
    /// The dataset, already uploaded under the upload prefix: s3://bucket/incoming/name.jsonl.
    object: String,
    /// The Distillery state machine (the stack's `StateMachineArn` output).
    #[arg(long, env = "STATE_MACHINE_ARN")]
    state_machine_arn: Option<String>,
    #[command(flatten)]
    settings: OverrideFlags,
    /// `text`: the execution and run for people; `json`: the submission as one JSON object.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// The per-run settings flags of `submit` and `runs retry`; they win over the object's metadata.
#[derive(Debug, Args)]
pub struct OverrideFlags {
    /// Teacher model id (a teacher in data/model-pairs.json).
    #[arg(long)]
    teacher: Option<String>,
    /// Student model id (a student of the teacher).
    #[arg(long)]
    student: Option<String>,
    /// Teacher's maxResponseLengthForInference.
    #[arg(long)]
    max_response_length: Option<u32>,
    /// Serving once trained: `auto` (on-demand where the student supports it, else none),
    /// `on-demand` (a custom model deployment: per token, nothing when idle), `provisioned`
    /// (Provisioned Throughput, guarded by MAX_MODEL_UNITS, deleted after PT_TTL_HOURS) or `none`.
    #[arg(long, value_enum)]
    serving: Option<Serving>,
    /// Model units when serving is provisioned.
    #[arg(long)]
    model_units: Option<u32>,
    /// Provisioned Throughput commitment (must be in ALLOWED_COMMITMENTS).
    #[arg(long, value_enum)]
    commitment: Option<CommitmentArg>,
}

impl OverrideFlags {
    /// The flags as the payload's `overrides` (strings, as in S3 metadata); unset flags are absent.
    pub fn overrides(&self) -> SettingsOverrides {
        SettingsOverrides {
            teacher: self.teacher.clone(),
            student: self.student.clone(),
            max_response_length: self.max_response_length.map(|v| v.to_string()),
            serving: self.serving.map(|s| {
                match s {
                    Serving::Auto => "auto",
                    Serving::None => "none",
                    Serving::OnDemand => "on-demand",
                    Serving::Provisioned => "provisioned",
                }
                .to_string()
            }),
            model_units: self.model_units.map(|v| v.to_string()),
            commitment: self.commitment.map(|c| {
                match c {
                    CommitmentArg::None => "None",
                    CommitmentArg::OneMonth => "OneMonth",
                    CommitmentArg::SixMonths => "SixMonths",
                }
                .to_string()
            }),
        }
    }
}

pub fn run(args: SubmitArgs) -> ExitCode {
    let Some(arn) = args
        .state_machine_arn
        .clone()
        .filter(|a| !a.trim().is_empty())
    else {
        return usage_error(
            "the state machine is not set: pass --state-machine-arn or set STATE_MACHINE_ARN",
        );
    };
    let (bucket, key) = match parse_s3_uri(&args.object) {
        Ok(parts) => parts,
        Err(e) => return usage_error(e.message),
    };
    let config = match ValidatorConfig::from_env() {
        Ok(c) => c,
        Err(e) => return usage_error(format!("configuration: {}", e.message)),
    };
    let request = SubmitRequest {
        bucket,
        key,
        overrides: args.settings.overrides(),
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
        let store = S3DatasetStore::new(S3DatasetStore::client_from_conf(&sdk));
        let starter = StepFunctionsStarter::from_conf(&sdk, arn);
        match submit(&store, &starter, &config, &SystemClock, &request).await {
            Ok(sub) => {
                print!("{}", render(&sub, args.format));
                ExitCode::SUCCESS
            }
            Err(e) => usage_error(crate::aws::call_error(
                &sdk,
                "S3/Step Functions",
                &e.message,
            )),
        }
    })
}

/// `distillery runs retry <run-id>`: a new attempt of a rejected, failed or stopped run, linked to it.
/// Called by `distillery runs` inside its runtime, with its SDK configuration.
pub async fn retry(
    sdk: &aws_config::SdkConfig,
    ledger: &DynamoRunLedger,
    run_id: &str,
    state_machine_arn: Option<&str>,
    flags: &OverrideFlags,
    format: Format,
) -> ExitCode {
    let Some(arn) = state_machine_arn.filter(|a| !a.trim().is_empty()) else {
        return usage_error(
            "the state machine is not set: pass --state-machine-arn or set STATE_MACHINE_ARN",
        );
    };
    let config = match ValidatorConfig::from_env() {
        Ok(c) => c,
        Err(e) => return usage_error(format!("configuration: {}", e.message)),
    };
    let request = RetryRequest {
        run_id: RunId(run_id.to_string()),
        overrides: flags.overrides(),
    };
    let store = S3DatasetStore::new(S3DatasetStore::client_from_conf(sdk));
    let starter = StepFunctionsStarter::from_conf(sdk, arn.to_string());
    match retry_run(ledger, &store, &starter, &config, &SystemClock, &request).await {
        Ok(sub) => {
            print!("{}", render(&sub, format));
            ExitCode::SUCCESS
        }
        Err(e) => usage_error(crate::aws::call_error(
            sdk,
            "DynamoDB/S3/Step Functions",
            &e.message,
        )),
    }
}

fn render(sub: &Submission, format: Format) -> String {
    if format == Format::Json {
        return serde_json::to_string_pretty(sub).unwrap_or_default() + "\n";
    }
    let s = &sub.settings;
    let mut out = String::new();
    let mut field = |name: &str, value: &str| out.push_str(&format!("{name:<20}{value}\n"));
    field("execution ARN", &sub.execution_arn);
    field("execution name", &sub.execution_name);
    field("run", sub.run_id.as_str());
    field("dataset", &sub.dataset);
    field(
        "teacher -> student",
        &format!("{} -> {}", s.teacher, s.student),
    );
    field("maxResponseLength", &s.max_response_length.to_string());
    out.push_str(&format!(
        "follow it with: distillery runs show {}\n",
        sub.run_id
    ));
    out
}
