//! Issue 16 on the local stack: an upload asking for Provisioned Throughput on a stack that does
//! not allow it is rejected by the real state machine, with no Bedrock call.
//!
//! The local stack's Lambdas run with `ALLOW_PROVISIONING=true` (every other e2e test needs it);
//! `tests/stack/start.sh` also serves the same functions with `ALLOW_PROVISIONING=false` on a
//! second `cargo lambda watch` (`guardedLambdaInvokeUrl`), and this execution's runner invokes those:
//! the real upload and EventBridge event, the real state machine, the real validator and notifier
//! binaries, the stack's S3, ledger and simulator.

use distillery_core::domain::run::RunStatus;

use super::{
    calls_of, explain, milestones, run_id, sample_dataset, sns_for, stack, unique_key, NEEDS_STACK,
};

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn provisioned_serving_on_a_stack_without_provisioning_is_rejected_with_no_bedrock_call() {
    let stack = stack().await;
    let guarded = stack.info.guarded_lambda_invoke_url.clone();
    assert!(
        !guarded.is_empty(),
        "the stack serves no guarded functions: restart it"
    );
    assert_eq!(
        stack
            .info
            .lambda_env
            .get("ALLOW_PROVISIONING")
            .map(String::as_str),
        Some("true"),
        "the main functions allow provisioning; only the guarded ones refuse it"
    );
    let key = unique_key("no-provisioning");
    let event = stack
        .upload_and_receive(
            &key,
            sample_dataset(),
            &[("distillery-serving", "provisioned")],
        )
        .await
        .expect(NEEDS_STACK);
    let ex = stack
        .execution(&event)
        .runner_args(&["--invoke-url", &guarded])
        .run()
        .await
        .expect(NEEDS_STACK);
    assert_eq!(
        ex.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex)
    );
    let states = ex.states_entered();
    assert!(states.contains(&"NotifyRejected".to_string()), "{states:?}");
    assert!(!states.contains(&"LaunchJob".to_string()), "{states:?}");

    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("ALLOW_PROVISIONING is false")
            && reason.ends_with("the value came from S3 metadata x-amz-meta-distillery-serving"),
        "{reason}"
    );
    // Rejected before reading: nothing counted, no snapshot.
    let v = run.validation.clone().expect("a summary");
    assert_eq!((v.records, v.error_count), (0, 0), "{v:?}");
    assert!(run.snapshot.is_none(), "{run:?}");
    // Not one Bedrock call of any kind: no job, no throughput, no deployment.
    let calls = stack.bedrock_calls().await.unwrap();
    assert!(calls.is_empty(), "{calls:?}");
    assert!(calls_of(&calls, "CreateModelCustomizationJob").0.is_empty());
    // And the rejection is announced once, naming the setting.
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["rejected"]);
    assert!(
        sns[0].message.contains("ALLOW_PROVISIONING is false"),
        "{}",
        sns[0].message
    );
}
