//! AWS adapter: s3 (issue 3).
