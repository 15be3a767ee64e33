//! `requestMetadataFilters`: the filter a distillation job applies to invocation logs, parsed from the
//! JSON Bedrock takes and evaluated on one record's `requestMetadata` as Bedrock does.
//!
//! Shape rules, from the Bedrock API model (`RequestMetadataFilters`, `RequestMetadataBaseFilters`,
//! `RequestMetadataMap`, `RequestMetadataFiltersList` in botocore's `bedrock/2023-04-20`):
//! - the filter is a union: exactly one of `equals`, `notEquals`, `andAll`, `orAll`;
//! - `equals` / `notEquals` are maps with exactly one entry (min 1, max 1);
//! - `andAll` / `orAll` are lists of 1–16 base filters; a base filter holds `equals` or `notEquals`
//!   (the model makes it a structure, not a union: we require exactly one of the two, since the docs
//!   describe a base filter as "a mapping of a metadata key to a value that it should or should not
//!   equal"; no nesting);
//! - keys are 1–256 characters, values 0–256, both from `[a-zA-Z0-9\s._:/=+$@-]`.
//!
//! Semantics (docs/invocation-logs.md): keys and values compare exactly (case and spaces matter);
//! `notEquals` is a NOT of `equals`, so a record without the key passes it; `andAll` is every base
//! filter, `orAll` any of them.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// Most base filters `andAll` / `orAll` take (API model: `RequestMetadataFiltersList` max 16).
pub const MAX_BASE_FILTERS: usize = 16;
/// Longest metadata key or value (API model: `RequestMetadataMapKeyString` / `ValueString` max 256).
pub const MAX_KEY_CHARS: usize = 256;
pub const MAX_VALUE_CHARS: usize = 256;

/// One key compared with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseFilter {
    Equals { key: String, value: String },
    NotEquals { key: String, value: String },
}

/// A parsed, valid `requestMetadataFilters` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataFilter {
    Base(BaseFilter),
    AndAll(Vec<BaseFilter>),
    OrAll(Vec<BaseFilter>),
}

/// What is wrong with a filter, and where (a JSON path such as `andAll[2].equals`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "requestMetadataFilters")?;
        if !self.path.is_empty() {
            write!(f, ".{}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for FilterError {}

fn err(path: &str, message: impl Into<String>) -> FilterError {
    FilterError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// The characters the API model allows in keys and values: `[a-zA-Z0-9\s._:/=+$@-]`. `\s` is taken
/// as ASCII whitespace (the pattern is matched by Bedrock's Java service; Java's `\s` is ASCII-only).
fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || "._:/=+$@-".contains(c)
}

fn check_text(path: &str, what: &str, s: &str, min: usize, max: usize) -> Result<(), FilterError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(err(
            path,
            format!("{what} '{s}' is {n} characters long; it must be {min} to {max}"),
        ));
    }
    if let Some(c) = s.chars().find(|c| !allowed_char(*c)) {
        return Err(err(
            path,
            format!(
                "{what} '{s}' contains '{c}'; only letters, digits, whitespace and . _ : / = + $ @ - are allowed"
            ),
        ));
    }
    Ok(())
}

/// `{"key": "value"}` with exactly one entry.
fn one_entry(path: &str, v: &Value) -> Result<(String, String), FilterError> {
    let obj = v.as_object().ok_or_else(|| {
        err(
            path,
            format!("must be an object with one key, got {}", kind(v)),
        )
    })?;
    if obj.len() != 1 {
        return Err(err(
            path,
            format!(
                "must hold exactly one key and value, got {} (combine several with andAll or orAll)",
                obj.len()
            ),
        ));
    }
    let (k, val) = obj.iter().next().expect("one entry checked");
    let val = val.as_str().ok_or_else(|| {
        err(
            &format!("{path}.{k}"),
            format!("must be a string, got {}", kind(val)),
        )
    })?;
    check_text(path, "key", k, 1, MAX_KEY_CHARS)?;
    check_text(&format!("{path}.{k}"), "value", val, 0, MAX_VALUE_CHARS)?;
    Ok((k.clone(), val.to_string()))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn base(path: &str, op: &str, arg: &Value) -> Result<BaseFilter, FilterError> {
    let p = if path.is_empty() {
        op.to_string()
    } else {
        format!("{path}.{op}")
    };
    let (key, value) = one_entry(&p, arg)?;
    Ok(match op {
        "equals" => BaseFilter::Equals { key, value },
        _ => BaseFilter::NotEquals { key, value },
    })
}

fn base_list(op: &str, arg: &Value) -> Result<Vec<BaseFilter>, FilterError> {
    let items = arg
        .as_array()
        .ok_or_else(|| err(op, format!("must be a list, got {}", kind(arg))))?;
    if items.is_empty() || items.len() > MAX_BASE_FILTERS {
        return Err(err(
            op,
            format!(
                "must hold 1 to {MAX_BASE_FILTERS} filters, got {}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("{op}[{i}]");
            let obj = item.as_object().ok_or_else(|| {
                err(
                    &path,
                    format!(
                        "must be an object with equals or notEquals, got {}",
                        kind(item)
                    ),
                )
            })?;
            let ops: Vec<&String> = obj.keys().collect();
            match ops.as_slice() {
                [one] if *one == "equals" || *one == "notEquals" => base(&path, one, &obj[*one]),
                [one] if *one == "andAll" || *one == "orAll" => Err(err(
                    &path,
                    format!("{one} cannot be nested: a list holds only equals or notEquals filters"),
                )),
                [] => Err(err(&path, "is empty; expected equals or notEquals")),
                [one] => Err(err(
                    &path,
                    format!("unknown operator '{one}' (expected equals or notEquals)"),
                )),
                _ => Err(err(
                    &path,
                    format!(
                        "holds {} operators ({}); a filter in a list takes exactly one of equals, notEquals",
                        ops.len(),
                        ops.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        })
        .collect()
}

impl MetadataFilter {
    /// Parses and validates the JSON value Bedrock takes as `requestMetadataFilters`.
    pub fn from_json(v: &Value) -> Result<Self, FilterError> {
        let obj = v.as_object().ok_or_else(|| {
            err(
                "",
                format!(
                    "must be an object with one of equals, notEquals, andAll, orAll; got {}",
                    kind(v)
                ),
            )
        })?;
        if obj.len() != 1 {
            let ops: Vec<&str> = obj.keys().map(String::as_str).collect();
            return Err(err(
                "",
                format!(
                    "must hold exactly one of equals, notEquals, andAll, orAll; got {}",
                    if ops.is_empty() {
                        "none".to_string()
                    } else {
                        ops.join(", ")
                    }
                ),
            ));
        }
        let (op, arg) = obj.iter().next().expect("one entry checked");
        match op.as_str() {
            "equals" | "notEquals" => Ok(MetadataFilter::Base(base("", op, arg)?)),
            "andAll" => Ok(MetadataFilter::AndAll(base_list(op, arg)?)),
            "orAll" => Ok(MetadataFilter::OrAll(base_list(op, arg)?)),
            other => Err(err(
                "",
                format!("unknown operator '{other}' (expected equals, notEquals, andAll, orAll)"),
            )),
        }
    }

    /// Parses the filter from JSON text (a `--filter` flag, an environment variable).
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| err("", format!("is not valid JSON: {e}")))?;
        Self::from_json(&v)
    }

    /// Whether a record with this `requestMetadata` passes (a record without any has an empty map).
    pub fn matches<M: Metadata + ?Sized>(&self, metadata: &M) -> bool {
        match self {
            MetadataFilter::Base(b) => b.matches(metadata),
            MetadataFilter::AndAll(list) => list.iter().all(|b| b.matches(metadata)),
            MetadataFilter::OrAll(list) => list.iter().any(|b| b.matches(metadata)),
        }
    }
}

impl BaseFilter {
    pub fn matches<M: Metadata + ?Sized>(&self, metadata: &M) -> bool {
        match self {
            BaseFilter::Equals { key, value } => metadata.get(key) == Some(value.as_str()),
            // NOT of equals: a missing key is "not equal" (docs/invocation-logs.md).
            BaseFilter::NotEquals { key, value } => metadata.get(key) != Some(value.as_str()),
        }
    }
}

/// A record's request metadata, looked up by exact key.
pub trait Metadata {
    fn get(&self, key: &str) -> Option<&str>;
}

impl Metadata for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
}

/// Key-value pairs as a record holds them (`&str`, `String` or `Cow<str>`).
impl<K: AsRef<str>, V: AsRef<str>> Metadata for [(K, V)] {
    fn get(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn md(pairs: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        pairs.to_vec()
    }

    fn f(v: Value) -> MetadataFilter {
        MetadataFilter::from_json(&v).unwrap()
    }

    #[test]
    fn equals_matches_only_the_exact_value() {
        let filter = f(json!({"equals": {"team": "support"}}));
        assert!(filter.matches(md(&[("team", "support")]).as_slice()));
        assert!(filter.matches(md(&[("app", "x"), ("team", "support")]).as_slice()));
        assert!(!filter.matches(md(&[("team", "sales")]).as_slice()));
        // Case and spaces matter, in values and keys.
        assert!(!filter.matches(md(&[("team", "Support")]).as_slice()));
        assert!(!filter.matches(md(&[("team", "support ")]).as_slice()));
        assert!(!filter.matches(md(&[("Team", "support")]).as_slice()));
        // A record without the key, or without any metadata, does not match.
        assert!(!filter.matches(md(&[("app", "support")]).as_slice()));
        assert!(!filter.matches(md(&[]).as_slice()));
    }

    #[test]
    fn not_equals_lets_through_records_without_the_key() {
        let filter = f(json!({"notEquals": {"env": "test"}}));
        assert!(!filter.matches(md(&[("env", "test")]).as_slice()));
        assert!(filter.matches(md(&[("env", "prod")]).as_slice()));
        assert!(filter.matches(md(&[("env", "TEST")]).as_slice()));
        assert!(filter.matches(md(&[("app", "a")]).as_slice()));
        assert!(filter.matches(md(&[]).as_slice()));
    }

    #[test]
    fn and_all_needs_every_filter_or_all_any() {
        let and = f(json!({"andAll": [
            {"equals": {"team": "support"}},
            {"notEquals": {"env": "test"}}
        ]}));
        let or = f(json!({"orAll": [
            {"equals": {"team": "support"}},
            {"equals": {"team": "sales"}}
        ]}));
        type Case<'a> = (&'a [(&'a str, &'a str)], bool, bool);
        let cases: [Case; 6] = [
            (&[("team", "support"), ("env", "prod")], true, true),
            (&[("team", "support")], true, true),
            (&[("team", "support"), ("env", "test")], false, true),
            (&[("team", "sales"), ("env", "prod")], false, true),
            (&[("team", "ops")], false, false),
            (&[], false, false),
        ];
        for (metadata, want_and, want_or) in cases {
            assert_eq!(and.matches(metadata), want_and, "andAll on {metadata:?}");
            assert_eq!(or.matches(metadata), want_or, "orAll on {metadata:?}");
        }
    }

    #[test]
    fn or_all_of_not_equals_is_true_unless_every_key_is_excluded() {
        let filter = f(json!({"orAll": [
            {"notEquals": {"env": "test"}},
            {"notEquals": {"team": "qa"}}
        ]}));
        assert!(!filter.matches(md(&[("env", "test"), ("team", "qa")]).as_slice()));
        assert!(filter.matches(md(&[("env", "test")]).as_slice()));
        assert!(filter.matches(md(&[]).as_slice()));
    }

    #[test]
    fn an_empty_value_equals_only_an_empty_value() {
        let filter = f(json!({"equals": {"tag": ""}}));
        assert!(filter.matches(md(&[("tag", "")]).as_slice()));
        assert!(!filter.matches(md(&[]).as_slice()));
        assert!(!filter.matches(md(&[("tag", " ")]).as_slice()));
    }

    #[test]
    fn works_on_a_btreemap_too() {
        let filter = f(json!({"equals": {"team": "support"}}));
        let mut m = BTreeMap::new();
        m.insert("team".to_string(), "support".to_string());
        assert!(filter.matches(&m));
    }

    fn error(v: Value) -> String {
        MetadataFilter::from_json(&v).unwrap_err().to_string()
    }

    #[test]
    fn invalid_shapes_are_named() {
        assert!(error(json!([])).contains("must be an object"));
        assert!(error(json!({})).contains("got none"));
        assert!(error(json!({"equals": {"a": "1"}, "orAll": []})).contains("equals, orAll"));
        assert!(error(json!({"like": {"a": "1"}})).contains("unknown operator 'like'"));
        let e = error(json!({"equals": {"a": "1", "b": "2"}}));
        assert!(e.contains("equals") && e.contains("exactly one key"), "{e}");
        assert!(error(json!({"equals": {}})).contains("got 0"));
        assert!(error(json!({"equals": {"a": 1}}))
            .contains("requestMetadataFilters.equals.a: must be a string"));
        assert!(error(json!({"andAll": []})).contains("1 to 16 filters, got 0"));
        let seventeen: Vec<Value> = (0..17)
            .map(|i| json!({"equals": {"k": i.to_string()}}))
            .collect();
        assert!(error(json!({"andAll": seventeen})).contains("got 17"));
        let sixteen: Vec<Value> = (0..16)
            .map(|i| json!({"equals": {"k": i.to_string()}}))
            .collect();
        assert!(MetadataFilter::from_json(&json!({"orAll": sixteen})).is_ok());
        assert!(error(json!({"orAll": {"equals": {"a": "1"}}})).contains("must be a list"));
        let e = error(json!({"andAll": [{"equals": {"a": "1"}}, {"orAll": []}]}));
        assert!(
            e.contains("andAll[1]") && e.contains("cannot be nested"),
            "{e}"
        );
        let e = error(json!({"andAll": [{"equals": {"a": "1"}, "notEquals": {"b": "2"}}]}));
        assert!(
            e.contains("andAll[0]") && e.contains("exactly one of equals, notEquals"),
            "{e}"
        );
        assert!(error(json!({"orAll": [{}]})).contains("orAll[0]: is empty"));
        let e =
            error(json!({"andAll": [{"equals": {"a": "1"}}, {"notEquals": {"b": "x", "c": "y"}}]}));
        assert!(e.contains("andAll[1].notEquals"), "{e}");
    }

    #[test]
    fn key_and_value_lengths_and_characters_follow_the_api_model() {
        assert!(
            error(json!({"equals": {"": "v"}})).contains("0 characters long; it must be 1 to 256")
        );
        let k256 = "k".repeat(256);
        assert!(MetadataFilter::from_json(&json!({"equals": {k256: "v"}})).is_ok());
        let k257 = "k".repeat(257);
        assert!(error(json!({"equals": {k257: "v"}})).contains("257 characters"));
        let v257 = "v".repeat(257);
        assert!(error(json!({"notEquals": {"k": v257}})).contains("notEquals.k: value"));
        assert!(
            MetadataFilter::from_json(&json!({"equals": {"a b.c_d:e/f=g+h$i@j-k": "x Y:1"}}))
                .is_ok()
        );
        let e = error(json!({"equals": {"team": "support!"}}));
        assert!(e.contains("contains '!'"), "{e}");
        assert!(error(json!({"equals": {"tëam": "x"}})).contains("contains 'ë'"));
    }

    #[test]
    fn parse_reports_bad_json() {
        let e = MetadataFilter::parse("{equals").unwrap_err().to_string();
        assert!(
            e.starts_with("requestMetadataFilters: is not valid JSON"),
            "{e}"
        );
        assert_eq!(
            MetadataFilter::parse(r#"{"equals":{"a":"b"}}"#).unwrap(),
            MetadataFilter::Base(BaseFilter::Equals {
                key: "a".into(),
                value: "b".into()
            })
        );
    }
}
