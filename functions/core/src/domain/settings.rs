//! Per-run settings: stack defaults, overridden per dataset (S3 object metadata, CLI flags), resolved
//! and checked before anything is spent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::{Limits, ModelCatalog};
use super::errors::StepError;
// The throughput terms and the policy live with the guardrails that check them; re-exported here
// because they are part of a run's settings. (One direction only: guardrails never imports settings.)
pub use super::guardrails::{Commitment, ServingPolicy};

/// How the distilled model is served once training completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServingMode {
    /// Stop at the custom model; buy nothing.
    None,
    /// Buy Provisioned Throughput (guarded).
    Provisioned,
}

impl ServingMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "" => Some(ServingMode::None),
            "provisioned" | "provisioned-throughput" | "pt" => Some(ServingMode::Provisioned),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSettings {
    pub teacher: String,
    pub student: String,
    pub max_response_length: u32,
    pub serving: ServingMode,
    pub model_units: u32,
    pub commitment: Commitment,
}

/// Optional per-dataset overrides. Each field maps to one S3 user-metadata key
/// (`x-amz-meta-<key>`; see [`SettingsOverrides::METADATA_KEYS`]) and one `distillery submit` flag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_response_length: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_units: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commitment: Option<String>,
}

impl SettingsOverrides {
    /// S3 user-metadata keys (without the `x-amz-meta-` prefix) and the field each sets.
    pub const METADATA_KEYS: [&'static str; 6] = [
        "distillery-teacher",
        "distillery-student",
        "distillery-max-response-length",
        "distillery-serving",
        "distillery-model-units",
        "distillery-commitment",
    ];

    /// Reads overrides from S3 user metadata (keys are case-insensitive, as S3 lowercases them).
    /// Unknown `distillery-*` keys are an error so a typo never silently falls back to a default.
    pub fn from_metadata(metadata: &BTreeMap<String, String>) -> Result<Self, StepError> {
        let mut o = SettingsOverrides::default();
        for (k, v) in metadata {
            let key = k.to_ascii_lowercase();
            let slot = match key.as_str() {
                "distillery-teacher" => &mut o.teacher,
                "distillery-student" => &mut o.student,
                "distillery-max-response-length" => &mut o.max_response_length,
                "distillery-serving" => &mut o.serving,
                "distillery-model-units" => &mut o.model_units,
                "distillery-commitment" => &mut o.commitment,
                other if other.starts_with("distillery-") => {
                    return Err(StepError::config(format!(
                        "unknown S3 metadata key 'x-amz-meta-{other}' (known: {})",
                        Self::METADATA_KEYS.join(", ")
                    )))
                }
                _ => continue,
            };
            *slot = Some(v.clone());
        }
        Ok(o)
    }
}

impl RunSettings {
    /// Applies overrides to defaults and checks the result against the catalog, limits and policy.
    /// Every problem names the field (and the metadata key it came from).
    pub fn resolve(
        defaults: &RunSettings,
        overrides: &SettingsOverrides,
        catalog: &ModelCatalog,
        limits: &Limits,
        policy: &ServingPolicy,
    ) -> Result<RunSettings, StepError> {
        let mut s = defaults.clone();
        if let Some(t) = &overrides.teacher {
            s.teacher = t.trim().to_string();
        }
        if let Some(t) = &overrides.student {
            s.student = t.trim().to_string();
        }
        if let Some(v) = &overrides.max_response_length {
            s.max_response_length = v.trim().parse().map_err(|_| {
                StepError::config(format!(
                    "maxResponseLength (distillery-max-response-length) must be a whole number, got '{v}'"
                ))
            })?;
        }
        if let Some(v) = &overrides.serving {
            s.serving = ServingMode::parse(v).ok_or_else(|| {
                StepError::config(format!(
                    "serving (distillery-serving) must be 'none' or 'provisioned', got '{v}'"
                ))
            })?;
        }
        if let Some(v) = &overrides.model_units {
            s.model_units = v.trim().parse().map_err(|_| {
                StepError::config(format!(
                    "modelUnits (distillery-model-units) must be a whole number, got '{v}'"
                ))
            })?;
        }
        if let Some(v) = &overrides.commitment {
            s.commitment = Commitment::parse(v).ok_or_else(|| {
                StepError::config(format!(
                    "commitment (distillery-commitment) must be None, OneMonth or SixMonths, got '{v}'"
                ))
            })?;
        }
        s.check(catalog, limits, policy)?;
        Ok(s)
    }

    pub fn check(
        &self,
        catalog: &ModelCatalog,
        limits: &Limits,
        policy: &ServingPolicy,
    ) -> Result<(), StepError> {
        catalog.check_pair(&self.teacher, &self.student)?;
        let j = &limits.job;
        if self.max_response_length < j.min_max_response_length_for_inference
            || self.max_response_length > j.max_max_response_length_for_inference
        {
            return Err(StepError::config(format!(
                "maxResponseLength {} is outside {}..={}",
                self.max_response_length,
                j.min_max_response_length_for_inference,
                j.max_max_response_length_for_inference
            )));
        }
        if self.serving == ServingMode::Provisioned {
            super::guardrails::check_throughput(self.model_units, self.commitment, policy)?;
        }
        Ok(())
    }
}
