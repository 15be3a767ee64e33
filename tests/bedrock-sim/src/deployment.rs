//! Custom model deployments (on-demand inference): Creating for the deployment duration, then Active
//! (or Failed when a `failDeployment` fault says so). Like jobs and throughputs, the status is a pure
//! function of the time since creation, so no background task is needed.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::wire::timestamp;

/// CustomModelDeploymentStatus in the API model.
pub const DEPLOYMENT_STATUSES: [&str; 3] = ["Creating", "Active", "Failed"];

#[derive(Debug, Clone)]
pub struct Deployment {
    pub arn: String,
    pub name: String,
    pub model_arn: String,
    pub description: Option<String>,
    pub client_request_token: Option<String>,
    /// The request body as sent: idempotent retries must match it, and `tags` is read from it.
    pub request: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub deployment_ms: u64,
    pub failure: Option<String>,
}

impl Deployment {
    pub fn elapsed_ms(&self, now: DateTime<Utc>) -> u64 {
        (now - self.created_at).num_milliseconds().max(0) as u64
    }

    /// "Creating", "Active" or "Failed" at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.elapsed_ms(now) < self.deployment_ms {
            "Creating"
        } else if self.failure.is_some() {
            "Failed"
        } else {
            "Active"
        }
    }

    fn last_updated(&self, status: &str) -> DateTime<Utc> {
        if status == "Creating" {
            self.created_at
        } else {
            self.created_at + Duration::milliseconds(self.deployment_ms as i64)
        }
    }

    /// The GetCustomModelDeployment response body.
    pub fn describe(&self, now: DateTime<Utc>) -> Value {
        let status = self.status(now);
        let mut out = json!({
            "customModelDeploymentArn": self.arn,
            "modelDeploymentName": self.name,
            "modelArn": self.model_arn,
            "createdAt": timestamp(self.created_at),
            "status": status,
            "lastUpdatedAt": timestamp(self.last_updated(status)),
        });
        let obj = out.as_object_mut().expect("object");
        if let Some(d) = &self.description {
            obj.insert("description".into(), json!(d));
        }
        if status == "Failed" {
            obj.insert("failureMessage".into(), json!(self.failure));
        }
        out
    }

    /// One entry of ListCustomModelDeployments. The summary names the deployment
    /// `customModelDeploymentName` where Get says `modelDeploymentName`: that is the API model's
    /// spelling, not a typo here.
    pub fn summary(&self, now: DateTime<Utc>) -> Value {
        let status = self.status(now);
        let mut out = json!({
            "customModelDeploymentArn": self.arn,
            "customModelDeploymentName": self.name,
            "modelArn": self.model_arn,
            "createdAt": timestamp(self.created_at),
            "status": status,
            "lastUpdatedAt": timestamp(self.last_updated(status)),
        });
        if status == "Failed" {
            out["failureMessage"] = json!(self.failure);
        }
        out
    }
}
