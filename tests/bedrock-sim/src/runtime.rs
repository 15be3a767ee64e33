//! What the simulated models say: deterministic answers to Converse calls.
//!
//! - The **teacher** (a foundation model that is a teacher in `model-pairs.json`) answers every
//!   prompt with a fixed transformation of it ([`teacher_answer`]).
//! - A **student** (a custom model behind a deployment or Provisioned Throughput, or a student's base
//!   foundation model) gives the teacher's answer on a share of prompts set by the student-quality
//!   knob, and a visibly weaker one on the rest ([`student_answer`]). Which prompts is decided by a
//!   hash of the prompt, so the same prompt always gets the same answer.
//! - A **judge** call (any model; its last user message is a `JudgeRequest` of rubric
//!   `distillery-judge-v1`) prefers the answer closer to the teacher's answer for the judged prompt
//!   (ROUGE-L), TIE when both are equally close. The verdict depends on the answers' content, never
//!   their position, so position-swapped judging is consistent: a student that matches the teacher
//!   ties, one that does not loses, and the gate's win-or-tie share tracks the knob.
//!
//! The prompt is the last user message's text (its text blocks joined by newlines), which is also
//! what the evaluator puts into a judge request's `prompt`.

use distillery_core::domain::evaluation::{rouge_l_f1, JudgeReply, JudgeRequest, Verdict};
use distillery_core::domain::validation::BYTES_PER_TOKEN;
use sha2::{Digest, Sha256};

/// Who a model identifier answers as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Teacher,
    Student,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Teacher => "teacher",
            ModelKind::Student => "student",
        }
    }

    /// `metrics.latencyMs`: a fixed cost per call plus a cost per output token; the teacher is
    /// the larger model, so it is slower on both counts.
    pub fn latency_ms(self, output_tokens: u64) -> u64 {
        match self {
            ModelKind::Teacher => 900 + 12 * output_tokens,
            ModelKind::Student => 250 + 4 * output_tokens,
        }
    }
}

/// The words of a prompt the answers are built from (at most 40, so answers stay short).
fn words(prompt: &str) -> Vec<&str> {
    prompt.split_whitespace().take(40).collect()
}

/// The teacher's answer to `prompt`.
pub fn teacher_answer(prompt: &str) -> String {
    let w = words(prompt);
    if w.is_empty() {
        return "There is nothing to answer: the prompt is empty.".into();
    }
    format!(
        "Here is a complete answer. Regarding \"{}\": {}. In summary, every part of the request is covered.",
        w[..w.len().min(6)].join(" "),
        w.join(" ")
    )
}

/// A fraction in [0, 1) fixed by the prompt: the student matches the teacher when it is below the
/// quality knob.
pub fn prompt_fraction(prompt: &str) -> f64 {
    let digest = Sha256::digest(format!("bedrock-sim student quality\n{prompt}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits: exactly representable, so the fraction is uniform in [0, 1).
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether a student of quality `quality` (0..=1) gives the teacher's answer to `prompt`.
pub fn student_agrees(prompt: &str, quality: f64) -> bool {
    prompt_fraction(prompt) < quality
}

/// The student's answer: the teacher's when [`student_agrees`], else a shorter answer covering
/// only the first half of the prompt.
pub fn student_answer(prompt: &str, quality: f64) -> String {
    if student_agrees(prompt, quality) {
        return teacher_answer(prompt);
    }
    let w = words(prompt);
    let half = &w[..w.len().div_ceil(2)];
    format!(
        "Short answer: {}. I am not sure about the rest of it.",
        half.join(" ")
    )
}

/// The judge's reply to a judging: the answer closer to the teacher's answer for the prompt wins.
pub fn judge(request: &JudgeRequest) -> JudgeReply {
    let reference = teacher_answer(&request.prompt);
    let a = rouge_l_f1(&request.answer_a, &reference);
    let b = rouge_l_f1(&request.answer_b, &reference);
    let (verdict, reason) = if request.answer_a == request.answer_b || (a - b).abs() < 1e-9 {
        (
            Verdict::Tie,
            "Both answers cover the request equally well.".to_string(),
        )
    } else if a > b {
        (
            Verdict::A,
            format!("Answer A covers more of the request (ROUGE-L {a:.2} against the reference, B {b:.2})."),
        )
    } else {
        (
            Verdict::B,
            format!("Answer B covers more of the request (ROUGE-L {b:.2} against the reference, A {a:.2})."),
        )
    };
    JudgeReply { verdict, reason }
}

/// Tokens for a text, as the validator estimates them: one per 4 bytes, rounded up.
pub fn tokens(text: &str) -> u64 {
    tokens_for_bytes(text.len())
}

pub fn tokens_for_bytes(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(BYTES_PER_TOKEN)
}

/// `text` cut to at most `max_tokens` tokens (4 bytes each) at a character boundary; whether it
/// was cut.
pub fn limit_tokens(text: &str, max_tokens: u64) -> (String, bool) {
    let max_bytes = max_tokens.saturating_mul(BYTES_PER_TOKEN);
    if text.len() as u64 <= max_bytes {
        return (text.to_string(), false);
    }
    let mut end = max_bytes as usize;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use distillery_core::domain::evaluation::{combine, Outcome};

    #[test]
    fn answers_are_deterministic_and_the_knob_sets_the_share() {
        let prompts: Vec<String> = (0..2000)
            .map(|i| format!("Question number {i} about billing"))
            .collect();
        let agreeing = |q: f64| {
            prompts
                .iter()
                .filter(|p| student_answer(p, q) == teacher_answer(p))
                .count()
        };
        assert_eq!(agreeing(1.0), 2000);
        assert_eq!(agreeing(0.0), 0);
        let share = agreeing(0.9) as f64 / 2000.0;
        assert!((0.87..=0.93).contains(&share), "{share}");
        let share = agreeing(0.2) as f64 / 2000.0;
        assert!((0.17..=0.23).contains(&share), "{share}");
        // Monotone: a prompt answered well at 0.2 is answered well at 0.9.
        for p in &prompts {
            if student_agrees(p, 0.2) {
                assert!(student_agrees(p, 0.9));
            }
        }
        assert_eq!(student_answer("same", 0.5), student_answer("same", 0.5));
    }

    #[test]
    fn the_judge_prefers_the_teacher_like_answer_in_either_position() {
        let prompt = "Explain how refunds are processed for annual plans";
        let teacher = teacher_answer(prompt);
        let weak = student_answer(prompt, 0.0);
        assert_ne!(teacher, weak);
        let first = judge(&JudgeRequest::student_first(prompt, &weak, &teacher));
        let second = judge(&JudgeRequest::student_first(prompt, &weak, &teacher).swapped());
        assert_eq!(first.verdict, Verdict::B);
        assert_eq!(second.verdict, Verdict::A);
        assert_eq!(combine(first.verdict, second.verdict), Outcome::Loss);
        let same = judge(&JudgeRequest::student_first(prompt, &teacher, &teacher));
        assert_eq!(same.verdict, Verdict::Tie);
        assert_eq!(combine(same.verdict, same.verdict), Outcome::Tie);
        // The reply is in the rubric's format.
        let parsed =
            distillery_core::domain::evaluation::parse_judge_reply(&first.render()).unwrap();
        assert_eq!(parsed, first);
    }

    #[test]
    fn token_counts_and_limits_are_char_safe() {
        assert_eq!(tokens(""), 0);
        assert_eq!(tokens("abcd"), 1);
        assert_eq!(tokens("abcde"), 2);
        let (cut, was) = limit_tokens("ééééé", 1); // 10 bytes, keep at most 4
        assert_eq!((cut.as_str(), was), ("éé", true));
        let (cut, was) = limit_tokens("abc", 1);
        assert_eq!((cut.as_str(), was), ("abc", false));
        assert!(ModelKind::Teacher.latency_ms(10) > ModelKind::Student.latency_ms(10));
    }
}
