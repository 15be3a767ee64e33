//! The Lambdas' Step Functions client finds sfn-local through `AWS_ENDPOINT_URL_SFN` (the local
//! stack puts it in lambda.env): the SDK's service-specific endpoint variable, named after the
//! service id `SFN`. Its own test binary, because it sets a process environment variable.

use aws_sdk_sfn::error::ProvideErrorMetadata;
use distillery_test_support::sfn_local::SfnLocal;

#[tokio::test]
async fn the_sdk_sends_sfn_calls_to_aws_endpoint_url_sfn() {
    let server = SfnLocal::bind(0).await.unwrap();
    // Set before any config is loaded in this process (no other test runs here).
    std::env::set_var("AWS_ENDPOINT_URL_SFN", server.base_url());
    std::env::set_var("AWS_ENDPOINT_URL", "http://127.0.0.1:9");
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");
    let cfg = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sfn = aws_sdk_sfn::Client::new(&cfg);
    let e = sfn
        .send_task_heartbeat()
        .task_token("AQCEAAAAKgAAAAMAAAAAunknown")
        .send()
        .await
        .unwrap_err();
    // Only sfn-local answers TaskDoesNotExist (port 9 refuses the connection).
    assert_eq!(e.code(), Some("TaskDoesNotExist"), "{e:?}");
}
