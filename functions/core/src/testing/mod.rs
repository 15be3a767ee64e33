//! Test fixtures shared by this crate's unit tests and the integration test crates. Not part of the
//! library's API (hidden from its docs). Compiled always, so it may use only this crate's normal
//! dependencies (no tokio: async code here is plain futures).
//! - [`sample_run`]: a run to start from.
//! - [`fakes`]: fakes of the ports every test suite needs (a clock set by hand, a scripted Bedrock).
//! - [`memory`]: in-memory ledger and dataset store, with the same semantics as the AWS adapters.
//! - [`invocation_logs`]: realistic Bedrock invocation logs written into a directory.
//! - [`ledger_contract`]: the checks every `RunLedger` passes, run on the in-memory and the DynamoDB
//!   ledger alike (`run_ledger_contract!`).

pub mod bedrock_account;
pub mod fakes;
pub mod invocation_logs;
pub mod ledger_contract;
pub mod memory;
pub mod messages;

use chrono::{DateTime, Utc};

use crate::domain::run::{DatasetLocation, Run, RunId, RunSource};
use crate::domain::settings::{Commitment, RunSettings, ServingMode};

/// A run for an uploaded S3 object (`s3://bucket/key`, `size` bytes) in `Received` at `created_at`,
/// with the stack's default teacher/student pair, a 1000-token response length and no serving.
/// Its id is derived from (bucket, key, etag) with `RunId::for_object` (stable per object version;
/// the validator's own id also covers the settings: `validate_dataset::run_for_object`); tests that
/// need another state set the fields they care about on the returned run.
pub fn sample_run(
    bucket: &str,
    key: &str,
    etag: &str,
    size: u64,
    created_at: DateTime<Utc>,
) -> Run {
    Run::new(
        RunId::for_object(bucket, key, etag),
        RunSource::S3Upload,
        DatasetLocation::S3Object {
            bucket: bucket.into(),
            key: key.into(),
            etag: etag.into(),
            version_id: None,
            size,
        },
        RunSettings {
            teacher: "amazon.nova-pro-v1:0".into(),
            student: "amazon.nova-lite-v1:0:300k".into(),
            max_response_length: 1000,
            serving: ServingMode::None,
            model_units: 1,
            commitment: Commitment::None,
        },
        created_at,
    )
}

/// A quality-gate result with every figure set (20 held-out records, one worst example); `passed`
/// decides the verdict (a failed one scores 0.5 against the 0.7 threshold).
pub fn sample_evaluation(
    t: DateTime<Utc>,
    passed: bool,
) -> crate::domain::evaluation::EvaluationRecord {
    use crate::domain::evaluation::{EvaluationRecord, GateDecision, GateSummary, WorstExample};
    EvaluationRecord {
        decision: GateDecision {
            summary: GateSummary {
                rubric_version: "distillery-judge-v1".into(),
                records: 20,
                wins: 1,
                ties: if passed { 14 } else { 9 },
                losses: if passed { 5 } else { 10 },
                score: if passed { 0.75 } else { 0.5 },
                mean_rouge_l_vs_teacher: 0.8,
                mean_rouge_l_vs_golden: Some(0.5),
                golden_records: 3,
                student_mean_latency_ms: 300.0,
                teacher_mean_latency_ms: 1200.5,
                student_mean_output_tokens: 40.0,
                teacher_mean_output_tokens: 80.25,
            },
            threshold: 0.7,
            threshold_origin: "the default".into(),
            passed,
            worst: vec![WorstExample {
                index: 4,
                prompt: "p".into(),
                student_answer: "s".into(),
                teacher_answer: "t".into(),
                judge_reason: "r".into(),
                outcome: crate::domain::evaluation::Outcome::Loss,
                rouge_l_vs_teacher: 0.25,
            }],
        },
        student_model: "arn:deployment".into(),
        teacher_model: "amazon.nova-pro-v1:0".into(),
        judge_model: "amazon.nova-pro-v1:0".into(),
        results_uri: "s3://b/runs/fields/evaluation.jsonl".into(),
        evaluated_at: t,
    }
}

/// The stack variables a test stack sets to allow everything an upload or a flag may ask for
/// (`ALLOW_PROVISIONING=true`, `ALLOW_OVERRIDES=all`), as the local stack does; the code's
/// defaults are closed. Test helpers fall back to it: `lookup(k).or_else(|| permissive_stack(k))`.
pub fn permissive_stack(name: &str) -> Option<String> {
    match name {
        "ALLOW_PROVISIONING" => Some("true".into()),
        "ALLOW_OVERRIDES" => Some("all".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::run::RunStatus;
    use chrono::TimeZone;

    #[test]
    fn sample_run_is_a_received_s3_run_with_a_stable_id() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let run = sample_run("b", "incoming/a.jsonl", "e", 7, at);
        assert_eq!(run.run_id, RunId::for_object("b", "incoming/a.jsonl", "e"));
        assert_eq!(run.status, RunStatus::Received);
        assert_eq!(run.dataset.s3_uri(), "s3://b/incoming/a.jsonl");
        assert_eq!((run.created_at, run.history.len()), (at, 1));
        assert_eq!(run.settings.serving, ServingMode::None);
    }
}
