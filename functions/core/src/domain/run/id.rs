//! A run's identity: its id, and what an S3 dataset run's id is derived from.

use super::*;

/// Stable run identifier: `run-` + 20 hex chars.
///
/// For an S3 dataset it is derived from everything that decides what gets trained and served
/// ([`RunIdentity`]: the object version and the effective settings, plus the attempt for a retry),
/// so the same bytes with the same settings always map to the same run (a duplicated event can never
/// start a second job), while the same bytes with different settings, or a retry, are a new run.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// An id per (bucket, key, ETag): the ledger ids of runs recorded before settings were part of a
    /// run's identity, and a stable id for test fixtures. New runs use [`RunId::for_dataset`].
    pub fn for_object(bucket: &str, key: &str, etag: &str) -> Self {
        // The ETag arrives quoted from some APIs and bare from others: normalise before hashing.
        let etag = etag.trim_matches('"');
        Self::from_parts(&["s3", bucket, key, etag])
    }

    /// The run id of a dataset: see [`RunIdentity`].
    pub fn for_dataset(identity: &RunIdentity<'_>) -> Self {
        let version = identity.version.trim_matches('"');
        let attempt = identity.attempt.to_string();
        let mut parts = vec!["s3v2", identity.bucket, identity.key, version];
        parts.push(identity.settings_fingerprint);
        // Attempt 1 leaves the attempt out, so a first run's id depends on the dataset alone.
        if identity.attempt > 1 {
            parts.push(&attempt);
        }
        Self::from_parts(&parts)
    }

    /// For a scheduled retraining: one run per schedule name per scheduled time.
    pub fn for_schedule(schedule: &str, scheduled_time: &str) -> Self {
        Self::from_parts(&["schedule", schedule, scheduled_time])
    }

    fn from_parts(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for p in parts {
            hasher.update(p.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        RunId(format!("run-{}", &hex::encode(digest)[..20]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a dataset run's identity covers (see [`RunId::for_dataset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunIdentity<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// The object version: its version id when the bucket is versioned, else its ETag.
    pub version: &'a str,
    /// A canonical text of the effective settings (`settings::settings_fingerprint`).
    pub settings_fingerprint: &'a str,
    /// 1 for the first attempt; `distillery runs retry` makes attempt n + 1.
    pub attempt: u32,
}

impl<'a> RunIdentity<'a> {
    /// The version that names an object: the version id when there is one (S3 says `null` for an
    /// object written while versioning was off), else the ETag.
    pub fn object_version(version_id: Option<&'a str>, etag: &'a str) -> &'a str {
        match version_id {
            Some(v) if !v.is_empty() && v != "null" => v,
            _ => etag,
        }
    }
}
