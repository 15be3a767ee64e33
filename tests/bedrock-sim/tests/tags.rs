//! ListTagsForResource (POST /listTagsForResource) and the `hangJob` fault, through the real SDK.

mod common;

use std::time::Duration;

use aws_sdk_bedrock::types::{ModelCustomizationJobStatus as Status, Tag};
use common::*;

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().key(k).value(v).build().unwrap()
}

fn as_pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

#[tokio::test]
async fn tags_of_jobs_custom_models_and_throughputs_are_listed() {
    let sim = sim(30);
    let client = client(&sim).await;
    let job_arn = distill(&client, "tagged-job")
        .job_tags(tag("distillery:run-id", "run-1"))
        .custom_model_tags(tag("distillery:run-id", "run-1-model"))
        .send()
        .await
        .unwrap()
        .job_arn;
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&job_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        as_pairs(tags.tags()),
        vec![("distillery:run-id".to_string(), "run-1".to_string())]
    );

    let seen = poll_job(&client, &job_arn, Duration::from_secs(5), |o| {
        o.status() == Some(&Status::Completed)
    })
    .await;
    let model_arn = seen.last().unwrap().output_model_arn().unwrap().to_string();
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&model_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(as_pairs(tags.tags())[0].1, "run-1-model");

    let pt_arn = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("tagged-pt")
        .model_id(&model_arn)
        .model_units(1)
        .tags(tag("distillery:run-id", "run-1-pt"))
        .send()
        .await
        .unwrap()
        .provisioned_model_arn;
    let tags = client
        .list_tags_for_resource()
        .resource_arn(&pt_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(as_pairs(tags.tags())[0].1, "run-1-pt");

    // Unknown resource: ResourceNotFoundException; too short: ValidationException.
    let e = client
        .list_tags_for_resource()
        .resource_arn("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/zzzzzzzzzzzz")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_resource_not_found_exception(), "{e:?}");
    let e = client
        .list_tags_for_resource()
        .resource_arn("short")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(e.is_validation_exception(), "{e:?}");
    let logged = sim.calls_of(bedrock_sim::Operation::ListTagsForResource);
    assert_eq!(logged.len(), 5);
}

#[tokio::test]
async fn a_hanging_job_runs_until_stopped() {
    let sim = sim(10);
    let client = client(&sim).await;
    sim.hang_next_jobs(1);
    let job_arn = distill(&client, "hanging-job")
        .send()
        .await
        .unwrap()
        .job_arn;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let out = client
        .get_model_customization_job()
        .job_identifier(&job_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), Some(&Status::InProgress));
    client
        .stop_model_customization_job()
        .job_identifier(&job_arn)
        .send()
        .await
        .unwrap();
    poll_job(&client, &job_arn, Duration::from_secs(5), |o| {
        o.status() == Some(&Status::Stopped)
    })
    .await;
    // The next job is not affected.
    let other = distill(&client, "normal-job").send().await.unwrap().job_arn;
    poll_job(&client, &other, Duration::from_secs(5), |o| {
        o.status() == Some(&Status::Completed)
    })
    .await;
}
