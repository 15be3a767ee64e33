//! The Provisioned Throughput operations: Create, Get, Delete, List.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::jobs::JobStatus;
use crate::throughput::Throughput;
use crate::validate::{self, check_tags, Fields, Violations};
use crate::wire::{short_id, timestamp, ApiError, ErrorKind};

use super::{model_id_of, ApiSuccess, ListQuery, Sim};

impl Sim {
    // ---- provisioned throughput ----

    pub(super) fn create_throughput(
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
    pub(super) fn resolve_model(
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

    pub(super) fn throughput_index(&self, identifier: &str) -> Result<usize, ApiError> {
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

    pub(super) fn find_throughput(&self, identifier: &str) -> Result<&Throughput, ApiError> {
        Ok(&self.throughputs[self.throughput_index(identifier)?])
    }

    pub(super) fn delete_throughput(
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

    pub(super) fn list_throughputs(
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
