//! The validator's stack configuration (environment variables, read once through `config::Env`).

use serde_json::Value;

use crate::config::{process_var, Env};
use crate::domain::catalog::{Limits, ModelCatalog, Prices};
use crate::domain::cost::{self, DEFAULT_PT_TTL_HOURS, MAX_RUN_COST_VAR, PT_TTL_HOURS_VAR};
use crate::domain::errors::StepError;
use crate::domain::evaluation::{
    gate::parse_min_score, setting::parse_switch, GATE_VAR, MIN_SCORE_VAR,
};
use crate::domain::run::{LogRunMode, RunId};
use crate::domain::settings::{
    AllowedOverrides, Commitment, RunSettings, ServingMode, ServingPolicy,
};
use crate::domain::snapshot::SnapshotLayout;

/// Where scheduled runs train from, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationLogsSource {
    pub s3_uri: String,
    pub request_metadata_filters: Option<Value>,
    pub use_prompt_response: bool,
    /// `LOG_RUN_MODE` (`curated` | `native`, default curated): curated reads the window's logs and
    /// validates what it converts like an upload; native hands the prefix and filter to Bedrock.
    pub mode: LogRunMode,
    /// `LOOKBACK_DAYS` (limits.json `invocationLogRuns.defaultLookbackDays`): how far back a
    /// schedule's window starts when it has no earlier successful run.
    pub lookback_days: u32,
    /// `MIN_NEW_RECORDS` (limits.json `invocationLogRuns.defaultMinNewRecords`): fewer new
    /// eligible records in the window and the run ends `skipped`.
    pub min_new_records: u64,
}

/// The stack variables of scheduled invocation-log runs.
pub const LOG_RUN_MODE_VAR: &str = "LOG_RUN_MODE";
pub const MAX_ACTIVE_RUNS_VAR: &str = "MAX_ACTIVE_RUNS";
pub const LOOKBACK_DAYS_VAR: &str = "LOOKBACK_DAYS";
pub const MIN_NEW_RECORDS_VAR: &str = "MIN_NEW_RECORDS";

/// The validator's configuration (environment variables listed in docs/contracts.md).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorConfig {
    pub upload_prefix: String,
    pub upload_suffix: String,
    pub report_prefix: String,
    /// Where each run's validated bytes go in the dataset's bucket (`SNAPSHOT_PREFIX`, default
    /// `runs/`): `<prefix><run-id>/dataset.jsonl`. Only Distillery writes there.
    pub snapshot_prefix: String,
    pub defaults: RunSettings,
    pub policy: ServingPolicy,
    /// `ALLOW_OVERRIDES`: the settings an upload's S3 metadata may set (default none; see
    /// `domain::settings::AllowedOverrides`).
    pub allowed_overrides: AllowedOverrides,
    pub invocation_logs: Option<InvocationLogsSource>,
    pub schedule_bucket: Option<String>,
    pub catalog: ModelCatalog,
    pub limits: Limits,
    /// The stack's Region (`AWS_REGION`, which Lambda always sets): a pair must be offered there.
    /// Unset (a test, a laptop) skips the Region check.
    pub region: Option<String>,
    /// The price table the cost estimate reads (`DISTILLERY_PRICES_FILE`, else built in).
    pub prices: Prices,
    /// `MAX_ACTIVE_RUNS`: at most this many runs may be active (validated, launching, training or
    /// provisioning) when a new one is validated; the excess is rejected with a message before a
    /// byte is read. Unset: no cap.
    pub max_active_runs: Option<u32>,
    /// `MAX_RUN_COST_USD`: a run whose high cost estimate exceeds it is rejected before launch.
    /// Unset: no budget. Per-dataset metadata may only lower it.
    pub max_run_cost_usd: Option<f64>,
    /// `PT_TTL_HOURS` (default 24, fractions allowed): how long no-commitment Provisioned
    /// Throughput serves before it is deleted, and the hours the estimate counts. Per-dataset
    /// metadata may only shorten it.
    pub pt_ttl_hours: f64,
    /// `QUALITY_GATE` (`on` | `off`, default on): whether a run holds records out of training and
    /// is evaluated against its teacher before it is served. Per-dataset metadata may switch it on,
    /// never off.
    pub quality_gate: bool,
    /// `QUALITY_GATE_MIN_SCORE` (unset: limits.json's default): the threshold recorded on the
    /// run's gate. Per-dataset metadata may only raise it.
    pub quality_gate_min_score: Option<f64>,
}

impl ValidatorConfig {
    /// The Region the run's model is trained and served in: the stack's, or where the pair is
    /// offered when no Region is configured (a laptop running `distillery validate`, a test).
    pub fn serving_region(&self, settings: &RunSettings) -> String {
        self.region
            .clone()
            .or_else(|| {
                self.catalog
                    .pair_for_teacher(&settings.teacher)
                    .map(|p| p.region.clone())
            })
            .unwrap_or_default()
    }

    /// The stack defaults as a run records them when its own settings could not be resolved (a
    /// rejected run, or one whose event had no object): `auto` settled like any run's, so no
    /// recorded run ever says `auto`.
    pub fn recorded_defaults(&self) -> RunSettings {
        let mut s = self.defaults.clone();
        let none = crate::domain::settings::SettingsOverrides::default();
        let sources = crate::domain::settings::OverrideSources {
            metadata: &none,
            cli: &none,
        };
        let region = self.serving_region(&s);
        if s.settle_serving(&self.catalog, &region, &sources).is_err() {
            s.serving = ServingMode::None;
        }
        s
    }

    /// Reads the process environment (see [`crate::config`] for what "unset" means).
    pub fn from_env() -> Result<Self, StepError> {
        Self::from_lookup(process_var)
    }

    /// Reads the configuration through `get` (the environment in Lambda, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, StepError> {
        let env = Env::new(get);
        let catalog = ModelCatalog::load_with(&env)?;
        let limits = Limits::load_with(&env)?;
        let serving = env.parsed(
            "SERVING_MODE",
            ServingMode::Auto,
            ServingMode::ACCEPTED,
            ServingMode::parse,
        )?;
        let commitment = env.parsed(
            "COMMITMENT",
            Commitment::None,
            "None, OneMonth or SixMonths",
            Commitment::parse,
        )?;
        let max_response_length = env.whole_number(
            "DEFAULT_MAX_RESPONSE_LENGTH",
            limits.job.default_max_response_length_for_inference,
        )?;
        let model_units = env.whole_number("MODEL_UNITS", 1)?;
        let policy = ServingPolicy::from_env(&env, &limits)?;
        let allowed_overrides = AllowedOverrides::from_env(&env)?;
        let prices = Prices::load_with(&env)?;
        let max_active_runs = match env.optional_string(MAX_ACTIVE_RUNS_VAR) {
            None => None,
            Some(v) => Some(
                v.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        crate::config::invalid(
                            MAX_ACTIVE_RUNS_VAR,
                            "a whole number of runs, at least 1",
                            &v,
                        )
                    })?,
            ),
        };
        let max_run_cost_usd = match env.optional_string(MAX_RUN_COST_VAR) {
            None => None,
            Some(v) => Some(cost::parse_budget(&v).ok_or_else(|| {
                crate::config::invalid(MAX_RUN_COST_VAR, "a number of US dollars (0 or more)", &v)
            })?),
        };
        let pt_ttl_hours = match env.optional_string(PT_TTL_HOURS_VAR) {
            None => DEFAULT_PT_TTL_HOURS,
            Some(v) => cost::parse_ttl_hours(&v).ok_or_else(|| {
                crate::config::invalid(
                    PT_TTL_HOURS_VAR,
                    "a number of hours above 0 and at most 8784 (a year)",
                    &v,
                )
            })?,
        };
        let quality_gate = env.parsed(GATE_VAR, true, "on or off", parse_switch)?;
        let quality_gate_min_score = match env.optional_string(MIN_SCORE_VAR) {
            None => None,
            Some(v) => Some(parse_min_score(&v).ok_or_else(|| {
                crate::config::invalid(
                    MIN_SCORE_VAR,
                    "a share between 0 and 1 (e.g. 0.7) or a percentage (e.g. 70%)",
                    &v,
                )
            })?),
        };
        // Read (and checked) even without INVOCATION_LOGS_S3_URI, so a typo fails the deploy's
        // first invocation rather than the first scheduled run.
        let log_limits = &limits.invocation_log_runs;
        log_limits
            .check(&limits.dataset)
            .map_err(StepError::config)?;
        let mode = env.parsed(
            LOG_RUN_MODE_VAR,
            LogRunMode::Curated,
            LogRunMode::ACCEPTED,
            LogRunMode::parse,
        )?;
        let max_days = log_limits.max_lookback_days;
        let lookback_days = env.parsed(
            LOOKBACK_DAYS_VAR,
            log_limits.default_lookback_days,
            &format!("a whole number of days from 1 to {max_days}"),
            |v| v.parse::<u32>().ok().filter(|d| (1..=max_days).contains(d)),
        )?;
        let (min_records, max_records) = (limits.dataset.min_records, limits.dataset.max_records);
        // Above Bedrock's maximum a window could never hold enough: every run would be skipped.
        let min_new_records = env.parsed(
            MIN_NEW_RECORDS_VAR,
            log_limits.default_min_new_records,
            &format!(
                "a whole number of records from {min_records} (Bedrock's minimum) to {max_records} (its maximum)"
            ),
            |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (min_records..=max_records).contains(n))
            },
        )?;
        let invocation_logs = match env.optional_string("INVOCATION_LOGS_S3_URI") {
            None => None,
            Some(s3_uri) => Some(InvocationLogsSource {
                s3_uri,
                request_metadata_filters: env.json("REQUEST_METADATA_FILTERS")?,
                use_prompt_response: env.flag("USE_PROMPT_RESPONSE", false)?,
                mode,
                lookback_days,
                min_new_records,
            }),
        };
        let mut snapshot_prefix = env.string_or("SNAPSHOT_PREFIX", "runs/");
        if !snapshot_prefix.ends_with('/') {
            snapshot_prefix.push('/');
        }
        let config = ValidatorConfig {
            upload_prefix: env.string_or("UPLOAD_PREFIX", "incoming/"),
            upload_suffix: env.string_or("UPLOAD_SUFFIX", ".jsonl"),
            report_prefix: env.string_or("REPORT_PREFIX", "reports/"),
            snapshot_prefix,
            defaults: RunSettings {
                teacher: env.string_or("DEFAULT_TEACHER", "amazon.nova-pro-v1:0"),
                student: env.string_or("DEFAULT_STUDENT", "amazon.nova-lite-v1:0:300k"),
                max_response_length,
                serving,
                model_units,
                commitment,
            },
            policy,
            allowed_overrides,
            invocation_logs,
            schedule_bucket: env.optional_string("SCHEDULE_BUCKET"),
            catalog,
            limits,
            region: env.optional_string("AWS_REGION"),
            prices,
            max_active_runs,
            max_run_cost_usd,
            pt_ttl_hours,
            quality_gate,
            quality_gate_min_score,
        };
        // A snapshot key inside the upload area would start a run of its own, which would write a
        // snapshot, which would start a run...
        let probe = config
            .snapshot_layout("b")
            .dataset_key(&RunId("run-0".into()));
        if probe.starts_with(&config.upload_prefix) && probe.ends_with(&config.upload_suffix) {
            return Err(StepError::config(format!(
                "SNAPSHOT_PREFIX '{}' puts snapshots ({probe}) inside the upload area (UPLOAD_PREFIX '{}', UPLOAD_SUFFIX '{}'): each snapshot would start another run; choose a prefix outside it",
                config.snapshot_prefix, config.upload_prefix, config.upload_suffix
            )));
        }
        Ok(config)
    }

    /// Where a run's snapshot goes: the run's folder in `bucket` (the dataset's bucket).
    pub fn snapshot_layout(&self, bucket: &str) -> SnapshotLayout {
        SnapshotLayout {
            bucket: bucket.to_string(),
            prefix: self.snapshot_prefix.clone(),
        }
    }

    /// Where a run's report goes (the key, in the dataset's bucket).
    pub fn report_key(&self, run_id: &RunId) -> String {
        format!("{}{}/report.json", self.report_prefix, run_id)
    }
}
