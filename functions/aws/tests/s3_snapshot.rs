//! The S3 dataset store against a moto server through the AWS SDK: reads pinned by version id (a
//! versioned bucket) or `If-Match` (an unversioned one), a changed object as `ObjectChanged`, and
//! snapshots uploaded in parts while they stream, aborted on request.
//!
//! Needs `.venv/bin/moto_server` (run `scripts/bootstrap.sh` once; `make test` does it).

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
use distillery_aws::s3::{S3DatasetStore, MIN_PART_BYTES};
use distillery_core::ports::{DatasetStore, ObjectPin, PortError};
use distillery_test_support::Moto;
use futures::TryStreamExt;

async fn client(moto: &Moto, bucket: &str, versioned: bool) -> aws_sdk_s3::Client {
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    if versioned {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    s3
}

async fn put(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: &str,
) -> (String, Option<String>) {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .metadata("distillery-student", body.len().to_string())
        .body(ByteStream::from(body.as_bytes().to_vec()))
        .send()
        .await
        .unwrap();
    (
        out.e_tag().unwrap().to_string(),
        out.version_id().map(str::to_string),
    )
}

async fn read_all(store: &S3DatasetStore, bucket: &str, key: &str, pin: &ObjectPin) -> Vec<u8> {
    let (_, chunks) = store.open(bucket, key, Some(pin)).await.unwrap();
    let parts: Vec<Vec<u8>> = chunks.try_collect().await.unwrap();
    parts.concat()
}

#[tokio::test]
async fn a_versioned_read_gets_the_events_version_whatever_the_key_holds_now() {
    let moto = Moto::shared();
    let s3 = client(&moto, "pin-versioned", true).await;
    let store = S3DatasetStore::new(s3.clone());
    let (_, v1) = put(&s3, "pin-versioned", "incoming/a.jsonl", "version one\n").await;
    put(
        &s3,
        "pin-versioned",
        "incoming/a.jsonl",
        "version two, longer\n",
    )
    .await;
    let pin = ObjectPin::VersionId {
        version_id: v1.clone().expect("a versioned bucket names versions"),
    };
    let info = store
        .head("pin-versioned", "incoming/a.jsonl", Some(&pin))
        .await
        .unwrap();
    assert_eq!(info.version_id, v1);
    // The metadata is the pinned version's too.
    assert_eq!(info.metadata["distillery-student"], "12");
    assert_eq!(
        read_all(&store, "pin-versioned", "incoming/a.jsonl", &pin).await,
        b"version one\n"
    );
    let gone = ObjectPin::VersionId {
        version_id: "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".into(),
    };
    for e in [
        store
            .head("pin-versioned", "incoming/a.jsonl", Some(&gone))
            .await
            .unwrap_err(),
        store
            .open("pin-versioned", "incoming/a.jsonl", Some(&gone))
            .await
            .err()
            .unwrap(),
    ] {
        assert!(matches!(e, PortError::ObjectChanged(_)), "{e}");
    }
}

#[tokio::test]
async fn an_if_match_read_fails_as_changed_once_the_key_holds_other_bytes() {
    let moto = Moto::shared();
    let s3 = client(&moto, "pin-etag", false).await;
    let store = S3DatasetStore::new(s3.clone());
    let (etag1, _) = put(&s3, "pin-etag", "incoming/b.jsonl", "first\n").await;
    // S3's event sends the ETag without quotes; the adapter quotes it for If-Match.
    let pin = ObjectPin::IfMatch {
        etag: etag1.trim_matches('"').to_string(),
    };
    assert_eq!(
        store
            .head("pin-etag", "incoming/b.jsonl", Some(&pin))
            .await
            .unwrap()
            .etag,
        etag1
    );
    assert_eq!(
        read_all(&store, "pin-etag", "incoming/b.jsonl", &pin).await,
        b"first\n"
    );
    put(&s3, "pin-etag", "incoming/b.jsonl", "second\n").await;
    let head = store
        .head("pin-etag", "incoming/b.jsonl", Some(&pin))
        .await
        .unwrap_err();
    assert!(matches!(head, PortError::ObjectChanged(_)), "{head}");
    let get = store
        .open("pin-etag", "incoming/b.jsonl", Some(&pin))
        .await
        .err()
        .unwrap();
    assert!(matches!(get, PortError::ObjectChanged(_)), "{get}");
    // Unpinned, a missing key is NotFound (not "changed").
    let missing = store
        .head("pin-etag", "incoming/none.jsonl", None)
        .await
        .unwrap_err();
    assert!(matches!(missing, PortError::NotFound(_)), "{missing}");
}

#[tokio::test]
async fn a_snapshot_over_one_part_is_a_multipart_upload_sent_as_it_streams() {
    let moto = Moto::shared();
    let s3 = client(&moto, "snapshots", false).await;
    let store = Arc::new(S3DatasetStore::new(s3.clone()).with_part_bytes(MIN_PART_BYTES));
    // 12 MiB + a tail, in 64 KiB chunks: parts of 5 MiB, 5 MiB and the rest.
    let chunk: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let chunks = 12 * 16 + 3;
    let mut sink = store
        .begin_snapshot("snapshots", "runs/run-1/dataset.jsonl")
        .await
        .unwrap();
    for _ in 0..chunks {
        sink.write(&chunk).await.unwrap();
    }
    let written = sink.finish().await.unwrap();
    let size = (chunks * chunk.len()) as u64;
    assert_eq!(written.size, size);
    assert!(!written.etag.starts_with('"'));
    // A multipart ETag ends with the part count: the bytes went out in 5 MiB parts, never whole.
    assert!(written.etag.ends_with("-3"), "{}", written.etag);
    let head = store
        .head("snapshots", "runs/run-1/dataset.jsonl", None)
        .await
        .unwrap();
    assert_eq!(
        (head.size, head.etag.trim_matches('"')),
        (size, written.etag.as_str())
    );
    let body = s3
        .get_object()
        .bucket("snapshots")
        .key("runs/run-1/dataset.jsonl")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(body.len() as u64, size);
    assert!(body.chunks(chunk.len()).all(|c| c == chunk.as_slice()));

    // A small snapshot is one PutObject.
    let mut sink = store
        .begin_snapshot("snapshots", "runs/run-2/dataset.jsonl")
        .await
        .unwrap();
    sink.write(b"{}\n").await.unwrap();
    let small = sink.finish().await.unwrap();
    assert!(!small.etag.contains('-'), "{}", small.etag);
    assert_eq!(small.size, 3);

    // An aborted snapshot leaves no object and no pending upload.
    let mut sink = store
        .begin_snapshot("snapshots", "runs/run-3/dataset.jsonl")
        .await
        .unwrap();
    for _ in 0..100 {
        sink.write(&chunk).await.unwrap();
    }
    sink.abort().await.unwrap();
    let e = store
        .head("snapshots", "runs/run-3/dataset.jsonl", None)
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::NotFound(_)), "{e}");
    let pending = s3
        .list_multipart_uploads()
        .bucket("snapshots")
        .send()
        .await
        .unwrap();
    assert!(pending.uploads().is_empty(), "{:?}", pending.uploads());
}
