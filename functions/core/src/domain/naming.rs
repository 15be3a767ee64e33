//! Names Bedrock accepts: job names, custom model names, provisioned model names, client request
//! tokens, and the S3 URI pattern (reference §3, §7). Every name is derived from the dataset name
//! (for people) and the run id (for uniqueness: Bedrock refuses a reused job name), and is valid for
//! any input: the dataset part is slugged and shortened, never the run part.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use sha2::{Digest, Sha256};

use super::errors::StepError;
use super::run::RunId;

/// Bedrock's limit for job, custom model and provisioned model names.
pub const MAX_NAME_LEN: usize = 63;
/// Bedrock's limit for `clientRequestToken`.
pub const MAX_TOKEN_LEN: usize = 256;

/// `jobName`: `[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*`, 1–63 chars.
pub static JOB_NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9](-*[a-zA-Z0-9\+\-\.])*$").expect("regex"));
/// `customModelName`: `([0-9a-zA-Z][_-]?){1,63}`.
pub static CUSTOM_MODEL_NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9a-zA-Z][_-]?)+$").expect("regex"));
/// `provisionedModelName`: `([0-9a-zA-Z][_-]?)+`, 1–63 chars.
pub static PROVISIONED_MODEL_NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9a-zA-Z][_-]?)+$").expect("regex"));
/// `modelDeploymentName` (CreateCustomModelDeployment): `([0-9a-zA-Z][_-]?){1,63}`.
pub static MODEL_DEPLOYMENT_NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([0-9a-zA-Z][_-]?)+$").expect("regex"));
/// `clientRequestToken`: `[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?`.
pub static CLIENT_REQUEST_TOKEN_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,254}[a-zA-Z0-9])?$").expect("regex"));
/// Training data and output `s3Uri`.
pub static S3_URI_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^s3://[a-z0-9][-.a-z0-9]{1,61}[a-z0-9](/[-!_*'().a-zA-Z0-9]+)*/?$").expect("regex")
});

/// The unique part of every name: the run id's hex (20 chars), or a hash of an unusual run id.
pub fn run_suffix(run_id: &RunId) -> String {
    let id = run_id.as_str();
    let tail = id.strip_prefix("run-").unwrap_or(id);
    if !tail.is_empty() && tail.len() <= 20 && tail.chars().all(|c| c.is_ascii_alphanumeric()) {
        tail.to_ascii_lowercase()
    } else {
        hex::encode(Sha256::digest(id.as_bytes()))[..20].to_string()
    }
}

/// Step Functions' limit for execution names.
pub const MAX_EXECUTION_NAME_LEN: usize = 80;

/// The Step Functions execution `distillery submit` starts: `run-<run hex>-<UTC time to the
/// millisecond>`, e.g. `run-0123456789abcdef0123-20260301T120000123Z` (44 chars). The run part says
/// which run it feeds (for a run id of the usual shape it is the run id itself); the time keeps it
/// unique, because Step Functions refuses a name reused within 90 days and the same object may be
/// submitted again.
pub fn execution_name(run_id: &RunId, at: DateTime<Utc>) -> String {
    format!(
        "run-{}-{}",
        run_suffix(run_id),
        at.format("%Y%m%dT%H%M%S%3fZ")
    )
}

/// Step Functions' rule for execution names: 1-80 chars, no whitespace, no control characters, none
/// of `< > { } [ ] ? * " # % \ ^ | ~ ` $ & , ; : /`.
pub fn is_valid_execution_name(name: &str) -> bool {
    const FORBIDDEN: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
    (1..=MAX_EXECUTION_NAME_LEN).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !FORBIDDEN.contains(c))
}

/// Lowercase ASCII letters and digits, single `-` between words, at most `max` chars, never empty.
pub fn slug(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    out.truncate(max);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "dataset".chars().take(max.max(1)).collect()
    } else {
        out
    }
}

fn compose(prefix: &str, dataset_name: &str, middle: &str, run_id: &RunId) -> String {
    let suffix = run_suffix(run_id);
    let fixed = prefix.len() + middle.len() + suffix.len() + 1;
    let room = MAX_NAME_LEN.saturating_sub(fixed).max(1);
    format!("{prefix}{}-{middle}{suffix}", slug(dataset_name, room))
}

/// `distill-<dataset>-<run hex>`.
pub fn job_name(run_id: &RunId, dataset_name: &str) -> String {
    compose("distill-", dataset_name, "", run_id)
}

/// The run a job name was made for by [`job_name`]: `distill-<dataset>-<20 hex>` belongs to
/// `run-<20 hex>`. `None` for a name Distillery did not make (or made for a run id of an unusual
/// shape, whose hex is a hash): the caller then treats the job as not ours.
pub fn run_id_for_job_name(job_name: &str) -> Option<RunId> {
    let rest = job_name.strip_prefix("distill-")?;
    let (_, hex) = rest.rsplit_once('-')?;
    (hex.len() == 20
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)))
    .then(|| RunId(format!("run-{hex}")))
}

/// `<dataset>-distilled-<run hex>`.
pub fn custom_model_name(run_id: &RunId, dataset_name: &str) -> String {
    compose("", dataset_name, "distilled-", run_id)
}

/// `<dataset>-pt-<run hex>`.
pub fn provisioned_model_name(run_id: &RunId, dataset_name: &str) -> String {
    compose("", dataset_name, "pt-", run_id)
}

/// `<dataset>-od-<run hex>`: the run's on-demand custom model deployment. Deterministic, so a retried
/// step finds (GetCustomModelDeployment by name) the deployment an earlier attempt created.
pub fn deployment_name(run_id: &RunId, dataset_name: &str) -> String {
    compose("", dataset_name, "od-", run_id)
}

/// The `clientRequestToken` of the run's CreateCustomModelDeployment: a retried create is the same
/// create to Bedrock, never a second deployment.
pub fn deployment_client_request_token(run_id: &RunId) -> String {
    client_request_token(run_id, "custom-model-deployment")
}

/// A `clientRequestToken` for one purpose of one run (e.g. `create-job`), so a retried call is the
/// same call to Bedrock and never creates a second job or throughput.
pub fn client_request_token(run_id: &RunId, purpose: &str) -> String {
    let raw = format!("{}-{}", run_id.as_str(), purpose);
    let mut token: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if token.len() > MAX_TOKEN_LEN {
        token = hex::encode(Sha256::digest(raw.as_bytes()));
    }
    let token = token.trim_matches('-').to_string();
    if token.is_empty() {
        hex::encode(Sha256::digest(raw.as_bytes()))
    } else {
        token
    }
}

/// Why an S3 location cannot be handed to Bedrock.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3UriError {
    #[error("bucket name '{0}' is not one Bedrock accepts (3-63 chars of a-z, 0-9, '.', '-')")]
    Bucket(String),
    #[error("object key '{key}' contains {chars} which Bedrock refuses in S3 URIs (allowed: letters, digits and - ! _ * ' ( ) . /); rename the object")]
    Key { key: String, chars: String },
    #[error("'{0}' is not an s3:// URI Bedrock accepts")]
    Uri(String),
}

/// A location Bedrock would refuse is a configuration problem (of the dataset's name or the stack).
impl From<S3UriError> for StepError {
    fn from(e: S3UriError) -> Self {
        StepError::config(e.to_string())
    }
}

/// Checks a bucket and key before launch, naming the characters Bedrock would refuse.
pub fn check_dataset_object(bucket: &str, key: &str) -> Result<String, S3UriError> {
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && bucket
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && bucket
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !bucket_ok {
        return Err(S3UriError::Bucket(bucket.to_string()));
    }
    let mut bad: Vec<String> = Vec::new();
    for c in key.chars() {
        let ok = c.is_ascii_alphanumeric() || "-!_*'()./".contains(c);
        let shown = if c == ' ' {
            "space".to_string()
        } else {
            format!("'{c}'")
        };
        if !ok && !bad.contains(&shown) {
            bad.push(shown);
        }
    }
    if !bad.is_empty() {
        return Err(S3UriError::Key {
            key: key.to_string(),
            chars: bad.join(", "),
        });
    }
    let uri = format!("s3://{bucket}/{key}");
    check_s3_uri(&uri)?;
    Ok(uri)
}

/// Checks a full `s3://` URI against Bedrock's pattern (catches empty path segments like `a//b`).
pub fn check_s3_uri(uri: &str) -> Result<(), S3UriError> {
    if S3_URI_RE.is_match(uri) {
        Ok(())
    } else {
        Err(S3UriError::Uri(uri.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_job_name_leads_back_to_its_run_and_other_names_to_none() {
        let id = RunId("run-0123456789abcdef0123".into());
        assert_eq!(
            run_id_for_job_name(&job_name(&id, "support-chats")),
            Some(id.clone())
        );
        assert_eq!(run_id_for_job_name(&job_name(&id, "a-b-c")), Some(id));
        for other in [
            "distill-x-0123456789ABCDEF0123",
            "distill-0123456789abcdef0123",
            "distill-x-0123456789abcdef012",
            "my-job-0123456789abcdef0123",
            "",
        ] {
            assert_eq!(run_id_for_job_name(other), None, "{other}");
        }
    }

    fn rid() -> RunId {
        RunId::for_object("bucket", "incoming/x.jsonl", "etag")
    }

    #[test]
    fn execution_names_keep_the_run_and_the_time_and_are_valid() {
        use chrono::TimeZone;
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
            + chrono::Duration::milliseconds(123);
        let id = RunId("run-0123456789abcdef0123".into());
        let name = execution_name(&id, at);
        assert_eq!(name, "run-0123456789abcdef0123-20260301T120000123Z");
        assert!(is_valid_execution_name(&name));
        // An unusual run id is hashed, never copied: the name stays short and valid.
        let odd = RunId(format!("weird id/with:chars {}", "x".repeat(200)));
        let name = execution_name(&odd, at);
        assert!(is_valid_execution_name(&name), "{name}");
        assert!(name.len() <= 44);
        assert_ne!(
            execution_name(&id, at),
            execution_name(&id, at + chrono::Duration::milliseconds(1))
        );
        for bad in ["", "a b", "a/b", "a:b", "tab\there", &"x".repeat(81)] {
            assert!(!is_valid_execution_name(bad), "{bad:?}");
        }
        assert!(is_valid_execution_name(&"x".repeat(80)));
    }

    #[test]
    fn names_read_well_and_keep_the_run() {
        let id = RunId("run-0123456789abcdef0123".into());
        assert_eq!(
            job_name(&id, "Support Tickets_v2"),
            "distill-support-tickets-v2-0123456789abcdef0123"
        );
        assert_eq!(
            custom_model_name(&id, "support"),
            "support-distilled-0123456789abcdef0123"
        );
        assert_eq!(
            provisioned_model_name(&id, "support"),
            "support-pt-0123456789abcdef0123"
        );
        assert_eq!(
            deployment_name(&id, "Support Tickets"),
            "support-tickets-od-0123456789abcdef0123"
        );
        assert_eq!(
            deployment_client_request_token(&id),
            "run-0123456789abcdef0123-custom-model-deployment"
        );
        assert_ne!(
            deployment_client_request_token(&id),
            client_request_token(&id, "provisioned-throughput")
        );
        assert_eq!(
            client_request_token(&id, "create-job"),
            "run-0123456789abcdef0123-create-job"
        );
    }

    #[test]
    fn long_names_are_cut_in_the_dataset_part() {
        let long = "a".repeat(200);
        let name = job_name(&rid(), &long);
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert!(name.ends_with(&run_suffix(&rid())));
        let name = deployment_name(&rid(), &long);
        assert_eq!(name.len(), MAX_NAME_LEN);
        assert!(
            name.ends_with(&format!("-od-{}", run_suffix(&rid()))),
            "{name}"
        );
    }

    #[test]
    fn deployment_names_are_deterministic_and_differ_per_run() {
        let a = RunId("run-0123456789abcdef0123".into());
        let b = RunId("run-0123456789abcdef0124".into());
        assert_eq!(deployment_name(&a, "x"), deployment_name(&a, "x"));
        assert_ne!(deployment_name(&a, "x"), deployment_name(&b, "x"));
        assert_ne!(deployment_name(&a, "x"), provisioned_model_name(&a, "x"));
        assert_eq!(
            deployment_name(&a, "%%%"),
            "dataset-od-0123456789abcdef0123"
        );
    }

    #[test]
    fn keys_with_characters_bedrock_refuses_are_named() {
        let err = check_dataset_object("my-bucket", "incoming/my data+v=1@x.jsonl").unwrap_err();
        let msg = err.to_string();
        for want in ["space", "'+'", "'='", "'@'", "rename"] {
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        assert_eq!(
            check_dataset_object("my-bucket", "incoming/ok_(1).jsonl").unwrap(),
            "s3://my-bucket/incoming/ok_(1).jsonl"
        );
        assert!(check_dataset_object("My_Bucket", "k").is_err());
        assert!(check_dataset_object("bucket", "a//b").is_err());
    }

    proptest! {
        #[test]
        fn any_input_gives_valid_names(dataset in ".{0,200}", run in ".{0,80}", purpose in "[a-z-]{0,30}") {
            let id = RunId(run);
            let j = job_name(&id, &dataset);
            prop_assert!(j.len() <= MAX_NAME_LEN && JOB_NAME_RE.is_match(&j), "{}", j);
            let m = custom_model_name(&id, &dataset);
            prop_assert!(m.len() <= MAX_NAME_LEN && CUSTOM_MODEL_NAME_RE.is_match(&m), "{}", m);
            let p = provisioned_model_name(&id, &dataset);
            prop_assert!(p.len() <= MAX_NAME_LEN && PROVISIONED_MODEL_NAME_RE.is_match(&p), "{}", p);
            let d = deployment_name(&id, &dataset);
            prop_assert!(d.len() <= MAX_NAME_LEN && MODEL_DEPLOYMENT_NAME_RE.is_match(&d), "{}", d);
            let dt = deployment_client_request_token(&id);
            prop_assert!(dt.len() <= MAX_TOKEN_LEN && CLIENT_REQUEST_TOKEN_RE.is_match(&dt), "{}", dt);
            let t = client_request_token(&id, &purpose);
            prop_assert!(t.len() <= MAX_TOKEN_LEN && CLIENT_REQUEST_TOKEN_RE.is_match(&t), "{}", t);
        }

        #[test]
        fn accepted_objects_match_bedrock_pattern(key in "[a-zA-Z0-9 +=@_./()-]{1,60}") {
            if let Ok(uri) = check_dataset_object("data-bucket", &key) {
                prop_assert!(S3_URI_RE.is_match(&uri));
            }
        }
    }
}
