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
    Clock, CreateOutcome, DatasetChunks, DatasetStore, JobSlots, ListedObject, ObjectInfo,
    ObjectLister, ObjectPage, ObjectPin, PortError, RunLedger, SlotGrant, SnapshotSink,
    SystemClock, WrittenObject,
};

/// Keys per page of the in-memory listing (small, so tests cross page boundaries).
const MEMORY_LIST_PAGE: usize = 50;

/// The chunk size of the in-memory store's streams (prime, so chunk ends fall anywhere in a record).
const MEMORY_CHUNK_BYTES: usize = 8191;

pub struct InMemoryRunLedger {
    runs: Mutex<HashMap<RunId, Run>>,
    clock: Arc<dyn Clock>,
    /// The job slots ([`JobSlots`]), kept beside the runs as DynamoDB keeps them in the same table.
    slots: Mutex<std::collections::BTreeSet<RunId>>,
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
            slots: Mutex::new(Default::default()),
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
    version_id: Option<String>,
}

/// Objects in memory, with S3's semantics for what Distillery relies on: ETags, optional versioning
/// (every write keeps the older versions, reachable by version id), reads pinned by version id or
/// `If-Match` (`PortError::ObjectChanged` when the pin no longer matches), and snapshot sinks that
/// make nothing visible before `finish`. `open` hands out a reader over a shared buffer (tests only).
#[derive(Default)]
pub struct InMemoryDatasetStore {
    shared: Arc<StoreState>,
}

/// The objects of an [`InMemoryDatasetStore`], shared with the snapshot sinks it hands out.
#[derive(Default)]
pub struct StoreState {
    /// Every version of each key, oldest first; the last is the current one. A deleted key has none.
    objects: Mutex<HashMap<(String, String), Vec<StoredObject>>>,
    versioned: bool,
    next_version: Mutex<u64>,
    snapshots: Mutex<SnapshotCounts>,
}

/// What happened to the snapshot sinks a store handed out (for assertions).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotCounts {
    pub begun: usize,
    pub finished: usize,
    pub aborted: usize,
}

impl InMemoryDatasetStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that behaves like a versioned bucket: each write gets a version id (`v1`, `v2`, ...).
    pub fn versioned() -> Self {
        Self {
            shared: Arc::new(StoreState {
                versioned: true,
                ..StoreState::default()
            }),
        }
    }
}

impl std::ops::Deref for InMemoryDatasetStore {
    type Target = StoreState;
    fn deref(&self) -> &StoreState {
        &self.shared
    }
}

impl StoreState {
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
        let version_id = self.versioned.then(|| {
            let mut n = self.next_version.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            format!("v{n}")
        });
        let object = StoredObject {
            body: Arc::new(body),
            metadata,
            etag: etag.clone(),
            version_id,
        };
        let mut objects = self.lock();
        let versions = objects
            .entry((bucket.to_string(), key.to_string()))
            .or_default();
        if !self.versioned {
            versions.clear();
        }
        versions.push(object);
        etag
    }

    /// The current version id of an object (versioned stores only).
    pub fn current_version(&self, bucket: &str, key: &str) -> Option<String> {
        self.lock()
            .get(&(bucket.to_string(), key.to_string()))
            .and_then(|v| v.last())
            .and_then(|o| o.version_id.clone())
    }

    /// Removes the object (every version), as a DeleteObject on an unversioned bucket would.
    pub fn remove(&self, bucket: &str, key: &str) {
        self.lock().remove(&(bucket.to_string(), key.to_string()));
    }

    /// The bytes of an object, if present.
    pub fn get_bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.lock()
            .get(&(bucket.to_string(), key.to_string()))
            .and_then(|v| v.last())
            .map(|o| o.body.as_ref().clone())
    }

    /// Keys present in `bucket` (current versions), sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .lock()
            .iter()
            .filter(|((b, _), v)| b == bucket && !v.is_empty())
            .map(|((_, k), _)| k.clone())
            .collect();
        keys.sort();
        keys
    }

    pub fn snapshot_counts(&self) -> SnapshotCounts {
        *self.snapshots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Vec<StoredObject>>> {
        self.objects.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut SnapshotCounts)) {
        f(&mut self.snapshots.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn info(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<(ObjectInfo, Arc<Vec<u8>>), PortError> {
        let objects = self.lock();
        let versions = objects
            .get(&(bucket.to_string(), key.to_string()))
            .filter(|v| !v.is_empty());
        let o = match (versions, pin) {
            (None, Some(ObjectPin::VersionId { version_id })) => {
                return Err(PortError::ObjectChanged(format!(
                    "s3://{bucket}/{key}: version {version_id} does not exist"
                )))
            }
            (None, _) => {
                return Err(PortError::NotFound(format!(
                    "s3://{bucket}/{key} does not exist"
                )))
            }
            (Some(v), Some(ObjectPin::VersionId { version_id })) => v
                .iter()
                .find(|o| o.version_id.as_deref() == Some(version_id))
                .ok_or_else(|| {
                    PortError::ObjectChanged(format!(
                        "s3://{bucket}/{key}: version {version_id} does not exist"
                    ))
                })?,
            (Some(v), Some(ObjectPin::IfMatch { etag })) => {
                let current = v.last().expect("non-empty");
                if current.etag.trim_matches('"') != etag {
                    return Err(PortError::ObjectChanged(format!(
                        "s3://{bucket}/{key}: PreconditionFailed (If-Match \"{etag}\")"
                    )));
                }
                current
            }
            (Some(v), None) => v.last().expect("non-empty"),
        };
        Ok((
            ObjectInfo {
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: o.etag.clone(),
                version_id: o.version_id.clone(),
                size: o.body.len() as u64,
                metadata: o.metadata.clone(),
            },
            o.body.clone(),
        ))
    }
}

#[async_trait]
impl JobSlots for InMemoryRunLedger {
    async fn acquire(&self, run_id: &RunId, max: u32) -> Result<SlotGrant, PortError> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.contains(run_id) {
            return Ok(SlotGrant::AlreadyHeld);
        }
        if slots.len() >= max as usize {
            return Ok(SlotGrant::Full);
        }
        slots.insert(run_id.clone());
        Ok(SlotGrant::Taken)
    }

    async fn release(&self, run_id: &RunId) -> Result<(), PortError> {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(run_id);
        Ok(())
    }

    async fn holders(&self) -> Result<Vec<RunId>, PortError> {
        Ok(self
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect())
    }
}

/// Lists like ListObjectsV2: current versions under the prefix, in key order, a page at a time; the
/// continuation token is the last key of the page.
#[async_trait]
impl ObjectLister for InMemoryDatasetStore {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        continuation: Option<&str>,
    ) -> Result<ObjectPage, PortError> {
        let objects = self.lock();
        let mut listed: Vec<ListedObject> = objects
            .iter()
            .filter(|((b, k), v)| {
                b == bucket
                    && k.starts_with(prefix)
                    && continuation.is_none_or(|after| k.as_str() > after)
                    && !v.is_empty()
            })
            .map(|((_, k), v)| ListedObject {
                key: k.clone(),
                size: v.last().map_or(0, |o| o.body.len() as u64),
            })
            .collect();
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        let next =
            (listed.len() > MEMORY_LIST_PAGE).then(|| listed[MEMORY_LIST_PAGE - 1].key.clone());
        listed.truncate(MEMORY_LIST_PAGE);
        Ok(ObjectPage {
            objects: listed,
            next,
        })
    }
}

#[async_trait]
impl DatasetStore for InMemoryDatasetStore {
    async fn head(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<ObjectInfo, PortError> {
        Ok(self.info(bucket, key, pin)?.0)
    }

    async fn open(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<(ObjectInfo, DatasetChunks), PortError> {
        let (info, body) = self.info(bucket, key, pin)?;
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

    async fn begin_snapshot(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Box<dyn SnapshotSink>, PortError> {
        self.count(|c| c.begun += 1);
        Ok(Box::new(MemorySnapshotSink {
            store: self.shared.clone(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            body: Vec::new(),
        }))
    }
}

/// Collects the bytes and stores them at `finish` (memory is no concern in tests).
struct MemorySnapshotSink {
    store: Arc<StoreState>,
    bucket: String,
    key: String,
    body: Vec<u8>,
}

#[async_trait]
impl SnapshotSink for MemorySnapshotSink {
    async fn write(&mut self, chunk: &[u8]) -> Result<(), PortError> {
        self.body.extend_from_slice(chunk);
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<WrittenObject, PortError> {
        let size = self.body.len() as u64;
        let etag = self
            .store
            .insert(&self.bucket, &self.key, self.body, &[])
            .trim_matches('"')
            .to_string();
        self.store.count(|c| c.finished += 1);
        Ok(WrittenObject {
            bucket: self.bucket,
            key: self.key,
            etag,
            size,
        })
    }

    async fn abort(self: Box<Self>) -> Result<(), PortError> {
        self.store.count(|c| c.aborted += 1);
        Ok(())
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
        let info = store.head("b", "k", None).await.unwrap();
        assert_eq!(info.etag, etag);
        assert_eq!(info.metadata["distillery-teacher"], "t");
        let (_, r) = store.open("b", "k", None).await.unwrap();
        let chunks: Vec<Vec<u8>> = futures::TryStreamExt::try_collect(r).await.unwrap();
        assert_eq!(chunks.concat(), b"hello");
        assert!(matches!(
            store.head("b", "nope", None).await,
            Err(PortError::NotFound(_))
        ));
    }
}
