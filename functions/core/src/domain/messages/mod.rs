//! Milestone messages: what people are told at each milestone of a run. Pure: the caller passes the
//! run, the region, the prices and the clock reading, so the content is fully testable.
//!
//! One [`MessageContent`] per message holds the facts; renderings are laid out from it, so an e-mail
//! subscriber and a Slack channel always see the same facts:
//! - [`text`]: the SNS subject and plain-text body (here: they are part of the message contract);
//! - Slack Block Kit: an adapter concern, in `distillery_aws::slack_blocks`.

pub mod gate;
mod on_demand;
mod parts;
mod rejected;
use parts::*;
pub use parts::{
    console_custom_models_url, console_provisioned_throughput_url, format_duration, serving_period,
};
#[cfg(test)]
mod tests;
mod text;

pub use on_demand::converse_command;
use text::one_line;
pub use text::truncate_chars;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::catalog::Prices;
use super::run::{Run, RunStatus};
use super::settings::Commitment;

/// SNS refuses subjects of 100 characters or more, non-ASCII text and line breaks.
pub const MAX_SUBJECT_CHARS: usize = 99;
/// How many validation errors a "rejected" message lists (the report in S3 has them all).
pub const MAX_LISTED_ERRORS: usize = 5;
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
    /// The pipeline gave up on a job but could not stop it: the run stays `training` for the
    /// reconciler, which retries the stop.
    StopFailed,
    Ready,
    ProvisioningFailed,
    /// A ready run's Provisioned Throughput is deleted within the hour (the reconciler sends it once
    /// per expiry; an extension gets its own).
    ExpiringSoon,
    /// The run's deployment or throughput was deleted (expired, or `distillery runs retire`).
    Retired,
    /// The student failed its quality gate: nothing bought, the evaluation deployment deleted.
    GateFailed,
    /// A scheduled curated run found too few new eligible records in its window: nothing launched.
    Skipped,
    /// A run waited in the launch queue longer than `MAX_QUEUE_HOURS`: nothing launched.
    Expired,
}

impl Milestone {
    pub const ALL: [Milestone; 14] = [
        Milestone::Rejected,
        Milestone::Launched,
        Milestone::Completed,
        Milestone::Failed,
        Milestone::Stopped,
        Milestone::TimedOut,
        Milestone::StopFailed,
        Milestone::Ready,
        Milestone::ProvisioningFailed,
        Milestone::ExpiringSoon,
        Milestone::Retired,
        Milestone::GateFailed,
        Milestone::Skipped,
        Milestone::Expired,
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
            Milestone::StopFailed => "stop_failed",
            Milestone::Ready => "ready",
            Milestone::ProvisioningFailed => "provisioning_failed",
            Milestone::ExpiringSoon => "expiring_soon",
            Milestone::Retired => "retired",
            Milestone::GateFailed => "gate_failed",
            Milestone::Skipped => "skipped",
            Milestone::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Milestone> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        Milestone::ALL.into_iter().find(|m| m.as_str() == norm)
    }

    /// The run statuses this milestone announces. The notifier refuses (`Conflict`) a milestone for a
    /// run the ledger records in any other status: a stray or late input must never broadcast news
    /// the ledger contradicts ("Distillation failed" for a completed run).
    pub fn announces(self) -> &'static [RunStatus] {
        match self {
            Milestone::Rejected => &[RunStatus::Rejected],
            Milestone::Launched => &[RunStatus::Training],
            Milestone::Completed => &[RunStatus::Completed],
            Milestone::Failed => &[RunStatus::Failed],
            Milestone::Stopped => &[RunStatus::Stopped],
            // The poller stops a job that overran and records the run stopped (records written
            // before the poller stopped rather than failed such runs say `failed`).
            Milestone::TimedOut => &[RunStatus::Stopped, RunStatus::Failed],
            // The pipeline gave up on the job but could not stop it: the run stays `training`
            // (the reconciler retries the stop).
            Milestone::StopFailed => &[RunStatus::Training],
            Milestone::Ready => &[RunStatus::Ready],
            Milestone::ProvisioningFailed => &[RunStatus::ProvisioningFailed],
            Milestone::ExpiringSoon => &[RunStatus::Ready],
            Milestone::Retired => &[RunStatus::Retired],
            Milestone::GateFailed => &[RunStatus::GateFailed],
            Milestone::Skipped => &[RunStatus::Skipped],
            Milestone::Expired => &[RunStatus::Expired],
        }
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
            Milestone::StopFailed => "Distillation job could not be stopped",
            Milestone::Ready => "Model ready to serve",
            Milestone::ProvisioningFailed => "Provisioning failed",
            Milestone::ExpiringSoon => "Provisioned Throughput expiring soon",
            Milestone::Retired => "Model serving retired",
            Milestone::GateFailed => "Quality gate failed",
            Milestone::Skipped => "Retraining skipped",
            Milestone::Expired => "Distillation expired in the queue",
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

/// One milestone message: its content, and the SNS subject and body laid out from it. Chat
/// adapters lay out their own rendering from `content`.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMessage {
    pub milestone: Milestone,
    /// ASCII, no line breaks, at most [`MAX_SUBJECT_CHARS`].
    pub subject: String,
    pub body: String,
    pub content: MessageContent,
}

/// The facts of one message, before it is laid out for a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageContent {
    pub title: String,
    /// What the subject names after the title (the dataset).
    pub subject_object: String,
    pub run_id: Option<String>,
    pub summary: String,
    /// Label and value, in order.
    pub fields: Vec<(String, String)>,
    /// A titled list (validation errors).
    pub list_title: String,
    pub list: Vec<String>,
    /// Label and URL.
    pub links: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub milestone: Option<Milestone>,
    pub region: String,
}

/// Renders the message for a milestone of a recorded run.
pub fn render_for_run(
    milestone: Milestone,
    run: &Run,
    ctx: &MessageContext<'_>,
) -> RenderedMessage {
    let s = &run.settings;
    let dataset = run.dataset.display_name();
    let mut d = MessageContent {
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
        Milestone::Rejected => rejected::rejected(&mut d, run, &dataset, &reason),
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
                if let Some(e) = &v.cost_estimate {
                    d.fields.push(("Estimated cost".into(), e.describe()));
                    if let Some(b) = e.budget_usd {
                        d.fields.push((
                            "Budget".into(),
                            format!(
                                "{} {} (the high estimate is within it)",
                                e.currency,
                                super::cost::format_budget(b)
                            ),
                        ));
                    }
                }
            }
            d.fields.push((
                "Serving".into(),
                match s.serving {
                    super::settings::ServingMode::None | super::settings::ServingMode::Auto => {
                        "none (stops at the custom model)".into()
                    }
                    super::settings::ServingMode::OnDemand => {
                        "on-demand custom model deployment (billed per token, nothing when idle)"
                            .into()
                    }
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
                super::settings::ServingMode::OnDemand => {
                    "An on-demand deployment is being created next (billed per token, nothing when idle)."
                        .into()
                }
                super::settings::ServingMode::None | super::settings::ServingMode::Auto => {
                    "Serving was not requested: the custom model is stored (billed monthly) until you delete it."
                        .into()
                }
            });
        }
        Milestone::Failed | Milestone::Stopped | Milestone::TimedOut | Milestone::StopFailed => {
            d.summary = match milestone {
                Milestone::Failed => format!("The distillation run for `{dataset}` failed."),
                Milestone::StopFailed => format!(
                    "The pipeline gave up on the distillation job for `{dataset}` but could not stop it: \
                     it may still be running and billed. The run stays `training`; the reconciler \
                     (scheduled, or `distillery runs reconcile`) retries the stop."
                ),
                Milestone::Stopped if run.job_arn.is_none() => format!(
                    "The distillation run for `{dataset}` was stopped while it waited for a job slot; nothing was launched or billed."
                ),
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
            d.notes.push(format!(
                "To try again: `distillery runs retry {}` (add --teacher, --student, --max-response-length, \
                 --serving, --model-units or --commitment to change a setting).",
                run.run_id
            ));
        }
        Milestone::GateFailed => gate::gate_failed(&mut d, run, ctx, &dataset, reason.clone()),
        Milestone::Skipped => skipped(&mut d, run),
        Milestone::Expired => expired(&mut d, run, &dataset),
        Milestone::Ready if s.serving == super::settings::ServingMode::OnDemand => {
            on_demand::ready(&mut d, run, ctx, &dataset)
        }
        Milestone::ProvisioningFailed if s.serving == super::settings::ServingMode::OnDemand => {
            on_demand::provisioning_failed(&mut d, run, ctx, &dataset, reason.clone())
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
            if s.commitment != Commitment::None {
                d.fields.push((
                    "Expires".into(),
                    format!(
                        "never by Distillery: a {} commitment cannot be deleted before its term ends",
                        s.commitment.as_str()
                    ),
                ));
                d.notes.push(format!(
                    "It is billed every hour for the whole {} term, and cannot be deleted before the term \
                     ends. After that: aws bedrock delete-provisioned-model-throughput --provisioned-model-id {id} --region {}",
                    s.commitment.as_str(),
                    ctx.region
                ));
            } else {
                if let Some(t) = run.serving_expires_at {
                    d.fields.push((
                        "Expires".into(),
                        format!(
                            "{} (in {}); Distillery then deletes it and billing stops",
                            rfc3339(t),
                            format_duration((t - ctx.now).num_seconds())
                        ),
                    ));
                }
                d.notes.push(format!(
                    "It is billed every hour until deleted. To keep it longer: `distillery runs extend {0} --hours N`. \
                     To delete it now: `distillery runs retire {0}`.",
                    run.run_id
                ));
            }
        }
        Milestone::ExpiringSoon => {
            let when = run
                .serving_expires_at
                .map(|t| {
                    format!(
                        "{} (in {})",
                        rfc3339(t),
                        format_duration((t - ctx.now).num_seconds())
                    )
                })
                .unwrap_or_else(|| "soon".into());
            d.summary = format!(
                "The Provisioned Throughput serving the model of `{dataset}` expires at {when}: \
                 Distillery then deletes it and the model is no longer served."
            );
            push_opt(&mut d, "Provisioned model ARN", &run.provisioned_model_arn);
            d.fields.push(("Expires".into(), when));
            d.notes.push(format!(
                "To keep it longer: `distillery runs extend {0} --hours N`. To delete it now: \
                 `distillery runs retire {0}`. To let it go: do nothing.",
                run.run_id
            ));
        }
        Milestone::Retired => {
            let served = serving_period(run);
            let what = if run.deployment_arn.is_some() {
                "on-demand deployment"
            } else {
                "Provisioned Throughput"
            };
            d.summary = format!(
                "The {what} serving the model of `{dataset}` was deleted: the model is no longer served \
                 and nothing more is billed for serving it."
            );
            push_opt(&mut d, "Provisioned model ARN", &run.provisioned_model_arn);
            push_opt(&mut d, "Deployment ARN", &run.deployment_arn);
            push_opt(&mut d, "Custom model ARN", &run.custom_model_arn);
            if let Some(detail) = run
                .history
                .iter()
                .rev()
                .find(|h| h.to == RunStatus::Retired)
                .and_then(|h| h.detail.clone())
            {
                d.fields.push(("Why".into(), detail));
            }
            if let Some((from, to)) = served {
                let hours = (to - from).num_seconds().max(0) as f64 / 3600.0;
                d.fields.push((
                    "Served".into(),
                    format!("{hours:.2} hour(s), {} to {}", rfc3339(from), rfc3339(to)),
                ));
                if run.deployment_arn.is_none() {
                    d.fields
                        .push(("Cost incurred".into(), serving_cost(run, hours, ctx.prices)));
                } else {
                    d.fields.push((
                        "Cost incurred".into(),
                        "billed per token used (nothing when idle); see the AWS bill".into(),
                    ));
                }
            }
            d.notes.push(
                "The custom model is kept: its storage is billed monthly until you delete it."
                    .into(),
            );
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
    if milestone != Milestone::GateFailed {
        gate::push_gate_fields(&mut d, run);
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
/// Only the object (or schedule), the error's type and a generic reason: never the raw input (an S3
/// event carries the uploader's principal and IP) nor the error's message (it may quote the input).
pub fn render_without_run(
    milestone: Milestone,
    run_id: Option<&str>,
    input: Option<&Value>,
    ctx: &MessageContext<'_>,
) -> RenderedMessage {
    let what = input.and_then(describe_input);
    let mut d = MessageContent {
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
            .map(parts::generic_error)
            .unwrap_or_else(|| "no error details were passed".into()),
    ));
    d.notes.push(
        "Check the Step Functions execution history and the Lambda logs for this input (the \
         message leaves out the input and the error's details)."
            .into(),
    );
    layout(d)
}

fn layout(d: MessageContent) -> RenderedMessage {
    RenderedMessage {
        milestone: d.milestone.unwrap_or(Milestone::Failed),
        subject: text::subject(&d),
        body: text::body(&d),
        content: d,
    }
}
