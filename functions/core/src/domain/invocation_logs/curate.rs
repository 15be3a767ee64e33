//! Curated retraining's choice of records (LOG_RUN_MODE=curated): of the eligible records logged
//! within the run's window, one per distinct prompt (its most recent occurrence), and of those the
//! most recent, at most Bedrock's per-job maximum.
//!
//! The choice is made in two reads of the same log files, so memory stays bounded by the cap (not by
//! the log volume): the first read offers every in-window eligible record to a [`Selection`], which
//! keeps only the (prompt hash, [`Occurrence`]) pairs that can still be chosen; the second read
//! numbers the records the same way and writes exactly the chosen occurrences, in the order they
//! were logged. Each occurrence is numbered by its place among the in-window eligible records of the
//! files read (a corrupt file's records are never numbered, in either read), so the two reads agree
//! as long as they read the same bytes (the second read is pinned to the first's ETags).

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::preflight::{PreflightReport, Skip};
use crate::domain::run::LogWindow;

/// When a record was logged, and its place in the read order (which breaks ties between records of
/// the same instant, so the choice is deterministic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Occurrence {
    pub at_ms: i64,
    pub seq: u64,
}

/// The instant a record was logged: its `timestamp` (RFC 3339), or the start of its file's hour
/// folder when it has none or it can't be read.
pub fn logged_at(timestamp: Option<&str>, hour: DateTime<Utc>) -> DateTime<Utc> {
    timestamp
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(hour)
}

/// Whether a record logged at `at` belongs to `window` (start included, end excluded, so
/// consecutive windows never read a record twice).
pub fn in_window(window: &LogWindow, at: DateTime<Utc>) -> bool {
    window.start <= at && at < window.end
}

/// Whether a log file of the hour folder starting at `hour` can hold records of `window`. A record
/// is delivered after its call, so it may sit in the folder of a later hour than its timestamp's:
/// the folder of the hour after the window's end is read too (the timestamps decide what counts).
pub fn hour_overlaps(window: &LogWindow, hour: DateTime<Utc>) -> bool {
    hour < window.end + chrono::Duration::hours(1)
        && hour + chrono::Duration::hours(1) > window.start
}

/// The most recent occurrence of each distinct prompt, the `cap` most recent of those kept.
///
/// A prompt seen again later moves to its newer occurrence. When the selection is full, a prompt
/// not in it enters only if it is newer than the oldest kept one, which leaves. What remains at the
/// end is exactly the `cap` prompts whose latest occurrences are the most recent: a prompt that
/// belongs there enters at its latest occurrence at the latest (fewer than `cap` prompts can be newer
/// than it) and never leaves (that would take `cap` prompts newer than it).
#[derive(Debug)]
pub struct Selection {
    cap: usize,
    latest: HashMap<u64, Occurrence>,
    by_age: BTreeSet<(Occurrence, u64)>,
    /// In-window eligible records offered (duplicates included).
    offered: u64,
    /// A prompt left the selection for a newer one: there were more distinct prompts than `cap`.
    capped: bool,
}

impl Selection {
    pub fn new(cap: usize) -> Self {
        Selection {
            cap: cap.max(1),
            latest: HashMap::new(),
            by_age: BTreeSet::new(),
            offered: 0,
            capped: false,
        }
    }

    /// Offers one in-window eligible record with its prompt hash.
    pub fn offer(&mut self, prompt_hash: u64, at: Occurrence) {
        self.offered += 1;
        if let Some(kept) = self.latest.get_mut(&prompt_hash) {
            if at > *kept {
                self.by_age.remove(&(*kept, prompt_hash));
                *kept = at;
                self.by_age.insert((at, prompt_hash));
            }
            return;
        }
        if self.latest.len() >= self.cap {
            self.capped = true;
            let oldest = *self.by_age.first().expect("a full selection is not empty");
            if at <= oldest.0 {
                return;
            }
            self.by_age.remove(&oldest);
            self.latest.remove(&oldest.1);
        }
        self.latest.insert(prompt_hash, at);
        self.by_age.insert((at, prompt_hash));
    }

    /// Distinct prompts chosen so far.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// More distinct prompts were offered than the cap: the oldest were left out.
    pub fn capped(&self) -> bool {
        self.capped
    }

    /// The chosen occurrences (one per prompt), for the second read.
    pub fn into_chosen(self) -> Chosen {
        Chosen {
            occurrences: self.latest.into_iter().map(|(h, o)| (o, h)).collect(),
        }
    }
}

/// The occurrences the second read writes, each with its prompt's hash.
#[derive(Debug, Default)]
pub struct Chosen {
    occurrences: HashMap<Occurrence, u64>,
}

impl Chosen {
    /// Whether the record at `at` with this prompt is chosen. The hash is checked too, so a
    /// numbering that drifted between the two reads writes nothing wrong (and the count check
    /// after the second read fails the step).
    pub fn is_chosen(&self, at: &Occurrence, prompt_hash: u64) -> bool {
        self.occurrences.get(at) == Some(&prompt_hash)
    }

    pub fn len(&self) -> usize {
        self.occurrences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.occurrences.is_empty()
    }
}

/// What a curated run read and chose: written into the run's report (the counts of the first
/// read; the files and lines skipped, capped as the preflight caps them).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CurationSummary {
    /// Log files listed under the prefix whose hour folder overlaps the window.
    pub files_in_window: u64,
    pub files_read: u64,
    pub scanned: u64,
    pub matched: u64,
    /// Eligible records in the files read (the edge hours may hold some outside the window).
    pub eligible: u64,
    /// Eligible records logged within the window, duplicates included.
    pub eligible_in_window: u64,
    /// Distinct prompts chosen: the records written (one per prompt, most recent first).
    pub selected: u64,
    /// The per-job maximum the selection was capped at, when there were more distinct prompts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capped_at: Option<u64>,
    pub use_prompt_response: bool,
    pub ineligible: std::collections::BTreeMap<String, u64>,
    pub skipped_files: Vec<Skip>,
    pub skipped_total: u64,
}

impl CurationSummary {
    pub fn new(
        files_in_window: u64,
        report: &PreflightReport,
        selection: &Selection,
        cap: u64,
        use_prompt_response: bool,
    ) -> Self {
        CurationSummary {
            files_in_window,
            files_read: report.files,
            scanned: report.scanned,
            matched: report.matched,
            eligible: report.eligible,
            eligible_in_window: selection.offered(),
            selected: selection.len() as u64,
            capped_at: selection.capped().then_some(cap),
            use_prompt_response,
            ineligible: report.ineligible.clone(),
            skipped_files: report.skipped_files.clone(),
            skipped_total: report.skipped_total,
        }
    }

    /// One line for the log and the history: "1,204 eligible records in the window, 950 distinct
    /// prompts chosen (2 files skipped)".
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} log file(s) read, {} record(s) scanned, {} matched the filter, {} eligible in the window, {} distinct prompt(s) chosen",
            self.files_read, self.scanned, self.matched, self.eligible_in_window, self.selected
        );
        if let Some(cap) = self.capped_at {
            s.push_str(&format!(" (capped at {cap}, most recent first)"));
        }
        if self.skipped_total > 0 {
            s.push_str(&format!(
                "; {} file(s) or line(s) skipped, listed in the report",
                self.skipped_total
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(at_ms: i64, seq: u64) -> Occurrence {
        Occurrence { at_ms, seq }
    }

    /// The expected choice by brute force: each prompt's latest occurrence, the `cap` newest.
    fn brute(records: &[(u64, Occurrence)], cap: usize) -> BTreeSet<Occurrence> {
        let mut latest: HashMap<u64, Occurrence> = HashMap::new();
        for (h, o) in records {
            let e = latest.entry(*h).or_insert(*o);
            if o > e {
                *e = *o;
            }
        }
        let mut all: Vec<Occurrence> = latest.into_values().collect();
        all.sort();
        all.into_iter().rev().take(cap).collect()
    }

    #[test]
    fn keeps_each_prompts_latest_occurrence() {
        let mut s = Selection::new(10);
        s.offer(1, at(100, 1));
        s.offer(2, at(50, 2));
        s.offer(1, at(300, 3));
        s.offer(1, at(200, 4)); // older than the kept one: ignored
        assert_eq!(s.len(), 2);
        assert_eq!(s.offered(), 4);
        assert!(!s.capped());
        let chosen = s.into_chosen();
        assert!(chosen.is_chosen(&at(300, 3), 1));
        assert!(chosen.is_chosen(&at(50, 2), 2));
        assert!(!chosen.is_chosen(&at(100, 1), 1));
        // The right place with another prompt is not the chosen record.
        assert!(!chosen.is_chosen(&at(300, 3), 2));
    }

    #[test]
    fn a_full_selection_keeps_the_most_recent_prompts() {
        let mut s = Selection::new(2);
        s.offer(1, at(10, 1));
        s.offer(2, at(20, 2));
        s.offer(3, at(5, 3)); // older than both: stays out
        s.offer(4, at(30, 4)); // evicts prompt 1
        s.offer(1, at(40, 5)); // prompt 1 again, newest now: evicts prompt 2
        assert!(s.capped());
        let chosen = s.into_chosen();
        assert_eq!(chosen.len(), 2);
        assert!(chosen.is_chosen(&at(30, 4), 4) && chosen.is_chosen(&at(40, 5), 1));
    }

    #[test]
    fn matches_brute_force_on_shuffled_streams() {
        // A small deterministic generator (no rand dependency): prompts repeat, timestamps jump
        // back and forth as files of different hours interleave.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for cap in [1usize, 3, 17, 100] {
            let records: Vec<(u64, Occurrence)> = (0..2000u64)
                .map(|seq| (next() % 150, at((next() % 10_000) as i64, seq)))
                .collect();
            let mut s = Selection::new(cap);
            for (h, o) in &records {
                s.offer(*h, *o);
            }
            let chosen = s.into_chosen();
            let expected = brute(&records, cap);
            assert_eq!(chosen.len(), expected.len(), "cap {cap}");
            for o in &expected {
                let hash = records.iter().find(|(_, r)| r == o).unwrap().0;
                assert!(chosen.is_chosen(o, hash), "cap {cap}: {o:?} missing");
            }
        }
    }

    #[test]
    fn windows_and_timestamps() {
        let h = |hour: u32| Utc.with_ymd_and_hms(2026, 11, 29, hour, 0, 0).unwrap();
        let w = LogWindow {
            start: h(10) + chrono::Duration::minutes(30),
            end: h(12),
        };
        assert!(!hour_overlaps(&w, h(9)));
        assert!(hour_overlaps(&w, h(10)));
        assert!(hour_overlaps(&w, h(11)));
        // Delivered late: the folder after the end may hold records of the window.
        assert!(hour_overlaps(&w, h(12)));
        assert!(!hour_overlaps(&w, h(13)));
        assert_eq!(
            logged_at(Some("2026-11-29T10:45:00Z"), h(10)),
            h(10) + chrono::Duration::minutes(45)
        );
        assert_eq!(
            logged_at(Some("2026-11-29T11:45:00+01:00"), h(0)),
            h(10) + chrono::Duration::minutes(45)
        );
        assert_eq!(logged_at(Some("yesterday"), h(10)), h(10));
        assert_eq!(logged_at(None, h(11)), h(11));
        assert!(!in_window(&w, h(10)));
        assert!(in_window(&w, w.start));
        assert!(!in_window(&w, w.end));
    }
}
