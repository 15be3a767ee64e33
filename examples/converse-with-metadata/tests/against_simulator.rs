//! The example against the Bedrock simulator's Converse: the metadata reaches the wire as
//! `requestMetadata` (the simulator records it with the call).

use aws_config::{BehaviorVersion, Region};
use aws_sdk_bedrockruntime::config::Credentials;
use bedrock_sim::SimConfig;
use converse_with_metadata::{converse_tagged, parse_metadata};

#[tokio::test]
async fn the_call_carries_the_request_metadata() {
    let sim = bedrock_sim::start(SimConfig::default());
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(sim.endpoint())
        .load()
        .await;
    let client = aws_sdk_bedrockruntime::Client::new(&config);
    let metadata = parse_metadata(&["app=support-bot".into(), "tenant=acme".into()]).unwrap();
    let answer = converse_tagged(
        &client,
        "amazon.nova-pro-v1:0",
        "How do I reset my password?",
        &metadata,
        256,
    )
    .await
    .unwrap();
    assert!(!answer.is_empty());
    let call = sim
        .calls()
        .into_iter()
        .find(|c| c.operation == "Converse")
        .expect("a Converse call");
    assert_eq!(
        call.request.get("requestMetadata"),
        Some(&serde_json::json!({"app": "support-bot", "tenant": "acme"}))
    );
}
