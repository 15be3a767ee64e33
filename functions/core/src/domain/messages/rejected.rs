//! The *rejected* message: what was wrong with the dataset (or its settings) and how to go on.

use super::*;

pub(super) fn rejected(d: &mut MessageContent, run: &Run, dataset: &str, reason: &Option<String>) {
    let v = run.validation.clone().unwrap_or_default();
    // Rejected before a record was read: a setting, the object's key or Region, or the
    // object itself (deleted). No line to fix, so the message says what to fix instead.
    let before_reading = v.records == 0 && v.error_count == 0;
    // Every record is fine but the run was refused (over budget): say why, not "0 invalid".
    let records_fine = !before_reading && v.error_count == 0 && v.invalid_records == 0;
    d.summary = if records_fine {
        format!(
            "The dataset `{dataset}` is valid but the run was rejected: {}. Nothing was launched.",
            reason
                .clone()
                .unwrap_or_else(|| "no reason was recorded".into())
        )
    } else if before_reading {
        format!(
                "The dataset `{dataset}` was rejected before any record was read: {}. Nothing was launched.",
                reason
                    .clone()
                    .unwrap_or_else(|| "no reason was recorded".into())
            )
    } else {
        format!(
                "The dataset `{dataset}` was rejected: {} of {} records are invalid ({} errors, {} warnings). Nothing was launched.",
                v.invalid_records, v.records, v.error_count, v.warning_count
            )
    };
    if !before_reading {
        d.fields.push((
            "Records".into(),
            format!("{} ({} invalid)", v.records, v.invalid_records),
        ));
    }
    if let Some(uri) = &v.report_uri {
        d.fields.push(("Full report".into(), uri.clone()));
    }
    if let (Some(r), false) = (&reason, before_reading) {
        d.fields.push(("Reason".into(), r.clone()));
    }
    if let Some(e) = &v.cost_estimate {
        d.fields.push(("Estimated cost".into(), e.describe()));
    }
    if !before_reading && !records_fine {
        d.list_title = if v.first_errors.len() > MAX_LISTED_ERRORS {
            format!("First {MAX_LISTED_ERRORS} errors")
        } else {
            "Errors".into()
        };
        d.list = v
            .first_errors
            .iter()
            .take(MAX_LISTED_ERRORS)
            .map(|e| truncate_chars(&one_line(e), 300))
            .collect();
    }
    d.notes.push(if records_fine {
            "To go ahead: raise the budget (x-amz-meta-distillery-max-run-cost-usd, up to the stack's \
             MAX_RUN_COST_USD), lower x-amz-meta-distillery-max-response-length, or split the dataset, \
             then upload it again."
                .into()
        } else if before_reading {
            format!(
                "To try again: fix the setting named above and upload the same file again with corrected \
                 x-amz-meta-distillery-* metadata (that is a new run), or run \
                 `distillery runs retry {} --<setting> <value>` (e.g. --model-units 1).",
                run.run_id
            )
        } else {
            "Fix the listed lines and upload the dataset again; a new upload starts a new run.".into()
        });
}
