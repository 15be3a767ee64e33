//! The SDK reaches the simulator through `AWS_ENDPOINT_URL_BEDROCK`, as the Lambdas do locally.
//! Alone in its own test binary because it sets process environment variables.

mod common;

use aws_config::BehaviorVersion;
use common::*;

#[tokio::test]
async fn aws_endpoint_url_bedrock_routes_the_sdk_to_the_simulator() {
    let sim = sim(1000);
    // SAFETY: this test binary holds one test, so no other thread reads the environment meanwhile.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL_BEDROCK", sim.endpoint());
        std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9"); // every other service
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let client = aws_sdk_bedrock::Client::new(&config);
    let arn = distill(&client, "via-env")
        .send()
        .await
        .expect("reached the simulator")
        .job_arn()
        .to_string();
    assert_eq!(sim.calls().len(), 1);
    assert_eq!(sim.calls()[0].resource_arn.as_deref(), Some(arn.as_str()));
}
