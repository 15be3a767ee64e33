//! The quality gate's held-out slice at validation: the second pinned pass that splits the
//! validated records into the training snapshot and `heldout.jsonl`.

use super::*;

impl DatasetValidatorService {
    /// The gated read: pass 1 validates and hashes each record's prompt; when the dataset is valid
    /// (and within budget), pass 2 writes the training snapshot without the held-out records and
    /// `heldout.jsonl` beside it, or the whole dataset when there is no slice (the plan says why).
    pub(super) async fn read_with_slice(
        &self,
        run: &Run,
        info: &ObjectInfo,
        pin: &ObjectPin,
        options: &ValidationOptions,
        gate: &GateSetting,
        keep: impl FnOnce(&ValidationReport) -> bool,
    ) -> Result<Result<(ValidationReport, Option<DatasetSnapshot>, GatePlan), String>, StepError>
    {
        let bucket = &info.bucket;
        let object = format!("s3://{bucket}/{}", info.key);
        let chunks = match self.open_pinned(info, pin).await? {
            Ok(chunks) => chunks,
            Err(reason) => return Ok(Err(reason)),
        };
        let first = snapshot::validate_for_slice(chunks, options)
            .await
            .map_err(|e| e.context(format!("reading {object}")))?;
        if !first.report.valid || !keep(&first.report) {
            // Nothing was written: a rejected run keeps no snapshot.
            return Ok(Ok((first.report, None, GatePlan::Off)));
        }
        if first.prompt_hashes.len() as u64 != first.report.records {
            return Err(StepError::internal(format!(
                "{object}: {} prompt hashes for {} valid records",
                first.prompt_hashes.len(),
                first.report.records
            )));
        }
        let held_out = select_held_out(&first.prompt_hashes, &self.config.limits);
        let layout = self.config.snapshot_layout(bucket);
        let snapshot_key = layout.dataset_key(&run.run_id);
        let held_key = format!("{}{HELD_OUT_FILE}", layout.folder(&run.run_id));
        let chunks = match self.open_pinned(info, pin).await? {
            Ok(chunks) => chunks,
            Err(reason) => return Ok(Err(reason)),
        };
        let training = self.begin_sink(bucket, &snapshot_key).await?;
        let (held, held_sink) = match held_out.slice() {
            Some(slice) => (
                slice.indices.as_slice(),
                Some(self.begin_sink(bucket, &held_key).await?),
            ),
            None => (&[][..], None),
        };
        let target = snapshot::SplitTarget {
            held,
            training,
            held_out: held_sink,
            first: &first,
            source: pin,
            object: &object,
        };
        let (snapshot, held_file) = snapshot::split_into_snapshots(chunks, target)
            .await
            .map_err(|e| {
                e.context(format!(
                    "splitting {object} into s3://{bucket}/{snapshot_key} and s3://{bucket}/{held_key}"
                ))
            })?;
        let plan = match (held_out, held_file) {
            (HeldOut::Slice(_), Some(file)) => GatePlan::Armed {
                held_out_uri: file.uri,
                records: file.records,
                sha256: file.sha256,
                min_score: gate.min_score,
                min_score_origin: gate.min_score_origin.clone(),
            },
            (HeldOut::Skipped(reason), _) => GatePlan::Skipped {
                reason: reason.to_string(),
            },
            (HeldOut::Slice(_), None) => {
                return Err(StepError::internal(
                    "a held-out slice was chosen but no held-out file was written",
                ))
            }
        };
        tracing::info!(
            held_out = plan.held_out_records().unwrap_or(0),
            training_bytes = snapshot.size,
            "{}",
            plan.describe()
        );
        Ok(Ok((first.report, Some(snapshot), plan)))
    }
}
