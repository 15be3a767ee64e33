//! Environment variables: the one place they are read, with one meaning for each kind of value.
//!
//! Every configuration (`ValidatorConfig`, `LauncherConfig`, `PollConfig`, `ProvisionConfig`,
//! `NotifyConfig`, the data files of `domain::catalog`, the ledger table of the Lambdas) reads its
//! variables through an [`Env`]: the process environment in Lambda and the CLI ([`Env::process`]), a
//! map in tests ([`Env::new`]). The variables themselves are listed in `docs/contracts.md`.
//!
//! The rules, the same for every variable:
//! - **Empty means unset.** A variable that is unset, empty or only whitespace is unset: its default
//!   applies, or, when it is required, that is an error. (So a SAM parameter left blank, which sets
//!   the variable to `""`, gives the default.)
//! - Values are used trimmed of surrounding whitespace.
//! - A value that cannot be used is a `ConfigInvalid` error that names the variable and quotes the
//!   value: `environment variable X must be ..., got '...'`.

use std::str::FromStr;

use serde_json::Value;

use crate::domain::errors::StepError;
use crate::domain::guardrails::Commitment;

/// The value of `name` in the process environment (`None` when unset or not Unicode). Prefer
/// [`Env::process`], which applies the rules above.
pub fn process_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The `ConfigInvalid` error for a variable whose value cannot be used.
pub fn invalid(name: &str, expected: &str, got: &str) -> StepError {
    StepError::config(format!(
        "environment variable {name} must be {expected}, got '{got}'"
    ))
}

/// Where an [`Env`] gets raw values: a variable's name to its value, `None` when unset.
pub type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Environment variables read through a lookup, with the rules of this module.
pub struct Env<'a> {
    lookup: Lookup<'a>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env")
    }
}

impl<'a> Env<'a> {
    /// Variables from `lookup` (a map in tests: `Env::new(|k| map.get(k).map(|v| v.to_string()))`).
    pub fn new(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Env {
            lookup: Box::new(lookup),
        }
    }

    /// The process environment.
    pub fn process() -> Env<'static> {
        Env::new(process_var)
    }

    /// The trimmed value of `name`; `None` when it is unset, empty or only whitespace.
    pub fn optional_string(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name`, or `default` when it is unset.
    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.optional_string(name)
            .unwrap_or_else(|| default.to_string())
    }

    /// The value of `name`; unset is an error naming it.
    pub fn required(&self, name: &str) -> Result<String, StepError> {
        self.optional_string(name)
            .ok_or_else(|| StepError::config(format!("environment variable {name} is required")))
    }

    /// `name` parsed by `parse`, or `default` when unset; a value `parse` refuses is an error saying
    /// the variable must be `expected` (e.g. `"'none' or 'provisioned'"`).
    pub fn parsed<T>(
        &self,
        name: &str,
        default: T,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, StepError> {
        match self.optional_string(name) {
            None => Ok(default),
            Some(v) => parse(&v).ok_or_else(|| invalid(name, expected, &v)),
        }
    }

    /// A whole number (zero allowed), or `default` when unset.
    pub fn whole_number<T: FromStr>(&self, name: &str, default: T) -> Result<T, StepError> {
        self.parsed(name, default, "a whole number", |v| v.parse().ok())
    }

    /// A whole number above zero, or `default` when unset.
    pub fn positive_u64(&self, name: &str, default: u64) -> Result<u64, StepError> {
        self.parsed(name, default, "a positive whole number", |v| {
            v.parse::<u64>().ok().filter(|n| *n > 0)
        })
    }

    /// `true`/`1` or `false`/`0`, or `default` when unset.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, StepError> {
        self.parsed(name, default, "true or false", |v| match v {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        })
    }

    /// A JSON document, or `None` when unset.
    pub fn json(&self, name: &str) -> Result<Option<Value>, StepError> {
        self.optional_string(name)
            .map(|v| {
                serde_json::from_str(&v).map_err(|e| invalid(name, &format!("JSON ({e})"), &v))
            })
            .transpose()
    }

    /// A comma list of commitments (`None`, `OneMonth`, `SixMonths`; repeats dropped), or `None`
    /// when unset. An empty item (`None,,OneMonth`, a trailing comma) is a typo, not "no
    /// commitment": it is an error like any other unknown item.
    pub fn commitments(&self, name: &str) -> Result<Option<Vec<Commitment>>, StepError> {
        let Some(list) = self.optional_string(name) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for item in list.split(',').map(str::trim) {
            // `Commitment::parse` reads "" as `None`; in a list that is a typo.
            let c = (!item.is_empty())
                .then(|| Commitment::parse(item))
                .flatten()
                .ok_or_else(|| {
                    StepError::config(format!(
                        "environment variable {name} must be a comma list of None, OneMonth, \
                         SixMonths, got '{list}' ('{item}' is not a commitment)"
                    ))
                })?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::errors::ErrorType;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> Env<'a> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        Env::new(move |k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn unset_empty_and_blank_are_all_unset_and_values_are_trimmed() {
        let e = env(&[("EMPTY", ""), ("BLANK", " \t\n"), ("SET", "  x y  ")]);
        for name in ["MISSING", "EMPTY", "BLANK"] {
            assert_eq!(e.optional_string(name), None, "{name}");
            assert_eq!(e.string_or(name, "d"), "d");
            assert_eq!(e.whole_number::<u32>(name, 7).unwrap(), 7);
            assert_eq!(e.positive_u64(name, 9).unwrap(), 9);
            assert!(e.flag(name, true).unwrap());
            assert_eq!(e.json(name).unwrap(), None);
            assert_eq!(e.commitments(name).unwrap(), None);
            let err = e.required(name).unwrap_err();
            assert_eq!(err.error_type, ErrorType::ConfigInvalid);
            assert_eq!(
                err.message,
                format!("environment variable {name} is required")
            );
        }
        assert_eq!(e.optional_string("SET").as_deref(), Some("x y"));
        assert_eq!(e.required("SET").unwrap(), "x y");
    }

    #[test]
    fn numbers() {
        let e = env(&[("N", " 12 "), ("ZERO", "0"), ("NEG", "-1"), ("WORD", "ten")]);
        assert_eq!(e.whole_number::<u32>("N", 1).unwrap(), 12);
        assert_eq!(e.whole_number::<u32>("ZERO", 1).unwrap(), 0);
        assert_eq!(e.positive_u64("N", 1).unwrap(), 12);
        let err = e.positive_u64("ZERO", 1).unwrap_err();
        assert_eq!(err.error_type, ErrorType::ConfigInvalid);
        assert_eq!(
            err.message,
            "environment variable ZERO must be a positive whole number, got '0'"
        );
        assert_eq!(
            e.whole_number::<u32>("NEG", 1).unwrap_err().message,
            "environment variable NEG must be a whole number, got '-1'"
        );
        assert!(e
            .positive_u64("WORD", 1)
            .unwrap_err()
            .message
            .contains("'ten'"));
    }

    #[test]
    fn flags_json_and_choices() {
        let e = env(&[
            ("T", "true"),
            ("ONE", "1"),
            ("F", "false"),
            ("YES", "yes"),
            ("J", r#" {"a": 1} "#),
            ("BAD_JSON", "{a"),
        ]);
        assert!(e.flag("T", false).unwrap() && e.flag("ONE", false).unwrap());
        assert!(!e.flag("F", true).unwrap());
        assert_eq!(
            e.flag("YES", false).unwrap_err().message,
            "environment variable YES must be true or false, got 'yes'"
        );
        assert_eq!(e.json("J").unwrap(), Some(serde_json::json!({"a": 1})));
        let err = e.json("BAD_JSON").unwrap_err();
        assert!(
            err.message
                .starts_with("environment variable BAD_JSON must be JSON (")
                && err.message.ends_with("got '{a'"),
            "{}",
            err.message
        );
        let pick = |v: &str| (v == "yes").then_some(1);
        assert_eq!(e.parsed("YES", 0, "yes", pick).unwrap(), 1);
        assert_eq!(e.parsed("MISSING", 0, "yes", pick).unwrap(), 0);
        assert_eq!(
            e.parsed("T", 0, "'yes'", pick).unwrap_err().message,
            "environment variable T must be 'yes', got 'true'"
        );
    }

    #[test]
    fn commitment_lists() {
        let e = env(&[
            ("ONE", "None"),
            ("TWO", " None , OneMonth,None "),
            ("UNKNOWN", "None,Forever"),
            ("GAP", "None,,OneMonth"),
            ("TRAILING", "OneMonth,"),
        ]);
        assert_eq!(e.commitments("ONE").unwrap(), Some(vec![Commitment::None]));
        assert_eq!(
            e.commitments("TWO").unwrap(),
            Some(vec![Commitment::None, Commitment::OneMonth])
        );
        let err = e.commitments("UNKNOWN").unwrap_err();
        assert_eq!(err.error_type, ErrorType::ConfigInvalid);
        assert_eq!(
            err.message,
            "environment variable UNKNOWN must be a comma list of None, OneMonth, SixMonths, \
             got 'None,Forever' ('Forever' is not a commitment)"
        );
        for name in ["GAP", "TRAILING"] {
            let err = e.commitments(name).unwrap_err();
            assert!(
                err.message.contains("('' is not a commitment)"),
                "{}",
                err.message
            );
        }
    }

    /// Every variable any configuration reads (the notifier's included), for the tests below.
    const ALL_VARS: &[&str] = &[
        "TABLE_NAME",
        "UPLOAD_PREFIX",
        "UPLOAD_SUFFIX",
        "REPORT_PREFIX",
        "DEFAULT_TEACHER",
        "DEFAULT_STUDENT",
        "DEFAULT_MAX_RESPONSE_LENGTH",
        "SERVING_MODE",
        "MODEL_UNITS",
        "COMMITMENT",
        "MAX_MODEL_UNITS",
        "ALLOWED_COMMITMENTS",
        "ALLOW_PROVISIONING",
        "ALLOW_OVERRIDES",
        "INVOCATION_LOGS_S3_URI",
        "REQUEST_METADATA_FILTERS",
        "USE_PROMPT_RESPONSE",
        "SCHEDULE_BUCKET",
        "BEDROCK_ROLE_ARN",
        "OUTPUT_BUCKET",
        "OUTPUT_PREFIX",
        "POLL_INITIAL_WAIT_SECONDS",
        "POLL_MAX_WAIT_SECONDS",
        "MAX_JOB_DURATION_SECONDS",
        "TOPIC_ARN",
        "SLACK_SECRET_ARN",
        "SLACK_TIMEOUT_MS",
        "SLACK_MAX_ATTEMPTS",
        "SLACK_ALLOW_ANY_URL_FOR_TESTS",
        "AWS_REGION",
        crate::domain::catalog::MODEL_PAIRS_FILE_VAR,
        crate::domain::catalog::LIMITS_FILE_VAR,
        crate::domain::catalog::PRICES_FILE_VAR,
    ];

    #[test]
    fn every_configuration_reads_an_empty_or_blank_variable_as_unset() {
        use crate::app::launch_job::LauncherConfig;
        use crate::app::notify::NotifyConfig;
        use crate::app::poll_status::PollConfig;
        use crate::app::provision_throughput::ProvisionConfig;
        use crate::app::validate_dataset::ValidatorConfig;
        use crate::domain::catalog::Limits;

        let limits = Limits::builtin();
        let role = |k: &str| (k == "BEDROCK_ROLE_ARN").then(|| "arn:role".to_string());
        for blank in ["", "  ", "\t\n"] {
            let lookup = |k: &str| ALL_VARS.contains(&k).then(|| blank.to_string());
            let or_role = |k: &str| role(k).or_else(|| lookup(k));
            assert_eq!(
                ValidatorConfig::from_lookup(lookup).unwrap(),
                ValidatorConfig::from_lookup(|_| None).unwrap(),
                "{blank:?}"
            );
            assert_eq!(
                LauncherConfig::from_lookup(or_role).unwrap(),
                LauncherConfig::from_lookup(role).unwrap()
            );
            assert_eq!(
                LauncherConfig::from_lookup(lookup).unwrap_err().message,
                "environment variable BEDROCK_ROLE_ARN is required"
            );
            assert_eq!(
                PollConfig::from_lookup(&limits, lookup).unwrap(),
                PollConfig::from_lookup(&limits, |_| None).unwrap()
            );
            assert_eq!(
                ProvisionConfig::from_lookup(&limits, lookup).unwrap(),
                ProvisionConfig::from_lookup(&limits, |_| None).unwrap()
            );
            assert_eq!(
                NotifyConfig::from_lookup(lookup).unwrap(),
                NotifyConfig::from_lookup(|_| None).unwrap()
            );
        }
    }

    #[test]
    fn the_validator_and_the_provisioner_read_the_guardrails_alike() {
        use crate::app::provision_throughput::ProvisionConfig;
        use crate::app::validate_dataset::ValidatorConfig;
        use crate::domain::catalog::Limits;

        let limits = Limits::builtin();
        for (units, list, allow) in [
            ("4", "SixMonths, None,SixMonths", "true"),
            ("0", "OneMonth", "false"),
        ] {
            let vars = [
                ("MAX_MODEL_UNITS", units),
                ("ALLOWED_COMMITMENTS", list),
                ("ALLOW_PROVISIONING", allow),
            ];
            let lookup = |k: &str| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            };
            let validator = ValidatorConfig::from_lookup(lookup).unwrap();
            let provisioner = ProvisionConfig::from_lookup(&limits, lookup).unwrap();
            assert_eq!(validator.policy, provisioner.policy, "{list}");
        }
        for list in ["None,,OneMonth", "None,Forever", "OneMonth,"] {
            let lookup = |k: &str| (k == "ALLOWED_COMMITMENTS").then(|| list.to_string());
            let v = ValidatorConfig::from_lookup(lookup).unwrap_err();
            let p = ProvisionConfig::from_lookup(&limits, lookup).unwrap_err();
            assert_eq!(v, p);
            assert_eq!(v.error_type, ErrorType::ConfigInvalid);
            assert!(v.message.contains("ALLOWED_COMMITMENTS"), "{}", v.message);
        }
    }
}
