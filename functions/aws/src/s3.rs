//! AWS adapter for [`DatasetStore`] on S3. `open` streams the object body: the bytes are pulled from
//! the HTTP response as the validator reads them, never collected into memory.
//!
//! Reads can be pinned to one object version ([`ObjectPin`]): `versionId` on a versioned bucket, else
//! `If-Match` with the quoted ETag (S3 compares the header to the object's quoted ETag). A 412
//! `PreconditionFailed`, or a pinned version S3 no longer has (`NoSuchVersion`, or a bare 404/400 on
//! a HEAD, which has no error body), is [`PortError::ObjectChanged`].
//!
//! Snapshots ([`DatasetStore::begin_snapshot`]) are written as a multipart upload while the bytes
//! stream in: a part goes out each time [`SNAPSHOT_PART_BYTES`] have collected, so memory holds one
//! part at most; an object smaller than one part is a single PutObject. Any failure aborts the
//! upload. Encryption is the bucket's default (SSE-S3 in `infra/template.yaml`), as for reports.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use crate::sdk_error::port_error;
use distillery_core::config::Env;
use distillery_core::ports::{
    DatasetChunks, DatasetStore, ListedObject, ObjectInfo, ObjectLister, ObjectPage, ObjectPin,
    PortError, SnapshotSink, WrittenObject,
};

/// The part size of snapshot uploads (S3's minimum for every part but the last is 5 MiB).
pub const SNAPSHOT_PART_BYTES: usize = 8 * 1024 * 1024;
/// S3's minimum part size.
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;
const SNAPSHOT_CONTENT_TYPE: &str = "application/x-ndjson";

#[derive(Clone)]
pub struct S3DatasetStore {
    client: Client,
    part_bytes: usize,
}

impl S3DatasetStore {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            part_bytes: SNAPSHOT_PART_BYTES,
        }
    }

    /// The same store with another snapshot part size (at least S3's 5 MiB minimum).
    pub fn with_part_bytes(mut self, part_bytes: usize) -> Self {
        self.part_bytes = part_bytes.max(MIN_PART_BYTES);
        self
    }

    /// An S3 client for Lambda or the CLI: path-style addressing when `AWS_ENDPOINT_URL` points at a
    /// local emulator (moto has no per-bucket DNS names).
    pub fn client_from_conf(config: &aws_config::SdkConfig) -> Client {
        let env = Env::process();
        let local = env.optional_string("AWS_ENDPOINT_URL").is_some()
            || env.optional_string("AWS_ENDPOINT_URL_S3").is_some();
        let conf = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(local)
            .build();
        Client::from_conf(conf)
    }
}

/// S3 returns user metadata with keys as sent; S3 itself lowercases them on the wire, but we
/// normalise again so lookups never depend on the client.
fn lowercase_keys<'a>(
    metadata: Option<impl IntoIterator<Item = (&'a String, &'a String)>>,
) -> BTreeMap<String, String> {
    metadata
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

/// A pinned read that found another version (or none) is `ObjectChanged`, whatever S3 called it.
fn pinned_error(pin: Option<&ObjectPin>, e: PortError) -> PortError {
    let text = e.to_string();
    let changed = match (pin, &e) {
        (None, _) => false,
        (Some(_), _) if text.contains("PreconditionFailed") || text.contains("HTTP 412") => true,
        (Some(ObjectPin::VersionId { .. }), PortError::NotFound(_)) => true,
        (Some(ObjectPin::VersionId { .. }), PortError::Validation(_)) => true,
        (Some(ObjectPin::VersionId { .. }), _) => text.contains("NoSuchVersion"),
        _ => false,
    };
    if changed {
        PortError::ObjectChanged(text)
    } else {
        e
    }
}

fn quoted(etag: &str) -> String {
    format!("\"{}\"", etag.trim_matches('"'))
}

fn describe(bucket: &str, key: &str, pin: Option<&ObjectPin>) -> String {
    match pin {
        Some(p) => format!("s3://{bucket}/{key} ({})", p.describe()),
        None => format!("s3://{bucket}/{key}"),
    }
}

/// How a pinned read names its version: `(versionId, If-Match)`, at most one of them set.
fn pin_request(pin: Option<&ObjectPin>) -> (Option<String>, Option<String>) {
    match pin {
        Some(ObjectPin::VersionId { version_id }) => (Some(version_id.clone()), None),
        Some(ObjectPin::IfMatch { etag }) => (None, Some(quoted(etag))),
        None => (None, None),
    }
}

/// What HeadObject and GetObject both tell about the version they read.
fn object_info(
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    version_id: Option<&str>,
    content_length: Option<i64>,
    metadata: Option<&HashMap<String, String>>,
) -> ObjectInfo {
    ObjectInfo {
        bucket: bucket.to_string(),
        key: key.to_string(),
        etag: etag.unwrap_or_default().to_string(),
        version_id: version_id.map(str::to_string),
        size: content_length.unwrap_or(0).max(0) as u64,
        metadata: lowercase_keys(metadata),
    }
}

#[async_trait]
impl DatasetStore for S3DatasetStore {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<ObjectInfo, PortError> {
        let (version_id, if_match) = pin_request(pin);
        let req = self.client.head_object().bucket(bucket).key(key);
        let out = req
            .set_version_id(version_id)
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| {
                pinned_error(
                    pin,
                    port_error(&format!("HeadObject {}", describe(bucket, key, pin)), e),
                )
            })?;
        Ok(object_info(
            bucket,
            key,
            out.e_tag(),
            out.version_id(),
            out.content_length(),
            out.metadata(),
        ))
    }

    async fn open(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<(ObjectInfo, DatasetChunks), PortError> {
        let (version_id, if_match) = pin_request(pin);
        let req = self.client.get_object().bucket(bucket).key(key);
        let out = req
            .set_version_id(version_id)
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| {
                pinned_error(
                    pin,
                    port_error(&format!("GetObject {}", describe(bucket, key, pin)), e),
                )
            })?;
        let info = object_info(
            bucket,
            key,
            out.e_tag(),
            out.version_id(),
            out.content_length(),
            out.metadata(),
        );
        // The body as it arrives from the network, chunk by chunk: never buffered whole.
        let what = format!("reading s3://{bucket}/{key}");
        let chunks = futures::stream::try_unfold(out.body, move |mut body| {
            let what = what.clone();
            async move {
                match body.try_next().await {
                    Ok(Some(bytes)) => Ok(Some((bytes.to_vec(), body))),
                    Ok(None) => Ok(None),
                    Err(e) => Err(PortError::Transient(format!("{what}: {e}"))),
                }
            }
        });
        Ok((info, Box::pin(chunks)))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<String, PortError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| port_error(&format!("PutObject s3://{bucket}/{key}"), e))?;
        Ok(format!("s3://{bucket}/{key}"))
    }

    async fn begin_snapshot(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Box<dyn SnapshotSink>, PortError> {
        Ok(Box::new(S3SnapshotSink {
            client: self.client.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            part_bytes: self.part_bytes,
            buffer: Vec::new(),
            upload_id: None,
            parts: Vec::new(),
            size: 0,
        }))
    }
}

#[async_trait]
impl ObjectLister for S3DatasetStore {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
    ) -> Result<ObjectPage, PortError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(continuation.map(str::to_string))
            .send()
            .await
            .map_err(|e| port_error(&format!("ListObjectsV2 s3://{bucket}/{prefix}"), e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(ListedObject {
                    key: o.key()?.to_string(),
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ObjectPage { objects, next })
    }
}

/// A snapshot being uploaded: the bytes not yet sent (less than one part), and the multipart upload
/// once the first part went out.
struct S3SnapshotSink {
    client: Client,
    bucket: String,
    key: String,
    part_bytes: usize,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    size: u64,
}

impl S3SnapshotSink {
    fn uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Sends the buffer as the next part (starting the multipart upload first if needed).
    async fn send_part(&mut self) -> Result<(), PortError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let out = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .content_type(SNAPSHOT_CONTENT_TYPE)
                    .send()
                    .await
                    .map_err(|e| port_error(&format!("CreateMultipartUpload {}", self.uri()), e))?;
                let id = out.upload_id().unwrap_or_default().to_string();
                if id.is_empty() {
                    return Err(PortError::Other(format!(
                        "CreateMultipartUpload {}: S3 returned no upload id",
                        self.uri()
                    )));
                }
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as i32 + 1;
        let body = std::mem::take(&mut self.buffer);
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| port_error(&format!("UploadPart {number} of {}", self.uri()), e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_string))
                .build(),
        );
        Ok(())
    }

    async fn complete(&mut self) -> Result<String, PortError> {
        if self.upload_id.is_none() {
            // Smaller than one part: one PutObject.
            let out = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .content_type(SNAPSHOT_CONTENT_TYPE)
                .body(ByteStream::from(std::mem::take(&mut self.buffer)))
                .send()
                .await
                .map_err(|e| port_error(&format!("PutObject {}", self.uri()), e))?;
            return Ok(out.e_tag().unwrap_or_default().to_string());
        }
        if !self.buffer.is_empty() {
            self.send_part().await?;
        }
        let out = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(self.upload_id.clone().unwrap_or_default())
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(self.parts.clone()))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| port_error(&format!("CompleteMultipartUpload {}", self.uri()), e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    /// Aborts the multipart upload, if one was started (nothing was written otherwise).
    async fn abort_upload(&mut self) -> Result<(), PortError> {
        self.buffer = Vec::new();
        let Some(upload_id) = self.upload_id.take() else {
            return Ok(());
        };
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .send()
            .await
            .map_err(|e| port_error(&format!("AbortMultipartUpload {}", self.uri()), e))?;
        Ok(())
    }

    /// On a failed call, abort (best effort) and return the call's error.
    async fn aborting(&mut self, e: PortError) -> PortError {
        if let Err(abort) = self.abort_upload().await {
            tracing::warn!(error = %abort, "could not abort the snapshot upload");
        }
        e
    }
}

#[async_trait]
impl SnapshotSink for S3SnapshotSink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), PortError> {
        self.buffer.extend_from_slice(chunk);
        self.size += chunk.len() as u64;
        if self.buffer.len() >= self.part_bytes {
            if let Err(e) = self.send_part().await {
                return Err(self.aborting(e).await);
            }
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> Result<WrittenObject, PortError> {
        match self.complete().await {
            Ok(etag) => Ok(WrittenObject {
                bucket: self.bucket.clone(),
                key: self.key.clone(),
                etag: etag.trim_matches('"').to_string(),
                size: self.size,
            }),
            Err(e) => Err(self.aborting(e).await),
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<(), PortError> {
        self.abort_upload().await
    }
}
