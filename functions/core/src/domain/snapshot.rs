//! A run's immutable snapshot: the validator writes the exact bytes it validated to a per-run folder
//! only Distillery writes (`s3://<dataset bucket>/<SNAPSHOT_PREFIX><run-id>/`), in the same streaming
//! pass, and the launcher gives Bedrock that copy, never the mutable upload key. So whatever happens
//! to the upload key afterwards (overwritten, deleted), the bytes Bedrock trains on are the bytes
//! that were validated.
//!
//! The folder is the run's own space: `dataset.jsonl`, and with the quality gate `heldout.jsonl`
//! beside it (the records set aside from training, also written by the validator); later steps
//! put their own files there too (see [`SnapshotLayout`]).

use serde::{Deserialize, Serialize};

use super::run::RunId;

/// The file name of the validated dataset inside a run's folder.
pub const DATASET_FILE: &str = "dataset.jsonl";

/// How a read is pinned to exactly one version of an object, so the bytes validated are the bytes the
/// upload event announced: by version id when the bucket is versioned (the event carries one), else
/// with `If-Match` on the event's ETag. Serialized as `{"pinnedBy": "versionId", "versionId": ...}` or
/// `{"pinnedBy": "ifMatch", "etag": ...}` (in the report and on the run's snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "pinnedBy",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ObjectPin {
    VersionId {
        version_id: String,
    },
    /// The ETag without its quotes.
    IfMatch {
        etag: String,
    },
}

impl ObjectPin {
    /// The pin an upload event names: its version id (S3 omits it or sends `null` for an unversioned
    /// bucket; moto sends the string `"null"`), else its ETag; `None` when it names neither.
    pub fn from_event(version_id: Option<&str>, etag: Option<&str>) -> Option<ObjectPin> {
        let clean = |v: Option<&str>| {
            v.map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty() && s != "null")
        };
        match (clean(version_id), clean(etag)) {
            (Some(version_id), _) => Some(ObjectPin::VersionId { version_id }),
            (None, Some(etag)) => Some(ObjectPin::IfMatch { etag }),
            (None, None) => None,
        }
    }

    /// "version id X" or "ETag \"X\"", for messages.
    pub fn describe(&self) -> String {
        match self {
            ObjectPin::VersionId { version_id } => format!("version id {version_id}"),
            ObjectPin::IfMatch { etag } => format!("ETag \"{etag}\""),
        }
    }
}

/// Where a run's files live: `s3://<bucket>/<prefix><run-id>/...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotLayout {
    pub bucket: String,
    /// Ends with `/` (e.g. `runs/`).
    pub prefix: String,
}

impl SnapshotLayout {
    /// The run's folder key (`runs/<run-id>/`).
    pub fn folder(&self, run_id: &RunId) -> String {
        format!("{}{}/", self.prefix, run_id)
    }

    /// The key of the run's validated dataset (`runs/<run-id>/dataset.jsonl`).
    pub fn dataset_key(&self, run_id: &RunId) -> String {
        format!("{}{DATASET_FILE}", self.folder(run_id))
    }
}

/// The validated bytes of a run, as recorded on the run (`snapshot` in the ledger record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSnapshot {
    /// `s3://bucket/runs/<run-id>/dataset.jsonl`: what Bedrock is given as training data.
    pub uri: String,
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes, computed while they streamed through the validator.
    pub sha256: String,
    /// The snapshot object's ETag (no quotes); the launcher checks it is unchanged before launch.
    pub etag: String,
    /// How the upload was read: exactly this version of the upload key.
    pub source: ObjectPin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_pins_by_version_id_first_and_ignores_null_and_quotes() {
        assert_eq!(
            ObjectPin::from_event(Some("v1"), Some("\"e\"")),
            Some(ObjectPin::VersionId {
                version_id: "v1".into()
            })
        );
        for none in [None, Some("null"), Some("")] {
            assert_eq!(
                ObjectPin::from_event(none, Some("\"e\"")),
                Some(ObjectPin::IfMatch { etag: "e".into() })
            );
        }
        assert_eq!(ObjectPin::from_event(Some("null"), None), None);
    }

    #[test]
    fn pins_serialize_with_what_pinned_the_read() {
        let v = serde_json::to_value(ObjectPin::VersionId {
            version_id: "abc".into(),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"pinnedBy": "versionId", "versionId": "abc"})
        );
        let v = serde_json::to_value(ObjectPin::IfMatch { etag: "e1".into() }).unwrap();
        assert_eq!(v, serde_json::json!({"pinnedBy": "ifMatch", "etag": "e1"}));
    }

    #[test]
    fn a_run_folder_holds_the_dataset() {
        let l = SnapshotLayout {
            bucket: "b".into(),
            prefix: "runs/".into(),
        };
        let id = RunId("run-1".into());
        assert_eq!(l.folder(&id), "runs/run-1/");
        assert_eq!(l.dataset_key(&id), "runs/run-1/dataset.jsonl");
    }
}
