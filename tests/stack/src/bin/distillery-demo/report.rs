//! What the demo prints about the run's own records: the quality gate, the cost estimate, the
//! validation report.

use distillery_core::domain::run::{Run, RunStatus};
use serde_json::Value;

use crate::heading;
use distillery_core::domain::validation::ValidationReport;

/// The quality gate: its verdict, the student-vs-teacher figures and, when it failed, the worst
/// examples; or why there was none.
pub fn print_gate(run: &Run) {
    use distillery_core::domain::messages::gate::{comparison_line, verdict_line};
    match (&run.evaluation, &run.quality_gate) {
        (Some(e), _) => {
            println!("{:<24}{}", "quality gate", verdict_line(&e.decision));
            println!(
                "{:<24}{}",
                "student vs teacher",
                comparison_line(&e.decision)
            );
            println!("{:<24}{}", "evaluation results", e.results_uri);
            if !e.decision.passed {
                for w in &e.decision.worst {
                    for (i, l) in w.describe().lines().enumerate() {
                        let label = if i == 0 { "worst example" } else { "" };
                        println!("{label:<24}{l}");
                    }
                }
            }
        }
        (None, Some(plan)) => println!("{:<24}{}", "quality gate", plan.describe()),
        (None, None) => {}
    }
}

/// The cost estimate the validator recorded before anything was launched (a rejected or invalid
/// dataset has none), with when it was made relative to the launch.
pub fn print_estimate(run: &Run) {
    let Some(e) = run
        .validation
        .as_ref()
        .and_then(|v| v.cost_estimate.as_ref())
    else {
        return;
    };
    let at = |status: RunStatus| run.history.iter().find(|h| h.to == status).map(|h| h.at);
    let when = match (at(RunStatus::Validated), at(RunStatus::Launching)) {
        (Some(v), Some(l)) => format!(
            " (made by the validator {:.2} s before the launch)",
            (l - v).num_milliseconds() as f64 / 1000.0
        ),
        _ => " (made by the validator; nothing was launched)".into(),
    };
    heading(&format!("Cost estimate{when}"));
    println!(
        "{} {:.2} to {} {:.2} in {}, serving {}",
        e.currency, e.low_usd, e.currency, e.high_usd, e.region, run.settings.serving
    );
    for i in &e.line_items {
        println!(
            "  {:<20} {:>9.2} .. {:>9.2}  {}",
            i.item, i.low_usd, i.high_usd, i.basis
        );
    }
    match e.budget_usd {
        Some(b) if e.over_budget => println!("  over the budget of {} {b:.2}", e.currency),
        Some(b) => println!("  within the budget of {} {b:.2}", e.currency),
        None => println!("  no budget set (MAX_RUN_COST_USD)"),
    }
    if !e.confirmed {
        println!(
            "  unconfirmed prices (functions/core/data/prices.json): {}",
            e.unconfirmed.join("; ")
        );
    }
}

/// The stored report (`reports/<run>/report.json`, written by the validator): the verdict and counts,
/// every error with its line and rule code, warnings grouped by rule; or, for a run rejected for its
/// settings, the settings error.
pub fn print_report(report: &[u8]) {
    print!("{}", render_report(report));
}

pub fn render_report(report: &[u8]) -> String {
    let Ok(stored) = serde_json::from_slice::<Value>(report) else {
        return format!("{}\n", String::from_utf8_lossy(report));
    };
    let mut out = String::new();
    if let Some(e) = stored["settingsError"].as_str() {
        out.push_str(&format!("settings rejected: {e}\n"));
    }
    if let Some(n) = stored["note"].as_str() {
        out.push_str(&format!("note: {n}\n"));
    }
    let Some(v) = stored
        .get("validation")
        .and_then(|v| serde_json::from_value::<ValidationReport>(v.clone()).ok())
    else {
        return out;
    };
    out.push_str(&format!(
        "verdict {}: {} records, {} invalid, {} error(s), {} warning(s)\n",
        if v.valid { "VALID" } else { "INVALID" },
        v.records,
        v.invalid_records,
        v.error_count,
        v.warning_count
    ));
    for f in &v.errors {
        let at = f
            .line
            .map(|l| format!("line {l:>5}"))
            .unwrap_or_else(|| "dataset   ".into());
        out.push_str(&format!("  error   {at}  [{}] {}\n", f.code, f.message));
    }
    if (v.errors.len() as u64) < v.error_count {
        out.push_str(&format!(
            "  ... and {} more error(s) not kept in the report\n",
            v.error_count - v.errors.len() as u64
        ));
    }
    let mut by_code: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in &v.warnings {
        by_code.entry(f.code.to_string()).or_default().push(
            f.line
                .map(|l| l.to_string())
                .unwrap_or_else(|| "dataset".into()),
        );
    }
    for (code, lines) in by_code {
        let shown: Vec<&str> = lines.iter().take(12).map(String::as_str).collect();
        let more = if lines.len() > 12 {
            format!(" and {} more", lines.len() - 12)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "  warning [{code}] on {} line(s): {}{more}\n",
            lines.len(),
            shown.join(", ")
        ));
    }
    out
}
