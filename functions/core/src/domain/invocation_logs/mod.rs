//! Bedrock model invocation logs as training data (issue 14). Pure: no I/O of its own beyond reading
//! the `Read` it is handed, no AWS, no async runtime.
//!
//! - [`filter`]: `requestMetadataFilters`, parsed and validated as Bedrock's API model says, and
//!   matched on a record's `requestMetadata` as Bedrock does.
//! - [`layout`]: which object keys are log files, and the hour each covers.
//! - [`record`]: one log line: operation, model, metadata; its prompt and response in each body shape.
//! - [`preflight`]: the streaming count over log files (scanned, matched, eligible, distinct prompts,
//!   by model and day, skipped files), shared by the pipeline and `distillery logs preview`.
//! - [`convert`]: an eligible record as a `bedrock-conversation-2024` line.
//! - [`curate`]: which records a curated scheduled run trains on (window, one per prompt, the most
//!   recent, capped).
//!
//! The counting rules and filter semantics, with their sources: docs/invocation-logs.md.

pub mod convert;
pub mod curate;
pub mod filter;
pub mod layout;
pub mod preflight;
pub mod record;

pub use filter::{FilterError, MetadataFilter};
pub use layout::{log_file, LogFile};
pub use preflight::{FileOutcome, Preflight, PreflightOptions, PreflightReport};
