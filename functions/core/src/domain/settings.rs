//! Per-run settings: stack defaults, overridden per dataset (S3 object metadata, CLI flags), resolved
//! and checked before anything is spent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::catalog::{Limits, ModelCatalog};
use super::errors::StepError;
// The throughput terms and the policy live with the guardrails that check them; re-exported here
// because they are part of a run's settings. (One direction only: guardrails never imports settings.)
pub use super::guardrails::{Commitment, ServingPolicy};

mod allowed;
pub use allowed::{AllowedOverrides, ALLOW_OVERRIDES_VAR};

/// How the distilled model is served once training completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServingMode {
    /// Stop at the custom model; buy nothing.
    None,
    /// On demand where the student supports it in the stack's Region, else none. Settled into one
    /// of those two when the run's settings are resolved ([`RunSettings::settle_serving`]), so a
    /// recorded run never says `auto`.
    Auto,
    /// A custom model deployment: billed per token, nothing when idle (some students only).
    #[serde(rename = "on-demand")]
    OnDemand,
    /// Buy Provisioned Throughput (guarded).
    Provisioned,
}

impl ServingMode {
    /// The values users write, for error messages.
    pub const ACCEPTED: &'static str = "'auto', 'none', 'on-demand' or 'provisioned'";

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" | "off" | "" => Some(ServingMode::None),
            "auto" => Some(ServingMode::Auto),
            "on-demand" | "on_demand" | "ondemand" => Some(ServingMode::OnDemand),
            "provisioned" | "provisioned-throughput" | "pt" => Some(ServingMode::Provisioned),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServingMode::None => "none",
            ServingMode::Auto => "auto",
            ServingMode::OnDemand => "on-demand",
            ServingMode::Provisioned => "provisioned",
        }
    }

    /// Whether the run is served at all once trained (`auto` is settled before anyone asks).
    pub fn serves(self) -> bool {
        matches!(self, ServingMode::OnDemand | ServingMode::Provisioned)
    }
}

impl std::fmt::Display for ServingMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
                // The budget is not a setting of the job: the validator reads it itself
                // (`cost::resolve_budget`), so it is known here but not stored.
                // Same for the Provisioned Throughput TTL (`cost::resolve_pt_ttl`).
                // And the quality gate's switch and threshold (`evaluation::resolve_gate`).
                super::cost::MAX_RUN_COST_METADATA_KEY
                | super::cost::PT_TTL_METADATA_KEY
                | super::evaluation::GATE_METADATA_KEY
                | super::evaluation::MIN_SCORE_METADATA_KEY
                // The launch queue's priority: the validator records it on the run.
                | super::run::PRIORITY_METADATA_KEY => continue,
                other if other.starts_with("distillery-") => {
                    return Err(StepError::config(format!(
                        "unknown S3 metadata key 'x-amz-meta-{other}' (known: {}, {}, {}, {}, {})",
                        Self::METADATA_KEYS.join(", "),
                        super::cost::MAX_RUN_COST_METADATA_KEY,
                        super::cost::PT_TTL_METADATA_KEY,
                        super::run::PRIORITY_METADATA_KEY,
                        super::evaluation::setting::metadata_keys().join(", ")
                    )))
                }
                _ => continue,
            };
            *slot = Some(v.clone());
        }
        Ok(o)
    }
}

/// One per-run setting, with the names it goes by in each place it can be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingField {
    Teacher,
    Student,
    MaxResponseLength,
    Serving,
    ModelUnits,
    Commitment,
}

impl SettingField {
    /// Every setting, in [`SettingsOverrides::METADATA_KEYS`] order.
    pub const ALL: [SettingField; 6] = [
        SettingField::Teacher,
        SettingField::Student,
        SettingField::MaxResponseLength,
        SettingField::Serving,
        SettingField::ModelUnits,
        SettingField::Commitment,
    ];

    /// The setting's name in `ALLOW_OVERRIDES` (the metadata key without `distillery-`).
    pub fn name(self) -> &'static str {
        let key = self.metadata_key();
        key.strip_prefix("distillery-").unwrap_or(key)
    }

    /// The S3 user-metadata key, without `x-amz-meta-`.
    pub fn metadata_key(self) -> &'static str {
        SettingsOverrides::METADATA_KEYS[self as usize]
    }

    /// The `distillery submit` / `distillery runs retry` flag.
    pub fn flag(self) -> &'static str {
        match self {
            SettingField::Teacher => "--teacher",
            SettingField::Student => "--student",
            SettingField::MaxResponseLength => "--max-response-length",
            SettingField::Serving => "--serving",
            SettingField::ModelUnits => "--model-units",
            SettingField::Commitment => "--commitment",
        }
    }

    /// The stack variable that holds the default.
    pub fn env_var(self) -> &'static str {
        match self {
            SettingField::Teacher => "DEFAULT_TEACHER",
            SettingField::Student => "DEFAULT_STUDENT",
            SettingField::MaxResponseLength => "DEFAULT_MAX_RESPONSE_LENGTH",
            SettingField::Serving => "SERVING_MODE",
            SettingField::ModelUnits => "MODEL_UNITS",
            SettingField::Commitment => "COMMITMENT",
        }
    }

    fn value(self, o: &SettingsOverrides) -> Option<&String> {
        match self {
            SettingField::Teacher => o.teacher.as_ref(),
            SettingField::Student => o.student.as_ref(),
            SettingField::MaxResponseLength => o.max_response_length.as_ref(),
            SettingField::Serving => o.serving.as_ref(),
            SettingField::ModelUnits => o.model_units.as_ref(),
            SettingField::Commitment => o.commitment.as_ref(),
        }
    }
}

/// Where each override came from, so an error can name the exact place to fix it.
#[derive(Debug, Clone, Copy)]
pub struct OverrideSources<'a> {
    /// From the object's `x-amz-meta-distillery-*` metadata.
    pub metadata: &'a SettingsOverrides,
    /// From `distillery submit` / `runs retry` flags (they win over metadata).
    pub cli: &'a SettingsOverrides,
}

impl OverrideSources<'_> {
    /// "S3 metadata x-amz-meta-distillery-model-units", "the --model-units flag" or "the stack
    /// default MODEL_UNITS".
    pub fn describe(&self, field: SettingField) -> String {
        if field.value(self.cli).is_some() {
            format!("the {} flag", field.flag())
        } else if field.value(self.metadata).is_some() {
            format!("S3 metadata x-amz-meta-{}", field.metadata_key())
        } else {
            format!("the stack default {}", field.env_var())
        }
    }

    /// Metadata overridden by flags: what resolves.
    pub fn merged(&self) -> SettingsOverrides {
        let pick = |f: SettingField| {
            f.value(self.cli)
                .or_else(|| f.value(self.metadata))
                .cloned()
        };
        SettingsOverrides {
            teacher: pick(SettingField::Teacher),
            student: pick(SettingField::Student),
            max_response_length: pick(SettingField::MaxResponseLength),
            serving: pick(SettingField::Serving),
            model_units: pick(SettingField::ModelUnits),
            commitment: pick(SettingField::Commitment),
        }
    }
}

/// A canonical text of what decides a run's settings, for its identity
/// ([`super::run::RunIdentity`]): the resolved settings when they resolve (so two spellings of the
/// same settings are one run), else the raw `distillery-*` metadata and flags (so a rejected set of
/// settings has a stable identity too, and fixing it makes a new run).
pub fn settings_fingerprint(
    resolved: Result<&RunSettings, ()>,
    raw_metadata: &BTreeMap<String, String>,
    cli: &SettingsOverrides,
) -> String {
    match resolved {
        // Field order is the struct's, so the JSON is canonical.
        Ok(s) => format!("resolved:{}", serde_json::to_string(s).unwrap_or_default()),
        Err(()) => {
            let metadata: BTreeMap<String, String> = raw_metadata
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
                .filter(|(k, _)| k.starts_with("distillery-"))
                .collect();
            format!(
                "unresolved:{}|{}",
                serde_json::to_string(&metadata).unwrap_or_default(),
                serde_json::to_string(cli).unwrap_or_default()
            )
        }
    }
}

impl RunSettings {
    /// Applies overrides to defaults and checks the result against the catalog, limits and policy.
    /// Every problem names the field and the metadata key (or the stack default) it came from.
    pub fn resolve(
        defaults: &RunSettings,
        overrides: &SettingsOverrides,
        catalog: &ModelCatalog,
        limits: &Limits,
        policy: &ServingPolicy,
    ) -> Result<RunSettings, StepError> {
        let none = SettingsOverrides::default();
        Self::resolve_from(
            defaults,
            &OverrideSources {
                metadata: overrides,
                cli: &none,
            },
            catalog,
            limits,
            policy,
        )
    }

    /// [`Self::resolve`] with the metadata and the flags apart, so an error says which one to fix:
    /// `modelUnits 5 exceeds the stack's maximum of 1 (...); the value came from S3 metadata
    /// x-amz-meta-distillery-model-units`.
    pub fn resolve_from(
        defaults: &RunSettings,
        sources: &OverrideSources<'_>,
        catalog: &ModelCatalog,
        limits: &Limits,
        policy: &ServingPolicy,
    ) -> Result<RunSettings, StepError> {
        Self::resolve_fields(defaults, &sources.merged(), catalog, limits, policy).map_err(
            |(field, e)| {
                let origin = sources.describe(field);
                StepError::new(
                    e.error_type,
                    format!("{}; the value came from {origin}", e.message),
                )
            },
        )
    }

    fn resolve_fields(
        defaults: &RunSettings,
        overrides: &SettingsOverrides,
        catalog: &ModelCatalog,
        limits: &Limits,
        policy: &ServingPolicy,
    ) -> Result<RunSettings, (SettingField, StepError)> {
        use SettingField as F;
        let mut s = defaults.clone();
        if let Some(t) = &overrides.teacher {
            s.teacher = t.trim().to_string();
        }
        if let Some(t) = &overrides.student {
            s.student = t.trim().to_string();
        }
        if let Some(v) = &overrides.max_response_length {
            s.max_response_length = v.trim().parse().map_err(|_| {
                (
                    F::MaxResponseLength,
                    StepError::config(format!(
                        "maxResponseLength must be a whole number, got '{v}'"
                    )),
                )
            })?;
        }
        if let Some(v) = &overrides.serving {
            s.serving = ServingMode::parse(v).ok_or_else(|| {
                (
                    F::Serving,
                    StepError::config(format!(
                        "serving must be {}, got '{v}'",
                        ServingMode::ACCEPTED
                    )),
                )
            })?;
        }
        if let Some(v) = &overrides.model_units {
            s.model_units = v.trim().parse().map_err(|_| {
                (
                    F::ModelUnits,
                    StepError::config(format!("modelUnits must be a whole number, got '{v}'")),
                )
            })?;
        }
        if let Some(v) = &overrides.commitment {
            s.commitment = Commitment::parse(v).ok_or_else(|| {
                (
                    F::Commitment,
                    StepError::config(format!(
                        "commitment must be None, OneMonth or SixMonths, got '{v}'"
                    )),
                )
            })?;
        }
        s.check_fields(catalog, limits, policy)?;
        Ok(s)
    }

    /// Settles `auto` into `on-demand` (the student can be deployed on demand in `region`) or
    /// `none`, and refuses `on-demand` for a student that cannot be, with the reason: Bedrock would
    /// only refuse the deployment after the job had been paid for. `sources` names where the
    /// serving value came from.
    pub fn settle_serving(
        &mut self,
        catalog: &ModelCatalog,
        region: &str,
        sources: &OverrideSources<'_>,
    ) -> Result<(), StepError> {
        let on_demand_here = catalog.serves_on_demand(&self.student, region);
        match self.serving {
            ServingMode::Auto => {
                self.serving = if on_demand_here {
                    ServingMode::OnDemand
                } else {
                    ServingMode::None
                };
                Ok(())
            }
            ServingMode::OnDemand if !on_demand_here => {
                let regions = catalog.on_demand_regions(&self.student);
                let why = if regions.is_empty() {
                    format!(
                        "Bedrock offers no on-demand deployment for custom {} models (model-pairs.json)",
                        self.student
                    )
                } else {
                    format!(
                        "Bedrock offers on-demand deployment of custom {} models in {} only (model-pairs.json), and this stack runs in {region}",
                        self.student,
                        regions.join(", ")
                    )
                };
                Err(StepError::config(format!(
                    "serving 'on-demand' is not possible: {why}; use serving 'provisioned' (billed per model unit hour) or 'none'; the value came from {}",
                    sources.describe(SettingField::Serving)
                )))
            }
            _ => Ok(()),
        }
    }

    pub fn check(
        &self,
        catalog: &ModelCatalog,
        limits: &Limits,
        policy: &ServingPolicy,
    ) -> Result<(), StepError> {
        self.check_fields(catalog, limits, policy)
            .map_err(|(_, e)| e)
    }

    /// The checks, each with the field it is about.
    fn check_fields(
        &self,
        catalog: &ModelCatalog,
        limits: &Limits,
        policy: &ServingPolicy,
    ) -> Result<(), (SettingField, StepError)> {
        use SettingField as F;
        catalog
            .check_pair(&self.teacher, &self.student)
            .map_err(|e| {
                let field = match e {
                    super::catalog::PairError::UnknownTeacher(..) => F::Teacher,
                    _ => F::Student,
                };
                (field, StepError::from(e))
            })?;
        let j = &limits.job;
        if self.max_response_length < j.min_max_response_length_for_inference
            || self.max_response_length > j.max_max_response_length_for_inference
        {
            return Err((
                F::MaxResponseLength,
                StepError::config(format!(
                    "maxResponseLength {} is outside {}..={}",
                    self.max_response_length,
                    j.min_max_response_length_for_inference,
                    j.max_max_response_length_for_inference
                )),
            ));
        }
        if self.serving == ServingMode::Provisioned {
            // First: on a stack that buys no throughput, the serving mode is what to fix (the
            // error names where it came from), not the units.
            super::guardrails::check_provisioning_allowed(policy).map_err(|e| (F::Serving, e))?;
            super::guardrails::check_model_units(self.model_units, policy)
                .map_err(|e| (F::ModelUnits, e))?;
            super::guardrails::check_commitment(self.commitment, policy)
                .map_err(|e| (F::Commitment, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> RunSettings {
        RunSettings {
            teacher: "amazon.nova-pro-v1:0".into(),
            student: "amazon.nova-lite-v1:0:300k".into(),
            max_response_length: 1000,
            serving: ServingMode::None,
            model_units: 1,
            commitment: Commitment::None,
        }
    }

    fn policy() -> ServingPolicy {
        ServingPolicy {
            allow_provisioning: true,
            max_model_units: 1,
            allowed_commitments: vec![Commitment::None],
        }
    }

    fn resolve(
        metadata: &SettingsOverrides,
        cli: &SettingsOverrides,
    ) -> Result<RunSettings, StepError> {
        RunSettings::resolve_from(
            &defaults(),
            &OverrideSources { metadata, cli },
            &ModelCatalog::builtin(),
            &Limits::builtin(),
            &policy(),
        )
    }

    #[test]
    fn errors_name_the_metadata_key_the_flag_or_the_stack_default() {
        let metadata = SettingsOverrides {
            serving: Some("provisioned".into()),
            model_units: Some("5".into()),
            ..Default::default()
        };
        let e = resolve(&metadata, &SettingsOverrides::default()).unwrap_err();
        assert_eq!(
            e.error_type,
            crate::domain::errors::ErrorType::GuardrailViolation
        );
        assert!(e.message.contains("modelUnits 5 exceeds"), "{}", e.message);
        assert!(
            e.message
                .ends_with("the value came from S3 metadata x-amz-meta-distillery-model-units"),
            "{}",
            e.message
        );
        let cli = SettingsOverrides {
            model_units: Some("7".into()),
            ..Default::default()
        };
        let e = resolve(&metadata, &cli).unwrap_err();
        assert!(
            e.message.contains("modelUnits 7") && e.message.ends_with("the --model-units flag"),
            "{}",
            e.message
        );
        let student = SettingsOverrides {
            student: Some("meta.llama3-1-8b-instruct-v1:0:128k".into()),
            ..Default::default()
        };
        let e = resolve(&student, &SettingsOverrides::default()).unwrap_err();
        assert!(
            e.message.ends_with("x-amz-meta-distillery-student"),
            "{}",
            e.message
        );
        let units = SettingsOverrides {
            max_response_length: Some("lots".into()),
            ..Default::default()
        };
        let e = resolve(&units, &SettingsOverrides::default()).unwrap_err();
        assert!(
            e.message.contains("got 'lots'")
                && e.message
                    .ends_with("x-amz-meta-distillery-max-response-length"),
            "{}",
            e.message
        );
        // A bad stack default names the variable.
        let mut bad = defaults();
        bad.max_response_length = 0;
        let e = RunSettings::resolve_from(
            &bad,
            &OverrideSources {
                metadata: &SettingsOverrides::default(),
                cli: &SettingsOverrides::default(),
            },
            &ModelCatalog::builtin(),
            &Limits::builtin(),
            &policy(),
        )
        .unwrap_err();
        assert!(
            e.message
                .ends_with("the stack default DEFAULT_MAX_RESPONSE_LENGTH"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_fingerprint_is_canonical_and_covers_every_setting() {
        let none = SettingsOverrides::default();
        let a = defaults();
        let fp = |s: &RunSettings| settings_fingerprint(Ok(s), &BTreeMap::new(), &none);
        assert_eq!(fp(&a), fp(&defaults()));
        let mut b = defaults();
        b.model_units = 2;
        assert_ne!(fp(&a), fp(&b));
        // Unresolved settings: the raw distillery-* metadata, keys case-folded, other keys ignored.
        let raw = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let r1 = settings_fingerprint(
            Err(()),
            &raw(&[("Distillery-Model-Units", "5"), ("owner", "x")]),
            &none,
        );
        let r2 = settings_fingerprint(Err(()), &raw(&[("distillery-model-units", " 5 ")]), &none);
        let r3 = settings_fingerprint(Err(()), &raw(&[("distillery-model-units", "6")]), &none);
        assert_eq!(r1, r2);
        assert_ne!(r1, r3);
        assert_ne!(r1, fp(&a));
    }

    fn settled(student: &str, serving: &str, region: &str) -> Result<ServingMode, String> {
        let metadata = SettingsOverrides {
            serving: Some(serving.into()),
            student: Some(student.into()),
            ..Default::default()
        };
        let none = SettingsOverrides::default();
        let sources = OverrideSources {
            metadata: &metadata,
            cli: &none,
        };
        let mut s = defaults();
        s.student = student.into();
        s.serving = ServingMode::parse(serving).unwrap();
        s.settle_serving(&ModelCatalog::builtin(), region, &sources)
            .map(|()| s.serving)
            .map_err(|e| e.message)
    }

    #[test]
    fn auto_settles_to_on_demand_where_the_student_supports_it_else_none() {
        let nova = "amazon.nova-lite-v1:0:300k";
        let llama = "meta.llama3-1-8b-instruct-v1:0:128k";
        assert_eq!(
            settled(nova, "auto", "us-east-1"),
            Ok(ServingMode::OnDemand)
        );
        assert_eq!(settled(nova, "auto", "eu-west-1"), Ok(ServingMode::None));
        assert_eq!(settled(llama, "auto", "us-west-2"), Ok(ServingMode::None));
        assert_eq!(
            settled("meta.llama3-3-70b-instruct-v1:0:128k", "auto", "us-west-2"),
            Ok(ServingMode::OnDemand)
        );
        // Explicit modes are kept.
        assert_eq!(settled(nova, "none", "us-east-1"), Ok(ServingMode::None));
        assert_eq!(
            settled(llama, "provisioned", "us-west-2"),
            Ok(ServingMode::Provisioned)
        );
        assert_eq!(
            settled(nova, "on-demand", "us-east-1"),
            Ok(ServingMode::OnDemand)
        );
    }

    #[test]
    fn on_demand_for_a_student_without_it_is_refused_with_the_reason_and_the_source() {
        let e = settled(
            "meta.llama3-1-8b-instruct-v1:0:128k",
            "on-demand",
            "us-west-2",
        )
        .unwrap_err();
        assert!(
            e.contains("no on-demand deployment for custom meta.llama3-1-8b-instruct-v1:0:128k"),
            "{e}"
        );
        assert!(e.contains("use serving 'provisioned'"), "{e}");
        assert!(e.contains("x-amz-meta-distillery-serving"), "{e}");
        // One line of prose, as people read it in the rejected message (no source indentation).
        assert!(!e.contains("  "), "{e}");
        let e = settled("amazon.nova-lite-v1:0:300k", "on_demand", "eu-west-1").unwrap_err();
        assert!(e.contains("in us-east-1 only"), "{e}");
        assert!(e.contains("this stack runs in eu-west-1"), "{e}");
        assert!(!e.contains("  "), "{e}");
    }

    #[test]
    fn serving_modes_parse_and_print_as_users_write_them() {
        for (text, mode) in [
            ("auto", ServingMode::Auto),
            ("On-Demand", ServingMode::OnDemand),
            ("none", ServingMode::None),
            ("provisioned", ServingMode::Provisioned),
        ] {
            assert_eq!(ServingMode::parse(text), Some(mode));
            assert_eq!(ServingMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(ServingMode::parse("sometimes"), None);
        assert_eq!(
            serde_json::to_string(&ServingMode::OnDemand).unwrap(),
            "\"on-demand\""
        );
    }
}
