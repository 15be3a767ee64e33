//! The validator's one streaming pass over a pinned object version: each chunk goes to the
//! validation engine and to the run's snapshot (`runs/<run-id>/dataset.jsonl`), and into a SHA-256,
//! so the bytes recorded as validated are exactly the bytes the launcher hands Bedrock. Memory stays
//! bounded: the store's sink uploads in parts as the chunks arrive.
//!
//! With the quality gate on (and something to gate), two passes instead (see docs/evaluation.md):
//! [`validate_for_slice`] validates and keeps one prompt hash per record and the SHA-256 of the
//! bytes, writing nothing, since which records are held out is only known once every record's hash
//! is; then [`split_into_snapshots`] reads the same pinned version again, checks it is still the
//! same bytes, and writes the training snapshot (the held-out lines left out, the rest byte for
//! byte) and `heldout.jsonl` side by side.
//!
//! Also here: the reason and the report of a run whose pinned version is gone (the key was
//! overwritten or the version deleted before the validator read it; the run itself is recorded by
//! `object_run::reject_unreadable_object`).

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{DatasetValidatorService, StoredReport, ValidateDatasetOutput};
use crate::domain::errors::StepError;
use crate::domain::evaluation::LineSplitter;
use crate::domain::run::{DatasetLocation, Run, ValidationSummary};
use crate::domain::snapshot::{DatasetSnapshot, ObjectPin};
use crate::domain::validation::{DatasetValidator, ValidationOptions, ValidationReport};
use crate::ports::{DatasetChunks, PortError, SnapshotSink};

/// The one-line reason for a run whose pinned object version could no longer be read.
pub fn changed_reason(bucket: &str, key: &str, pin: &ObjectPin, detail: &str) -> String {
    match pin {
        ObjectPin::IfMatch { .. } => format!(
            "s3://{bucket}/{key} changed after the upload event ({}); the newer upload is validated by its own run",
            pin.describe()
        ),
        ObjectPin::VersionId { .. } => format!(
            "s3://{bucket}/{key}: the uploaded version ({}) no longer exists ({detail}); nothing was validated",
            pin.describe()
        ),
    }
}

/// Streams `chunks` through the validator and into `sink`. A valid dataset's snapshot is completed
/// and described; an invalid one's is aborted (a rejected dataset keeps no snapshot), as is the
/// snapshot on any read or write failure, or when `keep` refuses a valid report (a run over its
/// budget: rejected too, and nobody may delete under runs/, so it must never be completed).
pub(super) async fn validate_into_snapshot(
    chunks: DatasetChunks,
    options: &ValidationOptions,
    sink: Box<dyn SnapshotSink>,
    source: &ObjectPin,
    keep: impl FnOnce(&ValidationReport) -> bool,
) -> Result<(ValidationReport, Option<DatasetSnapshot>), PortError> {
    let mut sink = sink;
    let mut validator = DatasetValidator::new(options.clone());
    let mut sha = Sha256::new();
    let mut size = 0u64;
    let streamed = async {
        let mut chunks = chunks;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            validator.push_bytes(&chunk);
            sha.update(&chunk);
            size += chunk.len() as u64;
            sink.write(&chunk).await?;
        }
        Ok::<(), PortError>(())
    }
    .await;
    if let Err(e) = streamed {
        abort(sink).await;
        return Err(e);
    }
    let report = validator.finish();
    if !report.valid || !keep(&report) {
        abort(sink).await;
        return Ok((report, None));
    }
    let written = sink.finish().await?;
    if written.size != size {
        return Err(PortError::Other(format!(
            "snapshot s3://{}/{} holds {} bytes but {size} were streamed",
            written.bucket, written.key, written.size
        )));
    }
    let snapshot = DatasetSnapshot {
        uri: format!("s3://{}/{}", written.bucket, written.key),
        bucket: written.bucket,
        key: written.key,
        size,
        sha256: hex::encode(sha.finalize()),
        etag: written.etag.trim_matches('"').to_string(),
        source: source.clone(),
    };
    Ok((report, Some(snapshot)))
}

/// What the first pass of a gated run found.
pub(super) struct FirstPass {
    pub(super) report: ValidationReport,
    /// One per record when the report is valid (see `DatasetValidator::collect_prompt_hashes`).
    pub(super) prompt_hashes: Vec<u64>,
    pub(super) sha256: String,
    pub(super) size: u64,
}

/// Pass 1 of a gated run: validation, each record's prompt hash and the bytes' SHA-256; nothing is
/// written.
pub(super) async fn validate_for_slice(
    mut chunks: DatasetChunks,
    options: &ValidationOptions,
) -> Result<FirstPass, PortError> {
    let mut validator = DatasetValidator::new(options.clone());
    validator.collect_prompt_hashes();
    let mut sha = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        validator.push_bytes(&chunk);
        sha.update(&chunk);
        size += chunk.len() as u64;
    }
    let (report, prompt_hashes) = validator.finish_with_prompt_hashes();
    Ok(FirstPass {
        report,
        prompt_hashes: prompt_hashes.unwrap_or_default(),
        sha256: hex::encode(sha.finalize()),
        size,
    })
}

/// The held-out file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HeldOutFile {
    pub(super) uri: String,
    pub(super) records: usize,
    pub(super) sha256: String,
}

/// Where pass 2 writes, and what pass 1 found that it must agree with.
pub(super) struct SplitTarget<'a> {
    /// Indices of the held-out records (ascending); empty: the whole dataset trains.
    pub(super) held: &'a [usize],
    pub(super) training: Box<dyn SnapshotSink>,
    /// Present exactly when `held` is not empty.
    pub(super) held_out: Option<Box<dyn SnapshotSink>>,
    pub(super) first: &'a FirstPass,
    pub(super) source: &'a ObjectPin,
    /// `s3://bucket/key`, for the message when the bytes changed.
    pub(super) object: &'a str,
}

/// Pass 2 of a gated run: the same pinned version again, split into the training snapshot and the
/// held-out file. The bytes must hash as pass 1's did (they are the bytes that were validated);
/// otherwise nothing is kept and the error says the object changed. The held-out file is completed
/// before the training snapshot, so a training snapshot never exists without its held-out file.
pub(super) async fn split_into_snapshots(
    chunks: DatasetChunks,
    target: SplitTarget<'_>,
) -> Result<(DatasetSnapshot, Option<HeldOutFile>), PortError> {
    let SplitTarget {
        held,
        mut training,
        mut held_out,
        first,
        source,
        object,
    } = target;
    let mut splitter = LineSplitter::new(held);
    let mut all = Sha256::new();
    let mut train_sha = Sha256::new();
    let mut held_sha = Sha256::new();
    let (mut train_size, mut held_size, mut size) = (0u64, 0u64, 0u64);
    let (mut train_buf, mut held_buf) = (Vec::new(), Vec::new());
    let streamed = async {
        let mut chunks = chunks;
        let mut finished = false;
        while !finished {
            match chunks.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    all.update(&chunk);
                    size += chunk.len() as u64;
                    splitter.push(&chunk, &mut train_buf, &mut held_buf);
                }
                None => {
                    let lines = std::mem::replace(&mut splitter, LineSplitter::new(&[]))
                        .finish(&mut held_buf);
                    if lines != first.prompt_hashes.len() {
                        return Err(PortError::Other(format!(
                            "{object} ({}) read as {lines} records the second time but {} the first; nothing was kept",
                            source.describe(),
                            first.prompt_hashes.len()
                        )));
                    }
                    finished = true;
                }
            }
            if !train_buf.is_empty() {
                train_sha.update(&train_buf);
                train_size += train_buf.len() as u64;
                training.write(&train_buf).await?;
                train_buf.clear();
            }
            if !held_buf.is_empty() {
                held_sha.update(&held_buf);
                held_size += held_buf.len() as u64;
                match held_out.as_mut() {
                    Some(sink) => sink.write(&held_buf).await?,
                    None => {
                        return Err(PortError::Other(
                            "held-out records but no held-out file to write them to".into(),
                        ))
                    }
                }
                held_buf.clear();
            }
        }
        let second = hex::encode(std::mem::take(&mut all).finalize());
        if second != first.sha256 || size != first.size {
            return Err(PortError::Other(format!(
                "{object} ({}) changed between the validator's two reads: {} bytes with SHA-256 {} were validated, then {size} bytes with SHA-256 {second} were read to split off the held-out records; nothing was kept",
                source.describe(),
                first.size,
                first.sha256
            )));
        }
        Ok::<(), PortError>(())
    }
    .await;
    if let Err(e) = streamed {
        abort(training).await;
        if let Some(h) = held_out {
            abort(h).await;
        }
        return Err(e);
    }
    let held_file = match held_out {
        Some(sink) => {
            let written = match sink.finish().await {
                Ok(w) => w,
                Err(e) => {
                    abort(training).await;
                    return Err(e);
                }
            };
            check_size(&written, held_size)?;
            Some(HeldOutFile {
                uri: format!("s3://{}/{}", written.bucket, written.key),
                records: held.len(),
                sha256: hex::encode(held_sha.finalize()),
            })
        }
        None => None,
    };
    let written = training.finish().await?;
    check_size(&written, train_size)?;
    let snapshot = DatasetSnapshot {
        uri: format!("s3://{}/{}", written.bucket, written.key),
        bucket: written.bucket,
        key: written.key,
        size: train_size,
        sha256: hex::encode(train_sha.finalize()),
        etag: written.etag.trim_matches('"').to_string(),
        source: source.clone(),
    };
    Ok((snapshot, held_file))
}

fn check_size(written: &crate::ports::WrittenObject, size: u64) -> Result<(), PortError> {
    if written.size != size {
        return Err(PortError::Other(format!(
            "s3://{}/{} holds {} bytes but {size} were streamed",
            written.bucket, written.key, written.size
        )));
    }
    Ok(())
}

/// Aborting is best effort: the bucket's lifecycle rule removes incomplete multipart uploads anyway.
async fn abort(sink: Box<dyn SnapshotSink>) {
    if let Err(e) = sink.abort().await {
        tracing::warn!(error = %e, "could not abort the snapshot upload");
    }
}

impl DatasetValidatorService {
    /// Writes the report and records the rejection of a run whose bytes were never validated.
    pub(super) async fn reject_unread(
        &self,
        run: &Run,
        read: Option<&ObjectPin>,
        reason: String,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let DatasetLocation::S3Object { bucket, .. } = &run.dataset else {
            return Err(StepError::internal("only an S3 dataset is read by version"));
        };
        let report = StoredReport {
            note: Some(&reason),
            read,
            ..StoredReport::about(run)
        };
        let uri = self
            .put_report(bucket, &self.config.report_key(&run.run_id), &report)
            .await?;
        let summary = ValidationSummary {
            valid: false,
            first_errors: vec![reason.clone()],
            report_uri: Some(uri),
            ..Default::default()
        };
        self.finish(run, summary, Some(reason)).await
    }
}
