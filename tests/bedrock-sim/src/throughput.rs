//! Provisioned Throughputs: Creating for `pt_ms`, then InService (or Failed when a fault says so).

use chrono::{DateTime, Duration, Months, Utc};
use serde_json::{json, Map, Value};

use crate::wire::timestamp;

#[derive(Debug, Clone)]
pub struct Throughput {
    pub arn: String,
    pub name: String,
    pub model_arn: String,
    pub foundation_model_arn: String,
    pub model_units: i64,
    pub commitment: Option<String>,
    pub client_request_token: Option<String>,
    pub request: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub pt_ms: u64,
    pub failure: Option<String>,
}

impl Throughput {
    pub fn elapsed_ms(&self, now: DateTime<Utc>) -> u64 {
        (now - self.created_at).num_milliseconds().max(0) as u64
    }

    /// "Creating", "InService" or "Failed" at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> &'static str {
        if self.elapsed_ms(now) < self.pt_ms {
            "Creating"
        } else if self.failure.is_some() {
            "Failed"
        } else {
            "InService"
        }
    }

    /// When a commitment term ends (Bedrock refuses to delete before then).
    pub fn commitment_expiration(&self) -> Option<DateTime<Utc>> {
        let months = match self.commitment.as_deref()? {
            "OneMonth" => 1,
            "SixMonths" => 6,
            _ => return None,
        };
        self.created_at.checked_add_months(Months::new(months))
    }

    /// The GetProvisionedModelThroughput response body.
    pub fn describe(&self, now: DateTime<Utc>) -> Value {
        let status = self.status(now);
        let last_modified = if status == "Creating" {
            self.created_at
        } else {
            self.created_at + Duration::milliseconds(self.pt_ms as i64)
        };
        let mut out = json!({
            "modelUnits": self.model_units,
            "desiredModelUnits": self.model_units,
            "provisionedModelName": self.name,
            "provisionedModelArn": self.arn,
            "modelArn": self.model_arn,
            "desiredModelArn": self.model_arn,
            "foundationModelArn": self.foundation_model_arn,
            "status": status,
            "creationTime": timestamp(self.created_at),
            "lastModifiedTime": timestamp(last_modified),
        });
        let obj = out.as_object_mut().expect("object");
        if status == "Failed" {
            obj.insert("failureMessage".into(), json!(self.failure));
        }
        if let Some(c) = &self.commitment {
            obj.insert("commitmentDuration".into(), json!(c));
        }
        if let Some(t) = self.commitment_expiration() {
            obj.insert("commitmentExpirationTime".into(), json!(timestamp(t)));
        }
        out
    }

    /// One entry of ListProvisionedModelThroughputs.
    pub fn summary(&self, now: DateTime<Utc>) -> Value {
        let mut v = self.describe(now);
        if let Some(o) = v.as_object_mut() {
            o.remove("failureMessage");
        }
        v
    }
}
