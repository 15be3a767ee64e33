//! A burst: many datasets uploaded within seconds, each run through the real state machine at once
//! against the guarded functions (`MAX_CONCURRENT_JOBS=2`) and a simulator that refuses a job past
//! its quota, as Bedrock does. Shared by the end-to-end test (`tests/e2e/burst.rs`, which asserts)
//! and `make bench-burst` (`src/bin/bench-burst.rs`, which prints the figures).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use distillery_core::app::launch_job::queue_order;
use distillery_core::domain::run::{Run, RunId, RunStatus};
use distillery_core::ports::RunLedger;
use futures::future::join_all;
use serde::Serialize;
use serde_json::{json, Value};

use crate::execution::Execution;
use crate::{repo_root, Stack};

/// What to run.
#[derive(Debug, Clone)]
pub struct BurstOptions {
    /// Datasets uploaded at once.
    pub runs: usize,
    /// The simulator's quota of jobs in progress (the guarded functions' MAX_CONCURRENT_JOBS is
    /// set by the stack: 2).
    pub sim_max_jobs: usize,
    /// The simulator's job phase length (a job lasts about three phases).
    pub phase_ms: u64,
    /// Stop one queued run with `distillery runs stop` once at least half the runs wait.
    pub stop_one: bool,
}

/// One run of the burst.
#[derive(Debug, Clone)]
pub struct BurstRun {
    pub key: String,
    pub execution: Execution,
    /// Seconds from the burst's start to the execution's start and end.
    pub started_s: f64,
    pub ended_s: f64,
    pub run: Option<Run>,
}

/// The burst's figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BurstReport {
    pub runs: usize,
    pub sim_max_jobs: usize,
    pub job_seconds: f64,
    /// From the first upload to the last execution's end.
    pub wall_seconds: f64,
    pub runs_per_minute: f64,
    pub peak_concurrent_executions: usize,
    /// The most jobs the simulator had in progress at once (from each job's creation and end time).
    pub peak_jobs_in_progress: usize,
    pub transitions_per_run_mean: f64,
    pub transitions_per_run_max: u64,
    /// Runs that waited in the queue at least once.
    pub queued_runs: usize,
    /// The longest a run waited, from joining the queue to being given a slot.
    pub largest_queue_wait_seconds: f64,
    /// CreateModelCustomizationJob calls: accepted, and refused for the quota.
    pub jobs_created: usize,
    pub quota_refusals: usize,
    /// Final run statuses.
    pub statuses: BTreeMap<String, usize>,
    /// The run stopped while queued, when asked.
    pub stopped_run: Option<String>,
}

fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The most intervals open at once; an interval without an end is open until the end of time.
pub fn peak_overlap(intervals: &[(DateTime<Utc>, Option<DateTime<Utc>>)]) -> usize {
    let mut edges: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for (start, end) in intervals {
        edges.push((*start, 1));
        if let Some(end) = end {
            edges.push((*end, -1));
        }
    }
    // An end and a start at the same instant: the end first (the slot was free).
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut open, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        open += d;
        peak = peak.max(open);
    }
    peak as usize
}

impl Stack {
    /// The upload events for `keys`, taken from the rule's queue (events for other keys dropped).
    pub async fn receive_upload_events(
        &self,
        keys: &[String],
        timeout: Duration,
    ) -> Result<HashMap<String, Value>> {
        let deadline = Instant::now() + timeout;
        let url = &self.info.resources.upload_events_queue_url;
        let mut found = HashMap::new();
        while found.len() < keys.len() {
            if Instant::now() > deadline {
                bail!(
                    "{} of {} upload events arrived within {timeout:?}",
                    found.len(),
                    keys.len()
                );
            }
            let out = self
                .sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .context("ReceiveMessage (upload events)")?;
            for m in out.messages.unwrap_or_default() {
                if let Some(h) = &m.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(h)
                        .send()
                        .await
                        .context("DeleteMessage (upload events)")?;
                }
                let body: Value = serde_json::from_str(m.body.as_deref().unwrap_or("null"))
                    .context("an upload event on the queue is not JSON")?;
                if let Some(key) = body["detail"]["object"]["key"].as_str() {
                    if keys.iter().any(|k| k == key) {
                        found.insert(key.to_string(), body);
                    }
                }
            }
        }
        Ok(found)
    }

    async fn sim_put(&self, path: &str, body: &Value) -> Result<Value> {
        let r = reqwest::Client::new()
            .put(format!("{}{path}", self.info.bedrock_sim_url))
            .json(body)
            .send()
            .await
            .with_context(|| format!("PUT {path}"))?;
        if !r.status().is_success() {
            bail!("PUT {path}: {} {}", r.status(), r.text().await?);
        }
        Ok(r.json().await?)
    }

    /// Every job the simulator holds: (ARN, creation, end).
    async fn sim_jobs(&self) -> Result<Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)>> {
        let v: Value = reqwest::Client::new()
            .get(format!(
                "{}/model-customization-jobs?maxResults=1000",
                self.info.bedrock_sim_url
            ))
            .send()
            .await?
            .json()
            .await?;
        let jobs = v["modelCustomizationJobSummaries"]
            .as_array()
            .context("ListModelCustomizationJobs answer")?;
        Ok(jobs
            .iter()
            .filter_map(|j| {
                Some((
                    j["jobArn"].as_str()?.to_string(),
                    parse_time(&j["creationTime"])?,
                    parse_time(&j["endTime"]),
                ))
            })
            .collect())
    }

    /// Runs a burst (see the module) and measures it.
    pub async fn burst(&self, opts: &BurstOptions) -> Result<(BurstReport, Vec<BurstRun>)> {
        let guarded = self.info.guarded_lambda_invoke_url.clone();
        if guarded.is_empty() {
            bail!("the stack serves no guarded functions: restart it with tests/stack/start.sh");
        }
        self.reset_fakes().await?;
        let timing: Value = reqwest::Client::new()
            .get(format!("{}/_sim/timing", self.info.bedrock_sim_url))
            .send()
            .await?
            .json()
            .await?;
        let mut fast = timing.clone();
        fast["phaseMs"] = json!(opts.phase_ms);
        self.sim_put("/_sim/timing", &fast).await?;
        self.sim_put(
            "/_sim/quota",
            &json!({ "maxInProgressJobs": opts.sim_max_jobs }),
        )
        .await?;
        let result = self.burst_inner(opts, &guarded).await;
        // Put the shared simulator back for the tests that follow, whatever happened.
        self.sim_put("/_sim/quota", &json!({ "maxInProgressJobs": null }))
            .await?;
        self.sim_put("/_sim/timing", &timing).await?;
        result
    }

    async fn burst_inner(
        &self,
        opts: &BurstOptions,
        guarded: &str,
    ) -> Result<(BurstReport, Vec<BurstRun>)> {
        let dataset = std::fs::read(repo_root().join("examples/datasets/support-tickets.jsonl"))?;
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let keys: Vec<String> = (0..opts.runs)
            .map(|i| format!("incoming/burst-{nanos}/dataset-{i:03}.jsonl"))
            .collect();
        let t0 = Instant::now();
        for r in join_all(keys.iter().map(|k| self.upload(k, dataset.clone(), &[]))).await {
            r?;
        }
        let events = self
            .receive_upload_events(&keys, Duration::from_secs(60))
            .await?;
        let uploaded_s = t0.elapsed().as_secs_f64();
        eprintln!(
            "burst: {} datasets uploaded and their events received in {uploaded_s:.1} s; starting {} executions",
            keys.len(),
            keys.len()
        );

        let executions = join_all(keys.iter().map(|key| {
            let event = events[key].clone();
            async move {
                let started_s = t0.elapsed().as_secs_f64();
                let ex = self
                    .execution(&event)
                    .runner_args(&["--invoke-url", guarded])
                    .run()
                    .await;
                (key.clone(), started_s, t0.elapsed().as_secs_f64(), ex)
            }
        }));
        let stopper = async {
            if !opts.stop_one {
                return Ok(None);
            }
            self.stop_one_queued(opts.runs / 2, Duration::from_secs(300))
                .await
                .map(Some)
        };
        let (done, stopped) = tokio::join!(executions, stopper);
        let stopped = stopped?;
        let wall_seconds = t0.elapsed().as_secs_f64();

        let mut runs = Vec::new();
        for (key, started_s, ended_s, ex) in done {
            let execution = ex.with_context(|| format!("the execution for {key}"))?;
            let run = match execution.run_id() {
                Some(id) => self.run(&id).await.ok(),
                None => None,
            };
            runs.push(BurstRun {
                key,
                execution,
                started_s,
                ended_s,
                run,
            });
        }
        let report = self
            .measure(opts, &runs, wall_seconds, stopped.as_ref())
            .await?;
        Ok((report, runs))
    }

    /// Waits until at least `min_queued` runs are queued, then stops the last in line with the CLI.
    async fn stop_one_queued(&self, min_queued: usize, timeout: Duration) -> Result<RunId> {
        let deadline = Instant::now() + timeout;
        loop {
            let queued = queue_order(self.ledger.list_by_status(RunStatus::Queued, 1000).await?);
            if queued.len() >= min_queued.max(1) {
                let last = queued.last().expect("not empty").run_id.clone();
                let out = self.cli(&["runs", "stop", last.as_str()]).await?;
                if !out.status.success() {
                    bail!(
                        "distillery runs stop {last}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                eprintln!(
                    "burst: stopped queued run {last}: {}",
                    String::from_utf8_lossy(&out.stdout).trim()
                );
                return Ok(last);
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} runs were queued at once within {timeout:?}",
                    queued.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn measure(
        &self,
        opts: &BurstOptions,
        runs: &[BurstRun],
        wall_seconds: f64,
        stopped: Option<&RunId>,
    ) -> Result<BurstReport> {
        let ours: Vec<String> = runs
            .iter()
            .filter_map(|r| r.run.as_ref()?.job_arn.clone())
            .collect();
        let jobs: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = self
            .sim_jobs()
            .await?
            .into_iter()
            .filter(|(arn, _, _)| ours.contains(arn))
            .map(|(_, start, end)| (start, end))
            .collect();
        let calls = self.bedrock_calls().await?;
        let creates: Vec<&Value> = calls
            .iter()
            .filter(|c| c["operation"] == "CreateModelCustomizationJob")
            .collect();
        let jobs_created = creates
            .iter()
            .filter(|c| c["status"].as_u64().is_some_and(|s| s < 300))
            .count();
        let quota_refusals = creates
            .iter()
            .filter(|c| {
                c["errorType"]
                    .as_str()
                    .is_some_and(|t| t.contains("ServiceQuotaExceeded"))
            })
            .count();
        let exec_intervals: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)> = runs
            .iter()
            .map(|r| {
                let at = |s: f64| {
                    DateTime::<Utc>::UNIX_EPOCH
                        + chrono::Duration::milliseconds((s * 1000.0) as i64)
                };
                (at(r.started_s), Some(at(r.ended_s)))
            })
            .collect();
        let transitions: Vec<u64> = runs.iter().map(|r| r.execution.transitions).collect();
        let mut statuses = BTreeMap::new();
        let mut queued_runs = 0;
        let mut largest_wait = 0f64;
        for r in runs.iter().filter_map(|r| r.run.as_ref()) {
            *statuses.entry(r.status.to_string()).or_insert(0) += 1;
            if let Some(q) = &r.queue {
                queued_runs += 1;
                if let Some(end) = q.admitted_at.or(r.launched_at) {
                    largest_wait =
                        largest_wait.max((end - q.since).num_milliseconds() as f64 / 1000.0);
                }
            }
        }
        let n = runs.len().max(1);
        Ok(BurstReport {
            runs: runs.len(),
            sim_max_jobs: opts.sim_max_jobs,
            job_seconds: opts.phase_ms as f64 * 3.0 / 1000.0,
            wall_seconds,
            runs_per_minute: runs.len() as f64 / (wall_seconds / 60.0),
            peak_concurrent_executions: peak_overlap(&exec_intervals),
            peak_jobs_in_progress: peak_overlap(&jobs),
            transitions_per_run_mean: transitions.iter().sum::<u64>() as f64 / n as f64,
            transitions_per_run_max: transitions.iter().copied().max().unwrap_or_default(),
            queued_runs,
            largest_queue_wait_seconds: largest_wait,
            jobs_created,
            quota_refusals,
            statuses,
            stopped_run: stopped.map(|id| id.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_overlap_counts_open_intervals_and_ends_before_starts() {
        let t = |s: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        assert_eq!(peak_overlap(&[]), 0);
        assert_eq!(
            peak_overlap(&[(t(0), Some(t(10))), (t(10), Some(t(20)))]),
            1,
            "back to back is one at a time"
        );
        assert_eq!(
            peak_overlap(&[(t(0), Some(t(10))), (t(5), None), (t(6), Some(t(7)))]),
            3
        );
    }
}
