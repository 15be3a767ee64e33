//! The Bedrock runtime's Converse operation: which model a `modelId` names, whether it can answer,
//! the request's constraints, and the answer (see `runtime.rs` for what the models say).
//!
//! Shapes and errors are from the runtime's API model (botocore `bedrock-runtime/2023-09-30`):
//! `POST /model/{modelId}/converse`, request `messages`, `system`, `inferenceConfig`; response
//! `output.message`, `stopReason`, `usage`, `metrics.latencyMs`.

use chrono::{DateTime, Utc};
use distillery_core::domain::evaluation::JudgeRequest;
use serde_json::{json, Map, Value};

use crate::runtime::{self, ModelKind};
use crate::validate::{Fields, Violations};
use crate::wire::{ApiError, ErrorKind};

use super::{ApiSuccess, Sim};

/// Inference profile prefixes (the geography a cross-Region profile routes within).
const PROFILE_PREFIXES: [&str; 8] = ["us", "us-gov", "eu", "apac", "ca", "jp", "au", "global"];

/// Bedrock's answer for a model identifier it does not know.
const INVALID_MODEL: &str = "The provided model identifier is invalid.";

/// What a Converse request asks, once checked.
struct Conversation {
    /// The last user message's text: what the answer is about.
    prompt: String,
    /// Bytes of every text sent (system prompt and all messages), for `usage.inputTokens`.
    input_bytes: usize,
    max_tokens: Option<u64>,
}

/// `us.amazon.nova-pro-v1:0` → `amazon.nova-pro-v1:0`; None when there is no profile prefix.
fn strip_profile_prefix(id: &str) -> Option<&str> {
    let (prefix, rest) = id.split_once('.')?;
    PROFILE_PREFIXES
        .contains(&prefix)
        .then_some(rest)
        .filter(|r| r.contains('.'))
}

/// A student's customization id without its context-window suffix:
/// `amazon.nova-lite-v1:0:300k` → `amazon.nova-lite-v1:0`, the id it is invoked by.
fn invocation_id(student: &str) -> &str {
    match student.rsplit_once(':') {
        Some((base, ctx))
            if ctx.len() > 1
                && ctx.ends_with('k')
                && ctx[..ctx.len() - 1].bytes().all(|b| b.is_ascii_digit()) =>
        {
            base
        }
        _ => student,
    }
}

/// The last user message's text (its text blocks joined by newlines), the prompt a simulated model
/// answers; None when the body has no user message with text.
pub(crate) fn last_user_text(body: &Map<String, Value>) -> Option<String> {
    body.get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content")?.as_array())
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
}

impl Sim {
    /// A foundation model's kind: a teacher in `model-pairs.json`, or a student's base model.
    /// `via_profile`: named through an inference profile (needed for profile-only teachers).
    fn foundation_kind(&self, id: &str, via_profile: bool) -> Result<ModelKind, ApiError> {
        for pair in &self.config.catalog.pairs {
            let (base, listed_as_profile) = match strip_profile_prefix(&pair.teacher) {
                Some(base) => (base, true),
                None => (pair.teacher.as_str(), false),
            };
            if base != id {
                continue;
            }
            if (pair.inference_profile_only || listed_as_profile) && !via_profile {
                // Bedrock's wording for a model offered through inference profiles only.
                return Err(ApiError::validation(format!(
                    "Invocation of model ID {id} with on-demand throughput isn't supported. Retry your \
                     request with the ID or ARN of an inference profile that contains this model."
                )));
            }
            return Ok(ModelKind::Teacher);
        }
        if self
            .config
            .catalog
            .students
            .keys()
            .any(|s| invocation_id(s) == id)
        {
            return Ok(ModelKind::Student);
        }
        Err(ApiError::validation(INVALID_MODEL))
    }

    /// Whether a custom model deployment or Provisioned Throughput in `status` can answer now.
    fn ready(what: &str, arn: &str, status: &str, ready_status: &str) -> Result<(), ApiError> {
        match status {
            s if s == ready_status => Ok(()),
            "Creating" => Err(ApiError::new(
                ErrorKind::ModelNotReady,
                format!("The {what} {arn} is not ready to serve inference requests (status Creating). Try again later."),
            )),
            other => Err(ApiError::validation(format!(
                "The {what} {arn} cannot serve inference requests: its status is {other}."
            ))),
        }
    }

    /// Who answers for `model_id`, and the resource ARN it names (for the call log).
    pub(super) fn model_kind(
        &self,
        region: &str,
        model_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(ModelKind, String), ApiError> {
        let foundation_arn = |id: &str| format!("arn:aws:bedrock:{region}::foundation-model/{id}");
        if let Some(rest) = model_id.strip_prefix("arn:") {
            // arn:partition:bedrock:region:account:resource (the resource may contain ':').
            let resource = rest.splitn(5, ':').nth(4).unwrap_or_default();
            let (kind, name) = resource.split_once('/').unwrap_or((resource, ""));
            return match kind {
                "foundation-model" => Ok((self.foundation_kind(name, false)?, model_id.into())),
                "inference-profile" => {
                    let base = strip_profile_prefix(name)
                        .ok_or_else(|| ApiError::validation(INVALID_MODEL))?;
                    Ok((self.foundation_kind(base, true)?, model_id.into()))
                }
                "custom-model-deployment" => {
                    let d = self
                        .deployments
                        .iter()
                        .find(|d| d.arn == model_id)
                        .ok_or_else(|| {
                            ApiError::not_found(format!(
                                "The specified resource ARN was not found: no custom model deployment {model_id}."
                            ))
                        })?;
                    Self::ready("custom model deployment", model_id, d.status(now), "Active")?;
                    Ok((ModelKind::Student, d.arn.clone()))
                }
                "provisioned-model" => {
                    let pt = self
                        .throughputs
                        .iter()
                        .find(|p| p.arn == model_id)
                        .ok_or_else(|| {
                            ApiError::not_found(format!(
                                "The specified resource ARN was not found: no Provisioned Throughput {model_id}."
                            ))
                        })?;
                    self.throughput_kind(pt, now)
                }
                "custom-model" => Err(ApiError::validation(format!(
                    "A custom model cannot be invoked by its model ARN ({model_id}): invoke its custom \
                     model deployment ARN or its Provisioned Throughput ARN."
                ))),
                "application-inference-profile" => Err(ApiError::not_found(format!(
                    "The specified resource ARN was not found: bedrock-sim has no application inference profile {model_id}."
                ))),
                _ => Err(ApiError::validation(INVALID_MODEL)),
            };
        }
        if let Some(base) = strip_profile_prefix(model_id) {
            return Ok((self.foundation_kind(base, true)?, model_id.into()));
        }
        if model_id.contains('.') {
            return Ok((
                self.foundation_kind(model_id, false)?,
                foundation_arn(model_id),
            ));
        }
        // The API's pattern also admits a bare name: a Provisioned Throughput's.
        match self.throughputs.iter().find(|p| p.name == model_id) {
            Some(pt) => self.throughput_kind(pt, now),
            None => Err(ApiError::validation(INVALID_MODEL)),
        }
    }

    fn throughput_kind(
        &self,
        pt: &crate::throughput::Throughput,
        now: DateTime<Utc>,
    ) -> Result<(ModelKind, String), ApiError> {
        Self::ready(
            "Provisioned Throughput",
            &pt.arn,
            pt.status(now),
            "InService",
        )?;
        let kind = if pt.model_arn.contains(":custom-model/") {
            ModelKind::Student
        } else {
            let id = pt.model_arn.rsplit_once('/').map_or("", |(_, id)| id);
            self.foundation_kind(id, true).unwrap_or(ModelKind::Student)
        };
        Ok((kind, pt.arn.clone()))
    }

    /// Checks the request body against the API model and the conversation rules.
    fn conversation(body: &Map<String, Value>) -> Result<Conversation, ApiError> {
        let f = Fields::new(body);
        let mut v = Violations::default();
        let mut input_bytes = 0usize;
        let mut roles: Vec<&str> = Vec::new();
        match f.array("messages", &mut v) {
            None => v.missing("messages"),
            Some(messages) => {
                for (i, m) in messages.iter().enumerate() {
                    let Some(m) = m.as_object() else {
                        v.push(format!("Value at 'messages.{}' must be an object", i + 1));
                        continue;
                    };
                    let mf = Fields::new(m);
                    let at = |k: &str| format!("messages.{}.member.{k}", i + 1);
                    match m.get("role").and_then(Value::as_str) {
                        Some(role) if role == "user" || role == "assistant" => roles.push(role),
                        Some(other) => v.push(format!(
                            "Value '{other}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]",
                            at("role")
                        )),
                        None => v.missing(&at("role")),
                    }
                    let Some(blocks) = mf.array("content", &mut v) else {
                        v.missing(&at("content"));
                        continue;
                    };
                    for b in blocks {
                        match b.as_object() {
                            Some(o) if o.len() == 1 && o.get("text").is_some_and(Value::is_string) => {
                                input_bytes += o["text"].as_str().map_or(0, str::len);
                            }
                            Some(o) if o.len() == 1 => {
                                let member = o.keys().next().map_or("", String::as_str);
                                v.push(format!(
                                    "bedrock-sim answers text content only: a '{member}' content block at '{}' is not supported",
                                    at("content")
                                ));
                            }
                            _ => v.push(format!(
                                "Value at '{}' must be a content block with exactly one member (a union)",
                                at("content")
                            )),
                        }
                    }
                }
            }
        }
        if let Some(system) = f.array("system", &mut v) {
            for (i, b) in system.iter().enumerate() {
                match b.get("text").and_then(Value::as_str) {
                    Some("") => v.push(format!(
                        "Value '' at 'system.{}.member.text' failed to satisfy constraint: Member must have length greater than or equal to 1",
                        i + 1
                    )),
                    Some(t) => input_bytes += t.len(),
                    None => v.push(format!(
                        "bedrock-sim answers text system prompts only: 'system.{}' has no text",
                        i + 1
                    )),
                }
            }
        }
        let mut max_tokens = None;
        if let Some(cfg) = f.object("inferenceConfig", &mut v) {
            if let Some(n) = cfg.integer("maxTokens", &mut v) {
                if n < 1 {
                    v.push(format!(
                        "Value '{n}' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1"
                    ));
                }
                max_tokens = Some(n.max(1) as u64);
            }
            for key in ["temperature", "topP"] {
                if let Some(x) = cfg.number(key, &mut v) {
                    if !(0.0..=1.0).contains(&x) {
                        v.push(format!(
                            "Value '{x}' at 'inferenceConfig.{key}' failed to satisfy constraint: Member must have value between 0 and 1"
                        ));
                    }
                }
            }
            if let Some(stops) = cfg.array("stopSequences", &mut v) {
                if stops.len() > 2500 {
                    v.push(format!(
                        "Value at 'inferenceConfig.stopSequences' failed to satisfy constraint: Member must have length less than or equal to 2500, got {}",
                        stops.len()
                    ));
                }
            }
        }
        v.into_result()?;
        // Conversation rules, in Bedrock's wording.
        if roles.first() != Some(&"user") {
            return Err(ApiError::validation(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ));
        }
        if roles.windows(2).any(|w| w[0] == w[1]) {
            return Err(ApiError::validation(
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
            ));
        }
        Ok(Conversation {
            prompt: last_user_text(body).unwrap_or_default(),
            input_bytes,
            max_tokens,
        })
    }

    /// Converse: checks the request, resolves the model, answers.
    pub(super) fn converse(
        &mut self,
        region: &str,
        model_id: &str,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<ApiSuccess, ApiError> {
        let mut v = Violations::default();
        v.check("modelId", model_id, 1, 2048, None);
        v.into_result()?;
        let conversation = Self::conversation(&body)?;
        let (kind, resource) = self.model_kind(region, model_id, now)?;
        let judged = JudgeRequest::from_user_message(&conversation.prompt);
        let answer = match &judged {
            Some(request) => runtime::judge(request).render(),
            None => match kind {
                ModelKind::Teacher => runtime::teacher_answer(&conversation.prompt),
                ModelKind::Student => {
                    runtime::student_answer(&conversation.prompt, self.config.student_quality)
                }
            },
        };
        let (text, cut) = match conversation.max_tokens {
            Some(max) => runtime::limit_tokens(&answer, max),
            None => (answer, false),
        };
        let input_tokens = runtime::tokens_for_bytes(conversation.input_bytes);
        let output_tokens = runtime::tokens(&text);
        self.runtime_note = Some(if judged.is_some() {
            "judge"
        } else {
            kind.as_str()
        });
        Ok(ApiSuccess {
            status: axum::http::StatusCode::OK,
            body: Some(json!({
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": if cut { "max_tokens" } else { "end_turn" },
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": kind.latency_ms(output_tokens)},
            })),
            resource_arn: Some(resource),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_read_like_bedrock_reads_them() {
        assert_eq!(
            strip_profile_prefix("us.amazon.nova-pro-v1:0"),
            Some("amazon.nova-pro-v1:0")
        );
        assert_eq!(
            strip_profile_prefix("global.anthropic.claude-x"),
            Some("anthropic.claude-x")
        );
        assert_eq!(strip_profile_prefix("amazon.nova-pro-v1:0"), None);
        assert_eq!(strip_profile_prefix("us.nothing"), None);
        assert_eq!(
            invocation_id("amazon.nova-lite-v1:0:300k"),
            "amazon.nova-lite-v1:0"
        );
        assert_eq!(
            invocation_id("amazon.nova-lite-v1:0"),
            "amazon.nova-lite-v1:0"
        );
        assert_eq!(invocation_id("x:k"), "x:k");
    }
}
