//! The gate: per-record results, their summary, the threshold and the pass/fail decision, and the
//! worst examples a failed gate shows.

use serde::{Deserialize, Serialize};

use super::judge::{combine, JudgeReply, Outcome, Verdict, RUBRIC_VERSION};
use super::rouge::rouge_l_f1;
use crate::domain::catalog::Limits;
use crate::domain::errors::{ErrorType, StepError};

/// The stack parameter holding the threshold (a share of held-out prompts, 0..=1).
pub const MIN_SCORE_VAR: &str = "QUALITY_GATE_MIN_SCORE";
/// The S3 user-metadata key (without `x-amz-meta-`) a dataset may use to raise the threshold.
pub const MIN_SCORE_METADATA_KEY: &str = "distillery-quality-gate-min-score";

/// Scores never differ by float noise at the threshold (14 of 20 is exactly 0.7).
const EPSILON: f64 = 1e-9;

/// One answer and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub text: String,
    /// `metrics.latencyMs` from the Converse response.
    pub latency_ms: u64,
    /// `usage.outputTokens` from the Converse response.
    pub output_tokens: u64,
}

/// One held-out record's evaluation (a line of `evaluation.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordResult {
    /// The record's position in the dataset (0-based).
    pub index: usize,
    pub prompt: String,
    /// The dataset's own answer for the record, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub golden: Option<String>,
    pub student: Answer,
    pub teacher: Answer,
    /// The judge's reply with the student's answer as A.
    pub student_as_a: JudgeReply,
    /// The judge's reply with the student's answer as B.
    pub student_as_b: JudgeReply,
    pub outcome: Outcome,
    pub rouge_l_vs_teacher: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rouge_l_vs_golden: Option<f64>,
}

impl RecordResult {
    /// Scores one record: combines the two judgings and computes ROUGE-L.
    pub fn score(
        index: usize,
        prompt: String,
        golden: Option<String>,
        student: Answer,
        teacher: Answer,
        student_as_a: JudgeReply,
        student_as_b: JudgeReply,
    ) -> Self {
        let outcome = combine(student_as_a.verdict, student_as_b.verdict);
        let rouge_l_vs_teacher = rouge_l_f1(&student.text, &teacher.text);
        let rouge_l_vs_golden = golden.as_deref().map(|g| rouge_l_f1(&student.text, g));
        RecordResult {
            index,
            prompt,
            golden,
            student,
            teacher,
            student_as_a,
            student_as_b,
            outcome,
            rouge_l_vs_teacher,
            rouge_l_vs_golden,
        }
    }

    /// The judge's reason that explains the outcome: from an order the student lost (for a
    /// loss) or won (for a win); for a tie, the first order's.
    pub fn judge_reason(&self) -> &str {
        let student_won = |reply: &JudgeReply, letter: Verdict| reply.verdict == letter;
        let student_lost = |reply: &JudgeReply, letter: Verdict| {
            reply.verdict != letter && reply.verdict != Verdict::Tie
        };
        let orders = [
            (&self.student_as_a, Verdict::A),
            (&self.student_as_b, Verdict::B),
        ];
        let pick = match self.outcome {
            Outcome::Win => orders.iter().find(|(r, l)| student_won(r, *l)),
            Outcome::Loss => orders.iter().find(|(r, l)| student_lost(r, *l)),
            Outcome::Tie => None,
        };
        &pick.map_or(&self.student_as_a, |(r, _)| r).reason
    }
}

/// The figures over all held-out records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateSummary {
    pub rubric_version: String,
    pub records: usize,
    pub wins: usize,
    pub ties: usize,
    pub losses: usize,
    /// (wins + ties) / records: what the threshold is compared with.
    pub score: f64,
    pub mean_rouge_l_vs_teacher: f64,
    /// Over the records with a golden answer; None when none has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_rouge_l_vs_golden: Option<f64>,
    pub golden_records: usize,
    pub student_mean_latency_ms: f64,
    pub teacher_mean_latency_ms: f64,
    pub student_mean_output_tokens: f64,
    pub teacher_mean_output_tokens: f64,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The summary of `results`; None when there are none (nothing to decide on).
pub fn summarize(results: &[RecordResult]) -> Option<GateSummary> {
    let n = results.len();
    if n == 0 {
        return None;
    }
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let (wins, ties, losses) = (
        count(Outcome::Win),
        count(Outcome::Tie),
        count(Outcome::Loss),
    );
    let m = |f: fn(&RecordResult) -> f64| mean(results.iter().map(f)).unwrap_or(0.0);
    Some(GateSummary {
        rubric_version: RUBRIC_VERSION.into(),
        records: n,
        wins,
        ties,
        losses,
        score: (wins + ties) as f64 / n as f64,
        mean_rouge_l_vs_teacher: m(|r| r.rouge_l_vs_teacher),
        mean_rouge_l_vs_golden: mean(results.iter().filter_map(|r| r.rouge_l_vs_golden)),
        golden_records: results.iter().filter(|r| r.golden.is_some()).count(),
        student_mean_latency_ms: m(|r| r.student.latency_ms as f64),
        teacher_mean_latency_ms: m(|r| r.teacher.latency_ms as f64),
        student_mean_output_tokens: m(|r| r.student.output_tokens as f64),
        teacher_mean_output_tokens: m(|r| r.teacher.output_tokens as f64),
    })
}

/// A threshold value: a share `0.75` or a percentage `75%`, within 0..=1.
pub fn parse_min_score(v: &str) -> Option<f64> {
    let v = v.trim();
    let share = match v.strip_suffix('%') {
        Some(pct) => pct.trim().parse::<f64>().ok()? / 100.0,
        None => v.parse::<f64>().ok()?,
    };
    (share.is_finite() && (0.0..=1.0).contains(&share)).then_some(share)
}

/// The threshold for one dataset: the stack's `QUALITY_GATE_MIN_SCORE` (None: the default in
/// `limits.json`), raised by its metadata. Metadata asking for a lower threshold is refused with
/// the reason, like the other guardrail overrides (cf. `cost::resolve_budget`, which may only
/// lower a budget): a dataset may only make the gate stricter. Returns the threshold and where it
/// came from.
pub fn resolve_min_score(
    stack: Option<f64>,
    metadata: Option<&str>,
    limits: &Limits,
) -> Result<(f64, String), StepError> {
    let (floor, floor_origin) = match stack {
        Some(s) => (s, format!("the stack's {MIN_SCORE_VAR}")),
        None => (
            limits.evaluation.default_gate_min_score,
            "the default (limits.json evaluation.defaultGateMinScore)".to_string(),
        ),
    };
    let Some(raw) = metadata.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok((floor, floor_origin));
    };
    let origin = format!("S3 metadata x-amz-meta-{MIN_SCORE_METADATA_KEY}");
    let asked = parse_min_score(raw).ok_or_else(|| {
        StepError::config(format!(
            "the quality gate's threshold must be a share between 0 and 1 (e.g. 0.8) or a percentage \
             (e.g. 80%), got '{raw}'; the value came from {origin}"
        ))
    })?;
    if asked + EPSILON < floor {
        return Err(StepError::new(
            ErrorType::GuardrailViolation,
            format!(
                "a run's quality gate threshold of {} is below {floor_origin} of {}: metadata may only \
                 raise it; the value came from {origin}",
                pct(asked),
                pct(floor)
            ),
        ));
    }
    Ok((asked, origin))
}

/// A share as a percentage for people: 0.7 → "70%", 0.725 → "72.5%".
pub fn pct(share: f64) -> String {
    let p = format!("{:.1}", share * 100.0);
    format!("{}%", p.strip_suffix(".0").unwrap_or(&p))
}

/// One of the worst examples, its texts cut for a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorstExample {
    pub index: usize,
    pub outcome: Outcome,
    pub rouge_l_vs_teacher: f64,
    pub prompt: String,
    pub student_answer: String,
    pub teacher_answer: String,
    pub judge_reason: String,
}

impl WorstExample {
    pub fn describe(&self) -> String {
        format!(
            "record {} ({}, ROUGE-L {:.2}):\n  prompt: {}\n  student: {}\n  teacher: {}\n  judge: {}",
            self.index + 1,
            self.outcome,
            self.rouge_l_vs_teacher,
            self.prompt,
            self.student_answer,
            self.teacher_answer,
            self.judge_reason
        )
    }
}

/// The `n` worst records: losses first, then ties, then wins; within each, the lowest ROUGE-L
/// against the teacher first; then dataset order. Texts are cut to `max_chars` ([`truncate_text`]).
pub fn worst_examples(results: &[RecordResult], n: usize, max_chars: usize) -> Vec<WorstExample> {
    let rank = |o: Outcome| match o {
        Outcome::Loss => 0,
        Outcome::Tie => 1,
        Outcome::Win => 2,
    };
    let mut sorted: Vec<&RecordResult> = results.iter().collect();
    sorted.sort_by(|a, b| {
        rank(a.outcome)
            .cmp(&rank(b.outcome))
            .then(a.rouge_l_vs_teacher.total_cmp(&b.rouge_l_vs_teacher))
            .then(a.index.cmp(&b.index))
    });
    sorted
        .into_iter()
        .take(n)
        .map(|r| WorstExample {
            index: r.index,
            outcome: r.outcome,
            rouge_l_vs_teacher: r.rouge_l_vs_teacher,
            prompt: truncate_text(&r.prompt, max_chars),
            student_answer: truncate_text(&r.student.text, max_chars),
            teacher_answer: truncate_text(&r.teacher.text, max_chars),
            judge_reason: truncate_text(r.judge_reason(), max_chars),
        })
        .collect()
}

/// A text for a one-line message: runs of whitespace (newlines included) become one space, and a
/// text longer than `max_chars` characters is cut to at most that many, ending in `…`. The cut
/// goes back to the last space when one is in the last fifth of the kept part, so words are not
/// split; it counts characters, never bytes, so multi-byte text is never split inside a character.
pub fn truncate_text(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        return flat;
    }
    let keep = max_chars.saturating_sub(1);
    let mut cut: String = flat.chars().take(keep).collect();
    if let Some(space) = cut.rfind(' ') {
        // `space` is a byte index of an ASCII space, so a char boundary.
        if cut[..space].chars().count() * 5 >= keep * 4 {
            cut.truncate(space);
        }
    }
    let mut out = cut.trim_end().to_string();
    out.push('…');
    out
}

/// The gate's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GateDecision {
    pub summary: GateSummary,
    pub threshold: f64,
    pub threshold_origin: String,
    pub passed: bool,
    /// The worst examples (shown when the gate fails; kept either way for `runs show`).
    pub worst: Vec<WorstExample>,
}

/// Decides the gate over `results` against `threshold` (from [`resolve_min_score`]). Passes when
/// the share of wins and ties is at least the threshold. No results is an error: there is nothing
/// to decide on, and passing by default would defeat the gate.
pub fn decide(
    results: &[RecordResult],
    threshold: f64,
    threshold_origin: &str,
    limits: &Limits,
) -> Result<GateDecision, StepError> {
    let summary = summarize(results).ok_or_else(|| {
        StepError::internal(
            "the quality gate has no held-out results to decide on (every record's evaluation is missing)",
        )
    })?;
    let passed = summary.score + EPSILON >= threshold;
    let e = &limits.evaluation;
    Ok(GateDecision {
        worst: worst_examples(results, e.worst_examples, e.example_max_chars),
        summary,
        threshold,
        threshold_origin: threshold_origin.into(),
        passed,
    })
}

impl GateDecision {
    /// One paragraph for messages and `runs show`: verdict, score against threshold, and the
    /// latency and token comparison; a failed gate adds its worst examples.
    pub fn describe(&self) -> String {
        let s = &self.summary;
        let mut out = format!(
            "quality gate {}: the student won or tied on {} of {} held-out prompts ({}; threshold {} from {}): \
             {} wins, {} ties, {} losses (judge rubric {}). ROUGE-L against the teacher {:.2}",
            if self.passed { "passed" } else { "failed" },
            s.wins + s.ties,
            s.records,
            pct(s.score),
            pct(self.threshold),
            self.threshold_origin,
            s.wins,
            s.ties,
            s.losses,
            s.rubric_version,
            s.mean_rouge_l_vs_teacher,
        );
        if let Some(g) = s.mean_rouge_l_vs_golden {
            out.push_str(&format!(
                ", against the golden answers {g:.2} ({} records)",
                s.golden_records
            ));
        }
        out.push_str(&format!(
            ". Mean latency: student {:.0} ms, teacher {:.0} ms. Mean output tokens: student {:.0}, teacher {:.0}.",
            s.student_mean_latency_ms,
            s.teacher_mean_latency_ms,
            s.student_mean_output_tokens,
            s.teacher_mean_output_tokens
        ));
        if !self.passed && !self.worst.is_empty() {
            out.push_str("\nWorst examples:");
            for w in &self.worst {
                out.push('\n');
                out.push_str(&w.describe());
            }
        }
        out
    }
}

/// The quality gate's result as recorded on the run (`evaluation` in the ledger record): the
/// decision with its summary, which models were compared, and where the per-record results are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationRecord {
    pub decision: GateDecision,
    /// The `modelId` the student was called with (its deployment or throughput ARN).
    pub student_model: String,
    pub teacher_model: String,
    pub judge_model: String,
    /// `s3://.../runs/<run-id>/evaluation.jsonl`.
    pub results_uri: String,
    pub evaluated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(v: Verdict, reason: &str) -> JudgeReply {
        JudgeReply {
            verdict: v,
            reason: reason.into(),
        }
    }

    fn answer(text: &str, latency_ms: u64, output_tokens: u64) -> Answer {
        Answer {
            text: text.into(),
            latency_ms,
            output_tokens,
        }
    }

    /// A record whose student answer is `student` (the teacher always says "the cat sat on the
    /// mat"), judged `a` with the student as A and `b` with it as B.
    fn record(
        index: usize,
        student: &str,
        a: Verdict,
        b: Verdict,
        golden: Option<&str>,
    ) -> RecordResult {
        RecordResult::score(
            index,
            format!("prompt {index}"),
            golden.map(String::from),
            answer(student, 400, 10),
            answer("the cat sat on the mat", 1200, 30),
            reply(a, &format!("as A: {a}")),
            reply(b, &format!("as B: {b}")),
        )
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_record_combines_both_orders_and_scores_rouge() {
        use Verdict::*;
        let r = record(0, "the cat sat on the mat", Tie, Tie, Some("a cat sat"));
        assert_eq!(r.outcome, Outcome::Tie);
        assert!(close(r.rouge_l_vs_teacher, 1.0));
        // student "the cat sat on the mat" (6) vs golden "a cat sat" (3): LCS "cat sat" = 2,
        // P = 2/6, R = 2/3, F1 = 2·(1/3)·(2/3) / (1/3 + 2/3) = 4/9.
        assert!(close(r.rouge_l_vs_golden.unwrap(), 4.0 / 9.0));
        let lost = record(1, "dogs", B, Tie, None);
        assert_eq!(lost.outcome, Outcome::Loss);
        assert_eq!(lost.judge_reason(), "as A: B");
        let lost = record(2, "dogs", Tie, A, None);
        assert_eq!(lost.judge_reason(), "as B: A");
        let won = record(3, "x", Tie, B, None);
        assert_eq!(won.outcome, Outcome::Win);
        assert_eq!(won.judge_reason(), "as B: B");
        let tie = record(4, "x", A, A, None);
        assert_eq!(tie.outcome, Outcome::Tie);
        assert_eq!(tie.judge_reason(), "as A: A");
    }

    #[test]
    fn summary_counts_and_means() {
        use Verdict::*;
        let results = vec![
            record(
                0,
                "the cat sat on the mat",
                Tie,
                Tie,
                Some("the cat sat on the mat"),
            ),
            record(1, "the cat", B, A, None), // loss; ROUGE-L: LCS 2, P 1, R 2/6 → 0.5
            record(2, "the cat sat", A, B, Some("zebra")), // win; LCS 3, P 1, R 1/2 → 2/3
            record(3, "nothing alike", B, A, None), // loss; 0
        ];
        let s = summarize(&results).unwrap();
        assert_eq!((s.records, s.wins, s.ties, s.losses), (4, 1, 1, 2));
        assert!(close(s.score, 0.5));
        assert!(close(
            s.mean_rouge_l_vs_teacher,
            (1.0 + 0.5 + 2.0 / 3.0 + 0.0) / 4.0
        ));
        // Golden on two records: 1.0 and 0.0.
        assert_eq!(s.golden_records, 2);
        assert!(close(s.mean_rouge_l_vs_golden.unwrap(), 0.5));
        assert!(close(s.student_mean_latency_ms, 400.0));
        assert!(close(s.teacher_mean_latency_ms, 1200.0));
        assert!(close(s.student_mean_output_tokens, 10.0));
        assert!(close(s.teacher_mean_output_tokens, 30.0));
        assert_eq!(s.rubric_version, RUBRIC_VERSION);
        assert!(summarize(&[]).is_none());
        let none_golden = summarize(&results[1..2]).unwrap();
        assert_eq!(none_golden.mean_rouge_l_vs_golden, None);
    }

    #[test]
    fn the_threshold_is_inclusive() {
        use Verdict::*;
        let limits = Limits::builtin();
        // 14 of 20 win or tie = 70 %: passes the default 0.70 exactly.
        let mut results: Vec<_> = (0..14)
            .map(|i| record(i, "the cat sat on the mat", Tie, Tie, None))
            .collect();
        results.extend((14..20).map(|i| record(i, "dogs", B, A, None)));
        let d = decide(&results, 0.7, "the stack's QUALITY_GATE_MIN_SCORE", &limits).unwrap();
        assert!(d.passed, "{}", d.describe());
        assert!(d.describe().starts_with(
            "quality gate passed: the student won or tied on 14 of 20 held-out prompts (70%; threshold 70% from the stack's QUALITY_GATE_MIN_SCORE): 0 wins, 14 ties, 6 losses (judge rubric distillery-judge-v1)."
        ), "{}", d.describe());
        assert!(!d.describe().contains("Worst examples"));
        // 13 of 20 = 65 % fails.
        results[13] = record(13, "dogs", B, A, None);
        let d = decide(&results, 0.7, "x", &limits).unwrap();
        assert!(!d.passed);
        let text = d.describe();
        assert!(
            text.contains("quality gate failed") && text.contains("(65%; threshold 70% from x)"),
            "{text}"
        );
        assert!(text.contains("Mean latency: student 400 ms, teacher 1200 ms. Mean output tokens: student 10, teacher 30."));
        assert_eq!(text.matches("\nrecord ").count(), 3, "{text}");
        // Nothing to decide on is an error, not a pass.
        let e = decide(&[], 0.7, "x", &limits).unwrap_err();
        assert_eq!(e.error_type, ErrorType::Internal);
    }

    #[test]
    fn metadata_may_only_raise_the_threshold() {
        let limits = Limits::builtin();
        let (t, origin) = resolve_min_score(None, None, &limits).unwrap();
        assert!(close(t, 0.7));
        assert_eq!(
            origin,
            "the default (limits.json evaluation.defaultGateMinScore)"
        );
        let (t, origin) = resolve_min_score(Some(0.8), Some("  "), &limits).unwrap();
        assert!(close(t, 0.8));
        assert_eq!(origin, "the stack's QUALITY_GATE_MIN_SCORE");
        let (t, origin) = resolve_min_score(Some(0.8), Some("0.9"), &limits).unwrap();
        assert!(close(t, 0.9));
        assert_eq!(
            origin,
            "S3 metadata x-amz-meta-distillery-quality-gate-min-score"
        );
        let (t, _) = resolve_min_score(Some(0.8), Some("85%"), &limits).unwrap();
        assert!(close(t, 0.85));
        // Equal is allowed (not a lowering).
        assert!(resolve_min_score(Some(0.8), Some("80%"), &limits).is_ok());
        let e = resolve_min_score(Some(0.8), Some("0.5"), &limits).unwrap_err();
        assert_eq!(e.error_type, ErrorType::GuardrailViolation);
        assert_eq!(
            e.message,
            "a run's quality gate threshold of 50% is below the stack's QUALITY_GATE_MIN_SCORE of 80%: \
             metadata may only raise it; the value came from S3 metadata x-amz-meta-distillery-quality-gate-min-score"
        );
        let e = resolve_min_score(None, Some("0.6"), &limits).unwrap_err();
        assert!(e
            .message
            .contains("below the default (limits.json evaluation.defaultGateMinScore) of 70%"));
        for bad in ["1.5", "-0.1", "lots", "NaN", "120%", "inf"] {
            let e = resolve_min_score(Some(0.7), Some(bad), &limits).unwrap_err();
            assert_eq!(e.error_type, ErrorType::ConfigInvalid, "{bad}");
            assert!(e.message.contains(&format!("got '{bad}'")));
        }
    }

    #[test]
    fn worst_examples_are_losses_first_then_lowest_rouge() {
        use Verdict::*;
        let results = vec![
            record(0, "the cat sat on the mat", Tie, Tie, None), // tie, 1.0
            record(1, "the cat", B, A, None),                    // loss, 0.5
            record(2, "nothing alike", Tie, Tie, None),          // tie, 0.0
            record(3, "the cat sat on", B, Tie, None),           // loss, 0.8
            record(4, "zzz", A, B, None),                        // win, 0.0
            record(5, "qqq", B, B, None),                        // tie (position bias), 0.0
        ];
        let worst = worst_examples(&results, 3, 400);
        let order: Vec<_> = worst.iter().map(|w| w.index).collect();
        // Losses by ROUGE-L (1 at 0.5, then 3 at 0.8), then the lowest tie: 2 and 5 are both at
        // 0.0, so dataset order picks 2.
        assert_eq!(order, [1, 3, 2]);
        assert_eq!(worst[0].judge_reason, "as A: B");
        assert_eq!(worst[0].teacher_answer, "the cat sat on the mat");
        assert!(worst[0]
            .describe()
            .starts_with("record 2 (loss, ROUGE-L 0.50):\n  prompt: prompt 1\n"));
        assert_eq!(worst_examples(&results, 10, 400).len(), 6);
        assert!(worst_examples(&[], 3, 400).is_empty());
    }

    #[test]
    fn truncation_is_char_safe_and_word_aware() {
        assert_eq!(truncate_text("short", 10), "short");
        assert_eq!(truncate_text("  a\n\n b\tc  ", 10), "a b c");
        // 10 chars max: keep 9 ("abcd efgh"), the space at 4 is not in the last fifth (4·5 < 9·4),
        // so the cut stays where it is, then the ellipsis.
        assert_eq!(truncate_text("abcd efgh ijkl", 10), "abcd efgh…");
        // 12 max: keep 11 ("abcdefghi j"); the space at 9 is in the last fifth (9·5 ≥ 11·4): back
        // off to it rather than leave a one-letter stub.
        assert_eq!(truncate_text("abcdefghi jklmnop", 12), "abcdefghi…");
        // No space in the last fifth: the word is cut.
        assert_eq!(truncate_text("abcdefghijklmnop", 10), "abcdefghi…");
        // Multi-byte: 20 × 'é' (2 bytes each) and emoji (4 bytes) never split inside a char.
        let e = "é".repeat(20);
        let t = truncate_text(&e, 10);
        assert_eq!(t.chars().count(), 10);
        assert_eq!(t, format!("{}…", "é".repeat(9)));
        let emoji = "🙂🙃".repeat(30);
        let t = truncate_text(&emoji, 7);
        assert_eq!(t.chars().count(), 7);
        assert!(t.ends_with('…'));
        for max in 0..25 {
            let t = truncate_text("Grüße aus Köln, 東京 und 🙂 überall", max);
            assert!(t.chars().count() <= max.max(1), "{max}: {t}");
        }
    }
}
