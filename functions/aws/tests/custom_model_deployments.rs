//! The Bedrock adapter's custom model deployment calls (Create/Get/List/Delete
//! CustomModelDeployment) through aws-sdk-bedrock against the Bedrock simulator: lifecycle,
//! idempotency, the API's refusals and how each error is classified into a `PortError`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use bedrock_sim::{Fault, Operation, SimConfig, SimHandle, Timing};
use distillery_aws::bedrock::BedrockCustomizationService;
use distillery_core::domain::naming;
use distillery_core::domain::run::RunId;
use distillery_core::ports::{
    CustomizationService, DeploymentRequest, DeploymentStatus, DistillationJobRequest, JobStatus,
    PortError, TrainingData,
};

const STUDENT: &str = "amazon.nova-lite-v1:0:300k";
const TEACHER: &str = "amazon.nova-pro-v1:0";

/// A simulator whose jobs finish quickly and whose deployments stay Creating `deployment_ms`, and
/// the adapter on it with SDK retries off (so an injected throttle reaches the caller).
async fn env(deployment_ms: u64) -> (SimHandle, BedrockCustomizationService) {
    let sim = bedrock_sim::start(SimConfig {
        timing: Timing {
            phase_ms: 20,
            stop_ms: 20,
            pt_ms: 20,
        },
        deployment_ms: Some(deployment_ms),
        ..SimConfig::default()
    });
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_sdk_bedrock::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .endpoint_url(sim.endpoint())
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    (sim, BedrockCustomizationService::from_conf(&conf))
}

/// Trains a model in the simulator through the adapter; returns the custom model ARN.
async fn trained_model(bedrock: &BedrockCustomizationService, run_id: &RunId) -> String {
    let req = DistillationJobRequest {
        job_name: naming::job_name(run_id, "support"),
        custom_model_name: naming::custom_model_name(run_id, "support"),
        role_arn: "arn:aws:iam::123456789012:role/distillery-bedrock".into(),
        student: STUDENT.into(),
        teacher: TEACHER.into(),
        max_response_length: 1000,
        training_data: TrainingData::S3 {
            s3_uri: "s3://datasets/incoming/support.jsonl".into(),
        },
        output_s3_uri: "s3://datasets/output/".into(),
        client_request_token: naming::client_request_token(run_id, "create-job"),
        job_tags: BTreeMap::new(),
        custom_model_tags: BTreeMap::new(),
        custom_model_kms_key_id: None,
    };
    let job = bedrock.create_distillation_job(&req).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = bedrock.get_job(&job).await.unwrap();
        if state.status == JobStatus::Completed {
            return state.output_model_arn.expect("a completed job has a model");
        }
        assert!(Instant::now() < deadline, "job still {:?}", state.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request(run_id: &RunId, model_arn: &str) -> DeploymentRequest {
    DeploymentRequest {
        deployment_name: naming::deployment_name(run_id, "support"),
        model_arn: model_arn.into(),
        description: Some(format!("Distillery run {}", run_id.as_str())),
        client_request_token: naming::deployment_client_request_token(run_id),
        tags: BTreeMap::from([("distillery:run-id".into(), run_id.as_str().into())]),
    }
}

async fn wait_for(
    bedrock: &BedrockCustomizationService,
    id: &str,
    want: DeploymentStatus,
) -> Vec<DeploymentStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let s = bedrock.get_custom_model_deployment(id).await.unwrap();
        if seen.last() != Some(&s.status) {
            seen.push(s.status);
        }
        if s.status == want {
            return seen;
        }
        assert!(Instant::now() < deadline, "still {seen:?}, wanted {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_deployment_goes_creating_to_active_retries_are_idempotent_and_delete_removes_it() {
    let (sim, bedrock) = env(300).await;
    let run_id = RunId("run-0123456789abcdef0123".into());
    let model = trained_model(&bedrock, &run_id).await;
    let req = request(&run_id, &model);

    let arn = bedrock.create_custom_model_deployment(&req).await.unwrap();
    assert!(arn.contains(":custom-model-deployment/"), "{arn}");
    let state = bedrock.get_custom_model_deployment(&arn).await.unwrap();
    assert_eq!(state.status, DeploymentStatus::Creating);
    assert_eq!(state.deployment_arn, arn);
    assert_eq!(state.deployment_name, "support-od-0123456789abcdef0123");
    assert_eq!(state.model_arn, model);
    assert_eq!(state.failure_message, None);
    assert!(state.created_at.is_some());

    // A retried create (same token, same request) is the same deployment, not a second one.
    assert_eq!(
        bedrock.create_custom_model_deployment(&req).await.unwrap(),
        arn
    );
    // Looked up by its deterministic name, as a retried step would.
    assert_eq!(
        wait_for(&bedrock, &req.deployment_name, DeploymentStatus::Active).await,
        vec![DeploymentStatus::Creating, DeploymentStatus::Active]
    );

    let listed = bedrock.list_custom_model_deployments().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].deployment_arn, arn);
    assert_eq!(listed[0].status, DeploymentStatus::Active);
    assert_eq!(
        bedrock.list_tags(&arn).await.unwrap()["distillery:run-id"],
        run_id.as_str()
    );

    bedrock.delete_custom_model_deployment(&arn).await.unwrap();
    let gone = bedrock.get_custom_model_deployment(&arn).await.unwrap_err();
    assert!(matches!(gone, PortError::NotFound(_)), "{gone}");
    let gone = bedrock
        .delete_custom_model_deployment(&arn)
        .await
        .unwrap_err();
    assert!(matches!(gone, PortError::NotFound(_)), "{gone}");
    assert!(bedrock
        .list_custom_model_deployments()
        .await
        .unwrap()
        .is_empty());

    let creates = sim.calls_of(Operation::CreateCustomModelDeployment);
    assert_eq!(creates.len(), 2);
    assert!(creates.iter().all(|c| c.field("clientRequestToken")
        == Some("run-0123456789abcdef0123-custom-model-deployment")));
}

#[tokio::test]
async fn refusals_are_classified() {
    let (_sim, bedrock) = env(20).await;
    let run_id = RunId("run-00000000000000000001".into());
    let model = trained_model(&bedrock, &run_id).await;
    bedrock
        .create_custom_model_deployment(&request(&run_id, &model))
        .await
        .unwrap();

    // The same name from another run's token: Bedrock declares no ConflictException for Create,
    // it answers ValidationException.
    let mut dup = request(&run_id, &model);
    dup.client_request_token = "another-token".into();
    let e = bedrock
        .create_custom_model_deployment(&dup)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PortError::Validation(m) if m.contains("already exists")),
        "{e}"
    );

    // A custom model nobody trained: ResourceNotFoundException.
    let other = RunId("run-00000000000000000002".into());
    let e = bedrock
        .create_custom_model_deployment(&request(
            &other,
            "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-lite-v1:0:300k/abcdef012345",
        ))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::NotFound(_)), "{e}");
    // Not a custom model ARN at all: ValidationException.
    let e = bedrock
        .create_custom_model_deployment(&request(&other, "amazon.nova-lite-v1:0"))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Validation(_)), "{e}");

    let e = bedrock
        .get_custom_model_deployment("no-such-deployment")
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::NotFound(_)), "{e}");
}

#[tokio::test]
async fn an_injected_failure_and_throttling_reach_the_caller() {
    let (sim, bedrock) = env(50).await;
    let run_id = RunId("run-00000000000000000003".into());
    let model = trained_model(&bedrock, &run_id).await;
    sim.inject(Fault::FailDeployment {
        count: Some(1),
        name_contains: Some("-od-".into()),
        message: Some("Insufficient capacity to deploy the model".into()),
    });
    let arn = bedrock
        .create_custom_model_deployment(&request(&run_id, &model))
        .await
        .unwrap();
    assert_eq!(
        wait_for(&bedrock, &arn, DeploymentStatus::Failed).await,
        vec![DeploymentStatus::Creating, DeploymentStatus::Failed]
    );
    let state = bedrock.get_custom_model_deployment(&arn).await.unwrap();
    assert_eq!(
        state.failure_message.as_deref(),
        Some("Insufficient capacity to deploy the model")
    );
    let listed = bedrock.list_custom_model_deployments().await.unwrap();
    assert_eq!(
        listed[0].failure_message.as_deref(),
        Some("Insufficient capacity to deploy the model")
    );

    for op in [
        Operation::CreateCustomModelDeployment,
        Operation::GetCustomModelDeployment,
        Operation::ListCustomModelDeployments,
        Operation::DeleteCustomModelDeployment,
    ] {
        sim.throttle_next_of(op, 1);
    }
    let e = bedrock
        .create_custom_model_deployment(&request(&run_id, &model))
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Throttled(_)), "{e}");
    let e = bedrock.get_custom_model_deployment(&arn).await.unwrap_err();
    assert!(matches!(e, PortError::Throttled(_)), "{e}");
    let e = bedrock.list_custom_model_deployments().await.unwrap_err();
    assert!(matches!(e, PortError::Throttled(_)), "{e}");
    let e = bedrock
        .delete_custom_model_deployment(&arn)
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Throttled(_)), "{e}");

    sim.inject(Fault::InternalError {
        count: 1,
        operation: Some(Operation::GetCustomModelDeployment),
    });
    let e = bedrock.get_custom_model_deployment(&arn).await.unwrap_err();
    assert!(matches!(e, PortError::Transient(_)), "{e}");
    sim.inject(Fault::QuotaExceeded {
        count: 1,
        operation: Some(Operation::CreateCustomModelDeployment),
    });
    let mut other = request(&run_id, &model);
    other.deployment_name = "support-od-second".into();
    other.client_request_token = "second".into();
    let e = bedrock
        .create_custom_model_deployment(&other)
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::QuotaExceeded(_)), "{e}");
    // Once the faults are spent, the calls work again.
    bedrock.delete_custom_model_deployment(&arn).await.unwrap();
}
