//! ROUGE-L F1: how much of one text's word sequence another text keeps, in order.
//!
//! - **Tokens**: the text is lowercased (Unicode `to_lowercase`) and split on every character that
//!   is not alphanumeric (Unicode `char::is_alphanumeric`); empty pieces are dropped. So
//!   "Don't stop!" is `["don", "t", "stop"]` and punctuation and spacing never count.
//! - **LCS**: the length of the longest common subsequence of the two token lists (tokens in the
//!   same order, not necessarily adjacent).
//! - **Precision** = LCS / candidate tokens, **recall** = LCS / reference tokens,
//!   **F1** = 2·P·R / (P + R) (β = 1, precision and recall weigh the same).
//! - **Empty texts**: two texts without tokens are identical (F1 1.0); one empty and one not share
//!   nothing (F1 0.0).
//!
//! Time is O(m·n) in the token counts and memory O(min(m, n)); answers are bounded by the runtime's
//! `maxTokens`, so a pair of 1,000-token answers is about a million steps.

use serde::{Deserialize, Serialize};

/// The score and the figures it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RougeL {
    pub lcs: usize,
    pub candidate_tokens: usize,
    pub reference_tokens: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The tokens ROUGE-L compares (see the module documentation).
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Length of the longest common subsequence, keeping one row of the table (the shorter side).
fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    let mut row = vec![0usize; short.len() + 1];
    for x in long {
        // `diag` is the previous row's value one column to the left.
        let mut diag = 0;
        for (j, y) in short.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if x == y { diag + 1 } else { up.max(row[j]) };
            diag = up;
        }
    }
    row[short.len()]
}

/// ROUGE-L of `candidate` (e.g. the student's answer) against `reference` (the teacher's, or the
/// dataset's golden answer).
pub fn rouge_l(candidate: &str, reference: &str) -> RougeL {
    let c = tokens(candidate);
    let r = tokens(reference);
    let lcs = lcs_len(&c, &r);
    let (precision, recall, f1) = match (c.is_empty(), r.is_empty()) {
        (true, true) => (1.0, 1.0, 1.0),
        (true, false) | (false, true) => (0.0, 0.0, 0.0),
        (false, false) => {
            let p = lcs as f64 / c.len() as f64;
            let r = lcs as f64 / r.len() as f64;
            let f = if lcs == 0 { 0.0 } else { 2.0 * p * r / (p + r) };
            (p, r, f)
        }
    };
    RougeL {
        lcs,
        candidate_tokens: c.len(),
        reference_tokens: r.len(),
        precision,
        recall,
        f1,
    }
}

/// Just the F1.
pub fn rouge_l_f1(candidate: &str, reference: &str) -> f64 {
    rouge_l(candidate, reference).f1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn tokenization_lowercases_and_splits_on_non_alphanumerics() {
        assert_eq!(tokens("Don't stop!"), ["don", "t", "stop"]);
        assert_eq!(tokens("  a--B__c\n\t42 "), ["a", "b", "c", "42"]);
        assert_eq!(tokens("Ünïcode ÉTÉ, 東京"), ["ünïcode", "été", "東京"]);
        assert!(tokens(" ,.;!? ").is_empty());
    }

    #[test]
    fn identical_texts_score_one_and_disjoint_ones_zero() {
        let r = rouge_l("The cat sat.", "the CAT sat");
        assert_eq!(r.lcs, 3);
        assert!(close(r.f1, 1.0));
        let r = rouge_l("alpha beta", "gamma delta epsilon");
        assert_eq!(r.lcs, 0);
        assert!(close(r.precision, 0.0) && close(r.recall, 0.0) && close(r.f1, 0.0));
    }

    #[test]
    fn a_worked_example() {
        // candidate: the cat was found under the bed      (7 tokens)
        // reference: the cat was under the bed            (6 tokens)
        // LCS: the cat was under the bed = 6
        // precision = 6/7, recall = 6/6 = 1
        // F1 = 2 · (6/7) · 1 / (6/7 + 1) = (12/7) / (13/7) = 12/13 ≈ 0.923
        let r = rouge_l(
            "the cat was found under the bed",
            "the cat was under the bed",
        );
        assert_eq!((r.lcs, r.candidate_tokens, r.reference_tokens), (6, 7, 6));
        assert!(close(r.precision, 6.0 / 7.0));
        assert!(close(r.recall, 1.0));
        assert!(close(r.f1, 12.0 / 13.0));
    }

    #[test]
    fn order_matters_not_adjacency() {
        // candidate: a b c d   reference: d c b a  → LCS 1 (any single token)
        // P = 1/4, R = 1/4, F1 = 1/4.
        let r = rouge_l("a b c d", "d c b a");
        assert_eq!(r.lcs, 1);
        assert!(close(r.f1, 0.25));
        // candidate: a x b y c  reference: a b c → LCS 3 (a b c, not adjacent)
        // P = 3/5, R = 1, F1 = 2·(3/5)/(8/5) = 6/8 = 0.75.
        let r = rouge_l("a x b y c", "a b c");
        assert_eq!(r.lcs, 3);
        assert!(close(r.f1, 0.75));
        // Swapping candidate and reference swaps precision and recall; F1 is symmetric.
        let s = rouge_l("a b c", "a x b y c");
        assert!(close(s.precision, r.recall) && close(s.recall, r.precision));
        assert!(close(s.f1, r.f1));
    }

    #[test]
    fn repeated_tokens_are_matched_once_each() {
        // candidate: the the the   reference: the cat → LCS 1
        // P = 1/3, R = 1/2, F1 = 2·(1/6)/(5/6) = 2/5.
        let r = rouge_l("the the the", "the cat");
        assert_eq!(r.lcs, 1);
        assert!(close(r.f1, 0.4));
    }

    #[test]
    fn empty_texts() {
        assert!(close(rouge_l_f1("", ""), 1.0));
        assert!(close(rouge_l_f1("...", "  "), 1.0));
        assert!(close(rouge_l_f1("", "something"), 0.0));
        assert!(close(rouge_l_f1("something", ""), 0.0));
        let r = rouge_l("", "a b");
        assert_eq!((r.lcs, r.candidate_tokens, r.reference_tokens), (0, 0, 2));
    }
}
