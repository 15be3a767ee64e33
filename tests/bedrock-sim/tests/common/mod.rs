//! Shared helpers: an SDK client aimed at a simulator, a valid distillation request, polling.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_bedrock::config::Credentials;
use aws_sdk_bedrock::operation::create_model_customization_job::builders::CreateModelCustomizationJobFluentBuilder;
use aws_sdk_bedrock::operation::get_model_customization_job::GetModelCustomizationJobOutput;
use aws_sdk_bedrock::types::{
    CustomizationConfig, CustomizationType, DistillationConfig, OutputDataConfig,
    TeacherModelConfig, TrainingDataConfig,
};
use aws_sdk_bedrock::Client;
use bedrock_sim::{SimConfig, SimHandle, Timing};

pub const ROLE: &str = "arn:aws:iam::123456789012:role/distillery-bedrock";
pub const TEACHER: &str = "amazon.nova-pro-v1:0";
pub const STUDENT: &str = "amazon.nova-lite-v1:0:300k";

/// A simulator with the given phase duration (ms); Stopping and PT Creating last as long.
pub fn sim(phase_ms: u64) -> SimHandle {
    bedrock_sim::start(SimConfig {
        timing: Timing {
            phase_ms,
            stop_ms: phase_ms,
            pt_ms: phase_ms,
        },
        ..SimConfig::default()
    })
}

/// The way our Lambdas configure the SDK against emulators: test credentials, us-east-1, the
/// endpoint; retries off so each injected fault reaches the test.
pub async fn client(sim: &SimHandle) -> Client {
    client_in(sim, "us-east-1", RetryConfig::disabled()).await
}

pub async fn client_in(sim: &SimHandle, region: &'static str, retry: RetryConfig) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(sim.endpoint())
        .retry_config(retry)
        .load()
        .await;
    Client::new(&config)
}

/// A valid distillation request (Nova Pro → Nova Lite) for `job`.
pub fn distill(client: &Client, job: &str) -> CreateModelCustomizationJobFluentBuilder {
    distill_pair(client, job, TEACHER, STUDENT)
}

pub fn distill_pair(
    client: &Client,
    job: &str,
    teacher: &str,
    student: &str,
) -> CreateModelCustomizationJobFluentBuilder {
    client
        .create_model_customization_job()
        .job_name(job)
        .custom_model_name(format!("{}-model", job.replace('.', "-")))
        .role_arn(ROLE)
        .base_model_identifier(student)
        .customization_type(CustomizationType::Distillation)
        .customization_config(CustomizationConfig::DistillationConfig(
            DistillationConfig::builder()
                .teacher_model_config(
                    TeacherModelConfig::builder()
                        .teacher_model_identifier(teacher)
                        .max_response_length_for_inference(1000)
                        .build()
                        .expect("teacher config"),
                )
                .build(),
        ))
        .training_data_config(
            TrainingDataConfig::builder()
                .s3_uri("s3://distillery-data/incoming/support.jsonl")
                .build(),
        )
        .output_data_config(
            OutputDataConfig::builder()
                .s3_uri("s3://distillery-data/output/")
                .build()
                .expect("output config"),
        )
}

/// Polls the job until `done` holds, returning every response seen (fails after `timeout`).
pub async fn poll_job(
    client: &Client,
    id: &str,
    timeout: Duration,
    done: impl Fn(&GetModelCustomizationJobOutput) -> bool,
) -> Vec<GetModelCustomizationJobOutput> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let out = client
            .get_model_customization_job()
            .job_identifier(id)
            .send()
            .await
            .expect("GetModelCustomizationJob");
        let finished = done(&out);
        seen.push(out);
        if finished {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not reach the expected state; last: {:?}",
            seen.last()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
