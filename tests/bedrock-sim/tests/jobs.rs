//! Model customization jobs driven through aws-sdk-bedrock: lifecycle, identifiers, constraints.

mod common;

use std::time::Duration;

use aws_sdk_bedrock::types::{
    CustomizationType, ModelCustomizationJobStatus as Status, OutputDataConfig, TrainingDataConfig,
};
use bedrock_sim::Operation;
use common::*;

fn sub_statuses(
    out: &aws_sdk_bedrock::operation::get_model_customization_job::GetModelCustomizationJobOutput,
) -> [String; 3] {
    let d = out
        .status_details()
        .expect("distillation jobs have statusDetails");
    [
        d.validation_details()
            .and_then(|x| x.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        d.data_processing_details()
            .and_then(|x| x.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        d.training_details()
            .and_then(|x| x.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
    ]
}

#[tokio::test]
async fn a_job_runs_through_its_sub_statuses_to_completed() {
    let sim = sim(150);
    let client = client(&sim).await;
    let created = distill(&client, "support-distill-1")
        .send()
        .await
        .expect("create");
    let arn = created.job_arn().to_string();
    assert!(
        arn.starts_with("arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/"),
        "{arn}"
    );

    // Identify the job by its ARN (the SDK percent-encodes it in the path).
    let seen = poll_job(&client, &arn, Duration::from_secs(10), |o| {
        o.status() == Some(&Status::Completed)
    })
    .await;
    let first = &seen[0];
    assert_eq!(first.status(), Some(&Status::InProgress));
    assert_eq!(first.output_model_arn(), None);
    assert_eq!(first.end_time(), None);

    // Sub-statuses move NotStarted → InProgress → Completed, one phase after the other.
    let mut sequence: Vec<[String; 3]> = seen.iter().map(sub_statuses).collect();
    sequence.dedup();
    let expected: Vec<[String; 3]> = [
        ["InProgress", "NotStarted", "NotStarted"],
        ["Completed", "InProgress", "NotStarted"],
        ["Completed", "Completed", "InProgress"],
        ["Completed", "Completed", "Completed"],
    ]
    .iter()
    .map(|a| a.map(String::from))
    .collect();
    assert_eq!(sequence, expected);

    let done = seen.last().unwrap();
    let model_arn = done
        .output_model_arn()
        .expect("outputModelArn once Completed");
    assert!(
        model_arn.starts_with(
            "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-lite-v1:0:300k/"
        ),
        "{model_arn}"
    );
    assert_eq!(done.output_model_name(), "support-distill-1-model");
    assert_eq!(done.job_name(), "support-distill-1");
    assert_eq!(done.role_arn(), ROLE);
    assert_eq!(
        done.base_model_arn(),
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:300k"
    );
    assert_eq!(
        done.customization_type(),
        Some(&CustomizationType::Distillation)
    );
    assert_eq!(
        done.training_data_config().and_then(|t| t.s3_uri()),
        Some("s3://distillery-data/incoming/support.jsonl")
    );
    let end = done.end_time().expect("endTime when terminal");
    assert!(end.secs() >= done.creation_time().secs());

    // By name too, and the list shows it with its custom model.
    let by_name = client
        .get_model_customization_job()
        .job_identifier("support-distill-1")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.job_arn(), arn);
    let list = client
        .list_model_customization_jobs()
        .status_equals(aws_sdk_bedrock::types::FineTuningJobStatus::Completed)
        .send()
        .await
        .unwrap();
    let summaries = list.model_customization_job_summaries();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].custom_model_arn(), Some(model_arn));
}

#[tokio::test]
async fn the_same_client_request_token_returns_the_same_job() {
    let sim = sim(1000);
    let client = client(&sim).await;
    let a = distill(&client, "idem-job")
        .client_request_token("run-42")
        .send()
        .await
        .unwrap();
    let b = distill(&client, "idem-job")
        .client_request_token("run-42")
        .send()
        .await
        .unwrap();
    assert_eq!(a.job_arn(), b.job_arn());
    let creates = sim.calls_of(Operation::CreateModelCustomizationJob);
    assert_eq!(creates.len(), 2);
    assert!(creates
        .iter()
        .all(|c| c.succeeded() && c.resource_arn.as_deref() == Some(a.job_arn())));
    let list = client.list_model_customization_jobs().send().await.unwrap();
    assert_eq!(list.model_customization_job_summaries().len(), 1);

    // Same token, different request: refused.
    let err = distill(&client, "idem-job-2")
        .client_request_token("run-42")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_conflict_exception(),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_job_name_in_use_is_rejected() {
    let sim = sim(1000);
    let client = client(&sim).await;
    distill(&client, "dup-name").send().await.unwrap();
    let err = distill(&client, "dup-name")
        .custom_model_name("another-model")
        .send()
        .await
        .unwrap_err();
    let e = err.as_service_error().unwrap();
    assert!(e.is_validation_exception(), "{err:?}");
    assert!(e
        .meta()
        .message()
        .unwrap()
        .contains("job name is currently in use"));
}

async fn validation_message(
    result: Result<
        aws_sdk_bedrock::operation::create_model_customization_job::CreateModelCustomizationJobOutput,
        aws_sdk_bedrock::error::SdkError<
            aws_sdk_bedrock::operation::create_model_customization_job::CreateModelCustomizationJobError,
        >,
    >,
) -> String {
    let err = result.expect_err("request should be refused");
    let e = err.as_service_error().expect("a service error");
    assert!(e.is_validation_exception(), "{err:?}");
    e.meta().message().unwrap_or_default().to_string()
}

#[tokio::test]
async fn bad_names_and_s3_uris_are_validation_errors() {
    let sim = sim(1000);
    let client = client(&sim).await;

    let m = validation_message(distill(&client, "under_score").send().await).await;
    assert!(
        m.contains("at 'jobName'") && m.contains("regular expression"),
        "{m}"
    );

    let m = validation_message(
        distill(&client, &"x".repeat(64))
            .custom_model_name("ok")
            .send()
            .await,
    )
    .await;
    assert!(
        m.contains("at 'jobName'") && m.contains("less than or equal to 63"),
        "{m}"
    );

    let m = validation_message(
        distill(&client, "ok-1")
            .custom_model_name("two__underscores")
            .send()
            .await,
    )
    .await;
    assert!(m.contains("at 'customModelName'"), "{m}");

    let m = validation_message(
        distill(&client, "ok-2")
            .training_data_config(
                TrainingDataConfig::builder()
                    .s3_uri("s3://distillery-data/incoming/my file+1.jsonl")
                    .build(),
            )
            .send()
            .await,
    )
    .await;
    assert!(m.contains("at 'trainingDataConfig.s3Uri'"), "{m}");

    let m = validation_message(
        distill(&client, "ok-3")
            .output_data_config(
                OutputDataConfig::builder()
                    .s3_uri("s3://Upper/out/")
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    )
    .await;
    assert!(m.contains("at 'outputDataConfig.s3Uri'"), "{m}");

    // Missing required members are named, several at once.
    let m = validation_message(
        client
            .create_model_customization_job()
            .job_name("no-role")
            .base_model_identifier(STUDENT)
            .send()
            .await,
    )
    .await;
    for field in [
        "customModelName",
        "roleArn",
        "trainingDataConfig",
        "outputDataConfig",
    ] {
        assert!(
            m.contains(&format!("Value null at '{field}'")),
            "{field} not named in: {m}"
        );
    }

    let m = validation_message(
        distill(&client, "bad-token")
            .client_request_token("-bad-")
            .send()
            .await,
    )
    .await;
    assert!(m.contains("at 'clientRequestToken'"), "{m}");

    // None of these created a job.
    let list = client.list_model_customization_jobs().send().await.unwrap();
    assert!(list.model_customization_job_summaries().is_empty());
}

#[tokio::test]
async fn unsupported_pairs_and_missing_teacher_are_rejected() {
    let sim = sim(1000);
    let client = client(&sim).await;
    let m = validation_message(
        distill_pair(
            &client,
            "wrong-pair",
            TEACHER,
            "meta.llama3-1-8b-instruct-v1:0:128k",
        )
        .send()
        .await,
    )
    .await;
    assert!(
        m.contains("meta.llama3-1-8b-instruct-v1:0:128k") && m.contains(TEACHER),
        "{m}"
    );

    let m = validation_message(
        distill_pair(
            &client,
            "unknown-teacher",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
            STUDENT,
        )
        .send()
        .await,
    )
    .await;
    assert!(m.contains("unknown teacher"), "{m}");

    // Llama pairs are offered in us-west-2 only.
    let m = validation_message(
        distill_pair(
            &client,
            "llama-east",
            "meta.llama3-1-70b-instruct-v1:0",
            "meta.llama3-2-1b-instruct-v1:0:128k",
        )
        .send()
        .await,
    )
    .await;
    assert!(m.contains("us-west-2"), "{m}");
    let west = client_in(
        &sim,
        "us-west-2",
        aws_config::retry::RetryConfig::disabled(),
    )
    .await;
    let ok = distill_pair(
        &west,
        "llama-west",
        "meta.llama3-1-70b-instruct-v1:0",
        "meta.llama3-2-1b-instruct-v1:0:128k",
    )
    .send()
    .await
    .expect("pair is valid in us-west-2");
    assert!(ok.job_arn().starts_with("arn:aws:bedrock:us-west-2:"));

    // A teacher given as an ARN is understood.
    distill_pair(
        &client,
        "teacher-arn",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0",
        STUDENT,
    )
    .send()
    .await
    .expect("teacher ARN");

    let m = validation_message(
        client
            .create_model_customization_job()
            .job_name("no-teacher")
            .custom_model_name("no-teacher-model")
            .role_arn(ROLE)
            .base_model_identifier(STUDENT)
            .customization_type(CustomizationType::Distillation)
            .training_data_config(
                TrainingDataConfig::builder()
                    .s3_uri("s3://distillery-data/in.jsonl")
                    .build(),
            )
            .output_data_config(
                OutputDataConfig::builder()
                    .s3_uri("s3://distillery-data/out/")
                    .build()
                    .unwrap(),
            )
            .send()
            .await,
    )
    .await;
    assert!(m.contains("teacherModelConfig"), "{m}");
}

#[tokio::test]
async fn stopping_a_job_goes_through_stopping_to_stopped() {
    let sim = sim(300);
    let client = client(&sim).await;
    let arn = distill(&client, "to-stop")
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    client
        .stop_model_customization_job()
        .job_identifier(&arn)
        .send()
        .await
        .expect("stop");
    let seen = poll_job(&client, &arn, Duration::from_secs(10), |o| {
        o.status() == Some(&Status::Stopped)
    })
    .await;
    assert_eq!(seen[0].status(), Some(&Status::Stopping));
    assert_eq!(
        sub_statuses(&seen[0]),
        ["Stopping", "NotStarted", "NotStarted"].map(String::from)
    );
    let stopped = seen.last().unwrap();
    assert_eq!(
        sub_statuses(stopped),
        ["Stopped", "NotStarted", "NotStarted"].map(String::from)
    );
    assert!(stopped.end_time().is_some());
    assert_eq!(stopped.output_model_arn(), None);

    let err = client
        .stop_model_customization_job()
        .job_identifier(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_conflict_exception(),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_jobs_are_not_found_and_list_filters_and_pages() {
    let sim = sim(1000);
    let client = client(&sim).await;
    let err = client
        .get_model_customization_job()
        .job_identifier("nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception(),
        "{err:?}"
    );
    let err = client
        .get_model_customization_job()
        .job_identifier("arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/abcdef012345")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception(),
        "{err:?}"
    );

    for i in 0..5 {
        distill(&client, &format!("page-job-{i}"))
            .send()
            .await
            .unwrap();
    }
    distill(&client, "other-job").send().await.unwrap();
    let page1 = client
        .list_model_customization_jobs()
        .name_contains("page-job")
        .max_results(3)
        .send()
        .await
        .unwrap();
    assert_eq!(page1.model_customization_job_summaries().len(), 3);
    let token = page1.next_token().expect("more pages").to_string();
    let page2 = client
        .list_model_customization_jobs()
        .name_contains("page-job")
        .max_results(3)
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(page2.model_customization_job_summaries().len(), 2);
    assert_eq!(page2.next_token(), None);
    // Newest first by default.
    assert_eq!(
        page1.model_customization_job_summaries()[0].job_name(),
        "page-job-4"
    );
}
