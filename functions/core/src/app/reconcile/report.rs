//! The reconciler's words: one line per finding, and the one summary message of a pass.

use std::collections::BTreeMap;

use super::{Action, Finding, ReconcileReport, RECONCILED_EVENT_TYPE};
use crate::ports::OutboundMessage;

/// The one summary message of a pass.
pub fn summary_message(report: &ReconcileReport) -> OutboundMessage {
    let count = |a: Action| report.findings.iter().filter(|f| f.action == a).count();
    let (repaired, would, attention) = (
        count(Action::Repaired),
        count(Action::WouldRepair),
        count(Action::NeedsAttention),
    );
    let subject = format!(
        "Distillery reconciler: {repaired} repaired, {attention} need attention{}",
        if report.dry_run {
            format!(", {would} would be repaired (dry run)")
        } else {
            String::new()
        }
    );
    let mut body = format!(
        "The reconciler compared the run ledger with Bedrock ({} received/validating run(s), {} training run(s), {} provisioning run(s), {} running job(s), {} Provisioned Throughput(s) checked).\n\n",
        report.validation_runs_checked,
        report.training_runs_checked,
        report.provisioning_runs_checked,
        report.jobs_checked,
        report.throughputs_checked
    );
    body.push_str(&render_findings(&report.findings));
    body.push_str("\nRun `distillery runs reconcile --dry-run` to see the current state.\n");
    OutboundMessage {
        subject,
        body,
        attributes: BTreeMap::from([
            (
                crate::app::notify::ATTR_EVENT_TYPE.to_string(),
                RECONCILED_EVENT_TYPE.to_string(),
            ),
            (
                crate::app::notify::ATTR_RUN_ID.to_string(),
                crate::app::notify::NO_RUN_ID.to_string(),
            ),
        ]),
    }
}

/// One line per finding: `[action] run <id> <arn>: problem -> detail`.
pub fn render_findings(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let action = match f.action {
            Action::Repaired => "repaired",
            Action::WouldRepair => "would repair",
            Action::NeedsAttention => "NEEDS ATTENTION",
        };
        out.push_str(&format!(
            "- [{action}] run {} {}: {} -> {}\n",
            f.run_id.as_ref().map(|r| r.as_str()).unwrap_or("(none)"),
            f.resource_arn.as_deref().unwrap_or(""),
            f.problem,
            f.detail
        ));
    }
    out
}
