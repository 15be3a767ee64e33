//! The model customization job operations: Create, Get, Stop, List.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::jobs::{Job, JobStatus};
use crate::validate::{self, check_tags, Fields, Violations};
use crate::wire::{short_id, ApiError, ErrorKind};

use super::{model_id_of, ApiSuccess, ListQuery, Sim};

impl Sim {
    // ---- model customization jobs ----

    pub(super) fn create_job(
        &mut self,
        region: &str,
        body: Map<String, Value>,
        now: DateTime<Utc>,
        data_failure: Option<String>,
    ) -> Result<ApiSuccess, ApiError> {
        let f = Fields::new(&body);
        let mut v = Violations::default();
        let job_name = f.required_string("jobName", &mut v);
        if let Some(n) = job_name {
            v.check("jobName", n, 1, 63, Some(&validate::JOB_NAME));
        }
        let model_name = f.required_string("customModelName", &mut v);
        if let Some(n) = model_name {
            v.check(
                "customModelName",
                n,
                1,
                63,
                Some(&validate::CUSTOM_MODEL_NAME),
            );
        }
        let role_arn = f.required_string("roleArn", &mut v);
        if let Some(r) = role_arn {
            v.check("roleArn", r, 0, 2048, Some(&validate::ROLE_ARN));
        }
        if let Some(k) = f.string("customModelKmsKeyId", &mut v) {
            v.check(
                "customModelKmsKeyId",
                k,
                1,
                2048,
                Some(&validate::KMS_KEY_ID),
            );
        }
        let base = f.required_string("baseModelIdentifier", &mut v);
        if let Some(b) = base {
            v.check("baseModelIdentifier", b, 1, 2048, None);
        }
        let token = f.string("clientRequestToken", &mut v);
        if let Some(t) = token {
            v.check(
                "clientRequestToken",
                t,
                1,
                256,
                Some(&validate::CLIENT_REQUEST_TOKEN),
            );
        }
        let customization_type = f
            .string("customizationType", &mut v)
            .unwrap_or("FINE_TUNING");
        v.check_enum(
            "customizationType",
            customization_type,
            &[
                "FINE_TUNING",
                "CONTINUED_PRE_TRAINING",
                "DISTILLATION",
                "REINFORCEMENT_FINE_TUNING",
            ],
        );
        let check_s3 = |v: &mut Violations, fields: &Fields<'_>, key: &str, required: bool| {
            let uri = if required {
                fields.required_string(key, v)
            } else {
                fields.string(key, v)
            };
            if let Some(u) = uri {
                v.check(&fields.path(key), u, 1, 1024, Some(&validate::S3_URI));
            }
        };
        match f.object("trainingDataConfig", &mut v) {
            None => v.missing("trainingDataConfig"),
            Some(t) => {
                check_s3(&mut v, &t, "s3Uri", false);
                if let Some(logs) = t.object("invocationLogsConfig", &mut v) {
                    match logs.object("invocationLogSource", &mut v) {
                        Some(src) => check_s3(&mut v, &src, "s3Uri", true),
                        None => v.missing(&logs.path("invocationLogSource")),
                    }
                } else if !t.has("s3Uri") {
                    v.push(
                        "Value at 'trainingDataConfig' failed to satisfy constraint: Member must contain s3Uri or invocationLogsConfig".into(),
                    );
                }
            }
        }
        if let Some(val) = f.object("validationDataConfig", &mut v) {
            for (i, item) in val
                .array("validators", &mut v)
                .into_iter()
                .flatten()
                .enumerate()
            {
                match item.as_object() {
                    Some(o) => {
                        let vf = Fields::new(o);
                        match vf.string("s3Uri", &mut v) {
                            Some(u) => v.check(
                                &format!("validationDataConfig.validators.{}.member.s3Uri", i + 1),
                                u,
                                1,
                                1024,
                                Some(&validate::S3_URI),
                            ),
                            None => v.missing(&format!(
                                "validationDataConfig.validators.{}.member.s3Uri",
                                i + 1
                            )),
                        }
                    }
                    None => v.push(format!(
                        "Value at 'validationDataConfig.validators.{}.member' must be an object",
                        i + 1
                    )),
                }
            }
        }
        match f.object("outputDataConfig", &mut v) {
            None => v.missing("outputDataConfig"),
            Some(o) => check_s3(&mut v, &o, "s3Uri", true),
        }
        let mut teacher: Option<(String, Option<i64>)> = None;
        let mut distillation_given = false;
        if let Some(cc) = f.object("customizationConfig", &mut v) {
            if let Some(dc) = cc.object("distillationConfig", &mut v) {
                distillation_given = true;
                if let Some(tc) = dc.object("teacherModelConfig", &mut v) {
                    let id = tc.required_string("teacherModelIdentifier", &mut v);
                    if let Some(id) = id {
                        v.check(&tc.path("teacherModelIdentifier"), id, 1, 2048, None);
                    }
                    let max_len = tc.integer("maxResponseLengthForInference", &mut v);
                    if let Some(m) = max_len.filter(|m| *m < 1) {
                        v.push(format!(
                            "Value '{m}' at '{}' failed to satisfy constraint: Member must have value greater than or equal to 1",
                            tc.path("maxResponseLengthForInference")
                        ));
                    }
                    teacher = id.map(|i| (i.to_string(), max_len));
                }
            }
        }
        if let Some(Err(e)) = crate::invocation_logs::LogQuery::from_request(&body) {
            v.push(e);
        }
        let tag_count =
            check_tags(&f, "jobTags", &mut v).max(check_tags(&f, "customModelTags", &mut v));
        v.into_result()?;
        let (job_name, model_name, role_arn, base) = (
            job_name.unwrap_or_default(),
            model_name.unwrap_or_default(),
            role_arn.unwrap_or_default(),
            base.unwrap_or_default(),
        );
        if tag_count > 200 {
            return Err(ApiError::new(
                ErrorKind::TooManyTags,
                format!("Too many tags: {tag_count} given, at most 200 are allowed"),
            ));
        }

        // Distillation rules.
        let student = model_id_of(base);
        if customization_type == "DISTILLATION" {
            let Some((teacher_id, _)) = &teacher else {
                return Err(ApiError::validation(
                    "customizationConfig.distillationConfig.teacherModelConfig is required when customizationType is DISTILLATION",
                ));
            };
            let teacher_id = model_id_of(teacher_id);
            let pair = self
                .config
                .catalog
                .check_pair(teacher_id, student)
                .map_err(|e| ApiError::validation(format!("Unsupported distillation pair: {e}")))?;
            if pair.region != region {
                return Err(ApiError::validation(format!(
                    "Distillation from teacher '{teacher_id}' is not available in region {region} (it is offered in {})",
                    pair.region
                )));
            }
        } else if distillation_given {
            return Err(ApiError::validation(format!(
                "customizationConfig.distillationConfig is only valid when customizationType is DISTILLATION, not {customization_type}"
            )));
        }

        // Idempotency: the same token with the same request is the same job.
        if let Some(t) = token {
            if let Some(existing) = self
                .jobs
                .iter()
                .find(|j| j.client_request_token.as_deref() == Some(t))
            {
                if existing.request == body {
                    return Ok(ApiSuccess {
                        status: StatusCode::CREATED,
                        body: Some(json!({ "jobArn": existing.arn })),
                        resource_arn: Some(existing.arn.clone()),
                    });
                }
                return Err(ApiError::conflict(format!(
                    "The clientRequestToken '{t}' was already used for job '{}' with different parameters",
                    existing.name
                )));
            }
        }
        if self.jobs.iter().any(|j| j.name == job_name) {
            return Err(ApiError::validation(format!(
                "The provided job name is currently in use: a model customization job named '{job_name}' already exists"
            )));
        }
        if self.jobs.iter().any(|j| {
            j.custom_model_name == model_name
                && !matches!(
                    j.view(j.elapsed_ms(now)).status,
                    JobStatus::Failed | JobStatus::Stopped
                )
        }) {
            return Err(ApiError::validation(format!(
                "A custom model named '{model_name}' already exists or is being created"
            )));
        }
        if let Some(max) = self.config.max_in_progress_jobs {
            let active = self
                .jobs
                .iter()
                .filter(|j| !j.view(j.elapsed_ms(now)).status.is_terminal())
                .count();
            if active >= max {
                return Err(ApiError::new(
                    ErrorKind::ServiceQuotaExceeded,
                    format!(
                        "You have reached the quota of {max} model customization jobs in progress"
                    ),
                ));
            }
        }

        let account = &self.config.account_id;
        let arn = format!(
            "arn:aws:bedrock:{region}:{account}:model-customization-job/{student}/{}",
            short_id()
        );
        let job = Job {
            custom_model_arn: format!(
                "arn:aws:bedrock:{region}:{account}:custom-model/{student}/{}",
                short_id()
            ),
            base_model_arn: format!("arn:aws:bedrock:{region}::foundation-model/{student}"),
            name: job_name.to_string(),
            custom_model_name: model_name.to_string(),
            role_arn: role_arn.to_string(),
            client_request_token: token.map(str::to_string),
            customization_type: customization_type.to_string(),
            // An injected failure first; else too few records in its invocation logs, which Bedrock
            // finds while validating the data.
            failure: self
                .faults
                .take_job_failure(job_name)
                .or(data_failure.map(|m| (crate::faults::Phase::Validation, m))),
            created_at: now,
            timing: self.config.timing,
            stop_at_ms: None,
            hangs: self.faults.take_job_hang(job_name),
            announced: 0,
            request: body,
            arn: arn.clone(),
        };
        tracing::info!(job = %job.name, arn = %arn, failing = job.failure.is_some(), "job created");
        self.jobs.push(job);
        Ok(ApiSuccess {
            status: StatusCode::CREATED,
            body: Some(json!({ "jobArn": arn })),
            resource_arn: Some(arn),
        })
    }

    pub(super) fn find_job(&self, identifier: &str) -> Result<&Job, ApiError> {
        let i = self.job_index(identifier)?;
        Ok(&self.jobs[i])
    }

    pub(super) fn job_index(&self, identifier: &str) -> Result<usize, ApiError> {
        let mut v = Violations::default();
        v.check(
            "jobIdentifier",
            identifier,
            0,
            1011,
            Some(&validate::JOB_IDENTIFIER),
        );
        v.into_result()?;
        self.jobs
            .iter()
            .position(|j| j.arn == identifier || j.name == identifier)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Model customization job '{identifier}' was not found"
                ))
            })
    }

    pub(super) fn stop_job(
        &mut self,
        identifier: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let i = self.job_index(identifier)?;
        let job = &mut self.jobs[i];
        let elapsed = job.elapsed_ms(now);
        let status = job.view(elapsed).status;
        if status != JobStatus::InProgress {
            return Err(ApiError::conflict(format!(
                "Job '{}' cannot be stopped: its status is {}",
                job.name,
                status.as_str()
            )));
        }
        job.stop_at_ms = Some(elapsed);
        Ok(ApiSuccess {
            status: StatusCode::OK,
            body: None,
            resource_arn: Some(job.arn.clone()),
        })
    }

    pub(super) fn list_jobs(
        &self,
        query: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let q = ListQuery::parse(query, &JobStatus::NAMES)?;
        let mut jobs: Vec<&Job> = self
            .jobs
            .iter()
            .filter(|j| q.admits(&j.name, j.created_at))
            .filter(|j| {
                q.status
                    .as_deref()
                    .is_none_or(|s| j.view(j.elapsed_ms(now)).status.as_str() == s)
            })
            .collect();
        jobs.sort_by_key(|j| j.created_at);
        if q.descending {
            jobs.reverse();
        }
        let (page, next) = q.page(&jobs);
        let mut out = json!({
            "modelCustomizationJobSummaries": page.iter().map(|j| j.summary(now)).collect::<Vec<_>>(),
        });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(ApiSuccess::ok(out))
    }
}
