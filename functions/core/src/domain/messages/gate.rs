//! The quality gate in messages: the *gate failed* message (score against the threshold, the
//! student-vs-teacher figures, the worst examples), and the gate's line in every message after
//! validation (its outcome and score once evaluated; otherwise whether it is armed, off, or
//! skipped and why).

use super::{MessageContent, MessageContext};
use crate::domain::evaluation::gate::pct;
use crate::domain::evaluation::{EvaluationRecord, GateDecision};
use crate::domain::run::Run;

/// "passed: 85% of 20 held-out prompts won or tied (15 wins, 2 ties, 3 losses); threshold 70% (origin)"
pub fn verdict_line(d: &GateDecision) -> String {
    let s = &d.summary;
    format!(
        "{}: the student won or tied on {} of {} held-out prompts ({} wins, {} ties, {} losses); \
         the threshold is {} ({}; rubric {})",
        if d.passed { "passed" } else { "failed" },
        pct(s.score),
        s.records,
        s.wins,
        s.ties,
        s.losses,
        pct(d.threshold),
        d.threshold_origin,
        s.rubric_version
    )
}

/// Latency, output tokens and ROUGE-L, student against teacher.
pub fn comparison_line(d: &GateDecision) -> String {
    let s = &d.summary;
    let mut line = format!(
        "mean latency {:.0} ms vs {:.0} ms; mean output tokens {:.1} vs {:.1}; ROUGE-L F1 vs the teacher {:.2}",
        s.student_mean_latency_ms,
        s.teacher_mean_latency_ms,
        s.student_mean_output_tokens,
        s.teacher_mean_output_tokens,
        s.mean_rouge_l_vs_teacher
    );
    if let Some(g) = s.mean_rouge_l_vs_golden {
        line.push_str(&format!(
            ", vs the dataset's answers {g:.2} ({} records)",
            s.golden_records
        ));
    }
    line
}

/// The gate's fields for any message about a run that got past validation.
pub(super) fn push_gate_fields(d: &mut MessageContent, run: &Run) {
    match (&run.evaluation, &run.quality_gate) {
        (Some(e), _) => push_evaluation(d, e),
        (None, Some(plan)) => d.fields.push(("Quality gate".into(), plan.describe())),
        (None, None) => {}
    }
}

fn push_evaluation(d: &mut MessageContent, e: &EvaluationRecord) {
    d.fields
        .push(("Quality gate".into(), verdict_line(&e.decision)));
    d.fields
        .push(("Student vs teacher".into(), comparison_line(&e.decision)));
    d.fields
        .push(("Evaluation results".into(), e.results_uri.clone()));
}

/// The *gate failed* message.
pub(super) fn gate_failed(
    d: &mut MessageContent,
    run: &Run,
    _ctx: &MessageContext<'_>,
    dataset: &str,
    reason: Option<String>,
) {
    d.summary = format!(
        "The distilled model for `{dataset}` did not pass its quality gate: nothing was bought, and \
         the deployment made to evaluate it was deleted. The custom model is kept."
    );
    match &run.evaluation {
        Some(e) => {
            push_evaluation(d, e);
            d.fields.push((
                "Judge".into(),
                format!(
                    "{} compared {} (student) with {} (teacher), both orders",
                    e.judge_model, e.student_model, e.teacher_model
                ),
            ));
            if !e.decision.worst.is_empty() {
                d.list_title = format!("The {} worst examples", e.decision.worst.len());
                d.list = e.decision.worst.iter().map(|w| w.describe()).collect();
            }
        }
        None => d.fields.push((
            "Reason".into(),
            reason.unwrap_or_else(|| "no reason was recorded".into()),
        )),
    }
    if let Some(m) = &run.custom_model_arn {
        d.fields.push(("Custom model ARN".into(), m.clone()));
    }
    d.notes.push(format!(
        "To see every answer: the evaluation results above. To evaluate again (say, with another judge), \
         on a deployment of the custom model you make: `distillery eval {0} --student <deployment-arn> \
         --judge <model-id>`. To try again with more or better data, or another student: upload a new \
         dataset, or `distillery runs retry {0} --student <model-id>`.",
        run.run_id
    ));
}
