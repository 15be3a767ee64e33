//! Identity, ownership, retry, Region and key handling on the local stack (issue 10, points 4-7).

use std::sync::Mutex;

use async_trait::async_trait;
use distillery_aws::s3::S3DatasetStore;
use distillery_core::app::submit_run::{retry, RetryRequest};
use distillery_core::app::validate_dataset::{run_for_object, ObjectVersion, ValidatorConfig};
use distillery_core::domain::run::{Run, RunStatus, RunUpdate};
use distillery_core::domain::settings::SettingsOverrides;
use distillery_core::ports::{PipelineStarter, PortError, RunLedger, SystemClock};
use distillery_local_stack::Stack;
use serde_json::Value;

use super::{calls_of, explain, milestones, run_id, sample_dataset, sns_for, stack, unique_key};

const NEEDS_STACK: &str = "needs the local stack: run `make e2e`";
const UNITS_OVER_CAP: [(&str, &str); 2] = [
    ("distillery-serving", "provisioned"),
    ("distillery-model-units", "5"),
];

/// The validator's configuration exactly as the stack's Lambda has it.
fn lambda_config(stack: &Stack) -> ValidatorConfig {
    let env = stack.info.lambda_env.clone();
    ValidatorConfig::from_lookup(|k| env.get(k).cloned()).unwrap()
}

/// `distillery runs retry`'s starter, as the local stack runs executions: records the input; the
/// test hands it to the runner.
#[derive(Default)]
struct RecordingStarter(Mutex<Vec<Value>>);

#[async_trait]
impl PipelineStarter for RecordingStarter {
    async fn start(&self, name: &str, input: &Value) -> Result<String, PortError> {
        self.0.lock().unwrap().push(input.clone());
        Ok(Stack::execution_id(name))
    }
}

/// A run rejected for `distillery-model-units: 5` (cap 1): no Bedrock call, a message that names the
/// metadata key and says how to retry.
async fn rejected_for_units(stack: &Stack, key: &str) -> Run {
    let (_, ex) = stack
        .upload_and_run(key, sample_dataset(), &UNITS_OVER_CAP)
        .await
        .expect(NEEDS_STACK);
    assert_eq!(
        ex.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex)
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.clone().unwrap();
    assert!(
        reason.contains("modelUnits 5 exceeds")
            && reason.contains("x-amz-meta-distillery-model-units"),
        "{reason}"
    );
    let sns = sns_for(stack, &id).await;
    assert_eq!(milestones(&sns), ["rejected"]);
    let body = &sns[0].message;
    assert!(!body.contains("0 of 0 records"), "{body}");
    assert!(
        body.contains(&format!("distillery runs retry {id}")),
        "{body}"
    );
    assert!(stack.bedrock_calls().await.unwrap().is_empty());
    run
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn fixed_metadata_reupload_of_the_same_bytes_is_a_new_run_and_launches() {
    let stack = stack().await;
    let key = unique_key("units");
    let old = rejected_for_units(&stack, &key).await;
    // The same bytes, the metadata fixed.
    let fixed = [
        ("distillery-serving", "provisioned"),
        ("distillery-model-units", "1"),
    ];
    let (event, ex) = stack
        .upload_and_run(&key, sample_dataset(), &fixed)
        .await
        .unwrap();
    assert_eq!(
        event["detail"]["object"]["etag"]
            .as_str()
            .or(event["detail"]["object"]["eTag"].as_str()),
        Some(old.dataset_etag()),
        "same bytes"
    );
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    assert_ne!(id, old.run_id, "new settings, new run");
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    assert_eq!(run.settings.model_units, 1);
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateModelCustomizationJob").0.len(), 1);
    assert_eq!(
        stack.run(&old.run_id).await.unwrap(),
        old,
        "the old run is unchanged"
    );
}

trait DatasetEtag {
    fn dataset_etag(&self) -> &str;
}

impl DatasetEtag for Run {
    fn dataset_etag(&self) -> &str {
        match &self.dataset {
            distillery_core::domain::run::DatasetLocation::S3Object { etag, .. } => etag,
            _ => "",
        }
    }
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn runs_retry_of_a_rejected_run_with_a_changed_setting_launches_a_linked_run() {
    let stack = stack().await;
    let key = unique_key("units-retry");
    let old = rejected_for_units(&stack, &key).await;
    let starter = RecordingStarter::default();
    let store = S3DatasetStore::new(stack.s3.clone());
    let request = RetryRequest {
        run_id: old.run_id.clone(),
        overrides: SettingsOverrides {
            model_units: Some("1".into()),
            ..Default::default()
        },
    };
    let submission = retry(
        &stack.ledger,
        &store,
        &starter,
        &lambda_config(&stack),
        &SystemClock,
        &request,
    )
    .await
    .expect("retry accepted");
    let input = starter.0.lock().unwrap()[0].clone();
    assert_eq!(input["retryOf"], old.run_id.as_str());
    let ex = stack.run_execution(&input).await.unwrap();
    assert!(ex.succeeded(), "{}", explain(&ex));
    let id = run_id(&ex);
    assert_eq!(
        id, submission.run_id,
        "the CLI announced the run the validator made"
    );
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    assert_eq!(run.retry_of.as_ref(), Some(&old.run_id));
    assert_eq!(run.attempt, 2);
    assert_eq!(run.settings.model_units, 1);
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateModelCustomizationJob").0.len(), 1);
    assert_eq!(stack.run(&old.run_id).await.unwrap(), old);
    // The same retry again is the same run: the second execution ends as a duplicate.
    let again = stack.run_execution(&input).await.unwrap();
    assert_eq!(
        again.states_entered().last().map(String::as_str),
        Some("Duplicate")
    );
}

/// A validator attempt that crashed after creating its run leaves the run `validating`, owned by
/// its execution. The ledger is put in exactly that state (the run the validator would create for
/// this upload, created and moved to `validating` under the execution's id), then the execution runs:
/// its ValidateDataset step is the retry, which must resume and finish the run.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_run_left_validating_by_a_crash_is_resumed_by_its_execution_and_finished() {
    let stack = stack().await;
    let key = unique_key("crashed");
    let event = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    let name = format!("crash-{}", key.replace(['/', '.'], "-"));
    let owner = Stack::execution_id(&name);
    let head = stack
        .s3
        .head_object()
        .bucket(stack.bucket())
        .key(&key)
        .send()
        .await
        .unwrap();
    let metadata = head
        .metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let o = &event["detail"]["object"];
    let etag = o["etag"]
        .as_str()
        .or(o["eTag"].as_str())
        .unwrap()
        .to_string();
    let (id, settings) = run_for_object(
        &lambda_config(&stack),
        &ObjectVersion {
            bucket: stack.bucket(),
            key: &key,
            version_id: o["version-id"].as_str().or(head.version_id()),
            etag: &etag,
            metadata: &metadata,
        },
        &SettingsOverrides::default(),
        1,
    );
    let mut stranded = Run::new(
        id.clone(),
        distillery_core::domain::run::RunSource::S3Upload,
        distillery_core::domain::run::DatasetLocation::S3Object {
            bucket: stack.bucket().to_string(),
            key: key.clone(),
            etag: etag.clone(),
            version_id: None,
            size: head.content_length().unwrap_or(0) as u64,
        },
        settings.unwrap(),
        chrono::Utc::now(),
    );
    stranded.owner_execution = Some(owner.clone());
    stack.ledger.create(&stranded).await.unwrap();
    stack
        .ledger
        .update(
            &id,
            &[RunStatus::Received],
            &RunUpdate::to(RunStatus::Validating),
        )
        .await
        .unwrap();

    // Another execution for the same upload is a duplicate and leaves the run alone.
    let other = stack.run_execution(&event).await.unwrap();
    assert_eq!(
        other.states_entered().last().map(String::as_str),
        Some("Duplicate")
    );
    assert_eq!(stack.run(&id).await.unwrap().status, RunStatus::Validating);

    // The owning execution resumes it.
    let ex = stack
        .run_execution_named(&event, Some(&name))
        .await
        .unwrap();
    assert!(ex.succeeded(), "{}", explain(&ex));
    assert_eq!(run_id(&ex), id);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.owner_execution.as_deref(), Some(owner.as_str()));
    assert!(run
        .validation
        .as_ref()
        .is_some_and(|v| v.valid && v.records > 0));
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateModelCustomizationJob").0.len(), 1);
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"]
    );
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_pair_offered_in_another_region_is_rejected_before_any_bedrock_call() {
    let stack = stack().await;
    let key = unique_key("llama");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            sample_dataset(),
            &[
                ("distillery-teacher", "meta.llama3-1-70b-instruct-v1:0"),
                ("distillery-student", "meta.llama3-1-8b-instruct-v1:0:128k"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    assert_eq!(
        ex.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex)
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.contains("meta.llama3-1-70b-instruct-v1:0 -> meta.llama3-1-8b-instruct-v1:0:128k")
            && reason.contains("offered in us-west-2 only")
            && reason.contains("this stack runs in us-east-1"),
        "{reason}"
    );
    assert!(
        stack.bedrock_calls().await.unwrap().is_empty(),
        "zero Bedrock calls"
    );
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["rejected"]);
    assert!(sns[0].message.contains("us-west-2"), "{}", sns[0].message);
}

/// S3 sends EventBridge the raw key: spaces, non-ASCII and `+` must reach HEAD unchanged. (Bedrock's
/// S3 URI pattern refuses such keys, so the run is rejected for the key, by name: not "missing".)
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_key_with_spaces_unicode_and_plus_is_read_as_uploaded() {
    let stack = stack().await;
    let key = unique_key("Q3 données+v2 (final)");
    let (event, ex) = stack
        .upload_and_run(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    assert_eq!(
        event["detail"]["object"]["key"],
        key.as_str(),
        "raw key in the event"
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(
        run.dataset.s3_uri(),
        format!("s3://{}/{key}", stack.bucket())
    );
    assert_eq!(run.status, RunStatus::Rejected, "{}", explain(&ex));
    let reason = run.failure_reason.unwrap();
    assert!(
        !reason.contains("no longer exists"),
        "the object was found: {reason}"
    );
    assert!(
        reason.contains("space") && reason.contains("'+'"),
        "{reason}"
    );
    assert!(stack.bedrock_calls().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn an_object_deleted_before_validation_is_a_rejected_run_with_a_one_line_reason() {
    let stack = stack().await;
    let key = unique_key("deleted");
    let event = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    stack
        .s3
        .delete_object()
        .bucket(stack.bucket())
        .key(&key)
        .send()
        .await
        .unwrap();
    let ex = stack.run_execution(&event).await.unwrap();
    assert_eq!(
        ex.error.as_deref(),
        Some("DatasetRejected"),
        "{}",
        explain(&ex)
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.contains("no longer exists") && !reason.contains('\n'),
        "{reason}"
    );
    let sns = sns_for(&stack, &id).await;
    assert_eq!(milestones(&sns), ["rejected"]);
    assert!(
        !sns[0].message.contains("\"detail\""),
        "no raw event: {}",
        sns[0].message
    );
    assert!(stack.bedrock_calls().await.unwrap().is_empty());
}

/// A real fault: the validator runs (creates the run, validates it), then Step Functions loses its
/// response (a timeout or a dead sandbox after the writes) and retries the step. The retry finds the
/// run this execution created: it must carry on with it, not end as a duplicate leaving a validated
/// run that nothing launches.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_validator_response_lost_after_its_writes_is_retried_and_the_run_goes_on() {
    let stack = stack().await;
    let key = unique_key("lost-response");
    let event = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    let ex = stack
        .run_execution_with(
            &event,
            None,
            &["--lose-first-response-of", "ValidateDataset"],
        )
        .await
        .unwrap();
    assert_eq!(ex.retries_of("ValidateDataset"), 1, "{}", explain(&ex));
    assert!(ex.succeeded(), "{}", explain(&ex));
    assert_eq!(
        ex.states_entered().last().map(String::as_str),
        Some("Completed")
    );
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let validated = run
        .history
        .iter()
        .filter(|h| h.to == RunStatus::Validated)
        .count();
    assert_eq!(validated, 1, "validated once: {:?}", run.history);
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateModelCustomizationJob").0.len(), 1);
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"]
    );
}

/// Twenty executions for one upload at once: one run, one owner, one job; the other nineteen end as
/// duplicates.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn twenty_concurrent_executions_for_one_object_make_exactly_one_job() {
    let stack = stack().await;
    let key = unique_key("twenty");
    let event = stack
        .upload_and_receive(&key, sample_dataset(), &[])
        .await
        .expect(NEEDS_STACK);
    let runs = (0..20).map(|_| stack.run_execution(&event));
    let all: Vec<_> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let launched = all
        .iter()
        .filter(|e| e.states_entered().contains(&"LaunchJob".to_string()))
        .count();
    let duplicates = all
        .iter()
        .filter(|e| e.states_entered().last().map(String::as_str) == Some("Duplicate"))
        .count();
    assert_eq!((launched, duplicates), (1, 19));
    assert!(all.iter().all(|e| e.succeeded()));
    let ids: std::collections::BTreeSet<String> = all.iter().map(|e| run_id(e).0).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = run_id(&all[0]);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(run.owner_execution.is_some());
    let calls = stack.bedrock_calls().await.unwrap();
    assert_eq!(calls_of(&calls, "CreateModelCustomizationJob").0.len(), 1);
    assert_eq!(
        milestones(&sns_for(&stack, &id).await),
        ["launched", "completed"]
    );
}
