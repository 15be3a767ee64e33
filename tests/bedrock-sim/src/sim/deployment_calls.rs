//! The custom model deployment operations: Create, Get, Delete, List.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::deployment::{Deployment, DEPLOYMENT_STATUSES};
use crate::jobs::JobStatus;
use crate::validate::{self, check_tags, Fields, Violations};
use crate::wire::{short_id, ApiError, ErrorKind};

use super::{ApiSuccess, ListQuery, Sim};

impl Sim {
    /// How long a deployment created now stays Creating: its own setting, else the PT duration.
    fn deployment_ms(&self) -> u64 {
        self.config
            .deployment_ms
            .unwrap_or(self.config.timing.pt_ms)
    }

    pub(super) fn create_deployment(
        &mut self,
        region: &str,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let f = Fields::new(&body);
        let mut v = Violations::default();
        let name = f.required_string("modelDeploymentName", &mut v);
        if let Some(n) = name {
            v.check(
                "modelDeploymentName",
                n,
                1,
                63,
                Some(&validate::MODEL_DEPLOYMENT_NAME),
            );
        }
        let model_arn = f.required_string("modelArn", &mut v);
        if let Some(m) = model_arn {
            v.check("modelArn", m, 20, 1011, Some(&validate::CUSTOM_MODEL_ARN));
        }
        let description = f.string("description", &mut v);
        if let Some(d) = description {
            v.check("description", d, 1, 2048, None);
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
        let (name, model_arn) = (name.unwrap_or_default(), model_arn.unwrap_or_default());
        if tag_count > 200 {
            return Err(ApiError::new(
                ErrorKind::TooManyTags,
                format!("Too many tags: {tag_count} given, at most 200 are allowed"),
            ));
        }
        let accepted = |arn: &str| ApiSuccess {
            status: StatusCode::ACCEPTED,
            body: Some(json!({ "customModelDeploymentArn": arn })),
            resource_arn: Some(arn.to_string()),
        };
        if let Some(t) = token {
            if let Some(existing) = self
                .deployments
                .iter()
                .find(|d| d.client_request_token.as_deref() == Some(t))
            {
                if existing.request == body {
                    return Ok(accepted(&existing.arn));
                }
                // CreateCustomModelDeployment does not declare ConflictException in the API model.
                return Err(ApiError::validation(format!(
                    "The clientRequestToken '{t}' was already used for custom model deployment '{}' with different parameters",
                    existing.name
                )));
            }
        }
        if self.deployments.iter().any(|d| d.name == name) {
            // Again ValidationException: the only client error Create declares for a bad request.
            return Err(ApiError::validation(format!(
                "A custom model deployment named '{name}' already exists"
            )));
        }
        let produced = self.jobs.iter().any(|j| {
            j.custom_model_arn == model_arn
                && j.view(j.elapsed_ms(now)).status == JobStatus::Completed
        });
        if !produced && self.config.strict_model_ids {
            return Err(ApiError::not_found(format!(
                "The custom model '{model_arn}' was not found (no Completed job in this simulator produced it)"
            )));
        }
        let arn = format!(
            "arn:aws:bedrock:{region}:{}:custom-model-deployment/{}",
            self.config.account_id,
            short_id()
        );
        let deployment = Deployment {
            arn: arn.clone(),
            name: name.to_string(),
            model_arn: model_arn.to_string(),
            description: description.map(str::to_string),
            client_request_token: token.map(str::to_string),
            failure: self.faults.take_deployment_failure(name),
            request: body,
            created_at: now,
            deployment_ms: self.deployment_ms(),
        };
        tracing::info!(name = %deployment.name, arn = %arn, failing = deployment.failure.is_some(), "custom model deployment created");
        self.deployments.push(deployment);
        Ok(accepted(&arn))
    }

    pub(super) fn deployment_index(&self, identifier: &str) -> Result<usize, ApiError> {
        let mut v = Violations::default();
        v.check(
            "customModelDeploymentIdentifier",
            identifier,
            1,
            93,
            Some(&validate::CUSTOM_MODEL_DEPLOYMENT_IDENTIFIER),
        );
        v.into_result()?;
        self.deployments
            .iter()
            .position(|d| d.arn == identifier || d.name == identifier)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Custom model deployment '{identifier}' was not found"
                ))
            })
    }

    pub(super) fn get_deployment(
        &self,
        identifier: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let d = &self.deployments[self.deployment_index(identifier)?];
        let mut ok = ApiSuccess::ok(d.describe(now));
        ok.resource_arn = Some(d.arn.clone());
        Ok(ok)
    }

    /// Removes the deployment whatever its status (a Creating one included): after this, Get and
    /// Delete answer ResourceNotFoundException.
    pub(super) fn delete_deployment(&mut self, identifier: &str) -> Result<ApiSuccess, ApiError> {
        let i = self.deployment_index(identifier)?;
        let d = self.deployments.remove(i);
        tracing::info!(name = %d.name, "custom model deployment deleted");
        Ok(ApiSuccess {
            status: StatusCode::OK,
            body: Some(json!({})),
            resource_arn: Some(d.arn),
        })
    }

    pub(super) fn list_deployments(
        &self,
        query: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let q =
            ListQuery::parse_with(query, &DEPLOYMENT_STATUSES, "createdAfter", "createdBefore")?;
        let model = query
            .iter()
            .find(|(k, _)| k == "modelArnEquals")
            .map(|(_, v)| v.as_str());
        if let Some(m) = model {
            let mut v = Violations::default();
            v.check(
                "modelArnEquals",
                m,
                20,
                1011,
                Some(&validate::CUSTOM_MODEL_ARN),
            );
            v.into_result()?;
        }
        let mut found: Vec<&Deployment> = self
            .deployments
            .iter()
            .filter(|d| q.admits(&d.name, d.created_at))
            .filter(|d| q.status.as_deref().is_none_or(|s| d.status(now) == s))
            .filter(|d| model.is_none_or(|m| d.model_arn == m))
            .collect();
        found.sort_by_key(|d| d.created_at);
        if q.descending {
            found.reverse();
        }
        let (page, next) = q.page(&found);
        let mut out = json!({
            "modelDeploymentSummaries": page.iter().map(|d| d.summary(now)).collect::<Vec<_>>(),
        });
        if let Some(n) = next {
            out["nextToken"] = json!(n);
        }
        Ok(ApiSuccess::ok(out))
    }
}
