//! Issue 13, the validator's side of the quality gate: a dataset uploaded with
//! `distillery-quality-gate: on` (the local stack runs with `QUALITY_GATE=off`) has a slice of its
//! records set aside in `runs/<run-id>/heldout.jsonl`, and the bytes Bedrock is given to train on
//! (the simulator's record of CreateModelCustomizationJob) hold none of them. What happens after
//! the job (evaluation, serving) is not asserted here.

use distillery_core::domain::evaluation::GatePlan;
use sha2::Digest;

use super::*;

/// 200 valid records, each with its own prompt (a unique ticket number in the user's text).
fn tickets(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            json!({
                "schemaVersion": "bedrock-conversation-2024",
                "system": [{"text": "You are Ledgerly's customer support assistant."}],
                "messages": [
                    {"role": "user", "content": [{"text": format!("Ticket T-{i:04}: how do I resend invoice {i} to my client?")}]},
                    {"role": "assistant", "content": [{"text": format!("Open invoice {i}, choose More, then Resend.")}]}
                ]
            })
            .to_string()
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs the local stack: run `make e2e`"]
async fn held_out_records_never_reach_the_bytes_bedrock_trains_on() {
    let stack = stack().await;
    let records = tickets(200);
    let body = records.iter().map(|l| format!("{l}\n")).collect::<String>();
    let key = unique_key("held-out");
    let (_, ex) = stack
        .upload_and_run(
            &key,
            body.clone().into_bytes(),
            &[
                ("distillery-quality-gate", "on"),
                // The stack serves nothing by default; a gate needs something to be bought.
                ("distillery-serving", "on-demand"),
            ],
        )
        .await
        .expect(NEEDS_STACK);
    let id = run_id(&ex);
    let run = stack.run(&id).await.unwrap();
    assert!(
        !matches!(
            run.status,
            RunStatus::Received | RunStatus::Validating | RunStatus::Rejected
        ),
        "{run:?}; {}",
        explain(&ex)
    );

    // The run records the slice: 200 × 5 % = 10, raised to the minimum of 20.
    let Some(GatePlan::Armed {
        held_out_uri,
        records: held_count,
        sha256,
        ..
    }) = run.quality_gate.clone()
    else {
        panic!("the gate is armed: {:?}", run.quality_gate)
    };
    assert_eq!(held_count, 20);
    assert_eq!(
        held_out_uri,
        format!("s3://{}/runs/{id}/heldout.jsonl", stack.bucket())
    );
    let held = stack.read_s3_uri(&held_out_uri).await.unwrap();
    assert_eq!(sha256, hex::encode(sha2::Sha256::digest(&held)));
    let held = String::from_utf8(held).unwrap();
    let held_lines: Vec<Value> = held
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(held_lines.len(), 20, "{held}");
    let mut held_indices = Vec::new();
    for line in &held_lines {
        let i = line["index"].as_u64().unwrap() as usize;
        let original: Value = serde_json::from_str(&records[i]).unwrap();
        assert_eq!(line["record"], original, "record {i}");
        held_indices.push(i);
    }

    // What Bedrock was given: the run's training snapshot, 180 records, none of the held-out ones.
    let calls = stack.bedrock_calls().await.unwrap();
    let (created, _) = calls_of(&calls, "CreateModelCustomizationJob");
    assert_eq!(created.len(), 1, "one job: {created:?}");
    let training_uri = created[0]["request"]["trainingDataS3Uri"]
        .as_str()
        .expect("a training URI")
        .to_string();
    assert_eq!(
        Some(training_uri.as_str()),
        run.snapshot.as_ref().map(|s| s.uri.as_str())
    );
    let trained = String::from_utf8(stack.read_s3_uri(&training_uri).await.unwrap()).unwrap();
    assert_eq!(trained.lines().count(), 180);
    for i in &held_indices {
        let prompt = format!("Ticket T-{i:04}:");
        assert!(
            !trained.contains(&prompt),
            "held-out record {i} ({prompt}) is in the training data"
        );
    }
    // And everything else is, byte for byte, in order.
    let expected: String = records
        .iter()
        .enumerate()
        .filter(|(i, _)| !held_indices.contains(i))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    assert!(
        trained == expected,
        "the training data is the upload minus the held-out lines"
    );
}
