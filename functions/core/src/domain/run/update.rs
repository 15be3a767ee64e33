//! Field changes to a run, applied with (or without) a status change: what every ledger writes.

use super::*;

/// Field changes applied together with (or without) a status change. `None` leaves a field as is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunUpdate {
    pub status: Option<RunStatus>,
    /// Free text recorded in the history entry of a status change.
    pub detail: Option<String>,
    pub training_detail: Option<TrainingDetail>,
    pub job_name: Option<String>,
    pub job_arn: Option<String>,
    pub custom_model_name: Option<String>,
    pub custom_model_arn: Option<String>,
    pub provisioned_model_name: Option<String>,
    pub provisioned_model_arn: Option<String>,
    pub deployment_name: Option<String>,
    pub deployment_arn: Option<String>,
    pub serving_expires_at: Option<DateTime<Utc>>,
    pub expiry_warning_sent_for: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    pub validation: Option<ValidationSummary>,
    pub quality_gate: Option<crate::domain::evaluation::GatePlan>,
    pub evaluation: Option<crate::domain::evaluation::EvaluationRecord>,
    pub failure_reason: Option<String>,
    pub snapshot: Option<DatasetSnapshot>,
    pub launched_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub delivery: Option<DeliveryRecord>,
    pub job_wait: Option<JobWait>,
    pub queue: Option<QueueEntry>,
}

impl RunUpdate {
    pub fn to(status: RunStatus) -> Self {
        RunUpdate {
            status: Some(status),
            ..Default::default()
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Applies the update to a run in memory (used by the in-memory ledger and to compute the new
    /// record before a conditional write). The caller has already checked the transition.
    pub fn apply_to(&self, run: &mut Run, now: DateTime<Utc>) {
        if let Some(next) = self.status {
            run.history.push(HistoryEntry {
                at: now,
                from: Some(run.status),
                to: next,
                detail: self.detail.clone(),
            });
            run.status = next;
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { run.$f = Some(v.clone()); } )* };
        }
        set!(
            training_detail,
            job_name,
            job_arn,
            custom_model_name,
            custom_model_arn,
            provisioned_model_name,
            provisioned_model_arn,
            deployment_name,
            deployment_arn,
            serving_expires_at,
            expiry_warning_sent_for,
            retired_at,
            validation,
            quality_gate,
            evaluation,
            failure_reason,
            snapshot,
            launched_at,
            finished_at,
            job_wait,
            queue
        );
        if let Some(d) = &self.delivery {
            run.deliveries.push(d.clone());
        }
        run.updated_at = now;
    }
}
