//! The tagging operations: ListTagsForResource, TagResource, UntagResource, on jobs, the custom models
//! Completed jobs produced, Provisioned Throughputs and custom model deployments.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::jobs::JobStatus;
use crate::validate::{check_tags, Fields, Violations};
use crate::wire::{ApiError, ErrorKind};

use super::{ApiSuccess, Sim};

/// `resourceARN`: required, a string of 20–1011 characters (TaggableResourcesArn).
fn resource_arn(body: &Map<String, Value>) -> Result<&str, ApiError> {
    let arn = match body.get("resourceARN") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(ApiError::new(
                ErrorKind::Serialization,
                "resourceARN must be a string",
            ))
        }
        None => {
            return Err(ApiError::validation(
                "1 validation error detected: Value null at 'resourceARN' failed to satisfy constraint: Member must not be null",
            ))
        }
    };
    if !(20..=1011).contains(&arn.chars().count()) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'resourceARN' failed to satisfy constraint: Member must have length between 20 and 1011"
        )));
    }
    Ok(arn)
}

fn pairs(tags: &Value) -> Vec<(String, String)> {
    tags.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| {
                    Some((
                        t.get("key")?.as_str()?.to_string(),
                        t.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Sim {
    /// The resource's tags now: as changed by TagResource/UntagResource, else as given at creation
    /// (`jobTags` for a job, `customModelTags` for the custom model a Completed job produced, `tags`
    /// for a Provisioned Throughput or a custom model deployment). None = no such resource.
    fn tags_of(&self, arn: &str, now: DateTime<Utc>) -> Option<Vec<(String, String)>> {
        let given = |request: &Map<String, Value>, key: &str| {
            pairs(request.get(key).unwrap_or(&Value::Null))
        };
        let created = if let Some(j) = self.jobs.iter().find(|j| j.arn == arn) {
            given(&j.request, "jobTags")
        } else if let Some(j) = self.jobs.iter().find(|j| {
            j.custom_model_arn == arn && j.view(j.elapsed_ms(now)).status == JobStatus::Completed
        }) {
            given(&j.request, "customModelTags")
        } else if let Some(p) = self.throughputs.iter().find(|p| p.arn == arn) {
            given(&p.request, "tags")
        } else if let Some(d) = self.deployments.iter().find(|d| d.arn == arn) {
            given(&d.request, "tags")
        } else {
            return None;
        };
        Some(self.tag_overrides.get(arn).cloned().unwrap_or(created))
    }

    fn not_found(arn: &str) -> ApiError {
        ApiError::not_found(format!("The resource '{arn}' was not found"))
    }

    /// ListTagsForResource: `{"tags":[{"key","value"}]}`.
    pub(super) fn list_tags(
        &self,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let arn = resource_arn(&body)?;
        let tags = self.tags_of(arn, now).ok_or_else(|| Self::not_found(arn))?;
        let tags: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect();
        Ok(ApiSuccess::ok(json!({ "tags": tags })))
    }

    /// TagResource: adds the tags, a key already present taking the new value; more than 200 tags
    /// on the resource afterwards → TooManyTagsException.
    pub(super) fn tag_resource(
        &mut self,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let arn = resource_arn(&body)?.to_string();
        let f = Fields::new(&body);
        let mut v = Violations::default();
        if !f.has("tags") {
            v.missing("tags");
        }
        check_tags(&f, "tags", &mut v);
        v.into_result()?;
        let mut tags = self
            .tags_of(&arn, now)
            .ok_or_else(|| Self::not_found(&arn))?;
        for (k, val) in pairs(body.get("tags").unwrap_or(&Value::Null)) {
            match tags.iter_mut().find(|(key, _)| *key == k) {
                Some(t) => t.1 = val,
                None => tags.push((k, val)),
            }
        }
        if tags.len() > 200 {
            return Err(ApiError::new(
                ErrorKind::TooManyTags,
                format!(
                    "Too many tags: the resource would have {}, at most 200 are allowed",
                    tags.len()
                ),
            ));
        }
        self.tag_overrides.insert(arn.clone(), tags);
        let mut ok = ApiSuccess::ok(json!({}));
        ok.resource_arn = Some(arn);
        Ok(ok)
    }

    /// UntagResource: removes the tags with these keys (absent keys are ignored).
    pub(super) fn untag_resource(
        &mut self,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let arn = resource_arn(&body)?.to_string();
        let f = Fields::new(&body);
        let mut v = Violations::default();
        let keys: Vec<String> = match f.array("tagKeys", &mut v) {
            None => {
                v.missing("tagKeys");
                Vec::new()
            }
            Some(list) => {
                if list.len() > 200 {
                    v.push(format!(
                        "Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 200 (got {})",
                        list.len()
                    ));
                }
                list.iter()
                    .enumerate()
                    .filter_map(|(i, k)| match k.as_str() {
                        Some(s) => {
                            v.check(&format!("tagKeys.{}.member", i + 1), s, 1, 128, None);
                            Some(s.to_string())
                        }
                        None => {
                            v.push(format!(
                                "Value at 'tagKeys.{}.member' must be a string",
                                i + 1
                            ));
                            None
                        }
                    })
                    .collect()
            }
        };
        v.into_result()?;
        let mut tags = self
            .tags_of(&arn, now)
            .ok_or_else(|| Self::not_found(&arn))?;
        tags.retain(|(k, _)| !keys.contains(k));
        self.tag_overrides.insert(arn.clone(), tags);
        let mut ok = ApiSuccess::ok(json!({}));
        ok.resource_arn = Some(arn);
        Ok(ok)
    }
}
