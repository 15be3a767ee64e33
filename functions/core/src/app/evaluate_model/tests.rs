use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::domain::errors::ErrorType;
use crate::domain::evaluation::{Outcome, Verdict};
use crate::domain::run::RunStatus;
use crate::domain::snapshot::{DatasetSnapshot, ObjectPin};
use crate::testing::fakes::{FixedClock, ScriptedRuntime};
use crate::testing::memory::{InMemoryDatasetStore, InMemoryRunLedger};
use crate::testing::sample_run;

const DEP: &str = "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/dddddddddddd";
const TEACHER: &str = "amazon.nova-pro-v1:0";
const BUCKET: &str = "data";

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 1, 0, 0).unwrap()
}

/// A ready on-demand run whose snapshot is in `runs/<id>/`.
fn run() -> Run {
    let mut r = sample_run(BUCKET, "incoming/chats.jsonl", "e", 10, t0());
    r.status = RunStatus::Ready;
    r.deployment_arn = Some(DEP.into());
    r.settings.max_response_length = 700;
    let key = format!("runs/{}/dataset.jsonl", r.run_id);
    r.snapshot = Some(DatasetSnapshot {
        uri: format!("s3://{BUCKET}/{key}"),
        bucket: BUCKET.into(),
        key,
        size: 1,
        sha256: "00".repeat(32),
        etag: "x".into(),
        source: ObjectPin::VersionId {
            version_id: "v1".into(),
        },
    });
    r
}

fn folder(r: &Run) -> String {
    format!("runs/{}/", r.run_id)
}

/// A held-out line: a single-turn record, with a golden answer when given.
fn line(index: usize, prompt: &str, golden: Option<&str>) -> String {
    let mut messages = vec![json!({"role": "user", "content": [{"text": prompt}]})];
    if let Some(g) = golden {
        messages.push(json!({"role": "assistant", "content": [{"text": g}]}));
    }
    json!({"index": index, "record": {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Be brief."}],
        "messages": messages,
    }})
    .to_string()
}

/// The teacher answers "answer to <prompt>"; the student the same, except on prompts containing
/// "hard", where it answers worse. The judge prefers the answer equal to the teacher's; TIE when
/// both are.
fn runtime() -> ScriptedRuntime {
    ScriptedRuntime::new(|req| {
        let last = &req.messages.last().unwrap().text;
        if let Some(j) = JudgeRequest::from_user_message(last) {
            let good = |a: &str| a.starts_with("answer to");
            let verdict = match (good(&j.answer_a), good(&j.answer_b)) {
                (true, false) => Verdict::A,
                (false, true) => Verdict::B,
                _ => Verdict::Tie,
            };
            return Ok(JudgeReply {
                verdict,
                reason: format!("{verdict} is closer"),
            }
            .render());
        }
        if req.model_id == DEP && last.contains("hard") {
            return Ok("no idea".into());
        }
        Ok(format!("answer to {last}"))
    })
}

struct World {
    ledger: InMemoryRunLedger,
    store: InMemoryDatasetStore,
    runtime: ScriptedRuntime,
    clock: FixedClock,
    run: Run,
}

impl World {
    async fn new(lines: &[String]) -> World {
        let run = run();
        let ledger = InMemoryRunLedger::new();
        ledger.create(&run).await.unwrap();
        let store = InMemoryDatasetStore::new();
        let body = lines.join("\n") + "\n";
        store.insert(BUCKET, &format!("{}heldout.jsonl", folder(&run)), body, &[]);
        World {
            ledger,
            store,
            runtime: runtime(),
            clock: FixedClock::at(t0()),
            run,
        }
    }

    fn evaluator(&self, batch_records: usize, env: &[(&str, &str)]) -> ModelEvaluator<'_> {
        let mut limits = Limits::builtin();
        limits.evaluation.batch_records = batch_records;
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = EvaluateConfig::from_lookup(&limits, |name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
        .unwrap();
        ModelEvaluator {
            ledger: &self.ledger,
            store: &self.store,
            runtime: &self.runtime,
            clock: &self.clock,
            config,
        }
    }

    fn input(&self, batch: usize) -> EvaluateModelInput {
        EvaluateModelInput {
            run_id: self.run.run_id.clone(),
            batch,
            student_model: None,
        }
    }

    async fn stored_run(&self) -> Run {
        self.ledger.get(&self.run.run_id).await.unwrap().unwrap()
    }

    fn results(&self, key: &str) -> Vec<RecordResult> {
        let bytes = self
            .store
            .get_bytes(BUCKET, &format!("{}{key}", folder(&self.run)))
            .unwrap_or_else(|| panic!("{key} was not written"));
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn batches_are_evaluated_one_per_call_and_the_last_decides_and_records_the_gate() {
    let lines = [
        line(3, "reset password", Some("answer to reset password")),
        line(9, "hard question", None),
        line(17, "billing", None),
    ];
    let w = World::new(&lines).await;
    let ev = w.evaluator(2, &[]);

    let out = ev.evaluate(&w.input(0)).await.unwrap();
    assert_eq!(out.next_batch, Some(1));
    assert!(!out.done);
    assert_eq!(out.records, 2);
    assert_eq!(out.passed, None);
    let first = w.results("evaluation/batch-0000.jsonl");
    assert_eq!(
        first.iter().map(|r| r.index).collect::<Vec<_>>(),
        [3, 9],
        "results keep the held-out order"
    );
    assert_eq!(first[0].outcome, Outcome::Tie);
    assert_eq!(first[0].rouge_l_vs_golden, Some(1.0));
    assert_eq!(first[1].outcome, Outcome::Loss);
    assert_eq!(first[1].rouge_l_vs_golden, None);
    assert!(
        w.stored_run().await.evaluation.is_none(),
        "nothing is decided before the last batch"
    );

    let out = ev.evaluate(&w.input(1)).await.unwrap();
    assert_eq!(out.next_batch, None);
    assert!(out.done);
    assert_eq!(out.records, 1);
    // 2 ties of 3 is below the default 70%.
    assert_eq!(out.passed, Some(false));
    let all = w.results("evaluation.jsonl");
    assert_eq!(all.iter().map(|r| r.index).collect::<Vec<_>>(), [3, 9, 17]);

    let run = w.stored_run().await;
    assert_eq!(
        run.status,
        RunStatus::Ready,
        "the evaluator never moves the run"
    );
    let e = run.evaluation.expect("the gate is recorded on the run");
    assert_eq!(e.student_model, DEP);
    assert_eq!(e.teacher_model, TEACHER);
    assert_eq!(e.judge_model, TEACHER, "the judge defaults to the teacher");
    assert_eq!(
        e.results_uri,
        format!("s3://{BUCKET}/{}evaluation.jsonl", folder(&w.run))
    );
    assert_eq!(e.evaluated_at, t0());
    let d = &e.decision;
    assert!(!d.passed);
    assert_eq!((d.summary.ties, d.summary.losses), (2, 1));
    assert_eq!(d.threshold, 0.7);
    assert_eq!(d.worst[0].index, 9);
}

#[tokio::test]
async fn each_record_asks_student_and_teacher_alike_and_the_judge_both_orders() {
    let w = World::new(&[line(0, "hard one", None)]).await;
    w.evaluator(20, &[]).evaluate(&w.input(0)).await.unwrap();
    let calls = w.runtime.calls();
    assert_eq!(calls.len(), 4);
    let (answers, judgings) = calls.split_at(2);
    let mut models: Vec<&str> = answers.iter().map(|c| c.model_id.as_str()).collect();
    models.sort();
    assert_eq!(models, [TEACHER, DEP]);
    for c in answers {
        assert_eq!(c.system.as_deref(), Some("Be brief."));
        assert_eq!(c.messages.len(), 1);
        assert_eq!(c.messages[0].text, "hard one");
        assert_eq!(c.max_tokens, Some(700), "the run's maxResponseLength");
        assert_eq!(c.temperature, Some(0.0));
    }
    let orders: Vec<JudgeRequest> = judgings
        .iter()
        .map(|c| {
            assert_eq!(c.model_id, TEACHER);
            assert_eq!(c.system.as_deref(), Some(RUBRIC));
            JudgeRequest::from_user_message(&c.messages[0].text).unwrap()
        })
        .collect();
    assert_eq!(orders[0].answer_a, "no idea", "the student's answer first");
    assert_eq!(orders[1].answer_b, "no idea", "then swapped");
    assert_eq!(orders[1], orders[0].swapped());
    // Both orders agree on a loss: position bias cancelled, not doubled.
    let r = &w.results("evaluation.jsonl")[0];
    assert_eq!(r.student_as_a.verdict, Verdict::B);
    assert_eq!(r.student_as_b.verdict, Verdict::A);
    assert_eq!(r.outcome, Outcome::Loss);
}

#[tokio::test]
async fn the_judge_the_threshold_and_the_student_can_be_chosen() {
    let w = World::new(&[line(0, "easy", None)]).await;
    let ev = w.evaluator(
        20,
        &[(JUDGE_VAR, "us.anthropic.judge"), (MIN_SCORE_VAR, "90%")],
    );
    let mut input = w.input(0);
    input.student_model = Some("amazon.nova-lite-v1:0".into());
    let out = ev.evaluate(&input).await.unwrap();
    assert_eq!(out.passed, Some(true));
    let models = w.runtime.models_called();
    assert!(models.contains(&"amazon.nova-lite-v1:0".to_string()));
    assert!(!models.contains(&DEP.to_string()));
    assert_eq!(
        models.iter().filter(|m| *m == "us.anthropic.judge").count(),
        2
    );
    let e = w.stored_run().await.evaluation.unwrap();
    assert_eq!(e.judge_model, "us.anthropic.judge");
    assert_eq!(e.decision.threshold, 0.9);
    assert!(e.decision.threshold_origin.contains(MIN_SCORE_VAR));
}

#[tokio::test]
async fn a_bad_threshold_setting_is_refused_naming_it() {
    let e = EvaluateConfig::from_lookup(&Limits::builtin(), |n| {
        (n == MIN_SCORE_VAR).then(|| "lots".to_string())
    })
    .unwrap_err();
    assert_eq!(e.error_type, ErrorType::ConfigInvalid);
    assert!(
        e.message.contains(MIN_SCORE_VAR) && e.message.contains("lots"),
        "{e}"
    );
}

#[tokio::test]
async fn runtime_failures_name_the_model_and_record_and_stay_retryable() {
    let w = World::new(&[line(5, "easy", None)]).await;
    w.runtime.fail_next(PortError::Throttled(
        "ThrottlingException: slow down".into(),
    ));
    let e = w
        .evaluator(20, &[])
        .evaluate(&w.input(0))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::Throttled);
    assert!(e.message.contains("held-out record 6"), "{e}");
    assert!(
        w.store
            .get_bytes(
                BUCKET,
                &format!("{}evaluation/batch-0000.jsonl", folder(&w.run))
            )
            .is_none(),
        "a failed batch writes nothing"
    );
    // The retry succeeds.
    w.evaluator(20, &[]).evaluate(&w.input(0)).await.unwrap();
}

#[tokio::test]
async fn a_judge_that_ignores_the_rubric_is_an_error_naming_the_setting() {
    let w = World::new(&[line(0, "easy", None)]).await;
    let rt = ScriptedRuntime::new(|_| Ok("I like both".into()));
    let ev = ModelEvaluator {
        runtime: &rt,
        ..w.evaluator(20, &[])
    };
    let e = ev.evaluate(&w.input(0)).await.unwrap_err();
    assert!(
        e.message.contains(JUDGE_VAR) && e.message.contains("record 1"),
        "{e}"
    );
}

#[tokio::test]
async fn what_cannot_be_evaluated_is_refused_with_the_reason() {
    // No deployment or throughput.
    let w = World::new(&[line(0, "easy", None)]).await;
    let mut bare = run();
    bare.deployment_arn = None;
    let ledger = InMemoryRunLedger::new();
    ledger.create(&bare).await.unwrap();
    let ev = ModelEvaluator {
        ledger: &ledger,
        ..w.evaluator(20, &[])
    };
    let e = ev.evaluate(&w.input(0)).await.unwrap_err();
    assert_eq!(e.error_type, ErrorType::InvalidInput);
    assert!(e.message.contains("no on-demand deployment"), "{e}");

    // No held-out file.
    w.store
        .remove(BUCKET, &format!("{}heldout.jsonl", folder(&w.run)));
    let e = w
        .evaluator(20, &[])
        .evaluate(&w.input(0))
        .await
        .unwrap_err();
    assert_eq!(e.error_type, ErrorType::NotFound);
    assert!(e.message.contains("no held-out slice"), "{e}");

    // A batch past the end.
    let w = World::new(&[line(0, "easy", None)]).await;
    let e = w
        .evaluator(20, &[])
        .evaluate(&w.input(1))
        .await
        .unwrap_err();
    assert!(e.message.contains("there is no batch 1"), "{e}");
}

#[test]
fn held_out_lines_are_read_with_their_golden_answer_and_history() {
    let l = json!({"index": 4, "record": {"messages": [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"text": "hello"}]},
        {"role": "user", "content": [{"text": "price?"}]},
        {"role": "assistant", "content": [{"text": "$5"}]},
    ]}})
    .to_string();
    let p = parse_held_out(1, &l).unwrap();
    assert_eq!(p.index, 4);
    assert_eq!(p.system, None);
    assert_eq!(p.turns.len(), 3);
    assert_eq!(p.prompt(), "price?");
    assert_eq!(p.golden.as_deref(), Some("$5"));

    let e = parse_held_out(7, r#"{"index": 1, "record": {"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}}"#)
        .unwrap_err();
    assert!(
        e.message.contains("line 7") && e.message.contains("user prompt"),
        "{e}"
    );
    let e = parse_held_out(2, "not json").unwrap_err();
    assert!(e.message.contains("line 2"), "{e}");
}

#[test]
fn sample_events_match_the_types() {
    let i: EvaluateModelInput =
        serde_json::from_str(include_str!("../../../../../events/evaluate-model.json")).unwrap();
    assert_eq!(i.batch, 0);
    assert_eq!(i.student_model, None);
    let o: EvaluateModelOutput = serde_json::from_str(include_str!(
        "../../../../../events/evaluate-model-output.json"
    ))
    .unwrap();
    assert!(o.done && o.next_batch.is_none());
    assert_eq!(o.passed, Some(true));
}
