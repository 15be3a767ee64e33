//! Fault injection: errors returned instead of serving a call, and jobs / Provisioned Throughputs
//! that are accepted but end Failed.

use serde::{Deserialize, Serialize};

use crate::jobs::JobStatus;
use crate::wire::{ApiError, ErrorKind, Operation};

/// Which training phase a failing job fails in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Validation,
    DataProcessing,
    #[default]
    Training,
}

impl Phase {
    pub fn index(self) -> usize {
        match self {
            Phase::Validation => 0,
            Phase::DataProcessing => 1,
            Phase::Training => 2,
        }
    }
}

fn one() -> u32 {
    1
}

/// One fault, as given to `SimHandle::inject` or POSTed to `/_sim/faults` (JSON, `kind` tagged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Fault {
    /// The next `count` calls (of `operation`, or of any operation) get ThrottlingException (429).
    Throttle {
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<Operation>,
    },
    /// The next `count` calls of `operation` (default CreateModelCustomizationJob) get
    /// ServiceQuotaExceededException (400).
    QuotaExceeded {
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<Operation>,
    },
    /// The next `count` calls (of `operation`, or of any) get InternalServerException (500).
    InternalError {
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<Operation>,
    },
    /// The next `count` calls (of `operation`, or of any) get AccessDeniedException (403), as when
    /// the caller's IAM policy lacks the action.
    AccessDenied {
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<Operation>,
    },
    /// The next `count` Converse calls get ModelErrorException (424, "the request failed due to an
    /// error while processing the model"), with `message` when given. Runtime only: no
    /// control-plane operation declares it.
    ModelError {
        #[serde(default = "one")]
        count: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Jobs created from now on end Failed in `phase` with `message`: the next `count` jobs, or every
    /// job whose name contains `nameContains` (limited to `count` when both are given).
    FailJob {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(default)]
        phase: Phase,
    },
    /// Jobs created from now on never finish on their own: they stay InProgress (in training) until
    /// StopModelCustomizationJob. The next `count` jobs, or those whose name contains `nameContains`.
    HangJob {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_contains: Option<String>,
    },
    /// Provisioned Throughputs created from now on end Failed: the next `count`, or those whose name
    /// contains `nameContains`.
    FailThroughput {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Custom model deployments created from now on end Failed (after Creating) with `message`: the
    /// next `count`, or those whose name contains `nameContains`.
    FailDeployment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Job state-change events are not published (Bedrock delivers them best effort): the next
    /// `count` matching events, or, without `count`, every matching event until cleared. Matching:
    /// job name contains `nameContains`, and `jobStatus` equals the event's, when given.
    DropEvents {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_status: Option<String>,
    },
    /// Matching job state-change events are published twice (same content, two EventBridge ids).
    /// `count`, `nameContains`, `jobStatus` as for `dropEvents`.
    DuplicateEvents {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_status: Option<String>,
    },
    /// Matching job state-change events are held back `delayMs` before publishing, so later events
    /// (of the same job or others) overtake them: out-of-order delivery. `count`, `nameContains`,
    /// `jobStatus` as for `dropEvents`.
    DelayEvents {
        delay_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name_contains: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        job_status: Option<String>,
    },
}

/// What the event faults do to one job state-change event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventEffect {
    pub drop: bool,
    pub duplicate: bool,
    pub delay_ms: Option<u64>,
}

pub const DEFAULT_JOB_FAILURE: &str =
    "Internal error occurred during training. Please retry the job (injected by bedrock-sim).";
pub const DEFAULT_PT_FAILURE: &str = "Failed to provision model units (injected by bedrock-sim).";
pub const DEFAULT_MODEL_ERROR: &str =
    "The model encountered an error while processing the request (injected by bedrock-sim).";
pub const DEFAULT_DEPLOYMENT_FAILURE: &str =
    "The custom model deployment failed to start (injected by bedrock-sim).";

impl Fault {
    /// Rejects faults that could not happen on the real API.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Fault::QuotaExceeded {
                operation: Some(op),
                ..
            } if !op.declares_quota_error() => Err(format!(
                "{op} does not declare ServiceQuotaExceededException in the Bedrock API model"
            )),
            Fault::DropEvents {
                job_status: Some(s),
                ..
            }
            | Fault::DuplicateEvents {
                job_status: Some(s),
                ..
            }
            | Fault::DelayEvents {
                job_status: Some(s),
                ..
            } if !JobStatus::NAMES.contains(&s.as_str()) => Err(format!(
                "jobStatus '{s}' is not a job status (one of {})",
                JobStatus::NAMES.join(", ")
            )),
            _ => Ok(()),
        }
    }

    /// How many more times it applies; `None` = until cleared.
    fn remaining(&self) -> Option<u32> {
        match self {
            Fault::Throttle { count, .. }
            | Fault::QuotaExceeded { count, .. }
            | Fault::InternalError { count, .. }
            | Fault::AccessDenied { count, .. }
            | Fault::ModelError { count, .. } => Some(*count),
            Fault::FailJob {
                count,
                name_contains,
                ..
            }
            | Fault::FailThroughput {
                count,
                name_contains,
                ..
            }
            | Fault::FailDeployment {
                count,
                name_contains,
                ..
            }
            | Fault::HangJob {
                count,
                name_contains,
            } => match (count, name_contains) {
                (Some(c), _) => Some(*c),
                (None, Some(_)) => None,
                (None, None) => Some(1),
            },
            // Without a count, an event fault lasts until cleared ("drop all events").
            Fault::DropEvents { count, .. }
            | Fault::DuplicateEvents { count, .. }
            | Fault::DelayEvents { count, .. } => *count,
        }
    }

    fn consume(&mut self) {
        match self {
            Fault::Throttle { count, .. }
            | Fault::QuotaExceeded { count, .. }
            | Fault::InternalError { count, .. }
            | Fault::AccessDenied { count, .. }
            | Fault::ModelError { count, .. } => *count = count.saturating_sub(1),
            Fault::FailJob {
                count,
                name_contains,
                ..
            }
            | Fault::FailThroughput {
                count,
                name_contains,
                ..
            }
            | Fault::FailDeployment {
                count,
                name_contains,
                ..
            }
            | Fault::HangJob {
                count,
                name_contains,
            } => {
                *count = match (*count, name_contains.is_some()) {
                    (Some(c), _) => Some(c.saturating_sub(1)),
                    (None, true) => None,
                    (None, false) => Some(0),
                }
            }
            Fault::DropEvents { count, .. }
            | Fault::DuplicateEvents { count, .. }
            | Fault::DelayEvents { count, .. } => *count = count.map(|c| c.saturating_sub(1)),
        }
    }

    /// Whether an event fault applies to the event for `job_name` reaching `status`.
    fn matches_event(&self, job_name: &str, status: &str) -> bool {
        match self {
            Fault::DropEvents {
                name_contains,
                job_status,
                ..
            }
            | Fault::DuplicateEvents {
                name_contains,
                job_status,
                ..
            }
            | Fault::DelayEvents {
                name_contains,
                job_status,
                ..
            } => {
                name_contains
                    .as_deref()
                    .is_none_or(|n| job_name.contains(n))
                    && job_status.as_deref().is_none_or(|s| s == status)
            }
            _ => false,
        }
    }
}

/// The active faults, applied in the order they were added.
#[derive(Debug, Default)]
pub struct FaultBook {
    faults: Vec<Fault>,
}

impl FaultBook {
    pub fn add(&mut self, fault: Fault) -> Result<(), String> {
        fault.check()?;
        if fault.remaining() != Some(0) {
            self.faults.push(fault);
        }
        Ok(())
    }

    pub fn active(&self) -> Vec<Fault> {
        self.faults.clone()
    }

    pub fn clear(&mut self) {
        self.faults.clear();
    }

    fn take(&mut self, matches: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let i = self.faults.iter().position(matches)?;
        let taken = self.faults[i].clone();
        self.faults[i].consume();
        if self.faults[i].remaining() == Some(0) {
            self.faults.remove(i);
        }
        Some(taken)
    }

    /// The error that replaces this call, if a call-level fault applies to it.
    pub fn take_call_fault(&mut self, op: Operation) -> Option<ApiError> {
        let applies = |wanted: &Option<Operation>, default: Option<Operation>| {
            wanted.or(default).is_none_or(|w| w == op)
        };
        let fault = self.take(|f| match f {
            Fault::Throttle { operation, .. }
            | Fault::InternalError { operation, .. }
            | Fault::AccessDenied { operation, .. } => applies(operation, None),
            Fault::QuotaExceeded { operation, .. } => {
                applies(operation, Some(Operation::CreateModelCustomizationJob))
            }
            Fault::ModelError { .. } => op == Operation::Converse,
            _ => false,
        })?;
        Some(match fault {
            Fault::Throttle { .. } => ApiError::new(
                ErrorKind::Throttling,
                "Too many requests, please wait before trying again.",
            ),
            Fault::QuotaExceeded { .. } => ApiError::new(
                ErrorKind::ServiceQuotaExceeded,
                format!("The request for {op} exceeds a service quota for this account (injected by bedrock-sim)."),
            ),
            // The runtime's calls are authorized by bedrock:InvokeModel.
            Fault::AccessDenied { .. } if op.is_runtime() => ApiError::new(
                ErrorKind::AccessDenied,
                "User is not authorized to perform: bedrock:InvokeModel (injected by bedrock-sim)",
            ),
            Fault::AccessDenied { .. } => ApiError::new(
                ErrorKind::AccessDenied,
                format!("User is not authorized to perform: bedrock:{op} (injected by bedrock-sim)"),
            ),
            Fault::ModelError { message, .. } => ApiError::new(
                ErrorKind::ModelError,
                message.unwrap_or_else(|| DEFAULT_MODEL_ERROR.to_string()),
            )
            .with_field("originalStatusCode", serde_json::json!(500)),
            _ => ApiError::new(
                ErrorKind::InternalServer,
                "An internal server error occurred. Retry your request.",
            ),
        })
    }

    /// The phase and message a new job will fail with, if a FailJob fault applies to it.
    pub fn take_job_failure(&mut self, job_name: &str) -> Option<(Phase, String)> {
        match self.take(|f| match f {
            Fault::FailJob { name_contains, .. } => name_contains
                .as_deref()
                .is_none_or(|n| job_name.contains(n)),
            _ => false,
        })? {
            Fault::FailJob { message, phase, .. } => Some((
                phase,
                message.unwrap_or_else(|| DEFAULT_JOB_FAILURE.to_string()),
            )),
            _ => None,
        }
    }

    /// Whether a new job never finishes on its own (a HangJob fault applies to it).
    pub fn take_job_hang(&mut self, job_name: &str) -> bool {
        self.take(|f| match f {
            Fault::HangJob { name_contains, .. } => name_contains
                .as_deref()
                .is_none_or(|n| job_name.contains(n)),
            _ => false,
        })
        .is_some()
    }

    /// What the event faults do to the state-change event for `job_name` reaching `status` (each
    /// kind that applies is used up once; a dropped event uses up no duplicate or delay fault).
    pub fn take_event_faults(&mut self, job_name: &str, status: &str) -> EventEffect {
        let mut effect = EventEffect::default();
        if self
            .take(|f| matches!(f, Fault::DropEvents { .. }) && f.matches_event(job_name, status))
            .is_some()
        {
            effect.drop = true;
            return effect;
        }
        effect.duplicate = self
            .take(|f| {
                matches!(f, Fault::DuplicateEvents { .. }) && f.matches_event(job_name, status)
            })
            .is_some();
        if let Some(Fault::DelayEvents { delay_ms, .. }) = self
            .take(|f| matches!(f, Fault::DelayEvents { .. }) && f.matches_event(job_name, status))
        {
            effect.delay_ms = Some(delay_ms);
        }
        effect
    }

    /// The failure message for a new Provisioned Throughput, if a FailThroughput fault applies.
    pub fn take_throughput_failure(&mut self, name: &str) -> Option<String> {
        match self.take(|f| match f {
            Fault::FailThroughput { name_contains, .. } => {
                name_contains.as_deref().is_none_or(|n| name.contains(n))
            }
            _ => false,
        })? {
            Fault::FailThroughput { message, .. } => {
                Some(message.unwrap_or_else(|| DEFAULT_PT_FAILURE.to_string()))
            }
            _ => None,
        }
    }

    /// The failure message for a new custom model deployment, if a FailDeployment fault applies.
    pub fn take_deployment_failure(&mut self, name: &str) -> Option<String> {
        match self.take(|f| match f {
            Fault::FailDeployment { name_contains, .. } => {
                name_contains.as_deref().is_none_or(|n| name.contains(n))
            }
            _ => false,
        })? {
            Fault::FailDeployment { message, .. } => {
                Some(message.unwrap_or_else(|| DEFAULT_DEPLOYMENT_FAILURE.to_string()))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_counts_down_and_filters_by_operation() {
        let mut book = FaultBook::default();
        book.add(Fault::Throttle {
            count: 2,
            operation: Some(Operation::GetModelCustomizationJob),
        })
        .unwrap();
        assert!(book
            .take_call_fault(Operation::CreateModelCustomizationJob)
            .is_none());
        assert_eq!(
            book.take_call_fault(Operation::GetModelCustomizationJob)
                .unwrap()
                .kind,
            ErrorKind::Throttling
        );
        assert!(book
            .take_call_fault(Operation::GetModelCustomizationJob)
            .is_some());
        assert!(book
            .take_call_fault(Operation::GetModelCustomizationJob)
            .is_none());
        assert!(book.active().is_empty());
    }

    #[test]
    fn quota_defaults_to_create_job_and_is_refused_where_undeclared() {
        let mut book = FaultBook::default();
        book.add(Fault::QuotaExceeded {
            count: 1,
            operation: None,
        })
        .unwrap();
        assert!(book
            .take_call_fault(Operation::GetModelCustomizationJob)
            .is_none());
        assert!(book
            .take_call_fault(Operation::CreateModelCustomizationJob)
            .is_some());
        assert!(book
            .add(Fault::QuotaExceeded {
                count: 1,
                operation: Some(Operation::GetModelCustomizationJob)
            })
            .is_err());
    }

    #[test]
    fn name_matched_job_failures_persist() {
        let mut book = FaultBook::default();
        book.add(Fault::FailJob {
            count: None,
            name_contains: Some("bad".into()),
            message: None,
            phase: Phase::DataProcessing,
        })
        .unwrap();
        assert!(book.take_job_failure("good-job").is_none());
        assert_eq!(
            book.take_job_failure("bad-1").unwrap().0,
            Phase::DataProcessing
        );
        assert!(book.take_job_failure("bad-2").is_some());
    }

    #[test]
    fn event_faults_count_down_or_last_until_cleared() {
        let mut book = FaultBook::default();
        book.add(Fault::DropEvents {
            count: Some(1),
            name_contains: None,
            job_status: Some("Completed".into()),
        })
        .unwrap();
        assert!(!book.take_event_faults("j", "InProgress").drop);
        assert!(book.take_event_faults("j", "Completed").drop);
        assert!(!book.take_event_faults("k", "Completed").drop);
        book.add(Fault::DropEvents {
            count: None,
            name_contains: None,
            job_status: None,
        })
        .unwrap();
        for _ in 0..5 {
            assert!(book.take_event_faults("j", "InProgress").drop);
        }
        book.clear();
        book.add(Fault::DuplicateEvents {
            count: Some(2),
            name_contains: Some("dup".into()),
            job_status: None,
        })
        .unwrap();
        assert!(!book.take_event_faults("other", "InProgress").duplicate);
        assert!(book.take_event_faults("dup-1", "InProgress").duplicate);
        assert!(book.take_event_faults("dup-1", "Completed").duplicate);
        assert!(!book.take_event_faults("dup-1", "Completed").duplicate);
        assert!(book
            .add(Fault::DelayEvents {
                delay_ms: 5,
                count: None,
                name_contains: None,
                job_status: Some("Done".into())
            })
            .is_err());
        let f: Fault = serde_json::from_str(
            r#"{"kind":"delayEvents","delayMs":300,"jobStatus":"InProgress"}"#,
        )
        .unwrap();
        book.add(f).unwrap();
        assert_eq!(
            book.take_event_faults("j", "InProgress").delay_ms,
            Some(300)
        );
    }

    #[test]
    fn deployment_failures_count_down_or_match_names() {
        let mut book = FaultBook::default();
        let f: Fault = serde_json::from_str(
            r#"{"kind":"failDeployment","nameContains":"-od-","message":"no capacity"}"#,
        )
        .unwrap();
        book.add(f).unwrap();
        assert!(book.take_deployment_failure("other").is_none());
        assert_eq!(
            book.take_deployment_failure("a-od-1").as_deref(),
            Some("no capacity")
        );
        assert!(book.take_deployment_failure("b-od-2").is_some());
        book.clear();
        book.add(Fault::FailDeployment {
            count: None,
            name_contains: None,
            message: None,
        })
        .unwrap();
        assert_eq!(
            book.take_deployment_failure("x").as_deref(),
            Some(DEFAULT_DEPLOYMENT_FAILURE)
        );
        assert!(book.take_deployment_failure("y").is_none());
        // Deployments are not jobs: a job failure fault never fails a deployment.
        book.add(Fault::FailJob {
            count: Some(1),
            name_contains: None,
            message: None,
            phase: Phase::Training,
        })
        .unwrap();
        assert!(book.take_deployment_failure("z").is_none());
    }

    #[test]
    fn faults_parse_from_json() {
        let f: Fault = serde_json::from_str(
            r#"{"kind":"throttle","count":3,"operation":"GetModelCustomizationJob"}"#,
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::Throttle {
                count: 3,
                operation: Some(Operation::GetModelCustomizationJob)
            }
        );
        let f: Fault =
            serde_json::from_str(r#"{"kind":"failJob","nameContains":"x","phase":"validation"}"#)
                .unwrap();
        assert!(matches!(
            f,
            Fault::FailJob {
                phase: Phase::Validation,
                ..
            }
        ));
    }
}
