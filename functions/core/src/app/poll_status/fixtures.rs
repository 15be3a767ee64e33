use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::run::{Run, RunId, RunStatus};
use crate::domain::settings::ServingMode;
use crate::ports::*;
use crate::testing::memory::InMemoryRunLedger;
use crate::testing::sample_run;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

pub fn run(status: RunStatus, serving: ServingMode) -> Run {
    let mut r = sample_run(
        "datasets",
        "incoming/support-chats.jsonl",
        "abc",
        1234,
        t0(),
    );
    r.run_id = RunId("run-0123456789abcdef0123".into());
    r.settings.serving = serving;
    r.status = status;
    r.job_arn = Some("arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abc".into());
    r.launched_at = Some(t0());
    r
}

pub fn job(status: JobStatus, v: &str, d: &str, t: &str) -> JobState {
    let s = |x: &str| (!x.is_empty()).then(|| x.to_string());
    JobState {
        job_arn: "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/abc".into(),
        status,
        validation: s(v),
        data_processing: s(d),
        training: s(t),
        failure_message: None,
        output_model_arn: None,
        output_model_name: None,
    }
}

/// The shared in-memory ledger holding `run`.
pub async fn ledger_with(run: Run) -> InMemoryRunLedger {
    let ledger = InMemoryRunLedger::new();
    ledger.create(&run).await.unwrap();
    ledger
}

/// The run as the ledger holds it now.
pub async fn stored(ledger: &InMemoryRunLedger, id: &RunId) -> Run {
    ledger.get(id).await.unwrap().expect("run in ledger")
}

pub fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}
