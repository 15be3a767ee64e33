//! The validator's one streaming pass over a pinned object version: each chunk goes to the
//! validation engine and to the run's snapshot (`runs/<run-id>/dataset.jsonl`), and into a SHA-256,
//! so the bytes recorded as validated are exactly the bytes the launcher hands Bedrock. Memory stays
//! bounded: the store's sink uploads in parts as the chunks arrive.
//!
//! Also here: the reason and the report of a run whose pinned version is gone (the key was
//! overwritten or the version deleted before the validator read it; the run itself is recorded by
//! `object_run::reject_unreadable_object`).

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::{DatasetValidatorService, StoredReport, ValidateDatasetOutput};
use crate::domain::errors::StepError;
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
            run_id: &run.run_id,
            dataset: &run.dataset,
            settings: &run.settings,
            settings_error: None,
            validation: None,
            note: Some(&reason),
            read,
            snapshot: None,
            cost_estimate: None,
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
