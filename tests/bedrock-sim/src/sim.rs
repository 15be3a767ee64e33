//! The simulator's state and the semantics of each operation, independent of HTTP.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use distillery_core::domain::catalog::ModelCatalog;
use serde_json::{json, Map, Value};

use crate::calls::CallRecord;
use crate::faults::FaultBook;
use crate::jobs::{Job, JobStatus, Timing};
use crate::throughput::Throughput;
use crate::validate::{self, check_tags, Fields, Violations};
use crate::wire::{short_id, timestamp, ApiError, ErrorKind, Operation};

/// Everything a simulator instance is configured with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Region used for ARNs when a request is not SigV4-signed (signed requests use their own region).
    pub region: String,
    pub account_id: String,
    pub timing: Timing,
    /// Supported teacher → student pairs (the launcher's data file, `ModelCatalog::load()`).
    pub catalog: ModelCatalog,
    /// A real account quota: at most this many jobs InProgress/Stopping at once (None = unlimited).
    pub max_in_progress_jobs: Option<usize>,
    /// When true (default), CreateProvisionedModelThroughput needs a custom model that a Completed
    /// job in this simulator produced (or a foundation model id); otherwise ResourceNotFoundException.
    pub strict_model_ids: bool,
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            timing: Timing::default(),
            catalog: ModelCatalog::load().unwrap_or_else(|_| ModelCatalog::builtin()),
            max_in_progress_jobs: None,
            strict_model_ids: true,
            port: 0,
        }
    }
}

/// One API call as the HTTP layer hands it over.
pub struct ApiRequest {
    pub op: Operation,
    pub region: String,
    /// The decoded `{jobIdentifier}` / `{provisionedModelId}` path label.
    pub id: Option<String>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct ApiSuccess {
    pub status: StatusCode,
    /// None = empty body.
    pub body: Option<Value>,
    pub resource_arn: Option<String>,
}

impl ApiSuccess {
    fn ok(body: Value) -> Self {
        ApiSuccess {
            status: StatusCode::OK,
            body: Some(body),
            resource_arn: None,
        }
    }
}

pub struct Sim {
    pub config: SimConfig,
    jobs: Vec<Job>,
    throughputs: Vec<Throughput>,
    pub faults: FaultBook,
    pub calls: Vec<CallRecord>,
    seq: u64,
}

/// The model id inside a Bedrock model ARN (`...:foundation-model/<id>`), or the id itself.
fn model_id_of(identifier: &str) -> &str {
    if identifier.starts_with("arn:") {
        identifier
            .split_once('/')
            .map(|(_, id)| id)
            .unwrap_or(identifier)
    } else {
        identifier
    }
}

fn parse_body(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::new(
            ErrorKind::Serialization,
            "Request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            ErrorKind::Serialization,
            format!("Request body is not valid JSON: {e}"),
        )),
    }
}

/// The request fields worth keeping in the call log.
fn key_fields(req: &ApiRequest) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("region".into(), json!(req.region));
    if let Some(id) = &req.id {
        let key = match req.op {
            Operation::GetProvisionedModelThroughput
            | Operation::DeleteProvisionedModelThroughput => "provisionedModelId",
            _ => "jobIdentifier",
        };
        out.insert(key.into(), json!(id));
    }
    for (k, v) in &req.query {
        out.insert(k.clone(), json!(v));
    }
    if let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&req.body) {
        for key in [
            "jobName",
            "customModelName",
            "baseModelIdentifier",
            "customizationType",
            "clientRequestToken",
            "provisionedModelName",
            "modelId",
            "modelUnits",
            "commitmentDuration",
        ] {
            if let Some(v) = body.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        let teacher =
            "/customizationConfig/distillationConfig/teacherModelConfig/teacherModelIdentifier";
        if let Some(t) = Value::Object(body.clone()).pointer(teacher) {
            out.insert("teacherModelIdentifier".into(), t.clone());
        }
        if let Some(uri) = body.get("trainingDataConfig").and_then(|t| t.get("s3Uri")) {
            out.insert("trainingDataS3Uri".into(), uri.clone());
        }
    }
    out
}

impl Sim {
    pub fn new(config: SimConfig) -> Self {
        Sim {
            config,
            jobs: Vec::new(),
            throughputs: Vec::new(),
            faults: FaultBook::default(),
            calls: Vec::new(),
            seq: 0,
        }
    }

    /// Forgets all jobs, Provisioned Throughputs, faults and calls.
    pub fn reset(&mut self) {
        self.jobs.clear();
        self.throughputs.clear();
        self.faults.clear();
        self.calls.clear();
        self.seq = 0;
    }

    /// Answers one API call: injected fault, or the operation itself; then logs it.
    pub fn handle(&mut self, req: &ApiRequest) -> Result<ApiSuccess, ApiError> {
        let now = Utc::now();
        let result = match self.faults.take_call_fault(req.op) {
            Some(err) => Err(err),
            None => self.dispatch(req, now),
        };
        self.seq += 1;
        let (status, error_type, error_message, resource_arn) = match &result {
            Ok(s) => (s.status.as_u16(), None, None, s.resource_arn.clone()),
            Err(e) => (
                e.kind.status().as_u16(),
                Some(e.kind.type_name().to_string()),
                Some(e.message.clone()),
                None,
            ),
        };
        self.calls.push(CallRecord {
            seq: self.seq,
            time: timestamp(now),
            operation: req.op.name().to_string(),
            request: key_fields(req),
            status,
            error_type,
            error_message,
            resource_arn,
        });
        result
    }

    /// Logs a request to a route the simulator does not serve.
    pub fn log_unknown(&mut self, method: &str, path: &str, err: &ApiError) {
        self.seq += 1;
        let mut request = Map::new();
        request.insert("method".into(), json!(method));
        request.insert("path".into(), json!(path));
        self.calls.push(CallRecord {
            seq: self.seq,
            time: timestamp(Utc::now()),
            operation: "Unknown".into(),
            request,
            status: err.kind.status().as_u16(),
            error_type: Some(err.kind.type_name().into()),
            error_message: Some(err.message.clone()),
            resource_arn: None,
        });
    }

    fn dispatch(&mut self, req: &ApiRequest, now: DateTime<Utc>) -> Result<ApiSuccess, ApiError> {
        let id = req.id.as_deref().unwrap_or_default();
        match req.op {
            Operation::CreateModelCustomizationJob => {
                let body = parse_body(&req.body)?;
                self.create_job(&req.region, body, now)
            }
            Operation::GetModelCustomizationJob => {
                let job = self.find_job(id)?;
                Ok(ApiSuccess::ok(job.describe(now)))
            }
            Operation::ListModelCustomizationJobs => self.list_jobs(&req.query, now),
            Operation::StopModelCustomizationJob => self.stop_job(id, now),
            Operation::CreateProvisionedModelThroughput => {
                let body = parse_body(&req.body)?;
                self.create_throughput(&req.region, body, now)
            }
            Operation::GetProvisionedModelThroughput => {
                let pt = self.find_throughput(id)?;
                Ok(ApiSuccess::ok(pt.describe(now)))
            }
            Operation::DeleteProvisionedModelThroughput => self.delete_throughput(id, now),
            Operation::ListProvisionedModelThroughputs => self.list_throughputs(&req.query, now),
        }
    }

    // ---- model customization jobs ----

    fn create_job(
        &mut self,
        region: &str,
        body: Map<String, Value>,
        now: DateTime<Utc>,
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
            failure: self.faults.take_job_failure(job_name),
            created_at: now,
            timing: self.config.timing,
            stop_at_ms: None,
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

    fn find_job(&self, identifier: &str) -> Result<&Job, ApiError> {
        let i = self.job_index(identifier)?;
        Ok(&self.jobs[i])
    }

    fn job_index(&self, identifier: &str) -> Result<usize, ApiError> {
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

    fn stop_job(&mut self, identifier: &str, now: DateTime<Utc>) -> Result<ApiSuccess, ApiError> {
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

    fn list_jobs(
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

    // ---- provisioned throughput ----

    fn create_throughput(
        &mut self,
        region: &str,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let f = Fields::new(&body);
        let mut v = Violations::default();
        let name = f.required_string("provisionedModelName", &mut v);
        if let Some(n) = name {
            v.check(
                "provisionedModelName",
                n,
                1,
                63,
                Some(&validate::PROVISIONED_MODEL_NAME),
            );
        }
        let model_id = f.required_string("modelId", &mut v);
        if let Some(m) = model_id {
            v.check("modelId", m, 1, 2048, None);
        }
        let units = f.integer("modelUnits", &mut v);
        match units {
            None if !f.has("modelUnits") => v.missing("modelUnits"),
            Some(u) if u < 1 => v.push(format!(
                "Value '{u}' at 'modelUnits' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )),
            _ => {}
        }
        let commitment = f.string("commitmentDuration", &mut v);
        if let Some(c) = commitment {
            v.check_enum("commitmentDuration", c, &["OneMonth", "SixMonths"]);
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
        let tag_count = check_tags(&f, "tags", &mut v);
        v.into_result()?;
        let (name, model_id, units) = (
            name.unwrap_or_default(),
            model_id.unwrap_or_default(),
            units.unwrap_or(1),
        );
        if tag_count > 200 {
            return Err(ApiError::new(
                ErrorKind::TooManyTags,
                format!("Too many tags: {tag_count} given, at most 200 are allowed"),
            ));
        }
        if let Some(t) = token {
            if let Some(existing) = self
                .throughputs
                .iter()
                .find(|p| p.client_request_token.as_deref() == Some(t))
            {
                if existing.request == body {
                    return Ok(ApiSuccess {
                        status: StatusCode::CREATED,
                        body: Some(json!({ "provisionedModelArn": existing.arn })),
                        resource_arn: Some(existing.arn.clone()),
                    });
                }
                // CreateProvisionedModelThroughput does not declare ConflictException.
                return Err(ApiError::validation(format!(
                    "The clientRequestToken '{t}' was already used for Provisioned Throughput '{}' with different parameters",
                    existing.name
                )));
            }
        }
        if self.throughputs.iter().any(|p| p.name == name) {
            return Err(ApiError::validation(format!(
                "A Provisioned Throughput named '{name}' already exists"
            )));
        }
        let (model_arn, foundation_model_arn) = self.resolve_model(region, model_id, now)?;
        let arn = format!(
            "arn:aws:bedrock:{region}:{}:provisioned-model/{}",
            self.config.account_id,
            short_id()
        );
        let pt = Throughput {
            arn: arn.clone(),
            name: name.to_string(),
            model_arn,
            foundation_model_arn,
            model_units: units,
            commitment: commitment.map(str::to_string),
            client_request_token: token.map(str::to_string),
            failure: self.faults.take_throughput_failure(name),
            request: body,
            created_at: now,
            pt_ms: self.config.timing.pt_ms,
        };
        tracing::info!(name = %pt.name, arn = %arn, failing = pt.failure.is_some(), "provisioned throughput created");
        self.throughputs.push(pt);
        Ok(ApiSuccess {
            status: StatusCode::CREATED,
            body: Some(json!({ "provisionedModelArn": arn })),
            resource_arn: Some(arn),
        })
    }

    /// The model ARN and its foundation model ARN for a `modelId`: a custom model (name or ARN) that a
    /// Completed job produced, or a foundation model (id or ARN).
    fn resolve_model(
        &self,
        region: &str,
        model_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, String), ApiError> {
        let is_custom = model_id.contains(":custom-model/")
            || (!model_id.starts_with("arn:") && !model_id.contains('.'));
        if !is_custom {
            let id = model_id_of(model_id);
            let arn = format!("arn:aws:bedrock:{region}::foundation-model/{id}");
            return Ok((arn.clone(), arn));
        }
        let produced = self.jobs.iter().find(|j| {
            (j.custom_model_arn == model_id || j.custom_model_name == model_id)
                && j.view(j.elapsed_ms(now)).status == JobStatus::Completed
        });
        if let Some(job) = produced {
            return Ok((job.custom_model_arn.clone(), job.base_model_arn.clone()));
        }
        if self.config.strict_model_ids {
            return Err(ApiError::not_found(format!(
                "The custom model '{model_id}' was not found (no Completed job in this simulator produced it)"
            )));
        }
        // Lenient mode: trust the caller; take the base model from the ARN's middle segment.
        let base = model_id
            .split('/')
            .nth(1)
            .filter(|_| model_id.starts_with("arn:"))
            .unwrap_or("unknown");
        let arn = if model_id.starts_with("arn:") {
            model_id.to_string()
        } else {
            format!(
                "arn:aws:bedrock:{region}:{}:custom-model/{base}/{}",
                self.config.account_id,
                short_id()
            )
        };
        Ok((
            arn,
            format!("arn:aws:bedrock:{region}::foundation-model/{base}"),
        ))
    }

    fn throughput_index(&self, identifier: &str) -> Result<usize, ApiError> {
        let mut v = Violations::default();
        v.check(
            "provisionedModelId",
            identifier,
            1,
            2048,
            Some(&validate::PROVISIONED_MODEL_ID),
        );
        v.into_result()?;
        self.throughputs
            .iter()
            .position(|p| p.arn == identifier || p.name == identifier)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Provisioned Throughput '{identifier}' was not found"
                ))
            })
    }

    fn find_throughput(&self, identifier: &str) -> Result<&Throughput, ApiError> {
        Ok(&self.throughputs[self.throughput_index(identifier)?])
    }

    fn delete_throughput(
        &mut self,
        identifier: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let i = self.throughput_index(identifier)?;
        if let Some(expires) = self.throughputs[i].commitment_expiration() {
            if now < expires {
                return Err(ApiError::conflict(format!(
                    "Provisioned Throughput '{}' has a commitment term that ends {}; it cannot be deleted before then",
                    self.throughputs[i].name,
                    timestamp(expires)
                )));
            }
        }
        let pt = self.throughputs.remove(i);
        tracing::info!(name = %pt.name, "provisioned throughput deleted");
        Ok(ApiSuccess {
            status: StatusCode::OK,
            body: None,
            resource_arn: Some(pt.arn),
        })
    }

    fn list_throughputs(
        &self,
        query: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let q = ListQuery::parse(query, &["Creating", "InService", "Updating", "Failed"])?;
        let mut pts: Vec<&Throughput> = self
            .throughputs
            .iter()
            .filter(|p| q.admits(&p.name, p.created_at))
            .filter(|p| q.status.as_deref().is_none_or(|s| p.status(now) == s))
            .collect();
        pts.sort_by_key(|p| p.created_at);
        if q.descending {
            pts.reverse();
        }
        let (page, next) = q.page(&pts);
        let mut out = json!({
            "provisionedModelSummaries": page.iter().map(|p| p.summary(now)).collect::<Vec<_>>(),
        });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(ApiSuccess::ok(out))
    }
}

/// The query parameters shared by the List operations.
struct ListQuery {
    status: Option<String>,
    name_contains: Option<String>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    max_results: usize,
    offset: usize,
    descending: bool,
}

impl ListQuery {
    fn parse(query: &[(String, String)], statuses: &[&str]) -> Result<Self, ApiError> {
        let mut v = Violations::default();
        let mut q = ListQuery {
            status: None,
            name_contains: None,
            after: None,
            before: None,
            max_results: 1000,
            offset: 0,
            descending: true,
        };
        let time = |v: &mut Violations, key: &str, s: &str| match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                v.push(format!(
                    "Value '{s}' at '{key}' failed to satisfy constraint: Member must be an RFC 3339 date-time"
                ));
                None
            }
        };
        for (key, value) in query {
            match key.as_str() {
                "statusEquals" => {
                    v.check_enum("statusEquals", value, statuses);
                    q.status = Some(value.clone());
                }
                "nameContains" => {
                    v.check("nameContains", value, 1, 63, None);
                    q.name_contains = Some(value.clone());
                }
                "maxResults" => match value.parse::<usize>() {
                    Ok(n @ 1..=1000) => q.max_results = n,
                    _ => v.push(format!(
                        "Value '{value}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 1000"
                    )),
                },
                "nextToken" => match value.strip_prefix("page-").and_then(|n| n.parse().ok()) {
                    Some(n) => q.offset = n,
                    None => return Err(ApiError::validation(format!("Invalid nextToken '{value}'"))),
                },
                "sortBy" => v.check_enum("sortBy", value, &["CreationTime"]),
                "sortOrder" => {
                    v.check_enum("sortOrder", value, &["Ascending", "Descending"]);
                    q.descending = value != "Ascending";
                }
                "creationTimeAfter" => q.after = time(&mut v, key, value),
                "creationTimeBefore" => q.before = time(&mut v, key, value),
                _ => {}
            }
        }
        v.into_result()?;
        Ok(q)
    }

    fn admits(&self, name: &str, created: DateTime<Utc>) -> bool {
        self.name_contains
            .as_deref()
            .is_none_or(|n| name.contains(n))
            && self.after.is_none_or(|a| created > a)
            && self.before.is_none_or(|b| created < b)
    }

    fn page<'a, T>(&self, items: &'a [T]) -> (&'a [T], Option<String>) {
        let start = self.offset.min(items.len());
        let end = (start + self.max_results).min(items.len());
        let next = (end < items.len()).then(|| format!("page-{end}"));
        (&items[start..end], next)
    }
}
