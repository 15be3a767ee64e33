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

/// Stack-wide guardrails on serving, from the stack configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServingPolicy {
    pub max_model_units: u32,
    pub allowed_commitments: Vec<Commitment>,
}

/// Refuses model units outside 1..=max and commitments not on the allowed list.
pub fn check_throughput(
    model_units: u32,
    commitment: Commitment,
    policy: &ServingPolicy,
) -> Result<(), StepError> {
    check_model_units(model_units, policy)?;
    check_commitment(commitment, policy)
}

/// Refuses model units outside 1..=max.
pub fn check_model_units(model_units: u32, policy: &ServingPolicy) -> Result<(), StepError> {
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
}
