//! `distillery validate <PATH>`: the streaming validator on a local file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use distillery_core::config::Env;
use distillery_core::domain::catalog::{Limits, ModelCatalog, Prices};
use distillery_core::domain::cost::{
    self, CostEstimate, CostInputs, TokenCounts, DEFAULT_PT_TTL_HOURS, PT_TTL_HOURS_VAR,
};
use distillery_core::domain::settings::{
    Commitment, OverrideSources, RunSettings, ServingMode, SettingsOverrides,
};
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

A valid dataset also gets a cost estimate (see README \"Costs and guardrails\"): low, the prompts and
given answers as they are; high, every prompt answered at --max-response-length. Line items: teacher
generation, student training, one month of model storage and, with --serving provisioned, throughput
for PT_TTL_HOURS hours. Prices come from prices.json for the pair's Region; unconfirmed ones are named.

Exit codes:
  0  the dataset is valid (warnings may be printed) and within --budget-usd, if given
  1  the dataset is invalid: the errors are listed; or its high cost estimate exceeds --budget-usd
     (over_budget)
  2  usage or I/O error: unreadable file, unknown student, unsupported pair, bad data files (one line
     on stderr)

Environment:
  DISTILLERY_MODEL_PAIRS_FILE, DISTILLERY_LIMITS_FILE, DISTILLERY_PRICES_FILE
      use these JSON files instead of the built-in model pairs, limits and prices (functions/core/data/)
  PT_TTL_HOURS
      hours of Provisioned Throughput the estimate counts with --serving provisioned (default 24;
      fractions allowed)";

/// The pair estimated when no student is given: the stack's defaults (infra/template.yaml).
const DEFAULT_TEACHER: &str = "amazon.nova-pro-v1:0";
const DEFAULT_STUDENT: &str = "amazon.nova-lite-v1:0:300k";

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
    /// The teacher the cost estimate prices (default: the first teacher the model catalog pairs with
    /// the student; without --student, the stack default pair amazon.nova-pro-v1:0 ->
    /// amazon.nova-lite-v1:0:300k).
    #[arg(long, value_name = "MODEL_ID")]
    pub teacher: Option<String>,
    /// The job's maxResponseLength: the high estimate answers every prompt at this length
    /// (default: limits.json's default).
    #[arg(long, value_name = "TOKENS")]
    pub max_response_length: Option<u32>,
    /// Serving after training, for the estimate: `auto` (on-demand where the student supports it,
    /// else none), `none`, `on-demand` (per token, nothing when idle) or `provisioned`
    /// (PT_TTL_HOURS hours of throughput at --model-units).
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub serving: String,
    /// Model units of Provisioned Throughput, for the estimate.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub model_units: u32,
    /// A budget in US dollars: a high cost estimate above it fails the check (exit 1, over_budget),
    /// as MAX_RUN_COST_USD rejects the run on the stack.
    #[arg(long, value_name = "USD")]
    pub budget_usd: Option<String>,
}

/// The settings the estimate prices, from the flags; a flag that cannot be priced is a usage error.
fn estimate_settings(
    args: &ValidateArgs,
    catalog: &ModelCatalog,
    limits: &Limits,
) -> Result<(RunSettings, String), String> {
    let student = args
        .student
        .clone()
        .unwrap_or_else(|| DEFAULT_STUDENT.to_string());
    let teacher = match (&args.teacher, &args.student) {
        (Some(t), _) => t.clone(),
        (None, None) => DEFAULT_TEACHER.to_string(),
        (None, Some(s)) => catalog
            .pairs
            .iter()
            .find(|p| p.students.iter().any(|x| x == s))
            .map(|p| p.teacher.clone())
            .ok_or_else(|| format!("no teacher in the model catalog teaches '{s}'"))?,
    };
    let pair = catalog
        .check_pair(&teacher, &student)
        .map_err(|e| e.to_string())?;
    let serving = ServingMode::parse(&args.serving).ok_or_else(|| {
        format!(
            "--serving must be {}, got '{}'",
            ServingMode::ACCEPTED,
            args.serving
        )
    })?;
    let j = &limits.job;
    let max_response_length = args
        .max_response_length
        .unwrap_or(j.default_max_response_length_for_inference);
    if !(j.min_max_response_length_for_inference..=j.max_max_response_length_for_inference)
        .contains(&max_response_length)
    {
        return Err(format!(
            "--max-response-length {max_response_length} is outside {}..={}",
            j.min_max_response_length_for_inference, j.max_max_response_length_for_inference
        ));
    }
    let mut settings = RunSettings {
        teacher,
        student,
        max_response_length,
        serving,
        model_units: args.model_units,
        commitment: Commitment::None,
    };
    // `auto` settles as the stack would in the pair's Region; `on-demand` for a student that
    // cannot be deployed on demand is the same error the stack rejects the run with.
    let flags = SettingsOverrides {
        serving: Some(args.serving.clone()),
        ..Default::default()
    };
    let none = SettingsOverrides::default();
    settings
        .settle_serving(
            catalog,
            &pair.region,
            &OverrideSources {
                metadata: &none,
                cli: &flags,
            },
        )
        .map_err(|e| e.message)?;
    Ok((settings, pair.region.clone()))
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
    let prices = match Prices::load() {
        Ok(p) => p,
        Err(e) => return usage_error(format!("prices: {e}")),
    };
    let (settings, region) = match estimate_settings(&args, &catalog, &limits) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let budget = match args
        .budget_usd
        .as_deref()
        .map(|b| (b, cost::parse_budget(b)))
    {
        None => None,
        Some((_, Some(b))) => Some(b),
        Some((raw, None)) => {
            return usage_error(format!(
                "--budget-usd must be a number of US dollars (0 or more), got '{raw}'"
            ))
        }
    };
    let pt_ttl_hours = match Env::process().optional_string(PT_TTL_HOURS_VAR) {
        None => DEFAULT_PT_TTL_HOURS,
        Some(v) => match cost::parse_ttl_hours(&v) {
            Some(h) => h,
            None => {
                return usage_error(format!(
                "{PT_TTL_HOURS_VAR} must be a number of hours above 0 and at most 8784, got '{v}'"
            ))
            }
        },
    };

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

    // Only a valid dataset is estimated: the stack rejects an invalid one before pricing it.
    let estimate = report.valid.then(|| {
        let st = &report.stats;
        let tokens = TokenCounts {
            prompts: st.labelled + st.unlabelled,
            prompt_tokens: st.estimated_input_tokens,
            given_answer_tokens: st.estimated_output_tokens,
        };
        let inputs = CostInputs {
            settings: &settings,
            region: &region,
            pt_ttl_hours,
        };
        cost::estimate(&tokens, &inputs, &prices).with_budget(budget)
    });
    let over_budget = estimate
        .as_ref()
        .and_then(|e| e.over_budget_error("--budget-usd"));

    let output = match args.format {
        Format::Json => {
            let mut v = serde_json::to_value(&report).expect("the report serialises");
            v["cost_estimate"] = serde_json::to_value(&estimate).expect("the estimate serialises");
            let mut s = serde_json::to_string_pretty(&v).expect("the report serialises");
            s.push('\n');
            s
        }
        Format::Text => {
            let mut out = render_text(&display, &options, &report);
            if let Some(e) = &estimate {
                out.push_str(&render_estimate(&settings, e));
            }
            if let Some(e) = &over_budget {
                let _ = writeln!(out, "\nOVER BUDGET: {}", e.message);
            }
            out
        }
    };
    // A closed pipe (`| head`) is not worth a panic or a different verdict.
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    if report.valid && over_budget.is_none() {
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

/// The estimate for people: the range, then one line per item with how it was computed.
pub fn render_estimate(settings: &RunSettings, e: &CostEstimate) -> String {
    let mut out = String::new();
    let cur = &e.currency;
    let _ = writeln!(
        out,
        "\ncost estimate ({} -> {} in {}, maxResponseLength {}, serving {}): {cur} {:.2} to {cur} {:.2}",
        settings.teacher,
        settings.student,
        e.region,
        settings.max_response_length,
        settings.serving,
        e.low_usd,
        e.high_usd
    );
    for i in &e.line_items {
        let _ = writeln!(
            out,
            "  {:<20} {cur} {:>10.2} .. {:>10.2}  {}",
            i.item, i.low_usd, i.high_usd, i.basis
        );
    }
    if let Some(b) = e.budget_usd {
        let _ = writeln!(
            out,
            "budget: {cur} {} ({})",
            cost::format_budget(b),
            if e.over_budget {
                "the high estimate exceeds it"
            } else {
                "the high estimate is within it"
            }
        );
    }
    if !e.unconfirmed.is_empty() {
        let _ = writeln!(
            out,
            "unconfirmed prices (check https://aws.amazon.com/bedrock/pricing/): {}",
            e.unconfirmed.join("; ")
        );
    }
    if !e.missing.is_empty() {
        let _ = writeln!(
            out,
            "no price in prices.json (counted as 0, so the figures are short): {}",
            e.missing.join("; ")
        );
    }
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
