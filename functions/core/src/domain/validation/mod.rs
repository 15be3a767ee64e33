//! Streaming dataset validation for `bedrock-conversation-2024` JSONL. (Issue 2.)
//!
//! Public API (other modules code against exactly this):
//! - [`ValidationOptions`]: what to check (multi-turn allowed, limits), built from the catalog with
//!   [`ValidationOptions::for_student`].
//! - [`DatasetValidator`]: incremental; [`DatasetValidator::push_line`] per line (or
//!   [`DatasetValidator::push_bytes`] per chunk of a file), [`DatasetValidator::finish`] for the report.
//!   Memory is bounded: one line at most `maxLineBytes` long, plus 64-bit hashes of prompts.
//! - [`validate_reader`]: drives it from any `std::io::Read`.
//! - Async sources (the S3 body) push their chunks into [`DatasetValidator`] themselves: see
//!   `app::validate_dataset::validate_chunks`. The engine does no I/O of its own.
//! - [`ValidationReport`]: serialisable; `valid`, `records`, `invalid_records`, `errors`, `error_count`,
//!   `warnings`, `warning_count`, `stats`.
//!
//! The rules and codes are documented in `docs/validation.md`.

mod markers;
mod prompt_hash;
mod record;
mod rules;

pub(crate) use prompt_hash::PromptHasher;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::domain::catalog::{DatasetLimits, Limits, ModelCatalog};
use crate::domain::run::ValidationSummary;

/// The only schema version Bedrock accepts.
pub const SCHEMA_VERSION: &str = "bedrock-conversation-2024";

/// Strings Amazon Nova treats as reserved inside text; a record containing one gets a warning.
pub const RESERVED_MARKERS: [&str; 7] = [
    "User:",
    "Bot:",
    "Assistant:",
    "System:",
    "<image>",
    "<video>",
    "[EOS]",
];

/// Size of the read buffer the drivers use. Lines longer than this are assembled in a separate buffer
/// (capped at `maxLineBytes`), so this only trades syscalls against cache footprint.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;

/// How many distinct prompts duplicate detection remembers. A memory bound, not a Bedrock limit: 2^18
/// hashes (about 6 MiB) is 17 times Bedrock's record maximum, so any dataset Bedrock would accept is fully
/// covered; past it the dataset is already invalid for having too many records.
pub const DUPLICATE_TRACKING_CAP: usize = 1 << 18;

/// Bytes of UTF-8 text per estimated token (see `docs/validation.md`).
pub const BYTES_PER_TOKEN: u64 = 4;

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Accept records with more than one user turn (Amazon Nova students only).
    pub allow_multi_turn: bool,
    /// The student the dataset is for, when known; named in messages.
    pub student: Option<String>,
    pub limits: DatasetLimits,
}

impl ValidationOptions {
    /// Options for a dataset meant for `student` (or for no student in particular: single-turn, the
    /// stricter rule). Multi-turn is allowed only when the catalog marks the student `multiTurn`.
    pub fn for_student(catalog: &ModelCatalog, student: Option<&str>, limits: &Limits) -> Self {
        ValidationOptions {
            allow_multi_turn: student.is_some_and(|s| catalog.allows_multi_turn(s)),
            student: student.map(str::to_owned),
            limits: limits.dataset.clone(),
        }
    }
}

/// A stable, machine-readable problem code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    // Errors on a line.
    InvalidUtf8,
    ByteOrderMark,
    LineTooLong,
    BlankLine,
    InvalidJson,
    NotAnObject,
    MissingKey,
    UnknownKey,
    DuplicateKey,
    SchemaVersion,
    InvalidSystem,
    InvalidMessages,
    InvalidRole,
    RoleOrder,
    InvalidContent,
    EmptyPrompt,
    MultiTurn,
    // Errors on the whole dataset.
    TooFewRecords,
    TooManyRecords,
    DatasetTooLarge,
    // Warnings.
    DuplicatePrompt,
    ReservedMarker,
    LongRecord,
    EmptyResponse,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidUtf8 => "invalid_utf8",
            Code::ByteOrderMark => "byte_order_mark",
            Code::LineTooLong => "line_too_long",
            Code::BlankLine => "blank_line",
            Code::InvalidJson => "invalid_json",
            Code::NotAnObject => "not_an_object",
            Code::MissingKey => "missing_key",
            Code::UnknownKey => "unknown_key",
            Code::DuplicateKey => "duplicate_key",
            Code::SchemaVersion => "schema_version",
            Code::InvalidSystem => "invalid_system",
            Code::InvalidMessages => "invalid_messages",
            Code::InvalidRole => "invalid_role",
            Code::RoleOrder => "role_order",
            Code::InvalidContent => "invalid_content",
            Code::EmptyPrompt => "empty_prompt",
            Code::MultiTurn => "multi_turn",
            Code::TooFewRecords => "too_few_records",
            Code::TooManyRecords => "too_many_records",
            Code::DatasetTooLarge => "dataset_too_large",
            Code::DuplicatePrompt => "duplicate_prompt",
            Code::ReservedMarker => "reserved_marker",
            Code::LongRecord => "long_record",
            Code::EmptyResponse => "empty_response",
        }
    }
}

impl Code {
    /// A fixed reason for the code, with nothing from the record (see [`Finding::public_line`]).
    pub fn reason(self) -> &'static str {
        match self {
            Code::InvalidUtf8 => "the line is not valid UTF-8",
            Code::ByteOrderMark => "the line starts with a UTF-8 byte order mark",
            Code::LineTooLong => "the line is longer than the limit",
            Code::BlankLine => "blank line",
            Code::InvalidJson => "the line is not valid JSON",
            Code::NotAnObject => "the line is not a JSON object",
            Code::MissingKey => "a required key is missing",
            Code::UnknownKey => "a key that is not part of the format",
            Code::DuplicateKey => "the key appears more than once",
            Code::SchemaVersion => "schemaVersion must be \"bedrock-conversation-2024\"",
            Code::InvalidSystem => "system must hold one {\"text\": string} object",
            Code::InvalidMessages => {
                "messages must be a non-empty array of {role, content} objects"
            }
            Code::InvalidRole => "role must be \"user\" or \"assistant\"",
            Code::RoleOrder => "roles must alternate, starting with user",
            Code::InvalidContent => "content must hold one {\"text\": string} object",
            Code::EmptyPrompt => "the user prompt is empty",
            Code::MultiTurn => "the student takes single-turn records only",
            Code::TooFewRecords => "too few records",
            Code::TooManyRecords => "too many records",
            Code::DatasetTooLarge => "the dataset is too large",
            Code::DuplicatePrompt => "the prompt repeats an earlier one",
            Code::ReservedMarker => "the text holds a marker Amazon Nova reserves",
            Code::LongRecord => "the record is unusually long",
            Code::EmptyResponse => "the assistant response is empty",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error or warning. `line` is 1-based; `None` for a finding about the whole dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub line: Option<u64>,
    pub code: Code,
    /// Where in the record (`messages[1].role`, `system[0].text`), when the rule is about one
    /// field; never a value from the record (an unknown key is reported at its parent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The full explanation. It may quote a short piece of the record (a wrong role, an unknown
    /// key), so it goes to the report in S3 and to `distillery validate`, never to the run record
    /// or messages: those get [`Finding::public_line`].
    pub message: String,
}

impl Finding {
    /// "line N: [code] field: reason", with the code's fixed reason ([`Code::reason`]) instead of
    /// the message, so nothing of the record leaves the report: this is what the run record's
    /// `firstErrors` and the milestone messages carry. A finding about the whole dataset keeps its
    /// message, which is built from counts and limits only.
    pub fn public_line(&self) -> String {
        match (self.line, &self.field) {
            (Some(n), Some(field)) => {
                format!("line {n}: [{}] {field}: {}", self.code, self.code.reason())
            }
            (Some(n), None) => format!("line {n}: [{}] {}", self.code, self.code.reason()),
            (None, _) => self.to_string(),
        }
    }
}

impl std::fmt::Display for Finding {
    /// "line N: [code] message", or "dataset: [code] message".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(n) => write!(f, "line {n}: [{}] {}", self.code, self.message),
            None => write!(f, "dataset: [{}] {}", self.code, self.message),
        }
    }
}

/// Figures about the dataset. Content figures (labelled, tokens, ...) count valid records only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Bytes read, newlines included.
    pub bytes: u64,
    pub longest_line_bytes: u64,
    /// Valid records ending with an assistant message (a golden response).
    pub labelled: u64,
    /// Valid records ending with a user message (the teacher writes the response).
    pub unlabelled: u64,
    /// Valid records with more than one user turn.
    pub multi_turn: u64,
    pub with_system_prompt: u64,
    /// Valid records whose prompt repeats an earlier one.
    pub duplicate_prompts: u64,
    /// Estimated tokens of the input (system + every message but a final assistant one).
    pub estimated_input_tokens: u64,
    /// Estimated tokens of the golden responses (the final assistant messages).
    pub estimated_output_tokens: u64,
    /// The largest estimated input + output of one record.
    pub max_record_estimated_tokens: u64,
}

/// The verdict on a dataset. Errors and warnings are capped (`maxReportedErrors`,
/// `maxReportedWarnings`); `error_count` and `warning_count` keep the full totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub valid: bool,
    /// Lines in the file (each line is meant to be one record), blank and invalid ones included.
    pub records: u64,
    pub invalid_records: u64,
    /// Dataset-level errors first, then line errors in line order.
    pub errors: Vec<Finding>,
    pub error_count: u64,
    pub warnings: Vec<Finding>,
    pub warning_count: u64,
    pub stats: DatasetStats,
}

impl ValidationReport {
    /// The first `n` errors as "line N: [code] field: reason" (what the run ledger and messages
    /// keep: [`Finding::public_line`], nothing of the records; the full messages stay in the report).
    pub fn first_errors(&self, n: usize) -> Vec<String> {
        self.errors
            .iter()
            .take(n)
            .map(Finding::public_line)
            .collect()
    }

    /// The summary kept on the run record; `report_uri` is filled in by whoever stores the report.
    pub fn summary(&self, first_errors: usize) -> ValidationSummary {
        ValidationSummary {
            valid: self.valid,
            records: self.records,
            invalid_records: self.invalid_records,
            error_count: self.error_count,
            warning_count: self.warning_count,
            first_errors: self.first_errors(first_errors),
            report_uri: None,
            cost_estimate: None,
        }
    }

    /// Whether some errors were counted but not listed (the cap was reached).
    pub fn errors_truncated(&self) -> bool {
        self.error_count > self.errors.len() as u64
    }
}

/// The prompt hashes are already uniformly distributed 64-bit values; hashing them again is waste.
#[derive(Default)]
struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `HashMap<u64, _>`; fold anything else in for correctness.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Incremental validator: feed it lines or chunks, then call [`DatasetValidator::finish`].
pub struct DatasetValidator {
    options: ValidationOptions,
    /// Lines seen so far (the number of the line being checked).
    line: u64,
    invalid_records: u64,
    /// Whether the current line already has an error (so it is counted invalid once).
    line_invalid: bool,
    errors: Vec<Finding>,
    error_count: u64,
    warnings: Vec<Finding>,
    warning_count: u64,
    stats: DatasetStats,
    /// Prompt hash → first line it appeared on.
    seen_prompts: HashMap<u64, u64, BuildHasherDefault<PassThroughHasher>>,
    /// The start of a line split across chunks (never more than `maxLineBytes`).
    carry: Vec<u8>,
    /// Length so far of an over-long line being skipped, if any.
    skipping: Option<u64>,
    /// One prompt hash per valid record, in order, when asked for (the quality gate's held-out
    /// slice, `evaluation::select_held_out`); `None` otherwise, so the usual path stores nothing.
    prompt_hashes: Option<Vec<u64>>,
}

impl DatasetValidator {
    pub fn new(options: ValidationOptions) -> Self {
        DatasetValidator {
            options,
            line: 0,
            invalid_records: 0,
            line_invalid: false,
            errors: Vec::new(),
            error_count: 0,
            warnings: Vec::new(),
            warning_count: 0,
            stats: DatasetStats::default(),
            seen_prompts: HashMap::default(),
            carry: Vec::new(),
            skipping: None,
            prompt_hashes: None,
        }
    }

    /// Also keep each valid record's prompt hash (the duplicate detection's 64-bit identity of the
    /// system text and every turn before a final assistant answer), returned by
    /// [`DatasetValidator::finish_with_prompt_hashes`]: 8 bytes per record. For a valid dataset there
    /// is exactly one per record, in record order.
    pub fn collect_prompt_hashes(&mut self) {
        self.prompt_hashes.get_or_insert_with(Vec::new);
    }

    pub fn options(&self) -> &ValidationOptions {
        &self.options
    }

    /// Lines checked so far.
    pub fn lines_seen(&self) -> u64 {
        self.line
    }

    /// Bytes held for a line split across chunks: what the validator buffers beyond the caller's chunk.
    /// Never more than `maxLineBytes` (an over-long line is skipped, not buffered).
    pub fn buffered_capacity(&self) -> usize {
        self.carry.capacity()
    }

    /// Checks one complete line, given without its `\n` (a trailing `\r` is allowed and ignored).
    pub fn push_line(&mut self, line: &[u8]) {
        self.stats.bytes += line.len() as u64 + 1;
        self.check_line(line);
    }

    /// Feeds the next chunk of a file; lines may span chunks. Call [`DatasetValidator::finish`] at the
    /// end so a last line without a newline is checked too.
    pub fn push_bytes(&mut self, mut chunk: &[u8]) {
        self.stats.bytes += chunk.len() as u64;
        let max = self.max_line_bytes();
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let (head, rest) = (&chunk[..nl], &chunk[nl + 1..]);
            chunk = rest;
            if let Some(skipped) = self.skipping.take() {
                self.over_long_line(skipped + head.len() as u64);
            } else if self.carry.is_empty() {
                self.check_line(head);
            } else if self.carry.len() + head.len() > max {
                let len = (self.carry.len() + head.len()) as u64;
                self.carry.clear();
                self.over_long_line(len);
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(head);
                self.check_line(&line);
                line.clear();
                self.carry = line;
            }
        }
        if chunk.is_empty() {
            return;
        }
        // A partial line: keep it unless it is already too long, in which case only count it.
        if let Some(skipped) = self.skipping.as_mut() {
            *skipped += chunk.len() as u64;
        } else if self.carry.len() + chunk.len() > max {
            self.skipping = Some((self.carry.len() + chunk.len()) as u64);
            self.carry.clear();
        } else {
            self.carry.extend_from_slice(chunk);
        }
    }

    /// Checks the last line (if the file did not end with a newline) and the dataset-level rules.
    pub fn finish(self) -> ValidationReport {
        self.finish_with_prompt_hashes().0
    }

    /// [`DatasetValidator::finish`], with the prompt hashes when
    /// [`DatasetValidator::collect_prompt_hashes`] asked for them.
    pub fn finish_with_prompt_hashes(mut self) -> (ValidationReport, Option<Vec<u64>>) {
        if let Some(skipped) = self.skipping.take() {
            self.over_long_line(skipped);
        } else if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.check_line(&line);
        }
        let limits = &self.options.limits;
        let records = self.line;
        let mut dataset_errors = Vec::new();
        if records < limits.min_records {
            dataset_errors.push(Finding {
                line: None,
                code: Code::TooFewRecords,
                field: None,
                message: format!(
                    "the dataset has {records} records; Bedrock needs at least {}",
                    limits.min_records
                ),
            });
        }
        if records > limits.max_records {
            dataset_errors.push(Finding {
                line: None,
                code: Code::TooManyRecords,
                field: None,
                message: format!(
                    "the dataset has {records} records; Bedrock accepts at most {}",
                    limits.max_records
                ),
            });
        }
        if self.stats.bytes > limits.max_dataset_bytes {
            dataset_errors.push(Finding {
                line: None,
                code: Code::DatasetTooLarge,
                field: None,
                message: format!(
                    "the dataset is {} bytes; the limit is {} bytes ({})",
                    self.stats.bytes,
                    limits.max_dataset_bytes,
                    human_bytes(limits.max_dataset_bytes)
                ),
            });
        }
        let error_count = self.error_count + dataset_errors.len() as u64;
        dataset_errors.append(&mut self.errors);
        let report = ValidationReport {
            valid: error_count == 0,
            records,
            invalid_records: self.invalid_records,
            errors: dataset_errors,
            error_count,
            warnings: self.warnings,
            warning_count: self.warning_count,
            stats: self.stats,
        };
        (report, self.prompt_hashes)
    }

    fn max_line_bytes(&self) -> usize {
        usize::try_from(self.options.limits.max_line_bytes).unwrap_or(usize::MAX)
    }

    /// Starts the next line: numbering, per-line state, length statistics.
    fn begin_line(&mut self, len: u64) {
        self.line += 1;
        self.line_invalid = false;
        self.stats.longest_line_bytes = self.stats.longest_line_bytes.max(len);
    }

    /// A line longer than `maxLineBytes`, skipped without being buffered (`len` excludes the newline).
    fn over_long_line(&mut self, len: u64) {
        self.begin_line(len);
        self.report_too_long(len);
    }

    fn report_too_long(&mut self, len: u64) {
        let max = self.options.limits.max_line_bytes;
        self.error(Code::LineTooLong, || {
            format!(
                "the line is {len} bytes long; the limit is {max} bytes ({}); it was skipped unread",
                human_bytes(max)
            )
        });
    }

    /// Records an error on the current line, about the line as a whole; `message` is only built
    /// while under the report cap.
    fn error(&mut self, code: Code, message: impl FnOnce() -> String) {
        self.push_error(code, None::<&str>, message);
    }

    /// Records an error about `field` of the current line's record (`messages[1].role`).
    fn error_at(
        &mut self,
        code: Code,
        field: impl std::fmt::Display,
        message: impl FnOnce() -> String,
    ) {
        self.push_error(code, Some(field), message);
    }

    fn push_error(
        &mut self,
        code: Code,
        field: Option<impl std::fmt::Display>,
        message: impl FnOnce() -> String,
    ) {
        self.error_count += 1;
        if !self.line_invalid {
            self.line_invalid = true;
            self.invalid_records += 1;
        }
        if self.errors.len() < self.options.limits.max_reported_errors {
            self.errors.push(Finding {
                line: Some(self.line),
                code,
                field: field.map(|f| f.to_string()),
                message: message(),
            });
        }
    }

    fn warning(&mut self, code: Code, message: impl FnOnce() -> String) {
        self.warning_count += 1;
        if self.warnings.len() < self.options.limits.max_reported_warnings {
            self.warnings.push(Finding {
                line: Some(self.line),
                code,
                field: None,
                message: message(),
            });
        }
    }
}

/// Validates everything `reader` yields. Only I/O failures are `Err`; bad data is in the report.
pub fn validate_reader<R: Read>(
    mut reader: R,
    options: &ValidationOptions,
) -> std::io::Result<ValidationReport> {
    let mut validator = DatasetValidator::new(options.clone());
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        validator.push_bytes(&buf[..n]);
    }
    Ok(validator.finish())
}

/// "1.0 GiB", "8.0 MiB", "512 bytes".
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests;
