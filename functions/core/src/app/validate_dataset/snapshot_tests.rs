//! Pinned reads and the per-run snapshot: the bytes recorded as validated are the bytes of the
//! version the event announced, copied to `runs/<run-id>/dataset.jsonl` in the same pass.

use crate::domain::errors::ErrorType;
use sha2::{Digest, Sha256};

use super::*;
use crate::domain::snapshot::DatasetSnapshot;

const KEY: &str = "incoming/support.jsonl";

fn versioned_event(key: &str, etag: &str, version_id: &str) -> Value {
    let mut e = object_event(key, etag);
    e["detail"]["object"]["version-id"] = version_id.into();
    e
}

async fn report_of(store: &InMemoryDatasetStore, run_id: &RunId) -> Value {
    let bytes = store
        .get_bytes(BUCKET, &format!("reports/{run_id}/report.json"))
        .expect("report");
    serde_json::from_slice(&bytes).unwrap()
}

fn snapshot_of(run: &Run) -> &DatasetSnapshot {
    run.snapshot.as_ref().expect("a valid run has a snapshot")
}

#[tokio::test]
async fn a_valid_dataset_is_copied_to_its_run_folder_in_the_same_pass() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let body = dataset(130);
    let etag = store.insert(BUCKET, KEY, body.clone(), &[]);
    let (svc, ledger) = service(store.clone());
    let out = svc.handle(object_event(KEY, &etag)).await.unwrap();
    assert!(out.valid, "{out:?}");
    let id = out.run_id.unwrap();
    let run = ledger.get(&id).await.unwrap().unwrap();
    let snap = snapshot_of(&run);
    let key = format!("runs/{id}/dataset.jsonl");
    assert_eq!(snap.uri, format!("s3://{BUCKET}/{key}"));
    assert_eq!(
        (snap.bucket.as_str(), snap.key.as_str()),
        (BUCKET, key.as_str())
    );
    assert_eq!(store.get_bytes(BUCKET, &key).unwrap(), body.as_bytes());
    assert_eq!(snap.size, body.len() as u64);
    assert_eq!(snap.sha256, hex::encode(Sha256::digest(body.as_bytes())));
    let snapshot_etag = store.head(BUCKET, &key, None).await.unwrap().etag;
    assert_eq!(snap.etag, snapshot_etag.trim_matches('"'));
    assert_eq!(
        snap.source,
        ObjectPin::IfMatch {
            etag: etag.trim_matches('"').into()
        }
    );
    let report = report_of(&store, &id).await;
    assert_eq!(report["read"]["pinnedBy"], "ifMatch", "{report}");
    assert_eq!(report["read"]["etag"], etag.trim_matches('"'));
    assert_eq!(report["snapshot"]["uri"], snap.uri.as_str());
    assert_eq!(
        store.snapshot_counts(),
        crate::testing::memory::SnapshotCounts {
            begun: 1,
            finished: 1,
            aborted: 0
        }
    );
}

#[tokio::test]
async fn an_invalid_dataset_keeps_no_snapshot() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let etag = store.insert(BUCKET, KEY, format!("{}not json\n", dataset(120)), &[]);
    let (svc, ledger) = service(store.clone());
    let out = svc.handle(object_event(KEY, &etag)).await.unwrap();
    assert!(!out.valid);
    let id = out.run_id.unwrap();
    assert!(ledger.get(&id).await.unwrap().unwrap().snapshot.is_none());
    assert_eq!(
        store.get_bytes(BUCKET, &format!("runs/{id}/dataset.jsonl")),
        None
    );
    let counts = store.snapshot_counts();
    assert_eq!((counts.finished, counts.aborted), (0, 1));
    assert_eq!(report_of(&store, &id).await["read"]["pinnedBy"], "ifMatch");
}

/// Unversioned bucket: v1's event arrives after v2 replaced it. The HEAD with `If-Match` on v1's ETag
/// fails, so v1's run is rejected with the reason, never validated on v2's bytes; v2's own event
/// makes a valid run whose snapshot holds v2's bytes.
#[tokio::test]
async fn an_overwritten_upload_is_rejected_as_changed_and_the_newer_one_has_its_own_run() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let v1 = store.insert(BUCKET, KEY, "not json\n", &[]);
    let v2_body = dataset(120);
    let v2 = store.insert(BUCKET, KEY, v2_body.clone(), &[]);
    let (svc, ledger) = service(store.clone());

    let out1 = svc.handle(object_event(KEY, &v1)).await.unwrap();
    assert!(!out1.valid);
    assert_eq!(out1.status, Some(RunStatus::Rejected));
    let run1 = ledger
        .get(&out1.run_id.clone().unwrap())
        .await
        .unwrap()
        .unwrap();
    let reason = run1.failure_reason.clone().unwrap();
    assert_eq!(
        reason,
        format!(
            "s3://{BUCKET}/{KEY} changed after the upload event (ETag \"{}\"); the newer upload is validated by its own run",
            v1.trim_matches('"')
        )
    );
    assert!(run1.snapshot.is_none());
    assert_eq!(run1.validation.unwrap().first_errors, [reason]);
    // A repeated delivery of v1's event is the same run.
    assert!(svc.handle(object_event(KEY, &v1)).await.unwrap().duplicate);

    let out2 = svc.handle(object_event(KEY, &v2)).await.unwrap();
    assert!(out2.valid, "{out2:?}");
    let run2 = ledger.get(&out2.run_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(
        store.get_bytes(BUCKET, &snapshot_of(&run2).key).unwrap(),
        v2_body.as_bytes()
    );
    assert_eq!(
        store.snapshot_counts().begun,
        1,
        "v1's bytes were never read"
    );
}

/// Versioned bucket: each event's version is read, whatever the key holds now. Invalid v1 is
/// rejected on v1's own bytes; valid v2 is validated and snapshotted.
#[tokio::test]
async fn a_versioned_upload_is_read_by_its_version_id() {
    let store = Arc::new(InMemoryDatasetStore::versioned());
    let v1 = store.insert(BUCKET, KEY, format!("{}not json\n", dataset(120)), &[]);
    let v1_id = store.current_version(BUCKET, KEY).unwrap();
    let v2_body = dataset(125);
    let v2 = store.insert(BUCKET, KEY, v2_body.clone(), &[]);
    let v2_id = store.current_version(BUCKET, KEY).unwrap();
    let (svc, ledger) = service(store.clone());

    let out1 = svc.handle(versioned_event(KEY, &v1, &v1_id)).await.unwrap();
    assert_eq!(out1.status, Some(RunStatus::Rejected));
    assert_eq!((out1.records, out1.invalid_records), (121, 1));
    let report = report_of(&store, out1.run_id.as_ref().unwrap()).await;
    assert_eq!(report["read"]["pinnedBy"], "versionId");
    assert_eq!(report["read"]["versionId"], v1_id.as_str());

    let out2 = svc.handle(versioned_event(KEY, &v2, &v2_id)).await.unwrap();
    assert!(out2.valid, "{out2:?}");
    assert_eq!(out2.records, 125);
    let run2 = ledger.get(&out2.run_id.unwrap()).await.unwrap().unwrap();
    let snap = snapshot_of(&run2);
    assert_eq!(
        snap.source,
        ObjectPin::VersionId {
            version_id: v2_id.clone()
        }
    );
    assert_eq!(
        store.get_bytes(BUCKET, &snap.key).unwrap(),
        v2_body.as_bytes()
    );
}

#[tokio::test]
async fn a_version_that_no_longer_exists_is_a_rejection_with_the_reason() {
    let store = Arc::new(InMemoryDatasetStore::versioned());
    let etag = store.insert(BUCKET, KEY, dataset(120), &[]);
    let (svc, ledger) = service(store.clone());
    let out = svc
        .handle(versioned_event(KEY, &etag, "v-deleted"))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let run = ledger.get(&out.run_id.unwrap()).await.unwrap().unwrap();
    let reason = run.failure_reason.unwrap();
    assert!(
        reason.starts_with(&format!(
            "s3://{BUCKET}/{KEY}: the uploaded version (version id v-deleted) no longer exists"
        )),
        "{reason}"
    );
    assert_eq!(store.snapshot_counts().begun, 0);
}

#[test]
fn a_snapshot_prefix_inside_the_upload_area_is_refused() {
    let e = ValidatorConfig::from_lookup(|k| match k {
        "UPLOAD_PREFIX" => Some("runs/".into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(e.error_type, ErrorType::ConfigInvalid);
    assert!(
        e.message.contains("SNAPSHOT_PREFIX 'runs/'"),
        "{}",
        e.message
    );
    let c =
        ValidatorConfig::from_lookup(|k| (k == "SNAPSHOT_PREFIX").then(|| "kept".into())).unwrap();
    assert_eq!(
        c.snapshot_layout("b").folder(&RunId("run-1".into())),
        "kept/run-1/"
    );
}
