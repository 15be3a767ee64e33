//! The data files that hold Distillery's facts: supported model pairs, limits and prices.
//!
//! Each fact lives in exactly one JSON file under `functions/core/data/`. The files are compiled in so a
//! Lambda needs nothing on disk, and a deployment can point at an edited copy through an environment
//! variable (`DISTILLERY_MODEL_PAIRS_FILE`, `DISTILLERY_LIMITS_FILE`, `DISTILLERY_PRICES_FILE`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::errors::StepError;

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
    pub on_demand_deployment: bool,
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
        load_json(
            "DISTILLERY_MODEL_PAIRS_FILE",
            MODEL_PAIRS_JSON,
            "model pairs",
        )
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
    pub default_allowed_commitments: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PollingLimits {
    pub initial_wait_seconds: u64,
    pub max_wait_seconds: u64,
    pub max_job_duration_hours: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub as_of: String,
    #[serde(default)]
    pub source: String,
    pub dataset: DatasetLimits,
    pub names: NameLimits,
    pub job: JobLimits,
    pub throughput: ThroughputLimits,
    pub polling: PollingLimits,
}

impl Limits {
    pub fn builtin() -> Self {
        serde_json::from_str(LIMITS_JSON).expect("data/limits.json is checked by tests")
    }

    pub fn load() -> Result<Self, CatalogError> {
        load_json("DISTILLERY_LIMITS_FILE", LIMITS_JSON, "limits")
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
}

impl Prices {
    pub fn builtin() -> Self {
        serde_json::from_str(PRICES_JSON).expect("data/prices.json is checked by tests")
    }

    pub fn load() -> Result<Self, CatalogError> {
        load_json("DISTILLERY_PRICES_FILE", PRICES_JSON, "prices")
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

fn load_json<T: for<'de> Deserialize<'de>>(
    env_var: &str,
    builtin: &str,
    what: &str,
) -> Result<T, CatalogError> {
    let text = match std::env::var(env_var) {
        Ok(path) if !path.is_empty() => {
            std::fs::read_to_string(&path).map_err(|source| CatalogError::Read { path, source })?
        }
        _ => builtin.to_string(),
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
        let prices = Prices::builtin();
        assert!(prices.model_unit_hour("unknown-model").is_some());
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
}
