//! `ALLOW_OVERRIDES`: which per-run settings an upload's S3 metadata may set.
//!
//! Anyone who may put an object under the upload prefix starts a run, so whatever that object's
//! `x-amz-meta-distillery-*` metadata may change is decided by whoever can upload, not by the
//! stack's owner. The settings that raise what a run costs (the teacher, the student, the response
//! length, the serving mode and the throughput terms) are therefore closed to metadata unless the
//! stack lists them. The keys that can only make a run cheaper or stricter stay open to everyone:
//! `distillery-max-run-cost-usd` (only lowers the stack's budget), `distillery-pt-ttl-hours` (only
//! shortens the throughput's life) and `distillery-quality-gate*` (only on, only stricter).
//!
//! `distillery submit` / `runs retry` flags are not subject to it: they start an execution with the
//! caller's own IAM rights (`states:StartExecution` on the state machine), a grant the stack's owner
//! gives operators on purpose, which is more than the `s3:PutObject` an uploader needs. A flag for a
//! setting also supersedes that setting's metadata, so a closed metadata key that a flag overrides
//! is not refused (its value is never used).

use super::{SettingField, SettingsOverrides};
use crate::config::Env;
use crate::domain::errors::{ErrorType, StepError};

/// The stack variable.
pub const ALLOW_OVERRIDES_VAR: &str = "ALLOW_OVERRIDES";

/// The settings upload metadata may set (default: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOverrides {
    fields: Vec<SettingField>,
}

impl AllowedOverrides {
    /// What the variable accepts, for error messages.
    pub const ACCEPTED: &'static str = "'all', 'none', or a comma list of serving, model-units, \
         commitment, teacher, student, max-response-length";

    /// Every setting (`ALLOW_OVERRIDES=all`).
    pub fn all() -> Self {
        AllowedOverrides {
            fields: SettingField::ALL.to_vec(),
        }
    }

    /// No setting (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Every setting is open (`ALLOW_OVERRIDES=all`): also what lets metadata raise a run's
    /// queue priority (`domain::run::QueuePriority`).
    pub fn allows_all(&self) -> bool {
        SettingField::ALL.iter().all(|f| self.fields.contains(f))
    }

    pub fn allows(&self, field: SettingField) -> bool {
        self.fields.contains(&field)
    }

    /// `all`, `none` (or empty), or a comma list of setting names (`serving,model-units`);
    /// case and spaces do not matter. An unknown or empty item is an error naming it.
    pub fn parse(list: &str) -> Result<Self, String> {
        let trimmed = list.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(Self::none());
        }
        if trimmed.eq_ignore_ascii_case("all") {
            return Ok(Self::all());
        }
        let mut fields = Vec::new();
        for item in trimmed.split(',').map(str::trim) {
            let field = SettingField::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(item))
                .ok_or_else(|| format!("'{item}' is not a setting"))?;
            if !fields.contains(&field) {
                fields.push(field);
            }
        }
        Ok(AllowedOverrides { fields })
    }

    /// Reads `ALLOW_OVERRIDES` (unset or empty: none).
    pub fn from_env(env: &Env<'_>) -> Result<Self, StepError> {
        match env.optional_string(ALLOW_OVERRIDES_VAR) {
            None => Ok(Self::none()),
            Some(v) => Self::parse(&v).map_err(|why| {
                StepError::config(format!(
                    "environment variable {ALLOW_OVERRIDES_VAR} must be {}, got '{v}' ({why})",
                    Self::ACCEPTED
                ))
            }),
        }
    }

    /// "none", "all", or the names ("serving, model-units"), as an error message shows the value.
    pub fn describe(&self) -> String {
        if self.fields.is_empty() {
            "none".into()
        } else if self.fields.len() == SettingField::ALL.len() {
            "all".into()
        } else {
            let names: Vec<&str> = self.fields.iter().map(|f| f.name()).collect();
            names.join(", ")
        }
    }

    /// Refuses the object's metadata when it sets a setting the stack does not open to uploads
    /// (unless a `cli` flag sets the same setting, which then wins anyway). The error names every
    /// refused key, and the variable.
    pub fn check_metadata(
        &self,
        metadata: &SettingsOverrides,
        cli: &SettingsOverrides,
    ) -> Result<(), StepError> {
        let refused: Vec<String> = SettingField::ALL
            .into_iter()
            .filter(|f| f.value(metadata).is_some() && f.value(cli).is_none() && !self.allows(*f))
            .map(|f| format!("x-amz-meta-{}", f.metadata_key()))
            .collect();
        if refused.is_empty() {
            return Ok(());
        }
        let (them, it) = if refused.len() == 1 {
            ("key", "it")
        } else {
            ("keys", "them")
        };
        Err(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
                "S3 metadata {} not allowed on this stack ({ALLOW_OVERRIDES_VAR} is '{}'): uploads \
                 may not change what a run costs; upload again without the {them}, or ask the \
                 stack's owner to add {it} to the AllowOverrides parameter",
                if refused.len() == 1 {
                    format!("{} is", refused[0])
                } else {
                    format!("{} are", refused.join(", "))
                },
                self.describe()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_none_and_lists_and_names_a_bad_item() {
        assert_eq!(
            AllowedOverrides::parse("").unwrap(),
            AllowedOverrides::none()
        );
        assert_eq!(
            AllowedOverrides::parse(" None ").unwrap(),
            AllowedOverrides::none()
        );
        assert_eq!(
            AllowedOverrides::parse("ALL").unwrap(),
            AllowedOverrides::all()
        );
        let a = AllowedOverrides::parse(" serving , Model-Units,serving").unwrap();
        assert!(a.allows(SettingField::Serving) && a.allows(SettingField::ModelUnits));
        assert!(!a.allows(SettingField::Teacher));
        assert_eq!(a.describe(), "serving, model-units");
        for name in [
            "serving",
            "model-units",
            "commitment",
            "teacher",
            "student",
            "max-response-length",
        ] {
            assert_eq!(AllowedOverrides::parse(name).unwrap().describe(), name);
        }
        assert_eq!(
            AllowedOverrides::parse("serving,,teacher").unwrap_err(),
            "'' is not a setting"
        );
        assert_eq!(
            AllowedOverrides::parse("serving,budget").unwrap_err(),
            "'budget' is not a setting"
        );
        let vars = [("ALLOW_OVERRIDES", "serving,units")];
        let e = AllowedOverrides::from_env(&Env::new(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }))
        .unwrap_err();
        assert_eq!(e.error_type, ErrorType::ConfigInvalid);
        assert!(
            e.message.contains("ALLOW_OVERRIDES") && e.message.contains("'units' is not a setting"),
            "{}",
            e.message
        );
        assert_eq!(
            AllowedOverrides::from_env(&Env::new(|_| None)).unwrap(),
            AllowedOverrides::none()
        );
    }

    #[test]
    fn metadata_for_a_closed_setting_is_refused_naming_the_keys_and_the_variable() {
        let metadata = SettingsOverrides {
            serving: Some("provisioned".into()),
            model_units: Some("2".into()),
            ..Default::default()
        };
        let none = SettingsOverrides::default();
        let e = AllowedOverrides::none()
            .check_metadata(&metadata, &none)
            .unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(
            e.message.starts_with(
                "S3 metadata x-amz-meta-distillery-serving, x-amz-meta-distillery-model-units are \
                 not allowed on this stack (ALLOW_OVERRIDES is 'none')"
            ),
            "{}",
            e.message
        );
        let serving_only = AllowedOverrides::parse("serving").unwrap();
        let e = serving_only.check_metadata(&metadata, &none).unwrap_err();
        assert!(
            e.message
                .starts_with("S3 metadata x-amz-meta-distillery-model-units is not allowed")
                && e.message.contains("ALLOW_OVERRIDES is 'serving'"),
            "{}",
            e.message
        );
        assert!(AllowedOverrides::all()
            .check_metadata(&metadata, &none)
            .is_ok());
        assert!(AllowedOverrides::none()
            .check_metadata(&none, &none)
            .is_ok());
        // A flag for the same setting wins over the metadata, so the metadata is not refused.
        let flags = SettingsOverrides {
            model_units: Some("1".into()),
            ..Default::default()
        };
        assert!(serving_only.check_metadata(&metadata, &flags).is_ok());
    }
}
