//! Provisioned Throughput driven through aws-sdk-bedrock.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_bedrock::types::{
    CommitmentDuration, ModelCustomizationJobStatus, ProvisionedModelStatus,
};
use aws_sdk_bedrock::Client;
use common::*;

/// Runs a job to completion and returns its custom model ARN.
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

async fn wait_pt(
    client: &Client,
    id: &str,
    want: ProvisionedModelStatus,
) -> Vec<ProvisionedModelStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let out = client
            .get_provisioned_model_throughput()
            .provisioned_model_id(id)
            .send()
            .await
            .unwrap();
        seen.push(out.status().clone());
        if out.status() == &want {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "PT {id} never became {want:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_provisioned_throughput_is_created_then_in_service_then_deleted() {
    let sim = sim(60);
    let client = client(&sim).await;
    let model_arn = completed_model(&client, "pt-source").await;
    sim.set_timing(bedrock_sim::Timing {
        phase_ms: 60,
        stop_ms: 60,
        pt_ms: 300,
    });

    let created = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("pt-source-serving")
        .model_id(&model_arn)
        .model_units(1)
        .send()
        .await
        .expect("create PT");
    let pt_arn = created.provisioned_model_arn().to_string();
    assert!(
        pt_arn.starts_with("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/"),
        "{pt_arn}"
    );

    let seen = wait_pt(&client, &pt_arn, ProvisionedModelStatus::InService).await;
    assert_eq!(seen[0], ProvisionedModelStatus::Creating);

    let by_name = client
        .get_provisioned_model_throughput()
        .provisioned_model_id("pt-source-serving")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.provisioned_model_arn(), pt_arn);
    assert_eq!(by_name.model_arn(), model_arn);
    assert_eq!(by_name.model_units(), 1);
    assert_eq!(
        by_name.foundation_model_arn(),
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0:300k"
    );
    assert_eq!(by_name.commitment_duration(), None);

    // Duplicate name refused.
    let err = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("pt-source-serving")
        .model_id(&model_arn)
        .model_units(1)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_validation_exception(),
        "{err:?}"
    );

    client
        .delete_provisioned_model_throughput()
        .provisioned_model_id(&pt_arn)
        .send()
        .await
        .expect("delete");
    let err = client
        .get_provisioned_model_throughput()
        .provisioned_model_id(&pt_arn)
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
        .delete_provisioned_model_throughput()
        .provisioned_model_id(&pt_arn)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception(),
        "{err:?}"
    );
}

#[tokio::test]
async fn throughput_requests_are_validated() {
    let sim = sim(60);
    let client = client(&sim).await;

    // A custom model nobody produced does not exist.
    let err = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("ghost")
        .model_id("arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-lite-v1:0:300k/abcdef012345")
        .model_units(1)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception(),
        "{err:?}"
    );

    let model_arn = completed_model(&client, "pt-validate").await;
    for (name, units, commitment, field) in [
        ("zero-units", 0, None, "modelUnits"),
        ("bad name!", 1, None, "provisionedModelName"),
        ("bad-commitment", 1, Some("TwoYears"), "commitmentDuration"),
    ] {
        let mut req = client
            .create_provisioned_model_throughput()
            .provisioned_model_name(name)
            .model_id(&model_arn)
            .model_units(units);
        if let Some(c) = commitment {
            req = req.commitment_duration(CommitmentDuration::from(c));
        }
        let err = req.send().await.unwrap_err();
        let e = err.as_service_error().unwrap();
        assert!(e.is_validation_exception(), "{err:?}");
        assert!(
            e.meta()
                .message()
                .unwrap()
                .contains(&format!("at '{field}'")),
            "{err:?}"
        );
    }

    // The same token returns the same PT; a committed PT cannot be deleted before its term ends.
    let first = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("committed")
        .model_id("pt-validate-model")
        .model_units(2)
        .commitment_duration(CommitmentDuration::OneMonth)
        .client_request_token("pt-token-1")
        .send()
        .await
        .expect("custom model by name");
    let again = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("committed")
        .model_id("pt-validate-model")
        .model_units(2)
        .commitment_duration(CommitmentDuration::OneMonth)
        .client_request_token("pt-token-1")
        .send()
        .await
        .expect("idempotent retry");
    assert_eq!(first.provisioned_model_arn(), again.provisioned_model_arn());
    let got = client
        .get_provisioned_model_throughput()
        .provisioned_model_id("committed")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.commitment_duration(),
        Some(&CommitmentDuration::OneMonth)
    );
    assert!(got.commitment_expiration_time().is_some());
    let err = client
        .delete_provisioned_model_throughput()
        .provisioned_model_id("committed")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_conflict_exception(),
        "{err:?}"
    );
}
