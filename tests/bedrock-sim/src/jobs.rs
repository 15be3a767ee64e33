//! Model customization jobs: what was asked, and the status they have at a given moment.
//!
//! A job's status is a pure function of the time elapsed since it was created (and since a stop was
//! requested), so no background task is needed and every read is consistent with every other.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::faults::Phase;
use crate::wire::timestamp;

/// How long each simulated step takes, in milliseconds of real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// Each of the three job sub-statuses (validation, data processing, training) lasts this long.
    pub phase_ms: u64,
    /// Stopping → Stopped.
    pub stop_ms: u64,
    /// Provisioned Throughput Creating → InService (or Failed).
    pub pt_ms: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            phase_ms: 1000,
            stop_ms: 500,
            pt_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    InProgress,
    Completed,
    Failed,
    Stopping,
    Stopped,
}

impl JobStatus {
    pub const NAMES: [&'static str; 5] =
        ["InProgress", "Completed", "Failed", "Stopping", "Stopped"];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "InProgress",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Stopping => "Stopping",
            JobStatus::Stopped => "Stopped",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::Stopped
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubStatus {
    NotStarted,
    InProgress,
    Completed,
    Stopping,
    Stopped,
    Failed,
}

impl SubStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubStatus::NotStarted => "NotStarted",
            SubStatus::InProgress => "InProgress",
            SubStatus::Completed => "Completed",
            SubStatus::Stopping => "Stopping",
            SubStatus::Stopped => "Stopped",
            SubStatus::Failed => "Failed",
        }
    }
}

/// The statusDetails member names, in the order the phases run.
pub const PHASE_KEYS: [&str; 3] = [
    "validationDetails",
    "dataProcessingDetails",
    "trainingDetails",
];

/// A job as stored. Everything about its progress is derived by [`Job::view`].
#[derive(Debug, Clone)]
pub struct Job {
    pub arn: String,
    pub name: String,
    pub custom_model_name: String,
    /// Assigned at creation, shown only once the job has Completed.
    pub custom_model_arn: String,
    pub base_model_arn: String,
    pub role_arn: String,
    pub client_request_token: Option<String>,
    pub customization_type: String,
    /// The request body as received (for idempotency comparison and to echo configs back).
    pub request: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub timing: Timing,
    pub failure: Option<(Phase, String)>,
    /// Milliseconds after creation at which StopModelCustomizationJob was accepted.
    pub stop_at_ms: Option<u64>,
    /// Never finishes on its own: stays in training until stopped (fault `hangJob`).
    pub hangs: bool,
    /// How many of its status changes ([`Job::status_changes`]) already have a state-change event.
    pub announced: usize,
}

/// A job's state at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub status: JobStatus,
    /// Each phase's sub-status and the offset (ms after creation) of its last change.
    pub phases: [(SubStatus, u64); 3],
    pub last_modified_ms: u64,
    pub end_ms: Option<u64>,
}

impl Job {
    /// When the job ends if nobody stops it: after its failing phase, or after training.
    fn natural_end_ms(&self) -> u64 {
        let p = self.timing.phase_ms;
        match &self.failure {
            Some((phase, _)) => (phase.index() as u64 + 1) * p,
            None if self.hangs => u64::MAX,
            None => 3 * p,
        }
    }

    pub fn view(&self, elapsed_ms: u64) -> JobView {
        let p = self.timing.phase_ms;
        let natural_end = self.natural_end_ms();
        if let Some(stop_at) = self.stop_at_ms.filter(|s| elapsed_ms >= *s) {
            let stopped_at = stop_at + self.timing.stop_ms;
            let stopped = elapsed_ms >= stopped_at;
            let active = ((stop_at / p.max(1)) as usize).min(2);
            let phases = std::array::from_fn(|i| {
                if i < active {
                    (SubStatus::Completed, (i as u64 + 1) * p)
                } else if i == active {
                    if stopped {
                        (SubStatus::Stopped, stopped_at)
                    } else {
                        (SubStatus::Stopping, stop_at)
                    }
                } else {
                    (SubStatus::NotStarted, 0)
                }
            });
            return JobView {
                status: if stopped {
                    JobStatus::Stopped
                } else {
                    JobStatus::Stopping
                },
                phases,
                last_modified_ms: if stopped { stopped_at } else { stop_at },
                end_ms: stopped.then_some(stopped_at),
            };
        }
        let failed_phase = self.failure.as_ref().map(|(ph, _)| ph.index());
        let phases: [(SubStatus, u64); 3] = std::array::from_fn(|i| {
            let (start, mut end) = (i as u64 * p, (i as u64 + 1) * p);
            if i == 2 && natural_end == u64::MAX {
                end = u64::MAX;
            }
            if failed_phase.is_some_and(|f| i > f) || elapsed_ms < start {
                (SubStatus::NotStarted, 0)
            } else if elapsed_ms < end {
                (SubStatus::InProgress, start)
            } else if failed_phase == Some(i) {
                (SubStatus::Failed, end)
            } else {
                (SubStatus::Completed, end)
            }
        });
        let terminal = elapsed_ms >= natural_end;
        let status = match (terminal, failed_phase.is_some()) {
            (false, _) => JobStatus::InProgress,
            (true, true) => JobStatus::Failed,
            (true, false) => JobStatus::Completed,
        };
        JobView {
            status,
            phases,
            last_modified_ms: phases.iter().map(|(_, t)| *t).max().unwrap_or(0),
            end_ms: terminal.then_some(natural_end),
        }
    }

    /// Every status the job has had up to `elapsed_ms`, with the offset (ms after creation) it began
    /// at: InProgress at 0, then Stopping and Stopped, or Completed or Failed. Each is one state-change
    /// event; statuses only ever move forward along this list.
    pub fn status_changes(&self, elapsed_ms: u64) -> Vec<(JobStatus, u64)> {
        let view = self.view(elapsed_ms);
        let mut out = vec![(JobStatus::InProgress, 0)];
        if let Some(stop_at) = self.stop_at_ms.filter(|s| elapsed_ms >= *s) {
            out.push((JobStatus::Stopping, stop_at));
        }
        if view.status.is_terminal() {
            out.push((view.status, view.end_ms.unwrap_or(elapsed_ms)));
        }
        out
    }

    fn at(&self, offset_ms: u64) -> String {
        timestamp(self.created_at + Duration::milliseconds(offset_ms as i64))
    }

    pub fn elapsed_ms(&self, now: DateTime<Utc>) -> u64 {
        (now - self.created_at).num_milliseconds().max(0) as u64
    }

    pub fn is_distillation(&self) -> bool {
        self.customization_type == "DISTILLATION"
    }

    fn status_details(&self, view: &JobView) -> Value {
        let mut details = Map::new();
        for (key, (status, changed)) in PHASE_KEYS.iter().zip(view.phases) {
            details.insert(
                key.to_string(),
                json!({
                    "status": status.as_str(),
                    "creationTime": self.at(0),
                    "lastModifiedTime": self.at(changed),
                }),
            );
        }
        Value::Object(details)
    }

    /// The GetModelCustomizationJob response body.
    pub fn describe(&self, now: DateTime<Utc>) -> Value {
        let view = self.view(self.elapsed_ms(now));
        let mut out = Map::new();
        let mut put = |k: &str, v: Value| {
            out.insert(k.to_string(), v);
        };
        put("jobArn", json!(self.arn));
        put("jobName", json!(self.name));
        put("outputModelName", json!(self.custom_model_name));
        if view.status == JobStatus::Completed {
            put("outputModelArn", json!(self.custom_model_arn));
        }
        if let Some(token) = &self.client_request_token {
            put("clientRequestToken", json!(token));
        }
        put("roleArn", json!(self.role_arn));
        put("status", json!(view.status.as_str()));
        if self.is_distillation() {
            put("statusDetails", self.status_details(&view));
        }
        if view.status == JobStatus::Failed {
            if let Some((_, message)) = &self.failure {
                put("failureMessage", json!(message));
            }
        }
        put("creationTime", json!(self.at(0)));
        put("lastModifiedTime", json!(self.at(view.last_modified_ms)));
        if let Some(end) = view.end_ms {
            put("endTime", json!(self.at(end)));
        }
        put("baseModelArn", json!(self.base_model_arn));
        put("customizationType", json!(self.customization_type));
        for key in [
            "hyperParameters",
            "trainingDataConfig",
            "validationDataConfig",
            "outputDataConfig",
            "customizationConfig",
            "vpcConfig",
        ] {
            if let Some(v) = self.request.get(key).filter(|v| !v.is_null()) {
                put(key, v.clone());
            }
        }
        if let Some(kms) = self
            .request
            .get("customModelKmsKeyId")
            .filter(|v| !v.is_null())
        {
            put("outputModelKmsKeyArn", kms.clone());
        }
        Value::Object(out)
    }

    /// One entry of ListModelCustomizationJobs.
    pub fn summary(&self, now: DateTime<Utc>) -> Value {
        let view = self.view(self.elapsed_ms(now));
        let mut out = json!({
            "jobArn": self.arn,
            "baseModelArn": self.base_model_arn,
            "jobName": self.name,
            "status": view.status.as_str(),
            "lastModifiedTime": self.at(view.last_modified_ms),
            "creationTime": self.at(0),
            "customModelName": self.custom_model_name,
            "customizationType": self.customization_type,
        });
        let obj = out.as_object_mut().expect("object");
        if self.is_distillation() {
            obj.insert("statusDetails".into(), self.status_details(&view));
        }
        if let Some(end) = view.end_ms {
            obj.insert("endTime".into(), json!(self.at(end)));
        }
        if view.status == JobStatus::Completed {
            obj.insert("customModelArn".into(), json!(self.custom_model_arn));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(failure: Option<(Phase, String)>) -> Job {
        Job {
            arn: "arn".into(),
            name: "j".into(),
            custom_model_name: "m".into(),
            custom_model_arn: "cm".into(),
            base_model_arn: "b".into(),
            role_arn: "r".into(),
            client_request_token: None,
            customization_type: "DISTILLATION".into(),
            request: Map::new(),
            created_at: Utc::now(),
            timing: Timing {
                phase_ms: 100,
                stop_ms: 50,
                pt_ms: 100,
            },
            failure,
            stop_at_ms: None,
            hangs: false,
            announced: 0,
        }
    }

    fn subs(v: &JobView) -> [SubStatus; 3] {
        v.phases.map(|(s, _)| s)
    }

    #[test]
    fn phases_run_in_sequence_then_complete() {
        use SubStatus::*;
        let j = job(None);
        assert_eq!(subs(&j.view(0)), [InProgress, NotStarted, NotStarted]);
        assert_eq!(subs(&j.view(150)), [Completed, InProgress, NotStarted]);
        assert_eq!(subs(&j.view(250)), [Completed, Completed, InProgress]);
        assert_eq!(j.view(250).status, JobStatus::InProgress);
        let done = j.view(300);
        assert_eq!(done.status, JobStatus::Completed);
        assert_eq!(subs(&done), [Completed, Completed, Completed]);
        assert_eq!(done.end_ms, Some(300));
    }

    #[test]
    fn injected_failure_stops_at_its_phase() {
        use SubStatus::*;
        let j = job(Some((Phase::DataProcessing, "boom".into())));
        assert_eq!(j.view(150).status, JobStatus::InProgress);
        let v = j.view(200);
        assert_eq!(v.status, JobStatus::Failed);
        assert_eq!(subs(&v), [Completed, Failed, NotStarted]);
        assert_eq!(v.end_ms, Some(200));
    }

    #[test]
    fn a_hanging_job_trains_until_stopped() {
        let mut j = job(None);
        j.hangs = true;
        let v = j.view(1_000_000);
        assert_eq!(v.status, JobStatus::InProgress);
        assert_eq!(subs(&v)[2], SubStatus::InProgress);
        assert_eq!(subs(&v)[0], SubStatus::Completed);
        j.stop_at_ms = Some(1_000_000);
        assert_eq!(j.view(1_000_100).status, JobStatus::Stopped);
    }

    #[test]
    fn stop_goes_through_stopping() {
        use SubStatus::*;
        let mut j = job(None);
        j.stop_at_ms = Some(120);
        assert_eq!(j.view(110).status, JobStatus::InProgress);
        let v = j.view(130);
        assert_eq!(v.status, JobStatus::Stopping);
        assert_eq!(subs(&v), [Completed, Stopping, NotStarted]);
        let v = j.view(170);
        assert_eq!(v.status, JobStatus::Stopped);
        assert_eq!(subs(&v), [Completed, Stopped, NotStarted]);
        assert_eq!(v.end_ms, Some(170));
    }

    #[test]
    fn status_changes_list_each_status_once_in_order() {
        use JobStatus::*;
        let j = job(None);
        assert_eq!(j.status_changes(10), vec![(InProgress, 0)]);
        assert_eq!(
            j.status_changes(5000),
            vec![(InProgress, 0), (Completed, 300)]
        );
        let f = job(Some((Phase::Validation, "x".into())));
        assert_eq!(f.status_changes(100), vec![(InProgress, 0), (Failed, 100)]);
        let mut s = job(None);
        s.stop_at_ms = Some(120);
        assert_eq!(
            s.status_changes(130),
            vec![(InProgress, 0), (Stopping, 120)]
        );
        assert_eq!(
            s.status_changes(400),
            vec![(InProgress, 0), (Stopping, 120), (Stopped, 170)]
        );
    }
}
