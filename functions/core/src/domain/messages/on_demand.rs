//! The *ready* and *provisioning failed* messages of an on-demand run (`serving: on-demand`): a
//! custom model deployment, billed per token and nothing when idle, instead of Provisioned
//! Throughput billed by the hour.

use super::{console_custom_models_url, push_opt, MessageContent, MessageContext};
use crate::domain::catalog::PriceFigure;
use crate::domain::run::Run;

/// The prompt the copy-pasteable call sends: short, so trying it costs a fraction of a cent.
const CONVERSE_MESSAGES: &str = r#"[{"role":"user","content":[{"text":"Hello"}]}]"#;

/// The AWS CLI call that sends one message to the deployment (its ARN is the `modelId`).
pub fn converse_command(region: &str, deployment_arn: &str) -> String {
    format!(
        "aws bedrock-runtime converse --region {region} --model-id {deployment_arn} --messages '{CONVERSE_MESSAGES}'"
    )
}

pub(super) fn ready(d: &mut MessageContent, run: &Run, ctx: &MessageContext<'_>, dataset: &str) {
    d.summary = format!(
        "The distilled model for `{dataset}` is served on demand: billed per token, nothing when idle."
    );
    push_opt(d, "Deployment ARN", &run.deployment_arn);
    push_opt(d, "Custom model ARN", &run.custom_model_arn);
    d.fields
        .push(("On-demand price".into(), on_demand_price(run, ctx)));
    d.links.push((
        "Custom models and deployments (AWS console)".into(),
        console_custom_models_url(ctx.region),
    ));
    let arn = run
        .deployment_arn
        .clone()
        .unwrap_or_else(|| "<deployment-arn>".into());
    d.notes.push(format!(
        "Call it (the deployment ARN is the model id for Converse and InvokeModel): {}",
        converse_command(ctx.region, &arn)
    ));
    // `runs retire` rather than the raw delete: it records the run `retired`, so the ledger keeps
    // saying what serves and what does not.
    d.notes.push(format!(
        "The deployment costs nothing while idle; the custom model's storage is billed monthly. To delete \
         the deployment: `distillery runs retire {}`.",
        run.run_id
    ));
}

pub(super) fn provisioning_failed(
    d: &mut MessageContent,
    run: &Run,
    ctx: &MessageContext<'_>,
    dataset: &str,
    reason: Option<String>,
) {
    d.summary = format!(
        "The on-demand deployment of the model of `{dataset}` failed; the custom model is kept."
    );
    d.fields.push((
        "Reason".into(),
        reason.unwrap_or_else(|| "no failure message was recorded".into()),
    ));
    push_opt(d, "Custom model ARN", &run.custom_model_arn);
    push_opt(d, "Deployment ARN", &run.deployment_arn);
    d.links.push((
        "Custom models and deployments (AWS console)".into(),
        console_custom_models_url(ctx.region),
    ));
    d.notes.push(
        "A failed deployment bills nothing. The custom model is kept (its storage is billed monthly): \
         deploy it from the console once the cause is fixed, or delete it."
            .into(),
    );
}

/// "USD 0.00006 per 1,000 input tokens, USD 0.00024 per 1,000 output tokens (unconfirmed list price
/// as of 2026-11-27)", from the student's figures in the run's Region.
fn on_demand_price(run: &Run, ctx: &MessageContext<'_>) -> String {
    let student = &run.settings.student;
    let figures = ctx.prices.model(student, ctx.region).and_then(|m| {
        Some((
            m.custom_model_on_demand_input_per1k_tokens.as_ref()?,
            m.custom_model_on_demand_output_per1k_tokens.as_ref()?,
        ))
    });
    let Some((input, output)) = figures else {
        return format!(
            "unknown: the price table (as of {}) has no on-demand figure for custom {student} in {}",
            ctx.prices.as_of, ctx.region
        );
    };
    let cur = &ctx.prices.currency;
    let (i, o) = (provenance(input), provenance(output));
    // One provenance when both figures share it (the usual case), else each its own.
    let (i_note, o_note) = if i == o {
        (String::new(), format!(" ({i})"))
    } else {
        (format!(" ({i})"), format!(" ({o})"))
    };
    format!(
        "{cur} {} per 1,000 input tokens{i_note}, {cur} {} per 1,000 output tokens{o_note}",
        per_1k(input.usd),
        per_1k(output.usd),
    )
}

fn provenance(f: &PriceFigure) -> String {
    if f.confirmed {
        format!("list price as of {}", f.as_of)
    } else {
        format!("unconfirmed list price as of {}", f.as_of)
    }
}

/// Per-token prices are fractions of a cent: up to 6 decimals, trailing zeros dropped
/// (0.00006, 0.0008, 0.01).
fn per_1k(usd: f64) -> String {
    let s = format!("{usd:.6}");
    let s = s.trim_end_matches('0');
    let s = s.strip_suffix('.').unwrap_or(s);
    if s.contains('.') {
        s.to_string()
    } else {
        format!("{s}.00")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_1k_keeps_the_significant_decimals() {
        assert_eq!(per_1k(0.00006), "0.00006");
        assert_eq!(per_1k(0.0008), "0.0008");
        assert_eq!(per_1k(0.00024), "0.00024");
        assert_eq!(per_1k(0.01), "0.01");
        assert_eq!(per_1k(2.0), "2.00");
    }
}
