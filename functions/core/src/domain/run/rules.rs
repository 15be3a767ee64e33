//! The run's own rules: creating one, ownership, what may follow its status, whether it is over,
//! and what its quality gate and serving allow.

use super::*;

impl Run {
    /// The rule every ledger enforces before writing `update`: the run's status is one of
    /// `expected` (an empty `expected` means "any status", for field-only updates such as delivery
    /// records), and a status change is a move [`RunStatus::can_move_to`] allows.
    pub fn check_update(
        &self,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<(), UpdateRefused> {
        if !expected.is_empty() && !expected.contains(&self.status) {
            let want: Vec<&str> = expected.iter().map(|s| s.as_str()).collect();
            return Err(UpdateRefused(format!(
                "run {} is {}, expected {}",
                self.run_id,
                self.status,
                want.join(" or ")
            )));
        }
        if let Some(next) = update.status {
            if self.is_final() {
                return Err(UpdateRefused(format!(
                    "run {} is {}, which is final ({}); it cannot move to {next}",
                    self.run_id,
                    self.status,
                    self.why_final()
                )));
            }
            if !self.can_move_to(next) {
                return Err(UpdateRefused(format!(
                    "run {} cannot move from {} to {}",
                    self.run_id, self.status, next
                )));
            }
        }
        Ok(())
    }

    /// Whether the run is over for good: a terminal status, or `completed` with no serving to
    /// follow. A final run never changes status again (field-only updates such as delivery records
    /// are still written); a step asked to act on it answers `Conflict`.
    pub fn is_final(&self) -> bool {
        self.status.is_terminal()
            || (self.status == RunStatus::Completed && self.settings.serving == ServingMode::None)
    }

    /// Whether the pipeline has nothing more to do for the run: it is final, or `ready` (serving
    /// until its deployment or throughput is deleted, which only expiry or `runs retire` does).
    pub fn is_settled(&self) -> bool {
        self.is_final() || self.status == RunStatus::Ready
    }

    /// [`RunStatus::can_move_to`] for this run: nothing moves a final run.
    pub fn can_move_to(&self, next: RunStatus) -> bool {
        !self.is_final() && self.status.can_move_to(next)
    }

    /// Why [`Run::is_final`] holds, for messages.
    fn why_final(&self) -> &'static str {
        if self.status == RunStatus::Completed {
            "the model is trained and no serving was requested"
        } else {
            "a terminal status"
        }
    }

    /// The `Conflict` a step answers when asked to do `action` on a run whose status doesn't fit:
    /// "run X is completed (final: ...); cannot <action>".
    pub fn refuse(&self, action: &str) -> crate::domain::errors::StepError {
        let state = if self.is_final() {
            format!("{} (final: {})", self.status, self.why_final())
        } else {
            self.status.to_string()
        };
        crate::domain::errors::StepError::conflict(format!(
            "run {} is {state}; cannot {action}",
            self.run_id
        ))
    }

    /// Newest first, ties broken by run id, so every ledger lists runs in the same stable order.
    pub fn sort_newest_first(runs: &mut [Run]) {
        runs.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.run_id.cmp(&b.run_id))
        });
    }

    /// A new run in `Received`, with its first history entry.
    pub fn new(
        run_id: RunId,
        source: RunSource,
        dataset: DatasetLocation,
        settings: RunSettings,
        now: DateTime<Utc>,
    ) -> Self {
        Run {
            run_id,
            source,
            dataset,
            settings,
            status: RunStatus::Received,
            training_detail: None,
            job_name: None,
            job_arn: None,
            custom_model_name: None,
            custom_model_arn: None,
            provisioned_model_name: None,
            provisioned_model_arn: None,
            deployment_name: None,
            deployment_arn: None,
            pt_ttl_hours: None,
            serving_expires_at: None,
            expiry_warning_sent_for: None,
            retired_at: None,
            validation: None,
            quality_gate: None,
            evaluation: None,
            failure_reason: None,
            snapshot: None,
            created_at: now,
            updated_at: now,
            launched_at: None,
            finished_at: None,
            history: vec![HistoryEntry {
                at: now,
                from: None,
                to: RunStatus::Received,
                detail: None,
            }],
            deliveries: Vec::new(),
            owner_execution: None,
            retry_of: None,
            attempt: 1,
            job_wait: None,
            queue: None,
            priority: QueuePriority::Normal,
        }
    }

    /// Whether `execution` owns this run (a run with no recorded owner is owned by no execution).
    pub fn is_owned_by(&self, execution: Option<&str>) -> bool {
        matches!((self.owner_execution.as_deref(), execution), (Some(a), Some(b)) if a == b)
    }

    /// Whether the run's quality gate was armed at validation (records were held out).
    pub fn gate_armed(&self) -> bool {
        matches!(
            self.quality_gate,
            Some(crate::domain::evaluation::GatePlan::Armed { .. })
        )
    }

    /// The evaluation that decides an armed run's gate: one made on the run's own deployment.
    /// An evaluation of another model (`distillery eval --student`) informs people but never
    /// decides what is served or bought.
    fn gate_evaluation(&self) -> Option<&crate::domain::evaluation::EvaluationRecord> {
        if !self.gate_armed() {
            return None;
        }
        self.evaluation
            .as_ref()
            .filter(|e| self.deployment_arn.as_deref() == Some(e.student_model.as_str()))
    }

    /// Whether the gate is armed and has not decided yet: nothing may serve or be bought.
    pub fn gate_pending(&self) -> bool {
        self.gate_armed() && self.gate_evaluation().is_none()
    }

    /// The gate's decision, once an armed run's deployment has been evaluated.
    pub fn gate_passed(&self) -> Option<bool> {
        self.gate_evaluation().map(|e| e.decision.passed)
    }

    /// Whether the serving step works on the run's on-demand deployment: serving on-demand, or a
    /// provisioned run whose gate evaluates the student on a deployment before any throughput is
    /// bought (until its throughput name is recorded, after the gate passed).
    pub fn serves_through_deployment(&self) -> bool {
        match self.settings.serving {
            ServingMode::OnDemand => true,
            ServingMode::Provisioned => self.gate_armed() && self.provisioned_model_name.is_none(),
            _ => false,
        }
    }

    /// Whether `distillery runs retry` may start a new attempt of this run.
    pub fn can_be_retried(&self) -> bool {
        matches!(
            self.status,
            RunStatus::Rejected
                | RunStatus::Failed
                | RunStatus::Stopped
                | RunStatus::GateFailed
                | RunStatus::Expired
        )
    }
}
