//! AWS adapter for [`CustomizationService`]: Bedrock's model customization control plane
//! (distillation jobs, Provisioned Throughput and custom model deployments) through `aws-sdk-bedrock`.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_bedrock::types::{
    CommitmentDuration, CustomModelDeploymentStatus, CustomizationConfig, CustomizationType,
    DistillationConfig, InvocationLogSource, InvocationLogsConfig, JobStatusDetails,
    ModelCustomizationJobStatus, OutputDataConfig, ProvisionedModelStatus,
    RequestMetadataBaseFilters, RequestMetadataFilters, Tag, TeacherModelConfig,
    TrainingDataConfig,
};
use aws_sdk_bedrock::Client;

use crate::sdk_error::port_error;
use distillery_core::domain::settings::Commitment;
use distillery_core::ports::{
    CustomizationService, DeploymentRequest, DeploymentState, DeploymentStatus,
    DistillationJobRequest, JobState, JobStatus, JobSummary, PortError, ThroughputRequest,
    ThroughputState, ThroughputStatus, ThroughputSummary, TrainingData,
};

/// Page size for the List calls (Bedrock allows 1–1000).
const LIST_PAGE_SIZE: i32 = 100;
/// A bound on pages per List call, so a misbehaving endpoint cannot loop us forever.
const MAX_LIST_PAGES: usize = 100;

/// Every item of a Bedrock List operation: `page(token)` fetches one page (items and the next
/// token); pages are followed until there is no next token, at most MAX_LIST_PAGES of them (a
/// listing that never ends is an error, not a loop).
async fn all_pages<T, F, Fut>(operation: &str, mut page: F) -> Result<Vec<T>, PortError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), PortError>>,
{
    let mut out = Vec::new();
    let mut token = None;
    for _ in 0..MAX_LIST_PAGES {
        let (items, next) = page(token.take()).await?;
        out.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
    Err(PortError::Other(format!(
        "{operation} still had more pages after {MAX_LIST_PAGES} pages of {LIST_PAGE_SIZE}"
    )))
}

fn utc(t: &aws_smithy_types::DateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_default()
}

fn sdk_job_status(s: JobStatus) -> aws_sdk_bedrock::types::FineTuningJobStatus {
    use aws_sdk_bedrock::types::FineTuningJobStatus as F;
    match s {
        JobStatus::InProgress => F::InProgress,
        JobStatus::Completed => F::Completed,
        JobStatus::Failed => F::Failed,
        JobStatus::Stopping => F::Stopping,
        JobStatus::Stopped => F::Stopped,
    }
}

/// Bedrock through the AWS SDK. Reaches the local simulator when `AWS_ENDPOINT_URL_BEDROCK` is set
/// (the SDK reads it itself).
#[derive(Clone)]
pub struct BedrockCustomizationService {
    client: Client,
}

impl BedrockCustomizationService {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

fn build_err(what: &str, e: impl std::fmt::Display) -> PortError {
    PortError::Validation(format!("{what}: {e}"))
}

fn tags(map: &BTreeMap<String, String>) -> Result<Vec<Tag>, PortError> {
    map.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| build_err("tag", e))
        })
        .collect()
}

/// One `{ "equals": {..} }` or `{ "notEquals": {..} }` map out of the JSON filter.
fn string_map(v: &serde_json::Value, field: &str) -> Result<HashMap<String, String>, PortError> {
    let obj = v.as_object().ok_or_else(|| {
        PortError::Validation(format!("requestMetadataFilters.{field} must be an object"))
    })?;
    obj.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => Ok((k.clone(), s.to_string())),
            None => Err(PortError::Validation(format!(
                "requestMetadataFilters.{field}.{k} must be a string"
            ))),
        })
        .collect()
}

/// Converts the JSON union kept on the run (`{"equals":{..}}`, `{"notEquals":{..}}`,
/// `{"andAll":[..]}`, `{"orAll":[..]}`) into the SDK's union. Bedrock checks cardinalities itself.
pub fn request_metadata_filters(
    v: &serde_json::Value,
) -> Result<RequestMetadataFilters, PortError> {
    let obj = v.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
        PortError::Validation(
            "requestMetadataFilters must be an object with exactly one of equals, notEquals, andAll, orAll"
                .into(),
        )
    })?;
    let (op, arg) = obj.iter().next().expect("len checked");
    let base_list =
        |arg: &serde_json::Value| -> Result<Vec<RequestMetadataBaseFilters>, PortError> {
            let items = arg.as_array().ok_or_else(|| {
                PortError::Validation(format!("requestMetadataFilters.{op} must be a list"))
            })?;
            items
                .iter()
                .map(|item| {
                    let mut b = RequestMetadataBaseFilters::builder();
                    if let Some(eq) = item.get("equals") {
                        b = b.set_equals(Some(string_map(eq, "equals")?));
                    }
                    if let Some(ne) = item.get("notEquals") {
                        b = b.set_not_equals(Some(string_map(ne, "notEquals")?));
                    }
                    Ok(b.build())
                })
                .collect()
        };
    match op.as_str() {
        "equals" => Ok(RequestMetadataFilters::Equals(string_map(arg, "equals")?)),
        "notEquals" => Ok(RequestMetadataFilters::NotEquals(string_map(
            arg,
            "notEquals",
        )?)),
        "andAll" => Ok(RequestMetadataFilters::AndAll(base_list(arg)?)),
        "orAll" => Ok(RequestMetadataFilters::OrAll(base_list(arg)?)),
        other => Err(PortError::Validation(format!(
            "requestMetadataFilters: unknown operator '{other}' (expected equals, notEquals, andAll, orAll)"
        ))),
    }
}

fn training_data_config(data: &TrainingData) -> Result<TrainingDataConfig, PortError> {
    Ok(match data {
        TrainingData::S3 { s3_uri } => TrainingDataConfig::builder().s3_uri(s3_uri).build(),
        TrainingData::InvocationLogs {
            s3_uri,
            use_prompt_response,
            request_metadata_filters: filters,
        } => {
            let filters = filters.as_ref().map(request_metadata_filters).transpose()?;
            TrainingDataConfig::builder()
                .invocation_logs_config(
                    InvocationLogsConfig::builder()
                        .use_prompt_response(*use_prompt_response)
                        .invocation_log_source(InvocationLogSource::S3Uri(s3_uri.clone()))
                        .set_request_metadata_filters(filters)
                        .build(),
                )
                .build()
        }
    })
}

fn job_status(s: Option<&ModelCustomizationJobStatus>) -> Result<JobStatus, PortError> {
    Ok(match s {
        Some(ModelCustomizationJobStatus::InProgress) => JobStatus::InProgress,
        Some(ModelCustomizationJobStatus::Completed) => JobStatus::Completed,
        Some(ModelCustomizationJobStatus::Failed) => JobStatus::Failed,
        Some(ModelCustomizationJobStatus::Stopping) => JobStatus::Stopping,
        Some(ModelCustomizationJobStatus::Stopped) => JobStatus::Stopped,
        other => {
            return Err(PortError::Other(format!(
                "GetModelCustomizationJob returned an unknown status {other:?}"
            )))
        }
    })
}

fn sub_status(s: Option<&JobStatusDetails>) -> Option<String> {
    s.map(|s| s.as_str().to_string())
}

fn throughput_status(s: &ProvisionedModelStatus) -> Result<ThroughputStatus, PortError> {
    Ok(match s {
        ProvisionedModelStatus::Creating => ThroughputStatus::Creating,
        ProvisionedModelStatus::InService => ThroughputStatus::InService,
        ProvisionedModelStatus::Updating => ThroughputStatus::Updating,
        ProvisionedModelStatus::Failed => ThroughputStatus::Failed,
        other => {
            return Err(PortError::Other(format!(
                "GetProvisionedModelThroughput returned an unknown status {other:?}"
            )))
        }
    })
}

fn deployment_status(
    s: &CustomModelDeploymentStatus,
    op: &str,
) -> Result<DeploymentStatus, PortError> {
    Ok(match s {
        CustomModelDeploymentStatus::Creating => DeploymentStatus::Creating,
        CustomModelDeploymentStatus::Active => DeploymentStatus::Active,
        CustomModelDeploymentStatus::Failed => DeploymentStatus::Failed,
        other => {
            return Err(PortError::Other(format!(
                "{op} returned an unknown status {other:?}"
            )))
        }
    })
}

#[async_trait]
impl CustomizationService for BedrockCustomizationService {
    async fn create_distillation_job(
        &self,
        req: &DistillationJobRequest,
    ) -> Result<String, PortError> {
        let teacher = TeacherModelConfig::builder()
            .teacher_model_identifier(&req.teacher)
            .max_response_length_for_inference(i32::try_from(req.max_response_length).map_err(
                |_| build_err("maxResponseLengthForInference", "does not fit in 32 bits"),
            )?)
            .build()
            .map_err(|e| build_err("teacherModelConfig", e))?;
        let output = OutputDataConfig::builder()
            .s3_uri(&req.output_s3_uri)
            .build()
            .map_err(|e| build_err("outputDataConfig", e))?;
        let out = self
            .client
            .create_model_customization_job()
            .job_name(&req.job_name)
            .custom_model_name(&req.custom_model_name)
            .role_arn(&req.role_arn)
            .client_request_token(&req.client_request_token)
            .base_model_identifier(&req.student)
            .customization_type(CustomizationType::Distillation)
            .customization_config(CustomizationConfig::DistillationConfig(
                DistillationConfig::builder()
                    .teacher_model_config(teacher)
                    .build(),
            ))
            .training_data_config(training_data_config(&req.training_data)?)
            .output_data_config(output)
            .set_job_tags(Some(tags(&req.job_tags)?).filter(|t| !t.is_empty()))
            .set_custom_model_tags(Some(tags(&req.custom_model_tags)?).filter(|t| !t.is_empty()))
            .set_custom_model_kms_key_id(req.custom_model_kms_key_id.clone())
            .send()
            .await
            .map_err(|e| port_error(&format!("CreateModelCustomizationJob {}", req.job_name), e))?;
        Ok(out.job_arn().to_string())
    }

    async fn get_job(&self, job: &str) -> Result<JobState, PortError> {
        let out = self
            .client
            .get_model_customization_job()
            .job_identifier(job)
            .send()
            .await
            .map_err(|e| port_error(&format!("GetModelCustomizationJob {job}"), e))?;
        let details = out.status_details();
        Ok(JobState {
            job_arn: out.job_arn().to_string(),
            status: job_status(out.status())?,
            validation: sub_status(
                details
                    .and_then(|d| d.validation_details())
                    .and_then(|d| d.status()),
            ),
            data_processing: sub_status(
                details
                    .and_then(|d| d.data_processing_details())
                    .and_then(|d| d.status()),
            ),
            training: sub_status(
                details
                    .and_then(|d| d.training_details())
                    .and_then(|d| d.status()),
            ),
            failure_message: out.failure_message().map(str::to_string),
            output_model_arn: out.output_model_arn().map(str::to_string),
            output_model_name: Some(out.output_model_name().to_string()).filter(|n| !n.is_empty()),
        })
    }

    async fn stop_job(&self, job: &str) -> Result<(), PortError> {
        self.client
            .stop_model_customization_job()
            .job_identifier(job)
            .send()
            .await
            .map_err(|e| port_error(&format!("StopModelCustomizationJob {job}"), e))?;
        Ok(())
    }

    async fn create_provisioned_throughput(
        &self,
        req: &ThroughputRequest,
    ) -> Result<String, PortError> {
        // Omitting commitmentDuration is how Bedrock spells "no commitment".
        let commitment = match req.commitment {
            Commitment::None => None,
            Commitment::OneMonth => Some(CommitmentDuration::OneMonth),
            Commitment::SixMonths => Some(CommitmentDuration::SixMonths),
        };
        let units = i32::try_from(req.model_units)
            .map_err(|_| build_err("modelUnits", "does not fit in 32 bits"))?;
        let out = self
            .client
            .create_provisioned_model_throughput()
            .provisioned_model_name(&req.provisioned_model_name)
            .model_id(&req.model_id)
            .model_units(units)
            .set_commitment_duration(commitment)
            .client_request_token(&req.client_request_token)
            .set_tags(Some(tags(&req.tags)?).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| {
                port_error(
                    &format!(
                        "CreateProvisionedModelThroughput {}",
                        req.provisioned_model_name
                    ),
                    e,
                )
            })?;
        Ok(out.provisioned_model_arn().to_string())
    }

    async fn get_provisioned_throughput(&self, id: &str) -> Result<ThroughputState, PortError> {
        let out = self
            .client
            .get_provisioned_model_throughput()
            .provisioned_model_id(id)
            .send()
            .await
            .map_err(|e| port_error(&format!("GetProvisionedModelThroughput {id}"), e))?;
        Ok(ThroughputState {
            provisioned_model_arn: out.provisioned_model_arn().to_string(),
            status: throughput_status(out.status())?,
            failure_message: out.failure_message().map(str::to_string),
            model_units: u32::try_from(out.model_units()).unwrap_or(0),
        })
    }

    async fn delete_provisioned_throughput(&self, id: &str) -> Result<(), PortError> {
        self.client
            .delete_provisioned_model_throughput()
            .provisioned_model_id(id)
            .send()
            .await
            .map_err(|e| port_error(&format!("DeleteProvisionedModelThroughput {id}"), e))?;
        Ok(())
    }

    async fn create_custom_model_deployment(
        &self,
        req: &DeploymentRequest,
    ) -> Result<String, PortError> {
        let out = self
            .client
            .create_custom_model_deployment()
            .model_deployment_name(&req.deployment_name)
            .model_arn(&req.model_arn)
            .set_description(req.description.clone())
            .client_request_token(&req.client_request_token)
            .set_tags(Some(tags(&req.tags)?).filter(|t| !t.is_empty()))
            .send()
            .await
            .map_err(|e| {
                port_error(
                    &format!("CreateCustomModelDeployment {}", req.deployment_name),
                    e,
                )
            })?;
        Ok(out.custom_model_deployment_arn().to_string())
    }

    async fn get_custom_model_deployment(&self, id: &str) -> Result<DeploymentState, PortError> {
        let out = self
            .client
            .get_custom_model_deployment()
            .custom_model_deployment_identifier(id)
            .send()
            .await
            .map_err(|e| port_error(&format!("GetCustomModelDeployment {id}"), e))?;
        Ok(DeploymentState {
            deployment_arn: out.custom_model_deployment_arn().to_string(),
            deployment_name: out.model_deployment_name().to_string(),
            model_arn: out.model_arn().to_string(),
            status: deployment_status(out.status(), "GetCustomModelDeployment")?,
            failure_message: out.failure_message().map(str::to_string),
            created_at: Some(utc(out.created_at())),
        })
    }

    async fn delete_custom_model_deployment(&self, id: &str) -> Result<(), PortError> {
        self.client
            .delete_custom_model_deployment()
            .custom_model_deployment_identifier(id)
            .send()
            .await
            .map_err(|e| port_error(&format!("DeleteCustomModelDeployment {id}"), e))?;
        Ok(())
    }

    async fn list_custom_model_deployments(&self) -> Result<Vec<DeploymentState>, PortError> {
        const OP: &str = "ListCustomModelDeployments";
        all_pages(OP, |token| async move {
            let page = self
                .client
                .list_custom_model_deployments()
                .max_results(LIST_PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| port_error(OP, e))?;
            let items = page
                .model_deployment_summaries()
                .iter()
                .map(|d| {
                    Ok(DeploymentState {
                        deployment_arn: d.custom_model_deployment_arn().to_string(),
                        deployment_name: d.custom_model_deployment_name().to_string(),
                        model_arn: d.model_arn().to_string(),
                        status: deployment_status(d.status(), OP)?,
                        failure_message: d.failure_message().map(str::to_string),
                        created_at: Some(utc(d.created_at())),
                    })
                })
                .collect::<Result<Vec<_>, PortError>>()?;
            Ok((items, page.next_token().map(str::to_string)))
        })
        .await
    }

    async fn list_jobs(&self, status: Option<JobStatus>) -> Result<Vec<JobSummary>, PortError> {
        const OP: &str = "ListModelCustomizationJobs";
        all_pages(OP, |token| async move {
            let page = self
                .client
                .list_model_customization_jobs()
                .set_status_equals(status.map(sdk_job_status))
                .max_results(LIST_PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| port_error(OP, e))?;
            let items = page
                .model_customization_job_summaries()
                .iter()
                .map(|j| {
                    Ok(JobSummary {
                        job_arn: j.job_arn().to_string(),
                        job_name: j.job_name().to_string(),
                        status: job_status(Some(j.status()))?,
                        created_at: utc(j.creation_time()),
                        custom_model_arn: j.custom_model_arn().map(str::to_string),
                    })
                })
                .collect::<Result<Vec<_>, PortError>>()?;
            Ok((items, page.next_token().map(str::to_string)))
        })
        .await
    }

    async fn list_provisioned_throughputs(&self) -> Result<Vec<ThroughputSummary>, PortError> {
        const OP: &str = "ListProvisionedModelThroughputs";
        all_pages(OP, |token| async move {
            let page = self
                .client
                .list_provisioned_model_throughputs()
                .max_results(LIST_PAGE_SIZE)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| port_error(OP, e))?;
            let items = page
                .provisioned_model_summaries()
                .iter()
                .map(|p| {
                    Ok(ThroughputSummary {
                        provisioned_model_arn: p.provisioned_model_arn().to_string(),
                        provisioned_model_name: p.provisioned_model_name().to_string(),
                        status: throughput_status(p.status())?,
                        model_arn: p.model_arn().to_string(),
                        model_units: u32::try_from(p.model_units()).unwrap_or(0),
                        commitment_expires_at: p.commitment_expiration_time().map(utc),
                        created_at: utc(p.creation_time()),
                    })
                })
                .collect::<Result<Vec<_>, PortError>>()?;
            Ok((items, page.next_token().map(str::to_string)))
        })
        .await
    }

    async fn list_tags(&self, resource_arn: &str) -> Result<BTreeMap<String, String>, PortError> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(resource_arn)
            .send()
            .await
            .map_err(|e| port_error(&format!("ListTagsForResource {resource_arn}"), e))?;
        Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_filters_convert_each_operator() {
        let f = request_metadata_filters(&json!({"equals": {"team": "support"}})).unwrap();
        assert_eq!(f.as_equals().unwrap()["team"], "support");
        let f = request_metadata_filters(
            &json!({"orAll": [{"equals": {"a": "1"}}, {"notEquals": {"b": "2"}}]}),
        )
        .unwrap();
        let all = f.as_or_all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].not_equals().unwrap()["b"], "2");
        let err = request_metadata_filters(&json!({"like": {"a": "1"}})).unwrap_err();
        assert!(err.to_string().contains("like"), "{err}");
        assert!(request_metadata_filters(&json!({"equals": {"a": 1}})).is_err());
    }
}
