//! Passes 2 and 3 of the reconciler: jobs and Provisioned Throughputs that carry Distillery's run-id
//! tag and that no live run owns.

use super::*;

impl Reconciler<'_> {
    /// The run the resource's run-id tag names, when it carries one.
    async fn tagged_run(&self, arn: &str) -> Result<Option<(RunId, Option<Run>)>, StepError> {
        let tags = match self.bedrock.list_tags(arn).await {
            Ok(t) => t,
            // Gone between the list and now: nothing left to own.
            Err(PortError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.context(format!("ListTagsForResource {arn}"))),
        };
        let Some(id) = tags.get(RUN_ID_TAG).filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let id = RunId(id.clone());
        let run = self.ledger.get(&id).await?;
        Ok(Some((id, run)))
    }

    /// Pass 2: InProgress jobs that carry the run-id tag and that no live run owns are stopped.
    pub(super) async fn tagged_jobs(&self, report: &mut ReconcileReport) -> Result<(), StepError> {
        let jobs = self
            .bedrock
            .list_jobs(Some(JobStatus::InProgress))
            .await
            .map_err(|e| e.context("ListModelCustomizationJobs"))?;
        for job in jobs {
            report.jobs_checked += 1;
            if self.quiet(job.created_at) {
                continue;
            }
            let Some((run_id, run)) = self.tagged_run(&job.job_arn).await? else {
                continue;
            };
            let problem = match &run {
                None => format!(
                    "job {} is running for run {run_id}, which is not in the ledger",
                    job.job_name
                ),
                Some(r) if job_is_owned(r, &job.job_arn) => continue,
                Some(r) if self.quiet(r.updated_at) => continue,
                Some(r) => format!(
                    "job {} is running but run {run_id} is {}{}",
                    job.job_name,
                    r.status,
                    match &r.job_arn {
                        Some(a) if a != &job.job_arn => format!(" and records another job ({a})"),
                        _ => String::new(),
                    }
                ),
            };
            let (action, detail) = if self.config.dry_run {
                (Action::WouldRepair, "would stop the job".to_string())
            } else {
                match stop_job(self.bedrock, &job.job_arn).await {
                    StopAttempt::Stopping => (
                        Action::Repaired,
                        "stopped the job (StopModelCustomizationJob); tokens so far are billed"
                            .to_string(),
                    ),
                    StopAttempt::Ended(ended) => (
                        Action::Repaired,
                        format!(
                            "the job had already ended ({}); nothing to stop",
                            job_status_str(ended.status)
                        ),
                    ),
                    StopAttempt::Gone(m) => (
                        Action::Repaired,
                        format!("Bedrock no longer knows the job ({m}); nothing to stop"),
                    ),
                    StopAttempt::Failed(e) => (
                        Action::NeedsAttention,
                        format!("StopModelCustomizationJob failed: {e}; the next pass retries"),
                    ),
                }
            };
            report.findings.push(Finding {
                run_id: Some(run_id),
                resource_arn: Some(job.job_arn.clone()),
                problem,
                action,
                detail,
            });
        }
        Ok(())
    }

    /// Pass 3: Provisioned Throughputs that carry the run-id tag and that no live run owns are deleted
    /// when safe (see the module doc), reported otherwise.
    pub(super) async fn tagged_throughputs(
        &self,
        report: &mut ReconcileReport,
    ) -> Result<(), StepError> {
        let pts = self
            .bedrock
            .list_provisioned_throughputs()
            .await
            .map_err(|e| e.context("ListProvisionedModelThroughputs"))?;
        let now = self.clock.now();
        for pt in pts {
            report.throughputs_checked += 1;
            if self.quiet(pt.created_at) {
                continue;
            }
            let Some((run_id, run)) = self.tagged_run(&pt.provisioned_model_arn).await? else {
                continue;
            };
            let problem = match &run {
                None => format!(
                    "Provisioned Throughput {} ({} model unit(s), {:?}) belongs to run {run_id}, which is not in the ledger",
                    pt.provisioned_model_name, pt.model_units, pt.status
                ),
                Some(r) if throughput_is_owned(r, &pt.provisioned_model_arn) => continue,
                Some(r) if self.quiet(r.updated_at) => continue,
                Some(r) => format!(
                    "Provisioned Throughput {} ({} model unit(s), {:?}) is billed by the hour but run {run_id} is {}{}",
                    pt.provisioned_model_name,
                    pt.model_units,
                    pt.status,
                    r.status,
                    match &r.provisioned_model_arn {
                        Some(a) if a != &pt.provisioned_model_arn =>
                            format!(" and records another throughput ({a})"),
                        _ => String::new(),
                    }
                ),
            };
            let unsafe_reason = if matches!(
                pt.status,
                ThroughputStatus::Creating | ThroughputStatus::Updating
            ) {
                Some(format!("it is {:?}; the next pass looks again", pt.status))
            } else {
                pt.commitment_expires_at.filter(|t| *t > now).map(|t| {
                    format!(
                        "its commitment term runs until {} (Bedrock refuses to delete before then); delete it then",
                        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                })
            };
            let (action, detail) = match (unsafe_reason, self.config.dry_run) {
                (Some(why), _) => (Action::NeedsAttention, format!("not deleted: {why}")),
                (None, true) => (
                    Action::WouldRepair,
                    "would delete it (DeleteProvisionedModelThroughput)".to_string(),
                ),
                (None, false) => match self
                    .bedrock
                    .delete_provisioned_throughput(&pt.provisioned_model_arn)
                    .await
                {
                    Ok(()) | Err(PortError::NotFound(_)) => (
                        Action::Repaired,
                        "deleted it (DeleteProvisionedModelThroughput)".to_string(),
                    ),
                    Err(e) => (
                        Action::NeedsAttention,
                        format!("DeleteProvisionedModelThroughput failed: {e}"),
                    ),
                },
            };
            report.findings.push(Finding {
                run_id: Some(run_id),
                resource_arn: Some(pt.provisioned_model_arn.clone()),
                problem,
                action,
                detail,
            });
        }
        Ok(())
    }
}

/// A run owns a running job when it is tracking it: `training` with that ARN, or `launching` (the
/// launcher records the ARN right after creating the job).
fn job_is_owned(run: &Run, job_arn: &str) -> bool {
    match run.status {
        RunStatus::Training => run.job_arn.as_deref() == Some(job_arn),
        RunStatus::Launching => run.job_arn.as_deref().is_none_or(|a| a == job_arn),
        _ => false,
    }
}

/// A run owns a throughput when it is `provisioning` (ARN recorded or not yet) or `ready` with it.
fn throughput_is_owned(run: &Run, arn: &str) -> bool {
    match run.status {
        RunStatus::Provisioning => run
            .provisioned_model_arn
            .as_deref()
            .is_none_or(|a| a == arn),
        RunStatus::Ready => run.provisioned_model_arn.as_deref() == Some(arn),
        _ => false,
    }
}
