//! Pass 4 of the reconciler: expired no-commitment throughput is retired; one about to expire is
//! warned about once per expiry.

use super::*;

impl Reconciler<'_> {
    /// Pass 4: expired no-commitment throughput is retired; one about to expire is warned about.
    pub(super) async fn expiring_serving(
        &self,
        report: &mut ReconcileReport,
    ) -> Result<(), StepError> {
        let runs = self
            .ledger
            .list_by_status(RunStatus::Ready, READY_RUNS_PER_PASS)
            .await
            .map_err(|e| e.context("listing ready runs"))?;
        let now = self.clock.now();
        let retirer = ServingRetirer {
            ledger: self.ledger,
            bedrock: self.bedrock,
            clock: self.clock,
            notifier: self.notifier,
        };
        for run in runs {
            let Some(expires) = run.serving_expires_at else {
                continue;
            };
            report.expiring_runs_checked += 1;
            let at = expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            if expires <= now {
                let (action, detail) = if self.config.dry_run {
                    (
                        Action::WouldRepair,
                        "would delete it (DeleteProvisionedModelThroughput) and record the run retired"
                            .to_string(),
                    )
                } else {
                    match retirer
                        .retire(&run.run_id, RetireReason::Expired(expires))
                        .await
                    {
                        Ok(r) => (
                            Action::Repaired,
                            format!(
                                "{} it (DeleteProvisionedModelThroughput) and recorded the run retired",
                                if r.result == "deleted" {
                                    "deleted"
                                } else {
                                    "found it already gone; did not delete"
                                }
                            ),
                        ),
                        Err(e) => (
                            Action::NeedsAttention,
                            format!(
                                "not retired: {}; the run stays ready and the next pass retries",
                                e.message
                            ),
                        ),
                    }
                };
                report.findings.push(Finding {
                    run_id: Some(run.run_id.clone()),
                    resource_arn: run
                        .provisioned_model_arn
                        .clone()
                        .or(run.deployment_arn.clone()),
                    problem: format!("serving expired at {at}"),
                    action,
                    detail,
                });
                continue;
            }
            let due = (expires - now).num_seconds() <= EXPIRY_WARNING_SECONDS
                && run.expiry_warning_sent_for != Some(expires);
            if !due {
                continue;
            }
            if self.config.dry_run {
                report.expiry_warnings += 1;
                continue;
            }
            let Some(notifier) = self.notifier else {
                continue;
            };
            match notifier.send(&run.run_id, Milestone::ExpiringSoon).await {
                Ok(_) => {
                    report.expiry_warnings += 1;
                    let update = RunUpdate {
                        expiry_warning_sent_for: Some(expires),
                        ..Default::default()
                    };
                    // Lost to a concurrent write (an extension, a retirement): the next pass
                    // looks again, and warns about the new expiry if there is one.
                    if let Err(e) = self
                        .ledger
                        .update(&run.run_id, &[RunStatus::Ready], &update)
                        .await
                    {
                        tracing::warn!(run_id = %run.run_id, "expiry warning not recorded: {e}");
                    }
                }
                Err(e) => {
                    tracing::warn!(run_id = %run.run_id, "expiring-soon message not sent: {}", e.message)
                }
            }
        }
        Ok(())
    }
}
