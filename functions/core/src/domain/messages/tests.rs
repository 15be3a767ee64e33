use super::*;
use crate::domain::run::DatasetLocation;
use crate::domain::settings::ServingMode;
use serde_json::json;

use crate::testing::messages::{at as t, context as ctx, launched_run, rejected_run, run};

fn check_common(m: &RenderedMessage) {
    assert!(m.subject.len() <= MAX_SUBJECT_CHARS, "{}", m.subject);
    assert!(m.subject.is_ascii() && !m.subject.contains('\n'));
    // The content every rendering is laid out from (the Slack layout's own checks are in
    // distillery-aws `slack_blocks`).
    assert_eq!(m.content.milestone, Some(m.milestone));
    assert!(m
        .subject
        .starts_with(&format!("Distillery: {}", m.content.title)));
}

#[test]
fn rejected_lists_first_errors_and_report() {
    let prices = Prices::builtin();
    let r = rejected_run();
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
    assert!(m
        .body
        .contains("Full report: s3://data-bucket/reports/run-0123456789abcdef0123/report.json"));
    // The raw text reaches the content; the Slack layout escapes it (distillery-aws tests).
    assert!(m.content.list.iter().any(|l| l.contains("<x>")));
}

#[test]
fn launched_names_job_pair_and_records_with_console_link() {
    let prices = Prices::builtin();
    let r = launched_run();
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
    assert!(m.content.links.iter().any(|(_, url)| url == link));
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
fn a_run_stopped_or_expired_in_the_queue_says_nothing_was_launched() {
    let prices = Prices::builtin();
    let mut r = run();
    r.job_arn = None;
    r.failure_reason = Some("stopped while queued by alice; nothing was launched".into());
    let m = render_for_run(Milestone::Stopped, &r, &ctx(&prices));
    check_common(&m);
    assert!(
        m.body
            .contains("stopped while it waited for a job slot; nothing was launched or billed"),
        "{}",
        m.body
    );
    assert!(!m.body.contains("Tokens processed"), "{}", m.body);
    r.queue = Some(crate::domain::run::QueueEntry {
        since: chrono::Utc::now(),
        reason: "all 2 job slot(s) taken (MAX_CONCURRENT_JOBS)".into(),
        task_token: Some("secret-token".into()),
        held_until: None,
        quota_refusals: 0,
        for_serving: false,
        admitted_at: None,
    });
    r.failure_reason =
        Some("waited for a job slot since ... (longer than MAX_QUEUE_HOURS = 72)".into());
    let m = render_for_run(Milestone::Expired, &r, &ctx(&prices));
    check_common(&m);
    assert!(m.subject.contains("Distillation expired in the queue"));
    assert!(m.body.contains("all 2 job slot(s) taken"), "{}", m.body);
    assert!(m.body.contains("distillery runs retry"), "{}", m.body);
    assert!(
        !m.body.contains("secret-token"),
        "the wait's token is never shown"
    );
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
    assert!(m.body.contains("#/provisioned-throughput"));
    // No commitment: the expiry, and how to extend or retire it now.
    r.serving_expires_at = Some(t(13, 5) + chrono::Duration::hours(24));
    let m = render_for_run(Milestone::Ready, &r, &ctx(&prices));
    assert!(
        m.body.contains(
            "Expires: 2026-11-28T13:05:00Z (in 1d 0h 00m); Distillery then deletes it and billing stops"
        ),
        "{}",
        m.body
    );
    assert!(m
        .body
        .contains("`distillery runs extend run-0123456789abcdef0123 --hours N`"));
    assert!(m
        .body
        .contains("`distillery runs retire run-0123456789abcdef0123`"));
    // A committed one has no expiry and cannot be deleted early, and the message says so plainly.
    r.settings.commitment = Commitment::OneMonth;
    r.serving_expires_at = None;
    let m = render_for_run(Milestone::Ready, &r, &ctx(&prices));
    assert!(
        m.body.contains(
            "Expires: never by Distillery: a OneMonth commitment cannot be deleted before its term ends"
        ),
        "{}",
        m.body
    );
    assert!(m.body.contains(
        "aws bedrock delete-provisioned-model-throughput --provisioned-model-id arn:aws:bedrock:us-west-2:123456789012:provisioned-model/pm1 --region us-west-2"
    ));
    assert!(!m.body.contains("runs extend"));
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
    assert!(
        m.body
            .contains("Error: States.TaskFailed: the state machine could not run the step"),
        "{}",
        m.body
    );
    assert_eq!(m.content.run_id, None);
    let m = render_without_run(Milestone::Failed, None, None, &ctx(&prices));
    assert!(m.body.contains("Error: no error details were passed"));
    assert_eq!(m.subject, "Distillery: Distillation failed - unknown input");
}

/// Issue 16: a message about an execution with no run carries the bucket, the key, the error's
/// type and a generic reason; never the S3 event's requester or source IP address, nor the
/// error's message (which may quote the input or a record).
#[test]
fn without_run_leaks_neither_the_event_nor_the_error_message() {
    let prices = Prices::builtin();
    let mut input: Value =
        serde_json::from_str(include_str!("../../../../../events/s3-object-created.json")).unwrap();
    // The uploader's principal and address, as real S3 events carry them.
    input["detail"]["requester"] = json!("arn:aws:iam::999988887777:user/uploader");
    input["detail"]["source-ip-address"] = json!("203.0.113.77");
    let cause = json!({
        "errorType": "InvalidInput",
        "errorMessage": "unexpected field 'secret-record-value' in {\"requester\":\"123456789012\"}",
    });
    for caught in [
        CaughtError {
            error: "InvalidInput".into(),
            cause: cause.to_string(),
        },
        // A Step Functions wrapper: the Lambda's own type is read from the Cause.
        CaughtError {
            error: "States.TaskFailed".into(),
            cause: cause.to_string(),
        },
    ] {
        let mut c = ctx(&prices);
        c.caught = Some(&caught);
        let m = render_without_run(Milestone::Failed, None, Some(&input), &c);
        check_common(&m);
        let everything = format!("{}\n{}\n{:?}", m.subject, m.body, m.content);
        for leaked in [
            "999988887777",
            "uploader",
            "203.0.113.77",
            "N4N7GDK58NMKJ12R",
            "IYV3p45BhZA5",
            "secret-record-value",
            "requester",
            "source-ip",
            "sourceIPAddress",
        ] {
            assert!(!everything.contains(leaked), "{leaked} in {everything}");
        }
        assert!(
            m.body.contains(
                "Input: s3://distillery-datasets-123456789012/incoming/support-tickets.jsonl"
            ) && m
                .body
                .contains("Error: InvalidInput: the step did not understand its input"),
            "{}",
            m.body
        );
        assert!(m.content.list.is_empty(), "{:?}", m.content.list);
    }
    // An error type is kept to the characters error types are made of.
    let odd = CaughtError {
        error: "Bad\nType <b>x</b>".into(),
        cause: String::new(),
    };
    let mut c = ctx(&prices);
    c.caught = Some(&odd);
    let m = render_without_run(Milestone::Failed, None, None, &c);
    assert!(
        m.body
            .contains("Error: BadTypebxb: the step failed unexpectedly"),
        "{}",
        m.body
    );
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

#[test]
fn a_settings_rejection_says_what_to_fix_and_how_to_retry_not_which_lines() {
    let prices = Prices::builtin();
    let mut r = rejected_run();
    let reason =
        "modelUnits 5 exceeds the stack's maximum of 1 (raise MAX_MODEL_UNITS to allow it); \
                  the value came from S3 metadata x-amz-meta-distillery-model-units";
    r.validation = Some(crate::domain::run::ValidationSummary {
        valid: false,
        first_errors: vec![reason.into()],
        report_uri: Some("s3://data-bucket/reports/x/report.json".into()),
        ..Default::default()
    });
    r.failure_reason = Some(reason.into());
    let m = render_for_run(Milestone::Rejected, &r, &ctx(&prices));
    check_common(&m);
    assert!(!m.body.contains("0 of 0 records"), "{}", m.body);
    assert!(!m.body.contains("listed lines"), "{}", m.body);
    assert!(
        m.body
            .contains("rejected before any record was read: modelUnits 5 exceeds"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("x-amz-meta-distillery-model-units"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains(&format!(
            "distillery runs retry {} --<setting> <value>",
            r.run_id
        )),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("upload the same file again with corrected"),
        "{}",
        m.body
    );
}

#[test]
fn a_failure_tells_how_to_retry() {
    let prices = Prices::builtin();
    let mut r = launched_run();
    r.failure_reason = Some("boom".into());
    let m = render_for_run(Milestone::Failed, &r, &ctx(&prices));
    assert!(
        m.body
            .contains(&format!("distillery runs retry {}", r.run_id)),
        "{}",
        m.body
    );
}

fn estimate(budget: Option<f64>) -> crate::domain::cost::CostEstimate {
    use crate::domain::cost::{estimate, CostInputs, TokenCounts};
    let r = launched_run();
    let tokens = TokenCounts {
        prompts: 420,
        prompt_tokens: 42_000,
        given_answer_tokens: 21_000,
    };
    let inputs = CostInputs {
        settings: &r.settings,
        region: "us-east-1",
        pt_ttl_hours: 24.0,
    };
    estimate(&tokens, &inputs, &Prices::builtin()).with_budget(budget)
}

#[test]
fn launched_gives_the_cost_estimate_and_says_when_prices_are_unconfirmed() {
    let prices = Prices::builtin();
    let mut r = launched_run();
    let e = estimate(Some(50.0));
    r.validation.as_mut().unwrap().cost_estimate = Some(e.clone());
    let m = render_for_run(Milestone::Launched, &r, &ctx(&prices));
    check_common(&m);
    let line = format!(
        "Estimated cost: USD {:.2} to USD {:.2} (teacher generation",
        e.low_usd, e.high_usd
    );
    assert!(m.body.contains(&line), "{}", m.body);
    assert!(
        m.body.contains("unconfirmed price(s) from prices.json"),
        "{}",
        m.body
    );
    assert!(m
        .body
        .contains("Budget: USD 50 (the high estimate is within it)"));
    // Without an estimate (a run recorded before estimates existed) the message is as before.
    let m = render_for_run(Milestone::Launched, &launched_run(), &ctx(&prices));
    assert!(!m.body.contains("Estimated cost"));
}

#[test]
fn rejected_over_budget_says_the_dataset_is_valid_and_names_the_figures() {
    let prices = Prices::builtin();
    let mut r = launched_run();
    let e = estimate(Some(0.01));
    let err = e
        .over_budget_error("S3 metadata x-amz-meta-distillery-max-run-cost-usd")
        .unwrap();
    r.status = crate::domain::run::RunStatus::Rejected;
    r.failure_reason = Some(err.message.clone());
    let v = r.validation.as_mut().unwrap();
    v.valid = false;
    v.first_errors = vec![err.message.clone()];
    v.cost_estimate = Some(e.clone());
    let m = render_for_run(Milestone::Rejected, &r, &ctx(&prices));
    check_common(&m);
    assert!(
        m.body.contains(&format!(
            "is valid but the run was rejected: over_budget: the high cost estimate USD {:.2} exceeds the budget USD 0.01",
            e.high_usd
        )),
        "{}",
        m.body
    );
    assert!(!m.body.contains("records are invalid"), "{}", m.body);
    assert!(m.body.contains("raise the budget"), "{}", m.body);
}

fn on_demand_ready_run() -> Run {
    let mut r = run();
    r.settings.serving = ServingMode::OnDemand;
    r.custom_model_arn = Some("arn:aws:bedrock:us-east-1:123456789012:custom-model/m1".into());
    r.deployment_arn =
        Some("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/d1".into());
    r
}

fn us_east_1(prices: &Prices) -> MessageContext<'_> {
    MessageContext {
        region: "us-east-1",
        ..ctx(prices)
    }
}

#[test]
fn on_demand_ready_gives_the_arn_a_converse_call_and_the_per_token_price() {
    let prices = Prices::builtin();
    let r = on_demand_ready_run();
    let m = render_for_run(Milestone::Ready, &r, &us_east_1(&prices));
    check_common(&m);
    let arn = r.deployment_arn.clone().unwrap();
    assert!(
        m.body.contains(&format!("Deployment ARN: {arn}")),
        "{}",
        m.body
    );
    assert!(
        m.body.contains(&format!(
            "aws bedrock-runtime converse --region us-east-1 --model-id {arn} --messages \
             '[{{\"role\":\"user\",\"content\":[{{\"text\":\"Hello\"}}]}}]'"
        )),
        "{}",
        m.body
    );
    // Nova Lite in us-east-1: figures from prices.json, unconfirmed there, and said so.
    let lite = prices
        .model("amazon.nova-lite-v1:0:300k", "us-east-1")
        .unwrap();
    let input = lite
        .custom_model_on_demand_input_per1k_tokens
        .clone()
        .unwrap();
    assert!(
        !input.confirmed,
        "the test assumes the shipped figure is unconfirmed"
    );
    assert!(
        m.body.contains(&format!(
            "On-demand price: USD 0.00006 per 1,000 input tokens, \
             USD 0.00024 per 1,000 output tokens (unconfirmed list price as of {})",
            input.as_of
        )),
        "{}",
        m.body
    );
    assert!((input.usd - 0.00006).abs() < 1e-12);
    assert!(m.body.contains("nothing when idle"));
    assert!(!m.body.contains("billed by the hour") && !m.body.contains("Model units"));
    assert!(m
        .body
        .contains(&format!("distillery runs retire {}", r.run_id)));
}

#[test]
fn on_demand_prices_say_confirmed_or_unknown() {
    let mut prices = Prices::builtin();
    for f in prices
        .models
        .get_mut("amazon.nova-lite-v1:0:300k")
        .and_then(|r| r.get_mut("us-east-1"))
        .into_iter()
    {
        for p in [
            &mut f.custom_model_on_demand_input_per1k_tokens,
            &mut f.custom_model_on_demand_output_per1k_tokens,
        ] {
            p.as_mut().unwrap().confirmed = true;
        }
    }
    let m = render_for_run(
        Milestone::Ready,
        &on_demand_ready_run(),
        &us_east_1(&prices),
    );
    assert!(
        m.body.contains(
            "USD 0.00006 per 1,000 input tokens, USD 0.00024 per 1,000 output tokens (list price as of"
        ),
        "{}",
        m.body
    );
    assert!(!m.body.contains("unconfirmed"), "{}", m.body);
    // Figures of different provenance each say theirs.
    let mut mixed = prices.clone();
    mixed
        .models
        .get_mut("amazon.nova-lite-v1:0:300k")
        .and_then(|r| r.get_mut("us-east-1"))
        .and_then(|f| f.custom_model_on_demand_input_per1k_tokens.as_mut())
        .unwrap()
        .confirmed = false;
    let m = render_for_run(Milestone::Ready, &on_demand_ready_run(), &us_east_1(&mixed));
    assert!(
        m.body
            .contains("per 1,000 input tokens (unconfirmed list price as of")
            && m.body.contains("per 1,000 output tokens (list price as of"),
        "{}",
        m.body
    );
    // No figure for the Region (the shared context is us-west-2): said, not made up.
    let m = render_for_run(Milestone::Ready, &on_demand_ready_run(), &ctx(&prices));
    assert!(
        m.body.contains("On-demand price: unknown: the price table")
            && m.body.contains("amazon.nova-lite-v1:0:300k in us-west-2"),
        "{}",
        m.body
    );
}

#[test]
fn a_failed_deployment_says_it_is_the_deployment_and_why() {
    let prices = Prices::builtin();
    let mut r = on_demand_ready_run();
    r.failure_reason = Some("The model was customized before on-demand support".into());
    let m = render_for_run(Milestone::ProvisioningFailed, &r, &us_east_1(&prices));
    check_common(&m);
    assert!(m.body.contains("on-demand deployment"), "{}", m.body);
    assert!(m
        .body
        .contains("Reason: The model was customized before on-demand support"));
    assert!(m.body.contains("Deployment ARN: arn:aws:bedrock:us-east-1"));
    assert!(!m.body.contains("Provisioned Throughput") && !m.body.contains("Model units"));
}

#[test]
fn completed_says_a_deployment_comes_next_for_on_demand() {
    let prices = Prices::builtin();
    let mut r = run();
    r.settings.serving = ServingMode::OnDemand;
    let m = render_for_run(Milestone::Completed, &r, &us_east_1(&prices));
    assert!(
        m.body.contains(
            "An on-demand deployment is being created next (billed per token, nothing when idle)."
        ),
        "{}",
        m.body
    );
}

#[test]
fn gate_failed_shows_the_score_against_the_threshold_the_comparison_and_the_worst_examples() {
    let prices = Prices::builtin();
    let mut r = run();
    r.settings.serving = ServingMode::OnDemand;
    r.status = RunStatus::GateFailed;
    r.evaluation = Some(crate::testing::sample_evaluation(t(12, 0), false));
    let m = render_for_run(Milestone::GateFailed, &r, &ctx(&prices));
    check_common(&m);
    assert_eq!(m.content.title, "Quality gate failed");
    assert!(m.body.contains("nothing was bought"), "{}", m.body);
    assert!(
        m.body
            .contains("failed: the student won or tied on 50% of 20 held-out prompts")
            && m.body.contains("the threshold is 70%"),
        "{}",
        m.body
    );
    assert!(
        m.body.contains("mean latency 300 ms vs 1200 ms"),
        "{}",
        m.body
    );
    assert!(m.body.contains("The 1 worst examples"), "{}", m.body);
    assert!(
        m.body.contains("student: s") && m.body.contains("judge: r"),
        "{}",
        m.body
    );
    assert!(m.body.contains(&format!("distillery eval {}", r.run_id)));
}

#[test]
fn later_messages_carry_the_gate_outcome_or_why_there_is_none() {
    let prices = Prices::builtin();
    let mut r = run();
    r.settings.serving = ServingMode::OnDemand;
    r.deployment_arn =
        Some("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/d1".into());
    r.evaluation = Some(crate::testing::sample_evaluation(t(12, 0), true));
    let m = render_for_run(Milestone::Ready, &r, &ctx(&prices));
    assert!(
        m.body
            .contains("Quality gate: passed: the student won or tied on 75% of 20"),
        "{}",
        m.body
    );
    r.evaluation = None;
    r.quality_gate = Some(crate::domain::evaluation::GatePlan::Skipped {
        reason: "quality gate skipped: the dataset has 104 records".into(),
    });
    for milestone in [Milestone::Launched, Milestone::Completed, Milestone::Ready] {
        let m = render_for_run(milestone, &r, &ctx(&prices));
        assert!(
            m.body
                .contains("Quality gate: skipped: the dataset has 104 records"),
            "{milestone}: {}",
            m.body
        );
    }
}

#[test]
fn skipped_says_how_many_new_records_against_the_minimum_and_the_window() {
    use crate::domain::run::{HistoryEntry, LogRunMode, LogWindow, RunStatus, ValidationSummary};
    let prices = Prices::builtin();
    let mut r = run();
    let window = LogWindow {
        start: "2026-11-23T05:00:00Z".parse().unwrap(),
        end: "2026-11-30T05:00:00Z".parse().unwrap(),
    };
    r.dataset = DatasetLocation::InvocationLogs {
        s3_uri: "s3://logs-bucket/bedrock/".into(),
        request_metadata_filters: Some(json!({"equals": {"app": "support-bot"}})),
        use_prompt_response: false,
        mode: LogRunMode::Curated,
        schedule_name: Some("nightly".into()),
        window_start: Some(window.start),
        window_end: Some(window.end),
    };
    r.status = RunStatus::Skipped;
    r.history.push(HistoryEntry {
        at: t(5, 1),
        from: Some(RunStatus::Validating),
        to: RunStatus::Skipped,
        detail: Some(crate::app::validate_dataset::skip_reason(42, 100, &window)),
    });
    r.validation = Some(ValidationSummary {
        records: 42,
        report_uri: Some("s3://data-bucket/reports/run-x/report.json".into()),
        ..Default::default()
    });
    let m = render_for_run(Milestone::Skipped, &r, &ctx(&prices));
    check_common(&m);
    assert!(
        m.subject
            .starts_with("Distillery: Retraining skipped - invocation-logs"),
        "{}",
        m.subject
    );
    assert!(
        m.body.contains(
            "42 new eligible record(s) (distinct prompts) in the invocation logs from 2026-11-23T05:00:00Z to \
             2026-11-30T05:00:00Z, fewer than MIN_NEW_RECORDS (100)"
        ),
        "{}",
        m.body
    );
    assert!(m
        .body
        .contains("Window: 2026-11-23T05:00:00Z to 2026-11-30T05:00:00Z"));
    assert!(m.body.contains("New eligible records: 42"));
    assert!(m.body.contains("Schedule: nightly"));
    assert!(m
        .body
        .contains("Full report: s3://data-bucket/reports/run-x/report.json"));
    assert_eq!(Milestone::Skipped.announces(), &[RunStatus::Skipped]);
}
