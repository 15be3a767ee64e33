//! The quality gate's pure logic (issue 13): which records are held out of training, how a
//! student's answers are scored against its teacher's, and whether the student passes.
//!
//! - [`holdout`]: the held-out slice, chosen by prompt hash (deterministic, stable).
//! - [`split`]: the validator's split of a dataset's lines into training and held-out files.
//! - [`setting`]: whether a run's gate is on (stack setting, metadata) and its threshold.
//! - [`rouge`]: ROUGE-L F1 between two texts.
//! - [`judge`]: the versioned judge rubric, the reply parser, position-swapped judging.
//! - [`gate`]: per-record results, the summary, the threshold and the decision, the worst
//!   examples.
//!
//! No I/O here: the evaluator calls the models and stores results; this decides.

pub mod gate;
pub mod holdout;
pub mod judge;
pub mod plan;
pub mod rouge;
pub mod setting;
pub mod split;

pub use gate::{
    decide, resolve_min_score, summarize, truncate_text, worst_examples, Answer, EvaluationRecord,
    GateDecision, GateSummary, RecordResult, WorstExample, MIN_SCORE_METADATA_KEY, MIN_SCORE_VAR,
};
pub use holdout::{prompt_hash, select_held_out, HeldOut, HeldOutSlice, PromptHash, SkipReason};
pub use judge::{
    combine, parse_judge_reply, JudgeReply, JudgeReplyError, JudgeRequest, Outcome, Verdict,
    RUBRIC, RUBRIC_VERSION,
};
pub use plan::GatePlan;
pub use rouge::{rouge_l, rouge_l_f1, RougeL};
pub use setting::{resolve_gate, GateInputs, GateSetting, GATE_METADATA_KEY, GATE_VAR};
pub use split::LineSplitter;
