//! The runs and context the message tests of both crates render (the content and text renderings
//! in distillery-core, the Slack layout in distillery-aws), so they check the same messages.

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::catalog::Prices;
use crate::domain::messages::MessageContext;
use crate::domain::run::{Run, RunId, ValidationSummary};

/// 2026-11-27 at `h`:`m` UTC.
pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0).unwrap()
}

/// A valid 420-record run for `s3://data-bucket/incoming/support-chats.jsonl`, created at 10:00.
pub fn run() -> Run {
    let mut r = super::sample_run(
        "data-bucket",
        "incoming/support-chats.jsonl",
        "abc",
        1234,
        at(10, 0),
    );
    r.run_id = RunId("run-0123456789abcdef0123".into());
    r.validation = Some(ValidationSummary {
        valid: true,
        records: 420,
        ..Default::default()
    });
    r
}

/// us-west-2 at 13:05, no caught error.
pub fn context(prices: &Prices) -> MessageContext<'_> {
    MessageContext {
        region: "us-west-2",
        prices,
        now: at(13, 5),
        caught: None,
    }
}

/// [`run`] rejected: 7 of 100 records invalid, 8 first errors whose text holds `<x>`, a report.
pub fn rejected_run() -> Run {
    let mut r = run();
    r.validation = Some(ValidationSummary {
        valid: false,
        records: 100,
        invalid_records: 7,
        error_count: 9,
        warning_count: 2,
        first_errors: (1..=8)
            .map(|i| format!("line {i}: [bad_role] role must be user or assistant <x>"))
            .collect(),
        report_uri: Some("s3://data-bucket/reports/run-0123456789abcdef0123/report.json".into()),
        cost_estimate: None,
    });
    r
}

/// [`run`] with its job launched.
pub fn launched_run() -> Run {
    let mut r = run();
    r.job_name = Some("distill-support-chats-0123456789".into());
    r.job_arn = Some(
        "arn:aws:bedrock:us-west-2:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/abc"
            .into(),
    );
    r
}
