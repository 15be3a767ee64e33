//! The quality gate at validation: the held-out slice written beside the training snapshot and
//! left out of it, the reasons a gate is skipped, the metadata rules, the run id, and the
//! provisioned-without-on-demand refusal.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::*;
use crate::domain::evaluation::{setting, GatePlan};
use crate::domain::settings::ServingMode;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A line with a distinct prompt per `i`, the golden answer naming `i` too.
fn lines(n: usize) -> Vec<String> {
    (0..n).map(good_line).collect()
}

async fn validate(
    svc: &DatasetValidatorService,
    store: &InMemoryDatasetStore,
    key: &str,
    body: &str,
    metadata: &[(&str, &str)],
) -> ValidateDatasetOutput {
    let etag = store.insert(BUCKET, key, body.to_string(), metadata);
    svc.handle(object_event(key, &etag)).await.unwrap()
}

fn report(store: &InMemoryDatasetStore, id: &RunId) -> Value {
    serde_json::from_slice(
        &store
            .get_bytes(BUCKET, &format!("reports/{id}/report.json"))
            .unwrap(),
    )
    .unwrap()
}

/// What a held-out file says: (index, record) per line.
fn held_out_lines(bytes: &[u8]) -> Vec<(usize, Value)> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["index"].as_u64().unwrap() as usize, v["record"].clone())
        })
        .collect()
}

#[tokio::test]
async fn the_slice_is_written_beside_the_snapshot_and_left_out_of_it() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), &[]);
    let originals = lines(200);
    // CRLF on some lines and no final newline: training lines stay byte for byte as uploaded.
    let mut body = String::new();
    for (i, l) in originals.iter().enumerate() {
        body.push_str(l);
        if i + 1 < originals.len() {
            body.push_str(if i % 3 == 0 { "\r\n" } else { "\n" });
        }
    }
    let out = validate(&svc, &store, "incoming/gated.jsonl", &body, &[]).await;
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    assert_eq!(out.records, 200);
    let id = out.run_id.unwrap();
    let run = ledger.get(&id).await.unwrap().unwrap();
    let training_key = format!("runs/{id}/dataset.jsonl");
    let held_key = format!("runs/{id}/heldout.jsonl");
    let training = store.get_bytes(BUCKET, &training_key).unwrap();
    let held = store.get_bytes(BUCKET, &held_key).unwrap();

    // 200 × 5 % = 10 → raised to the minimum 20; 180 left to train on.
    let held_lines = held_out_lines(&held);
    assert_eq!(held_lines.len(), 20);
    let indices: Vec<usize> = held_lines.iter().map(|(i, _)| *i).collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    for (i, record) in &held_lines {
        let original: Value = serde_json::from_str(&originals[*i]).unwrap();
        assert_eq!(record, &original, "record {i}");
    }
    // The training snapshot is the upload with exactly those lines (and their line ends) removed.
    let mut expected = Vec::new();
    let mut start = 0;
    for (i, piece) in body.split_inclusive('\n').enumerate() {
        if !indices.contains(&i) {
            expected.extend_from_slice(piece.as_bytes());
        }
        start += piece.len();
    }
    assert_eq!(start, body.len());
    assert_eq!(training, expected);
    let text = String::from_utf8(training.clone()).unwrap();
    assert_eq!(text.lines().count(), 180);
    for (i, _) in &held_lines {
        let prompt = format!("\"Question number {i}?\"");
        assert!(!text.contains(&prompt), "held-out {prompt} is in training");
    }

    // The run trains on the training file and records the slice.
    let snap = run.snapshot.clone().unwrap();
    assert_eq!(snap.key, training_key);
    assert_eq!(snap.size, training.len() as u64);
    assert_eq!(snap.sha256, sha(&training));
    let GatePlan::Armed {
        held_out_uri,
        records,
        sha256,
        min_score,
        min_score_origin,
    } = run.quality_gate.clone().unwrap()
    else {
        panic!("{:?}", run.quality_gate)
    };
    assert_eq!(held_out_uri, format!("s3://{BUCKET}/{held_key}"));
    assert_eq!((records, sha256.as_str()), (20, sha(&held).as_str()));
    assert_eq!(min_score, 0.7);
    assert_eq!(
        min_score_origin,
        "the default (limits.json evaluation.defaultGateMinScore)"
    );
    // The report says the same.
    let r = report(&store, &id);
    assert_eq!(r["qualityGate"]["state"], "armed", "{r}");
    assert_eq!(r["qualityGate"]["records"], 20);
    assert_eq!(r["qualityGate"]["heldOutUri"], held_out_uri.as_str());
    assert_eq!(r["snapshot"]["sha256"], sha(&training).as_str());
    // Two sinks begun and finished; nothing aborted.
    let c = store.snapshot_counts();
    assert_eq!((c.begun, c.finished, c.aborted), (2, 2, 0));

    // The same bytes under another key give the same slice (chosen by prompt, not by chance).
    let again = validate(&svc, &store, "incoming/gated-again.jsonl", &body, &[]).await;
    let held_again = store
        .get_bytes(
            BUCKET,
            &format!("runs/{}/heldout.jsonl", again.run_id.unwrap()),
        )
        .unwrap();
    assert_eq!(held_again, held);
}

#[tokio::test]
async fn too_few_records_for_a_slice_train_on_everything_and_say_why() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), &[]);
    let body = dataset(110);
    let out = validate(&svc, &store, "incoming/small.jsonl", &body, &[]).await;
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    let id = out.run_id.unwrap();
    let run = ledger.get(&id).await.unwrap().unwrap();
    let Some(GatePlan::Skipped { reason }) = &run.quality_gate else {
        panic!("{:?}", run.quality_gate)
    };
    assert!(
        reason.starts_with("quality gate skipped: the dataset has 110 records, and holding out 20"),
        "{reason}"
    );
    assert_eq!(
        store.get_bytes(BUCKET, &format!("runs/{id}/dataset.jsonl")),
        Some(body.clone().into_bytes())
    );
    assert_eq!(run.snapshot.unwrap().sha256, sha(body.as_bytes()));
    assert!(store
        .get_bytes(BUCKET, &format!("runs/{id}/heldout.jsonl"))
        .is_none());
    assert_eq!(
        report(&store, &id)["qualityGate"]["reason"],
        reason.as_str()
    );
}

#[tokio::test]
async fn serving_none_takes_no_slice_and_the_reason_says_so() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), &[("SERVING_MODE", "none")]);
    let body = dataset(200);
    let out = validate(&svc, &store, "incoming/none.jsonl", &body, &[]).await;
    assert_eq!(out.serving, Some(ServingMode::None));
    let id = out.run_id.unwrap();
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(
        run.quality_gate,
        Some(GatePlan::Skipped {
            reason: setting::SERVING_NONE_REASON.into()
        })
    );
    assert_eq!(
        store.get_bytes(BUCKET, &format!("runs/{id}/dataset.jsonl")),
        Some(body.into_bytes())
    );
    // One pass: one sink.
    assert_eq!(store.snapshot_counts().begun, 1);
}

#[tokio::test]
async fn gate_off_records_off_and_the_whole_dataset_trains() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), &[("QUALITY_GATE", "off")]);
    let body = dataset(200);
    let out = validate(&svc, &store, "incoming/off.jsonl", &body, &[]).await;
    let id = out.run_id.unwrap();
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.quality_gate, Some(GatePlan::Off));
    assert_eq!(
        store.get_bytes(BUCKET, &format!("runs/{id}/dataset.jsonl")),
        Some(body.into_bytes())
    );
    assert_eq!(report(&store, &id)["qualityGate"]["state"], "off");
}

#[tokio::test]
async fn metadata_may_switch_the_gate_on_and_raise_its_threshold() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), &[("QUALITY_GATE", "off")]);
    let body = dataset(200);
    let out = validate(
        &svc,
        &store,
        "incoming/on.jsonl",
        &body,
        &[("distillery-quality-gate", "on")],
    )
    .await;
    let run = ledger.get(&out.run_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(run.quality_gate.unwrap().held_out_records(), Some(20));
    // A threshold alone implies the gate.
    let out = validate(
        &svc,
        &store,
        "incoming/stricter.jsonl",
        &body,
        &[("distillery-quality-gate-min-score", "85%")],
    )
    .await;
    let run = ledger.get(&out.run_id.unwrap()).await.unwrap().unwrap();
    let Some(GatePlan::Armed {
        min_score,
        min_score_origin,
        ..
    }) = run.quality_gate
    else {
        panic!("{:?}", run.quality_gate)
    };
    assert_eq!(min_score, 0.85);
    assert_eq!(
        min_score_origin,
        "S3 metadata x-amz-meta-distillery-quality-gate-min-score"
    );
}

/// A refused value rejects the run before a byte is read, like a bad budget.
async fn assert_refused(metadata: &[(&str, &str)], stack: &[(&str, &str)], needle: &str) {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), stack);
    let out = validate(
        &svc,
        &store,
        "incoming/refused.jsonl",
        &dataset(200),
        metadata,
    )
    .await;
    assert_eq!(out.status, Some(RunStatus::Rejected), "{out:?}");
    let run = ledger.get(&out.run_id.unwrap()).await.unwrap().unwrap();
    let reason = run.failure_reason.clone().unwrap();
    assert!(reason.contains(needle), "{reason}");
    assert_eq!(run.validation.unwrap().records, 0, "nothing was read");
    assert!(run.snapshot.is_none() && run.quality_gate.is_none());
    assert_eq!(store.snapshot_counts().begun, 0);
}

#[tokio::test]
async fn metadata_may_not_switch_the_gate_off_or_lower_the_threshold() {
    assert_refused(
        &[("distillery-quality-gate", "off")],
        &[],
        "S3 metadata x-amz-meta-distillery-quality-gate 'off' is refused: the stack's QUALITY_GATE is on",
    )
    .await;
    assert_refused(
        &[("distillery-quality-gate-min-score", "0.5")],
        &[("QUALITY_GATE_MIN_SCORE", "0.8")],
        "a run's quality gate threshold of 50% is below the stack's QUALITY_GATE_MIN_SCORE of 80%",
    )
    .await;
    assert_refused(
        &[("Distillery-Quality-Gate", "maybe")],
        &[],
        "must be 'on' or 'off', got 'maybe'",
    )
    .await;
}

#[tokio::test]
async fn provisioned_with_the_gate_needs_an_on_demand_student_in_the_region() {
    const LLAMA_8B: &str = "meta.llama3-1-8b-instruct-v1:0:128k";
    let west: &[(&str, &str)] = &[
        ("AWS_REGION", "us-west-2"),
        ("DEFAULT_TEACHER", "meta.llama3-1-405b-instruct-v1:0"),
        ("DEFAULT_STUDENT", LLAMA_8B),
    ];
    assert_refused(
        &[("distillery-serving", "provisioned")],
        west,
        &format!("serving 'provisioned' with the quality gate on is not possible here: the gate evaluates the student on an on-demand deployment before any Provisioned Throughput is bought, and Bedrock offers no on-demand deployment of custom {LLAMA_8B} models in us-west-2"),
    )
    .await;
    // With the gate off, the same run is validated (throughput is bought without an evaluation).
    let store = Arc::new(InMemoryDatasetStore::new());
    let mut off = west.to_vec();
    off.push(("QUALITY_GATE", "off"));
    let (svc, _) = service_env(store.clone(), &off);
    let out = validate(
        &svc,
        &store,
        "incoming/pt.jsonl",
        &dataset(200),
        &[("distillery-serving", "provisioned")],
    )
    .await;
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    // A Nova student has on-demand deployment: a provisioned run is armed.
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), &[("AWS_REGION", "us-east-1")]);
    let out = validate(
        &svc,
        &store,
        "incoming/nova-pt.jsonl",
        &dataset(200),
        &[("distillery-serving", "provisioned")],
    )
    .await;
    assert_eq!(out.serving, Some(ServingMode::Provisioned), "{out:?}");
    let run = ledger.get(&out.run_id.unwrap()).await.unwrap().unwrap();
    assert_eq!(run.quality_gate.unwrap().held_out_records(), Some(20));
}

#[tokio::test]
async fn an_invalid_dataset_with_the_gate_on_writes_nothing() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let (svc, ledger) = service_env(store.clone(), &[]);
    let body = format!("{}not json\n", dataset(200));
    let out = validate(&svc, &store, "incoming/bad.jsonl", &body, &[]).await;
    assert_eq!(out.status, Some(RunStatus::Rejected));
    let run = ledger.get(&out.run_id.unwrap()).await.unwrap().unwrap();
    assert!(run.snapshot.is_none() && run.quality_gate.is_none());
    assert_eq!(store.snapshot_counts().begun, 0);
}

#[test]
fn the_run_id_changes_only_when_the_gate_is_on() {
    use crate::domain::run::RunIdentity;
    use crate::domain::settings::{settings_fingerprint, SettingsOverrides};
    let config = |gate: &'static str| {
        ValidatorConfig::from_lookup(move |k| {
            (k == "QUALITY_GATE")
                .then(|| gate.into())
                .or_else(|| crate::testing::permissive_stack(k))
        })
        .unwrap()
    };
    let none = SettingsOverrides::default();
    let object = |metadata| ObjectVersion {
        bucket: BUCKET,
        key: "incoming/id.jsonl",
        version_id: None,
        etag: "abc",
        metadata,
    };
    let plain = BTreeMap::new();
    let (off, settings) = run_for_object(&config("off"), &object(&plain), &none, 1);
    // Gate off: the id is the settings fingerprint's alone, as before the gate existed.
    let before = RunId::for_dataset(&RunIdentity {
        bucket: BUCKET,
        key: "incoming/id.jsonl",
        version: "abc",
        settings_fingerprint: &settings_fingerprint(Ok(&settings.unwrap()), &plain, &none),
        attempt: 1,
    });
    assert_eq!(off, before);
    let (on, _) = run_for_object(&config("on"), &object(&plain), &none, 1);
    assert_ne!(on, off);
    // Switched on by metadata: the same run as the stack's gate (same settings, same gate).
    let switched = BTreeMap::from([("distillery-quality-gate".to_string(), "on".to_string())]);
    let (by_metadata, _) = run_for_object(&config("off"), &object(&switched), &none, 1);
    assert_eq!(by_metadata, on);
    // A metadata threshold is part of the identity.
    let stricter = BTreeMap::from([(
        "distillery-quality-gate-min-score".to_string(),
        "0.9".to_string(),
    )]);
    let (strict, _) = run_for_object(&config("on"), &object(&stricter), &none, 1);
    assert_ne!(strict, on);
}

#[tokio::test]
async fn bytes_that_change_between_the_two_passes_keep_nothing() {
    use super::snapshot::{split_into_snapshots, validate_for_slice, SplitTarget};
    let store = InMemoryDatasetStore::new();
    let options = ValidationOptions::for_student(
        &crate::domain::catalog::ModelCatalog::builtin(),
        None,
        &crate::domain::catalog::Limits::builtin(),
    );
    let chunks = |body: String| -> DatasetChunks {
        Box::pin(futures::stream::iter(vec![Ok(body.into_bytes())]))
    };
    let first = validate_for_slice(chunks(dataset(200)), &options)
        .await
        .unwrap();
    assert!(first.report.valid);
    assert_eq!(first.prompt_hashes.len(), 200);
    // Same number of records, other bytes.
    let other: String = (1..=200).map(|i| good_line(i) + "\n").collect();
    let pin = ObjectPin::IfMatch { etag: "e".into() };
    let target = SplitTarget {
        held: &[3, 7],
        training: store
            .begin_snapshot(BUCKET, "runs/x/dataset.jsonl")
            .await
            .unwrap(),
        held_out: Some(
            store
                .begin_snapshot(BUCKET, "runs/x/heldout.jsonl")
                .await
                .unwrap(),
        ),
        first: &first,
        source: &pin,
        object: "s3://b/incoming/x.jsonl",
    };
    let e = split_into_snapshots(chunks(other), target)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains(
            "s3://b/incoming/x.jsonl (ETag \"e\") changed between the validator's two reads"
        ),
        "{e}"
    );
    assert!(store.get_bytes(BUCKET, "runs/x/dataset.jsonl").is_none());
    assert!(store.get_bytes(BUCKET, "runs/x/heldout.jsonl").is_none());
    assert_eq!(store.snapshot_counts().aborted, 2);
}
