//! `distillery validate <PATH>`: the streaming validator on a local file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use distillery_core::domain::catalog::{Limits, ModelCatalog};
use distillery_core::domain::validation::{
    validate_reader, Code, ValidationOptions, ValidationReport, BYTES_PER_TOKEN,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::usage_error;

/// Files smaller than this validate in well under a second; a bar would only flicker.
const PROGRESS_MIN_BYTES: u64 = 16 * 1024 * 1024;
/// Per error kind, how many line numbers and example messages the text report shows.
const LINES_PER_KIND: usize = 10;
const EXAMPLES_PER_KIND: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A summary for people, errors grouped by kind.
    Text,
    /// One JSON object (the full report) on stdout.
    Json,
}

const VALIDATE_HELP: &str = "\
Checks every rule Bedrock applies to a distillation dataset (see docs/validation.md), streaming the
file in constant memory, and prints each error with its line number and rule code. A progress bar
shows on a terminal for files of 16 MiB and more.

Exit codes:
  0  the dataset is valid (warnings may be printed)
  1  the dataset is invalid: the errors are listed
  2  usage or I/O error: unreadable file, unknown student, bad data files (one line on stderr)

Environment:
  DISTILLERY_MODEL_PAIRS_FILE, DISTILLERY_LIMITS_FILE
      use these JSON files instead of the built-in model pairs and limits (functions/core/data/)";

#[derive(Debug, clap::Args)]
#[command(after_help = VALIDATE_HELP)]
pub struct ValidateArgs {
    /// The dataset: a local JSONL file (bedrock-conversation-2024 records, one per line).
    pub path: PathBuf,
    /// The student model id the dataset is for (e.g. amazon.nova-lite-v1:0:300k). Multi-turn records
    /// are accepted only for students the model catalog marks multi-turn (Amazon Nova). Without it the
    /// stricter single-turn rule applies.
    #[arg(long, value_name = "MODEL_ID")]
    pub student: Option<String>,
    /// Output format: `text` for people, `json` for the full report (every finding and statistic).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: ValidateArgs) -> ExitCode {
    let display = args.path.display().to_string();
    if display.starts_with("s3://") {
        return usage_error(format!(
            "{display}: S3 URIs are not supported by `validate` yet; download the object and pass the local file"
        ));
    }
    let catalog = match ModelCatalog::load() {
        Ok(c) => c,
        Err(e) => return usage_error(format!("model catalog: {e}")),
    };
    let limits = match Limits::load() {
        Ok(l) => l,
        Err(e) => return usage_error(format!("limits: {e}")),
    };
    if let Some(student) = args.student.as_deref() {
        if catalog.student(student).is_none() {
            let known: Vec<&str> = catalog.students.keys().map(String::as_str).collect();
            return usage_error(format!(
                "unknown student '{student}' (known students: {})",
                known.join(", ")
            ));
        }
    }
    let options = ValidationOptions::for_student(&catalog, args.student.as_deref(), &limits);

    let metadata = match std::fs::metadata(&args.path) {
        Ok(m) => m,
        Err(e) => return usage_error(format!("cannot read {display}: {e}")),
    };
    if metadata.is_dir() {
        return usage_error(format!("{display} is a directory; pass a JSONL file"));
    }
    let file = match File::open(&args.path) {
        Ok(f) => f,
        Err(e) => return usage_error(format!("cannot open {display}: {e}")),
    };

    let show_progress = std::io::stdout().is_terminal() && metadata.len() >= PROGRESS_MIN_BYTES;
    let result = if show_progress {
        let bar = ProgressBar::new(metadata.len());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} validating [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("the progress template is valid")
            .progress_chars("=> "),
        );
        let result = validate_reader(bar.wrap_read(file), &options);
        bar.finish_and_clear();
        result
    } else {
        validate_reader(file, &options)
    };
    let report = match result {
        Ok(r) => r,
        Err(e) => return usage_error(format!("cannot read {display}: {e}")),
    };

    let output = match args.format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&report).expect("the report serialises");
            s.push('\n');
            s
        }
        Format::Text => render_text(&display, &options, &report),
    };
    // A closed pipe (`| head`) is not worth a panic or a different verdict.
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The human report: verdict and counts, then errors and warnings grouped by kind with line numbers.
pub fn render_text(path: &str, options: &ValidationOptions, report: &ValidationReport) -> String {
    let mut out = String::new();
    let verdict = if report.valid { "VALID" } else { "INVALID" };
    let _ = writeln!(
        out,
        "{path}: {verdict} ({} records, {} invalid; {} errors, {} warnings)",
        report.records, report.invalid_records, report.error_count, report.warning_count
    );
    let turns = if options.allow_multi_turn {
        "multi-turn allowed"
    } else {
        "single-turn only"
    };
    let _ = writeln!(
        out,
        "student: {} ({turns})",
        options.student.as_deref().unwrap_or("not given")
    );
    let s = &report.stats;
    let _ = writeln!(
        out,
        "stats: {} bytes; {} labelled, {} unlabelled, {} multi-turn, {} with a system prompt, {} duplicate prompts",
        s.bytes, s.labelled, s.unlabelled, s.multi_turn, s.with_system_prompt, s.duplicate_prompts
    );
    let _ = writeln!(
        out,
        "tokens (estimate, 1 per {BYTES_PER_TOKEN} bytes of text, valid records): ~{} input, ~{} output, ~{} in the largest record",
        s.estimated_input_tokens, s.estimated_output_tokens, s.max_record_estimated_tokens
    );
    write_group(&mut out, "Errors", &report.errors, report.error_count);
    write_group(&mut out, "Warnings", &report.warnings, report.warning_count);
    out
}

fn write_group(
    out: &mut String,
    title: &str,
    findings: &[distillery_core::domain::validation::Finding],
    total: u64,
) {
    if findings.is_empty() {
        return;
    }
    let listed = if total > findings.len() as u64 {
        format!(" (the first {} of {total} are listed)", findings.len())
    } else {
        String::new()
    };
    let _ = writeln!(out, "\n{title}{listed}:");
    // Grouped by code, in order of first appearance.
    let mut order: Vec<Code> = Vec::new();
    let mut groups: BTreeMap<Code, Vec<&distillery_core::domain::validation::Finding>> =
        BTreeMap::new();
    for f in findings {
        let group = groups.entry(f.code).or_default();
        if group.is_empty() {
            order.push(f.code);
        }
        group.push(f);
    }
    for code in order {
        let group = &groups[&code];
        let lines: Vec<String> = group
            .iter()
            .filter_map(|f| f.line)
            .take(LINES_PER_KIND)
            .map(|l| l.to_string())
            .collect();
        let more = group.iter().filter(|f| f.line.is_some()).count() > LINES_PER_KIND;
        let _ = write!(out, "  {code} ({})", group.len());
        if !lines.is_empty() {
            let _ = write!(
                out,
                ": {} {}{}",
                if lines.len() == 1 { "line" } else { "lines" },
                lines.join(", "),
                if more { ", ..." } else { "" }
            );
        }
        out.push('\n');
        for f in group.iter().take(EXAMPLES_PER_KIND) {
            let _ = writeln!(out, "    {f}");
        }
    }
}
