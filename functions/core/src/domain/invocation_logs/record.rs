//! One invocation-log line: what it says about the call (operation, model, metadata, time, error),
//! and the prompt and response its bodies hold.
//!
//! A log line (Bedrock user guide, "Model invocation logging"): `schemaType: "ModelInvocationLog"`,
//! `schemaVersion`, `timestamp`, `accountId`, `region`, `requestId`, `operation`, `modelId`,
//! `requestMetadata` (only when the caller sent some), `input { inputBodyJson | inputBodyS3Path,
//! inputContentType, inputTokenCount }`, `output { outputBodyJson | outputBodyS3Path, ... }`, and
//! `errorCode` on a failed call.
//!
//! Body shapes understood (the teachers in `model-pairs.json` and their InvokeModel formats):
//! - Converse / ConverseStream, and Amazon Nova InvokeModel (`messages-v1`): `system: [{text}]`,
//!   `messages: [{role, content: [{text} | {image} | {document} | {video} | ...]}]`; response
//!   `output.message.content[].text`.
//! - Anthropic Messages API on InvokeModel: `system` a string or `[{type: "text", text}]`,
//!   `messages[].content` a string or `[{type: "text", text} | {type: "image", ...} | ...]`; response
//!   `content[]` blocks of `type: "text"`.
//! - Meta Llama on InvokeModel: `prompt` (plain text, or the Llama 3 chat template with
//!   `<|start_header_id|>role<|end_header_id|>` headers); response `generation`.
//! - Streamed calls: an output body that is a list of events is read event by event (Converse's
//!   `contentBlockDelta.delta.text`, Anthropic's `content_block_delta` `delta.text`, Llama's
//!   `generation` chunks) and the text pieces are joined.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// The `schemaType` of an invocation record.
pub const SCHEMA_TYPE: &str = "ModelInvocationLog";

/// The operations whose records can carry a distillation prompt.
pub const OPERATIONS: [&str; 4] = [
    "Converse",
    "ConverseStream",
    "InvokeModel",
    "InvokeModelWithResponseStream",
];

#[derive(Deserialize)]
struct RawInput<'a> {
    #[serde(rename = "inputBodyJson", borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(rename = "inputBodyS3Path", borrow, default)]
    s3_path: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawOutput<'a> {
    #[serde(rename = "outputBodyJson", borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(rename = "outputBodyS3Path", borrow, default)]
    s3_path: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawLine<'a> {
    #[serde(rename = "schemaType", borrow, default)]
    schema_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    operation: Option<Cow<'a, str>>,
    #[serde(rename = "modelId", borrow, default)]
    model_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(rename = "requestMetadata", borrow, default)]
    request_metadata: Option<MetadataPairs<'a>>,
    #[serde(borrow, default)]
    input: Option<RawInput<'a>>,
    #[serde(borrow, default)]
    output: Option<RawOutput<'a>>,
    #[serde(rename = "errorCode", borrow, default)]
    error_code: Option<Cow<'a, str>>,
}

/// A string borrowed from the line when it has no escapes.
#[derive(Deserialize)]
struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);

/// `requestMetadata` as pairs in the order logged (at most 16, so a list beats a map).
struct MetadataPairs<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for MetadataPairs<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = MetadataPairs<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut pairs = Vec::new();
                while let Some((Borrowed(k), Borrowed(v))) =
                    map.next_entry::<Borrowed<'a>, Borrowed<'a>>()?
                {
                    pairs.push((k, v));
                }
                Ok(MetadataPairs(pairs))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// One log line, borrowed from the line's bytes where it can be.
#[derive(Debug)]
pub struct LogRecord<'a> {
    /// `schemaType` is `ModelInvocationLog` (or absent, as in samples that strip it).
    pub is_invocation: bool,
    pub operation: Cow<'a, str>,
    /// `modelId` as logged (possibly an ARN).
    pub model_id_raw: Cow<'a, str>,
    pub timestamp: Option<Cow<'a, str>>,
    pub metadata: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub error_code: Option<Cow<'a, str>>,
    input_body: Option<&'a RawValue>,
    input_offloaded: bool,
    output_body: Option<&'a RawValue>,
    output_offloaded: bool,
}

/// Why a line is not a record we can read at all (it still counts as scanned when it is a JSON object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not JSON (the parser's message).
    NotJson(String),
    /// JSON, but not an object.
    NotAnObject,
    /// An object whose fields have the wrong types (the parser's message).
    BadFields(String),
}

impl<'a> LogRecord<'a> {
    pub fn parse(line: &'a [u8]) -> Result<Self, LineError> {
        let raw: RawLine<'a> = serde_json::from_slice(line).map_err(|e| {
            // Tell "not JSON" from "an object with odd fields" without a second full parse on the
            // happy path: only a failing line is looked at again.
            match serde_json::from_slice::<&RawValue>(line) {
                Err(_) => LineError::NotJson(e.to_string()),
                Ok(v) if !v.get().trim_start().starts_with('{') => LineError::NotAnObject,
                Ok(_) => LineError::BadFields(e.to_string()),
            }
        })?;
        let (input_body, input_offloaded) = match raw.input {
            Some(i) => (i.body, i.s3_path.is_some()),
            None => (None, false),
        };
        let (output_body, output_offloaded) = match raw.output {
            Some(o) => (o.body, o.s3_path.is_some()),
            None => (None, false),
        };
        Ok(LogRecord {
            is_invocation: raw.schema_type.as_deref().is_none_or(|s| s == SCHEMA_TYPE),
            operation: raw.operation.unwrap_or(Cow::Borrowed("")),
            model_id_raw: raw.model_id.unwrap_or(Cow::Borrowed("")),
            timestamp: raw.timestamp,
            metadata: raw.request_metadata.map(|m| m.0).unwrap_or_default(),
            error_code: raw.error_code,
            input_body,
            input_offloaded,
            output_body,
            output_offloaded,
        })
    }

    /// The model id, with an ARN reduced to its resource id ([`model_id`]).
    pub fn model_id(&self) -> &str {
        model_id(&self.model_id_raw)
    }

    /// The `YYYY-MM-DD` of the record's timestamp, when it has one.
    pub fn day(&self) -> Option<&str> {
        let t = self.timestamp.as_deref()?;
        let d = t.get(..10)?;
        let b = d.as_bytes();
        (b[4] == b'-' && b[7] == b'-').then_some(d)
    }

    /// The prompt the record's input body holds, or why it cannot be used.
    pub fn prompt(&self) -> Result<Prompt, Ineligible> {
        if !OPERATIONS.contains(&self.operation.as_ref()) {
            return Err(Ineligible::UnsupportedOperation);
        }
        let Some(body) = self.input_body else {
            return Err(if self.input_offloaded {
                Ineligible::OffloadedBody
            } else {
                Ineligible::NoInputBody
            });
        };
        let v: Value = serde_json::from_str(body.get()).map_err(|_| Ineligible::UnknownBody)?;
        prompt_from_body(&v)
    }

    /// The response text the output body holds (`None` for a failed call, an offloaded or empty body,
    /// or a response with no text).
    pub fn response(&self) -> Option<String> {
        if self.error_code.is_some() {
            return None;
        }
        let v: Value = serde_json::from_str(self.output_body?.get()).ok()?;
        let text = response_from_body(&v)?;
        (!text.trim().is_empty()).then_some(text)
    }

    /// Whether the output body was offloaded to S3 (so [`LogRecord::response`] cannot see it).
    pub fn output_offloaded(&self) -> bool {
        self.output_offloaded
    }
}

/// Reduces a model ARN to its model id: `arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0`
/// → `amazon.nova-pro-v1:0`, `arn:aws:bedrock:us-east-1:123:inference-profile/us.amazon.nova-pro-v1:0`
/// → `us.amazon.nova-pro-v1:0`. Anything else is returned as it is.
pub fn model_id(id: &str) -> &str {
    if !id.starts_with("arn:") {
        return id;
    }
    // arn:partition:service:region:account:resource-type/resource-id
    match id.splitn(6, ':').nth(5).and_then(|r| r.split_once('/')) {
        Some((_, resource)) if !resource.is_empty() => resource,
        _ => id,
    }
}

/// Geographic prefixes of cross-Region inference profile ids (`us.amazon.nova-pro-v1:0`).
const PROFILE_PREFIXES: [&str; 8] = [
    "us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.",
];

fn without_profile_prefix(id: &str) -> &str {
    PROFILE_PREFIXES
        .iter()
        .find_map(|p| id.strip_prefix(p))
        .unwrap_or(id)
}

/// Whether a record's model is the teacher: both reduced to model ids, then compared exactly or, when
/// one is a cross-Region inference profile, without its geographic prefix (the profile routes to
/// that same model).
pub fn same_model(record_model: &str, teacher: &str) -> bool {
    let (a, b) = (model_id(record_model), model_id(teacher));
    a == b || without_profile_prefix(a) == without_profile_prefix(b)
}

/// Why a record is not eligible for distillation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ineligible {
    NotInvocationRecord,
    UnsupportedOperation,
    NoInputBody,
    OffloadedBody,
    UnknownBody,
    NonTextContent,
    MultiTurn,
    EmptyPrompt,
    NotTeacher,
    NoResponse,
}

impl Ineligible {
    pub fn as_str(self) -> &'static str {
        match self {
            Ineligible::NotInvocationRecord => "not_invocation_record",
            Ineligible::UnsupportedOperation => "unsupported_operation",
            Ineligible::NoInputBody => "no_input_body",
            Ineligible::OffloadedBody => "offloaded_body",
            Ineligible::UnknownBody => "unknown_body_shape",
            Ineligible::NonTextContent => "non_text_content",
            Ineligible::MultiTurn => "multi_turn",
            Ineligible::EmptyPrompt => "empty_prompt",
            Ineligible::NotTeacher => "not_teacher",
            Ineligible::NoResponse => "no_response",
        }
    }
}

/// A text-only, single-turn prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The system prompt (several system blocks joined by a newline), if any.
    pub system: Option<String>,
    /// The user's message.
    pub user: String,
}

impl Prompt {
    /// A 64-bit hash of the prompt (system and user text, unambiguously delimited), for counting
    /// distinct prompts without keeping them.
    pub fn hash(&self) -> u64 {
        use std::hash::Hasher;
        let mut h = crate::domain::validation::PromptHasher::default();
        let system = self.system.as_deref().unwrap_or("");
        h.write(&(system.len() as u64).to_le_bytes());
        h.write(system.as_bytes());
        h.write(&(self.user.len() as u64).to_le_bytes());
        h.write(self.user.as_bytes());
        h.finish()
    }

    /// Bytes of text (system and user), for size estimates.
    pub fn text_bytes(&self) -> usize {
        self.system.as_ref().map_or(0, String::len) + self.user.len()
    }
}

/// Text of one content block: `Ok(Some(text))` for a text block, `Ok(None)` for a block that carries
/// no content (a cache point), `Err` for anything else (image, document, video, audio, tool use...).
fn block_text(block: &Value) -> Result<Option<&str>, Ineligible> {
    let Some(obj) = block.as_object() else {
        return Err(Ineligible::UnknownBody);
    };
    // Anthropic: {"type": "text", "text": ...}; other types are non-text.
    if let Some(t) = obj.get("type").and_then(Value::as_str) {
        return match (t, obj.get("text").and_then(Value::as_str)) {
            ("text", Some(text)) => Ok(Some(text)),
            ("text", None) => Err(Ineligible::UnknownBody),
            _ => Err(Ineligible::NonTextContent),
        };
    }
    // Converse / Nova: a one-key object naming the block kind.
    if let Some(text) = obj.get("text") {
        return text.as_str().map(Some).ok_or(Ineligible::UnknownBody);
    }
    if obj.len() == 1 && obj.contains_key("cachePoint") {
        return Ok(None);
    }
    Err(Ineligible::NonTextContent)
}

/// The text of a `content` (a string, or a list of blocks; text blocks joined by a newline).
fn content_text(content: &Value) -> Result<String, Ineligible> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut parts: Vec<&str> = Vec::with_capacity(blocks.len());
            for b in blocks {
                if let Some(t) = block_text(b)? {
                    parts.push(t);
                }
            }
            Ok(parts.join("\n"))
        }
        _ => Err(Ineligible::UnknownBody),
    }
}

/// The prompt in an input body of any shape the module understands.
pub fn prompt_from_body(body: &Value) -> Result<Prompt, Ineligible> {
    if let Some(messages) = body.get("messages") {
        let messages = messages.as_array().ok_or(Ineligible::UnknownBody)?;
        let system = match body.get("system") {
            None | Some(Value::Null) => None,
            Some(s) => Some(content_text(s)?),
        };
        // Every block is checked, so an image anywhere makes the record ineligible for that reason
        // rather than for its turns.
        let mut user = None;
        for m in messages {
            let role = m.get("role").and_then(Value::as_str);
            let text = content_text(m.get("content").ok_or(Ineligible::UnknownBody)?)?;
            match (role, user.is_none()) {
                (Some("user"), true) => user = Some(text),
                (Some("user" | "assistant"), _) => return Err(Ineligible::MultiTurn),
                _ => return Err(Ineligible::UnknownBody),
            }
        }
        return finish(system, user);
    }
    if let Some(prompt) = body.get("prompt") {
        let prompt = prompt.as_str().ok_or(Ineligible::UnknownBody)?;
        let (system, user) = llama_prompt(prompt)?;
        return finish(system, Some(user));
    }
    Err(Ineligible::UnknownBody)
}

fn finish(system: Option<String>, user: Option<String>) -> Result<Prompt, Ineligible> {
    let user = user.ok_or(Ineligible::EmptyPrompt)?;
    if user.trim().is_empty() {
        return Err(Ineligible::EmptyPrompt);
    }
    Ok(Prompt {
        system: system.filter(|s| !s.trim().is_empty()),
        user,
    })
}

/// A Llama `prompt`: plain text is the user's message; the Llama 3 chat template
/// (`<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n...<|eot_id|>...`) is split into
/// its turns, the trailing empty `assistant` header (the generation cue) dropped.
fn llama_prompt(prompt: &str) -> Result<(Option<String>, String), Ineligible> {
    const HEADER: &str = "<|start_header_id|>";
    const HEADER_END: &str = "<|end_header_id|>";
    if !prompt.contains(HEADER) {
        return Ok((None, prompt.to_string()));
    }
    let mut system = None;
    let mut user = None;
    for part in prompt.split(HEADER).skip(1) {
        let (role, rest) = part.split_once(HEADER_END).ok_or(Ineligible::UnknownBody)?;
        let text = rest.split("<|eot_id|>").next().unwrap_or("").trim();
        match role {
            "system" if system.is_none() && user.is_none() => system = Some(text.to_string()),
            "user" if user.is_none() => user = Some(text.to_string()),
            "assistant" if text.is_empty() => {} // the cue for the model's answer
            "user" | "assistant" => return Err(Ineligible::MultiTurn),
            _ => return Err(Ineligible::UnknownBody),
        }
    }
    Ok((system, user.ok_or(Ineligible::EmptyPrompt)?))
}

/// The response text in an output body: a whole response object, or a list of stream events.
pub fn response_from_body(body: &Value) -> Option<String> {
    match body {
        Value::Array(events) => {
            let mut out = String::new();
            for e in events {
                if let Some(t) = event_text(e) {
                    out.push_str(t);
                }
            }
            (!out.is_empty()).then_some(out)
        }
        Value::Object(_) => {
            // Converse / Nova.
            if let Some(content) = body.pointer("/output/message/content") {
                return texts_of(content);
            }
            // Anthropic.
            if let Some(content) = body.get("content") {
                return texts_of(content);
            }
            // Llama.
            if let Some(g) = body.get("generation").and_then(Value::as_str) {
                return Some(g.to_string());
            }
            // One stream event logged on its own.
            event_text(body).map(str::to_string)
        }
        _ => None,
    }
}

/// Text blocks of a response's content, joined by a newline; other blocks (tool use, reasoning) skipped.
fn texts_of(content: &Value) -> Option<String> {
    let blocks = content.as_array()?;
    let parts: Vec<&str> = blocks
        .iter()
        .filter(|b| {
            b.get("type")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "text")
        })
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// The text one stream event adds.
fn event_text(e: &Value) -> Option<&str> {
    // ConverseStream and Nova: {"contentBlockDelta": {"delta": {"text": ...}}}.
    if let Some(t) = e.pointer("/contentBlockDelta/delta/text") {
        return t.as_str();
    }
    // Anthropic: {"type": "content_block_delta", "delta": {"type": "text_delta", "text": ...}}.
    if e.get("type").and_then(Value::as_str) == Some("content_block_delta") {
        return e.pointer("/delta/text").and_then(Value::as_str);
    }
    // Llama: {"generation": ...} chunks.
    e.get("generation").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    fn converse_record() -> Value {
        json!({
            "schemaType": "ModelInvocationLog",
            "schemaVersion": "1.0",
            "timestamp": "2026-11-29T07:05:00Z",
            "accountId": "123456789012",
            "region": "us-east-1",
            "requestId": "r-1",
            "operation": "Converse",
            "modelId": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
            "requestMetadata": {"team": "support", "env": "prod"},
            "input": {
                "inputContentType": "application/json",
                "inputBodyJson": {
                    "system": [{"text": "Be brief."}],
                    "messages": [{"role": "user", "content": [{"text": "What is S3?"}]}],
                    "inferenceConfig": {"maxTokens": 100}
                },
                "inputTokenCount": 9
            },
            "output": {
                "outputContentType": "application/json",
                "outputBodyJson": {
                    "output": {"message": {"role": "assistant", "content": [{"text": "Object storage."}]}},
                    "stopReason": "end_turn",
                    "usage": {"inputTokens": 9, "outputTokens": 3, "totalTokens": 12}
                },
                "outputTokenCount": 3
            }
        })
    }

    #[test]
    fn a_converse_record() {
        let bytes = line(converse_record());
        let r = LogRecord::parse(&bytes).unwrap();
        assert!(r.is_invocation);
        assert_eq!(r.operation, "Converse");
        assert_eq!(r.model_id(), "us.amazon.nova-pro-v1:0");
        assert_eq!(r.day(), Some("2026-11-29"));
        assert_eq!(r.metadata.len(), 2);
        let p = r.prompt().unwrap();
        assert_eq!(p.system.as_deref(), Some("Be brief."));
        assert_eq!(p.user, "What is S3?");
        assert_eq!(r.response().as_deref(), Some("Object storage."));
    }

    #[test]
    fn model_arns_reduce_to_their_ids() {
        assert_eq!(
            model_id("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-pro-v1:0"),
            "amazon.nova-pro-v1:0"
        );
        assert_eq!(
            model_id(
                "arn:aws:bedrock:us-west-2:1:inference-profile/us.meta.llama3-3-70b-instruct-v1:0"
            ),
            "us.meta.llama3-3-70b-instruct-v1:0"
        );
        assert_eq!(model_id("amazon.nova-pro-v1:0"), "amazon.nova-pro-v1:0");
        assert_eq!(model_id("arn:aws:bedrock:x"), "arn:aws:bedrock:x");
        assert!(same_model(
            "arn:aws:bedrock:us-east-1:1:inference-profile/us.amazon.nova-pro-v1:0",
            "amazon.nova-pro-v1:0"
        ));
        assert!(same_model(
            "us.amazon.nova-premier-v1:0",
            "us.amazon.nova-premier-v1:0"
        ));
        assert!(!same_model("amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"));
        assert!(!same_model(
            "amazon.nova-pro-v1:0:300k",
            "amazon.nova-pro-v1:0"
        ));
    }

    #[test]
    fn non_text_blocks_make_a_prompt_ineligible() {
        for block in [
            json!({"image": {"format": "png", "source": {"bytes": "AAAA"}}}),
            json!({"document": {"format": "pdf", "name": "d", "source": {"bytes": "AAAA"}}}),
            json!({"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/v.mp4"}}}}),
            json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}),
        ] {
            let body =
                json!({"messages": [{"role": "user", "content": [{"text": "look"}, block]}]});
            assert_eq!(
                prompt_from_body(&body),
                Err(Ineligible::NonTextContent),
                "{body}"
            );
        }
    }

    #[test]
    fn only_single_turn_prompts_are_eligible() {
        let body = json!({"messages": [
            {"role": "user", "content": [{"text": "a"}]},
            {"role": "assistant", "content": [{"text": "b"}]},
            {"role": "user", "content": [{"text": "c"}]}
        ]});
        assert_eq!(prompt_from_body(&body), Err(Ineligible::MultiTurn));
        let prefill = json!({"messages": [
            {"role": "user", "content": [{"text": "a"}]},
            {"role": "assistant", "content": [{"text": "{"}]}
        ]});
        assert_eq!(prompt_from_body(&prefill), Err(Ineligible::MultiTurn));
        let empty = json!({"messages": [{"role": "user", "content": [{"text": "  "}]}]});
        assert_eq!(prompt_from_body(&empty), Err(Ineligible::EmptyPrompt));
        assert_eq!(
            prompt_from_body(&json!({"messages": []})),
            Err(Ineligible::EmptyPrompt)
        );
        assert_eq!(
            prompt_from_body(&json!({"inputText": "x"})),
            Err(Ineligible::UnknownBody)
        );
    }

    #[test]
    fn anthropic_messages_bodies() {
        let body = json!({
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 100,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "Hi"}]
        });
        let p = prompt_from_body(&body).unwrap();
        assert_eq!(
            (p.system.as_deref(), p.user.as_str()),
            (Some("You are terse."), "Hi")
        );
        let blocks = json!({
            "anthropic_version": "bedrock-2023-05-31",
            "system": [{"type": "text", "text": "S"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}]
        });
        let p = prompt_from_body(&blocks).unwrap();
        assert_eq!((p.system.as_deref(), p.user.as_str()), (Some("S"), "A\nB"));
        let out = json!({"id": "m", "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": "Hello"}], "stop_reason": "end_turn"});
        assert_eq!(response_from_body(&out).as_deref(), Some("Hello"));
        let stream = json!([
            {"type": "message_start", "message": {"role": "assistant"}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
            {"type": "message_stop"}
        ]);
        assert_eq!(response_from_body(&stream).as_deref(), Some("Hello"));
    }

    #[test]
    fn nova_messages_v1_bodies() {
        let body = json!({
            "schemaVersion": "messages-v1",
            "system": [{"text": "Sys"}],
            "messages": [{"role": "user", "content": [{"text": "Q"}]}],
            "inferenceConfig": {"maxTokens": 10}
        });
        let p = prompt_from_body(&body).unwrap();
        assert_eq!((p.system.as_deref(), p.user.as_str()), (Some("Sys"), "Q"));
        let out = json!({"output": {"message": {"role": "assistant", "content": [{"text": "A"}]}}, "stopReason": "end_turn"});
        assert_eq!(response_from_body(&out).as_deref(), Some("A"));
        let stream = json!([
            {"messageStart": {"role": "assistant"}},
            {"contentBlockDelta": {"delta": {"text": "A"}, "contentBlockIndex": 0}},
            {"contentBlockDelta": {"delta": {"text": "B"}, "contentBlockIndex": 0}},
            {"messageStop": {"stopReason": "end_turn"}}
        ]);
        assert_eq!(response_from_body(&stream).as_deref(), Some("AB"));
    }

    #[test]
    fn llama_prompt_bodies() {
        let plain = json!({"prompt": "Tell me a joke", "max_gen_len": 100});
        let p = prompt_from_body(&plain).unwrap();
        assert_eq!((p.system, p.user.as_str()), (None, "Tell me a joke"));
        let templ = json!({"prompt": "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe kind.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"});
        let p = prompt_from_body(&templ).unwrap();
        assert_eq!(
            (p.system.as_deref(), p.user.as_str()),
            (Some("Be kind."), "Hello?")
        );
        let multi = json!({"prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nA<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nB<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nC<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"});
        assert_eq!(prompt_from_body(&multi), Err(Ineligible::MultiTurn));
        let out = json!({"generation": "Ha.", "prompt_token_count": 5, "generation_token_count": 2, "stop_reason": "stop"});
        assert_eq!(response_from_body(&out).as_deref(), Some("Ha."));
        let stream = json!([{"generation": "H"}, {"generation": "a."}]);
        assert_eq!(response_from_body(&stream).as_deref(), Some("Ha."));
    }

    #[test]
    fn failed_offloaded_and_odd_records() {
        let mut v = converse_record();
        v["errorCode"] = json!("ThrottlingException");
        v.as_object_mut().unwrap().remove("output");
        let bytes = line(v);
        let r = LogRecord::parse(&bytes).unwrap();
        assert!(r.prompt().is_ok());
        assert_eq!(r.response(), None);

        let mut v = converse_record();
        v["input"] = json!({"inputBodyS3Path": "s3://b/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/11/29/07/data/x_input.json"});
        v["output"] = json!({"outputBodyS3Path": "s3://b/.../data/x_output.json"});
        let bytes = line(v);
        let r = LogRecord::parse(&bytes).unwrap();
        assert_eq!(r.prompt(), Err(Ineligible::OffloadedBody));
        assert!(r.output_offloaded());

        let mut v = converse_record();
        v["operation"] = json!("ApplyGuardrail");
        let bytes = line(v);
        assert_eq!(
            LogRecord::parse(&bytes).unwrap().prompt(),
            Err(Ineligible::UnsupportedOperation)
        );

        let mut v = converse_record();
        v["schemaType"] = json!("Other");
        let bytes = line(v);
        assert!(!LogRecord::parse(&bytes).unwrap().is_invocation);

        assert!(matches!(
            LogRecord::parse(b"{\"a\""),
            Err(LineError::NotJson(_))
        ));
        assert_eq!(
            LogRecord::parse(b"[1,2]").unwrap_err(),
            LineError::NotAnObject
        );
        assert!(matches!(
            LogRecord::parse(br#"{"modelId": 3}"#),
            Err(LineError::BadFields(_))
        ));
        // A record with no metadata at all has an empty list.
        let mut v = converse_record();
        v.as_object_mut().unwrap().remove("requestMetadata");
        let bytes = line(v);
        assert!(LogRecord::parse(&bytes).unwrap().metadata.is_empty());
    }

    #[test]
    fn prompt_hashes_tell_system_from_user_text() {
        let a = Prompt {
            system: Some("ab".into()),
            user: "c".into(),
        };
        let b = Prompt {
            system: Some("a".into()),
            user: "bc".into(),
        };
        let c = Prompt {
            system: None,
            user: "abc".into(),
        };
        assert_ne!(a.hash(), b.hash());
        assert_ne!(b.hash(), c.hash());
        assert_eq!(a.hash(), a.clone().hash());
    }
}
