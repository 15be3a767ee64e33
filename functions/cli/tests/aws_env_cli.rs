//! What `runs` and `submit` say when the AWS environment is incomplete: one line on stderr naming what
//! is missing and how to provide it, exit 2, and nothing of the SDK's internals (which
//! `RUST_LOG=debug` still shows).

use assert_cmd::Command;
use predicates::prelude::*;

/// The CLI with no AWS settings at all: no profile files (HOME points nowhere), no instance metadata.
fn bare() -> Command {
    let mut cmd = Command::cargo_bin("distillery").unwrap();
    cmd.env_clear()
        .env("HOME", "/nonexistent-distillery-home")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

const COMMANDS: [&[&str]; 3] = [
    &["runs", "list", "--table", "runs"],
    &["runs", "show", "run-1", "--table", "runs"],
    &[
        "submit",
        "s3://datasets/incoming/a.jsonl",
        "--state-machine-arn",
        "arn:aws:states:us-east-1:123456789012:stateMachine:distillery",
    ],
];

/// stderr is exactly one line and holds `needle`, stdout is empty, the exit code is 2.
fn assert_one_line(cmd: &mut Command, needle: &str) {
    let out = cmd.assert().code(2).stdout(predicate::str::is_empty());
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    for internal in ["DispatchFailure", "ConnectorError", "IMDS", "{"] {
        assert!(
            !stderr.contains(internal),
            "SDK internals ({internal}) in: {stderr}"
        );
    }
}

#[test]
fn missing_credentials_are_named_with_how_to_set_them() {
    for args in COMMANDS {
        assert_one_line(
            bare().env("AWS_REGION", "us-east-1").args(args),
            "no AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        );
    }
}

#[test]
fn a_missing_region_is_named() {
    for args in COMMANDS {
        assert_one_line(
            bare()
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .args(args),
            "no AWS Region is set: set AWS_REGION",
        );
    }
}

#[test]
fn an_unreachable_endpoint_is_named_with_the_variable_that_sets_it() {
    // Port 9 (discard) on loopback: nothing listens there, so the connection is refused at once.
    for args in COMMANDS {
        assert_one_line(
            bare()
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
                .args(args),
            "cannot reach http://127.0.0.1:9: check AWS_ENDPOINT_URL",
        );
    }
}

#[test]
fn rust_log_debug_still_shows_the_sdks_detail() {
    let out = bare()
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "debug")
        .args(COMMANDS[0])
        .assert()
        .code(2);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(stderr.lines().count() > 1, "no debug detail: {stderr}");
    assert!(stderr.contains("loading credentials"), "{stderr}");
}

#[test]
fn every_command_and_flag_has_help() {
    let help_with = |args: &[&str], flag: &str| {
        let out = Command::cargo_bin("distillery")
            .unwrap()
            .args(args)
            .arg(flag)
            .assert()
            .success();
        String::from_utf8(out.get_output().stdout.clone()).unwrap()
    };
    let help = |args: &[&str]| help_with(args, "--help");
    let validate = help(&["validate"]);
    assert!(validate.contains("Exit codes:") && validate.contains("1  the dataset is invalid"));
    for cmd in [&["runs", "list"][..], &["runs", "show"], &["submit"]] {
        let text = help(cmd);
        for needle in [
            "Exit codes:",
            "AWS_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_REGION",
        ] {
            assert!(
                text.contains(needle),
                "{cmd:?} --help lacks {needle}:\n{text}"
            );
        }
    }
    assert!(help(&["runs", "list"]).contains("TABLE_NAME"));
    assert!(help(&["submit"]).contains("STATE_MACHINE_ARN"));
    // Every option line of the short help (`-h`: one line per option) carries a description after
    // its name (clap prints a bare name otherwise).
    for cmd in [
        &["validate"][..],
        &["runs", "list"],
        &["runs", "show"],
        &["submit"],
    ] {
        let text = help_with(cmd, "-h");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("--") {
                continue;
            }
            // Beside the name, or (when clap wraps a long one) on the next, deeper-indented line.
            let beside = line
                .trim()
                .split("  ")
                .filter(|p| !p.trim().is_empty())
                .count()
                > 1;
            let below = lines.get(i + 1).is_some_and(|next| {
                let t = next.trim_start();
                !t.is_empty()
                    && !t.starts_with('-')
                    && next.len() - t.len() > line.len() - line.trim_start().len()
            });
            assert!(
                beside || below,
                "{cmd:?}: option without a description: {line:?}"
            );
        }
    }
}
