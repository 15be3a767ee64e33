//! Native invocation-log jobs: what Bedrock does with a job whose `trainingDataConfig` has
//! `invocationLogsConfig`. The simulator reads the log objects under `invocationLogSource.s3Uri`
//! from S3 (the local stack's moto, `--s3-url`), applies `requestMetadataFilters` and counts the
//! records it could train on; fewer than [`MIN_RECORDS`] and the job fails in its validation phase,
//! as Bedrock fails it.
//!
//! This is the simulator's own reading of the API reference, written apart from Distillery's
//! preflight on purpose: a test where both agree is worth something only if they were not the same
//! code. Semantics (`RequestMetadataFilters`, `RequestMetadataBaseFilters` in the Bedrock API
//! reference):
//! - `equals {k: v}`: the record's `requestMetadata` has `k` with exactly `v` (case and spaces count);
//! - `notEquals {k: v}`: it does not: a record without `k` passes (the reference: "Include results
//!   where the key does not equal the value");
//! - `andAll` / `orAll`: a list of 1-16 base filters, all / any of which hold. A base filter may
//!   carry both `equals` and `notEquals` (it is a structure, not a union): both must hold.
//! - The top level is a union: exactly one of the four members.
//!
//! Counting: a log object is a `*.json.gz` not under a `data/` folder (those are offloaded bodies);
//! each line that parses as a JSON object with `schemaType: ModelInvocationLog` is a record.
//! Prompt-only jobs count every record the filter lets through; with `usePromptResponse` the record
//! must also come from the teacher (an ARN reduced to its model id, an inference profile's geography
//! prefix `us.`/`eu.`/`apac.` ignored) and carry a response (`output.outputBodyJson` or
//! `output.outputBodyS3Path`). Counting stops at [`MIN_RECORDS`]: the job only needs to know
//! whether there are enough.

use std::io::Read;

use serde_json::{Map, Value};

/// Bedrock's minimum for a distillation job's training data.
pub const MIN_RECORDS: u64 = 100;

/// A parsed `requestMetadataFilters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Base(BaseFilter),
    AndAll(Vec<BaseFilter>),
    OrAll(Vec<BaseFilter>),
}

/// A `RequestMetadataBaseFilters`: each given map holds at most one entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseFilter {
    pub equals: Option<(String, String)>,
    pub not_equals: Option<(String, String)>,
}

impl BaseFilter {
    fn parse(v: &Value, at: &str) -> Result<BaseFilter, String> {
        let o = v
            .as_object()
            .ok_or_else(|| format!("Value at '{at}' must be an object"))?;
        let entry = |key: &str| -> Result<Option<(String, String)>, String> {
            let Some(m) = o.get(key) else {
                return Ok(None);
            };
            let m = m
                .as_object()
                .ok_or_else(|| format!("Value at '{at}.{key}' must be a map"))?;
            if m.len() > 1 {
                return Err(format!(
                    "Value at '{at}.{key}' failed to satisfy constraint: Member must have length less than or equal to 1"
                ));
            }
            m.iter()
                .next()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|s| (k.clone(), s.to_string()))
                        .ok_or_else(|| format!("Value at '{at}.{key}.{k}' must be a string"))
                })
                .transpose()
        };
        Ok(BaseFilter {
            equals: entry("equals")?,
            not_equals: entry("notEquals")?,
        })
    }

    fn holds(&self, metadata: &Map<String, Value>) -> bool {
        let value = |k: &str| metadata.get(k).and_then(Value::as_str);
        let eq = self
            .equals
            .as_ref()
            .is_none_or(|(k, v)| value(k) == Some(v.as_str()));
        let ne = self
            .not_equals
            .as_ref()
            .is_none_or(|(k, v)| value(k) != Some(v.as_str()));
        eq && ne
    }
}

impl Filter {
    /// Parses the request's `requestMetadataFilters`; the error is a ValidationException message.
    pub fn parse(v: &Value) -> Result<Filter, String> {
        const AT: &str = "trainingDataConfig.invocationLogsConfig.requestMetadataFilters";
        let o = v
            .as_object()
            .ok_or_else(|| format!("Value at '{AT}' must be an object"))?;
        if o.len() != 1 {
            return Err(format!(
                "Value at '{AT}' must set exactly one of equals, notEquals, andAll, orAll (it is a union); got {}",
                o.len()
            ));
        }
        let (member, value) = o.iter().next().expect("one member");
        let list = |value: &Value| -> Result<Vec<BaseFilter>, String> {
            let items = value
                .as_array()
                .ok_or_else(|| format!("Value at '{AT}.{member}' must be a list"))?;
            if !(1..=16).contains(&items.len()) {
                return Err(format!(
                    "Value at '{AT}.{member}' failed to satisfy constraint: Member must have length between 1 and 16, got {}",
                    items.len()
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| BaseFilter::parse(item, &format!("{AT}.{member}.{}", i + 1)))
                .collect()
        };
        match member.as_str() {
            "equals" | "notEquals" => {
                let wrapped = serde_json::json!({ member.as_str(): value });
                BaseFilter::parse(&wrapped, AT).map(Filter::Base)
            }
            "andAll" => list(value).map(Filter::AndAll),
            "orAll" => list(value).map(Filter::OrAll),
            other => Err(format!("Value at '{AT}' has an unknown member '{other}'")),
        }
    }

    /// Whether a record with this `requestMetadata` (absent: empty) passes.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        match self {
            Filter::Base(b) => b.holds(metadata),
            Filter::AndAll(all) => all.iter().all(|b| b.holds(metadata)),
            Filter::OrAll(any) => any.iter().any(|b| b.holds(metadata)),
        }
    }
}

/// What a job's data check looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    pub filter: Option<Filter>,
    pub use_prompt_response: bool,
    /// The job's teacher model id (or ARN).
    pub teacher: String,
}

/// The counts of one check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogCount {
    pub files: u64,
    pub records: u64,
    pub matched: u64,
    /// Records the job can train on (stops growing at [`MIN_RECORDS`]).
    pub usable: u64,
}

/// `arn:...:inference-profile/us.amazon.nova-pro-v1:0` → `amazon.nova-pro-v1:0`.
pub fn model_key(id: &str) -> &str {
    let id = if id.starts_with("arn:") {
        id.rsplit_once('/').map_or(id, |(_, last)| last)
    } else {
        id
    };
    for geo in ["us.", "eu.", "apac.", "us-gov.", "global."] {
        if let Some(rest) = id.strip_prefix(geo) {
            return rest;
        }
    }
    id
}

impl LogQuery {
    /// Adds one log object's lines to `count`; lines that are not log records are passed over.
    pub fn count_lines(&self, text: &str, count: &mut LogCount) {
        count.files += 1;
        let empty = Map::new();
        for line in text.lines() {
            let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if record.get("schemaType").and_then(Value::as_str) != Some("ModelInvocationLog") {
                continue;
            }
            count.records += 1;
            let metadata = record
                .get("requestMetadata")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            if !self.filter.as_ref().is_none_or(|f| f.matches(metadata)) {
                continue;
            }
            count.matched += 1;
            if self.use_prompt_response {
                let model = record
                    .get("modelId")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let output = record.get("output");
                let answered = output.is_some_and(|o| {
                    o.get("outputBodyJson").is_some() || o.get("outputBodyS3Path").is_some()
                });
                if model_key(model) != model_key(&self.teacher) || !answered {
                    continue;
                }
            }
            if count.usable < MIN_RECORDS {
                count.usable += 1;
            }
        }
    }

    /// The job's query, from a CreateModelCustomizationJob body with `invocationLogsConfig`
    /// (`None` without one). `Err`: a ValidationException message.
    pub fn from_request(body: &Map<String, Value>) -> Option<Result<(String, LogQuery), String>> {
        let logs = body
            .get("trainingDataConfig")?
            .get("invocationLogsConfig")?;
        let uri = logs
            .pointer("/invocationLogSource/s3Uri")
            .and_then(Value::as_str)?
            .to_string();
        let filter = match logs.get("requestMetadataFilters") {
            None | Some(Value::Null) => None,
            Some(f) => match Filter::parse(f) {
                Ok(f) => Some(f),
                Err(e) => return Some(Err(e)),
            },
        };
        let teacher = body
            .get("customizationConfig")
            .and_then(|c| {
                c.pointer("/distillationConfig/teacherModelConfig/teacherModelIdentifier")
            })
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let use_prompt_response = logs
            .get("usePromptResponse")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Some(Ok((
            uri,
            LogQuery {
                filter,
                use_prompt_response,
                teacher,
            },
        )))
    }
}

/// The failure message of a job whose logs hold too few usable records (the wording is ours:
/// Bedrock's exact text for this case is not documented).
pub fn too_few_message(uri: &str, count: &LogCount, query: &LogQuery) -> String {
    let what = if query.use_prompt_response {
        format!(
            "records from the teacher model {} with a response",
            query.teacher
        )
    } else {
        "records".to_string()
    };
    format!(
        "Insufficient training data: the invocation logs at {uri} contain {} {what} that match the request metadata filters ({} log records in {} files scanned, {} matched); at least {MIN_RECORDS} are required.",
        count.usable, count.records, count.files, count.matched
    )
}

/// Percent-encodes `s` for a URL (`/` kept when `keep_slash`).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text between `<tag>` and `</tag>`, every occurrence.
fn xml_values<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// Whether a key is a log object (not an offloaded body under `data/`).
pub fn is_log_object(key: &str) -> bool {
    key.ends_with(".json.gz") && !key.split('/').any(|part| part == "data")
}

/// Reads the log objects under `uri` from the S3 endpoint `s3_url` (path-style, unsigned: moto
/// checks no signature) and counts them for `query`. `Err`: why the logs could not be read.
pub async fn count_in_s3(
    client: &reqwest::Client,
    s3_url: &str,
    uri: &str,
    query: &LogQuery,
) -> Result<LogCount, String> {
    let s3_url = s3_url.trim_end_matches('/');
    let rest = uri
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{uri} is not an s3:// URI"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mut count = LogCount::default();
    let mut token: Option<String> = None;
    loop {
        let mut url = format!(
            "{s3_url}/{bucket}?list-type=2&prefix={}",
            encode(prefix, false)
        );
        if let Some(t) = &token {
            url.push_str(&format!("&continuation-token={}", encode(t, false)));
        }
        let listing = get_text(client, &url).await?;
        for key in xml_values(&listing, "Key") {
            let key = xml_unescape(key);
            if !is_log_object(&key) {
                continue;
            }
            let url = format!("{s3_url}/{bucket}/{}", encode(&key, true));
            let gz = get_bytes(client, &url).await?;
            let mut text = String::new();
            // A corrupt object contributes nothing, as a record Bedrock cannot read is not data.
            if flate2::read::MultiGzDecoder::new(gz.as_slice())
                .read_to_string(&mut text)
                .is_err()
            {
                tracing::warn!(%key, "invocation log object is not gzipped JSON lines; skipped");
                continue;
            }
            query.count_lines(&text, &mut count);
            if count.usable >= MIN_RECORDS {
                return Ok(count);
            }
        }
        let truncated = xml_values(&listing, "IsTruncated").first() == Some(&"true");
        token = xml_values(&listing, "NextContinuationToken")
            .first()
            .map(|t| xml_unescape(t));
        if !truncated || token.is_none() {
            return Ok(count);
        }
    }
}

async fn get_bytes(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    // moto answers an anonymous GetObject on a private bucket with 403 (listing is let through);
    // it does not verify signatures, so a well-formed SigV4 header with a dummy signature is enough
    // for it to treat the simulator as the account's Bedrock service reading the logs.
    let response = client
        .get(url)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000",
        )
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    if !status.is_success() {
        return Err(format!(
            "GET {url}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body.to_vec())
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, String> {
    get_bytes(client, url)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn md(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn equals_and_not_equals_compare_exactly_and_not_equals_lets_a_missing_key_through() {
        let eq = Filter::parse(&json!({"equals": {"app": "support-bot"}})).unwrap();
        assert!(eq.matches(&md(json!({"app": "support-bot", "x": "y"}))));
        assert!(!eq.matches(&md(json!({"app": "Support-bot"}))));
        assert!(!eq.matches(&md(json!({"app": "support-bot "}))));
        assert!(!eq.matches(&md(json!({}))));
        let ne = Filter::parse(&json!({"notEquals": {"tenant": "internal"}})).unwrap();
        assert!(!ne.matches(&md(json!({"tenant": "internal"}))));
        assert!(ne.matches(&md(json!({"tenant": "acme"}))));
        assert!(ne.matches(&md(json!({}))), "a missing key is not equal");
    }

    #[test]
    fn and_all_and_or_all_combine_base_filters() {
        let and = Filter::parse(&json!({"andAll": [
            {"equals": {"app": "support-bot"}},
            {"notEquals": {"tenant": "internal"}}
        ]}))
        .unwrap();
        assert!(and.matches(&md(json!({"app": "support-bot", "tenant": "acme"}))));
        assert!(and.matches(&md(json!({"app": "support-bot"}))));
        assert!(!and.matches(&md(json!({"app": "support-bot", "tenant": "internal"}))));
        assert!(!and.matches(&md(json!({"tenant": "acme"}))));
        let or = Filter::parse(&json!({"orAll": [
            {"equals": {"app": "a"}},
            {"equals": {"app": "b"}}
        ]}))
        .unwrap();
        assert!(or.matches(&md(json!({"app": "b"}))));
        assert!(!or.matches(&md(json!({"app": "c"}))));
        // Both members of one base filter must hold.
        let both = Filter::parse(&json!({"andAll": [
            {"equals": {"app": "a"}, "notEquals": {"tenant": "t"}}
        ]}))
        .unwrap();
        assert!(both.matches(&md(json!({"app": "a"}))));
        assert!(!both.matches(&md(json!({"app": "a", "tenant": "t"}))));
    }

    #[test]
    fn malformed_filters_are_validation_messages() {
        for (f, says) in [
            (
                json!({"equals": {"a": "1"}, "notEquals": {"b": "2"}}),
                "exactly one",
            ),
            (
                json!({"equals": {"a": "1", "b": "2"}}),
                "less than or equal to 1",
            ),
            (json!({"andAll": []}), "between 1 and 16"),
            (
                json!({"orAll": (0..17).map(|i| json!({"equals": {"k": i.to_string()}})).collect::<Vec<_>>()}),
                "between 1 and 16",
            ),
            (json!({"anyOf": []}), "unknown member 'anyOf'"),
            (json!({"equals": {"a": 1}}), "must be a string"),
        ] {
            let e = Filter::parse(&f).unwrap_err();
            assert!(e.contains(says), "{f}: {e}");
        }
    }

    fn record(model: &str, metadata: Value, answered: bool) -> String {
        let mut r = json!({
            "schemaType": "ModelInvocationLog",
            "operation": "Converse",
            "modelId": model,
            "input": {"inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}},
            "requestMetadata": metadata,
        });
        if answered {
            r["output"] = json!({"outputBodyJson": {"output": {"message": {"content": [{"text": "hello"}]}}}});
        }
        r.to_string()
    }

    #[test]
    fn prompt_response_mode_needs_the_teacher_and_an_answer() {
        let lines = [
            record("amazon.nova-pro-v1:0", json!({"app": "a"}), true),
            record(
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-pro-v1:0",
                json!({"app": "a"}),
                true,
            ),
            record("amazon.nova-pro-v1:0", json!({"app": "a"}), false),
            record("amazon.nova-lite-v1:0", json!({"app": "a"}), true),
            record("amazon.nova-pro-v1:0", json!({"app": "b"}), true),
            "not json".into(),
            "{\"schemaType\": \"Other\"}".into(),
        ]
        .join("\n");
        let mut q = LogQuery {
            filter: Some(Filter::parse(&json!({"equals": {"app": "a"}})).unwrap()),
            use_prompt_response: false,
            teacher: "amazon.nova-pro-v1:0".into(),
        };
        let mut c = LogCount::default();
        q.count_lines(&lines, &mut c);
        assert_eq!((c.files, c.records, c.matched, c.usable), (1, 5, 4, 4));
        q.use_prompt_response = true;
        let mut c = LogCount::default();
        q.count_lines(&lines, &mut c);
        assert_eq!((c.matched, c.usable), (4, 2));
        assert!(too_few_message("s3://l/p/", &c, &q).contains(
            "contain 2 records from the teacher model amazon.nova-pro-v1:0 with a response"
        ));
    }

    #[test]
    fn offloaded_bodies_are_not_log_objects() {
        let base = "p/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/30/05";
        assert!(is_log_object(&format!("{base}/a.json.gz")));
        assert!(!is_log_object(&format!("{base}/data/b.json.gz")));
        assert!(!is_log_object(&format!("{base}/a.json")));
    }

    #[test]
    fn the_request_gives_the_query() {
        let body = json!({
            "trainingDataConfig": {"invocationLogsConfig": {
                "invocationLogSource": {"s3Uri": "s3://logs/p/"},
                "usePromptResponse": true,
                "requestMetadataFilters": {"equals": {"app": "a"}}
            }},
            "customizationConfig": {"distillationConfig": {"teacherModelConfig": {"teacherModelIdentifier": "amazon.nova-pro-v1:0"}}}
        });
        let (uri, q) = LogQuery::from_request(body.as_object().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(uri, "s3://logs/p/");
        assert!(q.use_prompt_response && q.filter.is_some());
        assert_eq!(q.teacher, "amazon.nova-pro-v1:0");
        let plain = json!({"trainingDataConfig": {"s3Uri": "s3://d/x.jsonl"}});
        assert!(LogQuery::from_request(plain.as_object().unwrap()).is_none());
    }
}
