//! In-memory adapters for tests: the same semantics as the DynamoDB ledger and the S3 store (a
//! conditional create, status changes only from an expected status and only forwards, by the
//! domain's [`Run::check_update`]), without AWS. The ledger contract
//! ([`super::ledger_contract`]) runs on both ledgers: `functions/core/tests/ledger_contract_memory.rs`
//! and `functions/aws/tests/ledger_contract_dynamodb.rs`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::domain::run::{Run, RunId, RunStatus, RunUpdate};
use crate::ports::{
    Clock, CreateOutcome, DatasetChunks, DatasetStore, ObjectInfo, PortError, RunLedger,
    SystemClock,
};

/// The chunk size of the in-memory store's streams (prime, so chunk ends fall anywhere in a record).
const MEMORY_CHUNK_BYTES: usize = 8191;

pub struct InMemoryRunLedger {
    runs: Mutex<HashMap<RunId, Run>>,
    clock: Arc<dyn Clock>,
}

impl Default for InMemoryRunLedger {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryRunLedger {
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            runs: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Every run, newest first (for assertions).
    pub fn all(&self) -> Vec<Run> {
        let mut v: Vec<Run> = self.lock().values().cloned().collect();
        Run::sort_newest_first(&mut v);
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Run>> {
        // A panic in another test thread must not poison every later assertion.
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl RunLedger for InMemoryRunLedger {
    async fn create(&self, run: &Run) -> Result<CreateOutcome, PortError> {
        let mut runs = self.lock();
        if let Some(existing) = runs.get(&run.run_id) {
            return Ok(CreateOutcome::AlreadyExists(existing.clone()));
        }
        runs.insert(run.run_id.clone(), run.clone());
        Ok(CreateOutcome::Created(run.clone()))
    }

    async fn get(&self, run_id: &RunId) -> Result<Option<Run>, PortError> {
        Ok(self.lock().get(run_id).cloned())
    }

    async fn update(
        &self,
        run_id: &RunId,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<Run, PortError> {
        let now = self.clock.now();
        let mut runs = self.lock();
        let run = runs
            .get_mut(run_id)
            .ok_or_else(|| PortError::NotFound(format!("run {run_id} does not exist")))?;
        run.check_update(expected, update)?;
        update.apply_to(run, now);
        Ok(run.clone())
    }

    async fn list_recent(&self, limit: usize) -> Result<Vec<Run>, PortError> {
        let mut v = self.all();
        v.truncate(limit);
        Ok(v)
    }

    async fn list_by_status(&self, status: RunStatus, limit: usize) -> Result<Vec<Run>, PortError> {
        let mut v: Vec<Run> = self
            .all()
            .into_iter()
            .filter(|r| r.status == status)
            .collect();
        v.truncate(limit);
        Ok(v)
    }
}

#[derive(Clone)]
struct StoredObject {
    body: Arc<Vec<u8>>,
    metadata: BTreeMap<String, String>,
    etag: String,
}

/// Objects in memory. `open` hands out a reader over a shared buffer (tests only).
#[derive(Default)]
pub struct InMemoryDatasetStore {
    objects: Mutex<HashMap<(String, String), StoredObject>>,
}

impl InMemoryDatasetStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores an object with user metadata (keys are lowercased, as S3 does). Returns its ETag.
    pub fn insert(
        &self,
        bucket: &str,
        key: &str,
        body: impl Into<Vec<u8>>,
        metadata: &[(&str, &str)],
    ) -> String {
        let body: Vec<u8> = body.into();
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        let metadata = metadata
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        self.lock().insert(
            (bucket.to_string(), key.to_string()),
            StoredObject {
                body: Arc::new(body),
                metadata,
                etag: etag.clone(),
            },
        );
        etag
    }

    /// The bytes of an object, if present.
    pub fn get_bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.lock()
            .get(&(bucket.to_string(), key.to_string()))
            .map(|o| o.body.as_ref().clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), StoredObject>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn info(&self, bucket: &str, key: &str) -> Result<(ObjectInfo, Arc<Vec<u8>>), PortError> {
        let objects = self.lock();
        let o = objects
            .get(&(bucket.to_string(), key.to_string()))
            .ok_or_else(|| PortError::NotFound(format!("s3://{bucket}/{key} does not exist")))?;
        Ok((
            ObjectInfo {
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: o.etag.clone(),
                version_id: None,
                size: o.body.len() as u64,
                metadata: o.metadata.clone(),
            },
            o.body.clone(),
        ))
    }
}

#[async_trait]
impl DatasetStore for InMemoryDatasetStore {
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, PortError> {
        Ok(self.info(bucket, key)?.0)
    }

    async fn open(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, DatasetChunks), PortError> {
        let (info, body) = self.info(bucket, key)?;
        // Odd-sized chunks, as a network body arrives: records straddle chunk boundaries.
        let chunks: Vec<Result<Vec<u8>, PortError>> = body
            .chunks(MEMORY_CHUNK_BYTES)
            .map(|c| Ok(c.to_vec()))
            .collect();
        Ok((info, Box::pin(futures::stream::iter(chunks))))
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> Result<String, PortError> {
        self.insert(bucket, key, body, &[]);
        Ok(format!("s3://{bucket}/{key}"))
    }
}

#[cfg(test)]
mod tests {
    // The ledger's tests are the contract every ledger passes (`testing::ledger_contract`), run on
    // this one by `tests/ledger_contract_memory.rs`.
    use super::*;

    #[tokio::test]
    async fn dataset_store_round_trips() {
        let store = InMemoryDatasetStore::new();
        let etag = store.insert("b", "k", "hello", &[("Distillery-Teacher", "t")]);
        let info = store.head("b", "k").await.unwrap();
        assert_eq!(info.etag, etag);
        assert_eq!(info.metadata["distillery-teacher"], "t");
        let (_, r) = store.open("b", "k").await.unwrap();
        let chunks: Vec<Vec<u8>> = futures::TryStreamExt::try_collect(r).await.unwrap();
        assert_eq!(chunks.concat(), b"hello");
        assert!(matches!(
            store.head("b", "nope").await,
            Err(PortError::NotFound(_))
        ));
    }
}
