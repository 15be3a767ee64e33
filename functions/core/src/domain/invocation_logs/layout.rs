//! Which object keys are invocation-log files, and the hour each covers.
//!
//! Bedrock writes `<prefix>/AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<name>.json.gz`
//! (gzipped JSON lines). Bodies it offloads (over 100 KB, or binary) go under `HH/data/`: those are
//! not log records, so only a `*.json.gz` directly in the `HH/` folder is a log file.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};

/// The folder name Bedrock writes its logs under, after `AWSLogs/<account>/`.
pub const LOGS_FOLDER: &str = "BedrockModelInvocationLogs";

/// `s3://bucket/prefix` of a log location as (bucket, prefix); the prefix may be empty. `None`
/// when it is not an `s3://` URI or names no bucket.
pub fn split_s3_prefix(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, prefix))
}

/// A log file's place in the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub account: String,
    pub region: String,
    /// The start of the UTC hour whose folder holds the file.
    pub hour: DateTime<Utc>,
}

/// The log file `key` is (any prefix before `AWSLogs/`), or `None` for any other object: offloaded
/// bodies under `HH/data/`, other extensions, keys outside the layout.
pub fn log_file(key: &str) -> Option<LogFile> {
    let start = if key.starts_with("AWSLogs/") {
        0
    } else {
        key.find("/AWSLogs/")? + 1
    };
    let parts: Vec<&str> = key[start..].split('/').collect();
    // AWSLogs, account, BedrockModelInvocationLogs, region, YYYY, MM, DD, HH, name
    let [_, account, folder, region, y, m, d, h, name] = parts.as_slice() else {
        return None;
    };
    if *folder != LOGS_FOLDER || account.is_empty() || region.is_empty() {
        return None;
    }
    if !name.ends_with(".json.gz") || name.len() == ".json.gz".len() {
        return None;
    }
    let num = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let date = NaiveDate::from_ymd_opt(num(y, 4)? as i32, num(m, 2)?, num(d, 2)?)?;
    let hour = date.and_hms_opt(num(h, 2)?, 0, 0)?;
    Some(LogFile {
        account: account.to_string(),
        region: region.to_string(),
        hour: Utc.from_utc_datetime(&hour),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_file_directly_in_the_hour_folder() {
        let f = log_file(
            "logs/AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/11/29/07/20261129T0705Z_abc.json.gz",
        )
        .unwrap();
        assert_eq!(f.account, "123456789012");
        assert_eq!(f.region, "us-east-1");
        assert_eq!(f.hour, Utc.with_ymd_and_hms(2026, 11, 29, 7, 0, 0).unwrap());
        // No prefix at all.
        assert!(
            log_file("AWSLogs/1/BedrockModelInvocationLogs/eu-west-1/2026/01/02/23/x.json.gz")
                .is_some()
        );
    }

    #[test]
    fn log_locations_split_into_bucket_and_prefix() {
        assert_eq!(
            split_s3_prefix("s3://logs/bedrock/"),
            Some(("logs", "bedrock/"))
        );
        assert_eq!(split_s3_prefix("s3://logs"), Some(("logs", "")));
        assert_eq!(split_s3_prefix("s3:///x"), None);
        assert_eq!(split_s3_prefix("logs/x"), None);
    }

    #[test]
    fn everything_else_is_not_a_log_file() {
        let base = "p/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/11/29/07";
        for key in [
            format!("{base}/data/abc_input.json.gz"),
            format!("{base}/data/abc_output.json"),
            format!("{base}/x.json"),
            format!("{base}/x.gz"),
            format!("{base}/.json.gz"),
            format!("{base}/"),
            "p/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/11/29/x.json.gz".to_string(),
            "p/AWSLogs/1/Other/us-east-1/2026/11/29/07/x.json.gz".to_string(),
            "p/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/13/29/07/x.json.gz".to_string(),
            "p/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/11/29/24/x.json.gz".to_string(),
            "p/AWSLogs/1/BedrockModelInvocationLogs/us-east-1/26/11/29/07/x.json.gz".to_string(),
            "pAWSLogs/1/BedrockModelInvocationLogs/us-east-1/2026/11/29/07/x.json.gz".to_string(),
        ] {
            assert_eq!(log_file(&key), None, "{key}");
        }
    }
}
