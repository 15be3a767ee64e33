//! A stateful in-memory Bedrock account for the reconciler's tests: jobs, Provisioned Throughputs and
//! custom model deployments keyed by ARN, with tags, that the tests set up directly (including "orphans" no run owns). Stop
//! and delete change the state the way Bedrock does; every call is logged.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ports::{
    CustomizationService, DeploymentRequest, DeploymentState, DeploymentStatus,
    DistillationJobRequest, JobState, JobStatus, JobSummary, PortError, ThroughputRequest,
    ThroughputState, ThroughputStatus, ThroughputSummary,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
pub struct AccountJob {
    pub state: JobState,
    pub created_at: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct AccountThroughput {
    pub summary: ThroughputSummary,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct AccountDeployment {
    pub state: DeploymentState,
    pub tags: BTreeMap<String, String>,
}

#[derive(Default)]
pub struct BedrockAccount {
    pub jobs: Mutex<BTreeMap<String, AccountJob>>,
    pub throughputs: Mutex<BTreeMap<String, AccountThroughput>>,
    pub deployments: Mutex<BTreeMap<String, AccountDeployment>>,
    pub calls: Mutex<Vec<String>>,
    /// When set, StopModelCustomizationJob fails with this error.
    pub stop_error: Mutex<Option<PortError>>,
    /// When set, DeleteProvisionedModelThroughput fails with this error (Bedrock refusing, e.g. a
    /// commitment term still running, or throttling).
    pub delete_pt_error: Mutex<Option<PortError>>,
}

impl BedrockAccount {
    /// Adds a job with `status`, created at `created_at`, tagged `tags`.
    pub fn add_job(
        &self,
        arn: &str,
        status: JobStatus,
        created_at: DateTime<Utc>,
        tags: &[(&str, &str)],
    ) {
        let state = JobState {
            job_arn: arn.into(),
            status,
            validation: None,
            data_processing: None,
            training: None,
            failure_message: None,
            output_model_arn: (status == JobStatus::Completed).then(|| format!("{arn}-model")),
            output_model_name: None,
        };
        lock(&self.jobs).insert(
            arn.into(),
            AccountJob {
                state,
                created_at,
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
    }

    pub fn add_throughput(
        &self,
        arn: &str,
        status: ThroughputStatus,
        created_at: DateTime<Utc>,
        commitment_expires_at: Option<DateTime<Utc>>,
        tags: &[(&str, &str)],
    ) {
        lock(&self.throughputs).insert(
            arn.into(),
            AccountThroughput {
                summary: ThroughputSummary {
                    provisioned_model_arn: arn.into(),
                    provisioned_model_name: arn.rsplit('/').next().unwrap_or(arn).into(),
                    status,
                    model_arn: "arn:aws:bedrock:us-east-1:123456789012:custom-model/x".into(),
                    model_units: 1,
                    commitment_expires_at,
                    created_at,
                },
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
    }

    /// Adds a custom model deployment with `status`, created at `created_at`, tagged `tags`.
    pub fn add_deployment(
        &self,
        arn: &str,
        status: DeploymentStatus,
        created_at: DateTime<Utc>,
        tags: &[(&str, &str)],
    ) {
        lock(&self.deployments).insert(
            arn.into(),
            AccountDeployment {
                state: DeploymentState {
                    deployment_arn: arn.into(),
                    deployment_name: arn.rsplit('/').next().unwrap_or(arn).into(),
                    model_arn: "arn:aws:bedrock:us-east-1:123456789012:custom-model/x".into(),
                    status,
                    failure_message: None,
                    created_at: Some(created_at),
                },
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
    }

    pub fn has_deployment(&self, arn: &str) -> bool {
        lock(&self.deployments).contains_key(arn)
    }

    pub fn job_status(&self, arn: &str) -> Option<JobStatus> {
        lock(&self.jobs).get(arn).map(|j| j.state.status)
    }

    pub fn has_throughput(&self, arn: &str) -> bool {
        lock(&self.throughputs).contains_key(arn)
    }

    pub fn count(&self, op: &str) -> usize {
        lock(&self.calls).iter().filter(|c| *c == op).count()
    }

    fn log(&self, op: &str) {
        lock(&self.calls).push(op.into());
    }
}

#[async_trait]
impl CustomizationService for BedrockAccount {
    async fn create_distillation_job(
        &self,
        _req: &DistillationJobRequest,
    ) -> Result<String, PortError> {
        self.log("create_job");
        Err(PortError::Other(
            "BedrockAccount does not create jobs".into(),
        ))
    }

    async fn get_job(&self, job: &str) -> Result<JobState, PortError> {
        self.log("get_job");
        lock(&self.jobs)
            .get(job)
            .map(|j| j.state.clone())
            .ok_or_else(|| PortError::NotFound(format!("no job {job}")))
    }

    async fn stop_job(&self, job: &str) -> Result<(), PortError> {
        self.log("stop_job");
        if let Some(e) = lock(&self.stop_error).clone() {
            return Err(e);
        }
        let mut jobs = lock(&self.jobs);
        let j = jobs
            .get_mut(job)
            .ok_or_else(|| PortError::NotFound(format!("no job {job}")))?;
        if j.state.status != JobStatus::InProgress {
            return Err(PortError::Conflict(format!(
                "job {job} is {:?}",
                j.state.status
            )));
        }
        j.state.status = JobStatus::Stopping;
        Ok(())
    }

    async fn create_provisioned_throughput(
        &self,
        _req: &ThroughputRequest,
    ) -> Result<String, PortError> {
        self.log("create_pt");
        Err(PortError::Other(
            "BedrockAccount does not create throughputs".into(),
        ))
    }

    async fn get_provisioned_throughput(&self, id: &str) -> Result<ThroughputState, PortError> {
        self.log("get_pt");
        lock(&self.throughputs)
            .get(id)
            .map(|p| ThroughputState {
                provisioned_model_arn: p.summary.provisioned_model_arn.clone(),
                status: p.summary.status,
                failure_message: None,
                model_units: p.summary.model_units,
            })
            .ok_or_else(|| PortError::NotFound(format!("no provisioned model {id}")))
    }

    async fn delete_provisioned_throughput(&self, id: &str) -> Result<(), PortError> {
        self.log("delete_pt");
        if let Some(e) = lock(&self.delete_pt_error).clone() {
            return Err(e);
        }
        lock(&self.throughputs)
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| PortError::NotFound(format!("no provisioned model {id}")))
    }

    async fn create_custom_model_deployment(
        &self,
        _req: &DeploymentRequest,
    ) -> Result<String, PortError> {
        self.log("create_deployment");
        Err(PortError::Other(
            "BedrockAccount does not create deployments".into(),
        ))
    }

    async fn get_custom_model_deployment(&self, id: &str) -> Result<DeploymentState, PortError> {
        self.log("get_deployment");
        lock(&self.deployments)
            .values()
            .find(|d| d.state.deployment_arn == id || d.state.deployment_name == id)
            .map(|d| d.state.clone())
            .ok_or_else(|| PortError::NotFound(format!("no custom model deployment {id}")))
    }

    async fn delete_custom_model_deployment(&self, id: &str) -> Result<(), PortError> {
        self.log("delete_deployment");
        let mut deployments = lock(&self.deployments);
        let arn = deployments
            .values()
            .find(|d| d.state.deployment_arn == id || d.state.deployment_name == id)
            .map(|d| d.state.deployment_arn.clone())
            .ok_or_else(|| PortError::NotFound(format!("no custom model deployment {id}")))?;
        deployments.remove(&arn);
        Ok(())
    }

    async fn list_custom_model_deployments(&self) -> Result<Vec<DeploymentState>, PortError> {
        self.log("list_deployments");
        Ok(lock(&self.deployments)
            .values()
            .map(|d| d.state.clone())
            .collect())
    }

    async fn list_jobs(&self, status: Option<JobStatus>) -> Result<Vec<JobSummary>, PortError> {
        self.log("list_jobs");
        Ok(lock(&self.jobs)
            .values()
            .filter(|j| status.is_none_or(|s| s == j.state.status))
            .map(|j| JobSummary {
                job_arn: j.state.job_arn.clone(),
                job_name: j.state.job_arn.rsplit('/').next().unwrap_or("").into(),
                status: j.state.status,
                created_at: j.created_at,
                custom_model_arn: j.state.output_model_arn.clone(),
            })
            .collect())
    }

    async fn list_provisioned_throughputs(&self) -> Result<Vec<ThroughputSummary>, PortError> {
        self.log("list_pts");
        Ok(lock(&self.throughputs)
            .values()
            .map(|p| p.summary.clone())
            .collect())
    }

    async fn list_tags(&self, arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        self.log("list_tags");
        if let Some(j) = lock(&self.jobs).get(arn) {
            return Ok(j.tags.clone());
        }
        if let Some(p) = lock(&self.throughputs).get(arn) {
            return Ok(p.tags.clone());
        }
        if let Some(d) = lock(&self.deployments).get(arn) {
            return Ok(d.tags.clone());
        }
        Err(PortError::NotFound(format!("no resource {arn}")))
    }
}
