//! The invocation-log window of a scheduled curated run: which logs are new since the schedule
//! last produced a model.
//!
//! A window is `[start, end)`. Its end is the run's scheduled time (so a retried validation covers
//! exactly the same logs); its start is the `window_end` of the schedule's last *successful* run,
//! else `end - LOOKBACK_DAYS`. Successful means the data became a model that was kept:
//! `completed`, `ready` or `retired` ([`WINDOW_ADVANCING`]). Every other outcome leaves the window
//! where it was, so the next run reads those logs again:
//! - `skipped`, `rejected`, `failed`, `stopped`: nothing was trained on them;
//! - `gate_failed`: the model trained on them was not good enough to serve;
//! - `provisioning_failed`: the model exists but nothing serves it; a new run is the way to get one;
//! - runs still in flight (`validating` … `training`, `provisioning`): they may still fail, and a
//!   window that overlaps an unfinished run only means a few records are trained on twice, whereas
//!   one that assumed it succeeded would lose them if it did not.

use chrono::{DateTime, Duration, Utc};

use crate::domain::run::{DatasetLocation, RunId, RunSource, RunStatus};
use crate::ports::{PortError, RunLedger};

/// The statuses of a run whose window counts as consumed (see the module docs).
pub const WINDOW_ADVANCING: [RunStatus; 3] =
    [RunStatus::Completed, RunStatus::Ready, RunStatus::Retired];

/// How many of the newest runs of each advancing status are searched for the schedule's last
/// success. A schedule's last success further back than that (hundreds of other runs finished
/// since) starts from `LOOKBACK_DAYS` instead, as a first run does.
pub const RUNS_SEARCHED_PER_STATUS: usize = 500;

/// Where a window starts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowStart {
    pub at: DateTime<Utc>,
    /// The successful run whose window ended at `at`; `None` when the lookback was used.
    pub after_run: Option<RunId>,
}

impl WindowStart {
    /// "since run-… (its window ended at …)" or "the last 7 day(s) (LOOKBACK_DAYS)".
    pub fn describe(&self, lookback_days: u32) -> String {
        let at = self.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match &self.after_run {
            Some(id) => format!("since {id}, the schedule's last successful run (its window ended at {at})"),
            None => format!("the last {lookback_days} day(s) (LOOKBACK_DAYS; no earlier successful run of this schedule)"),
        }
    }
}

/// The start of the window of a curated run of `schedule` ending at `end`: the latest
/// `window_end` (not after `end`) of the schedule's successful runs, else `end - lookback_days`.
/// Pure over the ledger: reads, never writes.
pub async fn window_start(
    ledger: &dyn RunLedger,
    schedule: &str,
    end: DateTime<Utc>,
    lookback_days: u32,
) -> Result<WindowStart, PortError> {
    let mut best: Option<(DateTime<Utc>, RunId)> = None;
    for status in WINDOW_ADVANCING {
        for run in ledger
            .list_by_status(status, RUNS_SEARCHED_PER_STATUS)
            .await?
        {
            if run.source != RunSource::Schedule {
                continue;
            }
            let DatasetLocation::InvocationLogs {
                schedule_name: Some(name),
                window_end: Some(ended),
                ..
            } = &run.dataset
            else {
                continue;
            };
            // A later window (a retried older schedule time) says nothing about this one's start.
            if name != schedule || *ended > end {
                continue;
            }
            let later = match &best {
                None => true,
                // Ties broken by run id, so every ledger answers the same.
                Some((at, id)) => (*ended, &run.run_id) > (*at, id),
            };
            if later {
                best = Some((*ended, run.run_id.clone()));
            }
        }
    }
    Ok(match best {
        Some((at, run_id)) => WindowStart {
            at,
            after_run: Some(run_id),
        },
        None => WindowStart {
            at: end - Duration::days(i64::from(lookback_days)),
            after_run: None,
        },
    })
}

/// The window's end for a scheduled time: the time itself (RFC 3339, as EventBridge Scheduler's
/// `<aws.scheduler.scheduled-time>` gives it), so a retry covers the same logs, or `now` when the
/// payload's time does not parse (a hand-made invocation); less `delivery_delay_minutes`
/// (limits.json), the time Bedrock may take to deliver a call's log to S3.
pub fn window_end(
    scheduled_time: &str,
    now: DateTime<Utc>,
    delivery_delay_minutes: u32,
) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(scheduled_time.trim())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
        - Duration::minutes(i64::from(delivery_delay_minutes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::run::{LogRunMode, Run, RunUpdate};
    use crate::domain::settings::{RunSettings, ServingMode};
    use crate::testing::memory::InMemoryRunLedger;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn settings() -> RunSettings {
        RunSettings {
            teacher: "amazon.nova-pro-v1:0".into(),
            student: "amazon.nova-lite-v1:0:300k".into(),
            max_response_length: 1000,
            // Not `none`: a completed run then still moves on to serving (ready, retired).
            serving: ServingMode::OnDemand,
            model_units: 1,
            commitment: crate::domain::settings::Commitment::None,
        }
    }

    /// Records a scheduled run of `schedule` whose window ended at `end`, moved through `path`.
    async fn record(
        ledger: &InMemoryRunLedger,
        schedule: &str,
        end: &str,
        path: &[RunStatus],
    ) -> RunId {
        let end = t(end);
        let id = RunId::for_schedule(schedule, &end.to_rfc3339());
        let dataset = DatasetLocation::InvocationLogs {
            s3_uri: "s3://logs/bedrock/".into(),
            request_metadata_filters: None,
            use_prompt_response: false,
            mode: LogRunMode::Curated,
            schedule_name: Some(schedule.into()),
            window_start: Some(end - Duration::days(7)),
            window_end: Some(end),
        };
        let run = Run::new(id.clone(), RunSource::Schedule, dataset, settings(), end);
        ledger.create(&run).await.unwrap();
        let mut from = RunStatus::Received;
        for next in path {
            ledger
                .update(&id, &[from], &RunUpdate::to(*next))
                .await
                .unwrap();
            from = *next;
        }
        id
    }

    const TO_COMPLETED: &[RunStatus] = &[
        RunStatus::Validating,
        RunStatus::Validated,
        RunStatus::Launching,
        RunStatus::Training,
        RunStatus::Completed,
    ];

    #[tokio::test]
    async fn a_schedule_without_a_successful_run_looks_back_lookback_days() {
        let ledger = InMemoryRunLedger::new();
        let end = t("2026-11-30T05:00:00Z");
        let start = window_start(&ledger, "nightly", end, 7).await.unwrap();
        assert_eq!(start.at, t("2026-11-23T05:00:00Z"));
        assert_eq!(start.after_run, None);
        assert!(start.describe(7).starts_with("the last 7 day(s)"));
    }

    #[tokio::test]
    async fn the_window_starts_where_the_last_successful_run_of_the_same_schedule_ended() {
        let ledger = InMemoryRunLedger::new();
        record(&ledger, "nightly", "2026-11-27T05:00:00Z", TO_COMPLETED).await;
        let latest = record(&ledger, "nightly", "2026-11-28T05:00:00Z", TO_COMPLETED).await;
        // Another schedule's later success is not this schedule's.
        record(&ledger, "weekly", "2026-11-29T05:00:00Z", TO_COMPLETED).await;
        let start = window_start(&ledger, "nightly", t("2026-11-30T05:00:00Z"), 7)
            .await
            .unwrap();
        assert_eq!(start.at, t("2026-11-28T05:00:00Z"));
        assert_eq!(start.after_run, Some(latest.clone()));
        assert!(start.describe(7).contains(latest.as_str()));
    }

    #[tokio::test]
    async fn ready_and_retired_runs_advance_the_window_too() {
        for (end, extra) in [
            (
                "2026-11-28T05:00:00Z",
                &[RunStatus::Provisioning, RunStatus::Ready][..],
            ),
            (
                "2026-11-28T06:00:00Z",
                &[
                    RunStatus::Provisioning,
                    RunStatus::Ready,
                    RunStatus::Retired,
                ][..],
            ),
        ] {
            let ledger = InMemoryRunLedger::new();
            let path: Vec<RunStatus> = TO_COMPLETED.iter().chain(extra).copied().collect();
            let id = record(&ledger, "nightly", end, &path).await;
            let start = window_start(&ledger, "nightly", t("2026-11-30T05:00:00Z"), 7)
                .await
                .unwrap();
            assert_eq!((start.at, start.after_run), (t(end), Some(id)), "{extra:?}");
        }
    }

    #[tokio::test]
    async fn skipped_failed_gate_failed_and_unfinished_runs_do_not_advance_it() {
        let ledger = InMemoryRunLedger::new();
        let ok = record(&ledger, "nightly", "2026-11-25T05:00:00Z", TO_COMPLETED).await;
        record(
            &ledger,
            "nightly",
            "2026-11-26T05:00:00Z",
            &[RunStatus::Validating, RunStatus::Skipped],
        )
        .await;
        record(
            &ledger,
            "nightly",
            "2026-11-27T05:00:00Z",
            &[
                RunStatus::Validating,
                RunStatus::Validated,
                RunStatus::Launching,
                RunStatus::Training,
                RunStatus::Failed,
            ],
        )
        .await;
        let gate_failed: Vec<RunStatus> = TO_COMPLETED
            .iter()
            .copied()
            .chain([RunStatus::Provisioning, RunStatus::GateFailed])
            .collect();
        record(&ledger, "nightly", "2026-11-28T05:00:00Z", &gate_failed).await;
        record(
            &ledger,
            "nightly",
            "2026-11-29T05:00:00Z",
            &[
                RunStatus::Validating,
                RunStatus::Validated,
                RunStatus::Launching,
                RunStatus::Training,
            ],
        )
        .await;
        let start = window_start(&ledger, "nightly", t("2026-11-30T05:00:00Z"), 7)
            .await
            .unwrap();
        assert_eq!(start.at, t("2026-11-25T05:00:00Z"));
        assert_eq!(start.after_run, Some(ok));
    }

    #[tokio::test]
    async fn a_success_after_this_windows_end_is_ignored() {
        let ledger = InMemoryRunLedger::new();
        record(&ledger, "nightly", "2026-12-01T05:00:00Z", TO_COMPLETED).await;
        let start = window_start(&ledger, "nightly", t("2026-11-30T05:00:00Z"), 3)
            .await
            .unwrap();
        assert_eq!(start.at, t("2026-11-27T05:00:00Z"));
        assert_eq!(start.after_run, None);
    }

    #[test]
    fn the_end_is_the_scheduled_time_else_now() {
        let now = t("2026-11-30T06:01:02Z");
        assert_eq!(
            window_end("2026-11-30T05:00:00Z", now, 0),
            t("2026-11-30T05:00:00Z")
        );
        assert_eq!(
            window_end("2026-11-30T07:00:00+02:00", now, 0),
            t("2026-11-30T05:00:00Z")
        );
        assert_eq!(window_end("tonight", now, 0), now);
        // Less the delivery delay: the last half hour's logs may not be in S3 yet.
        assert_eq!(
            window_end("2026-11-30T05:00:00Z", now, 30),
            t("2026-11-30T04:30:00Z")
        );
        assert_eq!(window_end("tonight", now, 30), t("2026-11-30T05:31:02Z"));
    }
}
