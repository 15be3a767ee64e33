//! Use case: the quality gate's evaluation (the `model-evaluator` Lambda, issue 13).
//!
//! For each held-out record of a run (`runs/<run-id>/heldout.jsonl`, written by the validator and
//! never given to Bedrock) it asks the student and the teacher the record's prompt through the
//! Bedrock runtime, has the judge compare the two answers in both orders
//! ([`crate::domain::evaluation::judge`]) and scores ROUGE-L against the teacher's answer and the
//! record's golden answer when it has one ([`RecordResult::score`]).
//!
//! The records are evaluated in batches of `limits.json evaluation.batchRecords`, one batch per
//! invocation, so no invocation nears Lambda's 15-minute limit (the arithmetic is on
//! [`crate::domain::catalog::EvaluationLimits::batch_records`]). The state machine (or
//! `distillery eval`) calls it with `batch` 0, 1, ... while `nextBatch` is not null. Each batch's
//! results are written to `runs/<run-id>/evaluation/batch-NNNN.jsonl`, so a retried batch redoes
//! only itself; the last batch joins them into `runs/<run-id>/evaluation.jsonl`, decides the gate
//! against the threshold and records the decision on the run (`Run::evaluation`). Nothing here
//! changes the run's status: what a failed gate does to serving is the caller's to decide.

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::config::{process_var, Env};
use crate::domain::catalog::Limits;
use crate::domain::errors::StepError;
use crate::domain::evaluation::{
    decide, parse_judge_reply, resolve_min_score, Answer, EvaluationRecord, GateDecision, GatePlan,
    JudgeReply, JudgeRequest, RecordResult, MIN_SCORE_VAR, RUBRIC,
};
use crate::domain::run::{Run, RunId, RunStatus, RunUpdate};
use crate::ports::{
    ChatRole, ChatTurn, Clock, ConverseRequest, DatasetStore, ModelRuntime, PortError, RunLedger,
};

/// The setting naming the judge model (default: the run's teacher).
pub const JUDGE_VAR: &str = "QUALITY_GATE_JUDGE";
/// The held-out file's name in the run's folder.
pub const HELD_OUT_FILE: &str = "heldout.jsonl";
/// The joined per-record results' name in the run's folder.
pub const RESULTS_FILE: &str = "evaluation.jsonl";

/// Step input: `{"runId","batch"}`; `batch` (0-based) defaults to 0. `studentModel` evaluates
/// another model id than the run's own deployment or throughput (e.g. `distillery eval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateModelInput {
    pub run_id: RunId,
    #[serde(default)]
    pub batch: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_model: Option<String>,
}

/// Step output: call again with `nextBatch` until `done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateModelOutput {
    pub run_id: RunId,
    pub batch: usize,
    pub next_batch: Option<usize>,
    pub done: bool,
    /// Held-out records this batch evaluated.
    pub records: usize,
    /// The gate's decision, on the last batch only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
}

/// Evaluator settings, from the environment with defaults from `data/limits.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateConfig {
    /// `QUALITY_GATE_JUDGE`: the judge's model id; `None` judges with the run's teacher.
    pub judge: Option<String>,
    /// `QUALITY_GATE_MIN_SCORE`: the stack's threshold; `None` is limits.json's default.
    pub min_score: Option<f64>,
    pub limits: Limits,
}

impl EvaluateConfig {
    pub fn from_lookup(
        limits: &Limits,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, StepError> {
        let env = Env::new(lookup);
        let min_score = match env.optional_string(MIN_SCORE_VAR) {
            None => None,
            Some(v) => Some(
                crate::domain::evaluation::gate::parse_min_score(&v).ok_or_else(|| {
                    crate::config::invalid(
                        MIN_SCORE_VAR,
                        "a share between 0 and 1 (e.g. 0.7) or a percentage (e.g. 70%)",
                        &v,
                    )
                })?,
            ),
        };
        Ok(EvaluateConfig {
            judge: env.optional_string(JUDGE_VAR),
            min_score,
            limits: limits.clone(),
        })
    }

    pub fn from_env(limits: &Limits) -> Result<Self, StepError> {
        Self::from_lookup(limits, process_var)
    }
}

/// A line of `heldout.jsonl`: the record's position in the uploaded dataset and the record
/// itself, exactly as the dataset had it (`bedrock-conversation-2024`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldOutLine {
    pub index: usize,
    pub record: serde_json::Value,
}

/// What the evaluator sends for one held-out record.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOutPrompt {
    pub index: usize,
    pub system: Option<String>,
    /// The conversation up to and including the final user turn.
    pub turns: Vec<ChatTurn>,
    /// The dataset's own answer (a final assistant turn), when the record has one.
    pub golden: Option<String>,
}

impl HeldOutPrompt {
    /// The final user turn: what the judge sees as the prompt.
    pub fn prompt(&self) -> &str {
        self.turns.last().map_or("", |t| t.text.as_str())
    }
}

fn texts(content: Option<&serde_json::Value>) -> String {
    content
        .and_then(|c| c.as_array())
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Reads one held-out record. The validator checked the record before setting it aside, so a
/// record that is not a conversation ending in a user turn (or a user turn then the golden
/// answer) means the file was edited: an error naming the line.
pub fn parse_held_out(line_no: usize, line: &str) -> Result<HeldOutPrompt, StepError> {
    let bad = |why: &str| {
        StepError::invalid_input(format!(
            "{HELD_OUT_FILE} line {line_no}: {why}; the file is written by the validator and must not be edited"
        ))
    };
    let held: HeldOutLine =
        serde_json::from_str(line).map_err(|e| bad(&format!("not a held-out record ({e})")))?;
    let record = &held.record;
    let system = record
        .get("system")
        .map(|s| texts(Some(s)))
        .filter(|s| !s.is_empty());
    let messages = record
        .get("messages")
        .and_then(|m| m.as_array())
        .ok_or_else(|| bad("the record has no messages"))?;
    let mut turns = Vec::with_capacity(messages.len());
    for m in messages {
        let role = match m.get("role").and_then(|r| r.as_str()) {
            Some("user") => ChatRole::User,
            Some("assistant") => ChatRole::Assistant,
            other => return Err(bad(&format!("a message has role {other:?}"))),
        };
        turns.push(ChatTurn {
            role,
            text: texts(m.get("content")),
        });
    }
    let golden = match turns.last() {
        Some(t) if t.role == ChatRole::Assistant => turns.pop().map(|t| t.text),
        _ => None,
    };
    match turns.last() {
        Some(t) if t.role == ChatRole::User && !t.text.trim().is_empty() => {}
        _ => return Err(bad("the conversation does not end with a user prompt")),
    }
    Ok(HeldOutPrompt {
        index: held.index,
        system,
        turns,
        golden,
    })
}

/// `runs/<run-id>/evaluation/batch-NNNN.jsonl` for a run folder `runs/<run-id>/`.
pub fn batch_key(folder: &str, batch: usize) -> String {
    format!("{folder}evaluation/batch-{batch:04}.jsonl")
}

/// The model ids of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Models {
    student: String,
    teacher: String,
    judge: String,
    /// `maxTokens` for the student's and teacher's answers: the run's `maxResponseLength`, the
    /// length the student was distilled to answer in.
    max_tokens: u32,
}

/// The evaluator's dependencies. Built once per Lambda container.
pub struct ModelEvaluator<'a> {
    pub ledger: &'a dyn RunLedger,
    pub store: &'a dyn DatasetStore,
    pub runtime: &'a dyn ModelRuntime,
    pub clock: &'a dyn Clock,
    pub config: EvaluateConfig,
}

impl ModelEvaluator<'_> {
    pub async fn evaluate(
        &self,
        input: &EvaluateModelInput,
    ) -> Result<EvaluateModelOutput, StepError> {
        let run = self.ledger.get(&input.run_id).await?.ok_or_else(|| {
            StepError::not_found(format!("run {} is not in the ledger", input.run_id))
        })?;
        let models = self.models(&run, input.student_model.as_deref())?;
        let (bucket, folder) = run_folder(&run)?;
        let held_out = self.read_held_out(&bucket, &folder).await?;
        let size = self.config.limits.evaluation.batch_records;
        let batches = held_out.len().div_ceil(size);
        if input.batch >= batches {
            return Err(StepError::invalid_input(format!(
                "run {} has {} held-out records, {batches} batches of {size}: there is no batch {}",
                run.run_id,
                held_out.len(),
                input.batch
            )));
        }
        let part = &held_out[input.batch * size..((input.batch + 1) * size).min(held_out.len())];
        let results: Vec<RecordResult> = stream::iter(part.iter().map(|p| self.score(&models, p)))
            .buffered(self.config.limits.evaluation.concurrency)
            .try_collect()
            .await?;
        self.store
            .put(
                &bucket,
                &batch_key(&folder, input.batch),
                to_jsonl(&results)?,
                "application/x-ndjson",
            )
            .await
            .map_err(|e| e.context(format!("write batch {} of run {}", input.batch, run.run_id)))?;

        let next = input.batch + 1;
        if next < batches {
            return Ok(EvaluateModelOutput {
                run_id: run.run_id,
                batch: input.batch,
                next_batch: Some(next),
                done: false,
                records: results.len(),
                passed: None,
                score: None,
            });
        }
        let decision = self
            .finish(&run, &models, &bucket, &folder, batches)
            .await?;
        Ok(EvaluateModelOutput {
            run_id: run.run_id,
            batch: input.batch,
            next_batch: None,
            done: true,
            records: results.len(),
            passed: Some(decision.passed),
            score: Some(decision.summary.score),
        })
    }

    fn models(&self, run: &Run, student: Option<&str>) -> Result<Models, StepError> {
        // While the run is provisioning its gate is the pipeline's to decide, on its own
        // deployment; an evaluation of another model written now could race it.
        if student.is_some() && run.status == RunStatus::Provisioning {
            return Err(StepError::new(
                crate::domain::errors::ErrorType::Conflict,
                format!(
                    "run {} is provisioning: the pipeline is deciding its quality gate on its own \
                     deployment; evaluate another model once the run has ended",
                    run.run_id
                ),
            ));
        }
        // What the run recorded no longer serves: say so rather than fail on a deleted ARN.
        if student.is_none() && matches!(run.status, RunStatus::GateFailed | RunStatus::Retired) {
            return Err(StepError::invalid_input(format!(
                "run {} is {}: the deployment or throughput it recorded was deleted; give the model id to evaluate (e.g. a new on-demand deployment of {})",
                run.run_id,
                run.status,
                run.custom_model_arn.as_deref().unwrap_or("its custom model")
            )));
        }
        let student = student
            .map(str::to_string)
            .or_else(|| run.deployment_arn.clone())
            .or_else(|| run.provisioned_model_arn.clone())
            .ok_or_else(|| {
                StepError::invalid_input(format!(
                    "run {} has no on-demand deployment or Provisioned Throughput to evaluate: the \
                     student is callable only through one of them (or give the model id to evaluate)",
                    run.run_id
                ))
            })?;
        let teacher = run.settings.teacher.clone();
        Ok(Models {
            student,
            judge: self.config.judge.clone().unwrap_or_else(|| teacher.clone()),
            teacher,
            max_tokens: run.settings.max_response_length,
        })
    }

    async fn read_held_out(
        &self,
        bucket: &str,
        folder: &str,
    ) -> Result<Vec<HeldOutPrompt>, StepError> {
        let key = format!("{folder}{HELD_OUT_FILE}");
        let bytes = read_all(self.store, bucket, &key).await.map_err(|e| match e {
            PortError::NotFound(_) => StepError::not_found(format!(
                "s3://{bucket}/{key} does not exist: the run has no held-out slice (the quality gate \
                 was off at validation, or the dataset was too small to set records aside)"
            )),
            e => e.context(format!("read s3://{bucket}/{key}")),
        })?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| StepError::invalid_input(format!("s3://{bucket}/{key} is not UTF-8")))?;
        let held_out = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| parse_held_out(i + 1, l))
            .collect::<Result<Vec<_>, _>>()?;
        if held_out.is_empty() {
            return Err(StepError::invalid_input(format!(
                "s3://{bucket}/{key} holds no records: nothing to evaluate"
            )));
        }
        Ok(held_out)
    }

    /// One record: student and teacher together, then the judge in both orders together.
    async fn score(&self, m: &Models, p: &HeldOutPrompt) -> Result<RecordResult, StepError> {
        let ask = |model: &str| ConverseRequest {
            model_id: model.to_string(),
            system: p.system.clone(),
            messages: p.turns.clone(),
            max_tokens: Some(m.max_tokens),
            // Greedy decoding: the comparison should not hinge on sampling luck.
            temperature: Some(0.0),
        };
        let (ask_student, ask_teacher) = (ask(&m.student), ask(&m.teacher));
        let (student, teacher) = futures::try_join!(
            self.call(&ask_student, "the student", p.index),
            self.call(&ask_teacher, "the teacher", p.index),
        )?;
        let first = JudgeRequest::student_first(p.prompt(), &student.text, &teacher.text);
        let second = first.swapped();
        let (as_a, as_b) = futures::try_join!(
            self.judge(m, &first, p.index),
            self.judge(m, &second, p.index),
        )?;
        Ok(RecordResult::score(
            p.index,
            p.prompt().to_string(),
            p.golden.clone(),
            student,
            teacher,
            as_a,
            as_b,
        ))
    }

    async fn call(
        &self,
        req: &ConverseRequest,
        who: &str,
        index: usize,
    ) -> Result<Answer, StepError> {
        let a = self.runtime.converse(req).await.map_err(|e| {
            e.context(format!(
                "ask {who} ({}) held-out record {}",
                req.model_id,
                index + 1
            ))
        })?;
        Ok(Answer {
            text: a.text,
            latency_ms: a.latency_ms,
            output_tokens: a.output_tokens,
        })
    }

    async fn judge(
        &self,
        m: &Models,
        request: &JudgeRequest,
        index: usize,
    ) -> Result<JudgeReply, StepError> {
        let req = ConverseRequest {
            model_id: m.judge.clone(),
            system: Some(RUBRIC.to_string()),
            messages: vec![ChatTurn {
                role: ChatRole::User,
                text: request.user_message(),
            }],
            max_tokens: Some(self.config.limits.evaluation.judge_max_tokens),
            temperature: Some(0.0),
        };
        let answer = self.call(&req, "the judge", index).await?;
        parse_judge_reply(&answer.text).map_err(|e| {
            tracing::warn!(record = index + 1, reply_began = %e.excerpt, "judge reply outside the rubric");
            StepError::internal(format!(
                "the judge ({}) answered held-out record {} outside the rubric: {e}; choose a judge \
                 that follows instructions ({JUDGE_VAR})",
                m.judge,
                index + 1
            ))
        })
    }

    /// Joins the batches, decides the gate and records it on the run.
    async fn finish(
        &self,
        run: &Run,
        models: &Models,
        bucket: &str,
        folder: &str,
        batches: usize,
    ) -> Result<GateDecision, StepError> {
        let mut all = Vec::new();
        for b in 0..batches {
            let key = batch_key(folder, b);
            let bytes = read_all(self.store, bucket, &key)
                .await
                .map_err(|e| e.context(format!("read s3://{bucket}/{key}")))?;
            for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let r: RecordResult = serde_json::from_str(line).map_err(|e| {
                    StepError::internal(format!("s3://{bucket}/{key} line {}: {e}", i + 1))
                })?;
                all.push(r);
            }
        }
        let results_key = format!("{folder}{RESULTS_FILE}");
        let results_uri = self
            .store
            .put(
                bucket,
                &results_key,
                to_jsonl(&all)?,
                "application/x-ndjson",
            )
            .await
            .map_err(|e| e.context(format!("write s3://{bucket}/{results_key}")))?;
        // The threshold settled at validation (the stack's, or raised by the dataset's metadata)
        // is the one the run was promised; a run without an armed gate (e.g. `distillery eval`
        // of a run validated with the gate off) is measured against the evaluator's setting.
        let (threshold, origin) = match &run.quality_gate {
            Some(GatePlan::Armed {
                min_score,
                min_score_origin,
                ..
            }) => (*min_score, min_score_origin.clone()),
            _ => resolve_min_score(self.config.min_score, None, &self.config.limits)?,
        };
        let decision = decide(&all, threshold, &origin, &self.config.limits)?;
        let record = EvaluationRecord {
            decision: decision.clone(),
            student_model: models.student.clone(),
            teacher_model: models.teacher.clone(),
            judge_model: models.judge.clone(),
            results_uri,
            evaluated_at: self.clock.now(),
        };
        // A field-only update: whatever the run's status, the gate's result is recorded.
        self.ledger
            .update(
                &run.run_id,
                &[],
                &RunUpdate {
                    evaluation: Some(record),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.context(format!("record the evaluation of run {}", run.run_id)))?;
        Ok(decision)
    }
}

/// The run's bucket and folder (`runs/<run-id>/`): where its snapshot is.
fn run_folder(run: &Run) -> Result<(String, String), StepError> {
    let snapshot = run.snapshot.as_ref().ok_or_else(|| {
        StepError::invalid_input(format!(
            "run {} has no dataset snapshot (an invocation-log run or a rejected dataset), so no \
             held-out slice to evaluate on",
            run.run_id
        ))
    })?;
    let folder = match snapshot.key.rfind('/') {
        Some(i) => snapshot.key[..=i].to_string(),
        None => String::new(),
    };
    Ok((snapshot.bucket.clone(), folder))
}

async fn read_all(store: &dyn DatasetStore, bucket: &str, key: &str) -> Result<Vec<u8>, PortError> {
    let (_, chunks) = store.open(bucket, key, None).await?;
    let parts: Vec<Vec<u8>> = chunks.try_collect().await?;
    Ok(parts.concat())
}

fn to_jsonl<T: Serialize>(items: &[T]) -> Result<Vec<u8>, StepError> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, item)
            .map_err(|e| StepError::internal(format!("serialize an evaluation result: {e}")))?;
        out.push(b'\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
