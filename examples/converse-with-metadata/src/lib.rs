//! What an application does for its Bedrock traffic to become training data: every Converse call
//! carries `requestMetadata` (up to 16 key/value pairs), which model invocation logging writes into
//! each log record, and which a distillation job's `requestMetadataFilters` (and Distillery's
//! scheduled runs, `REQUEST_METADATA_FILTERS`) select on. See docs/invocation-logs-setup.md.

use std::collections::HashMap;

use anyhow::{bail, Context};
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ConversationRole, InferenceConfiguration, Message,
};
use aws_sdk_bedrockruntime::Client;

/// Converse's limits on `requestMetadata` (API reference, Converse request body).
pub const MAX_PAIRS: usize = 16;
pub const MAX_KEY_CHARS: usize = 256;
pub const MAX_VALUE_CHARS: usize = 256;

/// Parses `key=value` arguments into request metadata, checked against Converse's limits so a
/// mistake is named here rather than in a ValidationException.
pub fn parse_metadata(pairs: &[String]) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    for (i, pair) in pairs.iter().enumerate() {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--metadata #{}: '{pair}' is not key=value", i + 1);
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || k.chars().count() > MAX_KEY_CHARS {
            bail!(
                "--metadata #{}: the key must be 1 to {MAX_KEY_CHARS} characters, got '{k}'",
                i + 1
            );
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            bail!(
                "--metadata #{} ({k}): the value must be at most {MAX_VALUE_CHARS} characters",
                i + 1
            );
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            bail!("--metadata #{}: the key '{k}' is given twice", i + 1);
        }
    }
    if out.len() > MAX_PAIRS {
        bail!("--metadata: at most {MAX_PAIRS} pairs, got {}", out.len());
    }
    Ok(out)
}

/// One Converse call with `metadata` attached; returns the answer's text.
pub async fn converse_tagged(
    client: &Client,
    model_id: &str,
    prompt: &str,
    metadata: &HashMap<String, String>,
    max_tokens: i32,
) -> anyhow::Result<String> {
    let message = Message::builder()
        .role(ConversationRole::User)
        .content(ContentBlock::Text(prompt.to_string()))
        .build()
        .context("building the user message")?;
    let mut request = client
        .converse()
        .model_id(model_id)
        .messages(message)
        .inference_config(
            InferenceConfiguration::builder()
                .max_tokens(max_tokens)
                .build(),
        );
    for (k, v) in metadata {
        request = request.request_metadata(k, v);
    }
    let answer = request
        .send()
        .await
        .with_context(|| format!("Converse with {model_id}"))?;
    let text = answer
        .output()
        .and_then(|o| o.as_message().ok())
        .map(|m| {
            m.content()
                .iter()
                .filter_map(|c| c.as_text().ok().cloned())
                .collect::<Vec<_>>()
                .join("")
        })
        .unwrap_or_default();
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_are_checked_against_converses_limits() {
        let m = parse_metadata(&["app=support-bot".into(), "tenant = acme".into()]).unwrap();
        assert_eq!(m.get("app").map(String::as_str), Some("support-bot"));
        assert_eq!(m.get("tenant").map(String::as_str), Some("acme"));
        for (bad, says) in [
            (vec!["app".to_string()], "is not key=value"),
            (vec!["=x".to_string()], "1 to 256 characters"),
            (vec!["a=1".to_string(), "a=2".to_string()], "given twice"),
            (vec![format!("k={}", "v".repeat(257))], "at most 256"),
            (
                (0..17).map(|i| format!("k{i}=v")).collect(),
                "at most 16 pairs",
            ),
        ] {
            let e = parse_metadata(&bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
