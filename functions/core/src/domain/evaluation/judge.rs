//! The judge: a fixed, versioned rubric asking a model to compare two answers to one prompt, the
//! parser for its reply, and position-swapped judging.
//!
//! A judge model tends to prefer whichever answer it reads first (or second). So every prompt is
//! judged twice: once with the student's answer as A and the teacher's as B, once swapped. The two
//! verdicts combine into one outcome for the student ([`combine`]):
//!
//! | student as A \ student as B | wins (B) | tie | loses (A) |
//! |---|---|---|---|
//! | **wins (A)**  | win | win | tie |
//! | **tie**       | win | tie | loss |
//! | **loses (B)** | tie | loss | loss |
//!
//! Win only when it wins both orders, or wins one and ties the other; loss the same way round;
//! anything else (a tie both times, or one win and one loss, which is position bias) is a tie.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Changes whenever the rubric's text or reply format changes, so results stay comparable only
/// with results of the same version. It is recorded with every evaluation.
pub const RUBRIC_VERSION: &str = "distillery-judge-v1";

/// The judge's instructions (sent as the system prompt). The first line names the version so a
/// reply, or a simulator, can tell which rubric produced it.
pub const RUBRIC: &str = "\
Rubric distillery-judge-v1.
You are an impartial judge comparing two answers, A and B, to the same prompt.
Judge which answer better serves the person who wrote the prompt: correct, complete for what was \
asked, following every instruction in the prompt (format, length, language), and clear. Do not \
prefer an answer for being longer, for its position, or for its style alone. If both answers are \
equally good, or equally bad, say TIE.
Reply with exactly two lines and nothing else:
VERDICT: A or B or TIE
REASON: one sentence saying why";

const HEADER: &str = "[distillery-judge-v1]";
const OPEN_PROMPT: &str = "<prompt>\n";
const SEP_A: &str = "\n</prompt>\n\n<answer_a>\n";
const SEP_B: &str = "\n</answer_a>\n\n<answer_b>\n";
const CLOSE: &str = "\n</answer_b>";

/// One judging: the prompt and the two answers, in the order the judge sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeRequest {
    /// The prompt the answers reply to: the record's final user turn (earlier turns, when there are
    /// any, belong to the caller's rendering of it).
    pub prompt: String,
    pub answer_a: String,
    pub answer_b: String,
}

impl JudgeRequest {
    /// The student's answer as A, the teacher's as B (the first of the two judgings).
    pub fn student_first(prompt: &str, student: &str, teacher: &str) -> Self {
        JudgeRequest {
            prompt: prompt.into(),
            answer_a: student.into(),
            answer_b: teacher.into(),
        }
    }

    /// The same judging with the answers swapped.
    pub fn swapped(&self) -> Self {
        JudgeRequest {
            prompt: self.prompt.clone(),
            answer_a: self.answer_b.clone(),
            answer_b: self.answer_a.clone(),
        }
    }

    /// The user message sent with [`RUBRIC`] as the system prompt.
    pub fn user_message(&self) -> String {
        format!(
            "{HEADER}\n{OPEN_PROMPT}{}{SEP_A}{}{SEP_B}{}{CLOSE}\n",
            self.prompt, self.answer_a, self.answer_b
        )
    }

    /// Reads a [`Self::user_message`] back (for the Bedrock simulator, which plays the judge, and
    /// for logs). `None` when the text is not one. The separators are fixed lines, so a prompt
    /// or answer that itself contains the separator line for a later part would be cut there;
    /// the simulator's answers never do.
    pub fn from_user_message(text: &str) -> Option<Self> {
        let rest = text.trim_start().strip_prefix(HEADER)?;
        let rest = rest.strip_prefix('\n')?.strip_prefix(OPEN_PROMPT)?;
        let (prompt, rest) = rest.split_once(SEP_A)?;
        let (answer_a, rest) = rest.split_once(SEP_B)?;
        let answer_b = rest.trim_end_matches('\n').strip_suffix(CLOSE)?;
        Some(JudgeRequest {
            prompt: prompt.into(),
            answer_a: answer_a.into(),
            answer_b: answer_b.into(),
        })
    }
}

/// What the judge said about one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Verdict {
    A,
    B,
    #[serde(rename = "TIE")]
    Tie,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::A, Verdict::B, Verdict::Tie];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::A => "A",
            Verdict::B => "B",
            Verdict::Tie => "TIE",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeReply {
    pub verdict: Verdict,
    pub reason: String,
}

impl JudgeReply {
    /// The reply in the rubric's format (what a well-behaved judge sends).
    pub fn render(&self) -> String {
        format!("VERDICT: {}\nREASON: {}", self.verdict, self.reason)
    }
}

/// A reply that does not follow the rubric's format. The message quotes the start of the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// The excerpt is model output about a held-out record: it goes to the function's log (for whoever
// debugs the judge), never into the error, which reaches the run record and the messages.
#[error("the judge's reply does not follow rubric {RUBRIC_VERSION}: {problem}")]
pub struct JudgeReplyError {
    pub problem: String,
    pub excerpt: String,
}

/// The value after `label:` when `line` starts with it (case-insensitive, spaces around the colon
/// allowed).
fn labelled<'a>(line: &'a str, label: &str) -> Option<&'a str> {
    let head = line.get(..label.len())?;
    if !head.eq_ignore_ascii_case(label) {
        return None;
    }
    line[label.len()..]
        .trim_start()
        .strip_prefix(':')
        .map(str::trim)
}

/// Parses a judge's reply: the first non-blank line must be `VERDICT: A|B|TIE`, a later line
/// `REASON: ...` (the reason runs to the end of the reply). Case, surrounding whitespace and a
/// trailing full stop after the verdict are tolerated; anything else is an error naming the
/// problem.
pub fn parse_judge_reply(text: &str) -> Result<JudgeReply, JudgeReplyError> {
    let err = |problem: String| JudgeReplyError {
        problem,
        excerpt: text.trim().chars().take(80).collect(),
    };
    let mut lines = text.lines().map(str::trim).skip_while(|l| l.is_empty());
    let first = lines
        .next()
        .ok_or_else(|| err("the reply is empty".into()))?;
    let value = labelled(first, "VERDICT").ok_or_else(|| {
        err("the first line must be 'VERDICT: A', 'VERDICT: B' or 'VERDICT: TIE'".into())
    })?;
    let value = value.strip_suffix('.').unwrap_or(value).trim();
    let verdict = Verdict::ALL
        .into_iter()
        .find(|v| v.as_str().eq_ignore_ascii_case(value))
        .ok_or_else(|| err(format!("the verdict must be A, B or TIE, not {value:?}")))?;
    let mut reason: Option<Vec<&str>> = None;
    for line in lines {
        match &mut reason {
            Some(parts) => parts.push(line),
            None => {
                if let Some(r) = labelled(line, "REASON") {
                    reason = Some(vec![r]);
                } else if labelled(line, "VERDICT").is_some() {
                    return Err(err("the reply has more than one VERDICT line".into()));
                }
            }
        }
    }
    let reason = reason
        .map(|parts| parts.join(" ").trim().to_string())
        .ok_or_else(|| err("a 'REASON: ...' line must follow the verdict".into()))?;
    if reason.is_empty() {
        return Err(err("the REASON line is empty".into()));
    }
    Ok(JudgeReply { verdict, reason })
}

/// The student's result on one prompt, after both orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Win,
    Tie,
    Loss,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Win => "win",
            Outcome::Tie => "tie",
            Outcome::Loss => "loss",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The student's result in one order, given which letter it was.
fn for_student(verdict: Verdict, student_is: Verdict) -> Outcome {
    match verdict {
        Verdict::Tie => Outcome::Tie,
        v if v == student_is => Outcome::Win,
        _ => Outcome::Loss,
    }
}

/// Combines the verdict with the student as A (`student_as_a`) and with the student as B
/// (`student_as_b`) into the student's outcome (the table in the module documentation).
pub fn combine(student_as_a: Verdict, student_as_b: Verdict) -> Outcome {
    use Outcome::*;
    match (
        for_student(student_as_a, Verdict::A),
        for_student(student_as_b, Verdict::B),
    ) {
        (Win, Win) | (Win, Tie) | (Tie, Win) => Win,
        (Loss, Loss) | (Loss, Tie) | (Tie, Loss) => Loss,
        _ => Tie,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_nine_combinations() {
        use Outcome::*;
        use Verdict::{A, B};
        let tie = Verdict::Tie;
        // (student as A, student as B) → outcome. As A the student wins with "A"; as B with "B".
        let table = [
            ((A, B), Win),     // wins both orders
            ((A, tie), Win),   // wins, ties
            ((tie, B), Win),   // ties, wins
            ((B, A), Loss),    // loses both
            ((B, tie), Loss),  // loses, ties
            ((tie, A), Loss),  // ties, loses
            ((tie, tie), Tie), // ties both
            ((A, A), Tie),     // the judge always picks A: position bias, cancels out
            ((B, B), Tie),     // always B: the same
        ];
        for ((first, second), expected) in table {
            assert_eq!(combine(first, second), expected, "{first} then {second}");
        }
        // Every pair is covered exactly once.
        let mut seen: Vec<_> = table.iter().map(|(p, _)| *p).collect();
        seen.sort_by_key(|(a, b)| (a.as_str(), b.as_str()));
        seen.dedup();
        assert_eq!(seen.len(), 9);
    }

    #[test]
    fn the_rubric_names_its_version_and_format() {
        assert!(RUBRIC.starts_with(&format!("Rubric {RUBRIC_VERSION}.")));
        assert!(RUBRIC.contains("VERDICT: A or B or TIE"));
        assert!(HEADER.contains(RUBRIC_VERSION));
    }

    #[test]
    fn requests_round_trip_and_swap() {
        let r = JudgeRequest::student_first(
            "Summarize:\nline two",
            "student says\n\nthis",
            "teacher <answer_a> says",
        );
        let text = r.user_message();
        assert!(
            text.starts_with("[distillery-judge-v1]\n<prompt>\nSummarize:\nline two\n</prompt>")
        );
        assert_eq!(JudgeRequest::from_user_message(&text), Some(r.clone()));
        let s = r.swapped();
        assert_eq!(s.answer_a, r.answer_b);
        assert_eq!(s.answer_b, r.answer_a);
        assert_eq!(JudgeRequest::from_user_message(&s.user_message()), Some(s));
        // Empty answers survive too.
        let e = JudgeRequest::student_first("p", "", "");
        assert_eq!(JudgeRequest::from_user_message(&e.user_message()), Some(e));
        assert_eq!(JudgeRequest::from_user_message("hello"), None);
        assert_eq!(
            JudgeRequest::from_user_message("[distillery-judge-v1]\n<prompt>\nx"),
            None
        );
    }

    #[test]
    fn parses_well_formed_and_tolerant_replies() {
        let r = parse_judge_reply("VERDICT: A\nREASON: A answers the question.").unwrap();
        assert_eq!(r.verdict, Verdict::A);
        assert_eq!(r.reason, "A answers the question.");
        let r = parse_judge_reply("\n  verdict :  tie.  \r\n\n reason:Both are fine\nequally.\n")
            .unwrap();
        assert_eq!(r.verdict, Verdict::Tie);
        assert_eq!(r.reason, "Both are fine equally.");
        let r = parse_judge_reply("Verdict: b\nReason: B follows the format").unwrap();
        assert_eq!(r.verdict, Verdict::B);
        let reply = JudgeReply {
            verdict: Verdict::Tie,
            reason: "same".into(),
        };
        assert_eq!(parse_judge_reply(&reply.render()).unwrap(), reply);
    }

    #[test]
    fn rejects_garbage_with_the_problem_named() {
        let cases = [
            ("", "the reply is empty"),
            ("   \n ", "the reply is empty"),
            (
                "I think A is better.\nVERDICT: A\nREASON: x",
                "the first line must be",
            ),
            (
                "VERDICT: C\nREASON: x",
                "the verdict must be A, B or TIE, not \"C\"",
            ),
            ("VERDICT: A or B\nREASON: x", "not \"A or B\""),
            ("VERDICT:\nREASON: x", "not \"\""),
            ("VERDICTS: A\nREASON: x", "the first line must be"),
            ("VERDICT A\nREASON: x", "the first line must be"),
            ("VERDICT: A", "a 'REASON: ...' line must follow"),
            ("VERDICT: A\nREASON:   ", "the REASON line is empty"),
            (
                "VERDICT: A\nVERDICT: B\nREASON: x",
                "more than one VERDICT line",
            ),
        ];
        for (reply, problem) in cases {
            let e = parse_judge_reply(reply).unwrap_err();
            assert!(e.problem.contains(problem), "{reply:?}: {}", e.problem);
            assert!(e.to_string().contains("rubric distillery-judge-v1"));
        }
        // The excerpt is bounded and char-safe.
        let long = "é".repeat(500);
        let e = parse_judge_reply(&long).unwrap_err();
        assert_eq!(e.excerpt.chars().count(), 80);
        // Model output never reaches the error text (the run record, the messages).
        let e = parse_judge_reply("The held-out answer says SECRET-42").unwrap_err();
        assert!(!e.to_string().contains("SECRET-42"), "{e}");
    }
}
