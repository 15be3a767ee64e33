//! Serving modes decided at validation, for students the local end-to-end stack cannot run: it runs
//! in us-east-1, and Llama pairs are offered only in us-west-2 (the validator refuses a pair outside
//! the stack's Region). So these run the real validator use case with in-memory adapters and a
//! us-west-2 stack configuration (`AWS_REGION`, as Lambda sets it), then hand the recorded run to the
//! real provisioner use case, and check the state machine routes the settled mode as the provisioner
//! expects.

use super::*;
use crate::app::provision_throughput::{
    ProvisionConfig, ProvisionOutcome, ProvisionThroughputInput, ThroughputProvisioner,
};
use crate::domain::run::RunUpdate;
use crate::domain::settings::ServingMode;
use crate::testing::fakes::ScriptedBedrock;

const LLAMA_8B: &str = "meta.llama3-1-8b-instruct-v1:0:128k";
const LLAMA_33_70B: &str = "meta.llama3-3-70b-instruct-v1:0:128k";

/// A stack deployed in us-west-2 whose default pair is Llama 3.1 405B → `student`.
fn west_stack(
    store: Arc<InMemoryDatasetStore>,
    student: &'static str,
) -> (DatasetValidatorService, Arc<InMemoryRunLedger>) {
    let vars: &'static [(&'static str, &'static str)] = match student {
        LLAMA_8B => &[
            ("AWS_REGION", "us-west-2"),
            ("DEFAULT_TEACHER", "meta.llama3-1-405b-instruct-v1:0"),
            ("DEFAULT_STUDENT", LLAMA_8B),
        ],
        _ => &[
            ("AWS_REGION", "us-west-2"),
            ("DEFAULT_TEACHER", "meta.llama3-1-405b-instruct-v1:0"),
            ("DEFAULT_STUDENT", LLAMA_33_70B),
        ],
    };
    service_with(store, vars)
}

/// The job ran and completed (what the launcher and the poller record), so the provisioner may act.
async fn complete(ledger: &InMemoryRunLedger, id: &RunId) {
    for (from, to) in [
        (RunStatus::Validated, RunStatus::Launching),
        (RunStatus::Launching, RunStatus::Training),
    ] {
        ledger
            .update(id, &[from], &RunUpdate::to(to))
            .await
            .unwrap();
    }
    let mut done = RunUpdate::to(RunStatus::Completed);
    done.custom_model_arn =
        Some("arn:aws:bedrock:us-west-2:123456789012:custom-model/meta.llama3-1-8b/abc".into());
    ledger
        .update(id, &[RunStatus::Training], &done)
        .await
        .unwrap();
}

#[tokio::test]
async fn auto_on_a_llama_student_without_on_demand_settles_to_none_and_the_run_ends_completed() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let etag = store.insert(
        BUCKET,
        "incoming/llama-auto.jsonl",
        dataset(120),
        &[("distillery-serving", "auto")],
    );
    let (svc, ledger) = west_stack(store, LLAMA_8B);
    let out = svc
        .handle(object_event("incoming/llama-auto.jsonl", &etag))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    // The validator's answer is what the state machine routes on after the job (PollStatus repeats
    // the run's serving): `none`, so CheckServing goes to NotifyCompleted.
    assert_eq!(out.serving, Some(ServingMode::None), "{out:?}");
    let id = out.run_id.clone().unwrap();
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.settings.student, LLAMA_8B);
    assert_eq!(run.settings.serving, ServingMode::None, "auto is settled");

    // Even if the provisioner is reached (a retried execution), it buys and creates nothing and the
    // run stays `completed`, its end state without serving.
    complete(&ledger, &id).await;
    let bedrock = ScriptedBedrock::default();
    let provisioner = ThroughputProvisioner {
        ledger: ledger.as_ref(),
        bedrock: &bedrock,
        clock: &crate::ports::SystemClock,
        config: ProvisionConfig::from_lookup(&Limits::builtin(), |_| None).unwrap(),
    };
    let o = provisioner
        .provision(&ProvisionThroughputInput {
            run_id: id.clone(),
            attempt: 0,
            evaluation_error: None,
        })
        .await
        .unwrap();
    assert_eq!(o.outcome, ProvisionOutcome::NotRequested);
    assert!(bedrock.calls().is_empty(), "{:?}", bedrock.calls());
    let run = ledger.get(&id).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert!(run.deployment_arn.is_none() && run.provisioned_model_arn.is_none());
}

#[tokio::test]
async fn auto_on_the_llama_student_with_on_demand_in_the_region_settles_to_on_demand() {
    // The contrast: `auto` follows model-pairs.json per student, not per family.
    let store = Arc::new(InMemoryDatasetStore::new());
    let etag = store.insert(
        BUCKET,
        "incoming/llama33-auto.jsonl",
        dataset(120),
        &[("distillery-serving", "auto")],
    );
    let (svc, ledger) = west_stack(store, LLAMA_33_70B);
    let out = svc
        .handle(object_event("incoming/llama33-auto.jsonl", &etag))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Validated), "{out:?}");
    let run = ledger.all().remove(0);
    assert_eq!(run.settings.serving, ServingMode::OnDemand);
}

#[tokio::test]
async fn on_demand_for_a_student_without_it_is_rejected_before_launch_with_the_reason() {
    let store = Arc::new(InMemoryDatasetStore::new());
    let etag = store.insert(
        BUCKET,
        "incoming/llama-on-demand.jsonl",
        dataset(120),
        &[("distillery-serving", "on-demand")],
    );
    let (svc, ledger) = west_stack(store.clone(), LLAMA_8B);
    let out = svc
        .handle(object_event("incoming/llama-on-demand.jsonl", &etag))
        .await
        .unwrap();
    assert_eq!(out.status, Some(RunStatus::Rejected), "{out:?}");
    assert!(!out.valid);
    let run = ledger.all().remove(0);
    assert_eq!(run.status, RunStatus::Rejected);
    let reason = run.failure_reason.clone().unwrap();
    assert!(
        reason.contains(&format!(
            "serving 'on-demand' is not possible: Bedrock offers no on-demand deployment for custom {LLAMA_8B} models (model-pairs.json); use serving 'provisioned'"
        )),
        "{reason}"
    );
    assert!(reason.contains("x-amz-meta-distillery-serving"), "{reason}");
    // Refused before a record was read or a snapshot taken, and before launch: the validator has
    // no Bedrock client at all, and the run records no job.
    let v = run.validation.clone().unwrap();
    assert_eq!(v.records, 0);
    assert!(run.snapshot.is_none() && run.job_name.is_none() && run.job_arn.is_none());
    assert!(store
        .get_bytes(BUCKET, &format!("runs/{}/dataset.jsonl", run.run_id))
        .is_none());
}
