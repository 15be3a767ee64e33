//! The small pieces every message is built from: durations, costs, console links, the run's
//! failure text, a described execution input.

use super::*;

/// Describes an execution input: (short name for the subject, longer description).
/// Knows the S3 EventBridge event, the CLI payload and the schedule payload of docs/contracts.md.
pub(super) fn describe_input(v: &Value) -> Option<(String, String)> {
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

/// "Throttled: an AWS service throttled a call and the retries ran out": the caught error's type
/// and a fixed reason for it, without its message (which may quote the execution's input). The type
/// is the Lambda's `errorType` (from the Cause when the Error is a `States.*` wrapper), kept to the
/// characters error types are made of.
pub(super) fn generic_error(caught: &CaughtError) -> String {
    let from_cause = serde_json::from_str::<Value>(&caught.cause)
        .ok()
        .and_then(|v| {
            v.get("errorType")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let error = caught.error.trim();
    let kind = match from_cause {
        Some(t) if error.is_empty() || error.starts_with("States.") => t,
        _ => error.to_string(),
    };
    let kind: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect();
    let reason = match kind.as_str() {
        "DatasetInvalid" | "DatasetRejected" => "the dataset broke a validation rule",
        "ConfigInvalid" => "a setting or the stack's configuration is invalid",
        "Throttled" => "an AWS service throttled a call and the retries ran out",
        "QuotaExceeded" => "a service quota is exhausted",
        "GuardrailViolation" => "a cost guardrail refused the action",
        "NotFound" => "something the step needed does not exist",
        "Conflict" => "the run changed concurrently, or is in the wrong state for the step",
        "AccessDenied" => "a permission is missing",
        "InvalidInput" => "the step did not understand its input",
        "Transient" => "a dependency failed and the retries ran out",
        "States.Timeout" | "States.HeartbeatTimeout" => "the step timed out",
        k if k.starts_with("States.") => "the state machine could not run the step",
        _ => "the step failed unexpectedly",
    };
    if kind.is_empty() {
        reason.to_string()
    } else {
        format!("{kind}: {reason}")
    }
}

/// A run that waited in the launch queue past `MAX_QUEUE_HOURS`: why it waited, since when, and
/// how to try again.
pub(super) fn expired(d: &mut MessageContent, run: &Run, dataset: &str) {
    d.summary = format!(
        "The distillation run for `{dataset}` waited for a job slot longer than allowed and expired; nothing was launched or billed."
    );
    if let Some(q) = &run.queue {
        d.fields.push((
            "Queued since".into(),
            q.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
        d.fields.push(("Waiting because".into(), q.reason.clone()));
    }
    if let Some(r) = &run.failure_reason {
        d.fields.push(("Reason".into(), r.clone()));
    }
    d.notes.push(format!(
        "The account's distillation jobs stayed at the stack's limit (MAX_CONCURRENT_JOBS) or Bedrock's quota. \
         To try again: `distillery runs retry {}`; to wait longer, raise MAX_QUEUE_HOURS.",
        run.run_id
    ));
}

/// A skipped scheduled run: the one sentence the validator recorded (how many new eligible records
/// against `MIN_NEW_RECORDS`, and the window), then the window and the count as fields.
pub(super) fn skipped(d: &mut MessageContent, run: &Run) {
    let why = run
        .history
        .iter()
        .rev()
        .find(|h| h.to == RunStatus::Skipped)
        .and_then(|h| h.detail.clone());
    d.summary = match &why {
        Some(why) => format!("Retraining from invocation logs was skipped: {why}."),
        None => "Retraining from invocation logs was skipped: too few new eligible records; nothing was launched.".into(),
    };
    if let Some(w) = run.dataset.log_window() {
        d.fields.push(("Window".into(), w.describe()));
    }
    if let Some(name) = run.dataset.schedule_name() {
        d.fields.push(("Schedule".into(), name.to_string()));
    }
    if let Some(v) = &run.validation {
        d.fields
            .push(("New eligible records".into(), v.records.to_string()));
        if let Some(uri) = &v.report_uri {
            d.fields.push(("Full report".into(), uri.clone()));
        }
    }
    d.notes.push(
        "Nothing to do: the next scheduled run covers this window too. To check a filter now: \
         `distillery logs preview <log prefix> --filter '<requestMetadataFilters JSON>'`."
            .into(),
    );
}

pub(super) fn push_opt(d: &mut MessageContent, label: &str, value: &Option<String>) {
    if let Some(v) = value {
        d.fields.push((label.to_string(), v.clone()));
    }
}

/// The recorded failure reason, else the caught error's summary.
pub(super) fn failure_text(run: &Run, caught: Option<&CaughtError>) -> Option<String> {
    run.failure_reason
        .as_deref()
        .map(|r| truncate_chars(&one_line(r), MAX_REASON_CHARS))
        .or_else(|| caught.map(CaughtError::summary))
}

/// From launch to finish (or to now while running), as "3h 05m".
pub(super) fn run_duration(run: &Run, now: DateTime<Utc>) -> Option<String> {
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
pub(super) fn hourly_cost(run: &Run, prices: &Prices) -> String {
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

pub(super) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// When the run's serving began (its move to `ready`) and ended (`retired_at`).
pub fn serving_period(run: &Run) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let from = run
        .history
        .iter()
        .rev()
        .find(|h| h.to == RunStatus::Ready)
        .map(|h| h.at)?;
    Some((from, run.retired_at?))
}

/// "USD 10.50 (0.50 hour(s) x 1 model unit(s) x USD 21.00 per unit-hour, no-commitment list price
/// as of 2026-11-27, unconfirmed)".
pub(super) fn serving_cost(run: &Run, hours: f64, prices: &Prices) -> String {
    let s = &run.settings;
    let Some(figure) = prices.model_unit_hour_figure(&s.student) else {
        return format!(
            "unknown: no Provisioned Throughput price for {} in prices.json",
            s.student
        );
    };
    let cur = &prices.currency;
    let total = hours * f64::from(s.model_units) * figure.usd;
    format!(
        "{cur} {total:.2} ({hours:.2} hour(s) x {} model unit(s) x {cur} {:.2} per unit-hour, no-commitment list price as of {}{})",
        s.model_units,
        figure.usd,
        figure.as_of,
        if figure.confirmed { "" } else { ", unconfirmed" }
    )
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
