//! The data files that hold Distillery's facts: supported model pairs, limits and prices.
//!
//! Each fact lives in exactly one JSON file under `functions/core/data/`. The files are compiled in so a
//! Lambda needs nothing on disk, and a deployment can point at an edited copy through an environment
//! variable (`DISTILLERY_MODEL_PAIRS_FILE`, `DISTILLERY_LIMITS_FILE`, `DISTILLERY_PRICES_FILE`), read
//! through [`crate::config::Env`] like every other variable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::errors::StepError;
use super::guardrails::Commitment;
use crate::config::Env;

/// Names the file that replaces `data/model-pairs.json`.
pub const MODEL_PAIRS_FILE_VAR: &str = "DISTILLERY_MODEL_PAIRS_FILE";
/// Names the file that replaces `data/limits.json`.
pub const LIMITS_FILE_VAR: &str = "DISTILLERY_LIMITS_FILE";
/// Names the file that replaces `data/prices.json`.
pub const PRICES_FILE_VAR: &str = "DISTILLERY_PRICES_FILE";

pub const MODEL_PAIRS_JSON: &str = include_str!("../../data/model-pairs.json");
pub const LIMITS_JSON: &str = include_str!("../../data/limits.json");
pub const PRICES_JSON: &str = include_str!("../../data/prices.json");

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not valid: {source}")]
    Parse {
        what: String,
        source: serde_json::Error,
    },
}

/// A data file that cannot be read or parsed is a configuration problem.
impl From<CatalogError> for StepError {
    fn from(e: CatalogError) -> Self {
        StepError::config(e.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StudentInfo {
    pub family: String,
    pub multi_turn: bool,
    /// The Regions where Bedrock serves a custom model of this student through an on-demand
    /// custom model deployment (empty: Provisioned Throughput only).
    #[serde(default)]
    pub on_demand_regions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ModelPair {
    pub teacher: String,
    pub region: String,
    pub inference_profile_only: bool,
    pub students: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ModelCatalog {
    pub as_of: String,
    #[serde(default)]
    pub source: String,
    pub students: BTreeMap<String, StudentInfo>,
    pub pairs: Vec<ModelPair>,
}

/// Why a teacher/student pair cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    #[error("unknown teacher model '{0}' (supported teachers: {1})")]
    UnknownTeacher(String, String),
    #[error("student '{student}' cannot learn from teacher '{teacher}' (students for this teacher: {allowed})")]
    UnsupportedStudent {
        teacher: String,
        student: String,
        allowed: String,
    },
}

/// An unsupported pair is a configuration problem (of the stack defaults or the dataset's settings).
impl From<PairError> for StepError {
    fn from(e: PairError) -> Self {
        StepError::config(e.to_string())
    }
}

impl ModelCatalog {
    /// The catalog compiled into the binary.
    pub fn builtin() -> Self {
        serde_json::from_str(MODEL_PAIRS_JSON).expect("data/model-pairs.json is checked by tests")
    }

    /// The catalog from `DISTILLERY_MODEL_PAIRS_FILE` when set, else the built-in one.
    pub fn load() -> Result<Self, CatalogError> {
        Self::load_with(&Env::process())
    }

    /// [`Self::load`] with `DISTILLERY_MODEL_PAIRS_FILE` read through `env`.
    pub fn load_with(env: &Env) -> Result<Self, CatalogError> {
        load_json(env, MODEL_PAIRS_FILE_VAR, MODEL_PAIRS_JSON, "model pairs")
    }

    pub fn from_json(text: &str) -> Result<Self, CatalogError> {
        serde_json::from_str(text).map_err(|source| CatalogError::Parse {
            what: "model pairs".into(),
            source,
        })
    }

    pub fn teachers(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|p| p.teacher.as_str())
    }

    pub fn pair_for_teacher(&self, teacher: &str) -> Option<&ModelPair> {
        self.pairs.iter().find(|p| p.teacher == teacher)
    }

    pub fn student(&self, student: &str) -> Option<&StudentInfo> {
        self.students.get(student)
    }

    /// Whether the student accepts multi-turn records. Unknown students are treated as single-turn,
    /// the stricter rule, so a dataset is never passed that the job would reject.
    /// The Regions where custom models of `student` can be deployed on demand.
    pub fn on_demand_regions(&self, student: &str) -> &[String] {
        self.student(student)
            .map(|s| s.on_demand_regions.as_slice())
            .unwrap_or_default()
    }

    /// Whether a custom model of `student` can be deployed on demand in `region`.
    pub fn serves_on_demand(&self, student: &str, region: &str) -> bool {
        self.on_demand_regions(student).iter().any(|r| r == region)
    }

    pub fn allows_multi_turn(&self, student: &str) -> bool {
        self.student(student).map(|s| s.multi_turn).unwrap_or(false)
    }

    /// Checks that `student` may be distilled from `teacher`.
    pub fn check_pair(&self, teacher: &str, student: &str) -> Result<&ModelPair, PairError> {
        let Some(pair) = self.pair_for_teacher(teacher) else {
            let all: Vec<&str> = self.teachers().collect();
            return Err(PairError::UnknownTeacher(teacher.into(), all.join(", ")));
        };
        if pair.students.iter().any(|s| s == student) {
            Ok(pair)
        } else {
            Err(PairError::UnsupportedStudent {
                teacher: teacher.into(),
                student: student.into(),
                allowed: pair.students.join(", "),
            })
        }
    }
}

impl ModelCatalog {
    /// Checks that the pair is offered in `region` (the stack's `AWS_REGION`): Bedrock would refuse
    /// the job there with a 400 at launch, after the run had already passed validation.
    pub fn check_region(&self, teacher: &str, student: &str, region: &str) -> Result<(), String> {
        let Some(pair) = self.pair_for_teacher(teacher) else {
            return Ok(()); // An unknown teacher is check_pair's error.
        };
        if pair.region == region {
            return Ok(());
        }
        let here: Vec<&str> = self
            .pairs
            .iter()
            .filter(|p| p.region == region)
            .map(|p| p.teacher.as_str())
            .collect();
        let alternatives = if here.is_empty() {
            format!("no teacher in model-pairs.json is offered in {region}")
        } else {
            format!("teachers offered in {region}: {}", here.join(", "))
        };
        Err(format!(
            "the pair {teacher} -> {student} is offered in {} only (model-pairs.json), but this stack runs in \
             {region} (AWS_REGION): deploy the stack in {} or choose a pair offered in {region} ({alternatives})",
            pair.region, pair.region
        ))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DatasetLimits {
    pub min_records: u64,
    pub max_records: u64,
    pub max_dataset_bytes: u64,
    /// Lines longer than this are reported as errors without being buffered whole.
    pub max_line_bytes: u64,
    pub long_record_warn_bytes: u64,
    pub max_reported_errors: usize,
    pub max_reported_warnings: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NameLimits {
    pub max_job_name_length: usize,
    pub max_custom_model_name_length: usize,
    pub max_provisioned_model_name_length: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct JobLimits {
    pub default_max_response_length_for_inference: u32,
    pub min_max_response_length_for_inference: u32,
    pub max_max_response_length_for_inference: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ThroughputLimits {
    pub default_max_model_units: u32,
    /// Checked when the file is parsed: each is `None`, `OneMonth` or `SixMonths`.
    pub default_allowed_commitments: Vec<Commitment>,
    /// How many times the state machine checks a throughput before it gives up on provisioning
    /// (`CheckProvisioningBudget`; a test keeps the two equal).
    pub provisioning_budget_checks: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PollingLimits {
    pub initial_wait_seconds: u64,
    pub max_wait_seconds: u64,
    pub max_job_duration_hours: u64,
    /// Consecutive non-retryable errors (AccessDenied, ValidationException, ResourceNotFound) from
    /// GetModelCustomizationJob after which the poller gives up and stops the job. Retryable errors
    /// (throttling, 5xx, timeouts) never make it give up before the job's maximum duration.
    pub give_up_after_permanent_errors: u32,
}

/// The quality gate's held-out slice and report sizes (issue 13). The slice is taken from the
/// dataset before training (`domain::evaluation::holdout`), so its bounds live beside the dataset's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationLimits {
    /// Share of the records held out, in whole percent (an integer, so the slice size is exact).
    pub held_out_percent: u64,
    /// The slice is never smaller than this (fewer prompts say too little about the student).
    pub min_held_out_records: u64,
    /// Nor larger than this (each held-out prompt costs three to five runtime calls).
    pub max_held_out_records: u64,
    /// The gate's default threshold: the share of held-out prompts the student must win or tie.
    pub default_gate_min_score: f64,
    /// How many of the worst examples a failed gate's message shows.
    pub worst_examples: usize,
    /// Each text in an example (prompt, answers, judge's reason) is cut to this many characters.
    pub example_max_chars: usize,
    /// Held-out records one `model-evaluator` invocation evaluates (one batch). Each record is
    /// four Converse calls in two rounds (student and teacher together, then the judge both
    /// orders together). A teacher writing ~1,000 tokens takes ~35 s and a judge ~5 s, so a
    /// record takes ~40 s, or ~3 min with every call backing off through all of its throttling
    /// retries (~30 s each, `distillery_aws::bedrock_runtime::MAX_ATTEMPTS`). With `concurrency`
    /// records in flight a batch takes ceil(20 / 4) = 5 rounds: ~3.5 min typical, ~15 min only
    /// if every call of every record exhausted its retries; the Lambda's timeout is 15 min and
    /// the state machine loops over batches, so no invocation comes near it in practice.
    pub batch_records: usize,
    /// Held-out records evaluated at once within a batch (up to four runtime calls each in
    /// flight): few enough not to throttle a fresh on-demand deployment.
    pub concurrency: usize,
    /// `maxTokens` for a judge call: a verdict line and a short reason.
    pub judge_max_tokens: u32,
}

impl EvaluationLimits {
    /// Whether the figures make sense together; a file that breaks this is a configuration error.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=50).contains(&self.held_out_percent) {
            return Err(format!(
                "limits.json evaluation.heldOutPercent must be 1..=50, got {}",
                self.held_out_percent
            ));
        }
        if self.min_held_out_records == 0 || self.min_held_out_records > self.max_held_out_records {
            return Err(format!(
                "limits.json evaluation.minHeldOutRecords ({}) must be at least 1 and at most maxHeldOutRecords ({})",
                self.min_held_out_records, self.max_held_out_records
            ));
        }
        if !(self.default_gate_min_score > 0.0 && self.default_gate_min_score <= 1.0) {
            return Err(format!(
                "limits.json evaluation.defaultGateMinScore must be in (0, 1], got {}",
                self.default_gate_min_score
            ));
        }
        if self.batch_records == 0 || self.concurrency == 0 || self.judge_max_tokens < 16 {
            return Err(format!(
                "limits.json evaluation.batchRecords ({}) and concurrency ({}) must be at least 1, judgeMaxTokens ({}) at least 16",
                self.batch_records, self.concurrency, self.judge_max_tokens
            ));
        }
        if self.example_max_chars < 20 {
            return Err(format!(
                "limits.json evaluation.exampleMaxChars must be at least 20, got {}",
                self.example_max_chars
            ));
        }
        Ok(())
    }
}

/// Scheduled runs over Bedrock invocation logs (issue 14): the defaults of `LOOKBACK_DAYS` and
/// `MIN_NEW_RECORDS`, and the bounds the stack settings are checked against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InvocationLogRunLimits {
    /// How far back the first curated run of a schedule reads (no earlier successful run).
    pub default_lookback_days: u32,
    /// `LOOKBACK_DAYS` may not exceed this.
    pub max_lookback_days: u32,
    /// Fewer new eligible records than this in the window and the run ends `skipped`.
    pub default_min_new_records: u64,
    /// How long before its scheduled time a curated run's window ends. Bedrock delivers invocation
    /// logs to S3 some minutes after the calls (how long is not documented; our decision), so a
    /// window ending at the scheduled time would miss its last calls, and the next window, which
    /// starts where this one ended, would never read them.
    pub delivery_delay_minutes: u32,
}

impl InvocationLogRunLimits {
    /// Whether the figures make sense together (and with the dataset minimum: a curated run with
    /// fewer records than Bedrock accepts would only be rejected at validation).
    pub fn check(&self, dataset: &DatasetLimits) -> Result<(), String> {
        if self.default_lookback_days == 0 || self.default_lookback_days > self.max_lookback_days {
            return Err(format!(
                "limits.json invocationLogRuns.defaultLookbackDays ({}) must be at least 1 and at most maxLookbackDays ({})",
                self.default_lookback_days, self.max_lookback_days
            ));
        }
        if self.default_min_new_records < dataset.min_records
            || self.default_min_new_records > dataset.max_records
        {
            return Err(format!(
                "limits.json invocationLogRuns.defaultMinNewRecords ({}) must be from dataset.minRecords ({}) to dataset.maxRecords ({})",
                self.default_min_new_records, dataset.min_records, dataset.max_records
            ));
        }
        if self.delivery_delay_minutes > 24 * 60 {
            return Err(format!(
                "limits.json invocationLogRuns.deliveryDelayMinutes ({}) must be at most a day (1440)",
                self.delivery_delay_minutes
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub as_of: String,
    #[serde(default)]
    pub source: String,
    pub dataset: DatasetLimits,
    pub names: NameLimits,
    pub job: JobLimits,
    pub throughput: ThroughputLimits,
    pub evaluation: EvaluationLimits,
    pub invocation_log_runs: InvocationLogRunLimits,
    pub polling: PollingLimits,
}

impl Limits {
    pub fn builtin() -> Self {
        serde_json::from_str(LIMITS_JSON).expect("data/limits.json is checked by tests")
    }

    /// The limits from `DISTILLERY_LIMITS_FILE` when set, else the built-in ones.
    pub fn load() -> Result<Self, CatalogError> {
        Self::load_with(&Env::process())
    }

    /// [`Self::load`] with `DISTILLERY_LIMITS_FILE` read through `env`.
    pub fn load_with(env: &Env) -> Result<Self, CatalogError> {
        load_json(env, LIMITS_FILE_VAR, LIMITS_JSON, "limits")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Prices {
    pub as_of: String,
    pub currency: String,
    pub confirmed: bool,
    #[serde(default)]
    pub note: String,
    pub provisioned_throughput_per_model_unit_hour: BTreeMap<String, f64>,
    pub custom_model_storage_per_month: f64,
    pub step_functions_per_thousand_transitions: f64,
    /// Where the top-level figures (throughput, storage fallback) come from.
    #[serde(default)]
    pub source: String,
    /// Per model id, then per Region: the token and storage figures the cost estimate uses.
    /// Provisioned Throughput stays in `provisioned_throughput_per_model_unit_hour` (one source).
    #[serde(default)]
    pub models: BTreeMap<String, BTreeMap<String, ModelPrices>>,
}

/// One price with its provenance, so a message can say whether it was confirmed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PriceFigure {
    pub usd: f64,
    pub as_of: String,
    #[serde(default)]
    pub source: String,
    pub confirmed: bool,
}

/// A model's figures in one Region. A teacher has the on-demand pair; a student has training,
/// storage and (when it can be deployed on demand) the custom model deployment pair.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelPrices {
    /// Base model on-demand input; a teacher's synthetic-data generation is billed at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_input_per1k_tokens: Option<PriceFigure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_demand_output_per1k_tokens: Option<PriceFigure>,
    /// Model customization: per 1,000 tokens trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_per1k_tokens: Option<PriceFigure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_model_storage_per_month: Option<PriceFigure>,
    /// On-demand inference through a custom model deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_model_on_demand_input_per1k_tokens: Option<PriceFigure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_model_on_demand_output_per1k_tokens: Option<PriceFigure>,
}

impl Prices {
    pub fn builtin() -> Self {
        serde_json::from_str(PRICES_JSON).expect("data/prices.json is checked by tests")
    }

    /// The prices from `DISTILLERY_PRICES_FILE` when set, else the built-in ones.
    pub fn load() -> Result<Self, CatalogError> {
        Self::load_with(&Env::process())
    }

    /// [`Self::load`] with `DISTILLERY_PRICES_FILE` read through `env`.
    pub fn load_with(env: &Env) -> Result<Self, CatalogError> {
        load_json(env, PRICES_FILE_VAR, PRICES_JSON, "prices")
    }

    /// A model's figures in a Region, if the table has them.
    pub fn model(&self, model: &str, region: &str) -> Option<&ModelPrices> {
        self.models.get(model).and_then(|r| r.get(region))
    }

    /// [`Self::model_unit_hour`] as a figure carrying the table's top-level provenance.
    pub fn model_unit_hour_figure(&self, student: &str) -> Option<PriceFigure> {
        self.model_unit_hour(student).map(|usd| self.top_level(usd))
    }

    /// The student's storage per month in `region`, else the table-wide figure.
    pub fn storage_per_month_figure(&self, student: &str, region: &str) -> PriceFigure {
        self.model(student, region)
            .and_then(|m| m.custom_model_storage_per_month.clone())
            .unwrap_or_else(|| self.top_level(self.custom_model_storage_per_month))
    }

    fn top_level(&self, usd: f64) -> PriceFigure {
        PriceFigure {
            usd,
            as_of: self.as_of.clone(),
            source: self.source.clone(),
            confirmed: self.confirmed,
        }
    }

    /// Hourly price of one model unit of Provisioned Throughput for a student (falls back to `default`).
    pub fn model_unit_hour(&self, student: &str) -> Option<f64> {
        self.provisioned_throughput_per_model_unit_hour
            .get(student)
            .or_else(|| {
                self.provisioned_throughput_per_model_unit_hour
                    .get("default")
            })
            .copied()
    }
}

/// The file `env_var` names (unset: the built-in text), parsed.
fn load_json<T: for<'de> Deserialize<'de>>(
    env: &Env,
    env_var: &str,
    builtin: &str,
    what: &str,
) -> Result<T, CatalogError> {
    let text = match env.optional_string(env_var) {
        Some(path) => {
            std::fs::read_to_string(&path).map_err(|source| CatalogError::Read { path, source })?
        }
        None => builtin.to_string(),
    };
    serde_json::from_str(&text).map_err(|source| CatalogError::Parse {
        what: what.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_files_parse_and_are_consistent() {
        let catalog = ModelCatalog::builtin();
        for pair in &catalog.pairs {
            for s in &pair.students {
                assert!(
                    catalog.student(s).is_some(),
                    "student {s} of {} is missing from `students`",
                    pair.teacher
                );
            }
        }
        let limits = Limits::builtin();
        assert!(limits.dataset.min_records <= limits.dataset.max_records);
        limits.evaluation.check().unwrap();
        limits.invocation_log_runs.check(&limits.dataset).unwrap();
        let prices = Prices::builtin();
        assert!(prices.model_unit_hour("unknown-model").is_some());
        // Every teacher has its on-demand pair and every student its training price, in the
        // pair's Region, so the validator can estimate any supported run.
        for pair in &catalog.pairs {
            let t = prices
                .model(&pair.teacher, &pair.region)
                .unwrap_or_else(|| {
                    panic!("no prices for teacher {} in {}", pair.teacher, pair.region)
                });
            assert!(
                t.on_demand_input_per1k_tokens.is_some()
                    && t.on_demand_output_per1k_tokens.is_some()
            );
            for s in &pair.students {
                let m = prices
                    .model(s, &pair.region)
                    .unwrap_or_else(|| panic!("no prices for student {s} in {}", pair.region));
                assert!(m.training_per1k_tokens.is_some(), "{s}");
            }
        }
        // Every Region a student is deployed on demand in has its per-token prices, so the
        // *ready* message can quote them.
        for (s, info) in &catalog.students {
            for region in &info.on_demand_regions {
                let m = prices
                    .model(s, region)
                    .unwrap_or_else(|| panic!("no prices for {s} in {region}"));
                assert!(
                    m.custom_model_on_demand_input_per1k_tokens.is_some()
                        && m.custom_model_on_demand_output_per1k_tokens.is_some(),
                    "{s} in {region}"
                );
            }
        }
    }

    #[test]
    fn on_demand_deployment_is_per_student_and_region() {
        let c = ModelCatalog::builtin();
        assert!(c.serves_on_demand("amazon.nova-lite-v1:0:300k", "us-east-1"));
        assert!(!c.serves_on_demand("amazon.nova-lite-v1:0:300k", "eu-west-1"));
        assert!(!c.serves_on_demand("meta.llama3-1-8b-instruct-v1:0:128k", "us-west-2"));
        assert!(c.serves_on_demand("meta.llama3-3-70b-instruct-v1:0:128k", "us-west-2"));
        assert!(c.on_demand_regions("no-such-student").is_empty());
    }

    #[test]
    fn check_region_names_the_pair_the_stack_region_and_where_it_is_offered() {
        let c = ModelCatalog::builtin();
        assert!(c
            .check_region(
                "amazon.nova-pro-v1:0",
                "amazon.nova-lite-v1:0:300k",
                "us-east-1"
            )
            .is_ok());
        let e = c
            .check_region(
                "meta.llama3-1-70b-instruct-v1:0",
                "meta.llama3-1-8b-instruct-v1:0:128k",
                "us-east-1",
            )
            .unwrap_err();
        assert!(
            e.contains("meta.llama3-1-70b-instruct-v1:0 -> meta.llama3-1-8b-instruct-v1:0:128k"),
            "{e}"
        );
        assert!(e.contains("offered in us-west-2 only"), "{e}");
        assert!(e.contains("runs in us-east-1 (AWS_REGION)"), "{e}");
        assert!(e.contains("amazon.nova-pro-v1:0"), "{e}");
        let e = c
            .check_region(
                "amazon.nova-pro-v1:0",
                "amazon.nova-lite-v1:0:300k",
                "eu-west-1",
            )
            .unwrap_err();
        assert!(
            e.contains("no teacher in model-pairs.json is offered in eu-west-1"),
            "{e}"
        );
    }

    #[test]
    fn check_pair_accepts_listed_and_rejects_others() {
        let c = ModelCatalog::builtin();
        assert!(c
            .check_pair("amazon.nova-pro-v1:0", "amazon.nova-lite-v1:0:300k")
            .is_ok());
        let err = c
            .check_pair(
                "amazon.nova-pro-v1:0",
                "meta.llama3-1-8b-instruct-v1:0:128k",
            )
            .unwrap_err();
        assert!(err.to_string().contains("amazon.nova-lite-v1:0:300k"));
        assert!(matches!(
            c.check_pair("nope", "amazon.nova-lite-v1:0:300k"),
            Err(PairError::UnknownTeacher(..))
        ));
        assert!(c.allows_multi_turn("amazon.nova-micro-v1:0:128k"));
        assert!(!c.allows_multi_turn("meta.llama3-1-8b-instruct-v1:0:128k"));
    }

    #[test]
    fn data_files_come_from_the_variables_read_through_env_and_blank_means_built_in() {
        use crate::domain::errors::ErrorType;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limits.json");
        let mut edited = Limits::builtin();
        edited.dataset.min_records = 7;
        std::fs::write(&path, serde_json::to_string(&edited).unwrap()).unwrap();
        let path = path.display().to_string();
        let env = Env::new(|k| (k == LIMITS_FILE_VAR).then(|| format!(" {path} ")));
        assert_eq!(Limits::load_with(&env).unwrap(), edited);

        let blank = Env::new(|_| Some("  ".to_string()));
        assert_eq!(Limits::load_with(&blank).unwrap(), Limits::builtin());
        assert_eq!(
            ModelCatalog::load_with(&blank).unwrap(),
            ModelCatalog::builtin()
        );
        assert_eq!(Prices::load_with(&blank).unwrap(), Prices::builtin());

        let missing = Env::new(|_| Some("/nonexistent/prices.json".to_string()));
        let e = StepError::from(Prices::load_with(&missing).unwrap_err());
        assert_eq!(e.error_type, ErrorType::ConfigInvalid);
        assert!(
            e.message
                .starts_with("cannot read /nonexistent/prices.json"),
            "{}",
            e.message
        );

        drop(env);
        let bad = Env::new(move |_| Some(path.clone()));
        std::fs::write(
            dir.path().join("limits.json"),
            LIMITS_JSON.replace(r#""None""#, r#""Forever""#),
        )
        .unwrap();
        let e = StepError::from(Limits::load_with(&bad).unwrap_err());
        assert!(
            e.message.starts_with("limits is not valid"),
            "{}",
            e.message
        );
    }
}
