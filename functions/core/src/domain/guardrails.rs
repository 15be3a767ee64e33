//! Cost guardrails for Provisioned Throughput: forgotten or oversized throughput costs real money.

use serde::{Deserialize, Serialize};

use super::errors::{ErrorType, StepError};

/// Provisioned Throughput commitment term, spelled as Bedrock spells it; `None` means no commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Commitment {
    None,
    OneMonth,
    SixMonths,
}

impl Commitment {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "" | "None" | "none" => Some(Commitment::None),
            "OneMonth" => Some(Commitment::OneMonth),
            "SixMonths" => Some(Commitment::SixMonths),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Commitment::None => "None",
            Commitment::OneMonth => "OneMonth",
            Commitment::SixMonths => "SixMonths",
        }
    }
}

/// The stack variable that switches Provisioned Throughput on (`true` | `false`, default false).
pub const ALLOW_PROVISIONING_VAR: &str = "ALLOW_PROVISIONING";

/// Stack-wide guardrails on serving, from the stack configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingPolicy {
    /// `ALLOW_PROVISIONING`: whether this stack may buy Provisioned Throughput at all. Off by
    /// default: throughput is billed per model unit hour whether or not anyone uses it, so buying
    /// it is something the stack's owner opts into, not something an upload can ask for.
    #[serde(default)]
    pub allow_provisioning: bool,
    pub max_model_units: u32,
    pub allowed_commitments: Vec<Commitment>,
}

impl ServingPolicy {
    /// Reads `ALLOW_PROVISIONING`, `MAX_MODEL_UNITS` and `ALLOWED_COMMITMENTS` (defaults from
    /// `limits`). The validator and the provisioner both read it here, so they can never disagree
    /// on what the stack allows.
    pub fn from_env(
        env: &crate::config::Env<'_>,
        limits: &super::catalog::Limits,
    ) -> Result<Self, StepError> {
        Ok(ServingPolicy {
            allow_provisioning: env.flag(ALLOW_PROVISIONING_VAR, false)?,
            max_model_units: env
                .whole_number("MAX_MODEL_UNITS", limits.throughput.default_max_model_units)?,
            allowed_commitments: env
                .commitments("ALLOWED_COMMITMENTS")?
                .unwrap_or_else(|| limits.throughput.default_allowed_commitments.clone()),
        })
    }
}

/// Refuses any throughput when the stack does not allow provisioning, then model units outside
/// 1..=max and commitments not on the allowed list.
pub fn check_throughput(
    model_units: u32,
    commitment: Commitment,
    policy: &ServingPolicy,
) -> Result<(), StepError> {
    check_provisioning_allowed(policy)?;
    check_model_units(model_units, policy)?;
    check_commitment(commitment, policy)
}

/// Refuses Provisioned Throughput on a stack that does not allow it (`ALLOW_PROVISIONING` false).
pub fn check_provisioning_allowed(policy: &ServingPolicy) -> Result<(), StepError> {
    if policy.allow_provisioning {
        return Ok(());
    }
    Err(StepError::new(
        ErrorType::GuardrailViolation,
        format!(
            "serving 'provisioned' is not allowed on this stack ({ALLOW_PROVISIONING_VAR} is false): \
             Provisioned Throughput is billed per model unit hour; use serving 'auto', 'on-demand' \
             or 'none', or ask the stack's owner to set the AllowProvisioning parameter to true"
        ),
    ))
}

/// Refuses model units outside 1..=max (`MAX_MODEL_UNITS` 0: no throughput at all).
pub fn check_model_units(model_units: u32, policy: &ServingPolicy) -> Result<(), StepError> {
    if policy.max_model_units == 0 {
        return Err(StepError::new(
            ErrorType::GuardrailViolation,
            "MAX_MODEL_UNITS is 0: this stack buys no Provisioned Throughput (raise MAX_MODEL_UNITS to allow it)",
        ));
    }
    if model_units == 0 {
        return Err(StepError::new(
            ErrorType::GuardrailViolation,
            "modelUnits must be at least 1",
        ));
    }
    if model_units > policy.max_model_units {
        return Err(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
                "modelUnits {model_units} exceeds the stack's maximum of {} (raise MAX_MODEL_UNITS to allow it)",
                policy.max_model_units
            ),
        ));
    }
    Ok(())
}

/// Refuses commitments not on the allowed list.
pub fn check_commitment(commitment: Commitment, policy: &ServingPolicy) -> Result<(), StepError> {
    if !policy.allowed_commitments.contains(&commitment) {
        let allowed: Vec<&str> = policy
            .allowed_commitments
            .iter()
            .map(|c| c.as_str())
            .collect();
        return Err(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
                "commitment {} is not allowed (allowed: {}; set ALLOWED_COMMITMENTS to change)",
                commitment.as_str(),
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ServingPolicy {
        ServingPolicy {
            allow_provisioning: true,
            max_model_units: 2,
            allowed_commitments: vec![Commitment::None],
        }
    }

    #[test]
    fn guardrails() {
        assert!(check_throughput(1, Commitment::None, &policy()).is_ok());
        assert_eq!(
            check_throughput(3, Commitment::None, &policy())
                .unwrap_err()
                .error_type,
            ErrorType::GuardrailViolation
        );
        assert!(check_throughput(0, Commitment::None, &policy()).is_err());
        assert!(check_throughput(1, Commitment::SixMonths, &policy())
            .unwrap_err()
            .message
            .contains("SixMonths"));
    }

    #[test]
    fn a_stack_without_provisioning_or_with_zero_units_refuses_any_throughput() {
        let off = ServingPolicy {
            allow_provisioning: false,
            ..policy()
        };
        let e = check_throughput(1, Commitment::None, &off).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(
            e.message.contains("ALLOW_PROVISIONING is false"),
            "{}",
            e.message
        );
        let zero = ServingPolicy {
            max_model_units: 0,
            ..policy()
        };
        let e = check_throughput(1, Commitment::None, &zero).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(
            e.message.starts_with("MAX_MODEL_UNITS is 0"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_policy_reads_allow_provisioning_false_by_default() {
        let limits = crate::domain::catalog::Limits::builtin();
        let read = |vars: &'static [(&'static str, &'static str)]| {
            ServingPolicy::from_env(
                &crate::config::Env::new(move |k| {
                    vars.iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.to_string())
                }),
                &limits,
            )
        };
        assert!(!read(&[]).unwrap().allow_provisioning);
        assert!(
            !read(&[("ALLOW_PROVISIONING", "")])
                .unwrap()
                .allow_provisioning
        );
        assert!(
            read(&[("ALLOW_PROVISIONING", "true")])
                .unwrap()
                .allow_provisioning
        );
        let e = read(&[("ALLOW_PROVISIONING", "yes")]).unwrap_err();
        assert!(e.message.contains("ALLOW_PROVISIONING"), "{}", e.message);
        assert_eq!(
            read(&[("MAX_MODEL_UNITS", "0")]).unwrap().max_model_units,
            0
        );
    }
}
