//! The preflight: a streaming count over invocation-log files of what a distillation job would train
//! on. Fed one file at a time (its name and a `Read` of the gzipped object); never fails on bad data:
//! a corrupt or truncated file is reported and skipped. Counting rules: docs/invocation-logs.md.
//!
//! Memory is bounded whatever the volume: lines are streamed (one line in memory, at most
//! [`MAX_LINE_BYTES`]); distinct prompts are 64-bit hashes, at most [`DISTINCT_PROMPT_CAP`] of them
//! (about 16 bytes each in the set); the listed skips, models and days are capped.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader, ErrorKind, Read};

use serde::Serialize;

use super::filter::MetadataFilter;
use super::record::{same_model, Ineligible, LineError, LogRecord, Prompt};

/// The longest log line read; a longer one is skipped and reported. Bedrock offloads bodies over
/// 100 KB to S3, so a real record stays far below this; the cap only bounds memory.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// How many distinct prompt hashes are remembered (about 16 MiB). Bedrock takes at most 15,000
/// records per job, so past this the count is reported as "at least".
pub const DISTINCT_PROMPT_CAP: usize = 1 << 20;
/// How many skips are listed with their file and line (all are counted).
pub const MAX_LISTED_SKIPS: usize = 1000;
/// How many models and days are counted apart; the rest are counted under "other".
pub const MAX_GROUPS: usize = 1000;
const OTHER: &str = "other";
/// Read buffer over the decompressed stream.
const READ_BUFFER_BYTES: usize = 256 * 1024;

/// What the preflight counts as eligible.
#[derive(Debug, Clone, Default)]
pub struct PreflightOptions {
    pub filter: Option<MetadataFilter>,
    /// The teacher the job uses; with `use_prompt_response` a record must come from it.
    pub teacher: Option<String>,
    /// Train on the logged responses (Bedrock's `usePromptResponse`): a record must come from the
    /// teacher and carry a response. Without it only the prompt is used, even from a failed call.
    pub use_prompt_response: bool,
}

/// A record the job would train on, handed to a sink as it is found.
#[derive(Debug)]
pub struct Eligible<'a> {
    pub prompt: Prompt,
    /// The logged response (always present with `use_prompt_response`; else when the call had one).
    pub response: Option<String>,
    pub model_id: &'a str,
    pub timestamp: Option<&'a str>,
    pub prompt_hash: u64,
}

/// A file, or a line in it, that was not counted, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub file: String,
    /// The 1-based line, when the problem is one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub reason: String,
}

/// Matched and eligible records of one model or day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GroupCounts {
    pub matched: u64,
    pub eligible: u64,
}

/// How a file ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOutcome {
    /// Every line was read (some may have been skipped).
    Read,
    /// The gzip stream ended early: the complete lines were counted, the partial last one skipped.
    Truncated,
    /// Not a readable gzip stream: nothing from it was counted.
    Corrupt,
}

/// The preflight's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PreflightReport {
    /// Log files read (including truncated ones; corrupt ones are in `skipped_files`).
    pub files: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Lines that parse as JSON objects.
    pub scanned: u64,
    /// Invocation records that pass the filter (all of them without a filter).
    pub matched: u64,
    /// Matched records the job can train on.
    pub eligible: u64,
    /// Distinct prompts among the eligible records.
    pub distinct_prompts: u64,
    /// `distinct_prompts` stopped counting at the cap: the true figure is at least this.
    pub distinct_prompts_capped: bool,
    /// Eligible records whose call also carried a response (the labelled examples a
    /// `usePromptResponse` job would use).
    pub with_response: u64,
    /// Bytes of prompt text (system + user) over the eligible records.
    pub prompt_bytes: u64,
    /// Matched records that are not eligible, by reason.
    pub ineligible: BTreeMap<String, u64>,
    pub by_model: BTreeMap<String, GroupCounts>,
    /// By the UTC day of the record's timestamp (or of its hour folder when it has none).
    pub by_day: BTreeMap<String, GroupCounts>,
    /// Files and lines not counted, with why (the first [`MAX_LISTED_SKIPS`]).
    pub skipped_files: Vec<Skip>,
    /// All skips, listed or not.
    pub skipped_total: u64,
}

/// The identity hash for keys that are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type HashSet64 = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

/// Counts of one file, merged into the totals only once the file has been read (a corrupt file
/// must contribute nothing, and its corruption may show only at its end).
#[derive(Default)]
struct FileTally {
    bytes: u64,
    scanned: u64,
    matched: u64,
    eligible: u64,
    with_response: u64,
    prompt_bytes: u64,
    ineligible: BTreeMap<Ineligible, u64>,
    by_model: BTreeMap<String, GroupCounts>,
    by_day: BTreeMap<String, GroupCounts>,
    hashes: Vec<u64>,
    skips: Vec<Skip>,
}

/// The streaming accumulator.
pub struct Preflight {
    options: PreflightOptions,
    report: PreflightReport,
    distinct: HashSet64,
    line: Vec<u8>,
}

impl Preflight {
    pub fn new(options: PreflightOptions) -> Self {
        Preflight {
            options,
            report: PreflightReport::default(),
            distinct: HashSet64::default(),
            line: Vec::new(),
        }
    }

    pub fn options(&self) -> &PreflightOptions {
        &self.options
    }

    /// The counts so far.
    pub fn report(&self) -> &PreflightReport {
        &self.report
    }

    pub fn finish(self) -> PreflightReport {
        self.report
    }

    /// Records a file that could not be read at all (a failed GET, an unreadable local file).
    pub fn skip_file(&mut self, file: &str, reason: impl Into<String>) {
        self.push_skip(Skip {
            file: file.to_string(),
            line: None,
            reason: reason.into(),
        });
    }

    fn push_skip(&mut self, skip: Skip) {
        self.report.skipped_total += 1;
        if self.report.skipped_files.len() < MAX_LISTED_SKIPS {
            self.report.skipped_files.push(skip);
        }
    }

    /// Reads one gzipped log file. `hour_day` is the `YYYY-MM-DD` of its hour folder, the day of
    /// records without a timestamp.
    pub fn add_file<R: Read>(&mut self, file: &str, hour_day: &str, gzipped: R) -> FileOutcome {
        self.add_file_with(file, hour_day, gzipped, |_| {})
    }

    /// [`Preflight::add_file`], handing each eligible record to `sink` as it is found. When the
    /// outcome is [`FileOutcome::Corrupt`] the records already handed over must be dropped.
    pub fn add_file_with<R: Read>(
        &mut self,
        file: &str,
        hour_day: &str,
        gzipped: R,
        mut sink: impl FnMut(Eligible<'_>),
    ) -> FileOutcome {
        let decoder = flate2::read::MultiGzDecoder::new(gzipped);
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, decoder);
        let mut tally = FileTally::default();
        let mut line = std::mem::take(&mut self.line);
        let mut number = 0u64;
        let outcome = loop {
            line.clear();
            let read = read_line(&mut reader, &mut line, MAX_LINE_BYTES);
            match read {
                Ok(None) => break FileOutcome::Read,
                Ok(Some(info)) => {
                    number += 1;
                    tally.bytes += info.bytes;
                    if info.too_long {
                        tally.skips.push(Skip {
                            file: file.to_string(),
                            line: Some(number),
                            reason: format!(
                                "line longer than {} MiB: skipped",
                                MAX_LINE_BYTES / (1024 * 1024)
                            ),
                        });
                        continue;
                    }
                    self.count_line(
                        &mut tally,
                        file,
                        number,
                        &line,
                        info.newline,
                        hour_day,
                        &mut sink,
                    );
                }
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    // The stream stops mid-way: what was complete counts, the partial line does not.
                    number += 1;
                    tally.skips.push(Skip {
                        file: file.to_string(),
                        line: Some(number),
                        reason: "the gzip stream ends early (truncated file): the partial last line is skipped".into(),
                    });
                    break FileOutcome::Truncated;
                }
                Err(e) => {
                    self.line = line;
                    self.push_skip(Skip {
                        file: file.to_string(),
                        line: None,
                        reason: format!("cannot be read as gzip ({e}): nothing from it is counted"),
                    });
                    return FileOutcome::Corrupt;
                }
            }
        };
        self.line = line;
        self.merge(tally);
        outcome
    }

    #[allow(clippy::too_many_arguments)]
    fn count_line(
        &self,
        tally: &mut FileTally,
        file: &str,
        number: u64,
        line: &[u8],
        newline: bool,
        hour_day: &str,
        sink: &mut impl FnMut(Eligible<'_>),
    ) {
        let line = trim_line(line);
        if line.is_empty() {
            return;
        }
        let record = match LogRecord::parse(line) {
            Ok(r) => r,
            Err(LineError::NotJson(e)) => {
                let reason = if newline {
                    format!("not JSON ({e}): skipped")
                } else {
                    "the last line is incomplete (truncated file): skipped".to_string()
                };
                tally.skips.push(Skip {
                    file: file.to_string(),
                    line: Some(number),
                    reason,
                });
                return;
            }
            Err(LineError::NotAnObject) => {
                tally.skips.push(Skip {
                    file: file.to_string(),
                    line: Some(number),
                    reason: "not a JSON object: skipped".into(),
                });
                return;
            }
            Err(LineError::BadFields(e)) => {
                // A JSON object, so scanned, but not a record we can read.
                tally.scanned += 1;
                tally.skips.push(Skip {
                    file: file.to_string(),
                    line: Some(number),
                    reason: format!("not an invocation record ({e}): skipped"),
                });
                return;
            }
        };
        tally.scanned += 1;
        if !record.is_invocation {
            return;
        }
        if let Some(f) = &self.options.filter {
            if !f.matches(record.metadata.as_slice()) {
                return;
            }
        }
        tally.matched += 1;
        let model = record.model_id().to_string();
        let day = record.day().unwrap_or(hour_day).to_string();
        group(&mut tally.by_model, &model).matched += 1;
        group(&mut tally.by_day, &day).matched += 1;

        match self.eligibility(&record) {
            Ok((prompt, response)) => {
                tally.eligible += 1;
                group(&mut tally.by_model, &model).eligible += 1;
                group(&mut tally.by_day, &day).eligible += 1;
                tally.prompt_bytes += prompt.text_bytes() as u64;
                if response.is_some() {
                    tally.with_response += 1;
                }
                let hash = prompt.hash();
                tally.hashes.push(hash);
                sink(Eligible {
                    prompt,
                    response,
                    model_id: &model,
                    timestamp: record.timestamp.as_deref(),
                    prompt_hash: hash,
                });
            }
            Err(reason) => *tally.ineligible.entry(reason).or_default() += 1,
        }
    }

    /// The prompt (and response) a matched record contributes, or why it contributes nothing.
    fn eligibility(&self, record: &LogRecord<'_>) -> Result<(Prompt, Option<String>), Ineligible> {
        if self.options.use_prompt_response {
            if let Some(teacher) = &self.options.teacher {
                if !same_model(record.model_id(), teacher) {
                    return Err(Ineligible::NotTeacher);
                }
            }
            let prompt = record.prompt()?;
            let response = record.response().ok_or(Ineligible::NoResponse)?;
            Ok((prompt, Some(response)))
        } else {
            let prompt = record.prompt()?;
            Ok((prompt, record.response()))
        }
    }

    fn merge(&mut self, tally: FileTally) {
        let r = &mut self.report;
        r.files += 1;
        r.bytes += tally.bytes;
        r.scanned += tally.scanned;
        r.matched += tally.matched;
        r.eligible += tally.eligible;
        r.with_response += tally.with_response;
        r.prompt_bytes += tally.prompt_bytes;
        for (reason, n) in tally.ineligible {
            *r.ineligible.entry(reason.as_str().to_string()).or_default() += n;
        }
        for (k, c) in tally.by_model {
            add_group(&mut r.by_model, k, c);
        }
        for (k, c) in tally.by_day {
            add_group(&mut r.by_day, k, c);
        }
        for h in tally.hashes {
            if self.distinct.len() >= DISTINCT_PROMPT_CAP && !self.distinct.contains(&h) {
                r.distinct_prompts_capped = true;
                continue;
            }
            self.distinct.insert(h);
        }
        r.distinct_prompts = self.distinct.len() as u64;
        for s in tally.skips {
            self.push_skip(s);
        }
    }
}

fn group<'m>(map: &'m mut BTreeMap<String, GroupCounts>, key: &str) -> &'m mut GroupCounts {
    if !map.contains_key(key) {
        map.insert(key.to_string(), GroupCounts::default());
    }
    map.get_mut(key).expect("inserted above")
}

fn add_group(map: &mut BTreeMap<String, GroupCounts>, key: String, c: GroupCounts) {
    let key = if map.len() >= MAX_GROUPS && !map.contains_key(&key) {
        OTHER.to_string()
    } else {
        key
    };
    let g = map.entry(key).or_default();
    g.matched += c.matched;
    g.eligible += c.eligible;
}

/// Drops a trailing `\r` and surrounding ASCII whitespace.
fn trim_line(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

struct LineInfo {
    /// Bytes the line took in the stream (with its newline).
    bytes: u64,
    /// The line ended with `\n` (a last line without one may be truncated).
    newline: bool,
    /// The line was longer than the cap; `buf` holds only its start.
    too_long: bool,
}

/// Reads one line into `buf` (without the `\n`), keeping at most `max` bytes of it; `None` at the end.
fn read_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<LineInfo>> {
    let mut info = LineInfo {
        bytes: 0,
        newline: false,
        too_long: false,
    };
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((info.bytes > 0).then_some(info));
        }
        let (take, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let content = if done {
            &chunk[..take - 1]
        } else {
            &chunk[..take]
        };
        if !info.too_long {
            if buf.len() + content.len() > max {
                info.too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(content);
            }
        }
        info.bytes += take as u64;
        reader.consume(take);
        if done {
            info.newline = true;
            return Ok(Some(info));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use serde_json::{json, Value};
    use std::io::Write;

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    fn record(model: &str, user: &str, meta: Value, answer: Option<&str>) -> String {
        let mut v = json!({
            "schemaType": "ModelInvocationLog",
            "timestamp": "2026-11-28T10:00:00Z",
            "operation": "Converse",
            "modelId": model,
            "requestMetadata": meta,
            "input": {"inputBodyJson": {"messages": [{"role": "user", "content": [{"text": user}]}]}},
        });
        match answer {
            Some(a) => {
                v["output"] = json!({"outputBodyJson": {"output": {"message": {"role": "assistant", "content": [{"text": a}]}}}})
            }
            None => v["errorCode"] = json!("ThrottlingException"),
        }
        v.to_string()
    }

    fn lines(records: &[String]) -> Vec<u8> {
        let mut s = records.join("\n");
        s.push('\n');
        s.into_bytes()
    }

    const PRO: &str = "amazon.nova-pro-v1:0";
    const LITE: &str = "amazon.nova-lite-v1:0";

    fn sample() -> Vec<String> {
        vec![
            record(PRO, "a", json!({"team": "support"}), Some("A")),
            record(PRO, "a", json!({"team": "support"}), Some("A again")),
            record(LITE, "b", json!({"team": "support"}), Some("B")),
            record(PRO, "c", json!({"team": "sales"}), Some("C")),
            record(PRO, "d", json!({"team": "support"}), None),
        ]
    }

    #[test]
    fn counts_prompt_only() {
        let mut p = Preflight::new(PreflightOptions {
            filter: Some(MetadataFilter::parse(r#"{"equals":{"team":"support"}}"#).unwrap()),
            ..Default::default()
        });
        assert_eq!(
            p.add_file("f1", "2026-11-28", &gz(&lines(&sample()))[..]),
            FileOutcome::Read
        );
        let r = p.finish();
        assert_eq!((r.files, r.scanned, r.matched, r.eligible), (1, 5, 4, 4));
        // "a" twice, "b", "d" (the failed call still contributes its prompt).
        assert_eq!(r.distinct_prompts, 3);
        assert_eq!(r.with_response, 3);
        assert_eq!(
            r.by_model[PRO],
            GroupCounts {
                matched: 3,
                eligible: 3
            }
        );
        assert_eq!(
            r.by_model[LITE],
            GroupCounts {
                matched: 1,
                eligible: 1
            }
        );
        assert_eq!(r.by_day["2026-11-28"].eligible, 4);
        assert!(r.skipped_files.is_empty());
    }

    #[test]
    fn counts_prompt_response_from_the_teacher_only() {
        let mut p = Preflight::new(PreflightOptions {
            filter: None,
            teacher: Some(
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0".into(),
            ),
            use_prompt_response: true,
        });
        let mut seen = Vec::new();
        p.add_file_with("f1", "2026-11-28", &gz(&lines(&sample()))[..], |e| {
            seen.push((e.prompt.user.clone(), e.response.clone().unwrap()))
        });
        let r = p.finish();
        assert_eq!(
            (r.scanned, r.matched, r.eligible, r.distinct_prompts),
            (5, 5, 3, 2)
        );
        assert_eq!(r.ineligible["not_teacher"], 1);
        assert_eq!(r.ineligible["no_response"], 1);
        assert_eq!(seen[2], ("c".to_string(), "C".to_string()));
    }

    #[test]
    fn a_truncated_last_line_is_skipped_and_reported() {
        let mut text = lines(&sample()[..2]);
        let partial = record(PRO, "zzz", json!({}), Some("Z"));
        text.extend_from_slice(&partial.as_bytes()[..partial.len() / 2]);
        let mut p = Preflight::new(PreflightOptions::default());
        assert_eq!(p.add_file("f1", "d", &gz(&text)[..]), FileOutcome::Read);
        let r = p.finish();
        assert_eq!(r.scanned, 2);
        assert_eq!(r.skipped_files.len(), 1);
        assert_eq!(r.skipped_files[0].line, Some(3));
        assert!(
            r.skipped_files[0].reason.contains("incomplete"),
            "{:?}",
            r.skipped_files
        );
    }

    #[test]
    fn a_cut_gzip_stream_keeps_its_complete_lines() {
        let text = lines(&sample());
        let whole = gz(&text);
        let cut = &whole[..whole.len() - 20];
        let mut p = Preflight::new(PreflightOptions::default());
        assert_eq!(p.add_file("f1", "d", cut), FileOutcome::Truncated);
        let r = p.finish();
        assert!(r.scanned >= 1 && r.scanned <= 5, "{}", r.scanned);
        assert_eq!(r.files, 1);
        assert!(r.skipped_files[0].reason.contains("ends early"));
    }

    #[test]
    fn a_corrupt_gzip_contributes_nothing() {
        let mut p = Preflight::new(PreflightOptions::default());
        p.add_file("good", "d", &gz(&lines(&sample()))[..]);
        assert_eq!(
            p.add_file("bad", "d", &b"this is not gzip at all"[..]),
            FileOutcome::Corrupt
        );
        // A valid header but a damaged body: corruption shows up mid-stream, after lines were read.
        let mut damaged = gz(&lines(&sample()));
        let n = damaged.len();
        damaged[n - 6] ^= 0xff; // the CRC/size trailer
        assert_eq!(
            p.add_file("damaged", "d", &damaged[..]),
            FileOutcome::Corrupt
        );
        let r = p.finish();
        assert_eq!((r.files, r.scanned, r.distinct_prompts), (1, 5, 4));
        let names: Vec<&str> = r.skipped_files.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(names, ["bad", "damaged"]);
        assert!(r.skipped_files[0].reason.contains("cannot be read as gzip"));
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let text = format!(
            "{}\nnot json\n[1]\n\n{{\"modelId\": 5}}\n{}\n",
            record(PRO, "a", json!({}), Some("A")),
            record(PRO, "b", json!({}), Some("B"))
        );
        let mut p = Preflight::new(PreflightOptions::default());
        p.add_file("f", "d", &gz(text.as_bytes())[..]);
        let r = p.finish();
        // Two records and the object with a bad field.
        assert_eq!((r.scanned, r.matched, r.eligible), (3, 2, 2));
        let lines: Vec<Option<u64>> = r.skipped_files.iter().map(|s| s.line).collect();
        assert_eq!(lines, [Some(2), Some(3), Some(5)]);
    }

    #[test]
    fn over_long_lines_are_skipped_in_bounded_memory() {
        let long = format!("{{\"x\": \"{}\"}}", "a".repeat(MAX_LINE_BYTES + 10));
        let text = format!("{long}\n{}\n", record(PRO, "a", json!({}), Some("A")));
        let mut p = Preflight::new(PreflightOptions::default());
        p.add_file("f", "d", &gz(text.as_bytes())[..]);
        assert!(p.line.capacity() <= MAX_LINE_BYTES * 2);
        let r = p.finish();
        assert_eq!(r.scanned, 1);
        assert!(r.skipped_files[0].reason.contains("longer than 4 MiB"));
        assert_eq!(r.skipped_files[0].line, Some(1));
    }

    #[test]
    fn records_without_a_timestamp_count_on_their_folder_day() {
        let mut v: Value = serde_json::from_str(&record(PRO, "a", json!({}), Some("A"))).unwrap();
        v.as_object_mut().unwrap().remove("timestamp");
        let mut p = Preflight::new(PreflightOptions::default());
        p.add_file("f", "2026-01-02", &gz(format!("{v}\n").as_bytes())[..]);
        assert_eq!(p.finish().by_day["2026-01-02"].eligible, 1);
    }
}
