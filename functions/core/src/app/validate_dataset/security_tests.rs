//! What an upload may ask for (issue 16): `ALLOW_PROVISIONING` and `ALLOW_OVERRIDES` are enforced
//! before a byte of the dataset is read, and the ids of runs that use no override do not change.

use std::sync::Arc;

use serde_json::{json, Value};

use super::tests::{dataset, service_env};
use super::*;
use crate::domain::run::RunStatus;
use crate::testing::memory::InMemoryDatasetStore;

const BUCKET: &str = "distillery-datasets-123456789012";

fn upload_event(key: &str, etag: &str) -> Value {
    json!({
        "version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1, "etag": etag}}
    })
}

/// Uploads `key` with `metadata` to a stack with `env`, and returns the recorded run.
async fn upload(
    env: &[(&str, &str)],
    key: &str,
    metadata: &[(&str, &str)],
) -> (Run, Arc<InMemoryDatasetStore>) {
    let store = Arc::new(InMemoryDatasetStore::new());
    let etag = store.insert(BUCKET, key, dataset(120), metadata);
    let mut vars = vec![("QUALITY_GATE", "off")];
    vars.extend_from_slice(env);
    let (svc, ledger) = service_env(store.clone(), &vars);
    let out = svc.handle(upload_event(key, &etag)).await.unwrap();
    let run = ledger
        .get(out.run_id.as_ref().unwrap())
        .await
        .unwrap()
        .unwrap();
    (run, store)
}

/// Rejected before reading: no record counted, no snapshot written, the reason recorded.
fn assert_rejected_unread(run: &Run, store: &InMemoryDatasetStore) -> String {
    assert_eq!(run.status, RunStatus::Rejected, "{run:?}");
    let v = run.validation.clone().unwrap();
    assert_eq!(
        (v.records, v.error_count),
        (0, 0),
        "nothing was read: {v:?}"
    );
    assert!(
        !store.keys(BUCKET).iter().any(|k| k.starts_with("runs/")),
        "no snapshot: {:?}",
        store.keys(BUCKET)
    );
    run.failure_reason.clone().unwrap()
}

#[tokio::test]
async fn provisioned_serving_on_a_stack_without_provisioning_is_rejected_naming_where_it_came_from()
{
    let closed = [("ALLOW_PROVISIONING", "false")];
    // Asked for by the upload's metadata.
    let (run, store) = upload(
        &closed,
        "incoming/pt.jsonl",
        &[("distillery-serving", "provisioned")],
    )
    .await;
    let reason = assert_rejected_unread(&run, &store);
    assert!(
        reason.contains("ALLOW_PROVISIONING is false")
            && reason.ends_with("the value came from S3 metadata x-amz-meta-distillery-serving"),
        "{reason}"
    );
    // The stack's own default.
    let (run, store) = upload(
        &[
            ("ALLOW_PROVISIONING", "false"),
            ("SERVING_MODE", "provisioned"),
        ],
        "incoming/default.jsonl",
        &[],
    )
    .await;
    let reason = assert_rejected_unread(&run, &store);
    assert!(
        reason.contains("ALLOW_PROVISIONING is false")
            && reason.ends_with("the stack default SERVING_MODE"),
        "{reason}"
    );
    // The code's default is closed too (no ALLOW_PROVISIONING at all on the stack).
    let vars = |k: &str| (k == "SERVING_MODE").then(|| "provisioned".to_string());
    let c = ValidatorConfig::from_lookup(vars).unwrap();
    assert!(!c.policy.allow_provisioning);
    // Allowed: the same upload is validated, and on-demand / none never need the switch.
    let (run, _) = upload(
        &[("ALLOW_PROVISIONING", "true")],
        "incoming/pt.jsonl",
        &[("distillery-serving", "provisioned")],
    )
    .await;
    assert_eq!(run.status, RunStatus::Validated, "{run:?}");
    let (run, _) = upload(
        &closed,
        "incoming/od.jsonl",
        &[("distillery-serving", "on-demand")],
    )
    .await;
    assert_eq!(run.status, RunStatus::Validated, "{run:?}");
}

#[tokio::test]
async fn metadata_for_a_setting_the_stack_does_not_open_is_rejected_before_reading() {
    let (run, store) = upload(
        &[("ALLOW_OVERRIDES", "")],
        "incoming/teacher.jsonl",
        &[("distillery-student", "amazon.nova-micro-v1:0:128k")],
    )
    .await;
    let reason = assert_rejected_unread(&run, &store);
    assert!(
        reason
            .starts_with("S3 metadata x-amz-meta-distillery-student is not allowed on this stack")
            && reason.contains("ALLOW_OVERRIDES is 'none'"),
        "{reason}"
    );
    // Opened for that one setting: validated.
    let (run, _) = upload(
        &[("ALLOW_OVERRIDES", "teacher,student")],
        "incoming/teacher.jsonl",
        &[("distillery-student", "amazon.nova-micro-v1:0:128k")],
    )
    .await;
    assert_eq!(run.status, RunStatus::Validated, "{run:?}");
    // Keys that only make a run cheaper or stricter stay open with no override allowed.
    let (run, _) = upload(
        &[("ALLOW_OVERRIDES", "none")],
        "incoming/cheaper.jsonl",
        &[
            ("distillery-max-run-cost-usd", "500"),
            ("distillery-pt-ttl-hours", "2"),
            ("distillery-quality-gate", "on"),
        ],
    )
    .await;
    assert_eq!(run.status, RunStatus::Validated, "{run:?}");
}

/// The run id covers the settings' fingerprint: opening or closing overrides must not change the id
/// of a run that uses none (a redelivered event would otherwise start a second run).
#[test]
fn the_id_of_a_run_without_overrides_does_not_depend_on_the_new_switches() {
    let metadata = std::collections::BTreeMap::new();
    let object = ObjectVersion {
        bucket: BUCKET,
        key: "incoming/same.jsonl",
        version_id: None,
        etag: "e",
        metadata: &metadata,
    };
    let none = SettingsOverrides::default();
    let id = |vars: &'static [(&'static str, &'static str)]| {
        let c = ValidatorConfig::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        run_for_object(&c, &object, &none, 1).0
    };
    let closed = id(&[]);
    assert_eq!(
        closed,
        id(&[("ALLOW_OVERRIDES", "all"), ("ALLOW_PROVISIONING", "true")])
    );
    assert_eq!(closed, id(&[("ALLOW_OVERRIDES", "serving")]));
    // And an id computed before the switches existed (this key, no metadata, stack defaults).
    assert_eq!(closed.as_str(), PINNED_ID, "the id scheme changed");
}

/// `run_for_object` for `s3://distillery-datasets-123456789012/incoming/same.jsonl`, ETag `e`, no
/// metadata, stack defaults (quality gate on), attempt 1. `RunSettings` and the fingerprint are
/// untouched by `ALLOW_*`, so this is the id main gave before they existed.
const PINNED_ID: &str = "run-685238e006c437c6402e";
