//! The curated path of a scheduled run (LOG_RUN_MODE=curated): the window's invocation logs become
//! a dataset the run validates like an upload.
//!
//! 1. List the log files under INVOCATION_LOGS_S3_URI whose hour folder overlaps the run's window.
//! 2. First read: the preflight counts every file (the same rules as `distillery logs preview`) and
//!    offers each eligible record logged within the window to the selection (one per prompt, the most
//!    recent, at most Bedrock's per-job maximum: `domain::invocation_logs::curate`).
//! 3. Fewer distinct prompts than MIN_NEW_RECORDS: the run ends `skipped`.
//! 4. Second read, pinned to the first read's ETags: the chosen records are converted to
//!    `bedrock-conversation-2024` lines and written to `runs/<run-id>/from-logs.jsonl`.
//! 5. That object is validated exactly as an uploaded dataset is (`check_and_report`): the snapshot
//!    the launcher trains on, the held-out slice, the cost estimate and the budget.

use chrono::{DateTime, Utc};

use super::*;
use crate::domain::invocation_logs::convert::to_jsonl_line;
use crate::domain::invocation_logs::curate::{
    hour_overlaps, in_window, logged_at, Chosen, CurationSummary, Occurrence, Selection,
};
use crate::domain::invocation_logs::layout::split_s3_prefix;
use crate::domain::invocation_logs::{
    log_file, FileOutcome, MetadataFilter, Preflight, PreflightOptions,
};
use crate::ports::SnapshotSink;

/// The converted dataset of a curated run, in the run's folder beside its snapshot.
pub const FROM_LOGS_FILE: &str = "from-logs.jsonl";
/// Log files fetched at once. Each read is handed to the preflight in listing order, so the two
/// reads number the records the same way.
const LOG_READS_IN_FLIGHT: usize = 4;
/// A log file larger than this (gzipped) is skipped and reported rather than read into memory:
/// Bedrock writes a file every few minutes, so a real one is far smaller.
pub const MAX_LOG_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// A log file of the window, as the first read left it.
struct WindowFile {
    key: String,
    /// As listed.
    size: u64,
    hour: DateTime<Utc>,
    /// The ETag the first read saw (the second read is pinned to it); `None`: not read (gone).
    etag: Option<String>,
    /// The first read found no gzip stream in it: the second read skips it too.
    corrupt: bool,
}

impl WindowFile {
    fn name(&self, bucket: &str) -> String {
        format!("s3://{bucket}/{}", self.key)
    }

    fn day(&self) -> String {
        self.hour.format("%Y-%m-%d").to_string()
    }
}

/// `s3://bucket/prefix` → (bucket, prefix); the prefix may be empty.
fn split_logs_uri(uri: &str) -> Result<(String, String), String> {
    match split_s3_prefix(uri) {
        Some((bucket, prefix)) => Ok((bucket.to_string(), prefix.to_string())),
        None if !uri.starts_with("s3://") => Err(format!(
            "INVOCATION_LOGS_S3_URI '{uri}' is not an s3:// URI"
        )),
        None => Err(format!("INVOCATION_LOGS_S3_URI '{uri}' names no bucket")),
    }
}

impl DatasetValidatorService {
    /// The curated path of a scheduled run, in `validating` with its window recorded. The window is
    /// the one recorded on the run, never one computed again: a resumed run keeps the window it
    /// started with.
    pub(super) async fn curate(
        &self,
        run: &Run,
        logs: &InvocationLogsSource,
        settings: RunSettings,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let window = run
            .dataset
            .log_window()
            .ok_or_else(|| StepError::internal("a curated run has no window recorded"))?;
        let out_bucket = self.config.schedule_bucket.clone().ok_or_else(|| {
            StepError::config(
                "a curated scheduled run needs SCHEDULE_BUCKET (where its dataset, snapshot and report are written)",
            )
        })?;
        let (logs_bucket, prefix) = match split_logs_uri(&logs.s3_uri) {
            Ok(parts) => parts,
            Err(reason) => return self.pass_logs_through(run, Some(reason)).await,
        };
        let filter = match &logs.request_metadata_filters {
            None => None,
            Some(v) => match MetadataFilter::from_json(v) {
                Ok(f) => Some(f),
                Err(e) => {
                    let reason = format!("REQUEST_METADATA_FILTERS: {e}");
                    return self.pass_logs_through(run, Some(reason)).await;
                }
            },
        };
        let options = PreflightOptions {
            filter,
            teacher: Some(settings.teacher.clone()),
            use_prompt_response: logs.use_prompt_response,
        };
        let mut files = self
            .window_files(&logs_bucket, &prefix, &window)
            .await
            .map_err(|e| e.context(format!("listing {}", logs.s3_uri)))?;
        tracing::info!(
            files = files.len(),
            "{} log file(s) under {} overlap the window {}",
            files.len(),
            logs.s3_uri,
            window.describe()
        );

        // First read: count, and choose.
        let cap = self.config.limits.dataset.max_records;
        let mut preflight = Preflight::new(options.clone());
        let mut selection = Selection::new(cap as usize);
        let mut seq = 0u64;
        let mut reads = self.read_in_order(
            &logs_bucket,
            files
                .iter()
                .map(|f| (f.key.clone(), None, f.size))
                .collect(),
        );
        for file in files.iter_mut() {
            let name = file.name(&logs_bucket);
            let read = reads
                .next()
                .await
                .ok_or_else(|| StepError::internal("fewer reads than log files"))?;
            let bytes = match read {
                Ok(LogRead::Bytes { etag, bytes }) => {
                    file.etag = Some(etag);
                    bytes
                }
                // Listed, then gone (a lifecycle rule, a clean-up): reported, as a corrupt file is.
                Ok(LogRead::Gone) => {
                    preflight.skip_file(
                        &name,
                        "listed but gone when read: nothing from it is counted",
                    );
                    continue;
                }
                Ok(LogRead::TooLarge) => {
                    preflight.skip_file(
                        &name,
                        format!(
                            "larger than a log file can be ({} MiB): not read",
                            MAX_LOG_FILE_BYTES / (1024 * 1024)
                        ),
                    );
                    continue;
                }
                Err(e) => return Err(e.context(format!("reading {name}"))),
            };
            let mut found: Vec<(u64, i64)> = Vec::new();
            let outcome = preflight.add_file_with(&name, &file.day(), bytes.as_slice(), |e| {
                let at = logged_at(e.timestamp, file.hour);
                if in_window(&window, at) {
                    found.push((e.prompt_hash, at.timestamp_millis()));
                }
            });
            if outcome == FileOutcome::Corrupt {
                file.corrupt = true;
                continue;
            }
            for (hash, at_ms) in found {
                seq += 1;
                selection.offer(hash, Occurrence { at_ms, seq });
            }
        }
        drop(reads);
        let summary = CurationSummary::new(
            files.len() as u64,
            preflight.report(),
            &selection,
            cap,
            logs.use_prompt_response,
        );
        // Its counts are in the summary; the second read keeps none of its own.
        drop(preflight);
        tracing::info!(
            scanned = summary.scanned,
            matched = summary.matched,
            eligible_in_window = summary.eligible_in_window,
            selected = summary.selected,
            skipped = summary.skipped_total,
            "{}",
            summary.describe()
        );
        if summary.selected < logs.min_new_records {
            return self
                .skip_run(run, summary.selected, window, Some(&summary))
                .await;
        }

        // Second read: write the chosen records.
        let key = format!(
            "{}{FROM_LOGS_FILE}",
            self.config.snapshot_layout(&out_bucket).folder(&run.run_id)
        );
        let chosen = selection.into_chosen();
        let sink = self.begin_sink(&out_bucket, &key).await?;
        let written = self
            .write_chosen(&logs_bucket, &files, &window, &options, &chosen, sink)
            .await
            .map_err(|e| e.context(format!("writing s3://{out_bucket}/{key}")))?;
        tracing::info!(
            records = written,
            "curated dataset written to s3://{out_bucket}/{key}"
        );
        let info = self
            .store
            .head(&out_bucket, &key, None)
            .await
            .map_err(|e| e.context(format!("reading s3://{out_bucket}/{key} back")))?;
        self.check_and_report(run, &info, Ok(settings), Some(&summary))
            .await
    }

    /// The log files under the prefix whose hour folder overlaps `window`, in key order (which is
    /// time order within one account and Region).
    async fn window_files(
        &self,
        bucket: &str,
        prefix: &str,
        window: &LogWindow,
    ) -> Result<Vec<WindowFile>, StepError> {
        let mut files = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let page = self
                .lister
                .list_page(bucket, prefix, continuation.as_deref())
                .await
                .map_err(StepError::from)?;
            for object in page.objects {
                let Some(file) = log_file(&object.key) else {
                    continue;
                };
                if hour_overlaps(window, file.hour) {
                    files.push(WindowFile {
                        key: object.key,
                        size: object.size,
                        hour: file.hour,
                        etag: None,
                        corrupt: false,
                    });
                }
            }
            match page.next {
                Some(next) => continuation = Some(next),
                None => return Ok(files),
            }
        }
    }

    /// Reads `(key, pinned ETag, listed size)` in this order, [`LOG_READS_IN_FLIGHT`] at a time.
    fn read_in_order<'a>(
        &'a self,
        bucket: &'a str,
        files: Vec<(String, Option<String>, u64)>,
    ) -> impl futures::Stream<Item = Result<LogRead, StepError>> + 'a {
        futures::stream::iter(files.into_iter().map(move |(key, etag, size)| async move {
            if size > MAX_LOG_FILE_BYTES {
                return Ok(LogRead::TooLarge);
            }
            let pin = etag.and_then(|e| ObjectPin::from_event(None, Some(&e)));
            self.read_log_file(bucket, &key, pin.as_ref()).await
        }))
        .buffered(LOG_READS_IN_FLIGHT)
    }

    /// One log file's bytes (gzipped; log files are written every few minutes, so each is small)
    /// and its ETag; `Gone` when an unpinned read finds it no longer exists.
    async fn read_log_file(
        &self,
        bucket: &str,
        key: &str,
        pin: Option<&ObjectPin>,
    ) -> Result<LogRead, StepError> {
        let (info, mut chunks) = match self.store.open(bucket, key, pin).await {
            Ok(opened) => opened,
            Err(PortError::NotFound(_)) if pin.is_none() => return Ok(LogRead::Gone),
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::with_capacity(info.size.min(MAX_LOG_FILE_BYTES) as usize);
        while let Some(chunk) = chunks.next().await {
            bytes.extend_from_slice(&chunk.map_err(StepError::from)?);
            if bytes.len() as u64 > MAX_LOG_FILE_BYTES {
                return Ok(LogRead::TooLarge);
            }
        }
        Ok(LogRead::Bytes {
            etag: info.etag,
            bytes,
        })
    }

    /// The second read: the files the first read counted, each pinned to the ETag it saw, numbered
    /// the same way; the chosen occurrences are written as dataset lines in read order (files in key
    /// order, lines in file order). Returns how many were written, which must be all of them.
    async fn write_chosen(
        &self,
        bucket: &str,
        files: &[WindowFile],
        window: &LogWindow,
        options: &PreflightOptions,
        chosen: &Chosen,
        mut sink: Box<dyn SnapshotSink>,
    ) -> Result<u64, StepError> {
        let counted: Vec<&WindowFile> = files
            .iter()
            .filter(|f| !f.corrupt && f.etag.is_some())
            .collect();
        let result = async {
            let mut preflight = Preflight::new(options.clone());
            let (mut seq, mut written) = (0u64, 0u64);
            let mut reads = self.read_in_order(
                bucket,
                counted
                    .iter()
                    .map(|f| (f.key.clone(), f.etag.clone(), f.size))
                    .collect(),
            );
            for file in &counted {
                let name = file.name(bucket);
                let read = reads
                    .next()
                    .await
                    .ok_or_else(|| StepError::internal("fewer reads than log files"))?;
                let bytes = match read {
                    Ok(LogRead::Bytes { bytes, .. }) => bytes,
                    _ => {
                        return Err(StepError::new(
                            ErrorType::Transient,
                            format!(
                                "{name} changed or went away between the two reads of the window; the step is retried"
                            ),
                        ))
                    }
                };
                let (mut lines, mut numbered) = (String::new(), 0u64);
                let outcome = preflight.add_file_with(&name, &file.day(), bytes.as_slice(), |e| {
                    let at = logged_at(e.timestamp, file.hour);
                    if !in_window(window, at) {
                        return;
                    }
                    numbered += 1;
                    let occurrence = Occurrence {
                        at_ms: at.timestamp_millis(),
                        seq: seq + numbered,
                    };
                    if chosen.is_chosen(&occurrence, e.prompt_hash) {
                        let response = options
                            .use_prompt_response
                            .then_some(e.response.as_deref())
                            .flatten();
                        lines.push_str(&to_jsonl_line(&e.prompt, response));
                        written += 1;
                    }
                });
                if outcome == FileOutcome::Corrupt {
                    return Err(StepError::new(
                        ErrorType::Transient,
                        format!(
                            "{name} read as gzip the first time but not the second; the step is retried"
                        ),
                    ));
                }
                seq += numbered;
                sink.write(lines.as_bytes()).await.map_err(StepError::from)?;
            }
            if written != chosen.len() as u64 {
                return Err(StepError::internal(format!(
                    "the second read of the window found {written} of the {} chosen records",
                    chosen.len()
                )));
            }
            Ok(written)
        }
        .await;
        match result {
            Ok(written) => {
                sink.finish().await.map_err(StepError::from)?;
                Ok(written)
            }
            Err(e) => {
                if let Err(abort) = sink.abort().await {
                    tracing::warn!(error = %abort, "could not abort the curated dataset upload");
                }
                Err(e)
            }
        }
    }
}

/// What reading one log file gave.
enum LogRead {
    Bytes {
        etag: String,
        bytes: Vec<u8>,
    },
    /// Listed, then gone before the (unpinned) read.
    Gone,
    /// Over [`MAX_LOG_FILE_BYTES`]: not read.
    TooLarge,
}

#[cfg(test)]
mod tests {
    use super::split_logs_uri;

    #[test]
    fn log_uris_split_into_bucket_and_prefix() {
        assert_eq!(
            split_logs_uri("s3://logs/bedrock/").unwrap(),
            ("logs".into(), "bedrock/".into())
        );
        assert_eq!(
            split_logs_uri("s3://logs").unwrap(),
            ("logs".into(), "".into())
        );
        assert!(split_logs_uri("logs/x").is_err());
        assert!(split_logs_uri("s3:///x").is_err());
    }
}
