//! Scheduled runs on Bedrock invocation logs: `native` hands the log prefix and filter to
//! Bedrock; `curated` (`curate.rs`) reads the schedule's window and validates what it converts like
//! an upload, and a window with too few new eligible records ends the run `skipped`.

use super::*;

impl DatasetValidatorService {
    pub(super) async fn handle_schedule(
        &self,
        p: &SchedulePayload,
        owner: Option<&str>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let mut logs = self.config.invocation_logs.clone().ok_or_else(|| {
            StepError::config("a scheduled run needs INVOCATION_LOGS_S3_URI (the Bedrock invocation log location)")
        })?;
        if let Some(mode) = &p.log_run_mode {
            logs.mode = LogRunMode::parse(mode).ok_or_else(|| {
                StepError::invalid_input(format!(
                    "the schedule's logRunMode must be curated or native, got '{mode}'"
                ))
            })?;
        }
        let run_id = RunId::for_schedule(&p.schedule_name, &p.scheduled_time);
        let span = tracing::info_span!("run", run_id = %run_id);
        async {
            let none = SettingsOverrides::default();
            let sources = OverrideSources {
                metadata: &none,
                cli: &none,
            };
            let settings = RunSettings::resolve_from(
                &self.config.defaults,
                &sources,
                &self.config.catalog,
                &self.config.limits,
                &self.config.policy,
            )
            .and_then(|mut s| {
                let region = self.config.serving_region(&s);
                s.settle_serving(&self.config.catalog, &region, &sources)?;
                Ok(s)
            });
            // A curated run covers the logs since the schedule's last success; a native one hands
            // Bedrock the whole prefix, so it has no window.
            let window = match logs.mode {
                LogRunMode::Native => None,
                LogRunMode::Curated => {
                    let end = window_end(
                        &p.scheduled_time,
                        self.clock.now(),
                        self.config.limits.invocation_log_runs.delivery_delay_minutes,
                    );
                    let start =
                        window_start(&*self.ledger, &p.schedule_name, end, logs.lookback_days)
                            .await
                            .map_err(|e| {
                                e.context(format!(
                                    "finding where the window of schedule {} starts",
                                    p.schedule_name
                                ))
                            })?;
                    tracing::info!(
                        window_start = %start.at,
                        window_end = %end,
                        "window: {}",
                        start.describe(logs.lookback_days)
                    );
                    Some(LogWindow {
                        start: start.at,
                        end,
                    })
                }
            };
            let dataset = DatasetLocation::InvocationLogs {
                s3_uri: logs.s3_uri.clone(),
                request_metadata_filters: logs.request_metadata_filters.clone(),
                use_prompt_response: logs.use_prompt_response,
                mode: logs.mode,
                schedule_name: Some(p.schedule_name.clone()),
                window_start: window.map(|w| w.start),
                window_end: window.map(|w| w.end),
            };
            let recorded = settings
                .clone()
                .unwrap_or_else(|_| self.config.recorded_defaults());
            let mut run = Run::new(
                run_id.clone(),
                RunSource::Schedule,
                dataset.clone(),
                recorded,
                self.clock.now(),
            );
            run.owner_execution = owner.map(str::to_string);
            if matches!(&settings, Ok(s) if s.serving == crate::domain::settings::ServingMode::Provisioned) {
                run.pt_ttl_hours = Some(self.config.pt_ttl_hours);
            }
            // A resumed run keeps what it recorded (its mode and window), whatever was computed now.
            let run = match self.create_or_find(run).await? {
                Ok(run) => run,
                Err(existing) if resumable(&existing, owner) => existing,
                Err(existing) => {
                    let duplicate = !existing.is_owned_by(owner);
                    return Ok(ValidateDatasetOutput::for_run(&existing, duplicate));
                }
            };
            self.to_validating(&run).await?;
            let uri_check = naming::check_s3_uri(&logs.s3_uri).map_err(|e| e.to_string());
            let problem = match (&settings, uri_check) {
                (Err(e), _) => Some(e.message.clone()),
                (Ok(_), Err(e)) => Some(format!("INVOCATION_LOGS_S3_URI: {e}")),
                // Before any log is read: a stack at MAX_ACTIVE_RUNS starts no scheduled run either.
                (Ok(_), Ok(())) => self.active_runs_refusal().await?,
            };
            match (&run.dataset, problem, settings) {
                (
                    DatasetLocation::InvocationLogs {
                        mode: LogRunMode::Curated,
                        ..
                    },
                    None,
                    Ok(settings),
                ) => {
                    let result = self.curate(&run, &logs, settings).await;
                    self.settle_unfinished(&run.run_id, owner, result).await
                }
                (_, problem, _) => self.pass_logs_through(&run, problem).await,
            }
        }
        .instrument(span)
        .await
    }

    /// A native run (or any scheduled run whose settings or log location are wrong, which is
    /// rejected before anything is read): recorded `validated` with `records: 0`, since Bedrock
    /// reads and filters the logs itself; `rejected` when `problem` says why not.
    pub(super) async fn pass_logs_through(
        &self,
        run: &Run,
        problem: Option<String>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let note = match &run.dataset {
            DatasetLocation::InvocationLogs {
                mode: LogRunMode::Curated,
                ..
            } => "invocation logs (curated): rejected before any log was read",
            _ => "invocation logs: Bedrock reads and filters the logs itself, so no line validation happens here",
        };
        let report_uri = match &self.config.schedule_bucket {
            Some(bucket) => {
                let report = StoredReport {
                    settings_error: problem.as_deref(),
                    note: Some(note),
                    log_window: run.dataset.log_window(),
                    ..StoredReport::about(run)
                };
                Some(
                    self.put_report(bucket, &self.config.report_key(&run.run_id), &report)
                        .await?,
                )
            }
            None => None,
        };
        let summary = ValidationSummary {
            valid: problem.is_none(),
            first_errors: problem.iter().cloned().collect(),
            report_uri,
            ..Default::default()
        };
        // Nothing is read here, so nothing can be held out: the gate is off or skipped.
        let plan = if self.config.quality_gate {
            GatePlan::Skipped {
                reason: setting::INVOCATION_LOGS_REASON.into(),
            }
        } else {
            GatePlan::Off
        };
        self.finish_with_snapshot(run, summary, problem, None, Some(plan))
            .await
    }

    /// Ends a curated scheduled run that found too few new eligible records: writes the report
    /// (the window, `eligible` and `MIN_NEW_RECORDS`) and records the run `skipped` with the reason,
    /// which the `skipped` milestone announces. The run must be `validating`. Nothing is launched,
    /// and the schedule's next window starts where this one started (a skipped run does not
    /// advance it).
    pub async fn skip_run(
        &self,
        run: &Run,
        eligible: u64,
        window: LogWindow,
        curation: Option<&CurationSummary>,
    ) -> Result<ValidateDatasetOutput, StepError> {
        let min = self
            .config
            .invocation_logs
            .as_ref()
            .map(|l| l.min_new_records)
            .unwrap_or(
                self.config
                    .limits
                    .invocation_log_runs
                    .default_min_new_records,
            );
        let reason = skip_reason(eligible, min, &window);
        let report_uri = match &self.config.schedule_bucket {
            Some(bucket) => {
                let report = StoredReport {
                    note: Some(&reason),
                    log_window: Some(window),
                    eligible_records: Some(eligible),
                    min_new_records: Some(min),
                    curation,
                    ..StoredReport::about(run)
                };
                Some(
                    self.put_report(bucket, &self.config.report_key(&run.run_id), &report)
                        .await?,
                )
            }
            None => None,
        };
        let mut update = RunUpdate::to(RunStatus::Skipped).with_detail(reason.clone());
        update.validation = Some(ValidationSummary {
            valid: false,
            records: eligible,
            report_uri,
            ..Default::default()
        });
        update.finished_at = Some(self.clock.now());
        let run = self
            .ledger
            .update(&run.run_id, &[RunStatus::Validating], &update)
            .await
            .map_err(|e| e.context("recording the run skipped"))?;
        tracing::info!(eligible, min_new_records = min, "{reason}");
        Ok(ValidateDatasetOutput::for_run(&run, false))
    }
}

/// Why a curated run was skipped, in one sentence (the history entry, the report and the message).
pub fn skip_reason(eligible: u64, min_new_records: u64, window: &LogWindow) -> String {
    format!(
        "{eligible} new eligible record(s) (distinct prompts) in the invocation logs from {}, fewer than MIN_NEW_RECORDS ({min_new_records}): \
         nothing was launched, and the next scheduled run reads this window again",
        window.describe()
    )
}
