//! Whether a run's quality gate is on, and its threshold: the stack's `QUALITY_GATE` and
//! `QUALITY_GATE_MIN_SCORE`, then the object's metadata, which may only make the gate stricter
//! (switch it on, raise the threshold), never looser, like the budget and the throughput TTL.

use super::gate::{resolve_min_score, MIN_SCORE_METADATA_KEY};
use crate::domain::catalog::Limits;
use crate::domain::errors::{ErrorType, StepError};

/// The stack parameter switching the gate (`on` or `off`).
pub const GATE_VAR: &str = "QUALITY_GATE";
/// The S3 user-metadata key (without `x-amz-meta-`) that may switch the gate on for one dataset.
pub const GATE_METADATA_KEY: &str = "distillery-quality-gate";

/// `on` / `off` (any case, surrounding spaces ignored).
pub fn parse_switch(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// A run's gate when it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct GateSetting {
    /// The share of held-out prompts the student must win or tie (0..=1).
    pub min_score: f64,
    /// Where the threshold came from.
    pub min_score_origin: String,
}

/// The stack's gate settings and an object's metadata for it.
#[derive(Debug, Clone, Copy)]
pub struct GateInputs<'a> {
    /// `QUALITY_GATE`.
    pub stack_on: bool,
    /// `QUALITY_GATE_MIN_SCORE`, when set.
    pub stack_min_score: Option<f64>,
    /// `x-amz-meta-distillery-quality-gate`, when present.
    pub metadata_switch: Option<&'a str>,
    /// `x-amz-meta-distillery-quality-gate-min-score`, when present.
    pub metadata_min_score: Option<&'a str>,
}

/// The run's gate: `None` when off. Metadata may switch the gate on (`on`, or a threshold, which
/// implies it) but not off when the stack has it on (a guardrail, like lowering a budget), and may
/// only raise the threshold ([`resolve_min_score`]).
pub fn resolve_gate(
    inputs: &GateInputs<'_>,
    limits: &Limits,
) -> Result<Option<GateSetting>, StepError> {
    let key = format!("x-amz-meta-{GATE_METADATA_KEY}");
    let switch = match inputs.metadata_switch.map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(parse_switch(raw).ok_or_else(|| {
            StepError::config(format!(
                "the quality gate switch must be 'on' or 'off', got '{raw}'; the value came from S3 metadata {key}"
            ))
        })?),
    };
    if switch == Some(false) && inputs.stack_on {
        return Err(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
                "S3 metadata {key} 'off' is refused: the stack's {GATE_VAR} is on, and metadata may only \
                 switch the quality gate on, not off (a stack operator can set {GATE_VAR}=off)"
            ),
        ));
    }
    let metadata_min = inputs
        .metadata_min_score
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let on = inputs.stack_on || switch == Some(true) || metadata_min.is_some();
    if !on {
        return Ok(None);
    }
    let (min_score, min_score_origin) =
        resolve_min_score(inputs.stack_min_score, metadata_min, limits)?;
    Ok(Some(GateSetting {
        min_score,
        min_score_origin,
    }))
}

/// Why a run with the gate on cannot be served `provisioned`: the gate evaluates the student on an
/// on-demand deployment before any throughput is bought, and Bedrock offers none for `student` in
/// `region`.
pub fn provisioned_without_on_demand(student: &str, region: &str) -> StepError {
    StepError::config(format!(
        "serving 'provisioned' with the quality gate on is not possible here: the gate evaluates the \
         student on an on-demand deployment before any Provisioned Throughput is bought, and Bedrock \
         offers no on-demand deployment of custom {student} models in {region} (model-pairs.json \
         onDemandRegions); use serving 'none' (and `distillery eval` later), a student deployable on \
         demand here, or {GATE_VAR}=off on the stack"
    ))
}

/// The reason recorded for a run with the gate on and serving `none`.
pub const SERVING_NONE_REASON: &str =
    "quality gate skipped: serving is none, so nothing is bought \
     to gate and no records were held out (the whole dataset trains)";

/// The reason recorded for a scheduled run (invocation logs) with the gate on.
pub const INVOCATION_LOGS_REASON: &str = "quality gate skipped: the run trains on Bedrock \
     invocation logs, which Bedrock reads itself, so no records could be held out";

/// The metadata key's full spelling, for the settings' unknown-key message.
pub fn metadata_keys() -> [&'static str; 2] {
    [GATE_METADATA_KEY, MIN_SCORE_METADATA_KEY]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(
        stack_on: bool,
        stack_min: Option<f64>,
        switch: Option<&'a str>,
        min: Option<&'a str>,
    ) -> GateInputs<'a> {
        GateInputs {
            stack_on,
            stack_min_score: stack_min,
            metadata_switch: switch,
            metadata_min_score: min,
        }
    }

    #[test]
    fn the_stack_decides_unless_metadata_makes_it_stricter() {
        let l = Limits::builtin();
        assert_eq!(
            resolve_gate(&inputs(false, None, None, None), &l).unwrap(),
            None
        );
        let on = resolve_gate(&inputs(true, Some(0.8), None, None), &l)
            .unwrap()
            .unwrap();
        assert_eq!(on.min_score, 0.8);
        assert_eq!(on.min_score_origin, "the stack's QUALITY_GATE_MIN_SCORE");
        // Metadata switches it on for one dataset.
        let on = resolve_gate(&inputs(false, None, Some(" ON "), None), &l)
            .unwrap()
            .unwrap();
        assert_eq!(on.min_score, 0.7);
        // `off` where the stack is off changes nothing; `on` where it is on neither.
        assert_eq!(
            resolve_gate(&inputs(false, None, Some("off"), None), &l).unwrap(),
            None
        );
        assert!(resolve_gate(&inputs(true, None, Some("on"), None), &l)
            .unwrap()
            .is_some());
        // A threshold implies the gate on.
        let on = resolve_gate(&inputs(false, None, None, Some("90%")), &l)
            .unwrap()
            .unwrap();
        assert_eq!(on.min_score, 0.9);
        assert!(on.min_score_origin.contains(MIN_SCORE_METADATA_KEY));
        // A blank value is no value.
        assert_eq!(
            resolve_gate(&inputs(false, None, Some(" "), Some("")), &l).unwrap(),
            None
        );
    }

    #[test]
    fn metadata_may_not_loosen_it() {
        let l = Limits::builtin();
        let e = resolve_gate(&inputs(true, None, Some("off"), None), &l).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(
            e.message
                .starts_with("S3 metadata x-amz-meta-distillery-quality-gate 'off' is refused"),
            "{}",
            e.message
        );
        // Lowering the threshold is refused too, even when the metadata also switches it on.
        let e = resolve_gate(&inputs(false, Some(0.8), Some("on"), Some("0.5")), &l).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert!(e
            .message
            .contains("x-amz-meta-distillery-quality-gate-min-score"));
        let e = resolve_gate(&inputs(false, None, Some("yes"), None), &l).unwrap_err();
        assert_eq!(e.error_type, ErrorType::ConfigInvalid);
        assert!(e.message.contains("got 'yes'") && e.message.contains(GATE_METADATA_KEY));
    }
}
