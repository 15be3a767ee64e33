//! AWS adapter for [`RunLedger`] on DynamoDB: one table, one item per run.
//!
//! Item layout (see docs/ledger.md):
//! - `runId` (S, partition key), `status` (S), `createdAt` / `updatedAt` (S, RFC 3339 UTC with
//!   microseconds, so they sort as strings), `gsiAll` (S, always `run`), `version` (N),
//!   `jobArn`, `jobName`, `customModelName`, `customModelArn`, `provisionedModelArn`, `datasetUri`,
//!   `source` (S, when set) for people reading the table in the console,
//! - `record` (S): the whole [`Run`] as JSON, including its history. It is the source of truth.
//!
//! Every write is conditional. Create: `attribute_not_exists(runId)`, so the same S3 object version
//! can never get two runs. Update: read, check the expected status and the transition, then rewrite
//! under `version = :read_version AND status = :read_status`; a lost race re-reads and re-checks, so a
//! retried Lambda gets `Conflict` instead of moving a run backwards, and history entries are never
//! lost or rewritten by a concurrent writer.
//!
//! Indexes: `byStatus` (`status` + `createdAt`) and `byCreatedAt` (`gsiAll` + `createdAt`), both
//! projecting all attributes, queried newest first. TTL attribute: `expiresAt` (epoch seconds;
//! Distillery never sets it, an operator may to expire old runs).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::sdk_error::port_error;
use distillery_core::domain::run::{Run, RunId, RunStatus, RunUpdate};
use distillery_core::ports::{
    Clock, CreateOutcome, JobSlots, PortError, RunLedger, SlotGrant, SystemClock,
};

/// The item holding the job slots ([`JobSlots`]): `runId` = this (no run id starts with `#`), and
/// `holders` (SS) the runs holding one. It has no `status` or `gsiAll`, so neither index sees it.
pub const JOB_SLOTS_ITEM: &str = "#job-slots";

pub const STATUS_INDEX: &str = "byStatus";
pub const RECENT_INDEX: &str = "byCreatedAt";
/// The constant partition of [`RECENT_INDEX`]. Runs are few (one per dataset upload), so one
/// partition is far from DynamoDB's per-partition limits.
pub const ALL_PARTITION: &str = "run";
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// How many times an update re-reads after losing a race before reporting a conflict.
const MAX_UPDATE_ATTEMPTS: u32 = 10;
/// Backoff after a lost race: a random wait up to `base * 2^attempt`, capped. Without the random wait,
/// writers that collided once tend to collide again (they re-read and re-write in lockstep).
const RACE_BACKOFF_BASE_MS: u64 = 10;
const RACE_BACKOFF_CAP_MS: u64 = 320;
/// How many more runs a list query reads at a time, past its limit, to see every run created in the
/// same microsecond as the last one it keeps.
const TIE_PAGE: usize = 25;

#[derive(Clone)]
pub struct DynamoRunLedger {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn to_item(run: &Run, version: u64) -> Result<HashMap<String, AttributeValue>, PortError> {
    let record = serde_json::to_string(run)
        .map_err(|e| PortError::Other(format!("cannot encode run {}: {e}", run.run_id)))?;
    let mut item = HashMap::from([
        ("runId".to_string(), s(run.run_id.as_str())),
        ("status".to_string(), s(run.status.as_str())),
        ("createdAt".to_string(), s(timestamp(&run.created_at))),
        ("updatedAt".to_string(), s(timestamp(&run.updated_at))),
        ("gsiAll".to_string(), s(ALL_PARTITION)),
        (
            "version".to_string(),
            AttributeValue::N(version.to_string()),
        ),
        ("datasetUri".to_string(), s(run.dataset.s3_uri())),
        (
            "source".to_string(),
            s(serde_json::to_value(run.source)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()),
        ),
        ("record".to_string(), s(record)),
    ]);
    for (name, value) in [
        ("jobArn", &run.job_arn),
        ("jobName", &run.job_name),
        ("customModelName", &run.custom_model_name),
        ("customModelArn", &run.custom_model_arn),
        ("provisionedModelArn", &run.provisioned_model_arn),
    ] {
        if let Some(v) = value {
            item.insert(name.to_string(), s(v.clone()));
        }
    }
    Ok(item)
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<(Run, u64), PortError> {
    let id = item
        .get("runId")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or("?");
    let record = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| PortError::Other(format!("ledger item {id} has no 'record' attribute")))?;
    let run: Run = serde_json::from_str(record)
        .map_err(|e| PortError::Other(format!("ledger item {id}: 'record' is not a run: {e}")))?;
    let version = item
        .get("version")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok((run, version))
}

impl DynamoRunLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self::with_clock(client, table, Arc::new(SystemClock))
    }

    pub fn with_clock(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn read(&self, run_id: &RunId) -> Result<Option<(Run, u64)>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("runId", s(run_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(&format!("GetItem {run_id}"), e))?;
        out.item().map(from_item).transpose()
    }

    /// At most `limit` runs of one index partition, in [`Run::sort_newest_first`] order. The index
    /// orders runs by `createdAt` only and returns runs created in the same microsecond in no
    /// defined order, so past `limit` the query reads on while the runs are tied with the last one
    /// kept; then the runs are sorted (ties by run id) and cut to `limit`.
    async fn query_newest_first(
        &self,
        index: &str,
        key_attr: &str,
        key_value: &str,
        limit: usize,
    ) -> Result<Vec<Run>, PortError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut runs = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = if runs.len() < limit {
                limit - runs.len()
            } else {
                TIE_PAGE
            };
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :v")
                .expression_attribute_names("#k", key_attr)
                .expression_attribute_values(":v", s(key_value))
                .scan_index_forward(false)
                .limit(i32::try_from(page).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| port_error(&format!("Query {index} {key_attr}={key_value}"), e))?;
            for item in out.items() {
                runs.push(from_item(item)?.0);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
            if let (Some(kept), Some(read)) = (runs.get(limit - 1), runs.last()) {
                if timestamp(&read.created_at) != timestamp(&kept.created_at) {
                    break;
                }
            }
        }
        Run::sort_newest_first(&mut runs);
        runs.truncate(limit);
        Ok(runs)
    }
}

#[async_trait]
impl RunLedger for DynamoRunLedger {
    async fn create(&self, run: &Run) -> Result<CreateOutcome, PortError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(run, 1)?))
            .condition_expression("attribute_not_exists(runId)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created(run.clone())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                match self.read(&run.run_id).await? {
                    Some((existing, _)) => Ok(CreateOutcome::AlreadyExists(existing)),
                    // Only possible if someone deleted it in between: report the race.
                    None => Err(PortError::Conflict(format!(
                        "run {} existed a moment ago and is gone",
                        run.run_id
                    ))),
                }
            }
            Err(e) => Err(port_error(&format!("PutItem {}", run.run_id), e)),
        }
    }

    async fn get(&self, run_id: &RunId) -> Result<Option<Run>, PortError> {
        Ok(self.read(run_id).await?.map(|(run, _)| run))
    }

    async fn update(
        &self,
        run_id: &RunId,
        expected: &[RunStatus],
        update: &RunUpdate,
    ) -> Result<Run, PortError> {
        for attempt in 0..MAX_UPDATE_ATTEMPTS {
            if attempt > 0 {
                let ceiling = (RACE_BACKOFF_BASE_MS << attempt.min(10)).min(RACE_BACKOFF_CAP_MS);
                let wait = rand::random_range(0..=ceiling);
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
            }
            let Some((mut run, version)) = self.read(run_id).await? else {
                return Err(PortError::NotFound(format!("run {run_id} does not exist")));
            };
            run.check_update(expected, update)?;
            let read_status = run.status;
            update.apply_to(&mut run, self.clock.now());
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(to_item(&run, version + 1)?))
                .condition_expression("#version = :version AND #status = :status")
                .expression_attribute_names("#version", "version")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":version", AttributeValue::N(version.to_string()))
                .expression_attribute_values(":status", s(read_status.as_str()))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(run),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
                {
                    // Someone wrote in between: re-read and re-check (the move may no longer hold).
                    tracing::debug!(run_id = %run_id, "ledger update lost a race; re-reading");
                    continue;
                }
                Err(e) => return Err(port_error(&format!("PutItem {run_id}"), e)),
            }
        }
        Err(PortError::Conflict(format!(
            "run {run_id} kept changing under {MAX_UPDATE_ATTEMPTS} update attempts"
        )))
    }

    async fn list_recent(&self, limit: usize) -> Result<Vec<Run>, PortError> {
        self.query_newest_first(RECENT_INDEX, "gsiAll", ALL_PARTITION, limit)
            .await
    }

    async fn list_by_status(&self, status: RunStatus, limit: usize) -> Result<Vec<Run>, PortError> {
        self.query_newest_first(STATUS_INDEX, "status", status.as_str(), limit)
            .await
    }
}

/// One conditional UpdateItem per call on [`JOB_SLOTS_ITEM`]: `ADD` only while the set is smaller
/// than the maximum (or already holds the run), `DELETE` to give a slot back (DynamoDB removes the
/// attribute with its last member, which `attribute_not_exists` then reads as empty).
#[async_trait]
impl JobSlots for DynamoRunLedger {
    async fn acquire(&self, run_id: &RunId, max: u32) -> Result<SlotGrant, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("runId", s(JOB_SLOTS_ITEM))
            .update_expression("ADD holders :run")
            // The item as it was: whether this call took the slot or the run held it already.
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .condition_expression(
                "attribute_not_exists(holders) OR contains(holders, :id) OR size(holders) < :max",
            )
            .expression_attribute_values(":run", AttributeValue::Ss(vec![run_id.to_string()]))
            .expression_attribute_values(":id", s(run_id.as_str()))
            .expression_attribute_values(":max", AttributeValue::N(max.to_string()))
            .send()
            .await;
        match result {
            Ok(out) => {
                let held_before = out
                    .attributes()
                    .and_then(|a| a.get("holders"))
                    .and_then(|h| h.as_ss().ok())
                    .is_some_and(|set| set.iter().any(|r| r == run_id.as_str()));
                Ok(if held_before {
                    SlotGrant::AlreadyHeld
                } else {
                    SlotGrant::Taken
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_conditional_check_failed_exception()) =>
            {
                Ok(SlotGrant::Full)
            }
            Err(e) => Err(port_error(
                &format!("UpdateItem {JOB_SLOTS_ITEM} (take a job slot for {run_id})"),
                e,
            )),
        }
    }

    async fn release(&self, run_id: &RunId) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("runId", s(JOB_SLOTS_ITEM))
            .update_expression("DELETE holders :run")
            .expression_attribute_values(":run", AttributeValue::Ss(vec![run_id.to_string()]))
            .send()
            .await
            .map_err(|e| {
                port_error(
                    &format!("UpdateItem {JOB_SLOTS_ITEM} (give back {run_id}'s job slot)"),
                    e,
                )
            })?;
        Ok(())
    }

    async fn holders(&self) -> Result<Vec<RunId>, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("runId", s(JOB_SLOTS_ITEM))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error(&format!("GetItem {JOB_SLOTS_ITEM}"), e))?;
        let mut holders: Vec<RunId> = out
            .item()
            .and_then(|i| i.get("holders"))
            .and_then(|v| v.as_ss().ok())
            .map(|ss| ss.iter().map(|id| RunId(id.clone())).collect())
            .unwrap_or_default();
        holders.sort();
        Ok(holders)
    }
}

fn key(attr: &str, kind: KeyType) -> Result<KeySchemaElement, PortError> {
    KeySchemaElement::builder()
        .attribute_name(attr)
        .key_type(kind)
        .build()
        .map_err(|e| PortError::Other(e.to_string()))
}

fn string_attr(attr: &str) -> Result<AttributeDefinition, PortError> {
    AttributeDefinition::builder()
        .attribute_name(attr)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| PortError::Other(e.to_string()))
}

fn gsi(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex, PortError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| PortError::Other(e.to_string()))
}

/// Creates the ledger table (on-demand billing, both indexes, TTL on `expiresAt`) and waits until
/// it is active. The SAM template declares the same table for AWS; this is for tests and the local
/// stack.
pub async fn create_table(client: &Client, name: &str) -> Result<(), PortError> {
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attr("runId")?)
        .attribute_definitions(string_attr("status")?)
        .attribute_definitions(string_attr("createdAt")?)
        .attribute_definitions(string_attr("gsiAll")?)
        .key_schema(key("runId", KeyType::Hash)?)
        .global_secondary_indexes(gsi(STATUS_INDEX, "status", "createdAt")?)
        .global_secondary_indexes(gsi(RECENT_INDEX, "gsiAll", "createdAt")?)
        .send()
        .await
        .map_err(|e| port_error(&format!("CreateTable {name}"), e))?;
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(std::time::Duration::from_secs(60))
        .await
        .map_err(|e| PortError::Transient(format!("table {name} did not become active: {e}")))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(|e| PortError::Other(e.to_string()))?,
        )
        .send()
        .await
        .map_err(|e| port_error(&format!("UpdateTimeToLive {name}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use distillery_core::domain::run::{DatasetLocation, RunSource};
    use distillery_core::domain::settings::{Commitment, RunSettings, ServingMode};

    #[test]
    fn item_round_trips_and_exposes_index_keys() {
        let mut run = Run::new(
            RunId::for_object("b", "incoming/a.jsonl", "e"),
            RunSource::S3Upload,
            DatasetLocation::S3Object {
                bucket: "b".into(),
                key: "incoming/a.jsonl".into(),
                etag: "e".into(),
                version_id: None,
                size: 3,
            },
            RunSettings {
                teacher: "t".into(),
                student: "s".into(),
                max_response_length: 1000,
                serving: ServingMode::None,
                model_units: 1,
                commitment: Commitment::None,
            },
            Utc::now(),
        );
        run.job_arn = Some("arn:job".into());
        let item = to_item(&run, 7).unwrap();
        assert_eq!(item["status"].as_s().unwrap(), "received");
        assert_eq!(item["gsiAll"].as_s().unwrap(), ALL_PARTITION);
        assert_eq!(item["jobArn"].as_s().unwrap(), "arn:job");
        assert!(item["createdAt"].as_s().unwrap().ends_with('Z'));
        let (back, v) = from_item(&item).unwrap();
        assert_eq!(back, run);
        assert_eq!(v, 7);
    }
}
