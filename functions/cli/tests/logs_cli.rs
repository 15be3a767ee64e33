//! `distillery logs preview` on generated local logs: exit codes, the JSON report, skipped files,
//! `--since`, usage errors.

use std::path::Path;

use assert_cmd::Command;
use chrono::{Duration, Utc};
use distillery_core::testing::invocation_logs::{
    write_invocation_logs, GeneratedLogs, LogGenOptions,
};
use predicates::prelude::*;
use serde_json::Value;

fn distillery() -> Command {
    let mut cmd = Command::cargo_bin("distillery").unwrap();
    // No AWS call is made for a local directory; make sure none could be.
    cmd.env_remove("AWS_ENDPOINT_URL");
    cmd
}

fn logs(options: LogGenOptions) -> (tempfile::TempDir, GeneratedLogs) {
    let dir = tempfile::tempdir().unwrap();
    let g = write_invocation_logs(dir.path(), &options).unwrap();
    (dir, g)
}

fn preview_json(dir: &Path, extra: &[&str], code: i32) -> Value {
    let out = distillery()
        .args(["logs", "preview"])
        .arg(dir)
        .args(extra)
        .args(["--format", "json"])
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn enough_eligible_records_exit_0_with_every_field() {
    let (dir, g) = logs(LogGenOptions {
        target_bytes: 96 * 1024,
        ..Default::default()
    });
    let v = preview_json(dir.path(), &[], 0);
    assert_eq!(v["scanned"], g.records);
    assert_eq!(v["files"], g.files);
    assert_eq!(v["matched"], g.records, "no filter: every record matches");
    let eligible = v["eligible"].as_u64().unwrap();
    assert!(eligible >= 100 && eligible < g.records, "{eligible}");
    assert!(v["distinct_prompts"].as_u64().unwrap() < eligible);
    assert!(
        v["by_model"]["amazon.nova-pro-v1:0"]["eligible"]
            .as_u64()
            .unwrap()
            > 0
    );
    // The inference-profile ARN is reduced to its id.
    assert!(
        v["by_model"]["us.amazon.nova-pro-v1:0"]["matched"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(!v["by_day"].as_object().unwrap().is_empty());
    assert_eq!(v["skipped_files"], serde_json::json!([]));
    assert_eq!(
        (v["min_records"].as_u64(), v["enough"].as_bool()),
        (Some(100), Some(true))
    );
}

#[test]
fn a_narrow_filter_leaves_too_few_and_exits_1() {
    let (dir, _) = logs(LogGenOptions {
        target_bytes: 32 * 1024,
        ..Default::default()
    });
    let all = preview_json(dir.path(), &[], 0);
    // `Support` (capital S) is one record in ten: exact comparison keeps it apart from `support`.
    let v = preview_json(
        dir.path(),
        &["--filter", r#"{"equals":{"team":"Support"}}"#],
        1,
    );
    let matched = v["matched"].as_u64().unwrap();
    assert!(
        matched > 0 && matched * 5 < all["matched"].as_u64().unwrap(),
        "{matched}"
    );
    assert_eq!(v["enough"], false);
    let text = distillery()
        .args(["logs", "preview"])
        .arg(dir.path())
        .args(["--filter", r#"{"equals":{"team":"Support"}}"#])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("NOT ENOUGH"), "{text}");
    assert!(text.contains("amazon.nova-lite-v1:0"), "{text}");
}

#[test]
fn prompt_response_counts_only_the_teachers_answered_records() {
    let (dir, _) = logs(LogGenOptions {
        target_bytes: 64 * 1024,
        ..Default::default()
    });
    let all = preview_json(dir.path(), &[], 0);
    let v = preview_json(
        dir.path(),
        &["--teacher", "amazon.nova-pro-v1:0", "--use-prompt-response"],
        0,
    );
    let eligible = v["eligible"].as_u64().unwrap();
    assert!(eligible < all["eligible"].as_u64().unwrap());
    assert_eq!(v["with_response"].as_u64().unwrap(), eligible);
    assert!(v["ineligible"]["not_teacher"].as_u64().unwrap() > 0);
    let by_model = v["by_model"].as_object().unwrap();
    for (model, c) in by_model {
        if !model.contains("amazon.nova-pro") {
            assert_eq!(c["eligible"], 0, "{model}");
        }
    }
}

#[test]
fn a_corrupt_and_a_truncated_file_are_reported_not_fatal() {
    let (dir, g) = logs(LogGenOptions {
        target_bytes: 64 * 1024,
        truncated_file: true,
        corrupt_file: true,
        ..Default::default()
    });
    let v = preview_json(dir.path(), &[], 0);
    assert_eq!(v["scanned"], g.records);
    let skipped = v["skipped_files"].as_array().unwrap();
    let corrupt = skipped
        .iter()
        .find(|s| s["file"] == g.corrupt.as_deref().unwrap())
        .expect("the corrupt file is listed");
    assert!(corrupt["reason"].as_str().unwrap().contains("gzip"));
    assert!(corrupt.get("line").is_none());
    let truncated = skipped
        .iter()
        .find(|s| s["file"] == g.truncated.as_deref().unwrap())
        .expect("the truncated file is listed");
    assert_eq!(truncated["line"], 4);
    // The text report names them too.
    distillery()
        .args(["logs", "preview"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("_corrupt.json.gz"))
        .stdout(predicate::str::contains("skipped (2)"));
}

#[test]
fn since_keeps_only_recent_hour_folders() {
    // Twelve hour folders, one file of 20 records each, the last one the current hour.
    let now = Utc::now();
    let this_hour = now - Duration::seconds(now.timestamp() % 3600);
    let (dir, g) = logs(LogGenOptions {
        target_bytes: 1,
        min_hours: 12,
        records_per_file: 20,
        files_per_hour: 1,
        start: this_hour - Duration::hours(11),
        ..Default::default()
    });
    assert_eq!((g.hours, g.files, g.records), (12, 12, 240));
    let all = preview_json(dir.path(), &[], 0);
    assert_eq!(all["files"], 12);
    // Since now-3h: the folder holding that moment and the three after it.
    let few = preview_json(dir.path(), &["--since", "3h"], 1);
    assert_eq!(few["files"], 4);
    assert_eq!(few["scanned"], 80);
    assert!(few["since"].as_str().is_some());
    let day = preview_json(dir.path(), &["--since", "1d"], 0);
    assert_eq!(day["files"], 12);
}

#[test]
fn usage_and_io_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (args, cause) in [
        (vec!["--filter", "{\"like\":{}}"], "unknown operator 'like'"),
        (
            vec!["--filter", "{\"equals\":{\"a\":\"1\",\"b\":\"2\"}}"],
            "exactly one key",
        ),
        (vec!["--since", "7y"], "--since must be"),
        (vec!["--use-prompt-response"], "needs --teacher"),
    ] {
        distillery()
            .args(["logs", "preview"])
            .arg(dir.path())
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(cause));
    }
    distillery()
        .args(["logs", "preview", "/no/such/dir"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot read /no/such/dir"));
    // An empty directory is not an error: nothing is eligible.
    let v = preview_json(dir.path(), &[], 1);
    assert_eq!(
        (v["files"].as_u64(), v["eligible"].as_u64()),
        (Some(0), Some(0))
    );
}

/// Every file under `dir`, relative and `/`-separated.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(
                    p.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_s3_source_reads_like_the_local_directory() {
    let (dir, g) = logs(LogGenOptions {
        target_bytes: 64 * 1024,
        truncated_file: true,
        corrupt_file: true,
        ..Default::default()
    });
    let moto = distillery_test_support::Moto::start();
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("logs").send().await.unwrap();
    for rel in files_under(dir.path()) {
        let body = std::fs::read(dir.path().join(&rel)).unwrap();
        s3.put_object()
            .bucket("logs")
            .key(format!("bedrock/{rel}"))
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    let local = preview_json(dir.path(), &[], 0);
    let endpoint = moto.endpoint.clone();
    let out = tokio::task::spawn_blocking(move || {
        distillery()
            .args(["logs", "preview", "s3://logs/bedrock/", "--format", "json"])
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone()
    })
    .await
    .unwrap();
    let remote: Value = serde_json::from_slice(&out).unwrap();
    for field in [
        "files",
        "scanned",
        "matched",
        "eligible",
        "distinct_prompts",
        "by_model",
        "by_day",
    ] {
        assert_eq!(remote[field], local[field], "{field}");
    }
    assert_eq!(remote["scanned"], g.records);
    let corrupt = format!("s3://logs/bedrock/{}", g.corrupt.as_deref().unwrap());
    assert!(
        remote["skipped_files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["file"] == corrupt.as_str()),
        "{}",
        remote["skipped_files"]
    );
}
