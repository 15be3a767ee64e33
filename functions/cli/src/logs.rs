//! `distillery logs preview SOURCE`: what a distillation job on Bedrock invocation logs would train
//! on, counted before the job is launched (the preflight in `distillery_core::domain::invocation_logs`).
//! SOURCE is `s3://bucket/prefix/` or a local directory holding the same layout.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{IsTerminal, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use chrono::{DateTime, Utc};
use distillery_aws::s3::S3DatasetStore;
use distillery_core::domain::catalog::Limits;
use distillery_core::domain::invocation_logs::layout::split_s3_prefix;
use distillery_core::domain::invocation_logs::{
    log_file, MetadataFilter, Preflight, PreflightOptions, PreflightReport,
};
use distillery_core::ports::{DatasetChunks, DatasetStore, ObjectLister};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::usage_error;

const PREVIEW_HELP: &str = concat!(
    "\
Reads the invocation logs under SOURCE (Bedrock's layout: AWSLogs/<account>/BedrockModelInvocationLogs/
<region>/YYYY/MM/DD/HH/*.json.gz), applies --filter as Bedrock applies requestMetadataFilters, and counts
the records a distillation job would train on: scanned, matched, eligible (text-only single-turn prompts;
with --use-prompt-response, from the teacher and with a response), distinct prompts, by model and day.
Corrupt or truncated files are listed and skipped. The counting rules: docs/invocation-logs.md.

Examples:
  distillery logs preview s3://my-logs/bedrock/ --filter '{\"equals\":{\"team\":\"support\"}}'
  distillery logs preview ./logs-sample --teacher amazon.nova-pro-v1:0 --use-prompt-response --since 7d

Exit codes:
  0  at least 100 eligible records (Bedrock's minimum, limits.json minRecords)
  1  fewer eligible records than that
  2  usage or I/O error: a bad filter or duration, no such directory, S3 unreachable (one line on stderr)

Environment (S3 sources only):
",
    crate::aws::aws_env_help!()
);

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: LogsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum LogsCommand {
    /// Count the records a job on these invocation logs would train on.
    Preview(PreviewArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Text,
    /// One JSON object on stdout.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = PREVIEW_HELP)]
pub struct PreviewArgs {
    /// `s3://bucket/prefix/` or a local directory holding the logs in Bedrock's layout.
    pub source: String,
    /// A requestMetadataFilters JSON value, e.g. '{"equals":{"team":"support"}}', '{"andAll":[...]}'.
    #[arg(long, value_name = "JSON")]
    pub filter: Option<String>,
    /// The teacher model id; with --use-prompt-response only its records count.
    #[arg(long, value_name = "MODEL_ID")]
    pub teacher: Option<String>,
    /// Train on the logged responses (Bedrock's usePromptResponse): records must come from --teacher
    /// and carry a response.
    #[arg(long)]
    pub use_prompt_response: bool,
    /// Only logs of the last DURATION (e.g. 30m, 12h, 7d, 2w), by their hour folder.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `30m`, `12h`, `7d`, `2w` → a duration.
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()]
        .parse()
        .ok()
        .filter(|n| *n > 0)?;
    match unit {
        'm' => chrono::Duration::try_minutes(n),
        'h' => chrono::Duration::try_hours(n),
        'd' => chrono::Duration::try_days(n),
        'w' => chrono::Duration::try_weeks(n),
        _ => None,
    }
}

/// Where the logs are.
enum Source {
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

fn parse_source(s: &str) -> Result<Source, String> {
    if s.starts_with("s3://") {
        let (bucket, prefix) = split_s3_prefix(s).ok_or_else(|| {
            format!("{s}: no bucket in the S3 URI (expected s3://bucket/prefix/)")
        })?;
        return Ok(Source::S3 {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        });
    }
    let path = PathBuf::from(s);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(Source::Local(path)),
        Ok(_) => Err(format!(
            "{s} is a file; pass the directory that holds AWSLogs/ (or an s3:// URI)"
        )),
        Err(e) => Err(format!("cannot read {s}: {e}")),
    }
}

/// Progress on a terminal: files and bytes read so far (the total is unknown while listing).
fn progress() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} reading logs: {pos} files, {msg} {elapsed}")
            .expect("the progress template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub fn run(args: LogsArgs) -> ExitCode {
    match args.command {
        LogsCommand::Preview(a) => preview(a),
    }
}

/// The scan's settings, as given.
struct Scan {
    source: String,
    since: Option<DateTime<Utc>>,
}

fn preview(args: PreviewArgs) -> ExitCode {
    let filter = match args
        .filter
        .as_deref()
        .map(MetadataFilter::parse)
        .transpose()
    {
        Ok(f) => f,
        Err(e) => return usage_error(format!("--filter: {e}")),
    };
    if args.use_prompt_response && args.teacher.is_none() {
        return usage_error(
            "--use-prompt-response needs --teacher: Bedrock trains on logged responses only from the job's teacher",
        );
    }
    let since = match args.since.as_deref() {
        None => None,
        Some(s) => match parse_duration(s) {
            Some(d) => Some(Utc::now() - d),
            None => {
                return usage_error(format!(
                    "--since must be a number and a unit (m, h, d or w), e.g. 7d; got '{s}'"
                ))
            }
        },
    };
    let limits = match Limits::load() {
        Ok(l) => l,
        Err(e) => return usage_error(format!("limits: {e}")),
    };
    let source = match parse_source(&args.source) {
        Ok(s) => s,
        Err(e) => return usage_error(e),
    };
    let mut preflight = Preflight::new(PreflightOptions {
        filter,
        teacher: args.teacher.clone(),
        use_prompt_response: args.use_prompt_response,
    });
    let bar = progress();
    let scanned = match &source {
        Source::Local(dir) => scan_local(dir, since, &mut preflight, &bar),
        Source::S3 { bucket, prefix } => scan_s3(bucket, prefix, since, &mut preflight, &bar),
    };
    bar.finish_and_clear();
    if let Err(e) = scanned {
        return usage_error(e);
    }
    let report = preflight.finish();
    let scan = Scan {
        source: args.source.clone(),
        since,
    };
    let min = limits.dataset.min_records;
    let enough = report.eligible >= min;
    let output = match args.format {
        Format::Json => {
            let mut v = serde_json::to_value(&report).expect("the report serialises");
            v["source"] = serde_json::json!(scan.source);
            v["filter"] = match &args.filter {
                Some(f) => serde_json::from_str(f).expect("parsed above"),
                None => serde_json::Value::Null,
            };
            v["teacher"] = serde_json::json!(args.teacher);
            v["use_prompt_response"] = serde_json::json!(args.use_prompt_response);
            v["since"] = serde_json::json!(since.map(|t| t.to_rfc3339()));
            v["min_records"] = serde_json::json!(min);
            v["enough"] = serde_json::json!(enough);
            let mut s = serde_json::to_string_pretty(&v).expect("the report serialises");
            s.push('\n');
            s
        }
        Format::Text => render_text(&scan, &args, &report, min),
    };
    let _ = std::io::stdout().lock().write_all(output.as_bytes());
    if enough {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Whether a log file of this hour folder can hold records from `since` on.
fn in_window(hour: DateTime<Utc>, since: Option<DateTime<Utc>>) -> bool {
    since.is_none_or(|t| hour + chrono::Duration::hours(1) > t)
}

fn tick(bar: &ProgressBar, preflight: &Preflight) {
    bar.inc(1);
    bar.set_message(format!(
        "{} MB, {} records",
        preflight.report().bytes / 1_000_000,
        preflight.report().scanned
    ));
}

/// Walks `dir` in key order, one directory's entries in memory at a time.
fn scan_local(
    dir: &Path,
    since: Option<DateTime<Utc>>,
    preflight: &mut Preflight,
    bar: &ProgressBar,
) -> Result<(), String> {
    fn walk(
        root: &Path,
        dir: &Path,
        since: Option<DateTime<Utc>>,
        preflight: &mut Preflight,
        bar: &ProgressBar,
    ) -> Result<(), String> {
        let mut entries: Vec<(String, PathBuf, bool)> = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| {
                let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.path(),
                    is_dir,
                )
            })
            .collect();
        entries.sort();
        for (_, path, is_dir) in entries {
            if is_dir {
                walk(root, &path, since, preflight, bar)?;
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            let Some(file) = log_file(&rel) else { continue };
            if !in_window(file.hour, since) {
                continue;
            }
            let day = file.hour.format("%Y-%m-%d").to_string();
            match File::open(&path) {
                Ok(f) => {
                    preflight.add_file(&rel, &day, f);
                }
                Err(e) => preflight.skip_file(&rel, format!("cannot open: {e}")),
            }
            tick(bar, preflight);
        }
        Ok(())
    }
    walk(dir, dir, since, preflight, bar)
}

/// An S3 object's body as a blocking `Read`, pulling one chunk at a time through the runtime.
struct ChunkReader<'a> {
    rt: &'a tokio::runtime::Runtime,
    chunks: DatasetChunks,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rt.block_on(self.chunks.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Lists `s3://bucket/prefix` a page at a time and reads each log file as it streams in.
fn scan_s3(
    bucket: &str,
    prefix: &str,
    since: Option<DateTime<Utc>>,
    preflight: &mut Preflight,
    bar: &ProgressBar,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let sdk = rt.block_on(crate::aws::sdk_config())?;
    let store = S3DatasetStore::new(S3DatasetStore::client_from_conf(&sdk));
    let mut continuation: Option<String> = None;
    loop {
        let page = rt
            .block_on(store.list_page(bucket, prefix, continuation.as_deref()))
            .map_err(|e| crate::aws::call_error(&sdk, "S3", &e.to_string()))?;
        for object in page.objects {
            let Some(file) = log_file(&object.key) else {
                continue;
            };
            if !in_window(file.hour, since) {
                continue;
            }
            let name = format!("s3://{bucket}/{}", object.key);
            let day = file.hour.format("%Y-%m-%d").to_string();
            match rt.block_on(store.open(bucket, &object.key, None)) {
                Ok((_, chunks)) => {
                    let reader = ChunkReader {
                        rt: &rt,
                        chunks,
                        buf: Vec::new(),
                        pos: 0,
                    };
                    preflight.add_file(&name, &day, reader);
                }
                Err(e) => preflight.skip_file(&name, format!("cannot read: {e}")),
            }
            tick(bar, preflight);
        }
        match page.next {
            Some(next) => continuation = Some(next),
            None => return Ok(()),
        }
    }
}

/// One table of matched and eligible counts by `heading` (model, day), its first column as wide as
/// its longest key; nothing when there are no rows.
fn write_counts_table(
    out: &mut String,
    heading: &str,
    rows: &std::collections::BTreeMap<
        String,
        distillery_core::domain::invocation_logs::preflight::GroupCounts,
    >,
) {
    if rows.is_empty() {
        return;
    }
    let width = rows
        .keys()
        .map(String::len)
        .max()
        .unwrap_or(0)
        .max(heading.len());
    let _ = writeln!(
        out,
        "\n  {heading:<width$}  {:>10}  {:>10}",
        "matched", "eligible"
    );
    for (key, c) in rows {
        let _ = writeln!(
            out,
            "  {key:<width$}  {:>10}  {:>10}",
            thousands(c.matched),
            thousands(c.eligible)
        );
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const LISTED_SKIPS: usize = 20;

/// The report for people.
fn render_text(scan: &Scan, args: &PreviewArgs, r: &PreflightReport, min: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "invocation logs: {}", scan.source);
    if let Some(t) = scan.since {
        let _ = writeln!(
            out,
            "since:           {} (hour folders from then on)",
            t.format("%Y-%m-%d %H:%M UTC")
        );
    }
    let _ = writeln!(
        out,
        "filter:          {}",
        args.filter.as_deref().unwrap_or("none (every record)")
    );
    let mode = match (&args.teacher, args.use_prompt_response) {
        (Some(t), true) => format!("prompt + logged response, from the teacher {t}"),
        (Some(t), false) => format!("prompt only (the teacher {t} answers)"),
        (None, _) => "prompt only (the teacher answers)".to_string(),
    };
    let _ = writeln!(out, "mode:            {mode}\n");
    let rows = [
        ("log files read", thousands(r.files)),
        ("decompressed", format!("{:.1} MB", r.bytes as f64 / 1e6)),
        ("scanned", thousands(r.scanned)),
        ("matched", thousands(r.matched)),
        ("eligible", thousands(r.eligible)),
        (
            "distinct prompts",
            format!(
                "{}{}",
                if r.distinct_prompts_capped {
                    "at least "
                } else {
                    ""
                },
                thousands(r.distinct_prompts)
            ),
        ),
        ("with a response", thousands(r.with_response)),
        ("skipped", thousands(r.skipped_total)),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<18}{value:>14}");
    }
    write_counts_table(&mut out, "model", &r.by_model);
    write_counts_table(&mut out, "day", &r.by_day);
    if !r.ineligible.is_empty() {
        let _ = writeln!(out, "\n  not eligible (matched)");
        for (reason, n) in &r.ineligible {
            let _ = writeln!(out, "  {reason:<24}{:>10}", thousands(*n));
        }
    }
    if r.skipped_total > 0 {
        let _ = writeln!(out, "\nskipped ({}):", r.skipped_total);
        for s in r.skipped_files.iter().take(LISTED_SKIPS) {
            match s.line {
                Some(l) => {
                    let _ = writeln!(out, "  {} line {l}: {}", s.file, s.reason);
                }
                None => {
                    let _ = writeln!(out, "  {}: {}", s.file, s.reason);
                }
            }
        }
        if r.skipped_total > LISTED_SKIPS as u64 {
            let _ = writeln!(out, "  ... (--format json lists up to 1000)");
        }
    }
    let verdict = if r.eligible >= min {
        format!(
            "\nENOUGH: {} eligible records (Bedrock needs at least {min})",
            thousands(r.eligible)
        )
    } else {
        format!(
            "\nNOT ENOUGH: {} eligible records; Bedrock needs at least {min}",
            thousands(r.eligible)
        )
    };
    let _ = writeln!(out, "{verdict}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Some(chrono::Duration::minutes(30)));
        assert_eq!(parse_duration("7d"), Some(chrono::Duration::days(7)));
        assert_eq!(parse_duration("2w"), Some(chrono::Duration::weeks(2)));
        assert_eq!(parse_duration("12h"), Some(chrono::Duration::hours(12)));
        for bad in [
            "",
            "d",
            "7",
            "0d",
            "-1d",
            "7y",
            "1.5h",
            "999999999999999999w",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn the_window_keeps_the_hour_that_holds_since() {
        let t = |h| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, h, 0, 0).unwrap();
        let since = Some(t(10) + chrono::Duration::minutes(30));
        assert!(!in_window(t(9), since));
        assert!(in_window(t(10), since));
        assert!(in_window(t(11), since));
        assert!(in_window(t(0), None));
    }
}
