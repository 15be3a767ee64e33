//! Rendering of milestone messages: one message per milestone of a run, as an SNS subject + plain-text
//! body and as a Slack Block Kit payload. Pure: the caller passes the run, the region, the prices and
//! the clock reading, so the content is fully testable.
//!
//! Both renderings come from one [`Draft`], so an e-mail subscriber and a Slack channel always see the
//! same facts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::catalog::Prices;
use super::run::Run;
use super::settings::Commitment;

/// SNS refuses subjects of 100 characters or more, non-ASCII text and line breaks.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// How many validation errors a "rejected" message lists (the report in S3 has them all).
pub const MAX_LISTED_ERRORS: usize = 5;
// Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
const SLACK_HEADER_MAX: usize = 150;
const SLACK_TEXT_MAX: usize = 3000;
const SLACK_FIELD_MAX: usize = 2000;
const SLACK_MAX_FIELDS: usize = 10;
/// Long free text (Bedrock failure messages, step error causes) is cut to this in messages.
const MAX_REASON_CHARS: usize = 1500;

/// A point in a run's life that people are told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    Rejected,
    Launched,
    Completed,
    Failed,
    Stopped,
    TimedOut,
    Ready,
    ProvisioningFailed,
}

impl Milestone {
    pub const ALL: [Milestone; 8] = [
        Milestone::Rejected,
        Milestone::Launched,
        Milestone::Completed,
        Milestone::Failed,
        Milestone::Stopped,
        Milestone::TimedOut,
        Milestone::Ready,
        Milestone::ProvisioningFailed,
    ];

    /// The spelling used in step input, the `event_type` SNS attribute and delivery records.
    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Rejected => "rejected",
            Milestone::Launched => "launched",
            Milestone::Completed => "completed",
            Milestone::Failed => "failed",
            Milestone::Stopped => "stopped",
            Milestone::TimedOut => "timed_out",
            Milestone::Ready => "ready",
            Milestone::ProvisioningFailed => "provisioning_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Milestone> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Milestone::ALL.into_iter().find(|m| m.as_str() == norm)
    }

    /// A short title, used in the subject and the Slack header.
    pub fn title(self) -> &'static str {
        match self {
            Milestone::Rejected => "Dataset rejected",
            Milestone::Launched => "Distillation launched",
            Milestone::Completed => "Distillation completed",
            Milestone::Failed => "Distillation failed",
            Milestone::Stopped => "Distillation stopped",
            Milestone::TimedOut => "Distillation timed out",
            Milestone::Ready => "Model ready to serve",
            Milestone::ProvisioningFailed => "Provisioning failed",
        }
    }

    /// Whether the milestone reports something going wrong (drives the Slack emoji).
    pub fn is_bad_news(self) -> bool {
        matches!(
            self,
            Milestone::Rejected
                | Milestone::Failed
                | Milestone::Stopped
                | Milestone::TimedOut
                | Milestone::ProvisioningFailed
        )
    }

    fn emoji(self) -> &'static str {
        match self {
            Milestone::Launched => ":rocket:",
            Milestone::Completed => ":white_check_mark:",
            Milestone::Ready => ":large_green_circle:",
            Milestone::Stopped => ":octagonal_sign:",
            Milestone::TimedOut => ":hourglass:",
            Milestone::Rejected | Milestone::Failed | Milestone::ProvisioningFailed => ":x:",
        }
    }
}

impl std::fmt::Display for Milestone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `{Error, Cause}` object a Step Functions Catch puts in the state output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl CaughtError {
    /// "Throttled: Bedrock throttled CreateModelCustomizationJob", one line.
    ///
    /// A Lambda error's Cause is itself JSON (`{"errorType","errorMessage",...}`); we show its message
    /// rather than the raw JSON. Any other Cause is shown as text.
    pub fn summary(&self) -> String {
        let cause: Option<String> = serde_json::from_str::<Value>(&self.cause)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                let c = self.cause.trim();
                (!c.is_empty()).then(|| c.to_string())
            });
        let error = self.error.trim();
        let text = match (error.is_empty(), cause) {
            (false, Some(c)) => format!("{error}: {c}"),
            (false, None) => error.to_string(),
            (true, Some(c)) => c,
            (true, None) => "unknown error".to_string(),
        };
        truncate_chars(&one_line(&text), MAX_REASON_CHARS)
    }
}

/// What the renderer needs besides the run.
#[derive(Debug, Clone, Copy)]
pub struct MessageContext<'a> {
    /// The AWS Region of the run (for console links and the delete command).
    pub region: &'a str,
    pub prices: &'a Prices,
    pub now: DateTime<Utc>,
    /// The error caught by the state machine, when the notify step was reached through a Catch.
    pub caught: Option<&'a CaughtError>,
}

/// One milestone message in both renderings.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMessage {
    pub milestone: Milestone,
    /// ASCII, no line breaks, at most [`MAX_SUBJECT_CHARS`].
    pub subject: String,
    pub body: String,
    /// A Slack incoming-webhook payload (`text` fallback + Block Kit `blocks`).
    pub slack: Value,
}

/// The facts of one message, before it is laid out for a channel.
#[derive(Debug, Clone, Default)]
struct Draft {
    title: String,
    /// What the subject names after the title (the dataset).
    subject_object: String,
    run_id: Option<String>,
    summary: String,
    /// Label and value, in order.
    fields: Vec<(String, String)>,
    /// A titled list (validation errors).
    list_title: String,
    list: Vec<String>,
    /// Label and URL.
    links: Vec<(String, String)>,
    notes: Vec<String>,
    milestone: Option<Milestone>,
    region: String,
}

/// Renders the message for a milestone of a recorded run.
pub fn render_for_run(
    milestone: Milestone,
    run: &Run,
    ctx: &MessageContext<'_>,
) -> RenderedMessage {
    let s = &run.settings;
    let dataset = run.dataset.display_name();
    let mut d = Draft {
        title: milestone.title().to_string(),
        subject_object: dataset.clone(),
        run_id: Some(run.run_id.to_string()),
        milestone: Some(milestone),
        region: ctx.region.to_string(),
        ..Default::default()
    };
    d.fields.push(("Dataset".into(), run.dataset.s3_uri()));
    d.fields.push((
        "Teacher -> student".into(),
        format!("{} -> {}", s.teacher, s.student),
    ));
    let models_page = console_custom_models_url(ctx.region);
    let reason = failure_text(run, ctx.caught);

    match milestone {
        Milestone::Rejected => {
            let v = run.validation.clone().unwrap_or_default();
            d.summary = format!(
                "The dataset `{dataset}` was rejected: {} of {} records are invalid ({} errors, {} warnings). Nothing was launched.",
                v.invalid_records, v.records, v.error_count, v.warning_count
            );
            d.fields.push((
                "Records".into(),
                format!("{} ({} invalid)", v.records, v.invalid_records),
            ));
            if let Some(uri) = &v.report_uri {
                d.fields.push(("Full report".into(), uri.clone()));
            }
            if let Some(r) = &reason {
                d.fields.push(("Reason".into(), r.clone()));
            }
            d.list_title = if v.first_errors.len() > MAX_LISTED_ERRORS {
                format!("First {MAX_LISTED_ERRORS} errors")
            } else {
                "Errors".into()
            };
            d.list = v
                .first_errors
                .iter()
                .take(MAX_LISTED_ERRORS)
                .map(|e| truncate_chars(&one_line(e), 300))
                .collect();
            d.notes.push(
                "Fix the listed lines and upload the dataset again; a new upload starts a new run."
                    .into(),
            );
        }
        Milestone::Launched => {
            d.summary = format!(
                "A distillation job was started for `{dataset}`: {} teaches {}.",
                s.teacher, s.student
            );
            push_opt(&mut d, "Job name", &run.job_name);
            push_opt(&mut d, "Job ARN", &run.job_arn);
            push_opt(&mut d, "Custom model name", &run.custom_model_name);
            if let Some(v) = &run.validation {
                d.fields.push(("Records".into(), v.records.to_string()));
            }
            d.fields.push((
                "Serving".into(),
                match s.serving {
                    super::settings::ServingMode::None => "none (stops at the custom model)".into(),
                    super::settings::ServingMode::Provisioned => format!(
                        "Provisioned Throughput, {} model unit(s), commitment {}",
                        s.model_units,
                        s.commitment.as_str()
                    ),
                },
            ));
            d.links.push((
                "Customization jobs (AWS console)".into(),
                models_page.clone(),
            ));
        }
        Milestone::Completed => {
            d.summary = format!("The distilled model for `{dataset}` is trained.");
            push_opt(&mut d, "Custom model ARN", &run.custom_model_arn);
            push_opt(&mut d, "Job ARN", &run.job_arn);
            if let Some(dur) = run_duration(run, ctx.now) {
                d.fields.push(("Duration".into(), dur));
            }
            if let Some(v) = &run.validation {
                d.fields.push(("Records".into(), v.records.to_string()));
            }
            d.links
                .push(("Custom models (AWS console)".into(), models_page.clone()));
            d.notes.push(match s.serving {
                super::settings::ServingMode::Provisioned => format!(
                    "Provisioned Throughput ({} model unit(s)) is being bought next.",
                    s.model_units
                ),
                super::settings::ServingMode::None => {
                    "Serving was not requested: the custom model is stored (billed monthly) until you delete it."
                        .into()
                }
            });
        }
        Milestone::Failed | Milestone::Stopped | Milestone::TimedOut => {
            d.summary = match milestone {
                Milestone::Failed => format!("The distillation run for `{dataset}` failed."),
                Milestone::Stopped => format!(
                    "The distillation job for `{dataset}` was stopped; no model was produced."
                ),
                _ => format!(
                    "The distillation job for `{dataset}` ran past the allowed duration and was stopped."
                ),
            };
            d.fields.push((
                "Reason".into(),
                reason
                    .clone()
                    .unwrap_or_else(|| "no failure message was recorded".into()),
            ));
            push_opt(&mut d, "Job ARN", &run.job_arn);
            if let Some(dur) = run_duration(run, ctx.now) {
                d.fields.push(("Ran for".into(), dur));
            }
            if run.job_arn.is_some() {
                d.links.push((
                    "Customization jobs (AWS console)".into(),
                    models_page.clone(),
                ));
                d.notes.push(
                    "Tokens processed before the end are billed; a stopped or failed job cannot be resumed."
                        .into(),
                );
            }
        }
        Milestone::Ready => {
            d.summary =
                format!("The distilled model for `{dataset}` is served and billed by the hour.");
            push_opt(&mut d, "Provisioned model ARN", &run.provisioned_model_arn);
            push_opt(&mut d, "Custom model ARN", &run.custom_model_arn);
            d.fields.push((
                "Model units".into(),
                format!("{} (commitment {})", s.model_units, s.commitment.as_str()),
            ));
            d.fields
                .push(("Estimated cost".into(), hourly_cost(run, ctx.prices)));
            d.links.push((
                "Provisioned Throughput (AWS console)".into(),
                console_provisioned_throughput_url(ctx.region),
            ));
            let id = run
                .provisioned_model_arn
                .clone()
                .or_else(|| run.provisioned_model_name.clone())
                .unwrap_or_else(|| "<provisioned-model-arn>".into());
            let mut delete = format!(
                "It is billed every hour until deleted. To delete it: aws bedrock delete-provisioned-model-throughput --provisioned-model-id {id} --region {}",
                ctx.region
            );
            if s.commitment != Commitment::None {
                delete.push_str(&format!(
                    " (a {} commitment cannot be deleted before its term ends)",
                    s.commitment.as_str()
                ));
            }
            d.notes.push(delete);
        }
        Milestone::ProvisioningFailed => {
            d.summary = format!(
                "Provisioned Throughput for the model of `{dataset}` could not be bought; the custom model is kept."
            );
            d.fields.push((
                "Reason".into(),
                reason
                    .clone()
                    .unwrap_or_else(|| "no failure message was recorded".into()),
            ));
            push_opt(&mut d, "Custom model ARN", &run.custom_model_arn);
            push_opt(&mut d, "Provisioned model ARN", &run.provisioned_model_arn);
            d.fields.push((
                "Model units".into(),
                format!("{} (commitment {})", s.model_units, s.commitment.as_str()),
            ));
            d.links.push((
                "Provisioned Throughput (AWS console)".into(),
                console_provisioned_throughput_url(ctx.region),
            ));
            if run.provisioned_model_arn.is_some() {
                d.notes.push(
                    "Check the console: a failed Provisioned Throughput may still need deleting."
                        .into(),
                );
            }
        }
    }
    // A caught step error that differs from the recorded reason is shown too: it is the fresher fact.
    if let (Some(c), Some(r)) = (ctx.caught, &reason) {
        let caught = c.summary();
        if &caught != r && !matches!(milestone, Milestone::Rejected) {
            d.fields.push(("Step error".into(), caught));
        }
    }
    layout(d)
}

/// Renders a failure for which no run is on record (the validator crashed before creating one, or
/// the run id is unknown): says what the execution input says, never fails.
pub fn render_without_run(
    milestone: Milestone,
    run_id: Option<&str>,
    input: Option<&Value>,
    ctx: &MessageContext<'_>,
) -> RenderedMessage {
    let what = input.and_then(describe_input);
    let mut d = Draft {
        title: milestone.title().to_string(),
        subject_object: what
            .clone()
            .map(|(short, _)| short)
            .unwrap_or_else(|| "unknown input".into()),
        run_id: run_id.map(str::to_string),
        milestone: Some(milestone),
        region: ctx.region.to_string(),
        ..Default::default()
    };
    d.summary = match run_id {
        Some(id) => format!(
            "The pipeline reported `{}` for run `{id}`, which is not in the run ledger.",
            milestone.as_str()
        ),
        None => "The pipeline failed before a run was recorded (no run id).".to_string(),
    };
    if let Some((_, long)) = &what {
        d.fields.push(("Input".into(), long.clone()));
    }
    d.fields.push((
        "Error".into(),
        ctx.caught
            .map(CaughtError::summary)
            .unwrap_or_else(|| "no error details were passed".into()),
    ));
    if let Some(v) = input {
        let raw = serde_json::to_string(v).unwrap_or_default();
        d.list_title = "Execution input".into();
        d.list = vec![truncate_chars(&raw, 1000)];
    }
    d.notes.push(
        "Check the Step Functions execution history and the Lambda logs for this input.".into(),
    );
    layout(d)
}

/// Describes an execution input: (short name for the subject, longer description).
/// Knows the S3 EventBridge event, the CLI payload and the schedule payload of docs/contracts.md.
fn describe_input(v: &Value) -> Option<(String, String)> {
    let str_at = |ptr: &str| v.pointer(ptr).and_then(Value::as_str).map(str::to_string);
    let object = str_at("/detail/bucket/name")
        .zip(str_at("/detail/object/key"))
        .or_else(|| str_at("/bucket").zip(str_at("/key")));
    if let Some((bucket, key)) = object {
        let short = key.rsplit('/').next().unwrap_or(&key).to_string();
        return Some((short, format!("s3://{bucket}/{key}")));
    }
    if let Some(name) = str_at("/scheduleName") {
        let at = str_at("/scheduledTime").unwrap_or_default();
        return Some((
            name.clone(),
            format!("schedule {name} {at}").trim().to_string(),
        ));
    }
    None
}

fn push_opt(d: &mut Draft, label: &str, value: &Option<String>) {
    if let Some(v) = value {
        d.fields.push((label.to_string(), v.clone()));
    }
}

/// The recorded failure reason, else the caught error's summary.
fn failure_text(run: &Run, caught: Option<&CaughtError>) -> Option<String> {
    run.failure_reason
        .as_deref()
        .map(|r| truncate_chars(&one_line(r), MAX_REASON_CHARS))
        .or_else(|| caught.map(CaughtError::summary))
}

/// From launch to finish (or to now while running), as "3h 05m".
fn run_duration(run: &Run, now: DateTime<Utc>) -> Option<String> {
    let start = run.launched_at?;
    let end = run.finished_at.unwrap_or(now);
    Some(format_duration((end - start).num_seconds()))
}

pub fn format_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    if d > 0 {
        format!("{d}d {h}h {m:02}m")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// "about USD 42.00/hour (USD 1008.00/day) for 2 model unit(s) at USD 21.00 per unit-hour; unconfirmed
/// list prices as of 2026-11-27".
fn hourly_cost(run: &Run, prices: &Prices) -> String {
    let s = &run.settings;
    let Some(unit) = prices.model_unit_hour(&s.student) else {
        return format!(
            "unknown: no price for {} in the price table (as of {})",
            s.student, prices.as_of
        );
    };
    let hourly = unit * f64::from(s.model_units);
    let cur = &prices.currency;
    let provenance = if prices.confirmed {
        format!("list prices as of {}", prices.as_of)
    } else {
        format!("unconfirmed list prices as of {}", prices.as_of)
    };
    let mut text = format!(
        "about {cur} {hourly:.2}/hour ({cur} {:.2}/day) for {} model unit(s) at {cur} {unit:.2} per unit-hour; {provenance}",
        hourly * 24.0,
        s.model_units
    );
    if s.commitment != Commitment::None {
        text.push_str("; the no-commitment rate is shown, commitments are priced differently");
    }
    text
}

/// The Bedrock console's custom models page (it lists the models and the customization jobs).
/// Deep links to one item use an undocumented URL fragment, so we link to the list pages.
pub fn console_custom_models_url(region: &str) -> String {
    format!("https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/custom-models")
}

pub fn console_provisioned_throughput_url(region: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/bedrock/home?region={region}#/provisioned-throughput"
    )
}

fn layout(d: Draft) -> RenderedMessage {
    let milestone = d.milestone.unwrap_or(Milestone::Failed);
    RenderedMessage {
        milestone,
        subject: subject(&d),
        body: text_body(&d),
        slack: slack_payload(&d, milestone),
    }
}

/// "Distillery: Dataset rejected - my-data (run-0123456789abcdef0123)", ASCII, ≤ 99 chars; the
/// dataset part is shortened first so the run id survives.
fn subject(d: &Draft) -> String {
    let head = format!("Distillery: {} - ", d.title);
    let tail = d
        .run_id
        .as_ref()
        .map(|id| format!(" ({id})"))
        .unwrap_or_default();
    let object = ascii_line(&d.subject_object);
    let room = MAX_SUBJECT_CHARS.saturating_sub(head.len() + tail.len());
    let object = if object.chars().count() > room {
        truncate_chars(&object, room)
    } else {
        object
    };
    let s = ascii_line(&format!("{head}{object}{tail}"));
    truncate_chars(&s, MAX_SUBJECT_CHARS)
}

fn text_body(d: &Draft) -> String {
    let mut out = String::new();
    out.push_str(&d.summary.replace('`', ""));
    out.push_str("\n\n");
    if let Some(id) = &d.run_id {
        out.push_str(&format!("Run: {id}\n"));
    }
    for (label, value) in &d.fields {
        out.push_str(&format!("{label}: {value}\n"));
    }
    if !d.list.is_empty() {
        out.push_str(&format!("\n{}:\n", d.list_title));
        for item in &d.list {
            out.push_str(&format!("  - {item}\n"));
        }
    }
    if !d.links.is_empty() {
        out.push('\n');
        for (label, url) in &d.links {
            out.push_str(&format!("{label}: {url}\n"));
        }
    }
    for note in &d.notes {
        out.push_str(&format!("\n{note}\n"));
    }
    out.push_str(&format!(
        "\n-- \nDistillery, milestone {}, region {}\n",
        d.milestone.map(Milestone::as_str).unwrap_or("unknown"),
        d.region
    ));
    out
}

fn slack_payload(d: &Draft, milestone: Milestone) -> Value {
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate_chars(&format!("{} {}", milestone.emoji(), d.title), SLACK_HEADER_MAX),
                "emoji": true
            }
        }),
        json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": truncate_chars(&slack_escape(&d.summary), SLACK_TEXT_MAX) }
        }),
    ];
    // Section fields render as a two-column grid; Slack allows at most 10 per section.
    for chunk in d.fields.chunks(SLACK_MAX_FIELDS) {
        let fields: Vec<Value> = chunk
            .iter()
            .map(|(label, value)| {
                json!({
                    "type": "mrkdwn",
                    "text": truncate_chars(
                        &format!("*{}*\n{}", slack_escape(label), slack_escape(value)),
                        SLACK_FIELD_MAX
                    )
                })
            })
            .collect();
        blocks.push(json!({ "type": "section", "fields": fields }));
    }
    if !d.list.is_empty() {
        let items: Vec<String> = d
            .list
            .iter()
            .map(|i| format!("• {}", slack_escape(i)))
            .collect();
        blocks.push(json!({
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": truncate_chars(&format!("*{}*\n{}", slack_escape(&d.list_title), items.join("\n")), SLACK_TEXT_MAX)
            }
        }));
    }
    if !d.links.is_empty() || !d.notes.is_empty() {
        let mut lines: Vec<String> = d
            .links
            .iter()
            .map(|(label, url)| format!("<{url}|{}>", slack_escape(label)))
            .collect();
        lines.extend(d.notes.iter().map(|n| slack_escape(n)));
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": truncate_chars(&lines.join("\n"), SLACK_TEXT_MAX) }
        }));
    }
    let run = d
        .run_id
        .as_ref()
        .map(|id| format!("run `{id}`"))
        .unwrap_or_else(|| "no run id".into());
    blocks.push(json!({
        "type": "context",
        "elements": [{
            "type": "mrkdwn",
            "text": format!("Distillery | {run} | milestone `{}` | {}", milestone.as_str(), d.region)
        }]
    }));
    json!({ "text": subject(d), "blocks": blocks })
}

/// Slack mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Printable ASCII on one line: other characters become '?', whitespace runs one space.
fn ascii_line(s: &str) -> String {
    one_line(s)
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// At most `max` characters, ending in "..." when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(3);
    let mut out: String = s.chars().take(keep).collect();
    out.push_str(&"..."[..max.min(3)]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::run::{DatasetLocation, RunId, ValidationSummary};
    use crate::domain::settings::ServingMode;
    use crate::testing::sample_run;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0).unwrap()
    }

    fn run() -> Run {
        let mut r = sample_run(
            "data-bucket",
            "incoming/support-chats.jsonl",
            "abc",
            1234,
            t(10, 0),
        );
        r.run_id = RunId("run-0123456789abcdef0123".into());
        r.validation = Some(ValidationSummary {
            valid: true,
            records: 420,
            ..Default::default()
        });
        r
    }

    fn ctx(prices: &Prices) -> MessageContext<'_> {
        MessageContext {
            region: "us-west-2",
            prices,
            now: t(13, 5),
            caught: None,
        }
    }

    fn check_common(m: &RenderedMessage) {
        assert!(m.subject.len() <= MAX_SUBJECT_CHARS, "{}", m.subject);
        assert!(m.subject.is_ascii() && !m.subject.contains('\n'));
        let blocks = m.slack["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks.last().unwrap()["type"], "context");
        assert!(m.slack["text"]
            .as_str()
            .unwrap()
            .starts_with("Distillery: "));
        for b in blocks {
            if let Some(fields) = b["fields"].as_array() {
                assert!(fields.len() <= 10);
            }
        }
    }

    #[test]
    fn rejected_lists_first_errors_and_report() {
        let prices = Prices::builtin();
        let mut r = run();
        r.validation = Some(ValidationSummary {
            valid: false,
            records: 100,
            invalid_records: 7,
            error_count: 9,
            warning_count: 2,
            first_errors: (1..=8)
                .map(|i| format!("line {i}: [bad_role] role must be user or assistant <x>"))
                .collect(),
            report_uri: Some(
                "s3://data-bucket/reports/run-0123456789abcdef0123/report.json".into(),
            ),
        });
        let m = render_for_run(Milestone::Rejected, &r, &ctx(&prices));
        check_common(&m);
        assert_eq!(
            m.subject,
            "Distillery: Dataset rejected - support-chats (run-0123456789abcdef0123)"
        );
        assert!(m.body.contains("7 of 100 records are invalid"));
        assert!(m.body.contains("First 5 errors:"));
        assert!(m.body.contains("  - line 5: [bad_role]"));
        assert!(!m.body.contains("line 6:"));
        assert!(m.body.contains(
            "Full report: s3://data-bucket/reports/run-0123456789abcdef0123/report.json"
        ));
        let slack = m.slack.to_string();
        assert!(slack.contains("s3://data-bucket/reports/run-0123456789abcdef0123/report.json"));
        // User text is escaped for Slack mrkdwn.
        assert!(slack.contains("&lt;x&gt;"));
        assert!(slack.contains("run `run-0123456789abcdef0123`"));
    }

    #[test]
    fn launched_names_job_pair_and_records_with_console_link() {
        let prices = Prices::builtin();
        let mut r = run();
        r.job_name = Some("distill-support-chats-0123456789".into());
        r.job_arn = Some(
            "arn:aws:bedrock:us-west-2:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/abc".into(),
        );
        let m = render_for_run(Milestone::Launched, &r, &ctx(&prices));
        check_common(&m);
        assert!(m
            .body
            .contains("Job name: distill-support-chats-0123456789"));
        assert!(m
            .body
            .contains("Job ARN: arn:aws:bedrock:us-west-2:123456789012:model-customization-job/"));
        assert!(m
            .body
            .contains("Teacher -> student: amazon.nova-pro-v1:0 -> amazon.nova-lite-v1:0:300k"));
        assert!(m.body.contains("Records: 420"));
        let link =
            "https://us-west-2.console.aws.amazon.com/bedrock/home?region=us-west-2#/custom-models";
        assert!(m.body.contains(link));
        assert!(m.slack.to_string().contains(&format!("<{link}|")));
    }

    #[test]
    fn completed_has_model_arn_and_duration() {
        let prices = Prices::builtin();
        let mut r = run();
        r.custom_model_arn = Some("arn:aws:bedrock:us-west-2:123456789012:custom-model/x".into());
        r.launched_at = Some(t(10, 0));
        r.finished_at = Some(t(13, 5));
        let m = render_for_run(Milestone::Completed, &r, &ctx(&prices));
        check_common(&m);
        assert!(m
            .body
            .contains("Custom model ARN: arn:aws:bedrock:us-west-2:123456789012:custom-model/x"));
        assert!(m.body.contains("Duration: 3h 05m"));
    }

    #[test]
    fn failed_shows_bedrock_message_and_a_different_caught_error() {
        let prices = Prices::builtin();
        let mut r = run();
        r.failure_reason = Some("Insufficient training data\n  in s3 prefix".into());
        let caught = CaughtError {
            error: "Throttled".into(),
            cause: r#"{"errorType":"Throttled","errorMessage":"Bedrock throttled GetModelCustomizationJob"}"#.into(),
        };
        let mut c = ctx(&prices);
        c.caught = Some(&caught);
        let m = render_for_run(Milestone::Failed, &r, &c);
        check_common(&m);
        assert!(m
            .body
            .contains("Reason: Insufficient training data in s3 prefix"));
        assert!(m
            .body
            .contains("Step error: Throttled: Bedrock throttled GetModelCustomizationJob"));
        // Without a recorded reason the caught error is the reason.
        r.failure_reason = None;
        let m = render_for_run(Milestone::Failed, &r, &c);
        assert!(m
            .body
            .contains("Reason: Throttled: Bedrock throttled GetModelCustomizationJob"));
        assert!(!m.body.contains("Step error"));
    }

    #[test]
    fn stopped_and_timed_out_say_so() {
        let prices = Prices::builtin();
        let mut r = run();
        r.job_arn = Some("arn:aws:bedrock:us-west-2:1:model-customization-job/x/y".into());
        let m = render_for_run(Milestone::Stopped, &r, &ctx(&prices));
        check_common(&m);
        assert!(m.subject.starts_with("Distillery: Distillation stopped - "));
        assert!(m.body.contains("was stopped; no model was produced"));
        r.failure_reason = Some("job ran longer than 72h".into());
        let m = render_for_run(Milestone::TimedOut, &r, &ctx(&prices));
        assert!(m
            .subject
            .starts_with("Distillery: Distillation timed out - "));
        assert!(m.body.contains("Reason: job ran longer than 72h"));
    }

    #[test]
    fn ready_estimates_cost_with_provenance_and_explains_deletion() {
        let prices = Prices::builtin();
        let mut r = run();
        r.settings.serving = ServingMode::Provisioned;
        r.settings.model_units = 2;
        r.provisioned_model_arn =
            Some("arn:aws:bedrock:us-west-2:123456789012:provisioned-model/pm1".into());
        let m = render_for_run(Milestone::Ready, &r, &ctx(&prices));
        check_common(&m);
        let unit = prices
            .model_unit_hour("amazon.nova-lite-v1:0:300k")
            .unwrap();
        let hourly = format!("about USD {:.2}/hour", unit * 2.0);
        assert!(m.body.contains(&hourly), "{}", m.body);
        assert!(m
            .body
            .contains(&format!("unconfirmed list prices as of {}", prices.as_of)));
        assert!(m.body.contains("Model units: 2 (commitment None)"));
        assert!(m.body.contains(
            "aws bedrock delete-provisioned-model-throughput --provisioned-model-id arn:aws:bedrock:us-west-2:123456789012:provisioned-model/pm1 --region us-west-2"
        ));
        assert!(m.body.contains("#/provisioned-throughput"));
        // A committed one cannot be deleted early, and the message says so.
        r.settings.commitment = Commitment::OneMonth;
        let m = render_for_run(Milestone::Ready, &r, &ctx(&prices));
        assert!(m.body.contains("cannot be deleted before its term ends"));
    }

    #[test]
    fn confirmed_prices_are_not_called_unconfirmed() {
        let mut prices = Prices::builtin();
        prices.confirmed = true;
        let mut r = run();
        r.settings.serving = ServingMode::Provisioned;
        let m = render_for_run(Milestone::Ready, &r, &ctx(&prices));
        assert!(m.body.contains("; list prices as of"));
        assert!(!m.body.contains("unconfirmed"));
    }

    #[test]
    fn provisioning_failed_keeps_the_reason() {
        let prices = Prices::builtin();
        let mut r = run();
        r.failure_reason = Some("Insufficient model units".into());
        let m = render_for_run(Milestone::ProvisioningFailed, &r, &ctx(&prices));
        check_common(&m);
        assert!(m.body.contains("Reason: Insufficient model units"));
    }

    #[test]
    fn subject_is_ascii_and_short_even_for_long_unicode_names() {
        let prices = Prices::builtin();
        let mut r = run();
        r.dataset = DatasetLocation::S3Object {
            bucket: "b".into(),
            key: format!("incoming/{}\u{e9}t\u{e9}\n.jsonl", "x".repeat(200)),
            etag: "e".into(),
            version_id: None,
            size: 1,
        };
        for m in Milestone::ALL {
            let msg = render_for_run(m, &r, &ctx(&prices));
            check_common(&msg);
            assert_eq!(msg.subject.chars().count(), MAX_SUBJECT_CHARS);
            assert!(
                msg.subject.ends_with("... (run-0123456789abcdef0123)"),
                "{}",
                msg.subject
            );
        }
    }

    #[test]
    fn without_run_describes_the_input() {
        let prices = Prices::builtin();
        let caught = CaughtError {
            error: "States.TaskFailed".into(),
            cause: "Lambda crashed".into(),
        };
        let mut c = ctx(&prices);
        c.caught = Some(&caught);
        let input =
            json!({"detail": {"bucket": {"name": "bkt"}, "object": {"key": "incoming/a.jsonl"}}});
        let m = render_without_run(Milestone::Failed, None, Some(&input), &c);
        check_common(&m);
        assert_eq!(m.subject, "Distillery: Distillation failed - a.jsonl");
        assert!(m.body.contains("Input: s3://bkt/incoming/a.jsonl"));
        assert!(m.body.contains("Error: States.TaskFailed: Lambda crashed"));
        assert!(m.slack.to_string().contains("no run id"));
        let m = render_without_run(Milestone::Failed, None, None, &ctx(&prices));
        assert!(m.body.contains("Error: no error details were passed"));
        assert_eq!(m.subject, "Distillery: Distillation failed - unknown input");
    }

    #[test]
    fn milestones_parse_both_spellings_and_durations_format() {
        for m in Milestone::ALL {
            assert_eq!(Milestone::parse(m.as_str()), Some(m));
        }
        assert_eq!(Milestone::parse("timed-out"), Some(Milestone::TimedOut));
        assert_eq!(Milestone::parse("nope"), None);
        assert_eq!(format_duration(59), "59s");
        assert_eq!(format_duration(61), "1m 01s");
        assert_eq!(format_duration(90_061), "1d 1h 01m");
        assert_eq!(truncate_chars("abcdef", 5), "ab...");
    }
}
