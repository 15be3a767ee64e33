//! Admission: how many distillation jobs run at once, and who waits.
//!
//! Bedrock limits the customization jobs an account runs at once, and a job runs for hours, so a
//! burst of datasets must wait rather than fail. A run launches only while it holds one of the
//! stack's `MAX_CONCURRENT_JOBS` slots ([`JobSlots`]); without one it is recorded `queued` and its
//! execution waits on a task token (`WaitForSlot`, nothing billed, no polling loop). Bedrock's own
//! `ServiceQuotaExceededException` puts a run back in the queue the same way.
//!
//! Waking: whoever frees a slot runs [`JobLauncherService::wake_waiting`]: the end of a job (the
//! state machine's `FreeJobSlot`, after every job outcome), a run that leaves the queue without a
//! job, a new wait entering, and the scheduled sweep. The pass takes slots for the oldest queued
//! runs first (first in, first out by `queue.since`) and resumes those whose wait has a token. A
//! run given a slot before its wait recorded a token finds the slot when it records it, and wakes
//! itself. Taking the slot on the woken run's behalf is what keeps the order: a newcomer cannot
//! take a slot freed for an older run.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::*;
use crate::domain::run::{QueueEntry, QueuePriority};
use crate::ports::{SlotGrant, TaskAnswer};

/// How long a run Bedrock refused for its quota is held back before it tries again
/// (`QUOTA_RETRY_SECONDS`), unless set.
pub const QUOTA_HOLD_SECONDS: i64 = 600;

/// How many queued runs one wake-up pass reads.
pub const QUEUED_RUNS_PER_PASS: usize = 10_000;

/// A `launching` run holding a slot this long after its last change has an execution that died
/// between taking the slot and recording its job: the sweep gives the slot back.
pub const STALE_LAUNCH_SECONDS: i64 = 3600;

/// A queued run given a slot this long ago and still waiting is resumed again by the sweep.
pub const REWAKE_AFTER_SECONDS: i64 = 60;

/// The longest `MAX_QUEUE_HOURS` accepted: 4 days. With the job's own tracking (up to ~12,100
/// history events) and the quota retries below, an execution stays under Step Functions' 25,000
/// events.
pub const MAX_QUEUE_HOURS_LIMIT: f64 = 96.0;

/// The most quota retries one wait may make (`MAX_QUEUE_HOURS` ÷ `QUOTA_RETRY_SECONDS`): each is a
/// `WaitForSlot` → `SlotWaitTimedOut` → `CheckLaunch` loop (~13 history events), or a serving
/// loop (~9), so 600 of them stay within the history budget beside the job's tracking.
pub const MAX_QUOTA_RETRIES: i64 = 600;

/// The queue settings (stack settings `MAX_CONCURRENT_JOBS`, `MAX_QUEUE_HOURS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// At most this many of the stack's jobs at once; `None` (unset or 0): no limit of our own,
    /// only Bedrock's quota refusals queue a run.
    pub max_concurrent_jobs: Option<u32>,
    /// A run queued longer than this ends `expired`.
    pub max_queue_seconds: i64,
    /// After Bedrock refused a run's job for its quota, the run tries again this much later
    /// (its wait times out then) unless a freed slot wakes it first.
    pub quota_retry_seconds: i64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_concurrent_jobs: None,
            max_queue_seconds: DEFAULT_MAX_QUEUE_HOURS as i64 * 3600,
            quota_retry_seconds: QUOTA_HOLD_SECONDS,
        }
    }
}

pub const DEFAULT_MAX_QUEUE_HOURS: f64 = 72.0;

impl AdmissionConfig {
    pub fn from_env(env: &Env) -> Result<Self, StepError> {
        let max: u32 = env.whole_number("MAX_CONCURRENT_JOBS", 0)?;
        let hours = env.parsed(
            "MAX_QUEUE_HOURS",
            DEFAULT_MAX_QUEUE_HOURS,
            "a number of hours above 0 and at most 96 (fractions allowed)",
            |v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|h| h.is_finite() && *h > 0.0 && *h <= MAX_QUEUE_HOURS_LIMIT)
            },
        )?;
        let quota_retry = env.positive_u64("QUOTA_RETRY_SECONDS", QUOTA_HOLD_SECONDS as u64)?;
        let config = AdmissionConfig {
            max_concurrent_jobs: (max > 0).then_some(max),
            max_queue_seconds: ((hours * 3600.0).round() as i64).max(1),
            quota_retry_seconds: quota_retry.min(86_400) as i64,
        };
        let retries = config.max_queue_seconds / config.quota_retry_seconds;
        if retries > MAX_QUOTA_RETRIES {
            return Err(StepError::config(format!(
                "MAX_QUEUE_HOURS ({hours}) with QUOTA_RETRY_SECONDS ({quota_retry}) allows {retries} quota retries in one wait, more than {MAX_QUOTA_RETRIES}, past which an execution's history could outgrow Step Functions' 25,000 events: lower MAX_QUEUE_HOURS or raise QUOTA_RETRY_SECONDS"
            )));
        }
        Ok(config)
    }
}

/// What the launcher is asked to do (`action`; `launch` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LauncherAction {
    /// Launch the run's job, or queue the run (`LaunchJob`).
    #[default]
    Launch,
    /// The state machine waits for a slot (`WaitForSlot`, `.waitForTaskToken`): record the token,
    /// then wake whoever a free slot allows (this run too).
    AwaitSlot,
    /// The run's job ended (`FreeJobSlot`): give its slot back and wake the next runs.
    ReleaseSlot,
    /// The wait timed out: past `MAX_QUEUE_HOURS` the run ends `expired`; before it (a run Bedrock
    /// refused for its quota, whose hold is over), the launch is tried again.
    WaitTimedOut,
}

/// Where a run stands in the queue (for people: `distillery runs list/show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuePlace {
    /// 1 = next to be offered a slot.
    pub position: u32,
    pub of: u32,
    pub since: DateTime<Utc>,
}

/// A queued run's place in line: priority first (high before normal before low), then when it
/// joined the queue (first in, first out), then its id.
fn line_key(r: &Run) -> (QueuePriority, DateTime<Utc>, &str) {
    let since = r.queue.as_ref().map(|q| q.since).unwrap_or(r.updated_at);
    (r.priority, since, r.run_id.as_str())
}

/// The queued runs in the order they are offered slots ([`line_key`]).
pub fn queue_order(mut runs: Vec<Run>) -> Vec<Run> {
    runs.retain(|r| r.status == RunStatus::Queued);
    runs.sort_by(|a, b| line_key(a).cmp(&line_key(b)));
    runs
}

/// Each queued run's place, by run id.
pub fn queue_places(runs: Vec<Run>) -> BTreeMap<RunId, QueuePlace> {
    let ordered = queue_order(runs);
    let of = ordered.len() as u32;
    ordered
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let since = r.queue.as_ref().map(|q| q.since).unwrap_or(r.updated_at);
            (
                r.run_id,
                QueuePlace {
                    position: i as u32 + 1,
                    of,
                    since,
                },
            )
        })
        .collect()
}

use std::collections::BTreeMap;

/// What one wake-up pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WakeReport {
    /// Runs given a slot and resumed (their wait had a token).
    pub woken: Vec<RunId>,
    /// Runs given a slot before their wait recorded a token (they wake themselves).
    pub admitted_without_token: Vec<RunId>,
    /// Runs still waiting after the pass.
    pub still_queued: usize,
}

/// What the sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Slots given back: held by runs whose job ended, or that left the queue without a job.
    pub slots_released: Vec<RunId>,
    /// Queued runs ended `expired` because their wait is long over (its execution is gone).
    pub expired: Vec<RunId>,
    /// Queued runs holding a slot whose wait was resumed again (the first wake-up was lost).
    pub rewoken: Vec<RunId>,
    pub wake: WakeReport,
}

/// The sweep's input: `{"sweep": {}}` (the scheduled safety net).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepInput {}

impl JobLauncherService {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Seconds left of the run's `MAX_QUEUE_HOURS` (at least 1: Step Functions needs a positive
    /// timeout).
    fn queue_seconds_left(&self, since: DateTime<Utc>) -> i64 {
        let end = since + Duration::seconds(self.config.admission.max_queue_seconds);
        (end - self.now()).num_seconds().max(1)
    }

    /// The queued runs, in order.
    async fn queued_runs(&self) -> Result<Vec<Run>, StepError> {
        let runs = self
            .ledger
            .list_by_status(RunStatus::Queued, QUEUED_RUNS_PER_PASS)
            .await
            .map_err(|e| e.context("listing the queued runs"))?;
        Ok(queue_order(runs))
    }

    /// Whether a run about to launch may: it holds a slot, or takes one with no older run
    /// waiting ahead of it. Without `MAX_CONCURRENT_JOBS`, always.
    pub(super) async fn admit(&self, run: &Run) -> Result<Admission, StepError> {
        let Some(max) = self.config.admission.max_concurrent_jobs else {
            return Ok(Admission::Go);
        };
        let holders = self
            .slots
            .holders()
            .await
            .map_err(|e| e.context("reading the job slots"))?;
        if holders.contains(&run.run_id) {
            return Ok(Admission::Go);
        }
        let now = self.now();
        // A run not queued yet would join the line now, behind every run of its priority.
        let mine = (
            run.priority,
            run.queue.as_ref().map_or(now, |q| q.since),
            run.run_id.as_str(),
        );
        let ahead = self
            .queued_runs()
            .await?
            .into_iter()
            .filter(|q| q.run_id != run.run_id && !holders.contains(&q.run_id))
            .filter(|q| !held_back(q, now))
            .filter(|q| line_key(q) < mine)
            .count();
        if ahead > 0 {
            return Ok(Admission::Wait(format!(
                "{ahead} run(s) ahead of it in the queue wait for a job slot (by priority, then first in, first out)"
            )));
        }
        let grant = self
            .slots
            .acquire(&run.run_id, max)
            .await
            .map_err(|e| e.context("taking a job slot"))?;
        Ok(if grant.holds() {
            Admission::Go
        } else {
            Admission::Wait(format!("all {max} job slot(s) taken (MAX_CONCURRENT_JOBS)"))
        })
    }

    /// Records the run `queued` (a newly validated run, or one Bedrock refused for its quota) and
    /// answers the state machine, which then waits in `WaitForSlot`.
    pub(super) async fn enqueue(
        &self,
        run: &Run,
        reason: String,
        quota_refused: bool,
    ) -> Result<LaunchJobOutput, StepError> {
        let now = self.now();
        let previous = run.queue.clone();
        let entry = QueueEntry {
            since: previous
                .as_ref()
                .filter(|_| run.status != RunStatus::Validated || quota_refused)
                .map(|q| q.since)
                .unwrap_or(now),
            reason: reason.clone(),
            task_token: None,
            held_until: quota_refused
                .then(|| now + Duration::seconds(self.config.admission.quota_retry_seconds)),
            quota_refusals: previous.as_ref().map_or(0, |q| q.quota_refusals)
                + u32::from(quota_refused),
            for_serving: false,
            admitted_at: None,
        };
        let written = if run.status == RunStatus::Queued {
            // Already queued (a retried LaunchJob, or woken without a slot): keep its place.
            run.clone()
        } else {
            let update = RunUpdate {
                queue: Some(entry),
                ..RunUpdate::to(RunStatus::Queued).with_detail(format!("queued: {reason}"))
            };
            match self
                .ledger
                .update(&run.run_id, &[run.status], &update)
                .await
            {
                Ok(r) => r,
                Err(PortError::Conflict(_)) => {
                    let now = self.reread(&run.run_id).await?;
                    if now.status != RunStatus::Queued {
                        return Err(StepError::conflict(format!(
                            "run {} moved to {} while it was being queued",
                            run.run_id, now.status
                        )));
                    }
                    now
                }
                Err(e) => return Err(e.context("recording the run queued")),
            }
        };
        tracing::info!(%reason, "queued");
        Ok(self.queued_output(&written).await)
    }

    async fn queued_output(&self, run: &Run) -> LaunchJobOutput {
        let since = run.queue.as_ref().map_or(run.updated_at, |q| q.since);
        // A run held back after a quota refusal wakes itself when the hold ends (the wait's
        // timeout); any other waits until woken, or MAX_QUEUE_HOURS.
        let mut timeout = self.queue_seconds_left(since);
        if let Some(until) = run.queue.as_ref().and_then(|q| q.held_until) {
            if until > self.now() {
                timeout = timeout.min((until - self.now()).num_seconds().max(1));
            }
        }
        let position = match self.queued_runs().await {
            Ok(q) => q
                .iter()
                .position(|r| r.run_id == run.run_id)
                .map(|i| i as u32 + 1),
            Err(_) => None,
        };
        LaunchJobOutput {
            outcome: LaunchOutcome::Queued,
            position,
            queue_timeout_seconds: Some(timeout),
            ..LaunchJobOutput::for_run(run)
        }
    }

    /// Gives back a slot the run holds (a run that ends without a job, or whose job ended); a
    /// failure is logged (the sweep gives it back later), never the step's failure.
    pub(super) async fn give_back(&self, run_id: &RunId) {
        if self.config.admission.max_concurrent_jobs.is_none() {
            return;
        }
        if let Err(e) = self.slots.release(run_id).await {
            tracing::warn!(error = %e, "could not give the job slot back; the sweep will");
        }
    }

    /// `AwaitSlot`: records the wait's token on the queued run, then runs a wake-up pass (which
    /// resumes this run too when it may launch). A run no longer queued (stopped meanwhile) is
    /// resumed at once: `LaunchJob` then reads what happened.
    pub async fn await_slot(&self, run_id: &RunId, task_token: &str) -> Result<(), StepError> {
        let run = self.reread(run_id).await?;
        if run.status == RunStatus::Queued {
            let mut entry = run.queue.clone().unwrap_or(QueueEntry {
                since: run.updated_at,
                reason: "waiting for a job slot".into(),
                task_token: None,
                held_until: None,
                quota_refusals: 0,
                for_serving: false,
                admitted_at: None,
            });
            entry.task_token = Some(task_token.to_string());
            let update = RunUpdate {
                queue: Some(entry),
                ..Default::default()
            };
            match self
                .ledger
                .update(run_id, &[RunStatus::Queued], &update)
                .await
            {
                Ok(_) => {
                    // Given a slot before this wait began: nobody else will resume it.
                    if self.holds_slot(run_id).await? {
                        let out = serde_json::json!({ "resumed": "slot", "runId": run_id });
                        let answer = self
                            .callbacks
                            .send_success(task_token, &out)
                            .await
                            .map_err(|e| e.context("resuming the wait"))?;
                        tracing::info!(?answer, "the run already holds a slot; resumed");
                        return Ok(());
                    }
                    // The token is recorded: a pass that fails (it concerns other runs too) must
                    // not fail this run; the sweep repeats it.
                    if let Err(e) = self.wake_waiting().await {
                        tracing::warn!(error = %e, "wake-up pass failed; the sweep repeats it");
                    }
                    return Ok(());
                }
                Err(PortError::Conflict(_)) => {}
                Err(e) => return Err(e.context("recording the wait's task token")),
            }
        }
        // Not (or no longer) waiting: let the execution go on and find out.
        let answer = self
            .callbacks
            .send_success(task_token, &serde_json::json!({ "resumed": "not queued" }))
            .await
            .map_err(|e| e.context("resuming the wait"))?;
        tracing::info!(?answer, "the run is not queued; its wait was resumed");
        Ok(())
    }

    async fn holds_slot(&self, run_id: &RunId) -> Result<bool, StepError> {
        if self.config.admission.max_concurrent_jobs.is_none() {
            return Ok(false);
        }
        let holders = self
            .slots
            .holders()
            .await
            .map_err(|e| e.context("reading the job slots"))?;
        Ok(holders.contains(run_id))
    }

    /// The wake-up pass: offers free slots to the oldest queued runs (skipping those Bedrock
    /// refused less than [`QUOTA_HOLD_SECONDS`] ago) and resumes the ones whose wait has a token.
    pub async fn wake_waiting(&self) -> Result<WakeReport, StepError> {
        let now = self.now();
        let queued = self.queued_runs().await?;
        let holders = match self.config.admission.max_concurrent_jobs {
            Some(_) => self
                .slots
                .holders()
                .await
                .map_err(|e| e.context("reading the job slots"))?,
            None => Vec::new(),
        };
        let mut report = WakeReport {
            still_queued: queued.len(),
            ..Default::default()
        };
        for listed in queued {
            // Already given a slot: resumed then, or resumes itself when its wait begins.
            if held_back(&listed, now) || holders.contains(&listed.run_id) {
                continue;
            }
            let mut run = listed;
            if let Some(max) = self.config.admission.max_concurrent_jobs {
                match self
                    .slots
                    .acquire(&run.run_id, max)
                    .await
                    .map_err(|e| e.context("taking a job slot for a queued run"))?
                {
                    SlotGrant::Taken => {}
                    // Another pass gave it a slot after this one read the holders: that pass
                    // resumes it (or it is launching already). Nothing to send, nothing to give
                    // back.
                    SlotGrant::AlreadyHeld => continue,
                    SlotGrant::Full => break,
                }
                // The status index may lag: read the run itself (a consistent read) after taking
                // the slot, so a wait token recorded before the slot was taken is seen here (one
                // recorded after it finds the slot taken and resumes its own wait).
                match self.ledger.get(&run.run_id).await {
                    Ok(Some(fresh))
                        if fresh.status == RunStatus::Queued && !held_back(&fresh, now) =>
                    {
                        run = fresh
                    }
                    // Left the queue meanwhile (stopped, failed; or launched with a slot another
                    // pass gave it, which `acquire` confirmed), or held back after all.
                    Ok(fresh) => {
                        self.give_back_unless_in_use(&run.run_id, fresh.as_ref())
                            .await;
                        report.still_queued -= 1;
                        continue;
                    }
                    Err(e) => {
                        return Err(e.context("re-reading a queued run"));
                    }
                }
                // On record: the order runs were given slots in (first in, first out).
                if !self.note_admission(&run, now).await {
                    let fresh = self.ledger.get(&run.run_id).await.ok().flatten();
                    self.give_back_unless_in_use(&run.run_id, fresh.as_ref())
                        .await;
                    report.still_queued -= 1;
                    continue;
                }
            }
            let Some(token) = run.queue.as_ref().and_then(|q| q.task_token.clone()) else {
                report.admitted_without_token.push(run.run_id.clone());
                continue;
            };
            let out = serde_json::json!({ "resumed": "slot", "runId": run.run_id });
            match self.callbacks.send_success(&token, &out).await {
                Ok(TaskAnswer::Delivered) => {
                    tracing::info!(woken = %run.run_id, "a queued run was given a job slot");
                    report.woken.push(run.run_id.clone());
                    report.still_queued -= 1;
                }
                // Nothing waits on its latest token (the wait timed out and its run is being
                // expired or launched again; or the execution is gone): the slot goes on to the
                // next run. A live execution takes one again in turn (its place, `since`, kept).
                Ok(TaskAnswer::Closed(m)) => {
                    tracing::info!(run = %run.run_id, "the queued run's wait is closed: {m}");
                    let fresh = self.ledger.get(&run.run_id).await.ok().flatten();
                    self.give_back_unless_in_use(&run.run_id, fresh.as_ref())
                        .await;
                }
                // One wait that cannot be resumed must not stop the others behind it.
                Err(e) => {
                    tracing::warn!(run = %run.run_id, error = %e, "could not resume a queued run; the sweep retries");
                    self.give_back(&run.run_id).await;
                }
            }
        }
        Ok(report)
    }

    /// Gives back a slot this pass took for a run that turned out not to need it, unless the run is
    /// `launching` or `training`: `acquire` also answers yes for a slot the run already held
    /// (given by a concurrent pass), which a launching run needs.
    async fn give_back_unless_in_use(&self, run_id: &RunId, fresh: Option<&Run>) {
        if fresh.is_some_and(|r| matches!(r.status, RunStatus::Launching | RunStatus::Training)) {
            return;
        }
        self.give_back(run_id).await;
    }

    /// Records when the run was given a slot; `false` when it is no longer queued.
    async fn note_admission(&self, run: &Run, now: DateTime<Utc>) -> bool {
        let Some(mut entry) = run.queue.clone() else {
            return true;
        };
        if entry.admitted_at.is_some() {
            return true;
        }
        entry.admitted_at = Some(now);
        let update = RunUpdate {
            queue: Some(entry),
            ..Default::default()
        };
        match self
            .ledger
            .update(&run.run_id, &[RunStatus::Queued], &update)
            .await
        {
            Ok(_) => true,
            Err(PortError::Conflict(_)) => false,
            // The slot is taken; only the record of when is missing.
            Err(e) => {
                tracing::warn!(run = %run.run_id, error = %e, "could not record the admission");
                true
            }
        }
    }

    /// `ReleaseSlot`: the run's job ended; its slot goes to the next run.
    /// Also called after a run's failure was announced (`FreeSlotAfterRunError`): a run still
    /// `training` keeps its slot (its job may run on; the sweep frees it once the job's end is
    /// recorded).
    pub async fn release_slot(&self, run_id: &RunId) -> Result<WakeReport, StepError> {
        if self.config.admission.max_concurrent_jobs.is_some() {
            let run = self.reread(run_id).await?;
            if run.status == RunStatus::Training {
                tracing::warn!(run = %run_id, "the run is still training: its slot is kept");
                return Ok(WakeReport::default());
            }
            self.slots
                .release(run_id)
                .await
                .map_err(|e| e.context("giving the job slot back"))?;
        }
        self.wake_waiting().await
    }

    /// `WaitTimedOut`: a queued run past `MAX_QUEUE_HOURS` expires; one whose quota hold ended
    /// tries to launch again (and is queued again if it still cannot).
    pub async fn wait_timed_out(&self, run_id: &RunId) -> Result<LaunchJobOutput, StepError> {
        let run = self.reread(run_id).await?;
        let since = run.queue.as_ref().map_or(run.updated_at, |q| q.since);
        let past_limit =
            (self.now() - since).num_seconds() >= self.config.admission.max_queue_seconds;
        if run.status == RunStatus::Queued && !past_limit {
            return self.launch(run_id).await;
        }
        self.expire(run_id).await
    }

    /// Ends a run that waited `MAX_QUEUE_HOURS` `expired`, if it still waits (its slot, if one was
    /// just given to it, goes to the next run).
    pub async fn expire(&self, run_id: &RunId) -> Result<LaunchJobOutput, StepError> {
        let run = self.reread(run_id).await?;
        if run.status != RunStatus::Queued {
            return self.settled_output(&run);
        }
        let since = run.queue.as_ref().map_or(run.updated_at, |q| q.since);
        let hours = self.config.admission.max_queue_seconds as f64 / 3600.0;
        let reason = format!(
            "waited for a job slot since {} (longer than MAX_QUEUE_HOURS = {hours}); nothing was launched. Start a new attempt with `distillery runs retry {run_id}`",
            since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let update = RunUpdate {
            failure_reason: Some(reason.clone()),
            finished_at: Some(self.now()),
            ..RunUpdate::to(RunStatus::Expired).with_detail(reason)
        };
        let written = match self
            .ledger
            .update(run_id, &[RunStatus::Queued], &update)
            .await
        {
            Ok(r) => r,
            Err(PortError::Conflict(_)) => return self.settled_output(&self.reread(run_id).await?),
            Err(e) => return Err(e.context("recording the run expired")),
        };
        self.give_back_and_wake(run_id).await;
        self.settled_output(&written)
    }

    /// The answer for a run that left the queue without launching (stopped, expired) or already
    /// launched.
    pub(super) fn settled_output(&self, run: &Run) -> Result<LaunchJobOutput, StepError> {
        let outcome = match run.status {
            RunStatus::Stopped if run.job_arn.is_none() => LaunchOutcome::Stopped,
            RunStatus::Expired => LaunchOutcome::Expired,
            _ => match output_of(run) {
                Some(out) => return Ok(out),
                None => return Err(run.refuse("launch")),
            },
        };
        Ok(LaunchJobOutput {
            outcome,
            ..LaunchJobOutput::for_run(run)
        })
    }

    /// A run that ends without a job (or whose job ended) gives its slot to the next queued run:
    /// gives it back and runs a wake-up pass; failures are logged (the sweep repeats both).
    pub(super) async fn hand_on(&self, run_id: &RunId) {
        if self.config.admission.max_concurrent_jobs.is_none() {
            return;
        }
        self.give_back_and_wake(run_id).await;
    }

    /// Gives back a slot the run may hold and runs a wake-up pass; a failed pass is logged (the
    /// sweep repeats it), never the caller's failure.
    async fn give_back_and_wake(&self, run_id: &RunId) {
        self.give_back(run_id).await;
        if let Err(e) = self.wake_waiting().await {
            tracing::warn!(error = %e, "wake-up failed; the sweep retries");
        }
    }

    /// A run stopped (`distillery runs stop`) or expired while queued: gives back a slot it may
    /// have been handed, wakes the next runs, and answers how it ended.
    pub(super) async fn left_the_queue(&self, run: &Run) -> Result<LaunchJobOutput, StepError> {
        self.give_back_and_wake(&run.run_id).await;
        self.settled_output(run)
    }

    /// The scheduled safety net: gives back slots whose holder no longer needs one (its job ended,
    /// it left the queue, or its launch died), ends queued runs whose wait is long over, and runs
    /// a wake-up pass.
    pub async fn sweep(&self) -> Result<SweepReport, StepError> {
        let now = self.now();
        let mut report = SweepReport::default();
        if self.config.admission.max_concurrent_jobs.is_some() {
            let holders = self
                .slots
                .holders()
                .await
                .map_err(|e| e.context("reading the job slots"))?;
            let mut waiting_with_a_slot = Vec::new();
            for holder in holders {
                let run = self
                    .ledger
                    .get(&holder)
                    .await
                    .map_err(|e| e.context("reading a slot holder"))?;
                let keep = match &run {
                    Some(r) if r.status == RunStatus::Queued => {
                        waiting_with_a_slot.push(r.clone());
                        true
                    }
                    Some(r) if r.status == RunStatus::Training => true,
                    Some(r) if r.status == RunStatus::Launching => {
                        (now - r.updated_at).num_seconds() < STALE_LAUNCH_SECONDS
                    }
                    _ => false,
                };
                if !keep {
                    self.slots
                        .release(&holder)
                        .await
                        .map_err(|e| e.context("giving back a stale job slot"))?;
                    report.slots_released.push(holder);
                }
            }
            // A queued run given a slot a while ago and still waiting: its wake-up was lost (or
            // is in flight). Resume it again; a wait already resumed answers Closed, harmlessly.
            for run in waiting_with_a_slot {
                let Some(q) = run.queue.as_ref() else {
                    continue;
                };
                let stale = q
                    .admitted_at
                    .is_none_or(|at| (now - at).num_seconds() >= REWAKE_AFTER_SECONDS);
                if !stale {
                    continue;
                }
                // Held back after a quota refusal: it tries again by itself when the hold ends.
                if held_back(&run, now) {
                    self.give_back(&run.run_id).await;
                    report.slots_released.push(run.run_id.clone());
                    continue;
                }
                let Some(token) = q.task_token.as_deref() else {
                    continue;
                };
                let out = serde_json::json!({ "resumed": "slot", "runId": run.run_id });
                match self.callbacks.send_success(token, &out).await {
                    Ok(TaskAnswer::Delivered) => report.rewoken.push(run.run_id.clone()),
                    // Nothing waits on its latest token: its execution is gone or elsewhere.
                    // The slot goes on; a live execution's LaunchJob takes one again in turn
                    // (its place in line, `since`, is kept).
                    Ok(TaskAnswer::Closed(_)) => {
                        self.give_back(&run.run_id).await;
                        report.slots_released.push(run.run_id.clone());
                    }
                    Err(e) => {
                        tracing::warn!(run = %run.run_id, error = %e, "could not resume a queued run")
                    }
                }
            }
        }
        // A wait ends at MAX_QUEUE_HOURS and expires its run; one still queued an hour later has
        // no execution left to do it.
        for run in self.queued_runs().await? {
            let since = run.queue.as_ref().map_or(run.updated_at, |q| q.since);
            let over = (now - since).num_seconds() - self.config.admission.max_queue_seconds;
            if over > 3600 {
                let out = self.expire(&run.run_id).await?;
                if out.outcome == LaunchOutcome::Expired {
                    report.expired.push(run.run_id);
                }
            }
        }
        report.wake = self.wake_waiting().await?;
        tracing::info!(?report, "queue sweep");
        Ok(report)
    }
}

/// Bedrock refused the run's job for its quota a moment ago: not offered a slot yet.
fn held_back(run: &Run, now: DateTime<Utc>) -> bool {
    run.queue
        .as_ref()
        .and_then(|q| q.held_until)
        .is_some_and(|until| until > now)
}

/// May a run launch now?
pub(super) enum Admission {
    Go,
    /// No: why it waits.
    Wait(String),
}
