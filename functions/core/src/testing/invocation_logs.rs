//! Writes realistic Bedrock invocation logs into a directory, in Bedrock's layout
//! (`AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/*.json.gz`), for the
//! preflight's tests, `distillery logs preview`'s tests and its benchmark
//! (`scripts/bench-logs-preview.sh`, through `functions/cli/examples/gen_invocation_logs.rs`).
//!
//! What the logs hold, deterministically per seed: several models (Nova Pro by id and by inference
//! profile ARN, Nova Lite, Llama on InvokeModel with the chat template, Claude on InvokeModel with the
//! Messages API), all four operations (streamed calls log a list of events), request metadata
//! (`team` support / sales / `Support`, `env` prod / test, some records with none), records over
//! several days and hours, multi-turn and image records, duplicate prompts, failed calls, and one
//! record per hour folder whose bodies were offloaded to `HH/data/` (the object is written too).
//! On request, one truncated file (its last line cut) and one corrupt gzip.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// What to write.
#[derive(Debug, Clone)]
pub struct LogGenOptions {
    /// Stop once the log files written reach this many (gzipped) bytes...
    pub target_bytes: u64,
    /// ...and at least this many hour folders are filled.
    pub min_hours: u64,
    /// Records per log file.
    pub records_per_file: usize,
    /// Log files per hour folder.
    pub files_per_hour: usize,
    /// The first hour folder; later files go into later hours.
    pub start: DateTime<Utc>,
    pub seed: u64,
    /// Also write a file whose last line is cut in the middle (a valid gzip).
    pub truncated_file: bool,
    /// Also write a `.json.gz` that is not gzip at all.
    pub corrupt_file: bool,
}

impl Default for LogGenOptions {
    fn default() -> Self {
        LogGenOptions {
            target_bytes: 256 * 1024,
            min_hours: 0,
            records_per_file: 200,
            files_per_hour: 2,
            start: Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap(),
            seed: 7,
            truncated_file: false,
            corrupt_file: false,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedLogs {
    /// Log files written, the truncated and corrupt ones included.
    pub files: u64,
    /// Complete records written (the cut line of the truncated file not included).
    pub records: u64,
    /// Gzipped bytes of the log files.
    pub bytes: u64,
    /// Hour folders used.
    pub hours: u64,
    /// Paths (relative to the directory, `/`-separated) of the truncated and corrupt files.
    pub truncated: Option<String>,
    pub corrupt: Option<String>,
}

/// A small deterministic generator (xorshift64*): the same seed writes the same logs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "the",
    "customer",
    "order",
    "invoice",
    "shipping",
    "refund",
    "policy",
    "account",
    "password",
    "summary",
    "report",
    "quarterly",
    "revenue",
    "analysis",
    "product",
    "feature",
    "release",
    "latency",
    "database",
    "query",
    "index",
    "cluster",
    "region",
    "request",
    "response",
    "error",
    "retry",
    "delivery",
    "warehouse",
    "subscription",
    "plan",
    "upgrade",
    "discount",
    "billing",
    "support",
    "ticket",
    "escalation",
    "agent",
    "schedule",
    "meeting",
    "café",
    "naïve",
    "résumé",
    "and",
    "of",
    "to",
    "for",
    "with",
    "a",
    "is",
    "was",
    "please",
    "explain",
    "why",
    "how",
];

/// A sentence of `n` words, with the odd quote and newline so parsers meet escapes.
fn text(rng: &mut Rng, n: usize) -> String {
    let mut s = String::with_capacity(n * 8);
    for i in 0..n {
        if i > 0 {
            s.push(if rng.below(40) == 0 { '\n' } else { ' ' });
        }
        let w = rng.pick(WORDS);
        if rng.below(60) == 0 {
            s.push('"');
            s.push_str(w);
            s.push('"');
        } else {
            s.push_str(w);
        }
    }
    s.push('?');
    s
}

/// Prompts repeated across records (customers ask the same things).
const COMMON_PROMPTS: &[&str] = &[
    "Where is my order?",
    "How do I reset my password?",
    "Can I get a refund for a late delivery?",
    "What does the premium plan include?",
    "Summarise our refund policy in two sentences.",
];

struct Model {
    /// How the record names it: the id itself, or an ARN.
    logged_as: &'static str,
    family: Family,
}

#[derive(Clone, Copy, PartialEq)]
enum Family {
    Nova,
    Llama,
    Claude,
}

const MODELS: &[Model] = &[
    Model {
        logged_as: "amazon.nova-pro-v1:0",
        family: Family::Nova,
    },
    Model {
        logged_as:
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
        family: Family::Nova,
    },
    Model {
        logged_as: "amazon.nova-lite-v1:0",
        family: Family::Nova,
    },
    Model {
        logged_as: "meta.llama3-1-70b-instruct-v1:0",
        family: Family::Llama,
    },
    Model {
        logged_as: "anthropic.claude-3-haiku-20240307-v1:0",
        family: Family::Claude,
    },
];

/// The request and response bodies of one call.
fn bodies(
    rng: &mut Rng,
    model: &Model,
    operation: &str,
    system: Option<&str>,
    user: &str,
    answer: &str,
    shape: Shape,
) -> (Value, Value) {
    let converse = operation.starts_with("Converse");
    let stream = operation.ends_with("Stream");
    let mut user_content = vec![json!({"text": user})];
    if shape == Shape::Image {
        user_content.push(json!({"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}));
    }
    let nova_messages = |user_content: Vec<Value>| {
        let mut m = vec![];
        if shape == Shape::MultiTurn {
            m.push(json!({"role": "user", "content": [{"text": "Hello"}]}));
            m.push(json!({"role": "assistant", "content": [{"text": "Hi, how can I help?"}]}));
        }
        m.push(json!({"role": "user", "content": user_content}));
        m
    };
    let input = if converse || model.family == Family::Nova {
        let mut b =
            json!({"messages": nova_messages(user_content), "inferenceConfig": {"maxTokens": 512}});
        if !converse {
            b["schemaVersion"] = json!("messages-v1");
        }
        if let Some(s) = system {
            b["system"] = json!([{"text": s}]);
        }
        b
    } else if model.family == Family::Claude {
        let mut content = vec![json!({"type": "text", "text": user})];
        if shape == Shape::Image {
            content.push(json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}));
        }
        let mut messages = vec![];
        if shape == Shape::MultiTurn {
            messages.push(json!({"role": "user", "content": "Hello"}));
            messages.push(json!({"role": "assistant", "content": "Hi, how can I help?"}));
        }
        messages.push(json!({"role": "user", "content": content}));
        let mut b = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512, "messages": messages});
        if let Some(s) = system {
            b["system"] = json!(s);
        }
        b
    } else {
        // Llama: the chat template (its prompt cannot carry an image; an "image" record is text here).
        let mut p = String::from("<|begin_of_text|>");
        if let Some(s) = system {
            p.push_str(&format!(
                "<|start_header_id|>system<|end_header_id|>\n\n{s}<|eot_id|>"
            ));
        }
        if shape == Shape::MultiTurn {
            p.push_str("<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi, how can I help?<|eot_id|>");
        }
        p.push_str(&format!(
            "<|start_header_id|>user<|end_header_id|>\n\n{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        ));
        json!({"prompt": p, "max_gen_len": 512, "temperature": 0.5})
    };
    let half = answer.len() / 2;
    let split = (0..=half)
        .rev()
        .find(|i| answer.is_char_boundary(*i))
        .unwrap_or(0);
    let (a1, a2) = answer.split_at(split);
    let output = match (
        converse || model.family == Family::Nova,
        model.family,
        stream,
    ) {
        (true, _, false) => json!({
            "output": {"message": {"role": "assistant", "content": [{"text": answer}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": user.len() / 4, "outputTokens": answer.len() / 4}
        }),
        (true, _, true) => json!([
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": a1}, "contentBlockIndex": 0}},
            {"contentBlockDelta": {"delta": {"text": a2}, "contentBlockIndex": 0}},
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}}
        ]),
        (false, Family::Claude, false) => json!({
            "id": format!("msg_{}", rng.next()), "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": answer}], "stop_reason": "end_turn"
        }),
        (false, Family::Claude, true) => json!([
            {"type": "message_start", "message": {"role": "assistant"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": a1}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": a2}},
            {"type": "message_stop"}
        ]),
        (false, _, false) => {
            json!({"generation": answer, "prompt_token_count": 10, "generation_token_count": 10, "stop_reason": "stop"})
        }
        (false, _, true) => json!([{"generation": a1}, {"generation": a2, "stop_reason": "stop"}]),
    };
    (input, output)
}

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Text,
    Image,
    MultiTurn,
}

/// One log line (without the newline). `offload` writes the bodies as S3 paths instead.
fn record(rng: &mut Rng, at: DateTime<Utc>, offload: Option<&str>) -> String {
    let model = &MODELS[rng.below(MODELS.len() as u64) as usize];
    let operation = match rng.below(10) {
        0..=4 => "Converse",
        5 => "ConverseStream",
        6..=8 => "InvokeModel",
        _ => "InvokeModelWithResponseStream",
    };
    let shape = match rng.below(20) {
        0 => Shape::Image,
        1 => Shape::MultiTurn,
        _ => Shape::Text,
    };
    let user = if rng.below(5) == 0 {
        rng.pick(COMMON_PROMPTS).to_string()
    } else {
        let n = 10 + rng.below(120) as usize;
        text(rng, n)
    };
    let system =
        (rng.below(3) == 0).then_some("You are a helpful support assistant for an online shop.");
    let n = 20 + rng.below(200) as usize;
    let answer = text(rng, n);
    let failed = rng.below(30) == 0;
    let mut v = json!({
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "accountId": ACCOUNT,
        "identity": {"arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/app/session")},
        "region": REGION,
        "requestId": format!("{:016x}-{:016x}", rng.next(), rng.next()),
        "operation": operation,
        "modelId": model.logged_as,
    });
    match rng.below(10) {
        0 => {} // no metadata
        1 => v["requestMetadata"] = json!({"team": "Support", "env": "prod"}),
        2..=3 => v["requestMetadata"] = json!({"team": "sales", "env": "prod"}),
        4 => v["requestMetadata"] = json!({"team": "support", "env": "test"}),
        _ => v["requestMetadata"] = json!({"team": "support", "env": "prod", "app": "helpdesk"}),
    }
    let (input, output) = bodies(rng, model, operation, system, &user, &answer, shape);
    match offload {
        Some(prefix) => {
            v["input"] = json!({"inputContentType": "application/json", "inputBodyS3Path": format!("{prefix}_input.json.gz"), "inputTokenCount": 30000});
            v["output"] = json!({"outputContentType": "application/json", "outputBodyS3Path": format!("{prefix}_output.json.gz"), "outputTokenCount": 100});
        }
        None => {
            v["input"] = json!({"inputContentType": "application/json", "inputBodyJson": input, "inputTokenCount": user.len() / 4});
            if failed {
                v["errorCode"] = json!("ThrottlingException");
            } else {
                v["output"] = json!({"outputContentType": "application/json", "outputBodyJson": output, "outputTokenCount": answer.len() / 4});
            }
        }
    }
    v.to_string()
}

fn gzip(text: &[u8]) -> io::Result<Vec<u8>> {
    let mut e = GzEncoder::new(Vec::with_capacity(text.len() / 3), Compression::new(5));
    e.write_all(text)?;
    e.finish()
}

/// The folder of one hour, relative to the directory.
pub fn hour_folder(hour: DateTime<Utc>) -> String {
    format!(
        "AWSLogs/{ACCOUNT}/BedrockModelInvocationLogs/{REGION}/{}",
        hour.format("%Y/%m/%d/%H")
    )
}

fn write(dir: &Path, rel: &str, bytes: &[u8]) -> io::Result<()> {
    let path: PathBuf = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
}

/// Writes logs into `dir` until `target_bytes` of log files are written (at least one file).
pub fn write_invocation_logs(dir: &Path, options: &LogGenOptions) -> io::Result<GeneratedLogs> {
    let mut rng = Rng(options.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = GeneratedLogs::default();
    let mut hour = options.start;
    let per_hour = options.files_per_hour.max(1);
    let mut text = Vec::new();
    while out.bytes < options.target_bytes || out.hours < options.min_hours || out.files == 0 {
        let folder = hour_folder(hour);
        out.hours += 1;
        for f in 0..per_hour {
            text.clear();
            let minute = (f * 60 / per_hour) as i64;
            let name = format!(
                "{}_{:08x}.json.gz",
                (hour + Duration::minutes(minute)).format("%Y%m%dT%H%MZ"),
                rng.next() as u32
            );
            for i in 0..options.records_per_file {
                let at = hour
                    + Duration::minutes(minute)
                    + Duration::milliseconds((i as i64 * 997) % 3_600_000 / per_hour as i64);
                // One record per hour folder had its bodies offloaded; write the data object too.
                let offload = (f == 0 && i == 0)
                    .then(|| format!("s3://logs-bucket/{folder}/data/{:016x}", rng.next()));
                if let Some(prefix) = &offload {
                    let key = prefix.trim_start_matches("s3://logs-bucket/");
                    let body = json!({"messages": [{"role": "user", "content": [{"text": "a very long prompt"}]}]});
                    write(
                        dir,
                        &format!("{key}_input.json.gz"),
                        &gzip(body.to_string().as_bytes())?,
                    )?;
                }
                text.extend_from_slice(record(&mut rng, at, offload.as_deref()).as_bytes());
                text.push(b'\n');
                out.records += 1;
            }
            let gz = gzip(&text)?;
            write(dir, &format!("{folder}/{name}"), &gz)?;
            out.files += 1;
            out.bytes += gz.len() as u64;
        }
        hour += Duration::hours(1);
    }
    let folder = hour_folder(hour);
    if options.truncated_file {
        let rel = format!("{folder}/{}_truncated.json.gz", hour.format("%Y%m%dT%H%MZ"));
        let mut t = Vec::new();
        for _ in 0..3 {
            t.extend_from_slice(record(&mut rng, hour, None).as_bytes());
            t.push(b'\n');
        }
        out.records += 3;
        let last = record(&mut rng, hour, None);
        t.extend_from_slice(&last.as_bytes()[..last.len() / 2]);
        let gz = gzip(&t)?;
        write(dir, &rel, &gz)?;
        out.files += 1;
        out.bytes += gz.len() as u64;
        out.truncated = Some(rel);
    }
    if options.corrupt_file {
        let rel = format!("{folder}/{}_corrupt.json.gz", hour.format("%Y%m%dT%H%MZ"));
        let junk = b"this object was cut off before it was gzipped";
        write(dir, &rel, junk)?;
        out.files += 1;
        out.bytes += junk.len() as u64;
        out.corrupt = Some(rel);
    }
    if options.truncated_file || options.corrupt_file {
        out.hours += 1;
    }
    Ok(out)
}

/// One log file of a directory in Bedrock's layout: its key (relative, `/`-separated), the start of
/// its hour folder and its (gzipped) bytes.
#[derive(Debug, Clone)]
pub struct LogObject {
    pub key: String,
    pub hour: DateTime<Utc>,
    pub bytes: Vec<u8>,
}

/// Every file under `dir` as `(key, path)`, the key relative and `/`-separated, in key order: the
/// objects an S3 prefix would hold (log files and offloaded bodies alike).
pub fn files_under(dir: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let key = path
                .strip_prefix(dir)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            out.push((key, path));
        }
    }
    out.sort();
    Ok(out)
}

/// The log files under `dir` (offloaded bodies and other objects left out), in key order: the
/// order S3 lists them in.
pub fn log_objects(dir: &Path) -> io::Result<Vec<LogObject>> {
    let mut out = Vec::new();
    for (key, path) in files_under(dir)? {
        if let Some(file) = crate::domain::invocation_logs::log_file(&key) {
            out.push(LogObject {
                key,
                hour: file.hour,
                bytes: fs::read(&path)?,
            });
        }
    }
    Ok(out)
}

/// What a curated run over `files` must write, computed by brute force rather than by the
/// bounded selection under test: every eligible record of the window (corrupt files contribute
/// nothing), the latest occurrence of each prompt (a later record of the same instant wins, as in
/// read order), the `cap` most recent of those, each converted to its dataset line.
pub fn reference_curation(
    files: &[LogObject],
    window: &crate::domain::run::LogWindow,
    options: &crate::domain::invocation_logs::PreflightOptions,
    cap: usize,
) -> std::collections::BTreeSet<String> {
    use crate::domain::invocation_logs::convert::to_jsonl_line;
    use crate::domain::invocation_logs::curate::{in_window, logged_at};
    use crate::domain::invocation_logs::{FileOutcome, Preflight};
    let mut preflight = Preflight::new(options.clone());
    // prompt hash -> ((time, read order), line)
    let mut latest: std::collections::HashMap<u64, ((i64, u64), String)> = Default::default();
    let mut order = 0u64;
    for f in files {
        let mut found = Vec::new();
        let outcome = preflight.add_file_with(&f.key, "", f.bytes.as_slice(), |e| {
            let at = logged_at(e.timestamp, f.hour);
            if in_window(window, at) {
                let response = e
                    .response
                    .as_deref()
                    .filter(|_| options.use_prompt_response);
                found.push((
                    e.prompt_hash,
                    at.timestamp_millis(),
                    to_jsonl_line(&e.prompt, response),
                ));
            }
        });
        if outcome == FileOutcome::Corrupt {
            continue;
        }
        for (hash, at, line) in found {
            order += 1;
            let key = (at, order);
            match latest.get(&hash) {
                Some((kept, _)) if *kept >= key => {}
                _ => {
                    latest.insert(hash, (key, line));
                }
            }
        }
    }
    let mut all: Vec<((i64, u64), String)> = latest.into_values().collect();
    all.sort();
    all.into_iter()
        .rev()
        .take(cap)
        .map(|(_, line)| line)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::invocation_logs::{log_file, Preflight, PreflightOptions};

    /// Every log file under `dir`, relative and `/`-separated, sorted.
    fn keys(dir: &Path) -> Vec<String> {
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(
                        p.strip_prefix(root)
                            .unwrap()
                            .to_string_lossy()
                            .replace('\\', "/"),
                    );
                }
            }
        }
        let mut out = Vec::new();
        walk(dir, dir, &mut out);
        out.sort();
        out
    }

    #[test]
    fn the_generated_logs_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let options = LogGenOptions {
            target_bytes: 64 * 1024,
            truncated_file: true,
            corrupt_file: true,
            ..Default::default()
        };
        let g = write_invocation_logs(dir.path(), &options).unwrap();
        assert!(g.bytes >= 64 * 1024 && g.hours >= 2, "{g:?}");
        let all = keys(dir.path());
        let logs: Vec<&String> = all.iter().filter(|k| log_file(k).is_some()).collect();
        assert_eq!(logs.len() as u64, g.files);
        // The offloaded bodies are there too, but are not log files.
        assert!(all.iter().any(|k| k.contains("/data/")));

        let mut p = Preflight::new(PreflightOptions::default());
        for k in &logs {
            let day = log_file(k).unwrap().hour.format("%Y-%m-%d").to_string();
            p.add_file(k, &day, fs::File::open(dir.path().join(k)).unwrap());
        }
        let r = p.finish();
        assert_eq!(r.scanned, g.records);
        assert_eq!(r.files, g.files - 1);
        let skipped: Vec<&str> = r.skipped_files.iter().map(|s| s.file.as_str()).collect();
        // In key order: `..._corrupt` sorts before `..._truncated`.
        assert_eq!(
            skipped,
            [
                g.corrupt.as_deref().unwrap(),
                g.truncated.as_deref().unwrap()
            ]
        );
        // Every kind of record is there: some ineligible for each reason the generator produces.
        for reason in ["multi_turn", "non_text_content", "offloaded_body"] {
            assert!(
                r.ineligible.get(reason).copied().unwrap_or(0) > 0,
                "{reason}: {:?}",
                r.ineligible
            );
        }
        assert!(r.distinct_prompts < r.eligible, "duplicates expected");
        assert!(r.by_model.len() >= 4, "{:?}", r.by_model.keys());
        assert!(r.eligible > 100);
        // Same seed, same logs.
        let again = tempfile::tempdir().unwrap();
        let g2 = write_invocation_logs(again.path(), &options).unwrap();
        assert_eq!(g, g2);
    }
}
