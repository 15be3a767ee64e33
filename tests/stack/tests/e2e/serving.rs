//! Issue 12, on-demand serving: `auto` on a Nova student (the local stack runs in us-east-1, where
//! model-pairs.json lists Nova Lite for on-demand) ends `ready` with a custom model deployment and no
//! Provisioned Throughput; a deployment Bedrock reports `Failed` is recorded and announced.
//!
//! A Llama student with `auto`, and `on-demand` asked for a student without it, need a stack in
//! us-west-2 (Llama pairs are offered only there, and the validator refuses a pair outside the
//! stack's Region): those are covered at the use-case level, in
//! `functions/core/src/app/validate_dataset/serving_tests.rs`.

use distillery_core::domain::messages::converse_command;
use distillery_core::domain::settings::ServingMode;
use distillery_core::domain::tags;
use distillery_core::ports::{CustomizationService, DeploymentStatus};

use super::*;

/// Every text of a Slack payload's blocks (section text and fields), as the channel shows them.
fn slack_texts(payload: &Value) -> String {
    let mut out = Vec::new();
    for b in payload["blocks"].as_array().into_iter().flatten() {
        if let Some(t) = b["text"]["text"].as_str() {
            out.push(t.to_string());
        }
        for f in b["fields"].as_array().into_iter().flatten() {
            if let Some(t) = f["text"].as_str() {
                out.push(t.to_string());
            }
        }
    }
    out.join("\n")
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn auto_on_a_nova_student_ends_ready_with_a_deployment_and_no_throughput() {
    let stack = stack().await;
    let key = unique_key("support-tickets-auto");
    let (_, ex) = stack
        .upload_and_run(&key, sample_dataset(), &[("distillery-serving", "auto")])
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let states = ex.states_entered();
    for s in ["ProvisionThroughput", "NotifyReady", "Ready"] {
        assert!(
            states.contains(&s.to_string()),
            "{s} not entered: {states:?}"
        );
    }

    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    // `auto` was settled at validation; the record never says auto.
    assert_eq!(run.settings.serving, ServingMode::OnDemand);
    assert_eq!(run.settings.student, "amazon.nova-lite-v1:0:300k");
    let arn = run.deployment_arn.clone().expect("deployment ARN recorded");
    assert!(
        arn.starts_with("arn:aws:bedrock:us-east-1:") && arn.contains(":custom-model-deployment/"),
        "{arn}"
    );
    assert!(run.deployment_name.is_some(), "{run:?}");
    assert!(run.provisioned_model_arn.is_none(), "{run:?}");
    let statuses: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
    for s in [
        RunStatus::Completed,
        RunStatus::Provisioning,
        RunStatus::Ready,
    ] {
        assert!(statuses.contains(&s), "history lacks {s}: {statuses:?}");
    }

    // What Bedrock holds, read through the SDK: one Active deployment of the run's custom model,
    // tagged as Distillery's, and not one Provisioned Throughput.
    let bedrock = stack.bedrock().await;
    let deployments = bedrock.list_custom_model_deployments().await.unwrap();
    assert_eq!(deployments.len(), 1, "{deployments:?}");
    let d = &deployments[0];
    assert_eq!(d.deployment_arn, arn);
    assert_eq!(d.status, DeploymentStatus::Active);
    assert_eq!(Some(&d.model_arn), run.custom_model_arn.as_ref());
    assert_eq!(Some(&d.deployment_name), run.deployment_name.as_ref());
    let t = bedrock.list_tags(&arn).await.unwrap();
    assert_eq!(
        t.get(tags::RUN_ID_TAG).map(String::as_str),
        Some(id.as_str())
    );
    assert_eq!(
        t.get(tags::MANAGED_BY_TAG).map(String::as_str),
        Some(tags::MANAGED_BY_VALUE)
    );
    assert!(
        bedrock
            .list_provisioned_throughputs()
            .await
            .unwrap()
            .is_empty(),
        "zero Provisioned Throughput"
    );
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateCustomModelDeployment").0.len(), 1);
    assert!(calls_of(&calls, "CreateProvisionedModelThroughput")
        .0
        .is_empty());

    // The ready message, on both channels: the ARN and a call to paste.
    let command = converse_command("us-east-1", &arn);
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "ready"], "{sns:?}");
    let body = &sns[1].message;
    assert!(body.contains(&format!("Deployment ARN: {arn}")), "{body}");
    assert!(body.contains(&command), "{body}");
    assert!(
        body.contains("per 1,000 input tokens") && body.contains("unconfirmed"),
        "{body}"
    );
    let slack = slack_mentioning(&stack, id.as_str()).await;
    assert_eq!(slack.len(), 2, "Slack got launched + ready: {slack:?}");
    let ready = slack
        .iter()
        .map(slack_texts)
        .find(|t| t.contains("Deployment ARN"))
        .expect("a ready message in Slack");
    assert!(ready.contains(&arn) && ready.contains(&command), "{ready}");
    assert_eq!(delivered(&run, "ready", "sns"), Some(true));
    assert_eq!(delivered(&run, "ready", "slack"), Some(true));
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_failed_on_demand_deployment_is_recorded_and_notified() {
    let stack = stack().await;
    let message = "The custom model was customized before on-demand support (e2e injected)";
    stack
        .bedrock_faults(&json!({"kind": "failDeployment", "count": 1, "message": message}))
        .await
        .unwrap();
    let key = unique_key("support-tickets-on-demand");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[("distillery-serving", "on-demand")],
        )
        .await
        .expect(NEEDS_STACK);
    assert_eq!(
        ex.error.as_deref(),
        Some("ProvisioningFailed"),
        "{}",
        explain(&ex)
    );
    assert!(ex
        .states_entered()
        .contains(&"NotifyProvisioningFailed".to_string()));

    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::ProvisioningFailed);
    assert_eq!(run.failure_reason.as_deref(), Some(message));
    let arn = run.deployment_arn.clone().expect("the deployment ARN");
    assert!(
        run.custom_model_arn.is_some(),
        "the trained model is kept: {run:?}"
    );

    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateCustomModelDeployment").0.len(), 1);
    assert!(calls_of(&calls, "CreateProvisionedModelThroughput")
        .0
        .is_empty());

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "provisioning_failed"]);
    let body = &sns[1].message;
    assert!(
        body.contains("on-demand deployment") && body.contains("failed"),
        "{body}"
    );
    assert!(body.contains(&format!("Reason: {message}")), "{body}");
    assert!(body.contains(&arn), "{body}");
    let slack = slack_mentioning(&stack, id.as_str()).await;
    assert!(
        slack.iter().any(|m| slack_texts(m).contains(message)),
        "{slack:?}"
    );
    assert_eq!(delivered(&run, "provisioning_failed", "sns"), Some(true));
}
