//! Each injected fault surfaces through aws-sdk-bedrock as the right typed error or status.

mod common;

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_sdk_bedrock::types::{ModelCustomizationJobStatus as Status, ProvisionedModelStatus};
use bedrock_sim::{Fault, Operation, Phase};
use common::*;

#[tokio::test]
async fn throttling_hits_the_next_n_calls() {
    let sim = sim(1000);
    let client = client(&sim).await;
    sim.throttle_next(2);
    let err = distill(&client, "throttled").send().await.unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_throttling_exception(),
        "{err:?}"
    );
    let err = client
        .list_model_customization_jobs()
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_throttling_exception(),
        "{err:?}"
    );
    distill(&client, "throttled")
        .send()
        .await
        .expect("third call goes through");

    let calls = sim.calls();
    let statuses: Vec<(String, u16)> = calls
        .iter()
        .map(|c| (c.operation.clone(), c.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("CreateModelCustomizationJob".to_string(), 429),
            ("ListModelCustomizationJobs".to_string(), 429),
            ("CreateModelCustomizationJob".to_string(), 201),
        ]
    );
    assert_eq!(calls[0].error_type.as_deref(), Some("ThrottlingException"));
    assert_eq!(calls[2].field("jobName"), Some("throttled"));
    assert_eq!(calls[2].field("teacherModelIdentifier"), Some(TEACHER));
}

#[tokio::test]
async fn throttling_can_target_one_operation() {
    let sim = sim(1000);
    let client = client(&sim).await;
    sim.throttle_next_of(Operation::GetModelCustomizationJob, 1);
    distill(&client, "only-get")
        .send()
        .await
        .expect("create is not throttled");
    let err = client
        .get_model_customization_job()
        .job_identifier("only-get")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error().unwrap().is_throttling_exception(),
        "{err:?}"
    );
    client
        .get_model_customization_job()
        .job_identifier("only-get")
        .send()
        .await
        .expect("fault used up");
    assert!(sim.active_faults().is_empty());
}

#[tokio::test]
async fn the_sdk_standard_retry_absorbs_one_throttle() {
    let sim = sim(1000);
    let client = client_in(
        &sim,
        "us-east-1",
        RetryConfig::standard().with_max_attempts(3),
    )
    .await;
    distill(&client, "retried").send().await.unwrap();
    sim.clear_calls();
    sim.throttle_next(1);
    client
        .get_model_customization_job()
        .job_identifier("retried")
        .send()
        .await
        .expect("retried");
    let gets = sim.calls_of(Operation::GetModelCustomizationJob);
    assert_eq!(
        gets.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
}

#[tokio::test]
async fn quota_exceeded_and_internal_errors_are_typed() {
    let sim = sim(1000);
    let client = client(&sim).await;
    sim.quota_exceeded_next(1);
    let err = distill(&client, "over-quota").send().await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_service_quota_exceeded_exception(),
        "{err:?}"
    );
    distill(&client, "over-quota")
        .send()
        .await
        .expect("quota fault used up");

    sim.inject(Fault::InternalError {
        count: 1,
        operation: Some(Operation::GetModelCustomizationJob),
    });
    let err = client
        .get_model_customization_job()
        .job_identifier("over-quota")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_internal_server_exception(),
        "{err:?}"
    );

    sim.inject(Fault::QuotaExceeded {
        count: 1,
        operation: Some(Operation::CreateProvisionedModelThroughput),
    });
    let err = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("pt")
        .model_id("amazon.nova-lite-v1:0:300k")
        .model_units(1)
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_service_quota_exceeded_exception(),
        "{err:?}"
    );

    // The real quota on jobs in progress.
    let limited = bedrock_sim::start(bedrock_sim::SimConfig {
        max_in_progress_jobs: Some(1),
        ..Default::default()
    });
    let c2 = common::client(&limited).await;
    distill(&c2, "first").send().await.unwrap();
    let err = distill(&c2, "second").send().await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_service_quota_exceeded_exception(),
        "{err:?}"
    );

    // The quota set at run time (`/_sim/quota`): lifted, the second job is accepted; set to 2,
    // the third is refused; bad bodies are named.
    let http = reqwest::Client::new();
    let quota = format!("{}/_sim/quota", limited.endpoint());
    let set = |v: serde_json::Value| http.put(&quota).json(&v).send();
    let r = set(serde_json::json!({"maxInProgressJobs": null}))
        .await
        .unwrap();
    assert!(r.status().is_success());
    distill(&c2, "second").send().await.unwrap();
    let r = set(serde_json::json!({"maxInProgressJobs": 2}))
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["maxInProgressJobs"],
        2
    );
    let err = distill(&c2, "third").send().await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_service_quota_exceeded_exception(),
        "{err:?}"
    );
    let r = set(serde_json::json!({"maxJobs": 2})).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("maxInProgressJobs"));
}

#[tokio::test]
async fn injected_job_failures_end_failed_with_the_message() {
    let sim = sim(80);
    let client = client(&sim).await;
    sim.fail_next_jobs(1, "Teacher model invocation failed: AccessDenied");
    sim.inject(Fault::FailJob {
        count: None,
        name_contains: Some("poison".into()),
        message: None,
        phase: Phase::Validation,
    });
    let failing = distill(&client, "next-fails")
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    let healthy = distill(&client, "healthy")
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();
    let poison = distill(&client, "poison-data")
        .send()
        .await
        .unwrap()
        .job_arn()
        .to_string();

    let done = |o: &aws_sdk_bedrock::operation::get_model_customization_job::GetModelCustomizationJobOutput| {
        o.status().is_some_and(|s| s != &Status::InProgress)
    };
    let f = poll_job(&client, &failing, Duration::from_secs(10), done)
        .await
        .pop()
        .unwrap();
    assert_eq!(f.status(), Some(&Status::Failed));
    assert_eq!(
        f.failure_message(),
        Some("Teacher model invocation failed: AccessDenied")
    );
    assert_eq!(f.output_model_arn(), None);
    let training = f
        .status_details()
        .unwrap()
        .training_details()
        .unwrap()
        .status()
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(training, "Failed");

    let h = poll_job(&client, &healthy, Duration::from_secs(10), done)
        .await
        .pop()
        .unwrap();
    assert_eq!(h.status(), Some(&Status::Completed));

    let p = poll_job(&client, &poison, Duration::from_secs(10), done)
        .await
        .pop()
        .unwrap();
    assert_eq!(p.status(), Some(&Status::Failed));
    let d = p.status_details().unwrap();
    assert_eq!(
        d.validation_details().unwrap().status().unwrap().as_str(),
        "Failed"
    );
    assert_eq!(
        d.training_details().unwrap().status().unwrap().as_str(),
        "NotStarted"
    );
    assert!(p.failure_message().unwrap().contains("injected"));
}

#[tokio::test]
async fn an_injected_throughput_failure_ends_failed() {
    let sim = sim(80);
    let client = client(&sim).await;
    sim.fail_next_throughputs(1, "Insufficient capacity for model units");
    let arn = client
        .create_provisioned_model_throughput()
        .provisioned_model_name("will-fail")
        .model_id("amazon.nova-lite-v1:0:300k")
        .model_units(1)
        .send()
        .await
        .unwrap()
        .provisioned_model_arn()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = client
            .get_provisioned_model_throughput()
            .provisioned_model_id(&arn)
            .send()
            .await
            .unwrap();
        if out.status() != &ProvisionedModelStatus::Creating {
            break out;
        }
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(out.status(), &ProvisionedModelStatus::Failed);
    assert_eq!(
        out.failure_message(),
        Some("Insufficient capacity for model units")
    );
}
