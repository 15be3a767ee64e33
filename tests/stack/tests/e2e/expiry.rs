//! Throughput that expires (issue 12): a provisioned run with a tiny `distillery-pt-ttl-hours`
//! reaches ready with an expiry; the scheduled pass (the reconciler mode of the status-poller
//! Lambda, invoked as the schedule invokes it) deletes the throughput in the simulator and retires
//! the run with a `retired` message; `distillery runs extend` pushes the expiry so a pass before
//! the new one leaves the run ready (and warns it expires soon); `distillery runs retire` deletes now.

use std::time::Duration;

use distillery_core::ports::{CustomizationService, PortError};

use super::*;

/// 3.6 seconds of throughput.
const TINY_TTL_HOURS: &str = "0.001";

/// Uploads the sample dataset asking for provisioned serving with a tiny TTL; returns the ready run.
async fn ready_with_tiny_ttl(stack: &Stack) -> Run {
    let (_, ex) = stack
        .upload_and_run(
            &unique_key("expiring"),
            sample_dataset(),
            &[
                ("distillery-serving", "provisioned"),
                ("distillery-pt-ttl-hours", TINY_TTL_HOURS),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let run = stack.run(&run_id(&ex)).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    assert_eq!(run.pt_ttl_hours, Some(0.001));
    let expires = run.serving_expires_at.expect("the ready run has an expiry");
    let went_ready = run
        .history
        .iter()
        .rev()
        .find(|h| h.to == RunStatus::Ready)
        .unwrap()
        .at;
    // InService time (the provisioner's clock) + 3.6 s, give or take the ledger write.
    let after = (expires - went_ready).num_milliseconds();
    assert!(
        (3000..=4200).contains(&after),
        "expiry {after} ms after ready"
    );
    run
}

/// Sleeps until `t` has passed (plus a margin).
async fn sleep_past(t: chrono::DateTime<chrono::Utc>) {
    let left = (t - chrono::Utc::now()).num_milliseconds().max(0) as u64;
    tokio::time::sleep(Duration::from_millis(left + 500)).await;
}

async fn reconcile(stack: &Stack) -> Value {
    stack
        .invoke_json("status-poller", &json!({"reconcile": {"dryRun": false}}))
        .await
        .expect("the reconciler")
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn the_scheduled_pass_deletes_expired_throughput_and_retires_the_run() {
    let stack = stack().await;
    let run = ready_with_tiny_ttl(&stack).await;
    let id = run.run_id.clone();
    let pt_arn = run.provisioned_model_arn.clone().unwrap();
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["launched", "ready"], "{sns:?}");
    assert!(
        sns[1].message.contains("Expires: ") && sns[1].message.contains("runs extend"),
        "the ready message states the expiry: {}",
        sns[1].message
    );

    // A dry run first: reported, nothing deleted.
    sleep_past(run.serving_expires_at.unwrap()).await;
    let dry = stack
        .invoke_json("status-poller", &json!({"reconcile": {"dryRun": true}}))
        .await
        .unwrap();
    assert!(dry.to_string().contains("would delete it"), "{dry}");
    assert_eq!(stack.run(&id).await.unwrap().status, RunStatus::Ready);

    let report = reconcile(&stack).await;
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["runId"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no finding about {id}: {report}"));
    assert_eq!(finding["action"], "repaired", "{report}");
    assert_eq!(finding["resourceArn"], pt_arn.as_str());

    let (deletes, _) = calls_of(
        &stack.bedrock_calls().await.unwrap(),
        "DeleteProvisionedModelThroughput",
    );
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(matches!(
        stack
            .bedrock()
            .await
            .get_provisioned_throughput(&pt_arn)
            .await,
        Err(PortError::NotFound(_))
    ));
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Retired);
    assert!(run.retired_at.is_some());
    assert!(
        run.history
            .last()
            .and_then(|h| h.detail.as_deref())
            .is_some_and(|d| d.contains("expired at")),
        "{:?}",
        run.history.last()
    );

    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["retired"], "{sns:?}");
    assert!(
        sns[0].message.contains("Served: ") && sns[0].message.contains("Cost incurred: USD "),
        "{}",
        sns[0].message
    );
    assert_eq!(delivered(&run, "retired", "sns"), Some(true));
    assert_eq!(delivered(&run, "retired", "slack"), Some(true));
    assert!(!slack_mentioning(&stack, id.as_str()).await.is_empty());

    // The next pass has nothing more to do for it.
    let again = reconcile(&stack).await;
    assert!(!again.to_string().contains(id.as_str()), "{again}");
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn runs_extend_keeps_the_throughput_and_runs_retire_deletes_it_now() {
    let stack = stack().await;
    let run = ready_with_tiny_ttl(&stack).await;
    let id = run.run_id.clone();
    let pt_arn = run.provisioned_model_arn.clone().unwrap();
    let first_expiry = run.serving_expires_at.unwrap();
    sns_for(&stack, &id).await;

    let out = stack
        .cli(&["runs", "extend", id.as_str(), "--hours", "1"])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("now expires at"));
    let extended = stack.run(&id).await.unwrap();
    // One hour from the expiry, or from the moment of the extension if the (tiny) TTL had already
    // run out by then.
    let new_expiry = extended.serving_expires_at.unwrap();
    let hour = chrono::Duration::hours(1);
    assert!(
        new_expiry >= first_expiry + hour
            && new_expiry <= first_expiry.max(chrono::Utc::now()) + hour,
        "{first_expiry} -> {new_expiry}"
    );

    // Past the first expiry, before the new one: the pass leaves it, and warns it expires soon.
    sleep_past(first_expiry).await;
    let report = reconcile(&stack).await;
    assert!(!report.to_string().contains(&pt_arn), "{report}");
    assert_eq!(stack.run(&id).await.unwrap().status, RunStatus::Ready);
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["expiring_soon"], "{sns:?}");
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.expiry_warning_sent_for, run.serving_expires_at);
    // Once per expiry.
    reconcile(&stack).await;
    assert!(sns_for(&stack, &id).await.is_empty());

    let topic = stack.info.resources.topic_arn.clone();
    let out = stack
        .cli(&["runs", "retire", id.as_str(), "--topic-arn", &topic])
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("retired"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(matches!(
        stack
            .bedrock()
            .await
            .get_provisioned_throughput(&pt_arn)
            .await,
        Err(PortError::NotFound(_))
    ));
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Retired);
    assert_eq!(milestones(&sns_for(&stack, &id).await), ["retired"]);

    // Only a ready (or provisioning) run can be retired or extended: a clear refusal, exit 2.
    for args in [
        vec!["runs", "retire", id.as_str()],
        vec!["runs", "extend", id.as_str(), "--hours", "1"],
    ] {
        let out = stack.cli(&args).await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("run {id} is retired")),
            "{args:?}: {err}"
        );
    }
}

/// `distillery runs retire` while the execution is still provisioning (paused after the purchase,
/// before its second check of the throughput): the throughput is deleted and announced by the CLI, and the
/// execution's next check ends it in `RetiredWhileProvisioning` (Succeed), not in a failure, with
/// nothing bought again.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn runs_retire_while_provisioning_ends_the_execution_quietly() {
    let stack = stack().await;
    let key = unique_key("retire-provisioning");
    stack
        .upload(
            &key,
            sample_dataset(),
            &[("distillery-serving", "provisioned")],
        )
        .await
        .expect(NEEDS_STACK);
    let event = stack
        .receive_upload_event(&key, Duration::from_secs(20))
        .await
        .unwrap();
    let topic = stack.info.resources.topic_arn.clone();
    let stack_ref = &stack;
    let act: distillery_local_stack::BetweenSteps<'_> = Box::new(move |events: Vec<Value>| {
        Box::pin(async move {
            let id = run_id(&Execution {
                events,
                ..Default::default()
            });
            let run = stack_ref.run(&id).await?;
            anyhow::ensure!(
                run.status == RunStatus::Provisioning,
                "expected provisioning, got {run:?}"
            );
            let out = stack_ref
                .cli(&["runs", "retire", id.as_str(), "--topic-arn", &topic])
                .await?;
            anyhow::ensure!(
                out.status.success(),
                "runs retire: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(())
        })
    });
    let (ex, paused) = stack
        .run_execution_pausing_before(&event, "ProvisionThroughput#2", act)
        .await
        .expect("execution");
    assert!(
        paused,
        "never checked the throughput twice: {}",
        explain(&ex)
    );
    assert!(ex.succeeded(), "{}", explain(&ex));
    assert!(
        ex.states_entered()
            .contains(&"RetiredWhileProvisioning".to_string()),
        "{:?}",
        ex.states_entered()
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Retired, "{run:?}");
    let pt_arn = run.provisioned_model_arn.clone().unwrap();
    assert!(matches!(
        stack
            .bedrock()
            .await
            .get_provisioned_throughput(&pt_arn)
            .await,
        Err(PortError::NotFound(_))
    ));
    // Bought once, never again after the retire; announced once, by the CLI.
    let (created, _) = calls_of(
        &stack.bedrock_calls().await.unwrap(),
        "CreateProvisionedModelThroughput",
    );
    assert_eq!(created.len(), 1, "{created:?}");
    let sent = milestones(&sns_for(&stack, &id).await);
    assert_eq!(
        sent.iter().filter(|m| *m == "retired").count(),
        1,
        "{sent:?}"
    );
    assert!(!sent.iter().any(|m| m == "provisioning_failed"), "{sent:?}");
}
