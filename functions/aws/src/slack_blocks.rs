//! Slack Block Kit layout of a milestone message (the chat rendering; the SNS one is the core's
//! `domain::messages::text`). Both come from the same `MessageContent`, so the facts match.

use distillery_core::domain::messages::{truncate_chars, Milestone, RenderedMessage};
use serde_json::{json, Value};

// Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
const SLACK_HEADER_MAX: usize = 150;
const SLACK_TEXT_MAX: usize = 3000;
const SLACK_FIELD_MAX: usize = 2000;
const SLACK_MAX_FIELDS: usize = 10;

/// The incoming-webhook payload for `message`: the subject as the `text` fallback (notifications,
/// clients without blocks) and Block Kit `blocks` laid out from the message's content.
pub fn payload(message: &RenderedMessage) -> Value {
    let d = &message.content;
    let milestone = message.milestone;
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate_chars(&format!("{} {}", emoji(milestone), d.title), SLACK_HEADER_MAX),
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
    json!({ "text": message.subject, "blocks": blocks })
}

/// Slack mrkdwn treats `&`, `<` and `>` as control characters.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(milestone: Milestone) -> &'static str {
    match milestone {
        Milestone::Launched => ":rocket:",
        Milestone::Completed => ":white_check_mark:",
        Milestone::Ready => ":large_green_circle:",
        Milestone::Stopped => ":octagonal_sign:",
        Milestone::TimedOut => ":hourglass:",
        Milestone::StopFailed => ":rotating_light:",
        Milestone::ExpiringSoon => ":alarm_clock:",
        Milestone::Retired => ":wastebasket:",
        Milestone::Skipped => ":fast_forward:",
        Milestone::Expired => ":hourglass:",
        Milestone::Rejected
        | Milestone::Failed
        | Milestone::ProvisioningFailed
        | Milestone::GateFailed => ":x:",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use distillery_core::domain::catalog::Prices;
    use distillery_core::domain::messages::{render_for_run, render_without_run, CaughtError};
    use distillery_core::testing::messages::{context, launched_run, rejected_run, run};

    /// The layout every Slack message keeps (moved from the core's message tests with the layout):
    /// a header first, the run/milestone context last, the subject as the `text` fallback, at most
    /// 10 fields per section.
    fn check_layout(m: &RenderedMessage) -> Value {
        let p = payload(m);
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks.last().unwrap()["type"], "context");
        assert!(p["text"].as_str().unwrap().starts_with("Distillery: "));
        assert_eq!(p["text"], m.subject);
        for b in blocks {
            if let Some(fields) = b["fields"].as_array() {
                assert!(fields.len() <= SLACK_MAX_FIELDS);
            }
        }
        p
    }

    #[test]
    fn every_milestone_has_the_layout() {
        let prices = Prices::builtin();
        for milestone in Milestone::ALL {
            check_layout(&render_for_run(milestone, &run(), &context(&prices)));
        }
    }

    #[test]
    fn rejected_links_the_report_escapes_user_text_and_names_the_run() {
        let prices = Prices::builtin();
        let m = render_for_run(Milestone::Rejected, &rejected_run(), &context(&prices));
        let slack = check_layout(&m).to_string();
        assert!(slack.contains("s3://data-bucket/reports/run-0123456789abcdef0123/report.json"));
        // User text is escaped for Slack mrkdwn.
        assert!(slack.contains("&lt;x&gt;"));
        assert!(slack.contains("run `run-0123456789abcdef0123`"));
    }

    #[test]
    fn launched_links_the_console() {
        let prices = Prices::builtin();
        let m = render_for_run(Milestone::Launched, &launched_run(), &context(&prices));
        let link =
            "https://us-west-2.console.aws.amazon.com/bedrock/home?region=us-west-2#/custom-models";
        assert!(check_layout(&m).to_string().contains(&format!("<{link}|")));
    }

    #[test]
    fn on_demand_ready_gives_the_deployment_arn_and_a_converse_call_intact() {
        use distillery_core::domain::messages::converse_command;
        use distillery_core::domain::settings::ServingMode;
        let prices = Prices::builtin();
        let mut r = run();
        r.settings.serving = ServingMode::OnDemand;
        let arn = "arn:aws:bedrock:us-west-2:123456789012:custom-model-deployment/d1";
        r.deployment_arn = Some(arn.into());
        let m = render_for_run(Milestone::Ready, &r, &context(&prices));
        let p = check_layout(&m);
        let texts: Vec<String> = p["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| {
                let mut t: Vec<String> = b["text"]["text"]
                    .as_str()
                    .map(str::to_string)
                    .into_iter()
                    .collect();
                if let Some(fields) = b["fields"].as_array() {
                    t.extend(
                        fields
                            .iter()
                            .filter_map(|f| f["text"].as_str().map(str::to_string)),
                    );
                }
                t
            })
            .collect();
        let all = texts.join("\n");
        assert!(all.contains(&format!("*Deployment ARN*\n{arn}")), "{all}");
        // Nothing in the command needs Slack escaping: it reaches the channel copy-pasteable.
        assert!(all.contains(&converse_command("us-west-2", arn)), "{all}");
    }

    #[test]
    fn a_message_without_a_run_says_so() {
        let prices = Prices::builtin();
        let caught = CaughtError {
            error: "States.TaskFailed".into(),
            cause: "Lambda crashed".into(),
        };
        let mut c = context(&prices);
        c.caught = Some(&caught);
        let m = render_without_run(Milestone::Failed, None, None, &c);
        assert!(check_layout(&m).to_string().contains("no run id"));
    }
}
