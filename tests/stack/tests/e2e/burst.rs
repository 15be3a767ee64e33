//! Issue 15 on the local stack: fifty datasets uploaded at once all get trained and none fails for
//! quota. The executions run the real state machine against the guarded functions
//! (`MAX_CONCURRENT_JOBS=2`, `tests/stack/start.sh`) and a simulator holding Bedrock's quota at 2
//! jobs in progress; one queued run is stopped with `distillery runs stop` while it waits.

use std::collections::HashSet;

use distillery_core::domain::run::RunStatus;
use distillery_local_stack::burst::BurstOptions;

use super::{explain, stack};

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn fifty_uploads_at_once_are_all_trained_two_jobs_at_a_time_in_arrival_order() {
    let stack = stack().await;
    let opts = BurstOptions {
        runs: 50,
        sim_max_jobs: 2,
        phase_ms: 300,
        stop_one: true,
    };
    let (report, runs) = stack.burst(&opts).await.unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    let stopped = report.stopped_run.clone().expect("one queued run stopped");

    for r in &runs {
        assert!(
            r.execution.succeeded(),
            "{}: {}",
            r.key,
            explain(&r.execution)
        );
    }
    // Every run ends in a defined state: trained, or stopped while queued.
    let mut job_arns = HashSet::new();
    for r in &runs {
        let run = r.run.as_ref().expect("every execution recorded its run");
        if run.run_id.as_str() == stopped {
            assert_eq!(run.status, RunStatus::Stopped, "{run:?}");
            assert!(run.job_arn.is_none(), "the stopped run never launched");
            let states = r.execution.states_entered();
            assert!(
                states.contains(&"StoppedWhileQueued".to_string()),
                "{states:?}"
            );
            continue;
        }
        assert_eq!(run.status, RunStatus::Completed, "{}: {run:?}", r.key);
        assert!(
            job_arns.insert(run.job_arn.clone().unwrap()),
            "one job per run"
        );
    }
    assert_eq!(report.statuses.get("completed"), Some(&49));
    // Never more than two jobs at once, so Bedrock never refused one; none launched twice.
    assert!(
        report.peak_jobs_in_progress <= 2,
        "{}",
        report.peak_jobs_in_progress
    );
    assert_eq!(report.peak_jobs_in_progress, 2, "both slots were used");
    assert_eq!(report.quota_refusals, 0);
    assert_eq!(report.jobs_created, 49);
    // Most runs waited; the queue handed out slots first in, first out.
    assert!(report.queued_runs >= 40, "{}", report.queued_runs);
    let mut admitted: Vec<_> = runs
        .iter()
        .filter_map(|r| r.run.as_ref())
        .filter_map(|r| Some((r.queue.as_ref()?.admitted_at?, r.queue.as_ref()?.since)))
        .collect();
    assert!(admitted.len() >= 40, "{}", admitted.len());
    admitted.sort();
    for w in admitted.windows(2) {
        assert!(
            w[0].1 <= w[1].1,
            "given a slot out of arrival order: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
    // Waiting cost one WaitForSlot entry per wait, not a polling loop.
    for r in &runs {
        let waits = r
            .execution
            .transitions_by_state
            .get("WaitForSlot")
            .copied()
            .unwrap_or_default();
        assert!(waits <= 2, "{}: {waits} WaitForSlot transitions", r.key);
    }
}

/// Bedrock refuses the run's Provisioned Throughput for its quota: the trained run waits as
/// `serving_queued` (the real state machine's WaitForServingCapacity), tries again and ends ready;
/// nothing failed, and people heard of launched, then ready.
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn a_serving_quota_refusal_waits_as_serving_queued_then_serves() {
    let stack = stack().await;
    stack
        .bedrock_faults(&serde_json::json!([
            {"kind": "quotaExceeded", "count": 1, "operation": "CreateProvisionedModelThroughput"}
        ]))
        .await
        .unwrap();
    let key = super::unique_key("serving-quota");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            super::sample_dataset(),
            &[("distillery-serving", "provisioned")],
        )
        .await
        .expect(super::NEEDS_STACK);
    assert!(ex.succeeded(), "{}", explain(&ex));
    let states = ex.states_entered();
    assert_eq!(
        states
            .iter()
            .filter(|s| *s == "WaitForServingCapacity")
            .count(),
        1,
        "{states:?}"
    );
    let id = super::run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Ready, "{run:?}");
    let queue = run.queue.clone().expect("the wait is on record");
    assert!(queue.for_serving && queue.quota_refusals == 1, "{queue:?}");
    let path: Vec<RunStatus> = run.history.iter().map(|h| h.to).collect();
    let i = path
        .iter()
        .position(|s| *s == RunStatus::ServingQueued)
        .expect("serving_queued on record");
    assert_eq!(
        &path[i - 1..=i + 1],
        [
            RunStatus::Provisioning,
            RunStatus::ServingQueued,
            RunStatus::Provisioning
        ]
    );
    let calls = stack.bedrock_calls().await.unwrap();
    let (bought, refused) = super::calls_of(&calls, "CreateProvisionedModelThroughput");
    assert_eq!((bought.len(), refused.len()), (1, 1));
    assert_eq!(
        super::milestones(&super::sns_for(&stack, &id).await),
        ["launched", "ready"]
    );
}
