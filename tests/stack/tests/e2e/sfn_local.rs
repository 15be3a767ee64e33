//! sfn-local in the running stack: where stack.json and lambda.env say it is, answering the Step
//! Functions client the way the Lambdas will build it (AWS_ENDPOINT_URL_SFN), and recording the call.

use aws_sdk_sfn::error::ProvideErrorMetadata;

use super::*;

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn sfn_local_is_where_the_lambdas_look_for_step_functions() {
    let stack = stack().await;
    let url = &stack.info.sfn_url;
    assert!(url.starts_with("http://127.0.0.1:"), "sfnUrl {url:?}");
    assert_eq!(
        stack.info.lambda_env.get("AWS_ENDPOINT_URL_SFN"),
        Some(url),
        "lambda.env aims the Lambdas' Step Functions client at sfn-local"
    );
    assert_eq!(stack.default_substitutions["JobTrackingMode"], "events");
    assert!(stack
        .default_substitutions
        .contains_key("JobEventFallbackSeconds"));

    let token = format!("AQCE2e{}", unique_key("t").len());
    let sfn = aws_sdk_sfn::Client::new(&distillery_test_support::sdk_config(url).await);
    let e = sfn
        .send_task_heartbeat()
        .task_token(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("TaskDoesNotExist"), "{e:?}");
    let calls = stack.sfn_calls().await.expect("GET /local/calls");
    assert!(
        calls.iter().any(|c| c.op == "SendTaskHeartbeat"
            && c.task_token.as_deref() == Some(token.as_str())
            && c.result == "TaskDoesNotExist"),
        "{calls:?}"
    );
}

/// The harness's execution builder on the real pipeline: a substitution the current definition does
/// not use is harmless, `--time-scale` shortens the poller's Wait states, and the transition count
/// is the runner's (one per state entered plus one per retry).
#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn an_execution_with_substitutions_and_time_scale_counts_its_transitions() {
    let stack = stack().await;
    let key = unique_key("support-tickets");
    let event = stack
        .upload_and_receive(&key, sample_dataset(), &[("distillery-serving", "none")])
        .await
        .expect(NEEDS_STACK);
    let ex = stack
        .execution(&event)
        .substitution("JobTrackingMode", "polling")
        .time_scale(0.5)
        .run()
        .await
        .expect("execution");
    assert!(ex.succeeded(), "{:?} {:?}", ex.error, ex.cause);
    let entered = ex.states_entered();
    assert_eq!(entered.last().map(String::as_str), Some("Completed"));
    let retries: usize = ex
        .events
        .iter()
        .filter(|e| e["type"] == "StateRetried")
        .count();
    assert_eq!(ex.transitions as usize, entered.len() + retries);
    assert_eq!(
        ex.transitions_by_state.values().sum::<u64>(),
        ex.transitions
    );
    assert!(ex.task_tokens.is_empty(), "no waitForTaskToken state yet");
}
