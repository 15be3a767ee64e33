//! What the validator decided about a run's quality gate, recorded on the run so every later
//! step (the provisioner, the evaluator, the messages, `distillery runs show`) reads one fact
//! instead of the stack's settings at that later moment.

use serde::{Deserialize, Serialize};

/// The run's quality gate, as settled at validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "state",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum GatePlan {
    /// `QUALITY_GATE=off`: nothing was held out; the student is served without an evaluation.
    Off,
    /// The gate is on but the run has no held-out slice; `reason` says why (too few records,
    /// prompts repeated too much), and every message repeats it.
    Skipped { reason: String },
    /// Records were set aside: the student is evaluated on them before anything is bought.
    Armed {
        /// `s3://bucket/runs/<run-id>/heldout.jsonl`.
        held_out_uri: String,
        /// Records held out (never given to Bedrock).
        records: usize,
        /// SHA-256 of the held-out file's bytes.
        sha256: String,
        /// The share of held-out prompts the student must win or tie (0..=1).
        min_score: f64,
        /// Where the threshold came from (the stack's setting, its default, or the metadata).
        min_score_origin: String,
    },
}

impl GatePlan {
    /// The held-out records' count when the gate is armed.
    pub fn held_out_records(&self) -> Option<usize> {
        match self {
            GatePlan::Armed { records, .. } => Some(*records),
            _ => None,
        }
    }

    /// One line for messages and `distillery runs show` when no evaluation has run yet.
    pub fn describe(&self) -> String {
        match self {
            GatePlan::Off => {
                "off (QUALITY_GATE=off): the student is served without an evaluation".into()
            }
            // Shown after a "Quality gate" label: the reason's own prefix would repeat it.
            GatePlan::Skipped { reason } => reason
                .strip_prefix("quality gate ")
                .unwrap_or(reason)
                .to_string(),
            GatePlan::Armed {
                records,
                min_score,
                min_score_origin,
                ..
            } => format!(
                "armed: {records} held-out records; the student must win or tie on at least {} of them ({min_score_origin})",
                super::gate::pct(*min_score)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_a_state_tag() {
        let armed = GatePlan::Armed {
            held_out_uri: "s3://b/runs/r/heldout.jsonl".into(),
            records: 20,
            sha256: "ab".into(),
            min_score: 0.7,
            min_score_origin: "the default".into(),
        };
        let v = serde_json::to_value(&armed).unwrap();
        assert_eq!(v["state"], "armed");
        assert_eq!(v["heldOutUri"], "s3://b/runs/r/heldout.jsonl");
        assert_eq!(serde_json::from_value::<GatePlan>(v).unwrap(), armed);
        let off = serde_json::to_value(GatePlan::Off).unwrap();
        assert_eq!(off, serde_json::json!({"state": "off"}));
        assert!(armed.describe().contains("at least 70%"));
        assert_eq!(armed.held_out_records(), Some(20));
        assert_eq!(GatePlan::Off.held_out_records(), None);
    }
}
