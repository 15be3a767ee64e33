//! `distillery submit` against a moto server: S3 holds the dataset, Step Functions the state machine.
//! The execution moto records must carry exactly the `distillery.cli` payload the validator reads.

use assert_cmd::Command;
use aws_sdk_s3::primitives::ByteStream;
use distillery_core::app::validate_dataset::{
    run_for_object, ObjectVersion, ValidateInput, ValidatorConfig,
};
use distillery_core::domain::settings::SettingsOverrides;
use distillery_test_support::Moto;
use predicates::prelude::*;
use serde_json::{json, Value};

const BUCKET: &str = "distillery-datasets";
const KEY: &str = "incoming/support-tickets.jsonl";

struct Fixture {
    moto: Moto,
    s3: aws_sdk_s3::Client,
    sfn: aws_sdk_sfn::Client,
    state_machine_arn: String,
}

/// A bucket, one dataset object (with a `distillery-teacher` metadata override) and a state machine
/// with a trivial definition: moto records executions without running them.
async fn fixture() -> Fixture {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key(KEY)
        .metadata("distillery-teacher", "amazon.nova-pro-v1:0")
        .body(ByteStream::from_static(b"{}\n"))
        .send()
        .await
        .unwrap();
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let definition = json!({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}});
    let state_machine_arn = sfn
        .create_state_machine()
        .name("distillery-pipeline")
        .definition(definition.to_string())
        .role_arn("arn:aws:iam::123456789012:role/distillery-state-machine")
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    Fixture {
        moto,
        s3,
        sfn,
        state_machine_arn,
    }
}

fn distillery(f: &Fixture) -> Command {
    let mut cmd = Command::cargo_bin("distillery").unwrap();
    cmd.env("AWS_ENDPOINT_URL", &f.moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("STATE_MACHINE_ARN", &f.state_machine_arn)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    // The stack settings the local check reads: the built-in defaults unless a test sets them.
    for var in [
        "UPLOAD_PREFIX",
        "UPLOAD_SUFFIX",
        "DEFAULT_TEACHER",
        "DEFAULT_STUDENT",
        "DEFAULT_MAX_RESPONSE_LENGTH",
        "SERVING_MODE",
        "MODEL_UNITS",
        "COMMITMENT",
        "MAX_MODEL_UNITS",
        "ALLOWED_COMMITMENTS",
    ] {
        cmd.env_remove(var);
    }
    // A stack that allows what these tests ask for, as the local stack does (the code's defaults
    // are closed: tests of those set the variables themselves).
    cmd.env("ALLOW_PROVISIONING", "true")
        .env("ALLOW_OVERRIDES", "all");
    cmd
}

async fn executions(f: &Fixture) -> Vec<String> {
    f.sfn
        .list_executions()
        .state_machine_arn(&f.state_machine_arn)
        .send()
        .await
        .unwrap()
        .executions()
        .iter()
        .map(|e| e.execution_arn().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn submit_starts_an_execution_with_the_cli_payload() {
    let f = fixture().await;
    let head =
        f.s3.head_object()
            .bucket(BUCKET)
            .key(KEY)
            .send()
            .await
            .unwrap();
    let metadata = head
        .metadata()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let flags = SettingsOverrides {
        student: Some("amazon.nova-micro-v1:0:128k".into()),
        max_response_length: Some("2000".into()),
        serving: Some("provisioned".into()),
        model_units: Some("1".into()),
        commitment: Some("None".into()),
        ..Default::default()
    };
    // The run id the validator will give this object version with these settings.
    let config = ValidatorConfig::from_lookup(|k| {
        (k == "AWS_REGION")
            .then(|| "us-east-1".into())
            .or_else(|| distillery_core::testing::permissive_stack(k))
    })
    .unwrap();
    let (run_id, _) = run_for_object(
        &config,
        &ObjectVersion {
            bucket: BUCKET,
            key: KEY,
            version_id: head.version_id(),
            etag: head.e_tag().unwrap(),
            metadata: &metadata,
        },
        &flags,
        1,
    );

    let out = distillery(&f)
        .args([
            "submit",
            &format!("s3://{BUCKET}/{KEY}"),
            "--student",
            "amazon.nova-micro-v1:0:128k",
            "--max-response-length",
            "2000",
            "--serving",
            "provisioned",
            "--model-units",
            "1",
            "--commitment",
            "None",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let printed: Value = serde_json::from_slice(&out).expect("--format json prints JSON");
    let arn = printed["executionArn"].as_str().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:states:us-east-1:"), "{arn}");
    assert_eq!(printed["runId"], run_id.as_str());
    // The object's metadata teacher and the flags, resolved as the validator will.
    assert_eq!(printed["settings"]["teacher"], "amazon.nova-pro-v1:0");
    assert_eq!(
        printed["settings"]["student"],
        "amazon.nova-micro-v1:0:128k"
    );
    assert_eq!(printed["settings"]["serving"], "provisioned");

    let described = f
        .sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.state_machine_arn(), f.state_machine_arn);
    let name = described.name().unwrap();
    assert!(name.starts_with(&format!("{run_id}-")), "{name}");
    assert!(name.len() <= 80);
    let input: Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(
        input,
        json!({
            "source": "distillery.cli",
            "bucket": BUCKET,
            "key": KEY,
            "overrides": {
                "student": "amazon.nova-micro-v1:0:128k",
                "maxResponseLength": "2000",
                "serving": "provisioned",
                "modelUnits": "1",
                "commitment": "None"
            }
        })
    );
    assert!(matches!(
        ValidateInput::parse(input).unwrap(),
        ValidateInput::Submit(_)
    ));

    // Text output names the execution and how to follow the run; a second submission of the same
    // object is a second execution (the validator will find the run already recorded).
    distillery(&f)
        .args(["submit", &format!("s3://{BUCKET}/{KEY}")])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "execution ARN       arn:aws:states:",
        ))
        .stdout(predicate::str::contains(
            "follow it with: distillery runs show run-",
        ));
    assert_eq!(executions(&f).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn bad_requests_exit_2_and_start_nothing() {
    let f = fixture().await;
    let uri = format!("s3://{BUCKET}/{KEY}");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--student", "meta.llama3-1-8b-instruct-v1:0:128k"],
            "student 'meta.llama3-1-8b-instruct-v1:0:128k' cannot learn from teacher 'amazon.nova-pro-v1:0'",
        ),
        (
            vec!["--teacher", "amazon.nova-ultra"],
            "unknown teacher model 'amazon.nova-ultra'",
        ),
        (
            vec!["--max-response-length", "999999"],
            "maxResponseLength 999999 is outside",
        ),
        (
            vec!["--serving", "provisioned", "--model-units", "50"],
            "modelUnits 50 exceeds the stack's maximum",
        ),
        (
            vec!["--serving", "provisioned", "--commitment", "SixMonths"],
            "commitment SixMonths is not allowed",
        ),
        // clap refuses values that are not of the flag's type, naming the flag.
        (vec!["--model-units", "two"], "--model-units"),
        (vec!["--serving", "sometimes"], "--serving"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["submit", uri.as_str()];
        args.extend(flags);
        distillery(&f)
            .args(&args)
            .assert()
            .code(2)
            .stdout(predicate::str::is_empty())
            .stderr(predicate::str::contains(expected));
    }
    // Objects the pipeline would not take.
    for (object, expected) in [
        (
            format!("s3://{BUCKET}/incoming/missing.jsonl"),
            "reading s3://distillery-datasets/incoming/missing.jsonl",
        ),
        (
            format!("s3://{BUCKET}/elsewhere/a.jsonl"),
            "outside the upload area",
        ),
        (BUCKET.to_string(), "not an s3:// URI"),
    ] {
        distillery(&f)
            .args(["submit", &object])
            .assert()
            .code(2)
            .stderr(predicate::str::contains(expected));
    }
    // A stack that buys no throughput refuses it from a flag too, naming the setting and the flag.
    distillery(&f)
        .env("ALLOW_PROVISIONING", "false")
        .args(["submit", &uri, "--serving", "provisioned"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ALLOW_PROVISIONING is false"))
        .stderr(predicate::str::contains("the --serving flag"));
    // The object's own metadata (distillery-teacher) is refused when the stack does not open it
    // to uploads; a --teacher flag supersedes it (flags are the operator's, not the uploader's).
    distillery(&f)
        .env("ALLOW_OVERRIDES", "")
        .args(["submit", &uri])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "S3 metadata x-amz-meta-distillery-teacher is not allowed on this stack",
        ));
    assert!(executions(&f).await.is_empty(), "no execution was started");

    // No state machine configured, or one that does not exist.
    distillery(&f)
        .env_remove("STATE_MACHINE_ARN")
        .args(["submit", &uri])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--state-machine-arn or set STATE_MACHINE_ARN",
        ));
    distillery(&f)
        .args([
            "submit",
            &uri,
            "--state-machine-arn",
            "arn:aws:states:us-east-1:123456789012:stateMachine:nope",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("starting the pipeline"))
        .stderr(predicate::str::contains("stateMachine:nope"));
}

/// A `--teacher` flag supersedes the object's `distillery-teacher` metadata, so a stack that does
/// not open that key to uploads still takes the submission: flags are the operator's (they start
/// the execution with their own IAM rights), metadata is the uploader's.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_flag_supersedes_metadata_the_stack_does_not_open() {
    let f = fixture().await;
    let uri = format!("s3://{BUCKET}/{KEY}");
    distillery(&f)
        .env("ALLOW_OVERRIDES", "")
        .args(["submit", &uri, "--teacher", "amazon.nova-pro-v1:0"])
        .assert()
        .code(0);
    assert_eq!(executions(&f).await.len(), 1);
}
