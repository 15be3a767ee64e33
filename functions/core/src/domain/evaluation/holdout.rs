//! The held-out slice: records set aside before training so the student can be compared with its
//! teacher on prompts Bedrock never trained it on.
//!
//! # The rule
//!
//! 1. **Size.** `target = round(total × heldOutPercent / 100)` (integer arithmetic, halves round
//!    up), clamped to `minHeldOutRecords..=maxHeldOutRecords` (`data/limits.json`, section
//!    `evaluation`: 5 %, 20, 200).
//! 2. **Room to train.** If `total − target` is below Bedrock's minimum dataset size
//!    (`dataset.minRecords`, 100) there is no slice: the gate is skipped and the reason says so.
//!    A smaller slice is never taken to make room, since fewer than the minimum says too little.
//! 3. **Which records.** Each record's prompt is hashed (see *The hash* below). Records
//!    with the same prompt form one group (held out together or not at all, so a held-out prompt
//!    never appears in the training part). Groups are visited in ascending hash order; a group is
//!    taken when it still fits in `target`, otherwise skipped, until `target` records are taken.
//!    If repeated prompts leave the slice below the minimum, there is no slice (reason given).
//!
//! Hash *rank* rather than a fixed hash threshold keeps the slice size exact while staying stable:
//! the same records always give the same slice, whatever their order in the file; adding records
//! only moves an old record out of the slice when a new record's hash ranks below it, or when the
//! target grows or shrinks, never because the file was reshuffled.
//!
//! # The hash
//!
//! [`select_held_out`] takes any ordered hash. The validator passes the 64-bit prompt identity its
//! duplicate detection already computes for every valid record (`domain::validation`'s
//! `PromptHasher` over the system text and every turn before a final assistant answer, with role
//! tags), collected only when the gate asks for it
//! (`DatasetValidator::collect_prompt_hashes`): no second hash per record, 8 bytes of memory per
//! record, and the gate-off path does exactly what it did before. That hash is deterministic
//! (fixed constants, no per-process seed), which is all the rule needs; changing `PromptHasher`
//! would change which records later uploads hold out, never a recorded run's slice (the run keeps
//! its `heldout.jsonl`). Two different prompts colliding only puts them in one group. [`prompt_hash`]
//! (SHA-256 of a text) remains for callers that hash prompt text themselves, e.g. the tests below.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::catalog::Limits;

/// SHA-256 of a record's prompt text (the caller decides what the prompt text is, e.g. the system
/// prompt and every turn before the final assistant answer, serialized the same way each time).
pub type PromptHash = [u8; 32];

pub fn prompt_hash(prompt: &str) -> PromptHash {
    Sha256::digest(prompt.as_bytes()).into()
}

/// The slice chosen for one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldOutSlice {
    /// Indices (0-based, in the dataset's record order) of the held-out records, ascending.
    pub indices: Vec<usize>,
    /// Records in the dataset.
    pub total: usize,
    /// The size the rule aimed for (`indices.len()` is smaller only when repeated prompts straddle
    /// the boundary).
    pub target: usize,
}

impl HeldOutSlice {
    /// Records left for training.
    pub fn training_records(&self) -> usize {
        self.total - self.indices.len()
    }

    /// Whether record `index` is held out (binary search: `indices` is sorted).
    pub fn contains(&self, index: usize) -> bool {
        self.indices.binary_search(&index).is_ok()
    }
}

/// Why a dataset gets no slice (and so no quality gate).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "reason",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum SkipReason {
    /// Holding out `held_out` records would leave fewer than Bedrock's minimum for training.
    TooFewRecords {
        total: usize,
        held_out: usize,
        min_training: u64,
    },
    /// Repeated prompts kept the slice below its minimum size.
    RepeatedPrompts {
        total: usize,
        distinct_held_out: usize,
        min_held_out: u64,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::TooFewRecords {
                total,
                held_out,
                min_training,
            } => write!(
                f,
                "quality gate skipped: the dataset has {total} records, and holding out {held_out} for \
                 the evaluation would leave {} for training, below Bedrock's minimum of {min_training} \
                 (limits.json dataset.minRecords); add at least {} records to get a quality gate",
                total.saturating_sub(*held_out),
                (*min_training as usize + held_out).saturating_sub(*total)
            ),
            SkipReason::RepeatedPrompts {
                total,
                distinct_held_out,
                min_held_out,
            } => write!(
                f,
                "quality gate skipped: the dataset's {total} records repeat their prompts so much that \
                 only {distinct_held_out} records could be held out without their prompt also appearing \
                 in training, below the minimum slice of {min_held_out} (limits.json \
                 evaluation.minHeldOutRecords)"
            ),
        }
    }
}

/// A slice, or the reason there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum HeldOut {
    Slice(HeldOutSlice),
    Skipped(SkipReason),
}

impl HeldOut {
    pub fn slice(&self) -> Option<&HeldOutSlice> {
        match self {
            HeldOut::Slice(s) => Some(s),
            HeldOut::Skipped(_) => None,
        }
    }
}

/// Step 1 of the rule: the slice size aimed for, before the room-to-train check.
pub fn target_size(total: usize, limits: &Limits) -> usize {
    let e = &limits.evaluation;
    // Halves round up: (total × pct + 50) / 100, exact in integers.
    let share = (total as u64 * e.held_out_percent + 50) / 100;
    share.clamp(e.min_held_out_records, e.max_held_out_records) as usize
}

/// Chooses the held-out records for a dataset whose records' prompts hash to `hashes` (one per
/// record, in file order; any ordered hash, see the module documentation). See the module
/// documentation for the rule.
pub fn select_held_out<H: Ord>(hashes: &[H], limits: &Limits) -> HeldOut {
    let total = hashes.len();
    let target = target_size(total, limits);
    let min_training = limits.dataset.min_records;
    if (total as u64) < target as u64 + min_training {
        return HeldOut::Skipped(SkipReason::TooFewRecords {
            total,
            held_out: target,
            min_training,
        });
    }
    // Groups of equal prompts, in ascending hash order (BTreeMap orders the keys).
    let mut groups: BTreeMap<&H, Vec<usize>> = BTreeMap::new();
    for (i, h) in hashes.iter().enumerate() {
        groups.entry(h).or_default().push(i);
    }
    let mut indices = Vec::with_capacity(target);
    for members in groups.values() {
        if indices.len() == target {
            break;
        }
        if indices.len() + members.len() <= target {
            indices.extend_from_slice(members);
        }
    }
    if (indices.len() as u64) < limits.evaluation.min_held_out_records {
        return HeldOut::Skipped(SkipReason::RepeatedPrompts {
            total,
            distinct_held_out: indices.len(),
            min_held_out: limits.evaluation.min_held_out_records,
        });
    }
    indices.sort_unstable();
    HeldOut::Slice(HeldOutSlice {
        indices,
        total,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::builtin()
    }

    fn prompts(n: usize, tag: &str) -> Vec<PromptHash> {
        (0..n)
            .map(|i| prompt_hash(&format!("{tag} prompt {i}")))
            .collect()
    }

    fn slice(h: &HeldOut) -> &HeldOutSlice {
        h.slice()
            .unwrap_or_else(|| panic!("expected a slice: {h:?}"))
    }

    #[test]
    fn the_builtin_figures_are_the_documented_ones() {
        // The cases below are computed by hand from these.
        let l = limits();
        assert_eq!(l.evaluation.held_out_percent, 5);
        assert_eq!(l.evaluation.min_held_out_records, 20);
        assert_eq!(l.evaluation.max_held_out_records, 200);
        assert_eq!(l.dataset.min_records, 100);
    }

    #[test]
    fn target_size_is_five_percent_within_twenty_and_two_hundred() {
        let l = limits();
        // 19 × 5 / 100 = 0.95 → 1 → raised to the minimum 20.
        assert_eq!(target_size(19, &l), 20);
        // 2,000 × 5 % = 100 exactly.
        assert_eq!(target_size(2_000, &l), 100);
        // 10,000 × 5 % = 500 → capped at 200.
        assert_eq!(target_size(10_000, &l), 200);
        // 410 × 5 % = 20.5 → halves round up → 21.
        assert_eq!(target_size(410, &l), 21);
        // 409 × 5 % = 20.45 → 20.
        assert_eq!(target_size(409, &l), 20);
        // 4,010 × 5 % = 200.5 → 201 → capped at 200.
        assert_eq!(target_size(4_010, &l), 200);
    }

    #[test]
    fn bounds_and_the_room_to_train() {
        let l = limits();
        // 19 records: the slice would be 20 > 19, nothing left to train on → none.
        assert!(matches!(
            select_held_out(&prompts(19, "a"), &l),
            HeldOut::Skipped(SkipReason::TooFewRecords {
                total: 19,
                held_out: 20,
                min_training: 100
            })
        ));
        // 110 records: 110 − 20 = 90 < 100 → none.
        let h = select_held_out(&prompts(110, "a"), &l);
        let HeldOut::Skipped(reason) = &h else {
            panic!("{h:?}")
        };
        assert_eq!(
            reason.to_string(),
            "quality gate skipped: the dataset has 110 records, and holding out 20 for the evaluation \
             would leave 90 for training, below Bedrock's minimum of 100 (limits.json dataset.minRecords); \
             add at least 10 records to get a quality gate"
        );
        // 119 records: 119 − 20 = 99 < 100 → none; 120: 120 − 20 = 100 → a slice of 20.
        assert!(select_held_out(&prompts(119, "a"), &l).slice().is_none());
        let s = select_held_out(&prompts(120, "a"), &l);
        assert_eq!(slice(&s).indices.len(), 20);
        assert_eq!(slice(&s).training_records(), 100);
        // 2,000 records → 100 held out, 1,900 to train on.
        let s = select_held_out(&prompts(2_000, "a"), &l);
        assert_eq!(slice(&s).indices.len(), 100);
        assert_eq!(slice(&s).training_records(), 1_900);
        // 10,000 records → 200.
        let s = select_held_out(&prompts(10_000, "a"), &l);
        assert_eq!(slice(&s).indices.len(), 200);
    }

    #[test]
    fn the_same_records_give_the_same_slice_in_any_order() {
        let l = limits();
        let hashes = prompts(1_000, "b");
        let first = select_held_out(&hashes, &l);
        assert_eq!(first, select_held_out(&hashes, &l));
        // Reversing the file: the same prompts are held out (at mirrored indices).
        let reversed: Vec<_> = hashes.iter().rev().copied().collect();
        let again = select_held_out(&reversed, &l);
        let held = |s: &HeldOut, hs: &[PromptHash]| {
            let mut v: Vec<PromptHash> = slice(s).indices.iter().map(|&i| hs[i]).collect();
            v.sort();
            v
        };
        assert_eq!(held(&first, &hashes), held(&again, &reversed));
        // The slice is the 50 lowest-ranked hashes (1,000 × 5 % = 50).
        let mut sorted = hashes.clone();
        sorted.sort();
        assert_eq!(held(&first, &hashes), sorted[..50].to_vec());
        assert!(slice(&first).indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn adding_records_moves_out_only_those_outranked() {
        let l = limits();
        let old = prompts(1_000, "c"); // target 50
        let before = select_held_out(&old, &l);
        let mut grown = old.clone();
        grown.extend(prompts(19, "new")); // 1,019 × 5 % = 50.95 → 51
        let after = select_held_out(&grown, &l);
        let held_before = &slice(&before).indices;
        let held_after = &slice(&after).indices;
        let new_held = held_after.iter().filter(|&&i| i >= old.len()).count() as i64;
        let left = held_before
            .iter()
            .filter(|i| !held_after.contains(i))
            .count() as i64;
        let joined = held_after
            .iter()
            .filter(|&&i| i < old.len() && !held_before.contains(&i))
            .count() as i64;
        // The target grew by one: k new records in the slice push k − 1 old ones out (or, with
        // none, the next old one in). Nothing else about the old records changes.
        assert_eq!(
            left,
            (new_held - 1).max(0),
            "{held_before:?} -> {held_after:?}"
        );
        assert_eq!(joined, (1 - new_held).max(0));
    }

    #[test]
    fn repeated_prompts_are_held_out_together_or_not_at_all() {
        let l = limits();
        let mut hashes = prompts(400, "d"); // target 20
                                            // Ten copies of the lowest-ranked prompt: they take 10 of the 20 places together.
        let lowest = *hashes.iter().min().unwrap();
        hashes.extend(std::iter::repeat_n(lowest, 9)); // 409 records → target 20
        let s = select_held_out(&hashes, &l);
        let held = &slice(&s).indices;
        assert_eq!(held.len(), 20);
        let copies = hashes.iter().filter(|h| **h == lowest).count();
        assert_eq!(copies, 10);
        assert_eq!(held.iter().filter(|&&i| hashes[i] == lowest).count(), 10);
        // No held-out prompt is also in training.
        for (i, h) in hashes.iter().enumerate() {
            if !slice(&s).contains(i) {
                assert!(held.iter().all(|&j| hashes[j] != *h));
            }
        }
    }

    #[test]
    fn one_prompt_everywhere_leaves_no_slice() {
        let l = limits();
        let hashes = vec![prompt_hash("same"); 500]; // target 25, one group of 500: never fits
        let h = select_held_out(&hashes, &l);
        assert_eq!(
            h,
            HeldOut::Skipped(SkipReason::RepeatedPrompts {
                total: 500,
                distinct_held_out: 0,
                min_held_out: 20
            })
        );
        assert!(h.slice().is_none());
        let HeldOut::Skipped(r) = h else {
            unreachable!()
        };
        assert!(r.to_string().contains("only 0 records could be held out"));
    }

    #[test]
    fn serializes_with_a_kind_tag() {
        let h = select_held_out(&prompts(110, "e"), &limits());
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["kind"], "skipped");
        assert_eq!(v["reason"], "tooFewRecords");
        assert_eq!(v["minTraining"], 100);
    }
}
