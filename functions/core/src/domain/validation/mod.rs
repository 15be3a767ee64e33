//! Streaming dataset validation for `bedrock-conversation-2024` JSONL. (Issue 2.)
//!
//! Public API (other modules code against exactly this; the implementation fills it in):
//! - [`ValidationOptions`]: what to check (multi-turn allowed, limits).
//! - [`DatasetValidator`]: incremental; `push_line` per line, `finish` for the report. Constant memory.
//! - [`validate_reader`]: drives it from any `std::io::Read`.
//! - [`validate_async_reader`]: drives it from any `tokio::io::AsyncRead` (the S3 body).
//! - [`ValidationReport`]: serialisable; `valid`, `records`, `invalid_records`, `errors`, `error_count`,
//!   `warnings`, `warning_count`, `stats`.
