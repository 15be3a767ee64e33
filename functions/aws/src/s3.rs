//! AWS adapter for [`DatasetStore`] on S3. `open` streams the object body: the bytes are pulled from
//! the HTTP response as the validator reads them, never collected into memory.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::sdk_error::port_error;
use distillery_core::config::Env;
use distillery_core::ports::{DatasetChunks, DatasetStore, ObjectInfo, PortError};

#[derive(Clone)]
pub struct S3DatasetStore {
    client: Client,
}

impl S3DatasetStore {
    pub fn new(client: Client) -> Self {
        Self { client }
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

#[async_trait]
impl DatasetStore for S3DatasetStore {
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError> {
        let out = self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| port_error(&format!("HeadObject s3://{bucket}/{key}"), e))?;
        Ok(ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: out.e_tag().unwrap_or_default().to_string(),
            version_id: out.version_id().map(str::to_string),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            metadata: lowercase_keys(out.metadata()),
        })
    }

    async fn open(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, DatasetChunks), PortError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| port_error(&format!("GetObject s3://{bucket}/{key}"), e))?;
        let info = ObjectInfo {
            bucket: bucket.to_string(),
            key: key.to_string(),
            etag: out.e_tag().unwrap_or_default().to_string(),
            version_id: out.version_id().map(str::to_string),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            metadata: lowercase_keys(out.metadata()),
        };
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
}
