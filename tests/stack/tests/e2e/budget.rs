//! Issue 12, the cost estimate and the budget: a run whose high estimate exceeds its budget is
//! rejected by the validator, before any Bedrock call, and the message names both figures.

use super::*;

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_run_over_budget_is_rejected_with_both_figures_and_no_bedrock_call() {
    let stack = stack().await;
    let key = unique_key("support-tickets-over-budget");
    // The stack has no MAX_RUN_COST_USD; a dataset may always set a budget lower than "none".
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[("distillery-max-run-cost-usd", "0.01")],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(!ex.succeeded());
    assert_eq!(
        ex.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex)
    );
    assert!(ex.states_entered().contains(&"NotifyRejected".to_string()));

    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Rejected);
    let v = run.validation.clone().expect("validation summary");
    let e = v.cost_estimate.clone().expect("a cost estimate on the run");
    assert!(e.over_budget && e.budget_usd == Some(0.01), "{e:?}");
    assert!(e.high_usd > 0.01 && e.low_usd <= e.high_usd, "{e:?}");
    // The records themselves are fine: nothing was invalid.
    assert_eq!((v.invalid_records, v.error_count), (0, 0), "{v:?}");
    let high = format!("USD {:.2}", e.high_usd);
    let reason = run.failure_reason.clone().unwrap();
    assert!(
        reason.starts_with(&format!(
            "over_budget: the high cost estimate {high} exceeds the budget USD 0.01 set by S3 metadata x-amz-meta-distillery-max-run-cost-usd"
        )),
        "{reason}"
    );

    // The report in S3 carries the estimate and the reason.
    let report: Value = serde_json::from_slice(
        &stack
            .read_s3_uri(v.report_uri.as_ref().unwrap())
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["costEstimate"]["over_budget"], true);
    assert_eq!(report["costEstimate"]["high_usd"], e.high_usd);
    assert!(report["settingsError"]
        .as_str()
        .is_some_and(|s| s.starts_with("over_budget:")));

    // Not one Bedrock call: no job, no throughput.
    let calls = stack.bedrock_calls().await.unwrap();
    assert!(calls.is_empty(), "no Bedrock call over budget: {calls:?}");

    // One rejected message on each channel, naming both figures; the prices are unconfirmed, and
    // the text says so.
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["rejected"]);
    let body = &sns[0].message;
    assert!(
        body.contains("is valid but the run was rejected: over_budget"),
        "{body}"
    );
    assert!(body.contains(&high) && body.contains("USD 0.01"), "{body}");
    assert!(body.contains("unconfirmed price(s)"), "{body}");
    let slack = slack_mentioning(&stack, id.as_str()).await;
    assert_eq!(slack.len(), 1, "{slack:?}");
    let text = slack[0].to_string();
    assert!(
        text.contains("over_budget") && text.contains(&high) && text.contains("USD 0.01"),
        "{text}"
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_run_within_its_budget_launches_and_the_launched_message_gives_the_estimate() {
    let stack = stack().await;
    let key = unique_key("support-tickets-within-budget");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[
                ("distillery-serving", "none"),
                ("distillery-max-run-cost-usd", "1000"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let e = run.validation.unwrap().cost_estimate.expect("an estimate");
    assert!(!e.over_budget && e.budget_usd == Some(1000.0), "{e:?}");
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "completed"]);
    let launched = &sns[0].message;
    assert!(
        launched.contains(&format!(
            "Estimated cost: USD {:.2} to USD {:.2} (teacher generation",
            e.low_usd, e.high_usd
        )),
        "{launched}"
    );
    assert!(launched.contains("unconfirmed price(s)"), "{launched}");
    assert!(launched.contains("Budget: USD 1000"), "{launched}");
}
