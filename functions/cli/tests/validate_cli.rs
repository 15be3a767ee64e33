//! `distillery validate`: exit codes, stderr causes and the JSON report shape.

use std::io::Write;

use assert_cmd::Command;
use predicates::prelude::*;

const NOVA: &str = "amazon.nova-lite-v1:0:300k";
const LLAMA: &str = "meta.llama3-1-8b-instruct-v1:0:128k";

fn record(i: usize) -> String {
    format!(
        r#"{{"schemaVersion":"bedrock-conversation-2024","system":[{{"text":"You answer questions."}}],"messages":[{{"role":"user","content":[{{"text":"Question number {i}?"}}]}},{{"role":"assistant","content":[{{"text":"Answer {i}."}}]}}]}}"#
    )
}

fn multi_turn(i: usize) -> String {
    format!(
        r#"{{"schemaVersion":"bedrock-conversation-2024","messages":[{{"role":"user","content":[{{"text":"Hi {i}"}}]}},{{"role":"assistant","content":[{{"text":"Hello"}}]}},{{"role":"user","content":[{{"text":"More {i}"}}]}}]}}"#
    )
}

fn dataset(lines: &[String]) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".jsonl")
        .tempfile()
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.flush().unwrap();
    f
}

fn valid_lines() -> Vec<String> {
    (0..120).map(record).collect()
}

fn distillery() -> Command {
    let mut cmd = Command::cargo_bin("distillery").unwrap();
    // The built-in catalog and limits, whatever the caller's environment says.
    cmd.env_remove("DISTILLERY_MODEL_PAIRS_FILE")
        .env_remove("DISTILLERY_LIMITS_FILE")
        .env_remove("DISTILLERY_PRICES_FILE")
        .env_remove("PT_TTL_HOURS");
    cmd
}

#[test]
fn a_valid_dataset_exits_0_with_a_text_summary() {
    let f = dataset(&valid_lines());
    distillery()
        .args(["validate", "--student", LLAMA])
        .arg(f.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("VALID (120 records, 0 invalid"))
        .stdout(predicate::str::contains("120 labelled"))
        .stderr(predicate::str::is_empty());
}

#[test]
fn an_invalid_dataset_exits_1_and_groups_errors_by_kind() {
    let mut lines = valid_lines();
    lines[4] = "not json".into();
    lines[9] = lines[9].replace("\"assistant\"", "\"bot\"");
    lines[19] = lines[19].replace("\"assistant\"", "\"bot\"");
    let f = dataset(&lines);
    distillery()
        .args(["validate", "--student", LLAMA])
        .arg(f.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("INVALID (120 records, 3 invalid"))
        .stdout(predicate::str::contains("invalid_json (1): line 5"))
        .stdout(predicate::str::contains("invalid_role (2): lines 10, 20"))
        .stdout(predicate::str::contains(
            "line 10: [invalid_role] messages[1].role must be \"user\" or \"assistant\", found \"bot\"",
        ));
}

#[test]
fn json_output_has_the_documented_shape() {
    let mut lines = valid_lines();
    lines[2] = "[]".into();
    let f = dataset(&lines);
    let out = distillery()
        .args(["validate", "--format", "json", "--student", NOVA])
        .arg(f.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).expect("stdout is one JSON object");
    assert_eq!(v["valid"], false);
    assert_eq!(v["records"], 120);
    assert_eq!(v["invalid_records"], 1);
    assert_eq!(v["error_count"], 1);
    assert_eq!(v["warning_count"], 0);
    assert_eq!(
        v["errors"],
        serde_json::json!([{"line": 3, "code": "not_an_object", "message": "the line is an array, not a JSON object"}])
    );
    assert!(v["warnings"].is_array());
    assert_eq!(v["stats"]["labelled"], 119);
    assert!(v["stats"]["estimated_input_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn multi_turn_depends_on_the_student() {
    let mut lines = valid_lines();
    lines.push(multi_turn(1));
    let f = dataset(&lines);
    distillery()
        .args(["validate", "--student", NOVA])
        .arg(f.path())
        .assert()
        .code(0);
    distillery()
        .args(["validate", "--student", LLAMA, "--format", "json"])
        .arg(f.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("\"code\": \"multi_turn\""));
}

#[test]
fn a_missing_file_exits_2_with_one_line_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let assert = distillery()
        .arg("validate")
        .arg(dir.path().join("nope.jsonl"))
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("cannot read"))
        .stderr(predicate::str::contains("nope.jsonl"));
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn a_directory_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    distillery()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is a directory"));
}

#[test]
fn usage_errors_exit_2() {
    distillery().arg("validate").assert().code(2);
    distillery()
        .args(["validate", "x.jsonl", "--format", "yaml"])
        .assert()
        .code(2);
    let f = dataset(&valid_lines());
    distillery()
        .args(["validate", "--student", "openai.gpt-9"])
        .arg(f.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown student 'openai.gpt-9'"));
}

#[test]
fn garbage_and_empty_files_are_invalid_not_crashes() {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    f.write_all(&garbage).unwrap();
    distillery()
        .args(["validate", "--format", "json"])
        .arg(f.path())
        .assert()
        .code(1)
        .stderr(predicate::str::is_empty());
    let empty = tempfile::NamedTempFile::new().unwrap();
    distillery()
        .arg("validate")
        .arg(empty.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("too_few_records"));
}

#[test]
fn a_valid_dataset_gets_a_cost_estimate_in_text_and_json() {
    let f = dataset(&valid_lines());
    distillery()
        .args(["validate", "--student", NOVA])
        .arg(f.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "cost estimate (amazon.nova-pro-v1:0 -> amazon.nova-lite-v1:0:300k in us-east-1, maxResponseLength",
        ))
        .stdout(predicate::str::contains("teacher_generation"))
        .stdout(predicate::str::contains("unconfirmed prices"));
    let out = distillery()
        .args(["validate", "--format", "json", "--student", NOVA])
        .args(["--max-response-length", "100", "--serving", "provisioned"])
        .arg(f.path())
        .env("PT_TTL_HOURS", "2")
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let e = &v["cost_estimate"];
    let (low, high) = (
        e["low_usd"].as_f64().unwrap(),
        e["high_usd"].as_f64().unwrap(),
    );
    assert!(0.0 < low && low <= high, "{e}");
    let items: Vec<&str> = e["line_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item"].as_str().unwrap())
        .collect();
    assert_eq!(
        items,
        [
            "teacher_generation",
            "student_training",
            "model_storage",
            "serving"
        ]
    );
    // Serving: 1 model unit x 2 hours x USD 21 (Nova Lite in prices.json) = 42.
    assert_eq!(e["line_items"][3]["high_usd"], 42.0);
    assert_eq!(e["confirmed"], false);
}

#[test]
fn over_budget_exits_1_naming_both_figures_and_json_says_so() {
    let f = dataset(&valid_lines());
    distillery()
        .args(["validate", "--student", NOVA, "--budget-usd", "0.01"])
        .arg(f.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "OVER BUDGET: over_budget: the high cost estimate USD ",
        ))
        .stdout(predicate::str::contains(
            "exceeds the budget USD 0.01 set by --budget-usd",
        ));
    let out = distillery()
        .args([
            "validate",
            "--format",
            "json",
            "--student",
            NOVA,
            "--budget-usd",
            "0.01",
        ])
        .arg(f.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["cost_estimate"]["over_budget"], true);
    assert_eq!(v["cost_estimate"]["budget_usd"], 0.01);
    distillery()
        .args(["validate", "--student", NOVA, "--budget-usd", "1000"])
        .arg(f.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains(
            "budget: USD 1000 (the high estimate is within it)",
        ));
    distillery()
        .args(["validate", "--budget-usd", "lots"])
        .arg(f.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--budget-usd must be a number"));
    distillery()
        .args([
            "validate",
            "--student",
            NOVA,
            "--teacher",
            "meta.llama3-1-70b-instruct-v1:0",
        ])
        .arg(f.path())
        .assert()
        .code(2);
}
