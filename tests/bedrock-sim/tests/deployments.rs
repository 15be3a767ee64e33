//! Custom model deployments (Create/Get/List/Delete CustomModelDeployment) through the real SDK:
//! wire shapes, the time-scaled lifecycle, idempotency, the API's constraints, tags, faults and the
//! call log.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_bedrock::types::{
    CustomModelDeploymentStatus as Status, ModelCustomizationJobStatus, Tag,
};
use aws_sdk_bedrock::Client;
use bedrock_sim::{Fault, Operation};
use common::*;

async fn completed_model(client: &Client, job: &str) -> String {
    let arn = distill(client, job)
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    let seen = poll_job(client, &arn, Duration::from_secs(10), |o| {
        o.status() == Some(&ModelCustomizationJobStatus::Completed)
    })
    .await;
    seen.last().unwrap().output_model_arn().unwrap().to_string()
}

/// Polls GetCustomModelDeployment until `want`; returns every status seen, deduplicated in order.
async fn wait_deployment(client: &Client, id: &str, want: Status) -> Vec<Status> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen: Vec<Status> = Vec::new();
    loop {
        let out = client
            .get_custom_model_deployment()
            .custom_model_deployment_identifier(id)
            .send()
            .await
            .unwrap();
        if seen.last() != Some(out.status()) {
            seen.push(out.status().clone());
        }
        if out.status() == &want {
            return seen;
        }
        assert!(Instant::now() < deadline, "still {seen:?}, wanted {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn code<E: aws_sdk_bedrock::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("").to_string()
}

#[tokio::test]
async fn a_deployment_is_created_then_active_then_listed_tagged_and_deleted() {
    let sim = sim(30);
    sim.set_deployment_ms(Some(300));
    let client = client(&sim).await;
    let model_arn = completed_model(&client, "dep-source").await;

    let created = client
        .create_custom_model_deployment()
        .model_deployment_name("support-od-0123456789abcdef0123")
        .model_arn(&model_arn)
        .description("Distillery run run-0123456789abcdef0123")
        .client_request_token("run-0123456789abcdef0123-deploy")
        .tags(
            Tag::builder()
                .key("distillery:run-id")
                .value("run-1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let arn = created.custom_model_deployment_arn().to_string();
    assert!(
        arn.starts_with("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/"),
        "{arn}"
    );

    let got = client
        .get_custom_model_deployment()
        .custom_model_deployment_identifier(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), &Status::Creating);
    assert_eq!(
        got.model_deployment_name(),
        "support-od-0123456789abcdef0123"
    );
    assert_eq!(got.model_arn(), model_arn);
    assert_eq!(
        got.description(),
        Some("Distillery run run-0123456789abcdef0123")
    );
    assert!(got.failure_message().is_none());

    // By name as well as by ARN.
    let seen = wait_deployment(&client, "support-od-0123456789abcdef0123", Status::Active).await;
    assert_eq!(seen, vec![Status::Creating, Status::Active]);

    // The same token and request is the same deployment.
    let again = client
        .create_custom_model_deployment()
        .model_deployment_name("support-od-0123456789abcdef0123")
        .model_arn(&model_arn)
        .description("Distillery run run-0123456789abcdef0123")
        .client_request_token("run-0123456789abcdef0123-deploy")
        .tags(
            Tag::builder()
                .key("distillery:run-id")
                .value("run-1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.custom_model_deployment_arn(), arn);

    let listed = client
        .list_custom_model_deployments()
        .status_equals(Status::Active)
        .model_arn_equals(&model_arn)
        .send()
        .await
        .unwrap();
    let summaries = listed.model_deployment_summaries();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].custom_model_deployment_arn(), arn);
    assert_eq!(
        summaries[0].custom_model_deployment_name(),
        "support-od-0123456789abcdef0123"
    );
    assert!(client
        .list_custom_model_deployments()
        .status_equals(Status::Creating)
        .send()
        .await
        .unwrap()
        .model_deployment_summaries()
        .is_empty());

    let tags = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].value(), "run-1");

    client
        .delete_custom_model_deployment()
        .custom_model_deployment_identifier(&arn)
        .send()
        .await
        .unwrap();
    let gone = client
        .get_custom_model_deployment()
        .custom_model_deployment_identifier(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(gone
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());
    let gone = client
        .delete_custom_model_deployment()
        .custom_model_deployment_identifier(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(gone
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());

    let ops: Vec<String> = sim
        .calls()
        .iter()
        .filter(|c| c.operation.contains("CustomModelDeployment"))
        .map(|c| c.operation.clone())
        .collect();
    assert!(ops.contains(&"CreateCustomModelDeployment".to_string()));
    assert!(ops.contains(&"ListCustomModelDeployments".to_string()));
    let create = &sim.calls_of(Operation::CreateCustomModelDeployment)[0];
    assert_eq!(create.status, 202);
    assert_eq!(
        create.field("modelDeploymentName"),
        Some("support-od-0123456789abcdef0123")
    );
    assert_eq!(create.field("modelArn"), Some(model_arn.as_str()));
    assert_eq!(create.resource_arn.as_deref(), Some(arn.as_str()));
    let deletes = sim.calls_of(Operation::DeleteCustomModelDeployment);
    assert_eq!(deletes.len(), 2);
    assert_eq!(
        deletes[0].field("customModelDeploymentIdentifier"),
        Some(arn.as_str())
    );
    assert_eq!(
        deletes[1].error_type.as_deref(),
        Some("ResourceNotFoundException")
    );
}

#[tokio::test]
async fn the_api_constraints_are_enforced() {
    let sim = sim(20);
    let client = client(&sim).await;
    let model_arn = completed_model(&client, "dep-rules").await;
    let create = |name: &str, model: &str| {
        client
            .create_custom_model_deployment()
            .model_deployment_name(name)
            .model_arn(model)
    };

    // A name outside the pattern, and an ARN that is not a custom model's: ValidationException.
    let e = create("bad.name", &model_arn).send().await.unwrap_err();
    let se = e.as_service_error().unwrap();
    assert!(se.is_validation_exception(), "{se:?}");
    assert!(se.to_string().contains("modelDeploymentName"), "{se}");
    let e = create(
        "ok",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
    )
    .send()
    .await
    .unwrap_err();
    assert!(e.as_service_error().unwrap().is_validation_exception());
    assert_eq!(code(e.as_service_error().unwrap()), "ValidationException");

    // A well-formed custom model ARN no job produced: ResourceNotFoundException.
    let e = create(
        "ok",
        "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-lite-v1:0:300k/abcdef012345",
    )
    .send()
    .await
    .unwrap_err();
    assert!(e
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());

    // Names are unique: a second deployment of the same name (another token) is refused.
    create("dup", &model_arn)
        .client_request_token("t-1")
        .send()
        .await
        .unwrap();
    let e = create("dup", &model_arn)
        .client_request_token("t-2")
        .send()
        .await
        .unwrap_err();
    let se = e.as_service_error().unwrap();
    assert!(se.is_validation_exception(), "{se:?}");
    assert!(se.to_string().contains("already exists"), "{se}");
    // The same token with another request is refused too (not silently a second deployment).
    let e = create("dup-2", &model_arn)
        .client_request_token("t-1")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_validation_exception());

    // Identifiers: a Provisioned Throughput ARN is not a deployment identifier.
    let e = client
        .get_custom_model_deployment()
        .custom_model_deployment_identifier(
            "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef012345",
        )
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_validation_exception());
    let e = client
        .get_custom_model_deployment()
        .custom_model_deployment_identifier("nope")
        .send()
        .await
        .unwrap_err();
    assert!(e
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());

    // Bad list parameters.
    let e = client
        .list_custom_model_deployments()
        .max_results(0)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_validation_exception());
}

#[tokio::test]
async fn faults_fail_throttle_and_break_deployment_calls() {
    let sim = sim(20);
    sim.set_deployment_ms(Some(50));
    let client = client(&sim).await;
    let model_arn = completed_model(&client, "dep-faults").await;

    sim.inject(Fault::FailDeployment {
        count: None,
        name_contains: Some("-bad-".into()),
        message: Some("Insufficient capacity for on-demand deployment".into()),
    });
    let ok = client
        .create_custom_model_deployment()
        .model_deployment_name("x-good-1")
        .model_arn(&model_arn)
        .send()
        .await
        .unwrap();
    let bad = client
        .create_custom_model_deployment()
        .model_deployment_name("x-bad-1")
        .model_arn(&model_arn)
        .send()
        .await
        .unwrap();
    let bad_arn = bad.custom_model_deployment_arn();
    assert_eq!(
        wait_deployment(&client, bad_arn, Status::Failed).await,
        vec![Status::Creating, Status::Failed]
    );
    let got = client
        .get_custom_model_deployment()
        .custom_model_deployment_identifier(bad_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.failure_message(),
        Some("Insufficient capacity for on-demand deployment")
    );
    wait_deployment(&client, ok.custom_model_deployment_arn(), Status::Active).await;
    let failed = client
        .list_custom_model_deployments()
        .status_equals(Status::Failed)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.model_deployment_summaries().len(), 1);
    assert_eq!(
        failed.model_deployment_summaries()[0].failure_message(),
        Some("Insufficient capacity for on-demand deployment")
    );

    sim.throttle_next_of(Operation::GetCustomModelDeployment, 1);
    let e = client
        .get_custom_model_deployment()
        .custom_model_deployment_identifier(bad_arn)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_throttling_exception());
    sim.inject(Fault::InternalError {
        count: 1,
        operation: Some(Operation::CreateCustomModelDeployment),
    });
    let e = client
        .create_custom_model_deployment()
        .model_deployment_name("x-later")
        .model_arn(&model_arn)
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_internal_server_exception());
    sim.inject(Fault::QuotaExceeded {
        count: 1,
        operation: Some(Operation::CreateCustomModelDeployment),
    });
    let e = client
        .create_custom_model_deployment()
        .model_deployment_name("x-later")
        .model_arn(&model_arn)
        .send()
        .await
        .unwrap_err();
    assert!(e
        .as_service_error()
        .unwrap()
        .is_service_quota_exceeded_exception());
    // Get declares no quota error: such a fault is refused rather than sent.
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim.inject(Fault::QuotaExceeded {
            count: 1,
            operation: Some(Operation::GetCustomModelDeployment),
        })
    }));
    assert!(refused.is_err());
}

#[tokio::test]
async fn tag_and_untag_resource_change_a_deployments_tags() {
    let sim = sim(20);
    let client = client(&sim).await;
    let model_arn = completed_model(&client, "dep-tags").await;
    let arn = client
        .create_custom_model_deployment()
        .model_deployment_name("tagged")
        .model_arn(&model_arn)
        .tags(
            Tag::builder()
                .key("owner")
                .value("distillery")
                .build()
                .unwrap(),
        )
        .tags(
            Tag::builder()
                .key("expires-at")
                .value("2026-12-01T00:00:00Z")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .custom_model_deployment_arn()
        .to_string();
    let tags_now = || async {
        let mut t: Vec<(String, String)> = client
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        t.sort();
        t
    };
    client
        .tag_resource()
        .resource_arn(&arn)
        .tags(
            Tag::builder()
                .key("expires-at")
                .value("2026-12-02T00:00:00Z")
                .build()
                .unwrap(),
        )
        .tags(Tag::builder().key("run").value("run-1").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_now().await,
        vec![
            ("expires-at".into(), "2026-12-02T00:00:00Z".into()),
            ("owner".into(), "distillery".into()),
            ("run".into(), "run-1".into()),
        ]
    );
    client
        .untag_resource()
        .resource_arn(&arn)
        .tag_keys("owner")
        .tag_keys("not-there")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_now().await.len(), 2);

    // An unknown resource is not found; 2 + 200 tags are more than Bedrock allows.
    let e = client
        .tag_resource()
        .resource_arn("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/000000000000")
        .tags(Tag::builder().key("k").value("v").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(e
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());
    let too_many: Vec<Tag> = (0..200)
        .map(|i| {
            Tag::builder()
                .key(format!("k{i}"))
                .value("v")
                .build()
                .unwrap()
        })
        .collect();
    let e = client
        .tag_resource()
        .resource_arn(&arn)
        .set_tags(Some(too_many))
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_too_many_tags_exception());
    assert_eq!(sim.calls_of(Operation::TagResource).len(), 3);
    assert_eq!(sim.calls_of(Operation::UntagResource).len(), 1);

    client
        .delete_custom_model_deployment()
        .custom_model_deployment_identifier(&arn)
        .send()
        .await
        .unwrap();
    let e = client
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(e
        .as_service_error()
        .unwrap()
        .is_resource_not_found_exception());
}
