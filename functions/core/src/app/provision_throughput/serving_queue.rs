//! `serving_queued`: Bedrock refused a run's Provisioned Throughput or custom model deployment for
//! its quota (`ServiceQuotaExceededException`). The model is trained and paid for, so the run
//! does not fail: it waits, tries again every `QUOTA_RETRY_SECONDS` (the state machine's
//! `WaitForServingCapacity`), and gives up as `provisioning_failed` once it has waited
//! `MAX_QUEUE_HOURS`, the same bound as the launch queue. Nothing wakes it sooner: the capacity
//! that frees up is the account's (another team's deployment deleted, a quota raised), which no
//! event of ours announces.

use chrono::Duration;

use super::*;
use crate::domain::run::QueueEntry;

impl ThroughputProvisioner<'_> {
    /// Seconds until the run's next try: its hold, cut to what is left of `MAX_QUEUE_HOURS`
    /// (at least 1).
    pub(super) fn serving_retry_seconds(&self, run: &Run) -> u64 {
        let now = self.clock.now();
        let Some(q) = run.queue.as_ref().filter(|q| q.for_serving) else {
            return self.config.queue.quota_retry_seconds.max(1) as u64;
        };
        let hold = q.held_until.map_or(0, |u| (u - now).num_seconds());
        let left =
            (q.since + Duration::seconds(self.config.queue.max_queue_seconds) - now).num_seconds();
        hold.min(left).max(1) as u64
    }

    /// Records the refusal: `provisioning` → `serving_queued` (the wait's start kept across
    /// refusals), and answers `serving_queued`.
    pub(super) async fn queue_for_serving(
        &self,
        run_id: &RunId,
        attempt: u32,
        refusal: StepError,
    ) -> Result<ProvisionThroughputOutput, StepError> {
        let run = self.load_run(run_id).await?;
        if run.status != RunStatus::Provisioning {
            return Err(refusal);
        }
        let now = self.clock.now();
        let previous = run.queue.clone().filter(|q| q.for_serving);
        let entry = QueueEntry {
            since: previous.as_ref().map_or(now, |q| q.since),
            reason: format!(
                "Bedrock refused the {} for its quota ({})",
                if run.serves_through_deployment() {
                    "custom model deployment"
                } else {
                    "Provisioned Throughput"
                },
                refusal.message
            ),
            task_token: None,
            held_until: Some(now + Duration::seconds(self.config.queue.quota_retry_seconds)),
            quota_refusals: previous.as_ref().map_or(0, |q| q.quota_refusals) + 1,
            for_serving: true,
            admitted_at: None,
        };
        let update = RunUpdate {
            queue: Some(entry.clone()),
            ..RunUpdate::to(RunStatus::ServingQueued)
                .with_detail(format!("serving queued: {}", entry.reason))
        };
        let written = self
            .write(&run, &[RunStatus::Provisioning], &update)
            .await?;
        tracing::warn!(run_id = %run_id, reason = %entry.reason, "waiting for serving capacity");
        Ok(self.output(&written, ProvisionOutcome::ServingQueued, None, attempt))
    }

    /// A `serving_queued` run called again: back to `provisioning` to try again (`Ok`), or, past
    /// `MAX_QUEUE_HOURS`, recorded `provisioning_failed` with the answer for it (`Err`).
    pub(super) async fn leave_serving_queue(
        &self,
        run: &Run,
        attempt: u32,
    ) -> Result<Result<Run, ProvisionThroughputOutput>, StepError> {
        let now = self.clock.now();
        let since = run.queue.as_ref().map_or(run.updated_at, |q| q.since);
        if (now - since).num_seconds() >= self.config.queue.max_queue_seconds {
            let hours = self.config.queue.max_queue_seconds as f64 / 3600.0;
            let reason = format!(
                "Bedrock refused serving for its quota for longer than MAX_QUEUE_HOURS = {hours} (since {}); nothing serves the model. The trained custom model {} stays in the account: raise the quota (Service Quotas) or free capacity, then serve it yourself, or delete it",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                run.custom_model_arn.as_deref().unwrap_or("(no ARN recorded)")
            );
            let update = RunUpdate {
                failure_reason: Some(reason.clone()),
                finished_at: Some(now),
                ..RunUpdate::to(RunStatus::ProvisioningFailed).with_detail(reason)
            };
            let written = self
                .write(run, &[RunStatus::ServingQueued], &update)
                .await?;
            return Ok(Err(self.output(
                &written,
                ProvisionOutcome::Failed,
                None,
                attempt,
            )));
        }
        let update = RunUpdate::to(RunStatus::Provisioning)
            .with_detail("trying serving again after Bedrock's quota refusal");
        Ok(Ok(self
            .write(run, &[RunStatus::ServingQueued], &update)
            .await?))
    }
}
