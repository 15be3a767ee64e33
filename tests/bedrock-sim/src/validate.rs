//! Field constraints from the Bedrock API model, reported the way AWS reports them
//! ("2 validation errors detected: Value 'x' at 'jobName' failed to satisfy constraint: ...").

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::wire::ApiError;

/// A constraint pattern: the text AWS quotes in its message, and the anchored regex that checks it.
pub struct Pattern {
    pub text: &'static str,
    regex: LazyLock<Regex>,
}

impl Pattern {
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

macro_rules! pattern {
    ($name:ident, $text:literal) => {
        pub static $name: Pattern = Pattern {
            text: $text,
            regex: LazyLock::new(|| {
                Regex::new(concat!("^(?:", $text, ")$")).expect("pattern compiles")
            }),
        };
    };
}

pattern!(JOB_NAME, r"[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*");
pattern!(CUSTOM_MODEL_NAME, r"([0-9a-zA-Z][_-]?){1,63}");
pattern!(PROVISIONED_MODEL_NAME, r"([0-9a-zA-Z][_-]?)+");
pattern!(
    S3_URI,
    r"s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](/[-!_*'().a-zA-Z0-9]+)*/?"
);
pattern!(
    CLIENT_REQUEST_TOKEN,
    r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?"
);
pattern!(ROLE_ARN, r"arn:aws(-[^:]+)?:iam::([0-9]{12})?:role/.+");
// KmsKeyId (customModelKmsKeyId).
pattern!(
    KMS_KEY_ID,
    r"(arn:aws(-[^:]+)?:kms:[a-zA-Z0-9-]*:[0-9]{12}:((key/[a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)))|([a-zA-Z0-9-]{36})|(alias/[a-zA-Z0-9-_/]+)"
);
pattern!(
    JOB_IDENTIFIER,
    r"(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:model-customization-job/[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([a-z0-9-]{1,63}[.]){0,2}[a-z0-9-]{1,63}([:][a-z0-9-]{1,63}){0,2}/[a-z0-9]{12})|([a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*)"
);
pattern!(
    PROVISIONED_MODEL_ID,
    r"(([0-9a-zA-Z][_-]?)+)|(arn:aws(-[^:]+)?:bedrock:[a-z0-9-]{1,20}:[0-9]{12}:provisioned-model/[a-z0-9]{12})"
);

pattern!(MODEL_DEPLOYMENT_NAME, r"([0-9a-zA-Z][_-]?){1,63}");
pattern!(
    CUSTOM_MODEL_ARN,
    r"arn:aws(|-us-gov|-cn|-iso|-iso-b):bedrock:[a-z0-9-]{1,20}:[0-9]{12}:custom-model/(imported|[a-z0-9-]{1,63}[.]{1}[a-z0-9-]{1,63}([a-z0-9-]{1,63}[.]){0,2}[a-z0-9-]{1,63}([:][a-z0-9-]{1,63}){0,2})/[a-z0-9]{12}"
);
pattern!(
    CUSTOM_MODEL_DEPLOYMENT_IDENTIFIER,
    r"(arn:aws(|-us-gov|-cn|-iso|-iso-b):bedrock:[a-z0-9-]{1,20}:[0-9]{12}:custom-model-deployment/[a-z0-9]{12})|^([0-9a-zA-Z][_-]?){1,63}"
);

/// Collects every constraint violation of one request, like AWS does, before answering.
#[derive(Default)]
pub struct Violations(Vec<String>);

impl Violations {
    pub fn push(&mut self, message: String) {
        self.0.push(message);
    }

    pub fn missing(&mut self, field: &str) {
        self.push(format!(
            "Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ));
    }

    /// Checks length bounds (in characters) and an optional pattern.
    pub fn check(
        &mut self,
        field: &str,
        value: &str,
        min: usize,
        max: usize,
        pattern: Option<&Pattern>,
    ) {
        let len = value.chars().count();
        if len < min {
            self.push(format!(
                "Value '{value}' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
            ));
        }
        if len > max {
            self.push(format!(
                "Value '{value}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
            ));
        }
        if let Some(p) = pattern {
            if !p.is_match(value) {
                self.push(format!(
                    "Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: {}",
                    p.text
                ));
            }
        }
    }

    pub fn check_enum(&mut self, field: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.push(format!(
                "Value '{value}' at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ));
        }
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(ApiError::validation(format!(
                "1 validation error detected: {}",
                self.0[0]
            ))),
            n => Err(ApiError::validation(format!(
                "{n} validation errors detected: {}",
                self.0.join("; ")
            ))),
        }
    }
}

/// Typed access to a JSON request body that records wrong types as violations.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Fields {
            obj,
            prefix: String::new(),
        }
    }

    pub fn path(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn string(&self, key: &str, v: &mut Violations) -> Option<&'a str> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                v.push(format!("Value at '{}' must be a string", self.path(key)));
                None
            }
        }
    }

    pub fn required_string(&self, key: &str, v: &mut Violations) -> Option<&'a str> {
        let present = matches!(self.obj.get(key), Some(x) if !x.is_null());
        let s = self.string(key, v);
        if !present {
            v.missing(&self.path(key));
        }
        s
    }

    pub fn integer(&self, key: &str, v: &mut Violations) -> Option<i64> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(_) => {
                v.push(format!("Value at '{}' must be an integer", self.path(key)));
                None
            }
        }
    }

    pub fn number(&self, key: &str, v: &mut Violations) -> Option<f64> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => {
                v.push(format!("Value at '{}' must be a number", self.path(key)));
                None
            }
        }
    }

    pub fn object(&self, key: &str, v: &mut Violations) -> Option<Fields<'a>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(o)) => Some(Fields {
                obj: o,
                prefix: format!("{}.", self.path(key)),
            }),
            Some(_) => {
                v.push(format!("Value at '{}' must be an object", self.path(key)));
                None
            }
        }
    }

    pub fn array(&self, key: &str, v: &mut Violations) -> Option<&'a Vec<Value>> {
        match self.obj.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => {
                v.push(format!("Value at '{}' must be a list", self.path(key)));
                None
            }
        }
    }

    pub fn has(&self, key: &str) -> bool {
        matches!(self.obj.get(key), Some(x) if !x.is_null())
    }
}

/// Checks a tag list (`jobTags`, `customModelTags`, `tags`): Bedrock allows 200 tags, keys 1–128 and
/// values 0–256 characters. Returns the count so the caller can raise TooManyTagsException.
pub fn check_tags(fields: &Fields<'_>, key: &str, v: &mut Violations) -> usize {
    let Some(tags) = fields.array(key, v) else {
        return 0;
    };
    for (i, tag) in tags.iter().enumerate() {
        let at = format!("{}.{}.member", fields.path(key), i + 1);
        match tag {
            Value::Object(o) => {
                let t = Fields::new(o);
                match t.string("key", v) {
                    Some(k) => v.check(&format!("{at}.key"), k, 1, 128, None),
                    None => v.missing(&format!("{at}.key")),
                }
                match t.string("value", v) {
                    Some(val) => v.check(&format!("{at}.value"), val, 0, 256, None),
                    None => v.missing(&format!("{at}.value")),
                }
            }
            _ => v.push(format!("Value at '{at}' must be an object")),
        }
    }
    tags.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_name_pattern() {
        assert!(JOB_NAME.is_match("distill-run-1.v2+x"));
        assert!(!JOB_NAME.is_match("has_underscore"));
        assert!(!JOB_NAME.is_match("-leading"));
        assert!(!JOB_NAME.is_match(""));
    }

    #[test]
    fn kms_key_id_pattern() {
        assert!(KMS_KEY_ID.is_match(
            "arn:aws:kms:us-east-1:123456789012:key/0d15711e-0000-4000-8000-00000000da7a"
        ));
        assert!(KMS_KEY_ID.is_match("alias/distillery-data"));
        assert!(!KMS_KEY_ID.is_match("arn:aws:kms:us-east-1:123456789012:key/short"));
        assert!(!KMS_KEY_ID.is_match("my-key"));
    }

    #[test]
    fn custom_model_name_pattern() {
        assert!(CUSTOM_MODEL_NAME.is_match("my_model-1"));
        assert!(!CUSTOM_MODEL_NAME.is_match("my__model"));
        assert!(!CUSTOM_MODEL_NAME.is_match("dots.not.allowed"));
    }

    #[test]
    fn s3_uri_pattern() {
        assert!(S3_URI.is_match("s3://my-bucket/incoming/data.jsonl"));
        assert!(S3_URI.is_match("s3://my-bucket/output/"));
        assert!(!S3_URI.is_match("s3://my-bucket/with space.jsonl"));
        assert!(!S3_URI.is_match("s3://my-bucket/a=b.jsonl"));
        assert!(!S3_URI.is_match("s3://My-Bucket/x"));
        assert!(!S3_URI.is_match("https://my-bucket/x"));
    }

    #[test]
    fn job_identifier_accepts_names_and_arns() {
        assert!(JOB_IDENTIFIER.is_match("job-1"));
        assert!(JOB_IDENTIFIER.is_match(
            "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.nova-lite-v1:0:300k/abcdef012345"
        ));
        assert!(!JOB_IDENTIFIER.is_match("arn:aws:s3:::bucket"));
    }

    #[test]
    fn deployment_patterns() {
        assert!(MODEL_DEPLOYMENT_NAME.is_match("support-od-0123456789abcdef0123"));
        assert!(!MODEL_DEPLOYMENT_NAME.is_match("dots.not.allowed"));
        assert!(CUSTOM_MODEL_ARN.is_match(
            "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-lite-v1:0:300k/abcdef012345"
        ));
        assert!(!CUSTOM_MODEL_ARN
            .is_match("arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0"));
        assert!(CUSTOM_MODEL_DEPLOYMENT_IDENTIFIER.is_match("my-deployment"));
        assert!(CUSTOM_MODEL_DEPLOYMENT_IDENTIFIER.is_match(
            "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdef012345"
        ));
        assert!(!CUSTOM_MODEL_DEPLOYMENT_IDENTIFIER
            .is_match("arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdef012345"));
    }

    #[test]
    fn messages_count_and_join() {
        let mut v = Violations::default();
        v.missing("jobName");
        v.check("customModelName", "a__b", 1, 63, Some(&CUSTOM_MODEL_NAME));
        let err = v.into_result().unwrap_err();
        assert!(err
            .message
            .starts_with("2 validation errors detected: Value null at 'jobName'"));
        assert!(err
            .message
            .contains("at 'customModelName' failed to satisfy constraint"));
    }
}
