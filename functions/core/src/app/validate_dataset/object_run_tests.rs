//! Identity, ownership and resume: what a run is, who owns it, and what a retried step does.

use crate::domain::errors::ErrorType;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::tests::dataset;
use super::*;
use crate::domain::snapshot::ObjectPin;
use crate::ports::{DatasetChunks, ObjectInfo, PortError, SnapshotSink, SystemClock};
use crate::testing::memory::{InMemoryDatasetStore, InMemoryRunLedger};

const BUCKET: &str = "distillery-datasets-123456789012";
const EXEC_A: &str = "arn:aws:states:us-east-1:123456789012:execution:distillery:a";
const EXEC_B: &str = "arn:aws:states:us-east-1:123456789012:execution:distillery:b";

/// The in-memory store, whose first `failing_puts` report writes fail as S3 5xx would.
struct FlakyStore {
    inner: Arc<InMemoryDatasetStore>,
    failing_puts: AtomicUsize,
}

#[async_trait]
impl DatasetStore for FlakyStore {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<ObjectInfo, PortError> {
        self.inner.head(bucket, key, pin).await
    }
    async fn open(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<(ObjectInfo, DatasetChunks), PortError> {
        self.inner.open(bucket, key, pin).await
    }
    async fn begin_snapshot(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Box<dyn SnapshotSink>, PortError> {
        self.inner.begin_snapshot(bucket, key).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<String, PortError> {
        let left = self.failing_puts.load(Ordering::SeqCst);
        if left > 0 {
            self.failing_puts.store(left - 1, Ordering::SeqCst);
            return Err(PortError::Transient("S3 answered 503 SlowDown".into()));
        }
        self.inner.put(bucket, key, body, content_type).await
    }
}

fn service_with(
    store: Arc<dyn DatasetStore>,
    env: &[(&str, &str)],
) -> (DatasetValidatorService, Arc<InMemoryRunLedger>) {
    let ledger = Arc::new(InMemoryRunLedger::new());
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = ValidatorConfig::from_lookup(|k| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| crate::testing::permissive_stack(k))
    })
    .unwrap();
    let svc = DatasetValidatorService {
        ledger: ledger.clone(),
        store,
        lister: Arc::new(crate::testing::memory::InMemoryDatasetStore::new()),
        clock: Arc::new(SystemClock),
        config,
    };
    (svc, ledger)
}

fn upload_event(key: &str, etag: &str) -> Value {
    json!({
        "version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1, "etag": etag}}
    })
}

fn owned(event: Value, execution: &str) -> Value {
    json!({"input": event, "ownerExecution": execution})
}

#[tokio::test]
async fn same_bytes_and_settings_are_one_run_and_fixed_metadata_is_a_new_one() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let key = "incoming/units.jsonl";
    let etag = store.insert(
        BUCKET,
        key,
        dataset(120),
        &[
            ("distillery-serving", "provisioned"),
            ("distillery-model-units", "5"),
        ],
    );
    let (svc, ledger) = service_with(store.clone(), &[]);
    let first = svc
        .handle(owned(upload_event(key, &etag), EXEC_A))
        .await
        .unwrap();
    assert_eq!(first.status, Some(RunStatus::Rejected));
    let old = ledger
        .get(first.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.owner_execution.as_deref(), Some(EXEC_A));
    let reason = old.failure_reason.clone().unwrap();
    assert!(
        reason.contains("x-amz-meta-distillery-model-units"),
        "{reason}"
    );
    // The same event again, from another execution: a duplicate, nothing changes.
    let again = svc
        .handle(owned(upload_event(key, &etag), EXEC_B))
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.run_id, first.run_id);
    // Same bytes, fixed metadata: a new run, validated.
    let etag2 = store.insert(
        BUCKET,
        key,
        dataset(120),
        &[
            ("distillery-serving", "provisioned"),
            ("distillery-model-units", "1"),
        ],
    );
    assert_eq!(etag, etag2, "same bytes");
    let fixed = svc
        .handle(owned(upload_event(key, &etag2), EXEC_B))
        .await
        .unwrap();
    assert!(!fixed.duplicate && fixed.valid, "{fixed:?}");
    assert_ne!(fixed.run_id, first.run_id);
    assert_eq!(
        ledger.get(&old.run_id).await.unwrap().unwrap(),
        old,
        "old run unchanged"
    );
}

#[tokio::test]
async fn a_retried_step_of_the_owning_execution_resumes_a_run_a_crash_left_validating() {
    let inner = Arc::new(InMemoryDatasetStore::new());
    let key = "incoming/crash.jsonl";
    let etag = inner.insert(BUCKET, key, dataset(120), &[]);
    let store = Arc::new(FlakyStore {
        inner,
        failing_puts: AtomicUsize::new(1),
    });
    let (svc, ledger) = service_with(store, &[]);
    let event = owned(upload_event(key, &etag), EXEC_A);
    let e = svc.handle(event.clone()).await.unwrap_err();
    assert_eq!(
        e.error_type,
        ErrorType::Transient,
        "retried by the state machine"
    );
    let runs = ledger.all();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Validating);
    // The state machine's retry: same execution, the run is resumed and finished.
    let out = svc.handle(event.clone()).await.unwrap();
    assert!(!out.duplicate && out.valid, "{out:?}");
    assert_eq!(out.status, Some(RunStatus::Validated));
    // Once more (a retry after the verdict): the same answer, not a duplicate, nothing rewritten.
    let before = ledger.all();
    let out = svc.handle(event).await.unwrap();
    assert!(!out.duplicate && out.valid);
    assert_eq!(ledger.all(), before);
    // Another execution for the same object and settings: a duplicate.
    let other = svc
        .handle(owned(upload_event(key, &etag), EXEC_B))
        .await
        .unwrap();
    assert!(other.duplicate);
}

#[tokio::test]
async fn without_an_owner_a_crash_still_fails_the_run_so_it_never_sits_in_validating() {
    let inner = Arc::new(InMemoryDatasetStore::new());
    let key = "incoming/crash.jsonl";
    let etag = inner.insert(BUCKET, key, dataset(120), &[]);
    let store = Arc::new(FlakyStore {
        inner,
        failing_puts: AtomicUsize::new(1),
    });
    let (svc, ledger) = service_with(store, &[]);
    let e = svc.handle(upload_event(key, &etag)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::Internal);
    assert_eq!(ledger.all()[0].status, RunStatus::Failed);
}

#[tokio::test]
async fn a_pair_offered_in_another_region_is_rejected_with_both_regions() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let key = "incoming/llama.jsonl";
    let etag = store.insert(
        BUCKET,
        key,
        dataset(120),
        &[
            ("distillery-teacher", "meta.llama3-1-70b-instruct-v1:0"),
            ("distillery-student", "meta.llama3-1-8b-instruct-v1:0:128k"),
        ],
    );
    let (svc, ledger) = service_with(store, &[("AWS_REGION", "us-east-1")]);
    let out = svc.handle(upload_event(key, &etag)).await.unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let reason = ledger.all()[0].failure_reason.clone().unwrap();
    assert!(
        reason.contains("meta.llama3-1-70b-instruct-v1:0 -> meta.llama3-1-8b-instruct-v1:0:128k")
            && reason.contains("us-west-2")
            && reason.contains("us-east-1"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_object_deleted_after_its_event_is_a_rejected_run_with_a_one_line_reason() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_with(store, &[]);
    let key = "incoming/gone.jsonl";
    let out = svc
        .handle(owned(upload_event(key, "abc"), EXEC_A))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let run = ledger.all().remove(0);
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.contains("no longer exists") && !reason.contains('\n'),
        "{reason}"
    );
    assert!(reason.contains(&format!("s3://{BUCKET}/{key}")), "{reason}");
    // A redelivered event is the same run, reported as a duplicate.
    let again = svc.handle(upload_event(key, "abc")).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(ledger.all().len(), 1);
}

#[tokio::test]
async fn a_retry_is_a_new_linked_attempt_and_only_of_a_finished_run() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let key = "incoming/retry.jsonl";
    let etag = store.insert(
        BUCKET,
        key,
        dataset(120),
        &[
            ("distillery-serving", "provisioned"),
            ("distillery-model-units", "5"),
        ],
    );
    let (svc, ledger) = service_with(store, &[]);
    let first = svc.handle(upload_event(key, &etag)).await.unwrap();
    let old_id = first.run_id.unwrap();
    let submit = |overrides: Value, retry_of: &RunId| {
        json!({"source": "distillery.cli", "bucket": BUCKET, "key": key,
               "overrides": overrides, "retryOf": retry_of})
    };
    let out = svc
        .handle(owned(submit(json!({"modelUnits": "1"}), &old_id), EXEC_A))
        .await
        .unwrap();
    assert!(out.valid, "{out:?}");
    let new = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new.retry_of.as_ref(), Some(&old_id));
    assert_eq!(new.attempt, 2);
    assert_eq!(new.settings.model_units, 1);
    // A validated run cannot be retried.
    let e = svc
        .handle(submit(json!({}), &new.run_id))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Conflict);
    assert!(
        e.message.contains("only a rejected, failed or stopped run"),
        "{}",
        e.message
    );
}

#[test]
fn the_owner_wrapper_is_unwrapped_and_bare_events_have_no_owner() {
    let bare = upload_event("incoming/a.jsonl", "e");
    assert_eq!(split_owner(bare.clone()), (None, bare.clone()));
    assert_eq!(
        split_owner(owned(bare.clone(), EXEC_A)),
        (Some(EXEC_A.to_string()), bare)
    );
}

#[test]
fn the_special_key_fixture_is_read_as_the_raw_key() {
    let path = format!(
        "{}/../../events/s3-object-created-special-key.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    match ValidateInput::parse(event).unwrap() {
        ValidateInput::ObjectCreated(e) => {
            assert_eq!(e.detail.object.key, "incoming/Q3 données+v2 (final).jsonl")
        }
        other => panic!("{other:?}"),
    }
}
