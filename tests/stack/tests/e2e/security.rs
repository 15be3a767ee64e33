//! Issue 16 on the local stack: an upload asking for Provisioned Throughput on a stack that does
//! not allow it is rejected, with no Bedrock call.
//!
//! The local stack's Lambdas run with `ALLOW_PROVISIONING=true` (every other e2e test needs it),
//! and `cargo lambda watch` gives all of them one environment, so this test runs the validator use
//! case in the test process with the stack's own Lambda environment, `ALLOW_PROVISIONING=false`
//! on top, and the real adapters: the real upload, its real EventBridge event, the object's
//! metadata as moto's S3 returns it, the run in the stack's DynamoDB ledger. What it does not cover
//! is the state machine's routing of the rejected verdict, which `invalid_dataset_is_rejected_…`
//! (e2e.rs) covers for every rejection.

use std::sync::Arc;

use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::validate_dataset::{DatasetValidatorService, ValidatorConfig};
use distillery_core::domain::run::RunStatus;
use distillery_core::ports::{RunLedger, SystemClock};

use super::{sample_dataset, stack, unique_key, NEEDS_STACK};

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn provisioned_serving_on_a_stack_without_provisioning_is_rejected_with_no_bedrock_call() {
    let stack = stack().await;
    let key = unique_key("no-provisioning");
    let event = stack
        .upload_and_receive(
            &key,
            sample_dataset(),
            &[("distillery-serving", "provisioned")],
        )
        .await
        .expect(NEEDS_STACK);
    let mut env = stack.info.lambda_env.clone();
    assert_eq!(
        env.get("ALLOW_PROVISIONING").map(String::as_str),
        Some("true"),
        "the local stack allows provisioning; this test turns it off for itself"
    );
    env.insert("ALLOW_PROVISIONING".into(), "false".into());
    let validator = DatasetValidatorService {
        ledger: Arc::new(stack.ledger.clone()),
        store: Arc::new(S3DatasetStore::new(stack.s3.clone())),
        lister: Arc::new(S3DatasetStore::new(stack.s3.clone())),
        clock: Arc::new(SystemClock),
        config: ValidatorConfig::from_lookup(|k| env.get(k).cloned()).unwrap(),
    };
    let out = validator.handle(event).await.expect("a verdict");
    assert_eq!(out.status, Some(RunStatus::Rejected), "{out:?}");
    let id = out.run_id.clone().expect("a run");
    let run = stack.ledger.get(&id).await.unwrap().expect("recorded");
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("ALLOW_PROVISIONING is false")
            && reason.ends_with("the value came from S3 metadata x-amz-meta-distillery-serving"),
        "{reason}"
    );
    // Rejected before reading: nothing counted, no snapshot; and nothing asked of Bedrock.
    let v = run.validation.clone().expect("a summary");
    assert_eq!((v.records, v.error_count), (0, 0), "{v:?}");
    assert!(run.snapshot.is_none(), "{run:?}");
    assert!(
        stack.bedrock_calls().await.unwrap().is_empty(),
        "no Bedrock call"
    );
}
